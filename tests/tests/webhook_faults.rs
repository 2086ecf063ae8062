//! Failures answer 5xx so Stripe retries, store nothing half-done, and the redelivery after
//! recovery applies the event exactly once. (Its own test binary: it injects failures into the
//! fake Stripe, which other tests must not see.)

use aws_sdk_dynamodb::types::AttributeValue;
use billing::store::BillingStore;
use billing::store::table::create_table;
use pss_billing_tests::http::{blocking, post_json};
use pss_billing_tests::rig::{self, Rig, assert_outcome, event, fake_put};
use pss_billing_tests::{dynamo_client, fake_stripe, free_port, moto, unique};
use serde_json::json;

async fn inject_stripe_failures(status: u16, count: u32) {
    let url = format!("{}/_test/fail", fake_stripe().url);
    let reply =
        blocking(move || post_json(&url, &json!({ "status": status, "count": count }))).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn dynamodb_unreachable_answers_503_and_recovers_exactly_once() {
    let stripe = fake_stripe();
    // A table that does not exist yet: every DynamoDB call fails until it is created.
    let client = dynamo_client(&moto().url);
    let table = unique("late-table-");
    let rig = Rig::with_store(BillingStore::new(client.clone(), &table), &stripe.url);
    let customer = unique("cus_");
    let sub = rig.put_subscription(&customer, "leadgen_monthly").await;
    let evt = event(&unique("evt_"), "customer.subscription.created", &sub);
    let (status, body) = rig.deliver(&evt).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");

    create_table(&client, &table).await.unwrap();
    let org = rig.linked_org("org", &customer).await;
    assert_outcome(rig.deliver(&evt).await, "processed");
    assert_outcome(rig.deliver(&evt).await, "duplicate");
    let ents = rig.store.entitlements(&org, true).await.unwrap().unwrap();
    assert_eq!(ents.version, 1, "applied exactly once");
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
}

#[tokio::test]
async fn dynamodb_endpoint_down_answers_503() {
    let stripe = fake_stripe();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let rig = Rig::with_store(
        BillingStore::new(dynamo_client(&dead), "billing"),
        &stripe.url,
    );
    let sub = rig::active_subscription(&unique("cus_"), "leadgen_monthly");
    let (status, body) = rig.deliver_new("customer.subscription.updated", &sub).await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test]
async fn stripe_failing_during_refetch_answers_503_then_applies_once() {
    let stripe = fake_stripe();
    let rig = Rig::new(&stripe.url).await;
    let customer = unique("cus_");
    let org = rig.linked_org("org", &customer).await;
    let sub = rig::subscription_object(
        &unique("sub_"),
        &customer,
        "active",
        &[("email_automation_monthly", 2)],
    );
    fake_put(&stripe.url, &sub).await;
    let evt = event(&unique("evt_"), "customer.subscription.created", &sub);

    // Both attempts of the Stripe client fail (5xx): nothing is stored, Stripe must retry.
    inject_stripe_failures(503, 2).await;
    let (status, body) = rig.deliver(&evt).await;
    assert_eq!(status, 503, "{body}");
    assert!(rig.store.subscriptions(&org).await.unwrap().is_empty());
    assert!(rig.store.entitlements(&org, true).await.unwrap().is_none());

    // One transient failure is absorbed by the client's retry.
    inject_stripe_failures(500, 1).await;
    assert_outcome(rig.deliver(&evt).await, "processed");
    assert_outcome(rig.deliver(&evt).await, "duplicate");
    assert_eq!(
        rig.store
            .entitlements(&org, true)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

#[tokio::test]
async fn stripe_unreachable_answers_503() {
    let rig = Rig::new(&format!("http://127.0.0.1:{}", free_port())).await;
    let customer = unique("cus_");
    let org = rig.linked_org("org", &customer).await;
    let sub = rig::active_subscription(&customer, "leadgen_monthly");
    let (status, body) = rig.deliver_new("customer.subscription.created", &sub).await;
    assert_eq!(status, 503, "{body}");
    assert!(rig.store.subscriptions(&org).await.unwrap().is_empty());
}

/// A rejected key (401/403), a refused request (400), an unreadable answer or a corrupt stored
/// item could all succeed later: never acknowledged, never marked, never parked. Once fixed, the
/// same delivery applies. (Its own fake Stripe: the failures it injects are its alone.)
#[tokio::test]
async fn nothing_that_could_succeed_later_is_acknowledged() {
    let own = pss_billing_tests::emulators::start_fake_stripe(free_port(), None);
    let rig = Rig::new(&own.url).await;
    let customer = unique("cus_");
    let org = rig.linked_org("org", &customer).await;
    let sub = rig.put_subscription(&customer, "leadgen_monthly").await;
    let evt = event(&unique("evt_"), "customer.subscription.created", &sub);
    let event_id = billing::domain::EventId::parse(evt["id"].as_str().unwrap()).unwrap();
    let fail = |status: u16, count: u32| {
        let url = format!("{}/_test/fail", own.url);
        blocking(move || post_json(&url, &json!({ "status": status, "count": count })))
    };
    for status in [401, 403, 400, 424, 200] {
        // Twice: the client itself retries a 424 once.
        fail(status, 2).await;
        let (code, body) = rig.deliver(&evt).await;
        assert_eq!(code, 503, "Stripe answering {status}: {body}");
        assert!(!rig.store.event_processed(&event_id).await.unwrap());
        assert!(rig.store.unresolved_events().await.unwrap().is_empty());
        assert!(rig.store.subscriptions(&org).await.unwrap().is_empty());
        fail(0, 0).await;
    }

    // A stored item this code cannot read: retried, not skipped.
    let corrupt = std::collections::HashMap::from([
        ("PK".to_owned(), AttributeValue::S(format!("ORG#{org}"))),
        ("SK".to_owned(), AttributeValue::S("SUB#sub_corrupt".into())),
        (
            "data".to_owned(),
            AttributeValue::S("not a subscription".into()),
        ),
    ]);
    rig.store
        .client()
        .put_item()
        .table_name(rig.store.table())
        .set_item(Some(corrupt))
        .send()
        .await
        .unwrap();
    let (code, _) = rig.deliver(&evt).await;
    assert_eq!(code, 503);
    assert!(!rig.store.event_processed(&event_id).await.unwrap());
    rig.delete_item(format!("ORG#{org}"), "SUB#sub_corrupt".into())
        .await;

    let (code, body) = rig.deliver(&evt).await;
    assert_eq!((code, body["outcome"].as_str()), (200, Some("processed")));
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
}
