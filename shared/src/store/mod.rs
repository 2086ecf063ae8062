//! The DynamoDB single-table store. Every read and write of billing state goes through
//! [`BillingStore`]; the rest of the crate never sees an `AttributeValue`.

pub mod audit;
pub mod keys;
mod leads;
pub mod reconcile;
pub mod table;

use std::collections::HashMap;
use std::fmt::Display;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use crate::domain::{
    BillingProfile, CustomerId, EntitlementSet, EventId, FetchTime, GracePolicy, Grant, Invoice,
    OrgId, PaymentMethod, PaymentMethodId, ServiceModule, Subscription, SubscriptionStatus,
    Timestamp,
};

type Item = HashMap<String, AttributeValue>;

/// How long a processed event id is remembered. Stripe retries a delivery for up to 3 days;
/// a month leaves room for manual resends from the dashboard.
pub const EVENT_MARKER_TTL_SECONDS: i64 = 30 * 86_400;
/// How long an event that named no known organization is kept for reconciliation.
pub const RECONCILE_TTL_SECONDS: i64 = 90 * 86_400;
/// Optimistic-concurrency retries before giving up (the caller answers 5xx and Stripe retries).
const MAX_ATTEMPTS: usize = 6;
/// DynamoDB allows 100 actions per transaction; a few are kept for the profile and the marker.
const MAX_PAYMENT_METHODS: usize = 90;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional create found the item already there.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Concurrent writers kept invalidating our read; safe to retry later.
    #[error("too much write contention, retry later")]
    Contention,
    /// DynamoDB could not be reached or refused the request: transient from the caller's view.
    #[error("DynamoDB request failed: {0}")]
    Unavailable(String),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    #[error("invalid pagination cursor")]
    InvalidCursor,
}

impl StoreError {
    pub(crate) fn unavailable(err: impl std::error::Error) -> Self {
        StoreError::Unavailable(DisplayErrorContext(err).to_string())
    }

    fn corrupt(err: impl Display) -> Self {
        StoreError::Corrupt(err.to_string())
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Contention)
    }
}

/// A Stripe event to be marked processed atomically with its effect.
#[derive(Debug, Clone)]
pub struct EventMarker {
    pub id: EventId,
    pub event_type: String,
}

/// What a sync write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The new state was stored (and the event marked, if one was given).
    Written,
    /// The store already held a copy from a newer read (or a terminal one); nothing to write.
    Stale,
    /// The event had already been processed; nothing was written.
    Duplicate,
}

/// The stored entitlements item of one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntitlements {
    pub set: EntitlementSet,
    pub version: u64,
    pub updated_at: Timestamp,
}

/// A stored subscription and the moment its Stripe copy was requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub subscription: Subscription,
    pub fetched_at: FetchTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePage {
    pub invoices: Vec<Invoice>,
    /// Opaque; pass back to get the next (older) page. `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A customer's payment methods and default, as last read from Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSnapshot {
    pub customer_id: CustomerId,
    pub default_payment_method: Option<PaymentMethodId>,
    pub payment_methods: Vec<PaymentMethod>,
}

/// Linking an org to a Stripe customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    Created,
    AlreadyLinked,
    /// The org is already linked to another customer (or the customer to another org).
    Conflict {
        existing_customer: Option<CustomerId>,
    },
}

/// An event this service could not attribute to any organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnresolvedEvent {
    pub event_id: EventId,
    pub event_type: String,
    pub object_id: String,
    pub customer_id: Option<CustomerId>,
    pub received_at: Timestamp,
    pub reason: String,
}

// ---- item shapes ------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct SubscriptionRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    org_id: OrgId,
    status: SubscriptionStatus,
    fetched_at: i64,
    data: Subscription,
}

#[derive(Serialize, Deserialize)]
struct EntitlementsRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    org_id: OrgId,
    version: u64,
    updated_at: i64,
    /// module name -> grant end (epoch seconds), absent end meaning "no end".
    grants: HashMap<ServiceModule, Grant>,
}

#[derive(Serialize, Deserialize)]
struct ProfileRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    org_id: OrgId,
    customer_id: CustomerId,
    // Absent rather than NULL: conditions test these with attribute_not_exists / `<`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_payment_method: Option<PaymentMethodId>,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pm_synced_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct LinkRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    org_id: OrgId,
    /// Set when Stripe deleted the customer. The link stays so that its subscriptions' late
    /// events still reach the org; it never links anything new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct InvoiceRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    fetched_at: i64,
    data: Invoice,
}

#[derive(Serialize, Deserialize)]
struct PaymentMethodRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    data: PaymentMethod,
}

#[derive(Serialize)]
struct EventMarkerRecord<'a> {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: &'static str,
    event_type: &'a str,
    processed_at: i64,
    expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct ReconcileRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    expires_at: i64,
    data: UnresolvedEvent,
}

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(StoreError::corrupt)
}

fn from_item<'a, T: Deserialize<'a>>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(StoreError::corrupt)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(keys::PK.to_owned(), s(pk)), (keys::SK.to_owned(), s(sk))])
}

/// Why each action of a cancelled transaction failed, in action order.
fn cancellation_codes(err: &SdkError<TransactWriteItemsError>) -> Option<Vec<String>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_owned())
                .collect(),
        ),
        _ => None,
    }
}

fn failed_condition(codes: &[String], index: usize) -> bool {
    codes
        .get(index)
        .is_some_and(|c| c == "ConditionalCheckFailed")
}

/// The DynamoDB store of billing state.
#[derive(Debug, Clone)]
pub struct BillingStore {
    client: Client,
    table: String,
}

impl BillingStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// From the Lambda environment: `BILLING_TABLE`, and the AWS SDK's own variables (region,
    /// credentials, `AWS_ENDPOINT_URL_DYNAMODB` for local and test endpoints).
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, crate::config::ConfigError> {
        let table = crate::config::required("BILLING_TABLE")?;
        Ok(Self::new(Client::new(aws), table))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(
        &self,
        pk: String,
        sk: &str,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(out.item)
    }

    /// All items of one org whose sort key starts with `prefix`, read consistently.
    async fn query_prefix(&self, pk: String, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// An unconditional delete of one item, for a transaction.
    fn delete_action(&self, pk: String, sk: String) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The processed marker (first) and the removal of a parked copy of the same event: an
    /// event applied after being parked leaves nothing behind to replay.
    fn marker_actions(
        &self,
        marker: &EventMarker,
        now: Timestamp,
    ) -> Result<[TransactWriteItem; 2], StoreError> {
        Ok([
            self.marker_put(marker, now)?,
            self.delete_action(keys::RECONCILE_PK.to_owned(), keys::reconcile(&marker.id))?,
        ])
    }

    fn marker_put(
        &self,
        marker: &EventMarker,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let record = EventMarkerRecord {
            pk: keys::event(&marker.id),
            sk: keys::EVENT,
            event_type: &marker.event_type,
            processed_at: now.unix(),
            expires_at: now.plus_seconds(EVENT_MARKER_TTL_SECONDS).unix(),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    // ---- events ---------------------------------------------------------------------------

    /// Whether an event id was already processed (a consistent read: a retry right after a
    /// success must see it).
    pub async fn event_processed(&self, id: &EventId) -> Result<bool, StoreError> {
        Ok(self
            .get(keys::event(id), keys::EVENT, true)
            .await?
            .is_some())
    }

    /// Marks an event processed when it had no other effect. `Duplicate` if it already was.
    pub async fn record_event(&self, marker: &EventMarker) -> Result<Applied, StoreError> {
        let actions = self.marker_actions(marker, Timestamp::now())?;
        self.transact(actions.to_vec(), Some(0), Applied::Written)
            .await
    }

    /// Runs a transaction, retrying it when DynamoDB reports a conflict with another
    /// transaction in flight. `Some(Duplicate)` when the event marker (at `marker_index`)
    /// already existed; `None` when another condition failed, so the caller can re-read and
    /// decide again (or know its read was stale).
    async fn transact_or_conflict(
        &self,
        actions: Vec<TransactWriteItem>,
        marker_index: Option<usize>,
    ) -> Result<Option<Applied>, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Some(Applied::Written)),
                Err(err) => err,
            };
            let Some(codes) = cancellation_codes(&err) else {
                return Err(StoreError::unavailable(err));
            };
            if marker_index.is_some_and(|i| failed_condition(&codes, i)) {
                return Ok(Some(Applied::Duplicate));
            }
            if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                return Ok(None);
            }
            if !codes.iter().any(|c| c == "TransactionConflict") {
                return Err(StoreError::unavailable(err));
            }
            // Another transaction held one of our items: nothing was decided, try again.
            let jitter = (FetchTime::now().micros() % 7) as u64;
            tokio::time::sleep(std::time::Duration::from_millis(
                5 * (attempt as u64 + 1) + jitter,
            ))
            .await;
        }
        Err(StoreError::Contention)
    }

    async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
        marker_index: Option<usize>,
        on_success: Applied,
    ) -> Result<Applied, StoreError> {
        match self.transact_or_conflict(actions, marker_index).await? {
            Some(Applied::Written) => Ok(on_success),
            Some(other) => Ok(other),
            None => Err(StoreError::Contention),
        }
    }

    /// A sync found nothing newer to write: still mark the event so a redelivery is a no-op.
    async fn finish_stale(&self, marker: Option<&EventMarker>) -> Result<Applied, StoreError> {
        match marker {
            Some(marker) => match self.record_event(marker).await? {
                Applied::Written => Ok(Applied::Stale),
                other => Ok(other),
            },
            None => Ok(Applied::Stale),
        }
    }

    /// Keeps an event that named no known organization, for a human or a job to reconcile.
    pub async fn record_unresolved(&self, event: &UnresolvedEvent) -> Result<(), StoreError> {
        let record = ReconcileRecord {
            pk: keys::RECONCILE_PK.to_owned(),
            sk: keys::reconcile(&event.event_id),
            expires_at: event.received_at.plus_seconds(RECONCILE_TTL_SECONDS).unix(),
            data: event.clone(),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    /// Events waiting for reconciliation, oldest first.
    pub async fn unresolved_events(&self) -> Result<Vec<UnresolvedEvent>, StoreError> {
        let mut events = self
            .query_prefix(keys::RECONCILE_PK.to_owned(), "EVT#")
            .await?
            .into_iter()
            .map(|item| from_item::<ReconcileRecord>(item).map(|r| r.data))
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by(|a, b| {
            (a.received_at, a.event_id.as_str()).cmp(&(b.received_at, b.event_id.as_str()))
        });
        Ok(events)
    }

    // ---- billing profile ------------------------------------------------------------------

    /// Creates the org's billing profile and the customer -> org link, both only if absent, in
    /// one transaction: two concurrent checkouts can never map two customers to one org.
    pub async fn create_billing_profile(&self, profile: &BillingProfile) -> Result<(), StoreError> {
        let record = ProfileRecord {
            pk: keys::org(&profile.org_id),
            sk: keys::PROFILE.to_owned(),
            org_id: profile.org_id.clone(),
            customer_id: profile.customer_id.clone(),
            default_payment_method: profile.default_payment_method.clone(),
            created_at: profile.created_at.unix(),
            pm_synced_at: None,
        };
        let link = LinkRecord {
            pk: keys::customer(&profile.customer_id),
            sk: keys::LINK.to_owned(),
            org_id: profile.org_id.clone(),
            deleted_at: None,
        };
        let mut actions = Vec::with_capacity(2);
        for item in [to_item(&record)?, to_item(&link)?] {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(StoreError::unavailable)?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        match self.transact_or_conflict(actions, None).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::Conflict(
                "billing profile or customer link already exists",
            )),
        }
    }

    pub async fn billing_profile(&self, org: &OrgId) -> Result<Option<BillingProfile>, StoreError> {
        let Some(item) = self.get(keys::org(org), keys::PROFILE, true).await? else {
            return Ok(None);
        };
        let record: ProfileRecord = from_item(item)?;
        Ok(Some(BillingProfile {
            org_id: record.org_id,
            customer_id: record.customer_id,
            default_payment_method: record.default_payment_method,
            created_at: Timestamp::from_unix(record.created_at),
        }))
    }

    /// The org a Stripe customer belongs to (consistent read of the link item).
    pub async fn org_for_customer(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<OrgId>, StoreError> {
        let Some(item) = self.get(keys::customer(customer), keys::LINK, true).await? else {
            return Ok(None);
        };
        Ok(Some(from_item::<LinkRecord>(item)?.org_id))
    }

    /// Links an org to a customer on first contact (checkout completion); idempotent.
    pub async fn link_customer(
        &self,
        org: &OrgId,
        customer: &CustomerId,
    ) -> Result<LinkOutcome, StoreError> {
        for _ in 0..2 {
            if let Some(profile) = self.billing_profile(org).await? {
                return Ok(if &profile.customer_id == customer {
                    LinkOutcome::AlreadyLinked
                } else {
                    LinkOutcome::Conflict {
                        existing_customer: Some(profile.customer_id),
                    }
                });
            }
            if let Some(other) = self.org_for_customer(customer).await?
                && &other != org
            {
                return Ok(LinkOutcome::Conflict {
                    existing_customer: None,
                });
            }
            let profile = BillingProfile {
                org_id: org.clone(),
                customer_id: customer.clone(),
                default_payment_method: None,
                created_at: Timestamp::now(),
            };
            match self.create_billing_profile(&profile).await {
                Ok(()) => return Ok(LinkOutcome::Created),
                // Lost a race with another writer: read again and report what won.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contention)
    }

    /// Stripe deleted the org's customer: the billing profile (if it still names that customer)
    /// and its payment methods go, so the org can check out again with a new customer; the
    /// customer link is kept, marked deleted. One transaction with the event marker.
    pub async fn unlink_deleted_customer(
        &self,
        org: &OrgId,
        customer: &CustomerId,
        marker: Option<&EventMarker>,
    ) -> Result<Applied, StoreError> {
        let pk = keys::org(org);
        for _ in 0..MAX_ATTEMPTS {
            let profile = self.billing_profile(org).await?;
            let now = Timestamp::now();
            let mark_link = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::customer(customer), keys::LINK)))
                .update_expression("SET deleted_at = if_not_exists(deleted_at, :now)")
                .condition_expression("org_id = :org")
                .expression_attribute_values(":now", n(now.unix()))
                .expression_attribute_values(":org", s(org.as_str()))
                .build()
                .map_err(StoreError::unavailable)?;
            let mut actions = vec![TransactWriteItem::builder().update(mark_link).build()];
            if profile.is_some_and(|p| &p.customer_id == customer) {
                let drop_profile = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk.clone(), keys::PROFILE)))
                    .condition_expression("customer_id = :customer")
                    .expression_attribute_values(":customer", s(customer.as_str()))
                    .build()
                    .map_err(StoreError::unavailable)?;
                actions.push(TransactWriteItem::builder().delete(drop_profile).build());
                for item in self
                    .query_prefix(pk.clone(), keys::PAYMENT_METHOD_PREFIX)
                    .await?
                {
                    let Some(AttributeValue::S(sk)) = item.get(keys::SK) else {
                        continue;
                    };
                    if actions.len() >= 97 {
                        break;
                    }
                    actions.push(self.delete_action(pk.clone(), sk.clone())?);
                }
            }
            let marker_index = actions.len();
            if let Some(marker) = marker {
                actions.extend(self.marker_actions(marker, now)?);
            }
            if let Some(applied) = self
                .transact_or_conflict(actions, marker.map(|_| marker_index))
                .await?
            {
                return Ok(applied);
            }
            // The profile changed between the read and the write: read again.
        }
        Err(StoreError::Contention)
    }

    // ---- subscriptions and entitlements ---------------------------------------------------

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
        for _ in 0..MAX_ATTEMPTS {
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
                    prev.subscription.status.is_terminal() && !subscription.status.is_terminal();
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

            let mut actions = vec![
                self.subscription_put(org, &fresh, fetched_at)?,
                self.entitlements_put(org, &set, current.as_ref().map(|c| c.version))?,
            ];
            if let Some(marker) = marker {
                actions.extend(self.marker_actions(marker, Timestamp::now())?);
            }
            if let Some(applied) = self
                .transact_or_conflict(actions, marker.map(|_| 2))
                .await?
            {
                return Ok(applied);
            }
            // Someone wrote the subscription or the entitlements in between: read again.
        }
        Err(StoreError::Contention)
    }

    fn subscription_put(
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
            fetched_at: fetched_at.micros(),
            data: sub.clone(),
        };
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            .expression_attribute_values(":fetched", n(fetched_at.micros()));
        put = if sub.status.is_terminal() {
            put.condition_expression("attribute_not_exists(PK) OR fetched_at < :fetched")
        } else {
            put.condition_expression(
                "attribute_not_exists(PK) OR (fetched_at < :fetched AND NOT (#status IN (:canceled, :expired)))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":canceled", s(SubscriptionStatus::Canceled.as_str()))
            .expression_attribute_values(":expired", s(SubscriptionStatus::IncompleteExpired.as_str()))
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(StoreError::unavailable)?)
            .build())
    }

    fn entitlements_put(
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
                .expression_attribute_values(":version", n(v)),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(StoreError::unavailable)?)
            .build())
    }

    // ---- invoices ---------------------------------------------------------------------------

    /// Stores an invoice as read from Stripe at `fetched_at` (newer reads win).
    pub async fn apply_invoice(
        &self,
        org: &OrgId,
        invoice: &Invoice,
        fetched_at: FetchTime,
        marker: Option<&EventMarker>,
    ) -> Result<Applied, StoreError> {
        let record = InvoiceRecord {
            pk: keys::org(org),
            sk: keys::invoice(invoice.created, &invoice.id),
            fetched_at: fetched_at.micros(),
            data: invoice.clone(),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            .condition_expression("attribute_not_exists(PK) OR fetched_at < :fetched")
            .expression_attribute_values(":fetched", n(fetched_at.micros()))
            .build()
            .map_err(StoreError::unavailable)?;
        let mut actions = vec![TransactWriteItem::builder().put(put).build()];
        if let Some(marker) = marker {
            actions.extend(self.marker_actions(marker, Timestamp::now())?);
        }
        match self
            .transact_or_conflict(actions, marker.map(|_| 1))
            .await?
        {
            Some(applied) => Ok(applied),
            None => self.finish_stale(marker).await,
        }
    }

    /// Invoices newest first. `cursor` comes from a previous page of the same org.
    pub async fn list_invoices(
        &self,
        org: &OrgId,
        limit: u16,
        cursor: Option<&str>,
    ) -> Result<InvoicePage, StoreError> {
        let limit = usize::from(limit.clamp(1, 100));
        let start = cursor.map(decode_cursor).transpose()?;
        let pk = keys::org(org);
        // One extra item tells whether another page exists, so the last page has no cursor.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":prefix", s(keys::INVOICE_PREFIX))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.map(|sk| key(pk, sk)))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        let mut records = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item::<InvoiceRecord>)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if records.len() > limit {
            records.truncate(limit);
            records.last().map(|r| encode_cursor(&r.sk))
        } else {
            None
        };
        Ok(InvoicePage {
            invoices: records.into_iter().map(|r| r.data).collect(),
            next_cursor,
        })
    }

    // ---- payment methods ----------------------------------------------------------------------

    /// Replaces the org's stored payment methods and default with a snapshot read from Stripe at
    /// `fetched_at`, unless a newer snapshot is already stored. Requires the billing profile.
    pub async fn apply_customer(
        &self,
        org: &OrgId,
        snapshot: &CustomerSnapshot,
        fetched_at: FetchTime,
        marker: Option<&EventMarker>,
    ) -> Result<Applied, StoreError> {
        let pk = keys::org(org);
        let stored = self
            .query_prefix(pk.clone(), keys::PAYMENT_METHOD_PREFIX)
            .await?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::PROFILE)))
            .condition_expression(
                "attribute_exists(PK) AND customer_id = :customer AND (attribute_not_exists(pm_synced_at) OR pm_synced_at < :fetched)",
            )
            .expression_attribute_values(":customer", s(snapshot.customer_id.as_str()))
            .expression_attribute_values(":fetched", n(fetched_at.micros()));
        update = match &snapshot.default_payment_method {
            Some(pm) => update
                .update_expression("SET pm_synced_at = :fetched, default_payment_method = :pm")
                .expression_attribute_values(":pm", s(pm.as_str())),
            None => update
                .update_expression("SET pm_synced_at = :fetched REMOVE default_payment_method"),
        };
        let mut actions = vec![
            TransactWriteItem::builder()
                .update(update.build().map_err(StoreError::unavailable)?)
                .build(),
        ];
        let keep: Vec<&PaymentMethod> = snapshot
            .payment_methods
            .iter()
            .take(MAX_PAYMENT_METHODS)
            .collect();
        if keep.len() < snapshot.payment_methods.len() {
            tracing::warn!(org = %org, "customer has more payment methods than stored; extra ones skipped");
        }
        let keep_keys: Vec<String> = keep.iter().map(|pm| keys::payment_method(&pm.id)).collect();
        for pm in &keep {
            let record = PaymentMethodRecord {
                pk: pk.clone(),
                sk: keys::payment_method(&pm.id),
                data: (*pm).clone(),
            };
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(&record)?))
                .build()
                .map_err(StoreError::unavailable)?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        for item in stored {
            let Some(AttributeValue::S(sk)) = item.get(keys::SK) else {
                continue;
            };
            if keep_keys.contains(sk) || actions.len() >= 98 {
                continue;
            }
            actions.push(self.delete_action(pk.clone(), sk.clone())?);
        }
        let marker_index = actions.len();
        if let Some(marker) = marker {
            actions.extend(self.marker_actions(marker, Timestamp::now())?);
        }
        match self
            .transact_or_conflict(actions, marker.map(|_| marker_index))
            .await?
        {
            Some(applied) => Ok(applied),
            None => self.finish_stale(marker).await,
        }
    }

    /// The org's payment methods with the customer's default, newest first.
    pub async fn payment_methods(
        &self,
        org: &OrgId,
    ) -> Result<(Vec<PaymentMethod>, Option<PaymentMethodId>), StoreError> {
        let (items, profile) = tokio::try_join!(
            self.query_prefix(keys::org(org), keys::PAYMENT_METHOD_PREFIX),
            self.billing_profile(org)
        )?;
        let mut methods = items
            .into_iter()
            .map(|i| from_item::<PaymentMethodRecord>(i).map(|r| r.data))
            .collect::<Result<Vec<_>, _>>()?;
        methods.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok((methods, profile.and_then(|p| p.default_payment_method)))
    }
}

fn encode_cursor(sk: &str) -> String {
    hex::encode(sk.as_bytes())
}

/// A cursor only ever names a sort key inside the caller's own partition (the partition key
/// always comes from the caller's org), so a cursor cannot reach another tenant's data.
fn decode_cursor(cursor: &str) -> Result<String, StoreError> {
    let bytes = hex::decode(cursor.as_bytes()).map_err(|_| StoreError::InvalidCursor)?;
    let sk = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let valid = sk.starts_with(keys::INVOICE_PREFIX)
        && sk.len() <= 300
        && sk.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(sk)
    } else {
        Err(StoreError::InvalidCursor)
    }
}

impl BillingStore {
    /// Counts one use of a per-org budget (`limit` uses per `window_seconds`), atomically.
    /// `false` when the budget of the current window is spent.
    pub async fn take_rate_token(
        &self,
        org: &OrgId,
        bucket: &str,
        limit: u32,
        window_seconds: i64,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::now().unix();
        let window = now - now.rem_euclid(window_seconds.max(1));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::org(org), format!("RATE#{bucket}#{window}"))))
            .update_expression("ADD #count :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":expires", n(window + window_seconds.max(1) * 2))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(StoreError::unavailable(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let sk = "INV#001700000000#in_1";
        assert_eq!(decode_cursor(&encode_cursor(sk)).unwrap(), sk);
        assert!(decode_cursor("!!!").is_err());
        assert!(decode_cursor(&encode_cursor("SUB#sub_1")).is_err());
        assert!(decode_cursor(&encode_cursor("INV#a b")).is_err());
    }
}
