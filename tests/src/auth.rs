//! Signed tokens, the REQUEST events API Gateway sends the authorizer, and authorizers on a
//! store, as the authorizer, catalog and metrics tests (and the authorizer bench) build them.

use std::time::Duration;

use billing::auth::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, AuthConfig, Authorizer, JwtAlgorithm,
    JwtSettings, KeyMaterial,
};
use billing::domain::{OrgId, Timestamp};
use billing::store::BillingStore;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://portal.example.test";
pub const AUDIENCE: &str = "pss-billing";
pub const HS256_SECRET: &str = "test-only-hs256-secret-for-authorizer-tests-000";
pub const ARN_PREFIX: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod";

/// A file of tests/fixtures/jwt (test-only keys, the sample secret, a JWKS).
pub fn jwt_fixture(name: &str) -> String {
    std::fs::read_to_string(
        crate::workspace_root()
            .join("tests/fixtures/jwt")
            .join(name),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A PEM fixture's DER bytes.
pub fn der(name: &str) -> Vec<u8> {
    billing::auth::jwt::pem_to_der(&jwt_fixture(name))
        .expect("PEM fixture")
        .1
}

pub fn now() -> i64 {
    Timestamp::now().unix()
}

/// Valid claims for `user_1` of `org` with `role`, for five minutes.
pub fn claims(org: &OrgId, role: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user_1",
        "org_id": org.as_str(),
        "role": role,
        "iat": now(),
        "exp": now() + 300,
    })
}

pub fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

/// Signed with `HS256_SECRET`, which `hs256_settings` verifies.
pub fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(HS256_SECRET.as_bytes()),
        claims,
    )
}

pub fn rs256(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_der(&der("test-only-rsa-private.pem"));
    sign(Algorithm::RS256, kid, &key, claims)
}

pub fn es256(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_ec_der(&der("test-only-ec-private.pem"));
    sign(Algorithm::ES256, kid, &key, claims)
}

/// What API Gateway sends the REQUEST authorizer for `method resource`, with a bearer token
/// when there is one.
pub fn authorizer_event(
    method: &str,
    resource: &str,
    token: Option<&str>,
) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let mut headers = json!({"Host": "abcdef1234.execute-api.us-east-1.amazonaws.com"});
    if let Some(token) = token {
        headers["Authorization"] = format!("Bearer {token}").into();
    }
    serde_json::from_value(json!({
        "type": "REQUEST",
        "methodArn": format!("{ARN_PREFIX}/{method}{resource}"),
        "resource": resource,
        "path": resource,
        "httpMethod": method,
        "headers": headers,
        "requestContext": {"resourcePath": resource, "httpMethod": method, "stage": "prod"},
    }))
    .expect("authorizer event")
}

pub fn hs256_settings() -> JwtSettings {
    JwtSettings::new(
        ISSUER,
        AUDIENCE,
        JwtAlgorithm::Hs256,
        KeyMaterial::Secret(HS256_SECRET.to_owned()),
    )
}

/// An authorizer on `store` that caches an org's entitlements for `ttl`.
pub fn authorizer(settings: JwtSettings, store: BillingStore, ttl: Duration) -> Authorizer {
    let mut config = AuthConfig::new(settings);
    config.cache_ttl = ttl;
    Authorizer::new(config, store).expect("authorizer")
}
