//! Request-level entry points: read the caller from the authorizer context, call the endpoint
//! function, map the result to a JSON response. The Lambda binaries and the local gateway call
//! these and nothing else.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use super::{ApiConfig, views};
use crate::auth::{AuthContext, Caller};
use crate::domain::{Catalog, GracePolicy};
use crate::http::{ApiError, body_bytes, json, with_cors};
use crate::store::BillingStore;
use crate::sync::Syncer;

fn respond<T: Serialize>(request: &Request, result: Result<T, ApiError>) -> Response<Body> {
    let response = match result {
        Ok(view) => json(StatusCode::OK, &view),
        Err(err) => err.into_response(),
    };
    with_cors(request, response)
}

fn query<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
}

/// The billing-services function: the catalog, or the OpenAPI document by path.
pub fn billing_services(request: &Request) -> Response<Body> {
    if request.uri().path().ends_with("/openapi.json") {
        with_cors(request, openapi())
    } else {
        services(request)
    }
}

/// `GET /api/billing/services` (public): with a known caller, each module says whether the
/// caller's org has it unlocked (from the authorizer context, which read the org's
/// entitlements for a verified token: no table read here).
pub fn services(request: &Request) -> Response<Body> {
    let unlocked = AuthContext::catalog_modules(request);
    with_cors(
        request,
        json(
            StatusCode::OK,
            &views::services(&Catalog::standard(), unlocked),
        ),
    )
}

/// `GET /api/billing/openapi.json` (public), without CORS headers: a function serves it through
/// [`billing_services`], which adds them for the request's origin.
pub fn openapi() -> Response<Body> {
    let mut response = Response::new(Body::Text(crate::openapi::DOCUMENT.to_owned()));
    response.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

pub async fn subscription(
    store: &BillingStore,
    policy: GracePolicy,
    request: &Request,
) -> Response<Body> {
    respond(
        request,
        async {
            let caller = Caller::from_request(request)?;
            super::subscription(store, &caller.org, policy).await
        }
        .await,
    )
}

pub async fn invoices(store: &BillingStore, request: &Request) -> Response<Body> {
    respond(
        request,
        async {
            let caller = Caller::from_request(request)?;
            super::invoices(
                store,
                &caller.org,
                query(request, "limit"),
                query(request, "cursor"),
            )
            .await
        }
        .await,
    )
}

pub async fn payment_methods(store: &BillingStore, request: &Request) -> Response<Body> {
    respond(
        request,
        async {
            let caller = Caller::from_request(request)?;
            super::payment_methods(store, &caller.org).await
        }
        .await,
    )
}

pub async fn checkout(syncer: &Syncer, config: &ApiConfig, request: &Request) -> Response<Body> {
    respond(
        request,
        async {
            let caller = Caller::from_request(request)?;
            super::checkout(
                syncer,
                config,
                &caller.org,
                caller.role,
                body_bytes(request.body()),
            )
            .await
        }
        .await,
    )
}

pub async fn portal(syncer: &Syncer, config: &ApiConfig, request: &Request) -> Response<Body> {
    respond(
        request,
        async {
            let caller = Caller::from_request(request)?;
            super::portal(
                syncer,
                config,
                &caller.org,
                caller.role,
                body_bytes(request.body()),
            )
            .await
        }
        .await,
    )
}

pub async fn sync(syncer: &Syncer, config: &ApiConfig, request: &Request) -> Response<Body> {
    respond(
        request,
        async {
            let caller = Caller::from_request(request)?;
            super::sync(syncer, config, &caller.org, query(request, "session_id")).await
        }
        .await,
    )
}
