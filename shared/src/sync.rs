//! Syncing from source: every Stripe event, and the eager sync after Checkout, is only a
//! trigger to re-read the current object from Stripe and store that. Events can then arrive in
//! any order, twice, or concurrently with an eager sync: the newest read always wins.
//!
//! What a missing object (`404 resource_missing` on the re-fetch) means, per object:
//! * subscription: it no longer exists, so it grants nothing. A stored copy is ended
//!   (`canceled`), the org's access recomputed; final.
//! * customer (or a customer Stripe reports `deleted`): the org's billing profile is removed so
//!   it can check out again, the customer link is kept but marked deleted (late events of its
//!   subscriptions still find the org), its payment methods are dropped; final.
//! * invoice: only drafts can be deleted; nothing to store; final.
//! * Checkout Session: not of this account; nothing is linked; parked for reconciliation.

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
    /// A subscription item's price maps to no module (no lookup key, no `service_module`
    /// metadata on the price or its product): granting or denying would be a guess.
    #[error("subscription {subscription} has a price that maps to no module: {price}")]
    UnmappedPrice {
        subscription: SubscriptionId,
        price: String,
    },
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
            | SyncError::UnmappedPrice { .. }
            | SyncError::UnknownStatus(_) => Disposition::Park,
            // A rejected key, a malformed answer, an unreadable stored item, an outage: all of
            // them heal (a key is fixed, a deploy reads the new shape), so none is final.
            SyncError::Stripe(_) | SyncError::Store(_) | SyncError::Convert(_) => {
                Disposition::Retry
            }
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
    /// Stripe no longer has the subscription.
    pub async fn sync_subscription_of(
        &self,
        id: &SubscriptionId,
        customer: Option<&CustomerId>,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        let fetched_at = FetchTime::now();
        let raw = match self.stripe.subscription(id.as_str()).await {
            Ok(raw) => raw,
            Err(StripeApiError::NotFound) => {
                return self
                    .subscription_gone(id, customer, fetched_at, marker)
                    .await;
            }
            Err(e) => return Err(e.into()),
        };
        if SubscriptionStatus::parse(&raw.status).is_none() {
            return Err(SyncError::UnknownStatus(raw.status));
        }
        let mut subscription = raw.to_domain(&self.catalog)?;
        self.resolve_modules_by_product(&mut subscription).await?;
        let org = self.org_of(&subscription.customer_id).await?;
        let applied = self
            .store
            .apply_subscription(&org, &subscription, fetched_at, marker, self.policy)
            .await?;
        Ok(Synced {
            org: Some(org),
            applied,
        })
    }

    /// Items whose price has neither a catalog lookup key nor `service_module` metadata are
    /// mapped by their product's `service_module` metadata (catalog-sync writes it). An item
    /// that still maps to nothing stops the sync of a live subscription: it is parked, never
    /// silently granting or denying.
    async fn resolve_modules_by_product(
        &self,
        subscription: &mut crate::domain::Subscription,
    ) -> Result<(), SyncError> {
        for item in subscription.items.iter_mut().filter(|i| i.module.is_none()) {
            if let Some(product) = &item.product_id {
                item.module = self
                    .stripe
                    .product(product)
                    .await?
                    .and_then(|p| p.metadata?.get(MODULE_METADATA_KEY)?.parse().ok());
            }
            if item.module.is_none() && !subscription.status.is_terminal() {
                return Err(SyncError::UnmappedPrice {
                    subscription: subscription.id.clone(),
                    price: item.price_id.clone(),
                });
            }
        }
        Ok(())
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
        let stored = match &org {
            Some(org) => self
                .store
                .subscriptions(org)
                .await?
                .into_iter()
                .find(|s| &s.subscription.id == id),
            None => None,
        };
        let (Some(org), Some(stored)) = (org, stored) else {
            let applied = self.store.finish_stale(marker).await?;
            return Ok(Synced { org: None, applied });
        };
        let mut ended = stored.subscription;
        if !ended.status.is_terminal() {
            ended.status = SubscriptionStatus::Canceled;
            ended.ended_at = Some(fetched_at.as_timestamp());
        }
        let applied = self
            .store
            .apply_subscription(&org, &ended, fetched_at, marker, self.policy)
            .await?;
        Ok(Synced {
            org: Some(org),
            applied,
        })
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
            // Only drafts can be deleted, and a deleted one has nothing left to show.
            Err(StripeApiError::NotFound) => {
                let applied = self.store.finish_stale(marker).await?;
                return Ok(Synced { org: None, applied });
            }
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
        Ok(Synced {
            org: Some(org),
            applied,
        })
    }

    /// Re-reads a customer's default payment method and payment methods of every type; a
    /// customer Stripe deleted unlinks the org from it.
    pub async fn sync_customer(
        &self,
        id: &CustomerId,
        marker: Option<&EventMarker>,
    ) -> Result<Synced, SyncError> {
        let org = self.org_of(id).await?;
        let fetched_at = FetchTime::now();
        let customer = match self.stripe.customer(id.as_str()).await {
            Ok(c) if c.deleted != Some(true) => c,
            Ok(_) | Err(StripeApiError::NotFound) => {
                return self.customer_deleted(&org, id, marker).await;
            }
            Err(e) => return Err(e.into()),
        };
        let methods = self.stripe.payment_methods(id.as_str()).await?;
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
        Ok(Synced {
            org: Some(org),
            applied,
        })
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
                self.sync_subscription_of(&sub.id, Some(customer), None)
                    .await?;
            }
        }
        let applied = self
            .store
            .unlink_deleted_customer(org, customer, marker)
            .await?;
        Ok(Synced {
            org: Some(org.clone()),
            applied,
        })
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
                    Some(m) => self.store.record_event(m).await?,
                    None => Applied::Stale,
                };
                Ok(Synced {
                    org: Some(claim.org),
                    applied,
                })
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
            self.sync_subscription_of(&id, Some(&profile.customer_id), None)
                .await?;
        }
        self.sync_customer(&profile.customer_id, None).await?;
        Ok(Some(Timestamp::now()))
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
        ];
        for e in retry {
            assert_eq!(e.disposition(), Disposition::Retry, "{e}");
        }
    }
}
