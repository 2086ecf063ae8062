//! The Stripe objects the committed sample events refer to (tests/fixtures/stripe/
//! sample-objects.json: org_sample's customer, subscription, invoice, payment method and
//! Checkout Session), put into a fixture Stripe (tests/emulators/fake_stripe.py). The tests and
//! the bench seed their fake Stripe from here.

use serde_json::Value;

use crate::emulators::workspace_root;
use crate::http;

/// Every sample object, by kind (`"subscription"`, `"checkout.session"`, ...).
pub fn sample_objects() -> Value {
    let path = workspace_root().join("tests/fixtures/stripe/sample-objects.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A current-shape Stripe object of `kind` (`tests/fixtures/stripe/<kind>.latest.json`: Stripe's
/// official example objects).
pub fn fixture(name: &str) -> Value {
    let path = workspace_root().join(format!("tests/fixtures/stripe/{name}.latest.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A current-shape Stripe subscription built from the official example object.
pub fn subscription_object(id: &str, customer: &str, status: &str, items: &[(&str, u64)]) -> Value {
    let mut sub = fixture("subscription");
    let template = sub["items"]["data"][0].clone();
    let now = billing::domain::Timestamp::now().unix();
    let data: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, (lookup_key, quantity))| {
            let mut item = template.clone();
            item["id"] = format!("si_{id}_{i}").into();
            item["subscription"] = id.into();
            item["quantity"] = (*quantity).into();
            item["current_period_start"] = now.into();
            item["current_period_end"] = (now + 30 * 86_400).into();
            item["price"]["id"] = format!("price_{lookup_key}").into();
            item["price"]["lookup_key"] = (*lookup_key).into();
            item["price"]["currency"] = "usd".into();
            item["plan"]["id"] = format!("price_{lookup_key}").into();
            item["plan"]["currency"] = "usd".into();
            item
        })
        .collect();
    sub["id"] = id.into();
    sub["customer"] = customer.into();
    sub["status"] = status.into();
    sub["cancel_at_period_end"] = false.into();
    // Stripe's example object shows a pending update; a subscription has none unless a
    // change waits for its payment.
    sub["pending_update"] = Value::Null;
    for field in ["cancel_at", "canceled_at", "ended_at", "trial_end"] {
        sub[field] = Value::Null;
    }
    sub["items"]["data"] = Value::Array(data);
    sub
}

/// Stores or replaces one object in the fake Stripe at `stripe_url`.
pub async fn fake_put(stripe_url: &str, object: &Value) {
    let url = format!("{stripe_url}/_test/objects");
    let object = object.clone();
    let reply = http::blocking(move || http::post_json(&url, &object)).await;
    assert_eq!(
        reply.status, 200,
        "fake Stripe refused an object: {}",
        reply.body
    );
}

/// Makes the fake Stripe at `stripe_url` forget an object: it then answers 404 for it.
pub async fn fake_forget(stripe_url: &str, id: &str) {
    let url = format!("{stripe_url}/_test/objects/{id}");
    let reply = http::blocking(move || http::request("DELETE", &url, &[], b"")).await;
    assert_eq!(reply.status, 200, "fake Stripe kept {}", reply.body);
}

/// Puts every sample object into the fake Stripe at `stripe_url`.
pub async fn put_sample_objects(stripe_url: &str) {
    let objects = sample_objects();
    for kind in [
        "subscription",
        "invoice",
        "payment_method",
        "customer",
        "checkout.session",
    ] {
        fake_put(stripe_url, &objects[kind]).await;
    }
}
