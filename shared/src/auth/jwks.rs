//! RS256/ES256 verification keys from a JWKS document, fetched once per container and kept.
//!
//! A token naming a `kid` the cached set lacks triggers one re-fetch (the issuer may have
//! rotated keys), but at most once per [`MIN_REFRESH_INTERVAL`]: a stream of tokens with
//! made-up `kid`s must not turn the authorizer into a load generator against the issuer.
//!
//! The set also has a maximum age: the response's `Cache-Control: max-age` (between
//! [`MIN_MAX_AGE`] and [`MAX_MAX_AGE`]), else [`DEFAULT_MAX_AGE`]. Past it the set is fetched
//! again before use, so a key the issuer removed stops verifying in warm containers too. A
//! failed refresh keeps the stale set (an issuer outage must not lock everybody out) and is
//! tried again at most every [`STALE_RETRY_INTERVAL`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use lambda_http::http::{Request, StatusCode, Uri};

use super::token::{JwtAlgorithm, TokenError};
use crate::config::ConfigError;

pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// How long a set is used when its response named no `max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
/// Bounds on the issuer's `max-age`: never refetched more than once a second, never kept a day.
pub const MIN_MAX_AGE: Duration = Duration::from_secs(1);
pub const MAX_MAX_AGE: Duration = Duration::from_secs(86_400);
/// While refreshes of an expired set fail, one is tried at most this often.
pub const STALE_RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// The issuer answering slowly must not eat the authorizer's whole timeout.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// A JWKS is a few KiB; anything huge is not one.
const MAX_JWKS_BYTES: usize = 256 * 1024;

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;
/// A usable key and the `kid` it was published under.
type KeyEntry = (Option<String>, Arc<DecodingKey>);

struct KeySet {
    keys: Vec<KeyEntry>,
    fetched_at: Instant,
    max_age: Duration,
}

/// The `max-age` of a `Cache-Control` value, bounded; `None` when it names none.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        let seconds: u64 = value.trim().trim_matches('"').parse().ok()?;
        Some(Duration::from_secs(seconds).clamp(MIN_MAX_AGE, MAX_MAX_AGE))
    })
}

impl KeySet {
    fn expired(&self) -> bool {
        self.fetched_at.elapsed() >= self.max_age
    }

    /// The key for `kid`; without a `kid`, only an unambiguous single key.
    fn find(&self, kid: Option<&str>) -> Option<Arc<DecodingKey>> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|(k, _)| k.as_deref() == Some(kid))
                .map(|(_, key)| key.clone()),
            None if self.keys.len() == 1 => self.keys.first().map(|(_, key)| key.clone()),
            None => None,
        }
    }
}

pub struct JwksKeys {
    url: Uri,
    algorithm: JwtAlgorithm,
    client: HttpClient,
    current: RwLock<Option<Arc<KeySet>>>,
    /// Single-flight: concurrent misses wait for one fetch instead of each starting one.
    refresh: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    /// When a refresh last failed (an expired set is then kept, and retried only after
    /// [`STALE_RETRY_INTERVAL`]).
    failed_at: std::sync::Mutex<Option<Instant>>,
}

impl JwksKeys {
    /// `https://` always; plain `http://` only to a loopback host (tests, the local stack),
    /// since keys fetched in clear text could be replaced on the way.
    pub fn new(url: &str, algorithm: JwtAlgorithm) -> Result<Self, ConfigError> {
        let invalid = |why: &str| ConfigError::Invalid("JWT_JWKS_URL", why.to_owned());
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let loopback = matches!(
            uri.host(),
            Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
        );
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            _ => return Err(invalid("must be https")),
        }
        Ok(Self {
            url: uri,
            algorithm,
            client: Client::builder(TokioExecutor::new()).build(crate::outbound::https_connector()),
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            failed_at: std::sync::Mutex::new(None),
        })
    }

    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        // A poisoned lock only means a panic elsewhere mid-write of an Option: the value is
        // still a whole Option, so keep using it.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `Some(result)` when the cached set answers (a key, or a definite "unknown" because it
    /// was fetched too recently to fetch again); `None` when a fetch is due.
    fn cached(&self, kid: Option<&str>) -> Option<Result<Arc<DecodingKey>, TokenError>> {
        let set = self.current()?;
        if set.expired() && !self.failed_recently() {
            return None;
        }
        match set.find(kid) {
            Some(key) => Some(Ok(key)),
            None if set.fetched_at.elapsed() < MIN_REFRESH_INTERVAL => {
                Some(Err(TokenError::UnknownKey))
            }
            None => None,
        }
    }

    pub async fn key(&self, kid: Option<&str>) -> Result<Arc<DecodingKey>, TokenError> {
        if let Some(answer) = self.cached(kid) {
            return answer;
        }
        let _flight = self.refresh.lock().await;
        if let Some(answer) = self.cached(kid) {
            return answer;
        }
        match self.fetch().await {
            Ok(set) => {
                let set = Arc::new(set);
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(set.clone());
                set.find(kid).ok_or(TokenError::UnknownKey)
            }
            Err(why) => {
                tracing::error!(url = %self.url, error = %why, "JWKS fetch failed");
                *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                match self.current() {
                    // The (possibly expired) set is kept while the issuer cannot be reached.
                    Some(set) => set.find(kid).ok_or(TokenError::UnknownKey),
                    None => Err(TokenError::KeysUnavailable(why)),
                }
            }
        }
    }

    fn failed_recently(&self) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < STALE_RETRY_INTERVAL)
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let request = Request::get(self.url.clone())
            .header("accept", "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let fetch = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            if response.status() != StatusCode::OK {
                return Err(format!("status {}", response.status()));
            }
            let age = response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .and_then(max_age);
            Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map(|b| (b.to_bytes(), age))
                .map_err(|e| e.to_string())
        };
        let fetched_at = Instant::now();
        let (body, age) = tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| "timed out".to_owned())??;
        let keys = parse_jwks(&body, self.algorithm)?;
        tracing::info!(url = %self.url, keys = keys.len(), "JWKS fetched");
        Ok(KeySet {
            keys,
            fetched_at,
            max_age: age.unwrap_or(DEFAULT_MAX_AGE),
        })
    }
}

/// The keys of a JWKS usable for `algorithm`. Keys of other types, other uses or other
/// algorithms, and entries this library cannot read, are skipped rather than failing the whole
/// set: issuers publish mixed sets.
fn parse_jwks(body: &[u8], algorithm: JwtAlgorithm) -> Result<Vec<KeyEntry>, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(body).map_err(|_| "not a JWKS document".to_owned())?;
    let wanted = match algorithm {
        JwtAlgorithm::Rs256 => KeyAlgorithm::RS256,
        JwtAlgorithm::Es256 => KeyAlgorithm::ES256,
        JwtAlgorithm::Hs256 => return Err("HS256 keys are never taken from a JWKS".to_owned()),
    };
    let keys = document
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter(|jwk| {
            let usable_use = jwk
                .common
                .public_key_use
                .as_ref()
                .is_none_or(|u| *u == PublicKeyUse::Signature);
            let usable_alg = jwk.common.key_algorithm.is_none_or(|a| a == wanted);
            let usable_type = match (&jwk.algorithm, algorithm) {
                (AlgorithmParameters::RSA(_), JwtAlgorithm::Rs256) => true,
                (AlgorithmParameters::EllipticCurve(ec), JwtAlgorithm::Es256) => {
                    ec.curve == EllipticCurve::P256
                }
                _ => false,
            };
            usable_use && usable_alg && usable_type
        })
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some((jwk.common.key_id.clone(), Arc::new(key)))
        })
        .collect();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &str = r#"{"kty":"RSA","kid":"r1","use":"sig","alg":"RS256","n":"sXch","e":"AQAB"}"#;
    const EC: &str = r#"{"kty":"EC","kid":"e1","crv":"P-256","x":"AAAA","y":"AAAA"}"#;
    const ENC: &str = r#"{"kty":"RSA","kid":"enc","use":"enc","n":"sXch","e":"AQAB"}"#;
    const OCT: &str = r#"{"kty":"oct","kid":"h1","k":"c2VjcmV0"}"#;
    const WEIRD: &str = r#"{"kty":"XYZ","kid":"w"}"#;

    fn kids(body: &str, alg: JwtAlgorithm) -> Vec<Option<String>> {
        parse_jwks(body.as_bytes(), alg)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn only_keys_for_the_pinned_algorithm_are_kept() {
        let body = format!(r#"{{"keys":[{RSA},{EC},{ENC},{OCT},{WEIRD}]}}"#);
        assert_eq!(
            kids(&body, JwtAlgorithm::Rs256),
            vec![Some("r1".to_owned())]
        );
        assert_eq!(
            kids(&body, JwtAlgorithm::Es256),
            vec![Some("e1".to_owned())]
        );
        assert!(parse_jwks(body.as_bytes(), JwtAlgorithm::Hs256).is_err());
        assert!(parse_jwks(b"[]", JwtAlgorithm::Rs256).is_err());
    }

    #[test]
    fn a_key_without_kid_is_only_used_when_it_is_the_only_one() {
        let key = Arc::new(DecodingKey::from_secret(b"k"));
        let one = KeySet {
            keys: vec![(Some("a".into()), key.clone())],
            fetched_at: Instant::now(),
            max_age: DEFAULT_MAX_AGE,
        };
        assert!(one.find(None).is_some());
        assert!(one.find(Some("a")).is_some());
        assert!(one.find(Some("b")).is_none());
        let two = KeySet {
            keys: vec![(Some("a".into()), key.clone()), (Some("b".into()), key)],
            fetched_at: Instant::now(),
            max_age: DEFAULT_MAX_AGE,
        };
        assert!(two.find(None).is_none());
    }

    #[test]
    fn max_age_is_read_from_cache_control_and_bounded() {
        assert_eq!(
            max_age("public, max-age=3600, must-revalidate"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(max_age("Max-Age=0"), Some(MIN_MAX_AGE));
        assert_eq!(max_age("max-age=9999999"), Some(MAX_MAX_AGE));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[test]
    fn jwks_url_must_be_https_unless_loopback() {
        assert!(
            JwksKeys::new(
                "https://issuer.example/.well-known/jwks.json",
                JwtAlgorithm::Rs256
            )
            .is_ok()
        );
        assert!(JwksKeys::new("http://127.0.0.1:9/jwks", JwtAlgorithm::Rs256).is_ok());
        assert!(JwksKeys::new("http://issuer.example/jwks", JwtAlgorithm::Rs256).is_err());
        assert!(JwksKeys::new("ftp://issuer.example/jwks", JwtAlgorithm::Rs256).is_err());
        assert!(JwksKeys::new("not a url", JwtAlgorithm::Rs256).is_err());
    }
}
