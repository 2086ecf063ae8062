//! Property test: random subscription lifecycles change the (fake) Stripe's state step by step;
//! their events are delivered late, shuffled, duplicated and several at once, racing eager
//! syncs. Whatever the order, the stored subscription, invoice and entitlements must end equal
//! to Stripe's final state.
//!
//! `PSS_CONVERGENCE_CASES` (default 500) sets the number of cases, `PSS_SEED` replays a run.

use std::sync::Arc;

use billing::domain::{Catalog, EntitlementSet, GracePolicy, OrgId, Timestamp};
use billing::store::LinkOutcome;
use billing::stripe::StripeSubscription;
use fastrand::Rng;
use pss_billing_tests::rig::{self, Rig, event, fake_put};
use pss_billing_tests::{build, fake_stripe, unique};
use serde_json::Value;

const KEYS: [&str; 6] = [
    "leadgen_monthly",
    "email_automation_yearly",
    "social_inbox_monthly",
    "advanced_analytics_yearly",
    "integrations_monthly",
    "enterprise_yearly",
];

/// Cases run at once (their events interleave in moto and the fake Stripe).
const BATCH: u64 = 10;

struct Step {
    subscription: Value,
    invoice: Option<Value>,
    event: Value,
}

fn random_items(rng: &mut Rng) -> Vec<(&'static str, u64)> {
    let mut keys = KEYS.to_vec();
    rng.shuffle(&mut keys);
    keys.truncate(rng.usize(1..=3));
    keys.into_iter().map(|k| (k, rng.u64(1..=5))).collect()
}

/// A lifecycle: created, then updates / failed and paid invoices, maybe deleted.
fn lifecycle(rng: &mut Rng, customer: &str, sub: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut items = random_items(rng);
    let mut status = *rng
        .choice(["active", "trialing", "incomplete"].iter())
        .unwrap();
    let invoice_id = unique("in_");
    let created = Timestamp::now().unix();
    let n = rng.usize(2..=8);
    for i in 0..n {
        let mut invoice = None;
        let kind = if i == 0 {
            "customer.subscription.created"
        } else if i == n - 1 && rng.bool() {
            status = "canceled";
            "customer.subscription.deleted"
        } else {
            match rng.u8(0..4) {
                0 => {
                    items = random_items(rng);
                    "customer.subscription.updated"
                }
                1 => {
                    status = *rng
                        .choice(["active", "trialing", "past_due", "unpaid", "paused"].iter())
                        .unwrap();
                    if let Some(first) = items.first_mut() {
                        first.1 = rng.u64(1..=5);
                    }
                    "customer.subscription.updated"
                }
                2 => {
                    status = "past_due";
                    invoice = Some(rig::invoice_object(
                        &invoice_id,
                        customer,
                        sub,
                        "open",
                        created,
                    ));
                    "invoice.payment_failed"
                }
                _ => {
                    status = "active";
                    invoice = Some(rig::invoice_object(
                        &invoice_id,
                        customer,
                        sub,
                        "paid",
                        created,
                    ));
                    "invoice.paid"
                }
            }
        };
        let subscription = rig::subscription_object(sub, customer, status, &items);
        let object = invoice.clone().unwrap_or_else(|| subscription.clone());
        steps.push(Step {
            subscription,
            invoice,
            event: event(&unique("evt_"), kind, &object),
        });
        if status == "canceled" {
            break;
        }
    }
    steps
}

async fn deliver_group(rig: &Arc<Rig>, events: Vec<Value>, eager_sync: Option<String>) {
    let mut tasks = Vec::new();
    for e in events {
        let rig = rig.clone();
        tasks.push(tokio::spawn(async move {
            let (status, body) = rig.deliver(&e).await;
            assert_eq!(status, 200, "{body}");
            let outcome = body["outcome"].as_str().unwrap_or_default().to_owned();
            assert!(
                ["processed", "up_to_date", "duplicate"].contains(&outcome.as_str()),
                "{body}"
            );
        }));
    }
    if let Some(sub) = eager_sync {
        let rig = rig.clone();
        tasks.push(tokio::spawn(async move {
            let id = billing::domain::SubscriptionId::parse(sub).unwrap();
            rig.handler
                .syncer
                .sync_subscription(&id, None)
                .await
                .expect("eager sync");
        }));
    }
    for t in tasks {
        t.await.expect("delivery task");
    }
}

async fn run_case(rig: Arc<Rig>, stripe_url: String, seed: u64) {
    let mut rng = Rng::with_seed(seed);
    let customer = unique("cus_");
    let sub = unique("sub_");
    let org: OrgId = build::org("org");
    let linked = rig
        .store
        .link_customer(
            &org,
            &billing::domain::CustomerId::parse(&customer).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(linked, LinkOutcome::Created);
    let steps = lifecycle(&mut rng, &customer, &sub);
    let mut pending: Vec<Value> = Vec::new();
    let mut delivered: Vec<Value> = Vec::new();
    for step in &steps {
        fake_put(&stripe_url, &step.subscription).await;
        if let Some(invoice) = &step.invoice {
            fake_put(&stripe_url, invoice).await;
        }
        pending.push(step.event.clone());
        if rng.u8(0..10) < 3 {
            pending.push(step.event.clone()); // Stripe delivers at least once.
        }
        // Deliver some of what is pending now, some later: late and out of order.
        rng.shuffle(&mut pending);
        let now: Vec<Value> = (0..rng.usize(0..=pending.len().min(3)))
            .filter_map(|_| pending.pop())
            .collect();
        let eager = rng.u8(0..5).eq(&0).then(|| sub.clone());
        delivered.extend(now.iter().cloned());
        deliver_group(&rig, now, eager).await;
    }
    rng.shuffle(&mut pending);
    while !pending.is_empty() {
        let take = rng.usize(1..=3).min(pending.len());
        let group: Vec<Value> = pending.split_off(pending.len() - take);
        delivered.extend(group.iter().cloned());
        deliver_group(&rig, group, None).await;
    }
    // A redelivery long after is a duplicate.
    let (status, body) = rig.deliver(rng.choice(delivered.iter()).unwrap()).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("duplicate")),
        "seed {seed}"
    );

    let last = steps.last().unwrap();
    let expected: StripeSubscription = serde_json::from_value(last.subscription.clone()).unwrap();
    let mut expected = expected.to_domain(&Catalog::standard()).unwrap();
    let stored = rig.store.subscriptions(&org).await.unwrap();
    assert_eq!(stored.len(), 1, "seed {seed}");
    let got = stored[0].subscription.clone();
    assert_eq!(
        got.past_due_since.is_some(),
        expected.status.as_str() == "past_due",
        "seed {seed}"
    );
    expected.past_due_since = got.past_due_since;
    assert_eq!(
        got, expected,
        "seed {seed}: stored subscription differs from Stripe's final state"
    );

    let now = Timestamp::now();
    let want =
        EntitlementSet::from_subscriptions([&expected], GracePolicy::default()).unlocked_at(now);
    let have = rig
        .store
        .entitlements(&org, true)
        .await
        .unwrap()
        .expect("entitlements item")
        .set
        .unlocked_at(now);
    assert_eq!(have, want, "seed {seed}: entitlements differ");

    if let Some(invoice) = steps.iter().rev().find_map(|s| s.invoice.clone()) {
        let page = rig.store.list_invoices(&org, 10, None).await.unwrap();
        assert_eq!(page.invoices.len(), 1, "seed {seed}");
        let status = page.invoices[0]
            .status
            .map(|s| format!("{s:?}").to_lowercase());
        assert_eq!(
            status.as_deref(),
            invoice["status"].as_str(),
            "seed {seed}: invoice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shuffled_duplicated_concurrent_deliveries_converge_to_stripe_state() {
    let cases: u64 = std::env::var("PSS_CONVERGENCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let seed: u64 = std::env::var("PSS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    println!("convergence: {cases} cases, PSS_SEED={seed}");
    let stripe = fake_stripe();
    let started = std::time::Instant::now();
    let mut case = 0;
    while case < cases {
        // A fresh table per batch keeps moto's per-transaction table copy small.
        let rig = Arc::new(Rig::new(&stripe.url).await);
        let batch: Vec<_> = (case..(case + BATCH).min(cases))
            .map(|i| {
                tokio::spawn(run_case(
                    rig.clone(),
                    stripe.url.clone(),
                    seed.wrapping_add(i),
                ))
            })
            .collect();
        for task in batch {
            task.await.expect("case");
        }
        rig.drop_table().await;
        case += BATCH;
    }
    println!(
        "convergence: {cases} cases passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
