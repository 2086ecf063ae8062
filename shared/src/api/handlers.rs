//! Request-level entry points, one per HTTP function: read the caller from the authorizer
//! context, call the endpoint function, map the result to a JSON response with its CORS
//! headers. Every one takes what the function built at init and the request; the Lambda
//! binaries and the local gateway call these and nothing else.

use std::future::Future;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use super::{ApiConfig, views};
use crate::auth::{AuthContext, Caller, subscription_required_body};
use crate::domain::{Catalog, GracePolicy, ServiceModule};
use crate::http::{ApiError, body_bytes, json, raw_json, with_cors};
use crate::store::BillingStore;
use crate::sync::Syncer;

fn respond<T: Serialize>(
    request: &Request,
    config: &ApiConfig,
    result: Result<T, ApiError>,
) -> Response<Body> {
    let response = match result {
        Ok(view) => json(StatusCode::OK, &view),
        Err(err) => err.into_response(),
    };
    with_cors(request, &config.origins, response)
}

/// Answers with `endpoint`'s result for the verified caller, or 401 without one.
async fn for_caller<T, F>(
    request: &Request,
    config: &ApiConfig,
    endpoint: impl FnOnce(Caller) -> F,
) -> Response<Body>
where
    T: Serialize,
    F: Future<Output = Result<T, ApiError>>,
{
    let result = match Caller::from_request(request) {
        Ok(caller) => endpoint(caller).await,
        Err(err) => Err(err),
    };
    respond(request, config, result)
}

fn query<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
}

/// The billing-services function: the catalog, or the OpenAPI document by path.
pub fn billing_services(config: &ApiConfig, request: &Request) -> Response<Body> {
    if request.uri().path().ends_with("/openapi.json") {
        with_cors(request, &config.origins, openapi(config))
    } else {
        services(config, request)
    }
}

/// `GET /api/billing/services` (public): with a known caller, each module says whether the
/// caller's org has it unlocked (from the authorizer context, which read the org's
/// entitlements for a verified token: no table read here).
pub fn services(config: &ApiConfig, request: &Request) -> Response<Body> {
    let unlocked = AuthContext::catalog_modules(request);
    respond(
        request,
        config,
        Ok(views::services(&Catalog::standard(), unlocked)),
    )
}

/// `GET /api/billing/openapi.json` (public), without CORS headers: a function serves it through
/// [`billing_services`], which adds them for the request's origin. Its `FrontendUrl` pattern
/// is this deployment's (the allowlist's [`url_pattern`](super::OriginAllowlist::url_pattern)),
/// so the schema admits exactly the redirect URLs the validator accepts.
pub fn openapi(config: &ApiConfig) -> Response<Body> {
    raw_json(
        StatusCode::OK,
        crate::openapi::with_frontend_url_pattern(&config.origins.url_pattern()),
    )
}

pub async fn subscription(
    store: &BillingStore,
    policy: GracePolicy,
    config: &ApiConfig,
    request: &Request,
) -> Response<Body> {
    for_caller(request, config, |caller| async move {
        super::subscription_offered(store, &caller.org, policy, &config.offer).await
    })
    .await
}

pub async fn invoices(
    store: &BillingStore,
    config: &ApiConfig,
    request: &Request,
) -> Response<Body> {
    for_caller(request, config, |caller| async move {
        let (limit, cursor) = (query(request, "limit"), query(request, "cursor"));
        super::invoices(store, &caller.org, limit, cursor).await
    })
    .await
}

pub async fn payment_methods(
    store: &BillingStore,
    config: &ApiConfig,
    request: &Request,
) -> Response<Body> {
    for_caller(request, config, |caller| async move {
        super::payment_methods(store, &caller.org).await
    })
    .await
}

pub async fn checkout(syncer: &Syncer, config: &ApiConfig, request: &Request) -> Response<Body> {
    for_caller(request, config, |caller| async move {
        let body = body_bytes(request.body());
        super::checkout_for(
            syncer,
            config,
            &caller.org,
            caller.role,
            &caller.details,
            body,
        )
        .await
    })
    .await
}

pub async fn portal(syncer: &Syncer, config: &ApiConfig, request: &Request) -> Response<Body> {
    for_caller(request, config, |caller| async move {
        let body = body_bytes(request.body());
        super::portal(syncer, config, &caller.org, caller.role, body).await
    })
    .await
}

/// The route template of the request (`/api/billing/modules/{service}`) and its `service`
/// path parameter: as API Gateway matched them (the resource path and path parameters it
/// passes), else matched here from the concrete path (a bare invocation).
fn matched_route(request: &Request) -> (Option<&'static str>, Option<String>) {
    let method = request.method().as_str();
    let resource = match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV1(context)) => {
            context.resource_path.as_deref()
        }
        _ => None,
    };
    if let Some(route) = resource.and_then(|r| crate::routes::find(method, r)) {
        let service = request
            .path_parameters_ref()
            .and_then(|p| p.first("service"))
            .map(str::to_owned);
        return (Some(route.path), service);
    }
    match crate::routes::route_for_path(method, request.uri().path()) {
        Some((route, params)) => (
            Some(route.path),
            params
                .into_iter()
                .find(|(n, _)| *n == "service")
                .map(|(_, v)| v),
        ),
        None => (None, None),
    }
}

/// The billing-plan function: every change of a plan after its first purchase.
pub async fn plan(syncer: &Syncer, config: &ApiConfig, request: &Request) -> Response<Body> {
    let (template, service) = matched_route(request);
    let method = request.method().clone();
    for_caller(request, config, |caller| async move {
        let body = body_bytes(request.body());
        let (org, role, offer) = (&caller.org, caller.role, &config.offer);
        let service = service.as_deref();
        match (&method, template) {
            (&Method::POST, Some("/api/billing/preview")) => {
                super::plan::preview(syncer, offer, org, role, body)
                    .await
                    .map(PlanAnswer::Preview)
            }
            (&Method::POST, Some("/api/billing/modules")) => {
                super::plan::add_modules(syncer, offer, org, role, body)
                    .await
                    .map(PlanAnswer::Change)
            }
            (&Method::DELETE, Some("/api/billing/modules/{service}")) => {
                super::manage::remove_module(syncer, offer, org, role, service)
                    .await
                    .map(PlanAnswer::Module)
            }
            (&Method::POST, Some("/api/billing/modules/{service}/resume")) => {
                super::manage::resume_module(syncer, offer, org, role, service)
                    .await
                    .map(PlanAnswer::Module)
            }
            (&Method::POST, Some("/api/billing/interval/preview")) => {
                super::interval::preview(syncer, org, role, body)
                    .await
                    .map(PlanAnswer::Preview)
            }
            (&Method::POST, Some("/api/billing/interval")) => {
                super::interval::switch_interval(syncer, offer, org, role, body)
                    .await
                    .map(PlanAnswer::Interval)
            }
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "No such route.",
            )),
        }
    })
    .await
}

#[derive(Serialize)]
#[serde(untagged)]
enum PlanAnswer {
    Preview(views::PlanPreviewView),
    Change(views::PlanChangeView),
    Module(views::ModuleChangeView),
    Interval(views::IntervalChangeView),
}

pub async fn sync(syncer: &Syncer, config: &ApiConfig, request: &Request) -> Response<Body> {
    for_caller(request, config, |caller| async move {
        super::sync(syncer, config, &caller.org, query(request, "session_id")).await
    })
    .await
}

/// `GET /api/leads` (behind the authorizer's paywall).
pub async fn leads(store: &BillingStore, config: &ApiConfig, request: &Request) -> Response<Body> {
    let response = match leads_response(store, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    with_cors(request, &config.origins, response)
}

async fn leads_response(
    store: &BillingStore,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    if request.method() != Method::GET {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Use GET.",
        ));
    }
    let auth = AuthContext::from_request(request)?;
    // The authorizer already refused orgs without the module; checking its context again costs
    // nothing and keeps the route closed if it is ever wired without the authorizer's paywall.
    if !auth.entitlements.contains(ServiceModule::LeadGeneration) {
        return Ok(raw_json(
            StatusCode::FORBIDDEN,
            subscription_required_body(ServiceModule::LeadGeneration),
        ));
    }
    let page = super::leads::leads(
        store,
        &auth,
        query(request, "limit"),
        query(request, "cursor"),
    )
    .await?;
    Ok(json(StatusCode::OK, &page))
}
