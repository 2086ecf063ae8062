//! `scripts/bench`: builds nothing itself (the script builds the release binaries first), then
//! measures every function and prints one table (also written to target/bench-report.md).
//! It asserts nothing: targets are reported as met or not met.
//!
//! 1. Cold start: each release binary is spawned with `AWS_LAMBDA_RUNTIME_API` pointing at an
//!    in-process Runtime API emulator, timed from exec to its first response (init included).
//! 2. Warm latency: one process per function serves up to 1,000 invocations.
//! 3. Authorizer decisions in process, warm cache and uncached against moto.
//! 4. Webhook events in process (verify + parse + decide) and end to end against moto + Stripe.
//! 5. Peak RSS, stripped binary and deployment zip sizes.
//! 6. The Python peer (bench/python_peer) measured the same way.
//! 7. Cost per million from the measured durations and request units.
//! 8. First in the table: the Stripe and DynamoDB round trips of the three hot paths (success-page
//!    sync, checkout click, subscription webhook event) and their sequential depth, counted in
//!    process by the `billing::round_trips` recorders (bench/src/trips.rs).
//!
//! Everything runs on loopback: moto and the fixture-backed Stripe on free ports.

mod counter;
mod inproc;
mod process;
mod report;
mod runtime_api;
mod setup;
mod stats;
mod trips;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{FunctionSpec, cold, warm};
use crate::setup::World;

/// How many runs of each kind; `--quick` (a smoke run while developing the bench) shrinks them.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub cold_runs: usize,
    pub warm_invocations: usize,
    pub in_process: usize,
    pub uncached: usize,
    /// Runs of each hot path whose round trips are counted.
    pub round_trip_runs: usize,
}

impl Plan {
    fn from_args() -> Self {
        if std::env::args().any(|a| a == "--quick") {
            Self {
                cold_runs: 3,
                warm_invocations: 50,
                in_process: 2_000,
                uncached: 30,
                round_trip_runs: 3,
            }
        } else {
            Self {
                cold_runs: 20,
                warm_invocations: 1_000,
                in_process: 20_000,
                uncached: 300,
                round_trip_runs: 5,
            }
        }
    }
}

pub const WARM_UP: usize = 10;
/// Wall-time cap of one function's warm run (moto-bound functions are the slow ones)...
pub const WARM_CAP: Duration = Duration::from_secs(300);
/// ...and of the whole run: past this, the remaining warm runs get `MIN_WARM_CAP` each.
pub const RUN_BUDGET: Duration = Duration::from_secs(600);
const MIN_WARM_CAP: Duration = Duration::from_secs(10);

fn warm_cap(started: Instant) -> Duration {
    RUN_BUDGET
        .saturating_sub(started.elapsed())
        .clamp(MIN_WARM_CAP, WARM_CAP)
}

/// Every function of template.yaml, with the committed sample event its runs send.
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("stripe-webhook", setup::WEBHOOK_SAMPLE),
    ("authorizer", "allow-unlocked"),
    ("billing-services", "200-anonymous"),
    ("billing-subscription", "200-subscription"),
    ("billing-invoices", "200-first-page"),
    ("billing-payment-methods", "200-payment-methods"),
    ("billing-checkout", "200-checkout"),
    ("billing-portal", "200-portal"),
    ("billing-plan", "200-preview"),
    ("leads", "list"),
    // Last: the heaviest against moto (about 25 DynamoDB and Stripe calls per invocation).
    ("billing-sync", "200-sync-after-checkout"),
];

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

fn status_200(body: &[u8]) -> bool {
    json_of(body)["statusCode"] == 200
}

fn webhook_processed(body: &[u8]) -> bool {
    let reply = json_of(body);
    reply["statusCode"] == 200
        && reply["body"]
            .as_str()
            .is_some_and(|b| b.contains("\"processed\""))
}

fn authorizer_allows(body: &[u8]) -> bool {
    json_of(body)["policyDocument"]["Statement"][0]["Effect"] == "Allow"
}

fn base_env(name: &str, world: &World) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        // Fake credentials, as Lambda puts the role's into the environment.
        ("AWS_ACCESS_KEY_ID", "test-access-key".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "bench-fake-secret-access-key".to_owned(),
        ),
        ("AWS_SESSION_TOKEN", "bench-fake-session-token".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", world.moto.url.clone()),
        ("BILLING_TABLE", setup::TABLE.to_owned()),
        // Set for every function by the template's Globals, as here.
        ("FRONTEND_ORIGINS", setup::FRONTEND_ORIGINS.to_owned()),
        ("RUST_LOG", "info".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The configuration each function reads (see its main.rs and shared/src/*/from_env).
fn function_env(name: &str, world: &World) -> Vec<(String, String)> {
    let mut env = base_env(name, world);
    let mut add = |k: &str, v: &str| env.push((k.to_owned(), v.to_owned()));
    let stripe = |add: &mut dyn FnMut(&str, &str)| {
        add("STRIPE_SECRET_KEY", setup::STRIPE_KEY);
        add("STRIPE_API_BASE", &world.stripe.url);
        // The fixture Stripe's account, as the template pins every Stripe caller's key.
        add("STRIPE_ACCOUNT_ID", "acct_1LocalPssFixture");
    };
    match name {
        "stripe-webhook" => {
            stripe(&mut add);
            add("STRIPE_WEBHOOK_SECRETS", setup::WEBHOOK_SECRET);
        }
        "authorizer" => {
            add("JWT_ISSUER", setup::JWT_ISSUER);
            add("JWT_AUDIENCE", setup::JWT_AUDIENCE);
            add("JWT_ALGORITHM", "HS256");
            add("JWT_SECRET", setup::JWT_SECRET);
        }
        "billing-checkout" | "billing-portal" | "billing-plan" | "billing-sync" => {
            stripe(&mut add);
            // The eager-sync budget would refuse a benchmark's thousand calls a minute.
            add("SYNC_RATE_PER_MINUTE", "1000000");
        }
        _ => {}
    }
    env
}

/// Configures a function as in AWS: every secret it reads named as an SSM parameter
/// (`<NAME>_PARAMETER`, fetched from moto at init) instead of given in the environment.
/// False for a function that reads no secret.
fn secrets_from_ssm(spec: &mut FunctionSpec, world: &World) -> bool {
    let mut any = false;
    for (variable, parameter, _) in setup::SSM_SECRETS {
        if let Some(entry) = spec.env.iter_mut().find(|(k, _)| k == variable) {
            *entry = (format!("{variable}_PARAMETER"), (*parameter).to_owned());
            any = true;
        }
    }
    if any {
        spec.env
            .push(("AWS_ENDPOINT_URL_SSM".to_owned(), world.moto.url.clone()));
        spec.name.push_str(" (secrets from SSM)");
    }
    any
}

fn webhook_events(tag_prefix: &'static str) -> process::EventFn {
    let template = setup::sample("stripe-webhook", setup::WEBHOOK_SAMPLE);
    let run = std::process::id();
    Box::new(move |tag| {
        let id = format!("evt_bench_{tag_prefix}_{run}_{tag}");
        (setup::webhook_event(&template, &id), Some(id))
    })
}

fn rust_spec(bin_dir: &Path, name: &str, sample: &str, world: &World) -> FunctionSpec {
    let (event, check): (process::EventFn, fn(&[u8]) -> bool) = match name {
        "stripe-webhook" => (webhook_events("rs"), webhook_processed),
        "authorizer" => {
            // Tokens are re-issued once per run (valid for an hour).
            let event = setup::authorizer_event(sample);
            (Box::new(move |_| (event.clone(), None)), authorizer_allows)
        }
        _ => {
            let mut event = setup::sample(name, sample);
            if name == "billing-checkout" {
                // The seed gave org_sample LeadGeneration, which the sample asks for again
                // (409 already_subscribed): check out for an org without a subscription. Its
                // first run creates the Stripe customer and billing profile; later runs reuse it.
                event["requestContext"]["authorizer"]["orgId"] = setup::ORG_CHECKOUT.into();
            }
            let event = serde_json::to_vec(&event).expect("event");
            (Box::new(move |_| (event.clone(), None)), status_200)
        }
    };
    FunctionSpec {
        name: name.to_owned(),
        program: bin_dir.join(name),
        args: Vec::new(),
        env: function_env(name, world),
        event,
        check,
    }
}

fn python_spec(world: &World) -> FunctionSpec {
    let root = pss_local::emulators::workspace_root();
    let mut env = base_env("python-peer", world);
    env.push((
        "STRIPE_WEBHOOK_SECRETS".to_owned(),
        setup::WEBHOOK_SECRET.to_owned(),
    ));
    env.push(("PYTHONUNBUFFERED".to_owned(), "1".to_owned()));
    FunctionSpec {
        name: "python-peer".to_owned(),
        program: pss_local::emulators::venv_bin("python"),
        args: vec![
            root.join("bench/python_peer/runtime.py")
                .display()
                .to_string(),
        ],
        env,
        event: webhook_events("py"),
        check: webhook_processed,
    }
}

pub struct FunctionResult {
    pub name: String,
    pub cold: process::ColdResult,
    /// Cold starts with its secrets read from SSM at init, for a function that reads any.
    pub cold_ssm: Option<process::ColdResult>,
    pub warm: process::WarmResult,
    pub binary_bytes: u64,
    pub zip_bytes: u64,
}

/// Zips each binary as `bootstrap` (and the Python peer as a handler plus the packages the
/// Lambda Python runtime does not provide), with the venv's Python zipfile; returns the sizes.
fn zip_sizes(out_dir: &Path, binaries: &[(String, PathBuf)]) -> Vec<(String, u64, u64)> {
    const SCRIPT: &str = r#"
import importlib.util, os, sys, zipfile
out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)
for spec in sys.argv[2:]:
    name, path = spec.split("=", 1)
    out = os.path.join(out_dir, name + ".zip")
    raw = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        if name == "python-peer":
            z.write(path, "handler.py"); raw += os.path.getsize(path)
            for pkg in ["stripe", "requests", "certifi", "idna", "charset_normalizer", "typing_extensions"]:
                found = importlib.util.find_spec(pkg)
                if found.submodule_search_locations:
                    top = list(found.submodule_search_locations)[0]
                    base = os.path.dirname(top)
                    for d, dirs, files in os.walk(top):
                        dirs[:] = [x for x in dirs if x != "__pycache__"]
                        for f in files:
                            p = os.path.join(d, f)
                            z.write(p, os.path.relpath(p, base)); raw += os.path.getsize(p)
                else:
                    z.write(found.origin, os.path.basename(found.origin)); raw += os.path.getsize(found.origin)
        else:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o100755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                data = f.read()
            raw = len(data)
            z.writestr(info, data, compresslevel=9)
    print(name, raw, os.path.getsize(out))
"#;
    let mut command = std::process::Command::new(pss_local::emulators::venv_bin("python"));
    command.arg("-c").arg(SCRIPT).arg(out_dir);
    for (name, path) in binaries {
        command.arg(format!("{name}={}", path.display()));
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(e) => {
            eprintln!("bench: zipping failed: {e}");
            return Vec::new();
        }
    };
    if !output.status.success() {
        eprintln!(
            "bench: zipping failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((
                parts.next()?.to_owned(),
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// Cold starts, then a warm run, of one function.
async fn measure(
    spec: &FunctionSpec,
    plan: Plan,
    started: Instant,
    world: &World,
) -> (process::ColdResult, process::WarmResult) {
    eprintln!("bench: {}: {} cold starts", spec.name, plan.cold_runs);
    let cold_result = cold(spec, plan.cold_runs, &world.client).await;
    eprintln!(
        "bench: {}: warm run (up to {} invocations)",
        spec.name, plan.warm_invocations
    );
    let warm_result = warm(
        spec,
        WARM_UP,
        plan.warm_invocations,
        warm_cap(started),
        &world.client,
    )
    .await;
    (cold_result, warm_result)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let started = Instant::now();
    let plan = Plan::from_args();
    let exe = std::env::current_exe().expect("own path");
    let bin_dir = exe.parent().expect("target/release").to_path_buf();
    let target_dir = bin_dir.parent().unwrap_or(&bin_dir).to_path_buf();
    for (name, _) in FUNCTIONS {
        let path = bin_dir.join(name);
        if !path.exists() {
            eprintln!(
                "bench: {} is missing; build it first (scripts/bench does: cargo build --release)",
                path.display()
            );
            std::process::exit(2);
        }
    }

    eprintln!("bench: starting moto and the fixture Stripe, seeding the table");
    let world = setup::start().await;

    eprintln!("bench: round trips of the hot paths (sync, checkout click, webhook event)");
    let round_trips = trips::round_trips(&world, plan.round_trip_runs).await;
    eprintln!("bench: emulator primitives (moto GetItem/Query/transaction, Stripe GET, spawn)");
    let primitives = inproc::primitives(&world).await;
    eprintln!("bench: authorizer in process (warm cache; uncached against moto)");
    let auth = inproc::authorizer_bench(&world, plan.in_process, plan.uncached).await;
    eprintln!("bench: webhook in process (verify + parse + decide) and end to end");
    let hook = inproc::webhook_bench(&world, plan.in_process, plan.uncached).await;

    let mut results = Vec::new();
    let mut peer_runs = None;
    for (name, sample) in FUNCTIONS {
        let spec = rust_spec(&bin_dir, name, sample, &world);
        let (cold_result, warm_result) = measure(&spec, plan, started, &world).await;
        let mut ssm_spec = rust_spec(&bin_dir, name, sample, &world);
        let cold_ssm = if secrets_from_ssm(&mut ssm_spec, &world) {
            eprintln!("bench: {}: {} cold starts", ssm_spec.name, plan.cold_runs);
            Some(cold(&ssm_spec, plan.cold_runs, &world.client).await)
        } else {
            None
        };
        results.push(FunctionResult {
            name: name.to_string(),
            cold: cold_result,
            cold_ssm,
            warm: warm_result,
            binary_bytes: std::fs::metadata(&spec.program)
                .map(|m| m.len())
                .unwrap_or(0),
            zip_bytes: 0,
        });
        if *name == "stripe-webhook" {
            // The Python peer right after the Rust webhook, under the same conditions.
            let peer = python_spec(&world);
            let runs = measure(&peer, plan, started, &world).await;
            let row_bytes = report::python_row_size(&world).await;
            // Its subscription row has its own shape, which the Rust readers of the same
            // table do not parse: put the Rust one back before the other functions run.
            setup::restore_subscription(&world).await;
            peer_runs = Some((runs, row_bytes));
        }
    }
    let ((peer_cold, peer_warm), peer_row_bytes) = peer_runs.expect("the webhook runs first");

    eprintln!("bench: emulator primitives again (does moto slow down over the run?)");
    let primitives_end = inproc::primitives(&world).await;

    eprintln!("bench: deployment zips");
    let mut to_zip: Vec<(String, PathBuf)> = FUNCTIONS
        .iter()
        .map(|(name, _)| (name.to_string(), bin_dir.join(name)))
        .collect();
    let handler = pss_local::emulators::workspace_root().join("bench/python_peer/handler.py");
    to_zip.push(("python-peer".to_owned(), handler));
    let zips = zip_sizes(&target_dir.join("bench-zips"), &to_zip);
    for result in &mut results {
        if let Some((_, _, zip)) = zips.iter().find(|(n, _, _)| *n == result.name) {
            result.zip_bytes = *zip;
        }
    }
    let peer_package = zips
        .iter()
        .find(|(n, _, _)| n == "python-peer")
        .map(|(_, raw, zip)| (*raw, *zip))
        .unwrap_or((0, 0));

    let peer_result = FunctionResult {
        name: "python-peer".to_owned(),
        cold: peer_cold,
        cold_ssm: None,
        warm: peer_warm,
        binary_bytes: peer_package.0,
        zip_bytes: peer_package.1,
    };
    let text = report::render(&report::Inputs {
        functions: &results,
        peer: &peer_result,
        peer_row_bytes,
        auth: &auth,
        hook: &hook,
        trips: &round_trips,
        primitives: &primitives,
        primitives_end: &primitives_end,
        plan,
        elapsed: started.elapsed(),
    });
    println!("{text}");
    let path = target_dir.join("bench-report.md");
    match std::fs::write(&path, &text) {
        Ok(()) => eprintln!("bench: report written to {}", path.display()),
        Err(e) => eprintln!("bench: cannot write {}: {e}", path.display()),
    }
}
