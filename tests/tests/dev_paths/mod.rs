//! What the developer paths (SAM local, scripts/events, cargo lambda watch) have in common:
//! the template's functions, the environment SAM gives each, the ready-to-invoke events, and
//! the real function binaries run as Lambda runs them.

#![allow(dead_code)]

#[path = "../../../bench/src/runtime_api.rs"]
#[allow(dead_code)]
pub mod runtime_api;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pss_billing_tests::template::{Function, declared_env};
use pss_billing_tests::workspace_root;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use runtime_api::{Completion, RuntimeApi};

/// The function's `main.rs` built as a binary of the tests package (see tests/Cargo.toml).
pub fn exe(function: &Function) -> PathBuf {
    PathBuf::from(match function.binary.as_str() {
        "authorizer" => env!("CARGO_BIN_EXE_fn-authorizer"),
        "stripe-webhook" => env!("CARGO_BIN_EXE_fn-stripe-webhook"),
        "billing-services" => env!("CARGO_BIN_EXE_fn-billing-services"),
        "billing-subscription" => env!("CARGO_BIN_EXE_fn-billing-subscription"),
        "billing-invoices" => env!("CARGO_BIN_EXE_fn-billing-invoices"),
        "billing-payment-methods" => env!("CARGO_BIN_EXE_fn-billing-payment-methods"),
        "billing-checkout" => env!("CARGO_BIN_EXE_fn-billing-checkout"),
        "billing-portal" => env!("CARGO_BIN_EXE_fn-billing-portal"),
        "billing-plan" => env!("CARGO_BIN_EXE_fn-billing-plan"),
        "billing-sync" => env!("CARGO_BIN_EXE_fn-billing-sync"),
        "leads" => env!("CARGO_BIN_EXE_fn-leads"),
        "reconcile" => env!("CARGO_BIN_EXE_fn-reconcile"),
        other => panic!("functions/{other} has no binary in tests/Cargo.toml"),
    })
}

pub fn env_local() -> serde_json::Map<String, Json> {
    let text =
        std::fs::read_to_string(workspace_root().join("env.local.json")).expect("env.local.json");
    match serde_json::from_str(&text).expect("env.local.json is JSON") {
        Json::Object(map) => map,
        other => panic!("env.local.json must be an object, not {other}"),
    }
}

/// Exactly what `sam local invoke --env-vars env.local.json` gives each function, computed by
/// SAM itself (tests/emulators/sam_local_env.py) in a clean environment: no shell variable and
/// no AWS profile of the machine running the tests can leak in.
fn sam_local_envs() -> &'static BTreeMap<String, BTreeMap<String, String>> {
    static ENVS: std::sync::OnceLock<BTreeMap<String, BTreeMap<String, String>>> =
        std::sync::OnceLock::new();
    ENVS.get_or_init(|| {
        let root = workspace_root();
        let home = root.join("target/dev-paths-home");
        std::fs::create_dir_all(&home).unwrap();
        let out = Command::new(pss_billing_tests::venv_bin("python"))
            .arg(root.join("tests/emulators/sam_local_env.py"))
            .arg(root.join("template.yaml"))
            .arg(root.join("env.local.json"))
            .current_dir(&root)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env("SAM_CLI_TELEMETRY", "0")
            .output()
            .expect("tests/emulators/sam_local_env.py");
        assert!(
            out.status.success(),
            "SAM could not resolve the environment: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON from sam_local_env.py")
    })
}

/// What `sam local` gives a function. A variable env.local.json sets that the template does not
/// declare for it is silently dropped by SAM: that is a failure here.
pub fn sam_local_env(template: &Yaml, function: &Function) -> BTreeMap<String, String> {
    let declared = declared_env(template, &function.logical_id);
    let overrides = env_local()
        .get(&function.logical_id)
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_else(|| panic!("env.local.json has no {}", function.logical_id));
    let env = sam_local_envs()
        .get(&function.logical_id)
        .unwrap_or_else(|| panic!("SAM does not know {}", function.logical_id))
        .clone();
    for (name, value) in overrides {
        assert!(
            declared.contains_key(&name),
            "env.local.json sets {name} for {}, but template.yaml does not declare it there: \
             sam local would ignore it",
            function.logical_id
        );
        assert_eq!(
            env.get(&name).map(String::as_str),
            value.as_str(),
            "{}: SAM's value of {name}",
            function.logical_id
        );
    }
    env
}

/// Runs `scripts/events` into `out` with extra arguments; panics on failure.
pub fn run_scripts_events(out: &Path, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg(workspace_root().join("scripts/events"))
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("python3 scripts/events");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "scripts/events failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The event files of one function in a directory laid out like events/, sorted by name.
pub fn event_files(dir: &Path, function: &str) -> Vec<(String, Vec<u8>)> {
    let folder = dir.join(function);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// A function binary running against its own Runtime API emulator, as one Lambda sandbox.
pub struct Sandbox {
    pub api: RuntimeApi,
    child: Child,
    pub log: PathBuf,
}

impl Sandbox {
    /// Starts `exe` with exactly `env` (nothing inherited from the test process).
    pub async fn start(name: &str, exe: &Path, env: &BTreeMap<String, String>) -> Sandbox {
        let api = RuntimeApi::start().await.expect("runtime API emulator");
        let dir = workspace_root().join("target/dev-paths-logs");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(exe)
            .env_clear()
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        Sandbox { api, child, log }
    }

    /// One invocation; `Err` carries an init error or a timeout, with the function's log.
    pub async fn invoke(&self, event: &[u8]) -> Result<Completion, String> {
        let invocation = self.api.queue(event.to_vec());
        self.api
            .wait(invocation, Duration::from_secs(30))
            .await
            .map_err(|e| {
                format!(
                    "{e}\n--- function log ---\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An API Gateway / Function URL proxy answer: status and JSON body.
pub fn http_answer(completion: &Completion) -> (u16, Json) {
    assert!(
        completion.ok,
        "the function failed: {}",
        String::from_utf8_lossy(&completion.body)
    );
    let response: Json = serde_json::from_slice(&completion.body).expect("JSON response");
    let status = response["statusCode"].as_u64().expect("statusCode") as u16;
    let body = response["body"].as_str().unwrap_or("null");
    let body = serde_json::from_str(body).unwrap_or(Json::String(body.to_owned()));
    (status, body)
}
