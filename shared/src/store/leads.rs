//! Leads of an organization (the paywalled demo route).

use super::BillingStore;

impl BillingStore {}
