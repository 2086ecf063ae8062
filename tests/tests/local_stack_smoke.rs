//! Drives the local stack the way the frontend would: services, checkout, a subscription made
//! in localstripe, its webhook, the paywall flipping open, cancel, the paywall closing again.

use std::time::{Duration, Instant};

use pss_billing_tests::{EmulatedStack, emulated_stack, localstripe_subscribe, stripe_call};
use pss_local::http::{Reply, blocking, request};
use pss_local::stack::{self};
use serde_json::json;

async fn call(
    method: &'static str,
    url: String,
    token: Option<String>,
    body: Option<serde_json::Value>,
) -> Reply {
    blocking(move || {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = auth.as_deref() {
            headers.push(("Authorization", auth));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(method, &url, &headers, body.as_bytes())
    })
    .await
}

async fn until_status(url: &str, token: &str, status: u16) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = call("GET", url.to_owned(), Some(token.to_owned()), None).await;
        if reply.status == status {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "{url} stayed {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontend_flow_through_the_local_stack() {
    let EmulatedStack {
        stack,
        moto: _moto,
        localstripe,
        fake,
    } = emulated_stack("pss-billing-smoke", Vec::new()).await;
    let api = |path: &str| format!("{}{path}", stack.base_url);
    let (owner, member) = (stack.owner_token.clone(), stack.member_token.clone());

    let services = call("GET", api("/api/billing/services"), None, None).await;
    assert_eq!(services.status, 200);
    assert_eq!(services.json()["services"].as_array().unwrap().len(), 7);

    let locked = until_status(&api("/api/leads"), &member, 403).await;
    let paywall = r#"{"error":"subscription_required","message":"This feature requires a LeadGeneration subscription.","service":"LeadGeneration"}"#;
    assert_eq!(locked.body, paywall);

    let checkout = call(
        "POST",
        api("/api/billing/checkout"),
        Some(owner.clone()),
        Some(json!({"services":["LeadGeneration"],"interval":"month",
            "successUrl": format!("{}/done", stack.base_url), "cancelUrl": format!("{}/", stack.base_url)})),
    )
    .await;
    assert_eq!(checkout.status, 200, "{}", checkout.body);
    // The local stack's own Checkout page (tests/emulators/local_hosted.py), not Stripe's.
    assert!(
        checkout.json()["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/c/pay/cs_", fake.url))
    );

    // What Stripe does when the customer pays: a subscription on the org's customer.
    let profile = stack
        .gateway
        .syncer
        .store
        .billing_profile(&billing::domain::OrgId::parse(stack::DEMO_ORG).unwrap())
        .await
        .unwrap()
        .expect("checkout created the customer");
    let customer = profile.customer_id.to_string();
    let v1 = |path: &str| format!("{}/v1{path}", localstripe.url);
    let sub = localstripe_subscribe(&localstripe.url, &customer, "leadgen_monthly").await;

    let open = until_status(&api("/api/leads"), &member, 200).await;
    assert_eq!(open.json()["leads"], json!([]));
    let overview = call(
        "GET",
        api("/api/billing/subscription"),
        Some(member.clone()),
        None,
    )
    .await
    .json();
    assert_eq!(overview["status"], "active");

    stripe_call(
        "DELETE",
        v1(&format!("/subscriptions/{}", sub["id"].as_str().unwrap())),
        vec![],
    )
    .await;
    let closed = until_status(&api("/api/leads"), &member, 403).await;
    assert_eq!(closed.body, paywall);
}
