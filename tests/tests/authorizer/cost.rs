use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use billing::auth::Authorizer;
use billing::domain::FetchTime;
use billing::domain::ServiceModule::LeadGeneration;
use billing::domain::SubscriptionStatus::{Active, Canceled};
use billing::store::BillingStore;
use pss_billing_tests::auth::{authorizer, authorizer_event, claims, hs256, hs256_settings};
use pss_billing_tests::build::{org, subscription};
use pss_billing_tests::{dynamo_client, dynamo_config, fresh_store, moto, unique};
use pss_billing_tests::{store_subscription_fetched, unlock};

use super::{Outcome, check, check_call};

// ---- cost ---------------------------------------------------------------------------------------

/// Every request the DynamoDB client sends: (operation, consistent read).
#[derive(Debug, Clone, Default)]
struct Requests(Arc<Mutex<Vec<(String, bool)>>>);

impl Requests {
    fn take(&self) -> Vec<(String, bool)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "count-dynamodb-requests"
    }

    // Per attempt, after signing: exactly what goes on the wire, retries included.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .unwrap_or("")
            .trim_start_matches("DynamoDB_20120810.")
            .to_owned();
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let consistent = body.contains(r#""ConsistentRead":true"#);
        self.0.lock().unwrap().push((operation, consistent));
        Ok(())
    }
}

/// How long the authorizers of these tests cache an org's rights.
const TTL: Duration = Duration::from_secs(1);

/// An authorizer (caching for `TTL`) on a fresh moto table whose client records every request,
/// the same table through a client that records nothing, and the record.
async fn counted_authorizer() -> (Authorizer, BillingStore, Requests) {
    let plain = fresh_store().await;
    let requests = Requests::default();
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
    requests.take();

    // Uncached: exactly one request, a strongly consistent GetItem.
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert_eq!(requests.take(), vec![get_item()]);

    // Cached: none, for this route and any other route of the same org.
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert!(matches!(
        check_call(&auth, "GET", "/api/billing/invoices", Some(&member)).await,
        Outcome::Allow(_)
    ));
    assert_eq!(requests.take(), vec![]);

    // Another org is its own cache entry (an org without an item is cached too).
    let other_member = hs256(&claims(&other, "Member"));
    let other_leads = authorizer_event("GET", "/api/leads", Some(&other_member));
    assert!(matches!(check(&auth, &other_leads).await, Outcome::Deny(_)));
    assert!(matches!(check(&auth, &other_leads).await, Outcome::Deny(_)));
    assert_eq!(requests.take(), vec![get_item()]);

    // Checks that never need the org's rights cost nothing.
    let _ = check_call(&auth, "GET", "/api/billing/services", Some(&member)).await;
    let _ = check_call(&auth, "POST", "/api/billing/checkout", Some(&member)).await;
    let _ = check_call(&auth, "GET", "/api/leads", None).await;
    let _ = check_call(&auth, "GET", "/api/leads", Some("garbage")).await;
    let _ = check_call(&auth, "GET", "/api/nowhere", Some(&member)).await;
    assert_eq!(requests.take(), vec![]);

    // After the TTL the next check reads again, once.
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert!(matches!(check(&auth, &leads).await, Outcome::Allow(_)));
    assert_eq!(requests.take(), vec![get_item()]);
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
