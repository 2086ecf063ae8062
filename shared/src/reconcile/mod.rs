//! Reconciliation with Stripe: what the webhook missed or could not apply, repaired through the
//! webhook's own code.
//!
//! One run, in this order, each step a module of its own:
//! 1. [`parked`]: parked events (`RECONCILE / EVT#...`) are re-read from Stripe
//!    (`GET /v1/events/{id}`) and run through [`WebhookHandler::apply_fetched`], within a
//!    budget and a cap of their own so they can never starve the org pass;
//! 2. [`undelivered`]: undelivered events
//!    (`GET /v1/events?delivery_success=false&created[gte]=<last check>`) go the same way;
//! 3. [`orgs`]: every org with a billing profile, and every org whose customer link is marked
//!    deleted, is re-synced and its drift counted by kind.
//!
//! Step 3 scans profiles page by page and saves its position after each page, so a run stops
//! before its time budget and the next run carries on. Stripe requests are paced to a set rate,
//! counting every attempt (the transport's retries too). A key of another Stripe account stops
//! the run before anything is read or written.

mod orgs;
mod parked;
pub mod report;
mod undelivered;

use std::time::Duration;

use tokio::time::Instant;

use crate::domain::EventId;
use crate::store::StoreError;
use crate::store::reconcile::unix_now;
use crate::stripe::{HasId, StripeApiError, StripeEvent};
use crate::sync::Syncer;
use crate::webhook::{Outcome, ReplayError, WebhookHandler};
pub use report::{DriftCount, DriftKind, Report};

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

/// Parked events replayed in one run at most: past it they wait for the next run (oldest try
/// first), so a backlog of any size costs each run a bounded amount.
pub const DEFAULT_PARKED_CAP: usize = 1_000;
/// Share of a run's time the parked replay may use; the org pass keeps the rest.
pub const PARKED_SHARE_OF_RUN: f64 = 0.25;

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// Stripe requests per second, on average.
    pub requests_per_second: f64,
    pub page_size: i32,
    /// Parked events replayed per run at most.
    pub parked_cap: usize,
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
            parked_cap: DEFAULT_PARKED_CAP,
        })
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
pub struct Reconciler {
    pub handler: WebhookHandler,
    pub config: ReconcileConfig,
}

impl Reconciler {
    pub fn new(handler: WebhookHandler, config: ReconcileConfig) -> Self {
        Self { handler, config }
    }

    pub(crate) fn syncer(&self) -> &Syncer {
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
        // Nothing is read or written with a key of another account (the alarm fires).
        stripe.verify_account().await?;
        let mut state = store.reconcile_state().await?;
        let run_started_at = unix_now();

        let parked_deadline = parked_deadline(started, deadline);
        self.replay_parked(parked_deadline, &mut report, &mut pacer)
            .await?;
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
            for scanned in &page.profiles {
                let before = stripe.requests_sent();
                self.reconcile_scanned(scanned, &mut report).await;
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
        report::emit_metrics(&report);
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

    /// Runs kept webhook deliveries through the handler again (`reconcile replay`), paced like
    /// a run: each replay re-reads its object from Stripe.
    pub async fn replay_kept(
        &self,
        ids: &[EventId],
    ) -> Result<Vec<(EventId, Outcome)>, ReplayError> {
        let stripe = &self.syncer().stripe;
        let mut pacer = Pacer::new(self.config.requests_per_second);
        let mut outcomes = Vec::with_capacity(ids.len());
        for id in ids {
            let before = stripe.requests_sent();
            outcomes.push((id.clone(), self.handler.replay(id).await?));
            pacer.account(stripe.requests_sent() - before).await;
        }
        Ok(outcomes)
    }
}

/// The parked replay's own deadline: a share of the run's time, so the org pass always runs.
fn parked_deadline(started: Instant, deadline: Instant) -> Instant {
    let budget = deadline.saturating_duration_since(started);
    started + budget.mul_f64(PARKED_SHARE_OF_RUN)
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
