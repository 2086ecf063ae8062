//! Running a function process behind the Runtime API emulator: cold starts (a new process per
//! run, timed from exec to its first response) and a warm run (one process, many invocations).

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;

use crate::runtime_api::{Completion, RuntimeApi};
use crate::setup::forget_event;
use crate::stats::Samples;

/// Builds the event for one invocation from a unique tag; returns the event and, for webhook
/// events, the event id whose marker is deleted afterwards (untimed; see `forget_event`).
pub type EventFn = Box<dyn Fn(&str) -> (Vec<u8>, Option<String>)>;

pub struct FunctionSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub event: EventFn,
    /// Whether a response is the expected success.
    pub check: fn(&[u8]) -> bool,
}

#[derive(Debug, Default)]
pub struct ColdResult {
    /// exec -> first response posted.
    pub total: Samples,
    /// exec -> first `GET /invocation/next` (init done).
    pub init: Samples,
    pub failures: usize,
    pub first_error: Option<String>,
}

#[derive(Debug, Default)]
pub struct WarmResult {
    /// Event queued -> response posted, per invocation.
    pub latency: Samples,
    pub failures: usize,
    pub first_error: Option<String>,
    /// VmHWM of the process after the run, in KiB.
    pub peak_rss_kib: u64,
    pub capped: bool,
}

const INVOKE_TIMEOUT: Duration = Duration::from_secs(20);

fn log_path(name: &str) -> PathBuf {
    let dir = pss_local::emulators::workspace_root().join("target/bench-logs");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{name}.log"))
}

fn spawn(spec: &FunctionSpec, api: &RuntimeApi) -> Result<Child, String> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(&spec.name))
        .map_err(|e| format!("log file: {e}"))?;
    let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
    Command::new(&spec.program)
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", spec.program.display()))
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for one invocation while watching that the process is still alive.
async fn complete(
    api: &RuntimeApi,
    invocation: crate::runtime_api::Invocation,
    child: &mut Child,
    name: &str,
) -> Result<Completion, String> {
    let wait = api.wait(invocation, INVOKE_TIMEOUT);
    tokio::pin!(wait);
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    loop {
        tokio::select! {
            done = &mut wait => return done,
            _ = tick.tick() => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "{name} exited with {status} (see {})",
                        log_path(name).display()
                    ));
                }
            }
        }
    }
}

enum Judged {
    /// Answered, and the answer is the expected success.
    Good(Completion),
    /// Answered with something else (recorded as a failure).
    Wrong,
    /// No answer (recorded as a failure).
    Broken,
}

/// Sorts an invocation's outcome, counting failures and keeping the first one's description.
fn judge(
    outcome: Result<Completion, String>,
    check: fn(&[u8]) -> bool,
    failures: &mut usize,
    first_error: &mut Option<String>,
) -> Judged {
    let (judged, error) = match outcome {
        Ok(c) if c.ok && check(&c.body) => return Judged::Good(c),
        Ok(c) => (Judged::Wrong, describe_failure(&c)),
        Err(e) => (Judged::Broken, e),
    };
    *failures += 1;
    first_error.get_or_insert(error);
    judged
}

fn describe_failure(completion: &Completion) -> String {
    let body = String::from_utf8_lossy(&completion.body);
    let kind = if completion.ok { "response" } else { "error" };
    format!("{kind}: {}", body.chars().take(300).collect::<String>())
}

/// `runs` cold starts, each a new process and a new emulator.
pub async fn cold(spec: &FunctionSpec, runs: usize, client: &Client) -> ColdResult {
    let mut total = Vec::with_capacity(runs);
    let mut init = Vec::with_capacity(runs);
    let mut result = ColdResult::default();
    let started = Instant::now();
    for run in 0..runs {
        let api = match RuntimeApi::start().await {
            Ok(api) => api,
            Err(e) => {
                result.failures += 1;
                result.first_error.get_or_insert(format!("emulator: {e}"));
                continue;
            }
        };
        let (event, forget) = (spec.event)(&format!("cold{run}"));
        let invocation = api.queue(event);
        let exec = Instant::now();
        let mut child = match spawn(spec, &api) {
            Ok(child) => child,
            Err(e) => {
                result.failures += 1;
                result.first_error.get_or_insert(e);
                break;
            }
        };
        let outcome = complete(&api, invocation, &mut child, &spec.name).await;
        let first_poll = api.first_poll();
        stop(child);
        if let Judged::Good(c) = judge(
            outcome,
            spec.check,
            &mut result.failures,
            &mut result.first_error,
        ) {
            total.push(c.at - exec);
            if let Some(t) = first_poll {
                init.push(t - exec);
            }
        }
        if let Some(id) = forget {
            forget_event(client, &id).await;
        }
    }
    let wall = started.elapsed();
    result.total = Samples::new(total, wall);
    result.init = Samples::new(init, wall);
    result
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// One process serving `warmup` untimed invocations, then up to `count` timed ones within
/// `cap` of wall time.
pub async fn warm(
    spec: &FunctionSpec,
    warmup: usize,
    count: usize,
    cap: Duration,
    client: &Client,
) -> WarmResult {
    let mut result = WarmResult::default();
    let api = match RuntimeApi::start().await {
        Ok(api) => api,
        Err(e) => {
            result.first_error = Some(format!("emulator: {e}"));
            return result;
        }
    };
    let mut child = match spawn(spec, &api) {
        Ok(child) => child,
        Err(e) => {
            result.first_error = Some(e);
            return result;
        }
    };
    let mut samples = Vec::with_capacity(count);
    let started = Instant::now();
    let mut timed_wall = Duration::ZERO;
    for i in 0..warmup + count {
        if i >= warmup && started.elapsed() > cap {
            result.capped = true;
            break;
        }
        let (event, forget) = (spec.event)(&format!("warm{i}"));
        let invocation = api.queue(event);
        let queued = invocation.queued_at;
        let outcome = complete(&api, invocation, &mut child, &spec.name).await;
        match judge(
            outcome,
            spec.check,
            &mut result.failures,
            &mut result.first_error,
        ) {
            Judged::Good(c) if i >= warmup => {
                samples.push(c.at - queued);
                timed_wall += c.at - queued;
            }
            Judged::Good(_) | Judged::Wrong => {}
            // The process is gone or stuck: later invocations would only time out.
            Judged::Broken => break,
        }
        if let Some(id) = forget {
            forget_event(client, &id).await;
        }
    }
    result.peak_rss_kib = peak_rss_kib(child.id());
    stop(child);
    result.latency = Samples::new(samples, timed_wall);
    result
}
