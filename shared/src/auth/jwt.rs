//! Verifying the bearer JWT issued by the portal API.
//!
//! The algorithm is pinned by configuration, never taken from the token: a token whose header
//! names any other algorithm (`none`, HS256 when RS256 is configured, ...) is refused before any
//! key is touched. That closes both the `alg: none` hole and the HS/RS confusion, where a token
//! HMAC-signed with the (public) RSA key would otherwise verify.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

use super::Caller;
use super::jwks::JwksKeys;
pub use super::token::{JwtAlgorithm, TokenError};
use crate::config::{self, ConfigError, Secret};
use crate::domain::{OrgId, UserId};
use crate::routes::Role;

/// Tokens are a few hundred bytes; anything far larger is not from the portal and is refused
/// before base64 or JSON work is spent on it.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;
/// Clock skew beyond a few minutes is a broken clock, not skew.
pub const MAX_LEEWAY_SECONDS: u64 = 300;
/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Where the verification key comes from.
#[derive(Clone)]
pub enum KeyMaterial {
    /// HS256 shared secret.
    Secret(String),
    /// One RS256/ES256 public key, PEM (`BEGIN PUBLIC KEY`, or `BEGIN RSA PUBLIC KEY`).
    PublicKeyPem(String),
    /// RS256/ES256 keys from a JWKS document, selected by the token's `kid`.
    JwksUrl(String),
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The secret must never reach a log line, even through `{:?}` of a config struct.
            KeyMaterial::Secret(_) => f.write_str("Secret([redacted])"),
            KeyMaterial::PublicKeyPem(_) => f.write_str("PublicKeyPem(..)"),
            KeyMaterial::JwksUrl(url) => f.debug_tuple("JwksUrl").field(url).finish(),
        }
    }
}

/// The names of the claims that carry the caller, as the portal API issues them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub org: String,
    pub user: String,
    pub role: String,
    pub org_name: String,
    pub email: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            org: "org_id".to_owned(),
            user: "sub".to_owned(),
            role: "role".to_owned(),
            org_name: "org_name".to_owned(),
            email: "email".to_owned(),
        }
    }
}

/// Everything needed to verify tokens.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub algorithm: JwtAlgorithm,
    pub key: KeyMaterial,
    pub leeway_seconds: u64,
    pub claims: ClaimNames,
}

impl JwtSettings {
    /// Settings with the default leeway and claim names (tests, the local stack).
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        algorithm: JwtAlgorithm,
        key: KeyMaterial,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithm,
            key,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
            claims: ClaimNames::default(),
        }
    }

    /// From the Lambda environment: `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_ALGORITHM`; the HS256
    /// secret from `JWT_SECRET` (local) or the SSM parameter named by `JWT_SECRET_PARAMETER`;
    /// RS256/ES256 keys from `JWT_JWKS_URL` or `JWT_PUBLIC_KEY_PEM`; `JWT_LEEWAY_SECONDS`;
    /// `JWT_ORG_CLAIM`, `JWT_USER_CLAIM`, `JWT_ROLE_CLAIM`, `JWT_ORG_NAME_CLAIM`,
    /// `JWT_EMAIL_CLAIM`.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let issuer = config::required("JWT_ISSUER")?;
        let audience = config::required("JWT_AUDIENCE")?;
        let algorithm =
            JwtAlgorithm::parse(&config::required("JWT_ALGORITHM")?).ok_or_else(|| {
                ConfigError::Invalid("JWT_ALGORITHM", "expected HS256, RS256 or ES256".to_owned())
            })?;
        let key = match algorithm {
            JwtAlgorithm::Hs256 => {
                let secrets = config::load_secrets(aws, &[Secret::JWT_SECRET]).await?;
                KeyMaterial::Secret(secrets.get(Secret::JWT_SECRET)?.to_owned())
            }
            JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => {
                match (
                    config::optional("JWT_JWKS_URL"),
                    config::optional("JWT_PUBLIC_KEY_PEM"),
                ) {
                    (Some(url), None) => KeyMaterial::JwksUrl(url.trim().to_owned()),
                    (None, Some(pem)) => KeyMaterial::PublicKeyPem(pem),
                    (Some(_), Some(_)) => {
                        return Err(ConfigError::Invalid(
                            "JWT_JWKS_URL",
                            "set JWT_JWKS_URL or JWT_PUBLIC_KEY_PEM, not both".to_owned(),
                        ));
                    }
                    (None, None) => return Err(ConfigError::Missing("JWT_JWKS_URL")),
                }
            }
        };
        let leeway_seconds = config::parse_or("JWT_LEEWAY_SECONDS", DEFAULT_LEEWAY_SECONDS)?;
        let defaults = ClaimNames::default();
        Ok(Self {
            issuer,
            audience,
            algorithm,
            key,
            leeway_seconds,
            claims: ClaimNames {
                org: config::optional("JWT_ORG_CLAIM").unwrap_or(defaults.org),
                user: config::optional("JWT_USER_CLAIM").unwrap_or(defaults.user),
                role: config::optional("JWT_ROLE_CLAIM").unwrap_or(defaults.role),
                org_name: config::optional("JWT_ORG_NAME_CLAIM").unwrap_or(defaults.org_name),
                email: config::optional("JWT_EMAIL_CLAIM").unwrap_or(defaults.email),
            },
        })
    }
}

fn describe(kind: &ErrorKind) -> String {
    // Only the kind, never the token or the key: these strings end up in logs.
    match kind {
        ErrorKind::ExpiredSignature => "expired".to_owned(),
        ErrorKind::ImmatureSignature => "not yet valid".to_owned(),
        ErrorKind::InvalidSignature => "bad signature".to_owned(),
        ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience".to_owned(),
        ErrorKind::InvalidAlgorithm => "wrong algorithm".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing {claim}"),
        ErrorKind::InvalidClaimFormat(claim) => format!("malformed {claim}"),
        _ => "invalid".to_owned(),
    }
}

enum Keys {
    Static(Arc<DecodingKey>),
    Jwks(Box<JwksKeys>),
}

/// Verifies tokens and turns their claims into a [`Caller`]. Build once per container.
pub struct TokenVerifier {
    algorithm: JwtAlgorithm,
    validation: Validation,
    keys: Keys,
    claims: ClaimNames,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithm", &self.algorithm)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    pub fn new(settings: JwtSettings) -> Result<Self, ConfigError> {
        if settings.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(ConfigError::Invalid(
                "JWT_LEEWAY_SECONDS",
                format!("at most {MAX_LEEWAY_SECONDS}"),
            ));
        }
        let keys = match (settings.algorithm, settings.key) {
            (JwtAlgorithm::Hs256, KeyMaterial::Secret(secret)) => {
                if secret.len() < MIN_HS256_SECRET_BYTES {
                    return Err(ConfigError::Invalid(
                        "JWT_SECRET",
                        format!("must be at least {MIN_HS256_SECRET_BYTES} bytes"),
                    ));
                }
                Keys::Static(Arc::new(DecodingKey::from_secret(secret.as_bytes())))
            }
            (alg @ (JwtAlgorithm::Rs256 | JwtAlgorithm::Es256), KeyMaterial::PublicKeyPem(pem)) => {
                let invalid = || {
                    ConfigError::Invalid("JWT_PUBLIC_KEY_PEM", "not a PEM public key".to_owned())
                };
                let (label, der) = pem_to_der(&pem).ok_or_else(invalid)?;
                let key = match (alg, label.as_str()) {
                    (JwtAlgorithm::Rs256, "PUBLIC KEY" | "RSA PUBLIC KEY") => {
                        DecodingKey::from_rsa_der(&der)
                    }
                    (JwtAlgorithm::Es256, "PUBLIC KEY") => DecodingKey::from_ec_der(&der),
                    _ => return Err(invalid()),
                };
                Keys::Static(Arc::new(key))
            }
            (alg @ (JwtAlgorithm::Rs256 | JwtAlgorithm::Es256), KeyMaterial::JwksUrl(url)) => {
                Keys::Jwks(Box::new(JwksKeys::new(&url, alg)?))
            }
            (alg, key) => {
                return Err(ConfigError::Invalid(
                    "JWT_ALGORITHM",
                    format!("{} cannot be used with {key:?}", alg.as_str()),
                ));
            }
        };
        let mut validation = Validation::new(settings.algorithm.jwt());
        validation.leeway = settings.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[settings.issuer]);
        validation.set_audience(&[settings.audience]);
        // Without these, a token lacking `iss` or `aud` would skip those checks entirely.
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Ok(Self {
            algorithm: settings.algorithm,
            validation,
            keys,
            claims: settings.claims,
        })
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// How many times the JWKS document was fetched (0 for a static key).
    pub fn jwks_fetches(&self) -> u64 {
        match &self.keys {
            Keys::Static(_) => 0,
            Keys::Jwks(jwks) => jwks.fetches(),
        }
    }

    /// Verifies signature, algorithm, issuer, audience, `exp` (required) and `nbf` (with the
    /// leeway), then reads the caller from the configured claims.
    pub async fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        // Parsing the header fails for algorithms the library does not know, `none` included.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != self.algorithm.jwt() {
            return Err(TokenError::WrongAlgorithm);
        }
        let key = match &self.keys {
            Keys::Static(key) => key.clone(),
            Keys::Jwks(jwks) => jwks.key(header.kid.as_deref()).await?,
        };
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &self.validation)
            .map_err(|e| TokenError::Invalid(describe(e.kind())))?;
        caller_from_claims(&data.claims, &self.claims)
    }
}

fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        // Some issuers emit numeric ids.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The caller named by verified claims. A missing or invalid org or user claim means the token
/// does not authenticate anyone we can serve. A missing or unknown role is the least privileged
/// one, `Member`: roles only ever widen access, so guessing low is the safe side.
pub fn caller_from_claims(
    claims: &Map<String, Value>,
    names: &ClaimNames,
) -> Result<Caller, TokenError> {
    let org = claim_text(claims, &names.org)
        .and_then(|v| OrgId::parse(v).ok())
        .ok_or(TokenError::MissingClaim("organization"))?;
    let user = claim_text(claims, &names.user)
        .and_then(|v| UserId::parse(v).ok())
        .ok_or(TokenError::MissingClaim("user"))?;
    let role = match claims.get(&names.role) {
        Some(Value::String(s)) => Role::parse(s),
        // A list of roles: the highest one recognised.
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .filter_map(Role::parse)
            .max(),
        _ => None,
    }
    .unwrap_or(Role::Member);
    let text = |name: &str| match claims.get(name) {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let details = super::BuyerDetails::from_claims(text(&names.org_name), text(&names.email));
    Ok(Caller {
        org,
        user,
        role,
        details,
    })
}

/// The label and DER bytes of the first PEM block in `text`. Accepts `\n` written literally
/// (the form a PEM takes in a one-line environment variable).
pub fn pem_to_der(text: &str) -> Option<(String, Vec<u8>)> {
    let text = text.replace("\\n", "\n");
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body_and_end = &rest[label_end + 5..];
    let end = body_and_end.find(&format!("-----END {label}-----"))?;
    let body: String = body_and_end[..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = STANDARD.decode(body.as_bytes()).ok()?;
    Some((label, der))
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn bearer_needs_the_scheme_and_a_token() {
        assert_eq!(bearer("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer("bearer   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc.def.ghi"), None);
    }

    #[test]
    fn claims_map_to_a_caller() {
        let names = ClaimNames::default();
        let caller = caller_from_claims(
            &map(json!({"org_id":"org_1","sub":"u_1","role":"Admin"})),
            &names,
        )
        .unwrap();
        assert_eq!(caller.org.as_str(), "org_1");
        assert_eq!(caller.user.as_str(), "u_1");
        assert_eq!(caller.role, Role::Admin);
        let listed = caller_from_claims(
            &map(json!({"org_id":42,"sub":"u","role":["member","Owner","bogus"]})),
            &names,
        )
        .unwrap();
        assert_eq!((listed.org.as_str(), listed.role), ("42", Role::Owner));
        let unknown =
            caller_from_claims(&map(json!({"org_id":"o","sub":"u","role":"Root"})), &names)
                .unwrap();
        assert_eq!(unknown.role, Role::Member);
    }

    #[test]
    fn missing_or_forged_org_is_refused() {
        let names = ClaimNames::default();
        for claims in [
            json!({"sub":"u"}),
            json!({"org_id":"","sub":"u"}),
            json!({"org_id":"ORG#other","sub":"u"}),
            json!({"org_id":{"id":"o"},"sub":"u"}),
        ] {
            assert_eq!(
                caller_from_claims(&map(claims.clone()), &names),
                Err(TokenError::MissingClaim("organization")),
                "{claims}"
            );
        }
        assert_eq!(
            caller_from_claims(&map(json!({"org_id":"o"})), &names),
            Err(TokenError::MissingClaim("user"))
        );
    }

    #[test]
    fn custom_claim_names_are_used() {
        let names = ClaimNames {
            org: "https://crm.example/org".into(),
            user: "uid".into(),
            role: "crm_role".into(),
            org_name: "company".into(),
            email: "billing_email".into(),
        };
        let caller = caller_from_claims(
            &map(
                json!({"https://crm.example/org":"o","uid":"u","crm_role":"Owner","org_id":"x",
                "company":"  Acme GmbH ","billing_email":"ap@acme.test","email":"me@x.test"}),
            ),
            &names,
        )
        .unwrap();
        assert_eq!(caller.details.org_name.as_deref(), Some("Acme GmbH"));
        assert_eq!(caller.details.email.as_deref(), Some("ap@acme.test"));
        // Absent or unusable claims give nothing, never a guess.
        let bare = caller_from_claims(
            &map(json!({"https://crm.example/org":"o","uid":"u","billing_email":"not mail"})),
            &names,
        )
        .unwrap();
        assert_eq!(bare.details, crate::auth::BuyerDetails::default());
        for not_an_email in [
            "a@b.c@d",
            "a@.com",
            "@acme.test",
            "ap@acme",
            "ap@acme..test",
        ] {
            assert_eq!(
                crate::auth::BuyerDetails::from_claims(None, Some(not_an_email)).email,
                None,
                "{not_an_email}"
            );
        }
        assert_eq!((caller.org.as_str(), caller.role), ("o", Role::Owner));
    }

    #[test]
    fn pem_blocks_decode_with_real_or_escaped_newlines() {
        let pem = "-----BEGIN PUBLIC KEY-----\nAAEC\nAw==\n-----END PUBLIC KEY-----\n";
        assert_eq!(
            pem_to_der(pem),
            Some(("PUBLIC KEY".to_owned(), vec![0, 1, 2, 3]))
        );
        assert_eq!(
            pem_to_der(&pem.replace('\n', "\\n")),
            Some(("PUBLIC KEY".to_owned(), vec![0, 1, 2, 3]))
        );
        assert_eq!(pem_to_der("no pem here"), None);
        assert_eq!(pem_to_der("-----BEGIN X-----\nAA\n-----END Y-----"), None);
    }

    #[test]
    fn configuration_mismatches_are_refused() {
        let s = |alg, key| JwtSettings::new("iss", "aud", alg, key);
        assert!(
            TokenVerifier::new(s(JwtAlgorithm::Hs256, KeyMaterial::Secret("short".into())))
                .is_err()
        );
        assert!(
            TokenVerifier::new(s(JwtAlgorithm::Rs256, KeyMaterial::Secret("x".repeat(40))))
                .is_err()
        );
        assert!(
            TokenVerifier::new(s(
                JwtAlgorithm::Hs256,
                KeyMaterial::JwksUrl("https://x/jwks".into())
            ))
            .is_err()
        );
        assert!(
            TokenVerifier::new(s(
                JwtAlgorithm::Rs256,
                KeyMaterial::PublicKeyPem("junk".into())
            ))
            .is_err()
        );
        let mut long_leeway = s(JwtAlgorithm::Hs256, KeyMaterial::Secret("x".repeat(40)));
        long_leeway.leeway_seconds = 3_600;
        assert!(TokenVerifier::new(long_leeway).is_err());
        assert!(
            TokenVerifier::new(s(JwtAlgorithm::Hs256, KeyMaterial::Secret("x".repeat(40)))).is_ok()
        );
        let debug = format!("{:?}", KeyMaterial::Secret("super-secret-value".into()));
        assert!(!debug.contains("super-secret-value"));
    }
}
