//! In-process measurements: the authorizer's decision (warm cache; uncached against moto), the
//! webhook's verify + parse + decide, the webhook end to end against moto and the fake Stripe,
//! and the latency of the emulators' single calls (to say what dominates).

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use billing::auth::{AuthConfig, Authorizer, JwtAlgorithm, JwtSettings, KeyMaterial};
use billing::domain::{GracePolicy, Timestamp};
use billing::store::BillingStore;
use billing::stripe::StripeEvent;
use billing::sync::Syncer;
use billing::webhook::{
    self, DEFAULT_MAX_BODY_BYTES, DEFAULT_TOLERANCE_SECONDS, Outcome, WebhookConfig,
    WebhookHandler, WebhookSecret,
};

use crate::counter::{OpCounter, Usage};
use crate::setup::{self, JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, TABLE, WEBHOOK_SECRET, World};
use crate::stats::Samples;

pub struct AuthorizerResults {
    pub warm: Samples,
    pub uncached: Samples,
    /// DynamoDB use of all uncached checks (divide by `uncached.len()`).
    pub uncached_usage: Usage,
    pub refusals: usize,
}

pub struct WebhookResults {
    pub in_process: Samples,
    pub samples_used: usize,
    pub end_to_end: Samples,
    pub e2e_usage: Usage,
    pub e2e_failures: usize,
    pub e2e_first_error: Option<String>,
}

/// Median latency of the emulators' single operations.
pub struct Primitives {
    pub get_item: Duration,
    pub query: Duration,
    pub transact3: Duration,
    pub stripe_get: Duration,
    pub process_spawn: Duration,
    /// Items in the bench table, and their total size (bytes), when measured.
    pub table_items: usize,
    pub table_bytes: u64,
    /// moto's resident memory (KiB; 0 when not found). moto keeps every copy it makes of a
    /// table (each transaction item deep-copies the table, and every copied item is tracked
    /// by moto's model registry), so it grows with transactions × table size, and its pauses
    /// grow with it.
    pub moto_rss_kib: u64,
}

/// VmRSS (KiB) of the moto server listening on `port`, found by its command line in /proc.
fn moto_rss_kib(port: u16) -> u64 {
    let port_arg = format!("--port\0{port}\0");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .find(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("moto_serial.py") && !c.contains("supervise.py") && c.contains(&port_arg)
            })
        })
        .and_then(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn authorizer(store: BillingStore, ttl: Duration) -> Authorizer {
    let mut config = AuthConfig::new(JwtSettings::new(
        JWT_ISSUER,
        JWT_AUDIENCE,
        JwtAlgorithm::Hs256,
        KeyMaterial::Secret(JWT_SECRET.to_owned()),
    ));
    config.cache_ttl = ttl;
    Authorizer::new(config, store).expect("authorizer")
}

pub async fn authorizer_bench(
    world: &World,
    warm_n: usize,
    uncached_n: usize,
) -> AuthorizerResults {
    let header = format!("Bearer {}", setup::allow_token());
    let mut refusals = 0;

    let warm = authorizer(world.store.clone(), Duration::from_secs(3_600));
    for _ in 0..200 {
        let _ = warm.decide("GET", "/api/leads", Some(&header)).await;
    }
    let mut samples = Vec::with_capacity(warm_n);
    let started = Instant::now();
    for _ in 0..warm_n {
        let t = Instant::now();
        let decision = warm.decide("GET", "/api/leads", Some(&header)).await;
        samples.push(t.elapsed());
        if !decision.is_ok_and(|d| d.is_allow()) {
            refusals += 1;
        }
        if started.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    let warm_samples = Samples::new(samples, started.elapsed());

    let counter = OpCounter::default();
    let store = BillingStore::new(
        setup::dynamo_client(&world.moto.url, Some(counter.clone())),
        TABLE,
    );
    let uncached = authorizer(store, Duration::ZERO);
    for _ in 0..10 {
        let _ = uncached.decide("GET", "/api/leads", Some(&header)).await;
    }
    counter.take();
    let mut samples = Vec::with_capacity(uncached_n);
    let started = Instant::now();
    for _ in 0..uncached_n {
        let t = Instant::now();
        let decision = uncached.decide("GET", "/api/leads", Some(&header)).await;
        samples.push(t.elapsed());
        if !decision.is_ok_and(|d| d.is_allow()) {
            refusals += 1;
        }
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    AuthorizerResults {
        uncached: Samples::new(samples, started.elapsed()),
        warm: warm_samples,
        uncached_usage: counter.take(),
        refusals,
    }
}

fn webhook_config() -> WebhookConfig {
    WebhookConfig {
        secrets: vec![WebhookSecret::new(WEBHOOK_SECRET)],
        tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        livemode: false,
    }
}

pub async fn webhook_bench(world: &World, in_process_n: usize, e2e_n: usize) -> WebhookResults {
    // Every committed sample, its body signed now (verify + parse + decide on each in turn).
    let now = Timestamp::now().unix();
    let secret = WebhookSecret::new(WEBHOOK_SECRET);
    let mut files: Vec<_> = std::fs::read_dir(setup::events_dir("stripe-webhook"))
        .expect("events/stripe-webhook")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let deliveries: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|path| {
            let event: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).expect("sample"))
                    .expect("JSON");
            let body = event["body"].as_str().expect("body").as_bytes().to_vec();
            (secret.sign(now, &body), body)
        })
        .collect();
    let config = webhook_config();
    let mut samples = Vec::with_capacity(in_process_n);
    let started = Instant::now();
    for i in 0..in_process_n {
        let (signature, body) = &deliveries[i % deliveries.len()];
        let t = Instant::now();
        let verified = webhook::verify(
            Some(signature),
            body,
            &config.secrets,
            now,
            config.tolerance_seconds,
        );
        let event: StripeEvent = serde_json::from_slice(body).expect("a Stripe event");
        let action = webhook::decide(&event);
        samples.push(t.elapsed());
        black_box((verified.is_ok(), action.is_ok()));
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let in_process = Samples::new(samples, started.elapsed());

    // End to end: the handler against moto and the fake Stripe, a new event id each time.
    let counter = OpCounter::default();
    let store = BillingStore::new(
        setup::dynamo_client(&world.moto.url, Some(counter.clone())),
        TABLE,
    );
    let handler = WebhookHandler::new(
        Syncer::new(store, setup::stripe_api(world), GracePolicy::default()),
        webhook_config(),
    );
    let template = setup::sample("stripe-webhook", setup::WEBHOOK_SAMPLE);
    let mut failures = 0;
    let mut first_error = None;
    let mut samples = Vec::with_capacity(e2e_n);
    let mut timed = Duration::ZERO;
    let started = Instant::now();
    for i in 0..e2e_n + 5 {
        let id = format!("evt_bench_inproc_{i:06}");
        let body = setup::webhook_body(&template, &id);
        let now = Timestamp::now().unix();
        let signature = secret.sign(now, body.as_bytes());
        if i == 5 {
            counter.take(); // the first five warm the connection pools
        }
        let t = Instant::now();
        let outcome = handler
            .process(Some(&signature), body.as_bytes(), now)
            .await;
        let elapsed = t.elapsed();
        match outcome {
            Outcome::Processed(_) => {
                if i >= 5 {
                    samples.push(elapsed);
                    timed += elapsed;
                }
            }
            other => {
                failures += 1;
                first_error.get_or_insert(format!("{other:?}"));
            }
        }
        setup::forget_event(&world.client, &id).await;
        if started.elapsed() > Duration::from_secs(40) {
            break;
        }
    }
    WebhookResults {
        in_process,
        samples_used: deliveries.len(),
        end_to_end: Samples::new(samples, timed),
        e2e_usage: counter.take(),
        e2e_failures: failures,
        e2e_first_error: first_error,
    }
}

async fn median_of<F, Fut>(n: usize, mut f: F) -> Duration
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        samples.push(t.elapsed());
    }
    Samples::new(samples, Duration::ZERO).median()
}

pub async fn primitives(world: &World) -> Primitives {
    let client = &world.client;
    let org = format!("ORG#{}", setup::ORG);
    let get_item = median_of(100, |_| {
        let org = org.clone();
        async move {
            let _ = client
                .get_item()
                .table_name(TABLE)
                .key("PK", AttributeValue::S(org))
                .key(
                    "SK",
                    AttributeValue::S(billing::store::keys::ENTITLEMENTS.to_owned()),
                )
                .consistent_read(true)
                .send()
                .await;
        }
    })
    .await;
    let query = median_of(100, |_| {
        let org = org.clone();
        async move {
            let _ = client
                .query()
                .table_name(TABLE)
                .key_condition_expression("PK = :pk AND begins_with(SK, :p)")
                .expression_attribute_values(":pk", AttributeValue::S(org))
                .expression_attribute_values(":p", AttributeValue::S("SUB#".to_owned()))
                .consistent_read(true)
                .send()
                .await;
        }
    })
    .await;
    let transact3 = median_of(50, |i| async move {
        let items = (0..3)
            .map(|k| {
                let put = Put::builder()
                    .table_name(TABLE)
                    .item("PK", AttributeValue::S(format!("BENCH#probe{k}")))
                    .item("SK", AttributeValue::S("PROBE".to_owned()))
                    .item("n", AttributeValue::N(i.to_string()))
                    .build()
                    .expect("put");
                TransactWriteItem::builder().put(put).build()
            })
            .collect::<Vec<_>>();
        let _ = client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
    })
    .await;
    for k in 0..3 {
        let _ = client
            .delete_item()
            .table_name(TABLE)
            .key("PK", AttributeValue::S(format!("BENCH#probe{k}")))
            .key("SK", AttributeValue::S("PROBE".to_owned()))
            .send()
            .await;
    }
    let stripe = setup::stripe_api(world);
    let stripe_get = median_of(100, |_| {
        let stripe = &stripe;
        async move {
            let _ = stripe.subscription("sub_sample").await;
        }
    })
    .await;
    let process_spawn = median_of(20, |_| async {
        let _ = std::process::Command::new("/bin/true").status();
    })
    .await;
    let mut table_items = 0;
    let mut table_bytes = 0;
    let mut start = None;
    for _ in 0..100 {
        let Ok(page) = client
            .scan()
            .table_name(TABLE)
            .set_exclusive_start_key(start)
            .send()
            .await
        else {
            break;
        };
        table_items += page.items().len();
        table_bytes += page
            .items()
            .iter()
            .map(crate::counter::map_size)
            .sum::<u64>();
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    Primitives {
        moto_rss_kib: moto_rss_kib(world.moto.port),
        table_items,
        table_bytes,
        get_item,
        query,
        transact3,
        stripe_get,
        process_spawn,
    }
}
