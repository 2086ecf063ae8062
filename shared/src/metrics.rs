//! CloudWatch metrics as Embedded Metric Format (EMF) log lines: one JSON object per line on
//! stdout, which CloudWatch Logs turns into metrics. No API call, no permission beyond the
//! function's logs, nothing on the hot path but a formatted line.
//!
//! The formatters are pure (`*_line`, unit-tested); `emit` only prints. Dimension values are
//! always from small fixed sets (outcomes, decisions, HTTP statuses, drift kinds) or from a
//! verified Stripe event's type: never an id, never anything a caller controls.

use serde_json::{Map, Value, json};

use crate::stripe::StripeApiError;

/// The CloudWatch namespace of every metric of this service.
pub const NAMESPACE: &str = "PssBilling";

pub const WEBHOOK_EVENTS: &str = "WebhookEvents";
pub const WEBHOOK_DURATION: &str = "WebhookDuration";
pub const PARKED_EVENTS: &str = "ParkedEvents";
pub const STRIPE_ERRORS: &str = "StripeErrors";
pub const AUTHORIZER_DECISIONS: &str = "AuthorizerDecisions";
pub const AUTHORIZER_CACHE_HITS: &str = "AuthorizerCacheHits";
pub const AUTHORIZER_CACHE_MISSES: &str = "AuthorizerCacheMisses";
pub const RECONCILE_DRIFT_FOUND: &str = "ReconcileDriftFound";
pub const RECONCILE_DRIFT_REPAIRED: &str = "ReconcileDriftRepaired";
pub const RECONCILE_ORG_ERRORS: &str = "ReconcileOrgErrors";
pub const RECONCILE_PARKED_BACKLOG: &str = "ReconcileParkedBacklog";
pub const RECONCILE_ORGS_CHECKED: &str = "ReconcileOrgsChecked";
/// A Stripe-calling function refused its key: it belongs to another Stripe account.
pub const STRIPE_ACCOUNT_MISMATCH: &str = "StripeAccountMismatch";
/// Stripe answered 404 for an object with nothing else confirming its deletion (no deletion
/// event, no `deleted: true`): almost only a key of another account, so nothing was ended.
pub const STRIPE_NOT_FOUND_UNCONFIRMED: &str = "StripeNotFoundUnconfirmed";
/// Checkout Sessions by `Outcome`: `created` (the API made one), `completed` (its
/// `checkout.session.completed` event was processed), `expired` (its
/// `checkout.session.expired` event was). The checkout success rate is
/// completed ÷ (completed + expired).
pub const CHECKOUT_SESSIONS: &str = "CheckoutSessions";

/// The `Outcome` values of [`CHECKOUT_SESSIONS`].
pub const CHECKOUT_OUTCOMES: [&str; 3] = ["created", "completed", "expired"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One metric directive: metrics that share the same dimension sets.
#[derive(Debug, Clone)]
pub struct Directive<'a> {
    /// Each inner list is one dimension set (an empty one: the metric without dimensions).
    pub dimension_sets: &'a [&'a [&'a str]],
    pub metrics: &'a [(&'a str, f64, Unit)],
}

/// One EMF line: the `_aws` metadata, then every dimension and metric value as a top-level
/// member, as the specification requires; and Lambda's `timestamp` (RFC 3339, the same instant
/// as `_aws.Timestamp`) and `level` ([`crate::telemetry::METRICS_LEVEL`]), without which Lambda's
/// log-level filter takes the line for INFO and drops it at WARN and above.
pub fn line(
    directives: &[Directive<'_>],
    dimensions: &[(&str, &str)],
    timestamp_ms: i64,
) -> String {
    let mut root = Map::new();
    let metrics: Vec<Value> = directives
        .iter()
        .map(|d| {
            json!({
                "Namespace": NAMESPACE,
                "Dimensions": d.dimension_sets,
                "Metrics": d.metrics.iter().map(|(name, _, unit)| {
                    json!({ "Name": name, "Unit": unit.as_str() })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    root.insert(
        "_aws".to_owned(),
        json!({ "Timestamp": timestamp_ms, "CloudWatchMetrics": metrics }),
    );
    for (name, value) in dimensions {
        root.insert((*name).to_owned(), Value::from(*value));
    }
    for d in directives {
        for (name, value, _) in d.metrics {
            root.insert((*name).to_owned(), json!(value));
        }
    }
    crate::telemetry::json_line(crate::telemetry::METRICS_LEVEL, timestamp_ms, root)
}

/// Lines kept for a test that asked for them (see [`capture`]); `None` otherwise.
static CAPTURED: std::sync::Mutex<Option<Vec<String>>> = std::sync::Mutex::new(None);

/// Prints a line to stdout, where Lambda's log capture (and CloudWatch's EMF extraction) reads.
/// `line` comes from [`line`], so it carries the `timestamp` and `level` Lambda's filter reads.
pub fn emit(line: &str) {
    println!("{line}");
    if let Ok(mut captured) = CAPTURED.lock()
        && let Some(lines) = captured.as_mut()
    {
        lines.push(line.to_owned());
    }
}

/// From now on, also keeps every emitted line in memory (integration tests read them back with
/// [`captured`]); Lambda never calls it.
pub fn capture() {
    if let Ok(mut captured) = CAPTURED.lock() {
        captured.get_or_insert_with(Vec::new);
    }
}

/// Every line emitted since [`capture`] was first called.
pub fn captured() -> Vec<String> {
    CAPTURED
        .lock()
        .map(|c| c.clone().unwrap_or_default())
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    crate::domain::FetchTime::now().micros() / 1_000
}

/// One webhook delivery: its outcome (and the verified event's type, `-` when refused before
/// the event could be trusted) and how long it took; a parked event also counts in
/// `ParkedEvents`.
pub fn webhook_line(
    event_type: &str,
    outcome: &str,
    duration_ms: f64,
    timestamp_ms: i64,
) -> String {
    let main = Directive {
        dimension_sets: &[&["Outcome"], &["EventType", "Outcome"]],
        metrics: &[
            (WEBHOOK_EVENTS, 1.0, Unit::Count),
            (WEBHOOK_DURATION, duration_ms, Unit::Milliseconds),
        ],
    };
    let parked = Directive {
        dimension_sets: &[&[]],
        metrics: &[(PARKED_EVENTS, 1.0, Unit::Count)],
    };
    let directives: Vec<Directive<'_>> = if outcome == "parked" {
        vec![main, parked]
    } else {
        vec![main]
    };
    line(
        &directives,
        &[("EventType", event_type), ("Outcome", outcome)],
        timestamp_ms,
    )
}

pub fn webhook(event_type: &str, outcome: &str, duration_ms: f64) {
    emit(&webhook_line(event_type, outcome, duration_ms, now_ms()));
}

/// The `Status` dimension of a failed Stripe request: the HTTP status, or `network`.
pub fn stripe_status(err: &StripeApiError) -> String {
    match err {
        StripeApiError::NotFound => "404".to_owned(),
        StripeApiError::Rejected { status, .. } => status.to_string(),
        StripeApiError::Unavailable(msg) => msg
            .strip_prefix("HTTP ")
            .filter(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
            .map_or_else(|| "network".to_owned(), str::to_owned),
        StripeApiError::Malformed(_) => "malformed".to_owned(),
        StripeApiError::WrongAccount => "wrong_account".to_owned(),
    }
}

pub fn stripe_error_line(err: &StripeApiError, timestamp_ms: i64) -> String {
    let status = stripe_status(err);
    line(
        &[Directive {
            dimension_sets: &[&["Status"]],
            metrics: &[(STRIPE_ERRORS, 1.0, Unit::Count)],
        }],
        &[("Status", &status)],
        timestamp_ms,
    )
}

pub fn stripe_error(err: &StripeApiError) {
    emit(&stripe_error_line(err, now_ms()));
}

/// A metric without dimensions, counted once.
pub fn count_line(metric: &str, timestamp_ms: i64) -> String {
    line(
        &[Directive {
            dimension_sets: &[&[]],
            metrics: &[(metric, 1.0, Unit::Count)],
        }],
        &[],
        timestamp_ms,
    )
}

/// A request refused because the key belongs to another Stripe account.
pub fn stripe_account_mismatch() {
    emit(&count_line(STRIPE_ACCOUNT_MISMATCH, now_ms()));
}

/// A 404 nothing else confirmed (the sync was not applied and will be retried).
pub fn stripe_not_found_unconfirmed() {
    emit(&count_line(STRIPE_NOT_FOUND_UNCONFIRMED, now_ms()));
}

/// A subscription stored with an item whose price maps to no module (it grants nothing for
/// that item): counted as a parked event, so the parked-events alarm asks for a catalog fix.
pub fn unmapped_price() {
    emit(&count_line(PARKED_EVENTS, now_ms()));
}

/// One authorizer answer: `allow`, `deny`, `unauthorized` (401) or `error` (fails closed).
pub fn authorizer_line(decision: &str, timestamp_ms: i64) -> String {
    line(
        &[Directive {
            dimension_sets: &[&["Decision"]],
            metrics: &[(AUTHORIZER_DECISIONS, 1.0, Unit::Count)],
        }],
        &[("Decision", decision)],
        timestamp_ms,
    )
}

pub fn authorizer(decision: &str) {
    emit(&authorizer_line(decision, now_ms()));
}

/// One Checkout Session outcome (one of [`CHECKOUT_OUTCOMES`]).
pub fn checkout_session_line(outcome: &str, timestamp_ms: i64) -> String {
    line(
        &[Directive {
            dimension_sets: &[&["Outcome"]],
            metrics: &[(CHECKOUT_SESSIONS, 1.0, Unit::Count)],
        }],
        &[("Outcome", outcome)],
        timestamp_ms,
    )
}

pub fn checkout_session(outcome: &str) {
    emit(&checkout_session_line(outcome, now_ms()));
}

/// One entitlements lookup of the authorizer: from its cache or from DynamoDB.
pub fn authorizer_cache_line(hit: bool, timestamp_ms: i64) -> String {
    let (hits, misses) = if hit { (1.0, 0.0) } else { (0.0, 1.0) };
    line(
        &[Directive {
            dimension_sets: &[&[]],
            metrics: &[
                (AUTHORIZER_CACHE_HITS, hits, Unit::Count),
                (AUTHORIZER_CACHE_MISSES, misses, Unit::Count),
            ],
        }],
        &[],
        timestamp_ms,
    )
}

pub fn authorizer_cache(hit: bool) {
    emit(&authorizer_cache_line(hit, now_ms()));
}

/// Every metric this service emits, for the template test (an alarm or a dashboard for each).
pub const ALL: [&str; 15] = [
    WEBHOOK_EVENTS,
    WEBHOOK_DURATION,
    PARKED_EVENTS,
    STRIPE_ERRORS,
    AUTHORIZER_DECISIONS,
    AUTHORIZER_CACHE_HITS,
    AUTHORIZER_CACHE_MISSES,
    RECONCILE_DRIFT_FOUND,
    RECONCILE_DRIFT_REPAIRED,
    RECONCILE_ORG_ERRORS,
    RECONCILE_PARKED_BACKLOG,
    RECONCILE_ORGS_CHECKED,
    STRIPE_ACCOUNT_MISMATCH,
    STRIPE_NOT_FOUND_UNCONFIRMED,
    CHECKOUT_SESSIONS,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a line as CloudWatch does: every directive's metrics, each with the dimension sets
    /// and the values named by them. Returns (metric, unit, value, dimension sets with values).
    /// Dimension sets, each with its (name, value) pairs.
    type Dims = Vec<Vec<(String, String)>>;
    /// (metric, unit, value, dimension sets).
    type Extracted = (String, String, f64, Dims);

    fn extract(line: &str) -> Vec<Extracted> {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(!line.contains('\n'), "one line");
        let aws = &v["_aws"];
        assert!(aws["Timestamp"].as_i64().unwrap() > 0);
        // Lambda's log filter keys: the same instant, and a level no filter drops.
        assert_eq!(
            v["timestamp"],
            crate::telemetry::rfc3339(aws["Timestamp"].as_i64().unwrap())
        );
        assert_eq!(v["level"], crate::telemetry::METRICS_LEVEL);
        let mut out = Vec::new();
        for d in aws["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(d["Namespace"], NAMESPACE);
            let sets: Dims = d["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|set| {
                    let set = set.as_array().unwrap();
                    assert!(set.len() <= 30, "EMF allows 30 dimensions per set");
                    set.iter()
                        .map(|name| {
                            let name = name.as_str().unwrap();
                            let value = v[name].as_str().unwrap_or_else(|| {
                                panic!("dimension {name} has no string value in {line}")
                            });
                            (name.to_owned(), value.to_owned())
                        })
                        .collect()
                })
                .collect();
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                let value = v[name]
                    .as_f64()
                    .unwrap_or_else(|| panic!("metric {name} has no numeric value"));
                out.push((
                    name.to_owned(),
                    m["Unit"].as_str().unwrap().to_owned(),
                    value,
                    sets.clone(),
                ));
            }
        }
        out
    }

    fn dims(pairs: &[&[(&str, &str)]]) -> Dims {
        pairs
            .iter()
            .map(|set| {
                set.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_webhook_line_counts_the_outcome_by_type_and_times_it() {
        let got = extract(&webhook_line(
            "invoice.paid",
            "processed",
            12.5,
            1_700_000_000_000,
        ));
        let sets = dims(&[
            &[("Outcome", "processed")],
            &[("EventType", "invoice.paid"), ("Outcome", "processed")],
        ]);
        assert_eq!(
            got,
            vec![
                ("WebhookEvents".into(), "Count".into(), 1.0, sets.clone()),
                ("WebhookDuration".into(), "Milliseconds".into(), 12.5, sets),
            ]
        );
        let parked = extract(&webhook_line(
            "customer.subscription.created",
            "parked",
            3.0,
            1,
        ));
        assert_eq!(parked.len(), 3);
        assert_eq!(
            parked[2],
            ("ParkedEvents".into(), "Count".into(), 1.0, vec![vec![]])
        );
    }

    #[test]
    fn stripe_errors_carry_the_status() {
        let cases = [
            (StripeApiError::NotFound, "404"),
            (
                StripeApiError::Rejected {
                    status: 401,
                    code: None,
                },
                "401",
            ),
            (StripeApiError::Unavailable("HTTP 429".into()), "429"),
            (StripeApiError::Unavailable("HTTP 503".into()), "503"),
            (StripeApiError::Unavailable("timeout".into()), "network"),
            (StripeApiError::Malformed("x".into()), "malformed"),
        ];
        for (err, status) in cases {
            let got = extract(&stripe_error_line(&err, 1));
            assert_eq!(
                got,
                vec![(
                    "StripeErrors".into(),
                    "Count".into(),
                    1.0,
                    dims(&[&[("Status", status)]])
                )],
                "{err}"
            );
        }
    }

    #[test]
    fn authorizer_lines_carry_the_decision_and_the_cache_result() {
        for decision in ["allow", "deny", "unauthorized", "error"] {
            assert_eq!(
                extract(&authorizer_line(decision, 1)),
                vec![(
                    "AuthorizerDecisions".into(),
                    "Count".into(),
                    1.0,
                    dims(&[&[("Decision", decision)]])
                )]
            );
        }
        let hit = extract(&authorizer_cache_line(true, 1));
        assert_eq!(
            hit.iter().map(|m| (m.0.as_str(), m.2)).collect::<Vec<_>>(),
            [("AuthorizerCacheHits", 1.0), ("AuthorizerCacheMisses", 0.0)]
        );
        let miss = extract(&authorizer_cache_line(false, 1));
        assert_eq!(
            miss.iter().map(|m| (m.0.as_str(), m.2)).collect::<Vec<_>>(),
            [("AuthorizerCacheHits", 0.0), ("AuthorizerCacheMisses", 1.0)]
        );
    }
}
