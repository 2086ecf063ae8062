//! Reconciliation against moto and the fixture Stripe: a table drifted on purpose is repaired,
//! with the expected state and counts written by hand, and a second run finds nothing.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use billing::domain::{EventId, SubscriptionStatus};
use billing::reconcile::{DriftCount, DriftKind, Report};
use pss_billing_tests::rig::{self, Rig, event, fake_put};
use pss_billing_tests::{fake_stripe, unique};
use serde_json::{Value, json};
use tokio::time::Instant;

fn customer(id: &str, default_pm: Option<&str>) -> Value {
    let mut c = rig::fixture("customer");
    c["id"] = id.into();
    c["metadata"] = json!({});
    c["invoice_settings"]["default_payment_method"] = default_pm.map_or(Value::Null, Value::from);
    c
}

fn payment_method(id: &str, customer: &str) -> Value {
    let mut pm = rig::fixture("payment_method");
    pm["id"] = id.into();
    pm["customer"] = customer.into();
    pm["created"] = 1_700_000_000.into();
    pm
}

fn stripe_event(id: &str, kind: &str, object: &Value, pending_webhooks: u64) -> Value {
    let mut e = event(id, kind, object);
    e["pending_webhooks"] = pending_webhooks.into();
    e["created"] = billing::domain::Timestamp::now().unix().into();
    e
}

fn drift(report: &Report) -> Vec<(DriftKind, DriftCount)> {
    report.drift.iter().map(|(k, c)| (*k, *c)).collect()
}

fn both(n: u64) -> DriftCount {
    DriftCount {
        found: n,
        repaired: n,
    }
}

#[tokio::test]
async fn a_drifted_table_is_repaired_and_a_second_run_finds_nothing() {
    let stripe = fake_stripe();
    let rig = Rig::new(&stripe.url).await;
    let syncer = rig.handler.syncer();

    // Org A: two subscriptions and a card, synced; then Stripe moves on without telling us.
    let cus_a = unique("cus_");
    let (sub_a1, sub_a2, sub_a5) = (unique("sub_"), unique("sub_"), unique("sub_"));
    let pm_a = unique("pm_");
    fake_put(&stripe.url, &customer(&cus_a, Some(&pm_a))).await;
    fake_put(&stripe.url, &payment_method(&pm_a, &cus_a)).await;
    let a1 = rig::subscription_object(&sub_a1, &cus_a, "active", &[("leadgen_monthly", 1)]);
    fake_put(&stripe.url, &a1).await;
    let a2 = rig::subscription_object(
        &sub_a2,
        &cus_a,
        "active",
        &[("email_automation_monthly", 1)],
    );
    fake_put(&stripe.url, &a2).await;
    let org_a = rig.linked_org("recon-a", &cus_a).await;
    syncer.sync_org(&org_a).await.unwrap();
    assert_eq!(
        rig.unlocked(&org_a).await,
        ["BasicCRM", "LeadGeneration", "EmailAutomation"]
    );
    // Drift: a subscription item and the card's item lost, a cancellation never delivered...
    rig.delete_item(format!("ORG#{org_a}"), format!("SUB#{sub_a2}"))
        .await;
    rig.delete_item(format!("ORG#{org_a}"), format!("PM#{pm_a}"))
        .await;
    fake_put(
        &stripe.url,
        &rig::subscription_object(&sub_a1, &cus_a, "canceled", &[("leadgen_monthly", 1)]),
    )
    .await;
    // ...a new subscription whose event Stripe could not deliver (still pending)...
    let a5 = rig::subscription_object(&sub_a5, &cus_a, "active", &[("social_inbox_monthly", 1)]);
    fake_put(&stripe.url, &a5).await;
    let evt_undelivered = unique("evt_");
    fake_put(
        &stripe.url,
        &stripe_event(&evt_undelivered, "customer.subscription.created", &a5, 1),
    )
    .await;
    // ...and an invoice never stored.
    let inv_a = unique("in_");
    fake_put(
        &stripe.url,
        &rig::invoice_object(&inv_a, &cus_a, &sub_a1, "paid", 1_700_000_100),
    )
    .await;

    // Org B: a subscription Stripe no longer has, and entitlements edited by hand.
    let cus_b = unique("cus_");
    let (sub_b1, sub_b3) = (unique("sub_"), unique("sub_"));
    fake_put(&stripe.url, &customer(&cus_b, None)).await;
    fake_put(
        &stripe.url,
        &rig::subscription_object(&sub_b1, &cus_b, "active", &[("enterprise_monthly", 1)]),
    )
    .await;
    fake_put(
        &stripe.url,
        &rig::subscription_object(
            &sub_b3,
            &cus_b,
            "active",
            &[("advanced_analytics_monthly", 1)],
        ),
    )
    .await;
    let org_b = rig.linked_org("recon-b", &cus_b).await;
    syncer.sync_org(&org_b).await.unwrap();
    let url = format!("{}/_test/objects/{sub_b3}", stripe.url);
    let gone = pss_billing_tests::http::blocking(move || {
        pss_billing_tests::http::request("DELETE", &url, &[], b"")
    })
    .await;
    assert_eq!(gone.status, 200);
    rig.store
        .client()
        .update_item()
        .table_name(rig.store.table())
        .key("PK", AttributeValue::S(format!("ORG#{org_b}")))
        .key(
            "SK",
            AttributeValue::S(billing::store::keys::ENTITLEMENTS.into()),
        )
        .update_expression("REMOVE grants.#m")
        .expression_attribute_names("#m", "EnterpriseFeatures")
        .send()
        .await
        .unwrap();
    assert_eq!(
        rig.unlocked(&org_b).await,
        ["BasicCRM", "AdvancedAnalytics"]
    );

    // Org C: its subscription's event was parked (customer unknown), then the customer linked.
    let cus_c = unique("cus_");
    let sub_c4 = unique("sub_");
    fake_put(&stripe.url, &customer(&cus_c, None)).await;
    let c4 = rig::subscription_object(&sub_c4, &cus_c, "active", &[("integrations_monthly", 1)]);
    fake_put(&stripe.url, &c4).await;
    let evt_parked = unique("evt_");
    let parked = stripe_event(&evt_parked, "customer.subscription.created", &c4, 0);
    fake_put(&stripe.url, &parked).await;
    let (status, body) = rig.deliver(&parked).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("parked")));
    let org_c = rig.linked_org("recon-c", &cus_c).await;
    assert_eq!(rig.unlocked(&org_c).await, ["BasicCRM"]);

    // Org D: no subscription at all, yet its entitlements item grants a paid module: only the
    // recompute from stored subscriptions can find this one (no sync writes for it).
    let cus_d = unique("cus_");
    fake_put(&stripe.url, &customer(&cus_d, None)).await;
    let org_d = rig.linked_org("recon-d", &cus_d).await;
    let grant = AttributeValue::M(
        [("until".to_owned(), AttributeValue::Null(true))]
            .into_iter()
            .collect(),
    );
    rig.store
        .client()
        .put_item()
        .table_name(rig.store.table())
        .item("PK", AttributeValue::S(format!("ORG#{org_d}")))
        .item(
            "SK",
            AttributeValue::S(billing::store::keys::ENTITLEMENTS.into()),
        )
        .item("org_id", AttributeValue::S(org_d.as_str().into()))
        .item("version", AttributeValue::N("1".into()))
        .item("updated_at", AttributeValue::N("1700000000".into()))
        .item(
            "grants",
            AttributeValue::M([("LeadGeneration".to_owned(), grant)].into_iter().collect()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(rig.unlocked(&org_d).await, ["BasicCRM", "LeadGeneration"]);

    // Pages of 2 items: the pass takes several pages, each saving the cursor.
    billing::metrics::capture();
    let job = rig.reconciler(2);
    let report = job
        .run(Instant::now() + Duration::from_secs(120))
        .await
        .unwrap();
    assert!(report.pass_complete, "{report:?}");
    // The run's metrics: drift by kind, as EMF lines.
    let by_kind: Vec<Value> = billing::metrics::captured()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["Kind"] == "wrong_entitlements")
        .collect();
    assert_eq!(by_kind.len(), 1, "{by_kind:?}");
    assert_eq!(
        (
            &by_kind[0]["ReconcileDriftFound"],
            &by_kind[0]["ReconcileDriftRepaired"]
        ),
        (&json!(2.0), &json!(2.0))
    );
    assert_eq!(
        by_kind[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Kind"]])
    );
    assert_eq!(
        (report.orgs_checked, report.org_errors),
        (4, 0),
        "{report:?}"
    );
    assert_eq!(
        drift(&report),
        [
            (DriftKind::MissingSubscription, both(1)),
            (DriftKind::StaleSubscription, both(1)),
            // Stripe answers 404 for it and nothing confirms a deletion: found, not ended.
            (
                DriftKind::ExtraSubscription,
                DriftCount {
                    found: 1,
                    repaired: 0
                }
            ),
            (DriftKind::WrongEntitlements, both(2)),
            (DriftKind::MissingPaymentMethod, both(1)),
            (DriftKind::MissingInvoice, both(1)),
            (DriftKind::ParkedEvent, both(1)),
            (DriftKind::UndeliveredEvent, both(1)),
        ],
        "{report:?}"
    );
    assert_eq!(report.still_parked, 0);
    assert!(report.stripe_requests > 0);

    // The repaired state, as Stripe has it.
    assert_eq!(
        rig.status_of(&org_a, &sub_a1).await,
        Some(SubscriptionStatus::Canceled)
    );
    assert_eq!(
        rig.status_of(&org_a, &sub_a2).await,
        Some(SubscriptionStatus::Active)
    );
    assert_eq!(
        rig.status_of(&org_a, &sub_a5).await,
        Some(SubscriptionStatus::Active)
    );
    assert_eq!(
        rig.unlocked(&org_a).await,
        ["BasicCRM", "EmailAutomation", "SocialInbox"]
    );
    let (methods, default) = rig.store.payment_methods(&org_a).await.unwrap();
    assert_eq!(
        methods.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [pm_a.as_str()]
    );
    assert_eq!(default.unwrap().as_str(), pm_a);
    let invoices = rig.store.list_invoices(&org_a, 10, None).await.unwrap();
    assert_eq!(
        invoices
            .invoices
            .iter()
            .map(|i| i.id.as_str())
            .collect::<Vec<_>>(),
        [inv_a.as_str()]
    );
    // A 404 alone is not proof of deletion (a key of another account answers the same): the
    // copy stays as it was and the run reports it.
    assert_eq!(report.not_found_unconfirmed, 1, "{report:?}");
    assert_eq!(
        rig.status_of(&org_b, &sub_b3).await,
        Some(SubscriptionStatus::Active)
    );
    assert_eq!(
        rig.unlocked(&org_b).await,
        ["BasicCRM", "AdvancedAnalytics", "EnterpriseFeatures"]
    );
    assert_eq!(
        rig.status_of(&org_c, &sub_c4).await,
        Some(SubscriptionStatus::Active)
    );
    assert_eq!(rig.unlocked(&org_c).await, ["BasicCRM", "Integrations"]);
    assert_eq!(rig.unlocked(&org_d).await, ["BasicCRM"]);
    assert!(rig.store.unresolved_events().await.unwrap().is_empty());
    for evt in [&evt_parked, &evt_undelivered] {
        assert!(
            rig.store
                .event_processed(&EventId::parse(evt).unwrap())
                .await
                .unwrap(),
            "{evt} marked processed"
        );
    }

    // Stripe's deletion event for it backs the 404: the stored copy ends.
    let deleted = rig::subscription_object(
        &sub_b3,
        &cus_b,
        "active",
        &[("advanced_analytics_monthly", 1)],
    );
    rig::assert_outcome(
        rig.deliver_new("customer.subscription.deleted", &deleted)
            .await,
        "processed",
    );
    assert_eq!(
        rig.status_of(&org_b, &sub_b3).await,
        Some(SubscriptionStatus::Canceled)
    );
    assert_eq!(
        rig.unlocked(&org_b).await,
        ["BasicCRM", "EnterpriseFeatures"]
    );

    // Nothing left to repair; the still-pending event is recognised as already applied.
    let again = job
        .run(Instant::now() + Duration::from_secs(120))
        .await
        .unwrap();
    assert!(again.pass_complete);
    assert_eq!(again.drift_found(), 0, "{again:?}");
    assert_eq!(
        (again.orgs_checked, again.org_errors, again.event_errors),
        (4, 0, 0)
    );
    assert_eq!(
        rig.unlocked(&org_a).await,
        ["BasicCRM", "EmailAutomation", "SocialInbox"]
    );
    rig.drop_table().await;
}

#[tokio::test]
async fn a_run_past_its_deadline_saves_its_cursor_and_the_next_run_carries_on() {
    let stripe = fake_stripe();
    let rig = Rig::new(&stripe.url).await;
    let mut orgs = Vec::new();
    for i in 0..3 {
        let cus = unique("cus_");
        fake_put(&stripe.url, &customer(&cus, None)).await;
        orgs.push(rig.linked_org(&format!("recon-cursor{i}-"), &cus).await);
    }
    // Each item read is a page (profiles and links alternate in the scan); a deadline already
    // passed still lets the run finish the page it started, never more.
    let job = rig.reconciler(1);
    let mut checked = 0;
    let mut runs = 0;
    loop {
        let report = job.run(Instant::now()).await.unwrap();
        runs += 1;
        checked += report.orgs_checked;
        assert!(report.orgs_checked <= 1, "{report:?}");
        if report.pass_complete {
            break;
        }
        assert!(runs < 20, "the cursor does not move");
    }
    assert_eq!(checked, 3, "every org exactly once in a pass");
    assert_eq!(
        rig.store.reconcile_state().await.unwrap().passes_completed,
        1
    );
    rig.drop_table().await;
}
