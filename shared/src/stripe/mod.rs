//! The Stripe API, as this service uses it.
//!
//! Every request is one of async-stripe's generated request types ([`requests`]: one per
//! endpoint, generated from Stripe's OpenAPI description of the pinned version, so a parameter
//! Stripe does not have does not compile), built into async-stripe's `RequestBuilder` (form
//! encoding, pinned `Stripe-Version`, idempotency keys, retry decisions) and sent by
//! [`transport`] over the hyper + rustls stack the crate already links. Bodies are parsed once,
//! by the tolerant serde types in [`objects`] instead of async-stripe's generated ones, which
//! only accept the pinned API version's exact shape and add ~25 MB to a binary.

pub mod objects;
pub mod portal;
pub mod requests;
mod transport;

use std::time::Duration;

use serde::de::DeserializeOwned;
// The request-strategy types as async-stripe exports them; the builder and the client trait
// come from its client-core crate, which it does not re-export.
use stripe::{IdempotencyKey, RequestStrategy};
use stripe_client_core::{RequestBuilder, StripeRequest};

use crate::config::{self, ConfigError, Secret, Secrets};
pub use objects::*;
pub use transport::StripeTransport;

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
    /// The key belongs to another Stripe account than the configured one (a wrongly rotated
    /// key): nothing it reads can be trusted, so nothing is sent with it. Heals once the key is
    /// fixed, so never final.
    #[error("the Stripe key belongs to another account than the configured one")]
    WrongAccount,
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

/// A Stripe account, reached with one secret key.
#[derive(Clone)]
pub struct StripeApi {
    transport: StripeTransport,
    livemode: bool,
    pin: std::sync::Arc<AccountPin>,
    /// This service's billing portal configuration, found once per container.
    portal_configuration: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// Active prices by lookup key, as last listed, for [`PRICE_CACHE_TTL`].
    prices: std::sync::Arc<std::sync::Mutex<PriceCache>>,
}

/// How long a listed price is used without asking Stripe again. Prices change only when
/// catalog-sync replaces one (rare); a checkout Stripe refuses for an inactive price forgets
/// the cache and lists again at once ([`StripeApi::forget_prices`]), so the TTL only bounds
/// how long a replaced price that is still active keeps being sold.
pub const PRICE_CACHE_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
struct PriceCache {
    by_lookup_key: std::collections::HashMap<String, (StripePrice, std::time::Instant)>,
}

/// The account a key must belong to, checked once per container on first use
/// (`GET /v1/account`). In live mode a key of another account still matches `livemode`, and a
/// webhook signature does not involve the key at all: without the pin, every re-fetch with
/// such a key answers 404 and would read as "deleted".
#[derive(Debug, Default)]
struct AccountPin {
    expected: Option<String>,
    /// 0: not checked yet, 1: the key's account is the expected one, 2: it is another.
    state: std::sync::atomic::AtomicU8,
}

const PIN_UNCHECKED: u8 = 0;
const PIN_MATCHES: u8 = 1;
const PIN_MISMATCH: u8 = 2;

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
        // Reads are retried once at once (a dropped connection, a 5xx); writes name their own
        // strategy in `post`.
        let transport = StripeTransport::new(
            secret_key,
            api_base,
            RequestStrategy::Retry(2),
            ATTEMPT_TIMEOUT,
        )
        .map_err(|_| {
            ConfigError::Invalid("STRIPE_SECRET_KEY", "not usable as a header".to_owned())
        })?;
        Ok(Self {
            transport,
            livemode: secret_key.starts_with("sk_live_") || secret_key.starts_with("rk_live_"),
            pin: Default::default(),
            portal_configuration: Default::default(),
            prices: Default::default(),
        })
    }

    /// Records each request's round trip (tests and the bench; never set in production).
    pub fn with_round_trips(mut self, trips: crate::round_trips::RoundTrips) -> Self {
        self.transport = self.transport.with_round_trips(trips);
        self
    }

    /// Refuses every request unless the key belongs to `account` (`acct_...`), checked on
    /// first use.
    pub fn pinned_to(mut self, account: impl Into<String>) -> Self {
        self.pin = std::sync::Arc::new(AccountPin {
            expected: Some(account.into()),
            state: Default::default(),
        });
        self
    }

    /// With the [`Secret::STRIPE_SECRET_KEY`] a function loaded at init, pinned to the account
    /// `STRIPE_ACCOUNT_ID` names (required: a function that calls Stripe never runs unpinned
    /// in AWS); `STRIPE_API_BASE` optionally overrides the endpoint (local stack, tests).
    pub fn from_secrets(secrets: &Secrets) -> Result<Self, ConfigError> {
        let account = config::required("STRIPE_ACCOUNT_ID")?;
        if !account.starts_with("acct_") {
            return Err(ConfigError::Invalid(
                "STRIPE_ACCOUNT_ID",
                "expected a Stripe account id (acct_...)".to_owned(),
            ));
        }
        Ok(Self::new(
            secrets.get(Secret::STRIPE_SECRET_KEY)?,
            config::optional("STRIPE_API_BASE").as_deref(),
        )?
        .pinned_to(account))
    }

    /// The key from `STRIPE_SECRET_KEY` or the SSM parameter named by
    /// `STRIPE_SECRET_KEY_PARAMETER` (the catalog tool, which loads nothing else), pinned to
    /// `STRIPE_ACCOUNT_ID` when it is set (the operator's shell may not name it).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let secrets = config::load_secrets(aws, &[Secret::STRIPE_SECRET_KEY]).await?;
        let api = Self::new(
            secrets.get(Secret::STRIPE_SECRET_KEY)?,
            config::optional("STRIPE_API_BASE").as_deref(),
        )?;
        Ok(match config::optional("STRIPE_ACCOUNT_ID") {
            Some(account) => api.pinned_to(account),
            None => api,
        })
    }

    /// The id of the account the key belongs to (`GET /v1/account`).
    pub async fn account_id(&self) -> Result<String, StripeApiError> {
        #[derive(serde::Deserialize)]
        struct Account {
            id: String,
        }
        let account: Account = self
            .send_unpinned(requests::RetrieveForMyAccountAccount::new().build(), None)
            .await?;
        Ok(account.id)
    }

    /// Checks the pin (once per container when it matches; a key of another account is
    /// refused for the container's life, since its key never changes): every refusal is
    /// counted for the `StripeAccountMismatch` alarm.
    pub async fn verify_account(&self) -> Result<(), StripeApiError> {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(expected) = &self.pin.expected else {
            return Ok(());
        };
        let state = match self.pin.state.load(Relaxed) {
            PIN_UNCHECKED => {
                // Concurrent first uses may each ask; they all learn the same answer.
                let state = if &self.account_id().await? == expected {
                    PIN_MATCHES
                } else {
                    tracing::error!(
                        expected = %expected,
                        "the Stripe key belongs to another account: refusing to use it"
                    );
                    PIN_MISMATCH
                };
                self.pin.state.store(state, Relaxed);
                state
            }
            known => known,
        };
        if state == PIN_MATCHES {
            Ok(())
        } else {
            crate::metrics::stripe_account_mismatch();
            Err(StripeApiError::WrongAccount)
        }
    }

    /// How many requests this client (and its clones) has sent so far: every attempt,
    /// the transport's retries included, since Stripe's rate limit counts each one.
    pub fn requests_sent(&self) -> u64 {
        self.transport.attempts_sent()
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
        self.verify_account().await?;
        self.send_unpinned(request, strategy).await
    }

    async fn send_unpinned<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        strategy: Option<RequestStrategy>,
    ) -> Result<T, StripeApiError> {
        let body = match self.transport.send(request, strategy).await {
            Ok(body) => body,
            Err(e) => {
                crate::metrics::stripe_error(&e);
                return Err(e);
            }
        };
        // One parse, straight from the bytes into this service's own types.
        serde_json::from_slice(&body).map_err(|e| StripeApiError::Malformed(e.to_string()))
    }

    /// Sends async-stripe's typed request for a read (retried as the default strategy allows)
    /// and parses the answer into `T`, one of this service's tolerant types.
    pub async fn read<T: DeserializeOwned>(
        &self,
        request: &impl StripeRequest,
    ) -> Result<T, StripeApiError> {
        self.send(request.build(), None).await
    }

    /// Sends async-stripe's typed request for a write. `idempotency_key` makes a retried create
    /// return the first result instead of creating a second object. While a request with the
    /// same key is still in flight Stripe answers 409 `idempotency_key_in_use`: wait briefly
    /// and send it again (Stripe then replays the first request's result), so two concurrent
    /// identical requests both succeed.
    pub async fn write<T: DeserializeOwned>(
        &self,
        request: &impl StripeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeApiError> {
        let request = request.build();
        let strategy = match idempotency_key {
            Some(key) => {
                let key = IdempotencyKey::new(key)
                    .map_err(|e| StripeApiError::Malformed(format!("idempotency key: {e}")))?;
                RequestStrategy::Idempotent(key)
            }
            None => RequestStrategy::Once,
        };
        let mut delay = Duration::from_millis(100);
        let mut waited = Duration::ZERO;
        loop {
            match self.send(copy_of(&request), Some(strategy.clone())).await {
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

    /// Every object of a list endpoint, following `has_more` / `starting_after`: `page` builds
    /// the typed list request for the page after an object id (`None` for the first). Refuses
    /// to return a silently shortened list: past `MAX_LIST_PAGES` it fails.
    async fn list_all<T, R>(
        &self,
        page: impl Fn(Option<&str>) -> R,
    ) -> Result<Vec<T>, StripeApiError>
    where
        T: DeserializeOwned + HasId,
        R: StripeRequest,
    {
        let mut all: Vec<T> = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let after = all.last().map(|o| o.object_id().to_owned());
            let page: List<T> = self.read(&page(after.as_deref())).await?;
            let more = page.has_more && !page.data.is_empty();
            all.extend(page.data);
            if !more {
                return Ok(all);
            }
        }
        Err(StripeApiError::Malformed(format!(
            "{}: more than {MAX_LIST_PAGES} pages",
            page(None).build().path
        )))
    }

    /// A subscription with its latest invoice expanded (what an owing plan owes) and, when it
    /// has one, its schedule (what ends at the period end).
    pub async fn subscription(&self, id: &str) -> Result<StripeSubscription, StripeApiError> {
        let request =
            requests::RetrieveSubscription::new(id).expand(vec![LATEST_INVOICE.to_owned()]);
        let mut subscription: StripeSubscription = self.read(&request).await?;
        self.with_schedule(&mut subscription).await?;
        Ok(subscription)
    }

    pub async fn schedule(&self, id: &str) -> Result<StripeSchedule, StripeApiError> {
        self.read(&requests::RetrieveSubscriptionSchedule::new(id))
            .await
    }

    /// Replaces a subscription's schedule id by the schedule. A second request, made only for
    /// a subscription that has a schedule (rare: a module set to end), rather than
    /// `expand[]=schedule` on every read, which emulators of older API shapes refuse.
    async fn with_schedule(
        &self,
        subscription: &mut StripeSubscription,
    ) -> Result<(), StripeApiError> {
        if let Some(ScheduleRef::Id(id)) = &subscription.schedule {
            let schedule = self.schedule(id).await?;
            subscription.schedule = Some(ScheduleRef::Object(Box::new(schedule)));
        }
        Ok(())
    }

    /// Every subscription of a customer, in any status (for the eager sync).
    pub async fn customer_subscriptions(
        &self,
        customer: &str,
    ) -> Result<Vec<StripeSubscription>, StripeApiError> {
        let mut listed: Vec<StripeSubscription> = self
            .list_all(|after| {
                let list = requests::ListSubscription::new()
                    .customer(customer)
                    .status(requests::ListSubscriptionStatus::All)
                    .expand(vec![format!("data.{LATEST_INVOICE}")])
                    .limit(PAGE_SIZE);
                match after {
                    Some(id) => list.starting_after(id),
                    None => list,
                }
            })
            .await?;
        // Concurrently: N scheduled subscriptions cost one more wait, not N.
        futures_util::future::try_join_all(listed.iter_mut().map(|s| self.with_schedule(s)))
            .await?;
        Ok(listed)
    }

    /// Changes a subscription (items, proration, payment behaviour) under `idempotency_key`.
    pub async fn update_subscription(
        &self,
        request: &requests::UpdateSubscription,
        idempotency_key: &str,
    ) -> Result<StripeSubscription, StripeApiError> {
        self.write(request, Some(idempotency_key)).await
    }

    /// A change of a subscription's own settings (`cancel_at_period_end`) that is the same
    /// whenever it is repeated: sent without an idempotency key, since a key reused for the
    /// opposite change later would replay the first answer instead of making it.
    pub async fn set_subscription(
        &self,
        request: &requests::UpdateSubscription,
    ) -> Result<StripeSubscription, StripeApiError> {
        self.write(request, None).await
    }

    /// `POST /v1/subscription_schedules` with `from_subscription`: the schedule, one phase.
    pub async fn create_schedule(
        &self,
        subscription: &str,
    ) -> Result<StripeSchedule, StripeApiError> {
        let request = requests::CreateSubscriptionSchedule::new().from_subscription(subscription);
        self.write(&request, None).await
    }

    pub async fn update_schedule(
        &self,
        request: &requests::UpdateSubscriptionSchedule,
    ) -> Result<StripeSchedule, StripeApiError> {
        self.write(request, None).await
    }

    /// Releases a schedule: it stops, and its subscription keeps its items as they are.
    /// `Ok(false)`: it was released or ended already (Stripe answers 400).
    pub async fn release_schedule(&self, id: &str) -> Result<bool, StripeApiError> {
        match self
            .write::<StripeSchedule>(&requests::ReleaseSubscriptionSchedule::new(id), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(StripeApiError::Rejected { status: 400, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The id of this service's portal configuration (the one catalog-sync creates), read
    /// once per container; `None` when catalog-sync has not created it.
    pub async fn our_portal_configuration(&self) -> Result<Option<String>, StripeApiError> {
        if let Some(id) = self.cached_portal_configuration() {
            return Ok(Some(id));
        }
        let ours = self
            .portal_configurations()
            .await?
            .into_iter()
            .filter(portal::is_current)
            .max_by_key(|c| c.created.unwrap_or(0))
            .map(|c| c.id);
        if let Some(id) = &ours
            && let Ok(mut cached) = self.portal_configuration.lock()
        {
            *cached = Some(id.clone());
        }
        Ok(ours)
    }

    fn cached_portal_configuration(&self) -> Option<String> {
        self.portal_configuration
            .lock()
            .ok()
            .and_then(|cached| cached.clone())
    }

    /// Forgets the cached configuration (Stripe refused it: deactivated by a newer
    /// catalog-sync), so the next lookup reads the current one.
    pub fn forget_portal_configuration(&self) {
        if let Ok(mut cached) = self.portal_configuration.lock() {
            *cached = None;
        }
    }

    /// Every active billing portal configuration, newest first.
    pub async fn portal_configurations(
        &self,
    ) -> Result<Vec<StripePortalConfiguration>, StripeApiError> {
        self.list_all(|after| {
            let list = requests::ListBillingPortalConfiguration::new()
                .active(true)
                .limit(PAGE_SIZE);
            match after {
                Some(id) => list.starting_after(id),
                None => list,
            }
        })
        .await
    }

    /// Stripe's own calculation of an invoice that a change would make
    /// (`POST /v1/invoices/create_preview`). It creates nothing, so it is retried like a read.
    pub async fn preview_invoice(
        &self,
        request: &requests::CreatePreviewInvoice,
    ) -> Result<StripeInvoice, StripeApiError> {
        self.read(request).await
    }

    pub async fn invoice(&self, id: &str) -> Result<StripeInvoice, StripeApiError> {
        self.read(&requests::RetrieveInvoice::new(id)).await
    }

    /// The customer's `limit` most recent invoices (one page, newest first).
    pub async fn recent_invoices(
        &self,
        customer: &str,
        limit: i64,
    ) -> Result<List<StripeInvoice>, StripeApiError> {
        let list = requests::ListInvoice::new().customer(customer).limit(limit);
        self.read(&list).await
    }

    pub async fn customer(&self, id: &str) -> Result<StripeCustomer, StripeApiError> {
        self.read(&requests::RetrieveCustomer::new(id)).await
    }

    /// Creates a customer (see [`requests::CreateCustomer`]) and returns its id.
    pub async fn create_customer(
        &self,
        request: &requests::CreateCustomer,
        idempotency_key: &str,
    ) -> Result<String, StripeApiError> {
        #[derive(serde::Deserialize)]
        struct Created {
            id: String,
        }
        let created: Created = self.write(request, Some(idempotency_key)).await?;
        Ok(created.id)
    }

    /// Every payment method of a customer, of every type (card, sepa_debit, us_bank_account,
    /// link, ...).
    pub async fn payment_methods(
        &self,
        customer: &str,
    ) -> Result<Vec<StripePaymentMethod>, StripeApiError> {
        self.list_all(|after| {
            let list = requests::ListPaymentMethodsCustomer::new(customer).limit(PAGE_SIZE);
            match after {
                Some(id) => list.starting_after(id),
                None => list,
            }
        })
        .await
    }

    pub async fn checkout_session(
        &self,
        id: &str,
    ) -> Result<StripeCheckoutSession, StripeApiError> {
        self.read(&requests::RetrieveCheckoutSession::new(id)).await
    }

    /// The customer's Checkout Sessions that can still be paid.
    pub async fn open_checkout_sessions(
        &self,
        customer: &str,
    ) -> Result<Vec<StripeCheckoutSession>, StripeApiError> {
        self.list_all(|after| {
            let list = requests::ListCheckoutSession::new()
                .customer(customer)
                .status(requests::CheckoutSessionStatus::Open)
                .limit(PAGE_SIZE);
            match after {
                Some(id) => list.starting_after(id),
                None => list,
            }
        })
        .await
    }

    /// Expires an open Checkout Session so it can no longer be paid. A session that was
    /// completed or expired meanwhile is reported as `Ok(false)`.
    pub async fn expire_checkout_session(&self, id: &str) -> Result<bool, StripeApiError> {
        match self
            .write::<StripeCheckoutSession>(&requests::ExpireCheckoutSession::new(id), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(StripeApiError::Rejected { status: 400, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Active prices carrying any of these lookup keys, as Stripe lists them now (catalog-sync).
    pub async fn prices_by_lookup_keys(
        &self,
        keys: &[&str],
    ) -> Result<Vec<StripePrice>, StripeApiError> {
        let wanted: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let list = requests::ListPrice::new()
            .lookup_keys(wanted)
            .active(true)
            .limit(PAGE_SIZE);
        let list: List<StripePrice> = self.read(&list).await?;
        Ok(list.data)
    }

    /// As [`Self::prices_by_lookup_keys`], from this container's cache when every key was
    /// listed less than [`PRICE_CACHE_TTL`] ago (what a checkout click sells: no Stripe
    /// request for the prices on a warm container).
    pub async fn cached_prices_by_lookup_keys(
        &self,
        keys: &[&str],
    ) -> Result<Vec<StripePrice>, StripeApiError> {
        if let Some(cached) = self.cached_prices(keys) {
            return Ok(cached);
        }
        let listed = self.prices_by_lookup_keys(keys).await?;
        let now = std::time::Instant::now();
        let mut cache = self.prices.lock().unwrap_or_else(|e| e.into_inner());
        for price in &listed {
            if let Some(key) = &price.lookup_key {
                cache
                    .by_lookup_key
                    .insert(key.clone(), (price.clone(), now));
            }
        }
        Ok(listed)
    }

    fn cached_prices(&self, keys: &[&str]) -> Option<Vec<StripePrice>> {
        let cache = self.prices.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .map(|key| {
                let (price, listed_at) = cache.by_lookup_key.get(*key)?;
                (listed_at.elapsed() < PRICE_CACHE_TTL).then(|| price.clone())
            })
            .collect()
    }

    /// Drops the cached prices (Stripe refused one: catalog-sync replaced it).
    pub fn forget_prices(&self) {
        self.prices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_lookup_key
            .clear();
    }

    pub async fn product(&self, id: &str) -> Result<Option<StripeProduct>, StripeApiError> {
        match self.read(&requests::RetrieveProduct::new(id)).await {
            Ok(p) => Ok(Some(p)),
            Err(StripeApiError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn event(&self, id: &str) -> Result<StripeEvent, StripeApiError> {
        self.read(&requests::RetrieveEvent::new(id)).await
    }

    /// Every event created at or after `since` (unix seconds) that Stripe has not yet
    /// delivered to every endpoint, newest first.
    pub async fn undelivered_events(&self, since: i64) -> Result<Vec<StripeEvent>, StripeApiError> {
        self.list_all(|after| {
            let list = requests::ListEvent::new()
                .delivery_success(false)
                .created(requests::RangeQueryTs::gte(since))
                .limit(PAGE_SIZE);
            match after {
                Some(id) => list.starting_after(id),
                None => list,
            }
        })
        .await
    }
}

/// A typed request's parameters as one string, the same for the same parameters: its form (or
/// query) encoding with the pairs sorted, since maps such as `metadata` encode in any order.
pub fn canonical_encoding(request: &impl StripeRequest) -> String {
    let built = request.build();
    let encoded = built.body.or(built.query).unwrap_or_default();
    let mut pairs: Vec<&str> = encoded.split('&').filter(|p| !p.is_empty()).collect();
    pairs.sort_unstable();
    pairs.join("&")
}

/// async-stripe's `RequestBuilder` is not `Clone`; a POST waiting out its key sends it again.
fn copy_of(request: &RequestBuilder) -> RequestBuilder {
    RequestBuilder {
        query: request.query.clone(),
        body: request.body.clone(),
        path: request.path.clone(),
        method: request.method,
    }
}

/// Expanded on every subscription read: the latest invoice (what an owing plan owes, and the
/// page to pay it on).
const LATEST_INVOICE: &str = "latest_invoice";

/// How long a POST waits for a concurrent request holding its idempotency key.
const IDEMPOTENCY_WAIT: Duration = Duration::from_secs(5);
/// Stripe's largest page: fewest requests per list.
const PAGE_SIZE: i64 = 100;
/// 100 objects a page: 5,000 subscriptions or payment methods for one customer at most.
const MAX_LIST_PAGES: usize = 50;

#[cfg(test)]
mod tests {
    #[test]
    fn the_pinned_version_is_the_one_async_stripe_sends() {
        assert_eq!(super::API_VERSION, stripe_client_core::VERSION.as_str());
    }
}
