//! Reconciliation with Stripe (`billing::reconcile`): run by an EventBridge schedule, or by hand
//! as a command.
//!
//! * no argument (Lambda): one run within the invocation's deadline, minus a margin; the next
//!   scheduled run carries on from the stored cursor.
//! * `reconcile --once`: the same single run from a shell (13-minute budget).
//! * `reconcile --pass`: runs until every org has been checked once.
//! * `reconcile replay <event id>` / `reconcile replay --since <unix seconds>`: runs kept
//!   webhook deliveries through the handler again (idempotent: applied events stay applied).
//! * `reconcile migrate-entitlements`: moves entitlements items of a table written before the
//!   access Query to their new sort key (once, right after that deploy).
//! * `reconcile audit --event <event id>` / `reconcile audit --org <org id>`: prints the kept
//!   deliveries as JSON lines (payloads only by event id).
//!
//! Each run logs its report as one JSON line (`reconcile_report`) and its EMF metrics.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use tokio::time::Instant;

use billing::config::Secret;
use billing::domain::{EventId, OrgId, Timestamp};
use billing::reconcile::{ReconcileConfig, Reconciler, Report};
use billing::store::BillingStore;
use billing::sync::Syncer;
use billing::webhook::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_TOLERANCE_SECONDS, WebhookConfig, WebhookHandler,
};

/// Time kept back from the Lambda deadline: the last page of orgs (at most 100 orgs is far
/// more than this at full pace, so pages are small enough to stop in time) and the state write.
const MARGIN: Duration = Duration::from_secs(120);
/// The command's single-run budget, as in Lambda (15 minutes minus the margin).
const COMMAND_BUDGET: Duration = Duration::from_secs(13 * 60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    let aws = billing::config::aws().await;
    let secrets = billing::config::load_secrets(&aws, &[Secret::STRIPE_SECRET_KEY]).await?;
    let syncer = Syncer::from_env(&aws, &secrets)?;
    let livemode = syncer.stripe.livemode();
    // Events re-read from Stripe's API are not signed deliveries: no secret is needed.
    let webhook = WebhookConfig {
        secrets: Vec::new(),
        tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        livemode,
    };
    let reconciler = Reconciler::new(
        WebhookHandler::new(syncer, webhook),
        ReconcileConfig::from_env(livemode)?,
    );
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = args.first().cloned();
    match arg.as_deref() {
        None => {
            let reconciler = &reconciler;
            run(service_fn(
                move |event: LambdaEvent<serde_json::Value>| async move {
                    let left = event
                        .context
                        .deadline()
                        .duration_since(std::time::SystemTime::now())
                        .unwrap_or_default();
                    let report = reconciler
                        .run(Instant::now() + left.saturating_sub(MARGIN))
                        .await?;
                    log(&report);
                    Ok::<_, Error>(serde_json::to_value(&report)?)
                },
            ))
            .await
        }
        Some("--once") => {
            let report = reconciler.run(Instant::now() + COMMAND_BUDGET).await?;
            log(&report);
            Ok(())
        }
        Some("--pass") => {
            let report = reconciler.run_pass().await?;
            log(&report);
            Ok(())
        }
        Some("replay") => replay(&reconciler, &args[1..]).await,
        Some("audit") => audit(&reconciler.handler.syncer().store, &args[1..]).await,
        Some("migrate-entitlements") => {
            let copied = reconciler
                .handler
                .syncer()
                .store
                .migrate_legacy_entitlements()
                .await?;
            println!("entitlements items moved to the access key: {copied}");
            Ok(())
        }
        Some(_) => Err(USAGE.into()),
    }
}

const USAGE: &str = "usage: reconcile [--once | --pass | replay (<event id> | --since <unix seconds>) | audit (--event <event id> | --org <org id>) | migrate-entitlements]";

async fn replay(reconciler: &Reconciler, args: &[String]) -> Result<(), Error> {
    let handler = &reconciler.handler;
    let ids = match args {
        [flag, since] if flag == "--since" => {
            let since: i64 = since.parse().map_err(|_| USAGE)?;
            handler
                .syncer()
                .store
                .events_delivered_since(Timestamp::from_unix(since))
                .await?
        }
        [id] => vec![EventId::parse(id.as_str())?],
        _ => return Err(USAGE.into()),
    };
    // Paced like a run: every replay re-reads its object from Stripe.
    for (id, outcome) in reconciler.replay_kept(&ids).await? {
        println!(
            "{}",
            serde_json::json!({ "replayed": id.as_str(), "outcome": outcome.label() })
        );
    }
    Ok(())
}

async fn audit(store: &BillingStore, args: &[String]) -> Result<(), Error> {
    let deliveries = match args {
        [flag, id] if flag == "--event" => {
            store
                .deliveries_of_event(&EventId::parse(id.as_str())?)
                .await?
        }
        [flag, org] if flag == "--org" => {
            store
                .deliveries_of_org(&OrgId::parse(org.as_str())?, 1_000)
                .await?
        }
        _ => return Err(USAGE.into()),
    };
    for d in deliveries {
        let payload = d
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok());
        println!(
            "{}",
            serde_json::json!({
                "event_id": d.event_id.as_str(), "event_type": d.event_type,
                "api_version": d.api_version, "received_at_micros": d.received_at_micros,
                "outcome": d.outcome, "org_id": d.org_id.as_ref().map(|o| o.as_str()),
                "source": d.source, "payload": payload,
            })
        );
    }
    Ok(())
}

/// The run's report as one INFO line, with the `timestamp` and `level` Lambda's log filter reads.
fn log(report: &Report) {
    let mut fields = serde_json::Map::new();
    fields.insert(
        "reconcile_report".to_owned(),
        serde_json::to_value(report).unwrap_or_default(),
    );
    billing::telemetry::print_json("INFO", fields);
}
