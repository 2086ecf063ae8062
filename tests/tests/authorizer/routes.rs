use billing::auth::subscription_required_body;
use billing::domain::ServiceModule::LeadGeneration;
use billing::domain::SubscriptionStatus::PastDue;
use billing::domain::{FetchTime, GracePolicy};
use billing::routes::ROUTES;
use pss_billing_tests::auth::{authorizer_event, claims, hs256, now};
use pss_billing_tests::build::{org, subscription};
use pss_billing_tests::unlock;

use super::{Outcome, check, check_call, hs_authorizer};

// ---- route matrix -----------------------------------------------------------------------------

#[tokio::test]
async fn route_matrix() {
    let (auth, store) = hs_authorizer().await;
    let paying = org("paying");
    let free = org("free");
    unlock(&store, &paying, &[LeadGeneration]).await;
    let member = hs256(&claims(&paying, "Member"));
    let admin = hs256(&claims(&paying, "Admin"));
    let owner = hs256(&claims(&paying, "Owner"));
    let free_member = hs256(&claims(&free, "Member"));

    // Public route: open without a token, and with a broken one.
    for token in [None, Some("garbage"), Some(free_member.as_str())] {
        match check_call(&auth, "GET", "/api/billing/services", token).await {
            Outcome::Allow(json) => {
                let expected_org = if token == Some(free_member.as_str()) {
                    free.as_str()
                } else {
                    ""
                };
                assert_eq!(json["context"]["orgId"], expected_org, "{token:?}");
                // A verified caller gets the org's modules (the catalog's `unlocked` flags).
                let expected_modules = if token == Some(free_member.as_str()) {
                    "BasicCRM"
                } else {
                    ""
                };
                assert_eq!(json["context"]["entitlements"], expected_modules);
                if token.is_none() {
                    assert_eq!(json["principalId"], "anonymous");
                }
            }
            other => panic!("public {token:?}: {other:?}"),
        }
    }

    // Paid and unlocked.
    match check_call(&auth, "GET", "/api/leads", Some(&member)).await {
        Outcome::Allow(json) => {
            assert_eq!(json["context"]["orgId"], paying.as_str());
            assert_eq!(json["context"]["entitlements"], "BasicCRM,LeadGeneration");
        }
        other => panic!("unlocked: {other:?}"),
    }

    // Paid and locked: the exact 403 body, through the context the gateway response reads.
    match check_call(&auth, "GET", "/api/leads", Some(&free_member)).await {
        Outcome::Deny(json) => {
            let expected = r#"{"error":"subscription_required","message":"This feature requires a LeadGeneration subscription.","service":"LeadGeneration"}"#;
            assert_eq!(json["context"]["body"], expected);
            assert_eq!(subscription_required_body(LeadGeneration), expected);
            assert_eq!(json["context"]["error"], "subscription_required");
            assert_eq!(json["context"]["service"], "LeadGeneration");
            assert_eq!(json["principalId"], "user_1");
        }
        other => panic!("locked: {other:?}"),
    }

    // Role-gated: Member refused, Admin and Owner let through.
    match check_call(&auth, "POST", "/api/billing/checkout", Some(&member)).await {
        Outcome::Deny(json) => {
            assert_eq!(
                json["context"]["body"],
                r#"{"error":"forbidden","message":"This action requires the Admin or Owner role."}"#
            );
            assert!(json["context"].get("service").is_none());
        }
        other => panic!("member on checkout: {other:?}"),
    }
    for token in [&admin, &owner] {
        assert!(matches!(
            check_call(&auth, "POST", "/api/billing/checkout", Some(token)).await,
            Outcome::Allow(_)
        ));
        assert!(matches!(
            check_call(&auth, "POST", "/api/billing/portal", Some(token)).await,
            Outcome::Allow(_)
        ));
    }

    // Unknown route: deny, whatever the token (and without asking for one).
    for (method, resource, token) in [
        ("GET", "/api/admin/secrets", Some(owner.as_str())),
        ("DELETE", "/api/leads", Some(owner.as_str())),
        ("GET", "/api/leads/", None),
    ] {
        match check_call(&auth, method, resource, token).await {
            Outcome::Deny(json) => assert_eq!(
                json["context"]["body"],
                r#"{"error":"forbidden","message":"This route is not available."}"#
            ),
            other => panic!("{method} {resource}: {other:?}"),
        }
    }

    // Every authenticated route of the table: a valid Owner of a paying org passes, no token
    // gets 401. Keeps the matrix honest as routes are added.
    for route in ROUTES.iter().filter(|r| !r.is_public()) {
        assert!(
            matches!(
                check_call(&auth, route.method, route.path, Some(&owner)).await,
                Outcome::Allow(_)
            ),
            "{} {}",
            route.method,
            route.path
        );
        assert_eq!(
            check_call(&auth, route.method, route.path, None).await,
            Outcome::Unauthorized
        );
    }
}

#[tokio::test]
async fn a_lapsed_grace_period_locks_at_decision_time() {
    let (auth, store) = hs_authorizer().await;
    let org = org("late");
    let sub = subscription("sub_late", "cus_late", PastDue, &[LeadGeneration]);
    // First seen past due eight days ago: the seven-day grace ended yesterday.
    let eight_days_ago = FetchTime::from_micros((now() - 8 * 86_400) * 1_000_000);
    store
        .apply_subscription(&org, &sub, eight_days_ago, None, GracePolicy::days(7))
        .await
        .unwrap();
    // The stored item still holds the grant (with an end); the clock decides.
    let stored = store.entitlements(&org, true).await.unwrap().unwrap();
    assert!(stored.set.grants().contains_key(&LeadGeneration));
    let token = hs256(&claims(&org, "Member"));
    assert!(matches!(
        check_call(&auth, "GET", "/api/leads", Some(&token)).await,
        Outcome::Deny(_)
    ));
}

#[tokio::test]
async fn missing_method_arn_fails_closed() {
    let (auth, _store) = hs_authorizer().await;
    let mut ev = authorizer_event("GET", "/api/billing/services", None);
    ev.method_arn = None;
    assert_eq!(check(&auth, &ev).await, Outcome::Failed);
}
