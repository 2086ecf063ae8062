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

    /// Records that the org has a free trial of `modules` (seen on a trialing subscription):
    /// the first time each is kept, later ones change nothing. One round trip for all.
    pub async fn record_trials(
        &self,
        org: &OrgId,
        modules: &[ServiceModule],
        seen_at: Timestamp,
    ) -> Result<(), StoreError> {
        if modules.is_empty() {
            return Ok(());
        }
        let mut actions = Vec::with_capacity(modules.len());
        for module in modules {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::org(org), keys::trial(*module))))
                .update_expression("SET first_seen_at = if_not_exists(first_seen_at, :at)")
                .expression_attribute_values(":at", number_value(seen_at.unix()))
                .build()
                .map_err(StoreError::unavailable)?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }
}
