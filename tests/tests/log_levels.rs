//! Every line the functions print survives Lambda's application log-level filter exactly when
//! its level allows (tests/src/lambda_logs.rs holds AWS's documented rules): each line kind at
//! each `LogLevel` value, and the real webhook binary's output at each value, where the EMF
//! metric lines (every PssBilling alarm's data) must reach CloudWatch even at WARN and ERROR.

mod dev_paths;

use billing::metrics;
use billing::reconcile::Report;
use billing::webhook::WebhookSecret;
use dev_paths::{Sandbox, event_files, exe, http_answer, run_scripts_events, sam_local_env};
use pss_billing_tests::lambda_logs::{LEVELS, Level, declared, level_of, sent};
use pss_billing_tests::template::{self, functions};
use pss_billing_tests::{dynamo_client, fake_stripe, moto, workspace_root};
use pss_local::stack::{DEFAULT_MOTO_PORT, DEFAULT_STRIPE_PORT};
use serde_json::{Map, Value, json};

/// Lines of each EMF formatter: each must reach CloudWatch at every level.
fn emf_lines() -> Vec<String> {
    let mut lines = vec![
        metrics::webhook_line("invoice.paid", "processed", 3.0, 1_700_000_000_000),
        metrics::webhook_line("-", "rejected", 0.1, 1_700_000_000_000),
        metrics::webhook_line("invoice.paid", "parked", 3.0, 1_700_000_000_000),
        metrics::stripe_error_line(
            &billing::stripe::StripeApiError::Rejected {
                status: 401,
                code: None,
            },
            1_700_000_000_000,
        ),
        metrics::authorizer_line("error", 1_700_000_000_000),
        metrics::authorizer_cache_line(false, 1_700_000_000_000),
    ];
    lines.extend(billing::reconcile::report::metric_lines(
        &Report::default(),
        1_700_000_000_000,
    ));
    lines.push(metrics::count_line(
        metrics::STRIPE_ACCOUNT_MISMATCH,
        1_700_000_000_000,
    ));
    lines
}

#[test]
fn each_line_kind_reaches_cloudwatch_exactly_when_its_level_allows() {
    for setting in LEVELS {
        // tracing events at each level, through the functions' own subscriber with Lambda's
        // AWS_LAMBDA_LOG_LEVEL (the code filters first, then Lambda does).
        let lines = billing::telemetry::lines_logged(Some(setting.name()), || {
            tracing::trace!(kind = "trace", "a trace line");
            tracing::debug!(kind = "debug", "a debug line");
            tracing::info!(kind = "info", "an info line");
            tracing::warn!(kind = "warn", "a warning");
            tracing::error!(kind = "error", "an error");
        });
        for line in &lines {
            assert_eq!(
                Some(level_of(line)),
                declared(line),
                "Lambda reads another level than the line's own: {line}"
            );
        }
        for level in [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
        ] {
            let kind = level.name().to_ascii_lowercase();
            let kept = lines
                .iter()
                .filter(|l| l.contains(&format!(r#""kind":"{kind}""#)))
                .filter(|l| sent(l, setting))
                .count();
            assert_eq!(
                kept,
                usize::from(level >= setting),
                "a {kind} line at LogLevel {}: {lines:?}",
                setting.name()
            );
        }
        // EMF metric lines: always, or the alarms go blind.
        for line in emf_lines() {
            assert!(
                sent(&line, setting),
                "Lambda drops an EMF line at LogLevel {}: {line}",
                setting.name()
            );
        }
        // The reconciliation report, an INFO line that is not a tracing event.
        let mut report = Map::new();
        report.insert("reconcile_report".into(), json!({"orgs_checked": 1}));
        let line = billing::telemetry::json_line("INFO", 1_700_000_000_000, report);
        assert_eq!(level_of(&line), Level::Info);
        assert_eq!(sent(&line, setting), Level::Info >= setting);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_binary_keeps_its_metrics_warnings_and_errors_at_every_log_level() {
    let t = template::load();
    let hook = functions(&t)
        .into_iter()
        .find(|f| f.binary == "stripe-webhook")
        .unwrap();
    let stripe = &fake_stripe().url;
    pss_billing_tests::seed_sample_stripe(stripe).await;
    // env.local.json's environment under `sam local`, with this test's emulators.
    let mut env = sam_local_env(&t, &hook);
    let local = |port: u16| format!("http://127.0.0.1:{port}");
    assert_eq!(env["AWS_ENDPOINT_URL_DYNAMODB"], local(DEFAULT_MOTO_PORT));
    assert_eq!(env["STRIPE_API_BASE"], local(DEFAULT_STRIPE_PORT));
    env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), moto().url.clone());
    env.insert("STRIPE_API_BASE".into(), stripe.clone());
    billing::store::table::create_table(&dynamo_client(&moto().url), &env["BILLING_TABLE"])
        .await
        .expect("table");
    let out = workspace_root().join("target/log-level-events");
    run_scripts_events(&out, &[]);
    let (_, paid) = event_files(&out, "stripe-webhook")
        .into_iter()
        .find(|(n, _)| n == "invoice.paid")
        .unwrap();
    let secret = WebhookSecret::new(&env["STRIPE_WEBHOOK_SECRETS"]);
    let resigned = |event_id: &str, forged: bool| -> Vec<u8> {
        let mut request: Value = serde_json::from_slice(&paid).unwrap();
        let mut body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
        body["id"] = event_id.into();
        let body = body.to_string();
        let signer = if forged {
            WebhookSecret::new("whsec_forged")
        } else {
            secret.clone()
        };
        let now = billing::domain::Timestamp::now().unix();
        request["headers"]["stripe-signature"] = signer.sign(now, body.as_bytes()).into();
        request["body"] = body.into();
        serde_json::to_vec(&request).unwrap()
    };

    let mut runs = Vec::new();
    for setting in LEVELS {
        let name = format!("log-level-{}", setting.name());
        env.insert("AWS_LAMBDA_LOG_LEVEL".into(), setting.name().into());
        let sandbox = Sandbox::start(&name, &exe(&hook), &env).await;
        let id = |what: &str| pss_billing_tests::unique(&format!("evt_{what}_"));
        // Applied, refused (a warning), and failed (Stripe down: an error, retried by Stripe).
        let (status, body) =
            http_answer(&sandbox.invoke(&resigned(&id("ok"), false)).await.unwrap());
        assert_eq!(status, 200, "{body}");
        let (status, body) = http_answer(
            &sandbox
                .invoke(&resigned(&id("forged"), true))
                .await
                .unwrap(),
        );
        assert_eq!(status, 400, "{body}");
        let fail = format!("{stripe}/_test/fail");
        let reply = pss_billing_tests::http::blocking(move || {
            pss_billing_tests::http::post_json(&fail, &json!({"status": 503, "count": 2}))
        })
        .await;
        assert_eq!(reply.status, 200);
        let (status, body) =
            http_answer(&sandbox.invoke(&resigned(&id("down"), false)).await.unwrap());
        assert_eq!(status, 503, "{body}");
        let log = sandbox.log.clone();
        drop(sandbox);
        runs.push((setting, std::fs::read_to_string(&log).unwrap()));
    }
    let lines_of = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    // The metrics first: what the alarms see.
    for (setting, text) in &runs {
        let kept: Vec<String> = lines_of(text)
            .into_iter()
            .filter(|l| sent(l, *setting))
            .collect();
        let outcomes: Vec<String> = kept
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("_aws").is_some() && v.get(metrics::WEBHOOK_EVENTS).is_some())
            .map(|v| v["Outcome"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            outcomes.len(),
            3,
            "at LogLevel {} CloudWatch gets {outcomes:?} of the three deliveries' WebhookEvents \
             lines: the alarms on them see nothing. Log:\n{text}",
            setting.name()
        );
        assert!(
            outcomes.contains(&"rejected".to_owned()) && outcomes.contains(&"failed".to_owned())
        );
    }
    // Then the warning and the error, each where its level allows.
    for (setting, text) in &runs {
        let kept: Vec<String> = lines_of(text)
            .into_iter()
            .filter(|l| sent(l, *setting))
            .collect();
        for (level, what) in [
            (Level::Warn, "the refusal's warning"),
            (Level::Error, "the failure's error"),
        ] {
            let reached = kept
                .iter()
                .any(|l| declared(l) == Some(level) && !l.contains("\"_aws\""));
            assert_eq!(
                reached,
                level >= *setting,
                "{what} at LogLevel {}. Log:\n{text}",
                setting.name()
            );
        }
    }
    // And every line: Lambda reads the level the line says it has.
    for (_, text) in &runs {
        for line in lines_of(text) {
            assert_eq!(
                Some(level_of(&line)),
                declared(&line),
                "Lambda would read this line as {:?}: {line}",
                level_of(&line)
            );
        }
    }
}
