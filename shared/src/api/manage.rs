//! Ending a module at the end of the period it was paid for, and keeping it after all:
//! `DELETE /api/billing/modules/{service}` and `POST /api/billing/modules/{service}/resume`.
//!
//! The change is made in Stripe (a subscription schedule, or `cancel_at_period_end` for the
//! plan's last renewing module: see [`crate::domain::ending`]), then the subscription is read
//! back with its schedule and stored, so the billing page and the paywall show Stripe's
//! truth: the module stays unlocked until its paid-through date, and is not charged again.
//! Nothing is charged or refunded by either request.

use lambda_http::http::StatusCode;

use super::checkout::CheckoutOffer;
use super::plan::{current_subscriptions, payment_past_due, payment_pending};
use super::views::ModuleChangeView;
use super::{require_admin, subscription_offered};
use crate::domain::BillingInterval;
use crate::domain::{
    Catalog, EndingStep, OrgId, ServiceModule, Subscription, SubscriptionStatus, ending_modules,
    steps_to_end,
};
use crate::http::ApiError;
use crate::routes::Role;
use crate::stripe::requests::{
    SubscriptionScheduleEndBehavior, UpdateSubscription, UpdateSubscriptionSchedule,
    UpdateSubscriptionSchedulePhases, UpdateSubscriptionSchedulePhasesDuration,
    UpdateSubscriptionSchedulePhasesDurationInterval, UpdateSubscriptionSchedulePhasesEndDate,
    UpdateSubscriptionSchedulePhasesItems, UpdateSubscriptionSchedulePhasesStartDate,
    UpdateSubscriptionSchedulePhasesTrialEnd, UpdateSubscriptionScheduleProrationBehavior,
};
use crate::stripe::{StripeApiError, StripeSchedule, StripeSubscription};
use crate::sync::Syncer;

/// The `{service}` of the path: a paid module of the catalog.
pub fn parse_service(service: Option<&str>) -> Result<ServiceModule, ApiError> {
    let module: ServiceModule = service.and_then(|s| s.parse().ok()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_service",
            "No such service module.",
        )
    })?;
    if module.is_free() {
        return Err(super::checkout::unprocessable(
            "free_service",
            format!("{} is free and always included.", module.as_str()),
        ));
    }
    Ok(module)
}

fn not_subscribed(module: ServiceModule) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_subscribed",
        format!(
            "The organization does not pay for {}.",
            Catalog::standard().entry(module).name
        ),
    )
}

/// `DELETE /api/billing/modules/{service}`: the module ends at the end of its paid period.
pub async fn remove_module(
    syncer: &Syncer,
    offer: &CheckoutOffer,
    org: &OrgId,
    role: Role,
    service: Option<&str>,
) -> Result<ModuleChangeView, ApiError> {
    change_ending(syncer, offer, org, role, service, true).await
}

/// `POST /api/billing/modules/{service}/resume`: a module set to end renews after all.
pub async fn resume_module(
    syncer: &Syncer,
    offer: &CheckoutOffer,
    org: &OrgId,
    role: Role,
    service: Option<&str>,
) -> Result<ModuleChangeView, ApiError> {
    change_ending(syncer, offer, org, role, service, false).await
}

/// The subscription holding `module` that a removal or undo applies to: one not over, in a
/// status that grants (or owes for) it.
fn holder(subscriptions: &[Subscription], module: ServiceModule) -> Option<&Subscription> {
    use SubscriptionStatus::*;
    subscriptions
        .iter()
        .filter(|s| matches!(s.status, Active | Trialing | PastDue | Unpaid))
        .find(|s| s.modules().any(|m| m == module))
}

async fn change_ending(
    syncer: &Syncer,
    offer: &CheckoutOffer,
    org: &OrgId,
    role: Role,
    service: Option<&str>,
    remove: bool,
) -> Result<ModuleChangeView, ApiError> {
    require_admin(role)?;
    let module = parse_service(service)?;
    let Some(profile) = syncer.store.billing_profile(org).await? else {
        return Err(not_subscribed(module));
    };
    // Stripe's state now, not the stored copy: the steps depend on the schedule as it is.
    let (raw, stored) = current_subscriptions(syncer, org, &profile.customer_id).await?;
    let Some(plan) = holder(&stored, module) else {
        return Err(not_subscribed(module));
    };
    let raw_plan = raw.iter().find(|r| r.id == plan.id.as_str());
    if matches!(
        plan.status,
        SubscriptionStatus::PastDue | SubscriptionStatus::Unpaid
    ) {
        return Err(payment_past_due(syncer, raw_plan).await);
    }
    if let Some(raw) = raw_plan.filter(|r| r.pending_update.is_some()) {
        return Err(payment_pending(syncer, raw).await);
    }
    let mut ending = ending_modules(plan);
    if remove {
        ending.insert(module);
    } else {
        ending.remove(&module);
    }
    let steps = steps_to_end(plan, &ending);
    let schedule = raw_plan
        .and_then(|r| r.schedule.as_ref())
        .and_then(|s| s.object())
        .cloned();
    apply(syncer, plan, schedule, &steps).await?;
    let fetched_at = crate::domain::FetchTime::now();
    let fresh = syncer.stripe.subscription(plan.id.as_str()).await?;
    syncer.store_read(&fresh, fetched_at, None).await?;
    let stored = super::stored_subscriptions(&syncer.store, org).await?;
    let ends_at = stored
        .iter()
        .find(|s| s.id == plan.id)
        .and_then(|s| s.items.iter().find(|i| i.module == Some(module)))
        .and_then(|i| i.ends_at);
    if ends_at.is_some() != remove {
        // Stripe's state is not what was asked: a concurrent change won. Nothing was charged.
        tracing::warn!(org = %org, subscription = %plan.id, remove, "ending change did not hold");
        return Err(ApiError::conflict(
            "conflict",
            "The plan changed meanwhile: reload the billing page and try again.",
        ));
    }
    tracing::info!(org = %org, subscription = %plan.id, module = %module.as_str(), remove, steps = steps.len(), "module ending changed");
    Ok(ModuleChangeView {
        service: module,
        ends_at,
        subscription: subscription_offered(&syncer.store, org, syncer.policy, offer).await?,
    })
}

/// Makes the steps in Stripe, in order.
async fn apply(
    syncer: &Syncer,
    plan: &Subscription,
    mut schedule: Option<StripeSchedule>,
    steps: &[EndingStep],
) -> Result<(), ApiError> {
    for step in steps {
        match step {
            EndingStep::ReleaseSchedule(id) => {
                syncer.stripe.release_schedule(id).await?;
            }
            EndingStep::CancelAtPeriodEnd(cancel) => {
                let update =
                    UpdateSubscription::new(plan.id.as_str()).cancel_at_period_end(*cancel);
                syncer.stripe.set_subscription(&update).await?;
            }
            EndingStep::CreateSchedule => {
                schedule = Some(
                    match syncer.stripe.create_schedule(plan.id.as_str()).await {
                        Ok(created) => created,
                        // Another request attached one meanwhile: use it.
                        Err(StripeApiError::Rejected { status: 400, code }) => {
                            tracing::warn!(?code, "Stripe refused a schedule; re-reading");
                            attached_schedule(syncer, plan).await?
                        }
                        Err(e) => return Err(e.into()),
                    },
                );
            }
            EndingStep::SetNextPhase { renewing } => {
                let current = schedule.as_ref().ok_or_else(|| {
                    ApiError::conflict(
                        "conflict",
                        "The plan changed meanwhile: reload the billing page and try again.",
                    )
                })?;
                let update = next_phase_request(current, plan, renewing)?;
                syncer.stripe.update_schedule(&update).await?;
            }
        }
    }
    Ok(())
}

async fn attached_schedule(
    syncer: &Syncer,
    plan: &Subscription,
) -> Result<StripeSchedule, ApiError> {
    let raw: StripeSubscription = syncer.stripe.subscription(plan.id.as_str()).await?;
    raw.schedule
        .as_ref()
        .and_then(|s| s.object())
        .cloned()
        .ok_or_else(|| ApiError::bad_gateway("Stripe refused the change."))
}

/// The schedule's phases: the current one as it is (every item, its dates and trial), then one
/// period of the `renewing` prices only, after which the schedule releases the subscription.
pub fn next_phase_request(
    schedule: &StripeSchedule,
    plan: &Subscription,
    renewing: &[String],
) -> Result<UpdateSubscriptionSchedule, ApiError> {
    let changed = || {
        ApiError::conflict(
            "conflict",
            "The plan changed meanwhile: reload the billing page and try again.",
        )
    };
    let (start, end) = match (
        &schedule.current_phase,
        plan.current_period_start,
        plan.current_period_end,
    ) {
        (Some(phase), _, _) => (phase.start_date, phase.end_date),
        (None, Some(start), Some(end)) => (start.unix(), end.unix()),
        _ => return Err(changed()),
    };
    let interval = match plan.interval().ok_or_else(changed)? {
        BillingInterval::Month => UpdateSubscriptionSchedulePhasesDurationInterval::Month,
        BillingInterval::Year => UpdateSubscriptionSchedulePhasesDurationInterval::Year,
    };
    let item = |price: &str, quantity: u64| {
        let mut item = UpdateSubscriptionSchedulePhasesItems::new();
        item.price = Some(price.to_owned());
        item.quantity = Some(quantity);
        item
    };
    let mut current = UpdateSubscriptionSchedulePhases::new(
        plan.items
            .iter()
            .map(|i| item(&i.price_id, i.quantity))
            .collect::<Vec<_>>(),
    );
    current.start_date = Some(UpdateSubscriptionSchedulePhasesStartDate::Timestamp(start));
    current.end_date = Some(UpdateSubscriptionSchedulePhasesEndDate::Timestamp(end));
    if plan.status == SubscriptionStatus::Trialing
        && let Some(trial_end) = plan.trial_end.filter(|t| t.unix() <= end)
    {
        current.trial_end = Some(UpdateSubscriptionSchedulePhasesTrialEnd::Timestamp(
            trial_end.unix(),
        ));
    }
    let mut next = UpdateSubscriptionSchedulePhases::new(
        renewing
            .iter()
            .map(|price| {
                let quantity = plan
                    .items
                    .iter()
                    .find(|i| &i.price_id == price)
                    .map_or(1, |i| i.quantity);
                item(price, quantity)
            })
            .collect::<Vec<_>>(),
    );
    let mut duration = UpdateSubscriptionSchedulePhasesDuration::new(interval);
    duration.interval_count = Some(1);
    next.duration = Some(duration);
    Ok(UpdateSubscriptionSchedule::new(schedule.id.as_str())
        .phases(vec![current, next])
        .end_behavior(SubscriptionScheduleEndBehavior::Release)
        .proration_behavior(UpdateSubscriptionScheduleProrationBehavior::None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::stripe::canonical_encoding;

    #[test]
    fn the_next_phase_keeps_the_current_one_and_drops_the_removed_item() {
        let plan = crate::domain::Subscription {
            items: vec![
                item("si_lead", "price_lead", 1),
                item("si_email", "price_email", 1),
            ],
            ..plan_of()
        };
        let schedule: StripeSchedule = serde_json::from_value(serde_json::json!({
            "id": "sub_sched_1",
            "status": "active",
            "current_phase": {"start_date": 1000, "end_date": 2000},
            "phases": [{"start_date": 1000, "end_date": 2000, "items": []}],
            "end_behavior": "release"
        }))
        .unwrap();
        let form = canonical_encoding(
            &next_phase_request(&schedule, &plan, &["price_lead".to_owned()]).unwrap(),
        );
        for pair in [
            "phases[0][items][0][price]=price_lead",
            "phases[0][items][1][price]=price_email",
            "phases[0][start_date]=1000",
            "phases[0][end_date]=2000",
            "phases[1][items][0][price]=price_lead",
            "phases[1][duration][interval]=month",
            "phases[1][duration][interval_count]=1",
            "end_behavior=release",
            "proration_behavior=none",
        ] {
            assert!(form.contains(pair), "{pair} missing from {form}");
        }
        assert!(!form.contains("phases[1][items][1]"), "{form}");
        assert!(!form.contains("trial_end"), "{form}");
    }

    fn item(id: &str, price: &str, quantity: u64) -> crate::domain::SubscriptionItem {
        crate::domain::SubscriptionItem {
            id: id.to_owned(),
            price_id: price.to_owned(),
            lookup_key: None,
            module: None,
            interval: Some(BillingInterval::Month),
            quantity,
            unit_amount: None,
            currency: None,
            product_id: None,
            ends_at: None,
        }
    }

    fn plan_of() -> crate::domain::Subscription {
        crate::domain::Subscription {
            id: crate::domain::SubscriptionId::parse("sub_1").unwrap(),
            customer_id: crate::domain::CustomerId::parse("cus_1").unwrap(),
            status: SubscriptionStatus::Active,
            current_period_start: Some(Timestamp::from_unix(1000)),
            current_period_end: Some(Timestamp::from_unix(2000)),
            cancel_at_period_end: false,
            cancel_at: None,
            canceled_at: None,
            ended_at: None,
            trial_end: None,
            created: None,
            items: Vec::new(),
            default_payment_method: None,
            past_due_since: None,
            ended_unseen: false,
            trial_end_notice: None,
            schedule_id: Some("sub_sched_1".to_owned()),
            open_invoice: None,
        }
    }

    #[test]
    fn the_path_names_a_paid_module() {
        assert_eq!(
            parse_service(Some("LeadGeneration")).unwrap(),
            ServiceModule::LeadGeneration
        );
        assert_eq!(
            parse_service(Some("Nope")).unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            parse_service(None).unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            parse_service(Some("BasicCRM")).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
