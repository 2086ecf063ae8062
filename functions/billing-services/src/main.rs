//! `GET /api/billing/services` and `GET /api/billing/openapi.json` (public).
//! Everything but the wiring lives in `billing::api`.

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    run(service_fn(|request: Request| async move {
        Ok::<_, Error>(billing::api::handlers::billing_services(&request))
    }))
    .await
}
