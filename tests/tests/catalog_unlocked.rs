//! The public catalog's `unlocked` flags, through the real authorizer: its Lambda answer's
//! context is put into a proxy event the way API Gateway does (`requestContext.authorizer` =
//! the context plus `principalId`), parsed by lambda_http, and handed to the billing-services
//! function. No hand-made context: if the authorizer stops reading entitlements on public routes,
//! a paying org sees its modules locked and this fails.

use std::time::Duration;

use billing::auth::Authorizer;
use billing::domain::ServiceModule::*;
use billing::domain::SubscriptionStatus::Active;
use billing::domain::*;
use billing::store::BillingStore;
use pss_billing_tests::auth::{authorizer_event, claims, hs256, hs256_settings};
use pss_billing_tests::build::{org, subscription};
use pss_billing_tests::{dynamo_client, fresh_store, moto, store_subscription, unique};
use serde_json::{Value, json};

const PATH: &str = "/api/billing/services";

fn token(org: &OrgId, role: &str) -> String {
    hs256(&claims(org, role))
}

fn authorizer(store: BillingStore) -> Authorizer {
    pss_billing_tests::auth::authorizer(hs256_settings(), store, Duration::from_secs(30))
}

/// Authorizes, then calls the function with the proxy event API Gateway would build from the
/// authorizer's answer. Returns the catalog body.
async fn catalog(authorizer: &Authorizer, token: Option<&str>) -> Value {
    let answer = authorizer
        .authorize(&authorizer_event("GET", PATH, token))
        .await
        .expect("public route: always a policy");
    let answer = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        answer["policyDocument"]["Statement"][0]["Effect"], "Allow",
        "{answer}"
    );
    let mut context = answer["context"].clone();
    context["principalId"] = answer["principalId"].clone();
    context["integrationLatency"] = json!(4);
    let event = json!({
        "resource": PATH, "path": PATH, "httpMethod": "GET",
        "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {}, "queryStringParameters": null,
        "multiValueQueryStringParameters": null, "pathParameters": null, "stageVariables": null,
        "requestContext": {"accountId": "123456789012", "apiId": "abc123", "stage": "prod",
            "requestId": "req-1", "httpMethod": "GET", "path": format!("/prod{PATH}"),
            "resourcePath": PATH, "protocol": "HTTP/1.1", "identity": {"sourceIp": "203.0.113.1"},
            "authorizer": context},
        "body": null, "isBase64Encoded": false,
    });
    let request = lambda_http::request::from_str(&event.to_string()).expect("a proxy event");
    let config = billing::api::ApiConfig {
        origins: billing::api::OriginAllowlist::parse(""),
        sync_per_minute: 5,
        offer: Default::default(),
    };
    let response = billing::api::handlers::billing_services(&config, &request);
    assert_eq!(response.status(), 200);
    serde_json::from_slice(billing::http::body_bytes(response.body())).unwrap()
}

fn flags(body: &Value) -> Vec<(String, Option<bool>)> {
    body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["unlocked"].as_bool(),
            )
        })
        .collect()
}

fn expected(unlocked: &[ServiceModule]) -> Vec<(String, Option<bool>)> {
    ServiceModule::ALL
        .into_iter()
        .map(|m| {
            (
                m.as_str().to_owned(),
                Some(m.is_free() || unlocked.contains(&m)),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_paying_org_sees_its_modules_unlocked_behind_the_real_authorizer() {
    let store = fresh_store().await;
    let paying = org("paying");
    let free = org("free");
    let sub = subscription(
        &unique("sub_"),
        &unique("cus_"),
        Active,
        &[LeadGeneration, SocialInbox],
    );
    store_subscription(&store, &paying, &sub).await;
    let auth = authorizer(store);

    // Every role of the paying org: its two modules and BasicCRM, nothing else.
    for role in ["Owner", "Admin", "Member"] {
        let body = catalog(&auth, Some(&token(&paying, role))).await;
        assert_eq!(
            flags(&body),
            expected(&[LeadGeneration, SocialInbox]),
            "{role}"
        );
    }
    // Another org with nothing: only BasicCRM.
    let body = catalog(&auth, Some(&token(&free, "Owner"))).await;
    assert_eq!(flags(&body), expected(&[]));
    // Anonymous and broken tokens: the catalog says nothing about unlocking.
    for token in [None, Some("not-a-jwt")] {
        let body = catalog(&auth, token).await;
        assert!(
            flags(&body).iter().all(|(_, unlocked)| unlocked.is_none()),
            "{token:?}: {body}"
        );
    }
}

#[tokio::test]
async fn an_unreadable_table_leaves_the_catalog_open_without_flags() {
    // A table that does not exist: the entitlements read fails.
    let store = BillingStore::new(dynamo_client(&moto().url), unique("missing-"));
    let auth = authorizer(store);
    let body = catalog(&auth, Some(&token(&org("any"), "Owner"))).await;
    assert_eq!(body["services"].as_array().unwrap().len(), 7);
    assert!(
        flags(&body).iter().all(|(_, unlocked)| unlocked.is_none()),
        "{body}"
    );
}
