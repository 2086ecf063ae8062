//! Subscriptions and the org's entitlements item, written together.

use super::*;

/// Tries of a subscription write against the org's entitlements version. A conflict means
/// another writer *changed* the org's subscriptions (a write that changes nothing bumps no
/// version), so with N concurrent changes for one org a writer loses at most N - 1 times: ten
/// tries carry a checkout's burst (about eight events and the eager sync) without a 503.
const MAX_VERSION_ATTEMPTS: usize = 10;

/// Full jitter over an exponentially growing window (10 ms, 20 ms, ... at most 400 ms), so
/// the writers of one burst do not retry in lockstep; at most about 2 s over all tries.
async fn backoff(attempt: usize) {
    use std::hash::{BuildHasher, Hasher};
    let window_ms = (10u64 << attempt.min(6)).min(400);
    // A per-call random seed from the standard library: no RNG crate for one pause.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    tokio::time::sleep(std::time::Duration::from_millis(random % (window_ms + 1))).await;
}

impl BillingStore {
    pub async fn subscriptions(&self, org: &OrgId) -> Result<Vec<StoredSubscription>, StoreError> {
        self.query_prefix(keys::org(org), keys::SUB_PREFIX)
            .await?
            .into_iter()
            .map(|item| {
                from_item::<SubscriptionRecord>(item).map(|r| StoredSubscription {
                    subscription: r.data,
                    fetched_at: FetchTime::from_micros(r.fetched_at),
                })
            })
            .collect()
    }

    pub async fn entitlements(
        &self,
        org: &OrgId,
        consistent: bool,
    ) -> Result<Option<StoredEntitlements>, StoreError> {
        let Some(item) = self
            .get(keys::org(org), keys::ENTITLEMENTS, consistent)
            .await?
        else {
            return Ok(None);
        };
        let record: EntitlementsRecord = from_item(item)?;
        Ok(Some(StoredEntitlements {
            set: EntitlementSet::from_grants(record.grants),
            version: record.version,
            updated_at: Timestamp::from_unix(record.updated_at),
        }))
    }

    /// Stores a subscription as read from Stripe at `fetched_at`, recomputes the org's
    /// entitlements from all its subscriptions, and marks the event processed: one transaction.
    ///
    /// Guards: a copy from an older read never replaces one from a newer read, a terminal
    /// (canceled) copy is never replaced by a live status, and the entitlements item is written
    /// only if no other writer changed it since we read it (optimistic version check), so
    /// concurrent syncs of different subscriptions of one org cannot lose each other's grants.
    pub async fn apply_subscription(
        &self,
        org: &OrgId,
        subscription: &Subscription,
        fetched_at: FetchTime,
        marker: Option<&EventMarker>,
        policy: GracePolicy,
    ) -> Result<Applied, StoreError> {
        for attempt in 0..MAX_VERSION_ATTEMPTS {
            // The entitlements item first, then the subscriptions, never at once: every write of
            // a subscription bumps the entitlements version in the same transaction, so a
            // version read *before* the subscriptions covers exactly the set read after it.
            // Read the other way round, a sibling's commit could land between the two reads and
            // this write would pass the version check with access computed from the old set.
            let current = self.entitlements(org, true).await?;
            let stored = self.subscriptions(org).await?;
            let previous = stored.iter().find(|s| s.subscription.id == subscription.id);
            if let Some(prev) = previous {
                let terminal_revival =
                    prev.subscription.is_final() && !subscription.status.is_terminal();
                if prev.fetched_at >= fetched_at || terminal_revival {
                    return self.finish_stale(marker).await;
                }
            }
            let fresh = subscription.clone().with_grace_start_from(
                previous.map(|p| &p.subscription),
                fetched_at.as_timestamp(),
            );
            let all = stored
                .iter()
                .map(|s| &s.subscription)
                .filter(|s| s.id != fresh.id)
                .chain(std::iter::once(&fresh));
            let set = EntitlementSet::from_subscriptions(all, policy);

            let unchanged = previous.is_some_and(|p| p.subscription == fresh)
                && current.as_ref().is_some_and(|c| c.set == set);
            let mut actions = if let (true, Some(prev)) = (unchanged, previous) {
                // A checkout's burst of events re-reads the same subscription many times: a
                // read that changes nothing only moves the stored read time forward, without
                // bumping the org's entitlements version, so it never conflicts with the
                // writes that do change something.
                vec![self.fetched_at_touch(org, &fresh.id, prev.fetched_at, fetched_at)?]
            } else {
                vec![
                    self.subscription_put(org, &fresh, fetched_at)?,
                    self.entitlements_put(org, &set, current.as_ref().map(|c| c.version))?,
                ]
            };
            let marker_index = actions.len();
            if let Some(marker) = marker {
                actions.extend(self.marker_actions(marker, Timestamp::now())?);
            }
            match self
                .transact_or_conflict(actions, marker.map(|_| marker_index))
                .await?
            {
                // A touch stored the newer read too: `Written`, as a changing write is.
                Some(applied) => return Ok(applied),
                // Someone wrote the subscription or the entitlements in between: read again,
                // after a jittered pause so the writers of one burst spread out.
                None => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention)
    }

    /// Moves a stored subscription's read time from `read` (the value this writer saw) to
    /// `fetched_at`, leaving its data and the entitlements version as they are.
    fn fetched_at_touch(
        &self,
        org: &OrgId,
        id: &crate::domain::SubscriptionId,
        read: FetchTime,
        fetched_at: FetchTime,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::org(org), keys::subscription(id))))
            .update_expression("SET fetched_at = :fetched")
            .condition_expression("fetched_at = :read")
            .expression_attribute_values(":fetched", number_value(fetched_at.micros()))
            .expression_attribute_values(":read", number_value(read.micros()))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub(super) fn subscription_put(
        &self,
        org: &OrgId,
        sub: &Subscription,
        fetched_at: FetchTime,
    ) -> Result<TransactWriteItem, StoreError> {
        let record = SubscriptionRecord {
            pk: keys::org(org),
            sk: keys::subscription(&sub.id),
            org_id: org.clone(),
            status: sub.status,
            ended_unseen: sub.ended_unseen,
            fetched_at: fetched_at.micros(),
            data: sub.clone(),
        };
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            .expression_attribute_values(":fetched", number_value(fetched_at.micros()));
        put = if sub.status.is_terminal() {
            put.condition_expression("attribute_not_exists(PK) OR fetched_at < :fetched")
        } else {
            // An end this service inferred from a 404 (`ended_unseen`) is not Stripe's final
            // word: a live read from the right account replaces it.
            put.condition_expression(
                "attribute_not_exists(PK) OR (fetched_at < :fetched AND (NOT (#status IN (:canceled, :expired)) OR ended_unseen = :unseen))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":unseen", AttributeValue::Bool(true))
            .expression_attribute_values(":canceled", string_value(SubscriptionStatus::Canceled.as_str()))
            .expression_attribute_values(":expired", string_value(SubscriptionStatus::IncompleteExpired.as_str()))
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(StoreError::unavailable)?)
            .build())
    }

    pub(super) fn entitlements_put(
        &self,
        org: &OrgId,
        set: &EntitlementSet,
        read_version: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let record = EntitlementsRecord {
            pk: keys::org(org),
            sk: keys::ENTITLEMENTS.to_owned(),
            org_id: org.clone(),
            version: read_version.map_or(1, |v| v + 1),
            updated_at: Timestamp::now().unix(),
            grants: set.grants().iter().map(|(m, g)| (*m, *g)).collect(),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?));
        let put = match read_version {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(v) => put
                .condition_expression("version = :version")
                .expression_attribute_values(":version", number_value(v)),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(StoreError::unavailable)?)
            .build())
    }
}
