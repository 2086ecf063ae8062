//! `GET /api/billing/payment-methods`: a read of the caller's org, from the table only.
//! Everything but the wiring lives in `billing::api`.

use billing::api::handlers;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::runtime::serve_store_endpoint(|store, config, request| {
        Box::pin(handlers::payment_methods(store, config, request))
    })
    .await
}
