//! Subscriptions and the org's entitlements item, written together.

use super::*;

/// Subscriptions written in one transaction, with the entitlements item, the event marker and
/// the audit items: at most 46 of DynamoDB's 100 actions (and far below its 4 MB).
pub const SUBSCRIPTIONS_PER_TRANSACTION: usize = 40;

/// Re-reads of an access state that looked torn (5, 10, 20 ms apart).
const TORN_REREADS: u32 = 3;

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
        Ok(Some(stored_entitlements(from_item(item)?)))
    }

    /// The org's entitlements item and all its subscriptions, from one consistent Query (the
    /// entitlements item sorts first, see [`keys::ENTITLEMENTS`]).
    ///
    /// A Query is read-committed, not a snapshot: while a transaction commits, a read can see
    /// some of its items and not others. Each write names the subscriptions it wrote in the
    /// entitlements item and stamps them with the version, so a read that saw a version
    /// without its subscriptions is detected here and read again, instead of computing access
    /// from a set that never existed. A commit finishes within milliseconds: a mismatch that
    /// outlasts the re-reads is the table's state (an item deleted or edited by hand), and is
    /// read as it is, as reconciliation repairs it.
    pub async fn access_state(&self, org: &OrgId) -> Result<AccessState, StoreError> {
        for attempt in 0..=TORN_REREADS {
            let mut entitlements = None;
            let mut subscriptions = Vec::new();
            for item in self
                .query_prefix(keys::org(org), keys::ACCESS_PREFIX)
                .await?
            {
                match item.get(keys::SK) {
                    Some(AttributeValue::S(sk)) if sk == keys::ENTITLEMENTS => {
                        entitlements = Some(from_item::<EntitlementsRecord>(item)?);
                    }
                    Some(AttributeValue::S(sk)) if sk.starts_with(keys::SUB_PREFIX) => {
                        subscriptions.push(from_item::<SubscriptionRecord>(item)?);
                    }
                    _ => {}
                }
            }
            if attempt == TORN_REREADS || !torn(entitlements.as_ref(), &subscriptions) {
                if attempt == TORN_REREADS {
                    tracing::warn!(org = %org, "entitlements name subscriptions the table does not hold as written");
                }
                return Ok(AccessState {
                    entitlements: entitlements.map(stored_entitlements),
                    subscriptions: subscriptions
                        .into_iter()
                        .map(|r| StoredSubscription {
                            subscription: r.data,
                            fetched_at: FetchTime::from_micros(r.fetched_at),
                        })
                        .collect(),
                });
            }
            tracing::info!(org = %org, "read part of a committing transaction: reading again");
            tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
        }
        Err(StoreError::Contention)
    }

    /// Stores a subscription as read from Stripe at `fetched_at`, recomputes the org's
    /// entitlements from all its subscriptions, and marks the event processed: one transaction.
    pub async fn apply_subscription(
        &self,
        org: &OrgId,
        subscription: &Subscription,
        fetched_at: FetchTime,
        marker: Option<&EventMarker>,
        policy: GracePolicy,
    ) -> Result<Applied, StoreError> {
        Ok(self
            .apply_subscriptions(org, &[(subscription, fetched_at)], marker, policy)
            .await?
            .applied)
    }

    /// Stores subscriptions as read from Stripe (each at its `fetched_at`), recomputes the
    /// org's entitlements from all its subscriptions, and marks the event processed: one
    /// consistent read and one transaction, for any number of subscriptions.
    ///
    /// Guards: a copy from an older read never replaces one from a newer read, a terminal
    /// (canceled) copy is never replaced by a live status, and the entitlements item is written
    /// only if no other writer changed it since we read it (optimistic version check), so
    /// concurrent syncs of different subscriptions of one org cannot lose each other's grants.
    ///
    /// More than [`SUBSCRIPTIONS_PER_TRANSACTION`] (a customer with a long history: the list
    /// holds ended ones too) are stored in batches of that many, each with its own read and
    /// version check, the event marked with the last.
    pub async fn apply_subscriptions(
        &self,
        org: &OrgId,
        fetched: &[(&Subscription, FetchTime)],
        marker: Option<&EventMarker>,
        policy: GracePolicy,
    ) -> Result<AppliedAccess, StoreError> {
        let batches: Vec<_> = fetched.chunks(SUBSCRIPTIONS_PER_TRANSACTION).collect();
        let Some((last, earlier)) = batches.split_last() else {
            return self.apply_batch(org, &[], marker, policy).await;
        };
        let mut written = false;
        for batch in earlier {
            written |=
                self.apply_batch(org, batch, None, policy).await?.applied == Applied::Written;
        }
        let mut outcome = self.apply_batch(org, last, marker, policy).await?;
        if written && outcome.applied == Applied::Stale {
            outcome.applied = Applied::Written;
        }
        Ok(outcome)
    }

    /// One transaction of [`Self::apply_subscriptions`].
    async fn apply_batch(
        &self,
        org: &OrgId,
        fetched: &[(&Subscription, FetchTime)],
        marker: Option<&EventMarker>,
        policy: GracePolicy,
    ) -> Result<AppliedAccess, StoreError> {
        // Before access is granted: a module's trial is offered once per org, so its use is on
        // record whatever happens to the subscription or the customer later. Only while it
        // runs (not on every later sync of a subscription that once had a trial): a trial that
        // ended before any sync is still refused a second time, by the stored subscription
        // that holds its module (`api::had_before`). Written while the first read runs.
        let trials: Vec<ServiceModule> = fetched
            .iter()
            .filter(|(s, _)| s.status == SubscriptionStatus::Trialing)
            .flat_map(|(s, _)| s.modules())
            .collect();
        let (mut read, ()) = tokio::try_join!(
            self.access_state(org),
            self.record_trials(org, &trials, Timestamp::now())
        )?;
        for attempt in 0..MAX_VERSION_ATTEMPTS {
            if attempt > 0 {
                read = self.access_state(org).await?;
            }
            let AccessState {
                entitlements: current,
                subscriptions: stored,
            } = std::mem::take(&mut read);
            let mut after: Vec<Subscription> =
                stored.iter().map(|s| s.subscription.clone()).collect();
            let mut puts: Vec<(Subscription, FetchTime)> = Vec::new();
            let mut touches: Vec<TransactWriteItem> = Vec::new();
            for (subscription, fetched_at) in fetched {
                let previous = stored.iter().find(|s| s.subscription.id == subscription.id);
                if let Some(prev) = previous {
                    let terminal_revival =
                        prev.subscription.is_final() && !subscription.status.is_terminal();
                    if prev.fetched_at >= *fetched_at || terminal_revival {
                        continue;
                    }
                }
                let fresh = (*subscription).clone().with_grace_start_from(
                    previous.map(|p| &p.subscription),
                    fetched_at.as_timestamp(),
                );
                match previous {
                    // A checkout's burst of events re-reads the same subscription many times:
                    // a read that changes nothing only moves the stored read time forward,
                    // without bumping the org's entitlements version, so it never conflicts
                    // with the writes that do change something.
                    Some(prev) if prev.subscription == fresh => touches.push(
                        self.fetched_at_touch(org, &fresh.id, prev.fetched_at, *fetched_at)?,
                    ),
                    _ => {
                        after.retain(|s| s.id != fresh.id);
                        after.push(fresh.clone());
                        puts.push((fresh, *fetched_at));
                    }
                }
            }
            let set = EntitlementSet::from_subscriptions(after.iter(), policy);
            let outcome = |applied| AppliedAccess {
                applied,
                subscriptions: after.clone(),
                entitlements: set.clone(),
            };
            if puts.is_empty() && touches.is_empty() {
                return Ok(outcome(self.finish_stale(marker, Some(org)).await?));
            }
            let set_changed = current.as_ref().is_none_or(|c| c.set != set);
            let mut actions = touches;
            if !puts.is_empty() || set_changed {
                let version = current.as_ref().map(|c| c.version);
                let written_version = version.map_or(1, |v| v + 1);
                for (fresh, fetched_at) in &puts {
                    actions.push(self.subscription_put(
                        org,
                        fresh,
                        *fetched_at,
                        Some(written_version),
                    )?);
                }
                let written: Vec<_> = puts.iter().map(|(s, _)| s.id.clone()).collect();
                actions.push(self.entitlements_put(org, &set, version, &written)?);
            }
            match self.transact_marked(actions, marker, org).await? {
                // A touch stored the newer read too: `Written`, as a changing write is.
                Some(applied) => return Ok(outcome(applied)),
                // Someone wrote a subscription or the entitlements in between: read again,
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
        written_version: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let record = SubscriptionRecord {
            pk: keys::org(org),
            sk: keys::subscription(&sub.id),
            org_id: org.clone(),
            status: sub.status,
            ended_unseen: sub.ended_unseen,
            fetched_at: fetched_at.micros(),
            written_version,
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

    /// The entitlements item at the version after `read_version`, naming the subscriptions
    /// `written` in the same transaction.
    pub(super) fn entitlements_put(
        &self,
        org: &OrgId,
        set: &EntitlementSet,
        read_version: Option<u64>,
        written: &[crate::domain::SubscriptionId],
    ) -> Result<TransactWriteItem, StoreError> {
        let record = EntitlementsRecord {
            pk: keys::org(org),
            sk: keys::ENTITLEMENTS.to_owned(),
            org_id: org.clone(),
            version: read_version.map_or(1, |v| v + 1),
            updated_at: Timestamp::now().unix(),
            grants: set.grants().iter().map(|(m, g)| (*m, *g)).collect(),
            written: written.to_vec(),
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

/// The org's entitlements item and subscriptions as one read saw them.
#[derive(Debug, Clone, Default)]
pub struct AccessState {
    pub entitlements: Option<StoredEntitlements>,
    pub subscriptions: Vec<StoredSubscription>,
}

/// What [`BillingStore::apply_subscriptions`] did, and the org's subscriptions and access as
/// stored after it (the answer of an eager sync is built from them without reading again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedAccess {
    pub applied: Applied,
    pub subscriptions: Vec<Subscription>,
    pub entitlements: EntitlementSet,
}

fn stored_entitlements(record: EntitlementsRecord) -> StoredEntitlements {
    StoredEntitlements {
        set: EntitlementSet::from_grants(record.grants),
        version: record.version,
        updated_at: Timestamp::from_unix(record.updated_at),
    }
}

/// Whether one read saw part of a transaction: the entitlements item's version, with a
/// subscription it names as written in that transaction missing, unstamped, or stamped with an
/// earlier version. (The converse, a subscription newer than the entitlements read, is
/// harmless: the write's version check refuses it.) An entitlements item that names nothing
/// (written before the stamps, or by a recomputation) proves nothing.
fn torn(entitlements: Option<&EntitlementsRecord>, subscriptions: &[SubscriptionRecord]) -> bool {
    entitlements.is_some_and(|e| {
        e.written.iter().any(|id| {
            subscriptions
                .iter()
                .find(|s| &s.data.id == id)
                .is_none_or(|s| s.written_version.is_none_or(|v| v < e.version))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ServiceModule::LeadGeneration;

    fn subscription(id: &str, written_version: Option<u64>) -> SubscriptionRecord {
        SubscriptionRecord {
            pk: "ORG#o".into(),
            sk: format!("SUB#{id}"),
            org_id: OrgId::parse("o").unwrap(),
            status: SubscriptionStatus::Active,
            ended_unseen: false,
            fetched_at: 1,
            written_version,
            data: Subscription::sample(id, &[LeadGeneration]),
        }
    }

    fn entitlements(version: u64, written: &[&str]) -> EntitlementsRecord {
        EntitlementsRecord {
            pk: "ORG#o".into(),
            sk: keys::ENTITLEMENTS.into(),
            org_id: OrgId::parse("o").unwrap(),
            version,
            updated_at: 0,
            grants: HashMap::new(),
            written: written
                .iter()
                .map(|id| crate::domain::SubscriptionId::parse(*id).unwrap())
                .collect(),
        }
    }

    #[test]
    fn a_version_seen_without_its_subscription_is_a_torn_read() {
        // Version 5 wrote sub_a; the read still sees sub_a as version 4 wrote it.
        let subs = [
            subscription("sub_a", Some(4)),
            subscription("sub_b", Some(3)),
        ];
        assert!(torn(Some(&entitlements(5, &["sub_a"])), &subs));
        // The whole transaction seen: not torn; nor a sibling older than the version.
        let subs = [
            subscription("sub_a", Some(5)),
            subscription("sub_b", Some(3)),
        ];
        assert!(!torn(Some(&entitlements(5, &["sub_a"])), &subs));
        // A first purchase's subscription not seen yet, or seen as an unstamped copy.
        let subs = [subscription("sub_b", Some(3))];
        assert!(torn(Some(&entitlements(5, &["sub_a"])), &subs));
        let subs = [subscription("sub_a", None)];
        assert!(torn(Some(&entitlements(5, &["sub_a"])), &subs));
    }

    #[test]
    fn what_the_version_check_refuses_anyway_or_items_without_stamps_are_not_torn() {
        // A subscription of a later transaction than the version read: the write's version
        // check refuses it, so it is read again then.
        let subs = [subscription("sub_a", Some(6))];
        assert!(!torn(Some(&entitlements(5, &["sub_a"])), &subs));
        // No entitlements item yet, or one written before the stamps (it names nothing).
        let subs = [subscription("sub_a", None)];
        assert!(!torn(None, &subs));
        assert!(!torn(Some(&entitlements(5, &[])), &subs));
        // A recomputation names nothing it wrote.
        let subs = [subscription("sub_a", Some(2))];
        assert!(!torn(Some(&entitlements(7, &[])), &subs));
    }
}
