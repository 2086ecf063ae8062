//! Step 3 of a run: every org with a billing profile (and every org whose customer link is
//! marked deleted) re-synced through the eager sync's calls, with the drift counted by kind.

use std::collections::{HashMap, HashSet};

use super::{DriftKind, RECENT_INVOICES, Reconciler, Report};
use crate::domain::{
    CustomerId, EntitlementSet, FetchTime, Invoice, OrgId, PaymentMethod, PaymentMethodId,
    Subscription, SubscriptionId,
};
use crate::store::StoreError;
use crate::store::reconcile::ScannedLink;
use crate::sync::{SyncError, Synced};

/// The stored state of one org that drift is measured on.
#[derive(Debug, Default)]
struct OrgSnapshot {
    subscriptions: HashMap<SubscriptionId, Subscription>,
    entitlements: Option<EntitlementSet>,
    payment_methods: HashMap<PaymentMethodId, PaymentMethod>,
    default_payment_method: Option<PaymentMethodId>,
    invoices: HashMap<String, Invoice>,
}

impl Reconciler {
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

    /// One scanned item: an org's billing profile, or a customer link marked deleted whose
    /// customer may still exist (a deletion inferred from a wrong key before the account pin):
    /// if Stripe still has the customer, the link is restored and the org re-synced.
    pub(super) async fn reconcile_scanned(&self, scanned: &ScannedLink, report: &mut Report) {
        if scanned.deleted {
            match self.restore_if_alive(scanned, report).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(org = %scanned.org, error = %e, "deleted link not checked");
                    report.org_errors += 1;
                    return;
                }
            }
        }
        self.reconcile_org(&scanned.org, &scanned.customer, report)
            .await;
    }

    /// `true` when the customer is alive in Stripe and its link was restored.
    async fn restore_if_alive(
        &self,
        scanned: &ScannedLink,
        report: &mut Report,
    ) -> Result<bool, SyncError> {
        let syncer = self.syncer();
        let alive = match syncer.stripe.customer(scanned.customer.as_str()).await {
            Ok(c) => c.deleted != Some(true),
            // Nothing confirms the deletion either way: leave it as it is, count it.
            Err(crate::stripe::StripeApiError::NotFound) => {
                report.not_found_unconfirmed += 1;
                false
            }
            Err(e) => return Err(e.into()),
        };
        if !alive {
            return Ok(false);
        }
        tracing::warn!(org = %scanned.org, "customer marked deleted still exists in Stripe: linking it again");
        syncer
            .store
            .restore_link(&scanned.org, &scanned.customer)
            .await?;
        report.links_restored += 1;
        Ok(true)
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
            let synced = syncer
                .sync_subscription_of(&id, Some(customer), None)
                .await?;
            note_unmapped(&synced, report);
        }
        let extra: Vec<&SubscriptionId> = before
            .subscriptions
            .iter()
            .filter(|(id, s)| !listed_ids.contains(*id) && !s.status.is_terminal())
            .map(|(id, _)| id)
            .collect();
        let mut unrepaired_extra = 0;
        for id in &extra {
            // Not in Stripe's list: re-read it. A 404 alone ends nothing (see `sync`): it is
            // counted (found, not repaired), and the rest of the org is still repaired.
            match syncer.sync_subscription_of(id, Some(customer), None).await {
                Ok(synced) => note_unmapped(&synced, report),
                Err(SyncError::NotFoundUnconfirmed(_)) => {
                    report.not_found_unconfirmed += 1;
                    unrepaired_extra += 1;
                }
                Err(e) => return Err(e),
            }
        }
        syncer.sync_customer(customer, None).await?;
        self.sync_recent_invoices(org, customer).await?;
        syncer
            .store
            .recompute_entitlements(org, syncer.policy)
            .await?;

        let after = self.snapshot(org).await?;
        let extra = ExtraSubscriptions {
            ids: &extra,
            unrepaired: unrepaired_extra,
        };
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
        extra: &ExtraSubscriptions<'_>,
        wrong_entitlements: bool,
        report: &mut Report,
    ) {
        let policy = self.syncer().policy;
        let (mut missing, mut stale) = (0, 0);
        for (id, sub) in &after.subscriptions {
            if extra.ids.contains(&id) {
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
        // Re-read and updated to Stripe's copy; one Stripe answers 404 for stays as it was.
        let extras = extra.ids.len() as u64;
        report.found(
            DriftKind::ExtraSubscription,
            extras - extra.unrepaired,
            true,
        );
        report.found(DriftKind::ExtraSubscription, extra.unrepaired, false);
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

/// Stored live subscriptions Stripe did not list, and how many of them could not be re-read
/// (a 404 nothing confirms: left as they were).
struct ExtraSubscriptions<'a> {
    ids: &'a [&'a SubscriptionId],
    unrepaired: u64,
}

/// Reports the prices of a synced subscription that map to no module (once each).
fn note_unmapped(synced: &Synced, report: &mut Report) {
    for price in &synced.unmapped_prices {
        if !report.unmapped_prices.contains(price) {
            report.unmapped_prices.push(price.clone());
        }
    }
}
