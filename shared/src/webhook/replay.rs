//! The audit trail's side of the webhook: every verified delivery is kept
//! (`store::audit`), and a kept delivery can be run through the handler again. A replay takes
//! the same idempotent path as a delivery (the processed marker is checked first, the objects are
//! re-fetched from Stripe), so replaying an applied event changes nothing.

use super::{Outcome, WebhookHandler};
use crate::domain::{EventId, FetchTime, OrgId};
use crate::store::StoreError;
use crate::store::audit::Delivery;
use crate::stripe::StripeEvent;

pub const SOURCE_WEBHOOK: &str = "webhook";
pub const SOURCE_REPLAY: &str = "replay";

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no delivery of {0} is kept")]
    NotKept(EventId),
    #[error("the kept payload of {0} is not a Stripe event")]
    Unreadable(EventId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A verified delivery as the audit trail keeps it; its outcome and org are filled in when it
/// is written.
pub(super) fn delivery(
    event: &StripeEvent,
    event_id: EventId,
    body: &[u8],
    source: &str,
) -> Delivery {
    Delivery {
        event_id,
        event_type: event.event_type.clone(),
        api_version: event.api_version.clone(),
        received_at_micros: FetchTime::now().micros(),
        outcome: String::new(),
        org_id: None,
        source: source.to_owned(),
        payload: Some(body.to_vec()),
    }
}

impl WebhookHandler {
    /// Keeps a verified delivery. Best effort: the audit must never make Stripe retry an event
    /// whose effect is stored, so a failed write is logged, not returned.
    pub(super) async fn audit(
        &self,
        event: &StripeEvent,
        body: &[u8],
        outcome: &Outcome,
        org: Option<OrgId>,
        source: &str,
    ) {
        let store = &self.syncer.store;
        // The sync usually found the org; otherwise (a duplicate, a parked event) the
        // customer's link says, when there is one.
        let customer = super::event_customer(event);
        let org = match (org, &customer, outcome) {
            (Some(org), _, _) => Some(org),
            (None, _, Outcome::Ignored) | (None, None, _) => None,
            (None, Some(c), _) => store.org_for_customer(c).await.ok().flatten(),
        };
        let Ok(event_id) = EventId::parse(&event.id) else {
            return;
        };
        let delivery = Delivery {
            outcome: outcome.label().to_owned(),
            org_id: org,
            ..delivery(event, event_id, body, source)
        };
        if let Err(e) = store.record_delivery(&delivery).await {
            tracing::warn!(error = %e, "delivery not kept in the audit trail");
        }
    }

    /// Runs the latest kept delivery of an event through the handler again (no signature: it
    /// was verified when received), and keeps the replay in the trail.
    pub async fn replay(&self, event_id: &EventId) -> Result<Outcome, ReplayError> {
        let kept = self.syncer.store.deliveries_of_event(event_id).await?;
        let payload = kept
            .into_iter()
            .rev()
            .find_map(|d| d.payload)
            .ok_or_else(|| ReplayError::NotKept(event_id.clone()))?;
        let event: StripeEvent = serde_json::from_slice(&payload)
            .map_err(|_| ReplayError::Unreadable(event_id.clone()))?;
        let outcome = self.apply_fetched(&event).await;
        self.audit(&event, &payload, &outcome, None, SOURCE_REPLAY)
            .await;
        Ok(outcome)
    }
}
