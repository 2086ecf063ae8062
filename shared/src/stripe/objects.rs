//! Tolerant views of the Stripe objects this service reads.
//!
//! They accept the current API shape, the 2022/2023 shapes (period fields on the subscription,
//! `invoice.subscription`) and the 2017 shape localstripe speaks (`plan` instead of `price`):
//! only the fields used are declared, every one of them optional where any version omits it,
//! and unknown fields are ignored.

use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::{
    BankAccountDetails, BillingInterval, CardDetails, Catalog, CustomerId, Invoice, InvoiceId,
    InvoiceStatus, PaymentMethod, PaymentMethodId, ServiceModule, Subscription, SubscriptionId,
    SubscriptionItem, SubscriptionStatus, Timestamp,
};

/// An object that Stripe may return as its id or expanded.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

pub type Metadata = HashMap<String, String>;

/// The Stripe object could not be turned into a billing record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unusable Stripe object: {0}")]
pub struct ConvertError(pub String);

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.filter(|s| *s > 0).map(Timestamp::from_unix)
}

/// Objects of a list endpoint, for `starting_after` paging.
pub trait HasId {
    fn object_id(&self) -> &str;
}

macro_rules! has_id {
    ($($t:ty),*) => {$(impl HasId for $t {
        fn object_id(&self) -> &str {
            &self.id
        }
    })*};
}

has_id!(
    StripeSubscription,
    StripePaymentMethod,
    StripeCheckoutSession,
    StripePrice,
    StripeInvoice,
    StripePortalConfiguration
);

/// A billing portal configuration: what the customer portal offers.
#[derive(Debug, Clone, Deserialize)]
pub struct StripePortalConfiguration {
    pub id: String,
    pub active: Option<bool>,
    pub is_default: Option<bool>,
    pub metadata: Option<Metadata>,
    /// Kept as Stripe gives it: catalog-sync compares it with what it would create.
    pub features: Option<serde_json::Value>,
    pub created: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            has_more: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Recurring {
    pub interval: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripePrice {
    pub id: String,
    pub lookup_key: Option<String>,
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    pub recurring: Option<Recurring>,
    pub product: Option<Expandable>,
    #[serde(default)]
    pub active: Option<bool>,
    pub metadata: Option<Metadata>,
    /// `inclusive`, `exclusive` or `unspecified` (absent in older shapes).
    pub tax_behavior: Option<String>,
}

/// The pre-2018 predecessor of a price (localstripe has no prices, only plans).
#[derive(Debug, Clone, Deserialize)]
pub struct StripePlan {
    pub id: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeSubscriptionItem {
    pub id: String,
    pub quantity: Option<u64>,
    pub price: Option<StripePrice>,
    pub plan: Option<StripePlan>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeSubscription {
    pub id: String,
    pub customer: Expandable,
    pub status: String,
    #[serde(default)]
    pub cancel_at_period_end: Option<bool>,
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub trial_end: Option<i64>,
    pub created: Option<i64>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    #[serde(default)]
    pub items: Option<List<StripeSubscriptionItem>>,
    /// 2017 shape: a single-plan subscription carries its plan at the top level.
    pub plan: Option<StripePlan>,
    pub quantity: Option<u64>,
    pub metadata: Option<Metadata>,
    pub livemode: Option<bool>,
    pub default_payment_method: Option<Expandable>,
    /// Set while a change made with `payment_behavior=pending_if_incomplete` waits for its
    /// invoice to be paid: the items above are still the old ones.
    #[serde(default)]
    pub pending_update: Option<serde_json::Value>,
    /// The most recent invoice, as an id or (with `expand[]=latest_invoice`) the object.
    pub latest_invoice: Option<InvoiceRef>,
    /// The subscription schedule managing it, as an id or (with `expand[]=schedule`) the
    /// object, whose phases say which items end at the current phase's end.
    #[serde(default)]
    pub schedule: Option<ScheduleRef>,
}

/// A subscription schedule that Stripe may return as its id or expanded.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ScheduleRef {
    Id(String),
    Object(Box<StripeSchedule>),
}

impl ScheduleRef {
    pub fn id(&self) -> &str {
        match self {
            ScheduleRef::Id(id) => id,
            ScheduleRef::Object(schedule) => &schedule.id,
        }
    }

    pub fn object(&self) -> Option<&StripeSchedule> {
        match self {
            ScheduleRef::Id(_) => None,
            ScheduleRef::Object(schedule) => Some(schedule),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhaseDates {
    pub start_date: i64,
    pub end_date: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SchedulePhaseItem {
    pub price: Expandable,
    pub quantity: Option<u64>,
}

/// A discount of a phase: a discount already applied (reused by id), or a coupon or
/// promotion code to apply.
#[derive(Debug, Clone, Deserialize)]
pub struct PhaseDiscount {
    pub coupon: Option<Expandable>,
    pub discount: Option<Expandable>,
    pub promotion_code: Option<Expandable>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SchedulePhase {
    pub start_date: i64,
    pub end_date: Option<i64>,
    #[serde(default)]
    pub items: Vec<SchedulePhaseItem>,
    pub trial_end: Option<i64>,
    /// Written back on every phase: a phase without them inherits only the customer's, so
    /// rewriting the phases without them would drop the subscription's promotion code.
    pub discounts: Option<Vec<PhaseDiscount>>,
    /// Written back too: Stripe applies a rewritten current phase at once.
    pub automatic_tax: Option<PhaseAutomaticTax>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhaseAutomaticTax {
    pub enabled: Option<bool>,
}

/// `subscription_schedule`: the phases of a subscription's future.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeSchedule {
    pub id: String,
    pub status: Option<String>,
    pub subscription: Option<Expandable>,
    pub current_phase: Option<PhaseDates>,
    #[serde(default)]
    pub phases: Vec<SchedulePhase>,
    pub end_behavior: Option<String>,
}

impl StripeSchedule {
    /// Whether Stripe still applies its phases (`not_started` or `active`).
    pub fn is_managing(&self) -> bool {
        matches!(
            self.status.as_deref(),
            Some("active" | "not_started") | None
        )
    }

    /// The phase running now.
    pub fn current(&self) -> Option<&SchedulePhase> {
        let current = self.current_phase.as_ref()?;
        self.phases
            .iter()
            .find(|p| p.start_date == current.start_date)
    }

    /// The phase after the current one, when there is one: its items are what renews.
    pub fn next_phase(&self) -> Option<&SchedulePhase> {
        let current = self.current_phase.as_ref()?;
        self.phases
            .iter()
            .find(|p| p.start_date >= current.end_date)
    }

    /// When the items missing from the next phase end, and the prices that renew; `None`
    /// when no change is scheduled (no next phase, or the schedule no longer manages).
    pub fn scheduled_change(&self) -> Option<(i64, Vec<&str>)> {
        if !self.is_managing() {
            return None;
        }
        let end = self.current_phase.as_ref()?.end_date;
        match self.next_phase() {
            Some(next) => Some((end, next.items.iter().map(|i| i.price.id()).collect())),
            // The last phase: with `cancel` every item ends with it; with `release` the
            // subscription goes on as it is.
            None if self.end_behavior.as_deref() == Some("cancel") => Some((end, Vec::new())),
            None => None,
        }
    }
}

/// An invoice that Stripe may return as its id or expanded.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InvoiceRef {
    Id(String),
    Object(Box<StripeInvoice>),
}

impl InvoiceRef {
    pub fn id(&self) -> &str {
        match self {
            InvoiceRef::Id(id) => id,
            InvoiceRef::Object(invoice) => &invoice.id,
        }
    }

    pub fn object(&self) -> Option<&StripeInvoice> {
        match self {
            InvoiceRef::Id(_) => None,
            InvoiceRef::Object(invoice) => Some(invoice),
        }
    }
}

/// Metadata key naming the module a price or plan sells, for prices without a lookup key.
pub const MODULE_METADATA_KEY: &str = "service_module";

fn module_for(
    catalog: &Catalog,
    keys: &[Option<&str>],
    metadata: &[Option<&Metadata>],
) -> Option<(ServiceModule, BillingInterval)> {
    let by_key = keys
        .iter()
        .flatten()
        .find_map(|k| catalog.by_lookup_key(k))
        .map(|(m, p)| (m, p.interval));
    by_key.or_else(|| {
        metadata
            .iter()
            .flatten()
            .find_map(|m| m.get(MODULE_METADATA_KEY)?.parse::<ServiceModule>().ok())
            .map(|m| (m, BillingInterval::Month))
    })
}

impl StripeSubscriptionItem {
    fn to_domain(&self, catalog: &Catalog) -> SubscriptionItem {
        let price = self.price.as_ref();
        let plan = self.plan.as_ref();
        let resolved = module_for(
            catalog,
            &[
                price.and_then(|p| p.lookup_key.as_deref()),
                price.map(|p| p.id.as_str()),
                plan.map(|p| p.id.as_str()),
            ],
            &[
                price.and_then(|p| p.metadata.as_ref()),
                plan.and_then(|p| p.metadata.as_ref()),
            ],
        );
        let interval = price
            .and_then(|p| p.recurring.as_ref()?.interval.as_deref())
            .or_else(|| plan?.interval.as_deref())
            .and_then(|i| i.parse().ok())
            .or(resolved.map(|(_, i)| i));
        let currency = price
            .and_then(|p| p.currency.as_deref())
            .or_else(|| plan?.currency.as_deref())
            .and_then(|c| serde_json::from_value(serde_json::Value::String(c.to_owned())).ok());
        SubscriptionItem {
            id: self.id.clone(),
            price_id: price
                .map(|p| p.id.clone())
                .or_else(|| plan.map(|p| p.id.clone()))
                .unwrap_or_default(),
            lookup_key: price.and_then(|p| p.lookup_key.clone()),
            module: resolved.map(|(m, _)| m),
            interval,
            quantity: self.quantity.unwrap_or(1),
            unit_amount: price.and_then(|p| p.unit_amount).or_else(|| plan?.amount),
            currency,
            product_id: price
                .and_then(|p| p.product.as_ref())
                .map(|p| p.id().to_owned()),
            // Set from the subscription's schedule or cancellation in `to_domain`.
            ends_at: None,
        }
    }
}

impl StripeSubscription {
    pub fn to_domain(&self, catalog: &Catalog) -> Result<Subscription, ConvertError> {
        let status = SubscriptionStatus::parse(&self.status).ok_or_else(|| {
            ConvertError(format!("unknown subscription status {:?}", self.status))
        })?;
        let id = SubscriptionId::parse(&self.id).map_err(|e| ConvertError(e.to_string()))?;
        let customer_id =
            CustomerId::parse(self.customer.id()).map_err(|e| ConvertError(e.to_string()))?;
        let mut items: Vec<SubscriptionItem> = self
            .items
            .as_ref()
            .map(|l| l.data.iter().map(|i| i.to_domain(catalog)).collect())
            .unwrap_or_default();
        if items.is_empty()
            && let Some(plan) = &self.plan
        {
            let legacy = StripeSubscriptionItem {
                id: format!("{}-plan", self.id),
                quantity: self.quantity,
                price: None,
                plan: Some(plan.clone()),
                current_period_start: None,
                current_period_end: None,
            };
            items.push(legacy.to_domain(catalog));
        }
        let item_periods = self
            .items
            .as_ref()
            .map(|l| l.data.as_slice())
            .unwrap_or_default();
        // Since 2025 the period lives on each item; before, on the subscription.
        let period_start = self.current_period_start.or_else(|| {
            item_periods
                .iter()
                .filter_map(|i| i.current_period_start)
                .min()
        });
        let period_end = self.current_period_end.or_else(|| {
            item_periods
                .iter()
                .filter_map(|i| i.current_period_end)
                .max()
        });
        // What Stripe will end at the period end: every item when the plan cancels then; the
        // items that a schedule's next phase leaves out. Dates are Stripe's own.
        let cancel_at_period_end = self.cancel_at_period_end.unwrap_or(false);
        let plan_end = if cancel_at_period_end {
            ts(self.cancel_at).or(ts(period_end))
        } else {
            ts(self.cancel_at)
        };
        let change = self
            .schedule
            .as_ref()
            .and_then(ScheduleRef::object)
            .and_then(StripeSchedule::scheduled_change);
        for item in &mut items {
            item.ends_at = match &change {
                _ if plan_end.is_some() => plan_end,
                Some((end, renewing)) if !renewing.contains(&item.price_id.as_str()) => {
                    ts(Some(*end))
                }
                _ => None,
            };
        }
        let open_invoice = matches!(
            status,
            SubscriptionStatus::PastDue
                | SubscriptionStatus::Unpaid
                | SubscriptionStatus::Incomplete
        )
        .then(|| self.latest_invoice.as_ref()?.object()?.open_invoice())
        .flatten();
        Ok(Subscription {
            id,
            customer_id,
            status,
            current_period_start: ts(period_start),
            current_period_end: ts(period_end),
            cancel_at_period_end,
            cancel_at: ts(self.cancel_at),
            canceled_at: ts(self.canceled_at),
            ended_at: ts(self.ended_at),
            trial_end: ts(self.trial_end),
            created: ts(self.created),
            items,
            default_payment_method: self
                .default_payment_method
                .as_ref()
                .and_then(|pm| PaymentMethodId::parse(pm.id()).ok()),
            past_due_since: None,
            ended_unseen: false,
            trial_end_notice: None,
            schedule_id: self
                .schedule
                .as_ref()
                .filter(|s| s.object().is_none_or(StripeSchedule::is_managing))
                .map(|s| s.id().to_owned()),
            open_invoice,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusTransitions {
    pub paid_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionDetails {
    pub subscription: Option<Expandable>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceParent {
    pub subscription_details: Option<SubscriptionDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeInvoice {
    pub id: String,
    pub customer: Expandable,
    pub subscription: Option<Expandable>,
    pub parent: Option<InvoiceParent>,
    pub number: Option<String>,
    pub status: Option<String>,
    /// 2017 shape: no `status`, but `paid`.
    pub paid: Option<bool>,
    pub amount_due: Option<i64>,
    pub amount_paid: Option<i64>,
    pub amount_remaining: Option<i64>,
    pub total: Option<i64>,
    pub currency: Option<String>,
    pub created: Option<i64>,
    /// 2017 shape: `date` instead of `created`.
    pub date: Option<i64>,
    pub due_date: Option<i64>,
    pub status_transitions: Option<StatusTransitions>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub attempt_count: Option<u64>,
    pub subtotal: Option<i64>,
    /// Since 2025: the taxes, one entry per rate; before, `tax`.
    pub total_taxes: Option<Vec<Amount>>,
    pub tax: Option<i64>,
    pub total_discount_amounts: Option<Vec<Amount>>,
    /// The lines (an invoice preview carries them; a retrieved invoice its first page).
    pub lines: Option<List<StripeInvoiceLine>>,
}

/// An amount of a tax or discount breakdown.
#[derive(Debug, Clone, Deserialize)]
pub struct Amount {
    pub amount: Option<i64>,
}

fn sum(amounts: &Option<Vec<Amount>>) -> Option<i64> {
    amounts
        .as_ref()
        .map(|list| list.iter().filter_map(|a| a.amount).sum())
}

#[derive(Debug, Clone, Deserialize)]
pub struct LinePeriod {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LinePriceDetails {
    pub price: Option<Expandable>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LinePricing {
    pub price_details: Option<LinePriceDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LineItemDetails {
    pub proration: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LineParent {
    pub subscription_item_details: Option<LineItemDetails>,
}

/// One line of an invoice: since 2025 its price sits under `pricing.price_details` and its
/// proration flag under `parent.subscription_item_details`; before, both on the line.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeInvoiceLine {
    pub amount: Option<i64>,
    pub description: Option<String>,
    pub period: Option<LinePeriod>,
    pub pricing: Option<LinePricing>,
    pub parent: Option<LineParent>,
    pub price: Option<StripePrice>,
    pub proration: Option<bool>,
}

impl StripeInvoiceLine {
    pub fn price_id(&self) -> Option<&str> {
        self.pricing
            .as_ref()
            .and_then(|p| p.price_details.as_ref()?.price.as_ref())
            .map(Expandable::id)
            .or_else(|| self.price.as_ref().map(|p| p.id.as_str()))
    }

    pub fn is_proration(&self) -> bool {
        self.parent
            .as_ref()
            .and_then(|p| p.subscription_item_details.as_ref()?.proration)
            .or(self.proration)
            .unwrap_or(false)
    }
}

impl StripeInvoice {
    /// The invoice as a debt to show the buyer: only while it is `open`.
    pub fn open_invoice(&self) -> Option<crate::domain::OpenInvoice> {
        if self.status.as_deref() != Some("open") {
            return None;
        }
        Some(crate::domain::OpenInvoice {
            id: InvoiceId::parse(&self.id).ok()?,
            amount_due: self
                .amount_remaining
                .or(self.amount_due)
                .or(self.total)
                .unwrap_or(0),
            currency: self.currency.clone().unwrap_or_else(|| "usd".to_owned()),
            hosted_invoice_url: self.hosted_invoice_url.clone(),
            due_date: ts(self.due_date),
        })
    }

    pub fn subscription_id(&self) -> Option<&str> {
        self.subscription
            .as_ref()
            .or_else(|| {
                self.parent
                    .as_ref()?
                    .subscription_details
                    .as_ref()?
                    .subscription
                    .as_ref()
            })
            .map(Expandable::id)
    }

    pub fn to_domain(&self) -> Result<Invoice, ConvertError> {
        let status = match self.status.as_deref() {
            Some(s) => InvoiceStatus::parse(s),
            None if self.paid == Some(true) => Some(InvoiceStatus::Paid),
            None => None,
        };
        let amount_due = self.amount_due.or(self.total).unwrap_or(0);
        let amount_paid = self
            .amount_paid
            .unwrap_or(if status == Some(InvoiceStatus::Paid) {
                amount_due
            } else {
                0
            });
        Ok(Invoice {
            id: InvoiceId::parse(&self.id).map_err(|e| ConvertError(e.to_string()))?,
            customer_id: CustomerId::parse(self.customer.id())
                .map_err(|e| ConvertError(e.to_string()))?,
            subscription_id: self
                .subscription_id()
                .and_then(|s| SubscriptionId::parse(s).ok()),
            number: self.number.clone(),
            status,
            amount_due,
            amount_paid,
            amount_remaining: self
                .amount_remaining
                .unwrap_or(amount_due - amount_paid)
                .max(0),
            currency: self.currency.clone().unwrap_or_else(|| "usd".to_owned()),
            created: Timestamp::from_unix(self.created.or(self.date).unwrap_or(0)),
            due_date: ts(self.due_date),
            paid_at: ts(self.status_transitions.as_ref().and_then(|t| t.paid_at)),
            hosted_invoice_url: self.hosted_invoice_url.clone(),
            invoice_pdf: self.invoice_pdf.clone(),
            attempt_count: self.attempt_count.unwrap_or(0),
            subtotal: self.subtotal,
            tax: Some(sum(&self.total_taxes).or(self.tax).unwrap_or(0)),
            discount: Some(sum(&self.total_discount_amounts).unwrap_or(0)),
            total: self.total,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeCard {
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<u32>,
    pub exp_year: Option<u32>,
}

/// The fields bank-debit types share (`sepa_debit`, `us_bank_account`, `bacs_debit`, ...).
#[derive(Debug, Clone, Deserialize)]
pub struct StripeBankAccount {
    pub last4: Option<String>,
    pub bank_name: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeLink {
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripePaymentMethod {
    pub id: String,
    pub customer: Option<Expandable>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub card: Option<StripeCard>,
    pub sepa_debit: Option<StripeBankAccount>,
    pub us_bank_account: Option<StripeBankAccount>,
    pub bacs_debit: Option<StripeBankAccount>,
    pub au_becs_debit: Option<StripeBankAccount>,
    pub acss_debit: Option<StripeBankAccount>,
    pub link: Option<StripeLink>,
    pub created: Option<i64>,
}

impl StripePaymentMethod {
    /// `None` when the method is not attached to a customer.
    pub fn to_domain(&self) -> Result<Option<PaymentMethod>, ConvertError> {
        let Some(customer) = &self.customer else {
            return Ok(None);
        };
        Ok(Some(PaymentMethod {
            id: PaymentMethodId::parse(&self.id).map_err(|e| ConvertError(e.to_string()))?,
            customer_id: CustomerId::parse(customer.id())
                .map_err(|e| ConvertError(e.to_string()))?,
            kind: self.kind.clone().unwrap_or_else(|| "card".to_owned()),
            card: self.card.as_ref().map(|c| CardDetails {
                brand: c.brand.clone().unwrap_or_default(),
                last4: c.last4.clone().unwrap_or_default(),
                exp_month: c.exp_month.unwrap_or(0),
                exp_year: c.exp_year.unwrap_or(0),
            }),
            bank_account: [
                &self.sepa_debit,
                &self.us_bank_account,
                &self.bacs_debit,
                &self.au_becs_debit,
                &self.acss_debit,
            ]
            .into_iter()
            .flatten()
            .next()
            .map(|b| BankAccountDetails {
                bank_name: b.bank_name.clone(),
                last4: b.last4.clone().unwrap_or_default(),
                country: b.country.clone(),
            }),
            email: self.link.as_ref().and_then(|l| l.email.clone()),
            created: ts(self.created),
        }))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceSettings {
    pub default_payment_method: Option<Expandable>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeCustomer {
    pub id: String,
    pub invoice_settings: Option<InvoiceSettings>,
    #[serde(default)]
    pub deleted: Option<bool>,
    pub metadata: Option<Metadata>,
}

impl StripeCustomer {
    pub fn default_payment_method(&self) -> Option<&str> {
        self.invoice_settings
            .as_ref()?
            .default_payment_method
            .as_ref()
            .map(Expandable::id)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeCheckoutSession {
    pub id: String,
    pub client_reference_id: Option<String>,
    pub customer: Option<Expandable>,
    pub subscription: Option<Expandable>,
    pub metadata: Option<Metadata>,
    pub mode: Option<String>,
    pub status: Option<String>,
    pub url: Option<String>,
    pub created: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeBillingPortalSession {
    pub id: String,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeProduct {
    pub id: String,
    pub name: Option<String>,
    pub active: Option<bool>,
    pub metadata: Option<Metadata>,
    pub tax_code: Option<Expandable>,
}

/// The webhook envelope. Only ids are read from `data.object`: the object itself is re-fetched.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub livemode: bool,
    pub created: Option<i64>,
    pub api_version: Option<String>,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    pub object: EventObject,
    pub previous_attributes: Option<serde_json::Value>,
}

/// The few fields of an event's object used to decide what to re-fetch.
#[derive(Debug, Clone, Deserialize)]
pub struct EventObject {
    pub id: String,
    pub object: Option<String>,
    pub customer: Option<Expandable>,
    pub subscription: Option<Expandable>,
    /// A subscription schedule's subscription after its release (`subscription` is then null).
    pub released_subscription: Option<String>,
    /// A Checkout Session's, for counting only this service's sessions.
    pub metadata: Option<Metadata>,
    /// A Checkout Session's: its timed expiry.
    pub expires_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn current_shape_subscription_takes_periods_from_items() {
        let sub: StripeSubscription = parse(
            r#"{"id":"sub_1","customer":"cus_1","status":"active","cancel_at_period_end":false,
            "items":{"data":[{"id":"si_1","quantity":2,"current_period_start":100,"current_period_end":200,
            "price":{"id":"price_x","lookup_key":"leadgen_yearly","unit_amount":99900,"currency":"usd","recurring":{"interval":"year"}},
            "plan":{"id":"obj_123","currency":"currency","interval":"month"}}]}}"#,
        );
        let d = sub.to_domain(&Catalog::standard()).unwrap();
        assert_eq!(d.current_period_start, Some(Timestamp::from_unix(100)));
        assert_eq!(d.current_period_end, Some(Timestamp::from_unix(200)));
        let item = &d.items[0];
        assert_eq!(item.module, Some(ServiceModule::LeadGeneration));
        assert_eq!(item.interval, Some(BillingInterval::Year));
        assert_eq!(item.quantity, 2);
        assert_eq!(item.unit_amount, Some(99_900));
    }

    #[test]
    fn legacy_shape_subscription_resolves_plans_by_id_and_metadata() {
        let sub: StripeSubscription = parse(
            r#"{"id":"sub_1","customer":{"id":"cus_1"},"status":"past_due","current_period_start":5,"current_period_end":9,
            "items":{"data":[{"id":"si_1","plan":{"id":"social_inbox_monthly","amount":7900,"currency":"usd","interval":"month"}},
            {"id":"si_2","plan":{"id":"plan_x","interval":"year","metadata":{"service_module":"Integrations"}}},
            {"id":"si_3","plan":{"id":"plan_unknown"}}]}}"#,
        );
        let d = sub.to_domain(&Catalog::standard()).unwrap();
        assert_eq!(d.status, SubscriptionStatus::PastDue);
        assert_eq!(d.current_period_start, Some(Timestamp::from_unix(5)));
        let modules: Vec<_> = d.items.iter().map(|i| i.module).collect();
        assert_eq!(
            modules,
            vec![
                Some(ServiceModule::SocialInbox),
                Some(ServiceModule::Integrations),
                None
            ]
        );
    }

    #[test]
    fn unknown_status_is_refused_not_guessed() {
        let sub: StripeSubscription =
            parse(r#"{"id":"sub_1","customer":"cus_1","status":"frozen"}"#);
        assert!(sub.to_domain(&Catalog::standard()).is_err());
    }

    #[test]
    fn invoices_of_every_shape() {
        let current: StripeInvoice = parse(
            r#"{"id":"in_1","customer":"cus_1","status":"paid","amount_due":9900,"amount_paid":9900,"amount_remaining":0,
            "currency":"usd","created":50,"status_transitions":{"paid_at":60},
            "parent":{"subscription_details":{"subscription":"sub_9"}}}"#,
        );
        let d = current.to_domain().unwrap();
        assert_eq!(d.subscription_id.unwrap().as_str(), "sub_9");
        assert_eq!(d.paid_at, Some(Timestamp::from_unix(60)));
        let legacy: StripeInvoice = parse(
            r#"{"id":"in_2","customer":"cus_1","subscription":"sub_2","paid":true,"total":4900,"date":70}"#,
        );
        let d = legacy.to_domain().unwrap();
        assert_eq!(
            (d.status, d.amount_due, d.amount_paid),
            (Some(InvoiceStatus::Paid), 4900, 4900)
        );
        assert_eq!(d.created, Timestamp::from_unix(70));
    }
}
