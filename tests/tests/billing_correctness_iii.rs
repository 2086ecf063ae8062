//! Billing correctness III, each case against moto and a fixture Stripe that answers as Stripe
//! does (a key of another account sees none of this account's objects; canceled subscriptions
//! stay retrievable; a deleted customer answers `deleted: true`).
//!
//! * a key of another Stripe account changes nothing, and the `StripeAccountMismatch` alarm's
//!   metric is emitted; a real `customer.subscription.deleted` still ends access;
//! * a 404 that nothing confirms ends nothing (subscription, customer, invoice), and an end
//!   inferred from a confirmed 404 is replaced by a later live read;
//! * reconciliation restores a link marked deleted whose customer Stripe still has;
//! * an unmapped price no longer freezes the stored state;
//! * a parked event keeps its first arrival (and TTL) when parked again, and reconciliation
//!   skips events of still-unlinked customers without asking Stripe;
//! * a checkout's burst of concurrent events for one org all apply on their first delivery.

use std::sync::Arc;

use billing::domain::{CustomerId, OrgId, SubscriptionStatus};
use billing::metrics;
use billing::stripe::StripeApiError;
use pss_billing_tests::http::{blocking, get, post_json};
use pss_billing_tests::rig::{self, Rig, assert_outcome, event, fake_put};
use pss_billing_tests::unique;
use pss_local::emulators::{free_port, start_fake_stripe};
use pss_local::stack::EMULATED_ACCOUNT_ID;
use serde_json::{Value, json};
use tokio::time::{Duration, Instant};

async fn control(base: &str, path: &str, body: Value) {
    let url = format!("{base}{path}");
    let reply = blocking(move || post_json(&url, &body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn emitted(metric: &str) -> usize {
    metrics::captured()
        .iter()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v.get(metric).is_some()))
        .count()
}

/// A billed org with an active LeadGeneration subscription stored through its webhook.
async fn paying_org(rig: &Rig, name: &str) -> (String, OrgId, Value) {
    let (customer, org) = rig.billed_customer(name).await;
    let sub = rig.put_subscription(&customer, "leadgen_monthly").await;
    assert_outcome(
        rig.deliver_new("customer.subscription.created", &sub).await,
        "processed",
    );
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    (customer, org, sub)
}

#[tokio::test]
async fn a_key_of_another_account_changes_nothing_and_raises_the_alarm() {
    metrics::capture();
    // A fixture Stripe of this test's own: the key's account is switched below.
    let own = start_fake_stripe(free_port(), None);
    let rig = Rig::pinned(&own.url, EMULATED_ACCOUNT_ID).await;
    let (customer, org, sub) = paying_org(&rig, "pinned").await;
    let items_before = billing_items(&rig).await;
    let mismatches_before = emitted(metrics::STRIPE_ACCOUNT_MISMATCH);

    // The operator puts another account's key in place (its livemode matches, the webhook
    // secret is the endpoint's, so signatures still verify). A fresh container starts...
    control(
        &own.url,
        "/_test/account",
        json!({"id": "acct_someone_else"}),
    )
    .await;
    let rotated = Rig::with_store_pinned(rig.store.clone(), &own.url, EMULATED_ACCOUNT_ID);
    // ...and every event about this org is refused for retry, nothing written.
    for (kind, object) in [
        ("customer.subscription.updated", sub.clone()),
        (
            "customer.updated",
            rig::customer_object(&customer, Some(&org)),
        ),
        (
            "invoice.paid",
            rig::invoice_object(
                &unique("in_"),
                &customer,
                sub["id"].as_str().unwrap(),
                "paid",
                1,
            ),
        ),
    ] {
        let (status, body) = rotated.deliver_new(kind, &object).await;
        assert_eq!(status, 503, "{kind}: {body}");
    }
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    assert!(rig.store.billing_profile(&org).await.unwrap().is_some());
    // The audit trail keeps the refused deliveries; no billing item changed or appeared.
    assert_eq!(
        billing_items(&rotated).await,
        items_before,
        "only the audit trail may grow"
    );
    // Reconciliation stops before reading or writing anything.
    let run = rotated
        .reconciler(100)
        .run(Instant::now() + Duration::from_secs(30))
        .await;
    assert!(
        matches!(
            run,
            Err(billing::reconcile::ReconcileError::Stripe(
                StripeApiError::WrongAccount
            ))
        ),
        "{run:?}"
    );
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    assert!(emitted(metrics::STRIPE_ACCOUNT_MISMATCH) >= mismatches_before + 4);

    // The key is fixed: a real cancellation still ends access at once.
    control(
        &own.url,
        "/_test/account",
        json!({"id": EMULATED_ACCOUNT_ID}),
    )
    .await;
    let fixed = Rig::with_store_pinned(rig.store.clone(), &own.url, EMULATED_ACCOUNT_ID);
    let mut canceled = sub.clone();
    canceled["status"] = "canceled".into();
    canceled["canceled_at"] = billing::domain::Timestamp::now().unix().into();
    fake_put(&own.url, &canceled).await;
    assert_outcome(
        fixed
            .deliver_new("customer.subscription.deleted", &canceled)
            .await,
        "processed",
    );
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM"]);
}

/// The table's items but the audit trail (which keeps every verified delivery).
async fn billing_items(rig: &Rig) -> usize {
    let out = rig
        .store
        .client()
        .scan()
        .table_name(rig.store.table())
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items
        .unwrap_or_default()
        .iter()
        .filter(|i| {
            // The trail's items (`AUDIT#<event>`) and their per-org index (`ORG#` / `AUDIT#...`).
            let starts = |key: &str| {
                i.get(key)
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|k| k.starts_with("AUDIT#"))
            };
            !starts("PK") && !starts("SK")
        })
        .count()
}

#[tokio::test]
async fn a_404_that_nothing_confirms_ends_nothing() {
    metrics::capture();
    let rig = Rig::on_fake_stripe().await;
    let (customer, org, sub) = paying_org(&rig, "vanished").await;
    let sub_id = sub["id"].as_str().unwrap().to_owned();
    let unconfirmed_before = emitted(metrics::STRIPE_NOT_FOUND_UNCONFIRMED);

    // Stripe (for this key) has neither the subscription nor the customer nor the invoice.
    rig::fake_forget(&rig.stripe_url, &sub_id).await;
    rig::fake_forget(&rig.stripe_url, &customer).await;
    let invoice = rig::invoice_object(&unique("in_"), &customer, &sub_id, "paid", 1);
    for (kind, object) in [
        ("customer.subscription.updated", sub.clone()),
        (
            "customer.updated",
            rig::customer_object(&customer, Some(&org)),
        ),
        (
            "payment_method.detached",
            json!({"id": unique("pm_"), "object": "payment_method", "customer": customer}),
        ),
        ("invoice.paid", invoice),
    ] {
        let (status, body) = rig.deliver_new(kind, &object).await;
        assert_eq!(
            status, 503,
            "{kind}: retried, not taken as a deletion: {body}"
        );
    }
    assert_eq!(
        rig.status_of(&org, &sub_id).await,
        Some(SubscriptionStatus::Active)
    );
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    assert!(
        rig.store.billing_profile(&org).await.unwrap().is_some(),
        "still linked"
    );
    assert!(emitted(metrics::STRIPE_NOT_FOUND_UNCONFIRMED) >= unconfirmed_before + 3);

    // A deletion event backs the 404: the stored copy is ended...
    assert_outcome(
        rig.deliver_new("customer.subscription.deleted", &sub).await,
        "processed",
    );
    assert_eq!(
        rig.status_of(&org, &sub_id).await,
        Some(SubscriptionStatus::Canceled)
    );
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM"]);
    // ...but not for good: Stripe shows it live again (the right key), and that read wins.
    fake_put(&rig.stripe_url, &sub).await;
    assert_outcome(
        rig.deliver_new("customer.subscription.updated", &sub).await,
        "processed",
    );
    assert_eq!(
        rig.status_of(&org, &sub_id).await,
        Some(SubscriptionStatus::Active)
    );
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
}

#[tokio::test]
async fn reconciliation_restores_a_link_marked_deleted_whose_customer_stripe_still_has() {
    let rig = Rig::on_fake_stripe().await;
    let (customer, org, sub) = paying_org(&rig, "relink").await;
    let customer_id = CustomerId::parse(&customer).unwrap();
    // What the code before the account pin did on a wrong key's 404: unlinked, profile gone,
    // the subscription's stored copy ended.
    rig.store
        .unlink_deleted_customer(&org, &customer_id, None)
        .await
        .unwrap();
    assert!(rig.store.billing_profile(&org).await.unwrap().is_none());

    let report = rig.reconciler(100).run_pass().await.unwrap();
    assert_eq!(report.links_restored, 1, "{report:?}");
    let profile = rig
        .store
        .billing_profile(&org)
        .await
        .unwrap()
        .expect("profile back");
    assert_eq!(profile.customer_id, customer_id);
    assert_eq!(
        rig.status_of(&org, sub["id"].as_str().unwrap()).await,
        Some(SubscriptionStatus::Active)
    );
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    // A customer Stripe really deleted stays unlinked.
    rig::delete_customer(&rig.stripe_url, &customer).await;
    rig.store
        .unlink_deleted_customer(&org, &customer_id, None)
        .await
        .unwrap();
    let report = rig.reconciler(100).run_pass().await.unwrap();
    assert_eq!(report.links_restored, 0);
    assert!(rig.store.billing_profile(&org).await.unwrap().is_none());
}

/// A subscription with LeadGeneration and an add-on price that maps to no module.
fn with_bare_add_on(sub: &Value, status: &str) -> Value {
    let mut sub = sub.clone();
    let mut add_on = sub["items"]["data"][0].clone();
    add_on["id"] = format!("{}_addon", add_on["id"].as_str().unwrap()).into();
    add_on["price"]["id"] = "price_dashboard_addon".into();
    add_on["price"]["lookup_key"] = Value::Null;
    add_on["price"]["metadata"] = json!({});
    add_on["price"]["product"] = "prod_without_module".into();
    add_on["plan"]["id"] = "price_dashboard_addon".into();
    sub["items"]["data"].as_array_mut().unwrap().push(add_on);
    sub["status"] = status.into();
    sub
}

#[tokio::test]
async fn an_unmapped_price_grants_nothing_and_no_longer_freezes_the_stored_state() {
    metrics::capture();
    let rig = Rig::on_fake_stripe().await;
    let (customer, org, sub) = paying_org(&rig, "addon").await;
    let mut product = rig::fixture("product");
    product["id"] = "prod_without_module".into();
    product["metadata"] = json!({});
    fake_put(&rig.stripe_url, &product).await;
    let parked_before = emitted(metrics::PARKED_EVENTS);

    // Stripe's state moves on while the add-on is on the subscription: every step reaches
    // the table, the add-on grants nothing, the alarm's metric counts it.
    for (status, unlocked) in [
        ("active", vec!["BasicCRM", "LeadGeneration"]),
        ("past_due", vec!["BasicCRM", "LeadGeneration"]),
        ("unpaid", vec!["BasicCRM"]),
    ] {
        let current = with_bare_add_on(&sub, status);
        fake_put(&rig.stripe_url, &current).await;
        assert_outcome(
            rig.deliver_new("customer.subscription.updated", &current)
                .await,
            "processed",
        );
        assert_eq!(rig.unlocked(&org).await, unlocked, "{status}");
        assert_eq!(
            rig.status_of(&org, sub["id"].as_str().unwrap()).await,
            SubscriptionStatus::parse(status)
        );
    }
    assert!(emitted(metrics::PARKED_EVENTS) >= parked_before + 3);
    // Reconciliation repairs the org and names the price to fix.
    let report = rig.reconciler(100).run_pass().await.unwrap();
    assert_eq!(report.org_errors, 0, "{report:?}");
    assert!(
        report
            .unmapped_prices
            .contains(&"price_dashboard_addon".to_owned())
    );
    let _ = customer;
}

#[tokio::test]
async fn a_reparked_event_keeps_its_first_arrival_and_unlinked_customers_cost_no_stripe_request() {
    let rig = Rig::on_fake_stripe().await;
    // A Payment Link buyer's subscription: its customer is linked to no org.
    let stranger = unique("cus_");
    let sub = rig::active_subscription(&stranger, "leadgen_monthly");
    fake_put(&rig.stripe_url, &sub).await;
    let evt = event(&unique("evt_"), "customer.subscription.created", &sub);
    assert_outcome(rig.deliver(&evt).await, "parked");
    let first = rig.store.unresolved_events().await.unwrap();
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // Redelivered, and replayed by reconciliation: still parked, first arrival kept.
    assert_outcome(rig.deliver(&evt).await, "parked");
    let requests_before = stripe_requests_for(&rig.stripe_url, evt["id"].as_str().unwrap()).await;
    let report = rig
        .reconciler(100)
        .run(Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(report.parked_skipped_unlinked, 1, "{report:?}");
    assert_eq!(
        stripe_requests_for(&rig.stripe_url, evt["id"].as_str().unwrap()).await,
        requests_before,
        "the event of an unlinked customer is not re-read from Stripe"
    );
    let again = rig.store.unresolved_events().await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].received_at, first[0].received_at);
}

async fn stripe_requests_for(base: &str, needle: &str) -> usize {
    let url = format!("{base}/_test/requests");
    let all = blocking(move || get(&url).json()).await;
    all.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.contains(needle)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkouts_burst_of_events_applies_on_first_delivery_with_the_eager_sync() {
    let rig = Arc::new(Rig::on_fake_stripe().await);
    let (customer, org) = rig.billed_customer("burst").await;
    // Two modules on one subscription, as Checkout makes them, and its first invoice.
    let sub = rig::subscription_object(
        &unique("sub_"),
        &customer,
        "active",
        &[("leadgen_monthly", 1), ("email_automation_monthly", 1)],
    );
    fake_put(&rig.stripe_url, &sub).await;
    let invoice = rig::invoice_object(
        &unique("in_"),
        &customer,
        sub["id"].as_str().unwrap(),
        "paid",
        billing::domain::Timestamp::now().unix(),
    );
    fake_put(&rig.stripe_url, &invoice).await;
    let customer_object = rig::customer_object(&customer, Some(&org));
    let burst: Vec<(&str, Value)> = vec![
        ("customer.subscription.created", sub.clone()),
        ("customer.subscription.updated", sub.clone()),
        ("invoice.finalized", invoice.clone()),
        ("invoice.paid", invoice.clone()),
        ("invoice.payment_succeeded", invoice.clone()),
        ("invoice.updated", invoice.clone()),
        ("customer.updated", customer_object.clone()),
        ("customer.subscription.updated", sub.clone()),
        ("invoice.paid", invoice.clone()),
        ("customer.updated", customer_object),
    ];
    let start = Arc::new(tokio::sync::Barrier::new(burst.len() + 1));
    let mut tasks = Vec::new();
    for (kind, object) in burst {
        let (rig, start) = (rig.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            (kind, rig.deliver_new(kind, &object).await)
        }));
    }
    let eager = {
        let (rig, start, org) = (rig.clone(), start.clone(), org.clone());
        tokio::spawn(async move {
            start.wait().await;
            rig.handler.syncer().sync_org(&org).await
        })
    };
    for task in tasks {
        let (kind, (status, body)) = task.await.unwrap();
        assert_eq!(status, 200, "{kind} on its first delivery: {body}");
    }
    eager.await.unwrap().expect("the eager sync succeeds too");
    assert_eq!(
        rig.unlocked(&org).await,
        ["BasicCRM", "LeadGeneration", "EmailAutomation"]
    );
}
