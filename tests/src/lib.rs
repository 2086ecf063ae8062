//! Integration-test harness: starts the real emulators (moto for DynamoDB, localstripe and a
//! fixture-backed fake Stripe) on free loopback ports, once per test binary, and stops them
//! when the test process ends (see emulators/supervise.py). Nothing needs to be running before.

pub mod auth;
pub mod build;
pub mod iam;
pub mod lambda_logs;
pub mod openapi;
pub mod rig;
pub mod sdk;
pub mod template;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use billing::domain::{
    FetchTime, GracePolicy, OrgId, ServiceModule, Subscription, SubscriptionStatus,
};
use billing::store::BillingStore;
use billing::store::table::create_table;
use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
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
    Client::from_conf(dynamo_config(endpoint).build())
}

/// The configuration of `dynamo_client`, for a test that adds to it (an interceptor).
pub fn dynamo_config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
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

/// Stores `sub` for `org` as the webhook does: fetched now, with the default grace period.
pub async fn store_subscription(store: &BillingStore, org: &OrgId, sub: &Subscription) {
    store_subscription_fetched(store, org, sub, FetchTime::now()).await;
}

/// Stores `sub` for `org` as read at `fetched`, with the default grace period.
pub async fn store_subscription_fetched(
    store: &BillingStore,
    org: &OrgId,
    sub: &Subscription,
    fetched: FetchTime,
) {
    store
        .apply_subscription(org, sub, fetched, None, GracePolicy::default())
        .await
        .expect("store subscription");
}

/// Gives `org` an active subscription (new Stripe ids) to `modules`.
pub async fn unlock(store: &BillingStore, org: &OrgId, modules: &[ServiceModule]) {
    let sub = build::subscription(
        &unique("sub_"),
        &unique("cus_"),
        SubscriptionStatus::Active,
        modules,
    );
    store_subscription(store, org, &sub).await;
}

/// A request as API Gateway hands it to a function: `authorizer` is the context the authorizer
/// allowed it with (`requestContext.authorizer`), None where no authorizer ran.
pub fn gateway_request(
    method: &str,
    uri: &str,
    authorizer: Option<serde_json::Map<String, serde_json::Value>>,
    query: &[(&str, &str)],
    body: Body,
) -> Request {
    let mut request = lambda_http::http::Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .unwrap();
    if let Some(context) = authorizer {
        let mut ctx = ApiGatewayProxyRequestContext::default();
        ctx.authorizer.fields = context.into_iter().collect();
        request = request.with_request_context(RequestContext::ApiGatewayV1(ctx));
    }
    let query: HashMap<String, String> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    request.with_query_string_parameters(query)
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

/// What Stripe's Checkout does when a customer pays, done directly in the fixture Stripe (which
/// owns subscriptions, also in front of localstripe): a subscription of `customer` to the
/// catalog price `lookup_key`, paid by Stripe's test card, attributed to `org`.
pub async fn fake_subscribe(
    fake_url: &str,
    customer: &str,
    lookup_key: &str,
    org: &str,
) -> serde_json::Value {
    let prices = stripe_call(
        "GET",
        format!("{fake_url}/v1/prices?lookup_keys[0]={lookup_key}&active=true"),
        vec![],
    )
    .await;
    let price = prices["data"][0]["id"]
        .as_str()
        .expect("a price")
        .to_owned();
    stripe_call(
        "POST",
        format!("{fake_url}/v1/subscriptions"),
        vec![
            ("customer", customer.to_owned()),
            ("items[0][price]", price),
            ("default_payment_method", "pm_card_visa".to_owned()),
            ("metadata[organization_id]", org.to_owned()),
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
    // The local stack's own setting (scripts/local-stack): a one-second entitlements cache.
    emulated_stack_caching(table, frontend_origins, 1).await
}

/// [`emulated_stack`] whose authorizer caches an org's rights for `cache_seconds`.
pub async fn emulated_stack_caching(
    table: &str,
    frontend_origins: Vec<String>,
    cache_seconds: u64,
) -> EmulatedStack {
    let moto = emulators::start_moto(free_port());
    let localstripe = emulators::start_localstripe(free_port());
    let fake = emulators::start_fake_stripe(free_port(), Some(&localstripe.url));
    let stack = pss_local::stack::start(pss_local::stack::StackConfig {
        port: 0,
        dynamodb_url: moto.url.clone(),
        stripe_url: fake.url.clone(),
        localstripe_url: localstripe.url.clone(),
        table: table.to_owned(),
        cache_seconds,
        frontend_origins,
        // The paid path (a card on the local Checkout); trials are tested in b2b_checkout.rs
        // against the fixture Stripe and in the browser against a stack of their own.
        offer: billing::api::checkout::CheckoutOffer {
            trial_days: 0,
            ..Default::default()
        },
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
    rig::put_sample_objects(stripe_url).await;
}
