//! An API Gateway stand-in: every route of the route table goes through the real authorizer
//! decision and reaches the real handler with the authorizer context a REST proxy integration
//! would carry; denials get the gateway-response bodies of template.yaml. The Stripe webhook is
//! served at `POST /webhooks/stripe`, standing in for the Function URL.

use std::collections::HashMap;

use billing::api::{ApiConfig, handlers};
use billing::auth::decision::{AUTHORIZER_FAILURE_BODY, UNAUTHORIZED_BODY};
use billing::auth::{AuthError, Authorizer, Decision};
use billing::domain::GracePolicy;
use billing::sync::Syncer;
use billing::webhook::WebhookHandler;
use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyRequestContext;
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

pub const WEBHOOK_PATH: &str = "/webhooks/stripe";
/// What API Gateway answers (403, authorizer not called) for a method or resource the API does
/// not declare: its MISSING_AUTHENTICATION_TOKEN response, which template.yaml's DEFAULT_4XX
/// template renders as our error shape.
pub const MISSING_AUTHENTICATION_TOKEN_BODY: &str =
    r#"{"error":"request_error","message":"Missing Authentication Token"}"#;

pub struct Gateway {
    pub authorizer: Authorizer,
    pub webhook: WebhookHandler,
    pub syncer: Syncer,
    pub api: ApiConfig,
    pub policy: GracePolicy,
}

/// What template.yaml's gateway responses and CORS preflight answer with. API Gateway cannot
/// pick one origin from a list for these, and they need none: the API authenticates with a
/// bearer header, never cookies, so `*` lets no page read anything it could not fetch anyway;
/// the data is on function responses, which name only an allowed origin.
pub const GATEWAY_ALLOW_ORIGIN: &str = "*";

/// A response API Gateway itself makes (authorizer denials, preflight, unknown routes), with
/// the gateway responses' CORS header. Function responses carry their own CORS headers: the
/// gateway adds nothing to them, so a function that forgets them fails the tests.
fn raw(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "access-control-allow-origin",
        lambda_http::http::HeaderValue::from_static(GATEWAY_ALLOW_ORIGIN),
    );
    response
}

impl Gateway {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        self.route(request).await
    }

    async fn route(&self, request: Request) -> Response<Body> {
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        if path == WEBHOOK_PATH {
            return if method == "POST" {
                billing::webhook::handle(&self.webhook, &request).await
            } else {
                billing::http::ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "POST only.",
                )
                .into_response()
            };
        }
        if method == "OPTIONS" {
            let mut response = raw(StatusCode::NO_CONTENT, String::new());
            let headers = response.headers_mut();
            headers.insert(
                "access-control-allow-headers",
                "Authorization,Content-Type".parse().expect("static"),
            );
            headers.insert(
                "access-control-allow-methods",
                "GET,POST,DELETE,OPTIONS".parse().expect("static"),
            );
            headers.insert("access-control-max-age", "600".parse().expect("static"));
            return response;
        }
        // API Gateway answers a method or resource the API does not declare itself, before
        // any authorizer runs (the REST API's MISSING_AUTHENTICATION_TOKEN response).
        // The resource template the concrete path matches, as API Gateway matches it.
        let Some((route, path_parameters)) = billing::routes::route_for_path(&method, &path) else {
            return raw(
                StatusCode::FORBIDDEN,
                MISSING_AUTHENTICATION_TOKEN_BODY.to_owned(),
            );
        };
        let path = route.path.to_owned();
        if billing::routes::find(&method, &path).is_none() {
            return raw(
                StatusCode::FORBIDDEN,
                MISSING_AUTHENTICATION_TOKEN_BODY.to_owned(),
            );
        }
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let decision = match self
            .authorizer
            .decide(&method, &path, authorization.as_deref())
            .await
        {
            Ok(decision) => decision,
            Err(AuthError::Unauthorized) => {
                return raw(StatusCode::UNAUTHORIZED, UNAUTHORIZED_BODY.to_owned());
            }
            Err(AuthError::Failed(reason)) => {
                tracing::error!(%reason, "authorizer failure");
                return raw(
                    StatusCode::SERVICE_UNAVAILABLE,
                    AUTHORIZER_FAILURE_BODY.to_owned(),
                );
            }
        };
        let context = decision.context();
        if let Decision::Deny { .. } = decision {
            // ACCESS_DENIED gateway response: `$context.authorizer.body`.
            let body = context
                .get("body")
                .and_then(|b| b.as_str())
                .unwrap_or_default()
                .to_owned();
            return raw(StatusCode::FORBIDDEN, body);
        }
        let Some(route) = billing::routes::find(&method, &path) else {
            return raw(
                StatusCode::NOT_FOUND,
                r#"{"error":"not_found","message":"No such route."}"#.to_owned(),
            );
        };
        let mut proxy = ApiGatewayProxyRequestContext::default();
        proxy.authorizer.fields = context.into_iter().collect();
        proxy.resource_path = Some(route.path.to_owned());
        proxy.stage = Some("local".to_owned());
        let query: HashMap<String, String> =
            serde_urlencoded::from_str(request.uri().query().unwrap_or("")).unwrap_or_default();
        let path_parameters: HashMap<String, String> = path_parameters
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        let request = request
            .with_request_context(RequestContext::ApiGatewayV1(proxy))
            .with_query_string_parameters(query)
            .with_path_parameters(path_parameters);
        self.dispatch(route.function, request).await
    }

    /// The same handler each Lambda binary runs.
    async fn dispatch(&self, function: &str, request: Request) -> Response<Body> {
        match function {
            "billing-services" => handlers::billing_services(&self.api, &request),
            "billing-subscription" => {
                handlers::subscription(&self.syncer.store, self.policy, &self.api, &request).await
            }
            "billing-invoices" => handlers::invoices(&self.syncer.store, &self.api, &request).await,
            "billing-payment-methods" => {
                handlers::payment_methods(&self.syncer.store, &self.api, &request).await
            }
            "billing-checkout" => handlers::checkout(&self.syncer, &self.api, &request).await,
            "billing-portal" => handlers::portal(&self.syncer, &self.api, &request).await,
            "billing-plan" => handlers::plan(&self.syncer, &self.api, &request).await,
            "billing-sync" => handlers::sync(&self.syncer, &self.api, &request).await,
            "leads" => handlers::leads(&self.syncer.store, &self.api, &request).await,
            other => raw(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    r#"{{"error":"not_implemented","message":"No local handler for {other}."}}"#
                ),
            ),
        }
    }
}
