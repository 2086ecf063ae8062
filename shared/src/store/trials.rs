//! Free trials an org has had, one item per module (`ORG#<org>` / `TRIAL#<module>`). Kept in
//! the org's partition, so neither a deleted subscription nor a deleted Stripe customer gives
//! a module a second trial.

use super::*;
use crate::domain::ServiceModule;

impl BillingStore {
    /// The modules the org has had a free trial of.
    pub async fn trialed_modules(&self, org: &OrgId) -> Result<Vec<ServiceModule>, StoreError> {
        let items = self
            .query_prefix(keys::org(org), keys::TRIAL_PREFIX)
            .await?;
        let mut modules: Vec<ServiceModule> = items
            .iter()
            .filter_map(|item| match item.get(keys::SK) {
                Some(AttributeValue::S(sk)) => sk.strip_prefix(keys::TRIAL_PREFIX)?.parse().ok(),
                _ => None,
            })
            .collect();
        modules.sort();
        Ok(modules)
    }

    /// Records that the org has had a free trial of `modules` (seen on a subscription with a
    /// trial): the first time each is kept, later ones change nothing. Plain conditional-free
    /// updates, one per module: idempotent, so concurrent syncs of one subscription never
    /// conflict (a transaction over the same items would be cancelled).
    pub async fn record_trials(
        &self,
        org: &OrgId,
        modules: &[ServiceModule],
        seen_at: Timestamp,
    ) -> Result<(), StoreError> {
        // Concurrently: a plan of several trialing modules costs one wait.
        let mut unique = modules.to_vec();
        unique.sort();
        unique.dedup();
        futures_util::future::try_join_all(unique.into_iter().map(|module| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::org(org), keys::trial(module))))
                .update_expression("SET first_seen_at = if_not_exists(first_seen_at, :at)")
                .expression_attribute_values(":at", number_value(seen_at.unix()))
                .send()
        }))
        .await
        .map_err(StoreError::unavailable)?;
        Ok(())
    }
}
