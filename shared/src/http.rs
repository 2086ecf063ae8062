//! HTTP only: JSON responses, the error body every HTTP function answers with
//! (`{"error":"<code>","message":"<text>"}`), and CORS with the frontend origins' allow-list
//! (which also bounds redirect URLs). It imports no other module of this crate: how store,
//! Stripe and sync failures become these answers is the API layer's business
//! (`api/errors.rs`).

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

/// An error as the client sees it. `code` is stable and machine-readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Where the buyer can finish a payment this answer is about (a Stripe hosted invoice).
    pub hosted_invoice_url: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            hosted_invoice_url: None,
        }
    }

    /// The same error, naming the hosted invoice page where the payment can be finished.
    pub fn with_invoice_url(mut self, url: Option<String>) -> Self {
        self.hosted_invoice_url = url;
        self
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
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            error: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            hosted_invoice_url: Option<&'a str>,
        }
        json(
            self.status,
            &Body {
                error: self.code,
                message: &self.message,
                hosted_invoice_url: self.hosted_invoice_url.as_deref(),
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
/// origins (`FRONTEND_ORIGINS`, read once into the function's `ApiConfig`). With a REST proxy
/// integration the function, not API Gateway, must answer CORS on real (non-preflight)
/// requests, so every function response goes through here, errors included. `Vary: Origin`
/// always: the answer depends on the origin.
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

/// Origins (`scheme://host[:port]`) the frontend is served from. Redirect URLs outside them are
/// refused, so our Checkout can never be used as an open redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginAllowlist(Vec<String>);

impl OriginAllowlist {
    /// Comma-separated origins; a trailing slash is ignored.
    pub fn parse(csv: &str) -> Self {
        Self(
            csv.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| o.starts_with("https://") || o.starts_with("http://"))
                .collect(),
        )
    }

    /// A regular expression (ECMA 262 and Rust `regex` syntax) matching exactly the URLs
    /// [`allows`](Self::allows) accepts, up to the length limit: openapi.json's `FrontendUrl`
    /// pattern for this deployment.
    pub fn url_pattern(&self) -> String {
        let origins: Vec<String> = self
            .0
            .iter()
            .map(|origin| {
                origin
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphabetic() {
                            format!("[{c}{}]", c.to_ascii_uppercase())
                        } else if c.is_ascii_alphanumeric() || matches!(c, '/' | ':' | '-') {
                            c.to_string()
                        } else {
                            format!("\\{c}")
                        }
                    })
                    .collect()
            })
            .collect();
        let pchar = "[A-Za-z0-9._~!$&'()*+,;=:@%-]";
        format!(
            "^({})(/{pchar}*)*(\\?({pchar}|[/?])*)?(#({pchar}|[/?])*)?$",
            origins.join("|")
        )
    }

    /// Whether a request's `Origin` header is exactly one of the origins (CORS). Browsers
    /// serialize an origin's scheme and host in lowercase, as the list holds them.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.0.iter().any(|allowed| allowed == origin)
    }

    pub fn allows(&self, url: &str) -> bool {
        if url.len() > 2048 {
            return false;
        }
        let lower = url.to_ascii_lowercase();
        self.0.iter().any(|origin| {
            // The origin must end exactly where the path, query or fragment starts:
            // `https://app.example.com.evil.test` and `https://app.example.com@evil.test` are
            // other hosts.
            lower
                .strip_prefix(origin.as_str())
                .is_some_and(|rest| valid_path_query_fragment(&url[url.len() - rest.len()..]))
        })
    }
}

/// RFC 3986 `path-abempty [ "?" query ] [ "#" fragment ]` characters: what may follow the
/// origin in a redirect URL. Anything else (spaces, backslashes, quotes, brackets, non-ASCII) is
/// refused rather than guessed at; `%` passes as is (Stripe checks the escapes).
fn valid_path_query_fragment(rest: &str) -> bool {
    fn pchars(part: &str, extra: &[u8]) -> bool {
        part.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b) || extra.contains(&b)
        })
    }
    let (rest, fragment) = rest
        .split_once('#')
        .map_or((rest, None), |(r, f)| (r, Some(f)));
    let (path, query) = rest
        .split_once('?')
        .map_or((rest, None), |(p, q)| (p, Some(q)));
    (path.is_empty() || path.starts_with('/'))
        && pchars(path, b"/")
        && query.is_none_or(|q| pchars(q, b"/?"))
        && fragment.is_none_or(|f| pchars(f, b"/?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> OriginAllowlist {
        OriginAllowlist::parse("https://app.example.com, http://localhost:5173/")
    }

    #[test]
    fn allowlist_refuses_look_alike_hosts() {
        let o = origins();
        assert!(o.allows("https://app.example.com/billing?x=1"));
        assert!(o.allows("https://APP.example.com"));
        assert!(o.allows("http://localhost:5173/done"));
        assert!(o.allows("http://localhost:5173?a=1&b=%2F#x/y?z"));
        assert!(o.allows("https://app.example.com#top"));
        for bad in [
            "https://app.example.com.evil.test/",
            "https://app.example.com@evil.test/",
            "http://app.example.com/",
            "https://evil.test/?r=https://app.example.com",
            "javascript:alert(1)",
            "https://app.example.com/\\evil",
            "https://app.example.com/ x",
            "https://app.example.com/caf\u{e9}",
            "https://app.example.com/\u{7f}",
            "https://app.example.com/?^",
            "https://app.example.com/#a#b",
            "https://app.example.com/\"",
            "http://localhost:5174/",
        ] {
            assert!(!o.allows(bad), "{bad}");
        }
    }
}
