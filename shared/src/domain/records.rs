//! Billing records as this service stores and serves them: a Stripe-independent copy of the
//! parts of Stripe's objects the product needs.

use serde::{Deserialize, Serialize};

use super::catalog::{BillingInterval, Currency};
use super::ids::{CustomerId, InvoiceId, OrgId, PaymentMethodId, SubscriptionId};
use super::module::ServiceModule;
use super::time::Timestamp;

/// Every status Stripe gives a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 8] = [
        SubscriptionStatus::Incomplete,
        SubscriptionStatus::IncompleteExpired,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Canceled,
        SubscriptionStatus::Unpaid,
        SubscriptionStatus::Paused,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::IncompleteExpired => "incomplete_expired",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Unpaid => "unpaid",
            SubscriptionStatus::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Stripe never moves a subscription out of these states; a stored copy in one of them must
    /// never be replaced by a live status from a stale read.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionItem {
    pub id: String,
    pub price_id: String,
    pub lookup_key: Option<String>,
    /// `None` when the price is not one of the catalog's (it then grants nothing).
    pub module: Option<ServiceModule>,
    pub interval: Option<BillingInterval>,
    pub quantity: u64,
    pub unit_amount: Option<i64>,
    pub currency: Option<Currency>,
    /// The price's product, to map a price with neither lookup key nor module metadata by its
    /// product's `service_module` metadata.
    #[serde(default)]
    pub product_id: Option<String>,
    /// When this module stops, by Stripe's own scheduled change: the end of the period it was
    /// paid for, when it was removed at period end (a subscription schedule whose next phase
    /// drops it) or the whole plan cancels then. `None`: it renews.
    #[serde(default)]
    pub ends_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub customer_id: CustomerId,
    pub status: SubscriptionStatus,
    pub current_period_start: Option<Timestamp>,
    pub current_period_end: Option<Timestamp>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<Timestamp>,
    pub canceled_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub trial_end: Option<Timestamp>,
    pub created: Option<Timestamp>,
    pub items: Vec<SubscriptionItem>,
    /// Where Checkout puts the card it collected when the customer has no default of its own.
    #[serde(default)]
    pub default_payment_method: Option<PaymentMethodId>,
    /// When the subscription became past due, by Stripe's clock: the start of the period
    /// whose invoice failed (`current_period_start`), else when this service first saw it
    /// past due. The start of the grace period; kept across syncs while the status stays
    /// past_due, so neither an outage nor a late sync lengthens the grace.
    pub past_due_since: Option<Timestamp>,
    /// Ended by this service because Stripe could not show it (a 404 backed by a deletion
    /// event), not by Stripe's own `canceled`: such a copy is not terminal, and a later live
    /// read of the subscription replaces it.
    #[serde(default)]
    pub ended_unseen: bool,
    /// The `trial_end` that Stripe's `customer.subscription.trial_will_end` announced (three
    /// days before it): kept across syncs while the trial end stays the same, so the buyer is
    /// told "trial ends on DATE; add a card" until the trial ends or changes.
    #[serde(default)]
    pub trial_end_notice: Option<Timestamp>,
    /// The subscription schedule attached to it (Stripe's `schedule`), if any.
    #[serde(default)]
    pub schedule_id: Option<String>,
    /// The invoice a `past_due`, `unpaid` or `incomplete` subscription owes (its latest, open),
    /// so the buyer can be sent to pay it.
    #[serde(default)]
    pub open_invoice: Option<OpenInvoice>,
}

/// An invoice waiting to be paid, as the buyer is shown it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenInvoice {
    pub id: InvoiceId,
    /// Minor units (cents) of `currency`.
    pub amount_due: i64,
    pub currency: String,
    pub hosted_invoice_url: Option<String>,
    pub due_date: Option<Timestamp>,
}

impl Subscription {
    pub fn modules(&self) -> impl Iterator<Item = ServiceModule> + '_ {
        self.items.iter().filter_map(|i| i.module)
    }

    /// The plan's interval (Stripe refuses mixed intervals on one subscription, so the first
    /// item with one tells).
    pub fn interval(&self) -> Option<BillingInterval> {
        self.items.iter().find_map(|i| i.interval)
    }

    /// Whether a module of it is set to end (removed at period end, or the plan cancels).
    pub fn has_scheduled_end(&self) -> bool {
        self.items.iter().any(|i| i.ends_at.is_some())
    }

    /// Whether no read from Stripe may replace this copy: Stripe's own `canceled` or
    /// `incomplete_expired`, not an end this service inferred from a 404.
    pub fn is_final(&self) -> bool {
        self.status.is_terminal() && !self.ended_unseen
    }

    /// The grace-period start: the earliest of the stored copy's (while it stays past due),
    /// the start of the unpaid period (Stripe's time of the renewal that failed) and `seen_at`.
    pub fn with_grace_start_from(
        mut self,
        stored: Option<&Subscription>,
        seen_at: Timestamp,
    ) -> Self {
        self.past_due_since = match self.status {
            SubscriptionStatus::PastDue => {
                let earlier = stored
                    .filter(|s| s.status == SubscriptionStatus::PastDue)
                    .and_then(|s| s.past_due_since);
                [earlier, self.current_period_start, Some(seen_at)]
                    .into_iter()
                    .flatten()
                    .min()
            }
            _ => None,
        };
        // The trial-end notice outlives the sync that brought it, for the same trial end.
        if self.trial_end_notice.is_none() {
            self.trial_end_notice = stored
                .and_then(|s| s.trial_end_notice)
                .filter(|notice| Some(*notice) == self.trial_end);
        }
        self
    }

    /// Whether Stripe announced the end of the trial this subscription is in.
    pub fn trial_ending(&self) -> bool {
        self.status == SubscriptionStatus::Trialing
            && self.trial_end.is_some()
            && self.trial_end_notice == self.trial_end
    }
}

#[cfg(test)]
impl Subscription {
    /// For unit tests: an active subscription of `cus_1`, period 1 000 – 2 000, one item per
    /// module (`si_<module>`, `price_<module>`, monthly, quantity 1).
    pub(crate) fn sample(id: &str, modules: &[ServiceModule]) -> Self {
        Subscription {
            id: SubscriptionId::parse(id).expect("test id"),
            customer_id: CustomerId::parse("cus_1").expect("test id"),
            status: SubscriptionStatus::Active,
            current_period_start: Some(Timestamp::from_unix(1_000)),
            current_period_end: Some(Timestamp::from_unix(2_000)),
            cancel_at_period_end: false,
            cancel_at: None,
            canceled_at: None,
            ended_at: None,
            trial_end: None,
            created: Some(Timestamp::from_unix(1)),
            items: modules
                .iter()
                .map(|m| SubscriptionItem {
                    id: format!("si_{m}"),
                    price_id: format!("price_{m}"),
                    lookup_key: None,
                    module: Some(*m),
                    interval: Some(BillingInterval::Month),
                    quantity: 1,
                    unit_amount: None,
                    currency: None,
                    product_id: None,
                    ends_at: None,
                })
                .collect(),
            default_payment_method: None,
            past_due_since: None,
            ended_unseen: false,
            trial_end_notice: None,
            schedule_id: None,
            open_invoice: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Uncollectible,
    Void,
}

impl InvoiceStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => InvoiceStatus::Draft,
            "open" => InvoiceStatus::Open,
            "paid" => InvoiceStatus::Paid,
            "uncollectible" => InvoiceStatus::Uncollectible,
            "void" => InvoiceStatus::Void,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: InvoiceId,
    pub customer_id: CustomerId,
    pub subscription_id: Option<SubscriptionId>,
    pub number: Option<String>,
    pub status: Option<InvoiceStatus>,
    /// Minor units (cents) of `currency`.
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    pub currency: String,
    pub created: Timestamp,
    pub due_date: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub attempt_count: u64,
    /// Before discounts and tax (cents); `None` on copies stored before it was kept.
    #[serde(default)]
    pub subtotal: Option<i64>,
    /// Tax (cents), 0 without any.
    #[serde(default)]
    pub tax: Option<i64>,
    /// Discounts (cents, positive), 0 without any.
    #[serde(default)]
    pub discount: Option<i64>,
    /// After discounts and tax (cents).
    #[serde(default)]
    pub total: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardDetails {
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub id: PaymentMethodId,
    pub customer_id: CustomerId,
    /// Stripe's payment method type: `card`, `sepa_debit`, `us_bank_account`, ...
    pub kind: String,
    pub card: Option<CardDetails>,
    /// Bank debits (`sepa_debit`, `us_bank_account`, `bacs_debit`, `au_becs_debit`, ...).
    #[serde(default)]
    pub bank_account: Option<BankAccountDetails>,
    /// `link`: the Link account's email.
    #[serde(default)]
    pub email: Option<String>,
    pub created: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccountDetails {
    pub bank_name: Option<String>,
    pub last4: String,
    pub country: Option<String>,
}

/// The link between an organization and its one Stripe customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingProfile {
    pub org_id: OrgId,
    pub customer_id: CustomerId,
    pub default_payment_method: Option<PaymentMethodId>,
    pub created_at: Timestamp,
}
