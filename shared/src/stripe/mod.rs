//! The Stripe API, as this service uses it.
//!
//! Transport is async-stripe's client (auth header, pinned `Stripe-Version`, idempotency keys,
//! retries on 409/429/5xx, per-attempt timeout, base-URL override for local emulators). Bodies
//! are parsed by the tolerant types in [`objects`] instead of async-stripe's generated ones,
//! which only accept the pinned API version's exact shape and add ~25 MB to a binary.

pub mod objects;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use stripe::{Client, ClientBuilder, RequestStrategy, StripeError};
use stripe_client_core::{RequestBuilder, StripeMethod};

use crate::config::{self, ConfigError};
pub use objects::*;

/// The Stripe API version every request is pinned to (async-stripe's generated version).
pub const API_VERSION: &str = "2026-09-30.endive";

#[derive(Debug, thiserror::Error)]
pub enum StripeApiError {
    /// Stripe answered 404 `resource_missing`: the object does not exist (or no longer does).
    #[error("Stripe object not found")]
    NotFound,
    /// Stripe refused the request (another 4xx). Not retried by the client, but a webhook must
    /// not treat it as final: a revoked, restricted or rotated key heals once it is fixed.
    #[error("Stripe rejected the request (HTTP {status})")]
    Rejected { status: u16, code: Option<String> },
    /// Network failure, timeout, 409, 429 or 5xx: retry later.
    #[error("Stripe unavailable: {0}")]
    Unavailable(String),
    /// Stripe answered 2xx with a body we cannot read.
    #[error("unexpected Stripe response: {0}")]
    Malformed(String),
}

impl StripeApiError {
    /// Worth retrying at once from an interactive request (the API answers 502/503 otherwise).
    pub fn is_transient(&self) -> bool {
        matches!(self, StripeApiError::Unavailable(_))
    }

    fn is_idempotency_key_in_use(&self) -> bool {
        matches!(self, StripeApiError::Rejected { status: 409, code: Some(c) } if c == "idempotency_key_in_use")
    }
}

impl From<StripeError> for StripeApiError {
    fn from(err: StripeError) -> Self {
        match err {
            StripeError::Stripe(details, status) => {
                let code = details.code.as_ref().map(|c| c.as_str().to_owned());
                match (status, code.as_deref()) {
                    // Only Stripe's own "no such object" is a missing object; a 404 for a wrong
                    // base URL or a proxy must not make a subscription look deleted.
                    (404, Some("resource_missing")) => StripeApiError::NotFound,
                    // A concurrent request holds our idempotency key: the caller waits and
                    // sends the same request again (see `StripeApi::post`).
                    (409, Some("idempotency_key_in_use")) => {
                        StripeApiError::Rejected { status, code }
                    }
                    (409 | 429 | 500..=599, _) => {
                        StripeApiError::Unavailable(format!("HTTP {status}"))
                    }
                    // Stripe's message can name customer data (an email, a card's last4): it is
                    // not carried, only the status and the machine-readable code.
                    _ => StripeApiError::Rejected { status, code },
                }
            }
            // A non-2xx answer whose body is not a Stripe error (a proxy, an outage page).
            StripeError::JSONDeserialize(msg) => StripeApiError::Unavailable(msg),
            StripeError::ClientError(msg) => StripeApiError::Unavailable(msg),
            StripeError::Timeout => StripeApiError::Unavailable("timeout".to_owned()),
            StripeError::ConfigError(msg) => StripeApiError::Unavailable(msg),
        }
    }
}

/// A Stripe account, reached with one secret key.
#[derive(Clone)]
pub struct StripeApi {
    client: Client,
    livemode: bool,
    /// Requests sent by this client and its clones, so a batch job can pace itself.
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the client: its configuration holds the secret key.
        f.debug_struct("StripeApi")
            .field("livemode", &self.livemode)
            .finish_non_exhaustive()
    }
}

/// Per-attempt timeout: a webhook must answer well inside Stripe's 20 s, retries included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

impl StripeApi {
    /// `api_base` overrides `https://api.stripe.com` (local emulators, tests).
    pub fn new(secret_key: &str, api_base: Option<&str>) -> Result<Self, ConfigError> {
        let mut builder = ClientBuilder::new(secret_key)
            .timeout(ATTEMPT_TIMEOUT)
            .request_strategy(RequestStrategy::Retry(2));
        if let Some(base) = api_base {
            builder = builder.url(base);
        }
        let client = builder.build().map_err(|_| {
            ConfigError::Invalid("STRIPE_SECRET_KEY", "not usable as a header".to_owned())
        })?;
        Ok(Self {
            client,
            livemode: secret_key.starts_with("sk_live_") || secret_key.starts_with("rk_live_"),
            requests: Default::default(),
        })
    }

    /// The key from `STRIPE_SECRET_KEY` or the SSM parameter named by
    /// `STRIPE_SECRET_KEY_PARAMETER`; `STRIPE_API_BASE` optionally overrides the endpoint.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let key = config::secret("STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY_PARAMETER", aws).await?;
        Self::new(&key, config::optional("STRIPE_API_BASE").as_deref())
    }

    /// How many requests this client (and its clones) has sent so far.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the key is a live-mode key; events of the other mode are refused.
    pub fn livemode(&self) -> bool {
        self.livemode
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        strategy: Option<RequestStrategy>,
    ) -> Result<T, StripeApiError> {
        let mut request = request.customize::<miniserde::json::Value>();
        if let Some(strategy) = strategy {
            request = request.request_strategy(strategy);
        }
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let value = match request.send(&self.client).await {
            Ok(value) => value,
            Err(e) => {
                let e = StripeApiError::from(e);
                crate::metrics::stripe_error(&e);
                return Err(e);
            }
        };
        // async-stripe only hands out miniserde values; re-read the JSON with our serde types.
        let json = miniserde::json::to_string(&value);
        serde_json::from_str(&json).map_err(|e| StripeApiError::Malformed(e.to_string()))
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, StripeApiError> {
        let mut request = RequestBuilder::new(StripeMethod::Get, path);
        if !query.is_empty() {
            // serde_qs (async-stripe's encoder) takes maps and structs, not lists of pairs.
            let map: std::collections::BTreeMap<&str, &str> = query.iter().copied().collect();
            request = request.query(&map);
        }
        self.send(request, None).await
    }

    /// A POST. `idempotency_key` makes a retried create return the first result instead of
    /// creating a second object. While a request with the same key is still in flight Stripe
    /// answers 409 `idempotency_key_in_use`: wait briefly and send it again (Stripe then
    /// replays the first request's result), so two concurrent identical requests both succeed.
    pub async fn post<T: DeserializeOwned, F: Serialize>(
        &self,
        path: &str,
        form: &F,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeApiError> {
        let strategy = match idempotency_key {
            Some(key) => {
                let key = stripe::IdempotencyKey::new(key)
                    .map_err(|e| StripeApiError::Malformed(format!("idempotency key: {e}")))?;
                RequestStrategy::Idempotent(key)
            }
            None => RequestStrategy::Once,
        };
        let mut delay = Duration::from_millis(100);
        let mut waited = Duration::ZERO;
        loop {
            let request = RequestBuilder::new(StripeMethod::Post, path).form(form);
            match self.send(request, Some(strategy.clone())).await {
                Err(e) if e.is_idempotency_key_in_use() && waited < IDEMPOTENCY_WAIT => {
                    tokio::time::sleep(delay).await;
                    waited += delay;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) if e.is_idempotency_key_in_use() => {
                    return Err(StripeApiError::Unavailable(
                        "idempotency key still in use".to_owned(),
                    ));
                }
                other => return other,
            }
        }
    }

    /// Every object of a list endpoint, following `has_more` / `starting_after`. Refuses to
    /// return a silently shortened list: past `MAX_LIST_PAGES` it fails.
    pub async fn list_all<T: DeserializeOwned + HasId>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, StripeApiError> {
        let mut all: Vec<T> = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let mut page_query: Vec<(&str, &str)> = query.to_vec();
            page_query.push(("limit", "100"));
            let after = all.last().map(|o| o.object_id().to_owned());
            if let Some(after) = after.as_deref() {
                page_query.push(("starting_after", after));
            }
            let page: List<T> = self.get(path, &page_query).await?;
            let more = page.has_more && !page.data.is_empty();
            all.extend(page.data);
            if !more {
                return Ok(all);
            }
        }
        Err(StripeApiError::Malformed(format!(
            "{path}: more than {MAX_LIST_PAGES} pages"
        )))
    }

    pub async fn subscription(&self, id: &str) -> Result<StripeSubscription, StripeApiError> {
        self.get(&format!("/subscriptions/{id}"), &[]).await
    }

    /// Every subscription of a customer, in any status (for the eager sync).
    pub async fn customer_subscriptions(
        &self,
        customer: &str,
    ) -> Result<Vec<StripeSubscription>, StripeApiError> {
        self.list_all(
            "/subscriptions",
            &[("customer", customer), ("status", "all")],
        )
        .await
    }

    pub async fn invoice(&self, id: &str) -> Result<StripeInvoice, StripeApiError> {
        self.get(&format!("/invoices/{id}"), &[]).await
    }

    pub async fn customer(&self, id: &str) -> Result<StripeCustomer, StripeApiError> {
        self.get(&format!("/customers/{id}"), &[]).await
    }

    /// Every payment method of a customer, of every type (card, sepa_debit, us_bank_account,
    /// link, ...).
    pub async fn payment_methods(
        &self,
        customer: &str,
    ) -> Result<Vec<StripePaymentMethod>, StripeApiError> {
        self.list_all(&format!("/customers/{customer}/payment_methods"), &[])
            .await
    }

    pub async fn checkout_session(
        &self,
        id: &str,
    ) -> Result<StripeCheckoutSession, StripeApiError> {
        self.get(&format!("/checkout/sessions/{id}"), &[]).await
    }

    /// The customer's Checkout Sessions that can still be paid.
    pub async fn open_checkout_sessions(
        &self,
        customer: &str,
    ) -> Result<Vec<StripeCheckoutSession>, StripeApiError> {
        self.list_all(
            "/checkout/sessions",
            &[("customer", customer), ("status", "open")],
        )
        .await
    }

    /// Expires an open Checkout Session so it can no longer be paid. A session that was
    /// completed or expired meanwhile is reported as `Ok(false)`.
    pub async fn expire_checkout_session(&self, id: &str) -> Result<bool, StripeApiError> {
        let empty = Form::new();
        match self
            .post::<StripeCheckoutSession, _>(
                &format!("/checkout/sessions/{id}/expire"),
                &empty,
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(StripeApiError::Rejected { status: 400, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Active prices carrying any of these lookup keys.
    pub async fn prices_by_lookup_keys(
        &self,
        keys: &[&str],
    ) -> Result<Vec<StripePrice>, StripeApiError> {
        let mut query: Form = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("lookup_keys[{i}]"), (*k).to_owned()))
            .collect();
        query.insert("active".into(), "true".into());
        query.insert("limit".into(), "100".into());
        let request = RequestBuilder::new(StripeMethod::Get, "/prices").query(&query);
        let list: List<StripePrice> = self.send(request, None).await?;
        Ok(list.data)
    }

    pub async fn product(&self, id: &str) -> Result<Option<StripeProduct>, StripeApiError> {
        match self.get(&format!("/products/{id}"), &[]).await {
            Ok(p) => Ok(Some(p)),
            Err(StripeApiError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// How long a POST waits for a concurrent request holding its idempotency key.
const IDEMPOTENCY_WAIT: Duration = Duration::from_secs(5);
/// 100 objects a page: 5,000 subscriptions or payment methods for one customer at most.
const MAX_LIST_PAGES: usize = 50;

/// Form parameters in Stripe's bracket notation (`line_items[0][price]`), in a stable order.
pub type Form = std::collections::BTreeMap<String, String>;
