//! `POST /api/billing/preview` and `POST /api/billing/modules` (Owner\/Admin): the price of
//! adding modules to the org's plan, and the addition.
//! Everything but the wiring lives in `billing::api`.

use billing::api::handlers;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::runtime::serve_stripe_endpoint(|syncer, config, request| {
        Box::pin(handlers::plan(syncer, config, request))
    })
    .await
}
