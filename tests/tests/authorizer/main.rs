//! The Lambda authorizer against moto: the token matrix (tokens), the route matrix (routes),
//! the cost of a check (DynamoDB requests counted by an SDK interceptor) and its cache (cost),
//! the JWKS cache (jwks), and every sample event in events/authorizer and events/leads
//! (samples). What they share is below.

use std::time::Duration;

use billing::auth::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, AuthError, Authorizer, JwtAlgorithm, JwtSettings,
    KeyMaterial,
};
use billing::store::BillingStore;
use jsonwebtoken::{Algorithm, EncodingKey};
use pss_billing_tests::auth::{
    AUDIENCE, ISSUER, authorizer, authorizer_event, der, hs256_settings, sign,
};
use pss_billing_tests::fresh_store;
use serde_json::{Value, json};

mod cost;
mod jwks;
mod routes;
mod samples;
mod tokens;

fn rs256_second_key(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_der(&der("test-only-rsa2-private.pem"));
    sign(Algorithm::RS256, kid, &key, claims)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token as an attacker would hand-craft it: any header, any claims, any signature.
fn forged(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// An authorizer verifying `alg` tokens with `key`, caching entitlements for 30 s.
fn keyed_authorizer(alg: JwtAlgorithm, key: KeyMaterial, store: BillingStore) -> Authorizer {
    authorizer(
        JwtSettings::new(ISSUER, AUDIENCE, alg, key),
        store,
        Duration::from_secs(30),
    )
}

async fn hs_authorizer() -> (Authorizer, BillingStore) {
    let store = fresh_store().await;
    (
        authorizer(hs256_settings(), store.clone(), Duration::from_secs(30)),
        store,
    )
}

/// The outcome of one check, in the terms API Gateway turns into a status.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Allow(Value),
    Deny(Value),
    Unauthorized,
    Failed,
}

async fn check(
    authorizer: &Authorizer,
    event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Outcome {
    match authorizer.authorize(event).await {
        Ok(response) => {
            let json = serde_json::to_value(&response).expect("response JSON");
            let statement = &json["policyDocument"]["Statement"];
            assert_eq!(statement.as_array().map(Vec::len), Some(1), "{json}");
            assert_eq!(
                statement[0]["Resource"],
                json!([event.method_arn.clone().unwrap()]),
                "the policy names exactly the requested method ARN"
            );
            assert_eq!(statement[0]["Action"], json!(["execute-api:Invoke"]));
            match statement[0]["Effect"].as_str() {
                Some("Allow") => Outcome::Allow(json),
                Some("Deny") => Outcome::Deny(json),
                other => panic!("effect {other:?}"),
            }
        }
        Err(AuthError::Unauthorized) => Outcome::Unauthorized,
        Err(AuthError::Failed(_)) => Outcome::Failed,
    }
}

const SUBSCRIPTION: (&str, &str) = ("GET", "/api/billing/subscription");

async fn check_token(authorizer: &Authorizer, token: &str) -> Outcome {
    check_call(authorizer, SUBSCRIPTION.0, SUBSCRIPTION.1, Some(token)).await
}

/// The outcome of a `method` call of `resource` with `token` as bearer (None: no header).
async fn check_call(
    authorizer: &Authorizer,
    method: &str,
    resource: &str,
    token: Option<&str>,
) -> Outcome {
    check(authorizer, &authorizer_event(method, resource, token)).await
}
