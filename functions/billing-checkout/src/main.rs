//! `POST /api/billing/checkout (Owner\/Admin)`.
//! Everything but the wiring lives in `billing::api`.

use billing::api::handlers;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::runtime::serve_stripe_endpoint(|syncer, config, request| {
        Box::pin(handlers::checkout(syncer, config, request))
    })
    .await
}
