//! What every HTTP function's `main` shares: build its state from the environment once per
//! cold start, then answer each request with it under the Lambda runtime. A `main.rs` only
//! names its state and its handler.

use std::future::Future;
use std::pin::Pin;

use lambda_http::{Body, Error, Request, Response, run, service_fn};

use crate::api::ApiConfig;
use crate::config::{self, Secret};
use crate::store::BillingStore;
use crate::sync::Syncer;

/// A handler's answer to one request.
pub type Reply<'a> = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// Answers every request with `handle`, given the state built at init.
pub async fn serve<S: Sync>(
    state: &S,
    handle: impl for<'a> Fn(&'a S, &'a Request) -> Reply<'a> + Sync,
) -> Result<(), Error> {
    let handle = &handle;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handle(state, &request).await)
    }))
    .await
}

/// The functions that call Stripe for the caller's org (checkout, portal, sync): the store,
/// Stripe (its key read from SSM at init) and the API settings.
pub async fn serve_stripe_endpoint(
    handle: impl for<'a> Fn(&'a Syncer, &'a ApiConfig, &'a Request) -> Reply<'a> + Sync,
) -> Result<(), Error> {
    crate::telemetry::init();
    let aws = config::aws().await;
    let secrets = config::load_secrets(&aws, &[Secret::STRIPE_SECRET_KEY]).await?;
    let state = (Syncer::from_env(&aws, &secrets)?, ApiConfig::from_env()?);
    serve(&state, |(syncer, api), request| {
        handle(syncer, api, request)
    })
    .await
}

/// The functions that read the caller's org from the table only (invoices, payment methods,
/// leads).
pub async fn serve_store_endpoint(
    handle: impl for<'a> Fn(&'a BillingStore, &'a ApiConfig, &'a Request) -> Reply<'a> + Sync,
) -> Result<(), Error> {
    crate::telemetry::init();
    let aws = config::aws().await;
    let state = (BillingStore::from_env(&aws)?, ApiConfig::from_env()?);
    serve(&state, |(store, api), request| handle(store, api, request)).await
}
