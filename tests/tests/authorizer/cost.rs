use std::time::Duration;

use billing::auth::Authorizer;
use billing::domain::FetchTime;
use billing::domain::ServiceModule::LeadGeneration;
use billing::domain::SubscriptionStatus::{Active, Canceled};
use billing::store::BillingStore;
use pss_billing_tests::auth::{authorizer, authorizer_event, claims, hs256, hs256_settings};
use pss_billing_tests::build::{org, subscription};
use pss_billing_tests::sdk::SentRequests;
use pss_billing_tests::{dynamo_client, dynamo_config, fresh_store, moto, unique};
use pss_billing_tests::{store_subscription_fetched, unlock};

use super::{Outcome, check, check_call};

// ---- cost ---------------------------------------------------------------------------------------

/// The requests the DynamoDB client sent since the last call: (operation, consistent read).
fn sent(requests: &SentRequests) -> Vec<(String, bool)> {
    requests
        .take()
        .iter()
        .map(|r| (r.operation.clone(), r.consistent_read()))
        .collect()
}

/// How long the authorizers of these tests cache an org's rights.
const TTL: Duration = Duration::from_secs(1);

/// An authorizer (caching for `TTL`) on a fresh moto table whose client records every request,
/// the same table through a client that records nothing, and the record.
async fn counted_authorizer() -> (Authorizer, BillingStore, SentRequests) {
    let plain = fresh_store().await;
    let requests = SentRequests::default();
    let config = dynamo_config(&moto().url)
        .interceptor(requests.clone())
        .build();
    let counted = BillingStore::new(aws_sdk_dynamodb::Client::from_conf(config), plain.table());
    let auth = authorizer(hs256_settings(), counted, TTL);
    (auth, plain, requests)
}

fn get_item() -> (String, bool) {
    ("GetItem".to_owned(), true)
}

#[tokio::test]
async fn one_consistent_get_item_per_uncached_check_and_none_when_cached() {
    let (auth, plain, requests) = counted_authorizer().await;
    let paying = org("paying");
    let other = org("other");
    unlock(&plain, &paying, &[LeadGeneration]).await;
    let member = hs256(&claims(&paying, "Member"));
    let leads = authorizer_event("GET", "/api/leads", Some(&member));
    sent(&requests);

    // Uncached: exactly one request, a strongly consistent GetItem.
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert_eq!(sent(&requests), vec![get_item()]);

    // Cached: none, for this route and any other route of the same org.
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert!(matches!(
        check_call(&auth, "GET", "/api/billing/invoices", Some(&member)).await,
        Outcome::Allow(_)
    ));
    assert_eq!(sent(&requests), vec![]);

    // Another org is its own cache entry. A refusal is never answered from the cache: each
    // paywall 403 costs one consistent read, so a payment stored a moment ago opens the route.
    let other_member = hs256(&claims(&other, "Member"));
    let other_leads = authorizer_event("GET", "/api/leads", Some(&other_member));
    assert!(matches!(check(&auth, &other_leads).await, Outcome::Deny(_)));
    assert_eq!(sent(&requests), vec![get_item()], "uncached: one read");
    assert!(matches!(check(&auth, &other_leads).await, Outcome::Deny(_)));
    assert_eq!(
        sent(&requests),
        vec![get_item()],
        "cached refusal: read again"
    );

    // The catalog of an org with locked modules reads again too (it would show "locked").
    let _ = check_call(&auth, "GET", "/api/billing/services", Some(&member)).await;
    assert_eq!(sent(&requests), vec![get_item()]);

    // Checks that never need the org's rights cost nothing.
    let _ = check_call(&auth, "POST", "/api/billing/checkout", Some(&member)).await;
    let _ = check_call(&auth, "GET", "/api/leads", None).await;
    let _ = check_call(&auth, "GET", "/api/leads", Some("garbage")).await;
    let _ = check_call(&auth, "GET", "/api/nowhere", Some(&member)).await;
    assert_eq!(sent(&requests), vec![]);

    // After the TTL the next check reads again, once.
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert_eq!(sent(&requests), vec![get_item()]);
}

#[tokio::test]
async fn cache_staleness_is_bounded_by_the_ttl() {
    let (auth, plain, _requests) = counted_authorizer().await;
    let org = org("canceling");
    let sub = subscription("sub_c", "cus_c", Active, &[LeadGeneration]);
    store_subscription_fetched(&plain, &org, &sub, FetchTime::from_micros(1)).await;
    let leads = authorizer_event("GET", "/api/leads", Some(&hs256(&claims(&org, "Member"))));
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));

    // The cancellation webhook writes; this container still has the org cached...
    let mut canceled = sub.clone();
    canceled.status = Canceled;
    store_subscription_fetched(&plain, &org, &canceled, FetchTime::from_micros(2)).await;
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    // ...for at most the TTL; a container without the entry sees it at once (consistent read).
    let cold = authorizer(hs256_settings(), plain.clone(), TTL);
    assert!(matches!(check(&cold, &leads).await, Outcome::Deny(_)));
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    assert!(matches!(check(&auth, &leads).await, Outcome::Deny(_)));
}

#[tokio::test]
async fn dynamodb_failure_fails_closed() {
    // A table that does not exist: every read fails.
    let store = BillingStore::new(dynamo_client(&moto().url), unique("missing-table-"));
    let auth = authorizer(hs256_settings(), store, Duration::from_secs(30));
    let paying = org("paying");
    for (method, resource) in [("GET", "/api/leads"), ("GET", "/api/billing/subscription")] {
        let ev = authorizer_event(method, resource, Some(&hs256(&claims(&paying, "Owner"))));
        assert_eq!(check(&auth, &ev).await, Outcome::Failed, "{resource}");
    }
    // The failure is not cached: nothing was learned.
    assert!(auth.cache().is_empty());
    // Routes that need no read are unaffected.
    assert!(matches!(
        check_call(&auth, "GET", "/api/billing/services", None).await,
        Outcome::Allow(_)
    ));
}
