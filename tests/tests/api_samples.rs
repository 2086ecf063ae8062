//! Every sample event under events/billing-*/ goes through its function's handler (with moto
//! and the fixture-backed Stripe behind it) and gets the status its file name starts with, so
//! the samples never rot.

use billing::api::{ApiConfig, OriginAllowlist, handlers};
use billing::domain::{CustomerId, GracePolicy, OrgId};
use billing::stripe::StripeApi;
use billing::sync::Syncer;
use pss_billing_tests::{fake_stripe, fresh_store, workspace_root};

#[tokio::test]
async fn every_billing_sample_event_gets_its_status() {
    let stripe_url = &fake_stripe().url;
    pss_billing_tests::seed_sample_stripe(stripe_url).await;
    let stripe = StripeApi::new("sk_test_samples", Some(stripe_url)).unwrap();
    let store = fresh_store().await;
    let org = OrgId::parse("org_sample").unwrap();
    store
        .link_customer(&org, &CustomerId::parse("cus_sample").unwrap())
        .await
        .unwrap();
    let syncer = Syncer::new(store.clone(), stripe, GracePolicy::default());
    let config = ApiConfig {
        origins: OriginAllowlist::parse("https://app.example.test"),
        sync_per_minute: 5,
        offer: Default::default(),
    };
    let policy = GracePolicy::default();

    let mut seen = 0;
    let mut folders: Vec<_> = std::fs::read_dir(workspace_root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("billing-")
        })
        .collect();
    folders.sort();
    for folder in folders {
        let function = folder.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let expected: u16 = name[..3]
                .parse()
                .unwrap_or_else(|_| panic!("{function}/{name}: name must start with the status"));
            let raw = std::fs::read_to_string(&file).unwrap();
            let request = lambda_http::request::from_str(&raw)
                .unwrap_or_else(|e| panic!("{function}/{name}: {e}"));
            let response = match function.as_str() {
                "billing-services" if request.uri().path().ends_with("/openapi.json") => {
                    handlers::openapi(&config)
                }
                "billing-services" => handlers::services(&config, &request),
                "billing-subscription" => {
                    handlers::subscription(&store, policy, &config, &request).await
                }
                "billing-invoices" => handlers::invoices(&store, &config, &request).await,
                "billing-payment-methods" => {
                    handlers::payment_methods(&store, &config, &request).await
                }
                "billing-checkout" => handlers::checkout(&syncer, &config, &request).await,
                "billing-portal" => handlers::portal(&syncer, &config, &request).await,
                "billing-plan" => handlers::plan(&syncer, &config, &request).await,
                "billing-sync" => handlers::sync(&syncer, &config, &request).await,
                other => panic!("no handler for events/{other}"),
            };
            let body =
                String::from_utf8_lossy(billing::http::body_bytes(response.body())).into_owned();
            assert_eq!(
                response.status().as_u16(),
                expected,
                "{function}/{name}: {body}"
            );
            let json: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| panic!("{function}/{name}: not JSON"));
            if expected >= 400 {
                assert!(
                    json["error"].is_string() && json["message"].is_string(),
                    "{function}/{name}: {body}"
                );
            }
            seen += 1;
        }
    }
    assert!(seen >= 15, "only {seen} samples found");
    // The sync sample completed the sample Checkout: the org now has LeadGeneration.
    let ents = store.entitlements(&org, true).await.unwrap().unwrap();
    assert!(ents.set.unlocks(
        billing::domain::ServiceModule::LeadGeneration,
        billing::domain::Timestamp::now()
    ));
}
