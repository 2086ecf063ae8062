//! Integration-test harness: starts the real emulators (moto for DynamoDB, localstripe and a
//! fixture-backed fake Stripe) on free loopback ports, once per test binary, and stops them
//! when the test process ends (see emulators/supervise.py). Nothing needs to be running before.

pub mod build;
pub mod rig;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use billing::store::BillingStore;
use billing::store::table::create_table;
pub use pss_local::emulators::{Emulator, free_port, venv_bin, workspace_root};
pub use pss_local::{emulators, http, server};

/// moto server (DynamoDB), shared by the tests of one binary; each test uses its own table.
pub fn moto() -> &'static Emulator {
    static MOTO: OnceLock<Emulator> = OnceLock::new();
    MOTO.get_or_init(|| emulators::start_moto(free_port()))
}

/// localstripe (Stripe, 2017 object shapes, signed webhooks).
pub fn localstripe() -> &'static Emulator {
    static LOCALSTRIPE: OnceLock<Emulator> = OnceLock::new();
    LOCALSTRIPE.get_or_init(|| emulators::start_localstripe(free_port()))
}

/// The fixture-backed Stripe for what localstripe lacks (tests/emulators/fake_stripe.py).
pub fn fake_stripe() -> &'static Emulator {
    static FAKE: OnceLock<Emulator> = OnceLock::new();
    FAKE.get_or_init(|| emulators::start_fake_stripe(free_port(), None))
}

/// A DynamoDB client for an endpoint, with fake credentials (the emulator ignores them).
pub fn dynamo_client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .build();
    Client::from_conf(config)
}

/// A name unique within this test run (tables, orgs, Stripe ids).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on a brand-new table in moto.
pub async fn fresh_store() -> BillingStore {
    let client = dynamo_client(&moto().url);
    let table = unique("billing-");
    create_table(&client, &table)
        .await
        .expect("create table in moto");
    BillingStore::new(client, table)
}

/// A Stripe API call (form body, test key) that must succeed; an empty reply is `null`.
pub async fn stripe_call(
    method: &'static str,
    url: String,
    form: Vec<(&'static str, String)>,
) -> serde_json::Value {
    http::blocking(move || {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = http::stripe_form(method, &url, &pairs);
        assert!(
            reply.status < 300,
            "{method} {url}: {} {}",
            reply.status,
            reply.body
        );
        if reply.body.trim().is_empty() {
            serde_json::Value::Null
        } else {
            reply.json()
        }
    })
    .await
}

/// What Stripe does when a customer pays a Checkout, done directly in localstripe: attach a
/// card, make it the default, and subscribe the customer to `plan`.
pub async fn localstripe_subscribe(
    localstripe_url: &str,
    customer: &str,
    plan: &str,
) -> serde_json::Value {
    let v1 = |path: &str| format!("{localstripe_url}/v1{path}");
    let pm = stripe_call(
        "POST",
        v1("/payment_methods/pm_card_visa/attach"),
        vec![("customer", customer.to_owned())],
    )
    .await;
    let pm_id = pm["id"].as_str().expect("payment method id").to_owned();
    stripe_call(
        "POST",
        v1(&format!("/customers/{customer}")),
        vec![("invoice_settings[default_payment_method]", pm_id)],
    )
    .await;
    stripe_call(
        "POST",
        v1("/subscriptions"),
        vec![
            ("customer", customer.to_owned()),
            ("items[0][plan]", plan.to_owned()),
        ],
    )
    .await
}

/// A local stack on free ports with emulators of its own, as `scripts/local-stack` starts it.
/// The emulators stop when this value is dropped.
pub struct EmulatedStack {
    pub stack: pss_local::stack::LocalStack,
    pub moto: Emulator,
    pub localstripe: Emulator,
    pub fake: Emulator,
}

pub async fn emulated_stack(table: &str, frontend_origins: Vec<String>) -> EmulatedStack {
    let moto = emulators::start_moto(free_port());
    let localstripe = emulators::start_localstripe(free_port());
    let fake = emulators::start_fake_stripe(free_port(), Some(&localstripe.url));
    let stack = pss_local::stack::start(pss_local::stack::StackConfig {
        port: 0,
        dynamodb_url: moto.url.clone(),
        stripe_url: fake.url.clone(),
        localstripe_url: localstripe.url.clone(),
        table: table.to_owned(),
        cache_seconds: 1,
        frontend_origins,
    })
    .await
    .expect("the local stack starts");
    EmulatedStack {
        stack,
        moto,
        localstripe,
        fake,
    }
}

/// The catalog and the sample objects behind `events/` (tests/fixtures/stripe/sample-objects.json)
/// in a fixture Stripe.
pub async fn seed_sample_stripe(stripe_url: &str) {
    let stripe = billing::stripe::StripeApi::new("sk_test_samples", Some(stripe_url))
        .expect("stripe client");
    billing::catalog_sync::sync_catalog(&stripe, billing::domain::Catalog::standard().entries())
        .await
        .expect("catalog sync");
    let objects = rig::sample_objects();
    for name in [
        "subscription",
        "invoice",
        "payment_method",
        "customer",
        "checkout.session",
    ] {
        rig::fake_put(stripe_url, &objects[name]).await;
    }
}
