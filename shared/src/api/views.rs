//! Response bodies of the billing API (camelCase JSON). Amounts are integer cents; times are
//! Unix seconds (UTC), as Stripe gives them.

use serde::Serialize;

use crate::domain::{
    BillingInterval, Catalog, Currency, EntitlementSet, Invoice, ModuleSet, PaymentMethod,
    PaymentMethodId, ServiceModule, Subscription, SubscriptionStatus, Timestamp,
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceView {
    pub interval: BillingInterval,
    pub unit_amount: i64,
    pub currency: Currency,
    pub lookup_key: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    pub id: ServiceModule,
    pub name: &'static str,
    pub description: &'static str,
    pub free: bool,
    pub prices: Vec<PriceView>,
    /// Present only when the caller is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlocked: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct ServicesView {
    pub services: Vec<ServiceView>,
}

pub fn services(catalog: &Catalog, unlocked: Option<ModuleSet>) -> ServicesView {
    ServicesView {
        services: catalog
            .entries()
            .iter()
            .map(|e| ServiceView {
                id: e.module,
                name: e.name,
                description: e.description,
                free: e.prices.is_none(),
                prices: e
                    .prices
                    .iter()
                    .flatten()
                    .map(|p| PriceView {
                        interval: p.interval,
                        unit_amount: p.unit_amount,
                        currency: p.currency,
                        lookup_key: p.lookup_key,
                    })
                    .collect(),
                unlocked: unlocked.map(|set| set.contains(e.module)),
            })
            .collect(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    pub module: Option<ServiceModule>,
    pub interval: Option<BillingInterval>,
    pub quantity: u64,
    pub price_id: String,
    /// The price per interval, in cents (null when Stripe did not say).
    pub unit_amount: Option<i64>,
    pub currency: Option<Currency>,
    /// The end of the period paid for.
    pub paid_through: Option<Timestamp>,
    /// When the module stops (removed at period end, or the plan cancels then); null while it
    /// renews.
    pub ends_at: Option<Timestamp>,
}

/// An invoice the buyer owes, with the page to pay it on.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInvoiceView {
    pub id: String,
    pub amount_due: i64,
    pub currency: String,
    pub hosted_invoice_url: Option<String>,
    pub due_date: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub id: String,
    pub status: SubscriptionStatus,
    pub current_period_start: Option<Timestamp>,
    pub current_period_end: Option<Timestamp>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<Timestamp>,
    pub trial_end: Option<Timestamp>,
    /// Stripe announced the trial's end (`customer.subscription.trial_will_end`, three days
    /// before it): the buyer should add a card to keep the modules.
    pub trial_will_end: bool,
    /// When a past_due subscription loses its modules.
    pub grace_period_end: Option<Timestamp>,
    /// The plan's billing interval.
    pub interval: Option<BillingInterval>,
    /// For a past_due, unpaid or incomplete subscription: the invoice it owes.
    pub open_invoice: Option<OpenInvoiceView>,
    pub items: Vec<ItemView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementView {
    pub module: ServiceModule,
    pub unlocked: bool,
    /// Set when access ends at a known time (past_due grace).
    pub until: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionOverview {
    /// The org's overall status: the most favourable status among its subscriptions, or
    /// `none` when it has never subscribed.
    pub status: &'static str,
    pub subscriptions: Vec<SubscriptionView>,
    pub entitlements: Vec<EntitlementView>,
    /// Days of free trial a first purchase gets in this deployment (0: none).
    pub trial_days: u32,
    /// Modules the org has had a trial of: they get no second one.
    pub trialed_modules: Vec<ServiceModule>,
}

fn rank(status: SubscriptionStatus) -> u8 {
    use SubscriptionStatus::*;
    match status {
        Active => 8,
        Trialing => 7,
        PastDue => 6,
        Unpaid => 5,
        Paused => 4,
        Incomplete => 3,
        Canceled => 2,
        IncompleteExpired => 1,
    }
}

pub fn overview(
    subscriptions: &[Subscription],
    entitlements: &EntitlementSet,
    grace_seconds: i64,
    now: Timestamp,
) -> SubscriptionOverview {
    let status = subscriptions
        .iter()
        .map(|s| s.status)
        .max_by_key(|s| rank(*s))
        .map_or("none", SubscriptionStatus::as_str);
    let mut subs: Vec<&Subscription> = subscriptions.iter().collect();
    subs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    SubscriptionOverview {
        status,
        subscriptions: subs
            .into_iter()
            .map(|s| SubscriptionView {
                id: s.id.to_string(),
                status: s.status,
                current_period_start: s.current_period_start,
                current_period_end: s.current_period_end,
                cancel_at_period_end: s.cancel_at_period_end,
                cancel_at: s.cancel_at,
                trial_end: s.trial_end,
                trial_will_end: s.trial_ending(),
                grace_period_end: (s.status == SubscriptionStatus::PastDue)
                    .then(|| s.past_due_since.or(s.current_period_start))
                    .flatten()
                    .map(|t| t.plus_seconds(grace_seconds)),
                interval: s.interval(),
                open_invoice: s.open_invoice.as_ref().map(|i| OpenInvoiceView {
                    id: i.id.to_string(),
                    amount_due: i.amount_due,
                    currency: i.currency.clone(),
                    hosted_invoice_url: i.hosted_invoice_url.clone(),
                    due_date: i.due_date,
                }),
                items: s
                    .items
                    .iter()
                    .map(|i| ItemView {
                        module: i.module,
                        interval: i.interval,
                        quantity: i.quantity,
                        price_id: i.price_id.clone(),
                        unit_amount: i.unit_amount,
                        currency: i.currency,
                        paid_through: s.current_period_end,
                        ends_at: i.ends_at,
                    })
                    .collect(),
            })
            .collect(),
        entitlements: ServiceModule::ALL
            .into_iter()
            .map(|m| EntitlementView {
                module: m,
                unlocked: entitlements.unlocks(m, now),
                until: entitlements
                    .grants()
                    .get(&m)
                    .and_then(|g| g.until)
                    .filter(|_| entitlements.unlocks(m, now)),
            })
            .collect(),
        trial_days: 0,
        trialed_modules: Vec::new(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceView {
    pub id: String,
    pub number: Option<String>,
    pub status: Option<crate::domain::InvoiceStatus>,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    pub currency: String,
    pub created: Timestamp,
    pub due_date: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    /// Before discounts and tax (cents).
    pub subtotal: i64,
    /// Tax (cents), 0 without any.
    pub tax: i64,
    /// Discounts (cents, positive), 0 without any.
    pub discount: i64,
    /// After discounts and tax (cents).
    pub total: i64,
}

impl From<Invoice> for InvoiceView {
    fn from(i: Invoice) -> Self {
        Self {
            id: i.id.to_string(),
            number: i.number,
            status: i.status,
            amount_due: i.amount_due,
            amount_paid: i.amount_paid,
            amount_remaining: i.amount_remaining,
            currency: i.currency,
            created: i.created,
            due_date: i.due_date,
            paid_at: i.paid_at,
            hosted_invoice_url: i.hosted_invoice_url,
            invoice_pdf: i.invoice_pdf,
            subtotal: i.subtotal.unwrap_or(i.amount_due),
            tax: i.tax.unwrap_or(0),
            discount: i.discount.unwrap_or(0),
            total: i.total.unwrap_or(i.amount_due),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoicePageView {
    pub invoices: Vec<InvoiceView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethodView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<u32>,
    pub exp_year: Option<u32>,
    /// Bank debits: the bank's name, when Stripe knows it.
    pub bank_name: Option<String>,
    /// `link`: the Link account's email.
    pub email: Option<String>,
    pub is_default: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethodsView {
    pub payment_methods: Vec<PaymentMethodView>,
}

pub fn payment_methods(
    methods: Vec<PaymentMethod>,
    default: Option<&PaymentMethodId>,
) -> PaymentMethodsView {
    PaymentMethodsView {
        payment_methods: methods
            .into_iter()
            .map(|m| PaymentMethodView {
                is_default: default == Some(&m.id),
                id: m.id.to_string(),
                kind: m.kind,
                brand: m.card.as_ref().map(|c| c.brand.clone()),
                last4: m
                    .card
                    .as_ref()
                    .map(|c| c.last4.clone())
                    .or_else(|| m.bank_account.as_ref().map(|b| b.last4.clone())),
                exp_month: m.card.as_ref().map(|c| c.exp_month),
                exp_year: m.card.as_ref().map(|c| c.exp_year),
                bank_name: m.bank_account.as_ref().and_then(|b| b.bank_name.clone()),
                email: m.email,
            })
            .collect(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutView {
    pub session_id: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct UrlView {
    pub url: String,
}

/// How a purchase of modules would be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseMode {
    /// Added as items to the org's live subscription of the interval, prorated and charged now.
    Add,
    /// No subscription of the interval yet: bought through Checkout.
    Checkout,
    /// The plan's every item moved to the other interval's price, charged now.
    Switch,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewLineView {
    pub description: String,
    pub amount: i64,
    pub service: Option<ServiceModule>,
    pub proration: bool,
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextInvoiceView {
    pub amount: i64,
    pub date: Option<Timestamp>,
}

/// `POST /api/billing/preview`: what the buyer pays today and from the next renewal.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanPreviewView {
    pub mode: PurchaseMode,
    pub interval: BillingInterval,
    pub currency: String,
    pub services: Vec<ServiceModule>,
    /// The time the proration was computed for; `POST /api/billing/modules` charges for the
    /// same instant, so the charge equals this preview. Null in checkout mode.
    pub proration_date: Option<Timestamp>,
    /// Checkout mode: the days of free trial this checkout starts (then nothing is due
    /// today); null without one, and in add mode.
    pub trial_days: Option<u32>,
    pub amount_due_today: i64,
    pub next_invoice: NextInvoiceView,
    pub lines: Vec<PreviewLineView>,
}

/// `POST /api/billing/modules`: what was added and charged.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanChangeView {
    pub added: Vec<ServiceModule>,
    pub amount_charged: i64,
    pub currency: String,
    pub invoice_id: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub subscription: SubscriptionOverview,
}

/// `DELETE /api/billing/modules/{service}` and `POST .../resume`: when the module now ends.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleChangeView {
    pub service: ServiceModule,
    /// The paid-through date it ends on; null when it renews.
    pub ends_at: Option<Timestamp>,
    pub subscription: SubscriptionOverview,
}

/// `POST /api/billing/interval`: what was switched and charged.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntervalChangeView {
    pub interval: BillingInterval,
    pub amount_charged: i64,
    pub currency: String,
    pub invoice_id: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub subscription: SubscriptionOverview,
}
