//! The customer's payment methods and default, replaced by each snapshot from Stripe.

use super::*;

impl BillingStore {
    /// Replaces the org's stored payment methods and default with a snapshot read from Stripe at
    /// `fetched_at`, unless a newer snapshot is already stored. Requires the billing profile.
    pub async fn apply_customer(
        &self,
        org: &OrgId,
        snapshot: &CustomerSnapshot,
        fetched_at: FetchTime,
        marker: Option<&EventMarker>,
    ) -> Result<Applied, StoreError> {
        let pk = keys::org(org);
        let stored = self
            .query_prefix(pk.clone(), keys::PAYMENT_METHOD_PREFIX)
            .await?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::PROFILE)))
            .condition_expression(
                "attribute_exists(PK) AND customer_id = :customer AND (attribute_not_exists(pm_synced_at) OR pm_synced_at < :fetched)",
            )
            .expression_attribute_values(":customer", string_value(snapshot.customer_id.as_str()))
            .expression_attribute_values(":fetched", number_value(fetched_at.micros()));
        update = match &snapshot.default_payment_method {
            Some(pm) => update
                .update_expression("SET pm_synced_at = :fetched, default_payment_method = :pm")
                .expression_attribute_values(":pm", string_value(pm.as_str())),
            None => update
                .update_expression("SET pm_synced_at = :fetched REMOVE default_payment_method"),
        };
        let mut actions = vec![
            TransactWriteItem::builder()
                .update(update.build().map_err(StoreError::unavailable)?)
                .build(),
        ];
        let keep: Vec<&PaymentMethod> = snapshot
            .payment_methods
            .iter()
            .take(MAX_PAYMENT_METHODS)
            .collect();
        if keep.len() < snapshot.payment_methods.len() {
            tracing::warn!(org = %org, "customer has more payment methods than stored; extra ones skipped");
        }
        let keep_keys: Vec<String> = keep.iter().map(|pm| keys::payment_method(&pm.id)).collect();
        for pm in &keep {
            let record = PaymentMethodRecord {
                pk: pk.clone(),
                sk: keys::payment_method(&pm.id),
                data: (*pm).clone(),
            };
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(&record)?))
                .build()
                .map_err(StoreError::unavailable)?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        for item in stored {
            let Some(AttributeValue::S(sk)) = item.get(keys::SK) else {
                continue;
            };
            if keep_keys.contains(sk) || actions.len() >= 96 {
                continue;
            }
            actions.push(self.delete_action(pk.clone(), sk.clone())?);
        }
        self.transact_or_stale(actions, marker, org).await
    }

    /// The org's payment methods with the customer's default, newest first.
    pub async fn payment_methods(
        &self,
        org: &OrgId,
    ) -> Result<(Vec<PaymentMethod>, Option<PaymentMethodId>), StoreError> {
        let (items, profile) = tokio::try_join!(
            self.query_prefix(keys::org(org), keys::PAYMENT_METHOD_PREFIX),
            self.billing_profile(org)
        )?;
        let mut methods = items
            .into_iter()
            .map(|i| from_item::<PaymentMethodRecord>(i).map(|r| r.data))
            .collect::<Result<Vec<_>, _>>()?;
        methods.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok((methods, profile.and_then(|p| p.default_payment_method)))
    }
}
