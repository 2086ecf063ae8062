//! Authorizer decision latency, printed, not asserted (`cargo bench -p pss-billing-tests --bench
//! authorizer`). Warm: in process, entitlements cached, so the figure is token verification plus
//! the decision (budget 1 ms). Uncached: cache disabled, one strongly consistent GetItem against
//! moto on loopback per check (moto is far slower than DynamoDB; read it as an upper bound).

use std::time::{Duration, Instant};

use billing::auth::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, Authorizer, JwtAlgorithm, JwtSettings,
    KeyMaterial,
};
use billing::domain::{ServiceModule, SubscriptionStatus, Timestamp};
use billing::store::BillingStore;
use pss_billing_tests::auth::{
    AUDIENCE, HS256_SECRET, ISSUER, authorizer_event, es256, hs256, jwt_fixture, rs256,
};
use pss_billing_tests::build::{org, subscription};
use pss_billing_tests::{fresh_store, store_subscription};
use serde_json::json;

fn event(token: &str) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    authorizer_event("GET", "/api/leads", Some(token))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn measure(
    authorizer: &Authorizer,
    event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    runs: usize,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let outcome = authorizer.authorize(event).await;
        samples.push(start.elapsed());
        if outcome.is_err() {
            eprintln!("unexpected refusal: {outcome:?}");
        }
    }
    samples.sort();
    samples
}

fn report(label: &str, samples: &[Duration], unit: &str) {
    let scale = |d: Duration| match unit {
        "µs" => d.as_secs_f64() * 1e6,
        _ => d.as_secs_f64() * 1e3,
    };
    println!(
        "{label:<44} n={:<5} p50={:>8.1} {unit}  p99={:>8.1} {unit}  max={:>8.1} {unit}",
        samples.len(),
        scale(percentile(samples, 0.50)),
        scale(percentile(samples, 0.99)),
        scale(samples[samples.len() - 1]),
    );
}

fn authorizer(
    store: &BillingStore,
    alg: JwtAlgorithm,
    key: KeyMaterial,
    ttl: Duration,
) -> Authorizer {
    pss_billing_tests::auth::authorizer(
        JwtSettings::new(ISSUER, AUDIENCE, alg, key),
        store.clone(),
        ttl,
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = fresh_store().await;
        let org = org("bench");
        let sub = subscription(
            "sub_bench",
            "cus_bench",
            SubscriptionStatus::Active,
            &[ServiceModule::LeadGeneration],
        );
        store_subscription(&store, &org, &sub).await;
        let claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "user_bench", "org_id": org.as_str(),
            "role": "Member", "exp": Timestamp::now().unix() + 3_600,
        });
        let (hs, rs, es) = (hs256(&claims), rs256(None, &claims), es256(None, &claims));

        println!("authorizer decision latency (GET /api/leads, org with LeadGeneration)");
        let warm = Duration::from_secs(3_600);
        for (label, alg, key, token) in [
            (
                "warm cache, HS256",
                JwtAlgorithm::Hs256,
                KeyMaterial::Secret(HS256_SECRET.to_owned()),
                &hs,
            ),
            (
                "warm cache, RS256 (2048-bit, pinned key)",
                JwtAlgorithm::Rs256,
                KeyMaterial::PublicKeyPem(jwt_fixture("test-only-rsa-public.pem")),
                &rs,
            ),
            (
                "warm cache, ES256 (P-256, pinned key)",
                JwtAlgorithm::Es256,
                KeyMaterial::PublicKeyPem(jwt_fixture("test-only-ec-public.pem")),
                &es,
            ),
        ] {
            let auth = authorizer(&store, alg, key, warm);
            let ev = event(token);
            measure(&auth, &ev, 200).await; // warm-up: fills the cache
            report(label, &measure(&auth, &ev, 5_000).await, "µs");
        }

        let uncached = authorizer(
            &store,
            JwtAlgorithm::Hs256,
            KeyMaterial::Secret(HS256_SECRET.to_owned()),
            Duration::ZERO,
        );
        let ev = event(&hs);
        measure(&uncached, &ev, 20).await; // warm-up: connection pool
        report(
            "uncached, HS256 + 1 consistent GetItem (moto)",
            &measure(&uncached, &ev, 300).await,
            "ms",
        );
    });
}
