use std::time::Duration;

use billing::auth::{JwtAlgorithm, KeyMaterial};
use jsonwebtoken::{Algorithm, EncodingKey};
use pss_billing_tests::auth::{
    AUDIENCE, HS256_SECRET, ISSUER, authorizer, authorizer_event, claims, der, es256, hs256,
    hs256_settings, jwt_fixture, now, rs256, sign,
};
use pss_billing_tests::build::org;
use pss_billing_tests::fresh_store;
use serde_json::{Value, json};

use super::{
    Outcome, SUBSCRIPTION, b64, check, check_call, check_token, forged, hs_authorizer,
    keyed_authorizer, rs256_second_key,
};

// ---- token matrix -----------------------------------------------------------------------------

#[tokio::test]
async fn token_matrix_hs256() {
    let (auth, _store) = hs_authorizer().await;
    let org = org("org");
    let good = claims(&org, "Member");
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };

    let valid = hs256(&good);
    match check_token(&auth, &valid).await {
        Outcome::Allow(json) => {
            assert_eq!(json["principalId"], "user_1");
            assert_eq!(json["context"]["orgId"], org.as_str());
            assert_eq!(json["context"]["userId"], "user_1");
            assert_eq!(json["context"]["role"], "Member");
            assert_eq!(json["context"]["entitlements"], "BasicCRM");
        }
        other => panic!("valid token: {other:?}"),
    }

    // Inside the 30 s leeway both ways: accepted.
    let just_expired = hs256(&with(json!({"exp": now() - 10})));
    assert!(matches!(
        check_token(&auth, &just_expired).await,
        Outcome::Allow(_)
    ));
    let almost_valid = hs256(&with(json!({"nbf": now() + 10})));
    assert!(matches!(
        check_token(&auth, &almost_valid).await,
        Outcome::Allow(_)
    ));

    let other_secret = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(b"another-secret-of-sufficient-length-0000"),
        &good,
    );
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        parts[1] = b64(with(json!({"org_id": "org_victim"})).to_string().as_bytes());
        parts.join(".")
    };
    let alg_none = forged(&json!({"alg": "none", "typ": "JWT"}), &good, "");
    let alg_none_upper = forged(&json!({"alg": "None", "typ": "JWT"}), &good, "");
    let hs384 = sign(
        Algorithm::HS384,
        None,
        &EncodingKey::from_secret(HS256_SECRET.as_bytes()),
        &good,
    );
    let refused: Vec<(&str, String)> = vec![
        ("expired", hs256(&with(json!({"exp": now() - 120})))),
        ("not yet valid", hs256(&with(json!({"nbf": now() + 120})))),
        (
            "wrong issuer",
            hs256(&with(json!({"iss": "https://evil.example"}))),
        ),
        (
            "wrong audience",
            hs256(&with(json!({"aud": "another-api"}))),
        ),
        ("no issuer", hs256(&with(json!({"iss": null})))),
        ("no audience", hs256(&with(json!({"aud": null})))),
        ("no exp", hs256(&with(json!({"exp": null})))),
        ("exp not a number", hs256(&with(json!({"exp": "tomorrow"})))),
        ("no org claim", hs256(&with(json!({"org_id": null})))),
        ("empty org claim", hs256(&with(json!({"org_id": ""})))),
        (
            "org claim forging a key",
            hs256(&with(json!({"org_id": "ORG#x"}))),
        ),
        ("no user claim", hs256(&with(json!({"sub": null})))),
        ("bad signature", other_secret),
        ("tampered payload", tampered),
        ("alg none", alg_none),
        ("alg None", alg_none_upper),
        ("other HMAC algorithm", hs384),
        ("garbage", "not.a.token".to_owned()),
        ("two parts", "abc.def".to_owned()),
        ("oversized", "a".repeat(10_000)),
    ];
    for (case, token) in refused {
        assert_eq!(
            check_token(&auth, &token).await,
            Outcome::Unauthorized,
            "{case}"
        );
    }

    // No header, or not a bearer header: 401 as well.
    let no_token = authorizer_event(SUBSCRIPTION.0, SUBSCRIPTION.1, None);
    assert_eq!(check(&auth, &no_token).await, Outcome::Unauthorized);
    let mut basic = authorizer_event(SUBSCRIPTION.0, SUBSCRIPTION.1, None);
    basic
        .headers
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_eq!(check(&auth, &basic).await, Outcome::Unauthorized);
}

#[tokio::test]
async fn token_matrix_rs256_and_es256_with_a_pinned_public_key() {
    let store = fresh_store().await;
    let org = org("org");
    let good = claims(&org, "Owner");
    let rsa_pem = jwt_fixture("test-only-rsa-public.pem");
    let rs = keyed_authorizer(
        JwtAlgorithm::Rs256,
        KeyMaterial::PublicKeyPem(rsa_pem.clone()),
        store.clone(),
    );
    assert!(matches!(
        check_token(&rs, &rs256(None, &good)).await,
        Outcome::Allow(_)
    ));

    // HS/RS confusion: HMAC "signed" with the public key, which the attacker has.
    let with_pem = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(rsa_pem.as_bytes()),
        &good,
    );
    let with_der = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(&der("test-only-rsa-public.pem")),
        &good,
    );
    for (case, token) in [
        ("HS256 keyed with the RSA public PEM", with_pem),
        ("HS256 keyed with the RSA public DER", with_der),
        ("another RSA key", rs256_second_key(None, &good)),
        ("ES256 token", es256(None, &good)),
        ("alg none", forged(&json!({"alg": "none"}), &good, "")),
    ] {
        assert_eq!(
            check_token(&rs, &token).await,
            Outcome::Unauthorized,
            "{case}"
        );
    }

    let es = keyed_authorizer(
        JwtAlgorithm::Es256,
        KeyMaterial::PublicKeyPem(jwt_fixture("test-only-ec-public.pem")),
        store,
    );
    assert!(matches!(
        check_token(&es, &es256(None, &good)).await,
        Outcome::Allow(_)
    ));
    assert_eq!(
        check_token(&es, &rs256(None, &good)).await,
        Outcome::Unauthorized
    );
    let expired = {
        let mut c = good.clone();
        c["exp"] = (now() - 3_600).into();
        c
    };
    assert_eq!(
        check_token(&es, &es256(None, &expired)).await,
        Outcome::Unauthorized
    );
}

#[tokio::test]
async fn custom_claim_names_and_leeway_are_honoured() {
    let store = fresh_store().await;
    let mut settings = hs256_settings();
    settings.claims.org = "tenant".to_owned();
    settings.claims.user = "uid".to_owned();
    settings.claims.role = "crm_role".to_owned();
    settings.leeway_seconds = 0;
    let auth = authorizer(settings, store, Duration::from_secs(30));
    let token = hs256(&json!({
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60,
        "tenant": "org_custom", "uid": "u_custom", "crm_role": "admin",
        "org_id": "org_ignored", "sub": "ignored",
    }));
    match check_call(&auth, "POST", "/api/billing/checkout", Some(&token)).await {
        Outcome::Allow(json) => {
            assert_eq!(json["context"]["orgId"], "org_custom");
            assert_eq!(json["context"]["userId"], "u_custom");
            assert_eq!(json["context"]["role"], "Admin");
        }
        other => panic!("{other:?}"),
    }
    // Without leeway, one second past exp is expired.
    let late = hs256(&json!({
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() - 2, "tenant": "o", "uid": "u",
    }));
    assert_eq!(check_token(&auth, &late).await, Outcome::Unauthorized);
}
