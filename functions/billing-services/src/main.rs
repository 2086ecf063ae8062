//! `GET /api/billing/services` and `GET /api/billing/openapi.json` (public).
//! Everything but the wiring lives in `billing::api`.

use billing::api::{ApiConfig, handlers};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    let config = ApiConfig::from_env()?;
    billing::runtime::serve(&config, |config, request| {
        Box::pin(async move { handlers::billing_services(config, request) })
    })
    .await
}
