use billing::api::{ApiConfig, OriginAllowlist, handlers};
use billing::auth::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, AuthError, Decision, Denial, JwtAlgorithm,
    KeyMaterial, UNAUTHORIZED_BODY, subscription_required_body,
};
use billing::domain::ServiceModule::LeadGeneration;
use billing::domain::{OrgId, Timestamp};
use billing::routes::Role;
use jsonwebtoken::{Algorithm, EncodingKey};
use pss_billing_tests::auth::{claims, hs256, jwt_fixture, now, sign};
use pss_billing_tests::build::org;
use pss_billing_tests::unlock;
use pss_billing_tests::{fresh_store, workspace_root};
use serde_json::Value;

use super::{Outcome, check, hs_authorizer, keyed_authorizer};

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
    let auth = keyed_authorizer(
        JwtAlgorithm::Hs256,
        KeyMaterial::Secret(secret.clone()),
        store.clone(),
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
        offer: Default::default(),
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
