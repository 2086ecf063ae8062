//! The billing API: one function per endpoint, called by the thin Lambda binaries (and the
//! local gateway). The caller's org always comes from the authorizer context, never from the
//! request.

pub mod checkout;
pub mod handlers;
pub mod params;
pub mod views;

use lambda_http::http::StatusCode;
use sha2::{Digest, Sha256};

use crate::config::{self, ConfigError};
use crate::domain::{
    BillingProfile, Catalog, CustomerId, GracePolicy, OrgId, ServiceModule, SubscriptionStatus,
    Timestamp,
};
use crate::http::ApiError;
use crate::routes::Role;
use crate::store::{BillingStore, StoreError};
use crate::stripe::{
    Expandable, StripeApiError, StripeBillingPortalSession, StripeCheckoutSession,
};
use crate::sync::Syncer;
pub use checkout::OriginAllowlist;
use views::{CheckoutView, InvoicePageView, PaymentMethodsView, SubscriptionOverview, UrlView};

pub const DEFAULT_INVOICE_LIMIT: u16 = 20;
pub const DEFAULT_SYNC_PER_MINUTE: u32 = 5;

/// Settings of the endpoints that talk to Stripe.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub origins: OriginAllowlist,
    pub sync_per_minute: u32,
}

impl ApiConfig {
    /// `FRONTEND_ORIGINS` (comma-separated) and `SYNC_RATE_PER_MINUTE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            origins: OriginAllowlist::parse(&config::required("FRONTEND_ORIGINS")?),
            sync_per_minute: config::parse_or("SYNC_RATE_PER_MINUTE", DEFAULT_SYNC_PER_MINUTE)?,
        })
    }
}

pub fn grace_policy_from_env() -> Result<GracePolicy, ConfigError> {
    Ok(GracePolicy::days(config::parse_or(
        "PAST_DUE_GRACE_DAYS",
        GracePolicy::DEFAULT_DAYS,
    )?))
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
    let (subs, entitlements) =
        tokio::try_join!(store.subscriptions(org), store.entitlements(org, false))?;
    let subs: Vec<_> = subs.into_iter().map(|s| s.subscription).collect();
    let set = entitlements.map(|e| e.set).unwrap_or_default();
    Ok(views::overview(
        &subs,
        &set,
        policy.past_due_grace_seconds,
        Timestamp::now(),
    ))
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
    let (methods, default) = store.payment_methods(org).await?;
    Ok(views::payment_methods(methods, default.as_ref()))
}

/// A stable idempotency key: the same request retried within `window_seconds` reuses the
/// first Stripe object instead of creating another.
fn idempotency_key(kind: &str, org: &OrgId, payload: &str, window_seconds: i64) -> String {
    let window = Timestamp::now().unix() / window_seconds.max(1);
    let digest = Sha256::digest(format!("{org}|{payload}|{window}").as_bytes());
    format!("pss-{kind}-{}", &hex::encode(digest)[..40])
}

/// The org's Stripe customer, created once. Two concurrent first checkouts send the same
/// idempotency key, so Stripe returns one customer, and the conditional profile write lets
/// exactly one mapping win.
async fn ensure_customer(syncer: &Syncer, org: &OrgId) -> Result<CustomerId, ApiError> {
    if let Some(profile) = syncer.store.billing_profile(org).await? {
        return Ok(profile.customer_id);
    }
    #[derive(serde::Deserialize)]
    struct Created {
        id: String,
    }
    let mut form = crate::stripe::Form::new();
    form.insert("metadata[organization_id]".into(), org.to_string());
    form.insert("description".into(), format!("CRM organization {org}"));
    let created: Created = syncer
        .stripe
        .post("/customers", &form, Some(&format!("pss-customer-{org}")))
        .await?;
    let customer = CustomerId::parse(created.id)
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

/// `POST /api/billing/checkout`
pub async fn checkout(
    syncer: &Syncer,
    config: &ApiConfig,
    org: &OrgId,
    role: Role,
    body: &[u8],
) -> Result<CheckoutView, ApiError> {
    require_admin(role)?;
    let catalog = Catalog::standard();
    let request = checkout::parse_checkout(body, &catalog, &config.origins)?;
    let held: Vec<ServiceModule> = syncer
        .store
        .subscriptions(org)
        .await?
        .iter()
        .map(|s| &s.subscription)
        .filter(|s| {
            matches!(
                s.status,
                SubscriptionStatus::Active
                    | SubscriptionStatus::Trialing
                    | SubscriptionStatus::PastDue
            )
        })
        .flat_map(|s| s.modules())
        .filter(|m| request.modules.contains(m))
        .collect();
    if !held.is_empty() {
        let names: Vec<&str> = held.iter().map(|m| m.as_str()).collect();
        return Err(ApiError::conflict(
            "already_subscribed",
            format!("The organization already has: {}.", names.join(", ")),
        ));
    }
    let keys: Vec<&str> = request
        .modules
        .iter()
        .filter_map(|m| catalog.price(*m, request.interval).map(|p| p.lookup_key))
        .collect();
    let prices = syncer.stripe.prices_by_lookup_keys(&keys).await?;
    let mut price_ids = Vec::with_capacity(keys.len());
    for key in &keys {
        let price = prices
            .iter()
            .find(|p| p.lookup_key.as_deref() == Some(key))
            .ok_or_else(|| {
                tracing::error!(lookup_key = key, "no active Stripe price: run catalog-sync");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "catalog_unavailable",
                    "Prices are not available right now.",
                )
            })?;
        price_ids.push(price.id.clone());
    }
    let customer = ensure_customer(syncer, org).await?;
    let form = checkout::checkout_form(org, customer.as_str(), &request, &price_ids);
    let payload = serde_json::to_string(&form).unwrap_or_default();
    let key = idempotency_key("checkout", org, &payload, 600);
    let session: StripeCheckoutSession = syncer
        .stripe
        .post("/checkout/sessions", &form, Some(&key))
        .await?;
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
    let return_url = checkout::parse_portal(body, &config.origins)?;
    let profile = syncer.store.billing_profile(org).await?.ok_or_else(|| {
        ApiError::conflict(
            "no_billing_account",
            "The organization has no billing account yet: subscribe first.",
        )
    })?;
    let mut form = crate::stripe::Form::new();
    form.insert("customer".into(), profile.customer_id.to_string());
    form.insert("return_url".into(), return_url);
    let session: StripeBillingPortalSession = syncer
        .stripe
        .post("/billing_portal/sessions", &form, None)
        .await?;
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
    if !syncer
        .store
        .take_rate_token(org, "sync", config.sync_per_minute, 60)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many sync requests; try again in a minute.",
        ));
    }
    if let Some(id) = params::session_id(session_id)? {
        let session = match syncer.stripe.checkout_session(id.as_str()).await {
            Ok(s) => s,
            Err(StripeApiError::NotFound) => return Err(not_found_session()),
            Err(e) => return Err(e.into()),
        };
        // Another org's session id must not be usable to probe or link anything.
        if session.client_reference_id.as_deref() != Some(org.as_str()) {
            return Err(not_found_session());
        }
        if session.customer.as_ref().map(Expandable::id).is_some() {
            syncer.complete_checkout(id.as_str(), None).await?;
        }
    }
    syncer.sync_org(org).await?;
    subscription(&syncer.store, org, syncer.policy).await
}

fn not_found_session() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such checkout session.",
    )
}
