//! The org's plan of one billing interval: the one subscription that later purchases of that
//! interval join as items (Stripe bills one subscription as one invoice per period), and the
//! rules for adding to it.

use super::{BillingInterval, Subscription, SubscriptionStatus, Timestamp};

/// What a purchase of modules of one interval does, given the org's subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan<'a> {
    /// No subscription of that interval: the first purchase goes through Checkout.
    None,
    /// A subscription of that interval that is paid up: modules are added to it.
    Live(&'a Subscription),
    /// A paid-up subscription of that interval set to end (`cancel_at_period_end` or
    /// `cancel_at`): an added module would be charged for the rest of the period and end
    /// with it, so nothing is added until the plan is renewed.
    Ending(&'a Subscription),
    /// A subscription of that interval that owes an invoice (past due, unpaid): nothing is
    /// added until it is paid, or the new items would share its dunning.
    Blocked(&'a Subscription),
}

fn of_interval(subscription: &Subscription, interval: BillingInterval) -> bool {
    let mut intervals = subscription.items.iter().filter_map(|i| i.interval);
    // Stripe refuses mixed intervals on one subscription, so the first item tells.
    intervals.next() == Some(interval)
}

fn is_live(status: SubscriptionStatus) -> bool {
    matches!(
        status,
        SubscriptionStatus::Active | SubscriptionStatus::Trialing
    )
}

fn owes(status: SubscriptionStatus) -> bool {
    matches!(
        status,
        SubscriptionStatus::PastDue | SubscriptionStatus::Unpaid
    )
}

fn ends(subscription: &Subscription) -> bool {
    subscription.cancel_at_period_end || subscription.cancel_at.is_some()
}

/// The org's plan of `interval`. With several subscriptions of one interval (bought before
/// purchases were merged into one), the oldest live one takes new items. An `incomplete`
/// (a first payment never made) or `paused` subscription grants nothing and is no plan: the
/// org may buy the interval afresh rather than be locked out by it.
pub fn plan_for(subscriptions: &[Subscription], interval: BillingInterval) -> Plan<'_> {
    let mut candidates: Vec<&Subscription> = subscriptions
        .iter()
        .filter(|s| !s.status.is_terminal() && of_interval(s, interval))
        .collect();
    candidates.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    let live = || candidates.iter().filter(|s| is_live(s.status));
    if let Some(renewing) = live().find(|s| !ends(s)) {
        return Plan::Live(renewing);
    }
    if let Some(ending) = live().next() {
        return Plan::Ending(ending);
    }
    candidates
        .iter()
        .find(|s| owes(s.status))
        .map_or(Plan::None, |s| Plan::Blocked(s))
}

/// How long a preview's `proration_date` may be used to charge: past this the buyer sees
/// a fresh preview rather than pay for time that has already passed.
pub const PREVIEW_VALID_SECONDS: i64 = 3600;
/// Clock difference tolerated between the preview and the add (one function, two containers).
const CLOCK_SKEW_SECONDS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProrationDateError {
    /// Later than now: never a date this service previewed.
    InTheFuture,
    /// Older than [`PREVIEW_VALID_SECONDS`], or before the current period began (the period
    /// renewed since the preview, so the preview's figures no longer apply).
    Expired,
}

/// Whether a preview's proration date may price the add now, in a period starting at
/// `period_start`.
pub fn check_proration_date(
    date: Timestamp,
    now: Timestamp,
    period_start: Option<Timestamp>,
) -> Result<(), ProrationDateError> {
    if date.unix() > now.unix() + CLOCK_SKEW_SECONDS {
        return Err(ProrationDateError::InTheFuture);
    }
    if date.unix() < now.unix() - PREVIEW_VALID_SECONDS
        || period_start.is_some_and(|start| date.unix() < start.unix())
    {
        return Err(ProrationDateError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(
        id: &str,
        status: SubscriptionStatus,
        interval: BillingInterval,
        created: i64,
    ) -> Subscription {
        let mut sub = Subscription::sample(id, &[crate::domain::ServiceModule::LeadGeneration]);
        sub.status = status;
        sub.created = Some(Timestamp::from_unix(created));
        sub.items[0].interval = Some(interval);
        sub
    }

    #[test]
    fn the_plan_is_the_oldest_live_subscription_of_the_interval() {
        use BillingInterval::{Month, Year};
        use SubscriptionStatus::*;
        let subs = vec![
            sub("sub_year", Active, Year, 1),
            sub("sub_old_canceled", Canceled, Month, 2),
            sub("sub_new", Active, Month, 9),
            sub("sub_old", Trialing, Month, 5),
        ];
        assert_eq!(plan_for(&subs, Month), Plan::Live(&subs[3]));
        assert_eq!(plan_for(&subs, Year), Plan::Live(&subs[0]));
        assert_eq!(plan_for(&subs[1..2], Month), Plan::None);
        assert_eq!(plan_for(&[], Year), Plan::None);
        let owing = vec![sub("sub_due", PastDue, Month, 1)];
        assert_eq!(plan_for(&owing, Month), Plan::Blocked(&owing[0]));
        let unpaid = vec![sub("sub_unpaid", Unpaid, Month, 1)];
        assert_eq!(plan_for(&unpaid, Month), Plan::Blocked(&unpaid[0]));
        // A first payment never made, or a paused plan, grants nothing and locks nothing out.
        for status in [Incomplete, Paused] {
            assert_eq!(
                plan_for(&[sub("sub_x", status, Month, 1)], Month),
                Plan::None
            );
        }
        // A plan set to end takes no new module; a renewing one of the interval does.
        let mut ending = sub("sub_ending", Active, Month, 1);
        ending.cancel_at_period_end = true;
        assert_eq!(
            plan_for(std::slice::from_ref(&ending), Month),
            Plan::Ending(&ending)
        );
        let mut at = sub("sub_cancel_at", Active, Month, 1);
        at.cancel_at = Some(Timestamp::from_unix(3_000));
        assert_eq!(
            plan_for(std::slice::from_ref(&at), Month),
            Plan::Ending(&at)
        );
        let both = vec![ending.clone(), sub("sub_renewing", Active, Month, 2)];
        assert_eq!(plan_for(&both, Month), Plan::Live(&both[1]));
        // A paid-up subscription of the interval wins over one that owes.
        let both = vec![
            sub("sub_due", PastDue, Month, 1),
            sub("sub_ok", Active, Month, 3),
        ];
        assert_eq!(plan_for(&both, Month), Plan::Live(&both[1]));
    }

    #[test]
    fn a_proration_date_is_valid_for_an_hour_within_the_period() {
        let now = Timestamp::from_unix(100_000);
        let at = |s: i64| Timestamp::from_unix(s);
        let start = Some(at(50_000));
        assert_eq!(check_proration_date(at(100_000), now, start), Ok(()));
        assert_eq!(check_proration_date(at(100_000 - 3600), now, start), Ok(()));
        assert_eq!(
            check_proration_date(at(100_000 - 3601), now, start),
            Err(ProrationDateError::Expired)
        );
        assert_eq!(
            check_proration_date(at(99_000), now, Some(at(99_500))),
            Err(ProrationDateError::Expired),
            "the period renewed after the preview"
        );
        assert_eq!(check_proration_date(at(100_060), now, start), Ok(()));
        assert_eq!(
            check_proration_date(at(100_061), now, start),
            Err(ProrationDateError::InTheFuture)
        );
    }
}
