//! Switching a plan between monthly and yearly: `POST /api/billing/interval/preview` shows
//! the charge, `POST /api/billing/interval` makes it.
//!
//! Every item moves to its module's price of the other interval in one subscription update,
//! so the plan stays one subscription and one invoice. Stripe resets the billing cycle when
//! the interval changes: the invoice made at once credits the unused time of the old prices
//! and charges the new period in full (`always_invoice`), for the previewed
//! `proration_date`, with `pending_if_incomplete` as in the add flow (a failed charge changes
//! nothing and leaves an invoice to pay). Automatic tax is a setting of the subscription, so
//! the switched plan keeps it.

use serde::Deserialize;

use super::checkout::{CheckoutOffer, unprocessable};
use super::plan::{
    Charge, ItemChange, change_preview_request, charged, charged_change_request, currency_of,
    current_subscriptions, lines_of, payment_past_due, payment_pending, plan_canceling,
    refuse_scheduled_change,
};
use super::views::{IntervalChangeView, NextInvoiceView, PlanPreviewView, PurchaseMode};
use super::{price_ids, request_key, require_admin, subscription_offered};
use crate::domain::{
    BillingInterval, Catalog, CustomerId, OrgId, Plan, ServiceModule, Subscription, Timestamp,
    check_proration_date, plan_for,
};
use crate::http::ApiError;
use crate::routes::Role;
use crate::stripe::requests::{
    CreatePreviewInvoice,
    CreatePreviewInvoiceSubscriptionDetailsProrationBehavior as PreviewProration,
    UpdateSubscription,
};
use crate::stripe::{StripePrice, StripeSubscription, canonical_encoding};
use crate::sync::Syncer;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SwitchBody {
    interval: String,
    proration_date: Option<i64>,
}

/// A validated switch request: the interval to move to, and (to commit) the preview's date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchRequest {
    pub interval: BillingInterval,
    pub proration_date: Option<Timestamp>,
}

/// `{"interval": "month"|"year"}`, plus `"prorationDate"` (the preview's) to commit.
pub fn parse_switch(body: &[u8], commit: bool) -> Result<SwitchRequest, ApiError> {
    let shape = if commit {
        r#"{"interval":"month"|"year","prorationDate":<the preview's>}"#
    } else {
        r#"{"interval":"month"|"year"}"#
    };
    let body: SwitchBody = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request(format!("Body must be JSON: {shape}.")))?;
    let interval: BillingInterval = body.interval.parse().map_err(|()| {
        unprocessable(
            "invalid_interval",
            "interval must be \"month\" or \"year\".",
        )
    })?;
    let proration_date = match (commit, body.proration_date) {
        (false, _) => None,
        (true, Some(date)) if date > 0 => Some(Timestamp::from_unix(date)),
        (true, _) => {
            return Err(unprocessable(
                "invalid_proration_date",
                "prorationDate must be the preview's (Unix seconds): preview first.",
            ));
        }
    };
    Ok(SwitchRequest {
        interval,
        proration_date,
    })
}

/// One item of the plan and the price of its module at the other interval.
#[derive(Debug, Clone)]
pub struct Repricing {
    pub item_id: String,
    pub module: ServiceModule,
    pub quantity: u64,
    pub price: StripePrice,
}

impl Repricing {
    fn change(&self) -> ItemChange {
        ItemChange {
            id: Some(self.item_id.clone()),
            price: self.price.id.clone(),
            quantity: self.quantity,
        }
    }
}

/// The switch of every item, charged now as priced at `proration_date`, applied only once
/// that charge is paid.
pub fn switch_request(
    subscription: &str,
    items: &[Repricing],
    proration_date: Timestamp,
) -> UpdateSubscription {
    let changes: Vec<ItemChange> = items.iter().map(Repricing::change).collect();
    charged_change_request(subscription, &changes, proration_date)
}

/// Stripe's preview of the switch: with `AlwaysInvoice` and the date, the invoice charged at
/// once (credit and new period); with `None` and no date, the new period's own invoice,
/// which is what every renewal after it charges.
pub fn switch_preview_request(
    customer: &CustomerId,
    subscription: &str,
    items: &[Repricing],
    proration_date: Option<Timestamp>,
    behavior: PreviewProration,
) -> CreatePreviewInvoice {
    let changes: Vec<ItemChange> = items.iter().map(Repricing::change).collect();
    change_preview_request(customer, subscription, &changes, proration_date, behavior)
}

/// The plan to switch and its items repriced.
struct Switch {
    customer: CustomerId,
    plan: Subscription,
    raw: Option<StripeSubscription>,
    items: Vec<Repricing>,
}

async fn load(syncer: &Syncer, org: &OrgId, target: BillingInterval) -> Result<Switch, ApiError> {
    let source = target.other();
    let no_plan = || {
        ApiError::conflict(
            "no_subscription",
            format!(
                "The organization has no {}ly plan to switch.",
                source.as_str()
            ),
        )
    };
    let Some(profile) = syncer.store.billing_profile(org).await? else {
        return Err(no_plan());
    };
    let (raw, stored) = current_subscriptions(syncer, org, &profile.customer_id).await?;
    let target_plan = plan_for(&stored, target);
    let plan = match plan_for(&stored, source) {
        Plan::None if target_plan != Plan::None => {
            return Err(ApiError::conflict(
                "already_on_interval",
                format!("The plan is already billed {}ly.", target.as_str()),
            ));
        }
        Plan::None => return Err(no_plan()),
        Plan::Blocked(owing) => {
            let raw = raw.iter().find(|r| r.id == owing.id.as_str());
            return Err(payment_past_due(syncer, raw).await);
        }
        Plan::Ending(ending) => return Err(plan_canceling(ending)),
        Plan::Live(plan) => plan.clone(),
    };
    if target_plan != Plan::None {
        return Err(ApiError::conflict(
            "plan_exists",
            format!(
                "The organization already has a {}ly plan: its modules and this plan's cannot \
                 be merged by a switch.",
                target.as_str()
            ),
        ));
    }
    let raw = raw.into_iter().find(|r| r.id == plan.id.as_str());
    if let Some(raw) = raw.as_ref().filter(|r| r.pending_update.is_some()) {
        return Err(payment_pending(syncer, raw).await);
    }
    refuse_scheduled_change(&plan)?;
    let modules: Vec<ServiceModule> = plan.modules().collect();
    if modules.len() != plan.items.len() || modules.is_empty() {
        // An item whose price sells no module of the catalog has no price to move to.
        return Err(ApiError::conflict(
            "conflict",
            "This plan has an item that cannot be switched: contact support.",
        ));
    }
    let prices = price_ids(syncer, &Catalog::standard(), &modules, target).await?;
    let items = plan
        .items
        .iter()
        .zip(prices)
        .map(|(item, (module, price))| Repricing {
            item_id: item.id.clone(),
            module,
            quantity: item.quantity,
            price,
        })
        .collect();
    Ok(Switch {
        customer: profile.customer_id,
        plan,
        raw,
        items,
    })
}

impl Switch {
    fn names(&self) -> std::collections::HashMap<String, ServiceModule> {
        let mut names: std::collections::HashMap<String, ServiceModule> = self
            .items
            .iter()
            .map(|r| (r.price.id.clone(), r.module))
            .collect();
        for item in &self.plan.items {
            if let Some(module) = item.module {
                names.insert(item.price_id.clone(), module);
            }
        }
        names
    }
}

/// `POST /api/billing/interval/preview`
pub async fn preview(
    syncer: &Syncer,
    org: &OrgId,
    role: Role,
    body: &[u8],
) -> Result<PlanPreviewView, ApiError> {
    require_admin(role)?;
    let request = parse_switch(body, false)?;
    let switch = load(syncer, org, request.interval).await?;
    let now = Timestamp::now();
    let id = switch.plan.id.as_str();
    let today = switch_preview_request(
        &switch.customer,
        id,
        &switch.items,
        Some(now),
        PreviewProration::AlwaysInvoice,
    );
    let period = switch_preview_request(
        &switch.customer,
        id,
        &switch.items,
        None,
        PreviewProration::None,
    );
    // Independent: both at once, one Stripe round trip of waiting.
    let (today, period) = tokio::try_join!(
        syncer.stripe.preview_invoice(&today),
        syncer.stripe.preview_invoice(&period),
    )?;
    // The new period starts now; its end is the first renewal at the new price.
    let next_date = period
        .lines
        .iter()
        .flat_map(|l| &l.data)
        .filter(|l| !l.is_proration())
        .filter_map(|l| l.period.as_ref()?.end)
        .max()
        .map(Timestamp::from_unix);
    Ok(PlanPreviewView {
        mode: PurchaseMode::Switch,
        interval: request.interval,
        currency: today
            .currency
            .clone()
            .unwrap_or_else(|| currency_of(switch.items.iter().map(|r| &r.price))),
        services: switch.items.iter().map(|r| r.module).collect(),
        proration_date: Some(now),
        trial_days: None,
        amount_due_today: charged(&today),
        next_invoice: NextInvoiceView {
            amount: charged(&period),
            date: next_date,
        },
        lines: lines_of(&today, &switch.names()),
    })
}

/// `POST /api/billing/interval`
pub async fn switch_interval(
    syncer: &Syncer,
    offer: &CheckoutOffer,
    org: &OrgId,
    role: Role,
    body: &[u8],
) -> Result<IntervalChangeView, ApiError> {
    require_admin(role)?;
    let request = parse_switch(body, true)?;
    let switch = load(syncer, org, request.interval).await?;
    let date = request.proration_date.unwrap_or_else(Timestamp::now);
    if check_proration_date(date, Timestamp::now(), switch.plan.current_period_start).is_err() {
        return Err(ApiError::conflict(
            "preview_expired",
            "The price shown is out of date: preview again to see today's price.",
        ));
    }
    if let Some(schedule) = &switch.plan.schedule_id {
        syncer.stripe.release_schedule(schedule).await?;
    }
    let update = switch_request(switch.plan.id.as_str(), &switch.items, date);
    // One preview confirmed twice is one switch (Stripe replays the first answer).
    let key = request_key("interval", org, &canonical_encoding(&update));
    let previous_invoice = switch
        .raw
        .as_ref()
        .and_then(|r| r.latest_invoice.as_ref())
        .map(|i| i.id().to_owned());
    let started = Timestamp::now();
    let fetched_at = crate::domain::FetchTime::now();
    let updated = syncer.stripe.update_subscription(&update, &key).await?;
    let Some(charge) = Charge::made_now(&updated, previous_invoice.as_deref(), started) else {
        // A replayed answer: what counts is the subscription as Stripe has it now.
        let fetched_at = crate::domain::FetchTime::now();
        let fresh = syncer.stripe.subscription(switch.plan.id.as_str()).await?;
        syncer.store_read(&fresh, fetched_at, None).await?;
        let switched = fresh
            .to_domain(&Catalog::standard())
            .ok()
            .and_then(|s| s.interval())
            == Some(request.interval);
        if fresh.pending_update.is_some() || !switched {
            return Err(ApiError::conflict(
                "preview_expired",
                "The price shown is out of date: preview again to see today's price.",
            ));
        }
        return Ok(IntervalChangeView {
            interval: request.interval,
            amount_charged: 0,
            currency: currency_of(switch.items.iter().map(|r| &r.price)),
            invoice_id: None,
            hosted_invoice_url: None,
            subscription: subscription_offered(&syncer.store, org, syncer.policy, offer).await?,
        });
    };
    charge.settle(syncer, &updated, fetched_at).await?;
    tracing::info!(org = %org, subscription = %switch.plan.id, interval = %request.interval, "plan interval switched");
    Ok(IntervalChangeView {
        interval: request.interval,
        amount_charged: charge.amount(),
        currency: charge
            .invoice
            .currency
            .clone()
            .unwrap_or_else(|| currency_of(switch.items.iter().map(|r| &r.price))),
        hosted_invoice_url: charge.invoice.hosted_invoice_url.clone(),
        invoice_id: Some(charge.invoice.id),
        subscription: subscription_offered(&syncer.store, org, syncer.policy, offer).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repricing(item: &str, price: &str) -> Repricing {
        Repricing {
            item_id: item.to_owned(),
            module: ServiceModule::LeadGeneration,
            quantity: 1,
            price: serde_json::from_value(serde_json::json!({"id": price})).unwrap(),
        }
    }

    #[test]
    fn every_item_moves_to_its_other_price_in_one_update() {
        let items = [
            repricing("si_lead", "price_lead_year"),
            repricing("si_email", "price_email_year"),
        ];
        let form = canonical_encoding(&switch_request(
            "sub_1",
            &items,
            Timestamp::from_unix(1_796_119_200),
        ));
        for pair in [
            "items[0][id]=si_lead",
            "items[0][price]=price_lead_year",
            "items[1][id]=si_email",
            "items[1][price]=price_email_year",
            "proration_behavior=always_invoice",
            "proration_date=1796119200",
            "payment_behavior=pending_if_incomplete",
        ] {
            assert!(form.contains(pair), "{pair} missing from {form}");
        }
        let customer = CustomerId::parse("cus_1").unwrap();
        let preview = canonical_encoding(&switch_preview_request(
            &customer,
            "sub_1",
            &items,
            None,
            PreviewProration::None,
        ));
        assert!(preview.contains("subscription_details[items][1][id]=si_email"));
        assert!(!preview.contains("proration_date"), "{preview}");
    }

    #[test]
    fn a_switch_names_its_interval_and_a_commit_its_preview() {
        assert_eq!(
            parse_switch(br#"{"interval":"year"}"#, false).unwrap(),
            SwitchRequest {
                interval: BillingInterval::Year,
                proration_date: None
            }
        );
        assert_eq!(
            parse_switch(br#"{"interval":"month","prorationDate":5}"#, true)
                .unwrap()
                .proration_date,
            Some(Timestamp::from_unix(5))
        );
        for (body, commit, status) in [
            (&br#"{"interval":"week"}"#[..], false, 422),
            (br#"{"interval":"year"}"#, true, 422),
            (br#"{"interval":"year","prorationDate":0}"#, true, 422),
            (b"x", false, 400),
        ] {
            assert_eq!(
                parse_switch(body, commit).unwrap_err().status.as_u16(),
                status
            );
        }
    }
}
