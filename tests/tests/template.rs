//! template.yaml against the code: the table exactly as the code (and so the tests) create it,
//! the functions, their API events against the route table, the gateway responses against the
//! authorizer's bodies, and the operations resources (alarms, log groups, protection).

use std::collections::{BTreeMap, BTreeSet};

use billing::auth::UNAUTHORIZED_BODY;
use billing::metrics::{self, CHECKOUT_OUTCOMES, CHECKOUT_SESSIONS};
use billing::routes::ROUTES;
use billing::store::table::{BILLING_MODE, KEY_SCHEMA, TTL_ATTRIBUTE};
use pss_billing_tests::template::{
    self, Json, api_events, apis, gateway_responses, resources, tagged,
};
use pss_billing_tests::workspace_root;
use serde_yaml::Value;

fn strings(list: &Value, a: &str, b: &str) -> Vec<(String, String)> {
    list.as_sequence()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e[a].as_str().unwrap().to_owned(),
                e[b].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn table_in_template_matches_the_code() {
    let t = template::load();
    let table = &t["Resources"]["BillingTable"];
    assert_eq!(table["Type"].as_str(), Some("AWS::DynamoDB::Table"));
    let props = &table["Properties"];
    assert_eq!(props["BillingMode"].as_str(), Some(BILLING_MODE));
    let attributes = strings(
        &props["AttributeDefinitions"],
        "AttributeName",
        "AttributeType",
    );
    let keys = strings(&props["KeySchema"], "AttributeName", "KeyType");
    let expected_attributes: Vec<_> = KEY_SCHEMA
        .iter()
        .map(|(n, t, _)| (n.to_string(), t.to_string()))
        .collect();
    let expected_keys: Vec<_> = KEY_SCHEMA
        .iter()
        .map(|(n, _, r)| (n.to_string(), r.to_string()))
        .collect();
    assert_eq!(attributes, expected_attributes);
    assert_eq!(keys, expected_keys);
    assert_eq!(
        props["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(TTL_ATTRIBUTE)
    );
    assert_eq!(
        props["TimeToLiveSpecification"]["Enabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
}

#[test]
fn every_function_crate_has_a_template_resource_and_sample_events() {
    let t = template::load();
    let binaries: Vec<String> = resources(&t, "AWS::Serverless::Function")
        .map(|(_, r)| {
            assert_eq!(
                r["Metadata"]["BuildMethod"].as_str(),
                Some("rust-cargolambda")
            );
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut crates: Vec<String> = std::fs::read_dir(workspace_root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    crates.sort();
    let mut sorted = binaries.clone();
    sorted.sort();
    assert_eq!(sorted, crates, "functions/ and template.yaml disagree");
    for name in crates {
        let dir = workspace_root().join("events").join(&name);
        let count = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(count > 0, "no sample event in events/{name}");
    }
}

#[test]
fn architecture_and_log_level_are_parameters_of_every_function() {
    let t = template::load();
    let globals = &t["Globals"]["Function"];
    let arch = &globals["Architectures"];
    assert_eq!(arch.as_sequence().map(Vec::len), Some(1));
    assert_eq!(tagged(&arch[0], "Ref"), Some("Architecture"));
    let p = &t["Parameters"]["Architecture"];
    assert_eq!(p["Default"].as_str(), Some("arm64"));
    let allowed: Vec<&str> = p["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["arm64", "x86_64"]);
    // Lambda sets AWS_LAMBDA_LOG_LEVEL only for JSON logs with an ApplicationLogLevel.
    assert_eq!(globals["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
    assert_eq!(
        tagged(&globals["LoggingConfig"]["ApplicationLogLevel"], "Ref"),
        Some("LogLevel")
    );
    for (id, r) in resources(&t, "AWS::Serverless::Function") {
        let props = &r["Properties"];
        assert!(
            props["Architectures"].is_null() && props["LoggingConfig"].is_null(),
            "{id} overrides the global Architecture or LoggingConfig"
        );
    }
}

// ---- operations: alarms, log groups, protection (README "Operations") -----------------------

/// Every metric an alarm watches as (namespace, metric, dimensions as "Name=Value" with `!Ref X`
/// as `Ref X`); a metric-math alarm contributes each metric it reads.
fn alarms(t: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (id, r) in resources(t, "AWS::CloudWatch::Alarm") {
        let p = &r["Properties"];
        let actions = p["AlarmActions"].as_sequence().expect("AlarmActions");
        assert!(
            actions
                .iter()
                .any(|a| tagged(a, "Ref") == Some("AlarmTopic")),
            "{id} notifies no one"
        );
        let metrics: Vec<&Value> = match p["Metrics"].as_sequence() {
            Some(list) => list
                .iter()
                .filter(|m| !m["MetricStat"].is_null())
                .map(|m| &m["MetricStat"]["Metric"])
                .collect(),
            None => vec![p],
        };
        for m in metrics {
            let dims = m["Dimensions"]
                .as_sequence()
                .map(|d| {
                    d.iter()
                        .map(|d| {
                            // Tags first: serde_yaml's `as_str` sees through them.
                            let value = tagged(&d["Value"], "Ref")
                                .map(|r| format!("Ref {r}"))
                                .or_else(|| d["Value"].as_str().map(str::to_owned))
                                .unwrap();
                            format!("{}={value}", d["Name"].as_str().unwrap())
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((
                m["Namespace"].as_str().unwrap().to_owned(),
                m["MetricName"].as_str().unwrap().to_owned(),
                dims,
            ));
        }
    }
    out
}

/// The functions' logical ids, in template order.
fn functions(t: &Value) -> Vec<String> {
    resources(t, "AWS::Serverless::Function")
        .map(|(id, _)| id.to_owned())
        .collect()
}

#[test]
fn an_alarm_watches_each_failure_the_readme_names() {
    let t = template::load();
    let all = alarms(&t);
    let has = |ns: &str, metric: &str, dims: &[&str]| {
        assert!(
            all.iter()
                .any(|(n, m, d)| n == ns && m == metric && d == dims),
            "no alarm on {ns} {metric} {dims:?}"
        );
    };
    has("PssBilling", "WebhookEvents", &["Outcome=failed"]);
    has(
        "AWS/Lambda",
        "Url5xxCount",
        &["FunctionName=Ref StripeWebhookFunction"],
    );
    has("PssBilling", "ParkedEvents", &[]);
    has("PssBilling", "ReconcileParkedBacklog", &[]);
    has("PssBilling", "AuthorizerDecisions", &["Decision=error"]);
    has("PssBilling", "ReconcileDriftFound", &[]);
    has("PssBilling", "ReconcileOrgErrors", &[]);
    has("PssBilling", "StripeErrors", &["Status=401"]);
    has("PssBilling", "StripeAccountMismatch", &[]);
    has("PssBilling", "StripeNotFoundUnconfirmed", &[]);
    has(
        "AWS/ApiGateway",
        "5XXError",
        &["ApiName=Ref AWS::StackName", "Stage=prod"],
    );
    has(
        "AWS/DynamoDB",
        "ReadThrottleEvents",
        &["TableName=Ref BillingTable"],
    );
    has(
        "AWS/DynamoDB",
        "WriteThrottleEvents",
        &["TableName=Ref BillingTable"],
    );
    for f in functions(&t) {
        let dim = format!("FunctionName=Ref {f}");
        has("AWS/Lambda", "Throttles", &[dim.as_str()]);
        // The authorizer reports a 401 as the Lambda error "Unauthorized": its Errors count
        // every anonymous call, so its failures are AuthorizerDecisions=error instead.
        if f != "AuthorizerFunction" {
            has("AWS/Lambda", "Errors", &[dim.as_str()]);
        }
    }
    // Every metric the code emits is alarmed, or listed here as dashboard-only with a reason.
    let dashboard_only = [
        "WebhookDuration",        // latency: Lambda's own Duration alarms would double it
        "AuthorizerCacheHits",    // efficiency, not failure
        "AuthorizerCacheMisses",  // efficiency, not failure
        "ReconcileDriftRepaired", // the found count already alarms
        "ReconcileOrgsChecked",   // progress
    ];
    for metric in billing::metrics::ALL {
        let alarmed = all.iter().any(|(n, m, _)| n == "PssBilling" && m == metric);
        assert!(
            alarmed || dashboard_only.contains(&metric),
            "{metric} is emitted but neither alarmed nor listed as dashboard-only"
        );
    }
}

#[test]
fn logs_are_retained_and_the_webhook_cannot_starve_the_api() {
    let t = template::load();
    for f in functions(&t) {
        let (_, group) = resources(&t, "AWS::Logs::LogGroup")
            .find(|(_, r)| {
                tagged(&r["Properties"]["LogGroupName"], "Sub")
                    == Some(format!("/aws/lambda/${{{f}}}").as_str())
            })
            .unwrap_or_else(|| panic!("{f} has no log group"));
        assert_eq!(
            tagged(&group["Properties"]["RetentionInDays"], "Ref"),
            Some("LogRetentionDays")
        );
    }
    // Reservations are conditional (ReserveConcurrency): `!If [ReserveConcurrencyOn, value,
    // !Ref AWS::NoValue]`; tests/tests/sam_transform.rs evaluates both branches.
    let reservation = |function: &str| -> Value {
        let r = &t["Resources"][function]["Properties"]["ReservedConcurrentExecutions"];
        let Value::Tagged(tag) = r else {
            panic!("{function}: the reservation is not conditional")
        };
        assert_eq!(tag.tag, "If", "{function}");
        assert_eq!(tag.value[0].as_str(), Some("ReserveConcurrencyOn"));
        assert_eq!(tagged(&tag.value[2], "Ref"), Some("AWS::NoValue"));
        tag.value[1].clone()
    };
    assert_eq!(
        tagged(&reservation("StripeWebhookFunction"), "Ref"),
        Some("WebhookReservedConcurrency")
    );
    assert_eq!(
        reservation("ReconcileFunction").as_u64(),
        Some(1),
        "two reconciliation runs would share one cursor"
    );
    let stage = &t["Resources"]["BillingApi"]["Properties"]["MethodSettings"][0];
    assert_eq!(stage["ResourcePath"].as_str(), Some("/*"));
    assert_eq!(stage["HttpMethod"].as_str(), Some("*"));
    assert_eq!(
        tagged(&stage["ThrottlingRateLimit"], "Ref"),
        Some("ApiThrottleRate")
    );
    assert_eq!(
        tagged(&stage["ThrottlingBurstLimit"], "Ref"),
        Some("ApiThrottleBurst")
    );
    let tracing = &t["Globals"]["Function"]["Tracing"];
    assert!(
        matches!(tracing, Value::Tagged(tag) if tag.tag == "If"),
        "Tracing is a parameter"
    );
    let schedule = &t["Resources"]["ReconcileFunction"]["Properties"]["Events"]["Schedule"];
    assert_eq!(schedule["Type"].as_str(), Some("Schedule"));
    assert_eq!(
        tagged(&schedule["Properties"]["Schedule"], "Ref"),
        Some("ReconcileSchedule")
    );
    assert_eq!(
        t["Parameters"]["ReconcileSchedule"]["Default"].as_str(),
        Some("rate(1 hour)")
    );
}

// ---- the checkout success rate: its alarm and the dashboard against the code's EMF ----------

/// One query of a metric-math alarm or graph: an expression, or the `CheckoutSessions` of one
/// `Outcome`.
#[derive(Debug)]
enum Query {
    Expression(String),
    Sessions(String),
}

/// Metric math at one timestamp, as CloudWatch evaluates it, for the forms the template uses:
/// numbers, ids, `+ - * /`, comparisons, `IF(condition, then[, else])`, `FILL(series, value)`.
/// `None` is a missing data point: arithmetic on one is missing, FILL replaces it, and an IF
/// without an else has no data point where its condition is false.
fn evaluate(
    id: &str,
    queries: &BTreeMap<String, Query>,
    sessions: &BTreeMap<&'static str, f64>,
) -> Option<f64> {
    match queries.get(id).unwrap_or_else(|| panic!("no query {id}")) {
        Query::Sessions(outcome) => sessions.get(outcome.as_str()).copied(),
        Query::Expression(expression) => {
            let tokens = tokenize(expression);
            let mut math = Math {
                tokens: &tokens,
                at: 0,
                queries,
                sessions,
            };
            let value = math.comparison();
            assert_eq!(math.at, tokens.len(), "{expression}: trailing input");
            value
        }
    }
}

fn tokenize(expression: &str) -> Vec<String> {
    let chars: Vec<char> = expression.chars().collect();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        } else if word(chars[i]) {
            while i < chars.len() && word(chars[i]) {
                i += 1;
            }
        } else if "<>=!".contains(chars[i]) && chars.get(i + 1) == Some(&'=') {
            i += 2;
        } else {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

struct Math<'a> {
    tokens: &'a [String],
    at: usize,
    queries: &'a BTreeMap<String, Query>,
    sessions: &'a BTreeMap<&'static str, f64>,
}

impl Math<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn take(&mut self) -> String {
        let token = self.tokens.get(self.at).expect("more input").clone();
        self.at += 1;
        token
    }

    fn expect(&mut self, token: &str) {
        assert_eq!(self.take(), token);
    }

    fn comparison(&mut self) -> Option<f64> {
        let left = self.sum();
        let op = self.peek().unwrap_or_default().to_owned();
        if !["<", "<=", ">", ">=", "==", "!="].contains(&op.as_str()) {
            return left;
        }
        self.at += 1;
        let right = self.sum();
        let (a, b) = (left?, right?);
        let holds = match op.as_str() {
            "<" => a < b,
            "<=" => a <= b,
            ">" => a > b,
            ">=" => a >= b,
            "==" => a == b,
            _ => a != b,
        };
        Some(if holds { 1.0 } else { 0.0 })
    }

    fn sum(&mut self) -> Option<f64> {
        let mut value = self.product();
        while let Some(op) = self
            .peek()
            .filter(|t| *t == "+" || *t == "-")
            .map(str::to_owned)
        {
            self.at += 1;
            let right = self.product();
            value = match (value, right) {
                (Some(a), Some(b)) if op == "+" => Some(a + b),
                (Some(a), Some(b)) => Some(a - b),
                _ => None,
            };
        }
        value
    }

    fn product(&mut self) -> Option<f64> {
        let mut value = self.primary();
        while let Some(op) = self
            .peek()
            .filter(|t| *t == "*" || *t == "/")
            .map(str::to_owned)
        {
            self.at += 1;
            let right = self.primary();
            value = match (value, right) {
                (Some(a), Some(b)) if op == "*" => Some(a * b),
                (Some(a), Some(b)) => Some(a / b),
                _ => None,
            };
        }
        value
    }

    fn primary(&mut self) -> Option<f64> {
        let token = self.take();
        if token == "(" {
            let value = self.comparison();
            self.expect(")");
            return value;
        }
        if let Ok(n) = token.parse::<f64>() {
            return Some(n);
        }
        if self.peek() != Some("(") {
            return evaluate(&token, self.queries, self.sessions);
        }
        self.at += 1;
        let mut args = vec![self.comparison()];
        while self.peek() == Some(",") {
            self.at += 1;
            args.push(self.comparison());
        }
        self.expect(")");
        match (token.as_str(), args.as_slice()) {
            ("IF", [condition, then]) => (*condition).filter(|c| *c != 0.0).and(*then),
            ("IF", [condition, then, otherwise]) => match *condition {
                None => None,
                Some(c) if c != 0.0 => *then,
                Some(_) => *otherwise,
            },
            ("FILL", [series, value]) => (*series).or(*value),
            (f, _) => panic!("{f} with {} arguments is not evaluated here", args.len()),
        }
    }
}

/// The success rate is completed ÷ (completed + expired) × 100, and nothing on a day with fewer
/// than 10 ended sessions (so the alarm, which treats missing data as not breaching, stays
/// quiet when one abandoned checkout on a quiet day would read 0 %).
fn assert_is_the_success_rate(queries: &BTreeMap<String, Query>, returned: &str, what: &str) {
    // The answer (of the returned id) for a day with these sessions; an outcome absent from
    // the list has no data point that day.
    let rate = |day: &[(&'static str, f64)]| {
        let sessions: BTreeMap<&'static str, f64> = day.iter().copied().collect();
        evaluate(returned, queries, &sessions)
    };
    assert_eq!(
        rate(&[("completed", 19.0), ("expired", 1.0)]),
        Some(95.0),
        "{what}"
    );
    assert_eq!(
        rate(&[("completed", 3.0), ("expired", 9.0)]),
        Some(25.0),
        "{what}"
    );
    // Too few to tell: no data point.
    assert_eq!(
        rate(&[("completed", 1.0), ("expired", 3.0)]),
        None,
        "{what}"
    );
    assert_eq!(rate(&[("expired", 1.0)]), None, "{what}");
    // One outcome without data that day counts as none of it.
    assert_eq!(rate(&[("completed", 12.0)]), Some(100.0), "{what}");
    assert_eq!(rate(&[("expired", 10.0)]), Some(0.0), "{what}");
    // Sessions only created (still open, or none at all): no data point.
    assert_eq!(rate(&[("created", 4.0)]), None, "{what}");
    assert_eq!(rate(&[]), None, "{what}");
    assert_eq!(
        rate(&[("completed", 0.0), ("expired", 0.0)]),
        None,
        "{what}"
    );
}

#[test]
fn the_checkout_success_rate_alarm_reads_the_sessions_the_code_counts() {
    let t = template::load();
    let p = &t["Resources"]["CheckoutSuccessRateAlarm"]["Properties"];
    assert_eq!(
        t["Resources"]["CheckoutSuccessRateAlarm"]["Type"].as_str(),
        Some("AWS::CloudWatch::Alarm")
    );
    let mut queries = BTreeMap::new();
    let mut returned = Vec::new();
    for q in p["Metrics"].as_sequence().expect("metric math") {
        let id = q["Id"].as_str().expect("Id").to_owned();
        if q["ReturnData"].as_bool() == Some(true) {
            returned.push(id.clone());
        }
        if let Some(expression) = q["Expression"].as_str() {
            queries.insert(id, Query::Expression(expression.to_owned()));
            continue;
        }
        // Exactly the metric and dimension the code emits, summed over 24 hours.
        let stat = &q["MetricStat"];
        let metric = &stat["Metric"];
        assert_eq!(
            metric["Namespace"].as_str(),
            Some(metrics::NAMESPACE),
            "{id}"
        );
        assert_eq!(
            metric["MetricName"].as_str(),
            Some(CHECKOUT_SESSIONS),
            "{id}"
        );
        let dims = metric["Dimensions"].as_sequence().expect("Dimensions");
        assert_eq!(dims.len(), 1, "{id}: {dims:?}");
        assert_eq!(dims[0]["Name"].as_str(), Some("Outcome"), "{id}");
        let outcome = dims[0]["Value"].as_str().expect("a literal Outcome");
        assert!(
            CHECKOUT_OUTCOMES.contains(&outcome),
            "{id}: the code never emits Outcome={outcome}"
        );
        assert_eq!(stat["Period"].as_u64(), Some(86400), "{id}: 24 hours");
        assert_eq!(stat["Stat"].as_str(), Some("Sum"), "{id}");
        queries.insert(id, Query::Sessions(outcome.to_owned()));
    }
    let mut read: Vec<&str> = queries
        .values()
        .filter_map(|q| match q {
            Query::Sessions(outcome) => Some(outcome.as_str()),
            Query::Expression(_) => None,
        })
        .collect();
    read.sort();
    assert_eq!(read, ["completed", "expired"], "the sessions that ended");
    assert_eq!(returned.len(), 1, "one returned expression: {returned:?}");
    assert!(matches!(queries[&returned[0]], Query::Expression(_)));
    assert_is_the_success_rate(&queries, &returned[0], "CheckoutSuccessRateAlarm");

    // Below the parameter (a percentage, 95 by default), over one day.
    assert_eq!(
        tagged(&p["Threshold"], "Ref"),
        Some("CheckoutSuccessRateThreshold")
    );
    let threshold = &t["Parameters"]["CheckoutSuccessRateThreshold"];
    assert_eq!(threshold["Type"].as_str(), Some("Number"));
    assert_eq!(threshold["Default"].as_u64(), Some(95));
    assert_eq!(threshold["MinValue"].as_u64(), Some(0));
    assert_eq!(threshold["MaxValue"].as_u64(), Some(100));
    assert_eq!(p["ComparisonOperator"].as_str(), Some("LessThanThreshold"));
    assert_eq!(p["EvaluationPeriods"].as_u64(), Some(1));
    assert_eq!(p["TreatMissingData"].as_str(), Some("notBreaching"));
}

/// The dashboard's body: `!Sub` of a JSON document, with the two values it substitutes.
fn dashboard(t: &Value) -> Json {
    let dashboard = &t["Resources"]["BillingDashboard"];
    assert_eq!(
        dashboard["Type"].as_str(),
        Some("AWS::CloudWatch::Dashboard")
    );
    let body = tagged(&dashboard["Properties"]["DashboardBody"], "Sub")
        .expect("DashboardBody is a !Sub of JSON");
    let body = body
        .replace("${AWS::Region}", "us-east-1")
        .replace("${CheckoutSuccessRateThreshold}", "95");
    assert!(
        !body.contains("${"),
        "a substitution not resolved here: {body}"
    );
    serde_json::from_str(&body).expect("DashboardBody is JSON")
}

/// Every (metric, sorted "Name=Value" dimensions) the code's EMF formatters emit for the
/// metrics the dashboard shows: each webhook outcome, authorizer decision, checkout outcome,
/// and a reconciliation run's totals.
fn emitted() -> BTreeSet<(String, Vec<String>)> {
    use billing::reconcile::{DriftCount, DriftKind, Report};
    use billing::store::Applied;
    use billing::webhook::Outcome;
    let mut lines = Vec::new();
    let outcomes = [
        Outcome::Rejected("invalid_signature"),
        Outcome::Ignored,
        Outcome::Duplicate,
        Outcome::Processed(Applied::Written),
        Outcome::Processed(Applied::Stale),
        Outcome::Parked("x".into()),
        Outcome::Failed("x".into()),
    ];
    for o in &outcomes {
        lines.push(metrics::webhook_line("invoice.paid", o.label(), 1.0, 1));
    }
    for d in ["allow", "deny", "unauthorized", "error"] {
        lines.push(metrics::authorizer_line(d, 1));
    }
    for o in CHECKOUT_OUTCOMES {
        lines.push(metrics::checkout_session_line(o, 1));
    }
    let mut report = Report::default();
    report.drift.insert(
        DriftKind::StaleSubscription,
        DriftCount {
            found: 1,
            repaired: 1,
        },
    );
    lines.extend(billing::reconcile::report::metric_lines(&report, 1));
    let mut out = BTreeSet::new();
    for line in lines {
        let v: Json = serde_json::from_str(&line).unwrap();
        for d in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(d["Namespace"], metrics::NAMESPACE);
            for set in d["Dimensions"].as_array().unwrap() {
                let mut dims: Vec<String> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| {
                        let n = n.as_str().unwrap();
                        format!("{n}={}", v[n].as_str().unwrap())
                    })
                    .collect();
                dims.sort();
                for m in d["Metrics"].as_array().unwrap() {
                    out.insert((m["Name"].as_str().unwrap().to_owned(), dims.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn the_dashboard_shows_only_metrics_the_code_emits_and_the_alarms_success_rate() {
    let t = template::load();
    let body = dashboard(&t);
    let emitted = emitted();
    let mut shown = BTreeSet::new();
    let mut rate_widgets = 0;
    for widget in body["widgets"].as_array().expect("widgets") {
        let p = &widget["properties"];
        let title = p["title"].as_str().expect("a title");
        assert_eq!(widget["type"], "metric", "{title}");
        assert_eq!(p["region"], "us-east-1", "{title}: the stack's region");
        let mut queries = BTreeMap::new();
        let mut returned = Vec::new();
        for row in p["metrics"].as_array().expect("metrics") {
            let row = row.as_array().expect("a metric row");
            let options = row.iter().find(|e| e.is_object());
            let id = options.and_then(|o| o["id"].as_str()).map(str::to_owned);
            if let Some(expression) = options.and_then(|o| o["expression"].as_str()) {
                let id = id.expect("an expression has an id");
                if options.unwrap()["visible"] != false {
                    returned.push(id.clone());
                }
                queries.insert(id, Query::Expression(expression.to_owned()));
                continue;
            }
            // [namespace, metric, dimension name, value, ..., options]
            let names: Vec<&str> = row.iter().filter_map(Json::as_str).collect();
            assert!(
                names.len() >= 2 && names.len().is_multiple_of(2),
                "{title}: {row:?}"
            );
            assert_eq!(names[0], metrics::NAMESPACE, "{title}");
            let metric = names[1];
            assert!(
                metrics::ALL.contains(&metric),
                "{title}: {metric} is not a metric of billing::metrics::ALL"
            );
            let mut dims: Vec<String> = names[2..]
                .chunks(2)
                .map(|d| format!("{}={}", d[0], d[1]))
                .collect();
            dims.sort();
            assert!(
                emitted.contains(&(metric.to_owned(), dims.clone())),
                "{title}: the code never emits {metric} with {dims:?}"
            );
            shown.insert(metric.to_owned());
            if let Some(id) = id {
                assert_eq!(metric, CHECKOUT_SESSIONS, "{title}: {id}");
                let outcome = names[2..]
                    .chunks(2)
                    .find(|d| d[0] == "Outcome")
                    .map(|d| d[1].to_owned())
                    .expect("an Outcome");
                queries.insert(id, Query::Sessions(outcome));
            }
        }
        if !returned.is_empty() {
            // The graph of the success rate is the alarm's math, over the same day.
            rate_widgets += 1;
            assert_eq!(returned.len(), 1, "{title}: {returned:?}");
            assert_eq!(p["period"], 86400, "{title}");
            assert_is_the_success_rate(&queries, &returned[0], title);
        }
    }
    assert_eq!(rate_widgets, 1, "one graph of the checkout success rate");
    for metric in [
        CHECKOUT_SESSIONS,
        metrics::WEBHOOK_EVENTS,
        metrics::AUTHORIZER_DECISIONS,
        metrics::RECONCILE_DRIFT_FOUND,
        metrics::RECONCILE_DRIFT_REPAIRED,
    ] {
        assert!(
            shown.contains(metric),
            "the dashboard does not show {metric}"
        );
    }
}

// ---- drift between the route table and template.yaml ------------------------------------------

/// Every API event in template.yaml must be a route of the table, served by the function the
/// table names, and every route whose function is in the template must have its event. Public
/// routes may skip the authorizer; authenticated ones must not.
#[test]
fn template_api_events_match_the_route_table() {
    let t = template::load();
    let functions_in_template: Vec<String> = template::functions(&t)
        .into_iter()
        .map(|f| f.binary)
        .collect();
    let declared = api_events(&t);
    for event in &declared {
        let (method, path) = (&event.method, event.path);
        let route = billing::routes::find(method, path)
            .unwrap_or_else(|| panic!("{method} {path} in template.yaml is not in ROUTES"));
        assert_eq!(route.function, event.binary, "{method} {path}");
        if !route.is_public() {
            assert_ne!(
                event.properties["Auth"]["Authorizer"].as_str(),
                Some("NONE"),
                "{method} {path} needs the authorizer"
            );
        }
    }
    for route in ROUTES {
        if functions_in_template.iter().any(|f| f == route.function) {
            assert!(
                declared
                    .iter()
                    .any(|e| e.method == route.method && e.path == route.path),
                "{} {} is served by {} but has no Api event in template.yaml",
                route.method,
                route.path,
                route.function
            );
        }
    }
}

/// The gateway responses API Gateway answers with when the authorizer refuses or fails must be
/// the bodies the local gateway reproduces from `billing::auth`.
#[test]
fn template_gateway_responses_are_the_authorizer_bodies() {
    let t = template::load();
    for api in apis(&t) {
        let responses = gateway_responses(api);
        let response = |name: &str| responses.iter().find(|r| r.name == name);
        let body = |name: &str| {
            response(name)
                .unwrap_or_else(|| panic!("no {name} gateway response"))
                .body
                .clone()
        };
        let status = |name: &str| response(name).and_then(|r| r.status);
        assert_eq!(body("UNAUTHORIZED"), UNAUTHORIZED_BODY);
        assert_eq!(status("UNAUTHORIZED"), Some(401));
        assert_eq!(body("ACCESS_DENIED"), "$context.authorizer.body");
        assert_eq!(status("ACCESS_DENIED"), Some(403));
        assert_eq!(
            body("AUTHORIZER_FAILURE"),
            billing::auth::AUTHORIZER_FAILURE_BODY
        );
        assert_eq!(status("AUTHORIZER_FAILURE"), Some(503));
        // An authorizer Lambda that errors with anything but "Unauthorized" is reported as an
        // authorizer configuration error; when declared, it must give the same answer.
        if response("AUTHORIZER_CONFIGURATION_ERROR").is_some() {
            assert_eq!(
                body("AUTHORIZER_CONFIGURATION_ERROR"),
                billing::auth::AUTHORIZER_FAILURE_BODY
            );
            assert_eq!(status("AUTHORIZER_CONFIGURATION_ERROR"), Some(503));
        }
    }
}
