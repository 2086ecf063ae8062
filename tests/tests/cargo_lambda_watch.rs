//! `scripts/watch` (cargo lambda watch) serving the real function binaries: cargo-lambda's own
//! Runtime API, invoke API (`cargo lambda invoke`) and Function URL emulation, with the
//! environment the wrapper gives every function, against moto and the fixture Stripe.
//!
//! cargo-lambda normally compiles each function itself (`cargo run --bin`); a test cannot run
//! cargo while `cargo test` holds the build directory, and a second build would cost minutes.
//! So cargo-lambda runs with `--only-lambda-apis` (its mode for functions started elsewhere) and
//! the test starts the debug binaries this `cargo test` already built, with the variables
//! cargo-lambda would give them: its runtime variables and the wrapper's env file.

mod dev_paths;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use billing::domain::ServiceModule::LeadGeneration;
use billing::domain::SubscriptionStatus::Active;
use billing::domain::{CustomerId, OrgId};
use billing::store::BillingStore;
use billing::store::table::create_table;
use dev_paths::{exe, run_scripts_events};
use pss_billing_tests::build::subscription;
use pss_billing_tests::template::{self, Function, functions};
use pss_billing_tests::{
    dynamo_client, fake_stripe, free_port, http, moto, store_subscription, workspace_root,
};
use pss_local::stack::{DEFAULT_MOTO_PORT, DEFAULT_STRIPE_PORT};
use serde_json::Value;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cargo_lambda() -> PathBuf {
    let venv = std::env::var_os("PSS_TOOLS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv-tools"));
    let path = venv.join("bin/cargo-lambda");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-build-tools",
        path.display()
    );
    path
}

/// Runs `scripts/watch --print-env-file` with exactly the shell variables `shell` (nothing of
/// the developer's own shell), writing to a file of its own; Err carries stderr.
fn watch_env_with(shell: &[(&str, &str)]) -> Result<(BTreeMap<String, String>, String), String> {
    let path = workspace_root().join(format!(
        "target/watch-env/{}.env",
        pss_billing_tests::unique("watch")
    ));
    let out = Command::new("python3")
        .arg(workspace_root().join("scripts/watch"))
        .arg("--env-file")
        .arg(&path)
        .arg("--print-env-file")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(shell.iter().copied())
        .output()
        .expect("scripts/watch");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(stderr);
    }
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        path.to_str().unwrap()
    );
    let env = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Ok((env, stderr))
}

/// The env file `scripts/watch` hands to `cargo lambda watch --env-file`, no STRIPE_* in the shell.
fn watch_env_file() -> BTreeMap<String, String> {
    watch_env_with(&[]).unwrap_or_else(|e| panic!("{e}")).0
}

#[test]
fn stripe_variables_from_the_shell_override_env_local_json_for_test_mode() {
    let local = watch_env_file();
    let shell = [
        ("STRIPE_SECRET_KEY", "sk_test_from_the_shell"),
        ("STRIPE_WEBHOOK_SECRETS", "whsec_from_stripe_listen"),
        ("STRIPE_ACCOUNT_ID", "acct_1TestAccount"),
    ];
    let (env, stderr) = watch_env_with(&shell).unwrap();
    for (name, value) in shell {
        assert_eq!(env[name], value, "{name}");
        assert!(
            !stderr.contains(value),
            "scripts/watch printed {name}'s value"
        );
    }
    // Forwarded events name objects only Stripe holds: the fixture Stripe is out of the way,
    // and empty means "unset" (api.stripe.com) to the code.
    assert_eq!(env["STRIPE_API_BASE"], "");
    // Everything else is still env.local.json's (the local stack's DynamoDB, the table).
    for name in [
        "BILLING_TABLE",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "JWT_SECRET",
        "AWS_ACCESS_KEY_ID",
    ] {
        assert_eq!(env[name], local[name], "{name}");
    }
    // A shell STRIPE_API_BASE still wins; one variable alone overrides only itself.
    let (env, _) = watch_env_with(&[
        shell[0],
        shell[1],
        shell[2],
        ("STRIPE_API_BASE", "http://127.0.0.1:12111"),
    ])
    .unwrap();
    assert_eq!(env["STRIPE_API_BASE"], "http://127.0.0.1:12111");
    let (env, _) = watch_env_with(&[("STRIPE_WEBHOOK_SECRETS", "whsec_other")]).unwrap();
    assert_eq!(env["STRIPE_WEBHOOK_SECRETS"], "whsec_other");
    assert_eq!(env["STRIPE_SECRET_KEY"], local["STRIPE_SECRET_KEY"]);
    assert_eq!(env["STRIPE_API_BASE"], local["STRIPE_API_BASE"]);

    // Refused before anything starts: a live key, and a test key without the endpoint's
    // secret or the account (the local stack's would refuse every forwarded event).
    let live = watch_env_with(&[
        ("STRIPE_SECRET_KEY", "sk_live_not_here"),
        shell[1],
        shell[2],
    ])
    .unwrap_err();
    assert!(
        live.contains("test-mode key") && !live.contains("sk_live_not_here"),
        "{live}"
    );
    let no_secret = watch_env_with(&[shell[0], shell[2]]).unwrap_err();
    assert!(no_secret.contains("STRIPE_WEBHOOK_SECRETS"), "{no_secret}");
    let no_account = watch_env_with(&[shell[0], shell[1]]).unwrap_err();
    assert!(no_account.contains("STRIPE_ACCOUNT_ID"), "{no_account}");
}

#[test]
fn the_watch_environment_is_env_local_json_for_every_function() {
    let env = watch_env_file();
    for (function, vars) in dev_paths::env_local() {
        for (name, value) in vars.as_object().unwrap() {
            assert_eq!(
                env.get(name).map(String::as_str),
                value.as_str(),
                "{function}: {name}"
            );
        }
    }
    // Placeholder credentials, never the developer's, go to the local endpoint.
    assert_eq!(env["AWS_ACCESS_KEY_ID"], "local-placeholder");
    assert_eq!(
        env["AWS_ENDPOINT_URL_DYNAMODB"],
        format!("http://127.0.0.1:{DEFAULT_MOTO_PORT}")
    );
    assert_eq!(
        env["STRIPE_API_BASE"],
        format!("http://127.0.0.1:{DEFAULT_STRIPE_PORT}")
    );
}

/// Starts a function binary against cargo-lambda's Runtime API, as `cargo lambda watch` would.
fn start_function(f: &Function, port: u16, env: &BTreeMap<String, String>) -> Killed {
    let log_dir = workspace_root().join("target/dev-paths-logs");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = std::fs::File::create(log_dir.join(format!("watch-{}.log", f.binary))).unwrap();
    Killed(
        Command::new(exe(f))
            .env_clear()
            .envs(env)
            .env("AWS_LAMBDA_FUNCTION_NAME", &f.binary)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt/{}", f.binary),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// `cargo lambda invoke <function> --data-file <file>` against the watch server.
fn cargo_lambda_invoke(function: &str, port: u16, file: &std::path::Path) -> Value {
    let out = Command::new(cargo_lambda())
        .args([
            "lambda",
            "invoke",
            function,
            "--invoke-address",
            "127.0.0.1",
        ])
        .args([
            "--invoke-port",
            &port.to_string(),
            "--output-format",
            "json",
        ])
        .arg("--data-file")
        .arg(file)
        .current_dir(workspace_root())
        .output()
        .expect("cargo lambda invoke");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "cargo lambda invoke {function}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{function}: {e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn cargo_lambda_watch_serves_the_authorizer_an_endpoint_and_the_webhook_url() {
    let t = template::load();
    let fns = functions(&t);
    let by_binary = |name: &str| fns.iter().find(|f| f.binary == name).unwrap().clone();
    let events = workspace_root().join("target/dev-paths-events/watch");
    run_scripts_events(&events, &[]);

    // The wrapper's environment, with the local stack's two ports swapped for this test's.
    let mut env = watch_env_file();
    let (moto_url, stripe_url) = (moto().url.clone(), fake_stripe().url.clone());
    env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), moto_url.clone());
    env.insert("STRIPE_API_BASE".into(), stripe_url.clone());
    let client = dynamo_client(&moto_url);
    create_table(&client, &env["BILLING_TABLE"]).await.unwrap();
    let store = BillingStore::new(client, &env["BILLING_TABLE"]);
    pss_billing_tests::seed_sample_stripe(&stripe_url).await;
    let org = OrgId::parse("org_sample").unwrap();
    store
        .link_customer(&org, &CustomerId::parse("cus_sample").unwrap())
        .await
        .unwrap();
    let sub = subscription("sub_watch", "cus_watch", Active, &[LeadGeneration]);
    let unlocked = OrgId::parse("org_sample_unlocked").unwrap();
    store_subscription(&store, &unlocked, &sub).await;

    let port = free_port();
    let _watch = Killed(
        Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo lambda watch"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "cargo lambda watch did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The authorizer through the invoke API, with a token scripts/events minted.
    let authorizer = by_binary("authorizer");
    let file = events.join("authorizer/allow-unlocked.json");
    let invoke = std::thread::spawn(move || cargo_lambda_invoke("authorizer", port, &file));
    let _auth = start_function(&authorizer, port, &env);
    let reply = invoke.join().unwrap();
    assert_eq!(
        reply["policyDocument"]["Statement"][0]["Effect"], "Allow",
        "{reply}"
    );
    assert_eq!(reply["context"]["orgId"], "org_sample_unlocked", "{reply}");

    // A billing endpoint through the invoke API (REST proxy event with the authorizer context).
    let endpoint = by_binary("billing-subscription");
    let file = events.join("billing-subscription/200-subscription.json");
    let invoke =
        std::thread::spawn(move || cargo_lambda_invoke("billing-subscription", port, &file));
    let _endpoint = start_function(&endpoint, port, &env);
    let reply = invoke.join().unwrap();
    assert_eq!(reply["statusCode"], 200, "{reply}");
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert!(body.is_object(), "{body}");

    // The webhook through its Function URL path, as `stripe listen --forward-to` would post.
    let webhook = by_binary("stripe-webhook");
    let sample: Value = serde_json::from_slice(
        &std::fs::read(events.join("stripe-webhook/checkout.session.completed.json")).unwrap(),
    )
    .unwrap();
    let body = sample["body"].as_str().unwrap().to_owned();
    let signature = sample["headers"]["stripe-signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("http://127.0.0.1:{port}/lambda-url/stripe-webhook/");
    let post = move |signature: String| {
        let (url, body) = (url.clone(), body.clone());
        std::thread::spawn(move || {
            http::request(
                "POST",
                &url,
                &[
                    ("content-type", "application/json"),
                    ("stripe-signature", &signature),
                ],
                body.as_bytes(),
            )
        })
    };
    let delivery = post(signature.clone());
    let _webhook = start_function(&webhook, port, &env);
    let reply = delivery.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["outcome"], "processed", "{}", reply.body);
    // Same shape, one hex digit changed: only the HMAC check can refuse it.
    let mut forged = signature.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    let forged = post(forged);
    let reply = forged.join().unwrap();
    assert_eq!(
        reply.status, 400,
        "a bad signature is refused: {}",
        reply.body
    );
    let ents = store
        .entitlements(&org, true)
        .await
        .unwrap()
        .expect("entitlements");
    assert!(
        ents.set
            .unlocks(LeadGeneration, billing::domain::Timestamp::now())
    );
}
