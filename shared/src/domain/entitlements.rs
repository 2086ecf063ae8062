//! Access rights derived from an organization's subscriptions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::module::ServiceModule;
use super::records::{Subscription, SubscriptionStatus};
use super::time::Timestamp;

/// How long a past-due subscription keeps its modules after the first failed payment, so a
/// card that expired over the weekend does not lock a paying team out on Monday morning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracePolicy {
    pub past_due_grace_seconds: i64,
}

impl GracePolicy {
    pub const DEFAULT_DAYS: i64 = 7;

    pub const fn days(days: i64) -> Self {
        Self {
            past_due_grace_seconds: days * 86_400,
        }
    }
}

impl Default for GracePolicy {
    fn default() -> Self {
        Self::days(Self::DEFAULT_DAYS)
    }
}

/// What a subscription grants a module: for good, or until a moment (the end of a grace period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// `None`: as long as the subscription stays as it is.
    pub until: Option<Timestamp>,
}

impl Grant {
    const FOREVER: Grant = Grant { until: None };

    fn covers(self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| now < until)
    }

    /// This grant, ended no later than `end`.
    fn ending_at(self, end: Option<Timestamp>) -> Grant {
        match (self.until, end) {
            (until, None) => Grant { until },
            (None, Some(end)) => Grant { until: Some(end) },
            (Some(until), Some(end)) => Grant {
                until: Some(until.min(end)),
            },
        }
    }

    fn union(self, other: Grant) -> Grant {
        match (self.until, other.until) {
            (None, _) | (_, None) => Grant::FOREVER,
            (Some(a), Some(b)) => Grant {
                until: Some(a.max(b)),
            },
        }
    }
}

/// The paid modules an organization may use, with how long; BasicCRM is always included.
///
/// It is stored precomputed (one item per org, so the paywall is one GetItem) and evaluated
/// against the clock at read time, so a grace period runs out without any write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementSet {
    grants: BTreeMap<ServiceModule, Grant>,
}

impl EntitlementSet {
    /// The union of what every subscription grants: an org may hold several.
    pub fn from_subscriptions<'a>(
        subscriptions: impl IntoIterator<Item = &'a Subscription>,
        policy: GracePolicy,
    ) -> Self {
        let mut grants: BTreeMap<ServiceModule, Grant> = BTreeMap::new();
        for sub in subscriptions {
            let Some(grant) = grant_for(sub, policy) else {
                continue;
            };
            for item in &sub.items {
                let Some(module) = item.module.filter(|m| !m.is_free()) else {
                    continue;
                };
                // A module removed at period end (or a plan cancelling then) is paid through
                // that date and not after it, whenever Stripe's own change reaches the table.
                let grant = grant.ending_at(item.ends_at);
                grants
                    .entry(module)
                    .and_modify(|g| *g = g.union(grant))
                    .or_insert(grant);
            }
        }
        Self { grants }
    }

    pub fn from_grants(grants: impl IntoIterator<Item = (ServiceModule, Grant)>) -> Self {
        Self {
            grants: grants.into_iter().filter(|(m, _)| !m.is_free()).collect(),
        }
    }

    pub fn grants(&self) -> &BTreeMap<ServiceModule, Grant> {
        &self.grants
    }

    pub fn unlocks(&self, module: ServiceModule, now: Timestamp) -> bool {
        module.is_free() || self.grants.get(&module).is_some_and(|g| g.covers(now))
    }

    /// Every module unlocked at `now`, BasicCRM first.
    pub fn unlocked_at(&self, now: Timestamp) -> ModuleSet {
        ServiceModule::ALL
            .into_iter()
            .filter(|m| self.unlocks(*m, now))
            .collect()
    }
}

fn grant_for(sub: &Subscription, policy: GracePolicy) -> Option<Grant> {
    match sub.status {
        SubscriptionStatus::Active | SubscriptionStatus::Trialing => Some(Grant::FOREVER),
        SubscriptionStatus::PastDue => {
            // Without a recorded start, the renewal (period start) is when the payment failed.
            let since = sub.past_due_since.or(sub.current_period_start)?;
            Some(Grant {
                until: Some(since.plus_seconds(policy.past_due_grace_seconds)),
            })
        }
        SubscriptionStatus::Incomplete
        | SubscriptionStatus::IncompleteExpired
        | SubscriptionStatus::Canceled
        | SubscriptionStatus::Unpaid
        | SubscriptionStatus::Paused => None,
    }
}

/// A set of modules, cheap to copy and to test (one bit per module).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ModuleSet(u8);

impl ModuleSet {
    pub fn contains(self, module: ServiceModule) -> bool {
        self.0 & module.bit() != 0
    }

    pub fn insert(&mut self, module: ServiceModule) {
        self.0 |= module.bit();
    }

    pub fn iter(self) -> impl Iterator<Item = ServiceModule> {
        ServiceModule::ALL
            .into_iter()
            .filter(move |m| self.contains(*m))
    }

    /// Comma-separated names, the form used in the authorizer context.
    pub fn to_csv(self) -> String {
        self.iter()
            .map(ServiceModule::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses the authorizer-context form; unknown names are ignored, BasicCRM is always in.
    pub fn from_csv(csv: &str) -> Self {
        let mut set: ModuleSet = csv
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        set.insert(ServiceModule::BasicCrm);
        set
    }
}

impl FromIterator<ServiceModule> for ModuleSet {
    fn from_iter<I: IntoIterator<Item = ServiceModule>>(iter: I) -> Self {
        let mut set = ModuleSet::default();
        for m in iter {
            set.insert(m);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_unix(1_700_000_000);

    fn sub(id: &str, status: SubscriptionStatus, modules: &[ServiceModule]) -> Subscription {
        let mut sub = Subscription::sample(id, modules);
        sub.status = status;
        sub.current_period_start = Some(T0);
        sub.current_period_end = Some(T0.plus_seconds(30 * 86_400));
        sub.created = Some(T0);
        sub
    }

    fn unlocked(subs: &[Subscription], now: Timestamp) -> Vec<ServiceModule> {
        EntitlementSet::from_subscriptions(subs, GracePolicy::default())
            .unlocked_at(now)
            .iter()
            .collect()
    }

    #[test]
    fn every_status_grants_or_locks_as_specified() {
        use ServiceModule::*;
        use SubscriptionStatus::*;
        let now = T0.plus_seconds(60);
        for status in SubscriptionStatus::ALL {
            let got = unlocked(&[sub("sub_1", status, &[LeadGeneration])], now);
            let expected: &[ServiceModule] = match status {
                Active | Trialing | PastDue => &[BasicCrm, LeadGeneration],
                Incomplete | IncompleteExpired | Canceled | Unpaid | Paused => &[BasicCrm],
            };
            assert_eq!(got, expected, "{status:?}");
        }
    }

    #[test]
    fn a_module_removed_at_period_end_is_unlocked_until_that_date_and_not_after() {
        use ServiceModule::*;
        let end = T0.plus_seconds(30 * 86_400);
        let mut s = sub(
            "sub_1",
            SubscriptionStatus::Active,
            &[LeadGeneration, EmailAutomation],
        );
        s.items[0].ends_at = Some(end);
        assert_eq!(
            unlocked(std::slice::from_ref(&s), end.plus_seconds(-1)),
            vec![BasicCrm, LeadGeneration, EmailAutomation]
        );
        assert_eq!(
            unlocked(std::slice::from_ref(&s), end),
            vec![BasicCrm, EmailAutomation]
        );
        // Past due with a grace running past the end: the end still wins.
        s.status = SubscriptionStatus::PastDue;
        s.past_due_since = Some(end.plus_seconds(-86_400));
        assert_eq!(
            unlocked(std::slice::from_ref(&s), end),
            vec![BasicCrm, EmailAutomation]
        );
        // Another subscription renewing the module keeps it.
        let other = sub("sub_2", SubscriptionStatus::Active, &[LeadGeneration]);
        assert_eq!(
            unlocked(&[s, other], end.plus_seconds(1)),
            vec![BasicCrm, LeadGeneration, EmailAutomation]
        );
    }

    #[test]
    fn no_subscription_still_unlocks_basic_crm() {
        assert_eq!(unlocked(&[], T0), vec![ServiceModule::BasicCrm]);
        assert!(EntitlementSet::default().unlocks(ServiceModule::BasicCrm, T0));
    }

    #[test]
    fn past_due_grace_ends_exactly_seven_days_after_the_first_failure() {
        let mut s = sub(
            "sub_1",
            SubscriptionStatus::PastDue,
            &[ServiceModule::SocialInbox],
        );
        let failed_at = T0.plus_seconds(3_600);
        s.past_due_since = Some(failed_at);
        let set = EntitlementSet::from_subscriptions([&s], GracePolicy::default());
        let end = failed_at.plus_seconds(7 * 86_400);
        assert!(set.unlocks(ServiceModule::SocialInbox, end.plus_seconds(-1)));
        assert!(!set.unlocks(ServiceModule::SocialInbox, end));
        assert!(!set.unlocks(ServiceModule::SocialInbox, end.plus_seconds(1)));
        assert!(set.unlocks(ServiceModule::BasicCrm, end.plus_seconds(1)));
    }

    #[test]
    fn grace_is_configurable_and_falls_back_to_the_period_start() {
        let s = sub(
            "sub_1",
            SubscriptionStatus::PastDue,
            &[ServiceModule::Integrations],
        );
        let set = EntitlementSet::from_subscriptions([&s], GracePolicy::days(1));
        assert!(set.unlocks(ServiceModule::Integrations, T0.plus_seconds(86_399)));
        assert!(!set.unlocks(ServiceModule::Integrations, T0.plus_seconds(86_400)));
        let zero = EntitlementSet::from_subscriptions([&s], GracePolicy::days(0));
        assert!(!zero.unlocks(ServiceModule::Integrations, T0));
    }

    #[test]
    fn several_subscriptions_union_and_the_longest_grant_wins() {
        use ServiceModule::*;
        let active = sub("sub_a", SubscriptionStatus::Active, &[LeadGeneration]);
        let mut due = sub(
            "sub_b",
            SubscriptionStatus::PastDue,
            &[LeadGeneration, EmailAutomation],
        );
        due.past_due_since = Some(T0);
        let canceled = sub("sub_c", SubscriptionStatus::Canceled, &[EnterpriseFeatures]);
        let subs = [active, due, canceled];
        let later = T0.plus_seconds(8 * 86_400);
        assert_eq!(
            unlocked(&subs, T0),
            vec![BasicCrm, LeadGeneration, EmailAutomation]
        );
        // The grace ran out for EmailAutomation, but the active subscription still covers leads.
        assert_eq!(unlocked(&subs, later), vec![BasicCrm, LeadGeneration]);
    }

    #[test]
    fn grace_start_is_kept_while_past_due_and_cleared_after() {
        let stored = {
            let mut s = sub("sub_1", SubscriptionStatus::PastDue, &[]);
            s.past_due_since = Some(T0);
            s
        };
        let fresh = sub("sub_1", SubscriptionStatus::PastDue, &[]);
        let kept = fresh
            .clone()
            .with_grace_start_from(Some(&stored), T0.plus_seconds(500));
        assert_eq!(kept.past_due_since, Some(T0));
        // First seen past due: the grace starts at Stripe's time of the failed renewal (the
        // unpaid period's start), not when this service happened to read it.
        let first = fresh
            .clone()
            .with_grace_start_from(None, T0.plus_seconds(500));
        assert_eq!(first.past_due_since, Some(T0));
        let mut no_period = fresh;
        no_period.current_period_start = None;
        let seen = no_period.with_grace_start_from(None, T0.plus_seconds(500));
        assert_eq!(seen.past_due_since, Some(T0.plus_seconds(500)));
        let healed = sub("sub_1", SubscriptionStatus::Active, &[])
            .with_grace_start_from(Some(&stored), T0.plus_seconds(900));
        assert_eq!(healed.past_due_since, None);
    }

    #[test]
    fn module_set_csv_round_trip() {
        use ServiceModule::*;
        let set: ModuleSet = [LeadGeneration, BasicCrm].into_iter().collect();
        assert_eq!(set.to_csv(), "BasicCRM,LeadGeneration");
        assert_eq!(ModuleSet::from_csv("LeadGeneration,Bogus"), set);
        assert!(ModuleSet::from_csv("").contains(BasicCrm));
    }
}
