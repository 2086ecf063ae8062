//! The API contract under a third-party fuzzer: schemathesis (pinned in
//! tests/emulators/requirements.txt, installed by scripts/bootstrap) runs every check against a
//! local stack this test starts, once per caller: an Owner token, a Member token, another
//! organization's Owner token, and no token. Any failure fails the test; the generated cases per
//! operation, the checks that did not run and why, and schemathesis's warnings are printed.
//!
//! The document under test is the one the stack serves: openapi.json whose `FrontendUrl`
//! pattern, which admits every origin in the committed file, is narrowed to the stack's own
//! allowlist (`OriginAllowlist::url_pattern`, which tests/tests/openapi.rs proves equal to the
//! allowlist). Reports land in target/schemathesis/<caller>/. `PSS_SEED` replays a seed.

use pss_billing_tests::{EmulatedStack, emulated_stack};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use billing::api::handlers;
use billing::api::leads::MAX_PAGE_SIZE;
use billing::domain::Lead;
use billing::domain::OrgId;
use pss_billing_tests::fake_subscribe;
use pss_local::emulators::{venv_bin, workspace_root};
use pss_local::http::{blocking, request};
use pss_local::stack::{self};
use serde_json::Value;

/// Checks switched off, where, and why. Everything else runs (`[checks] enabled = true`, the
/// configuration-file form of `--checks all`, which unlike the flag can be narrowed per
/// operation).
const SKIPPED_CHECKS: &[(&str, &str, &str)] = &[(
    "unsupported_method",
    "^/api/billing/(services|openapi\\.json)$",
    "API Gateway (REST) answers a method a resource does not declare with 403 Missing \
     Authentication Token, never 405 with Allow; schemathesis accepts a 401/403 there only for \
     operations that declare security, and these two are public. (The check still runs on every \
     other operation, and tests/tests/openapi.rs pins the 403 body to template.yaml.)",
)];

/// Fewer fuzzing examples than the default 100 keep the four runs within about two minutes on
/// two cores; the stateful phase adds its own cases on top.
const MAX_EXAMPLES: u32 = 60;
/// Over the four callers. An operation without parameters or body (the catalog, this document,
/// the overview, the payment methods) has a single well-formed request per caller, so its cases
/// come from the stateful phase following the document's links.
const MIN_CASES_PER_OPERATION: usize = 50;
/// The operations with neither parameters nor body: their cases come from the stateful phase
/// alone, whose share of the run shrinks as operations are added, so they need fewer.
const PARAMETERLESS: [&str; 4] = [
    "GET /api/billing/services",
    "GET /api/billing/openapi.json",
    "GET /api/billing/subscription",
    "GET /api/billing/payment-methods",
];
const MIN_CASES_PARAMETERLESS: usize = 20;
const DEFAULT_SEED: &str = "15";

fn config_toml() -> String {
    let mut toml = format!(
        "# Written by tests/tests/schemathesis.rs.\n[checks]\nenabled = true\n\n\
         [generation]\nmax-examples = {MAX_EXAMPLES}\n"
    );
    for (check, paths, reason) in SKIPPED_CHECKS {
        toml.push_str(&format!(
            "\n# {reason}\n[[operations]]\ninclude-path-regex = {}\nchecks.{check}.enabled = false\n",
            serde_json::to_string(paths).unwrap()
        ));
    }
    toml
}

/// The document the stack serves (`GET /api/billing/openapi.json`): openapi.json with
/// `FrontendUrl` narrowed to the stack's origins.
fn schema_for(stack: &stack::LocalStack) -> Value {
    let served = handlers::openapi(&stack.gateway.api);
    serde_json::from_slice(billing::http::body_bytes(served.body())).unwrap()
}

fn operations(doc: &Value) -> BTreeSet<String> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_ascii_uppercase()))
        })
        .collect()
}

/// What one run did, read from its NDJSON event stream.
#[derive(Default)]
struct Run {
    /// Generated cases per `METHOD /path` (undeclared methods included).
    cases: BTreeMap<String, usize>,
    /// Check outcomes: (check, status) -> count.
    checks: BTreeMap<(String, String), usize>,
    /// Checks that ran per operation.
    ran: BTreeMap<String, BTreeSet<String>>,
    /// Failed checks: (operation, check) -> count.
    failures: BTreeMap<(String, String), usize>,
    /// Scenarios skipped: (phase, label, reason).
    skipped: BTreeSet<(String, String, String)>,
}

fn read_events(path: &Path) -> Run {
    let mut run = Run::default();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).expect("an NDJSON event");
        let Some(finished) = event.get("ScenarioFinished") else {
            continue;
        };
        let phase = finished["phase"].as_str().unwrap_or_default().to_owned();
        let recorder = &finished["recorder"];
        if finished["status"] == "skip" {
            run.skipped.insert((
                phase.clone(),
                recorder["label"].as_str().unwrap_or("?").to_owned(),
                finished["skip_reason"]
                    .as_str()
                    .unwrap_or("(schemathesis gives no reason)")
                    .to_owned(),
            ));
        }
        let cases = recorder["cases"].as_object();
        let mut label_of = BTreeMap::new();
        for (id, case) in cases.into_iter().flatten() {
            let label = format!(
                "{} {}",
                case["value"]["method"].as_str().unwrap_or("?"),
                case["value"]["path"].as_str().unwrap_or("?")
            );
            *run.cases.entry(label.clone()).or_default() += 1;
            label_of.insert(id.clone(), label);
        }
        for (id, checks) in recorder["checks"].as_object().into_iter().flatten() {
            let label = label_of.get(id).cloned().unwrap_or_else(|| "?".to_owned());
            for check in checks.as_array().into_iter().flatten() {
                let name = check["name"].as_str().unwrap_or("?").to_owned();
                let status = check["status"].as_str().unwrap_or("?").to_owned();
                *run.checks
                    .entry((name.clone(), status.clone()))
                    .or_default() += 1;
                if status == "failure" {
                    *run.failures
                        .entry((label.clone(), name.clone()))
                        .or_default() += 1;
                }
                run.ran.entry(label.clone()).or_default().insert(name);
            }
        }
    }
    run
}

fn schemathesis(
    schema: &Path,
    config: &Path,
    base_url: &str,
    token: Option<&str>,
    reports: &Path,
    seed: &str,
) -> (bool, String) {
    // One worker: hypothesis parses lambda sources with `ast.parse`, which CPython 3.11 does not
    // make safe across threads ("AST constructor recursion depth mismatch" now and then).
    let mut command = Command::new(venv_bin("st"));
    command
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(schema)
        .args(["--url", base_url, "--workers", "1", "--seed", seed])
        .args(["--continue-on-failure", "--no-color"])
        .args(["--report", "ndjson", "--report-dir"])
        .arg(reports)
        // schemathesis keeps a cache directory in its working directory.
        .current_dir(reports.parent().unwrap_or(reports))
        .env("NO_COLOR", "1");
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run schemathesis (run scripts/bootstrap): {e}"));
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn ndjson_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .unwrap_or_else(|| panic!("no NDJSON report in {}", dir.display()))
}

/// The demo org (the Owner and Member callers) pays for LeadGeneration, as Stripe would report
/// it through its webhook, and has a few leads: the paywalled route, the portal, invoices and
/// the 409 of a second checkout are then reached, not only their refusals.
async fn unlock_lead_generation(stack: &stack::LocalStack, fake_url: &str) {
    let url = format!("{}/api/billing/checkout", stack.base_url);
    let body = serde_json::json!({"services": ["LeadGeneration"], "interval": "month",
        "successUrl": "http://localhost:5173/billing/done", "cancelUrl": "http://localhost:5173/billing"})
    .to_string();
    let auth = format!("Bearer {}", stack.owner_token);
    let reply = blocking(move || {
        request(
            "POST",
            &url,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    })
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let org = OrgId::parse(stack::DEMO_ORG).unwrap();
    let store = &stack.gateway.syncer.store;
    let profile = store
        .billing_profile(&org)
        .await
        .unwrap()
        .expect("a customer");
    // In the fixture Stripe, which owns subscriptions (localstripe holds one item each), so
    // the plan's preview and additions have a current-shape subscription to work on.
    fake_subscribe(
        fake_url,
        profile.customer_id.as_str(),
        "leadgen_monthly",
        stack::DEMO_ORG,
    )
    .await;
    // More leads than the largest page, so every first page has a `nextCursor` for the
    // stateful phase's next-page link to follow.
    for i in 0..=MAX_PAGE_SIZE {
        let lead = Lead {
            id: format!("lead_{i:03}"),
            name: Some(format!("Lead {i}")),
            email: None,
            company: None,
            source: None,
            status: None,
            score: None,
            created_at: None,
        };
        store.put_lead(&org, &lead).await.unwrap();
    }
    let leads = format!("{}/api/leads", stack.base_url);
    let auth = format!("Bearer {}", stack.member_token);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (leads, auth) = (leads.clone(), auth.clone());
        let reply =
            blocking(move || request("GET", &leads, &[("Authorization", &auth)], b"")).await;
        if reply.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "LeadGeneration never unlocked: {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_holds_its_contract_under_schemathesis() {
    let EmulatedStack {
        stack,
        moto: _moto,
        localstripe: _localstripe,
        fake,
    } = emulated_stack("pss-billing-schemathesis", Vec::new()).await;

    // The stack answers an undeclared method as API Gateway does, without the authorizer.
    let trace = format!("{}/api/billing/services", stack.base_url);
    let reply = blocking(move || request("TRACE", &trace, &[], b"")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (403, pss_local::gateway::MISSING_AUTHENTICATION_TOKEN_BODY)
    );

    unlock_lead_generation(&stack, &fake.url).await;

    let out = workspace_root().join("target/schemathesis");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let doc = schema_for(&stack);
    let schema = out.join("openapi.json");
    std::fs::write(&schema, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let config = out.join("schemathesis.toml");
    std::fs::write(&config, config_toml()).unwrap();
    let seed = std::env::var("PSS_SEED").unwrap_or_else(|_| DEFAULT_SEED.to_owned());
    let declared = operations(&doc);

    let other_org = stack::dev_token("org_schemathesis_other", "user_other", "Owner");
    let callers: Vec<(&str, Option<String>)> = vec![
        ("owner", Some(stack.owner_token.clone())),
        ("member", Some(stack.member_token.clone())),
        ("other-org-owner", Some(other_org)),
        ("no-token", None),
    ];

    let mut problems = Vec::new();
    let mut summary = String::new();
    let mut suite_cases: BTreeMap<String, usize> = BTreeMap::new();
    for (caller, token) in callers {
        let reports = out.join(caller);
        let (schema, config, base, reports_dir, run_seed) = (
            schema.clone(),
            config.clone(),
            stack.base_url.clone(),
            reports.clone(),
            seed.clone(),
        );
        let started = std::time::Instant::now();
        let (ok, output) = blocking(move || {
            schemathesis(
                &schema,
                &config,
                &base,
                token.as_deref(),
                &reports_dir,
                &run_seed,
            )
        })
        .await;
        let elapsed = started.elapsed().as_secs();
        let run = read_events(&ndjson_in(&reports));

        summary.push_str(&format!(
            "\n== schemathesis as {caller} (seed {seed}, {elapsed} s): cases per operation\n"
        ));
        let mut total = 0;
        for operation in &declared {
            let n = run.cases.get(operation).copied().unwrap_or(0);
            total += n;
            summary.push_str(&format!("  {n:>5}  {operation}\n"));
            *suite_cases.entry(operation.clone()).or_default() += n;
        }
        let undeclared: usize = run
            .cases
            .iter()
            .filter(|(op, _)| !declared.contains(*op))
            .map(|(_, n)| n)
            .sum();
        summary.push_str(&format!(
            "  {total:>5}  total (+ {undeclared} requests with undeclared methods)\n  checks:"
        ));
        let mut by_check: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((check, status), n) in &run.checks {
            by_check
                .entry(check.as_str())
                .or_default()
                .push(format!("{n} {status}"));
        }
        for (check, outcomes) in &by_check {
            summary.push_str(&format!(" {check} ({})", outcomes.join(", ")));
        }
        summary.push('\n');
        // Every check is either run on an operation or named here with the reason.
        let all_checks: BTreeSet<&str> = by_check.keys().copied().collect();
        for operation in &declared {
            let ran = run.ran.get(operation).cloned().unwrap_or_default();
            for check in &all_checks {
                if ran.contains(*check) {
                    continue;
                }
                let reason = SKIPPED_CHECKS
                    .iter()
                    .find(|(name, paths, _)| {
                        name == check
                            && regex_lite::Regex::new(paths)
                                .unwrap()
                                .is_match(operation.split_once(' ').unwrap().1)
                    })
                    .map(|(_, _, reason)| *reason)
                    .unwrap_or("no generated case of this operation reached it");
                summary.push_str(&format!("  skipped: {check} on {operation}: {reason}\n"));
            }
        }
        for (phase, label, reason) in &run.skipped {
            summary.push_str(&format!(
                "  skipped scenario: {phase} phase, {label}: {reason}\n"
            ));
        }
        if let Some(warnings) = output.split("WARNINGS").nth(1) {
            let warnings = warnings.split("SUMMARY").next().unwrap_or_default();
            for line in warnings
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('=') && !l.starts_with('💡'))
            {
                summary.push_str(&format!("  schemathesis warning: {line}\n"));
            }
        }
        for ((operation, check), n) in &run.failures {
            problems.push(format!("{caller}: {operation}: {check} failed {n} time(s)"));
        }
        if !ok {
            problems.push(format!(
                "{caller}: schemathesis exited with failures; its report:\n{output}"
            ));
        }
    }
    summary.push_str("\n== schemathesis, all four callers: cases per operation\n");
    for (operation, n) in &suite_cases {
        summary.push_str(&format!("  {n:>5}  {operation}\n"));
        let floor = if PARAMETERLESS.contains(&operation.as_str()) {
            MIN_CASES_PARAMETERLESS
        } else {
            MIN_CASES_PER_OPERATION
        };
        if *n < floor {
            problems.push(format!("{operation}: only {n} generated cases (< {floor})"));
        }
    }
    summary.push_str(&format!(
        "  {:>5}  total, {} failure(s)\n",
        suite_cases.values().sum::<usize>(),
        problems.len()
    ));
    println!("{summary}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
