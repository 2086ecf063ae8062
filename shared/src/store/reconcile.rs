//! What the reconciliation job reads and writes beyond the webhook's own items: a paged scan of
//! billing profiles, its stored cursor, a recompute of an org's entitlements from its stored
//! subscriptions, and the removal of a parked event that was applied meanwhile.

use serde::{Deserialize, Serialize};

use super::query::string_attr;
use super::{
    BillingStore, Put, StoreError, TransactWriteItem, Update, from_item, key, keys, string_value,
    to_item,
};
use crate::domain::{CustomerId, EntitlementSet, EventId, GracePolicy, OrgId, Timestamp};

/// Sort key of the reconciliation job's state, beside the parked events (`EVT#...`).
pub const STATE_SK: &str = "STATE";

/// Where the job stands: the scan position of the pass in progress (absent between passes)
/// and when undelivered events were last looked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileState {
    /// The last evaluated key (`PK`, `SK`) of the profile scan; `None`: start a new pass.
    pub scan_after: Option<(String, String)>,
    /// When the current pass began (Unix seconds).
    pub pass_started_at: Option<i64>,
    /// Undelivered events created at or after this (Unix seconds) are looked for next.
    pub events_checked_until: Option<i64>,
    /// Passes completed so far.
    pub passes_completed: u64,
}

#[derive(Serialize, Deserialize)]
struct StateRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    data: ReconcileState,
}

/// What the scan visits: an org's billing profile, or a customer link marked deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedLink {
    pub org: OrgId,
    pub customer: CustomerId,
    /// A `CUS#` link marked deleted: visited too, because a deletion once inferred from a
    /// wrong key must be repairable once the key is fixed.
    pub deleted: bool,
}

/// One page of the billing-profile scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePage {
    pub profiles: Vec<ScannedLink>,
    /// Pass back to read on; `None` when the scan reached the end of the table.
    pub next: Option<(String, String)>,
}

impl BillingStore {
    /// Reads up to `limit` items of the table from `after` on and returns the billing profiles
    /// and the deleted customer links among them. A scan (not an index) because profiles are
    /// one item per org: the job reads them all anyway, in pages small enough to save its
    /// position often.
    pub async fn profile_page(
        &self,
        after: Option<&(String, String)>,
        limit: i32,
    ) -> Result<ProfilePage, StoreError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("SK = :profile OR (SK = :link AND attribute_exists(deleted_at))")
            .expression_attribute_values(":profile", string_value(keys::PROFILE))
            .expression_attribute_values(":link", string_value(keys::LINK))
            .projection_expression("PK, SK, org_id, customer_id")
            .limit(limit.max(1))
            .set_exclusive_start_key(after.map(|(pk, sk)| key(pk.clone(), sk.clone())))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        let mut profiles = Vec::new();
        for item in out.items.unwrap_or_default() {
            let deleted = string_attr(&item, keys::SK).as_deref() == Some(keys::LINK);
            // A link names its customer in its key (`CUS#<id>`), a profile in an attribute.
            let customer = if deleted {
                string_attr(&item, keys::PK)
                    .and_then(|pk| pk.strip_prefix("CUS#").map(str::to_owned))
            } else {
                string_attr(&item, "customer_id")
            };
            let (Some(org), Some(customer)) = (string_attr(&item, "org_id"), customer) else {
                return Err(StoreError::Corrupt(
                    "billing profile or link without ids".to_owned(),
                ));
            };
            profiles.push(ScannedLink {
                org: OrgId::parse(&org).map_err(StoreError::corrupt)?,
                customer: CustomerId::parse(&customer).map_err(StoreError::corrupt)?,
                deleted,
            });
        }
        let next = out
            .last_evaluated_key
            .and_then(|k| Some((string_attr(&k, keys::PK)?, string_attr(&k, keys::SK)?)));
        Ok(ProfilePage { profiles, next })
    }

    /// A customer whose link was marked deleted still exists in Stripe: the mark goes, and the
    /// org gets its billing profile back unless it has one already (it checked out again with
    /// a new customer meanwhile). `true` when the org's profile now names this customer.
    pub async fn restore_link(
        &self,
        org: &OrgId,
        customer: &CustomerId,
    ) -> Result<bool, StoreError> {
        let unmark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::customer(customer), keys::LINK)))
            .update_expression("REMOVE deleted_at")
            .condition_expression("org_id = :org")
            .expression_attribute_values(":org", string_value(org.as_str()))
            .build()
            .map_err(StoreError::unavailable)?;
        let profile = super::ProfileRecord {
            pk: keys::org(org),
            sk: keys::PROFILE.to_owned(),
            org_id: org.clone(),
            customer_id: customer.clone(),
            default_payment_method: None,
            created_at: Timestamp::now().unix(),
            pm_synced_at: None,
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&profile)?))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(StoreError::unavailable)?;
        let both = vec![
            TransactWriteItem::builder().update(unmark.clone()).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        if self.transact_or_conflict(both, None).await?.is_some() {
            return Ok(true);
        }
        // The org has a profile (or the link is another org's): only the mark goes.
        let only = vec![TransactWriteItem::builder().update(unmark).build()];
        self.transact_or_conflict(only, None).await?;
        Ok(self
            .billing_profile(org)
            .await?
            .is_some_and(|p| &p.customer_id == customer))
    }

    pub async fn reconcile_state(&self) -> Result<ReconcileState, StoreError> {
        match self
            .get(keys::RECONCILE_PK.to_owned(), STATE_SK, true)
            .await?
        {
            Some(item) => Ok(from_item::<StateRecord>(item)?.data),
            None => Ok(ReconcileState::default()),
        }
    }

    pub async fn save_reconcile_state(&self, state: &ReconcileState) -> Result<(), StoreError> {
        let record = StateRecord {
            pk: keys::RECONCILE_PK.to_owned(),
            sk: STATE_SK.to_owned(),
            data: state.clone(),
        };
        self.put(to_item(&record)?).await
    }

    /// Recomputes the org's entitlements from its stored subscriptions and writes them when they
    /// differ (optimistic version check, as every subscription write does). `true` when the
    /// stored item was wrong and has been replaced.
    pub async fn recompute_entitlements(
        &self,
        org: &OrgId,
        policy: GracePolicy,
    ) -> Result<bool, StoreError> {
        for _ in 0..super::MAX_ATTEMPTS {
            let super::AccessState {
                entitlements: current,
                subscriptions: subs,
            } = self.access_state(org).await?;
            let expected =
                EntitlementSet::from_subscriptions(subs.iter().map(|s| &s.subscription), policy);
            let stored = current.as_ref().map(|c| c.set.clone()).unwrap_or_default();
            if stored == expected {
                return Ok(false);
            }
            let put =
                self.entitlements_put(org, &expected, current.as_ref().map(|c| c.version), &[])?;
            if self.transact_or_conflict(vec![put], None).await?.is_some() {
                return Ok(true);
            }
            // A sync wrote meanwhile: read again (it may have fixed it already).
        }
        Err(StoreError::Contention)
    }

    /// Removes a parked event (one found already processed when replayed).
    pub async fn forget_unresolved(&self, event: &EventId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::RECONCILE_PK.to_owned(),
                keys::reconcile(event),
            )))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }
}

/// Unix seconds, for the state's timestamps.
pub fn unix_now() -> i64 {
    Timestamp::now().unix()
}

/// Where the entitlements item lived before it moved beside the subscriptions.
const LEGACY_ENTITLEMENTS_SK: &str = "ENTITLEMENTS";

impl BillingStore {
    /// Moves every org's entitlements item from the sort key `ENTITLEMENTS` (tables written
    /// before the access Query) to [`keys::ENTITLEMENTS`]: a DynamoDB-only copy, run once right
    /// after deploying onto such a table (`reconcile migrate-entitlements`). An item already
    /// written under the new key by a sync is newer and kept; the old one is deleted either way.
    /// Idempotent. Returns how many items were copied.
    pub async fn migrate_legacy_entitlements(&self) -> Result<usize, StoreError> {
        let mut copied = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("SK = :legacy")
                .expression_attribute_values(":legacy", string_value(LEGACY_ENTITLEMENTS_SK))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            for mut item in out.items.unwrap_or_default() {
                let Some(pk) = string_attr(&item, keys::PK) else {
                    continue;
                };
                item.insert(keys::SK.to_owned(), string_value(keys::ENTITLEMENTS));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(PK)")
                    .build()
                    .map_err(StoreError::unavailable)?;
                let delete = self.delete_action(pk.clone(), LEGACY_ENTITLEMENTS_SK.to_owned())?;
                match self
                    .transact_or_conflict(
                        vec![
                            TransactWriteItem::builder().put(put).build(),
                            delete.clone(),
                        ],
                        None,
                    )
                    .await?
                {
                    Some(_) => copied += 1,
                    // A sync wrote the new item first: it is newer, the old one only goes.
                    None => {
                        self.transact_or_conflict(vec![delete], None).await?;
                    }
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(copied);
            }
        }
    }
}
