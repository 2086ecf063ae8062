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
    #[error("Stripe object not found")]
    NotFound,
    /// Stripe refused the request for good (4xx other than 409/429): retrying will not help.
    #[error("Stripe rejected the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// Network failure, timeout, 409, 429 or 5xx: retry later.
    #[error("Stripe unavailable: {0}")]
    Unavailable(String),
    /// Stripe answered 2xx with a body we cannot read.
    #[error("unexpected Stripe response: {0}")]
    Malformed(String),
}

impl StripeApiError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StripeApiError::Unavailable(_))
    }
}

impl From<StripeError> for StripeApiError {
    fn from(err: StripeError) -> Self {
        match err {
            StripeError::Stripe(details, 404) => {
                let _ = details;
                StripeApiError::NotFound
            }
            StripeError::Stripe(_, status) if matches!(status, 409 | 429 | 500..=599) => {
                StripeApiError::Unavailable(format!("HTTP {status}"))
            }
            StripeError::Stripe(details, status) => StripeApiError::Rejected {
                status,
                // Stripe's message names the parameter at fault; it never echoes the key.
                message: details
                    .message
                    .clone()
                    .unwrap_or_else(|| "request rejected".to_owned()),
            },
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
        })
    }

    /// The key from `STRIPE_SECRET_KEY` or the SSM parameter named by
    /// `STRIPE_SECRET_KEY_PARAMETER`; `STRIPE_API_BASE` optionally overrides the endpoint.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let key = config::secret("STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY_PARAMETER", aws).await?;
        Self::new(&key, config::optional("STRIPE_API_BASE").as_deref())
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
        let value = request.send(&self.client).await?;
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
    /// creating a second object.
    pub async fn post<T: DeserializeOwned, F: Serialize>(
        &self,
        path: &str,
        form: &F,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeApiError> {
        let request = RequestBuilder::new(StripeMethod::Post, path).form(form);
        let strategy = match idempotency_key {
            Some(key) => {
                let key = stripe::IdempotencyKey::new(key)
                    .map_err(|e| StripeApiError::Malformed(format!("idempotency key: {e}")))?;
                Some(RequestStrategy::Idempotent(key))
            }
            None => Some(RequestStrategy::Once),
        };
        self.send(request, strategy).await
    }

    pub async fn subscription(&self, id: &str) -> Result<StripeSubscription, StripeApiError> {
        self.get(&format!("/subscriptions/{id}"), &[]).await
    }

    /// Every subscription of a customer, in any status (for the eager sync).
    pub async fn customer_subscriptions(
        &self,
        customer: &str,
    ) -> Result<Vec<StripeSubscription>, StripeApiError> {
        let list: List<StripeSubscription> = self
            .get(
                "/subscriptions",
                &[("customer", customer), ("status", "all"), ("limit", "100")],
            )
            .await?;
        Ok(list.data)
    }

    pub async fn invoice(&self, id: &str) -> Result<StripeInvoice, StripeApiError> {
        self.get(&format!("/invoices/{id}"), &[]).await
    }

    pub async fn customer(&self, id: &str) -> Result<StripeCustomer, StripeApiError> {
        self.get(&format!("/customers/{id}"), &[]).await
    }

    pub async fn payment_methods(
        &self,
        customer: &str,
    ) -> Result<Vec<StripePaymentMethod>, StripeApiError> {
        let list: List<StripePaymentMethod> = self
            .get(
                "/payment_methods",
                &[("customer", customer), ("type", "card"), ("limit", "100")],
            )
            .await?;
        Ok(list.data)
    }

    pub async fn checkout_session(
        &self,
        id: &str,
    ) -> Result<StripeCheckoutSession, StripeApiError> {
        self.get(&format!("/checkout/sessions/{id}"), &[]).await
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

/// Form parameters in Stripe's bracket notation (`line_items[0][price]`), in a stable order.
pub type Form = std::collections::BTreeMap<String, String>;
