//! Webhook cost, printed (no assertions): verify + parse + decide in process, and a whole
//! delivery end to end against moto and the fixture Stripe. `cargo bench -p pss-billing-tests
//! --bench webhook`.

use std::time::Instant;

use billing::domain::{CustomerId, Timestamp};
use billing::stripe::StripeEvent;
use billing::webhook::{WebhookSecret, decide, verify};
use pss_billing_tests::rig::{self, Rig, event, fake_put};
use pss_billing_tests::{build, fake_stripe, unique};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, unit: &str, mut samples: Vec<f64>) {
    samples.sort_by(|a, b| a.total_cmp(b));
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    println!(
        "{name:<44} n={:<6} p50={:>9.1} {unit} p99={:>9.1} {unit} mean={:>9.1} {unit}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        mean
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let secret = WebhookSecret::new(rig::SECRET);
        let sub = rig::subscription_object(
            "sub_bench",
            "cus_bench",
            "active",
            &[("leadgen_monthly", 1)],
        );
        let body = event("evt_bench", "customer.subscription.updated", &sub).to_string();
        let now = Timestamp::now().unix();
        let header = secret.sign(now, body.as_bytes());
        let secrets = [secret.clone()];
        let mut samples = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let started = Instant::now();
            verify(Some(&header), body.as_bytes(), &secrets, now, 300).expect("valid");
            let parsed: StripeEvent = serde_json::from_str(&body).expect("event");
            std::hint::black_box(decide(&parsed).expect("decision"));
            samples.push(started.elapsed().as_secs_f64() * 1e6);
        }
        println!("webhook ({} byte event)", body.len());
        report("in process: verify + parse + decide", "µs", samples);

        let stripe = fake_stripe();
        let rig = Rig::new(&stripe.url).await;
        let customer = unique("cus_");
        let org = build::org("org");
        rig.store
            .link_customer(&org, &CustomerId::parse(&customer).unwrap())
            .await
            .unwrap();
        let sub_id = unique("sub_");
        fake_put(
            &stripe.url,
            &rig::subscription_object(&sub_id, &customer, "active", &[("leadgen_monthly", 1)]),
        )
        .await;
        let object =
            rig::subscription_object(&sub_id, &customer, "active", &[("leadgen_monthly", 1)]);
        let mut samples = Vec::with_capacity(300);
        for _ in 0..300 {
            let evt = event(&unique("evt_"), "customer.subscription.updated", &object);
            let started = Instant::now();
            let (status, _) = rig.deliver(&evt).await;
            samples.push(started.elapsed().as_secs_f64() * 1e3);
            assert_eq!(status, 200);
        }
        report(
            "end to end (moto + fixture Stripe over HTTP)",
            "ms",
            samples,
        );
    });
}
