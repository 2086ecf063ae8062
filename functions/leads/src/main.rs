//! `GET /api/leads` behind the authorizer (REST proxy integration). Everything but the wiring
//! lives in `billing::auth::leads`.

use billing::auth::LeadsHandler;
use billing::config;
use billing::store::BillingStore;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    let aws = config::aws().await;
    let handler = LeadsHandler::new(BillingStore::from_env(&aws)?);
    let handler = &handler;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handler.handle(request).await)
    }))
    .await
}
