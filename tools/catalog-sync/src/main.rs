//! `cargo run -p catalog-sync`: creates missing products and prices (with their lookup keys)
//! in the Stripe account of `STRIPE_SECRET_KEY` (or the SSM parameter named by
//! `STRIPE_SECRET_KEY_PARAMETER`), moves a lookup key to a new price when an amount changed,
//! and never edits an amount in place. Running it twice changes nothing the second time.
//! `STRIPE_API_BASE` points it at another endpoint (local emulators).

use billing::catalog_sync::{Change, sync_catalog};
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
    match sync_catalog(&stripe, Catalog::standard().entries()).await {
        Ok(report) => {
            for change in &report.changes {
                match change {
                    Change::ProductCreated(id) => println!("created product {id}"),
                    Change::ProductUpdated(id) => println!("updated product {id}"),
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
