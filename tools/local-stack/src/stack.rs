//! Wiring the local stack: table, catalog, webhook registration, gateway, dev tokens.

use std::sync::Arc;
use std::time::Duration;

use billing::api::{ApiConfig, OriginAllowlist};
use billing::auth::{AuthConfig, Authorizer, JwtAlgorithm, JwtSettings, KeyMaterial};
use billing::catalog_sync::sync_catalog;
use billing::domain::{Catalog, GracePolicy, Timestamp};
use billing::store::BillingStore;
use billing::store::table::create_table;
use billing::stripe::StripeApi;
use billing::sync::Syncer;
use billing::webhook::{DEFAULT_MAX_BODY_BYTES, WebhookConfig, WebhookHandler, WebhookSecret};
use serde::Serialize;

use crate::gateway::{Gateway, WEBHOOK_PATH};
use crate::http::{blocking, stripe_form};

pub const DEMO_ORG: &str = "org_demo";
/// A second organization, to show that one org never sees another's data.
pub const OTHER_ORG: &str = "org_other";
pub const JWT_ISSUER: &str = "pss-portal-local";
pub const JWT_AUDIENCE: &str = "pss-billing";
/// Obviously local-only values: the stack never talks to a real Stripe or AWS.
pub const JWT_SECRET: &str = "local-dev-jwt-secret-not-for-production-use";
pub const WEBHOOK_SECRET: &str = "whsec_test_local_stack";
pub const STRIPE_KEY: &str = "sk_test_local_stack";
/// The emulators' ports when `scripts/local-stack` starts them (unless PSS_*_PORT say
/// otherwise): fixed so that env.local.json (`sam local`, `scripts/watch`) can name them.
pub const DEFAULT_MOTO_PORT: u16 = 3001;
pub const DEFAULT_STRIPE_PORT: u16 = 3002;
pub const DEFAULT_LOCALSTRIPE_PORT: u16 = 3003;

pub struct StackConfig {
    pub port: u16,
    pub dynamodb_url: String,
    /// The Stripe the functions call (the fixture Stripe forwarding to localstripe).
    pub stripe_url: String,
    pub localstripe_url: String,
    pub table: String,
    /// The authorizer's entitlements cache; short locally so changes show at once.
    pub cache_seconds: u64,
    /// Origins of a frontend besides the defaults (the Vite dev server on 5173 and the API's
    /// own origin): CORS and checkout/portal redirect URLs accept them.
    pub frontend_origins: Vec<String>,
    /// What checkouts offer (trials, tax, promotion codes), as the functions' environment says.
    pub offer: billing::api::checkout::CheckoutOffer,
}

pub struct LocalStack {
    pub base_url: String,
    pub owner_token: String,
    pub member_token: String,
    pub gateway: Arc<Gateway>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    org_id: &'a str,
    role: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// A token as the portal API would issue it (HS256), valid for a day.
pub fn dev_token(org: &str, user: &str, role: &str) -> String {
    let now = Timestamp::now().unix();
    let claims = Claims {
        iss: JWT_ISSUER,
        aud: JWT_AUDIENCE,
        sub: user,
        org_id: org,
        role,
        iat: now,
        nbf: now,
        exp: now + 86_400,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

async fn localstripe(
    method: &'static str,
    url: String,
    form: Vec<(&'static str, String)>,
) -> (u16, String) {
    blocking(move || {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = stripe_form(method, &url, &pairs);
        (reply.status, reply.body)
    })
    .await
}

/// localstripe has no prices: the catalog becomes plans whose ids are the lookup keys.
async fn push_plans(localstripe_url: &str) -> Result<(), String> {
    for entry in Catalog::standard().paid_entries() {
        let (status, body) = localstripe(
            "POST",
            format!("{localstripe_url}/v1/products"),
            vec![
                ("name", entry.name.to_owned()),
                ("type", "service".to_owned()),
            ],
        )
        .await;
        if status >= 300 {
            return Err(format!("localstripe product: {status} {body}"));
        }
        let product: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let product_id = product["id"].as_str().unwrap_or_default().to_owned();
        for price in entry.prices.iter().flatten() {
            let (status, body) = localstripe(
                "POST",
                format!("{localstripe_url}/v1/plans"),
                vec![
                    ("id", price.lookup_key.to_owned()),
                    ("amount", price.unit_amount.to_string()),
                    ("currency", price.currency.as_str().to_owned()),
                    ("interval", price.interval.as_str().to_owned()),
                    ("product", product_id.clone()),
                ],
            )
            .await;
            if status >= 300 && !body.contains("already exists") {
                return Err(format!(
                    "localstripe plan {}: {status} {body}",
                    price.lookup_key
                ));
            }
        }
    }
    Ok(())
}

/// The Stripe side of a stack: the emulators' key, endpoint and webhook secret, or a Stripe
/// test-mode account's (see [`crate::stripe_mode`]).
pub struct StripeSetup {
    pub secret_key: String,
    /// `None` is Stripe itself.
    pub api_base: Option<String>,
    pub webhook_secrets: Vec<String>,
    /// Set when emulated: plans are pushed there and it delivers the webhooks. In test mode
    /// `stripe listen --forward-to` delivers them instead.
    pub localstripe_url: Option<String>,
    /// The Stripe account the key must belong to, as `STRIPE_ACCOUNT_ID` pins it in AWS: the
    /// fixture Stripe's account when emulated; in test mode `STRIPE_ACCOUNT_ID` if set.
    pub account_id: Option<String>,
}

/// The account the fixture Stripe holds its objects in (tests/emulators/fake_stripe.py).
pub const EMULATED_ACCOUNT_ID: &str = "acct_1LocalPssFixture";

impl StripeSetup {
    pub fn emulated(config: &StackConfig) -> StripeSetup {
        StripeSetup {
            secret_key: STRIPE_KEY.to_owned(),
            api_base: Some(config.stripe_url.clone()),
            webhook_secrets: vec![WEBHOOK_SECRET.to_owned()],
            localstripe_url: Some(config.localstripe_url.clone()),
            account_id: Some(EMULATED_ACCOUNT_ID.to_owned()),
        }
    }

    /// A Stripe account in test mode: its key and `stripe listen`'s secret, no localstripe.
    pub fn test_mode(keys: crate::stripe_mode::TestModeKeys) -> StripeSetup {
        StripeSetup {
            secret_key: keys.secret_key,
            api_base: keys.api_base,
            webhook_secrets: keys.webhook_secrets,
            localstripe_url: None,
            account_id: std::env::var("STRIPE_ACCOUNT_ID")
                .ok()
                .filter(|a| !a.is_empty()),
        }
    }
}

pub async fn start(config: StackConfig) -> Result<LocalStack, String> {
    let stripe = StripeSetup::emulated(&config);
    start_with(config, stripe).await
}

/// [`start`] with any Stripe: the emulators' or a test-mode account's.
pub async fn start_with(mut config: StackConfig, setup: StripeSetup) -> Result<LocalStack, String> {
    if config.port == 0 {
        // The allowed redirect origins name the port, so pick it before anything else.
        config.port = crate::emulators::free_port();
    }
    let dynamodb = pss_dynamo_client(&config.dynamodb_url);
    if let Err(e) = create_table(&dynamodb, &config.table).await {
        tracing::info!(error = %e, "table not created (it may exist already)");
    }
    let store = BillingStore::new(dynamodb, &config.table);
    let stripe =
        StripeApi::new(&setup.secret_key, setup.api_base.as_deref()).map_err(|e| e.to_string())?;
    let stripe = match &setup.account_id {
        Some(account) => stripe.pinned_to(account.as_str()),
        None => stripe,
    };
    if let Some(localstripe_url) = &setup.localstripe_url {
        push_plans(localstripe_url).await?;
    }
    // What `cargo run -p catalog-sync` does: idempotent, so a test-mode account keeps its
    // products and prices from one run to the next.
    let report = sync_catalog(&stripe, Catalog::standard().entries())
        .await
        .map_err(|e| format!("catalog: {e}"))?;
    tracing::info!(
        changes = report.changes.len(),
        unchanged = report.unchanged,
        "catalog synced"
    );

    let policy = GracePolicy::default();
    let syncer = Syncer::new(store.clone(), stripe, policy);
    let webhook = WebhookHandler::new(
        syncer.clone(),
        WebhookConfig {
            secrets: setup
                .webhook_secrets
                .iter()
                .map(|s| WebhookSecret::new(s.as_str()))
                .collect(),
            tolerance_seconds: billing::webhook::DEFAULT_TOLERANCE_SECONDS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            livemode: false,
        },
    );
    let mut auth = AuthConfig::new(JwtSettings::new(
        JWT_ISSUER,
        JWT_AUDIENCE,
        JwtAlgorithm::Hs256,
        KeyMaterial::Secret(JWT_SECRET.to_owned()),
    ));
    auth.cache_ttl = Duration::from_secs(config.cache_seconds);
    let authorizer = Authorizer::new(auth, store.clone()).map_err(|e| e.to_string())?;
    let mut origins = format!(
        "http://localhost:5173,http://127.0.0.1:5173,http://localhost:{p},http://127.0.0.1:{p}",
        p = config.port
    );
    for origin in &config.frontend_origins {
        origins.push(',');
        origins.push_str(origin);
    }
    let gateway = Arc::new(Gateway {
        authorizer,
        webhook,
        syncer,
        // The functions' redirect checks and their own CORS answers take these, as
        // FRONTEND_ORIGINS.
        api: ApiConfig {
            origins: OriginAllowlist::parse(&origins),
            sync_per_minute: 30,
            // As in AWS: `TRIAL_DAYS`, `CHECKOUT_AUTOMATIC_TAX`, `CHECKOUT_PROMOTION_CODES`.
            offer: config.offer,
        },
        policy,
    });
    let served = gateway.clone();
    let base_url = crate::server::serve_on(config.port, move |request| {
        let gateway = served.clone();
        async move { gateway.handle(request).await }
    })
    .await
    .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", config.port))?;

    if let Some(localstripe_url) = &setup.localstripe_url {
        let (status, body) = localstripe(
            "POST",
            format!("{localstripe_url}/_config/webhooks/pss-local"),
            vec![
                ("url", format!("{base_url}{WEBHOOK_PATH}")),
                ("secret", setup.webhook_secrets[0].clone()),
            ],
        )
        .await;
        if status >= 300 {
            return Err(format!("webhook registration: {status} {body}"));
        }
        // The local Checkout and portal pages (tests/emulators/local_hosted.py) send the events
        // localstripe never sends (checkout.session.completed, customer.subscription.updated).
        // In Stripe test mode Stripe's own hosted pages and `stripe listen` do that.
        let (status, body) = localstripe(
            "POST",
            format!("{}/_local/webhooks", config.stripe_url),
            vec![
                ("url", format!("{base_url}{WEBHOOK_PATH}")),
                ("secret", setup.webhook_secrets[0].clone()),
            ],
        )
        .await;
        if status >= 300 {
            return Err(format!(
                "local Checkout webhook registration: {status} {body}"
            ));
        }
    }
    Ok(LocalStack {
        base_url,
        owner_token: dev_token(DEMO_ORG, "user_owner", "Owner"),
        member_token: dev_token(DEMO_ORG, "user_member", "Member"),
        gateway,
    })
}

fn pss_dynamo_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "local-stack",
        ))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
