//! Reconciliation with Stripe: what the webhook missed or could not apply, repaired through the
//! webhook's own code.
//!
//! One run, in this order:
//! 1. parked events (`RECONCILE / EVT#...`) are re-read from Stripe (`GET /v1/events/{id}`) and
//!    run through [`WebhookHandler::apply_fetched`]: applied once their cause is fixed (the
//!    transaction removes the parked item), parked again otherwise;
//! 2. undelivered events (`GET /v1/events?delivery_success=false&created[gte]=<last check>`)
//!    go the same way: an endpoint Stripe disabled, or an event still being retried;
//! 3. every org with a billing profile is re-synced (the eager sync's [`Syncer`] calls, plus its
//!    stored subscriptions Stripe no longer lists, its recent invoices, and its entitlements
//!    recomputed from the stored subscriptions), comparing the stored state before and after to
//!    count drift by kind.
//!
//! Step 3 scans profiles page by page and saves its position after each page, so a run stops
//! before its time budget and the next run carries on. Stripe requests are paced to a set rate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::domain::{
    CustomerId, EntitlementSet, FetchTime, Invoice, OrgId, PaymentMethod, PaymentMethodId,
    Subscription, SubscriptionId,
};
use crate::store::reconcile::{ReconcileState, unix_now};
use crate::store::{Applied, StoreError, UnresolvedEvent};
use crate::stripe::{HasId, StripeApiError, StripeEvent};
use crate::sync::{SyncError, Syncer};
use crate::webhook::{Outcome, WebhookHandler};

/// Stripe's documented read limits: 100 requests/s live, 25 in test mode.
pub const STRIPE_LIMIT_LIVE: f64 = 100.0;
pub const STRIPE_LIMIT_TEST: f64 = 25.0;
/// Share of the limit the job uses by default: the webhook, Checkout and the portal share it.
pub const DEFAULT_SHARE_OF_LIMIT: f64 = 0.8;
/// Items read per scan page (the cursor is saved after each page).
pub const DEFAULT_PAGE_SIZE: i32 = 100;
/// Invoices re-read per org: the most recent ones, which are the ones that still change.
pub const RECENT_INVOICES: i64 = 10;
/// Undelivered events are looked for this far back on a first run (Stripe retries 3 days).
pub const FIRST_EVENT_WINDOW_SECONDS: i64 = 3 * 86_400;
/// Overlap between two event checks, for events created while the previous check ran.
const EVENT_OVERLAP_SECONDS: i64 = 300;

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// Stripe requests per second, on average.
    pub requests_per_second: f64,
    pub page_size: i32,
}

impl ReconcileConfig {
    /// `RECONCILE_STRIPE_RPS` if set, else 80% of Stripe's limit for the key's mode.
    pub fn from_env(livemode: bool) -> Result<Self, crate::config::ConfigError> {
        let limit = if livemode {
            STRIPE_LIMIT_LIVE
        } else {
            STRIPE_LIMIT_TEST
        };
        let rps: f64 =
            crate::config::parse_or("RECONCILE_STRIPE_RPS", limit * DEFAULT_SHARE_OF_LIMIT)?;
        if !(rps > 0.0 && rps <= limit) {
            return Err(crate::config::ConfigError::Invalid(
                "RECONCILE_STRIPE_RPS",
                format!("expected more than 0 and at most {limit}"),
            ));
        }
        Ok(Self {
            requests_per_second: rps,
            page_size: DEFAULT_PAGE_SIZE,
        })
    }
}

/// Kinds of drift, as counted in the report (and the metrics' `Kind` dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Stripe has a subscription the table lacks.
    MissingSubscription,
    /// The stored copy differs from Stripe's (status, items, periods...).
    StaleSubscription,
    /// Stored but not in Stripe's list: re-read, and ended if Stripe no longer has it.
    ExtraSubscription,
    /// The entitlements item does not match the stored subscriptions.
    WrongEntitlements,
    MissingPaymentMethod,
    StalePaymentMethod,
    ExtraPaymentMethod,
    DefaultPaymentMethod,
    MissingInvoice,
    StaleInvoice,
    /// A parked event whose cause is fixed, now applied.
    ParkedEvent,
    /// An event Stripe could not deliver, now applied.
    UndeliveredEvent,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::MissingSubscription => "missing_subscription",
            DriftKind::StaleSubscription => "stale_subscription",
            DriftKind::ExtraSubscription => "extra_subscription",
            DriftKind::WrongEntitlements => "wrong_entitlements",
            DriftKind::MissingPaymentMethod => "missing_payment_method",
            DriftKind::StalePaymentMethod => "stale_payment_method",
            DriftKind::ExtraPaymentMethod => "extra_payment_method",
            DriftKind::DefaultPaymentMethod => "default_payment_method",
            DriftKind::MissingInvoice => "missing_invoice",
            DriftKind::StaleInvoice => "stale_invoice",
            DriftKind::ParkedEvent => "parked_event",
            DriftKind::UndeliveredEvent => "undelivered_event",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DriftCount {
    pub found: u64,
    pub repaired: u64,
}

/// What one run found and did: logged as one JSON line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub orgs_checked: u64,
    /// Orgs whose sync failed (Stripe or DynamoDB): retried on the next pass.
    pub org_errors: u64,
    pub drift: BTreeMap<DriftKind, DriftCount>,
    /// Parked events still waiting for their cause to be fixed.
    pub still_parked: u64,
    /// Parked events Stripe no longer returns (older than 30 days): they expire by TTL.
    pub parked_unrecoverable: u64,
    pub events_checked: u64,
    pub event_errors: u64,
    pub stripe_requests: u64,
    /// Whether this run finished a pass over every org.
    pub pass_complete: bool,
    pub duration_ms: u64,
}

impl Report {
    fn found(&mut self, kind: DriftKind, n: u64, repaired: bool) {
        if n == 0 {
            return;
        }
        let count = self.drift.entry(kind).or_default();
        count.found += n;
        if repaired {
            count.repaired += n;
        }
    }

    pub fn drift_found(&self) -> u64 {
        self.drift.values().map(|c| c.found).sum()
    }

    pub fn drift_repaired(&self) -> u64 {
        self.drift.values().map(|c| c.repaired).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Stripe(#[from] StripeApiError),
}

/// Spreads Stripe requests evenly: after each unit of work, waits until the requests it made
/// fit the rate.
struct Pacer {
    per_request: Duration,
    next: Instant,
}

impl Pacer {
    fn new(requests_per_second: f64) -> Self {
        Self {
            per_request: Duration::from_secs_f64(1.0 / requests_per_second),
            next: Instant::now(),
        }
    }

    async fn account(&mut self, requests: u64) {
        let now = Instant::now();
        // Idle time is not saved up: a long pause must not allow a burst afterwards.
        self.next =
            self.next.max(now) + self.per_request * u32::try_from(requests).unwrap_or(u32::MAX);
        tokio::time::sleep_until(self.next).await;
    }
}

impl HasId for StripeEvent {
    fn object_id(&self) -> &str {
        &self.id
    }
}

/// The stored state of one org that drift is measured on.
#[derive(Debug, Default)]
struct OrgSnapshot {
    subscriptions: HashMap<SubscriptionId, Subscription>,
    entitlements: Option<EntitlementSet>,
    payment_methods: HashMap<PaymentMethodId, PaymentMethod>,
    default_payment_method: Option<PaymentMethodId>,
    invoices: HashMap<String, Invoice>,
}

pub struct Reconciler {
    pub handler: WebhookHandler,
    pub config: ReconcileConfig,
}

impl Reconciler {
    pub fn new(handler: WebhookHandler, config: ReconcileConfig) -> Self {
        Self { handler, config }
    }

    fn syncer(&self) -> &Syncer {
        self.handler.syncer()
    }

    /// One run: parked events, undelivered events, then orgs until the pass ends or `deadline`
    /// (leave a margin for the last org and the state write).
    pub async fn run(&self, deadline: Instant) -> Result<Report, ReconcileError> {
        let started = Instant::now();
        let store = &self.syncer().store;
        let stripe = &self.syncer().stripe;
        let requests_before = stripe.requests_sent();
        let mut pacer = Pacer::new(self.config.requests_per_second);
        let mut report = Report::default();
        let mut state = store.reconcile_state().await?;
        let run_started_at = unix_now();

        self.replay_parked(&mut report, &mut pacer).await?;
        self.recover_undelivered(&mut state, run_started_at, &mut report, &mut pacer)
            .await?;
        store.save_reconcile_state(&state).await?;

        if state.scan_after.is_none() {
            state.pass_started_at = Some(run_started_at);
        }
        // At least one page per run, so a run always moves the cursor.
        let mut first_page = true;
        loop {
            if !first_page && Instant::now() >= deadline {
                break;
            }
            first_page = false;
            let page = store
                .profile_page(state.scan_after.as_ref(), self.config.page_size)
                .await?;
            for (org, customer) in &page.profiles {
                let before = stripe.requests_sent();
                self.reconcile_org(org, customer, &mut report).await;
                pacer.account(stripe.requests_sent() - before).await;
            }
            // A page is finished before the deadline is checked again, so the cursor never
            // skips an org; a page is at most `page_size` orgs.
            state.scan_after = page.next;
            if state.scan_after.is_none() {
                state.passes_completed += 1;
                report.pass_complete = true;
                store.save_reconcile_state(&state).await?;
                break;
            }
            store.save_reconcile_state(&state).await?;
        }
        report.stripe_requests = stripe.requests_sent() - requests_before;
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        crate::metrics::reconcile(&report);
        Ok(report)
    }

    /// Runs until a whole pass is done, ignoring any time budget (the command).
    pub async fn run_pass(&self) -> Result<Report, ReconcileError> {
        let far = Instant::now() + Duration::from_secs(365 * 86_400);
        let mut report = self.run(far).await?;
        while !report.pass_complete {
            report = self.run(far).await?;
        }
        Ok(report)
    }

    async fn replay_parked(
        &self,
        report: &mut Report,
        pacer: &mut Pacer,
    ) -> Result<(), ReconcileError> {
        let parked: Vec<UnresolvedEvent> = self.syncer().store.unresolved_events().await?;
        for item in parked {
            let stripe = &self.syncer().stripe;
            let before = stripe.requests_sent();
            self.replay_one(&item, report).await?;
            pacer.account(stripe.requests_sent() - before).await;
        }
        Ok(())
    }

    async fn replay_one(
        &self,
        item: &UnresolvedEvent,
        report: &mut Report,
    ) -> Result<(), ReconcileError> {
        let event: StripeEvent = match self.syncer().stripe.event(item.event_id.as_str()).await {
            Ok(event) => event,
            Err(StripeApiError::NotFound) => {
                report.parked_unrecoverable += 1;
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(event_id = %item.event_id, error = %e, "parked event not re-read");
                report.event_errors += 1;
                return Ok(());
            }
        };
        match self.handler.apply_fetched(&event).await {
            Outcome::Processed(_) | Outcome::Ignored => {
                report.found(DriftKind::ParkedEvent, 1, true);
            }
            Outcome::Duplicate => {
                // Applied by a redelivery whose transaction raced this listing.
                self.syncer()
                    .store
                    .forget_unresolved(&item.event_id)
                    .await?;
            }
            Outcome::Parked(_) => report.still_parked += 1,
            Outcome::Rejected(_) | Outcome::Failed(_) => {
                report.event_errors += 1;
                report.still_parked += 1;
            }
        }
        Ok(())
    }

    async fn recover_undelivered(
        &self,
        state: &mut ReconcileState,
        run_started_at: i64,
        report: &mut Report,
        pacer: &mut Pacer,
    ) -> Result<(), ReconcileError> {
        let stripe = &self.syncer().stripe;
        let since = state
            .events_checked_until
            .unwrap_or(run_started_at - FIRST_EVENT_WINDOW_SECONDS);
        let before = stripe.requests_sent();
        let listed = stripe.undelivered_events(since).await;
        let events = match listed {
            Ok(events) => events,
            Err(e) => {
                // The org pass does not depend on it: the next run looks again from `since`.
                tracing::warn!(error = %e, "undelivered events not listed");
                report.event_errors += 1;
                return Ok(());
            }
        };
        pacer.account(stripe.requests_sent() - before).await;
        for event in events.iter().rev() {
            // Oldest first: list endpoints answer newest first.
            report.events_checked += 1;
            let before = stripe.requests_sent();
            let outcome = self.handler.apply_fetched(event).await;
            pacer.account(stripe.requests_sent() - before).await;
            match outcome {
                Outcome::Processed(Applied::Written) => {
                    report.found(DriftKind::UndeliveredEvent, 1, true)
                }
                // Already applied, not ours, or kept for later: nothing was missing.
                Outcome::Processed(_)
                | Outcome::Duplicate
                | Outcome::Ignored
                | Outcome::Parked(_) => {}
                Outcome::Rejected(_) | Outcome::Failed(_) => {
                    // The check window is not moved past an event that must be tried again.
                    report.event_errors += 1;
                }
            }
        }
        if report.event_errors == 0 {
            state.events_checked_until = Some(run_started_at - EVENT_OVERLAP_SECONDS);
        }
        Ok(())
    }

    async fn snapshot(&self, org: &OrgId) -> Result<OrgSnapshot, StoreError> {
        let store = &self.syncer().store;
        let subscriptions = store
            .subscriptions(org)
            .await?
            .into_iter()
            .map(|s| (s.subscription.id.clone(), s.subscription))
            .collect();
        let entitlements = store.entitlements(org, true).await?.map(|e| e.set);
        let (methods, default_payment_method) = store.payment_methods(org).await?;
        let invoices = store
            .list_invoices(org, 100, None)
            .await?
            .invoices
            .into_iter()
            .map(|i| (i.id.as_str().to_owned(), i))
            .collect();
        Ok(OrgSnapshot {
            subscriptions,
            entitlements,
            payment_methods: methods.into_iter().map(|m| (m.id.clone(), m)).collect(),
            default_payment_method,
            invoices,
        })
    }

    /// Re-syncs one org and counts what differed. Errors are counted, never fatal to the run.
    async fn reconcile_org(&self, org: &OrgId, customer: &CustomerId, report: &mut Report) {
        report.orgs_checked += 1;
        match self.try_reconcile_org(org, customer, report).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(org = %org, error = %e, "org not reconciled; next pass retries");
                report.org_errors += 1;
            }
        }
    }

    async fn try_reconcile_org(
        &self,
        org: &OrgId,
        customer: &CustomerId,
        report: &mut Report,
    ) -> Result<(), SyncError> {
        let syncer = self.syncer();
        let before = self.snapshot(org).await?;
        let wrong_entitlements = before.entitlements.clone().unwrap_or_default()
            != EntitlementSet::from_subscriptions(before.subscriptions.values(), syncer.policy);

        let listed = syncer
            .stripe
            .customer_subscriptions(customer.as_str())
            .await?;
        let mut listed_ids = HashSet::new();
        for sub in &listed {
            let id = SubscriptionId::parse(&sub.id)?;
            listed_ids.insert(id.clone());
            let stored_terminal = before
                .subscriptions
                .get(&id)
                .is_some_and(|s| s.status.is_terminal());
            let stripe_terminal = crate::domain::SubscriptionStatus::parse(&sub.status)
                .is_some_and(|s| s.is_terminal());
            // An ended subscription never changes again: no need to re-read it every pass.
            if stored_terminal && stripe_terminal {
                continue;
            }
            syncer
                .sync_subscription_of(&id, Some(customer), None)
                .await?;
        }
        let extra: Vec<&SubscriptionId> = before
            .subscriptions
            .iter()
            .filter(|(id, s)| !listed_ids.contains(*id) && !s.status.is_terminal())
            .map(|(id, _)| id)
            .collect();
        for id in &extra {
            // Not in Stripe's list: re-read it; a 404 ends the stored copy.
            syncer
                .sync_subscription_of(id, Some(customer), None)
                .await?;
        }
        syncer.sync_customer(customer, None).await?;
        self.sync_recent_invoices(org, customer).await?;
        syncer
            .store
            .recompute_entitlements(org, syncer.policy)
            .await?;

        let after = self.snapshot(org).await?;
        self.count_drift(&before, &after, &extra, wrong_entitlements, report);
        Ok(())
    }

    /// The customer's most recent invoices, from one list request (the same conversion and
    /// guarded write as the webhook's invoice sync).
    async fn sync_recent_invoices(
        &self,
        org: &OrgId,
        customer: &CustomerId,
    ) -> Result<(), SyncError> {
        let syncer = self.syncer();
        let fetched_at = FetchTime::now();
        let page = syncer
            .stripe
            .recent_invoices(customer.as_str(), RECENT_INVOICES)
            .await?;
        for raw in &page.data {
            let invoice = raw.to_domain()?;
            if &invoice.customer_id != customer {
                continue;
            }
            syncer
                .store
                .apply_invoice(org, &invoice, fetched_at, None)
                .await?;
        }
        Ok(())
    }

    fn count_drift(
        &self,
        before: &OrgSnapshot,
        after: &OrgSnapshot,
        extra: &[&SubscriptionId],
        wrong_entitlements: bool,
        report: &mut Report,
    ) {
        let policy = self.syncer().policy;
        let (mut missing, mut stale) = (0, 0);
        for (id, sub) in &after.subscriptions {
            if extra.contains(&id) {
                continue;
            }
            match before.subscriptions.get(id) {
                None => missing += 1,
                Some(old) if old != sub => stale += 1,
                Some(_) => {}
            }
        }
        report.found(DriftKind::MissingSubscription, missing, true);
        report.found(DriftKind::StaleSubscription, stale, true);
        // Re-read: ended if Stripe no longer has it, else updated to Stripe's copy.
        report.found(DriftKind::ExtraSubscription, extra.len() as u64, true);
        if wrong_entitlements {
            let fixed = after.entitlements.clone().unwrap_or_default()
                == EntitlementSet::from_subscriptions(after.subscriptions.values(), policy);
            report.found(DriftKind::WrongEntitlements, 1, fixed);
        }
        let (mut missing_pm, mut stale_pm) = (0, 0);
        for (id, pm) in &after.payment_methods {
            match before.payment_methods.get(id) {
                None => missing_pm += 1,
                Some(old) if old != pm => stale_pm += 1,
                Some(_) => {}
            }
        }
        let extra_pm = before
            .payment_methods
            .keys()
            .filter(|id| !after.payment_methods.contains_key(*id))
            .count() as u64;
        report.found(DriftKind::MissingPaymentMethod, missing_pm, true);
        report.found(DriftKind::StalePaymentMethod, stale_pm, true);
        report.found(DriftKind::ExtraPaymentMethod, extra_pm, true);
        if before.default_payment_method != after.default_payment_method {
            report.found(DriftKind::DefaultPaymentMethod, 1, true);
        }
        let (mut missing_inv, mut stale_inv) = (0, 0);
        for (id, inv) in &after.invoices {
            match before.invoices.get(id) {
                None => missing_inv += 1,
                Some(old) if old != inv => stale_inv += 1,
                Some(_) => {}
            }
        }
        report.found(DriftKind::MissingInvoice, missing_inv, true);
        report.found(DriftKind::StaleInvoice, stale_inv, true);
    }
}

/// How long a full pass takes: `requests_per_org` Stripe requests per org at `rps`.
pub fn pass_duration(orgs: u64, requests_per_org: f64, rps: f64) -> Duration {
    Duration::from_secs_f64(orgs as f64 * requests_per_org / rps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_totals_add_up_by_kind() {
        let mut report = Report::default();
        report.found(DriftKind::StaleSubscription, 2, true);
        report.found(DriftKind::WrongEntitlements, 1, false);
        report.found(DriftKind::MissingInvoice, 0, true);
        assert_eq!(report.drift_found(), 3);
        assert_eq!(report.drift_repaired(), 2);
        assert!(!report.drift.contains_key(&DriftKind::MissingInvoice));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["drift"]["stale_subscription"]["found"], 2);
        assert_eq!(json["drift"]["wrong_entitlements"]["repaired"], 0);
    }

    #[test]
    fn a_pass_over_100k_orgs_at_the_default_live_pace() {
        // One active subscription per org: list + retrieve + customer + payment methods +
        // invoices = 5 requests.
        let d = pass_duration(100_000, 5.0, STRIPE_LIMIT_LIVE * DEFAULT_SHARE_OF_LIMIT);
        assert_eq!(d.as_secs(), 6_250);
    }

    #[tokio::test]
    async fn the_pacer_spreads_requests_at_the_rate() {
        let mut pacer = Pacer::new(1_000.0);
        let start = Instant::now();
        for _ in 0..10 {
            pacer.account(5).await;
        }
        // 50 requests at 1,000/s take at least 50 ms.
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
