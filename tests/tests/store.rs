//! The DynamoDB store against moto server.

use billing::domain::ServiceModule::*;
use billing::domain::SubscriptionStatus::*;
use billing::domain::*;
use billing::store::{Applied, BillingStore, EventMarker, LinkOutcome, StoreError};
use pss_billing_tests::build::{invoice, org, subscription};
use pss_billing_tests::fresh_store;

fn cus(n: &str) -> CustomerId {
    CustomerId::parse(n).unwrap()
}

fn profile(org: &OrgId, customer: &str) -> BillingProfile {
    BillingProfile {
        org_id: org.clone(),
        customer_id: cus(customer),
        default_payment_method: None,
        created_at: Timestamp::now(),
    }
}

const POLICY: GracePolicy = GracePolicy::days(7);

/// Applies a read of `invoice` fetched at `micros`, outside any event.
async fn invoice_at(store: &BillingStore, org: &OrgId, invoice: &Invoice, micros: i64) -> Applied {
    store
        .apply_invoice(org, invoice, FetchTime::from_micros(micros), None)
        .await
        .unwrap()
}

/// A store on a new table, and a new org.
async fn fresh_org() -> (BillingStore, OrgId) {
    (fresh_store().await, org("org"))
}

/// Applies a read of `sub` fetched at `micros`, outside any event.
async fn apply_at(store: &BillingStore, org: &OrgId, sub: &Subscription, micros: i64) -> Applied {
    store
        .apply_subscription(org, sub, FetchTime::from_micros(micros), None, POLICY)
        .await
        .unwrap()
}

#[tokio::test]
async fn second_billing_profile_create_is_refused() {
    let (store, org) = fresh_org().await;
    store
        .create_billing_profile(&profile(&org, "cus_a"))
        .await
        .unwrap();
    let again = store.create_billing_profile(&profile(&org, "cus_b")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        store
            .billing_profile(&org)
            .await
            .unwrap()
            .unwrap()
            .customer_id,
        cus("cus_a")
    );
    assert_eq!(
        store.org_for_customer(&cus("cus_a")).await.unwrap(),
        Some(org.clone())
    );
    assert_eq!(store.org_for_customer(&cus("cus_b")).await.unwrap(), None);
    // A customer already linked cannot be taken by another org either.
    let other = pss_billing_tests::build::org("other");
    assert!(
        store
            .create_billing_profile(&profile(&other, "cus_a"))
            .await
            .is_err()
    );
    assert_eq!(store.billing_profile(&other).await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_profile_creates_map_exactly_one_customer() {
    let (store, org) = fresh_org().await;
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        let p = profile(&org, &format!("cus_race{i}"));
        tokio::spawn(async move { store.create_billing_profile(&p).await })
    });
    let mut won = 0;
    for handle in attempts {
        if handle.await.unwrap().is_ok() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    let linked = store
        .billing_profile(&org)
        .await
        .unwrap()
        .unwrap()
        .customer_id;
    assert_eq!(
        store.org_for_customer(&linked).await.unwrap(),
        Some(org.clone())
    );
    assert_eq!(
        store.link_customer(&org, &linked).await.unwrap(),
        LinkOutcome::AlreadyLinked
    );
    assert!(matches!(
        store.link_customer(&org, &cus("cus_zzz")).await.unwrap(),
        LinkOutcome::Conflict { .. }
    ));
}

#[tokio::test]
async fn stale_write_never_overwrites_a_newer_one() {
    let (store, org) = fresh_org().await;
    let newer = subscription("sub_1", "cus_1", Active, &[LeadGeneration, SocialInbox]);
    let older = subscription("sub_1", "cus_1", Active, &[LeadGeneration]);
    let (t1, t2) = (1_000, 2_000);
    assert_eq!(apply_at(&store, &org, &newer, t2).await, Applied::Written);
    assert_eq!(apply_at(&store, &org, &older, t1).await, Applied::Stale);
    // Equal fetch times are not "newer" either.
    assert_eq!(apply_at(&store, &org, &older, t2).await, Applied::Stale);
    let stored = store.subscriptions(&org).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].subscription, newer);
    let ents = store.entitlements(&org, true).await.unwrap().unwrap();
    assert!(ents.set.unlocks(SocialInbox, Timestamp::now()));
}

#[tokio::test]
async fn canceled_subscription_is_never_revived_by_a_live_status() {
    let (store, org) = fresh_org().await;
    let canceled = subscription("sub_1", "cus_1", Canceled, &[LeadGeneration]);
    let live = subscription("sub_1", "cus_1", Active, &[LeadGeneration]);
    apply_at(&store, &org, &canceled, 10).await;
    // Even a read that claims to be newer cannot bring a terminal subscription back.
    assert_eq!(apply_at(&store, &org, &live, 20).await, Applied::Stale);
    assert_eq!(
        store.subscriptions(&org).await.unwrap()[0]
            .subscription
            .status,
        Canceled
    );
    let ents = store.entitlements(&org, true).await.unwrap().unwrap();
    assert!(!ents.set.unlocks(LeadGeneration, Timestamp::now()));
}

#[tokio::test]
async fn event_marker_makes_a_second_delivery_a_no_op() {
    let (store, org) = fresh_org().await;
    let marker = EventMarker {
        id: EventId::parse(pss_billing_tests::unique("evt_")).unwrap(),
        event_type: "customer.subscription.created".into(),
        audit: None,
    };
    let sub = subscription("sub_1", "cus_1", Active, &[EmailAutomation]);
    assert!(!store.event_processed(&marker.id).await.unwrap());
    let first = store
        .apply_subscription(&org, &sub, FetchTime::from_micros(1), Some(&marker), POLICY)
        .await
        .unwrap();
    assert_eq!(first, Applied::Written);
    assert!(store.event_processed(&marker.id).await.unwrap());
    let second = store
        .apply_subscription(&org, &sub, FetchTime::from_micros(2), Some(&marker), POLICY)
        .await
        .unwrap();
    assert_eq!(second, Applied::Duplicate);
    // The duplicate wrote nothing: the stored copy is still the first read.
    assert_eq!(
        store.subscriptions(&org).await.unwrap()[0].fetched_at,
        FetchTime::from_micros(1)
    );
    assert_eq!(
        store.record_event(&marker, None).await.unwrap(),
        Applied::Duplicate
    );
}

#[tokio::test]
async fn entitlements_are_the_union_of_several_subscriptions() {
    let (store, org) = fresh_org().await;
    let a = subscription("sub_a", "cus_1", Active, &[LeadGeneration]);
    let b = subscription("sub_b", "cus_1", Trialing, &[EmailAutomation]);
    let c = subscription("sub_c", "cus_1", Unpaid, &[EnterpriseFeatures]);
    for (i, s) in [&a, &b, &c].into_iter().enumerate() {
        apply_at(&store, &org, s, i as i64 + 1).await;
    }
    let now = Timestamp::now();
    let set = store.entitlements(&org, true).await.unwrap().unwrap().set;
    let unlocked: Vec<_> = set.unlocked_at(now).iter().collect();
    assert_eq!(unlocked, vec![BasicCrm, LeadGeneration, EmailAutomation]);
    // Canceling one leaves the others.
    let a_canceled = subscription("sub_a", "cus_1", Canceled, &[LeadGeneration]);
    apply_at(&store, &org, &a_canceled, 100).await;
    let set = store.entitlements(&org, true).await.unwrap().unwrap().set;
    assert_eq!(
        set.unlocked_at(now).iter().collect::<Vec<_>>(),
        vec![BasicCrm, EmailAutomation]
    );
}

#[tokio::test]
async fn past_due_grace_is_stored_and_runs_out_without_a_write() {
    let (store, org) = fresh_org().await;
    let mut sub = subscription("sub_1", "cus_1", PastDue, &[AdvancedAnalytics]);
    // The renewal failed two days before this service read it (an outage, a late sync): the
    // grace counts from Stripe's renewal time, not from the read.
    let renewed = Timestamp::now().plus_seconds(-2 * 86_400);
    sub.current_period_start = Some(renewed);
    let fetched = FetchTime::now();
    apply_at(&store, &org, &sub, fetched.micros()).await;
    let stored = &store.subscriptions(&org).await.unwrap()[0].subscription;
    let since = stored.past_due_since.expect("grace start recorded");
    assert_eq!(since, renewed);
    // A later past_due read keeps the original start.
    apply_at(&store, &org, &sub, fetched.micros() + 5_000_000).await;
    let again = &store.subscriptions(&org).await.unwrap()[0].subscription;
    assert_eq!(again.past_due_since, Some(since));
    let set = store.entitlements(&org, true).await.unwrap().unwrap().set;
    let end = since.plus_seconds(7 * 86_400);
    assert!(set.unlocks(AdvancedAnalytics, end.plus_seconds(-1)));
    assert!(!set.unlocks(AdvancedAnalytics, end));
}

#[tokio::test]
async fn concurrent_syncs_of_different_subscriptions_keep_both_grants() {
    let (store, org) = fresh_org().await;
    let modules: Vec<ServiceModule> = ServiceModule::ALL
        .into_iter()
        .filter(|m| !m.is_free())
        .collect();
    let tasks = modules.iter().enumerate().map(|(i, m)| {
        let store = store.clone();
        let org = org.clone();
        let sub = subscription(&format!("sub_{i}"), "cus_1", Active, &[*m]);
        tokio::spawn(async move { apply_at(&store, &org, &sub, 1).await })
    });
    for t in tasks {
        assert_eq!(t.await.unwrap(), Applied::Written);
    }
    let set = store.entitlements(&org, true).await.unwrap().unwrap().set;
    for m in modules {
        assert!(
            set.unlocks(m, Timestamp::now()),
            "{m} lost to a concurrent write"
        );
    }
}

#[tokio::test]
async fn paging_through_invoices_returns_each_exactly_once_newest_first() {
    let (store, org) = fresh_org().await;
    let other = pss_billing_tests::build::org("other");
    for i in 0..23 {
        let inv = invoice(&format!("in_{i:03}"), "cus_1", 1_700_000_000 + i * 60);
        assert_eq!(invoice_at(&store, &org, &inv, 1).await, Applied::Written);
    }
    let theirs = invoice("in_other", "cus_2", 1_800_000_000);
    invoice_at(&store, &other, &theirs, 1).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_invoices(&org, 5, cursor.as_deref())
            .await
            .unwrap();
        pages += 1;
        assert!(page.invoices.len() <= 5);
        seen.extend(
            page.invoices
                .into_iter()
                .map(|i| (i.created.unix(), i.id.to_string())),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    sorted.dedup();
    assert_eq!(sorted.len(), 23, "no invoice twice");
    assert!(
        seen.iter().all(|(_, id)| id != "in_other"),
        "another org's invoice leaked"
    );
    assert!(matches!(
        store.list_invoices(&org, 5, Some("garbage!")).await,
        Err(StoreError::InvalidCursor)
    ));
}

#[tokio::test]
async fn stale_invoice_read_does_not_overwrite() {
    let (store, org) = fresh_org().await;
    let mut paid = invoice("in_1", "cus_1", 1_700_000_000);
    let mut open = paid.clone();
    open.status = Some(InvoiceStatus::Open);
    open.amount_paid = 0;
    paid.status = Some(InvoiceStatus::Paid);
    invoice_at(&store, &org, &paid, 20).await;
    assert_eq!(invoice_at(&store, &org, &open, 10).await, Applied::Stale);
    let page = store.list_invoices(&org, 10, None).await.unwrap();
    assert_eq!(page.invoices, vec![paid]);
}

/// Stripe lists a customer's ended subscriptions too: a long history is stored in batches, each
/// under DynamoDB's 100 actions per transaction (moto refuses more, as DynamoDB does).
#[tokio::test]
async fn a_customer_with_a_long_history_is_stored_in_batches_under_the_action_limit() {
    let (store, org) = fresh_org().await;
    let mut history: Vec<Subscription> = (0..110)
        .map(|i| subscription(&format!("sub_old{i}"), "cus_1", Canceled, &[SocialInbox]))
        .collect();
    history.push(subscription("sub_now", "cus_1", Active, &[Integrations]));
    let fetched_at = FetchTime::now();
    let fetched: Vec<_> = history.iter().map(|s| (s, fetched_at)).collect();
    let applied = store
        .apply_subscriptions(&org, &fetched, None, GracePolicy::default())
        .await
        .unwrap();
    assert_eq!(applied.applied, Applied::Written);
    assert_eq!(applied.subscriptions.len(), 111);
    assert_eq!(store.subscriptions(&org).await.unwrap().len(), 111);
    let granted: Vec<_> = applied.entitlements.grants().keys().copied().collect();
    assert!(granted.contains(&Integrations) && !granted.contains(&SocialInbox));
    // The same read again: nothing newer to store.
    let again = store
        .apply_subscriptions(&org, &fetched, None, GracePolicy::default())
        .await
        .unwrap();
    assert_eq!(again.applied, Applied::Stale);
}

/// A table written before the access Query kept the entitlements item under `ENTITLEMENTS`:
/// the one-shot migration moves it (the authorizer's read finds the grants again), keeps an
/// item a sync already wrote under the new key, and a second run moves nothing.
#[tokio::test]
async fn the_migration_moves_legacy_entitlements_items_once() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (store, org) = fresh_org().await;
    let sub = subscription("sub_1", "cus_1", Active, &[LeadGeneration]);
    pss_billing_tests::store_subscription(&store, &org, &sub).await;
    let pk = AttributeValue::S(format!("ORG#{org}"));
    // Move the item back to where the previous code kept it.
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("PK", pk.clone())
        .key(
            "SK",
            AttributeValue::S(billing::store::keys::ENTITLEMENTS.into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("entitlements item");
    let mut legacy = item.clone();
    legacy.insert("SK".into(), AttributeValue::S("ENTITLEMENTS".into()));
    legacy.remove("written");
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(legacy.clone()))
        .send()
        .await
        .unwrap();
    store
        .client()
        .delete_item()
        .table_name(store.table())
        .key("PK", pk.clone())
        .key(
            "SK",
            AttributeValue::S(billing::store::keys::ENTITLEMENTS.into()),
        )
        .send()
        .await
        .unwrap();
    assert!(store.entitlements(&org, true).await.unwrap().is_none());

    assert_eq!(store.migrate_legacy_entitlements().await.unwrap(), 1);
    let moved = store
        .entitlements(&org, true)
        .await
        .unwrap()
        .expect("moved");
    assert!(moved.set.grants().contains_key(&LeadGeneration));
    assert_eq!(store.migrate_legacy_entitlements().await.unwrap(), 0);

    // A legacy copy beside a newer item a sync wrote: the newer one stays, the copy goes.
    let version = moved.version;
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(legacy))
        .send()
        .await
        .unwrap();
    assert_eq!(store.migrate_legacy_entitlements().await.unwrap(), 0);
    assert_eq!(
        store
            .entitlements(&org, true)
            .await
            .unwrap()
            .unwrap()
            .version,
        version
    );
    let left = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("PK", pk)
        .key("SK", AttributeValue::S("ENTITLEMENTS".into()))
        .send()
        .await
        .unwrap();
    assert!(left.item.is_none());
}
