//! Syncing from source: every Stripe event, and the eager sync after Checkout, is only a
//! trigger to re-read the current object from Stripe and store that. Events can then arrive in
//! any order, twice, or concurrently with an eager sync: the newest read always wins.

use crate::domain::{
    Catalog, CustomerId, FetchTime, GracePolicy, InvoiceId, OrgId, SubscriptionId, Timestamp,
};
use crate::store::{Applied, BillingStore, CustomerSnapshot, EventMarker, LinkOutcome, StoreError};
use crate::stripe::{ConvertError, StripeApi, StripeApiError};

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
    /// The checkout session names no organization, or one linked to another customer.
    #[error("checkout session cannot be attributed: {0}")]
    Unattributable(String),
}

impl SyncError {
    /// Transient failures are retried (webhook answers 5xx); the rest never heal by retrying.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Stripe(e) => e.is_transient(),
            SyncError::Store(e) => e.is_transient(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub org: OrgId,
    pub applied: Applied,
}

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
        let fetched_at = FetchTime::now();
        let subscription = self
            .stripe
            .subscription(id.as_str())
            .await?
            .to_domain(&self.catalog)?;
        let org = self.org_of(&subscription.customer_id).await?;
        let applied = self
            .store
            .apply_subscription(&org, &subscription, fetched_at, marker, self.policy)
            .await?;
        Ok(Synced { org, applied })
    }

    /// Re-reads an invoice and its subscription (payment success or failure moves the
    /// subscription's status), then stores the invoice and marks the event.
    pub async fn sync_invoice(
        &self,
        id: &InvoiceId,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        let fetched_at = FetchTime::now();
        let raw = self.stripe.invoice(id.as_str()).await?;
        let invoice = raw.to_domain()?;
        let org = self.org_of(&invoice.customer_id).await?;
        if let Some(sub) = &invoice.subscription_id {
            // Subscription first: if it fails, the event is not marked and Stripe retries both.
            self.sync_subscription(sub, None).await?;
        }
        let applied = self
            .store
            .apply_invoice(&org, &invoice, fetched_at, marker)
            .await?;
        Ok(Synced { org, applied })
    }

    /// Re-reads a customer's default payment method and card list.
    pub async fn sync_customer(
        &self,
        id: &CustomerId,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        let org = self.org_of(id).await?;
        let fetched_at = FetchTime::now();
        let (customer, methods) = tokio::try_join!(
            self.stripe.customer(id.as_str()),
            self.stripe.payment_methods(id.as_str())
        )?;
        let default_payment_method = customer
            .default_payment_method()
            .map(crate::domain::PaymentMethodId::parse)
            .transpose()?;
        let mut payment_methods = Vec::with_capacity(methods.len());
        for method in &methods {
            if let Some(pm) = method.to_domain()?
                && &pm.customer_id == id
            {
                payment_methods.push(pm);
            }
        }
        let snapshot = CustomerSnapshot {
            customer_id: id.clone(),
            default_payment_method,
            payment_methods,
        };
        let applied = self
            .store
            .apply_customer(&org, &snapshot, fetched_at, marker)
            .await?;
        Ok(Synced { org, applied })
    }

    /// Links the org named by a completed Checkout Session to its customer (first contact),
    /// then syncs the subscription it created.
    pub async fn complete_checkout(
        &self,
        session_id: &str,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        let session = self.stripe.checkout_session(session_id).await?;
        let org_raw = session
            .client_reference_id
            .as_deref()
            .or_else(|| {
                session
                    .metadata
                    .as_ref()?
                    .get("organization_id")
                    .map(String::as_str)
            })
            .ok_or_else(|| {
                SyncError::Unattributable("no client_reference_id or organization_id".to_owned())
            })?;
        let org = OrgId::parse(org_raw).map_err(|e| SyncError::Unattributable(e.to_string()))?;
        let customer = session
            .customer
            .as_ref()
            .ok_or_else(|| SyncError::Unattributable("session has no customer".to_owned()))?;
        let customer = CustomerId::parse(customer.id())?;
        match self.store.link_customer(&org, &customer).await? {
            LinkOutcome::Created | LinkOutcome::AlreadyLinked => {}
            LinkOutcome::Conflict { .. } => {
                return Err(SyncError::Unattributable(format!(
                    "organization {org} is linked to a different Stripe customer"
                )));
            }
        }
        match &session.subscription {
            Some(sub) => {
                let sub = SubscriptionId::parse(sub.id())?;
                self.sync_subscription(&sub, marker).await
            }
            None => {
                let applied = match marker {
                    Some(m) => self.store.record_event(m).await?,
                    None => Applied::Stale,
                };
                Ok(Synced { org, applied })
            }
        }
    }

    /// Eager sync of one org: every subscription of its customer, and its payment methods.
    /// Returns `None` when the org has no Stripe customer yet.
    pub async fn sync_org(&self, org: &OrgId) -> Result<Option<Timestamp>, SyncError> {
        let Some(profile) = self.store.billing_profile(org).await? else {
            return Ok(None);
        };
        let subs = self
            .stripe
            .customer_subscriptions(profile.customer_id.as_str())
            .await?;
        for sub in &subs {
            let id = SubscriptionId::parse(&sub.id)?;
            self.sync_subscription(&id, None).await?;
        }
        self.sync_customer(&profile.customer_id, None).await?;
        Ok(Some(Timestamp::now()))
    }
}
