//! The single-table key design (documented as a table in the README). Every key is built here
//! and nowhere else.

use crate::domain::{
    CustomerId, EventId, InvoiceId, OrgId, PaymentMethodId, SubscriptionId, Timestamp,
};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
/// The table's TTL attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expires_at";

pub const PROFILE: &str = "PROFILE";
/// The org's entitlements item. It sorts just before the subscriptions (`!` < `#`), so one
/// Query under [`ACCESS_PREFIX`] reads it and every subscription of the org, in that order.
pub const ENTITLEMENTS: &str = "SUB!ENTITLEMENTS";
/// The sort-key prefix of the entitlements item and the subscriptions together.
pub const ACCESS_PREFIX: &str = "SUB";
pub const LINK: &str = "LINK";
pub const EVENT: &str = "EVENT";
pub const SUB_PREFIX: &str = "SUB#";
pub const INVOICE_PREFIX: &str = "INV#";
pub const PAYMENT_METHOD_PREFIX: &str = "PM#";
pub const LEAD_PREFIX: &str = "LEAD#";
pub const TRIAL_PREFIX: &str = "TRIAL#";
pub const RECONCILE_PK: &str = "RECONCILE";

pub fn org(org: &OrgId) -> String {
    format!("ORG#{org}")
}

pub fn customer(customer: &CustomerId) -> String {
    format!("CUS#{customer}")
}

pub fn event(event: &EventId) -> String {
    format!("EVT#{event}")
}

pub fn subscription(sub: &SubscriptionId) -> String {
    format!("{SUB_PREFIX}{sub}")
}

/// Invoices sort by creation time inside the org's partition, so "newest first" is a reverse
/// Query. `created` never changes for an invoice, so the key is stable across syncs.
pub fn invoice(created: Timestamp, id: &InvoiceId) -> String {
    format!("{INVOICE_PREFIX}{:012}#{id}", created.unix().max(0))
}

/// One item per module the org has had a free trial of.
pub fn trial(module: crate::domain::ServiceModule) -> String {
    format!("{TRIAL_PREFIX}{}", module.as_str())
}

pub fn payment_method(id: &PaymentMethodId) -> String {
    format!("{PAYMENT_METHOD_PREFIX}{id}")
}

/// One item per parked event, keyed by the event id alone: a redelivery of a still-parked
/// event overwrites it, and applying the event deletes it in the same transaction as its
/// processed marker.
pub fn reconcile(event: &EventId) -> String {
    format!("EVT#{event}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoice_keys_sort_by_creation_time() {
        let id = InvoiceId::parse("in_1").unwrap();
        let early = invoice(Timestamp::from_unix(999), &id);
        let late = invoice(Timestamp::from_unix(1_700_000_000), &id);
        assert!(early < late);
        assert_eq!(late, "INV#001700000000#in_1");
    }
}
