//! The webhook audit trail: every verified delivery kept with its exact payload (compressed when
//! large), readable by event and by org; refused deliveries keep their metadata only, a few a minute; a replay goes
//! through the same idempotent path and applies nothing twice.

use aws_sdk_dynamodb::types::AttributeValue;
use billing::domain::{EventId, OrgId, Timestamp};
use billing::store::audit::COMPRESS_ABOVE_BYTES;
use billing::webhook::{Outcome, ReplayError, WebhookSecret};
use pss_billing_tests::rig::{Rig, event};
use pss_billing_tests::unique;
use serde_json::json;

/// The subscription's stored `fetched_at` and the entitlements version: what a second
/// application would change.
async fn write_marks(rig: &Rig, org: &OrgId) -> (i64, u64) {
    let subs = rig.store.subscriptions(org).await.unwrap();
    let version = rig
        .store
        .entitlements(org, true)
        .await
        .unwrap()
        .unwrap()
        .version;
    (subs[0].fetched_at.micros(), version)
}

#[tokio::test]
async fn verified_deliveries_are_kept_by_event_and_org_and_a_replay_applies_nothing_twice() {
    let rig = Rig::on_fake_stripe().await;
    let (customer, org) = rig.linked_customer("audit").await;
    let sub = rig.put_subscription(&customer, "leadgen_monthly").await;
    let evt_id = unique("evt_");
    let evt = event(&evt_id, "customer.subscription.created", &sub);
    assert_eq!(rig.deliver(&evt).await.1["outcome"], "processed");
    assert_eq!(rig.deliver(&evt).await.1["outcome"], "duplicate");
    let id = EventId::parse(&evt_id).unwrap();

    let kept = rig.store.deliveries_of_event(&id).await.unwrap();
    assert_eq!(
        kept.iter().map(|d| d.outcome.as_str()).collect::<Vec<_>>(),
        ["processed", "duplicate"],
        "every delivery, oldest first"
    );
    let first = &kept[0];
    assert_eq!(first.event_type, "customer.subscription.created");
    assert_eq!(
        first.api_version.as_deref(),
        Some(billing::stripe::API_VERSION)
    );
    assert_eq!(first.org_id.as_ref(), Some(&org));
    assert_eq!(first.source, "webhook");
    assert_eq!(
        first.payload.as_deref(),
        Some(evt.to_string().as_bytes()),
        "the exact body"
    );
    let now = Timestamp::now().unix() * 1_000_000;
    assert!((now - first.received_at_micros).abs() < 60_000_000);

    let by_org = rig.store.deliveries_of_org(&org, 10).await.unwrap();
    assert_eq!(by_org.len(), 2);
    assert!(
        by_org[0].received_at_micros >= by_org[1].received_at_micros,
        "newest first"
    );
    assert!(
        by_org
            .iter()
            .all(|d| d.event_id == id && d.payload.is_none())
    );

    // TTL: 90 days after receipt, on both items.
    let raw = rig
        .store
        .client()
        .query()
        .table_name(rig.store.table())
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("AUDIT#{evt_id}")))
        .send()
        .await
        .unwrap();
    for item in raw.items.unwrap() {
        let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        let received: i64 = item["received_at"].as_n().unwrap().parse().unwrap();
        assert_eq!(expires, received / 1_000_000 + 90 * 86_400);
    }

    // A replay goes through the marker: nothing is written again.
    let before = write_marks(&rig, &org).await;
    let outcome = rig.handler.replay(&id).await.unwrap();
    assert_eq!(outcome, Outcome::Duplicate);
    assert_eq!(write_marks(&rig, &org).await, before);
    let kept = rig.store.deliveries_of_event(&id).await.unwrap();
    assert_eq!(kept.last().unwrap().source, "replay");
    assert_eq!(kept.last().unwrap().outcome, "duplicate");
    assert_eq!(
        rig.store
            .events_delivered_since(Timestamp::from_unix(0))
            .await
            .unwrap(),
        std::slice::from_ref(&id),
        "each event once"
    );
    assert!(matches!(
        rig.handler
            .replay(&EventId::parse("evt_never_kept").unwrap())
            .await,
        Err(ReplayError::NotKept(_))
    ));
    rig.drop_table().await;
}

#[tokio::test]
async fn a_parked_delivery_replayed_after_the_fix_applies_once() {
    let rig = Rig::on_fake_stripe().await;
    let customer = unique("cus_");
    let sub = rig
        .put_subscription(&customer, "integrations_monthly")
        .await;
    let evt_id = unique("evt_");
    assert_eq!(
        rig.deliver(&event(&evt_id, "customer.subscription.created", &sub))
            .await
            .1["outcome"],
        "parked"
    );
    let id = EventId::parse(&evt_id).unwrap();
    let kept = rig.store.deliveries_of_event(&id).await.unwrap();
    assert_eq!((kept.len(), kept[0].org_id.as_ref()), (1, None));
    let org = rig.linked_org("audit", &customer).await;
    assert!(matches!(
        rig.handler.replay(&id).await.unwrap(),
        Outcome::Processed(_)
    ));
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "Integrations"]);
    let marks = write_marks(&rig, &org).await;
    assert_eq!(rig.handler.replay(&id).await.unwrap(), Outcome::Duplicate);
    assert_eq!(write_marks(&rig, &org).await, marks);
    // The replay that applied it knows the org now.
    let by_org = rig.store.deliveries_of_org(&org, 10).await.unwrap();
    assert_eq!(
        by_org
            .iter()
            .map(|d| (d.source.as_str(), d.outcome.as_str()))
            .collect::<Vec<_>>(),
        [("replay", "duplicate"), ("replay", "processed")]
    );
    rig.drop_table().await;
}

#[tokio::test]
async fn large_payloads_are_compressed_and_refused_deliveries_keep_metadata_only() {
    let rig = Rig::on_fake_stripe().await;
    let (customer, org) = rig.linked_customer("audit").await;
    let mut sub = rig.put_subscription(&customer, "leadgen_monthly").await;
    sub["metadata"] = json!({ "note": "x".repeat(3 * COMPRESS_ABOVE_BYTES) });
    let evt_id = unique("evt_");
    let body = event(&evt_id, "customer.subscription.updated", &sub).to_string();
    assert!(body.len() > COMPRESS_ABOVE_BYTES);
    assert_eq!(rig.deliver_raw(&body).await.1["outcome"], "processed");
    let raw = rig
        .store
        .client()
        .get_item()
        .table_name(rig.store.table())
        .key("PK", AttributeValue::S(format!("AUDIT#{evt_id}")))
        .key(
            "SK",
            AttributeValue::S(format!(
                "DLV#{:020}",
                rig.store
                    .deliveries_of_event(&EventId::parse(&evt_id).unwrap())
                    .await
                    .unwrap()[0]
                    .received_at_micros
            )),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(raw["payload_encoding"].as_s().unwrap(), "gzip");
    assert!(raw["payload"].as_b().unwrap().as_ref().len() < body.len() / 4);
    let kept = rig
        .store
        .deliveries_of_event(&EventId::parse(&evt_id).unwrap())
        .await
        .unwrap();
    assert_eq!(kept[0].payload.as_deref(), Some(body.as_bytes()));

    // A forged delivery: refused, and nothing of it reaches the table.
    let items_before = rig.item_count().await;
    let forged_body = event(&unique("evt_"), "customer.subscription.updated", &sub).to_string();
    let forged = WebhookSecret::new("whsec_test_intruder")
        .sign(Timestamp::now().unix(), forged_body.as_bytes());
    assert_eq!(rig.deliver_signed(&forged_body, Some(&forged)).await.0, 400);
    assert_eq!(rig.item_count().await, items_before);
    // ...but its metadata is: when, why, how large, whether it was signed; never the payload.
    let refused = rig
        .store
        .refused_since(Timestamp::from_unix(0))
        .await
        .unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].reason.as_str(), refused[0].signature_present),
        ("invalid_signature", true)
    );
    assert_eq!(refused[0].body_bytes, forged_body.len() as u64);
    assert!(
        rig.refused_items()
            .await
            .iter()
            .all(|i| !i.contains_key("payload"))
    );
    // A flood: a bounded number kept per container and minute, every request still refused.
    for _ in 0..20 {
        assert_eq!(rig.deliver_signed(&forged_body, Some(&forged)).await.0, 400);
    }
    let kept = rig
        .store
        .refused_since(Timestamp::from_unix(0))
        .await
        .unwrap()
        .len();
    assert!(
        (1..=2 * billing::webhook::REFUSED_KEPT_PER_MINUTE as usize).contains(&kept) && kept < 21,
        "{kept} kept"
    );
    assert_eq!(
        rig.store.deliveries_of_org(&org, 10).await.unwrap().len(),
        1
    );
    rig.drop_table().await;
}
