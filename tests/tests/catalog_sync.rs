//! The catalog command against the fixture-backed Stripe (its own binary: it changes prices).

use billing::catalog_sync::{Change, sync_catalog};
use billing::domain::{Catalog, CatalogEntry, CatalogPrice};
use billing::stripe::StripeApi;
use pss_billing_tests::fake_stripe;

#[tokio::test]
async fn catalog_sync_is_idempotent_and_moves_lookup_keys_on_price_changes() {
    let stripe = StripeApi::new("sk_test_catalog", Some(&fake_stripe().url)).unwrap();
    let entries = Catalog::standard().entries();
    let first = sync_catalog(&stripe, entries).await.unwrap();
    let created = first
        .changes
        .iter()
        .filter(|c| matches!(c, Change::PriceCreated { .. }))
        .count();
    let products = first
        .changes
        .iter()
        .filter(|c| matches!(c, Change::ProductCreated(_)))
        .count();
    assert_eq!((products, created), (6, 12), "{first:?}");

    let second = sync_catalog(&stripe, entries).await.unwrap();
    assert!(
        second.changes.is_empty(),
        "second run changed {:?}",
        second.changes
    );
    // 6 products, 12 prices and the billing portal configuration.
    assert_eq!(second.unchanged, 19);
    let ours: Vec<_> = stripe
        .portal_configurations()
        .await
        .unwrap()
        .into_iter()
        .filter(billing::stripe::portal::is_current)
        .collect();
    assert_eq!(ours.len(), 1, "one configuration, created once: {ours:?}");
    let features = ours[0].features.clone().unwrap();
    assert_eq!(
        features["subscription_update"]["enabled"], false,
        "{features}"
    );
    assert_eq!(features["subscription_cancel"]["mode"], "at_period_end");
    assert_eq!(features["payment_method_update"]["enabled"], true);
    assert_eq!(features["invoice_history"]["enabled"], true);

    // LeadGeneration monthly goes from $99 to $109: a new price takes the lookup key.
    let mut changed: Vec<CatalogEntry> = entries.to_vec();
    let lead = &mut changed[1];
    let mut prices = lead.prices.unwrap();
    prices[0] = CatalogPrice {
        unit_amount: 10_900,
        ..prices[0]
    };
    lead.prices = Some(prices);
    let old = stripe
        .prices_by_lookup_keys(&["leadgen_monthly"])
        .await
        .unwrap();
    let third = sync_catalog(&stripe, &changed).await.unwrap();
    assert_eq!(third.changes.len(), 1, "{third:?}");
    let Change::PriceReplaced {
        lookup_key,
        from,
        to,
    } = &third.changes[0]
    else {
        panic!("{third:?}")
    };
    assert_eq!(lookup_key, "leadgen_monthly");
    assert_eq!(from, &old[0].id);
    let now = stripe
        .prices_by_lookup_keys(&["leadgen_monthly"])
        .await
        .unwrap();
    assert_eq!(now.len(), 1, "the old price was archived, the key moved");
    assert_eq!((&now[0].id, now[0].unit_amount), (to, Some(10_900)));
    let fourth = sync_catalog(&stripe, &changed).await.unwrap();
    assert!(fourth.changes.is_empty(), "{fourth:?}");
}

/// Stripe Tax: every price created with the tax behaviour, every product with the tax code; a
/// price whose behaviour is `unspecified` gets it set once; one set otherwise is never changed
/// (Stripe refuses): catalog-sync stops and says how to migrate.
#[tokio::test]
async fn prices_carry_the_tax_behaviour_which_is_set_once_and_never_changed() {
    use billing::catalog_sync::{
        CatalogSyncError, SAAS_TAX_CODE, TaxBehavior, TaxSettings, sync_catalog_with,
    };
    // A fixture Stripe of its own: this test rewrites the catalog's prices.
    let fake =
        pss_billing_tests::emulators::start_fake_stripe(pss_billing_tests::free_port(), None);
    let stripe = StripeApi::new("sk_test_catalog_tax", Some(&fake.url)).unwrap();
    let entries = Catalog::standard().entries();
    sync_catalog(&stripe, entries).await.unwrap();
    let get = |path: String| {
        let url = format!("{}{path}", fake.url);
        async move {
            pss_billing_tests::http::blocking(move || {
                pss_billing_tests::http::request(
                    "GET",
                    &url,
                    &[("Authorization", "Bearer sk_test_catalog_tax")],
                    b"",
                )
                .json()
            })
            .await
        }
    };
    let price =
        get("/v1/prices?lookup_keys[0]=leadgen_monthly".to_owned()).await["data"][0].clone();
    assert_eq!(price["tax_behavior"], "exclusive", "{price}");
    let product = get("/v1/products/pss_leadgeneration".to_owned()).await;
    assert_eq!(product["tax_code"], SAAS_TAX_CODE, "{product}");

    // A price made before tax settings existed: `unspecified`, set once.
    let mut legacy = price.clone();
    legacy["tax_behavior"] = "unspecified".into();
    pss_billing_tests::rig::fake_put(&fake.url, &legacy).await;
    let report = sync_catalog(&stripe, entries).await.unwrap();
    assert!(
        report.changes.iter().any(|c| matches!(c, Change::PriceTaxBehaviorSet { lookup_key, .. } if lookup_key == "leadgen_monthly")),
        "{report:?}"
    );
    let again =
        get("/v1/prices?lookup_keys[0]=leadgen_monthly".to_owned()).await["data"][0].clone();
    assert_eq!(again["tax_behavior"], "exclusive");

    // Asking for inclusive now: refused, with the way to migrate, and nothing sent to change it.
    let inclusive = TaxSettings {
        behavior: TaxBehavior::Inclusive,
        tax_code: SAAS_TAX_CODE.to_owned(),
    };
    let err = sync_catalog_with(&stripe, entries, &inclusive)
        .await
        .unwrap_err();
    let CatalogSyncError::TaxBehaviorLocked {
        current, wanted, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((current.as_str(), *wanted), ("exclusive", "inclusive"));
    let message = err.to_string();
    assert!(message.contains("transfer_lookup_key=true"), "{message}");
    let still =
        get("/v1/prices?lookup_keys[0]=leadgen_monthly".to_owned()).await["data"][0].clone();
    assert_eq!(still["tax_behavior"], "exclusive");
}
