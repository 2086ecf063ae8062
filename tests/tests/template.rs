//! template.yaml against the code: the table exactly as the code (and so the tests) create it,
//! the functions, their API events against the route table, the gateway responses against the
//! authorizer's bodies, and the operations resources (alarms, log groups, protection).

use billing::auth::UNAUTHORIZED_BODY;
use billing::routes::ROUTES;
use billing::store::table::{BILLING_MODE, KEY_SCHEMA, TTL_ATTRIBUTE};
use pss_billing_tests::template::{self, api_events, apis, gateway_responses, resources, tagged};
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
