//! What a person waits for on the three hot paths, counted: the Stripe and DynamoDB requests
//! each path makes and their sequential depth (the longest chain of requests that did not
//! overlap in time), from recorders at the Stripe transport and the DynamoDB SDK client. In AWS
//! a Stripe request costs 100-400 ms and a DynamoDB request 3-10 ms, so these counts are the
//! latency on any machine. Each test fails when its path goes above its target:
//!
//! | path | target |
//! |---|---|
//! | success-page sync, any number of subscriptions | <= 2 sequential Stripe, <= 3 sequential DynamoDB |
//! | checkout click (org with a customer) | <= 3 sequential Stripe |
//! | webhook event, subscription type, audit included | <= 3 sequential, <= 4 in all |

use billing::api::{self, ApiConfig, OriginAllowlist};
use billing::catalog_sync::sync_catalog;
use billing::domain::ServiceModule::*;
use billing::domain::*;
use billing::round_trips::RoundTrips;
use billing::routes::Role;
use billing::store::BillingStore;
use billing::store::table::create_table;
use billing::stripe::StripeApi;
use billing::sync::Syncer;
use billing::webhook::{WebhookConfig, WebhookHandler, WebhookSecret};
use pss_billing_tests::http::{blocking, post_json};
use pss_billing_tests::rig::{self, fake_put};
use pss_billing_tests::{dynamo_config, fake_stripe, moto, unique};
use serde_json::json;
use tokio::sync::OnceCell;

const ORIGIN: &str = "https://app.example.test";
const WEBHOOK_SECRET: &str = "whsec_test_round_trips";

/// A syncer on a fresh table whose Stripe transport and DynamoDB client record every request.
async fn recorded_syncer() -> (Syncer, RoundTrips) {
    static CATALOG: OnceCell<()> = OnceCell::const_new();
    CATALOG
        .get_or_init(|| async {
            let stripe = StripeApi::new("sk_test_round_trips", Some(&fake_stripe().url)).unwrap();
            sync_catalog(&stripe, Catalog::standard().entries())
                .await
                .expect("catalog sync");
        })
        .await;
    let trips = RoundTrips::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        dynamo_config(&moto().url)
            .interceptor(trips.dynamo_interceptor())
            .build(),
    );
    let table = unique("round-trips-");
    create_table(&client, &table).await.expect("table");
    let stripe = StripeApi::new("sk_test_round_trips", Some(&fake_stripe().url))
        .unwrap()
        .with_round_trips(trips.clone());
    let syncer = Syncer::new(
        BillingStore::new(client, table),
        stripe,
        GracePolicy::default(),
    );
    trips.take();
    (syncer, trips)
}

fn config() -> ApiConfig {
    ApiConfig {
        origins: OriginAllowlist::parse(ORIGIN),
        sync_per_minute: 30,
        offer: Default::default(),
    }
}

/// A checkout click by the org's owner.
async fn click(
    syncer: &Syncer,
    org: &OrgId,
    services: &[&str],
    interval: &str,
) -> api::views::CheckoutView {
    api::checkout(
        syncer,
        &config(),
        org,
        Role::Owner,
        &checkout_body(services, interval),
    )
    .await
    .unwrap()
}

fn checkout_body(services: &[&str], interval: &str) -> Vec<u8> {
    json!({
        "services": services,
        "interval": interval,
        "successUrl": format!("{ORIGIN}/billing/success"),
        "cancelUrl": format!("{ORIGIN}/billing"),
    })
    .to_string()
    .into_bytes()
}

async fn customer_of(syncer: &Syncer, org: &OrgId) -> CustomerId {
    syncer
        .store
        .billing_profile(org)
        .await
        .unwrap()
        .expect("a billing profile")
        .customer_id
}

async fn complete_session(session_id: &str, subscription: &str) {
    let url = format!("{}/_test/checkout/{session_id}/complete", fake_stripe().url);
    let body = json!({ "subscription": subscription });
    let reply = blocking(move || post_json(&url, &body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn session_status(id: &str) -> String {
    let url = format!("{}/v1/checkout/sessions/{id}", fake_stripe().url);
    let reply = blocking(move || {
        pss_billing_tests::http::request(
            "GET",
            &url,
            &[("Authorization", "Bearer sk_test_round_trips")],
            b"",
        )
    })
    .await;
    reply.json()["status"].as_str().unwrap().to_owned()
}

fn unlocked(overview: &api::views::SubscriptionOverview) -> Vec<ServiceModule> {
    overview
        .entitlements
        .iter()
        .filter(|e| e.unlocked)
        .map(|e| e.module)
        .collect()
}

#[tokio::test]
async fn the_success_page_sync_waits_for_two_stripe_and_three_dynamodb_round_trips() {
    let (syncer, trips) = recorded_syncer().await;
    let org = pss_billing_tests::build::org("sync");
    let checkout = click(&syncer, &org, &["LeadGeneration"], "month").await;
    let customer = customer_of(&syncer, &org).await;
    // Stripe has three subscriptions of the customer: the one this checkout made, a yearly
    // plan and an ended one. The count must not grow with them.
    let paid = unique("sub_");
    for (id, status, price) in [
        (paid.clone(), "active", "leadgen_monthly"),
        (unique("sub_"), "active", "email_automation_yearly"),
        (unique("sub_"), "canceled", "social_inbox_monthly"),
    ] {
        fake_put(
            &fake_stripe().url,
            &rig::subscription_object(&id, customer.as_str(), status, &[(price, 1)]),
        )
        .await;
    }
    complete_session(&checkout.session_id, &paid).await;
    trips.take();

    let overview = api::sync(&syncer, &config(), &org, Some(&checkout.session_id))
        .await
        .unwrap();
    let summary = trips.take_summary();
    println!("success-page sync: {summary}\n  {:?}", summary.operations);
    assert_eq!(
        unlocked(&overview),
        [BasicCrm, LeadGeneration, EmailAutomation]
    );
    assert!(
        summary.stripe.sequential <= 2,
        "Stripe: {summary} {:?}",
        summary.operations
    );
    assert!(
        summary.dynamo.sequential <= 3,
        "DynamoDB: {summary} {:?}",
        summary.operations
    );
    // What was answered is what is stored.
    let stored = api::subscription(&syncer.store, &org, GracePolicy::default())
        .await
        .unwrap();
    assert_eq!(unlocked(&stored), unlocked(&overview));
    assert_eq!(stored.subscriptions.len(), overview.subscriptions.len());
}

#[tokio::test]
async fn a_checkout_click_waits_for_three_stripe_round_trips() {
    let (syncer, trips) = recorded_syncer().await;
    let org = pss_billing_tests::build::org("click");
    // The org has a customer, a monthly plan, and a session left open by an earlier click.
    let first = click(&syncer, &org, &["LeadGeneration"], "month").await;
    let customer = customer_of(&syncer, &org).await;
    let plan = unique("sub_");
    fake_put(
        &fake_stripe().url,
        &rig::subscription_object(
            &plan,
            customer.as_str(),
            "active",
            &[("leadgen_monthly", 1)],
        ),
    )
    .await;
    complete_session(&first.session_id, &plan).await;
    let earlier = click(&syncer, &org, &["EmailAutomation"], "year").await;
    trips.take();

    // Another basket: the earlier session is expired, a new one created.
    let new_session = click(&syncer, &org, &["EmailAutomation", "Integrations"], "year").await;
    let summary = trips.take_summary();
    println!("checkout click: {summary}\n  {:?}", summary.operations);
    assert_eq!(session_status(&earlier.session_id).await, "expired");
    assert_eq!(session_status(&new_session.session_id).await, "open");
    assert!(
        summary.stripe.sequential <= 3,
        "Stripe: {summary} {:?}",
        summary.operations
    );

    // The same click again on a warm container: the prices come from the cache.
    trips.take();
    let again = click(&syncer, &org, &["EmailAutomation", "Integrations"], "year").await;
    let summary = trips.take_summary();
    println!("checkout click, prices cached: {summary}");
    assert_eq!(
        again.session_id, new_session.session_id,
        "an idempotent replay"
    );
    assert!(
        !summary.operations.iter().any(|o| o.contains("/v1/prices")),
        "{:?}",
        summary.operations
    );
    assert!(summary.stripe.sequential <= 3, "{summary}");
}

#[tokio::test]
async fn a_subscription_event_waits_for_three_round_trips_and_makes_four() {
    let (syncer, trips) = recorded_syncer().await;
    let org = pss_billing_tests::build::org("event");
    let customer = CustomerId::parse(unique("cus_")).unwrap();
    syncer.store.link_customer(&org, &customer).await.unwrap();
    let sub = unique("sub_");
    let put = |seats: u64| {
        let object = rig::subscription_object(
            &sub,
            customer.as_str(),
            "active",
            &[("advanced_analytics_monthly", seats)],
        );
        async move {
            fake_put(&fake_stripe().url, &object).await;
            object
        }
    };
    let config = WebhookConfig {
        secrets: vec![WebhookSecret::new(WEBHOOK_SECRET)],
        tolerance_seconds: 300,
        max_body_bytes: billing::webhook::DEFAULT_MAX_BODY_BYTES,
        livemode: false,
    };
    let handler = WebhookHandler::new(syncer.clone(), config);
    let deliver = |event: serde_json::Value| {
        let handler = handler.clone();
        async move {
            let body = event.to_string();
            let signature =
                WebhookSecret::new(WEBHOOK_SECRET).sign(Timestamp::now().unix(), body.as_bytes());
            handler
                .process(Some(&signature), body.as_bytes(), Timestamp::now().unix())
                .await
        }
    };
    // The first event of the org, then the one measured: a change of seats.
    let created = rig::event(
        &unique("evt_"),
        "customer.subscription.created",
        &put(1).await,
    );
    assert_eq!(deliver(created).await.label(), "processed");
    let event_id = unique("evt_");
    let updated = rig::event(&event_id, "customer.subscription.updated", &put(2).await);
    trips.take();
    let outcome = deliver(updated).await;
    let summary = trips.take_summary();
    println!("webhook event: {summary}\n  {:?}", summary.operations);
    assert_eq!(outcome.label(), "processed");
    assert!(
        summary.all.sequential <= 3,
        "{summary} {:?}",
        summary.operations
    );
    assert!(
        summary.all.requests <= 4,
        "{summary} {:?}",
        summary.operations
    );
    // The audit trail was written, inside the transaction (no request of its own).
    let kept = syncer
        .store
        .deliveries_of_event(&EventId::parse(&event_id).unwrap())
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].outcome, "processed");
    assert_eq!(kept[0].org_id.as_ref(), Some(&org));
    assert!(
        !summary
            .operations
            .iter()
            .any(|o| o.contains("BatchWriteItem")),
        "{:?}",
        summary.operations
    );
    let subs = syncer.store.subscriptions(&org).await.unwrap();
    assert_eq!(subs[0].subscription.items[0].quantity, 2);

    // A payment (not one of the targets, held here so it does not grow back): the
    // invoice and the marker with the link at once, then the subscription, then its read and
    // write, then the invoice's write: 5 sequential round trips, 6 requests.
    let invoice = unique("in_");
    fake_put(
        &fake_stripe().url,
        &rig::invoice_object(
            &invoice,
            customer.as_str(),
            &sub,
            "paid",
            Timestamp::now().unix(),
        ),
    )
    .await;
    let paid = rig::event(
        &unique("evt_"),
        "invoice.paid",
        &json!({"id": invoice, "object": "invoice", "customer": customer.as_str()}),
    );
    trips.take();
    assert_eq!(deliver(paid).await.label(), "processed");
    let summary = trips.take_summary();
    println!("invoice.paid: {summary}\n  {:?}", summary.operations);
    assert!(
        summary.all.sequential <= 5,
        "{summary} {:?}",
        summary.operations
    );
    assert!(
        summary.all.requests <= 6,
        "{summary} {:?}",
        summary.operations
    );
}
