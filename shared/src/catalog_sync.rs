//! Makes Stripe's products and prices match the catalog, idempotently.
//!
//! Prices are immutable in Stripe (and existing subscriptions keep theirs), so a changed amount
//! becomes a *new* price that takes over the lookup key (`transfer_lookup_key`); the old price
//! is archived so new checkouts cannot use it. Running it again changes nothing.
//!
//! For Stripe Tax, every product carries a tax code (SaaS by default) and every price a tax
//! behaviour (`exclusive` by default: tax is added on top). Stripe lets a price's tax behaviour
//! be set once (from `unspecified`) and never changed: catalog-sync refuses to, and says how to
//! migrate instead.
//!
//! It also creates the billing portal configuration portal sessions name (see
//! [`crate::stripe::portal`]): a fresh account has none, and Stripe refuses a session without.

use std::collections::HashMap;

use crate::domain::{BillingInterval, CatalogEntry, CatalogPrice, Currency};
use crate::stripe::requests::{
    self, CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, CreateProduct,
    PriceTaxBehavior, UpdateBillingPortalConfiguration, UpdatePrice, UpdateProduct,
};
use crate::stripe::{
    StripeApi, StripeApiError, StripePortalConfiguration, StripePrice, StripeProduct, portal,
};

/// How prices and products are described to Stripe Tax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxSettings {
    /// `exclusive` (tax added on top of the catalog price) or `inclusive`.
    pub behavior: TaxBehavior,
    /// Stripe's tax code of the products.
    pub tax_code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxBehavior {
    Exclusive,
    Inclusive,
}

impl TaxBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            TaxBehavior::Exclusive => "exclusive",
            TaxBehavior::Inclusive => "inclusive",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "exclusive" => Some(TaxBehavior::Exclusive),
            "inclusive" => Some(TaxBehavior::Inclusive),
            _ => None,
        }
    }

    fn request(self) -> PriceTaxBehavior {
        match self {
            TaxBehavior::Exclusive => PriceTaxBehavior::Exclusive,
            TaxBehavior::Inclusive => PriceTaxBehavior::Inclusive,
        }
    }
}

/// Stripe's tax code for software as a service (business use).
pub const SAAS_TAX_CODE: &str = "txcd_10103001";

impl Default for TaxSettings {
    fn default() -> Self {
        Self {
            behavior: TaxBehavior::Exclusive,
            tax_code: SAAS_TAX_CODE.to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogSyncError {
    #[error(transparent)]
    Stripe(#[from] StripeApiError),
    /// A price's tax behaviour was set and differs from the wanted one: Stripe never changes
    /// it. The way out is a new price taking over the lookup key.
    #[error(
        "price {price} ({lookup_key}) has tax_behavior {current}, not {wanted}: Stripe does not \
         change a price's tax behaviour once set. To migrate, create a new price with the same \
         amount, interval and lookup key, tax_behavior={wanted} and transfer_lookup_key=true, then \
         archive {price} (existing subscriptions keep their price until moved)"
    )]
    TaxBehaviorLocked {
        price: String,
        lookup_key: String,
        current: String,
        wanted: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    ProductCreated(String),
    ProductUpdated(String),
    /// A price's tax behaviour, `unspecified` until now, was set.
    PriceTaxBehaviorSet {
        lookup_key: String,
        price_id: String,
    },
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
    /// This service's billing portal configuration was created.
    PortalConfigurationCreated(String),
    /// An older portal configuration of this service's was deactivated.
    PortalConfigurationDeactivated(String),
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

/// [`sync_catalog_with`] the default tax settings.
pub async fn sync_catalog(
    stripe: &StripeApi,
    entries: &[CatalogEntry],
) -> Result<Report, CatalogSyncError> {
    sync_catalog_with(stripe, entries, &TaxSettings::default()).await
}

pub async fn sync_catalog_with(
    stripe: &StripeApi,
    entries: &[CatalogEntry],
    tax: &TaxSettings,
) -> Result<Report, CatalogSyncError> {
    let mut report = Report::default();
    for entry in entries {
        let Some(prices) = entry.prices else { continue };
        let product = product_id(entry);
        match stripe.product(&product).await? {
            None => {
                let create = CreateProduct::new(entry.name)
                    .id(product.clone())
                    .description(entry.description)
                    .metadata(module_metadata(entry))
                    .tax_code(tax.tax_code.as_str());
                let _: StripeProduct = stripe
                    .write(&create, Some(&format!("pss-product-{product}")))
                    .await?;
                report.changes.push(Change::ProductCreated(product.clone()));
            }
            Some(existing)
                if existing.name.as_deref() != Some(entry.name)
                    || existing.active == Some(false)
                    || existing.tax_code.as_ref().map(|c| c.id())
                        != Some(tax.tax_code.as_str()) =>
            {
                let update = UpdateProduct::new(product.as_str())
                    .name(entry.name)
                    .description(entry.description)
                    .active(true)
                    .tax_code(tax.tax_code.as_str());
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
            if let Some(existing) = current.as_ref().filter(|p| matches(p, &wanted, &product)) {
                match existing.tax_behavior.as_deref() {
                    Some(b) if b == tax.behavior.as_str() => report.unchanged += 1,
                    None | Some("unspecified") => {
                        // Stripe allows setting it once, from unspecified.
                        let update = UpdatePrice::new(existing.id.as_str())
                            .tax_behavior(tax.behavior.request());
                        let _: StripePrice = stripe.write(&update, None).await?;
                        report.changes.push(Change::PriceTaxBehaviorSet {
                            lookup_key: wanted.lookup_key.to_owned(),
                            price_id: existing.id.clone(),
                        });
                    }
                    Some(other) => {
                        return Err(CatalogSyncError::TaxBehaviorLocked {
                            price: existing.id.clone(),
                            lookup_key: wanted.lookup_key.to_owned(),
                            current: other.to_owned(),
                            wanted: tax.behavior.as_str(),
                        });
                    }
                }
                continue;
            }
            let mut create = CreatePrice::new(currency(wanted.currency))
                .product(product.as_str())
                .unit_amount(wanted.unit_amount)
                .recurring(CreatePriceRecurring::new(interval(wanted.interval)))
                .lookup_key(wanted.lookup_key)
                .metadata(module_metadata(entry))
                .tax_behavior(tax.behavior.request());
            if current.is_some() {
                create = create.transfer_lookup_key(true);
            }
            let key = format!(
                "pss-price-{}-{}-{}-{}-{}",
                wanted.lookup_key,
                wanted.unit_amount,
                wanted.currency.as_str(),
                wanted.interval.as_str(),
                tax.behavior.as_str()
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
    sync_portal_configuration(stripe, &mut report).await?;
    Ok(report)
}

/// Creates this service's billing portal configuration unless its current version exists,
/// and deactivates older versions of it (portal sessions name the current one).
async fn sync_portal_configuration(
    stripe: &StripeApi,
    report: &mut Report,
) -> Result<(), CatalogSyncError> {
    let existing = stripe.portal_configurations().await?;
    if existing.iter().any(portal::is_current) {
        report.unchanged += 1;
    } else {
        let key = format!("pss-portal-configuration-v{}", portal::PORTAL_VERSION);
        let created: StripePortalConfiguration = stripe
            .write(&portal::configuration_request(), Some(&key))
            .await?;
        report
            .changes
            .push(Change::PortalConfigurationCreated(created.id));
    }
    for old in existing.iter().filter(|c| portal::is_outdated(c)) {
        let deactivate = UpdateBillingPortalConfiguration::new(old.id.as_str()).active(false);
        let _: StripePortalConfiguration = stripe.write(&deactivate, None).await?;
        report
            .changes
            .push(Change::PortalConfigurationDeactivated(old.id.clone()));
    }
    Ok(())
}
