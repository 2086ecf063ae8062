//! The billing domain: pure types and rules, no I/O and no AWS or Stripe types.

pub mod catalog;
pub mod ending;
pub mod entitlements;
pub mod ids;
pub mod lead;
pub mod module;
pub mod plan;
pub mod records;
pub mod time;

pub use catalog::{BillingInterval, Catalog, CatalogEntry, CatalogPrice, Currency, Money};
pub use ending::{EndingStep, ending_modules, renewing_prices, steps_to_end};
pub use entitlements::{EntitlementSet, GracePolicy, Grant, ModuleSet};
pub use ids::{
    CheckoutSessionId, CustomerId, EventId, InvalidId, InvoiceId, OrgId, PaymentMethodId,
    SubscriptionId, UserId,
};
pub use lead::{Lead, LeadPage};
pub use module::{ServiceModule, UnknownModule};
pub use plan::{Plan, ProrationDateError, check_proration_date, plan_for};
pub use records::{
    BankAccountDetails, BillingProfile, CardDetails, Invoice, InvoiceStatus, OpenInvoice,
    PaymentMethod, Subscription, SubscriptionItem, SubscriptionStatus,
};
pub use time::{FetchTime, Timestamp};
