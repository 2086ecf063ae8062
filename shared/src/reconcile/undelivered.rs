//! Step 2 of a run: events Stripe could not deliver (an endpoint it disabled, an event still
//! being retried), applied through the webhook's own path.

use super::{
    DriftKind, EVENT_OVERLAP_SECONDS, FIRST_EVENT_WINDOW_SECONDS, Pacer, ReconcileError,
    Reconciler, Report,
};
use crate::store::Applied;
use crate::store::reconcile::ReconcileState;
use crate::stripe::StripeApiError;
use crate::webhook::Outcome;

impl Reconciler {
    pub(super) async fn recover_undelivered(
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
        pacer.account(stripe.requests_sent() - before).await;
        let events = match listed {
            Ok(events) => events,
            Err(StripeApiError::WrongAccount) => return Err(StripeApiError::WrongAccount.into()),
            Err(e) => {
                // The org pass does not depend on it: the next run looks again from `since`.
                tracing::warn!(error = %e, "undelivered events not listed");
                report.event_errors += 1;
                return Ok(());
            }
        };
        let mut parked_all_failures = true;
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
                    report.event_errors += 1;
                    // Kept with the parked events, so it is tried again by step 1 and does not
                    // hold the check window back for every other event.
                    if !matches!(
                        self.handler
                            .park_for_retry(event, "undelivered, failed")
                            .await,
                        Outcome::Parked(_)
                    ) {
                        parked_all_failures = false;
                    }
                }
            }
        }
        if parked_all_failures {
            state.events_checked_until = Some(run_started_at - EVENT_OVERLAP_SECONDS);
        }
        Ok(())
    }
}
