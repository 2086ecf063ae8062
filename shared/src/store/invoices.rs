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
        self.transact_or_stale(
            vec![TransactWriteItem::builder().put(put).build()],
            marker,
            org,
        )
        .await
    }

    /// Invoices newest first. `cursor` comes from a previous page of the same org.
    pub async fn list_invoices(
        &self,
        org: &OrgId,
        limit: u16,
        cursor: Option<&str>,
    ) -> Result<InvoicePage, StoreError> {
        let page = self
            .query_page(
                keys::org(org),
                keys::INVOICE_PREFIX,
                Order::Descending,
                limit,
                cursor,
                valid_cursor_key,
            )
            .await?;
        let invoices = page
            .items
            .into_iter()
            .map(|item| from_item::<InvoiceRecord>(item).map(|r| r.data))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(InvoicePage {
            invoices,
            next_cursor: page.next_cursor,
        })
    }
}

/// The sort keys an invoice cursor may name.
fn valid_cursor_key(sk: &str) -> bool {
    sk.starts_with(keys::INVOICE_PREFIX)
        && sk.len() <= 300
        && sk.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query::{decode_cursor, encode_cursor};

    fn decode(cursor: &str) -> Result<String, StoreError> {
        decode_cursor(cursor, valid_cursor_key)
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let sk = "INV#001700000000#in_1";
        assert_eq!(decode(&encode_cursor(sk)).unwrap(), sk);
        assert!(decode("!!!").is_err());
        assert!(decode(&encode_cursor("SUB#sub_1")).is_err());
        assert!(decode(&encode_cursor("INV#a b")).is_err());
    }
}
