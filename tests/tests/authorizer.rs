//! The Lambda authorizer against moto: the token matrix, the route matrix, the cost of a check
//! (DynamoDB requests counted by an SDK interceptor), the JWKS cache, and every sample event in
//! events/authorizer and events/leads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::error::BoxError;
use billing::api::{ApiConfig, OriginAllowlist, handlers};
use billing::auth::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, AuthConfig, AuthError, Authorizer, Decision,
    Denial, JwtAlgorithm, JwtSettings, KeyMaterial, UNAUTHORIZED_BODY, subscription_required_body,
};
use billing::domain::ServiceModule::*;
use billing::domain::SubscriptionStatus::*;
use billing::domain::*;
use billing::routes::{ROUTES, Role};
use billing::store::BillingStore;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_http::{Body, Response};
use pss_billing_tests::build::{org, subscription};
use pss_billing_tests::{dynamo_client, fresh_store, moto, unique, workspace_root};
use serde_json::{Value, json};

const ISSUER: &str = "https://portal.example.test";
const AUDIENCE: &str = "pss-billing";
const SECRET: &str = "test-only-hs256-secret-for-authorizer-tests-000";
const ARN_PREFIX: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod";

// ---- keys and tokens ------------------------------------------------------------------------

fn jwt_fixture(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join("tests/fixtures/jwt").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn der(name: &str) -> Vec<u8> {
    billing::auth::jwt::pem_to_der(&jwt_fixture(name))
        .expect("PEM fixture")
        .1
}

fn now() -> i64 {
    Timestamp::now().unix()
}

fn claims(org: &OrgId, role: &str) -> Value {
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

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

fn rs256(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_der(&der("test-only-rsa-private.pem"));
    sign(Algorithm::RS256, kid, &key, claims)
}

fn rs256_second_key(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_der(&der("test-only-rsa2-private.pem"));
    sign(Algorithm::RS256, kid, &key, claims)
}

fn es256(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_ec_der(&der("test-only-ec-private.pem"));
    sign(Algorithm::ES256, kid, &key, claims)
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

// ---- events and authorizers -----------------------------------------------------------------

fn event(
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

fn hs_settings() -> JwtSettings {
    JwtSettings::new(
        ISSUER,
        AUDIENCE,
        JwtAlgorithm::Hs256,
        KeyMaterial::Secret(SECRET.to_owned()),
    )
}

fn authorizer(settings: JwtSettings, store: BillingStore, ttl: Duration) -> Authorizer {
    let mut config = AuthConfig::new(settings);
    config.cache_ttl = ttl;
    Authorizer::new(config, store).expect("authorizer")
}

async fn hs_authorizer() -> (Authorizer, BillingStore) {
    let store = fresh_store().await;
    (
        authorizer(hs_settings(), store.clone(), Duration::from_secs(30)),
        store,
    )
}

async fn unlock(store: &BillingStore, org: &OrgId, modules: &[ServiceModule]) {
    let sub = subscription(&unique("sub_"), &unique("cus_"), Active, modules);
    store
        .apply_subscription(org, &sub, FetchTime::now(), None, GracePolicy::default())
        .await
        .expect("store subscription");
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
    check(
        authorizer,
        &event(SUBSCRIPTION.0, SUBSCRIPTION.1, Some(token)),
    )
    .await
}

// ---- token matrix -----------------------------------------------------------------------------

#[tokio::test]
async fn token_matrix_hs256() {
    let (auth, _store) = hs_authorizer().await;
    let org = org("org");
    let good = claims(&org, "Member");
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };

    let valid = hs256(&good);
    match check_token(&auth, &valid).await {
        Outcome::Allow(json) => {
            assert_eq!(json["principalId"], "user_1");
            assert_eq!(json["context"]["orgId"], org.as_str());
            assert_eq!(json["context"]["userId"], "user_1");
            assert_eq!(json["context"]["role"], "Member");
            assert_eq!(json["context"]["entitlements"], "BasicCRM");
        }
        other => panic!("valid token: {other:?}"),
    }

    // Inside the 30 s leeway both ways: accepted.
    let just_expired = hs256(&with(json!({"exp": now() - 10})));
    assert!(matches!(
        check_token(&auth, &just_expired).await,
        Outcome::Allow(_)
    ));
    let almost_valid = hs256(&with(json!({"nbf": now() + 10})));
    assert!(matches!(
        check_token(&auth, &almost_valid).await,
        Outcome::Allow(_)
    ));

    let other_secret = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(b"another-secret-of-sufficient-length-0000"),
        &good,
    );
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        parts[1] = b64(with(json!({"org_id": "org_victim"})).to_string().as_bytes());
        parts.join(".")
    };
    let alg_none = forged(&json!({"alg": "none", "typ": "JWT"}), &good, "");
    let alg_none_upper = forged(&json!({"alg": "None", "typ": "JWT"}), &good, "");
    let hs384 = sign(
        Algorithm::HS384,
        None,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        &good,
    );
    let refused: Vec<(&str, String)> = vec![
        ("expired", hs256(&with(json!({"exp": now() - 120})))),
        ("not yet valid", hs256(&with(json!({"nbf": now() + 120})))),
        (
            "wrong issuer",
            hs256(&with(json!({"iss": "https://evil.example"}))),
        ),
        (
            "wrong audience",
            hs256(&with(json!({"aud": "another-api"}))),
        ),
        ("no issuer", hs256(&with(json!({"iss": null})))),
        ("no audience", hs256(&with(json!({"aud": null})))),
        ("no exp", hs256(&with(json!({"exp": null})))),
        ("exp not a number", hs256(&with(json!({"exp": "tomorrow"})))),
        ("no org claim", hs256(&with(json!({"org_id": null})))),
        ("empty org claim", hs256(&with(json!({"org_id": ""})))),
        (
            "org claim forging a key",
            hs256(&with(json!({"org_id": "ORG#x"}))),
        ),
        ("no user claim", hs256(&with(json!({"sub": null})))),
        ("bad signature", other_secret),
        ("tampered payload", tampered),
        ("alg none", alg_none),
        ("alg None", alg_none_upper),
        ("other HMAC algorithm", hs384),
        ("garbage", "not.a.token".to_owned()),
        ("two parts", "abc.def".to_owned()),
        ("oversized", "a".repeat(10_000)),
    ];
    for (case, token) in refused {
        assert_eq!(
            check_token(&auth, &token).await,
            Outcome::Unauthorized,
            "{case}"
        );
    }

    // No header, or not a bearer header: 401 as well.
    let no_token = event(SUBSCRIPTION.0, SUBSCRIPTION.1, None);
    assert_eq!(check(&auth, &no_token).await, Outcome::Unauthorized);
    let mut basic = event(SUBSCRIPTION.0, SUBSCRIPTION.1, None);
    basic
        .headers
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_eq!(check(&auth, &basic).await, Outcome::Unauthorized);
}

#[tokio::test]
async fn token_matrix_rs256_and_es256_with_a_pinned_public_key() {
    let store = fresh_store().await;
    let org = org("org");
    let good = claims(&org, "Owner");
    let rsa_pem = jwt_fixture("test-only-rsa-public.pem");
    let rs = authorizer(
        JwtSettings::new(
            ISSUER,
            AUDIENCE,
            JwtAlgorithm::Rs256,
            KeyMaterial::PublicKeyPem(rsa_pem.clone()),
        ),
        store.clone(),
        Duration::from_secs(30),
    );
    assert!(matches!(
        check_token(&rs, &rs256(None, &good)).await,
        Outcome::Allow(_)
    ));

    // HS/RS confusion: HMAC "signed" with the public key, which the attacker has.
    let with_pem = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(rsa_pem.as_bytes()),
        &good,
    );
    let with_der = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(&der("test-only-rsa-public.pem")),
        &good,
    );
    for (case, token) in [
        ("HS256 keyed with the RSA public PEM", with_pem),
        ("HS256 keyed with the RSA public DER", with_der),
        ("another RSA key", rs256_second_key(None, &good)),
        ("ES256 token", es256(None, &good)),
        ("alg none", forged(&json!({"alg": "none"}), &good, "")),
    ] {
        assert_eq!(
            check_token(&rs, &token).await,
            Outcome::Unauthorized,
            "{case}"
        );
    }

    let es = authorizer(
        JwtSettings::new(
            ISSUER,
            AUDIENCE,
            JwtAlgorithm::Es256,
            KeyMaterial::PublicKeyPem(jwt_fixture("test-only-ec-public.pem")),
        ),
        store,
        Duration::from_secs(30),
    );
    assert!(matches!(
        check_token(&es, &es256(None, &good)).await,
        Outcome::Allow(_)
    ));
    assert_eq!(
        check_token(&es, &rs256(None, &good)).await,
        Outcome::Unauthorized
    );
    let expired = {
        let mut c = good.clone();
        c["exp"] = (now() - 3_600).into();
        c
    };
    assert_eq!(
        check_token(&es, &es256(None, &expired)).await,
        Outcome::Unauthorized
    );
}

#[tokio::test]
async fn custom_claim_names_and_leeway_are_honoured() {
    let store = fresh_store().await;
    let mut settings = hs_settings();
    settings.claims.org = "tenant".to_owned();
    settings.claims.user = "uid".to_owned();
    settings.claims.role = "crm_role".to_owned();
    settings.leeway_seconds = 0;
    let auth = authorizer(settings, store, Duration::from_secs(30));
    let token = hs256(&json!({
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60,
        "tenant": "org_custom", "uid": "u_custom", "crm_role": "admin",
        "org_id": "org_ignored", "sub": "ignored",
    }));
    match check(&auth, &event("POST", "/api/billing/checkout", Some(&token))).await {
        Outcome::Allow(json) => {
            assert_eq!(json["context"]["orgId"], "org_custom");
            assert_eq!(json["context"]["userId"], "u_custom");
            assert_eq!(json["context"]["role"], "Admin");
        }
        other => panic!("{other:?}"),
    }
    // Without leeway, one second past exp is expired.
    let late = hs256(&json!({
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() - 2, "tenant": "o", "uid": "u",
    }));
    assert_eq!(check_token(&auth, &late).await, Outcome::Unauthorized);
}

// ---- route matrix -----------------------------------------------------------------------------

#[tokio::test]
async fn route_matrix() {
    let (auth, store) = hs_authorizer().await;
    let paying = org("paying");
    let free = org("free");
    unlock(&store, &paying, &[LeadGeneration]).await;
    let member = hs256(&claims(&paying, "Member"));
    let admin = hs256(&claims(&paying, "Admin"));
    let owner = hs256(&claims(&paying, "Owner"));
    let free_member = hs256(&claims(&free, "Member"));

    // Public route: open without a token, and with a broken one.
    for token in [None, Some("garbage"), Some(free_member.as_str())] {
        match check(&auth, &event("GET", "/api/billing/services", token)).await {
            Outcome::Allow(json) => {
                let expected_org = if token == Some(free_member.as_str()) {
                    free.as_str()
                } else {
                    ""
                };
                assert_eq!(json["context"]["orgId"], expected_org, "{token:?}");
                // A verified caller gets the org's modules (the catalog's `unlocked` flags).
                let expected_modules = if token == Some(free_member.as_str()) {
                    "BasicCRM"
                } else {
                    ""
                };
                assert_eq!(json["context"]["entitlements"], expected_modules);
                if token.is_none() {
                    assert_eq!(json["principalId"], "anonymous");
                }
            }
            other => panic!("public {token:?}: {other:?}"),
        }
    }

    // Paid and unlocked.
    match check(&auth, &event("GET", "/api/leads", Some(&member))).await {
        Outcome::Allow(json) => {
            assert_eq!(json["context"]["orgId"], paying.as_str());
            assert_eq!(json["context"]["entitlements"], "BasicCRM,LeadGeneration");
        }
        other => panic!("unlocked: {other:?}"),
    }

    // Paid and locked: the exact 403 body, through the context the gateway response reads.
    match check(&auth, &event("GET", "/api/leads", Some(&free_member))).await {
        Outcome::Deny(json) => {
            let expected = r#"{"error":"subscription_required","message":"This feature requires a LeadGeneration subscription.","service":"LeadGeneration"}"#;
            assert_eq!(json["context"]["body"], expected);
            assert_eq!(subscription_required_body(LeadGeneration), expected);
            assert_eq!(json["context"]["error"], "subscription_required");
            assert_eq!(json["context"]["service"], "LeadGeneration");
            assert_eq!(json["principalId"], "user_1");
        }
        other => panic!("locked: {other:?}"),
    }

    // Role-gated: Member refused, Admin and Owner let through.
    match check(
        &auth,
        &event("POST", "/api/billing/checkout", Some(&member)),
    )
    .await
    {
        Outcome::Deny(json) => {
            assert_eq!(
                json["context"]["body"],
                r#"{"error":"forbidden","message":"This action requires the Admin or Owner role."}"#
            );
            assert!(json["context"].get("service").is_none());
        }
        other => panic!("member on checkout: {other:?}"),
    }
    for token in [&admin, &owner] {
        assert!(matches!(
            check(&auth, &event("POST", "/api/billing/checkout", Some(token))).await,
            Outcome::Allow(_)
        ));
        assert!(matches!(
            check(&auth, &event("POST", "/api/billing/portal", Some(token))).await,
            Outcome::Allow(_)
        ));
    }

    // Unknown route: deny, whatever the token (and without asking for one).
    for (method, resource, token) in [
        ("GET", "/api/admin/secrets", Some(owner.as_str())),
        ("DELETE", "/api/leads", Some(owner.as_str())),
        ("GET", "/api/leads/", None),
    ] {
        match check(&auth, &event(method, resource, token)).await {
            Outcome::Deny(json) => assert_eq!(
                json["context"]["body"],
                r#"{"error":"forbidden","message":"This route is not available."}"#
            ),
            other => panic!("{method} {resource}: {other:?}"),
        }
    }

    // Every authenticated route of the table: a valid Owner of a paying org passes, no token
    // gets 401. Keeps the matrix honest as routes are added.
    for route in ROUTES.iter().filter(|r| !r.is_public()) {
        assert!(
            matches!(
                check(&auth, &event(route.method, route.path, Some(&owner))).await,
                Outcome::Allow(_)
            ),
            "{} {}",
            route.method,
            route.path
        );
        assert_eq!(
            check(&auth, &event(route.method, route.path, None)).await,
            Outcome::Unauthorized
        );
    }
}

#[tokio::test]
async fn a_lapsed_grace_period_locks_at_decision_time() {
    let (auth, store) = hs_authorizer().await;
    let org = org("late");
    let sub = subscription("sub_late", "cus_late", PastDue, &[LeadGeneration]);
    // First seen past due eight days ago: the seven-day grace ended yesterday.
    let eight_days_ago = FetchTime::from_micros((now() - 8 * 86_400) * 1_000_000);
    store
        .apply_subscription(&org, &sub, eight_days_ago, None, GracePolicy::days(7))
        .await
        .unwrap();
    // The stored item still holds the grant (with an end); the clock decides.
    let stored = store.entitlements(&org, true).await.unwrap().unwrap();
    assert!(stored.set.grants().contains_key(&LeadGeneration));
    let token = hs256(&claims(&org, "Member"));
    assert!(matches!(
        check(&auth, &event("GET", "/api/leads", Some(&token))).await,
        Outcome::Deny(_)
    ));
}

#[tokio::test]
async fn missing_method_arn_fails_closed() {
    let (auth, _store) = hs_authorizer().await;
    let mut ev = event("GET", "/api/billing/services", None);
    ev.method_arn = None;
    assert_eq!(check(&auth, &ev).await, Outcome::Failed);
}

// ---- cost ---------------------------------------------------------------------------------------

/// Every request the DynamoDB client sends: (operation, consistent read).
#[derive(Debug, Clone, Default)]
struct Requests(Arc<Mutex<Vec<(String, bool)>>>);

impl Requests {
    fn take(&self) -> Vec<(String, bool)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "count-dynamodb-requests"
    }

    // Per attempt, after signing: exactly what goes on the wire, retries included.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .unwrap_or("")
            .trim_start_matches("DynamoDB_20120810.")
            .to_owned();
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let consistent = body.contains(r#""ConsistentRead":true"#);
        self.0.lock().unwrap().push((operation, consistent));
        Ok(())
    }
}

/// A store on a fresh moto table whose client records every request.
async fn counted_store() -> (BillingStore, BillingStore, Requests) {
    let plain = fresh_store().await;
    let requests = Requests::default();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto().url)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .interceptor(requests.clone())
        .build();
    let counted = BillingStore::new(aws_sdk_dynamodb::Client::from_conf(config), plain.table());
    (counted, plain, requests)
}

fn get_item() -> (String, bool) {
    ("GetItem".to_owned(), true)
}

#[tokio::test]
async fn one_consistent_get_item_per_uncached_check_and_none_when_cached() {
    let (counted, plain, requests) = counted_store().await;
    let ttl = Duration::from_secs(1);
    let auth = authorizer(hs_settings(), counted, ttl);
    let paying = org("paying");
    let other = org("other");
    unlock(&plain, &paying, &[LeadGeneration]).await;
    let member = hs256(&claims(&paying, "Member"));
    let leads = event("GET", "/api/leads", Some(&member));
    requests.take();

    // Uncached: exactly one request, a strongly consistent GetItem.
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert_eq!(requests.take(), vec![get_item()]);

    // Cached: none, for this route and any other route of the same org.
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert!(matches!(
        check(&auth, &event("GET", "/api/billing/invoices", Some(&member))).await,
        Outcome::Allow(_)
    ));
    assert_eq!(requests.take(), vec![]);

    // Another org is its own cache entry (an org without an item is cached too).
    let other_member = hs256(&claims(&other, "Member"));
    let other_leads = event("GET", "/api/leads", Some(&other_member));
    assert!(matches!(check(&auth, &other_leads).await, Outcome::Deny(_)));
    assert!(matches!(check(&auth, &other_leads).await, Outcome::Deny(_)));
    assert_eq!(requests.take(), vec![get_item()]);

    // Checks that never need the org's rights cost nothing.
    let _ = check(&auth, &event("GET", "/api/billing/services", Some(&member))).await;
    let _ = check(
        &auth,
        &event("POST", "/api/billing/checkout", Some(&member)),
    )
    .await;
    let _ = check(&auth, &event("GET", "/api/leads", None)).await;
    let _ = check(&auth, &event("GET", "/api/leads", Some("garbage"))).await;
    let _ = check(&auth, &event("GET", "/api/nowhere", Some(&member))).await;
    assert_eq!(requests.take(), vec![]);

    // After the TTL the next check reads again, once.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert_eq!(requests.take(), vec![get_item()]);
}

#[tokio::test]
async fn cache_staleness_is_bounded_by_the_ttl() {
    let (counted, plain, _requests) = counted_store().await;
    let ttl = Duration::from_secs(1);
    let auth = authorizer(hs_settings(), counted, ttl);
    let org = org("canceling");
    let sub = subscription("sub_c", "cus_c", Active, &[LeadGeneration]);
    plain
        .apply_subscription(
            &org,
            &sub,
            FetchTime::from_micros(1),
            None,
            GracePolicy::default(),
        )
        .await
        .unwrap();
    let leads = event("GET", "/api/leads", Some(&hs256(&claims(&org, "Member"))));
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));

    // The cancellation webhook writes; this container still has the org cached...
    let mut canceled = sub.clone();
    canceled.status = Canceled;
    plain
        .apply_subscription(
            &org,
            &canceled,
            FetchTime::from_micros(2),
            None,
            GracePolicy::default(),
        )
        .await
        .unwrap();
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    // ...for at most the TTL; a container without the entry sees it at once (consistent read).
    let cold = authorizer(hs_settings(), plain.clone(), ttl);
    assert!(matches!(check(&cold, &leads).await, Outcome::Deny(_)));
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert!(matches!(check(&auth, &leads).await, Outcome::Deny(_)));
}

#[tokio::test]
async fn dynamodb_failure_fails_closed() {
    // A table that does not exist: every read fails.
    let store = BillingStore::new(dynamo_client(&moto().url), unique("missing-table-"));
    let auth = authorizer(hs_settings(), store, Duration::from_secs(30));
    let paying = org("paying");
    for (method, resource) in [("GET", "/api/leads"), ("GET", "/api/billing/subscription")] {
        let ev = event(method, resource, Some(&hs256(&claims(&paying, "Owner"))));
        assert_eq!(check(&auth, &ev).await, Outcome::Failed, "{resource}");
    }
    // The failure is not cached: nothing was learned.
    assert!(auth.cache().is_empty());
    // Routes that need no read are unaffected.
    assert!(matches!(
        check(&auth, &event("GET", "/api/billing/services", None)).await,
        Outcome::Allow(_)
    ));
}

// ---- JWKS ---------------------------------------------------------------------------------------

async fn serve_jwks(body: String) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let base = pss_billing_tests::server::serve(move |_request| {
        counter.fetch_add(1, Ordering::SeqCst);
        let body = body.clone();
        async move {
            let mut response = Response::new(Body::Text(body));
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            response
        }
    })
    .await;
    (format!("{base}/.well-known/jwks.json"), hits)
}

#[tokio::test]
async fn rs256_and_es256_keys_come_from_the_jwks_fetched_once() {
    let store = fresh_store().await;
    let (url, hits) = serve_jwks(jwt_fixture("test-only-jwks.json")).await;
    let rs = authorizer(
        JwtSettings::new(
            ISSUER,
            AUDIENCE,
            JwtAlgorithm::Rs256,
            KeyMaterial::JwksUrl(url.clone()),
        ),
        store.clone(),
        Duration::from_secs(30),
    );
    let org = org("jwks");
    let good = claims(&org, "Member");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "fetched lazily, on the first token"
    );
    for _ in 0..5 {
        assert!(matches!(
            check_token(&rs, &rs256(Some("test-rsa-1"), &good)).await,
            Outcome::Allow(_)
        ));
    }
    // The second key of the set verifies too, selected by kid.
    assert!(matches!(
        check_token(&rs, &rs256_second_key(Some("test-rsa-2"), &good)).await,
        Outcome::Allow(_)
    ));
    for (case, token) in [
        (
            "kid naming the other key",
            rs256_second_key(Some("test-rsa-1"), &good),
        ),
        ("unknown kid", rs256(Some("rotated-away"), &good)),
        ("no kid with several keys", rs256(None, &good)),
        ("EC key's kid", es256(Some("test-ec-1"), &good)),
        (
            "HS256 keyed with the JWK modulus",
            sign(
                Algorithm::HS256,
                Some("test-rsa-1"),
                &EncodingKey::from_secret(b"zEihnngnPg5v9TzVq"),
                &good,
            ),
        ),
    ] {
        assert_eq!(
            check_token(&rs, &token).await,
            Outcome::Unauthorized,
            "{case}"
        );
    }
    // One fetch in all: an unknown kid right after a fetch does not fetch again.
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(rs.verifier().jwks_fetches(), 1);

    let es = authorizer(
        JwtSettings::new(
            ISSUER,
            AUDIENCE,
            JwtAlgorithm::Es256,
            KeyMaterial::JwksUrl(url),
        ),
        store,
        Duration::from_secs(30),
    );
    assert!(matches!(
        check_token(&es, &es256(Some("test-ec-1"), &good)).await,
        Outcome::Allow(_)
    ));
    assert_eq!(
        check_token(&es, &rs256(Some("test-rsa-1"), &good)).await,
        Outcome::Unauthorized
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unreachable_jwks_fails_closed_not_unauthorized() {
    let store = fresh_store().await;
    let port = pss_billing_tests::free_port();
    let url = format!("http://127.0.0.1:{port}/jwks.json");
    let auth = authorizer(
        JwtSettings::new(
            ISSUER,
            AUDIENCE,
            JwtAlgorithm::Rs256,
            KeyMaterial::JwksUrl(url),
        ),
        store,
        Duration::from_secs(30),
    );
    let token = rs256(Some("test-rsa-1"), &claims(&org("o"), "Member"));
    assert_eq!(check_token(&auth, &token).await, Outcome::Failed);
    // A public route stays open even so.
    let public = event("GET", "/api/billing/services", Some(&token));
    assert!(matches!(check(&auth, &public).await, Outcome::Allow(_)));
}

// ---- the local gateway's view ---------------------------------------------------------------

#[tokio::test]
async fn decide_gives_the_local_gateway_the_same_answers() {
    let (auth, store) = hs_authorizer().await;
    let paying = org("paying");
    unlock(&store, &paying, &[LeadGeneration]).await;
    let bearer = format!("Bearer {}", hs256(&claims(&paying, "Member")));
    let decision = auth
        .decide("GET", "/api/leads", Some(&bearer))
        .await
        .unwrap();
    assert!(decision.is_allow());
    assert_eq!(decision.caller().unwrap().role, Role::Member);
    let denied = auth
        .decide("POST", "/api/billing/portal", Some(&bearer))
        .await
        .unwrap();
    assert_eq!(
        denied,
        Decision::Deny {
            caller: decision.caller().cloned(),
            denial: Denial::Role {
                required: Role::Admin
            }
        }
    );
    assert_eq!(
        auth.decide("GET", "/api/leads", None).await,
        Err(AuthError::Unauthorized)
    );
    assert_eq!(
        UNAUTHORIZED_BODY,
        r#"{"error":"unauthorized","message":"A valid bearer token is required."}"#
    );
}

// ---- sample events ------------------------------------------------------------------------------

fn sample_files(function: &str) -> Vec<(String, String)> {
    let dir = workspace_root().join("events").join(function);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no sample events in events/{function}");
    files
}

/// The sample tokens are signed with tests/fixtures/jwt/test-only-hs256-secret.txt and have
/// long expired (so they can never be used against anything). To feed them through the
/// handler, this re-signs the same claims with a fresh `exp`, except in `unauthorized.json`,
/// whose point is the expired token.
fn refresh_sample_token(event: &mut ApiGatewayCustomAuthorizerRequestTypeRequest, secret: &str) {
    let Some(value) = event.headers.get("authorization") else {
        return;
    };
    let token = value
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    let mut claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
    claims["nbf"] = now().into();
    claims["iat"] = now().into();
    claims["exp"] = (now() + 300).into();
    let fresh = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(secret.as_bytes()),
        &claims,
    );
    event
        .headers
        .insert("authorization", format!("Bearer {fresh}").parse().unwrap());
}

#[tokio::test]
async fn every_sample_authorizer_event_gets_its_documented_answer() {
    let secret = jwt_fixture("test-only-hs256-secret.txt").trim().to_owned();
    let store = fresh_store().await;
    let auth = authorizer(
        JwtSettings::new(
            "https://portal.example.test",
            "pss-billing",
            JwtAlgorithm::Hs256,
            KeyMaterial::Secret(secret.clone()),
        ),
        store.clone(),
        Duration::from_secs(30),
    );
    unlock(
        &store,
        &OrgId::parse("org_sample_unlocked").unwrap(),
        &[LeadGeneration],
    )
    .await;
    for (name, text) in sample_files("authorizer") {
        let mut ev: ApiGatewayCustomAuthorizerRequestTypeRequest =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name != "unauthorized" {
            // As committed, the token is expired: 401 on any authenticated route.
            if ev.headers.contains_key("authorization") {
                assert_eq!(
                    check(&auth, &ev).await,
                    Outcome::Unauthorized,
                    "{name} as committed"
                );
            }
            refresh_sample_token(&mut ev, &secret);
        }
        let outcome = check(&auth, &ev).await;
        match name.as_str() {
            "allow-unlocked" => match outcome {
                Outcome::Allow(json) => {
                    assert_eq!(json["context"]["orgId"], "org_sample_unlocked");
                    assert_eq!(json["context"]["entitlements"], "BasicCRM,LeadGeneration");
                }
                other => panic!("{name}: {other:?}"),
            },
            "deny-locked" => match outcome {
                Outcome::Deny(json) => assert_eq!(
                    json["context"]["body"],
                    subscription_required_body(LeadGeneration)
                ),
                other => panic!("{name}: {other:?}"),
            },
            "deny-role" => match outcome {
                Outcome::Deny(json) => assert_eq!(json["context"]["error"], "forbidden"),
                other => panic!("{name}: {other:?}"),
            },
            "unauthorized" => assert_eq!(outcome, Outcome::Unauthorized, "{name}"),
            "public" => match outcome {
                Outcome::Allow(json) => assert_eq!(json["context"]["orgId"], ""),
                other => panic!("{name}: {other:?}"),
            },
            other => panic!("events/authorizer/{other}.json has no expected outcome in this test"),
        }
    }
}

#[tokio::test]
async fn every_sample_leads_event_gets_its_documented_answer() {
    let store = fresh_store().await;
    let org = OrgId::parse("org_sample_unlocked").unwrap();
    store
        .put_lead(
            &org,
            &billing::domain::Lead {
                id: "lead_sample_1".into(),
                name: Some("Sample Lead".into()),
                email: None,
                company: Some("Example Co".into()),
                source: Some("web_form".into()),
                status: Some("new".into()),
                score: Some(70),
                created_at: Some(Timestamp::from_unix(1_767_225_600)),
            },
        )
        .await
        .unwrap();
    let config = ApiConfig {
        origins: OriginAllowlist::parse(""),
        sync_per_minute: 5,
    };
    for (name, text) in sample_files("leads") {
        let request =
            lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let response = handlers::leads(&store, &config, &request).await;
        let status = response.status().as_u16();
        let body: Value =
            serde_json::from_slice(billing::http::body_bytes(response.body())).unwrap();
        match name.as_str() {
            "list" => {
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["leads"][0]["id"], "lead_sample_1");
            }
            "no-authorizer-context" => {
                assert_eq!(status, 401);
                assert_eq!(body.to_string(), UNAUTHORIZED_BODY);
            }
            other => panic!("events/leads/{other}.json has no expected outcome in this test"),
        }
    }
}

// ---- drift between the route table and template.yaml ------------------------------------------

/// Every API event in template.yaml must be a route of the table, served by the function the
/// table names, and every route whose function is in the template must have its event. Public
/// routes may skip the authorizer; authenticated ones must not.
#[test]
fn template_api_events_match_the_route_table() {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let template: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let mut declared: Vec<(String, String, String)> = Vec::new();
    let mut functions_in_template: Vec<String> = Vec::new();
    for resource in resources.values() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        functions_in_template.push(binary.clone());
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            if event["Type"].as_str() != Some("Api") {
                continue;
            }
            let props = &event["Properties"];
            let method = props["Method"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let path = props["Path"].as_str().unwrap_or_default().to_owned();
            let route = billing::routes::find(&method, &path)
                .unwrap_or_else(|| panic!("{method} {path} in template.yaml is not in ROUTES"));
            assert_eq!(route.function, binary, "{method} {path}");
            if !route.is_public() {
                assert_ne!(
                    props["Auth"]["Authorizer"].as_str(),
                    Some("NONE"),
                    "{method} {path} needs the authorizer"
                );
            }
            declared.push((method, path, binary.clone()));
        }
    }
    for route in ROUTES {
        if functions_in_template.iter().any(|f| f == route.function) {
            assert!(
                declared
                    .iter()
                    .any(|(m, p, _)| m == route.method && p == route.path),
                "{} {} is served by {} but has no Api event in template.yaml",
                route.method,
                route.path,
                route.function
            );
        }
    }
}

/// The gateway responses API Gateway answers with when the authorizer refuses or fails must be
/// the bodies the local gateway reproduces from `billing::auth`.
#[test]
fn template_gateway_responses_are_the_authorizer_bodies() {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let template: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let apis: Vec<&serde_yaml::Value> = template["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Api"))
        .collect();
    for api in apis {
        let responses = &api["Properties"]["GatewayResponses"];
        let body = |name: &str| {
            responses[name]["ResponseTemplates"]["application/json"]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} gateway response"))
                .to_owned()
        };
        let status = |name: &str| responses[name]["StatusCode"].as_str().map(str::to_owned);
        assert_eq!(body("UNAUTHORIZED"), UNAUTHORIZED_BODY);
        assert_eq!(status("UNAUTHORIZED").as_deref(), Some("401"));
        assert_eq!(body("ACCESS_DENIED"), "$context.authorizer.body");
        assert_eq!(status("ACCESS_DENIED").as_deref(), Some("403"));
        assert_eq!(
            body("AUTHORIZER_FAILURE"),
            billing::auth::AUTHORIZER_FAILURE_BODY
        );
        assert_eq!(status("AUTHORIZER_FAILURE").as_deref(), Some("503"));
        // An authorizer Lambda that errors with anything but "Unauthorized" is reported as an
        // authorizer configuration error; when declared, it must give the same answer.
        if !responses["AUTHORIZER_CONFIGURATION_ERROR"].is_null() {
            assert_eq!(
                body("AUTHORIZER_CONFIGURATION_ERROR"),
                billing::auth::AUTHORIZER_FAILURE_BODY
            );
            assert_eq!(
                status("AUTHORIZER_CONFIGURATION_ERROR").as_deref(),
                Some("503")
            );
        }
    }
}
