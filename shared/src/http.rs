//! JSON responses and the error body every HTTP function answers with:
//! `{"error":"<code>","message":"<text>"}`.

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::api::OriginAllowlist;

/// An error as the client sees it. `code` is stable and machine-readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid bearer token is required.",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side.",
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            message,
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "stripe_error", message)
    }

    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            message: &'a str,
        }
        json(
            self.status,
            &Body {
                error: self.code,
                message: &self.message,
            },
        )
    }
}

/// A JSON response. Serializing our own response types cannot fail; if it ever did, the
/// client gets a plain 500 body rather than a panic.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    match serde_json::to_string(body) {
        Ok(text) => raw_json(status, text),
        Err(_) => raw_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"internal_error","message":"Something went wrong on our side."}"#
                .to_owned(),
        ),
    }
}

/// A response with an already-rendered JSON body (bodies shared with the gateway responses,
/// the OpenAPI document).
pub fn raw_json(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// Adds `Access-Control-Allow-Origin` when the request's `Origin` is one of the frontend
/// origins (`FRONTEND_ORIGINS`, read once into the function's [`ApiConfig`]). With a REST proxy
/// integration the function, not API Gateway, must answer CORS on real (non-preflight)
/// requests, so every function response goes through here, errors included. `Vary: Origin`
/// always: the answer depends on the origin.
///
/// [`ApiConfig`]: crate::api::ApiConfig
pub fn with_cors(
    request: &lambda_http::Request,
    origins: &OriginAllowlist,
    mut response: Response<Body>,
) -> Response<Body> {
    let origin = request
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok());
    let headers = response.headers_mut();
    headers.insert("vary", HeaderValue::from_static("Origin"));
    if let Some(origin) = origin.filter(|o| origins.allows_origin(o))
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        headers.insert("access-control-allow-origin", value);
    }
    response
}

/// The request body as bytes, whatever form API Gateway or a Function URL delivered it in
/// (lambda_http has already base64-decoded `isBase64Encoded` bodies).
pub fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

// The one place where store, Stripe and sync failures become HTTP answers. Messages are
// written for the client; internal details go to the log only.

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match err {
            StoreError::InvalidCursor => ApiError::bad_request("cursor is not valid."),
            // The store's own phrase names items and conditions: log it, never send it.
            StoreError::Conflict(what) => {
                tracing::warn!(conflict = what, "store conflict");
                ApiError::conflict(
                    "conflict",
                    "The request conflicts with a concurrent change; retry it.",
                )
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::unavailable("Billing data is temporarily unavailable; retry shortly.")
            }
        }
    }
}

impl From<crate::stripe::StripeApiError> for ApiError {
    fn from(err: crate::stripe::StripeApiError) -> Self {
        use crate::stripe::StripeApiError;
        tracing::error!(error = %err, "Stripe call failed");
        match err {
            StripeApiError::Unavailable(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_unavailable",
                "Stripe could not be reached; retry shortly.",
            ),
            // A misconfigured key heals once an operator fixes it (the alarm fires): retry.
            StripeApiError::WrongAccount => {
                ApiError::unavailable("Billing is temporarily unavailable; retry shortly.")
            }
            StripeApiError::NotFound
            | StripeApiError::Rejected { .. }
            | StripeApiError::Malformed(_) => ApiError::bad_gateway("Stripe refused the request."),
        }
    }
}

impl From<crate::sync::SyncError> for ApiError {
    fn from(err: crate::sync::SyncError) -> Self {
        use crate::sync::SyncError;
        match err {
            SyncError::Stripe(e) => e.into(),
            SyncError::Store(e) => e.into(),
            SyncError::NotFoundUnconfirmed(_) => {
                ApiError::unavailable("Billing data is temporarily unavailable; retry shortly.")
            }
            other => {
                tracing::warn!(error = %other, "sync could not attribute an object");
                ApiError::conflict(
                    "sync_conflict",
                    "Billing data could not be matched to this organization.",
                )
            }
        }
    }
}
