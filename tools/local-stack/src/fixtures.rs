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
