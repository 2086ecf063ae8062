//! The CloudFormation `sam deploy` would create, as SAM's own transform makes it of template.yaml
//! (tests/emulators/sam_transform.py, offline), and the samconfig.toml environments SAM reads
//! (tests/emulators/samconfig_json.py). template.rs holds template.yaml to the code; this file
//! holds what AWS would actually be given to how AWS behaves: stages, throttling, the
//! authorizer, who may invoke what, alarms on metrics that exist, log groups, reservations.

use std::collections::{BTreeMap, BTreeSet};

use billing::metrics;
use billing::reconcile::{DriftCount, DriftKind, Report};
use billing::store::Applied;
use billing::stripe::StripeApiError;
use billing::webhook::Outcome;
use pss_billing_tests::template::{Json, Stack, cfn_resources, samconfig, transformed};
use pss_billing_tests::workspace_root;
use serde_json::json;

/// Parameter values a real deployment sets (the ones without a default), as an operator would.
pub const DEPLOYMENT: &[(&str, &str)] = &[
    ("JwtIssuer", "https://portal.example.com"),
    ("JwtAudience", "pss-billing"),
    ("JwtAlgorithm", "HS256"),
    ("FrontendOrigins", "https://app.example.com"),
    ("StripeAccountId", "acct_1ExampleLive"),
];

fn cfn() -> &'static Json {
    static CFN: std::sync::OnceLock<Json> = std::sync::OnceLock::new();
    CFN.get_or_init(|| transformed(DEPLOYMENT))
}

/// The REST API's one stage, and the resource that creates it.
fn stages() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = cfn_resources(cfn(), "AWS::ApiGateway::Stage")
        .into_iter()
        .map(|(id, r)| {
            (
                id.to_owned(),
                r["Properties"]["StageName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // A Deployment with a StageName creates that stage too (SAM's "Stage" stage).
    for (id, r) in cfn_resources(cfn(), "AWS::ApiGateway::Deployment") {
        if let Some(name) = r["Properties"]["StageName"].as_str() {
            out.push((id.to_owned(), name.to_owned()));
        }
    }
    out
}

#[test]
fn the_api_has_exactly_one_stage_and_it_is_throttled() {
    let stages = stages();
    assert_eq!(
        stages.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ["prod"],
        "stages created by {stages:?}: every stage but the throttled one would serve every \
         route and the authorizer with no throttling"
    );
    let (stage_id, _) = &stages[0];
    let props = &cfn()["Resources"][stage_id]["Properties"];
    assert_eq!(
        props["MethodSettings"],
        json!([{
            "HttpMethod": "*",
            "ResourcePath": "/*",
            "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurst"},
            "ThrottlingRateLimit": {"Ref": "ApiThrottleRate"},
        }])
    );
    assert_eq!(props["RestApiId"], json!({"Ref": "BillingApi"}));
    // The URL the README and the frontend use is that stage's.
    let url = cfn()["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert!(url.ends_with("/prod"), "{url}");
}

/// Every `x-amazon-apigateway-authorizer` of the API's definition (swagger 2 puts them under
/// securityDefinitions, OpenAPI 3 under components.securitySchemes).
fn authorizers(body: &Json) -> Vec<(&str, &Json)> {
    let mut out = Vec::new();
    for schemes in [
        &body["securityDefinitions"],
        &body["components"]["securitySchemes"],
    ] {
        if let Some(map) = schemes.as_object() {
            for (name, scheme) in map {
                out.push((name.as_str(), &scheme["x-amazon-apigateway-authorizer"]));
            }
        }
    }
    out
}

#[test]
fn the_authorizer_runs_for_every_request_and_its_answers_are_never_cached() {
    let api = &cfn()["Resources"]["BillingApi"];
    assert_eq!(api["Type"], "AWS::ApiGateway::RestApi");
    let body = &api["Properties"]["Body"];
    let found = authorizers(body);
    assert_eq!(found.len(), 1, "{found:?}");
    let (name, authorizer) = found[0];
    assert_eq!(name, "PaywallAuthorizer");
    assert_eq!(authorizer["type"], "request");
    // TTL 0: API Gateway caches no decision, so one route's Allow is never reused for another
    // and a cancellation takes effect within the authorizer's own cache time.
    assert_eq!(authorizer["authorizerResultTtlInSeconds"], 0);
    // No identity source: with one, API Gateway would answer 401 itself to a request without
    // the header, before the authorizer could let an anonymous call of a public route through.
    assert!(
        authorizer.get("identitySource").is_none(),
        "identity sources: {}",
        authorizer["identitySource"]
    );
    let uri = authorizer["authorizerUri"]["Fn::Sub"][1]["__FunctionArn__"].clone();
    assert_eq!(uri, json!({"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}));
    // Every route but the public ones goes through it; public routes too (the catalog's
    // `unlocked` flags need the caller), so every non-OPTIONS method names it.
    let paths = body["paths"].as_object().unwrap();
    let mut methods = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            if method == "options" {
                continue;
            }
            methods += 1;
            assert_eq!(
                op["security"],
                json!([{"PaywallAuthorizer": []}]),
                "{method} {path}"
            );
        }
    }
    assert_eq!(methods, billing::routes::ROUTES.len());
    // Its refusals and failures keep their exact bodies through the transform.
    let responses = &body["x-amazon-apigateway-gateway-responses"];
    for (name, status, template) in [
        ("UNAUTHORIZED", "401", billing::auth::UNAUTHORIZED_BODY),
        ("ACCESS_DENIED", "403", "$context.authorizer.body"),
        (
            "AUTHORIZER_FAILURE",
            "503",
            billing::auth::AUTHORIZER_FAILURE_BODY,
        ),
        (
            "AUTHORIZER_CONFIGURATION_ERROR",
            "503",
            billing::auth::AUTHORIZER_FAILURE_BODY,
        ),
    ] {
        assert_eq!(responses[name]["statusCode"], status, "{name}");
        assert_eq!(
            responses[name]["responseTemplates"]["application/json"], template,
            "{name}"
        );
    }
    // API Gateway may invoke the authorizer for this API only.
    let permission = &cfn()["Resources"]["BillingApiPaywallAuthorizerAuthorizerPermission"];
    assert_eq!(
        permission["Properties"]["Principal"],
        "apigateway.amazonaws.com"
    );
    assert_eq!(
        permission["Properties"]["SourceArn"]["Fn::Sub"][1]["__ApiId__"],
        json!({"Ref": "BillingApi"})
    );
}

#[test]
fn only_the_webhook_is_public_and_only_through_its_function_url() {
    let urls = cfn_resources(cfn(), "AWS::Lambda::Url");
    assert_eq!(urls.len(), 1);
    let url = &urls[0].1["Properties"];
    assert_eq!(url["AuthType"], "NONE");
    assert_eq!(
        url["TargetFunctionArn"],
        json!({"Ref": "StripeWebhookFunction"})
    );
    let permissions = cfn_resources(cfn(), "AWS::Lambda::Permission");
    let public: Vec<&Json> = permissions
        .iter()
        .map(|(_, p)| &p["Properties"])
        .filter(|p| p["Principal"] == "*")
        .collect();
    // AWS requires both for a public URL; the second is scoped to URL calls, so "*" may not
    // call Invoke on the function directly.
    let expected = [
        json!({"Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "StripeWebhookFunction"},
               "Principal": "*", "InvokedViaFunctionUrl": true}),
        json!({"Action": "lambda:InvokeFunctionUrl", "FunctionName": {"Ref": "StripeWebhookFunction"},
               "Principal": "*", "FunctionUrlAuthType": "NONE"}),
    ];
    assert_eq!(
        public.len(),
        expected.len(),
        "public permissions: {public:?}"
    );
    for want in &expected {
        assert!(public.contains(&want), "missing {want}; public: {public:?}");
    }
    // Every other permission names a service principal and a source in this stack.
    for (id, p) in &permissions {
        let p = &p["Properties"];
        if p["Principal"] == "*" {
            continue;
        }
        match p["Principal"].as_str().unwrap() {
            "apigateway.amazonaws.com" => {
                let sub = &p["SourceArn"]["Fn::Sub"];
                assert_eq!(sub[1]["__ApiId__"], json!({"Ref": "BillingApi"}), "{id}");
            }
            "events.amazonaws.com" => {
                assert_eq!(
                    p["SourceArn"],
                    json!({"Fn::GetAtt": ["ReconcileFunctionSchedule", "Arn"]}),
                    "{id}"
                );
            }
            other => panic!("{id}: unexpected principal {other}"),
        }
    }
}

// ---- alarms against the metrics that exist ---------------------------------------------------

/// Every (metric, dimension set with values) the code's EMF formatters emit, from the
/// formatters themselves: each outcome, decision, checkout outcome, drift kind and the Stripe
/// statuses alarmed.
fn emitted() -> BTreeSet<(String, BTreeMap<String, String>)> {
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
    for status in [400, 401, 403, 404, 429] {
        lines.push(metrics::stripe_error_line(
            &StripeApiError::Rejected { status, code: None },
            1,
        ));
    }
    lines.push(metrics::stripe_error_line(
        &StripeApiError::Unavailable("HTTP 429".into()),
        1,
    ));
    for d in ["allow", "deny", "unauthorized", "error"] {
        lines.push(metrics::authorizer_line(d, 1));
    }
    lines.push(metrics::authorizer_cache_line(true, 1));
    for o in metrics::CHECKOUT_OUTCOMES {
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
    for metric in [
        metrics::STRIPE_ACCOUNT_MISMATCH,
        metrics::STRIPE_NOT_FOUND_UNCONFIRMED,
    ] {
        lines.push(metrics::count_line(metric, 1));
    }
    let mut out = BTreeSet::new();
    for line in lines {
        let v: Json = serde_json::from_str(&line).unwrap();
        for d in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(d["Namespace"], metrics::NAMESPACE);
            for set in d["Dimensions"].as_array().unwrap() {
                let dims: BTreeMap<String, String> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| {
                        let n = n.as_str().unwrap();
                        (n.to_owned(), v[n].as_str().unwrap().to_owned())
                    })
                    .collect();
                for m in d["Metrics"].as_array().unwrap() {
                    out.insert((m["Name"].as_str().unwrap().to_owned(), dims.clone()));
                }
            }
        }
    }
    out
}

/// AWS's metric names per namespace, from the CloudWatch metrics references of Lambda
/// (including function URLs), API Gateway (REST) and DynamoDB: an alarm on any other name
/// watches nothing.
fn aws_metric_exists(namespace: &str, metric: &str) -> bool {
    let known: &[&str] = match namespace {
        "AWS/Lambda" => &[
            "Invocations",
            "Errors",
            "Throttles",
            "Duration",
            "ConcurrentExecutions",
            "Url4xxCount",
            "Url5xxCount",
            "UrlRequestCount",
            "UrlRequestLatency",
        ],
        "AWS/ApiGateway" => &[
            "4XXError",
            "5XXError",
            "Count",
            "Latency",
            "IntegrationLatency",
        ],
        "AWS/DynamoDB" => &[
            "ReadThrottleEvents",
            "WriteThrottleEvents",
            "ThrottledRequests",
            "SystemErrors",
        ],
        _ => return false,
    };
    known.contains(&metric)
}

/// One metric an alarm watches: namespace, name and dimensions as given in the template.
fn watched(alarm: &Json) -> Vec<(String, String, &Json)> {
    let p = &alarm["Properties"];
    if let Some(metrics) = p["Metrics"].as_array() {
        metrics
            .iter()
            .filter_map(|m| m.get("MetricStat"))
            .map(|s| {
                let m = &s["Metric"];
                (
                    m["Namespace"].as_str().unwrap().to_owned(),
                    m["MetricName"].as_str().unwrap().to_owned(),
                    &m["Dimensions"],
                )
            })
            .collect()
    } else {
        vec![(
            p["Namespace"].as_str().unwrap().to_owned(),
            p["MetricName"].as_str().unwrap().to_owned(),
            &p["Dimensions"],
        )]
    }
}

fn dimensions(dims: &Json) -> BTreeMap<String, Json> {
    dims.as_array()
        .map(|d| {
            d.iter()
                .map(|d| (d["Name"].as_str().unwrap().to_owned(), d["Value"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_alarm_watches_a_metric_that_is_emitted_with_those_dimensions() {
    let emitted = emitted();
    let functions: BTreeSet<&str> = cfn_resources(cfn(), "AWS::Lambda::Function")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let api_name = cfn()["Resources"]["BillingApi"]["Properties"]["Name"].clone();
    let (_, stage) = &stages()[0];
    let alarms = cfn_resources(cfn(), "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 30, "{} alarms", alarms.len());
    for (id, alarm) in alarms {
        let p = &alarm["Properties"];
        assert_eq!(p["AlarmActions"], json!([{"Ref": "AlarmTopic"}]), "{id}");
        assert_eq!(p["TreatMissingData"], "notBreaching", "{id}");
        for (namespace, metric, dims) in watched(alarm) {
            let dims = dimensions(dims);
            if namespace == metrics::NAMESPACE {
                let values: BTreeMap<String, String> = dims
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("a literal value").to_owned()))
                    .collect();
                assert!(
                    emitted.contains(&(metric.clone(), values.clone())),
                    "{id}: the code never emits {metric} with {values:?}: the alarm would \
                     watch nothing. Emitted: {:?}",
                    emitted
                        .iter()
                        .filter(|(m, _)| *m == metric)
                        .collect::<Vec<_>>()
                );
                continue;
            }
            assert!(
                aws_metric_exists(&namespace, &metric),
                "{id}: {namespace} has no metric {metric}"
            );
            match namespace.as_str() {
                "AWS/Lambda" => {
                    assert_eq!(dims.keys().collect::<Vec<_>>(), ["FunctionName"], "{id}");
                    let f = dims["FunctionName"]["Ref"].as_str().unwrap();
                    assert!(functions.contains(f), "{id}: no function {f}");
                }
                "AWS/DynamoDB" => {
                    assert_eq!(dims.len(), 1, "{id}");
                    assert_eq!(dims["TableName"], json!({"Ref": "BillingTable"}), "{id}");
                }
                "AWS/ApiGateway" => {
                    // REST API metrics are per API name and stage.
                    assert_eq!(dims.len(), 2, "{id}: {dims:?}");
                    assert_eq!(dims["ApiName"], api_name, "{id}: the API's name");
                    assert!(
                        !api_name.is_null(),
                        "the API needs a Name the alarm can use"
                    );
                    assert_eq!(dims["Stage"], json!(stage), "{id}: the one stage");
                }
                other => panic!("{id}: namespace {other}"),
            }
        }
    }
}

#[test]
fn the_api_stage_pages_when_it_answers_5xx() {
    // The authorizer failing to start (a missing SSM parameter, an empty JWKS URL) makes
    // every paid route answer 503 without any function error or PssBilling metric.
    let alarms = cfn_resources(cfn(), "AWS::CloudWatch::Alarm");
    let on = |metric: &str| {
        alarms
            .iter()
            .filter(|(_, a)| {
                watched(a)
                    .iter()
                    .any(|(ns, m, _)| ns == "AWS/ApiGateway" && m == metric)
            })
            .map(|(id, a)| (*id, *a))
            .collect::<Vec<_>>()
    };
    let five = on("5XXError");
    assert_eq!(five.len(), 1, "one alarm on the stage's 5XXError");
    let p = &five[0].1["Properties"];
    assert_eq!(p["Statistic"], "Sum");
    assert_eq!(p["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
    assert!(p["Threshold"].as_f64().unwrap() <= 5.0);
    assert!(p["Period"].as_u64().unwrap() <= 300);
    // 4XX as a share of requests, over a minimum of traffic: a wrong JwtIssuer or JwtAudience
    // answers 401 to everyone without a single 5xx.
    let four = on("4XXError");
    assert_eq!(four.len(), 1, "one alarm on the 4XX rate");
    let p = &four[0].1["Properties"];
    let ids: Vec<&str> = p["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Id"].as_str().unwrap())
        .collect();
    let expression = p["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["ReturnData"] == true)
        .and_then(|m| m["Expression"].as_str())
        .expect("a returned expression");
    for id in &ids {
        if *id != "rate" {
            assert!(expression.contains(id), "{expression} ignores {id}");
        }
    }
    assert!(on("Count").iter().any(|(id, _)| *id == four[0].0));
}

#[test]
fn every_function_logs_to_a_group_the_stack_creates_and_keeps_for_log_retention_days() {
    let groups: Vec<(&str, &Json)> = cfn_resources(cfn(), "AWS::Logs::LogGroup");
    for (id, f) in cfn_resources(cfn(), "AWS::Lambda::Function") {
        // Lambda writes to /aws/lambda/<function name> unless LoggingConfig names another.
        assert!(
            f["Properties"]["LoggingConfig"].get("LogGroup").is_none(),
            "{id}"
        );
        assert_eq!(
            f["Properties"]["LoggingConfig"]["LogFormat"], "JSON",
            "{id}: the application log level filter needs JSON logs"
        );
        let name = json!({ "Fn::Sub": format!("/aws/lambda/${{{id}}}") });
        let mine: Vec<_> = groups
            .iter()
            .filter(|(_, g)| g["Properties"]["LogGroupName"] == name)
            .collect();
        assert_eq!(mine.len(), 1, "{id} has no log group of the stack's");
        assert_eq!(
            mine[0].1["Properties"]["RetentionInDays"],
            json!({"Ref": "LogRetentionDays"}),
            "{id}"
        );
    }
    assert_eq!(
        groups.len(),
        cfn_resources(cfn(), "AWS::Lambda::Function").len()
    );
}

#[test]
fn reserved_concurrency_can_be_switched_off_for_accounts_with_a_low_quota() {
    let p = &cfn()["Parameters"]["ReserveConcurrency"];
    assert_eq!(p["Default"], "true");
    assert_eq!(p["AllowedValues"], json!(["true", "false"]));
    let reserved = |overrides: &[(&str, &str)]| -> BTreeMap<String, Json> {
        let mut values = DEPLOYMENT.to_vec();
        values.extend_from_slice(overrides);
        let stack = Stack::new(cfn(), &values);
        cfn_resources(cfn(), "AWS::Lambda::Function")
            .into_iter()
            .filter_map(|(id, f)| {
                stack
                    .resolve(&f["Properties"]["ReservedConcurrentExecutions"])
                    .filter(|v| !v.is_null())
                    .map(|v| (id.to_owned(), v))
            })
            .collect()
    };
    assert_eq!(
        reserved(&[]),
        BTreeMap::from([
            ("ReconcileFunction".to_owned(), json!(1)),
            ("StripeWebhookFunction".to_owned(), json!("10")),
        ])
    );
    // Off: no reservation at all. (Lambda refuses any reservation that leaves less than 100
    // unreserved, and a new account may have a quota of 10.)
    assert_eq!(
        reserved(&[("ReserveConcurrency", "false")]),
        BTreeMap::new()
    );
    // 0 is not "off": Lambda throttles a function reserved at 0.
    assert_eq!(
        cfn()["Parameters"]["WebhookReservedConcurrency"]["MinValue"],
        1
    );
}

// ---- parameters a deployment must set --------------------------------------------------------

#[test]
fn what_a_deployment_must_set_has_no_default_and_sam_local_gets_the_local_values() {
    let params = cfn()["Parameters"].as_object().unwrap();
    let required: Vec<&str> = params
        .iter()
        .filter(|(_, p)| p.get("Default").is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        required,
        [
            "FrontendOrigins",
            "JwtAlgorithm",
            "JwtAudience",
            "JwtIssuer",
            "StripeAccountId"
        ],
        "a local-stack default would deploy a stack that refuses every real token"
    );
    for (name, p) in params {
        if p.get("Default").is_none() && p.get("AllowedValues").is_none() {
            assert!(
                p.get("AllowedPattern").is_some() || p["MinLength"].as_u64() >= Some(1),
                "{name} accepts an empty value"
            );
        }
    }
    assert_eq!(
        params["StripeAccountId"]["AllowedPattern"],
        "^acct_[A-Za-z0-9]+$"
    );
    // sam local reads samconfig.toml: its local commands give every one of them the local
    // stack's value (env.local.json sets the variables themselves).
    use pss_local::stack::{JWT_AUDIENCE, JWT_ISSUER};
    let config = samconfig();
    for env in ["default", "x86_64"] {
        for cmd in ["local_invoke", "local_start_api"] {
            let o = &config[env][cmd]["parameter_overrides"];
            for name in &required {
                assert!(o[*name].is_string(), "{env} {cmd}: no {name}");
            }
            assert_eq!(o["JwtIssuer"], JWT_ISSUER, "{env} {cmd}");
            assert_eq!(o["JwtAudience"], JWT_AUDIENCE, "{env} {cmd}");
            assert_eq!(o["JwtAlgorithm"], "HS256", "{env} {cmd}");
            // The local stack's fixture account, which env.local.json pins the functions to.
            let env_local: Json = serde_json::from_str(
                &std::fs::read_to_string(workspace_root().join("env.local.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(
                o["StripeAccountId"], env_local["StripeWebhookFunction"]["STRIPE_ACCOUNT_ID"],
                "{env} {cmd}"
            );
        }
    }
}

#[test]
fn an_asymmetric_jwt_algorithm_cannot_be_deployed_without_a_jwks_url() {
    let rules = cfn()["Rules"]
        .as_object()
        .expect("Rules survive the transform");
    let holds = |values: &[(&str, &str)]| -> Vec<String> {
        let mut all = DEPLOYMENT.to_vec();
        all.extend_from_slice(values);
        let stack = Stack::new(cfn(), &all);
        let mut failed = Vec::new();
        for (name, rule) in rules {
            let applies = rule
                .get("RuleCondition")
                .is_none_or(|c| stack.condition_value(c));
            if !applies {
                continue;
            }
            for a in rule["Assertions"].as_array().unwrap() {
                if !stack.condition_value(&a["Assert"]) {
                    failed.push(name.clone());
                }
            }
        }
        failed
    };
    assert!(holds(&[("JwtAlgorithm", "HS256")]).is_empty());
    assert!(!holds(&[("JwtAlgorithm", "RS256")]).is_empty());
    assert!(!holds(&[("JwtAlgorithm", "ES256")]).is_empty());
    assert!(
        holds(&[
            ("JwtAlgorithm", "ES256"),
            (
                "JwtJwksUrl",
                "https://portal.example.com/.well-known/jwks.json"
            )
        ])
        .is_empty()
    );
}

#[test]
fn the_stripe_account_pin_reaches_every_function_that_calls_stripe() {
    let mut callers = 0;
    for (id, f) in cfn_resources(cfn(), "AWS::Lambda::Function") {
        let vars = &f["Properties"]["Environment"]["Variables"];
        if vars.get("STRIPE_SECRET_KEY_PARAMETER").is_some() {
            callers += 1;
            assert_eq!(
                vars["STRIPE_ACCOUNT_ID"],
                json!({"Ref": "StripeAccountId"}),
                "{id}"
            );
        } else {
            assert!(vars.get("STRIPE_ACCOUNT_ID").is_none(), "{id}");
        }
    }
    assert_eq!(
        callers, 6,
        "webhook, checkout, plan, portal, sync, reconcile"
    );
    let alarms = cfn_resources(cfn(), "AWS::CloudWatch::Alarm");
    for metric in [
        metrics::STRIPE_ACCOUNT_MISMATCH,
        metrics::STRIPE_NOT_FOUND_UNCONFIRMED,
    ] {
        let (id, a) = alarms
            .iter()
            .find(|(_, a)| a["Properties"]["MetricName"] == metric)
            .unwrap_or_else(|| panic!("no alarm on {metric}"));
        let p = &a["Properties"];
        assert_eq!(p["Namespace"], metrics::NAMESPACE, "{id}");
        assert!(p.get("Dimensions").is_none(), "{id}");
        assert_eq!(
            (&p["Statistic"], &p["Threshold"], &p["Period"]),
            (&json!("Sum"), &json!(1), &json!(300)),
            "{id}"
        );
        assert_eq!(p["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
    }
}

// ---- samconfig.toml ----------------------------------------------------------------------------

#[test]
fn every_samconfig_environment_deploys_and_runs_the_architecture_it_builds() {
    let config = samconfig();
    let environments = config.as_object().unwrap();
    assert!(environments.contains_key("x86_64"));
    let default_deploy = &config["default"]["deploy"];
    for (env, commands) in environments {
        let arch = |cmd: &str| {
            commands[cmd]["parameter_overrides"]["Architecture"]
                .as_str()
                .unwrap_or("arm64")
                .to_owned()
        };
        let built = arch("build");
        for cmd in ["deploy", "local_invoke", "local_start_api"] {
            assert_eq!(
                arch(cmd),
                built,
                "`sam {cmd} --config-env {env}` would run {} binaries as {}",
                built,
                arch(cmd)
            );
        }
        // A deploy of any environment creates IAM roles and needs a bucket for the code.
        for key in ["capabilities", "resolve_s3", "confirm_changeset"] {
            assert_eq!(
                commands["deploy"][key], default_deploy[key],
                "{env} deploy: {key}"
            );
        }
    }
    for (env, commands) in environments {
        // `cached` hashes CodeUri (the whole repository, target/ included) for each function
        // and never hits; cargo's own incremental build is the cache.
        assert_ne!(commands["build"]["cached"], true, "{env}");
        assert_eq!(commands["build"]["beta_features"], true, "{env}");
    }
}

// ---- README "Deploying" against the template and the code ------------------------------------

fn deploying_section() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let start = readme
        .find("\n## Deploying\n")
        .expect("a Deploying section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

#[test]
fn the_deploy_steps_create_the_endpoint_with_the_handled_events_and_the_pinned_version() {
    let section = deploying_section();
    let events_at = section.find("events=\"").expect("the events list");
    let list = &section[events_at + 8..];
    let list: BTreeSet<&str> = list[..list.find('"').unwrap()].split_whitespace().collect();
    let handled: BTreeSet<&str> = billing::webhook::HANDLED_EVENT_TYPES
        .iter()
        .copied()
        .collect();
    assert_eq!(
        list, handled,
        "the endpoint's events are exactly the handled types"
    );
    assert!(
        section.contains(&format!("api_version={}", billing::stripe::API_VERSION)),
        "the endpoint is pinned to the code's API version"
    );
    // Every parameter a deployment must set is explained, and the guided deploy's question.
    for (name, p) in cfn()["Parameters"].as_object().unwrap() {
        if p.get("Default").is_none() {
            assert!(
                section.contains(&format!("`{name}`")),
                "{name} is not explained"
            );
        }
    }
    for needed in [
        "Function Url has no authentication. Is this okay? [y/N]",
        "ReserveConcurrency=false",
        "--config-env x86_64",
        "get-account-settings",
        "update-function-configuration",
        "cargo run -p catalog-sync",
    ] {
        assert!(section.contains(needed), "the deploy steps lack {needed}");
    }
    // In that order: the key before the deploy, the endpoint before its secret, the secret
    // before the cold start.
    let at = |s: &str| section.find(s).unwrap_or_else(|| panic!("{s}"));
    // (Commands at the start of a line: the code blocks.)
    assert!(at("/pss-billing/stripe/secret-key --value") < at("\nsam deploy --guided"));
    assert!(at("\nsam deploy --guided") < at("/v1/webhook_endpoints"));
    assert!(at("/v1/webhook_endpoints") < at("/pss-billing/stripe/webhook-secrets --value"));
    assert!(
        at("/pss-billing/stripe/webhook-secrets --value") < at("update-function-configuration")
    );
}
