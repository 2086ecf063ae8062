//! The paywall in front of API Gateway: verify the bearer JWT, find the route in
//! [`crate::routes::ROUTES`], check role and module, and answer with an IAM policy for exactly
//! the requested method ARN.
//!
//! Pure parts ([`decision`], the claim mapping in [`jwt`], the route table) carry the logic;
//! [`Authorizer`] only adds the token keys, one DynamoDB GetItem and the cache.
//!
//! Cost of one check: at most one strongly consistent GetItem of the org's `ENTITLEMENTS` item
//! when the org is not cached; none when it is and the cached set allows (TTL
//! `ENTITLEMENTS_CACHE_SECONDS`, default 30 s); none on public routes called without a valid
//! token. Only allows are served from the cache: a paywall refusal (and a catalog that would
//! show a module locked) re-reads the item first, so a payment stored a moment ago opens every
//! route at once. A flood of requests to a locked route therefore costs one consistent read
//! each (half a cent per thousand at on-demand prices), bounded by the stage's throttling. The read is strongly consistent because the webhook answers Stripe
//! 200 only after its write, and a check made right after that (the user returning from
//! Checkout) must see the new rights; an eventually consistent read could still return the
//! previous item for a short while. It costs one read unit instead of half of one.

pub mod cache;
pub mod context;
pub mod decision;
pub mod jwks;
pub mod jwt;
pub mod token;

use std::time::{Duration, Instant};

pub use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
pub use cache::EntitlementsCache;
pub use context::AuthContext;
pub use decision::{
    AUTHORIZER_FAILURE_BODY, AuthorizerResponse, Decision, Denial, UNAUTHORIZED_BODY,
    subscription_required_body,
};
pub use jwt::{ClaimNames, JwtAlgorithm, JwtSettings, KeyMaterial, TokenError, TokenVerifier};

use crate::config::{self, ConfigError};
use crate::domain::{EntitlementSet, OrgId, ServiceModule, Timestamp, UserId};
use crate::routes::{self, Access, Role};
use crate::store::{BillingStore, StoreError};

/// Who is calling, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub org: OrgId,
    pub user: UserId,
    pub role: Role,
    /// What the token says of the organization, for its Stripe customer (never invented).
    pub details: BuyerDetails,
}

/// The organization's name and a billing email, when the token carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuyerDetails {
    pub org_name: Option<String>,
    pub email: Option<String>,
}

impl BuyerDetails {
    /// Longest name or email kept (Stripe's customer fields allow more; a longer claim is
    /// not a name or an address).
    pub const MAX_LEN: usize = 200;

    /// From claim values: trimmed, non-empty, at most [`Self::MAX_LEN`] characters without
    /// control characters; an email must look like one (`x@y`, no spaces).
    pub fn from_claims(org_name: Option<&str>, email: Option<&str>) -> Self {
        let clean = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty() && v.chars().count() <= Self::MAX_LEN)
                .filter(|v| !v.chars().any(char::is_control))
                .map(str::to_owned)
        };
        // Stripe refuses a customer email it cannot read as one: one `@`, a local part, and a
        // domain of non-empty labels with a dot.
        let email = clean(email).filter(|e| {
            !e.contains(char::is_whitespace)
                && e.matches('@').count() == 1
                && e.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty()
                        && domain.contains('.')
                        && domain.split('.').all(|label| !label.is_empty())
                })
        });
        Self {
            org_name: clean(org_name),
            email,
        }
    }
}

/// Why the authorizer produced no policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No valid token on a route that needs one. The Lambda must fail with exactly the message
    /// `Unauthorized`: that is how API Gateway is told to answer 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// The authorizer could not decide (DynamoDB or the JWKS unreachable, a malformed event).
    /// It fails closed: the Lambda errors and API Gateway answers 500, never Allow.
    #[error("authorizer failure: {0}")]
    Failed(String),
}

pub const DEFAULT_CACHE_SECONDS: u64 = 30;
/// The cache TTL is part of the worst-case delay between a cancellation and the loss of access;
/// more than a few minutes would make that delay meaningless.
pub const MAX_CACHE_SECONDS: u64 = 300;

/// The authorizer's configuration.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub jwt: JwtSettings,
    pub cache_ttl: Duration,
    pub cache_max_orgs: usize,
}

impl AuthConfig {
    /// Values given directly (tests, the local stack), with the default cache.
    pub fn new(jwt: JwtSettings) -> Self {
        Self {
            jwt,
            cache_ttl: Duration::from_secs(DEFAULT_CACHE_SECONDS),
            cache_max_orgs: cache::DEFAULT_MAX_ORGS,
        }
    }

    /// From the Lambda environment: the `JWT_*` variables (see [`JwtSettings::from_env`]) and
    /// `ENTITLEMENTS_CACHE_SECONDS` (default 30, 0 disables the cache, at most 300).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let jwt = JwtSettings::from_env(aws).await?;
        let seconds = config::parse_or("ENTITLEMENTS_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)?;
        if seconds > MAX_CACHE_SECONDS {
            return Err(ConfigError::Invalid(
                "ENTITLEMENTS_CACHE_SECONDS",
                format!("at most {MAX_CACHE_SECONDS}"),
            ));
        }
        Ok(Self {
            cache_ttl: Duration::from_secs(seconds),
            ..Self::new(jwt)
        })
    }
}

/// The authorizer: token verification, the entitlements read and its cache. Build once per
/// container; every field is safe to share between concurrent checks.
pub struct Authorizer {
    verifier: TokenVerifier,
    store: BillingStore,
    cache: EntitlementsCache,
}

impl Authorizer {
    pub fn new(config: AuthConfig, store: BillingStore) -> Result<Self, ConfigError> {
        Ok(Self {
            verifier: TokenVerifier::new(config.jwt)?,
            store,
            cache: EntitlementsCache::new(config.cache_ttl, config.cache_max_orgs),
        })
    }

    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    pub fn cache(&self) -> &EntitlementsCache {
        &self.cache
    }

    /// The REQUEST authorizer entry point: the decision rendered as API Gateway expects it.
    pub async fn authorize(
        &self,
        event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Result<AuthorizerResponse, AuthError> {
        // Checked first: without the ARN no policy can be written, so no work is worth doing.
        let method_arn = event
            .method_arn
            .as_deref()
            .filter(|arn| !arn.is_empty())
            .ok_or_else(|| AuthError::Failed("event has no methodArn".to_owned()))?;
        let method = event
            .http_method
            .as_ref()
            .or(event.request_context.http_method.as_ref())
            .map(|m| m.as_str())
            .unwrap_or("");
        let resource = event
            .resource
            .as_deref()
            .or(event.request_context.resource_path.as_deref())
            .unwrap_or("");
        let authorization = event
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let decision = self.decide(method, resource, authorization).await;
        crate::metrics::authorizer(match &decision {
            Ok(Decision::Allow { .. }) => "allow",
            Ok(Decision::Deny { .. }) => "deny",
            Err(AuthError::Unauthorized) => "unauthorized",
            Err(AuthError::Failed(_)) => "error",
        });
        Ok(decision::response(method_arn, &decision?))
    }

    /// The decision for a method, an API Gateway resource template and an `Authorization`
    /// header value. The local gateway calls this directly and renders the same bodies.
    pub async fn decide(
        &self,
        method: &str,
        resource: &str,
        authorization: Option<&str>,
    ) -> Result<Decision, AuthError> {
        let Some(route) = routes::find(method, resource) else {
            tracing::warn!(method, resource, outcome = "deny", reason = "unknown route");
            return Ok(Decision::Deny {
                caller: None,
                denial: Denial::UnknownRoute,
            });
        };
        let token = authorization.and_then(jwt::bearer);
        if route.is_public() {
            // A public route stays open with a missing, stale or unverifiable token. A valid
            // one adds the caller and the org's unlocked modules (the catalog's `unlocked`
            // flags), from the same cached read as a paid route; anonymous calls read nothing.
            // A failed read leaves the route open, without the modules: nothing is granted here.
            let caller = match token {
                Some(token) => self.verifier.verify(token).await.ok(),
                None => None,
            };
            let entitlements = match &caller {
                Some(caller) => match self.catalog_entitlements(&caller.org).await {
                    Ok(set) => Some(set.unlocked_at(Timestamp::now())),
                    Err(e) => {
                        tracing::warn!(route = route.path, org = %caller.org, error = %e, "entitlements unavailable on a public route");
                        None
                    }
                },
                None => None,
            };
            return Ok(Decision::Allow {
                caller,
                entitlements,
            });
        }
        let Some(token) = token else {
            tracing::info!(
                route = route.path,
                outcome = "unauthorized",
                reason = "no bearer token"
            );
            return Err(AuthError::Unauthorized);
        };
        let caller = match self.verifier.verify(token).await {
            Ok(caller) => caller,
            Err(e) if e.is_unavailable() => {
                tracing::error!(route = route.path, error = %e, "cannot verify tokens");
                return Err(AuthError::Failed(e.to_string()));
            }
            Err(e) => {
                // The reason is a fixed phrase ("expired", "bad signature"), never token content.
                tracing::info!(route = route.path, outcome = "unauthorized", reason = %e);
                return Err(AuthError::Unauthorized);
            }
        };
        if let Err(denial) = decision::check_role(route, &caller) {
            tracing::info!(route = route.path, org = %caller.org, outcome = "deny", reason = denial.code());
            return Ok(Decision::Deny {
                caller: Some(caller),
                denial,
            });
        }
        let failed = |e: StoreError| {
            tracing::error!(route = route.path, org = %caller.org, error = %e, "entitlements read failed; refusing");
            AuthError::Failed(e.to_string())
        };
        let (entitlements, cached) = self.lookup(&caller.org).await.map_err(failed)?;
        let mut verdict = decision::evaluate(route, &caller, &entitlements, Timestamp::now());
        if cached && matches!(verdict, Err(Denial::Module(_))) {
            // A refusal is never served from the cache: a payment stored since the entry was
            // read (by the webhook or the eager sync) must open the route at once.
            let fresh = self.read_through(&caller.org).await.map_err(failed)?;
            verdict = decision::evaluate(route, &caller, &fresh, Timestamp::now());
        }
        let decision = match verdict {
            Ok(unlocked) => Decision::Allow {
                caller: Some(caller),
                entitlements: Some(unlocked),
            },
            Err(denial) => Decision::Deny {
                caller: Some(caller),
                denial,
            },
        };
        if let Some(caller) = decision.caller() {
            let module = match route.access {
                Access::Authenticated { module, .. } => module.as_str(),
                Access::Public => "",
            };
            tracing::info!(
                route = route.path,
                org = %caller.org,
                module,
                outcome = if decision.is_allow() { "allow" } else { "deny" }
            );
        }
        Ok(decision)
    }

    /// The org's grant set: from the cache, or one strongly consistent GetItem (see the module
    /// docs for why consistent). An org without an item has only BasicCRM.
    pub async fn entitlements(&self, org: &OrgId) -> Result<EntitlementSet, StoreError> {
        Ok(self.lookup(org).await?.0)
    }

    /// The grant set for the catalog's `unlocked` flags: a cached set that leaves any paid
    /// module locked is read again, so the catalog never reports "locked" from the cache
    /// (the same rule as a paywall refusal).
    async fn catalog_entitlements(&self, org: &OrgId) -> Result<EntitlementSet, StoreError> {
        let (set, cached) = self.lookup(org).await?;
        let now = Timestamp::now();
        let all_unlocked = ServiceModule::ALL.iter().all(|m| set.unlocks(*m, now));
        if cached && !all_unlocked {
            return self.read_through(org).await;
        }
        Ok(set)
    }

    /// The org's grant set and whether it came from the cache.
    async fn lookup(&self, org: &OrgId) -> Result<(EntitlementSet, bool), StoreError> {
        let cached = self.cache.get(org, Instant::now());
        crate::metrics::authorizer_cache(cached.is_some());
        match cached {
            Some(set) => Ok((set, true)),
            None => Ok((self.read_through(org).await?, false)),
        }
    }

    /// One strongly consistent GetItem, kept in the cache.
    async fn read_through(&self, org: &OrgId) -> Result<EntitlementSet, StoreError> {
        let sent = Instant::now();
        let set = self
            .store
            .entitlements(org, true)
            .await?
            .map(|stored| stored.set)
            .unwrap_or_default();
        self.cache.insert(org.clone(), set.clone(), sent);
        Ok(set)
    }
}
