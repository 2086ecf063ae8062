//! `POST /api/billing/sync (eager sync after Checkout)`.
//! Everything but the wiring lives in `billing::api`.

use billing::api::handlers;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::runtime::serve_stripe_endpoint(|syncer, config, request| {
        Box::pin(handlers::sync(syncer, config, request))
    })
    .await
}
