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
    renewing_prices, steps_to_end,
};
use crate::http::ApiError;
use crate::routes::Role;
use crate::stripe::requests::{
    SubscriptionScheduleEndBehavior, UpdateSubscription, UpdateSubscriptionSchedule,
    UpdateSubscriptionSchedulePhases, UpdateSubscriptionSchedulePhasesAutomaticTax,
    UpdateSubscriptionSchedulePhasesDiscounts, UpdateSubscriptionSchedulePhasesDuration,
    UpdateSubscriptionSchedulePhasesDurationInterval, UpdateSubscriptionSchedulePhasesEndDate,
    UpdateSubscriptionSchedulePhasesItems, UpdateSubscriptionSchedulePhasesStartDate,
    UpdateSubscriptionSchedulePhasesTrialEnd, UpdateSubscriptionScheduleProrationBehavior,
};
use crate::stripe::{PhaseDiscount, StripeApiError, StripeSchedule, StripeSubscription};
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
    apply(syncer, plan, schedule, &steps, (module, remove)).await?;
    let fetched_at = crate::domain::FetchTime::now();
    let fresh = syncer.stripe.subscription(plan.id.as_str()).await?;
    syncer.store_read(&fresh, fetched_at, None).await?;
    let stored = super::stored_subscriptions(&syncer.store, org).await?;
    let now = stored.iter().find(|s| s.id == plan.id);
    let ends_at = now
        .and_then(|s| s.items.iter().find(|i| i.module == Some(module)))
        .and_then(|i| i.ends_at);
    // The whole plan, not only this module: a concurrent change must not be answered as done.
    if now.map(ending_modules) != Some(ending) {
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

fn changed_meanwhile() -> ApiError {
    ApiError::conflict(
        "conflict",
        "The plan changed meanwhile: reload the billing page and try again.",
    )
}

/// Makes the steps in Stripe, in order. `change` is the module and whether it ends (true) or
/// renews (false), applied to the schedule as Stripe has it when its phases are written.
///
/// Only one sequence has an intermediate state worth undoing: keeping one module of a plan
/// set to cancel clears `cancel_at_period_end` before the schedule that still ends the
/// others exists. If anything fails from that step on (a timeout included), the cancellation
/// is put back, so a failure never leaves modules renewing that the org chose to end.
async fn apply(
    syncer: &Syncer,
    plan: &Subscription,
    schedule: Option<StripeSchedule>,
    steps: &[EndingStep],
    change: (ServiceModule, bool),
) -> Result<(), ApiError> {
    let mut schedule = schedule;
    let mut just_created = false;
    let mut uncancelling = false;
    for step in steps {
        let done = match step {
            EndingStep::CancelAtPeriodEnd(cancel) => {
                uncancelling |= !cancel;
                let update =
                    UpdateSubscription::new(plan.id.as_str()).cancel_at_period_end(*cancel);
                syncer
                    .stripe
                    .set_subscription(&update)
                    .await
                    .map(drop)
                    .map_err(ApiError::from)
            }
            EndingStep::CreateSchedule => {
                match syncer.stripe.create_schedule(plan.id.as_str()).await {
                    Ok(created) => {
                        schedule = Some(created);
                        just_created = true;
                        Ok(())
                    }
                    // Another request attached one meanwhile: use it.
                    Err(StripeApiError::Rejected { status: 400, code }) => {
                        tracing::warn!(?code, "Stripe refused a schedule; re-reading");
                        attached_schedule(syncer, plan).await.map(|s| {
                            schedule = Some(s);
                        })
                    }
                    Err(e) => Err(e.into()),
                }
            }
            EndingStep::SetNextPhase => {
                write_phases(syncer, plan, schedule.as_ref(), just_created, change).await
            }
        };
        if let Err(error) = done {
            if uncancelling {
                return Err(restore_cancellation(syncer, plan, schedule.as_ref())
                    .await
                    .err()
                    .unwrap_or(error));
            }
            return Err(error);
        }
    }
    Ok(())
}

/// Puts a plan's `cancel_at_period_end` back after a failed keep. If even that fails, the plan
/// may renew modules the org chose to end: logged as an error, answered 503 to try again.
async fn restore_cancellation(
    syncer: &Syncer,
    plan: &Subscription,
    schedule: Option<&StripeSchedule>,
) -> Result<(), ApiError> {
    let restored = async {
        if let Some(schedule) = schedule {
            syncer.stripe.release_schedule(&schedule.id).await?;
        }
        let update = UpdateSubscription::new(plan.id.as_str()).cancel_at_period_end(true);
        syncer.stripe.set_subscription(&update).await.map(drop)
    };
    match restored.await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, subscription = %plan.id, "could not restore cancel_at_period_end after a failed keep: the plan may renew modules set to end");
            Err(ApiError::unavailable(
                "The change could not be completed: try again in a moment.",
            ))
        }
    }
}

/// Writes the schedule's phases from Stripe's current copy of it: read again unless this
/// request just created it, so a module another admin set to end (or one added) meanwhile is
/// kept as Stripe has it.
async fn write_phases(
    syncer: &Syncer,
    plan: &Subscription,
    schedule: Option<&StripeSchedule>,
    just_created: bool,
    change: (ServiceModule, bool),
) -> Result<(), ApiError> {
    let id = schedule
        .map(|s| s.id.clone())
        .or_else(|| plan.schedule_id.clone())
        .ok_or_else(changed_meanwhile)?;
    let fresh = match schedule {
        Some(s) if just_created => s.clone(),
        _ => syncer.stripe.schedule(&id).await?,
    };
    match phases_request(&fresh, plan, change)? {
        PhaseWrite::Release => {
            syncer.stripe.release_schedule(&id).await?;
        }
        PhaseWrite::Update(update) => {
            syncer.stripe.update_schedule(&update).await?;
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

/// A phase's discount written back as exactly one reference: the applied discount by id (a
/// repeating coupon keeps its count), else its promotion code, else its coupon.
fn phase_discount(d: &PhaseDiscount) -> Option<UpdateSubscriptionSchedulePhasesDiscounts> {
    let id = |x: &Option<crate::stripe::Expandable>| x.as_ref().map(|x| x.id().to_owned());
    let mut out = UpdateSubscriptionSchedulePhasesDiscounts {
        coupon: None,
        discount: None,
        promotion_code: None,
    };
    if let Some(discount) = id(&d.discount) {
        out.discount = Some(discount);
    } else if let Some(code) = id(&d.promotion_code) {
        out.promotion_code = Some(code);
    } else {
        out.coupon = Some(id(&d.coupon)?);
    }
    Some(out)
}

/// What a schedule becomes.
#[derive(Debug)]
pub enum PhaseWrite {
    /// Nothing ends any more: the schedule is released, the plan renews as it is.
    Release,
    Update(Box<UpdateSubscriptionSchedule>),
}

/// The schedule's phases after `change`: the current phase exactly as Stripe has it (items,
/// dates, trial, discounts), then one period of the prices that renew, released after it;
/// when none renews, the current phase alone, after which Stripe cancels the plan.
pub fn phases_request(
    schedule: &StripeSchedule,
    plan: &Subscription,
    change: (ServiceModule, bool),
) -> Result<PhaseWrite, ApiError> {
    let current = schedule.current().ok_or_else(changed_meanwhile)?;
    let dates = schedule
        .current_phase
        .as_ref()
        .ok_or_else(changed_meanwhile)?;
    let module_of = |price: &str| {
        plan.items
            .iter()
            .find(|i| i.price_id == price)
            .and_then(|i| i.module)
    };
    let prices: Vec<&str> = current.items.iter().map(|i| i.price.id()).collect();
    // The current phase is applied at once when written: it must be the plan as it is.
    let mut live: Vec<&str> = plan.items.iter().map(|i| i.price_id.as_str()).collect();
    let mut phase = prices.clone();
    live.sort_unstable();
    phase.sort_unstable();
    if live != phase {
        return Err(changed_meanwhile());
    }
    // What Stripe ends now (the schedule's next phase, else the plan's cancellation, which a
    // schedule just made from it no longer shows), then this request's change.
    let mut ending: std::collections::BTreeSet<ServiceModule> = match schedule.scheduled_change() {
        Some((_, renewing)) => prices
            .iter()
            .filter(|p| !renewing.contains(p))
            .filter_map(|p| module_of(p))
            .collect(),
        None => ending_modules(plan),
    };
    let (module, ends) = change;
    if ends {
        ending.insert(module);
    } else {
        ending.remove(&module);
    }
    if ending.is_empty() {
        return Ok(PhaseWrite::Release);
    }
    let renewing = renewing_prices(&prices, &ending, module_of);
    let discounts: Vec<UpdateSubscriptionSchedulePhasesDiscounts> = current
        .discounts
        .iter()
        .flatten()
        .filter_map(phase_discount)
        .collect();
    let automatic_tax = current
        .automatic_tax
        .as_ref()
        .and_then(|t| t.enabled)
        .map(UpdateSubscriptionSchedulePhasesAutomaticTax::new);
    let item = |price: &str| {
        let mut item = UpdateSubscriptionSchedulePhasesItems::new();
        item.price = Some(price.to_owned());
        item.quantity = current
            .items
            .iter()
            .find(|i| i.price.id() == price)
            .and_then(|i| i.quantity)
            .or(Some(1));
        item
    };
    let mut now =
        UpdateSubscriptionSchedulePhases::new(prices.iter().map(|p| item(p)).collect::<Vec<_>>());
    now.start_date = Some(UpdateSubscriptionSchedulePhasesStartDate::Timestamp(
        dates.start_date,
    ));
    now.end_date = Some(UpdateSubscriptionSchedulePhasesEndDate::Timestamp(
        dates.end_date,
    ));
    if let Some(trial_end) = current.trial_end.filter(|t| *t <= dates.end_date) {
        now.trial_end = Some(UpdateSubscriptionSchedulePhasesTrialEnd::Timestamp(
            trial_end,
        ));
    }
    if !discounts.is_empty() {
        now.discounts = Some(discounts.clone());
    }
    now.automatic_tax = automatic_tax.clone();
    if renewing.is_empty() {
        return Ok(PhaseWrite::Update(Box::new(
            UpdateSubscriptionSchedule::new(schedule.id.as_str())
                .phases(vec![now])
                .end_behavior(SubscriptionScheduleEndBehavior::Cancel)
                .proration_behavior(UpdateSubscriptionScheduleProrationBehavior::None),
        )));
    }
    let interval = match plan.interval().ok_or_else(changed_meanwhile)? {
        BillingInterval::Month => UpdateSubscriptionSchedulePhasesDurationInterval::Month,
        BillingInterval::Year => UpdateSubscriptionSchedulePhasesDurationInterval::Year,
    };
    let mut next =
        UpdateSubscriptionSchedulePhases::new(renewing.iter().map(|p| item(p)).collect::<Vec<_>>());
    let mut duration = UpdateSubscriptionSchedulePhasesDuration::new(interval);
    duration.interval_count = Some(1);
    next.duration = Some(duration);
    if !discounts.is_empty() {
        next.discounts = Some(discounts);
    }
    next.automatic_tax = automatic_tax;
    Ok(PhaseWrite::Update(Box::new(
        UpdateSubscriptionSchedule::new(schedule.id.as_str())
            .phases(vec![now, next])
            .end_behavior(SubscriptionScheduleEndBehavior::Release)
            .proration_behavior(UpdateSubscriptionScheduleProrationBehavior::None),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::canonical_encoding;

    #[test]
    fn the_next_phase_keeps_the_current_one_and_drops_the_removed_item() {
        let plan = crate::domain::Subscription {
            items: vec![
                item("si_lead", "price_lead", 1, ServiceModule::LeadGeneration),
                item("si_email", "price_email", 1, ServiceModule::EmailAutomation),
                item("si_social", "price_social", 1, ServiceModule::SocialInbox),
            ],
            ..plan_of()
        };
        let schedule = |next: Option<&[&str]>| -> StripeSchedule {
            let phase = |start: i64, end: i64, prices: &[&str]| {
                serde_json::json!({"start_date": start, "end_date": end,
                    "items": prices.iter().map(|p| serde_json::json!({"price": p, "quantity": 1})).collect::<Vec<_>>(),
                    "discounts": [{"coupon": null, "discount": "di_promo", "promotion_code": null}]})
            };
            let mut phases = vec![phase(
                1000,
                2000,
                &["price_lead", "price_email", "price_social"],
            )];
            if let Some(next) = next {
                phases.push(phase(2000, 3000, next));
            }
            serde_json::from_value(serde_json::json!({
                "id": "sub_sched_1", "status": "active",
                "current_phase": {"start_date": 1000, "end_date": 2000},
                "phases": phases, "end_behavior": "release"
            }))
            .unwrap()
        };
        let form = |write: PhaseWrite| match write {
            PhaseWrite::Update(update) => canonical_encoding(update.as_ref()),
            PhaseWrite::Release => "release".to_owned(),
        };
        let first = form(
            phases_request(
                &schedule(None),
                &plan,
                (ServiceModule::EmailAutomation, true),
            )
            .unwrap(),
        );
        for pair in [
            "phases[0][items][0][price]=price_lead",
            "phases[0][items][1][price]=price_email",
            "phases[0][items][2][price]=price_social",
            "phases[0][start_date]=1000",
            "phases[0][end_date]=2000",
            "phases[0][discounts][0][discount]=di_promo",
            "phases[1][items][0][price]=price_lead",
            "phases[1][items][1][price]=price_social",
            "phases[1][discounts][0][discount]=di_promo",
            "phases[1][duration][interval]=month",
            "phases[1][duration][interval_count]=1",
            "end_behavior=release",
            "proration_behavior=none",
        ] {
            assert!(first.contains(pair), "{pair} missing from {first}");
        }
        assert!(!first.contains("phases[1][items][2]"), "{first}");
        assert!(!first.contains("trial_end"), "{first}");
        // Another admin's removal (SocialInbox) already on the schedule is kept.
        let both = form(
            phases_request(
                &schedule(Some(&["price_lead", "price_email"])),
                &plan,
                (ServiceModule::EmailAutomation, true),
            )
            .unwrap(),
        );
        assert!(
            both.contains("phases[1][items][0][price]=price_lead"),
            "{both}"
        );
        assert!(!both.contains("phases[1][items][1]"), "{both}");
        // Everything ends: the current phase alone, then Stripe cancels.
        let all = form(
            phases_request(
                &schedule(Some(&["price_lead"])),
                &plan,
                (ServiceModule::LeadGeneration, true),
            )
            .unwrap(),
        );
        assert!(all.contains("end_behavior=cancel"), "{all}");
        assert!(!all.contains("phases[1]"), "{all}");
        // Keeping the only ending module: the schedule is released.
        assert!(matches!(
            phases_request(
                &schedule(Some(&["price_lead", "price_social"])),
                &plan,
                (ServiceModule::EmailAutomation, false),
            )
            .unwrap(),
            PhaseWrite::Release
        ));
    }

    fn item(
        id: &str,
        price: &str,
        quantity: u64,
        module: ServiceModule,
    ) -> crate::domain::SubscriptionItem {
        crate::domain::SubscriptionItem {
            id: id.to_owned(),
            price_id: price.to_owned(),
            lookup_key: None,
            module: Some(module),
            interval: Some(BillingInterval::Month),
            quantity,
            unit_amount: None,
            currency: None,
            product_id: None,
            ends_at: None,
        }
    }

    fn plan_of() -> crate::domain::Subscription {
        let mut plan = crate::domain::Subscription::sample("sub_1", &[]);
        plan.schedule_id = Some("sub_sched_1".to_owned());
        plan
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
