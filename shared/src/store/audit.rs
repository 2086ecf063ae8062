//! The webhook audit trail: every verified delivery (its payload gzip-compressed when large),
//! kept 90 days, readable by event id and by org.
//!
//! | item | PK | SK | attributes |
//! |---|---|---|---|
//! | a delivery | `AUDIT#<eventId>` | `DLV#<received µs>` | type, API version, outcome, org, source, payload |
//! | the org's index of it | `ORG#<orgId>` | `AUDIT#<received µs>#<eventId>` | the same, without the payload |
//!
//! | a refused delivery | `AUDIT#REFUSED` | `REF#<received µs>` | reason, body size, whether it was signed |
//!
//! A refused delivery (a bad signature, a stale timestamp, a body too large) keeps only its
//! metadata, never its payload: anyone can send one. The webhook keeps at most a few of them per
//! container and minute (`webhook::REFUSED_KEPT_PER_MINUTE`), so a flood of forged requests
//! costs a bounded number of writes; the rest are only logged and counted.

use std::io::{Read, Write};

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::query::{Order, number_attr, string_attr};
use super::{BillingStore, Item, StoreError, keys, number_value, string_value};
use crate::domain::{EventId, OrgId, Timestamp};

/// How long deliveries are kept.
pub const AUDIT_TTL_SECONDS: i64 = 90 * 86_400;
/// Payloads larger than this are stored gzip-compressed.
pub const COMPRESS_ABOVE_BYTES: usize = 4 * 1024;

const AUDIT_PREFIX: &str = "AUDIT#";
const REFUSED_PK: &str = "AUDIT#REFUSED";
const REFUSED_PREFIX: &str = "REF#";
const DELIVERY_PREFIX: &str = "DLV#";

/// One verified delivery (or replay) of a Stripe event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: EventId,
    pub event_type: String,
    pub api_version: Option<String>,
    /// Microseconds since the epoch (unique enough to order two deliveries of one event).
    pub received_at_micros: i64,
    /// The webhook's outcome label (`processed`, `parked`, `failed`, ...).
    pub outcome: String,
    pub org_id: Option<OrgId>,
    /// `webhook` for a delivery from Stripe, `replay` for the replay command.
    pub source: String,
    /// The exact body as verified; `None` in the org's index.
    pub payload: Option<Vec<u8>>,
}

fn compress(payload: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(payload).map_err(StoreError::corrupt)?;
    encoder.finish().map_err(StoreError::corrupt)
}

fn decompress(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(StoreError::corrupt)?;
    Ok(out)
}

impl Delivery {
    fn metadata(&self, pk: String, sk: String) -> Item {
        let expires = self.received_at_micros / 1_000_000 + AUDIT_TTL_SECONDS;
        let mut item = Item::from([
            (keys::PK.to_owned(), string_value(pk)),
            (keys::SK.to_owned(), string_value(sk)),
            ("event_id".to_owned(), string_value(self.event_id.as_str())),
            (
                "event_type".to_owned(),
                string_value(self.event_type.clone()),
            ),
            (
                "received_at".to_owned(),
                number_value(self.received_at_micros),
            ),
            ("outcome".to_owned(), string_value(self.outcome.clone())),
            ("source".to_owned(), string_value(self.source.clone())),
            (keys::EXPIRES_AT.to_owned(), number_value(expires)),
        ]);
        if let Some(v) = &self.api_version {
            item.insert("api_version".to_owned(), string_value(v.clone()));
        }
        if let Some(org) = &self.org_id {
            item.insert("org_id".to_owned(), string_value(org.as_str()));
        }
        item
    }

    /// The delivery's item (with its payload, compressed when large) and, when the org is
    /// known, its entry in the org's index.
    pub(super) fn items(&self) -> Result<Vec<Item>, StoreError> {
        let mut item = self.metadata(
            format!("{AUDIT_PREFIX}{}", self.event_id),
            format!("{DELIVERY_PREFIX}{:020}", self.received_at_micros),
        );
        if let Some(payload) = &self.payload {
            if payload.len() > COMPRESS_ABOVE_BYTES {
                item.insert(
                    "payload".to_owned(),
                    AttributeValue::B(Blob::new(compress(payload)?)),
                );
                item.insert("payload_encoding".to_owned(), string_value("gzip"));
            } else {
                let text = String::from_utf8(payload.clone()).map_err(StoreError::corrupt)?;
                item.insert("payload".to_owned(), string_value(text));
            }
        }
        let mut items = vec![item];
        if let Some(org) = &self.org_id {
            items.push(self.metadata(
                keys::org(org),
                format!(
                    "{AUDIT_PREFIX}{:020}#{}",
                    self.received_at_micros, self.event_id
                ),
            ));
        }
        Ok(items)
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let missing = |what: &str| StoreError::Corrupt(format!("audit item without {what}"));
        let payload = match (
            item.get("payload"),
            string_attr(item, "payload_encoding").as_deref(),
        ) {
            (Some(AttributeValue::B(blob)), Some("gzip")) => Some(decompress(blob.as_ref())?),
            (Some(AttributeValue::S(text)), _) => Some(text.clone().into_bytes()),
            (None, _) => None,
            _ => return Err(missing("a readable payload")),
        };
        Ok(Self {
            event_id: EventId::parse(
                string_attr(item, "event_id").ok_or_else(|| missing("event_id"))?,
            )
            .map_err(StoreError::corrupt)?,
            event_type: string_attr(item, "event_type").ok_or_else(|| missing("event_type"))?,
            api_version: string_attr(item, "api_version"),
            received_at_micros: number_attr(item, "received_at")
                .ok_or_else(|| missing("received_at"))?,
            outcome: string_attr(item, "outcome").ok_or_else(|| missing("outcome"))?,
            org_id: string_attr(item, "org_id")
                .map(OrgId::parse)
                .transpose()
                .map_err(StoreError::corrupt)?,
            source: string_attr(item, "source").unwrap_or_default(),
            payload,
        })
    }
}

/// What is kept of a delivery the webhook refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedDelivery {
    pub received_at_micros: i64,
    /// The refusal code (`invalid_signature`, `payload_too_large`, ...).
    pub reason: String,
    pub signature_present: bool,
    pub body_bytes: u64,
}

impl BillingStore {
    /// Keeps the metadata of one refused delivery (never its payload).
    pub async fn record_refused(&self, refused: &RefusedDelivery) -> Result<(), StoreError> {
        let expires = refused.received_at_micros / 1_000_000 + AUDIT_TTL_SECONDS;
        let item = Item::from([
            (keys::PK.to_owned(), string_value(REFUSED_PK)),
            (
                keys::SK.to_owned(),
                string_value(format!(
                    "{REFUSED_PREFIX}{:020}",
                    refused.received_at_micros
                )),
            ),
            ("reason".to_owned(), string_value(refused.reason.clone())),
            (
                "signature_present".to_owned(),
                AttributeValue::Bool(refused.signature_present),
            ),
            (
                "body_bytes".to_owned(),
                number_value(refused.body_bytes as i64),
            ),
            (
                "received_at".to_owned(),
                number_value(refused.received_at_micros),
            ),
            (keys::EXPIRES_AT.to_owned(), number_value(expires)),
        ]);
        self.put(item).await
    }

    /// Refused deliveries kept at or after `since`, oldest first. Their sort keys carry the
    /// zero-padded receive time, so the partition reads in time order. A command's read,
    /// never a request path's: the whole (TTL- and budget-bounded) partition is read.
    pub async fn refused_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<RefusedDelivery>, StoreError> {
        let since_micros = since.unix().max(0) * 1_000_000;
        Ok(self
            .query_prefix(REFUSED_PK.to_owned(), REFUSED_PREFIX)
            .await?
            .iter()
            .map(|item| RefusedDelivery {
                received_at_micros: number_attr(item, "received_at").unwrap_or_default(),
                reason: string_attr(item, "reason").unwrap_or_default(),
                signature_present: matches!(
                    item.get("signature_present"),
                    Some(AttributeValue::Bool(true))
                ),
                body_bytes: number_attr(item, "body_bytes").unwrap_or_default().max(0) as u64,
            })
            .filter(|refused| refused.received_at_micros >= since_micros)
            .collect())
    }

    /// Keeps one delivery, and its entry in the org's index when the org is known.
    pub async fn record_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let items = delivery.items()?;
        // One request for both items (not a transaction: the index is only an index).
        let mut requests = Vec::with_capacity(items.len());
        for item in items {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(StoreError::unavailable)?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let mut pending = Some(HashMap::from([(self.table.clone(), requests)]));
        for _ in 0..3 {
            let out = self
                .client
                .batch_write_item()
                .set_request_items(pending)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            pending = out.unprocessed_items.filter(|u| !u.is_empty());
            if pending.is_none() {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(
            "audit items left unprocessed".to_owned(),
        ))
    }

    /// Every kept delivery of one event, oldest first, with payloads.
    pub async fn deliveries_of_event(&self, event: &EventId) -> Result<Vec<Delivery>, StoreError> {
        self.query_prefix(format!("{AUDIT_PREFIX}{event}"), DELIVERY_PREFIX)
            .await?
            .iter()
            .map(Delivery::from_item)
            .collect()
    }

    /// The org's deliveries, newest first, without payloads (read one by event id).
    pub async fn deliveries_of_org(
        &self,
        org: &OrgId,
        limit: i32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.query_first(
            keys::org(org),
            AUDIT_PREFIX,
            Order::Descending,
            limit.clamp(1, 1_000),
        )
        .await?
        .iter()
        .map(Delivery::from_item)
        .collect()
    }

    /// Ids of the events delivered at or after `since`, oldest delivery first, each once. A scan:
    /// this serves the replay command, never a request path.
    pub async fn events_delivered_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<EventId>, StoreError> {
        let mut found: Vec<(i64, EventId)> = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "begins_with(PK, :audit) AND begins_with(SK, :dlv) AND received_at >= :since",
                )
                .expression_attribute_values(":audit", string_value(AUDIT_PREFIX))
                .expression_attribute_values(":dlv", string_value(DELIVERY_PREFIX))
                .expression_attribute_values(":since", number_value(since.unix() * 1_000_000))
                .projection_expression("event_id, received_at")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            for item in out.items.unwrap_or_default() {
                if let (Some(id), Some(at)) = (
                    string_attr(&item, "event_id"),
                    number_attr(&item, "received_at"),
                ) {
                    found.push((at, EventId::parse(id).map_err(StoreError::corrupt)?));
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        found.sort();
        let mut seen = std::collections::HashSet::new();
        Ok(found
            .into_iter()
            .filter(|(_, id)| seen.insert(id.clone()))
            .map(|(_, id)| id)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_survive_compression() {
        let payload = br#"{"id":"evt_1","pad":""#.repeat(500);
        let packed = compress(&payload).unwrap();
        assert!(packed.len() < payload.len() / 10);
        assert_eq!(decompress(&packed).unwrap(), payload);
    }
}
