//! pss-billing: the billing domain, the DynamoDB store, the Stripe sync and the HTTP handlers
//! shared by every Lambda function. Binaries under `functions/` only wire these to the runtime.

pub mod api;
pub mod auth;
pub mod catalog_sync;
pub mod config;
pub mod domain;
pub mod http;
#[cfg(test)]
mod layering;
pub mod metrics;
pub mod openapi;
mod outbound;
pub mod reconcile;
pub mod round_trips;
pub mod routes;
pub mod runtime;
pub mod store;
pub mod stripe;
pub mod sync;
pub mod telemetry;
pub mod webhook;
