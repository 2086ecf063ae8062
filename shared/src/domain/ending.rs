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
    /// `POST /v1/subscriptions/{id}` with `cancel_at_period_end`. Stripe refuses it on a
    /// subscription managed by a schedule.
    CancelAtPeriodEnd(bool),
    /// `POST /v1/subscription_schedules` with `from_subscription`: a schedule of one phase,
    /// the current period.
    CreateSchedule,
    /// `POST /v1/subscription_schedules/{id}`: the current phase as Stripe has it, then one
    /// period without the ending modules (released after it), or, when every module ends,
    /// the current phase alone with `end_behavior=cancel`; when none ends any more, the
    /// schedule is released. Written from the schedule as read just before, so a change made
    /// meanwhile (another module set to end) is kept.
    SetNextPhase,
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
    let renews_none = subscription
        .items
        .iter()
        .all(|i| i.module.is_some_and(|m| ending.contains(&m)));
    let mut steps = Vec::new();
    match &subscription.schedule_id {
        // With a schedule, its phases say it all (Stripe refuses the cancel flag on it). They
        // are rewritten from a fresh read, which releases the schedule when nothing ends any
        // more, so a removal another admin made meanwhile is never released away.
        Some(_) => steps.push(EndingStep::SetNextPhase),
        None if ending.is_empty() || renews_none => {
            steps.push(EndingStep::CancelAtPeriodEnd(!ending.is_empty()));
        }
        None => {
            if subscription.cancel_at_period_end {
                steps.push(EndingStep::CancelAtPeriodEnd(false));
            }
            steps.push(EndingStep::CreateSchedule);
            steps.push(EndingStep::SetNextPhase);
        }
    }
    steps
}

/// What the next phase keeps: the current phase's prices without those of the ending
/// modules (`module_of` names a price's module; an unknown price renews).
pub fn renewing_prices<'a>(
    current: &[&'a str],
    ending: &BTreeSet<ServiceModule>,
    module_of: impl Fn(&str) -> Option<ServiceModule>,
) -> Vec<&'a str> {
    current
        .iter()
        .copied()
        .filter(|price| !module_of(price).is_some_and(|m| ending.contains(&m)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use EndingStep::*;
    use ServiceModule::*;

    const END: Timestamp = Timestamp::from_unix(2_000);

    fn plan(modules: &[ServiceModule]) -> Subscription {
        Subscription::sample("sub_1", modules)
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
            vec![CreateSchedule, SetNextPhase]
        );
        // A second removal edits the schedule it already has.
        let mut scheduled = ending(sub, &[EmailAutomation]);
        scheduled.schedule_id = Some("sub_sched_1".into());
        assert_eq!(
            steps_to_end(&scheduled, &set(&[EmailAutomation, SocialInbox])),
            vec![SetNextPhase]
        );
    }

    #[test]
    fn removing_the_last_renewing_module_cancels_at_period_end() {
        let sub = plan(&[LeadGeneration]);
        assert_eq!(
            steps_to_end(&sub, &set(&[LeadGeneration])),
            vec![CancelAtPeriodEnd(true)]
        );
        // With the other module already leaving by schedule: the schedule ends the plan (one
        // write, `end_behavior=cancel`), never a release that would renew everything first.
        let mut scheduled = ending(plan(&[LeadGeneration, EmailAutomation]), &[EmailAutomation]);
        scheduled.schedule_id = Some("sub_sched_1".into());
        assert_eq!(
            steps_to_end(&scheduled, &set(&[LeadGeneration, EmailAutomation])),
            vec![SetNextPhase]
        );
    }

    #[test]
    fn undoing_restores_renewal_with_nothing_else_changed() {
        let mut scheduled = ending(plan(&[LeadGeneration, EmailAutomation]), &[EmailAutomation]);
        scheduled.schedule_id = Some("sub_sched_1".into());
        assert_eq!(steps_to_end(&scheduled, &set(&[])), vec![SetNextPhase]);
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
            vec![CancelAtPeriodEnd(false), CreateSchedule, SetNextPhase]
        );
    }

    #[test]
    fn a_repeated_request_changes_nothing() {
        let mut scheduled = ending(plan(&[LeadGeneration, EmailAutomation]), &[EmailAutomation]);
        scheduled.schedule_id = Some("sub_sched_1".into());
        assert!(steps_to_end(&scheduled, &set(&[EmailAutomation])).is_empty());
        assert!(steps_to_end(&plan(&[LeadGeneration]), &set(&[])).is_empty());
        // A schedule left after its change happened (its last phase running) is rewritten
        // only when a change needs it.
        let mut spent = plan(&[LeadGeneration, EmailAutomation]);
        spent.schedule_id = Some("sub_sched_1".into());
        assert!(steps_to_end(&spent, &set(&[])).is_empty());
        assert_eq!(
            steps_to_end(&spent, &set(&[EmailAutomation])),
            vec![SetNextPhase]
        );
    }

    #[test]
    fn the_next_phase_drops_only_the_ending_modules_prices() {
        let module_of = |p: &str| match p {
            "price_lead" => Some(LeadGeneration),
            "price_email" => Some(EmailAutomation),
            _ => None,
        };
        let current = ["price_lead", "price_email", "price_added_meanwhile"];
        assert_eq!(
            renewing_prices(&current, &set(&[EmailAutomation]), module_of),
            vec!["price_lead", "price_added_meanwhile"]
        );
        assert_eq!(
            renewing_prices(
                &current[..2],
                &set(&[LeadGeneration, EmailAutomation]),
                module_of
            ),
            Vec::<&str>::new()
        );
    }
}
