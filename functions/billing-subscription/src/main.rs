//! `GET /api/billing/subscription`: a read of the caller's org, from the table only.
//! Everything but the wiring lives in `billing::api`.

use lambda_http::{Error, Request, run, service_fn};

use billing::store::BillingStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    let aws = billing::config::aws().await;
    let store = BillingStore::from_env(&aws)?;
    let policy = billing::api::grace_policy_from_env()?;
    let store = &store;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(billing::api::handlers::subscription(store, policy, &request).await)
    }))
    .await
}
