//! Invoices, stored as read from Stripe and paged newest first.

use super::*;

impl BillingStore {
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
            .expression_attribute_values(":fetched", number_value(fetched_at.micros()))
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
            .expression_attribute_values(":pk", string_value(pk.clone()))
            .expression_attribute_values(":prefix", string_value(keys::INVOICE_PREFIX))
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
