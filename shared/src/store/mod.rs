//! The DynamoDB single-table store. Every read and write of billing state goes through
//! [`BillingStore`]; the rest of the crate never sees an `AttributeValue`.

pub mod audit;
mod events;
mod invoices;
pub mod keys;
mod leads;
mod payment_methods;
mod profile;
mod query;
mod rate_limit;
pub mod reconcile;
mod subscriptions;
pub mod table;
mod trials;

use query::Order;
pub use subscriptions::{AccessState, AppliedAccess};

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
    /// The delivery for the audit trail, kept in the same transaction as the marker (its
    /// outcome and org are filled in there); `None` for events applied without one.
    pub audit: Option<audit::Delivery>,
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
    /// Top-level copy of `data.ended_unseen`, for the write condition.
    #[serde(default)]
    ended_unseen: bool,
    fetched_at: i64,
    /// The entitlements version written in the same transaction as this copy (a read-time
    /// touch keeps it): with [`EntitlementsRecord::written`] it tells a read that saw only part
    /// of a transaction (see [`BillingStore::access_state`]). Absent on items written before.
    #[serde(default)]
    written_version: Option<u64>,
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
    /// The subscriptions written in the transaction that wrote this version.
    #[serde(default)]
    written: Vec<crate::domain::SubscriptionId>,
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

/// A parked event (`RECONCILE` / `EVT#<id>`), written by an update (see `record_unresolved`);
/// beside `data` it holds `expires_at`, `last_reason` and `tries`.
#[derive(Deserialize)]
struct ReconcileRecord {
    data: UnresolvedEvent,
    /// When it was last parked (first or again), Unix seconds.
    #[serde(default)]
    tried_at: Option<i64>,
}

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(StoreError::corrupt)
}

fn from_item<'a, T: Deserialize<'a>>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(StoreError::corrupt)
}

/// A DynamoDB string attribute.
fn string_value(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A DynamoDB number attribute.
fn number_value(value: impl Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), string_value(pk)),
        (keys::SK.to_owned(), string_value(sk)),
    ])
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

    /// An unconditional delete of one item, for a transaction.
    fn delete_action(&self, pk: String, sk: String) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The processed marker (first), the removal of a parked copy of the same event (an event
    /// applied after being parked leaves nothing behind to replay) and, when the marker carries
    /// one, the delivery's audit items with `outcome` and `org`: the trail is written with the
    /// effect, in the one transaction, never a round trip after it. At most four actions.
    fn marker_actions(
        &self,
        marker: &EventMarker,
        now: Timestamp,
        outcome: &str,
        org: Option<&OrgId>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut actions = vec![
            self.marker_put(marker, now)?,
            self.delete_action(keys::RECONCILE_PK.to_owned(), keys::reconcile(&marker.id))?,
        ];
        if let Some(delivery) = &marker.audit {
            let delivery = audit::Delivery {
                outcome: outcome.to_owned(),
                org_id: org.cloned(),
                ..delivery.clone()
            };
            for item in delivery.items()? {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build()
                    .map_err(StoreError::unavailable)?;
                actions.push(TransactWriteItem::builder().put(put).build());
            }
        }
        Ok(actions)
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
}
