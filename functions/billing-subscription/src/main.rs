//! `GET /api/billing/subscription`: a read of the caller's org, from the table only.
//! Everything but the wiring lives in `billing::api`.

use billing::api::{ApiConfig, handlers};
use billing::domain::GracePolicy;
use billing::store::BillingStore;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    let aws = billing::config::aws().await;
    let state = (
        BillingStore::from_env(&aws)?,
        GracePolicy::from_env()?,
        ApiConfig::from_env()?,
    );
    billing::runtime::serve(&state, |(store, policy, config), request| {
        Box::pin(handlers::subscription(store, *policy, config, request))
    })
    .await
}
