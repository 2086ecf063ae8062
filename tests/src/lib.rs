//! Integration-test harness: starts the real emulators (moto for DynamoDB, localstripe and a
//! fixture-backed fake Stripe) on free loopback ports, once per test binary, and stops them
//! when the test process ends (see emulators/supervise.py). Nothing needs to be running before.

pub mod build;
pub mod http;
pub mod rig;
pub mod server;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use billing::store::BillingStore;
use billing::store::table::create_table;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// A program of the emulator venv (`PSS_VENV`, default `<workspace>/.venv`). Missing emulators
/// fail the test loudly: an integration test must never pass by skipping.
pub fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("PSS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"));
    let path = venv.join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `scripts/bootstrap` to install the emulators",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running emulator process. Its supervisor stops it when this process exits.
pub struct Emulator {
    pub url: String,
    pub port: u16,
    _child: Mutex<Child>,
}

fn start(program: PathBuf, args: &[String], port: u16) -> Emulator {
    let supervisor = workspace_root().join("tests/emulators/supervise.py");
    let mut child = Command::new(venv_bin("python"))
        .arg(supervisor)
        .arg(&program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!("{} exited with {status}: {err}", program.display());
        }
        assert!(
            Instant::now() < deadline,
            "{} did not listen on {port}",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Drain stderr in the background so a chatty emulator never blocks on a full pipe.
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    }
    Emulator {
        url: format!("http://127.0.0.1:{port}"),
        port,
        _child: Mutex::new(child),
    }
}

/// moto server (DynamoDB), shared by the tests of one binary; each test uses its own table.
/// Served one request at a time (see emulators/moto_serial.py).
pub fn moto() -> &'static Emulator {
    static MOTO: OnceLock<Emulator> = OnceLock::new();
    MOTO.get_or_init(|| {
        let port = free_port();
        let script = workspace_root().join("tests/emulators/moto_serial.py");
        start(
            venv_bin("python"),
            &[
                script.display().to_string(),
                "--port".into(),
                port.to_string(),
            ],
            port,
        )
    })
}

/// localstripe (Stripe, 2017 object shapes, signed webhooks).
pub fn localstripe() -> &'static Emulator {
    static LOCALSTRIPE: OnceLock<Emulator> = OnceLock::new();
    LOCALSTRIPE.get_or_init(|| {
        let port = free_port();
        start(
            venv_bin("localstripe"),
            &["--port".into(), port.to_string(), "--from-scratch".into()],
            port,
        )
    })
}

/// The fixture-backed Stripe for what localstripe lacks (tests/emulators/fake_stripe.py).
pub fn fake_stripe() -> &'static Emulator {
    static FAKE: OnceLock<Emulator> = OnceLock::new();
    FAKE.get_or_init(|| {
        let port = free_port();
        let script = workspace_root().join("tests/emulators/fake_stripe.py");
        start(
            venv_bin("python"),
            &[
                script.display().to_string(),
                "--port".into(),
                port.to_string(),
            ],
            port,
        )
    })
}

/// A DynamoDB client for an endpoint, with fake credentials (the emulator ignores them).
pub fn dynamo_client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .build();
    Client::from_conf(config)
}

/// A name unique within this test run (tables, orgs, Stripe ids).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on a brand-new table in moto.
pub async fn fresh_store() -> BillingStore {
    let client = dynamo_client(&moto().url);
    let table = unique("billing-");
    create_table(&client, &table)
        .await
        .expect("create table in moto");
    BillingStore::new(client, table)
}
