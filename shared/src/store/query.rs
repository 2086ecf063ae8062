//! The store's reads of one partition under a sort-key prefix (whole, or a page at a time with
//! an opaque cursor), its plain item write, and attribute readers for items read without serde.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{BillingStore, Item, StoreError, key, keys, string_value};

/// Which end of the sort-key range a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    Ascending,
    Descending,
}

/// One page of raw items, at most the limit asked for.
pub(super) struct ItemPage {
    pub items: Vec<Item>,
    /// Opaque; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The largest page a caller may ask for.
const MAX_PAGE: u16 = 100;

impl BillingStore {
    /// A query of the items of partition `pk` whose sort key starts with `prefix`.
    fn prefix_query(&self, pk: String, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", string_value(pk))
            .expression_attribute_values(":prefix", string_value(prefix))
    }

    /// All items of one partition whose sort key starts with `prefix`, read consistently.
    pub(super) async fn query_prefix(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .prefix_query(pk.clone(), prefix)
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

    /// Up to `limit` items (the first `limit` of them in `order`), with no cursor.
    pub(super) async fn query_first(
        &self,
        pk: String,
        prefix: &str,
        order: Order,
        limit: i32,
    ) -> Result<Vec<Item>, StoreError> {
        let out = self
            .prefix_query(pk, prefix)
            .scan_index_forward(order == Order::Ascending)
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(out.items.unwrap_or_default())
    }

    /// One page (1 to 100 items) of partition `pk` under `prefix`, from `cursor` on. A cursor
    /// is only accepted when `valid_sort_key` accepts the sort key it names. The cursor always
    /// comes from the raw items, so a caller that skips an unreadable item never ends its
    /// listing early.
    pub(super) async fn query_page(
        &self,
        pk: String,
        prefix: &str,
        order: Order,
        limit: u16,
        cursor: Option<&str>,
        valid_sort_key: impl Fn(&str) -> bool,
    ) -> Result<ItemPage, StoreError> {
        let limit = usize::from(limit.clamp(1, MAX_PAGE));
        let start = cursor
            .map(|c| decode_cursor(c, &valid_sort_key))
            .transpose()?;
        // One extra item tells whether another page exists, so the last page has no cursor.
        let out = self
            .prefix_query(pk.clone(), prefix)
            .scan_index_forward(order == Order::Ascending)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.map(|sk| key(pk, sk)))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        let mut items = out.items.unwrap_or_default();
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = if more {
            items
                .last()
                .and_then(|item| string_attr(item, keys::SK))
                .map(|sk| encode_cursor(&sk))
        } else {
            None
        };
        Ok(ItemPage { items, next_cursor })
    }

    /// Writes one item as is (no condition).
    pub(super) async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }
}

pub(super) fn encode_cursor(sk: &str) -> String {
    hex::encode(sk.as_bytes())
}

/// A cursor only ever names a sort key inside the caller's own partition (the partition key
/// always comes from the caller's org), so a cursor cannot reach another tenant's data.
pub(super) fn decode_cursor(
    cursor: &str,
    valid_sort_key: impl Fn(&str) -> bool,
) -> Result<String, StoreError> {
    let bytes = hex::decode(cursor.as_bytes()).map_err(|_| StoreError::InvalidCursor)?;
    let sk = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    if valid_sort_key(&sk) {
        Ok(sk)
    } else {
        Err(StoreError::InvalidCursor)
    }
}

/// A string attribute of an item, if it has one.
pub(super) fn string_attr(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// A number attribute of an item that fits an `i64`, if it has one.
pub(super) fn number_attr(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}
