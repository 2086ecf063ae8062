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
    assert_eq!(second.unchanged, 18);

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
