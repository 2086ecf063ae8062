//! Ending modules at the end of the period they were paid for, and undoing that, with
//! Stripe's own mechanisms so Stripe holds the truth (and the webhook re-reads it):
//!
//! - some modules of a plan end, others renew: a **subscription schedule** whose current
//!   phase is the period as it is and whose next phase lists only the modules that renew.
//!   At the phase change Stripe drops the items and the renewal invoice bills only the rest.
//! - every module of the plan ends: **`cancel_at_period_end`** (a schedule cannot be left
//!   with an empty phase, and the portal and Stripe's dunning understand a cancelling plan).
//!
//! Pure: from the subscription as Stripe has it and the modules that should end, the Stripe
//! changes to make, in order.

use std::collections::BTreeSet;

use super::{ServiceModule, Subscription};

/// One change to make in Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndingStep {
    /// `POST /v1/subscription_schedules/{id}/release`: the schedule stops; the subscription
    /// keeps its items as they are now.
    ReleaseSchedule(String),
    /// `POST /v1/subscriptions/{id}` with `cancel_at_period_end`. Stripe refuses it on a
    /// subscription managed by a schedule, so a release comes first.
    CancelAtPeriodEnd(bool),
    /// `POST /v1/subscription_schedules` with `from_subscription`: a schedule of one phase,
    /// the current period.
    CreateSchedule,
    /// `POST /v1/subscription_schedules/{id}`: the current phase unchanged, then one period of
    /// only `renewing` (item prices), released after it.
    SetNextPhase { renewing: Vec<String> },
}

/// The modules of `subscription` that end at its period end now.
pub fn ending_modules(subscription: &Subscription) -> BTreeSet<ServiceModule> {
    subscription
        .items
        .iter()
        .filter(|i| i.ends_at.is_some())
        .filter_map(|i| i.module)
        .collect()
}

/// The steps that make exactly `ending` end at the period end, every other item renewing.
/// Empty when Stripe already has it so (a repeated remove or undo changes nothing).
pub fn steps_to_end(
    subscription: &Subscription,
    ending: &BTreeSet<ServiceModule>,
) -> Vec<EndingStep> {
    if &ending_modules(subscription) == ending {
        return Vec::new();
    }
    let renewing: Vec<String> = subscription
        .items
        .iter()
        .filter(|i| !i.module.is_some_and(|m| ending.contains(&m)))
        .map(|i| i.price_id.clone())
        .collect();
    let schedule = subscription.schedule_id.clone();
    let mut steps = Vec::new();
    if ending.is_empty() || renewing.is_empty() {
        // Nothing ends, or everything does: no schedule, only the cancel flag.
        steps.extend(schedule.map(EndingStep::ReleaseSchedule));
        let cancel = !ending.is_empty();
        if subscription.cancel_at_period_end != cancel {
            steps.push(EndingStep::CancelAtPeriodEnd(cancel));
        }
        return steps;
    }
    if subscription.cancel_at_period_end {
        steps.push(EndingStep::CancelAtPeriodEnd(false));
    }
    if schedule.is_none() {
        steps.push(EndingStep::CreateSchedule);
    }
    steps.push(EndingStep::SetNextPhase { renewing });
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        CustomerId, SubscriptionId, SubscriptionItem, SubscriptionStatus, Timestamp,
    };
    use EndingStep::*;
    use ServiceModule::*;

    const END: Timestamp = Timestamp::from_unix(2_000);

    fn plan(modules: &[ServiceModule]) -> Subscription {
        Subscription {
            id: SubscriptionId::parse("sub_1").unwrap(),
            customer_id: CustomerId::parse("cus_1").unwrap(),
            status: SubscriptionStatus::Active,
            current_period_start: Some(Timestamp::from_unix(1_000)),
            current_period_end: Some(END),
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
                    interval: None,
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

    fn set(modules: &[ServiceModule]) -> BTreeSet<ServiceModule> {
        modules.iter().copied().collect()
    }

    fn ending(mut sub: Subscription, modules: &[ServiceModule]) -> Subscription {
        for item in &mut sub.items {
            if item.module.is_some_and(|m| modules.contains(&m)) {
                item.ends_at = Some(END);
            }
        }
        sub
    }

    #[test]
    fn removing_one_of_several_modules_schedules_a_next_phase_without_it() {
        let sub = plan(&[LeadGeneration, EmailAutomation, SocialInbox]);
        assert_eq!(
            steps_to_end(&sub, &set(&[EmailAutomation])),
            vec![
                CreateSchedule,
                SetNextPhase {
                    renewing: vec!["price_LeadGeneration".into(), "price_SocialInbox".into()]
                }
            ]
        );
        // A second removal edits the schedule it already has.
        let mut scheduled = ending(sub, &[EmailAutomation]);
        scheduled.schedule_id = Some("sub_sched_1".into());
        assert_eq!(
            steps_to_end(&scheduled, &set(&[EmailAutomation, SocialInbox])),
            vec![SetNextPhase {
                renewing: vec!["price_LeadGeneration".into()]
            }]
        );
    }

    #[test]
    fn removing_the_last_renewing_module_cancels_at_period_end() {
        let sub = plan(&[LeadGeneration]);
        assert_eq!(
            steps_to_end(&sub, &set(&[LeadGeneration])),
            vec![CancelAtPeriodEnd(true)]
        );
        // With the other module already leaving by schedule: release it, then cancel.
        let mut scheduled = ending(plan(&[LeadGeneration, EmailAutomation]), &[EmailAutomation]);
        scheduled.schedule_id = Some("sub_sched_1".into());
        assert_eq!(
            steps_to_end(&scheduled, &set(&[LeadGeneration, EmailAutomation])),
            vec![
                ReleaseSchedule("sub_sched_1".into()),
                CancelAtPeriodEnd(true)
            ]
        );
    }

    #[test]
    fn undoing_restores_renewal_with_nothing_else_changed() {
        let mut scheduled = ending(plan(&[LeadGeneration, EmailAutomation]), &[EmailAutomation]);
        scheduled.schedule_id = Some("sub_sched_1".into());
        assert_eq!(
            steps_to_end(&scheduled, &set(&[])),
            vec![ReleaseSchedule("sub_sched_1".into())]
        );
        let mut cancelling = ending(plan(&[LeadGeneration]), &[LeadGeneration]);
        cancelling.cancel_at_period_end = true;
        assert_eq!(
            steps_to_end(&cancelling, &set(&[])),
            vec![CancelAtPeriodEnd(false)]
        );
        // Keeping one module of a cancelling plan of two: the other still ends.
        let mut both = ending(
            plan(&[LeadGeneration, EmailAutomation]),
            &[LeadGeneration, EmailAutomation],
        );
        both.cancel_at_period_end = true;
        assert_eq!(
            steps_to_end(&both, &set(&[EmailAutomation])),
            vec![
                CancelAtPeriodEnd(false),
                CreateSchedule,
                SetNextPhase {
                    renewing: vec!["price_LeadGeneration".into()]
                }
            ]
        );
    }

    #[test]
    fn a_repeated_request_changes_nothing() {
        let mut scheduled = ending(plan(&[LeadGeneration, EmailAutomation]), &[EmailAutomation]);
        scheduled.schedule_id = Some("sub_sched_1".into());
        assert!(steps_to_end(&scheduled, &set(&[EmailAutomation])).is_empty());
        assert!(steps_to_end(&plan(&[LeadGeneration]), &set(&[])).is_empty());
        // A schedule left after its change happened (its last phase running) is released
        // only when a change needs it gone.
        let mut spent = plan(&[LeadGeneration, EmailAutomation]);
        spent.schedule_id = Some("sub_sched_1".into());
        assert!(steps_to_end(&spent, &set(&[])).is_empty());
        assert_eq!(
            steps_to_end(&spent, &set(&[EmailAutomation])),
            vec![SetNextPhase {
                renewing: vec!["price_LeadGeneration".into()]
            }]
        );
    }
}
