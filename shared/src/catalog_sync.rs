//! Makes Stripe's products and prices match the catalog, idempotently.
//!
//! Prices are immutable in Stripe (and existing subscriptions keep theirs), so a changed amount
//! becomes a *new* price that takes over the lookup key (`transfer_lookup_key`); the old price
//! is archived so new checkouts cannot use it. Running it again changes nothing.

use std::collections::HashMap;

use crate::domain::{BillingInterval, CatalogEntry, CatalogPrice, Currency};
use crate::stripe::requests::{
    self, CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, CreateProduct,
    UpdatePrice, UpdateProduct,
};
use crate::stripe::{StripeApi, StripeApiError, StripePrice, StripeProduct};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    ProductCreated(String),
    ProductUpdated(String),
    PriceCreated {
        lookup_key: String,
        price_id: String,
    },
    /// The lookup key moved from `from` to the new price `to`; `from` was archived.
    PriceReplaced {
        lookup_key: String,
        from: String,
        to: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub changes: Vec<Change>,
    pub unchanged: usize,
}

/// The Stripe product id of a module: stable, so lookups need no search API.
pub fn product_id(entry: &CatalogEntry) -> String {
    format!("pss_{}", entry.module.as_str().to_ascii_lowercase())
}

fn matches(existing: &StripePrice, wanted: &CatalogPrice, product: &str) -> bool {
    existing.unit_amount == Some(wanted.unit_amount)
        && existing.currency.as_deref() == Some(wanted.currency.as_str())
        && existing
            .recurring
            .as_ref()
            .and_then(|r| r.interval.as_deref())
            == Some(wanted.interval.as_str())
        && existing.product.as_ref().map(|p| p.id()) == Some(product)
}

/// `metadata[service_module]`: how a price's product names its module (see `objects.rs`).
fn module_metadata(entry: &CatalogEntry) -> HashMap<String, String> {
    HashMap::from([(
        crate::stripe::MODULE_METADATA_KEY.to_owned(),
        entry.module.as_str().to_owned(),
    )])
}

fn currency(currency: Currency) -> requests::Currency {
    match currency {
        Currency::Usd => requests::Currency::USD,
    }
}

fn interval(interval: BillingInterval) -> CreatePriceRecurringInterval {
    match interval {
        BillingInterval::Month => CreatePriceRecurringInterval::Month,
        BillingInterval::Year => CreatePriceRecurringInterval::Year,
    }
}

pub async fn sync_catalog(
    stripe: &StripeApi,
    entries: &[CatalogEntry],
) -> Result<Report, StripeApiError> {
    let mut report = Report::default();
    for entry in entries {
        let Some(prices) = entry.prices else { continue };
        let product = product_id(entry);
        match stripe.product(&product).await? {
            None => {
                let create = CreateProduct::new(entry.name)
                    .id(product.clone())
                    .description(entry.description)
                    .metadata(module_metadata(entry));
                let _: StripeProduct = stripe
                    .write(&create, Some(&format!("pss-product-{product}")))
                    .await?;
                report.changes.push(Change::ProductCreated(product.clone()));
            }
            Some(existing)
                if existing.name.as_deref() != Some(entry.name)
                    || existing.active == Some(false) =>
            {
                let update = UpdateProduct::new(product.as_str())
                    .name(entry.name)
                    .description(entry.description)
                    .active(true);
                let _: StripeProduct = stripe.write(&update, None).await?;
                report.changes.push(Change::ProductUpdated(product.clone()));
            }
            Some(_) => report.unchanged += 1,
        }
        for wanted in prices {
            let current = stripe.prices_by_lookup_keys(&[wanted.lookup_key]).await?;
            let current = current
                .into_iter()
                .find(|p| p.lookup_key.as_deref() == Some(wanted.lookup_key));
            if current
                .as_ref()
                .is_some_and(|p| matches(p, &wanted, &product))
            {
                report.unchanged += 1;
                continue;
            }
            let mut create = CreatePrice::new(currency(wanted.currency))
                .product(product.as_str())
                .unit_amount(wanted.unit_amount)
                .recurring(CreatePriceRecurring::new(interval(wanted.interval)))
                .lookup_key(wanted.lookup_key)
                .metadata(module_metadata(entry));
            if current.is_some() {
                create = create.transfer_lookup_key(true);
            }
            let key = format!(
                "pss-price-{}-{}-{}-{}",
                wanted.lookup_key,
                wanted.unit_amount,
                wanted.currency.as_str(),
                wanted.interval.as_str()
            );
            let created: StripePrice = stripe.write(&create, Some(&key)).await?;
            match current {
                None => report.changes.push(Change::PriceCreated {
                    lookup_key: wanted.lookup_key.to_owned(),
                    price_id: created.id,
                }),
                Some(old) => {
                    let archive = UpdatePrice::new(old.id.as_str()).active(false);
                    let _: StripePrice = stripe.write(&archive, None).await?;
                    report.changes.push(Change::PriceReplaced {
                        lookup_key: wanted.lookup_key.to_owned(),
                        from: old.id,
                        to: created.id,
                    });
                }
            }
        }
    }
    Ok(report)
}
