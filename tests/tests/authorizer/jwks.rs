use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use billing::auth::{JwtAlgorithm, KeyMaterial};
use jsonwebtoken::{Algorithm, EncodingKey};
use lambda_http::{Body, Response};
use pss_billing_tests::auth::{authorizer_event, claims, es256, jwt_fixture, rs256, sign};
use pss_billing_tests::build::org;
use pss_billing_tests::fresh_store;

use super::{Outcome, check, check_token, keyed_authorizer, rs256_second_key};

// ---- JWKS ---------------------------------------------------------------------------------------

async fn serve_jwks(body: String) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let base = pss_billing_tests::server::serve(move |_request| {
        counter.fetch_add(1, Ordering::SeqCst);
        let body = body.clone();
        async move {
            let mut response = Response::new(Body::Text(body));
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            response
        }
    })
    .await;
    (format!("{base}/.well-known/jwks.json"), hits)
}

#[tokio::test]
async fn rs256_and_es256_keys_come_from_the_jwks_fetched_once() {
    let store = fresh_store().await;
    let (url, hits) = serve_jwks(jwt_fixture("test-only-jwks.json")).await;
    let rs = keyed_authorizer(
        JwtAlgorithm::Rs256,
        KeyMaterial::JwksUrl(url.clone()),
        store.clone(),
    );
    let org = org("jwks");
    let good = claims(&org, "Member");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "fetched lazily, on the first token"
    );
    for _ in 0..5 {
        assert!(matches!(
            check_token(&rs, &rs256(Some("test-rsa-1"), &good)).await,
            Outcome::Allow(_)
        ));
    }
    // The second key of the set verifies too, selected by kid.
    assert!(matches!(
        check_token(&rs, &rs256_second_key(Some("test-rsa-2"), &good)).await,
        Outcome::Allow(_)
    ));
    for (case, token) in [
        (
            "kid naming the other key",
            rs256_second_key(Some("test-rsa-1"), &good),
        ),
        ("unknown kid", rs256(Some("rotated-away"), &good)),
        ("no kid with several keys", rs256(None, &good)),
        ("EC key's kid", es256(Some("test-ec-1"), &good)),
        (
            "HS256 keyed with the JWK modulus",
            sign(
                Algorithm::HS256,
                Some("test-rsa-1"),
                &EncodingKey::from_secret(b"zEihnngnPg5v9TzVq"),
                &good,
            ),
        ),
    ] {
        assert_eq!(
            check_token(&rs, &token).await,
            Outcome::Unauthorized,
            "{case}"
        );
    }
    // One fetch in all: an unknown kid right after a fetch does not fetch again.
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(rs.verifier().jwks_fetches(), 1);

    let es = keyed_authorizer(JwtAlgorithm::Es256, KeyMaterial::JwksUrl(url), store);
    assert!(matches!(
        check_token(&es, &es256(Some("test-ec-1"), &good)).await,
        Outcome::Allow(_)
    ));
    assert_eq!(
        check_token(&es, &rs256(Some("test-rsa-1"), &good)).await,
        Outcome::Unauthorized
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unreachable_jwks_fails_closed_not_unauthorized() {
    let store = fresh_store().await;
    let port = pss_billing_tests::free_port();
    let url = format!("http://127.0.0.1:{port}/jwks.json");
    let auth = keyed_authorizer(JwtAlgorithm::Rs256, KeyMaterial::JwksUrl(url), store);
    let token = rs256(Some("test-rsa-1"), &claims(&org("o"), "Member"));
    assert_eq!(check_token(&auth, &token).await, Outcome::Failed);
    // A public route stays open even so.
    let public = authorizer_event("GET", "/api/billing/services", Some(&token));
    assert!(matches!(check(&auth, &public).await, Outcome::Allow(_)));
}

#[tokio::test]
async fn a_key_the_issuer_removed_stops_verifying_once_the_sets_max_age_passes() {
    let store = fresh_store().await;
    let full: serde_json::Value =
        serde_json::from_str(&jwt_fixture("test-only-jwks.json")).unwrap();
    let body = Arc::new(std::sync::Mutex::new(full.to_string()));
    let served = body.clone();
    let base = pss_billing_tests::server::serve(move |_request| {
        let body = served.lock().unwrap().clone();
        async move {
            let mut response = Response::new(Body::Text(body));
            let headers = response.headers_mut();
            headers.insert("content-type", "application/json".parse().unwrap());
            headers.insert("cache-control", "public, max-age=1".parse().unwrap());
            response
        }
    })
    .await;
    let url = format!("{base}/.well-known/jwks.json");
    let rs = keyed_authorizer(JwtAlgorithm::Rs256, KeyMaterial::JwksUrl(url), store);
    let good = claims(&org("rotated"), "Member");
    let second = rs256_second_key(Some("test-rsa-2"), &good);
    assert!(matches!(check_token(&rs, &second).await, Outcome::Allow(_)));

    // The issuer withdraws its second key (compromised, say).
    let mut without = full.clone();
    without["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] != "test-rsa-2");
    *body.lock().unwrap() = without.to_string();
    // Within the set's max-age the warm container still has it; past it, the set is read
    // again and the withdrawn key no longer verifies. The other key still does.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(check_token(&rs, &second).await, Outcome::Unauthorized);
    assert!(matches!(
        check_token(&rs, &rs256(Some("test-rsa-1"), &good)).await,
        Outcome::Allow(_)
    ));
}
