//! Step 1 of a run: parked events, replayed within their own budget.
//!
//! What a backlog costs: the parked partition is read once per run (one Query page per ~1 MB,
//! about 3,000 parked items: 100,000 parked events are ~34 pages, a few seconds and ~4,200
//! read units), then at most [`ReconcileConfig::parked_cap`](super::ReconcileConfig) events
//! are tried, oldest try first, before [`super::PARKED_SHARE_OF_RUN`] of the run's time is
//! spent. An event of a customer still linked to no org costs one GetItem per customer and no
//! Stripe request. So 100,000 parked events cost each run at most 1,000 Stripe reads (12.5 s
//! at 80/s) and never hold back the org pass; the whole backlog is tried every 100 runs.

use std::collections::HashMap;

use tokio::time::Instant;

use super::{DriftKind, Pacer, ReconcileError, Reconciler, Report};
use crate::domain::{CustomerId, OrgId};
use crate::store::UnresolvedEvent;
use crate::stripe::{StripeApiError, StripeEvent};
use crate::webhook::Outcome;

impl Reconciler {
    pub(super) async fn replay_parked(
        &self,
        deadline: Instant,
        report: &mut Report,
        pacer: &mut Pacer,
    ) -> Result<(), ReconcileError> {
        let parked: Vec<UnresolvedEvent> = self.syncer().store.parked_for_replay().await?;
        let stripe = &self.syncer().stripe;
        // One link read per customer, however many of its events are parked.
        let mut linked: HashMap<CustomerId, Option<OrgId>> = HashMap::new();
        let mut tried = 0;
        for item in &parked {
            if tried >= self.config.parked_cap || Instant::now() >= deadline {
                report.parked_deferred += 1;
                report.still_parked += 1;
                continue;
            }
            if let Some(customer) = &item.customer_id {
                let org = match linked.get(customer) {
                    Some(org) => org.clone(),
                    None => {
                        let org = self.syncer().store.org_for_customer(customer).await?;
                        linked.insert(customer.clone(), org.clone());
                        org
                    }
                };
                if org.is_none() {
                    // Still nobody's (a Payment Link buyer, another product's customer):
                    // replaying would only park it again.
                    report.parked_skipped_unlinked += 1;
                    report.still_parked += 1;
                    continue;
                }
            }
            tried += 1;
            let before = stripe.requests_sent();
            self.replay_one(item, report).await?;
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
            Err(StripeApiError::WrongAccount) => return Err(StripeApiError::WrongAccount.into()),
            Err(e) => {
                tracing::warn!(event_id = %item.event_id, error = %e, "parked event not re-read");
                report.event_errors += 1;
                report.still_parked += 1;
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
                // Stamped as tried (original arrival and TTL kept), so the next run starts
                // with the events that waited longest.
                self.handler.park_for_retry(&event, "replay failed").await;
            }
        }
        Ok(())
    }
}
