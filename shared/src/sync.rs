//! Syncing from source: every Stripe event, and the eager sync after Checkout, is only a
//! trigger to re-read the current object from Stripe and store that. Events can then arrive in
//! any order, twice, or concurrently with an eager sync: the newest read always wins.
//!
//! What a missing object (`404 resource_missing` on the re-fetch) means. Stripe keeps canceled
//! subscriptions retrievable and answers a deleted customer with `deleted: true`, so in live
//! mode a 404 comes almost only from a key of another account (which the account pin refuses
//! first, see [`StripeApi::verify_account`]). A 404 alone therefore ends nothing: it is
//! counted (`StripeNotFoundUnconfirmed`) and retried. It is final only where something else
//! backs it ([`Deletion::Confirmed`]):
//! * subscription, on `customer.subscription.deleted` or for a deleted customer: a stored copy
//!   is ended (`canceled`, marked [`crate::domain::Subscription::ended_unseen`], so a later
//!   live read replaces it), the org's access recomputed.
//! * customer: Stripe says `deleted: true`, or the event is `customer.deleted`: the org's
//!   billing profile is removed so it can check out again, the customer link is kept but
//!   marked deleted (late events of its subscriptions still find the org), its payment methods
//!   are dropped.
//! * invoice, Checkout Session: never confirmed; a session that cannot be read is parked for
//!   reconciliation, an invoice retried.

use crate::config::{ConfigError, Secrets};
use crate::domain::{
    Catalog, CustomerId, FetchTime, GracePolicy, InvoiceId, OrgId, SubscriptionId,
    SubscriptionStatus, Timestamp,
};
use crate::store::{Applied, BillingStore, CustomerSnapshot, EventMarker, LinkOutcome, StoreError};
use crate::stripe::{
    ConvertError, MODULE_METADATA_KEY, StripeApi, StripeApiError, StripeCheckoutSession,
};

/// The metadata key this service writes on the customers and Checkout Sessions it creates.
pub const ORG_METADATA_KEY: &str = "organization_id";

/// Metadata key on this service's Checkout Sessions naming the request that created them, so a
/// retried or concurrent identical request never expires the session Stripe will hand back to
/// it, and the webhook counts only this service's sessions.
pub const CHECKOUT_REQUEST_METADATA_KEY: &str = "pss_checkout_request";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Stripe(#[from] StripeApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// The Stripe customer is linked to no organization.
    #[error("Stripe customer {0} belongs to no known organization")]
    UnknownCustomer(CustomerId),
    /// The Checkout Session was not created by this service for the org it names.
    #[error("checkout session cannot be attributed: {0}")]
    Unattributable(String),
    /// Stripe answered 404 for an object nothing else says was deleted: with the right key that
    /// does not happen, so the sync is retried and nothing is ended.
    #[error("Stripe has no {0} for this key, and nothing confirms a deletion")]
    NotFoundUnconfirmed(&'static str),
    /// Stripe reports a subscription status this code does not know.
    #[error("unknown subscription status {0:?}")]
    UnknownStatus(String),
}

/// What the webhook does with a sync that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Acknowledge without the processed marker and keep the event for reconciliation: it
    /// needs a fix elsewhere (a link, the catalog), after which a redelivery or the
    /// reconciliation job applies it.
    Park,
    /// Answer 5xx so Stripe retries (for up to three days): anything that could succeed later.
    Retry,
}

impl SyncError {
    pub fn disposition(&self) -> Disposition {
        match self {
            SyncError::UnknownCustomer(_)
            | SyncError::Unattributable(_)
            | SyncError::UnknownStatus(_) => Disposition::Park,
            // A rejected key, a malformed answer, an unreadable stored item, an outage: all of
            // them heal (a key is fixed, a deploy reads the new shape), so none is final.
            SyncError::Stripe(_)
            | SyncError::Store(_)
            | SyncError::Convert(_)
            | SyncError::NotFoundUnconfirmed(_) => Disposition::Retry,
        }
    }

    /// The customer the failed object belongs to, when known (for the reconciliation item).
    pub fn customer(&self) -> Option<&CustomerId> {
        match self {
            SyncError::UnknownCustomer(c) => Some(c),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub org: Option<OrgId>,
    pub applied: Applied,
    /// Prices of the stored subscription that map to no module (they grant nothing).
    pub unmapped_prices: Vec<String>,
}

impl Synced {
    fn new(org: Option<OrgId>, applied: Applied) -> Self {
        Self {
            org,
            applied,
            unmapped_prices: Vec::new(),
        }
    }
}

/// What, besides a 404, says that an object was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Nothing: a 404 may come from a key of another account. Retry, end nothing.
    Unconfirmed,
    /// A deletion event (`customer.subscription.deleted`, `customer.deleted`) or a customer
    /// Stripe reports `deleted`.
    Confirmed,
}

fn not_found_unconfirmed(object: &'static str) -> SyncError {
    tracing::warn!(
        object,
        "Stripe answered 404 and nothing confirms a deletion: retrying"
    );
    crate::metrics::stripe_not_found_unconfirmed();
    SyncError::NotFoundUnconfirmed(object)
}

/// What a Checkout Session claims, from the fields only this service sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutClaim {
    pub org: OrgId,
    pub customer: CustomerId,
}

/// Reads the claim of a Checkout Session: subscription mode, the org in the session's
/// `metadata.organization_id` (set server-side by `POST /api/billing/checkout`; Payment Links
/// and pricing tables cannot set it from the buyer's side), and a customer. The buyer-controlled
/// `client_reference_id` is never read. Pure.
pub fn checkout_claim(session: &StripeCheckoutSession) -> Result<CheckoutClaim, String> {
    if session.mode.as_deref() != Some("subscription") {
        return Err(format!("session mode is {:?}", session.mode));
    }
    let org = session
        .metadata
        .as_ref()
        .and_then(|m| m.get(ORG_METADATA_KEY))
        .ok_or_else(|| "session has no organization_id metadata".to_owned())?;
    let org = OrgId::parse(org).map_err(|e| e.to_string())?;
    let customer = session
        .customer
        .as_ref()
        .ok_or_else(|| "session has no customer".to_owned())?;
    let customer = CustomerId::parse(customer.id()).map_err(|e| e.to_string())?;
    Ok(CheckoutClaim { org, customer })
}

/// The event that announces a trial's end, three days before it.
const TRIAL_WILL_END: &str = "customer.subscription.trial_will_end";

/// Reads from Stripe, writes to the store.
#[derive(Debug, Clone)]
pub struct Syncer {
    pub store: BillingStore,
    pub stripe: StripeApi,
    pub catalog: Catalog,
    pub policy: GracePolicy,
}

impl From<crate::domain::InvalidId> for SyncError {
    fn from(e: crate::domain::InvalidId) -> Self {
        SyncError::Convert(ConvertError(e.to_string()))
    }
}

impl Syncer {
    pub fn new(store: BillingStore, stripe: StripeApi, policy: GracePolicy) -> Self {
        Self {
            store,
            stripe,
            catalog: Catalog::standard(),
            policy,
        }
    }

    /// From the Lambda environment: the store ([`BillingStore::from_env`]), Stripe with the key
    /// loaded at init ([`StripeApi::from_secrets`]) and the past-due grace policy
    /// ([`GracePolicy::from_env`]).
    pub fn from_env(aws: &aws_config::SdkConfig, secrets: &Secrets) -> Result<Self, ConfigError> {
        Ok(Self::new(
            BillingStore::from_env(aws)?,
            StripeApi::from_secrets(secrets)?,
            GracePolicy::from_env()?,
        ))
    }

    async fn org_of(&self, customer: &CustomerId) -> Result<OrgId, SyncError> {
        self.store
            .org_for_customer(customer)
            .await?
            .ok_or_else(|| SyncError::UnknownCustomer(customer.clone()))
    }

    /// Re-reads one subscription from Stripe and stores it with the org's new entitlements.
    pub async fn sync_subscription(
        &self,
        id: &SubscriptionId,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        self.sync_subscription_of(id, None, marker).await
    }

    /// As [`Self::sync_subscription`]; `customer` (from the event) finds the stored copy when
    /// Stripe no longer has the subscription. A 404 is not taken as a deletion.
    pub async fn sync_subscription_of(
        &self,
        id: &SubscriptionId,
        customer: Option<&CustomerId>,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        self.sync_subscription_as(id, customer, marker, Deletion::Unconfirmed)
            .await
    }

    /// As [`Self::sync_subscription_of`]; `deletion` says whether a 404 ends the stored copy.
    pub async fn sync_subscription_as(
        &self,
        id: &SubscriptionId,
        customer: Option<&CustomerId>,
        marker: Option<&EventMarker>,
        deletion: Deletion,
    ) -> Result<Synced, SyncError> {
        let fetched_at = FetchTime::now();
        let raw = match self.stripe.subscription(id.as_str()).await {
            Ok(raw) => raw,
            Err(StripeApiError::NotFound) if deletion == Deletion::Confirmed => {
                return self
                    .subscription_gone(id, customer, fetched_at, marker)
                    .await;
            }
            Err(StripeApiError::NotFound) => return Err(not_found_unconfirmed("subscription")),
            Err(e) => return Err(e.into()),
        };
        self.store_read(&raw, fetched_at, marker).await
    }

    /// Stores a subscription as read from Stripe at `fetched_at` (a retrieve, or one object of
    /// a list: the same guards apply either way).
    pub async fn store_read(
        &self,
        raw: &crate::stripe::StripeSubscription,
        fetched_at: FetchTime,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        self.store_read_of(raw, fetched_at, marker, None).await
    }

    /// As [`Self::store_read`]; `linked` is the org the event's customer is linked to, when
    /// already read (the webhook reads it while Stripe is asked), so it is not read again.
    async fn store_read_of(
        &self,
        raw: &crate::stripe::StripeSubscription,
        fetched_at: FetchTime,
        marker: Option<&EventMarker>,
        linked: Option<(&CustomerId, OrgId)>,
    ) -> Result<Synced, SyncError> {
        let (subscription, unmapped_prices) = self.prepare(raw, marker).await?;
        let org = match linked {
            Some((customer, org)) if customer == &subscription.customer_id => org,
            _ => self.org_of(&subscription.customer_id).await?,
        };
        let applied = self
            .store
            .apply_subscription(&org, &subscription, fetched_at, marker, self.policy)
            .await?;
        Ok(Synced {
            org: Some(org),
            applied,
            unmapped_prices,
        })
    }

    /// A subscription as read from Stripe, in domain terms, and its prices that map to no
    /// module (they grant nothing; warned about and counted here).
    async fn prepare(
        &self,
        raw: &crate::stripe::StripeSubscription,
        marker: Option<&EventMarker>,
    ) -> Result<(crate::domain::Subscription, Vec<String>), SyncError> {
        if SubscriptionStatus::parse(&raw.status).is_none() {
            return Err(SyncError::UnknownStatus(raw.status.clone()));
        }
        let mut subscription = raw.to_domain(&self.catalog)?;
        if marker.is_some_and(|m| m.event_type == TRIAL_WILL_END) {
            subscription.trial_end_notice = subscription.trial_end;
        }
        let unmapped_prices = self.resolve_modules_by_product(&mut subscription).await?;
        if !unmapped_prices.is_empty() && !subscription.status.is_terminal() {
            // Stored as Stripe has it (those items grant nothing), so later status changes
            // still reach the table; the alarm asks for the catalog to be fixed.
            tracing::warn!(
                subscription = %subscription.id,
                prices = ?unmapped_prices,
                "subscription items whose price maps to no module: they grant nothing"
            );
            crate::metrics::unmapped_price();
        }
        Ok((subscription, unmapped_prices))
    }

    /// Runs an event's Stripe re-read while its marker and its customer's link are read (one
    /// consistent BatchGetItem): the read's result and the linked org, or `None` when the event
    /// was already processed.
    async fn read_unless_processed<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, StripeApiError>>,
        marker: &EventMarker,
        customer: Option<&CustomerId>,
    ) -> Result<Option<(Result<T, StripeApiError>, Option<OrgId>)>, SyncError> {
        let (raw, seen) = tokio::join!(
            read,
            self.store.event_processed_and_org(&marker.id, customer)
        );
        let (processed, linked) = seen?;
        Ok((!processed).then_some((raw, linked)))
    }

    /// A subscription event: the Stripe re-read, and the marker and the customer's link read
    /// together with it (one BatchGetItem while Stripe answers), then one consistent Query and
    /// one transaction. `None` when the event was already processed.
    pub async fn sync_subscription_event(
        &self,
        id: &SubscriptionId,
        customer: Option<&CustomerId>,
        marker: &EventMarker,
        deletion: Deletion,
    ) -> Result<Option<Synced>, SyncError> {
        let fetched_at = FetchTime::now();
        let read = self.stripe.subscription(id.as_str());
        let Some((raw, linked)) = self.read_unless_processed(read, marker, customer).await? else {
            return Ok(None);
        };
        let raw = match raw {
            Ok(raw) => raw,
            Err(StripeApiError::NotFound) if deletion == Deletion::Confirmed => {
                return self
                    .subscription_gone(id, customer, fetched_at, Some(marker))
                    .await
                    .map(Some);
            }
            Err(StripeApiError::NotFound) => return Err(not_found_unconfirmed("subscription")),
            Err(e) => return Err(e.into()),
        };
        let linked = customer.zip(linked);
        self.store_read_of(&raw, fetched_at, Some(marker), linked)
            .await
            .map(Some)
    }

    /// Items whose price has neither a catalog lookup key nor `service_module` metadata are
    /// mapped by their product's `service_module` metadata (catalog-sync writes it). Returns
    /// the prices that still map to nothing: such an item grants nothing, never a guess.
    async fn resolve_modules_by_product(
        &self,
        subscription: &mut crate::domain::Subscription,
    ) -> Result<Vec<String>, SyncError> {
        let mut unmapped = Vec::new();
        for item in subscription.items.iter_mut().filter(|i| i.module.is_none()) {
            if let Some(product) = &item.product_id {
                item.module = self
                    .stripe
                    .product(product)
                    .await?
                    .and_then(|p| p.metadata?.get(MODULE_METADATA_KEY)?.parse().ok());
            }
            if item.module.is_none() {
                unmapped.push(item.price_id.clone());
            }
        }
        Ok(unmapped)
    }

    /// Stripe has no such subscription: a stored copy is ended, so it grants nothing.
    async fn subscription_gone(
        &self,
        id: &SubscriptionId,
        customer: Option<&CustomerId>,
        fetched_at: FetchTime,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        tracing::warn!(subscription = %id, "subscription not found in Stripe: ending the stored copy");
        let org = match customer {
            Some(c) => self.store.org_for_customer(c).await?,
            None => None,
        };
        let found = match &org {
            Some(org) => self
                .store
                .subscriptions(org)
                .await?
                .into_iter()
                .find(|s| &s.subscription.id == id)
                .map(|stored| (org.clone(), stored)),
            None => None,
        };
        let Some((org, stored)) = found else {
            // The audit entry still names the customer's org when there is one.
            let applied = self.store.finish_stale(marker, org.as_ref()).await?;
            return Ok(Synced::new(org, applied));
        };
        let mut ended = stored.subscription;
        if !ended.status.is_terminal() {
            ended.status = SubscriptionStatus::Canceled;
            ended.ended_at = Some(fetched_at.as_timestamp());
            // Not Stripe's word: a later read of the live object replaces it.
            ended.ended_unseen = true;
        }
        let applied = self
            .store
            .apply_subscription(&org, &ended, fetched_at, marker, self.policy)
            .await?;
        Ok(Synced::new(Some(org), applied))
    }

    /// Re-reads an invoice and its subscription (payment success or failure moves the
    /// subscription's status), then stores the invoice and marks the event.
    pub async fn sync_invoice(
        &self,
        id: &InvoiceId,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        let fetched_at = FetchTime::now();
        let raw = match self.stripe.invoice(id.as_str()).await {
            Ok(raw) => raw,
            // Only drafts can be deleted, and no handled event is about a deletion.
            Err(StripeApiError::NotFound) => return Err(not_found_unconfirmed("invoice")),
            Err(e) => return Err(e.into()),
        };
        let invoice = raw.to_domain()?;
        let org = self.org_of(&invoice.customer_id).await?;
        if let Some(sub) = &invoice.subscription_id {
            // Subscription first: if it fails, the event is not marked and Stripe retries both.
            self.sync_subscription_of(sub, Some(&invoice.customer_id), None)
                .await?;
        }
        let applied = self
            .store
            .apply_invoice(&org, &invoice, fetched_at, marker)
            .await?;
        Ok(Synced::new(Some(org), applied))
    }

    /// An invoice event (a payment made or failed): the invoice re-read while the marker and
    /// the customer's link are read (one BatchGetItem), then its subscription re-read and
    /// stored, then the invoice stored with the marker. `None` when the event was already
    /// processed.
    pub async fn sync_invoice_event(
        &self,
        id: &InvoiceId,
        customer: Option<&CustomerId>,
        marker: &EventMarker,
    ) -> Result<Option<Synced>, SyncError> {
        let fetched_at = FetchTime::now();
        let read = self.stripe.invoice(id.as_str());
        let Some((raw, linked)) = self.read_unless_processed(read, marker, customer).await? else {
            return Ok(None);
        };
        let raw = match raw {
            Ok(raw) => raw,
            // Only drafts can be deleted, and no handled event is about a deletion.
            Err(StripeApiError::NotFound) => return Err(not_found_unconfirmed("invoice")),
            Err(e) => return Err(e.into()),
        };
        let invoice = raw.to_domain()?;
        let org = match (customer, linked) {
            (Some(c), Some(org)) if c == &invoice.customer_id => org,
            _ => self.org_of(&invoice.customer_id).await?,
        };
        if let Some(sub) = &invoice.subscription_id {
            // Subscription first: if it fails, the event is not marked and Stripe retries both.
            let sub_fetched_at = FetchTime::now();
            let raw_sub = match self.stripe.subscription(sub.as_str()).await {
                Ok(raw_sub) => raw_sub,
                Err(StripeApiError::NotFound) => {
                    return Err(not_found_unconfirmed("subscription"));
                }
                Err(e) => return Err(e.into()),
            };
            self.store_read_of(
                &raw_sub,
                sub_fetched_at,
                None,
                Some((&invoice.customer_id, org.clone())),
            )
            .await?;
        }
        let applied = self
            .store
            .apply_invoice(&org, &invoice, fetched_at, Some(marker))
            .await?;
        Ok(Some(Synced::new(Some(org), applied)))
    }

    /// Re-reads a customer's default payment method and payment methods of every type; a
    /// customer Stripe reports deleted unlinks the org from it.
    pub async fn sync_customer(
        &self,
        id: &CustomerId,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        self.sync_customer_as(id, marker, Deletion::Unconfirmed)
            .await
    }

    /// As [`Self::sync_customer`]; `deletion` (a `customer.deleted` event) says whether a 404
    /// unlinks the org.
    pub async fn sync_customer_as(
        &self,
        id: &CustomerId,
        marker: Option<&EventMarker>,
        deletion: Deletion,
    ) -> Result<Synced, SyncError> {
        let org = self.org_of(id).await?;
        let fetched_at = FetchTime::now();
        let customer = match self.stripe.customer(id.as_str()).await {
            Ok(c) if c.deleted != Some(true) => c,
            Ok(_) => return self.customer_deleted(&org, id, marker).await,
            Err(StripeApiError::NotFound) if deletion == Deletion::Confirmed => {
                return self.customer_deleted(&org, id, marker).await;
            }
            Err(StripeApiError::NotFound) => return Err(not_found_unconfirmed("customer")),
            Err(e) => return Err(e.into()),
        };
        let methods = self.stripe.payment_methods(id.as_str()).await?;
        let snapshot = customer_snapshot(id, &customer, &methods)?;
        let applied = self
            .store
            .apply_customer(&org, &snapshot, fetched_at, marker)
            .await?;
        Ok(Synced::new(Some(org), applied))
    }

    /// The customer was deleted in Stripe, which cancels its subscriptions: re-read those
    /// first (so the org loses their modules even if their own events come late or never),
    /// then drop the org's billing profile and payment methods so it can check out again.
    async fn customer_deleted(
        &self,
        org: &OrgId,
        customer: &CustomerId,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        tracing::info!(org = %org, "Stripe customer deleted: unlinking the organization");
        for stored in self.store.subscriptions(org).await? {
            let sub = &stored.subscription;
            if &sub.customer_id == customer && !sub.status.is_terminal() {
                // The customer's deletion backs a 404 of its subscription.
                self.sync_subscription_as(&sub.id, Some(customer), None, Deletion::Confirmed)
                    .await?;
            }
        }
        let applied = self
            .store
            .unlink_deleted_customer(org, customer, marker)
            .await?;
        Ok(Synced::new(Some(org.clone()), applied))
    }

    /// The org a Checkout Session belongs to, by what this service wrote, never by
    /// `client_reference_id`. Its customer must be the one this service created for that org
    /// (the org's billing profile), or, when the org has no profile yet, a customer whose own
    /// `metadata.organization_id` names the org (then the link is made here).
    pub async fn attribute_session(
        &self,
        session: &StripeCheckoutSession,
    ) -> Result<CheckoutClaim, SyncError> {
        let claim = checkout_claim(session).map_err(SyncError::Unattributable)?;
        if let Some(profile) = self.store.billing_profile(&claim.org).await? {
            return if profile.customer_id == claim.customer {
                Ok(claim)
            } else {
                Err(SyncError::Unattributable(
                    "the organization is linked to another customer".to_owned(),
                ))
            };
        }
        let customer = match self.stripe.customer(claim.customer.as_str()).await {
            Ok(c) if c.deleted != Some(true) => c,
            Ok(_) | Err(StripeApiError::NotFound) => {
                return Err(SyncError::Unattributable(
                    "the session's customer does not exist".to_owned(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let named = customer
            .metadata
            .as_ref()
            .and_then(|m| m.get(ORG_METADATA_KEY));
        if named.map(String::as_str) != Some(claim.org.as_str()) {
            return Err(SyncError::Unattributable(
                "the customer was not created for this organization".to_owned(),
            ));
        }
        match self
            .store
            .link_customer(&claim.org, &claim.customer)
            .await?
        {
            LinkOutcome::Created | LinkOutcome::AlreadyLinked => Ok(claim),
            LinkOutcome::Conflict { .. } => Err(SyncError::Unattributable(
                "the customer or the organization is linked elsewhere".to_owned(),
            )),
        }
    }

    /// A completed Checkout Session: attribute it, then sync the subscription it created.
    pub async fn complete_checkout(
        &self,
        session_id: &str,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        let session = match self.stripe.checkout_session(session_id).await {
            Ok(s) => s,
            Err(StripeApiError::NotFound) => {
                return Err(SyncError::Unattributable(
                    "no such checkout session in this Stripe account".to_owned(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        self.complete_attributed(&session, marker).await
    }

    /// As [`Self::complete_checkout`], for a session already read.
    pub async fn complete_attributed(
        &self,
        session: &StripeCheckoutSession,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        let claim = self.attribute_session(session).await?;
        match &session.subscription {
            Some(sub) => {
                let sub = SubscriptionId::parse(sub.id())?;
                self.sync_subscription_of(&sub, Some(&claim.customer), marker)
                    .await
            }
            None => {
                let applied = match marker {
                    Some(m) => self.store.record_event(m, Some(&claim.org)).await?,
                    None => Applied::Stale,
                };
                Ok(Synced::new(Some(claim.org), applied))
            }
        }
    }

    /// Eager sync of one org: every subscription of its customer, and its payment methods.
    /// Returns `None` when the org has no Stripe customer yet.
    pub async fn sync_org(&self, org: &OrgId) -> Result<Option<Timestamp>, SyncError> {
        let Some(profile) = self.store.billing_profile(org).await? else {
            return Ok(None);
        };
        self.sync_customer_subscriptions(&profile.customer_id)
            .await?;
        self.sync_customer(&profile.customer_id, None).await?;
        Ok(Some(Timestamp::now()))
    }

    /// Lists every subscription of a customer in Stripe and stores each listed object as read
    /// (one request for any number of subscriptions, not one re-read each).
    /// Returns the listed objects.
    pub async fn sync_customer_subscriptions(
        &self,
        customer: &CustomerId,
    ) -> Result<Vec<crate::stripe::StripeSubscription>, SyncError> {
        let fetched_at = FetchTime::now();
        let listed = self
            .stripe
            .customer_subscriptions(customer.as_str())
            .await?;
        self.store_listed(customer, &listed, fetched_at).await?;
        Ok(listed)
    }

    /// Stores a customer's listed subscriptions: one consistent read and one transaction for
    /// all of them, not one each.
    pub async fn store_listed(
        &self,
        customer: &CustomerId,
        listed: &[crate::stripe::StripeSubscription],
        fetched_at: FetchTime,
    ) -> Result<(), SyncError> {
        if listed.is_empty() {
            return Ok(());
        }
        let org = self.org_of(customer).await?;
        let mut prepared = Vec::with_capacity(listed.len());
        for raw in listed {
            let (subscription, _) = self.prepare(raw, None).await?;
            if &subscription.customer_id != customer {
                return Err(SyncError::Convert(ConvertError(
                    "a listed subscription belongs to another customer".to_owned(),
                )));
            }
            prepared.push(subscription);
        }
        let fetched: Vec<_> = prepared.iter().map(|s| (s, fetched_at)).collect();
        self.store
            .apply_subscriptions(&org, &fetched, None, self.policy)
            .await?;
        Ok(())
    }
}

/// A customer's default payment method and its payment methods, as read from Stripe.
fn customer_snapshot(
    id: &CustomerId,
    customer: &crate::stripe::StripeCustomer,
    methods: &[crate::stripe::StripePaymentMethod],
) -> Result<CustomerSnapshot, SyncError> {
    let default_payment_method = customer
        .default_payment_method()
        .map(crate::domain::PaymentMethodId::parse)
        .transpose()?;
    let mut payment_methods = Vec::with_capacity(methods.len());
    for method in methods {
        if let Some(pm) = method.to_domain()?
            && &pm.customer_id == id
        {
            payment_methods.push(pm);
        }
    }
    Ok(CustomerSnapshot {
        customer_id: id.clone(),
        default_payment_method,
        payment_methods,
    })
}

impl Syncer {
    /// The eager sync of an org that has a billing profile (the success page's): every Stripe
    /// read at once (the Checkout Session when given, the customer's subscriptions, the
    /// customer, its payment methods), then the subscriptions in one transaction and the
    /// payment methods in another, concurrently. A session counts only when this service
    /// created it for this org and its customer is the org's (else `Unattributable`).
    /// Returns the org's subscriptions and access as stored after it.
    pub async fn sync_profile_at_once(
        &self,
        org: &OrgId,
        profile: &crate::domain::BillingProfile,
        session: Option<&str>,
    ) -> Result<crate::store::AppliedAccess, SyncError> {
        let customer = &profile.customer_id;
        let fetched_at = FetchTime::now();
        let read_session = async {
            match session {
                Some(id) => self.stripe.checkout_session(id).await.map(Some),
                None => Ok(None),
            }
        };
        let (session, listed, customer_read, methods) = tokio::join!(
            read_session,
            self.stripe.customer_subscriptions(customer.as_str()),
            self.stripe.customer(customer.as_str()),
            self.stripe.payment_methods(customer.as_str())
        );
        let session = match session {
            Ok(session) => session,
            Err(StripeApiError::NotFound) => {
                return Err(SyncError::Unattributable(
                    "no such checkout session in this Stripe account".to_owned(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(session) = &session {
            let claim = checkout_claim(session).map_err(SyncError::Unattributable)?;
            if &claim.org != org || &claim.customer != customer {
                return Err(SyncError::Unattributable(
                    "the session belongs to another organization or customer".to_owned(),
                ));
            }
        }
        let mut listed = listed?;
        // Stripe's list includes the session's subscription; should it lag, read it alone.
        if let Some(sub) = session.as_ref().and_then(|s| s.subscription.as_ref())
            && !listed.iter().any(|l| l.id == sub.id())
        {
            match self.stripe.subscription(sub.id()).await {
                Ok(raw) => listed.push(raw),
                Err(StripeApiError::NotFound) => return Err(not_found_unconfirmed("subscription")),
                Err(e) => return Err(e.into()),
            }
        }
        let mut prepared = Vec::with_capacity(listed.len());
        for raw in &listed {
            prepared.push(self.prepare(raw, None).await?.0);
        }
        let fetched: Vec<_> = prepared.iter().map(|s| (s, fetched_at)).collect();
        let customer_read = match customer_read {
            Ok(c) if c.deleted != Some(true) => Some(c),
            Ok(_) | Err(StripeApiError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let Some(customer_read) = customer_read else {
            // Deleted in Stripe (or unreadable): the customer's own path decides, with its
            // re-reads and the unlink.
            self.store
                .apply_subscriptions(org, &fetched, None, self.policy)
                .await?;
            self.sync_customer(customer, None).await?;
            let state = self.store.access_state(org).await?;
            return Ok(crate::store::AppliedAccess {
                applied: Applied::Written,
                subscriptions: state
                    .subscriptions
                    .into_iter()
                    .map(|s| s.subscription)
                    .collect(),
                entitlements: state.entitlements.map(|e| e.set).unwrap_or_default(),
            });
        };
        let snapshot = customer_snapshot(customer, &customer_read, &methods?)?;
        let (access, _) = tokio::try_join!(
            self.store
                .apply_subscriptions(org, &fetched, None, self.policy),
            self.store.apply_customer(org, &snapshot, fetched_at, None)
        )?;
        Ok(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(json: &str) -> StripeCheckoutSession {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_claim_needs_server_set_metadata_subscription_mode_and_a_customer() {
        let ok = session(
            r#"{"id":"cs_test_1","mode":"subscription","customer":"cus_1",
            "client_reference_id":"org_other","metadata":{"organization_id":"org_a"}}"#,
        );
        let claim = checkout_claim(&ok).unwrap();
        assert_eq!(claim.org.as_str(), "org_a");
        assert_eq!(claim.customer.as_str(), "cus_1");

        // A Payment Link buyer controls client_reference_id: alone it names nobody.
        let buyer_set = session(
            r#"{"id":"cs_test_2","mode":"subscription","customer":"cus_1","client_reference_id":"org_a","metadata":{}}"#,
        );
        assert!(checkout_claim(&buyer_set).is_err());
        let payment = session(
            r#"{"id":"cs_test_3","mode":"payment","customer":"cus_1","metadata":{"organization_id":"org_a"}}"#,
        );
        assert!(checkout_claim(&payment).is_err());
        let no_customer = session(
            r#"{"id":"cs_test_4","mode":"subscription","metadata":{"organization_id":"org_a"}}"#,
        );
        assert!(checkout_claim(&no_customer).is_err());
    }

    #[test]
    fn only_causes_fixed_elsewhere_are_parked() {
        let park = [
            SyncError::UnknownCustomer(CustomerId::parse("cus_1").unwrap()),
            SyncError::Unattributable("x".into()),
            SyncError::UnknownStatus("frozen".into()),
        ];
        for e in park {
            assert_eq!(e.disposition(), Disposition::Park, "{e}");
        }
        let retry = [
            SyncError::Stripe(StripeApiError::Rejected {
                status: 401,
                code: None,
            }),
            SyncError::Stripe(StripeApiError::Rejected {
                status: 400,
                code: Some("parameter_invalid".into()),
            }),
            SyncError::Stripe(StripeApiError::Malformed("x".into())),
            SyncError::Stripe(StripeApiError::Unavailable("x".into())),
            SyncError::Store(StoreError::Corrupt("x".into())),
            SyncError::Store(StoreError::Unavailable("x".into())),
            SyncError::Convert(ConvertError("x".into())),
            SyncError::Stripe(StripeApiError::WrongAccount),
            SyncError::NotFoundUnconfirmed("subscription"),
        ];
        for e in retry {
            assert_eq!(e.disposition(), Disposition::Retry, "{e}");
        }
    }
}
