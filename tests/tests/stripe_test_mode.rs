//! `scripts/local-stack` in Stripe test mode, offline: the mode the environment selects
//! (`STRIPE_SECRET_KEY=sk_test_...`, `STRIPE_WEBHOOK_SECRETS` from `stripe listen
//! --print-secret`) wires the stack to that account and that secret and to nothing emulated.
//! The fixture Stripe stands in for api.stripe.com (through `STRIPE_API_BASE`); no localstripe
//! runs. Live keys never get this far (tools/local-stack/src/stripe_mode.rs).

use billing::catalog_sync::sync_catalog;
use billing::domain::{Catalog, Timestamp};
use billing::stripe::StripeApi;
use billing::webhook::WebhookSecret;
use pss_billing_tests::rig::event;
use pss_local::emulators::{free_port, start_fake_stripe, start_moto};
use pss_local::http::{blocking, request};
use pss_local::stack::{self, StackConfig, StripeSetup, WEBHOOK_SECRET};
use pss_local::stripe_mode::{ModeError, StripeMode};
use serde_json::{Value, json};

const KEY: &str = "sk_test_offline_account";
const CLI_SECRET: &str = "whsec_test_from_stripe_listen";

async fn post(url: String, headers: Vec<(&'static str, String)>, body: String) -> (u16, Value) {
    blocking(move || {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = request("POST", &url, &headers, body.as_bytes());
        (
            reply.status,
            serde_json::from_str(&reply.body).unwrap_or(Value::Null),
        )
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_mode_uses_the_account_key_and_the_stripe_cli_secret() {
    let moto = start_moto(free_port());
    let account = start_fake_stripe(free_port(), None);
    let vars = [
        ("STRIPE_SECRET_KEY", KEY.to_owned()),
        ("STRIPE_WEBHOOK_SECRETS", CLI_SECRET.to_owned()),
        ("STRIPE_API_BASE", account.url.clone()),
    ];
    let lookup = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    let keys = match StripeMode::select(lookup).unwrap() {
        StripeMode::TestMode(keys) => keys,
        other => panic!("{other:?}"),
    };
    let stack = stack::start_with(
        StackConfig {
            port: 0,
            dynamodb_url: moto.url.clone(),
            // Unused in test mode: nothing emulated is started or called.
            stripe_url: String::new(),
            localstripe_url: String::new(),
            table: "pss-billing-test-mode".to_owned(),
            cache_seconds: 1,
            frontend_origins: Vec::new(),
            offer: Default::default(),
        },
        StripeSetup::test_mode(keys),
    )
    .await
    .expect("test-mode stack");
    let base = stack.base_url.clone();

    // The catalog is already in the account: a second catalog-sync changes nothing.
    let stripe = StripeApi::new(KEY, Some(&account.url)).unwrap();
    let report = sync_catalog(&stripe, Catalog::standard().entries())
        .await
        .unwrap();
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert!(report.unchanged > 0);

    // The API reaches the account: a Checkout Session for the demo org.
    let (status, body) = post(
        format!("{base}/api/billing/checkout"),
        vec![
            ("Authorization", format!("Bearer {}", stack.owner_token)),
            ("Content-Type", "application/json".to_owned()),
            ("Origin", base.clone()),
        ],
        json!({
            "services": ["LeadGeneration"], "interval": "month",
            "successUrl": format!("{base}/billing/success"), "cancelUrl": format!("{base}/billing"),
        })
        .to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["url"].is_string(), "{body}");

    // Webhooks: signed with `stripe listen`'s secret they are accepted; with the emulated
    // stack's fixed secret they are refused.
    let body = event(
        "evt_cli_1",
        "product.created",
        &json!({"id": "prod_cli", "object": "product"}),
    )
    .to_string();
    let now = Timestamp::now().unix();
    let url = format!("{base}/webhooks/stripe");
    for (secret, expected) in [(CLI_SECRET, 200), (WEBHOOK_SECRET, 400)] {
        let signature = WebhookSecret::new(secret).sign(now, body.as_bytes());
        let (status, reply) = post(
            url.clone(),
            vec![
                ("Stripe-Signature", signature),
                ("Content-Type", "application/json".to_owned()),
            ],
            body.clone(),
        )
        .await;
        assert_eq!(status, expected, "{secret}: {reply}");
    }
}

#[test]
fn a_live_key_never_selects_a_stack() {
    let err = StripeMode::select(|name| match name {
        "STRIPE_SECRET_KEY" => Some("sk_live_should_never_run".to_owned()),
        "STRIPE_WEBHOOK_SECRETS" => Some(CLI_SECRET.to_owned()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(err, ModeError::LiveKey);
    assert!(!err.to_string().contains("should_never_run"));
}
