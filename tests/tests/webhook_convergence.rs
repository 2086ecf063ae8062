//! Property test: orgs with one to three subscriptions go through random lifecycles in the
//! (fake) Stripe: upgrades, downgrades, quantity changes, incomplete → active or expired,
//! trials, past due (with and without grace left), unpaid, paused and resumed, canceled, and
//! sometimes the customer deleted. Their events are delivered late, shuffled, duplicated and
//! several at once, racing eager syncs of the whole org; and Stripe's state changes *while*
//! syncs are in flight: a sync's read is held by the fake Stripe, the subscription changes, the
//! newer event is applied, then the held (stale) answer is let go. A read that sees an older
//! state with a newer clock (a replica behind, a clock ahead) is thrown at every canceled one.
//! Multi-item plans gain and lose items (a module added to the plan of its interval, or one
//! removed), as this service's add, the Dashboard or the API would change them, and a module
//! is set to end at period end by a subscription schedule whose next phase drops it: it grants
//! until that paid-through date and not after (a date sometimes already past, as when Stripe's
//! phase change has not reached the webhook yet).
//! Some subscriptions carry an add-on whose price maps to no module (it grants nothing and must
//! not freeze the rest), and Stripe sometimes answers 404 for a subscription that still exists
//! (what a key of another account sees): that delivery must be refused for retry, ending
//! nothing, and apply once Stripe shows the object again.
//!
//! Whatever the order, the stored subscriptions and the org's access must end equal to Stripe's
//! final state, computed by the small model below, never by the library's own mapping.
//!
//! `PSS_CONVERGENCE_CASES` (default 500, at least 1) sets the number of cases; `PSS_SEED`
//! replays a run.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing::domain::{GracePolicy, OrgId};
use billing::store::LinkOutcome;
use fastrand::Rng;
use pss_billing_tests::http::{blocking, get, post_json};
use pss_billing_tests::rig::{self, Rig, event, fake_put};
use pss_billing_tests::{build, fake_stripe, fresh_store, unique};
use serde_json::{Value, json};

// ---- the model: what Stripe's state grants, written independently of the library ------------

/// Lookup key -> module, as the catalog in the README defines it.
const PRICES: [(&str, &str); 12] = [
    ("leadgen_monthly", "LeadGeneration"),
    ("leadgen_yearly", "LeadGeneration"),
    ("email_automation_monthly", "EmailAutomation"),
    ("email_automation_yearly", "EmailAutomation"),
    ("social_inbox_monthly", "SocialInbox"),
    ("social_inbox_yearly", "SocialInbox"),
    ("advanced_analytics_monthly", "AdvancedAnalytics"),
    ("advanced_analytics_yearly", "AdvancedAnalytics"),
    ("integrations_monthly", "Integrations"),
    ("integrations_yearly", "Integrations"),
    ("enterprise_monthly", "EnterpriseFeatures"),
    ("enterprise_yearly", "EnterpriseFeatures"),
];

/// Whether a subscription in `status` unlocks its modules right after entering it: active and
/// trialing do; past_due does while grace is left (here: a grace period longer than zero);
/// incomplete, incomplete_expired, unpaid, paused and canceled do not.
fn unlocks(status: &str, grace_days: i64) -> bool {
    match status {
        "active" | "trialing" => true,
        "past_due" => grace_days > 0,
        _ => false,
    }
}

fn module_of(lookup_key: &str) -> &'static str {
    PRICES.iter().find(|(k, _)| *k == lookup_key).unwrap().1
}

fn interval_of(lookup_key: &str) -> &'static str {
    if lookup_key.ends_with("_yearly") {
        "year"
    } else {
        "month"
    }
}

fn terminal(status: &str) -> bool {
    matches!(status, "canceled" | "incomplete_expired")
}

fn expected_access(subs: &[SubState], grace_days: i64, customer_deleted: bool) -> Vec<String> {
    let mut modules: BTreeSet<&str> = BTreeSet::from(["BasicCRM"]);
    let now = billing::domain::Timestamp::now().unix();
    if !customer_deleted {
        for sub in subs.iter().filter(|s| unlocks(s.status, grace_days)) {
            for (key, _) in &sub.items {
                // A module the schedule's next phase lacks is paid through the phase's end,
                // not after it (one added beside the schedule too: Stripe applies the next
                // phase as written).
                if sub
                    .ending
                    .as_ref()
                    .is_some_and(|(renewing, end)| !renewing.contains(key) && *end <= now)
                {
                    continue;
                }
                let module = PRICES.iter().find(|(k, _)| k == key).unwrap().1;
                modules.insert(module);
            }
        }
    }
    modules.into_iter().map(str::to_owned).collect()
}

// ---- Stripe's side ------------------------------------------------------------------------------

fn schedule_id(subscription: &str) -> String {
    format!("sub_sched_{}", subscription.trim_start_matches("sub_"))
}

#[derive(Clone)]
struct SubState {
    id: String,
    status: &'static str,
    items: Vec<(&'static str, u64)>,
    /// An add-on item whose price maps to no module (no lookup key, no `service_module`
    /// metadata on it or its product): it must grant nothing and freeze nothing.
    unmapped_add_on: bool,
    invoice_id: String,
    invoice_status: Option<&'static str>,
    /// A schedule ending modules at its current phase's end: the lookup keys its next phase
    /// renews, and that end.
    ending: Option<(Vec<&'static str>, i64)>,
}

/// The unmapped add-on's price (its product has no `service_module` metadata).
const ADD_ON_PRICE: &str = "price_convergence_add_on";

fn random_items(rng: &mut Rng) -> Vec<(&'static str, u64)> {
    let mut modules: Vec<&str> = PRICES.iter().map(|(_, m)| *m).collect();
    modules.dedup();
    rng.shuffle(&mut modules);
    modules.truncate(rng.usize(1..=2));
    modules
        .into_iter()
        .map(|m| {
            let keys: Vec<&'static str> = PRICES
                .iter()
                .filter(|(_, pm)| *pm == m)
                .map(|(k, _)| *k)
                .collect();
            (*rng.choice(keys.iter()).unwrap(), rng.u64(1..=5))
        })
        .collect()
}

/// The next status Stripe may move a live subscription to.
fn next_status(rng: &mut Rng, current: &str) -> &'static str {
    let choices: &[&'static str] = match current {
        "incomplete" => &["active", "incomplete_expired"],
        "trialing" => &["active", "past_due", "canceled", "paused"],
        _ => &["active", "past_due", "unpaid", "paused", "canceled"],
    };
    choices[rng.usize(0..choices.len())]
}

struct Case {
    rig: Arc<Rig>,
    stripe: String,
    customer: String,
    subs: Vec<SubState>,
    seed: u64,
}

impl Case {
    fn object(&self, sub: &SubState) -> Value {
        let mut object = rig::subscription_object(&sub.id, &self.customer, sub.status, &sub.items);
        if sub.ending.is_some() {
            object["schedule"] = schedule_id(&sub.id).into();
        }
        if sub.unmapped_add_on {
            let items = object["items"]["data"].as_array_mut().unwrap();
            let mut add_on = items[0].clone();
            add_on["id"] = format!("si_{}_add_on", sub.id).into();
            add_on["quantity"] = 1.into();
            add_on["price"]["id"] = ADD_ON_PRICE.into();
            add_on["price"]["lookup_key"] = Value::Null;
            add_on["price"]["metadata"] = json!({});
            add_on["price"]["product"] = "prod_convergence_add_on".into();
            add_on["plan"]["id"] = ADD_ON_PRICE.into();
            items.push(add_on);
        }
        object
    }

    /// Changes one live subscription in Stripe; returns the event Stripe would send.
    async fn step(&mut self, rng: &mut Rng, index: usize) -> Value {
        let created = billing::domain::Timestamp::now().unix();
        let sub = &mut self.subs[index];
        let kind = match rng.u8(0..8) {
            0 if sub.status != "incomplete" => {
                sub.items = random_items(rng); // upgrade, downgrade, swap interval
                sub.ending = None; // a direct change releases the schedule
                "customer.subscription.updated"
            }
            7 if sub.status != "incomplete" && sub.items.len() > 1 && sub.ending.is_none() => {
                // A module removed at period end (this service's DELETE): a schedule whose
                // next phase lacks it. Its end is the period's, or already past.
                let key = sub.items[rng.usize(0..sub.items.len())].0;
                let end = if rng.bool() {
                    created + 20 * 86_400
                } else {
                    created - 60
                };
                let renewing: Vec<&'static str> = sub
                    .items
                    .iter()
                    .map(|(k, _)| *k)
                    .filter(|k| *k != key)
                    .collect();
                sub.ending = Some((renewing, end));
                let (items, sub_id) = (sub.items.clone(), sub.id.clone());
                let phase_items = |keep: &dyn Fn(&str) -> bool| -> Vec<Value> {
                    items
                        .iter()
                        .filter(|(k, _)| keep(k))
                        .map(|(k, q)| json!({"price": format!("price_{k}"), "quantity": q}))
                        .collect()
                };
                let schedule = json!({
                    "id": schedule_id(&sub_id),
                    "object": "subscription_schedule",
                    "status": "active",
                    "customer": self.customer,
                    "subscription": sub_id,
                    "end_behavior": "release",
                    "current_phase": {"start_date": end - 30 * 86_400, "end_date": end},
                    "phases": [
                        {"start_date": end - 30 * 86_400, "end_date": end, "items": phase_items(&|_| true)},
                        {"start_date": end, "end_date": end + 30 * 86_400, "items": phase_items(&|k| k != key)},
                    ],
                });
                fake_put(&self.stripe, &schedule).await;
                let created_event =
                    event(&unique("evt_"), "subscription_schedule.updated", &schedule);
                let object = self.object(&self.subs[index].clone());
                fake_put(&self.stripe, &object).await;
                return created_event;
            }
            1 if sub.status != "incomplete" => {
                sub.items[0].1 = rng.u64(1..=9); // seats
                "customer.subscription.updated"
            }
            2 if sub.status != "incomplete" && sub.items.len() < 4 => {
                // A module added to the plan (this service's add, the Dashboard or the API):
                // one more item at the plan's interval.
                let interval = interval_of(sub.items[0].0);
                let held: Vec<&str> = sub.items.iter().map(|(k, _)| module_of(k)).collect();
                let addable: Vec<&'static str> = PRICES
                    .iter()
                    .filter(|(k, m)| interval_of(k) == interval && !held.contains(m))
                    .map(|(k, _)| *k)
                    .collect();
                if let Some(key) = rng.choice(addable) {
                    sub.items.push((key, 1));
                }
                "customer.subscription.updated"
            }
            3 if sub.status != "incomplete" && sub.items.len() > 1 => {
                // A module removed from a multi-item plan (at once, or at its phase's end).
                let gone = rng.usize(0..sub.items.len());
                sub.items.remove(gone);
                sub.ending = None;
                "customer.subscription.updated"
            }
            _ => {
                let next = next_status(rng, sub.status);
                let kind = match (sub.status, next) {
                    (_, "canceled") => "customer.subscription.deleted",
                    ("paused", "active") => "customer.subscription.resumed",
                    (_, "paused") => "customer.subscription.paused",
                    (_, "past_due") => {
                        sub.invoice_status = Some("open");
                        "invoice.payment_failed"
                    }
                    (_, "active") if rng.bool() => {
                        sub.invoice_status = Some("paid");
                        "invoice.paid"
                    }
                    _ => "customer.subscription.updated",
                };
                sub.status = next;
                kind
            }
        };
        let sub = self.subs[index].clone();
        let object = self.object(&sub);
        fake_put(&self.stripe, &object).await;
        if kind.starts_with("invoice.") {
            let invoice = rig::invoice_object(
                &sub.invoice_id,
                &self.customer,
                &sub.id,
                sub.invoice_status.unwrap(),
                created,
            );
            fake_put(&self.stripe, &invoice).await;
            return event(&unique("evt_"), kind, &invoice);
        }
        event(&unique("evt_"), kind, &object)
    }

    fn live(&self) -> Vec<usize> {
        (0..self.subs.len())
            .filter(|i| !terminal(self.subs[*i].status))
            .collect()
    }

    async fn control(&self, path: &str, body: Value) {
        let url = format!("{}{path}", self.stripe);
        let reply = blocking(move || post_json(&url, &body)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    async fn wait_held(&self, path: &str) {
        let url = format!("{}/_test/held", self.stripe);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = url.clone();
            let held = blocking(move || get(&url).json()).await;
            if held.as_array().unwrap().iter().any(|p| p == path) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "seed {}: {path} never held",
                self.seed
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A sync of `index` reads Stripe now but its answer arrives only after Stripe changed and
    /// the newer event was applied. `lagging` answers an older object instead (a read that
    /// starts later but sees the past).
    async fn race(&mut self, rng: &mut Rng, index: usize, lagging: Option<Value>) {
        let sub_id = self.subs[index].id.clone();
        let path = format!("/v1/subscriptions/{sub_id}");
        let mut hold = json!({ "path": path });
        if let Some(old) = &lagging {
            hold["object"] = old.clone();
        }
        self.control("/_test/hold", hold).await;
        let stale_event = event(
            &unique("evt_"),
            "customer.subscription.updated",
            &self.object(&self.subs[index]),
        );
        let rig = self.rig.clone();
        let seed = self.seed;
        let slow = tokio::spawn(async move {
            let (status, body) = rig.deliver(&stale_event).await;
            assert_eq!(status, 200, "seed {seed}: {body}");
        });
        self.wait_held(&path).await;
        if lagging.is_none() && !terminal(self.subs[index].status) {
            let newer = self.step(rng, index).await;
            deliver(&self.rig, vec![newer], None, self.seed).await;
        }
        self.control("/_test/release", json!({ "path": path }))
            .await;
        slow.await.expect("held delivery");
    }
}

async fn deliver(rig: &Arc<Rig>, events: Vec<Value>, eager: Option<OrgId>, seed: u64) {
    let mut tasks = Vec::new();
    for e in events {
        let rig = rig.clone();
        tasks.push(tokio::spawn(async move {
            let (status, body) = rig.deliver(&e).await;
            assert_eq!(status, 200, "seed {seed}: {body}");
            let outcome = body["outcome"].as_str().unwrap_or_default().to_owned();
            assert!(
                ["processed", "up_to_date", "duplicate"].contains(&outcome.as_str()),
                "seed {seed}: {body}"
            );
        }));
    }
    if let Some(org) = eager {
        let rig = rig.clone();
        tasks.push(tokio::spawn(async move {
            rig.handler
                .syncer()
                .sync_org(&org)
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: eager sync: {e}"));
        }));
    }
    for t in tasks {
        t.await.expect("delivery task");
    }
}

async fn run_case(rig: Arc<Rig>, stripe: String, seed: u64, grace_days: i64) {
    let mut rng = Rng::with_seed(seed);
    let customer = unique("cus_");
    let org: OrgId = build::org("org");
    fake_put(&stripe, &rig::customer_object(&customer, Some(&org))).await;
    assert_eq!(rig.link(&org, &customer).await, LinkOutcome::Created);

    let subs = (0..rng.usize(1..=3))
        .map(|_| SubState {
            id: unique("sub_"),
            status: ["active", "trialing", "incomplete"][rng.usize(0..3)],
            items: random_items(&mut rng),
            unmapped_add_on: rng.u8(0..4) == 0,
            invoice_id: unique("in_"),
            invoice_status: None,
            ending: None,
        })
        .collect();
    let mut case = Case {
        rig: rig.clone(),
        stripe,
        customer,
        subs,
        seed,
    };
    let mut pending: Vec<Value> = Vec::new();
    let mut delivered: Vec<Value> = Vec::new();
    for sub in case.subs.clone() {
        let object = case.object(&sub);
        fake_put(&case.stripe, &object).await;
        pending.push(event(
            &unique("evt_"),
            "customer.subscription.created",
            &object,
        ));
    }
    for _ in 0..rng.usize(2..=6) {
        let live = case.live();
        let Some(&index) = rng.choice(live.iter()) else {
            break;
        };
        if rng.u8(0..10) < 3 {
            case.race(&mut rng, index, None).await;
            continue;
        }
        if rng.u8(0..10) == 0 {
            // Stripe answers 404 for a subscription that still exists (what a key of another
            // account sees): nothing may end, and the delivery is refused so Stripe retries.
            let object = case.object(&case.subs[index]);
            // The fixture Stripe forgets it, so it answers 404.
            rig::fake_forget(&case.stripe, &case.subs[index].id).await;
            let e = event(&unique("evt_"), "customer.subscription.updated", &object);
            let (status, body) = rig.deliver(&e).await;
            assert_eq!(status, 503, "seed {seed}: a 404 alone is retried: {body}");
            fake_put(&case.stripe, &object).await;
            pending.push(e); // Stripe's retry, once the object is readable again.
            continue;
        }
        let e = case.step(&mut rng, index).await;
        pending.push(e.clone());
        if rng.u8(0..10) < 3 {
            pending.push(e); // Stripe delivers at least once.
        }
        // Deliver some of what is pending now, some later: late and out of order.
        rng.shuffle(&mut pending);
        let now: Vec<Value> = (0..rng.usize(0..=pending.len().min(3)))
            .filter_map(|_| pending.pop())
            .collect();
        let eager = rng.u8(0..5).eq(&0).then(|| org.clone());
        delivered.extend(now.iter().cloned());
        deliver(&rig, now, eager, seed).await;
    }
    rng.shuffle(&mut pending);
    while !pending.is_empty() {
        let take = rng.usize(1..=3).min(pending.len());
        let group: Vec<Value> = pending.split_off(pending.len() - take);
        delivered.extend(group.iter().cloned());
        deliver(&rig, group, None, seed).await;
    }

    // Last word to a stale read: it must lose to what was applied after it was read.
    if let Some(&index) = rng.choice(case.live().iter()) {
        case.race(&mut rng, index, None).await;
    }
    // Every subscription that ended is thrown a read of an earlier, live copy.
    for index in 0..case.subs.len() {
        if case.subs[index].status == "canceled" {
            let mut earlier = case.subs[index].clone();
            earlier.status = "active";
            let old = case.object(&earlier);
            case.race(&mut rng, index, Some(old)).await;
        }
    }
    // Sometimes the customer is deleted, which cancels every subscription.
    let customer_deleted = rng.u8(0..10) == 0;
    if customer_deleted {
        for index in 0..case.subs.len() {
            if !terminal(case.subs[index].status) {
                case.subs[index].status = "canceled";
            }
            let object = case.object(&case.subs[index]);
            fake_put(&case.stripe, &object).await;
        }
        rig::delete_customer(&case.stripe, &case.customer).await;
        let deleted = json!({ "id": case.customer, "object": "customer", "deleted": true });
        deliver(
            &rig,
            vec![event(&unique("evt_"), "customer.deleted", &deleted)],
            None,
            seed,
        )
        .await;
    }

    // A redelivery long after is a duplicate.
    if let Some(old) = rng.choice(delivered.iter()) {
        let (status, body) = rig.deliver(old).await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (200, Some("duplicate")),
            "seed {seed}"
        );
    }

    // Stripe's final state, subscription by subscription.
    let stored = rig.store.subscriptions(&org).await.unwrap();
    for sub in &case.subs {
        let Some(got) = stored.iter().find(|s| s.subscription.id.as_str() == sub.id) else {
            // Never delivered before the customer went away is fine only if it grants nothing.
            assert!(
                !unlocks(sub.status, grace_days),
                "seed {seed}: {} missing",
                sub.id
            );
            continue;
        };
        let got = &got.subscription;
        assert_eq!(
            got.status.as_str(),
            sub.status,
            "seed {seed}: status of {}",
            sub.id
        );
        let mut want_items: Vec<(String, u64)> = sub
            .items
            .iter()
            .map(|(k, q)| ((*k).to_owned(), *q))
            .collect();
        if sub.unmapped_add_on {
            // Stored as Stripe has it: the item is there, mapped to no module.
            want_items.push((String::new(), 1));
            let add_on = got.items.iter().find(|i| i.price_id == ADD_ON_PRICE);
            assert_eq!(add_on.map(|i| i.module), Some(None), "seed {seed}");
        }
        let mut got_items: Vec<(String, u64)> = got
            .items
            .iter()
            .map(|i| (i.lookup_key.clone().unwrap_or_default(), i.quantity))
            .collect();
        want_items.sort();
        got_items.sort();
        assert_eq!(got_items, want_items, "seed {seed}: items of {}", sub.id);
    }
    let have = rig.unlocked(&org).await;
    let mut have_sorted = have.clone();
    have_sorted.sort();
    let mut want = expected_access(&case.subs, grace_days, customer_deleted);
    want.sort();
    assert_eq!(
        have_sorted,
        want,
        "seed {seed}: access differs from Stripe's state: {:?}",
        case.subs
            .iter()
            .map(|s| (s.status, s.items.clone(), s.ending.clone()))
            .collect::<Vec<_>>()
    );
    if customer_deleted {
        assert!(
            rig.store.billing_profile(&org).await.unwrap().is_none(),
            "seed {seed}"
        );
    }

    let page = rig.store.list_invoices(&org, 10, None).await.unwrap();
    for sub in case.subs.iter().filter(|s| s.invoice_status.is_some()) {
        if customer_deleted {
            continue;
        }
        let got = page
            .invoices
            .iter()
            .find(|i| i.id.as_str() == sub.invoice_id)
            .unwrap_or_else(|| panic!("seed {seed}: invoice {} missing", sub.invoice_id));
        let status = got.status.map(|s| format!("{s:?}").to_lowercase());
        assert_eq!(
            status.as_deref(),
            sub.invoice_status,
            "seed {seed}: invoice"
        );
    }
}

/// Cases run at once (their events interleave in moto and the fake Stripe).
const BATCH: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_late_duplicated_deliveries_converge_to_stripe_state() {
    let cases: u64 = std::env::var("PSS_CONVERGENCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    assert!(cases > 0, "PSS_CONVERGENCE_CASES=0 proves nothing");
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
    let started = Instant::now();
    let mut case = 0;
    while case < cases {
        // A fresh table per batch keeps moto's per-transaction table copy small. Every other
        // batch runs with no past-due grace, so past_due locks there.
        let grace_days = if (case / BATCH).is_multiple_of(2) {
            7
        } else {
            0
        };
        let rig = Arc::new(Rig::with_policy(
            fresh_store().await,
            &stripe.url,
            GracePolicy::days(grace_days),
        ));
        let batch: Vec<_> = (case..(case + BATCH).min(cases))
            .map(|i| {
                tokio::spawn(run_case(
                    rig.clone(),
                    stripe.url.clone(),
                    seed.wrapping_add(i),
                    grace_days,
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
