//! Per-org request budgets (the eager sync's).

use super::*;

impl BillingStore {
    /// Counts one use of a per-org budget (`limit` uses per `window_seconds`), atomically.
    /// `false` when the budget of the current window is spent.
    pub async fn take_rate_token(
        &self,
        org: &OrgId,
        bucket: &str,
        limit: u32,
        window_seconds: i64,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::now().unix();
        let window = now - now.rem_euclid(window_seconds.max(1));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::org(org), format!("RATE#{bucket}#{window}"))))
            .update_expression("ADD #count :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", number_value(1))
            .expression_attribute_values(":limit", number_value(limit))
            .expression_attribute_values(
                ":expires",
                number_value(window + window_seconds.max(1) * 2),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(StoreError::unavailable(err)),
        }
    }
}
