//! Leads of an organization (the paywalled demo route). The CRM writes leads; this service only
//! lists them, so the item shape is read tolerantly: every field but the id is optional.

use serde::{Deserialize, Serialize};

use super::query::{Order, string_attr};
use super::{BillingStore, StoreError, from_item, keys, to_item};
use crate::domain::{Lead, LeadPage, OrgId};

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

/// The sort keys a lead cursor may name: a lead's, never another kind of item of the org.
fn valid_cursor_key(sk: &str) -> bool {
    sk.strip_prefix(keys::LEAD_PREFIX)
        .is_some_and(valid_lead_id)
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
        self.put(to_item(&record)?).await
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
        let page = self
            .query_page(
                keys::org(org),
                keys::LEAD_PREFIX,
                Order::Ascending,
                limit,
                cursor,
                valid_cursor_key,
            )
            .await?;
        let mut leads = Vec::with_capacity(page.items.len());
        for item in page.items {
            let sk = string_attr(&item, keys::SK).unwrap_or_default();
            match from_item::<LeadRecord>(item) {
                Ok(record) => leads.push(record.data),
                Err(_) => tracing::warn!(org = %org, sk = %sk, "skipping malformed lead item"),
            }
        }
        Ok(LeadPage {
            leads,
            next_cursor: page.next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query::{decode_cursor, encode_cursor};

    fn decode(cursor: &str) -> Result<String, StoreError> {
        decode_cursor(cursor, valid_cursor_key)
    }

    #[test]
    fn cursors_stay_inside_the_lead_prefix() {
        let sk = lead_key("lead_1");
        assert_eq!(decode(&encode_cursor(&sk)).unwrap(), sk);
        assert!(decode("%%").is_err());
        assert!(decode(&encode_cursor("INV#000#in_1")).is_err());
        assert!(decode(&encode_cursor("LEAD#")).is_err());
        assert!(decode(&encode_cursor("LEAD#a#b")).is_err());
    }
}
