//! JSON responses and the error body every HTTP function answers with:
//! `{"error":"<code>","message":"<text>"}`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;

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
    let (status, text) = match serde_json::to_string(body) {
        Ok(text) => (status, text),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"internal_error","message":"Something went wrong on our side."}"#
                .to_owned(),
        ),
    };
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

static CORS_ORIGINS: std::sync::RwLock<Option<Vec<String>>> = std::sync::RwLock::new(None);

fn parse_origins(csv: &str) -> Vec<String> {
    csv.split(',')
        .map(|o| o.trim().trim_end_matches('/').to_owned())
        .filter(|o| !o.is_empty())
        .collect()
}

/// Whether `origin` is one of the frontend origins: `FRONTEND_ORIGINS` (comma-separated, read
/// once per container), plus any added with [`allow_cors_origins`].
pub fn is_cors_origin(origin: &str) -> bool {
    {
        let guard = CORS_ORIGINS.read().unwrap_or_else(|e| e.into_inner());
        if let Some(origins) = guard.as_ref() {
            return origins.iter().any(|a| a == origin);
        }
    }
    allow_cors_origins("");
    is_cors_origin(origin)
}

/// Adds frontend origins to those of `FRONTEND_ORIGINS` (the local stack, which picks its
/// ports when it starts).
pub fn allow_cors_origins(csv: &str) {
    let mut guard = CORS_ORIGINS.write().unwrap_or_else(|e| e.into_inner());
    let origins = guard.get_or_insert_with(|| {
        crate::config::optional("FRONTEND_ORIGINS")
            .map(|csv| parse_origins(&csv))
            .unwrap_or_default()
    });
    for origin in parse_origins(csv) {
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
}

/// Adds `Access-Control-Allow-Origin` when the request's `Origin` is one of the frontend
/// origins. With a REST proxy integration the function, not API Gateway, must answer CORS on
/// real (non-preflight) requests, so every function response goes through here, errors
/// included. `Vary: Origin` always: the answer depends on the origin.
pub fn with_cors(request: &lambda_http::Request, mut response: Response<Body>) -> Response<Body> {
    let origin = request
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok());
    let headers = response.headers_mut();
    headers.insert(
        "vary",
        lambda_http::http::HeaderValue::from_static("Origin"),
    );
    if let Some(origin) = origin.filter(|o| is_cors_origin(o))
        && let Ok(value) = lambda_http::http::HeaderValue::from_str(origin)
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
