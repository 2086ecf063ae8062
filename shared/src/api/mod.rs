//! The billing API: one function per endpoint, called by the thin Lambda binaries (and the
//! local gateway). The caller's org always comes from the authorizer context, never from the
//! request.

pub mod checkout;
mod errors;
pub mod handlers;
pub mod interval;
pub mod leads;
pub mod manage;
pub mod params;
pub mod plan;
pub mod views;

use std::collections::HashMap;

use lambda_http::http::StatusCode;
use sha2::{Digest, Sha256};

use crate::auth::BuyerDetails;
use crate::config::{self, ConfigError};
use crate::domain::{
    BillingInterval, BillingProfile, Catalog, CustomerId, GracePolicy, OrgId, Plan, ServiceModule,
    Subscription, SubscriptionStatus, Timestamp, plan_for,
};
use crate::http::ApiError;
pub use crate::http::OriginAllowlist;
use crate::routes::Role;
use crate::store::{BillingStore, StoreError};
use crate::stripe::requests::{
    CreateBillingPortalSession, CreateBillingPortalSessionFlowData,
    CreateBillingPortalSessionFlowDataType, CreateCustomer,
};
use crate::stripe::{
    StripeApiError, StripeBillingPortalSession, StripeCheckoutSession, StripePrice,
    canonical_encoding,
};
use crate::sync::{ORG_METADATA_KEY, SyncError, Syncer};
use views::{CheckoutView, InvoicePageView, PaymentMethodsView, SubscriptionOverview, UrlView};

pub const DEFAULT_INVOICE_LIMIT: u16 = 20;
pub const DEFAULT_SYNC_PER_MINUTE: u32 = 5;

/// Settings of the endpoints that talk to Stripe.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub origins: OriginAllowlist,
    pub sync_per_minute: u32,
    pub offer: checkout::CheckoutOffer,
}

impl ApiConfig {
    /// `FRONTEND_ORIGINS` (comma-separated), `SYNC_RATE_PER_MINUTE`, and what checkouts offer:
    /// `CHECKOUT_AUTOMATIC_TAX`, `CHECKOUT_PROMOTION_CODES` (`true`/`false`), `TRIAL_DAYS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            origins: OriginAllowlist::parse(&config::required("FRONTEND_ORIGINS")?),
            sync_per_minute: config::parse_or("SYNC_RATE_PER_MINUTE", DEFAULT_SYNC_PER_MINUTE)?,
            offer: checkout::CheckoutOffer::from_env()?,
        })
    }
}

fn require_admin(role: Role) -> Result<(), ApiError> {
    // The authorizer enforces this too; a function never trusts that it was the only gate.
    if role >= Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "This action requires the Admin or Owner role.",
        ))
    }
}

/// `GET /api/billing/subscription`
pub async fn subscription(
    store: &BillingStore,
    org: &OrgId,
    policy: GracePolicy,
) -> Result<SubscriptionOverview, ApiError> {
    let (subs, entitlements, trialed) = tokio::try_join!(
        store.subscriptions(org),
        store.entitlements(org, false),
        store.trialed_modules(org)
    )?;
    let subs: Vec<_> = subs.into_iter().map(|s| s.subscription).collect();
    let set = entitlements.map(|e| e.set).unwrap_or_default();
    let mut overview =
        views::overview(&subs, &set, policy.past_due_grace_seconds, Timestamp::now());
    overview.trialed_modules = trialed;
    Ok(overview)
}

/// [`subscription`], with the trial length this deployment offers.
pub async fn subscription_offered(
    store: &BillingStore,
    org: &OrgId,
    policy: GracePolicy,
    offer: &checkout::CheckoutOffer,
) -> Result<SubscriptionOverview, ApiError> {
    let mut overview = subscription(store, org, policy).await?;
    overview.trial_days = offer.trial_days;
    Ok(overview)
}

/// `GET /api/billing/invoices?limit=&cursor=`
pub async fn invoices(
    store: &BillingStore,
    org: &OrgId,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<InvoicePageView, ApiError> {
    let limit = params::limit(limit, params::MAX_LIMIT, DEFAULT_INVOICE_LIMIT)?;
    let page = store
        .list_invoices(org, limit, params::invoice_cursor(cursor)?)
        .await?;
    Ok(InvoicePageView {
        invoices: page.invoices.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

/// `GET /api/billing/payment-methods`
pub async fn payment_methods(
    store: &BillingStore,
    org: &OrgId,
) -> Result<PaymentMethodsView, ApiError> {
    let ((methods, customer_default), subscriptions) =
        tokio::try_join!(store.payment_methods(org), store.subscriptions(org))?;
    // The customer's own default first; else the card Checkout stored on a live subscription
    // (Checkout sets the subscription's default, not the customer's).
    let default = customer_default.or_else(|| {
        subscriptions
            .iter()
            .map(|s| &s.subscription)
            .filter(|s| !s.status.is_terminal())
            .max_by_key(|s| s.created)
            .and_then(|s| s.default_payment_method.clone())
    });
    Ok(views::payment_methods(methods, default.as_ref()))
}

/// A stable idempotency key: the same request retried within `window_seconds` reuses the
/// first Stripe object instead of creating another.
fn idempotency_key(kind: &str, org: &OrgId, payload: &str, window_seconds: i64) -> String {
    let window = Timestamp::now().unix() / window_seconds.max(1);
    request_key(kind, org, &format!("{payload}|{window}"))
}

/// A key naming one request for as long as Stripe keeps keys (24 hours): for requests whose
/// parameters already make them unique to one intent (a preview's proration date).
fn request_key(kind: &str, org: &OrgId, payload: &str) -> String {
    let digest = Sha256::digest(format!("{org}|{payload}").as_bytes());
    format!("pss-{kind}-{}", &hex::encode(digest)[..40])
}

/// The org's Stripe customer, created once. Two concurrent first checkouts send the same
/// idempotency key, so Stripe returns one customer, and the conditional profile write lets
/// exactly one mapping win.
///
/// The customer carries the org's name and billing email when the token has them (never
/// invented: absent claims leave the fields empty; Checkout then saves what the buyer enters).
async fn ensure_customer(
    syncer: &Syncer,
    org: &OrgId,
    details: &BuyerDetails,
) -> Result<CustomerId, ApiError> {
    if let Some(profile) = syncer.store.billing_profile(org).await? {
        return Ok(profile.customer_id);
    }
    let mut create = CreateCustomer::new()
        .metadata(HashMap::from([(
            ORG_METADATA_KEY.to_owned(),
            org.to_string(),
        )]))
        .description(format!("CRM organization {org}"));
    if let Some(name) = &details.org_name {
        create = create.name(name.as_str());
    }
    if let Some(email) = &details.email {
        create = create.email(email.as_str());
    }
    // Keyed per org and 10-minute window: concurrent first checkouts share one customer, and
    // an org whose customer was deleted gets a new one (a fixed key would replay the old id).
    // The details are in the key: two admins with other claims racing to the first checkout
    // send other parameters, which under one key Stripe would refuse.
    let payload = format!(
        "{}|{}",
        details.org_name.as_deref().unwrap_or_default(),
        details.email.as_deref().unwrap_or_default()
    );
    let key = idempotency_key("customer", org, &payload, 600);
    let created = syncer.stripe.create_customer(&create, &key).await?;
    let customer = CustomerId::parse(created)
        .map_err(|_| ApiError::bad_gateway("Stripe returned an invalid customer id."))?;
    let profile = BillingProfile {
        org_id: org.clone(),
        customer_id: customer.clone(),
        default_payment_method: None,
        created_at: Timestamp::now(),
    };
    match syncer.store.create_billing_profile(&profile).await {
        Ok(()) => Ok(customer),
        Err(StoreError::Conflict(_)) => syncer
            .store
            .billing_profile(org)
            .await?
            .map(|p| p.customer_id)
            .ok_or_else(|| {
                ApiError::conflict(
                    "billing_account_conflict",
                    "This Stripe customer is linked elsewhere.",
                )
            }),
        Err(e) => Err(e.into()),
    }
}

/// Statuses in which a subscription still stands for its modules: paid, about to be paid, or
/// waiting on the customer. Checkout refuses to sell a module held in one of them twice.
fn holds_modules(status: SubscriptionStatus) -> bool {
    !status.is_terminal()
}

/// The requested modules held in any of `subscriptions` that is not over.
fn held_in(subscriptions: &[Subscription], wanted: &[ServiceModule]) -> Vec<ServiceModule> {
    let mut held: Vec<ServiceModule> = subscriptions
        .iter()
        .filter(|s| holds_modules(s.status))
        .flat_map(|s| s.modules())
        .filter(|m| wanted.contains(m))
        .collect();
    held.sort();
    held.dedup();
    held
}

/// The org's stored subscriptions.
async fn stored_subscriptions(
    store: &BillingStore,
    org: &OrgId,
) -> Result<Vec<Subscription>, ApiError> {
    Ok(store
        .subscriptions(org)
        .await?
        .into_iter()
        .map(|s| s.subscription)
        .collect())
}

/// The requested modules the org already holds in a subscription that is not over.
async fn held_modules(
    store: &BillingStore,
    org: &OrgId,
    wanted: &[ServiceModule],
) -> Result<Vec<ServiceModule>, ApiError> {
    Ok(held_in(&stored_subscriptions(store, org).await?, wanted))
}

/// The active Stripe price of each module at `interval`, in the order asked.
async fn price_ids(
    syncer: &Syncer,
    catalog: &Catalog,
    modules: &[ServiceModule],
    interval: BillingInterval,
) -> Result<Vec<(ServiceModule, StripePrice)>, ApiError> {
    let keys: Vec<(ServiceModule, &str)> = modules
        .iter()
        .filter_map(|m| catalog.price(*m, interval).map(|p| (*m, p.lookup_key)))
        .collect();
    let lookup: Vec<&str> = keys.iter().map(|(_, k)| *k).collect();
    let prices = syncer.stripe.cached_prices_by_lookup_keys(&lookup).await?;
    keys.into_iter()
        .map(|(module, key)| {
            prices
                .iter()
                .find(|p| p.lookup_key.as_deref() == Some(key))
                .map(|p| (module, p.clone()))
                .ok_or_else(|| {
                    tracing::error!(lookup_key = key, "no active Stripe price: run catalog-sync");
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "catalog_unavailable",
                        "Prices are not available right now.",
                    )
                })
        })
        .collect()
}

fn already_subscribed(held: &[ServiceModule]) -> ApiError {
    let names: Vec<&str> = held.iter().map(|m| m.as_str()).collect();
    ApiError::conflict(
        "already_subscribed",
        format!("The organization already has: {}.", names.join(", ")),
    )
}

pub use crate::sync::CHECKOUT_REQUEST_METADATA_KEY;

/// At most one payable Checkout Session per org: every other open session of the customer is
/// expired. One that completed meanwhile is synced at once, so the caller's 409 check sees it.
async fn expire_other_sessions(
    syncer: &Syncer,
    customer: &CustomerId,
    request_key: &str,
    newest: Option<&StripeCheckoutSession>,
) -> Result<(), ApiError> {
    let open = syncer
        .stripe
        .open_checkout_sessions(customer.as_str())
        .await?;
    expire_sessions(syncer, &open, request_key, newest).await?;
    Ok(())
}

/// Expires the listed open sessions, concurrently, except those of this request and any not
/// older than `newest`. `true` when one was completed between the list and its expiry (it is
/// synced then, so what it bought counts; a sync that fails fails the checkout, which must not
/// sell what that session may have bought).
async fn expire_sessions(
    syncer: &Syncer,
    open: &[StripeCheckoutSession],
    request_key: &str,
    newest: Option<&StripeCheckoutSession>,
) -> Result<bool, ApiError> {
    let expire = |session: &StripeCheckoutSession| {
        let id = session.id.clone();
        async move {
            if syncer.stripe.expire_checkout_session(&id).await? {
                return Ok::<bool, ApiError>(false);
            }
            // It was completed between the list and the expiry: its subscription counts now.
            if let Err(e) = syncer.complete_checkout(&id, None).await {
                tracing::warn!(error = %e, "could not sync a session completed meanwhile");
                return Err(e.into());
            }
            Ok(true)
        }
    };
    let others = open.iter().filter(|session| {
        let same_request = session
            .metadata
            .as_ref()
            .and_then(|m| m.get(CHECKOUT_REQUEST_METADATA_KEY))
            .is_some_and(|k| k == request_key);
        // Ordered by (created, id), so of two sessions made in the same second exactly one is
        // the newest, and two concurrent checkouts never expire each other's.
        let older = newest.is_none_or(|n| {
            (session.created.unwrap_or(0), session.id.as_str())
                < (n.created.unwrap_or(0), n.id.as_str())
        });
        !same_request && older
    });
    let completed = futures_util::future::try_join_all(others.map(expire)).await?;
    Ok(completed.into_iter().any(|c| c))
}

/// Refuses a checkout of modules the org holds, or of an interval it already has a plan of
/// (one subscription per interval: a later purchase joins the plan, see `plan`).
async fn refuse_held_or_planned(
    store: &BillingStore,
    org: &OrgId,
    request: &checkout::CheckoutRequest,
) -> Result<Vec<Subscription>, ApiError> {
    let stored = stored_subscriptions(store, org).await?;
    let held = held_in(&stored, &request.modules);
    if !held.is_empty() {
        return Err(already_subscribed(&held));
    }
    match plan_for(&stored, request.interval) {
        Plan::None => Ok(stored),
        Plan::Live(_) => Err(ApiError::conflict(
            "plan_exists",
            format!(
                "The organization already has a {}ly plan: add these modules to it instead.",
                request.interval.as_str()
            ),
        )),
        Plan::Ending(_) => Err(ApiError::conflict(
            "plan_canceling",
            "The organization's plan of this interval is set to end: keep it in Manage \
             billing, then add these modules to it.",
        )),
        Plan::Blocked(_) => Err(ApiError::conflict(
            "payment_past_due",
            "This plan has an unpaid invoice: pay it first, then add modules.",
        )),
    }
}

/// A session answered with a `created` older than this came from an idempotent replay.
const REPLAY_AGE_SECONDS: i64 = 2;

/// `POST /api/billing/checkout` for a caller the token says nothing more of.
pub async fn checkout(
    syncer: &Syncer,
    config: &ApiConfig,
    org: &OrgId,
    role: Role,
    body: &[u8],
) -> Result<CheckoutView, ApiError> {
    checkout_for(syncer, config, org, role, &BuyerDetails::default(), body).await
}

/// The trial a checkout of `modules` gets: the configured days for a first purchase, unless
/// the org has had a trial of any of them, or has held any of them in a subscription (ended
/// ones included: a returning customer gets no trial). Stripe's trial covers the whole
/// subscription, so one such module means no trial.
fn trial_for(
    offer: &checkout::CheckoutOffer,
    modules: &[ServiceModule],
    trialed: &[ServiceModule],
    stored: &[Subscription],
) -> Option<u32> {
    (offer.trial_days > 0 && had_before(modules, trialed, stored).is_empty())
        .then_some(offer.trial_days)
}

/// The requested modules the org has had: a trial of, or in any subscription, ended or not.
fn had_before(
    modules: &[ServiceModule],
    trialed: &[ServiceModule],
    stored: &[Subscription],
) -> Vec<ServiceModule> {
    modules
        .iter()
        .copied()
        .filter(|m| trialed.contains(m) || stored.iter().any(|s| s.modules().any(|h| h == *m)))
        .collect()
}

/// `POST /api/billing/checkout`
pub async fn checkout_for(
    syncer: &Syncer,
    config: &ApiConfig,
    org: &OrgId,
    role: Role,
    details: &BuyerDetails,
    body: &[u8],
) -> Result<CheckoutView, ApiError> {
    require_admin(role)?;
    let catalog = Catalog::standard();
    let request = checkout::parse_checkout(body, &catalog, &config.origins)?;
    let held = held_modules(&syncer.store, org, &request.modules).await?;
    if !held.is_empty() {
        return Err(already_subscribed(&held));
    }
    let customer = ensure_customer(syncer, org, details).await?;
    // One wait for Stripe's three reads: the prices (usually cached), the customer's
    // subscriptions and its open sessions.
    // The table can be behind Stripe (a slow or failing webhook, a success page closed before
    // its sync): Stripe's own list of the customer's subscriptions is stored first, so a
    // module already paid for is refused rather than sold twice (and a trial it had is on
    // record). Refused before anything is expired, so a refused request leaves another
    // admin's open session alone.
    let fetched_at = crate::domain::FetchTime::now();
    let (prices, listed, open) = tokio::try_join!(
        price_ids(syncer, &catalog, &request.modules, request.interval),
        async {
            Ok(syncer
                .stripe
                .customer_subscriptions(customer.as_str())
                .await?)
        },
        async {
            Ok(syncer
                .stripe
                .open_checkout_sessions(customer.as_str())
                .await?)
        },
    )?;
    let prices_sold: Vec<String> = prices.into_iter().map(|(_, p)| p.id).collect();
    syncer.store_listed(&customer, &listed, fetched_at).await?;
    let (stored, trialed) = tokio::try_join!(
        refuse_held_or_planned(&syncer.store, org, &request),
        async { Ok(syncer.store.trialed_modules(org).await?) },
    )?;
    // A customer that pays for another plan has a card on file: Checkout confirms it rather
    // than start a trial that cancels for want of one.
    let trial =
        trial_for(&config.offer, &request.modules, &trialed, &stored).map(|days| checkout::Trial {
            days,
            card_up_front: stored.iter().any(|s| !s.status.is_terminal()),
        });
    // The key covers every parameter of the session (its canonical encoding), so the same
    // request within the window replays the same session and any other one makes a new one.
    let keyed_request = |price_ids: &[String]| {
        let build = |key: Option<&str>| {
            checkout::checkout_session_request(
                org,
                &customer,
                &request,
                price_ids,
                key,
                &config.offer,
                trial,
            )
        };
        let key = idempotency_key("checkout", org, &canonical_encoding(&build(None)), 600);
        (build(Some(&key)), key)
    };
    let (mut create, mut key) = keyed_request(&prices_sold);
    // Then, at once: a session left open by an earlier attempt can no longer be paid, and the
    // new one is created. If an old one was paid meanwhile (it is synced as it is found), or
    // the webhook stored a purchase meanwhile, what it bought is refused here, and the new
    // session is expired before its URL is handed out.
    let (expired, mut created) = tokio::join!(
        expire_sessions(syncer, &open, &key, None),
        syncer
            .stripe
            .write::<StripeCheckoutSession>(&create, Some(&key))
    );
    let refusal = match expired {
        Err(e) => Some(e),
        Ok(_) => refuse_held_or_planned(&syncer.store, org, &request)
            .await
            .err(),
    };
    if let Some(refusal) = refusal {
        if let Ok(created) = &created
            && let Err(e) = syncer.stripe.expire_checkout_session(&created.id).await
        {
            tracing::warn!(error = %e, "could not expire a refused checkout's session");
        }
        return Err(refusal);
    }
    if let Err(StripeApiError::Rejected { status: 400, .. }) = &created {
        // A cached price catalog-sync replaced since (archived: Stripe refuses it): list the
        // prices again and create the session once more with them.
        syncer.stripe.forget_prices();
        let fresh: Vec<String> = price_ids(syncer, &catalog, &request.modules, request.interval)
            .await?
            .into_iter()
            .map(|(_, p)| p.id)
            .collect();
        if fresh != prices_sold {
            (create, key) = keyed_request(&fresh);
            created = syncer.stripe.write(&create, Some(&key)).await;
        }
    }
    let mut session = created?;
    // Stripe answers a reused idempotency key with the first response, whose `status` was
    // `open` then: a session created before this request may have been expired or paid since,
    // so its current state is read. (A new session was created a moment ago.)
    if session.created.unwrap_or(0) < Timestamp::now().unix() - REPLAY_AGE_SECONDS {
        session = syncer.stripe.checkout_session(&session.id).await?;
    } else {
        crate::metrics::checkout_session("created");
    }
    match session.status.as_deref() {
        // An idempotent replay of a session paid meanwhile: what it bought counts now.
        Some("complete") => {
            syncer.complete_attributed(&session, None).await?;
            let held = held_modules(&syncer.store, org, &request.modules).await?;
            return Err(if held.is_empty() {
                ApiError::conflict(
                    "checkout_completed",
                    "This checkout was just completed; reload the billing page.",
                )
            } else {
                already_subscribed(&held)
            });
        }
        // An idempotent replay of a session a later checkout expired: it can no longer be
        // paid, so a new one is created under a key derived from the dead session (concurrent
        // retries of this request still share it).
        Some(status) if status != "open" => {
            let fresh_key = format!("{key}-after-{}", session.id);
            session = syncer.stripe.write(&create, Some(&fresh_key)).await?;
            crate::metrics::checkout_session("created");
        }
        _ => {}
    }
    // After: a concurrent checkout with other modules may have created its session between our
    // expiry pass and our create; the newest session stays, older ones are expired.
    expire_other_sessions(syncer, &customer, &key, Some(&session)).await?;
    let url = session
        .url
        .ok_or_else(|| ApiError::bad_gateway("Stripe returned a session without a URL."))?;
    tracing::info!(org = %org, session = %session.id, "checkout session created");
    Ok(CheckoutView {
        session_id: session.id,
        url,
    })
}

/// `POST /api/billing/portal`
pub async fn portal(
    syncer: &Syncer,
    config: &ApiConfig,
    org: &OrgId,
    role: Role,
    body: &[u8],
) -> Result<UrlView, ApiError> {
    require_admin(role)?;
    let (return_url, flow) = checkout::parse_portal(body, &config.origins)?;
    let profile = syncer.store.billing_profile(org).await?.ok_or_else(|| {
        ApiError::conflict(
            "no_billing_account",
            "The organization has no billing account yet: subscribe first.",
        )
    })?;
    // A fresh account has no default configuration: every session names this service's. A
    // cached id Stripe refuses (deactivated by a newer catalog-sync) is looked up once more.
    let mut retried = false;
    let session: StripeBillingPortalSession = loop {
        let Some(configuration) = syncer.stripe.our_portal_configuration().await? else {
            tracing::error!("no billing portal configuration of this service: run catalog-sync");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "portal_unavailable",
                "Billing management is not available right now.",
            ));
        };
        let mut create = CreateBillingPortalSession::new()
            .customer(profile.customer_id.as_str())
            .configuration(configuration)
            .return_url(return_url.clone());
        if flow == checkout::PortalFlow::PaymentMethodUpdate {
            create = create.flow_data(CreateBillingPortalSessionFlowData::new(
                CreateBillingPortalSessionFlowDataType::PaymentMethodUpdate,
            ));
        }
        match syncer.stripe.write(&create, None).await {
            Err(StripeApiError::Rejected { status: 400, .. } | StripeApiError::NotFound)
                if !retried =>
            {
                retried = true;
                syncer.stripe.forget_portal_configuration();
            }
            other => break other?,
        }
    };
    Ok(UrlView { url: session.url })
}

/// `POST /api/billing/sync[?session_id=cs_...]`: the eager sync after Checkout, through the
/// very functions the webhook uses, rate-limited per org.
pub async fn sync(
    syncer: &Syncer,
    config: &ApiConfig,
    org: &OrgId,
    session_id: Option<&str>,
) -> Result<SubscriptionOverview, ApiError> {
    let session = params::session_id(session_id)?;
    // One wait for the three: the rate token, the org's customer, the trials it had.
    let (allowed, profile, trialed) = tokio::try_join!(
        syncer
            .store
            .take_rate_token(org, "sync", config.sync_per_minute, 60),
        syncer.store.billing_profile(org),
        syncer.store.trialed_modules(org),
    )?;
    if !allowed {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many sync requests; try again in a minute.",
        ));
    }
    let Some(profile) = profile else {
        // No customer of this service's yet: only a session can link one.
        if let Some(id) = &session {
            sync_unlinked_session(syncer, org, id.as_str()).await?;
        }
        syncer.sync_org(org).await?;
        return subscription_offered(&syncer.store, org, syncer.policy, &config.offer).await;
    };
    // Only a session this service created for the caller's org counts (the same rule as the
    // webhook's); any other is "not found", so a session id probes and links nothing.
    let access = match syncer
        .sync_profile_at_once(org, &profile, session.as_ref().map(|s| s.as_str()))
        .await
    {
        Ok(access) => access,
        Err(SyncError::Unattributable(reason)) => {
            tracing::warn!(org = %org, %reason, "eager sync refused a session");
            return Err(not_found_session());
        }
        Err(e) => return Err(e.into()),
    };
    // Built from what was just stored, not read again.
    let mut overview = views::overview(
        &access.subscriptions,
        &access.entitlements,
        syncer.policy.past_due_grace_seconds,
        Timestamp::now(),
    );
    let mut trialed = trialed;
    trialed.extend(
        access
            .subscriptions
            .iter()
            .filter(|s| s.status == crate::domain::SubscriptionStatus::Trialing)
            .flat_map(|s| s.modules()),
    );
    trialed.sort();
    trialed.dedup();
    overview.trialed_modules = trialed;
    overview.trial_days = config.offer.trial_days;
    Ok(overview)
}

/// The eager sync's session for an org with no billing profile yet: a session this service
/// created for the org, whose customer names the org, links it (as the webhook would).
async fn sync_unlinked_session(syncer: &Syncer, org: &OrgId, id: &str) -> Result<(), ApiError> {
    let session = match syncer.stripe.checkout_session(id).await {
        Ok(s) => s,
        Err(StripeApiError::NotFound) => return Err(not_found_session()),
        Err(e) => return Err(e.into()),
    };
    match crate::sync::checkout_claim(&session) {
        Ok(claim) if &claim.org == org => {}
        _ => return Err(not_found_session()),
    }
    match syncer.complete_attributed(&session, None).await {
        Ok(_) => Ok(()),
        Err(SyncError::Unattributable(reason)) => {
            tracing::warn!(org = %org, %reason, "eager sync refused a session");
            Err(not_found_session())
        }
        Err(e) => Err(e.into()),
    }
}

fn not_found_session() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such checkout session.",
    )
}
