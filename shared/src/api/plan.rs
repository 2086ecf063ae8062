//! Adding modules to the plan an org already pays for: `POST /api/billing/preview` shows the
//! charge, `POST /api/billing/modules` makes it. An org's modules of one interval live on one
//! Stripe subscription (one item per module, one invoice per period): the first purchase of
//! an interval goes through Checkout, every later one adds items to that subscription.
//!
//! The add is charged at once, prorated to the current period (`always_invoice`), for the
//! same `proration_date` the preview priced, so the charge equals what was shown. It uses
//! `payment_behavior=pending_if_incomplete`: when the charge fails or needs 3-D Secure,
//! Stripe leaves the items as they were and keeps the change pending on an open invoice
//! (whose hosted page lets the buyer pay or authenticate), applying it only once paid. So a
//! module is never granted for a charge that failed, and a card that needs authentication
//! still has a way to finish. (`error_if_incomplete` would answer 402 for a 3-D Secure card
//! too, leaving that buyer no way to finish on-session.)

use std::collections::HashMap;

use lambda_http::http::StatusCode;
use serde::Deserialize;

use super::checkout::{CheckoutOffer, parse_purchase, unprocessable};
use super::views::{
    NextInvoiceView, PlanChangeView, PlanPreviewView, PreviewLineView, PurchaseMode,
};
use super::{already_subscribed, held_in, price_ids, request_key, require_admin};
use crate::domain::{
    BillingInterval, Catalog, CustomerId, OrgId, Plan, ProrationDateError, ServiceModule,
    Subscription, Timestamp, check_proration_date, plan_for,
};
use crate::http::ApiError;
use crate::routes::Role;
use crate::stripe::requests::{
    CreatePreviewInvoice, CreatePreviewInvoiceSubscriptionDetails,
    CreatePreviewInvoiceSubscriptionDetailsItems,
    CreatePreviewInvoiceSubscriptionDetailsProrationBehavior as PreviewProration,
    UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionPaymentBehavior,
    UpdateSubscriptionProrationBehavior,
};
use crate::stripe::{
    StripeApiError, StripeInvoice, StripePrice, StripeSubscription, canonical_encoding,
};
use crate::sync::Syncer;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreviewBody {
    services: Vec<String>,
    interval: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddBody {
    services: Vec<String>,
    interval: String,
    proration_date: i64,
}

/// A validated preview or add request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRequest {
    pub modules: Vec<ServiceModule>,
    pub interval: BillingInterval,
    /// The preview's proration date (the add only).
    pub proration_date: Option<Timestamp>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request(format!("Body must be JSON: {shape}.")))
}

/// `{"services": [...], "interval": "month"|"year"}`
pub fn parse_preview(body: &[u8], catalog: &Catalog) -> Result<PlanRequest, ApiError> {
    let body: PreviewBody = parse_body(body, r#"{"services":[...],"interval":"month"|"year"}"#)?;
    let (modules, interval) = parse_purchase(&body.services, &body.interval, catalog)?;
    Ok(PlanRequest {
        modules,
        interval,
        proration_date: None,
    })
}

/// `{"services": [...], "interval": "month"|"year", "prorationDate": <from the preview>}`
pub fn parse_add(body: &[u8], catalog: &Catalog) -> Result<PlanRequest, ApiError> {
    let body: AddBody = parse_body(
        body,
        r#"{"services":[...],"interval":"month"|"year","prorationDate":<the preview's>}"#,
    )?;
    let (modules, interval) = parse_purchase(&body.services, &body.interval, catalog)?;
    if body.proration_date <= 0 {
        return Err(unprocessable(
            "invalid_proration_date",
            "prorationDate must be the preview's (Unix seconds): preview first.",
        ));
    }
    Ok(PlanRequest {
        modules,
        interval,
        proration_date: Some(Timestamp::from_unix(body.proration_date)),
    })
}

/// One item of a charged plan change: a new item of `price` (an addition), or the existing
/// item `id` moved to `price` (an interval switch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemChange {
    pub id: Option<String>,
    pub price: String,
    pub quantity: u64,
}

impl ItemChange {
    pub fn new_price(price: &str) -> Self {
        Self {
            id: None,
            price: price.to_owned(),
            quantity: 1,
        }
    }
}

/// The update that makes `items` on `subscription`, charged now for the rest of the period as
/// priced at `proration_date`, applied only once that charge is paid.
pub fn charged_change_request(
    subscription: &str,
    items: &[ItemChange],
    proration_date: Timestamp,
) -> UpdateSubscription {
    let items: Vec<UpdateSubscriptionItems> = items
        .iter()
        .map(|change| {
            let mut item = UpdateSubscriptionItems::new();
            item.id = change.id.clone();
            item.price = Some(change.price.clone());
            item.quantity = Some(change.quantity);
            item
        })
        .collect();
    UpdateSubscription::new(subscription)
        .items(items)
        .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
        .proration_date(proration_date.unix())
        .payment_behavior(UpdateSubscriptionPaymentBehavior::PendingIfIncomplete)
        .expand(vec!["latest_invoice".to_owned()])
}

/// The update that adds one item per price to `subscription` (see [`charged_change_request`]).
pub fn add_items_request(
    subscription: &str,
    price_ids: &[String],
    proration_date: Timestamp,
) -> UpdateSubscription {
    let items: Vec<ItemChange> = price_ids.iter().map(|p| ItemChange::new_price(p)).collect();
    charged_change_request(subscription, &items, proration_date)
}

/// Stripe's preview of the same change: with `AlwaysInvoice` and the change's proration
/// date, the invoice charged at once; with `None` (and no date: Stripe refuses a proration
/// date without prorations) the next invoice with the new items.
pub fn change_preview_request(
    customer: &CustomerId,
    subscription: &str,
    items: &[ItemChange],
    proration_date: Option<Timestamp>,
    behavior: PreviewProration,
) -> CreatePreviewInvoice {
    let items: Vec<CreatePreviewInvoiceSubscriptionDetailsItems> = items
        .iter()
        .map(|change| {
            let mut item = CreatePreviewInvoiceSubscriptionDetailsItems::new();
            item.id = change.id.clone();
            item.price = Some(change.price.clone());
            item.quantity = Some(change.quantity);
            item
        })
        .collect();
    let mut details = CreatePreviewInvoiceSubscriptionDetails::new();
    details.items = Some(items);
    details.proration_date = proration_date.map(Timestamp::unix);
    details.proration_behavior = Some(behavior);
    CreatePreviewInvoice::new()
        .customer(customer.as_str())
        .subscription(subscription)
        .subscription_details(details)
}

/// The preview of adding one item per price (see [`change_preview_request`]).
pub fn preview_request(
    customer: &CustomerId,
    subscription: &str,
    price_ids: &[String],
    proration_date: Option<Timestamp>,
    behavior: PreviewProration,
) -> CreatePreviewInvoice {
    let items: Vec<ItemChange> = price_ids.iter().map(|p| ItemChange::new_price(p)).collect();
    change_preview_request(customer, subscription, &items, proration_date, behavior)
}

/// The lines of a Stripe invoice, each named by the module its price sells.
pub(super) fn lines_of(
    invoice: &StripeInvoice,
    modules_by_price: &HashMap<String, ServiceModule>,
) -> Vec<PreviewLineView> {
    invoice
        .lines
        .iter()
        .flat_map(|l| &l.data)
        .map(|line| PreviewLineView {
            description: line.description.clone().unwrap_or_default(),
            amount: line.amount.unwrap_or(0),
            service: line
                .price_id()
                .and_then(|p| modules_by_price.get(p).copied()),
            proration: line.is_proration(),
            period_start: line
                .period
                .as_ref()
                .and_then(|p| p.start)
                .map(Timestamp::from_unix),
            period_end: line
                .period
                .as_ref()
                .and_then(|p| p.end)
                .map(Timestamp::from_unix),
        })
        .collect()
}

/// What an invoice charges: `amount_due` (after credit and discounts), else its total.
pub(super) fn charged(invoice: &StripeInvoice) -> i64 {
    invoice.amount_due.or(invoice.total).unwrap_or(0)
}

/// Checkout's first invoice for prices with no subscription of the interval yet: each
/// module at its full price for one period, renewing at the same amount a period later.
/// With a free trial of `trial_days`, nothing is due today and the first charge is at the
/// trial's end.
pub fn checkout_preview(
    request: &PlanRequest,
    prices: &[(ServiceModule, StripePrice)],
    catalog: &Catalog,
    now: Timestamp,
    trial_days: Option<u32>,
) -> PlanPreviewView {
    let months = match request.interval {
        BillingInterval::Month => 1,
        BillingInterval::Year => 12,
    };
    let start = trial_days.map_or(now, |days| now.plus_seconds(i64::from(days) * 86_400));
    let end = start.plus_months(months);
    let lines: Vec<PreviewLineView> = prices
        .iter()
        .map(|(module, price)| PreviewLineView {
            description: match trial_days {
                Some(days) => format!(
                    "1 × {} ({days}-day free trial)",
                    catalog.entry(*module).name
                ),
                None => format!("1 × {}", catalog.entry(*module).name),
            },
            amount: if trial_days.is_some() {
                0
            } else {
                price.unit_amount.unwrap_or(0)
            },
            service: Some(*module),
            proration: false,
            period_start: Some(now),
            period_end: Some(if trial_days.is_some() { start } else { end }),
        })
        .collect();
    let full: i64 = prices.iter().map(|(_, p)| p.unit_amount.unwrap_or(0)).sum();
    PlanPreviewView {
        mode: PurchaseMode::Checkout,
        interval: request.interval,
        currency: currency_of(prices.iter().map(|(_, p)| p)),
        services: request.modules.clone(),
        proration_date: None,
        trial_days,
        amount_due_today: lines.iter().map(|l| l.amount).sum(),
        next_invoice: NextInvoiceView {
            amount: full,
            date: Some(if trial_days.is_some() { start } else { end }),
        },
        lines,
    }
}

pub(super) fn currency_of<'a>(mut prices: impl Iterator<Item = &'a StripePrice>) -> String {
    prices
        .find_map(|p| p.currency.clone())
        .unwrap_or_else(|| "usd".to_owned())
}

/// The org's subscriptions as Stripe has them now (each stored on the way), with the stored
/// (module-resolved) copies.
pub(super) async fn current_subscriptions(
    syncer: &Syncer,
    org: &OrgId,
    customer: &CustomerId,
) -> Result<(Vec<StripeSubscription>, Vec<Subscription>), ApiError> {
    let raw = syncer.sync_customer_subscriptions(customer).await?;
    let stored = syncer
        .store
        .subscriptions(org)
        .await?
        .into_iter()
        .map(|s| s.subscription)
        .collect();
    Ok((raw, stored))
}

/// The plan owes an invoice: the answer names its page.
pub(super) async fn payment_past_due(
    syncer: &Syncer,
    raw: Option<&StripeSubscription>,
) -> ApiError {
    let url = match raw {
        Some(raw) => pending_invoice_url(syncer, raw).await,
        None => None,
    };
    ApiError::conflict(
        "payment_past_due",
        "This plan has an unpaid invoice: pay it first, then add modules.",
    )
    .with_invoice_url(url)
}

pub(super) fn plan_canceling(plan: &Subscription) -> ApiError {
    ApiError::conflict(
        "plan_canceling",
        match plan.current_period_end {
            Some(end) => format!(
                "This plan is set to end (period end {end}): keep it in Manage billing first, \
                 then add modules."
            ),
            None => "This plan is set to end: keep it in Manage billing first, then add modules."
                .to_owned(),
        },
    )
}

/// A plan with a module set to end takes no other change until that is kept or done: Stripe
/// applies the schedule's next phase as it was written, so an item added or repriced now
/// would be dropped or reverted at the phase change.
pub(super) fn refuse_scheduled_change(plan: &Subscription) -> Result<(), ApiError> {
    let Some(end) = plan.items.iter().find_map(|i| i.ends_at) else {
        return Ok(());
    };
    let names: Vec<&str> = plan
        .items
        .iter()
        .filter(|i| i.ends_at.is_some())
        .filter_map(|i| i.module)
        .map(|m| Catalog::standard().entry(m).name)
        .collect();
    Err(ApiError::conflict(
        "change_scheduled",
        format!(
            "{} is set to end on {}: keep it first, or make this change after that date.",
            names.join(", "),
            end.date_text()
        ),
    ))
}

/// The open invoice of a change still waiting for its payment (or of a plan that owes one).
pub(super) async fn pending_invoice_url(
    syncer: &Syncer,
    raw: &StripeSubscription,
) -> Option<String> {
    let invoice = raw.latest_invoice.as_ref()?;
    if let Some(object) = invoice.object() {
        return object.hosted_invoice_url.clone();
    }
    match syncer.stripe.invoice(invoice.id()).await {
        Ok(invoice) => invoice.hosted_invoice_url,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the pending change's invoice");
            None
        }
    }
}

pub(super) async fn payment_pending(syncer: &Syncer, raw: &StripeSubscription) -> ApiError {
    ApiError::conflict(
        "payment_pending",
        "An earlier addition to this plan is waiting for its payment: finish paying its \
         invoice first.",
    )
    .with_invoice_url(pending_invoice_url(syncer, raw).await)
}

/// The org's customer, its subscriptions, the price ids of the request, and its plan of the
/// interval, refusing modules the org holds already.
struct Context {
    customer: CustomerId,
    raw: Vec<StripeSubscription>,
    stored: Vec<Subscription>,
    prices: Vec<(ServiceModule, StripePrice)>,
    /// Modules the org has had a free trial of.
    trialed: Vec<ServiceModule>,
}

impl Context {
    async fn load(
        syncer: &Syncer,
        org: &OrgId,
        request: &PlanRequest,
    ) -> Result<Option<Self>, ApiError> {
        let catalog = Catalog::standard();
        let Some(profile) = syncer.store.billing_profile(org).await? else {
            return Ok(None);
        };
        let customer = profile.customer_id;
        let ((raw, stored), prices, trialed) = tokio::try_join!(
            current_subscriptions(syncer, org, &customer),
            price_ids(syncer, &catalog, &request.modules, request.interval),
            async { Ok(syncer.store.trialed_modules(org).await?) },
        )?;
        let held = held_in(&stored, &request.modules);
        if !held.is_empty() {
            return Err(already_subscribed(&held));
        }
        Ok(Some(Self {
            customer,
            raw,
            stored,
            prices,
            trialed,
        }))
    }

    /// Refuses to add, to a plan in its free trial, a module the org has had before (a trial
    /// of, or in an ended subscription): Stripe's trial covers every item, so it would ride
    /// the plan's trial for free, a second trial.
    fn refuse_second_trial(
        &self,
        plan: &Subscription,
        modules: &[ServiceModule],
    ) -> Result<(), ApiError> {
        if plan.status != crate::domain::SubscriptionStatus::Trialing {
            return Ok(());
        }
        let had = super::had_before(modules, &self.trialed, &self.stored);
        if had.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = had.iter().map(|m| m.as_str()).collect();
        Err(ApiError::conflict(
            "trial_used",
            format!(
                "The plan is in its free trial, and the organization has had {} before: add it \
                 when the trial ends.",
                names.join(", ")
            ),
        ))
    }

    fn raw_of(&self, subscription: &Subscription) -> Option<&StripeSubscription> {
        self.raw.iter().find(|r| r.id == subscription.id.as_str())
    }

    fn price_ids(&self) -> Vec<String> {
        self.prices.iter().map(|(_, p)| p.id.clone()).collect()
    }

    /// Price id → module, for naming invoice lines: the request's prices and the plan's.
    fn modules_by_price(&self, plan: &Subscription) -> HashMap<String, ServiceModule> {
        let mut map: HashMap<String, ServiceModule> = self
            .prices
            .iter()
            .map(|(m, p)| (p.id.clone(), *m))
            .collect();
        for item in &plan.items {
            if let Some(module) = item.module {
                map.insert(item.price_id.clone(), module);
            }
        }
        map
    }
}

/// `POST /api/billing/preview`
pub async fn preview(
    syncer: &Syncer,
    offer: &CheckoutOffer,
    org: &OrgId,
    role: Role,
    body: &[u8],
) -> Result<PlanPreviewView, ApiError> {
    require_admin(role)?;
    let catalog = Catalog::standard();
    let request = parse_preview(body, &catalog)?;
    let now = Timestamp::now();
    let Some(context) = Context::load(syncer, org, &request).await? else {
        let (prices, trialed) = tokio::try_join!(
            price_ids(syncer, &catalog, &request.modules, request.interval),
            async { Ok(syncer.store.trialed_modules(org).await?) },
        )?;
        let trial = super::trial_for(offer, &request.modules, &trialed, &[]);
        return Ok(checkout_preview(&request, &prices, &catalog, now, trial));
    };
    let plan = match plan_for(&context.stored, request.interval) {
        Plan::None => {
            let trial =
                super::trial_for(offer, &request.modules, &context.trialed, &context.stored);
            return Ok(checkout_preview(
                &request,
                &context.prices,
                &catalog,
                now,
                trial,
            ));
        }
        Plan::Blocked(owing) => return Err(payment_past_due(syncer, context.raw_of(owing)).await),
        Plan::Ending(ending) => return Err(plan_canceling(ending)),
        Plan::Live(plan) => plan,
    };
    if let Some(raw) = context.raw_of(plan).filter(|r| r.pending_update.is_some()) {
        return Err(payment_pending(syncer, raw).await);
    }
    refuse_scheduled_change(plan)?;
    context.refuse_second_trial(plan, &request.modules)?;
    let prices = context.price_ids();
    let today = preview_request(
        &context.customer,
        plan.id.as_str(),
        &prices,
        Some(now),
        PreviewProration::AlwaysInvoice,
    );
    let renewal = preview_request(
        &context.customer,
        plan.id.as_str(),
        &prices,
        None,
        PreviewProration::None,
    );
    // Independent: both run at once, so the buyer waits for one Stripe round trip.
    let (today, renewal) = tokio::try_join!(
        syncer.stripe.preview_invoice(&today),
        syncer.stripe.preview_invoice(&renewal),
    )?;
    let names = context.modules_by_price(plan);
    let next_date = renewal
        .lines
        .iter()
        .flat_map(|l| &l.data)
        .filter_map(|l| l.period.as_ref()?.start)
        .min()
        .map(Timestamp::from_unix)
        .or(plan.current_period_end);
    Ok(PlanPreviewView {
        mode: PurchaseMode::Add,
        interval: request.interval,
        currency: today
            .currency
            .clone()
            .unwrap_or_else(|| currency_of(context.prices.iter().map(|(_, p)| p))),
        services: request.modules.clone(),
        proration_date: Some(now),
        trial_days: None,
        amount_due_today: charged(&today),
        next_invoice: NextInvoiceView {
            amount: charged(&renewal),
            date: next_date,
        },
        lines: lines_of(&today, &names),
    })
}

/// The add made no invoice of its own (a replayed answer, or a change costing nothing): what
/// counts is the subscription as Stripe has it now, read again and stored.
async fn settled_without_new_invoice(
    syncer: &Syncer,
    offer: &CheckoutOffer,
    org: &OrgId,
    plan: &Subscription,
    request: &PlanRequest,
) -> Result<PlanChangeView, ApiError> {
    let fetched_at = crate::domain::FetchTime::now();
    let raw = syncer.stripe.subscription(plan.id.as_str()).await?;
    let pending = match raw.pending_update {
        Some(_) => Some(pending_invoice_url(syncer, &raw).await),
        None => None,
    };
    syncer.store_read(&raw, fetched_at, None).await?;
    tracing::info!(org = %org, subscription = %plan.id, "addition settled by a re-read");
    if let Some(url) = pending {
        return Err(payment_incomplete(url));
    }
    let stored = super::stored_subscriptions(&syncer.store, org).await?;
    let now_held = held_in(&stored, &request.modules);
    if now_held.len() < request.modules.len() {
        return Err(ApiError::conflict(
            "preview_expired",
            "The price shown is out of date: preview again to see today's price.",
        ));
    }
    Ok(PlanChangeView {
        added: request.modules.clone(),
        amount_charged: 0,
        currency: "usd".to_owned(),
        invoice_id: None,
        hosted_invoice_url: None,
        subscription: super::subscription_offered(&syncer.store, org, syncer.policy, offer).await?,
    })
}

pub(super) fn payment_incomplete(hosted_invoice_url: Option<String>) -> ApiError {
    ApiError::new(
        StatusCode::PAYMENT_REQUIRED,
        "payment_incomplete",
        "The charge did not go through (the card was declined or needs confirmation), so \
         nothing was added. Open the invoice to pay or confirm it, and the modules are added \
         then.",
    )
    .with_invoice_url(hosted_invoice_url)
}

pub(super) fn no_subscription(interval: BillingInterval) -> ApiError {
    ApiError::conflict(
        "no_subscription",
        format!(
            "The organization has no {}ly plan to add to: subscribe through checkout.",
            interval.as_str()
        ),
    )
}

/// `POST /api/billing/modules`
pub async fn add_modules(
    syncer: &Syncer,
    offer: &CheckoutOffer,
    org: &OrgId,
    role: Role,
    body: &[u8],
) -> Result<PlanChangeView, ApiError> {
    require_admin(role)?;
    let catalog = Catalog::standard();
    let request = parse_add(body, &catalog)?;
    let Some(context) = Context::load(syncer, org, &request).await? else {
        return Err(no_subscription(request.interval));
    };
    let plan = match plan_for(&context.stored, request.interval) {
        Plan::None => return Err(no_subscription(request.interval)),
        Plan::Blocked(owing) => return Err(payment_past_due(syncer, context.raw_of(owing)).await),
        Plan::Ending(ending) => return Err(plan_canceling(ending)),
        Plan::Live(plan) => plan,
    };
    if let Some(raw) = context.raw_of(plan).filter(|r| r.pending_update.is_some()) {
        return Err(payment_pending(syncer, raw).await);
    }
    refuse_scheduled_change(plan)?;
    context.refuse_second_trial(plan, &request.modules)?;
    // A schedule whose change already happened (its last phase running) would apply its
    // phase again at its end without the new items: released first, so they renew.
    if let Some(schedule) = &plan.schedule_id {
        syncer.stripe.release_schedule(schedule).await?;
    }
    let date = request.proration_date.unwrap_or_else(Timestamp::now);
    match check_proration_date(date, Timestamp::now(), plan.current_period_start) {
        Ok(()) => {}
        // A date no preview gave (in the future) is answered as an old one: preview again.
        Err(ProrationDateError::InTheFuture | ProrationDateError::Expired) => {
            return Err(ApiError::conflict(
                "preview_expired",
                "The price shown is out of date: preview again to see today's price.",
            ));
        }
    }
    let update = add_items_request(plan.id.as_str(), &context.price_ids(), date);
    // The same preview confirmed twice (a double click, two admins on one preview) is one
    // change: Stripe replays the first answer. A different preview makes a different key;
    // Stripe then refuses the second copy of a price on the subscription.
    // No time window in the key: the proration date in the request makes it one preview's,
    // and a window boundary between two confirms would make two keys.
    let key = request_key("add", org, &canonical_encoding(&update));
    let previous_invoice = context
        .raw_of(plan)
        .and_then(|r| r.latest_invoice.as_ref())
        .map(|i| i.id().to_owned());
    let started = Timestamp::now();
    let fetched_at = crate::domain::FetchTime::now();
    let updated = match syncer.stripe.update_subscription(&update, &key).await {
        Ok(updated) => updated,
        Err(StripeApiError::Rejected { status: 400, code }) => {
            tracing::warn!(?code, "Stripe refused the addition");
            let (_, stored) = current_subscriptions(syncer, org, &context.customer).await?;
            let held = held_in(&stored, &request.modules);
            return Err(if held.is_empty() {
                ApiError::bad_gateway("Stripe refused the change.")
            } else {
                already_subscribed(&held)
            });
        }
        Err(e) => return Err(e.into()),
    };
    let Some(charge) = Charge::made_now(&updated, previous_invoice.as_deref(), started) else {
        return settled_without_new_invoice(syncer, offer, org, plan, &request).await;
    };
    charge.settle(syncer, &updated, fetched_at).await?;
    tracing::info!(org = %org, subscription = %plan.id, "modules added to the plan");
    let overview = super::subscription_offered(&syncer.store, org, syncer.policy, offer).await?;
    Ok(PlanChangeView {
        added: request.modules,
        amount_charged: charge.amount(),
        currency: charge
            .invoice
            .currency
            .clone()
            .unwrap_or_else(|| currency_of(context.prices.iter().map(|(_, p)| p))),
        hosted_invoice_url: charge.invoice.hosted_invoice_url.clone(),
        invoice_id: Some(charge.invoice.id),
        subscription: overview,
    })
}

/// The invoice a plan change (an addition, an interval switch) made, charged at once.
pub(super) struct Charge {
    pub invoice: StripeInvoice,
}

impl Charge {
    /// The update's invoice when this request made it: Stripe replays a reused key's first
    /// answer, which may be stale (the module removed since), and a change costing nothing
    /// makes no invoice. `None`: settle by a re-read instead.
    pub fn made_now(
        updated: &StripeSubscription,
        previous_invoice: Option<&str>,
        started: Timestamp,
    ) -> Option<Self> {
        let invoice = updated.latest_invoice.as_ref()?.object()?;
        (Some(invoice.id.as_str()) != previous_invoice
            && invoice.created.unwrap_or(0) >= started.unix() - super::REPLAY_AGE_SECONDS)
            .then(|| Self {
                invoice: invoice.clone(),
            })
    }

    /// Stores the subscription as Stripe answered: the new items when paid, the old ones
    /// while the change waits for its payment, so modules open at once when the charge
    /// succeeded and not before. A pending change answers 402 with the invoice's page.
    pub async fn settle(
        &self,
        syncer: &Syncer,
        updated: &StripeSubscription,
        fetched_at: crate::domain::FetchTime,
    ) -> Result<(), ApiError> {
        syncer.store_read(updated, fetched_at, None).await?;
        if updated.pending_update.is_some() {
            return Err(payment_incomplete(self.invoice.hosted_invoice_url.clone()));
        }
        Ok(())
    }

    /// What was charged: the amount paid, else what the invoice asks.
    pub fn amount(&self) -> i64 {
        self.invoice
            .amount_paid
            .unwrap_or_else(|| charged(&self.invoice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_add_charges_now_for_the_previewed_instant_and_waits_for_payment() {
        let update = add_items_request(
            "sub_1",
            &["price_email".to_owned(), "price_social".to_owned()],
            Timestamp::from_unix(1_796_119_200),
        );
        let form = canonical_encoding(&update);
        for pair in [
            "items[0][price]=price_email",
            "items[0][quantity]=1",
            "items[1][price]=price_social",
            "proration_behavior=always_invoice",
            "proration_date=1796119200",
            "payment_behavior=pending_if_incomplete",
            "expand[0]=latest_invoice",
        ] {
            assert!(form.contains(pair), "{pair} missing from {form}");
        }
        assert!(
            !form.contains("items[0][id]"),
            "an add names no existing item: {form}"
        );
    }

    #[test]
    fn the_preview_prices_the_same_items_at_the_same_instant() {
        let customer = CustomerId::parse("cus_1").unwrap();
        let preview = preview_request(
            &customer,
            "sub_1",
            &["price_email".to_owned()],
            Some(Timestamp::from_unix(1_796_119_200)),
            PreviewProration::AlwaysInvoice,
        );
        let form = canonical_encoding(&preview);
        for pair in [
            "customer=cus_1",
            "subscription=sub_1",
            "subscription_details[items][0][price]=price_email",
            "subscription_details[proration_date]=1796119200",
            "subscription_details[proration_behavior]=always_invoice",
        ] {
            assert!(form.contains(pair), "{pair} missing from {form}");
        }
        let renewal = preview_request(
            &customer,
            "sub_1",
            &["price_email".to_owned()],
            None,
            PreviewProration::None,
        );
        let form = canonical_encoding(&renewal);
        assert!(form.contains("subscription_details[proration_behavior]=none"));
        assert!(
            !form.contains("proration_date"),
            "Stripe refuses a proration date without prorations: {form}"
        );
    }

    #[test]
    fn an_add_needs_the_previews_date() {
        let catalog = Catalog::standard();
        let ok = parse_add(
            br#"{"services":["EmailAutomation"],"interval":"month","prorationDate":1796119200,"orgId":"x"}"#,
            &catalog,
        )
        .unwrap();
        assert_eq!(ok.proration_date, Some(Timestamp::from_unix(1_796_119_200)));
        for body in [
            &br#"{"services":["EmailAutomation"],"interval":"month"}"#[..],
            br#"{"services":["EmailAutomation"],"interval":"month","prorationDate":"soon"}"#,
        ] {
            let e = parse_add(body, &catalog).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
        for date in [0, -5] {
            let body = format!(
                r#"{{"services":["EmailAutomation"],"interval":"month","prorationDate":{date}}}"#
            );
            let e = parse_add(body.as_bytes(), &catalog).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_proration_date")
            );
        }
        let e = parse_add(
            br#"{"services":[],"interval":"month","prorationDate":1}"#,
            &catalog,
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_services");
        assert_eq!(
            parse_add(b"nope", &catalog).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn a_first_purchase_previews_checkouts_first_invoice() {
        let catalog = Catalog::standard();
        let price = |id: &str, amount: i64| -> StripePrice {
            serde_json::from_value(
                serde_json::json!({"id": id, "unit_amount": amount, "currency": "usd"}),
            )
            .unwrap()
        };
        let request = PlanRequest {
            modules: vec![
                ServiceModule::LeadGeneration,
                ServiceModule::EmailAutomation,
            ],
            interval: BillingInterval::Month,
            proration_date: None,
        };
        let now = Timestamp::from_unix(1_796_119_200);
        let view = checkout_preview(
            &request,
            &[
                (ServiceModule::LeadGeneration, price("price_lead", 9900)),
                (ServiceModule::EmailAutomation, price("price_email", 4900)),
            ],
            &catalog,
            now,
            None,
        );
        assert_eq!(view.mode, PurchaseMode::Checkout);
        assert_eq!(view.amount_due_today, 14_800);
        assert_eq!(view.next_invoice.amount, 14_800);
        // 2027-01-01T10:00:00Z: one calendar month (31 days) later.
        assert_eq!(
            view.next_invoice.date,
            Some(Timestamp::from_unix(1_796_119_200 + 31 * 86_400))
        );
        assert_eq!(view.lines.len(), 2);
        assert!(view.proration_date.is_none());

        // With a 14-day trial: nothing today, the full price from the trial's end.
        let trial = checkout_preview(
            &request,
            &[
                (ServiceModule::LeadGeneration, price("price_lead", 9900)),
                (ServiceModule::EmailAutomation, price("price_email", 4900)),
            ],
            &catalog,
            now,
            Some(14),
        );
        assert_eq!(trial.trial_days, Some(14));
        assert_eq!(trial.amount_due_today, 0);
        assert_eq!(trial.next_invoice.amount, 14_800);
        assert_eq!(
            trial.next_invoice.date,
            Some(Timestamp::from_unix(1_796_119_200 + 14 * 86_400))
        );
        assert!(trial.lines.iter().all(|l| l.amount == 0));
    }
}
