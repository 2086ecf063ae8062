//! End to end with localstripe: it sends real signed webhooks (2017-shaped objects) to the
//! handler served over HTTP, and the handler re-fetches from localstripe.

use std::sync::Arc;
use std::time::{Duration, Instant};

use billing::domain::{CustomerId, OrgId};
use pss_billing_tests::rig::{self, Rig};
use pss_billing_tests::{build, localstripe, localstripe_subscribe, server, stripe_call};

async fn wait_for(rig: &Rig, org: &OrgId, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let unlocked = rig.unlocked(org).await;
        if unlocked == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "entitlements stayed {unlocked:?}, wanted {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstripe_subscription_unlocks_then_cancel_locks() {
    let ls = localstripe();
    let rig = Arc::new(Rig::new(&ls.url).await);
    let served = rig.clone();
    let url = server::serve(move |req| {
        let rig = served.clone();
        async move { billing::webhook::handle(&rig.handler, &req).await }
    })
    .await;
    let api = |path: &str| format!("{}/v1{path}", ls.url);
    stripe_call(
        "POST",
        format!("{}/_config/webhooks/pss", ls.url),
        vec![
            ("url", format!("{url}/webhooks/stripe")),
            ("secret", rig::SECRET.to_owned()),
        ],
    )
    .await;

    // The catalog as localstripe can hold it: plans whose ids are our lookup keys.
    let product = stripe_call(
        "POST",
        api("/products"),
        vec![
            ("name", "Lead Generation".into()),
            ("type", "service".into()),
        ],
    )
    .await;
    stripe_call(
        "POST",
        api("/plans"),
        vec![
            ("id", "leadgen_monthly".into()),
            ("amount", "9900".into()),
            ("currency", "usd".into()),
            ("interval", "month".into()),
            ("product", product["id"].as_str().unwrap().to_owned()),
        ],
    )
    .await;

    let customer = stripe_call(
        "POST",
        api("/customers"),
        vec![("email", "owner@example.test".into())],
    )
    .await;
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    let org = build::org("org");
    rig.store
        .link_customer(&org, &CustomerId::parse(&customer_id).unwrap())
        .await
        .unwrap();
    let sub = localstripe_subscribe(&ls.url, &customer_id, "leadgen_monthly").await;
    assert_eq!(sub["status"], "active", "{sub}");
    wait_for(&rig, &org, &["BasicCRM", "LeadGeneration"]).await;
    let stored = rig.store.subscriptions(&org).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].subscription.id.as_str(),
        sub["id"].as_str().unwrap()
    );
    assert!(
        stored[0].subscription.current_period_end.is_some(),
        "2017 period fields read"
    );

    // The payment_succeeded webhook records the invoice too.
    let deadline = Instant::now() + Duration::from_secs(20);
    while rig
        .store
        .list_invoices(&org, 10, None)
        .await
        .unwrap()
        .invoices
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no invoice recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    stripe_call(
        "DELETE",
        api(&format!("/subscriptions/{}", sub["id"].as_str().unwrap())),
        vec![],
    )
    .await;
    wait_for(&rig, &org, &["BasicCRM"]).await;
    assert_eq!(
        rig.store.subscriptions(&org).await.unwrap()[0]
            .subscription
            .status
            .as_str(),
        "canceled"
    );
}
