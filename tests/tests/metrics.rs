//! The functions emit their EMF metric lines where the work happens: the webhook (outcome by
//! event type, duration, parked events), the Stripe client (errors by status) and the
//! reconciliation run (drift by kind). Lines are read back as CloudWatch would parse them.

use billing::domain::Timestamp;
use billing::webhook::WebhookSecret;
use pss_billing_tests::rig::{Rig, event};
use pss_billing_tests::{fake_stripe, unique};
use serde_json::Value;

/// The emitted lines that carry `metric`, parsed, with the dimension names of its directive.
fn lines_with(metric: &str) -> Vec<(Value, Vec<Vec<String>>)> {
    billing::metrics::captured()
        .iter()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).expect("an EMF line is JSON");
            let directive = v["_aws"]["CloudWatchMetrics"]
                .as_array()?
                .iter()
                .find(|d| {
                    d["Metrics"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|m| m["Name"] == metric)
                })?
                .clone();
            assert_eq!(directive["Namespace"], "PssBilling");
            let sets = directive["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    s.as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_str().unwrap().to_owned())
                        .collect()
                })
                .collect();
            Some((v, sets))
        })
        .collect()
}

#[tokio::test]
async fn webhook_deliveries_and_stripe_errors_emit_metrics_with_their_dimensions() {
    billing::metrics::capture();
    let stripe = fake_stripe();
    let rig = Rig::new(&stripe.url).await;
    // Parked: a subscription of a customer no org knows.
    let customer = unique("cus_");
    let sub = rig.put_subscription(&customer, "leadgen_monthly").await;
    let parked = event(&unique("evt_"), "customer.subscription.created", &sub);
    assert_eq!(rig.deliver(&parked).await.1["outcome"], "parked");
    // Refused: a bad signature. Its claimed type is never trusted.
    let body = event(&unique("evt_"), "invoice.paid", &sub).to_string();
    let forged =
        WebhookSecret::new("whsec_test_intruder").sign(Timestamp::now().unix(), body.as_bytes());
    assert_eq!(rig.deliver_signed(&body, Some(&forged)).await.0, 400);
    // A Stripe 404 on the re-fetch of an unknown invoice: nothing confirms a deletion, so it
    // is retried (503, outcome `failed`), never taken as final.
    let missing =
        serde_json::json!({"id": unique("in_"), "object": "invoice", "customer": customer});
    assert_eq!(rig.deliver_new("invoice.paid", &missing).await.0, 503);

    let webhook = lines_with("WebhookEvents");
    let outcome_sets = vec![
        vec!["Outcome".to_owned()],
        vec!["EventType".to_owned(), "Outcome".to_owned()],
    ];
    let find = |kind: &str, outcome: &str| {
        webhook
            .iter()
            .find(|(v, _)| v["EventType"] == kind && v["Outcome"] == outcome)
            .unwrap_or_else(|| panic!("no line for {kind} {outcome}: {webhook:?}"))
            .clone()
    };
    let (line, sets) = find("customer.subscription.created", "parked");
    assert_eq!(sets, outcome_sets);
    assert_eq!(line["WebhookEvents"], 1.0);
    assert!(line["WebhookDuration"].as_f64().unwrap() > 0.0);
    assert_eq!(
        line["ParkedEvents"], 1.0,
        "a parked event also counts in ParkedEvents"
    );
    let (refused, _) = find("-", "rejected");
    assert!(refused.get("ParkedEvents").is_none());
    assert!(
        !webhook
            .iter()
            .any(|(v, _)| v["EventType"] == "invoice.paid" && v["Outcome"] == "rejected"),
        "a forged delivery's type must not become a dimension"
    );
    find("invoice.paid", "failed");
    assert!(
        !lines_with(billing::metrics::STRIPE_NOT_FOUND_UNCONFIRMED).is_empty(),
        "the unconfirmed 404 is counted for its alarm"
    );

    let stripe_errors = lines_with("StripeErrors");
    let (line, sets) = stripe_errors
        .iter()
        .find(|(v, _)| v["Status"] == "404")
        .expect("the 404 counted")
        .clone();
    assert_eq!(sets, vec![vec!["Status".to_owned()]]);
    assert_eq!(line["StripeErrors"], 1.0);
    rig.drop_table().await;
}

mod authorizer {
    use std::time::Duration;

    use pss_billing_tests::auth::{authorizer, authorizer_event, claims, hs256, hs256_settings};
    use pss_billing_tests::{build, fresh_store};
    use serde_json::Value;

    fn count(metric: &str, dimension: Option<(&str, &str)>) -> f64 {
        billing::metrics::captured()
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| dimension.is_none_or(|(k, val)| v[k] == val))
            .filter_map(|v| v[metric].as_f64())
            .sum()
    }

    #[tokio::test]
    async fn authorizer_decisions_and_cache_hits_are_counted() {
        billing::metrics::capture();
        let auth = authorizer(
            hs256_settings(),
            fresh_store().await,
            Duration::from_secs(30),
        );
        let org = build::org("metrics");
        let deny_before = count("AuthorizerDecisions", Some(("Decision", "deny")));
        let unauth_before = count("AuthorizerDecisions", Some(("Decision", "unauthorized")));
        let (hits_before, misses_before) = (
            count("AuthorizerCacheHits", None),
            count("AuthorizerCacheMisses", None),
        );
        // An unpaid org on a paid route, twice: one read, then the cache; then no token.
        let t = hs256(&claims(&org, "member"));
        let leads = |token| authorizer_event("GET", "/api/leads", token);
        for _ in 0..2 {
            auth.authorize(&leads(Some(&t))).await.unwrap();
        }
        assert!(auth.authorize(&leads(None)).await.is_err());
        assert_eq!(
            count("AuthorizerDecisions", Some(("Decision", "deny"))) - deny_before,
            2.0
        );
        assert_eq!(
            count("AuthorizerDecisions", Some(("Decision", "unauthorized"))) - unauth_before,
            1.0
        );
        assert_eq!(count("AuthorizerCacheMisses", None) - misses_before, 1.0);
        assert_eq!(count("AuthorizerCacheHits", None) - hits_before, 1.0);
    }
}
