//! The org ↔ Stripe customer link: the billing profile and the `CUS#` index item.

use super::*;

impl BillingStore {
    /// Creates the org's billing profile and the customer -> org link, both only if absent, in
    /// one transaction: two concurrent checkouts can never map two customers to one org.
    pub async fn create_billing_profile(&self, profile: &BillingProfile) -> Result<(), StoreError> {
        let record = ProfileRecord {
            pk: keys::org(&profile.org_id),
            sk: keys::PROFILE.to_owned(),
            org_id: profile.org_id.clone(),
            customer_id: profile.customer_id.clone(),
            default_payment_method: profile.default_payment_method.clone(),
            created_at: profile.created_at.unix(),
            pm_synced_at: None,
        };
        let link = LinkRecord {
            pk: keys::customer(&profile.customer_id),
            sk: keys::LINK.to_owned(),
            org_id: profile.org_id.clone(),
            deleted_at: None,
        };
        let mut actions = Vec::with_capacity(2);
        for item in [to_item(&record)?, to_item(&link)?] {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(StoreError::unavailable)?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        match self.transact_or_conflict(actions, None).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::Conflict(
                "billing profile or customer link already exists",
            )),
        }
    }

    pub async fn billing_profile(&self, org: &OrgId) -> Result<Option<BillingProfile>, StoreError> {
        let Some(item) = self.get(keys::org(org), keys::PROFILE, true).await? else {
            return Ok(None);
        };
        let record: ProfileRecord = from_item(item)?;
        Ok(Some(BillingProfile {
            org_id: record.org_id,
            customer_id: record.customer_id,
            default_payment_method: record.default_payment_method,
            created_at: Timestamp::from_unix(record.created_at),
        }))
    }

    /// The org a Stripe customer belongs to (consistent read of the link item).
    pub async fn org_for_customer(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<OrgId>, StoreError> {
        let Some(item) = self.get(keys::customer(customer), keys::LINK, true).await? else {
            return Ok(None);
        };
        Ok(Some(from_item::<LinkRecord>(item)?.org_id))
    }

    /// Links an org to a customer on first contact (checkout completion); idempotent.
    pub async fn link_customer(
        &self,
        org: &OrgId,
        customer: &CustomerId,
    ) -> Result<LinkOutcome, StoreError> {
        for _ in 0..2 {
            if let Some(profile) = self.billing_profile(org).await? {
                return Ok(if &profile.customer_id == customer {
                    LinkOutcome::AlreadyLinked
                } else {
                    LinkOutcome::Conflict {
                        existing_customer: Some(profile.customer_id),
                    }
                });
            }
            if let Some(other) = self.org_for_customer(customer).await?
                && &other != org
            {
                return Ok(LinkOutcome::Conflict {
                    existing_customer: None,
                });
            }
            let profile = BillingProfile {
                org_id: org.clone(),
                customer_id: customer.clone(),
                default_payment_method: None,
                created_at: Timestamp::now(),
            };
            match self.create_billing_profile(&profile).await {
                Ok(()) => return Ok(LinkOutcome::Created),
                // Lost a race with another writer: read again and report what won.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contention)
    }

    /// Stripe deleted the org's customer: the billing profile (if it still names that customer)
    /// and its payment methods go, so the org can check out again with a new customer; the
    /// customer link is kept, marked deleted. One transaction with the event marker.
    pub async fn unlink_deleted_customer(
        &self,
        org: &OrgId,
        customer: &CustomerId,
        marker: Option<&EventMarker>,
    ) -> Result<Applied, StoreError> {
        let pk = keys::org(org);
        for _ in 0..MAX_ATTEMPTS {
            let profile = self.billing_profile(org).await?;
            let now = Timestamp::now();
            let mark_link = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::customer(customer), keys::LINK)))
                .update_expression("SET deleted_at = if_not_exists(deleted_at, :now)")
                .condition_expression("org_id = :org")
                .expression_attribute_values(":now", number_value(now.unix()))
                .expression_attribute_values(":org", string_value(org.as_str()))
                .build()
                .map_err(StoreError::unavailable)?;
            let mut actions = vec![TransactWriteItem::builder().update(mark_link).build()];
            if profile.is_some_and(|p| &p.customer_id == customer) {
                let drop_profile = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk.clone(), keys::PROFILE)))
                    .condition_expression("customer_id = :customer")
                    .expression_attribute_values(":customer", string_value(customer.as_str()))
                    .build()
                    .map_err(StoreError::unavailable)?;
                actions.push(TransactWriteItem::builder().delete(drop_profile).build());
                for item in self
                    .query_prefix(pk.clone(), keys::PAYMENT_METHOD_PREFIX)
                    .await?
                {
                    let Some(AttributeValue::S(sk)) = item.get(keys::SK) else {
                        continue;
                    };
                    // Four kept for the marker, the parked copy's removal and the audit items.
                    if actions.len() >= 96 {
                        break;
                    }
                    actions.push(self.delete_action(pk.clone(), sk.clone())?);
                }
            }
            if let Some(applied) = self.transact_marked(actions, marker, org).await? {
                return Ok(applied);
            }
            // The profile changed between the read and the write: read again.
        }
        Err(StoreError::Contention)
    }
}
