//! The Stripe transport (shared/src/stripe/transport.rs) against the fixture Stripe, which
//! records every request it receives: what goes on the wire (key, pinned version, idempotency
//! key), which failures are retried, and that async-stripe's own request interface runs over it.

use billing::stripe::requests::CreateCustomer;
use billing::stripe::{API_VERSION, StripeApi, StripeApiError, StripeCustomer, StripeTransport};
use pss_billing_tests::http::post_json;
use pss_billing_tests::{Emulator, emulators, free_port};
use serde_json::{Value, json};
use std::collections::HashMap;
use stripe_client_core::{RequestBuilder, RequestStrategy, StripeMethod};

const KEY: &str = "sk_test_transport";

/// A customer create naming `org_1`, as the checkout sends one.
fn org_customer() -> CreateCustomer {
    CreateCustomer::new().metadata(HashMap::from([(
        "organization_id".to_owned(),
        "org_1".to_owned(),
    )]))
}

fn fake_with_customer() -> Emulator {
    let fake = emulators::start_fake_stripe(free_port(), None);
    let customer = json!({"id": "cus_transport", "object": "customer", "metadata": {}});
    assert_eq!(
        post_json(&format!("{}/_test/objects", fake.url), &customer).status,
        200
    );
    fake
}

/// A fresh fixture Stripe holding one customer, and a client of it with the test key.
fn client_of_fake() -> (Emulator, StripeApi) {
    let fake = fake_with_customer();
    let api = StripeApi::new(KEY, Some(&fake.url)).unwrap();
    (fake, api)
}

/// The API requests the fixture received, in order (control calls are not recorded).
fn requests(fake: &Emulator) -> Vec<Value> {
    let reply =
        pss_billing_tests::http::request("GET", &format!("{}/_test/requests", fake.url), &[], b"");
    reply.json().as_array().cloned().unwrap_or_default()
}

fn fail_next(fake: &Emulator, status: u16, count: u32) {
    let spec = json!({"status": status, "count": count});
    assert_eq!(
        post_json(&format!("{}/_test/fail", fake.url), &spec).status,
        200
    );
}

#[tokio::test]
async fn every_request_carries_the_key_and_the_pinned_version() {
    let (fake, api) = client_of_fake();
    let customer = api.customer("cus_transport").await.unwrap();
    assert_eq!(customer.id, "cus_transport");
    let sent = requests(&fake);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["path"], "/v1/customers/cus_transport");
    assert_eq!(sent[0]["stripe_version"], API_VERSION);
    assert_eq!(sent[0]["authorization"], "Bearer sk_te");
    // A read is never sent with an idempotency key (Stripe ignores them on GET; a random one
    // would only make two identical reads look different in Stripe's logs).
    assert_eq!(sent[0]["idempotency_key"], Value::Null);
}

#[tokio::test]
async fn a_read_is_retried_after_a_server_error() {
    let (fake, api) = client_of_fake();
    fail_next(&fake, 503, 1);
    api.customer("cus_transport").await.unwrap();
    assert_eq!(requests(&fake).len(), 2);
    // Stripe's rate limit counts attempts, so the pace of a batch job does too.
    assert_eq!(api.requests_sent(), 2, "the retry is counted");
}

#[tokio::test]
async fn a_read_that_keeps_failing_is_reported_as_unavailable_after_two_attempts() {
    let (fake, api) = client_of_fake();
    fail_next(&fake, 500, 5);
    let err = api.customer("cus_transport").await.unwrap_err();
    assert!(matches!(err, StripeApiError::Unavailable(_)), "{err:?}");
    assert_eq!(requests(&fake).len(), 2);
}

#[tokio::test]
async fn a_keyed_write_is_sent_once_with_its_key() {
    let (fake, api) = client_of_fake();
    fail_next(&fake, 503, 1);
    let err = api
        .write::<StripeCustomer>(&org_customer(), Some("create-customer-org_1"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let sent = requests(&fake);
    assert_eq!(
        sent.len(),
        1,
        "a keyed write is retried by its caller, not twice here"
    );
    assert_eq!(sent[0]["idempotency_key"], "create-customer-org_1");
    assert_eq!(sent[0]["form"]["metadata[organization_id]"], "org_1");
}

#[tokio::test]
async fn a_missing_object_and_a_refused_key_are_told_apart() {
    let (fake, api) = client_of_fake();
    let err = api.customer("cus_nobody").await.unwrap_err();
    assert!(matches!(err, StripeApiError::NotFound), "{err:?}");
    let wrong_key = StripeApi::new("rk_test_not_a_secret_key", Some(&fake.url)).unwrap();
    let err = wrong_key.customer("cus_transport").await.unwrap_err();
    assert!(
        matches!(err, StripeApiError::Rejected { status: 401, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn nothing_listening_is_unavailable_not_a_panic() {
    let api = StripeApi::new(KEY, Some(&format!("http://127.0.0.1:{}", free_port()))).unwrap();
    let err = api.customer("cus_transport").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

/// async-stripe's request interface (`customize().send(&client)`, what its generated request
/// types call) runs over this transport unchanged.
#[tokio::test]
async fn async_stripes_client_interface_runs_over_the_transport() {
    let fake = fake_with_customer();
    let transport = StripeTransport::new(
        KEY,
        Some(&fake.url),
        RequestStrategy::Once,
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let customer: miniserde::json::Value =
        RequestBuilder::new(StripeMethod::Get, "/customers/cus_transport")
            .customize()
            .send(&transport)
            .await
            .unwrap();
    let miniserde::json::Value::Object(fields) = customer else {
        panic!("not an object")
    };
    assert!(
        matches!(fields.get("id"), Some(miniserde::json::Value::String(id)) if id == "cus_transport")
    );
}

/// A server whose first connection breaks after reading the request (a kept-alive connection
/// that died while the function was frozen); later connections get a customer. Returns its URL
/// and the requests it read, in order.
fn breaks_first_connection() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 8192];
            let read = stream.read(&mut buf).unwrap_or(0);
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..read]).into_owned());
            if n == 0 {
                continue; // dropped: the connection closes without an answer
            }
            let body = r#"{"id":"cus_transport","object":"customer","metadata":{}}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (url, seen)
}

fn idempotency_key_of(request: &str) -> Option<String> {
    request
        .lines()
        .find_map(|l| l.strip_prefix("idempotency-key: "))
        .map(str::to_owned)
}

#[tokio::test]
async fn a_keyed_write_whose_connection_broke_is_sent_again_with_the_same_key() {
    let (url, seen) = breaks_first_connection();
    let api = StripeApi::new(KEY, Some(&url)).unwrap();
    let customer = api
        .write::<StripeCustomer>(&org_customer(), Some("create-customer-org_1"))
        .await
        .unwrap();
    assert_eq!(customer.id, "cus_transport");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for request in &seen {
        assert_eq!(
            idempotency_key_of(request).as_deref(),
            Some("create-customer-org_1")
        );
    }
}

#[tokio::test]
async fn a_write_without_a_key_is_never_sent_twice() {
    let (url, seen) = breaks_first_connection();
    let api = StripeApi::new(KEY, Some(&url)).unwrap();
    let err = api
        .write::<StripeCustomer>(&CreateCustomer::new(), None)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}
