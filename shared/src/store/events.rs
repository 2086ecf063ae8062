//! Processed-event markers, the transaction runner every sync write goes through, and events
//! parked for reconciliation.

use super::*;

impl BillingStore {
    /// Whether an event id was already processed (a consistent read: a retry right after a
    /// success must see it).
    pub async fn event_processed(&self, id: &EventId) -> Result<bool, StoreError> {
        Ok(self
            .get(keys::event(id), keys::EVENT, true)
            .await?
            .is_some())
    }

    /// Whether an event was already processed, and the org a customer is linked to: both in
    /// one consistent BatchGetItem (the webhook sends it while Stripe is re-read).
    pub async fn event_processed_and_org(
        &self,
        id: &EventId,
        customer: Option<&CustomerId>,
    ) -> Result<(bool, Option<OrgId>), StoreError> {
        let marker_key = key(keys::event(id), keys::EVENT);
        let link_key = customer.map(|c| key(keys::customer(c), keys::LINK));
        let mut wanted = vec![marker_key.clone()];
        wanted.extend(link_key.clone());
        let mut found: Vec<Item> = Vec::new();
        let mut pending = Some(
            aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(wanted))
                .consistent_read(true)
                .build()
                .map_err(StoreError::unavailable)?,
        );
        // Unprocessed keys (throttling) are asked for again, a few times at most.
        for _ in 0..MAX_ATTEMPTS {
            let Some(keys_wanted) = pending.take() else {
                break;
            };
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys_wanted)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            if let Some(mut responses) = out.responses {
                found.extend(responses.remove(&self.table).unwrap_or_default());
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|k| !k.keys.is_empty());
        }
        if pending.is_some() {
            return Err(StoreError::Unavailable(
                "DynamoDB left keys unprocessed".to_owned(),
            ));
        }
        let is = |item: &Item, wanted: &Item| {
            item.get(keys::PK) == wanted.get(keys::PK) && item.get(keys::SK) == wanted.get(keys::SK)
        };
        let processed = found.iter().any(|i| is(i, &marker_key));
        let org = match link_key {
            Some(link_key) => match found.into_iter().find(|i| is(i, &link_key)) {
                Some(item) => Some(from_item::<LinkRecord>(item)?.org_id),
                None => None,
            },
            None => None,
        };
        Ok((processed, org))
    }

    /// Marks an event processed when it had no other effect. `Duplicate` if it already was.
    /// `org` names the org in the marker's audit entry.
    pub async fn record_event(
        &self,
        marker: &EventMarker,
        org: Option<&OrgId>,
    ) -> Result<Applied, StoreError> {
        let actions = self.marker_actions(marker, Timestamp::now(), "processed", org)?;
        self.transact(actions, Some(0), Applied::Written).await
    }

    /// Runs a transaction, retrying it when DynamoDB reports a conflict with another
    /// transaction in flight. `Some(Duplicate)` when the event marker (at `marker_index`)
    /// already existed; `None` when another condition failed, so the caller can re-read and
    /// decide again (or know its read was stale).
    pub(super) async fn transact_or_conflict(
        &self,
        actions: Vec<TransactWriteItem>,
        marker_index: Option<usize>,
    ) -> Result<Option<Applied>, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Some(Applied::Written)),
                Err(err) => err,
            };
            let Some(codes) = cancellation_codes(&err) else {
                return Err(StoreError::unavailable(err));
            };
            if marker_index.is_some_and(|i| failed_condition(&codes, i)) {
                return Ok(Some(Applied::Duplicate));
            }
            if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                return Ok(None);
            }
            if !codes.iter().any(|c| c == "TransactionConflict") {
                return Err(StoreError::unavailable(err));
            }
            // Another transaction held one of our items: nothing was decided, try again.
            let jitter = (FetchTime::now().micros() % 7) as u64;
            tokio::time::sleep(std::time::Duration::from_millis(
                5 * (attempt as u64 + 1) + jitter,
            ))
            .await;
        }
        Err(StoreError::Contention)
    }

    pub(super) async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
        marker_index: Option<usize>,
        on_success: Applied,
    ) -> Result<Applied, StoreError> {
        match self.transact_or_conflict(actions, marker_index).await? {
            Some(Applied::Written) => Ok(on_success),
            Some(other) => Ok(other),
            None => Err(StoreError::Contention),
        }
    }

    /// A sync write whose only condition is "nothing newer is stored": the event marker goes
    /// after `actions` when there is one, and a failed condition (a newer copy is stored) still
    /// marks the event.
    pub(super) async fn transact_or_stale(
        &self,
        actions: Vec<TransactWriteItem>,
        marker: Option<&EventMarker>,
        org: &OrgId,
    ) -> Result<Applied, StoreError> {
        match self.transact_marked(actions, marker, org).await? {
            Some(applied) => Ok(applied),
            None => self.finish_stale(marker, Some(org)).await,
        }
    }

    /// [`Self::transact_or_conflict`] of an effect on `org` with its event marked `processed`
    /// (and its delivery audited) in the same transaction, when there is one.
    pub(super) async fn transact_marked(
        &self,
        mut actions: Vec<TransactWriteItem>,
        marker: Option<&EventMarker>,
        org: &OrgId,
    ) -> Result<Option<Applied>, StoreError> {
        let marker_index = actions.len();
        if let Some(marker) = marker {
            actions.extend(self.marker_actions(
                marker,
                Timestamp::now(),
                "processed",
                Some(org),
            )?);
        }
        self.transact_or_conflict(actions, marker.map(|_| marker_index))
            .await
    }

    /// A sync found nothing newer to write (or nothing to write at all): still mark the event
    /// so a redelivery is a no-op. `Stale`, or `Duplicate` when the event was already marked.
    pub async fn finish_stale(
        &self,
        marker: Option<&EventMarker>,
        org: Option<&OrgId>,
    ) -> Result<Applied, StoreError> {
        match marker {
            Some(marker) => match self
                .transact(
                    self.marker_actions(marker, Timestamp::now(), "up_to_date", org)?,
                    Some(0),
                    Applied::Written,
                )
                .await?
            {
                Applied::Written => Ok(Applied::Stale),
                other => Ok(other),
            },
            None => Ok(Applied::Stale),
        }
    }

    /// Keeps an event that needs a fix elsewhere, for the reconciliation job. Parking it again
    /// (a redelivery, a replay that still fails) keeps the first `received_at` and its TTL, so
    /// an event that never heals expires 90 days after it first arrived; the latest reason
    /// and the number of tries are updated.
    pub async fn record_unresolved(&self, event: &UnresolvedEvent) -> Result<(), StoreError> {
        let data = serde_dynamo::to_attribute_value(event).map_err(StoreError::corrupt)?;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::RECONCILE_PK.to_owned(),
                keys::reconcile(&event.event_id),
            )))
            .update_expression(
                "SET #data = if_not_exists(#data, :data), expires_at = if_not_exists(expires_at, :expires), \
                 last_reason = :reason, tried_at = :now, tries = if_not_exists(tries, :zero) + :one",
            )
            .expression_attribute_names("#data", "data")
            .expression_attribute_values(":data", data)
            .expression_attribute_values(
                ":expires",
                number_value(event.received_at.plus_seconds(RECONCILE_TTL_SECONDS).unix()),
            )
            .expression_attribute_values(":reason", string_value(event.reason.as_str()))
            .expression_attribute_values(":now", number_value(Timestamp::now().unix()))
            .expression_attribute_values(":zero", number_value(0))
            .expression_attribute_values(":one", number_value(1))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    /// Events waiting for reconciliation, oldest first.
    pub async fn unresolved_events(&self) -> Result<Vec<UnresolvedEvent>, StoreError> {
        let mut events = self.parked_records().await?;
        events.sort_by(|a, b| {
            (a.data.received_at, a.data.event_id.as_str())
                .cmp(&(b.data.received_at, b.data.event_id.as_str()))
        });
        Ok(events.into_iter().map(|r| r.data).collect())
    }

    /// Events waiting for reconciliation, the one tried longest ago first: a replay that runs
    /// out of budget leaves the rest for the next run, which starts where this one stopped
    /// instead of retrying the same failing head again.
    pub async fn parked_for_replay(&self) -> Result<Vec<UnresolvedEvent>, StoreError> {
        let mut events = self.parked_records().await?;
        events.sort_by(|a, b| {
            (a.tried_at.unwrap_or(0), a.data.event_id.as_str())
                .cmp(&(b.tried_at.unwrap_or(0), b.data.event_id.as_str()))
        });
        Ok(events.into_iter().map(|r| r.data).collect())
    }

    async fn parked_records(&self) -> Result<Vec<ReconcileRecord>, StoreError> {
        self.query_prefix(keys::RECONCILE_PK.to_owned(), "EVT#")
            .await?
            .into_iter()
            .map(from_item::<ReconcileRecord>)
            .collect()
    }
}
