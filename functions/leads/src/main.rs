//! `GET /api/leads` behind the authorizer (REST proxy integration). Everything but the wiring
//! lives in `billing::api`.

use billing::api::handlers;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::runtime::serve_store_endpoint(|store, config, request| {
        Box::pin(handlers::leads(store, config, request))
    })
    .await
}
