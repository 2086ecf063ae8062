//! The Stripe webhook: verify, decide, re-sync from Stripe, store, acknowledge.

pub mod event;
mod replay;
pub mod signature;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::config::{self, ConfigError, Secret, Secrets};
use crate::domain::{CustomerId, EventId, OrgId, Timestamp};
use crate::http::{ApiError, body_bytes, json};
use crate::store::{Applied, EventMarker, UnresolvedEvent};
use crate::stripe::StripeEvent;
use crate::sync::{Deletion, Disposition, Synced, Syncer};
pub use event::{Action, HANDLED_EVENT_TYPES, decide};
pub use replay::ReplayError;
pub use signature::{SignatureError, WebhookSecret, verify};
use tracing::Instrument;

/// Stripe's own events stay far below this; anything larger is not from Stripe.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// One secret normally; two while rotating (old and new both accepted).
    pub secrets: Vec<WebhookSecret>,
    pub tolerance_seconds: i64,
    pub max_body_bytes: usize,
    /// Events whose `livemode` differs from the API key's mode are refused.
    pub livemode: bool,
}

impl WebhookConfig {
    /// The [`Secret::STRIPE_WEBHOOK_SECRETS`] secret (comma-separated, at most two), loaded at
    /// init with the function's other secrets, and `STRIPE_WEBHOOK_TOLERANCE_SECONDS`.
    pub fn from_env(livemode: bool, loaded: &Secrets) -> Result<Self, ConfigError> {
        let secrets: Vec<WebhookSecret> = secret_list(loaded.get(Secret::STRIPE_WEBHOOK_SECRETS)?)
            .map(WebhookSecret::new)
            .collect();
        if secrets.is_empty() || secrets.len() > 2 {
            return Err(ConfigError::Invalid(
                "STRIPE_WEBHOOK_SECRETS",
                "expected one or two secrets".to_owned(),
            ));
        }
        Ok(Self {
            secrets,
            tolerance_seconds: config::parse_or(
                "STRIPE_WEBHOOK_TOLERANCE_SECONDS",
                DEFAULT_TOLERANCE_SECONDS,
            )?,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            livemode,
        })
    }
}

/// The secrets of a `STRIPE_WEBHOOK_SECRETS` value: comma-separated, blanks ignored.
pub fn secret_list(csv: &str) -> impl Iterator<Item = &str> {
    csv.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The event's customer, when its object names a valid one.
fn event_customer(event: &StripeEvent) -> Option<CustomerId> {
    event
        .data
        .object
        .customer
        .as_ref()
        .and_then(|c| CustomerId::parse(c.id()).ok())
}

/// Refused deliveries whose metadata one container keeps per minute: enough to see what a
/// misconfigured endpoint or a prober sends, never a table write per request of a flood (with
/// the webhook's reserved concurrency of 10, at most 100 writes a minute).
pub const REFUSED_KEPT_PER_MINUTE: u32 = 10;

fn refused_budget_allows(minute: i64) -> bool {
    static BUDGET: std::sync::Mutex<(i64, u32)> = std::sync::Mutex::new((0, 0));
    let mut budget = BUDGET.lock().unwrap_or_else(|e| e.into_inner());
    if budget.0 != minute {
        *budget = (minute, 0);
    }
    budget.1 += 1;
    budget.1 <= REFUSED_KEPT_PER_MINUTE
}

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Refused before anything was read or stored (400).
    Rejected(&'static str),
    /// A type this service does not act on.
    Ignored,
    /// Already processed earlier.
    Duplicate,
    Processed(Applied),
    /// Needs a fix elsewhere (an unknown customer, a session this service did not create, a
    /// price that maps to no module): kept for reconciliation and acknowledged, but not marked
    /// processed, so a redelivery after the fix applies it.
    Parked(String),
    /// Anything that could succeed later (Stripe or DynamoDB failing, a rejected key, an
    /// unreadable answer): not acknowledged, so Stripe retries (5xx).
    Failed(String),
}

#[derive(Serialize)]
struct Ack<'a> {
    received: bool,
    outcome: &'a str,
}

impl Outcome {
    /// The outcome's name in the acknowledgement body and the metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Rejected(_) => "rejected",
            Outcome::Ignored => "ignored",
            Outcome::Duplicate | Outcome::Processed(Applied::Duplicate) => "duplicate",
            Outcome::Processed(Applied::Written) => "processed",
            Outcome::Processed(Applied::Stale) => "up_to_date",
            Outcome::Parked(_) => "parked",
            Outcome::Failed(_) => "failed",
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let ok = |outcome: &str| {
            json(
                StatusCode::OK,
                &Ack {
                    received: true,
                    outcome,
                },
            )
        };
        match self {
            Outcome::Rejected(code) => {
                // Deliberately vague: which check failed would help a forger.
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    code,
                    "The webhook request was refused.",
                )
                .into_response()
            }
            Outcome::Ignored => ok("ignored"),
            Outcome::Duplicate => ok("duplicate"),
            Outcome::Processed(Applied::Written) => ok("processed"),
            Outcome::Processed(Applied::Stale) => ok("up_to_date"),
            Outcome::Processed(Applied::Duplicate) => ok("duplicate"),
            Outcome::Parked(_) => ok("parked"),
            Outcome::Failed(_) => {
                ApiError::unavailable("Temporary failure; the event will be retried.")
                    .into_response()
            }
        }
    }
}

/// The webhook function's entry point: the delivery's signature and body, through
/// [`WebhookHandler::process`], answered as Stripe expects.
pub async fn handle(webhook: &WebhookHandler, request: &Request) -> Response<Body> {
    let signature = request
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    webhook
        .process(
            signature,
            body_bytes(request.body()),
            Timestamp::now().unix(),
        )
        .await
        .into_response()
}

/// What the webhook does with a delivery (verify, decide, sync, audit), independent of HTTP and
/// of the Lambda runtime; the reconciliation job runs events it fetched through it too.
#[derive(Debug, Clone)]
pub struct WebhookHandler {
    syncer: Syncer,
    config: WebhookConfig,
}

impl WebhookHandler {
    pub fn new(syncer: Syncer, config: WebhookConfig) -> Self {
        Self { syncer, config }
    }

    /// The store and Stripe client events are applied with.
    pub fn syncer(&self) -> &Syncer {
        &self.syncer
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// Verifies and applies one delivery. `now` is the verifier's clock (Unix seconds). Emits
    /// the delivery's metric line (outcome, event type once verified, duration).
    pub async fn process(&self, signature: Option<&str>, body: &[u8], now: i64) -> Outcome {
        let started = std::time::Instant::now();
        let (event_type, outcome) = self.verify_and_apply(signature, body, now).await;
        if let Outcome::Rejected(reason) = &outcome {
            self.audit_refused(reason, signature.is_some(), body.len())
                .await;
        }
        crate::metrics::webhook(
            event_type.as_deref().unwrap_or("-"),
            outcome.label(),
            started.elapsed().as_secs_f64() * 1_000.0,
        );
        outcome
    }

    /// Keeps the metadata of a refused delivery, within this container's per-minute budget. A
    /// failure to keep it changes nothing about the answer (400).
    async fn audit_refused(&self, reason: &str, signature_present: bool, body_bytes: usize) {
        let now = crate::domain::FetchTime::now();
        if !refused_budget_allows(now.micros() / 60_000_000) {
            return;
        }
        let refused = crate::store::audit::RefusedDelivery {
            received_at_micros: now.micros(),
            reason: reason.to_owned(),
            signature_present,
            body_bytes: body_bytes as u64,
        };
        if let Err(e) = self.syncer.store.record_refused(&refused).await {
            tracing::warn!(error = %e, "refused delivery not kept in the audit trail");
        }
    }

    /// The event's type (once its signature is verified) and what happened to the delivery.
    async fn verify_and_apply(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> (Option<String>, Outcome) {
        if body.len() > self.config.max_body_bytes {
            tracing::warn!(bytes = body.len(), "webhook refused: body too large");
            return (None, Outcome::Rejected("payload_too_large"));
        }
        if let Err(e) = verify(
            signature,
            body,
            &self.config.secrets,
            now,
            self.config.tolerance_seconds,
        ) {
            tracing::warn!(reason = %e, "webhook refused: signature");
            return (None, Outcome::Rejected("invalid_signature"));
        }
        let event: StripeEvent = match serde_json::from_slice(body) {
            Ok(event) => event,
            Err(_) => {
                tracing::warn!("webhook refused: not a Stripe event");
                return (None, Outcome::Rejected("invalid_payload"));
            }
        };
        let span =
            tracing::info_span!("event", event_id = %event.id, event_type = %event.event_type);
        // Instrumented, not entered: a guard held across `.await` would leave this event's span
        // on the thread for whatever task runs there next.
        async {
            if event.livemode != self.config.livemode {
                tracing::warn!(
                    livemode = event.livemode,
                    "webhook refused: livemode mismatch"
                );
                return (
                    Some(event.event_type),
                    Outcome::Rejected("livemode_mismatch"),
                );
            }
            let Ok(event_id) = EventId::parse(&event.id) else {
                return (None, Outcome::Rejected("invalid_payload"));
            };
            let mut org = None;
            let delivery = replay::delivery(&event, event_id.clone(), body, replay::SOURCE_WEBHOOK);
            let outcome = self.apply(&event, event_id, &mut org, Some(delivery)).await;
            if !audited_with_marker(&outcome) {
                self.audit(&event, body, &outcome, org, replay::SOURCE_WEBHOOK)
                    .await;
            }
            match &outcome {
                Outcome::Failed(reason) => {
                    tracing::error!(outcome = "failed", %reason, "webhook will be retried")
                }
                Outcome::Parked(reason) => {
                    tracing::warn!(outcome = "parked", %reason, "kept for reconciliation")
                }
                other => tracing::info!(outcome = ?other, "webhook handled"),
            }
            (Some(event.event_type.clone()), outcome)
        }
        .instrument(span)
        .await
    }

    /// Applies an event read from Stripe's API (`GET /v1/events`, by the reconciliation job)
    /// instead of delivered: nothing to verify (it came over the authenticated API), then the
    /// same idempotent path as a delivery, marker and parking included.
    pub async fn apply_fetched(&self, event: &StripeEvent) -> Outcome {
        if event.livemode != self.config.livemode {
            return Outcome::Rejected("livemode_mismatch");
        }
        let Ok(event_id) = EventId::parse(&event.id) else {
            return Outcome::Rejected("invalid_payload");
        };
        self.apply(event, event_id, &mut None, None).await
    }

    /// `org` is set to the org the event was applied to, when a sync found it (for the audit).
    /// `delivery`, when given, is written to the audit trail in the transaction that marks the
    /// event processed ([`audited_with_marker`] says whether that happened).
    async fn apply(
        &self,
        event: &StripeEvent,
        event_id: EventId,
        org_found: &mut Option<OrgId>,
        delivery: Option<crate::store::audit::Delivery>,
    ) -> Outcome {
        let action = match decide(event) {
            Ok(Action::Ignore) => return Outcome::Ignored,
            Ok(action) => action,
            Err(e) => return self.park(event, &event_id, e.to_string(), None).await,
        };
        let marker = EventMarker {
            id: event_id.clone(),
            event_type: event.event_type.clone(),
            audit: delivery,
        };
        let event_customer = event_customer(event);
        // Only a deletion event backs a 404 on the re-fetch; any other 404 ends nothing.
        let deletion = match event.event_type.as_str() {
            "customer.subscription.deleted" | "customer.deleted" => Deletion::Confirmed,
            _ => Deletion::Unconfirmed,
        };
        let syncer = &self.syncer;
        // The most frequent events (a subscription changed, an invoice paid or failed): the
        // marker and the link are read while Stripe is asked.
        let at_once = match &action {
            Action::SyncSubscription(id) => Some(
                syncer
                    .sync_subscription_event(id, event_customer.as_ref(), &marker, deletion)
                    .await,
            ),
            Action::SyncInvoice(id) => Some(
                syncer
                    .sync_invoice_event(id, event_customer.as_ref(), &marker)
                    .await,
            ),
            _ => None,
        };
        if let Some(result) = at_once {
            return match result {
                Ok(None) => Outcome::Duplicate,
                Ok(Some(synced)) => self.processed(synced, org_found),
                Err(e) => self.failed(event, &event_id, e, event_customer).await,
            };
        }
        match self.syncer.store.event_processed(&event_id).await {
            Ok(true) => return Outcome::Duplicate,
            Ok(false) => {}
            Err(e) => return Outcome::Failed(e.to_string()),
        }
        let result = match &action {
            Action::CompleteCheckout(id) => {
                let completed = syncer.complete_checkout(id, Some(&marker)).await;
                // Counted once: a redelivery is a `Duplicate`, never counted; a newer copy
                // stored first (`Stale`) still means this event was applied the first time.
                if matches!(
                    completed,
                    Ok(Synced {
                        applied: Applied::Written | Applied::Stale,
                        ..
                    })
                ) && event.event_type == "checkout.session.completed"
                {
                    crate::metrics::checkout_session("completed");
                }
                completed
            }
            Action::CheckoutExpired(id) => {
                // Nothing was bought: the session is not read, nothing is granted; the marker
                // makes a redelivery a duplicate, so the expiry is counted once.
                // The audit entry names the customer's org, as every delivery's does.
                let org = match &event_customer {
                    Some(c) => match syncer.store.org_for_customer(c).await {
                        Ok(org) => org,
                        Err(e) => return Outcome::Failed(e.to_string()),
                    },
                    None => None,
                };
                org_found.clone_from(&org);
                return match syncer.store.record_event(&marker, org.as_ref()).await {
                    Ok(Applied::Written) => {
                        if abandoned_checkout(event) {
                            tracing::info!(session = %id, "checkout session expired unpaid");
                            crate::metrics::checkout_session("expired");
                        }
                        Outcome::Processed(Applied::Written)
                    }
                    Ok(Applied::Duplicate) => Outcome::Duplicate,
                    Ok(applied) => Outcome::Processed(applied),
                    Err(e) => Outcome::Failed(e.to_string()),
                };
            }
            Action::SyncSubscription(id) => {
                syncer
                    .sync_subscription_as(id, event_customer.as_ref(), Some(&marker), deletion)
                    .await
            }
            Action::SyncInvoice(id) => syncer.sync_invoice(id, Some(&marker)).await,
            Action::SyncCustomer(id) => syncer.sync_customer_as(id, Some(&marker), deletion).await,
            Action::Ignore => return Outcome::Ignored,
        };
        match result {
            Ok(synced) => self.processed(synced, org_found),
            Err(e) => self.failed(event, &event_id, e, event_customer).await,
        }
    }

    fn processed(&self, synced: Synced, org_found: &mut Option<OrgId>) -> Outcome {
        let Synced { org, applied, .. } = synced;
        tracing::info!(org = ?org.as_ref().map(|o| o.as_str()), applied = ?applied, "synced from Stripe");
        org_found.clone_from(&org);
        Outcome::Processed(applied)
    }

    async fn failed(
        &self,
        event: &StripeEvent,
        event_id: &EventId,
        error: crate::sync::SyncError,
        event_customer: Option<CustomerId>,
    ) -> Outcome {
        match error.disposition() {
            Disposition::Retry => Outcome::Failed(error.to_string()),
            Disposition::Park => {
                let customer = error.customer().cloned().or(event_customer);
                self.park(event, event_id, error.to_string(), customer)
                    .await
            }
        }
    }

    /// Keeps an event whose application failed for the reconciliation job to try again (the
    /// job and Stripe's own retries converge: whichever applies it first marks it, and the
    /// other finds it done). A parked copy keeps its first arrival time and TTL.
    pub async fn park_for_retry(&self, event: &StripeEvent, reason: &str) -> Outcome {
        let Ok(event_id) = EventId::parse(&event.id) else {
            return Outcome::Rejected("invalid_payload");
        };
        self.park(event, &event_id, reason.to_owned(), event_customer(event))
            .await
    }

    /// Keeps an event that needs a fix elsewhere for reconciliation and acknowledges it,
    /// without the processed marker: a redelivery (or the reconciliation job) applies it once
    /// the cause is fixed, and removes this item in the same transaction as the marker.
    async fn park(
        &self,
        event: &StripeEvent,
        event_id: &EventId,
        reason: String,
        customer_id: Option<CustomerId>,
    ) -> Outcome {
        let unresolved = UnresolvedEvent {
            event_id: event_id.clone(),
            event_type: event.event_type.clone(),
            object_id: event.data.object.id.clone(),
            customer_id,
            received_at: Timestamp::now(),
            reason: reason.clone(),
        };
        if let Err(e) = self.syncer.store.record_unresolved(&unresolved).await {
            return Outcome::Failed(e.to_string());
        }
        Outcome::Parked(reason)
    }
}

/// Whether the delivery's audit items were written in the transaction that marked its event:
/// every outcome that stored the marker (an effect, or an up-to-date read) did so; the others
/// (a duplicate, a parked or failed event, an ignored type) are kept in the trail afterwards.
fn audited_with_marker(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Processed(Applied::Written | Applied::Stale)
    )
}

/// Whether an expired Checkout Session counts against the checkout success rate: one this
/// service created (its request key in the metadata) that Stripe's timer expired (the event at
/// or after `expires_at`). One expired earlier was expired on purpose: by a later checkout of
/// the same org (the buyer changed the basket) or by hand, not abandoned.
fn abandoned_checkout(event: &StripeEvent) -> bool {
    let session = &event.data.object;
    let ours = session
        .metadata
        .as_ref()
        .is_some_and(|m| m.contains_key(crate::sync::CHECKOUT_REQUEST_METADATA_KEY));
    let timed_out = match (event.created, session.expires_at) {
        (Some(created), Some(expires_at)) => created + 60 >= expires_at,
        _ => false,
    };
    ours && timed_out
}
