//! The HTTP leg of Stripe requests: async-stripe's request layer (`async-stripe-client-core`:
//! request building, form encoding, idempotency keys, retry decisions, the pinned API version)
//! sent over the hyper + rustls (aws-lc) stack this crate already links for the JWKS fetch.
//!
//! Why not async-stripe's own `Client`: it decodes every error body into async-stripe's
//! complete `ApiErrors` type, whose embedded PaymentIntent, SetupIntent, PaymentMethod and
//! Source objects pull those types' generated decoders (and Debug impls) into every binary
//! that calls Stripe, about 4 MiB of the 12 MiB these functions weighed. Here an error body is
//! read for its status and `code` only, and a success body is handed back as bytes for one
//! serde parse by the caller. [`StripeTransport`] still implements async-stripe's
//! [`StripeClient`] trait, so async-stripe's generated request types can be sent through it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lambda_http::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use lambda_http::http::{Method, Request};
use serde::Deserialize;
use stripe_client_core::{
    CustomizedStripeRequest, Outcome, RequestBuilder, RequestStrategy, StripeClient,
    StripeClientErr, StripeMethod,
};

use super::StripeApiError;

/// Stripe's production endpoint; `STRIPE_API_BASE` replaces it for emulators.
const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// The largest body read from Stripe. A page of 100 expanded objects is well under 2 MiB; a
/// larger answer is not Stripe's and must not exhaust a 128 MB function.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const USER_AGENT_VALUE: &str = concat!("pss-billing/", env!("CARGO_PKG_VERSION"));

/// One Stripe account's HTTP transport. Cloning shares the connection pool.
#[derive(Clone)]
pub struct StripeTransport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `https://api.stripe.com`, or an emulator's origin; never ends with `/`.
    api_base: String,
    /// `Bearer <key>`, marked sensitive so hyper never prints it.
    authorization: HeaderValue,
    /// Used when a request names none: GETs are retried, POSTs choose their own.
    default_strategy: RequestStrategy,
    attempt_timeout: Duration,
    /// Attempts sent by this transport and its clones, retries included.
    attempts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Tests and the bench record each attempt here; `None` in production.
    round_trips: Option<crate::round_trips::RoundTrips>,
}

impl std::fmt::Debug for StripeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the authorization header.
        f.debug_struct("StripeTransport")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// The part of Stripe's error body this service acts on. Stripe's message is not read: it can
/// name customer data (an email, a card's last4).
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
}

impl StripeTransport {
    /// `None` for `api_base` is Stripe itself. Fails when the key cannot be a header value.
    pub fn new(
        secret_key: &str,
        api_base: Option<&str>,
        default_strategy: RequestStrategy,
        attempt_timeout: Duration,
    ) -> Result<Self, InvalidKey> {
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {secret_key}")).map_err(|_| InvalidKey)?;
        authorization.set_sensitive(true);
        Ok(Self {
            // Plain HTTP only reaches what `STRIPE_API_BASE` names (emulators on loopback).
            client: Client::builder(TokioExecutor::new()).build(crate::outbound::https_connector()),
            api_base: api_base
                .unwrap_or(DEFAULT_API_BASE)
                .trim_end_matches('/')
                .to_owned(),
            authorization,
            default_strategy,
            attempt_timeout,
            attempts: Default::default(),
            round_trips: None,
        })
    }

    /// Records every attempt from now on (tests and the bench count round trips with it).
    pub fn with_round_trips(mut self, trips: crate::round_trips::RoundTrips) -> Self {
        self.round_trips = Some(trips);
        self
    }

    /// Every attempt sent so far (what Stripe's rate limit counts).
    pub fn attempts_sent(&self) -> u64 {
        self.attempts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends `request` (retrying as `strategy` allows) and returns the body of a 2xx answer.
    pub async fn send(
        &self,
        request: RequestBuilder,
        strategy: Option<RequestStrategy>,
    ) -> Result<Bytes, StripeApiError> {
        let strategy = strategy.unwrap_or_else(|| self.default_strategy.clone());
        let http_request = self.http_request(request, &strategy)?;
        let mut attempts: u32 = 0;
        let mut last_status: Option<u16> = None;
        let mut should_retry: Option<bool> = None;
        let mut last_error = StripeApiError::Unavailable("no attempt made".to_owned());
        // Connections to Stripe are kept alive, and one idle through a frozen Lambda can break
        // as a request is written. A write carrying an idempotency key is then sent once more
        // with the same key (Stripe replays the first result if it did arrive); without a key
        // a second send could create a second object, so only the strategy decides.
        let mut may_resend = strategy.get_key().is_some();
        loop {
            match strategy.test(last_status, should_retry, attempts) {
                Outcome::Stop => return Err(last_error),
                Outcome::Continue(backoff) => {
                    if let Some(backoff) = backoff {
                        tokio::time::sleep(backoff).await;
                    }
                }
            }
            attempts += 1;
            self.attempts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let started = std::time::Instant::now();
            let answer = self.attempt(http_request.clone()).await;
            if let Some(trips) = &self.round_trips {
                trips.record(
                    crate::round_trips::Service::Stripe,
                    operation_name(&http_request),
                    started,
                );
            }
            match answer {
                Ok((status, _, body)) if (200..300).contains(&status) => return Ok(body),
                Ok((status, retry_header, body)) => {
                    last_error = error_from_response(status, &body);
                    last_status = Some(status);
                    should_retry = retry_header;
                }
                Err(e) if may_resend && last_status.is_none() => {
                    may_resend = false;
                    // Not counted: the strategy allows a keyed request one attempt.
                    attempts -= 1;
                    last_error = e;
                }
                // A network failure or timeout: no status, so only the strategy decides.
                Err(e) => last_error = e,
            }
        }
    }

    fn http_request(
        &self,
        request: RequestBuilder,
        strategy: &RequestStrategy,
    ) -> Result<Request<Full<Bytes>>, StripeApiError> {
        let mut uri = format!("{}/v1{}", self.api_base, request.path);
        // A typed request without parameters encodes an empty query: no `?` then.
        if let Some(query) = request.query.as_deref().filter(|q| !q.is_empty()) {
            uri.push('?');
            uri.push_str(query);
        }
        let method = match request.method {
            StripeMethod::Get => Method::GET,
            StripeMethod::Post => Method::POST,
            StripeMethod::Delete => Method::DELETE,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(
                HeaderName::from_static("stripe-version"),
                stripe_client_core::VERSION.as_str(),
            );
        if let Some(key) = strategy.get_key() {
            builder = builder.header(HeaderName::from_static("idempotency-key"), key.as_str());
        }
        let body = match request.body {
            Some(form) => {
                builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Bytes::from(form)
            }
            None => Bytes::new(),
        };
        builder
            .body(Full::new(body))
            // Only a path or query that is not a valid URI gets here (an id with a space).
            .map_err(|_| StripeApiError::Malformed("request is not a valid URI".to_owned()))
    }

    /// One attempt: status, Stripe's `Stripe-Should-Retry` advice, and the body.
    async fn attempt(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(u16, Option<bool>, Bytes), StripeApiError> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| StripeApiError::Unavailable(e.to_string()))?;
            let status = response.status().as_u16();
            let should_retry = response
                .headers()
                .get("stripe-should-retry")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| StripeApiError::Unavailable(e.to_string()))?
                .to_bytes();
            Ok((status, should_retry, body))
        };
        tokio::time::timeout(self.attempt_timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(StripeApiError::Unavailable("timeout".to_owned())))
    }
}

/// `GET /v1/subscriptions/{id}`: the method and path with object ids left out (Stripe's ids
/// are `<prefix>_<letters and digits>`; a segment with `_` and a digit or capital is one), so
/// recorded round trips group by endpoint.
fn operation_name(request: &Request<Full<Bytes>>) -> String {
    let path: Vec<&str> = request
        .uri()
        .path()
        .split('/')
        .map(|segment| {
            if segment.contains('_')
                && segment
                    .chars()
                    .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
            {
                "{id}"
            } else {
                segment
            }
        })
        .collect();
    format!("{} {}", request.method(), path.join("/"))
}

/// A non-2xx answer, classified by status and Stripe's machine-readable code.
pub(super) fn error_from_response(status: u16, body: &[u8]) -> StripeApiError {
    let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) else {
        // Not a Stripe error (a proxy, an outage page): worth trying again later.
        return StripeApiError::Unavailable(format!("HTTP {status} without a Stripe error"));
    };
    match (status, error.code.as_deref()) {
        // Only Stripe's own "no such object" is a missing object; a 404 for a wrong base URL
        // or a proxy must not make a subscription look deleted.
        (404, Some("resource_missing")) => StripeApiError::NotFound,
        // A concurrent request holds our idempotency key: the caller waits and sends the same
        // request again (see `StripeApi::post`).
        (409, Some("idempotency_key_in_use")) => StripeApiError::Rejected {
            status,
            code: error.code,
        },
        (409 | 429 | 500..=599, _) => StripeApiError::Unavailable(format!("HTTP {status}")),
        _ => StripeApiError::Rejected {
            status,
            code: error.code,
        },
    }
}

/// The secret key contains characters no HTTP header can carry.
#[derive(Debug)]
pub struct InvalidKey;

impl StripeClientErr for StripeApiError {
    fn deserialize_err(msg: impl std::fmt::Display) -> Self {
        StripeApiError::Malformed(msg.to_string())
    }
}

/// async-stripe's client interface, for its generated request types
/// (`SomeRequest::new(..).send(&transport)`); this service's own calls go through
/// [`StripeTransport::send`] and parse the body once with serde.
impl StripeClient for StripeTransport {
    type Err = StripeApiError;

    async fn execute(&self, request: CustomizedStripeRequest) -> Result<Bytes, StripeApiError> {
        let (request, config) = request.into_pieces();
        self.send(request, config.request_strategy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, body: &str) -> StripeApiError {
        error_from_response(status, body.as_bytes())
    }

    #[test]
    fn only_stripes_own_resource_missing_is_not_found() {
        let missing = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such subscription: 'sub_1'"}}"#;
        assert!(matches!(classify(404, missing), StripeApiError::NotFound));
        assert!(matches!(
            classify(404, "<html>Not Found</html>"),
            StripeApiError::Unavailable(_)
        ));
        assert!(matches!(
            classify(404, r#"{"error":{"type":"invalid_request_error"}}"#),
            StripeApiError::Rejected {
                status: 404,
                code: None
            }
        ));
    }

    #[test]
    fn idempotency_key_in_use_is_kept_apart_from_other_conflicts() {
        let in_use = r#"{"error":{"type":"idempotency_error","code":"idempotency_key_in_use"}}"#;
        assert!(classify(409, in_use).is_idempotency_key_in_use());
        let lock = r#"{"error":{"type":"invalid_request_error","code":"lock_timeout"}}"#;
        assert!(matches!(
            classify(409, lock),
            StripeApiError::Unavailable(_)
        ));
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient_other_refusals_are_not() {
        let body = r#"{"error":{"type":"api_error"}}"#;
        for status in [429, 500, 502, 503] {
            assert!(classify(status, body).is_transient(), "{status}");
        }
        let auth = r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_***"}}"#;
        let rejected = classify(401, auth);
        assert!(matches!(
            rejected,
            StripeApiError::Rejected {
                status: 401,
                code: None
            }
        ));
        // Stripe's message (which can carry customer data or a masked key) is never kept.
        assert!(!format!("{rejected:?} {rejected}").contains("Invalid API Key"));
    }

    #[test]
    fn the_key_is_never_printed() {
        let transport = StripeTransport::new(
            "sk_test_fake_printme",
            None,
            RequestStrategy::Once,
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!format!("{transport:?}").contains("printme"));
        assert!(
            StripeTransport::new(
                "sk_test_\nx",
                None,
                RequestStrategy::Once,
                Duration::from_secs(1)
            )
            .is_err()
        );
    }
}
