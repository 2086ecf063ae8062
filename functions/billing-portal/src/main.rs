//! `POST /api/billing/portal (Owner/Admin)`.
//! Everything but the wiring lives in `billing::api`.

use lambda_http::{Error, Request, run, service_fn};

use billing::api::ApiConfig;
use billing::store::BillingStore;
use billing::stripe::StripeApi;
use billing::sync::Syncer;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    let aws = billing::config::aws().await;
    let syncer = Syncer::new(
        BillingStore::from_env(&aws)?,
        StripeApi::from_env(&aws).await?,
        billing::api::grace_policy_from_env()?,
    );
    let config = ApiConfig::from_env()?;
    let (syncer, config) = (&syncer, &config);
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(billing::api::handlers::portal(syncer, config, &request).await)
    }))
    .await
}
