//! `GET /api/billing/services` and `GET /api/billing/openapi.json` (public).
//! Everything but the wiring lives in `billing::api`.

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    run(service_fn(|request: Request| async move {
        let response = if request.uri().path().ends_with("/openapi.json") {
            billing::api::handlers::openapi()
        } else {
            billing::api::handlers::services(&request)
        };
        Ok::<_, Error>(response)
    }))
    .await
}
