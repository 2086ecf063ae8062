//! Just paid, never paywalled: the authorizer caches an org's rights, but a refusal is never
//! served from that cache. A "locked" answer cached a moment before the payment was stored must
//! not outlive the payment: the very next request to the paid route is let through, and the
//! catalog reports the module unlocked, with the local stack's cache and with AWS's 30 s.

use std::time::Duration;

use billing::auth::Authorizer;
use billing::domain::ServiceModule::LeadGeneration;
use billing::domain::SubscriptionStatus::Active;
use billing::domain::{OrgId, ServiceModule};
use pss_billing_tests::auth::{authorizer, authorizer_event, claims, hs256, hs256_settings};
use pss_billing_tests::build::{org, subscription};
use pss_billing_tests::{
    EmulatedStack, emulated_stack_caching, fresh_store, store_subscription, unique,
};
use pss_local::http::{blocking, request};

const PAYWALL: &str = r#"{"error":"subscription_required","message":"This feature requires a LeadGeneration subscription.","service":"LeadGeneration"}"#;

async fn effect(auth: &Authorizer, method: &str, path: &str, token: &str) -> (String, String) {
    let answer = auth
        .authorize(&authorizer_event(method, path, Some(token)))
        .await
        .expect("a policy");
    let answer = serde_json::to_value(&answer).unwrap();
    (
        answer["policyDocument"]["Statement"][0]["Effect"]
            .as_str()
            .unwrap()
            .to_owned(),
        answer["context"]["entitlements"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

#[tokio::test]
async fn a_payment_opens_the_route_at_once_despite_a_cached_refusal_with_a_30_second_cache() {
    let store = fresh_store().await;
    let buyer = org("buyer");
    let auth = authorizer(hs256_settings(), store.clone(), Duration::from_secs(30));
    let member = hs256(&claims(&buyer, "Member"));

    // Before paying: refused, and the org's (empty) rights are now cached for 30 s.
    assert_eq!(effect(&auth, "GET", "/api/leads", &member).await.0, "Deny");
    let (_, catalog) = effect(&auth, "GET", "/api/billing/services", &member).await;
    assert_eq!(catalog, "BasicCRM");
    assert!(!auth.cache().is_empty());

    // The webhook (or the eager sync) stores the payment.
    let sub = subscription(&unique("sub_"), &unique("cus_"), Active, &[LeadGeneration]);
    store_subscription(&store, &buyer, &sub).await;

    // The very next request: allowed, and the catalog says unlocked, well inside the TTL.
    assert_eq!(effect(&auth, "GET", "/api/leads", &member).await.0, "Allow");
    let (_, catalog) = effect(&auth, "GET", "/api/billing/services", &member).await;
    assert_eq!(catalog, "BasicCRM,LeadGeneration");
}

async fn get(url: String, token: String) -> (u16, serde_json::Value, String) {
    let reply = blocking(move || {
        let auth = format!("Bearer {token}");
        request("GET", &url, &[("Authorization", auth.as_str())], b"")
    })
    .await;
    let json = serde_json::from_str(&reply.body).unwrap_or_default();
    (reply.status, json, reply.body)
}

fn unlocked_flag(catalog: &serde_json::Value, module: ServiceModule) -> Option<bool> {
    catalog["services"]
        .as_array()?
        .iter()
        .find(|s| s["id"] == module.as_str())?["unlocked"]
        .as_bool()
}

/// Through the local stack's gateway, as the frontend calls it.
async fn through_the_local_stack(cache_seconds: u64) {
    // The emulators stop when dropped: keep them bound for the whole test.
    let EmulatedStack {
        stack,
        moto: _moto,
        localstripe: _localstripe,
        fake: _fake,
    } = emulated_stack_caching(&unique("pss-paywall-"), Vec::new(), cache_seconds).await;
    let api = |path: &str| format!("{}{path}", stack.base_url);
    let member = stack.member_token.clone();
    let demo = OrgId::parse(pss_local::stack::DEMO_ORG).unwrap();

    // The stack's emulators may still be starting: wait for its first answer, the paywall.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = get(api("/api/leads"), member.clone()).await;
        if status == 403 {
            assert_eq!(body, PAYWALL);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, catalog, _) = get(api("/api/billing/services"), member.clone()).await;
    assert_eq!(unlocked_flag(&catalog, LeadGeneration), Some(false));

    let sub = subscription(&unique("sub_"), &unique("cus_"), Active, &[LeadGeneration]);
    store_subscription(&stack.gateway.syncer.store, &demo, &sub).await;

    let (status, _, body) = get(api("/api/leads"), member.clone()).await;
    assert_eq!(status, 200, "cache {cache_seconds} s: {body}");
    let (_, catalog, _) = get(api("/api/billing/services"), member).await;
    assert_eq!(unlocked_flag(&catalog, LeadGeneration), Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_opens_the_route_at_once_in_the_local_stack() {
    through_the_local_stack(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_opens_the_route_at_once_in_the_local_stack_with_a_30_second_cache() {
    through_the_local_stack(30).await;
}
