//! `cargo run -p catalog-sync`: creates missing products and prices (with their lookup keys)
//! in the Stripe account of `STRIPE_SECRET_KEY` (or the SSM parameter named by
//! `STRIPE_SECRET_KEY_PARAMETER`), moves a lookup key to a new price when an amount changed,
//! and never edits an amount in place. Running it twice changes nothing the second time.
//! `STRIPE_API_BASE` points it at another endpoint (local emulators).
//!
//! Options: `--tax-behavior exclusive|inclusive` (default exclusive, or `TAX_BEHAVIOR`) and
//! `--tax-code txcd_...` (default SaaS, txcd_10103001, or `TAX_CODE`).

use billing::catalog_sync::{Change, SAAS_TAX_CODE, TaxBehavior, TaxSettings, sync_catalog_with};
use billing::domain::Catalog;
use billing::stripe::StripeApi;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let aws = billing::config::aws().await;
    let stripe = match StripeApi::from_env(&aws).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("catalog-sync: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let tax = match tax_settings(std::env::args().skip(1)) {
        Ok(tax) => tax,
        Err(e) => {
            eprintln!("catalog-sync: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match sync_catalog_with(&stripe, Catalog::standard().entries(), &tax).await {
        Ok(report) => {
            for change in &report.changes {
                match change {
                    Change::ProductCreated(id) => println!("created product {id}"),
                    Change::ProductUpdated(id) => println!("updated product {id}"),
                    Change::PriceTaxBehaviorSet {
                        lookup_key,
                        price_id,
                    } => println!(
                        "set tax_behavior={} on price {price_id} ({lookup_key})",
                        tax.behavior.as_str()
                    ),
                    Change::PriceCreated {
                        lookup_key,
                        price_id,
                    } => println!("created price {price_id} ({lookup_key})"),
                    Change::PriceReplaced {
                        lookup_key,
                        from,
                        to,
                    } => {
                        println!("moved {lookup_key} from {from} (archived) to new price {to}")
                    }
                    Change::PortalConfigurationCreated(id) => {
                        println!("created billing portal configuration {id}")
                    }
                    Change::PortalConfigurationDeactivated(id) => {
                        println!("deactivated older billing portal configuration {id}")
                    }
                }
            }
            println!(
                "catalog-sync: {} change(s), {} unchanged",
                report.changes.len(),
                report.unchanged
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("catalog-sync failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--tax-behavior` / `--tax-code` (or `TAX_BEHAVIOR` / `TAX_CODE`), with their defaults.
fn tax_settings(mut args: impl Iterator<Item = String>) -> Result<TaxSettings, String> {
    let mut behavior = billing::config::optional("TAX_BEHAVIOR");
    let mut code = billing::config::optional("TAX_CODE");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tax-behavior" => behavior = args.next(),
            "--tax-code" => code = args.next(),
            other => {
                return Err(format!(
                    "unknown option {other:?} (--tax-behavior, --tax-code)"
                ));
            }
        }
    }
    let behavior = match behavior.as_deref() {
        None => TaxBehavior::Exclusive,
        Some(value) => TaxBehavior::parse(value).ok_or_else(|| {
            format!("--tax-behavior must be exclusive or inclusive, not {value:?}")
        })?,
    };
    let tax_code = code.unwrap_or_else(|| SAAS_TAX_CODE.to_owned());
    if !tax_code.starts_with("txcd_") {
        return Err(format!(
            "--tax-code must be a Stripe tax code (txcd_...), not {tax_code:?}"
        ));
    }
    Ok(TaxSettings { behavior, tax_code })
}
