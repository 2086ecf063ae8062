//! Leads of an organization (the paywalled demo route). The CRM writes leads; this service only
//! lists them, so the item shape is read tolerantly: every field but the id is optional.
//!
//! The [`Lead`] types live in `crate::auth::leads` because this module is private to `store`.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::{BillingStore, StoreError, from_item, key, keys, string_value, to_item};
use crate::auth::leads::{Lead, LeadPage};
use crate::domain::OrgId;

#[derive(Serialize, Deserialize)]
struct LeadRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    data: Lead,
}

/// Lead ids end up in a sort key: the same rule as every other id in a key.
fn valid_lead_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
}

fn lead_key(id: &str) -> String {
    format!("{}{id}", keys::LEAD_PREFIX)
}

fn encode_cursor(sk: &str) -> String {
    hex::encode(sk.as_bytes())
}

/// A cursor only ever names a sort key inside the caller's own partition (the partition key
/// always comes from the caller's org), so it cannot reach another tenant's leads.
fn decode_cursor(cursor: &str) -> Result<String, StoreError> {
    let bytes = hex::decode(cursor.as_bytes()).map_err(|_| StoreError::InvalidCursor)?;
    let sk = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    match sk.strip_prefix(keys::LEAD_PREFIX) {
        Some(id) if valid_lead_id(id) => Ok(sk),
        _ => Err(StoreError::InvalidCursor),
    }
}

impl BillingStore {
    /// Stores a lead (the CRM's job in production; used by tests and the local stack).
    pub async fn put_lead(&self, org: &OrgId, lead: &Lead) -> Result<(), StoreError> {
        if !valid_lead_id(&lead.id) {
            return Err(StoreError::Corrupt("invalid lead id".to_owned()));
        }
        let record = LeadRecord {
            pk: keys::org(org),
            sk: lead_key(&lead.id),
            data: lead.clone(),
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

    /// One page of the org's leads, in id order. A malformed item is skipped (and logged by
    /// key only, never by content: leads are personal data) rather than failing the list,
    /// since another system writes them.
    pub async fn list_leads(
        &self,
        org: &OrgId,
        limit: u16,
        cursor: Option<&str>,
    ) -> Result<LeadPage, StoreError> {
        let limit = usize::from(limit.clamp(1, 100));
        let start = cursor.map(decode_cursor).transpose()?;
        let pk = keys::org(org);
        // One extra item tells whether another page exists, so the last page has no cursor.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", string_value(pk.clone()))
            .expression_attribute_values(":prefix", string_value(keys::LEAD_PREFIX))
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.map(|sk| key(pk, sk)))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        let mut items = out.items.unwrap_or_default();
        // Paging counts raw items, so a skipped malformed item can never end the listing early.
        let more = items.len() > limit;
        items.truncate(limit);
        let last_sk = items.last().and_then(|item| match item.get(keys::SK) {
            Some(AttributeValue::S(sk)) => Some(sk.clone()),
            _ => None,
        });
        let mut leads = Vec::with_capacity(items.len());
        for item in items {
            let sk = match item.get(keys::SK) {
                Some(AttributeValue::S(sk)) => sk.clone(),
                _ => String::new(),
            };
            match from_item::<LeadRecord>(item) {
                Ok(record) => leads.push(record.data),
                Err(_) => tracing::warn!(org = %org, sk = %sk, "skipping malformed lead item"),
            }
        }
        let next_cursor = if more {
            last_sk.as_deref().map(encode_cursor)
        } else {
            None
        };
        Ok(LeadPage { leads, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    #[test]
    fn cursors_stay_inside_the_lead_prefix() {
        let sk = lead_key("lead_1");
        assert_eq!(decode_cursor(&encode_cursor(&sk)).unwrap(), sk);
        assert!(decode_cursor("%%").is_err());
        assert!(decode_cursor(&encode_cursor("INV#000#in_1")).is_err());
        assert!(decode_cursor(&encode_cursor("LEAD#")).is_err());
        assert!(decode_cursor(&encode_cursor("LEAD#a#b")).is_err());
    }

    #[test]
    fn lead_json_is_camel_case_and_omits_absent_fields() {
        let lead = Lead {
            id: "lead_1".into(),
            name: Some("Ada".into()),
            email: None,
            company: None,
            source: Some("form".into()),
            status: None,
            score: Some(42),
            created_at: Some(Timestamp::from_unix(1_700_000_000)),
        };
        let json = serde_json::to_value(&lead).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id":"lead_1","name":"Ada","source":"form","score":42,"createdAt":1_700_000_000})
        );
        let back: Lead = serde_json::from_value(serde_json::json!({"id":"x"})).unwrap();
        assert_eq!(back.name, None);
    }
}
