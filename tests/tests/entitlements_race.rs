//! An org's access is computed from one consistent view of all its subscriptions.
//!
//! Each test pauses one sync at a chosen DynamoDB request (tests/emulators/dynamo_gate.py holds
//! it before it reaches moto), lets a sync of a sibling subscription commit meanwhile, then lets
//! the first one go on. The expected access is written out by hand from Stripe's final state.

use std::time::{Duration, Instant};

use billing::domain::{GracePolicy, OrgId, SubscriptionId};
use billing::store::BillingStore;
use billing::store::table::create_table;
use billing::stripe::StripeApi;
use billing::sync::Syncer;
use pss_billing_tests::build::org;
use pss_billing_tests::http::{blocking, get, post_json};
use pss_billing_tests::rig::{self, fake_put};
use pss_billing_tests::{
    Emulator, dynamo_client, emulators, fake_stripe, free_port, moto, unique, venv_bin,
    workspace_root,
};
use serde_json::{Value, json};

/// What the body of the one read of a subscription write contains: the Query of the org's
/// entitlements and subscriptions together (`begins_with(SK, "SUB")`).
const ACCESS_QUERY: &str = r#"{"S":"SUB"}"#;

/// A gate in front of the shared moto, for one test.
fn start_gate() -> Emulator {
    let port = free_port();
    let script = workspace_root().join("tests/emulators/dynamo_gate.py");
    emulators::start(
        venv_bin("python"),
        &[
            script.display().to_string(),
            "--port".into(),
            port.to_string(),
            "--upstream".into(),
            moto().url.clone(),
        ],
        port,
    )
}

async fn gate_call(gate: &Emulator, path: &str, body: Option<Value>) -> Value {
    let url = format!("{}{path}", gate.url);
    let reply = blocking(move || match body {
        Some(body) => post_json(&url, &body),
        None => get(&url),
    })
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// Waits until exactly one request is held and nothing else is in flight at moto, so every
/// request the paused sync made before the held one has been answered.
async fn wait_until_held(gate: &Emulator) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = gate_call(gate, "/_gate/stats", None).await;
        if stats["held"] == 1 && stats["forwarding"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "nothing was held: {stats}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct World {
    gate: Emulator,
    syncer: Syncer,
    org: OrgId,
    customer: String,
}

async fn world() -> World {
    let gate = start_gate();
    let client = dynamo_client(&gate.url);
    let table = unique("race-");
    create_table(&client, &table).await.expect("table");
    let store = BillingStore::new(client, table);
    let stripe = StripeApi::new("sk_test_race", Some(&fake_stripe().url)).unwrap();
    let syncer = Syncer::new(store, stripe, GracePolicy::default());
    let org = org("race");
    let customer = unique("cus_");
    syncer
        .store
        .link_customer(
            &org,
            &billing::domain::CustomerId::parse(&customer).unwrap(),
        )
        .await
        .unwrap();
    World {
        gate,
        syncer,
        org,
        customer,
    }
}

impl World {
    async fn stripe_has(&self, id: &str, status: &str, lookup_key: &str, quantity: u64) {
        let sub = rig::subscription_object(id, &self.customer, status, &[(lookup_key, quantity)]);
        fake_put(&fake_stripe().url, &sub).await;
    }

    async fn sync(&self, id: &str) {
        self.syncer
            .sync_subscription(&SubscriptionId::parse(id).unwrap(), None)
            .await
            .expect("sync");
    }

    async fn unlocked(&self) -> Vec<String> {
        let set = self
            .syncer
            .store
            .entitlements(&self.org, true)
            .await
            .unwrap()
            .expect("entitlements")
            .set;
        set.unlocked_at(billing::domain::Timestamp::now())
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect()
    }

    /// Runs a sync of `paused`, holding its first request that matches `operation` and
    /// `contains`; while it waits, `meanwhile` runs to completion; then it goes on.
    async fn race(&self, paused: &str, operation: &str, contains: &[&str], meanwhile: &str) {
        gate_call(
            &self.gate,
            "/_gate/hold",
            Some(json!({ "operation": operation, "contains": contains })),
        )
        .await;
        let syncer = self.syncer.clone();
        let paused_id = SubscriptionId::parse(paused).unwrap();
        let first = tokio::spawn(async move { syncer.sync_subscription(&paused_id, None).await });
        wait_until_held(&self.gate).await;
        self.sync(meanwhile).await;
        gate_call(&self.gate, "/_gate/release", Some(json!({}))).await;
        first.await.unwrap().expect("paused sync");
    }
}

/// Sync of B is about to read (entitlements and subscriptions in one consistent Query) when
/// A's cancellation commits. B must compute access from the new A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sibling_committing_between_the_reads_is_not_lost() {
    let w = world().await;
    let (a, b) = (unique("sub_a"), unique("sub_b"));
    w.stripe_has(&a, "active", "leadgen_monthly", 1).await;
    w.stripe_has(&b, "active", "email_automation_monthly", 1)
        .await;
    w.sync(&a).await;
    w.sync(&b).await;
    assert_eq!(
        w.unlocked().await,
        ["BasicCRM", "LeadGeneration", "EmailAutomation"]
    );

    // Stripe now: A canceled, B active with another seat.
    w.stripe_has(&a, "canceled", "leadgen_monthly", 1).await;
    w.stripe_has(&b, "active", "email_automation_monthly", 2)
        .await;
    let org_key = format!("ORG#{}", w.org);
    w.race(&b, "Query", &[ACCESS_QUERY, &org_key], &a).await;
    assert_eq!(w.unlocked().await, ["BasicCRM", "EmailAutomation"]);
}

/// Sync of B has read everything (A active) and is about to write; A's cancellation commits
/// first. B's write must be refused and redone from the new set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_computed_from_an_outdated_set_is_refused() {
    let w = world().await;
    let (a, b) = (unique("sub_a"), unique("sub_b"));
    w.stripe_has(&a, "active", "social_inbox_monthly", 1).await;
    w.stripe_has(&b, "active", "integrations_yearly", 1).await;
    w.sync(&a).await;
    w.sync(&b).await;

    w.stripe_has(&a, "canceled", "social_inbox_monthly", 1)
        .await;
    w.stripe_has(&b, "active", "integrations_yearly", 3).await;
    let sub_key = format!("SUB#{b}");
    w.race(&b, "TransactWriteItems", &[&sub_key], &a).await;
    assert_eq!(w.unlocked().await, ["BasicCRM", "Integrations"]);
}

/// The mirror image: an eager re-sync of A (unchanged) is about to read when B's webhook
/// commits. B's module must not be dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subscription_is_not_dropped_by_a_concurrent_resync() {
    let w = world().await;
    let (a, b) = (unique("sub_a"), unique("sub_b"));
    w.stripe_has(&a, "active", "advanced_analytics_monthly", 1)
        .await;
    w.sync(&a).await;

    w.stripe_has(&b, "trialing", "enterprise_yearly", 1).await;
    let org_key = format!("ORG#{}", w.org);
    w.race(&a, "Query", &[ACCESS_QUERY, &org_key], &b).await;
    assert_eq!(
        w.unlocked().await,
        ["BasicCRM", "AdvancedAnalytics", "EnterpriseFeatures"]
    );
}
