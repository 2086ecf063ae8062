//! The local stack's Checkout and portal pages (tests/emulators/local_hosted.py) behave like
//! Stripe's where the app depends on it: a declined card creates nothing and leaves the session
//! open; paying creates the subscription on the org's customer, completes the session and returns
//! to the success URL with its id; the portal's changes reach the API through webhooks alone
//! (no eager sync is called here).

use pss_billing_tests::{EmulatedStack, emulated_stack};
use std::time::{Duration, Instant};

use pss_local::http::{Reply, blocking, get, request};
use serde_json::{Value, json};

async fn api(method: &'static str, url: String, token: String, body: Value) -> Reply {
    blocking(move || {
        let auth = format!("Bearer {token}");
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        request(
            method,
            &url,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    })
    .await
}

async fn form(url: String, body: impl Into<String>) -> Reply {
    let body: String = body.into();
    blocking(move || {
        request(
            "POST",
            &url,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    })
    .await
}

async fn stripe_get(url: String) -> Value {
    blocking(move || {
        request(
            "GET",
            &url,
            &[("Authorization", "Bearer sk_test_local")],
            b"",
        )
        .json()
    })
    .await
}

/// `GET /api/billing/subscription`: the org's subscription overview.
async fn overview(base: &str, token: &str) -> Value {
    api(
        "GET",
        format!("{base}/api/billing/subscription"),
        token.to_owned(),
        Value::Null,
    )
    .await
    .json()
}

/// Polls `GET /api/billing/subscription` until `done` holds (webhooks arrive in the background).
async fn until(base: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = overview(base, token).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "never reached: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many modules a subscription overview unlocks (BasicCRM included).
fn unlocked_modules(overview: &Value) -> usize {
    overview["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["unlocked"] == true)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_checkout_and_portal_make_stripe_objects_and_webhooks() {
    let EmulatedStack {
        stack,
        moto: _moto,
        localstripe: _localstripe,
        fake,
    } = emulated_stack("pss-billing-local-checkout", Vec::new()).await;
    let base = stack.base_url.clone();
    let owner = stack.owner_token.clone();

    let created = api(
        "POST",
        format!("{base}/api/billing/checkout"),
        owner.clone(),
        json!({"services": ["LeadGeneration", "SocialInbox"], "interval": "year",
            "successUrl": format!("{base}/done"), "cancelUrl": format!("{base}/back")}),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let session_id = created.json()["sessionId"].as_str().unwrap().to_owned();
    let page_url = created.json()["url"].as_str().unwrap().to_owned();
    assert_eq!(page_url, format!("{}/c/pay/{session_id}", fake.url));

    // The page shows the session's line items and yearly amounts from the prices.
    let page = blocking({
        let url = page_url.clone();
        move || get(&url)
    })
    .await;
    assert_eq!(page.status, 200);
    for text in [
        "Lead Generation",
        "USD 999",
        "Social Inbox",
        "USD 799",
        "USD 1,798",
    ] {
        assert!(
            page.body.contains(text),
            "{text} missing from the Checkout page"
        );
    }

    // A declined card: an error in words, no subscription, the session still open.
    let declined = form(
        page_url.clone(),
        "country=US&line1=1+Main+Street&city=Springfield&postal_code=12345&card=4000000000000002&exp=12%2F34&cvc=123",
    )
    .await;
    assert_eq!(declined.status, 402);
    assert!(declined.body.contains("Your card was declined."));
    let session = stripe_get(format!("{}/v1/checkout/sessions/{session_id}", fake.url)).await;
    assert_eq!(session["status"], "open");
    let customer = session["customer"].as_str().unwrap().to_owned();
    let subs = stripe_get(format!("{}/v1/subscriptions?customer={customer}", fake.url)).await;
    assert_eq!(subs["data"].as_array().unwrap().len(), 0, "{subs}");
    assert_eq!(overview(&base, &owner).await["status"], "none");

    // Paying: back to the success URL with the session id; the session is complete.
    let paid = form(
        page_url.clone(),
        "country=US&line1=1+Main+Street&city=Springfield&postal_code=12345&card=4242+4242+4242+4242&exp=12%2F34&cvc=123",
    )
    .await;
    assert_eq!(paid.status, 303);
    assert_eq!(
        paid.header("location"),
        Some(format!("{base}/done?session_id={session_id}").as_str())
    );
    let session = stripe_get(format!("{}/v1/checkout/sessions/{session_id}", fake.url)).await;
    assert_eq!(
        (
            session["status"].as_str(),
            session["payment_status"].as_str()
        ),
        (Some("complete"), Some("paid"))
    );
    // Like Stripe's Checkout: one subscription (held by the fixture Stripe), one item per module.
    let subs = stripe_get(format!("{}/v1/subscriptions?customer={customer}", fake.url)).await;
    let subs = subs["data"].as_array().unwrap().clone();
    assert_eq!(subs.len(), 1, "one subscription for the session: {subs:?}");
    assert_eq!(subs[0]["items"]["data"].as_array().unwrap().len(), 2);
    assert_eq!(subs[0]["metadata"]["organization_id"], "org_demo");
    // A second payment of the same session is refused: it is no longer open.
    assert_eq!(
        form(page_url, "country=US&line1=1+Main+Street&city=Springfield&postal_code=12345&card=4242424242424242&exp=12%2F34&cvc=1")
            .await
            .status,
        410
    );

    // Webhooks alone (checkout.session.completed, customer.subscription.created) unlock both.
    let overview = until(&base, &owner, |o| unlocked_modules(o) == 3).await;
    assert_eq!(overview["status"], "active");

    // The portal: its URL is the local page; cancel at period end reaches the API by webhook.
    let portal = api(
        "POST",
        format!("{base}/api/billing/portal"),
        owner.clone(),
        json!({"returnUrl": format!("{base}/billing")}),
    )
    .await;
    assert_eq!(portal.status, 200, "{}", portal.body);
    let portal_url = portal.json()["url"].as_str().unwrap().to_owned();
    assert!(
        portal_url.starts_with(&format!("{}/p/session/", fake.url)),
        "{portal_url}"
    );
    let target = subs[0]["id"].as_str().unwrap().to_owned();
    let body = format!("action=cancel_at_period_end&subscription={target}");
    let done = form(portal_url.clone(), body).await;
    assert_eq!(done.status, 303);
    until(&base, &owner, |o| {
        o["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == target.as_str() && s["cancelAtPeriodEnd"] == true)
    })
    .await;
    // Another customer's subscription cannot be touched through this portal session.
    let foreign = form(
        portal_url.clone(),
        "action=cancel_now&subscription=sub_not_mine",
    )
    .await;
    assert_eq!(foreign.status, 200);
    assert!(
        foreign
            .body
            .contains("That subscription is not one of yours.")
    );
    // The portal this service configures cancels at period end only (the org keeps what it
    // paid for): an immediate cancellation is not offered, and the modules stay unlocked.
    let body = format!("action=cancel_now&subscription={target}");
    let refused = form(portal_url, body).await;
    assert_ne!(refused.status, 303, "{}", refused.body);
    until(&base, &owner, |o| unlocked_modules(o) > 1).await;

    // Kept in the app after all, through the gateway's `{service}` route: it renews.
    let kept = api(
        "POST",
        format!("{base}/api/billing/modules/LeadGeneration/resume"),
        owner.clone(),
        json!({}),
    )
    .await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    let kept = kept.json();
    assert_eq!(kept["endsAt"], Value::Null, "{kept}");
    let plan = kept["subscription"]["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == target.as_str())
        .cloned()
        .unwrap();
    assert_eq!(plan["cancelAtPeriodEnd"], false, "{plan}");
    // And removed at period end again, with DELETE.
    let removed = api(
        "DELETE",
        format!("{base}/api/billing/modules/SocialInbox"),
        owner.clone(),
        Value::Null,
    )
    .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(removed.json()["endsAt"].is_i64(), "{}", removed.body);
}
