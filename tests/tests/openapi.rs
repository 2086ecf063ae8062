//! openapi.json (served at `GET /api/billing/openapi.json`) against the code. The document is
//! written by hand; these tests fail as soon as it and the code disagree:
//!
//! * its paths are exactly the route table, with the route's module, role, security and function;
//! * the served document is the committed file (with the deployment's `FrontendUrl` pattern,
//!   which admits exactly the redirect URLs the validator accepts), and template.yaml serves
//!   every route;
//! * request bodies, examples and query parameters agree with the parsers and handlers;
//! * every response the code produces (the real handlers against moto and the fixture Stripe,
//!   the view builders, the authorizer's and API Gateway's bodies, the webhook's answers) is
//!   documented for its operation and status and validates against its schema (the small
//!   validator of `pss_billing_tests::openapi`: no undeclared property passes), and in the
//!   other direction every documented response, property, optional property, nullable field
//!   and enum value is produced by the code at least once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use billing::api::checkout::{PortalFlow, parse_checkout, parse_portal};
use billing::api::interval::parse_switch;
use billing::api::leads::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use billing::api::manage::parse_service;
use billing::api::plan::{parse_add, parse_preview};
use billing::api::views::{
    self, CheckoutView, IntervalChangeView, InvoicePageView, InvoiceView, ModuleChangeView,
    NextInvoiceView, PlanChangeView, PlanPreviewView, PreviewLineView, PurchaseMode, UrlView,
};
use billing::api::{ApiConfig, DEFAULT_INVOICE_LIMIT, OriginAllowlist, handlers, params};
use billing::auth::decision::{AUTHORIZER_FAILURE_BODY, UNAUTHORIZED_BODY};
use billing::auth::{Caller, Decision, Denial};
use billing::catalog_sync::sync_catalog;
use billing::domain::*;
use billing::http::{ApiError, body_bytes};
use billing::routes::{Access, ROUTES, Role, Route};
use billing::store::{Applied, BillingStore, StoreError};
use billing::stripe::{StripeApi, StripeApiError};
use billing::sync::{SyncError, Syncer};
use billing::webhook::{
    DEFAULT_MAX_BODY_BYTES, Outcome, WebhookConfig, WebhookHandler, WebhookSecret,
};
use lambda_http::{Body, Request, Response};
use pss_billing_tests::openapi::{
    Coverage, assert_covered, at, document, document_text, escape, strings, validate,
};
use pss_billing_tests::{
    build, dynamo_client, fake_stripe, fresh_store, gateway_request, moto, template, workspace_root,
};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

// ---- the document ---------------------------------------------------------------------------

/// Follows `$ref`s (`#/components/...`) to the pointer of what they name.
fn follow(doc: &Value, pointer: String) -> String {
    match at(doc, &pointer).get("$ref").and_then(Value::as_str) {
        Some(target) => follow(
            doc,
            target
                .strip_prefix('#')
                .expect("only local $refs")
                .to_owned(),
        ),
        None => pointer,
    }
}

fn op(method: &str, path: &str) -> String {
    format!("/paths/{}/{}", escape(path), method.to_ascii_lowercase())
}

/// The Stripe webhook is no API Gateway route: it is documented under `x-webhooks`.
const WEBHOOK: &str = "/x-webhooks/stripe/post";

/// `GET /api/leads` for `/paths/~1api~1leads/get`.
fn describe(operation: &str) -> String {
    let mut parts = operation.rsplitn(2, '/');
    let method = parts.next().unwrap_or_default().to_ascii_uppercase();
    let path = parts.next().unwrap_or_default();
    let path = path.strip_prefix("/paths/").unwrap_or(path);
    format!("{method} {}", path.replace("~1", "/").replace("~0", "~"))
}

const JSON_MEDIA: &str = "content/application~1json";

fn route_set() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect()
}

/// Every operation pointer of the document: the routes, then the webhook.
fn operations() -> Vec<String> {
    ROUTES
        .iter()
        .map(|r| op(r.method, r.path))
        .chain([WEBHOOK.to_owned()])
        .collect()
}

/// The 403 bodies the authorizer can answer for a route: a role below the minimum, a module
/// the org has not unlocked. Empty when every signed-in caller passes both.
fn denials(route: &Route) -> Vec<Denial> {
    match route.access {
        Access::Public => Vec::new(),
        Access::Authenticated { module, min_role } => {
            let mut found = Vec::new();
            if Role::ALL.iter().any(|r| !r.satisfies(min_role)) {
                found.push(Denial::Role { required: min_role });
            }
            if !module.is_free() {
                found.push(Denial::Module(module));
            }
            found
        }
    }
}

// ---- the document against the route table --------------------------------------------------

#[test]
fn paths_are_exactly_the_route_table() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.0.3");

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            assert!(
                ["get", "put", "post", "delete", "patch", "head", "options"]
                    .contains(&method.as_str()),
                "{path}: unexpected key {method:?} in the path item"
            );
            documented.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let routes = route_set();
    assert_eq!(
        documented.difference(&routes).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not in billing::routes::ROUTES"
    );
    assert_eq!(
        routes.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in billing::routes::ROUTES but not documented"
    );

    let mut ids = BTreeSet::new();
    for route in ROUTES {
        let pointer = op(route.method, route.path);
        let operation = at(&doc, &pointer);
        let name = format!("{} {}", route.method, route.path);
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no operationId"));
        assert!(
            ids.insert(id.to_owned()),
            "{name}: duplicate operationId {id}"
        );
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: no summary"
        );
        assert_eq!(
            operation["x-lambda-function"], route.function,
            "{name}: x-lambda-function"
        );
        match route.access {
            Access::Public => {
                assert_eq!(operation["security"], json!([]), "{name} is public");
                assert!(
                    operation.get("x-required-module").is_none()
                        && operation.get("x-minimum-role").is_none(),
                    "{name} is public: no x-required-module / x-minimum-role"
                );
            }
            Access::Authenticated { module, min_role } => {
                assert_eq!(
                    operation["security"],
                    json!([{"bearerAuth": []}]),
                    "{name} needs a token"
                );
                assert_eq!(
                    operation["x-required-module"],
                    module.as_str(),
                    "{name}: x-required-module"
                );
                assert_eq!(
                    operation["x-minimum-role"],
                    min_role.as_str(),
                    "{name}: x-minimum-role"
                );
            }
        }

        let statuses: BTreeSet<&str> = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: no responses"))
            .keys()
            .map(String::as_str)
            .collect();
        for status in ["200", "500"] {
            assert!(statuses.contains(status), "{name}: no {status} response");
        }
        // The authorizer answers 401 only on routes that need a token, 403 only where some
        // caller can be denied, and 503 when it cannot check access.
        assert_eq!(statuses.contains("401"), !route.is_public(), "{name}: 401");
        assert_eq!(
            statuses.contains("403"),
            !denials(route).is_empty(),
            "{name}: 403"
        );
        if !route.is_public() {
            assert!(statuses.contains("503"), "{name}: no 503");
            assert_eq!(
                follow(&doc, format!("{pointer}/responses/401")),
                "/components/responses/Unauthorized"
            );
        }
        for status in statuses {
            let response = follow(&doc, format!("{pointer}/responses/{status}"));
            assert!(
                at(&doc, &response)["description"].is_string(),
                "{name} {status}: no description"
            );
            at(&doc, &format!("{response}/{JSON_MEDIA}/schema"));
        }
    }

    let hook = at(&doc, WEBHOOK);
    assert!(ids.insert(hook["operationId"].as_str().unwrap().to_owned()));
    assert_eq!(hook["security"], json!([]));
    assert_eq!(hook["x-local-path"], pss_local::gateway::WEBHOOK_PATH);

    assert_eq!(
        doc["security"],
        json!([{"bearerAuth": []}]),
        "signed in by default"
    );
    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"], &scheme["bearerFormat"]),
        (&json!("http"), &json!("bearer"), &json!("JWT"))
    );
    let servers: Vec<&str> = doc["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        servers,
        [
            "https://{apiId}.execute-api.{region}.amazonaws.com/prod",
            "http://127.0.0.1:3000"
        ]
    );
    for server in doc["servers"].as_array().unwrap() {
        let url = server["url"].as_str().unwrap();
        for variable in url.split('{').skip(1).map(|s| s.split('}').next().unwrap()) {
            assert!(
                server["variables"][variable]["default"].is_string(),
                "{url}: variable {variable} has no default"
            );
        }
    }
}

// ---- the served document ----------------------------------------------------------------------

/// Parses JSON refusing duplicate object keys (serde_json would silently keep the last one).
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut keys = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

#[test]
fn the_served_document_is_the_committed_file() {
    let text = document_text();
    assert_eq!(
        billing::openapi::DOCUMENT,
        text,
        "rebuild: the embedded copy is stale"
    );
    // Served: the committed file with the deployment's FrontendUrl pattern (the test below
    // shows that pattern is the validator's).
    let config = ApiConfig {
        origins: OriginAllowlist::parse("https://app.example.test"),
        sync_per_minute: 5,
        offer: Default::default(),
    };
    let response = handlers::openapi(&config);
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/json"
    );
    let served: Value = serde_json::from_slice(body_bytes(response.body())).unwrap();
    let mut expected = document();
    expected["components"]["schemas"]["FrontendUrl"]["pattern"] =
        config.origins.url_pattern().into();
    assert_eq!(served, expected);

    serde_json::from_str::<NoDuplicateKeys>(&text).expect("openapi.json has a duplicate key");
    // Pretty-printed with a 2-space indent, one value per line.
    assert!(text.ends_with("}\n"), "openapi.json ends with a newline");
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('}') || trimmed.starts_with(']') {
            depth = depth.checked_sub(1).expect("balanced");
        }
        assert_eq!(
            line.len() - trimmed.len(),
            2 * depth,
            "openapi.json:{}: indent by 2 per level: {line}",
            n + 1
        );
        if trimmed.ends_with('{') || trimmed.ends_with('[') {
            depth += 1;
        }
    }
    assert_eq!(depth, 0);
}

// ---- template.yaml ------------------------------------------------------------------------------

#[test]
fn template_serves_every_route_and_the_webhook() {
    let doc = document();
    let t = template::load();
    let mut webhook_binaries = Vec::new();
    for (name, resource) in template::resources(&t, "AWS::Serverless::Function") {
        if !resource["Properties"]["FunctionUrlConfig"].is_null() {
            assert_eq!(
                resource["Properties"]["FunctionUrlConfig"]["AuthType"].as_str(),
                Some("NONE"),
                "{name}: the Stripe signature is the authentication"
            );
            webhook_binaries.push(
                resource["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .expect("a function binary"),
            );
        }
    }
    let mut served = BTreeSet::new();
    for event in template::api_events(&t) {
        let (name, method, path) = (event.function, &event.method, event.path);
        let route = billing::routes::find(method, path)
            .unwrap_or_else(|| panic!("{name} serves {method} {path}: not in ROUTES"));
        assert_eq!(
            route.function, event.binary,
            "{method} {path}: served by another binary"
        );
        assert!(
            served.insert((method.clone(), path.to_owned())),
            "{method} {path} twice"
        );
    }
    assert_eq!(served, route_set(), "template.yaml Api events vs ROUTES");
    assert_eq!(
        webhook_binaries,
        [at(&doc, WEBHOOK)["x-lambda-function"].as_str().unwrap()],
        "the webhook is the one function behind a Function URL"
    );
}

/// The local gateway answers an undeclared method or resource with the body API Gateway
/// renders for MISSING_AUTHENTICATION_TOKEN through template.yaml's DEFAULT_4XX template.
#[test]
fn undeclared_routes_answer_as_api_gateway_does() {
    let responses = gateway_responses();
    assert!(
        !responses
            .iter()
            .any(|r| r.name == "MISSING_AUTHENTICATION_TOKEN"),
        "a MISSING_AUTHENTICATION_TOKEN response of its own: update the local gateway"
    );
    let default_4xx = responses
        .iter()
        .find(|r| r.name == "DEFAULT_4XX")
        .expect("DEFAULT_4XX");
    assert_eq!(
        default_4xx.status, None,
        "DEFAULT_4XX keeps API Gateway's own status (403 here)"
    );
    let rendered = default_4xx.body.replace(
        "$context.error.messageString",
        "\"Missing Authentication Token\"",
    );
    assert_eq!(
        rendered,
        pss_local::gateway::MISSING_AUTHENTICATION_TOKEN_BODY
    );
}

/// API Gateway's gateway responses of template.yaml's REST API.
fn gateway_responses() -> Vec<template::GatewayResponse> {
    let t = template::load();
    template::gateway_responses(template::apis(&t).first().expect("the REST API"))
}

// ---- requests ---------------------------------------------------------------------------------

#[test]
fn request_bodies_and_parameters_match_the_parsers() {
    let doc = document();
    let catalog = Catalog::standard();
    // The examples must work against the local stack, which allows the Vite dev server.
    let origins = OriginAllowlist::parse("http://localhost:5173");

    let with_body: BTreeSet<&str> = ROUTES
        .iter()
        .filter(|r| at(&doc, &op(r.method, r.path)).get("requestBody").is_some())
        .map(|r| r.path)
        .collect();
    assert_eq!(
        with_body,
        BTreeSet::from([
            "/api/billing/checkout",
            "/api/billing/portal",
            "/api/billing/preview",
            "/api/billing/modules",
            "/api/billing/interval/preview",
            "/api/billing/interval"
        ])
    );

    type Parser<'a> = Box<dyn Fn(&[u8]) -> Result<(), ApiError> + 'a>;
    let parsers: [(&str, Parser); 6] = [
        (
            "/api/billing/preview",
            Box::new(|b| parse_preview(b, &catalog).map(drop)),
        ),
        (
            "/api/billing/modules",
            Box::new(|b| parse_add(b, &catalog).map(drop)),
        ),
        (
            "/api/billing/checkout",
            Box::new(|b| parse_checkout(b, &catalog, &origins).map(drop)),
        ),
        (
            "/api/billing/portal",
            Box::new(|b| parse_portal(b, &origins).map(drop)),
        ),
        (
            "/api/billing/interval/preview",
            Box::new(|b| parse_switch(b, false).map(drop)),
        ),
        (
            "/api/billing/interval",
            Box::new(|b| parse_switch(b, true).map(drop)),
        ),
    ];
    // The fields a body may leave out (the parser's defaults), and the required fields whose
    // absence the parser answers with a 422 of its own rather than 400 `bad_request`.
    let optional: BTreeMap<&str, Vec<&str>> =
        BTreeMap::from([("/api/billing/portal", vec!["flow"])]);
    let refused_with: BTreeMap<(&str, &str), &str> = BTreeMap::from([(
        ("/api/billing/interval", "prorationDate"),
        "invalid_proration_date",
    )]);
    for (path, parse) in &parsers {
        let body = format!("{}/requestBody", op("POST", path));
        assert_eq!(at(&doc, &body)["required"], true, "{path}");
        let schema = format!("{body}/{JSON_MEDIA}/schema");
        let object = at(&doc, &follow(&doc, schema.clone()));
        let required = strings(object.get("required"));
        let properties: Vec<String> = object["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let optional_fields = optional.get(path).cloned().unwrap_or_default();
        let mut sorted: Vec<String> = required
            .iter()
            .cloned()
            .chain(optional_fields.iter().map(|f| (*f).to_owned()))
            .collect();
        sorted.sort();
        assert_eq!(
            sorted, properties,
            "{path}: every field of the body is required by the parser, but the optional ones"
        );
        let mut examples_leave_out: BTreeSet<&str> = BTreeSet::new();
        let mut examples_set: BTreeSet<&str> = BTreeSet::new();
        let examples = at(&doc, &format!("{body}/{JSON_MEDIA}/examples"))
            .as_object()
            .unwrap();
        assert!(!examples.is_empty(), "{path}: no example");
        for (name, example) in examples {
            let value = &example["value"];
            validate(&doc, &schema, value, "$", &mut Coverage::default())
                .unwrap_or_else(|e| panic!("{path} example {name}: {e}"));
            parse(value.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("{path} example {name} is refused: {e:?}"));
            for field in &optional_fields {
                if value.get(*field).is_some() {
                    examples_set.insert(field);
                } else {
                    examples_leave_out.insert(field);
                }
            }
            for field in &required {
                for broken in [None, Some(Value::Null)] {
                    let mut body = value.clone();
                    match &broken {
                        None => body.as_object_mut().unwrap().remove(field),
                        Some(v) => body
                            .as_object_mut()
                            .unwrap()
                            .insert(field.clone(), v.clone()),
                    };
                    let err = parse(body.to_string().as_bytes()).expect_err(field);
                    let expected = match refused_with.get(&(*path, field.as_str())) {
                        Some(code) => (422, *code),
                        None => (400, "bad_request"),
                    };
                    assert_eq!(
                        (err.status.as_u16(), err.code),
                        expected,
                        "{path}: {field} = {broken:?}"
                    );
                }
            }
        }
        for field in &optional_fields {
            assert!(
                examples_set.contains(field) && examples_leave_out.contains(field),
                "{path}: the examples both set and leave out the optional {field}"
            );
        }
    }

    // The portal's `flow`: the document's values are the parser's, any other is refused.
    let portal = |flow: &Value| {
        let body = json!({"returnUrl": "http://localhost:5173/billing", "flow": flow});
        parse_portal(body.to_string().as_bytes(), &origins)
    };
    let flows = at(
        &doc,
        "/components/schemas/PortalRequest/properties/flow/enum",
    );
    assert_eq!(flows, &json!(["payment_method_update"]));
    assert_eq!(
        portal(&flows[0]).unwrap().1,
        PortalFlow::PaymentMethodUpdate
    );
    for bad in [
        json!("payment_method"),
        json!(""),
        json!("PAYMENT_METHOD_UPDATE"),
    ] {
        assert_eq!(portal(&bad).unwrap_err().code, "invalid_flow", "{bad}");
    }

    // The interval switch: both intervals of the document pass, another is refused.
    for path in ["/api/billing/interval/preview", "/api/billing/interval"] {
        let schema = follow(
            &doc,
            format!("{}/requestBody/{JSON_MEDIA}/schema", op("POST", path)),
        );
        assert_eq!(
            at(&doc, &format!("{schema}/properties/interval/$ref")),
            "#/components/schemas/BillingInterval"
        );
    }
    for interval in at(&doc, "/components/schemas/BillingInterval/enum")
        .as_array()
        .unwrap()
    {
        let body = json!({"interval": interval, "prorationDate": 1});
        for commit in [false, true] {
            assert_eq!(
                parse_switch(body.to_string().as_bytes(), commit)
                    .unwrap()
                    .interval
                    .as_str(),
                interval.as_str().unwrap()
            );
        }
    }
    let week = json!({"interval": "week", "prorationDate": 1}).to_string();
    assert_eq!(
        parse_switch(week.as_bytes(), false).unwrap_err().code,
        "invalid_interval"
    );
    for date in [0, -1] {
        let body = json!({"interval": "year", "prorationDate": date}).to_string();
        assert_eq!(
            parse_switch(body.as_bytes(), true).unwrap_err().code,
            "invalid_proration_date"
        );
    }
    assert_eq!(
        at(
            &doc,
            "/components/schemas/IntervalSwitchRequest/properties/prorationDate/minimum"
        ),
        1
    );

    // Path parameters: `{service}` of the module routes names exactly the paid modules.
    let paid_modules: Vec<&str> = catalog.paid_entries().map(|e| e.module.as_str()).collect();
    for route in ROUTES {
        let declared: Vec<&Value> = at(&doc, &op(route.method, route.path))
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .collect();
        let in_template: Vec<&str> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let names: Vec<&str> = declared
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names, in_template,
            "{} {}: path parameters",
            route.method, route.path
        );
        for p in declared {
            assert_eq!(p["required"], true, "{}", route.path);
            assert_eq!(p["name"], "service", "{}", route.path);
            assert_eq!(p["schema"]["enum"], json!(paid_modules), "{}", route.path);
        }
    }
    for module in ServiceModule::ALL {
        let parsed = parse_service(Some(module.as_str()));
        match parsed {
            Ok(m) => {
                assert_eq!(m, module);
                assert!(paid_modules.contains(&module.as_str()));
            }
            Err(e) => {
                assert_eq!((e.status.as_u16(), e.code), (422, "free_service"));
                assert!(!paid_modules.contains(&module.as_str()));
            }
        }
    }
    for unknown in [None, Some("Teleport"), Some(""), Some("leadgeneration")] {
        let e = parse_service(unknown).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code),
            (404, "unknown_service"),
            "{unknown:?}"
        );
    }

    // The checkout body's constraints are the parser's.
    let checkout = "/components/schemas/CheckoutRequest/properties";
    let paid: Vec<&str> = catalog.paid_entries().map(|e| e.module.as_str()).collect();
    assert_eq!(
        at(&doc, &format!("{checkout}/services/items/enum")),
        &json!(paid)
    );
    let body = |services: Vec<&str>, interval: &str| {
        json!({"services": services, "interval": interval,
            "successUrl": "http://localhost:5173/ok", "cancelUrl": "http://localhost:5173/no"})
        .to_string()
    };
    let min = at(&doc, &format!("{checkout}/services/minItems"))
        .as_u64()
        .unwrap() as usize;
    let max = at(&doc, &format!("{checkout}/services/maxItems"))
        .as_u64()
        .unwrap() as usize;
    for (n, ok) in [(min - 1, false), (min, true), (max, true), (max + 1, false)] {
        let result = parse_checkout(
            body(vec![paid[0]; n], "month").as_bytes(),
            &catalog,
            &origins,
        );
        assert_eq!(result.is_ok(), ok, "{n} services");
        if let Err(e) = result {
            assert_eq!(e.code, "invalid_services");
        }
    }
    assert_eq!(
        at(&doc, &format!("{checkout}/interval/$ref")),
        "#/components/schemas/BillingInterval"
    );
    for interval in at(&doc, "/components/schemas/BillingInterval/enum")
        .as_array()
        .unwrap()
    {
        parse_checkout(
            body(vec![paid[0]], interval.as_str().unwrap()).as_bytes(),
            &catalog,
            &origins,
        )
        .unwrap();
    }
    for pointer in [
        format!("{checkout}/successUrl"),
        format!("{checkout}/cancelUrl"),
        "/components/schemas/PortalRequest/properties/returnUrl".to_owned(),
    ] {
        assert_eq!(at(&doc, &pointer), &json!({"$ref": FRONTEND_URL_REF}));
    }
    let max_url = at(&doc, "/components/schemas/FrontendUrl/maxLength")
        .as_u64()
        .unwrap() as usize;
    let url = |len: usize| {
        let base = "http://localhost:5173/";
        format!("{base}{}", "a".repeat(len - base.len()))
    };
    assert!(origins.allows(&url(max_url)));
    assert!(!origins.allows(&url(max_url + 1)));
    // The document's URL pattern (narrowed to the deployment's origins, as the schemathesis run
    // does) admits exactly the URLs the allowlist allows.
    let pattern = regex_lite::Regex::new(&origins.url_pattern()).unwrap();
    let generic = at(&doc, "/components/schemas/FrontendUrl/pattern")
        .as_str()
        .unwrap();
    let generic = regex_lite::Regex::new(generic).unwrap();
    for candidate in [
        "http://localhost:5173",
        "http://localhost:5173/",
        "HTTP://LocalHost:5173/billing?x=1#top",
        "http://localhost:5173?x",
        "http://localhost:5173#x",
        "http://localhost:5173/a@b/%20~",
        "http://localhost:51730/",
        "http://localhost:5173.evil.test/",
        "http://localhost:5173@evil.test/",
        "https://localhost:5173/",
        "http://localhost:5173/a b",
        "http://localhost:5173/a\\b",
        "http://localhost:5173/caf\u{e9}",
        "http://localhost:5173/\u{7f}",
        "http://localhost:5173/\t",
        "javascript:alert(1)",
        "",
        "http://localhost:5173/?^",
        "http://localhost:5173/%zz",
        "http://localhost:5173/%",
        "http://localhost:5173/%2f%2F",
        "http://localhost:5173/#a#b",
        "http://localhost:5173?a=1&b=[x]",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(random_urls())
    {
        let candidate = candidate.as_str();
        assert_eq!(
            pattern.is_match(candidate),
            origins.allows(candidate),
            "{candidate:?}"
        );
        if origins.allows(candidate) {
            assert!(generic.is_match(candidate), "{candidate:?}");
        }
    }

    // Query parameters: exactly those the handlers read, with the handlers' bounds.
    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("/api/billing/invoices", vec!["cursor", "limit"]),
        ("/api/billing/sync", vec!["session_id"]),
        ("/api/leads", vec!["cursor", "limit"]),
    ]);
    for route in ROUTES {
        let mut names: Vec<&str> = at(&doc, &op(route.method, route.path))
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p["in"] != "path")
            .map(|p| {
                assert_eq!(p["in"], "query", "{}", route.path);
                assert_eq!(p["required"], false, "{}", route.path);
                p["name"].as_str().unwrap()
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            expected.get(route.path).cloned().unwrap_or_default(),
            "{} {}: query parameters",
            route.method,
            route.path
        );
    }
    let limit = |path: &str| {
        at(&doc, &op("GET", path))["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap()["schema"]
            .clone()
    };
    assert_eq!(
        limit("/api/billing/invoices"),
        json!({"type": "integer", "minimum": 1, "maximum": 100, "default": DEFAULT_INVOICE_LIMIT})
    );
    assert_eq!(
        limit("/api/leads"),
        json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE})
    );
    assert_eq!(params::MAX_LIMIT, 100);

    // `cursor` and `session_id`: the document's pattern is the validator's, in both directions.
    let param = |method: &str, path: &str, name: &str| {
        at(&doc, &op(method, path))["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    let cursor = param("GET", "/api/billing/invoices", "cursor");
    assert_eq!(cursor["pattern"], params::INVOICE_CURSOR_PATTERN);
    let session = param("POST", "/api/billing/sync", "session_id");
    assert_eq!(session["pattern"], params::SESSION_ID_PATTERN);
    let leads_cursor = param("GET", "/api/leads", "cursor");
    assert_eq!(leads_cursor["pattern"], params::LEAD_CURSOR_PATTERN);
    let lead_re = regex_lite::Regex::new(params::LEAD_CURSOR_PATTERN).unwrap();
    let cursor_re = regex_lite::Regex::new(params::INVOICE_CURSOR_PATTERN).unwrap();
    let session_re = regex_lite::Regex::new(params::SESSION_ID_PATTERN).unwrap();
    let mut rng = fastrand::Rng::with_seed(15);
    let alphabet: Vec<char> = "0123456789abcdefABCDEF_-csteliv#/ %\u{e9}"
        .chars()
        .collect();
    let mut samples: Vec<String> = vec![
        String::new(),
        hex::encode("INV#001700000000#in_1"),
        hex::encode("INV#"),
        hex::encode("INV# "),
        hex::encode("INV#\u{7f}"),
        hex::encode("LEAD#lead_1"),
        hex::encode("LEAD#"),
        hex::encode("LEAD#a#b"),
        hex::encode(format!("LEAD#{}", "~".repeat(255))),
        hex::encode(format!("LEAD#{}", "~".repeat(256))),
        hex::encode(format!("INV#{}", "~".repeat(296))),
        hex::encode(format!("INV#{}", "~".repeat(297))),
        "cs_test_a1B2".to_owned(),
        "cs_live_Z".to_owned(),
        "cs_test_".to_owned(),
        "cs_test_a_b".to_owned(),
        format!("cs_test_{}", "a".repeat(200)),
        format!("cs_test_{}", "a".repeat(201)),
    ];
    for _ in 0..3000 {
        let mut sample = match rng.u8(0..4) {
            0 => "494e5623".to_owned(),
            3 => "4c45414423".to_owned(),
            1 => format!("cs_{}_", if rng.bool() { "test" } else { "live" }),
            _ => String::new(),
        };
        for _ in 0..rng.usize(0..12) {
            if rng.bool() {
                sample.push_str(&hex::encode([rng.u8(..)]));
            } else {
                sample.push(alphabet[rng.usize(..alphabet.len())]);
            }
        }
        samples.push(sample);
    }
    for sample in &samples {
        assert_eq!(
            params::invoice_cursor(Some(sample)).is_ok(),
            cursor_re.is_match(sample),
            "cursor {sample:?}"
        );
        assert_eq!(
            params::lead_cursor(Some(sample)).is_ok(),
            lead_re.is_match(sample),
            "leads cursor {sample:?}"
        );
        assert_eq!(
            params::session_id(Some(sample)).is_ok(),
            session_re.is_match(sample),
            "session_id {sample:?}"
        );
    }
    assert!(session["maxLength"].as_u64().unwrap() >= "cs_test_".len() as u64 + 200);
    assert!(cursor["maxLength"].as_u64().unwrap() >= 8 + 2 * 296);
    assert!(leads_cursor["maxLength"].as_u64().unwrap() >= 10 + 2 * 255);
    for (method, path, name) in [
        ("GET", "/api/billing/invoices", "cursor"),
        ("GET", "/api/leads", "cursor"),
        ("POST", "/api/billing/sync", "session_id"),
    ] {
        let schema = param(method, path, name);
        let example = schema["example"].as_str().expect("an example");
        assert!(
            regex_lite::Regex::new(schema["pattern"].as_str().unwrap())
                .unwrap()
                .is_match(example),
            "{name} example"
        );
    }
}

const FRONTEND_URL_REF: &str = "#/components/schemas/FrontendUrl";

/// URLs under and around the allowed origin, from an alphabet rich in URL delimiters.
fn random_urls() -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(15);
    let alphabet: Vec<char> = "aZ09-._~!$&'()*+,;=:@/?#%[]\\ \"^`{|}<>\u{e9}\u{7f}fF"
        .chars()
        .collect();
    (0..5000)
        .map(|_| {
            let mut url = match rng.u8(0..4) {
                0 => "HTTP://LOCALHOST:5173".to_owned(),
                1 => "http://localhost:517".to_owned(),
                _ => "http://localhost:5173".to_owned(),
            };
            for _ in 0..rng.usize(0..10) {
                url.push(alphabet[rng.usize(..alphabet.len())]);
            }
            url
        })
        .collect()
}

// ---- responses --------------------------------------------------------------------------------

/// Checks responses against the operation's documented response for their status.
struct Checker {
    doc: Value,
    seen: Coverage,
    answered: BTreeSet<(String, String)>,
}

impl Checker {
    fn check(&mut self, operation: &str, status: u16, body: &Value) {
        let name = describe(operation);
        let pointer = format!("{operation}/responses/{status}");
        assert!(
            self.doc.pointer(&pointer).is_some(),
            "{name} answers {status} but openapi.json documents no such response: {body}"
        );
        let media = format!("{}/{JSON_MEDIA}", follow(&self.doc, pointer));
        validate(
            &self.doc,
            &format!("{media}/schema"),
            body,
            "$",
            &mut self.seen,
        )
        .unwrap_or_else(|e| panic!("{name} {status}: {e}\n  body: {body}"));
        if status >= 400 {
            let code = &body["error"];
            let examples = self
                .doc
                .pointer(&format!("{media}/examples"))
                .and_then(Value::as_object)
                .unwrap_or_else(|| panic!("{name} {status}: no examples listing its codes"));
            assert!(
                examples.values().any(|e| &e["value"]["error"] == code),
                "{name} {status}: the code {code} is not among the documented examples"
            );
        }
        self.answered
            .insert((operation.to_owned(), status.to_string()));
    }

    /// Checks a handler's response, which must have `status`; returns its body.
    fn expect(&mut self, operation: &str, status: u16, response: Response<Body>) -> Value {
        let got = response.status().as_u16();
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{} {got}",
            describe(operation)
        );
        let bytes = body_bytes(response.body());
        let body: Value = serde_json::from_slice(bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)));
        assert_eq!(got, status, "{}: {body}", describe(operation));
        self.check(operation, status, &body);
        body
    }

    fn view(&mut self, operation: &str, view: impl serde::Serialize) {
        self.check(operation, 200, &serde_json::to_value(view).unwrap());
    }

    fn error(&mut self, operation: &str, error: ApiError) {
        let status = error.status.as_u16();
        self.expect(operation, status, error.into_response());
    }

    fn raw(&mut self, operation: &str, status: u16, body: &str) {
        let value: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{operation} {status}: not JSON ({e}): {body}"));
        self.check(operation, status, &value);
    }
}

/// The authorizer context API Gateway hands a function after the authorizer allowed `role`.
fn allowed(org: &OrgId, role: Role, unlocked: ModuleSet) -> Map<String, Value> {
    Decision::Allow {
        caller: Some(Caller {
            org: org.clone(),
            user: UserId::parse("user_openapi").unwrap(),
            role,
            details: Default::default(),
        }),
        entitlements: Some(unlocked),
    }
    .context()
}

fn request(
    method: &str,
    context: Option<Map<String, Value>>,
    query: &[(&str, &str)],
    body: &str,
) -> Request {
    let body = if body.is_empty() {
        Body::Empty
    } else {
        Body::Text(body.to_owned())
    };
    gateway_request(method, "/", context, query, body)
}

fn lead(id: &str, full: bool) -> Lead {
    let some = |v: &str| full.then(|| v.to_owned());
    Lead {
        id: id.to_owned(),
        name: some("Ada Lovelace"),
        email: some("ada@example.test"),
        company: some("Analytical Engines"),
        source: some("web_form"),
        status: some("new"),
        score: full.then_some(80),
        created_at: full.then(Timestamp::now),
    }
}

/// Subscriptions that between them set and leave unset every optional field.
fn subscriptions(now: Timestamp) -> Vec<Subscription> {
    let mut rich = build::subscription(
        "sub_openapi_rich",
        "cus_openapi",
        SubscriptionStatus::PastDue,
        &ServiceModule::ALL,
    );
    rich.past_due_since = Some(now);
    rich.cancel_at_period_end = true;
    rich.cancel_at = Some(now.plus_seconds(86_400));
    rich.trial_end = Some(now.plus_seconds(3_600));
    rich.items[1].interval = Some(BillingInterval::Year);
    // Removed at period end.
    rich.items[2].ends_at = rich.current_period_end;
    rich.open_invoice = Some(OpenInvoice {
        id: InvoiceId::parse("in_openapi_open").unwrap(),
        amount_due: 17_700,
        currency: "usd".to_owned(),
        hosted_invoice_url: Some("https://invoice.stripe.test/i/in_openapi_open".to_owned()),
        due_date: Some(now.plus_seconds(7 * 86_400)),
    });
    rich.items.push(SubscriptionItem {
        id: "si_foreign".to_owned(),
        price_id: "price_not_in_the_catalog".to_owned(),
        lookup_key: None,
        module: None,
        interval: None,
        quantity: 3,
        unit_amount: None,
        currency: None,
        product_id: None,
        ends_at: None,
    });
    let mut bare = build::subscription(
        "sub_openapi_bare",
        "cus_openapi",
        SubscriptionStatus::Incomplete,
        &[],
    );
    bare.current_period_start = None;
    bare.current_period_end = None;
    bare.created = None;
    bare.open_invoice = Some(OpenInvoice {
        id: InvoiceId::parse("in_openapi_first").unwrap(),
        amount_due: 9_900,
        currency: "usd".to_owned(),
        hosted_invoice_url: None,
        due_date: None,
    });
    // A yearly plan whose period Stripe did not give (no paid-through date).
    let mut yearly = build::subscription(
        "sub_openapi_yearly",
        "cus_openapi",
        SubscriptionStatus::Active,
        &[ServiceModule::EmailAutomation],
    );
    yearly.items[0].interval = Some(BillingInterval::Year);
    yearly.current_period_start = None;
    yearly.current_period_end = None;
    vec![rich, bare, yearly]
}

fn payment_method(id: &str, card: Option<CardDetails>) -> PaymentMethod {
    PaymentMethod {
        id: PaymentMethodId::parse(id).unwrap(),
        customer_id: CustomerId::parse("cus_openapi").unwrap(),
        kind: if card.is_some() { "card" } else { "sepa_debit" }.to_owned(),
        card,
        bank_account: None,
        email: None,
        created: None,
    }
}

#[test]
fn every_response_of_the_code_is_documented_and_every_documented_one_is_produced() {
    // One long async body holding every route's handler futures: more stack than a test
    // thread's default 2 MiB.
    let body = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(every_response_is_documented())
        })
        .unwrap();
    if let Err(panic) = body.join() {
        std::panic::resume_unwind(panic);
    }
}

async fn every_response_is_documented() {
    let doc = document();
    let mut c = Checker {
        doc: doc.clone(),
        seen: Coverage::default(),
        answered: BTreeSet::new(),
    };
    let services = op("GET", "/api/billing/services");
    let openapi = op("GET", "/api/billing/openapi.json");
    let subscription = op("GET", "/api/billing/subscription");
    let invoices = op("GET", "/api/billing/invoices");
    let methods = op("GET", "/api/billing/payment-methods");
    let checkout = op("POST", "/api/billing/checkout");
    let portal = op("POST", "/api/billing/portal");
    let preview = op("POST", "/api/billing/preview");
    let modules = op("POST", "/api/billing/modules");
    let remove = op("DELETE", "/api/billing/modules/{service}");
    let resume = op("POST", "/api/billing/modules/{service}/resume");
    let interval_preview = op("POST", "/api/billing/interval/preview");
    let interval_switch = op("POST", "/api/billing/interval");
    let sync = op("POST", "/api/billing/sync");
    let leads = op("GET", "/api/leads");

    let store = fresh_store().await;
    // A table that does not exist: every read fails as DynamoDB being down would.
    let broken = BillingStore::new(dynamo_client(&moto().url), "openapi-no-such-table");
    let stripe_url = fake_stripe().url.clone();
    let stripe = || StripeApi::new("sk_test_openapi", Some(&stripe_url)).unwrap();
    let policy = GracePolicy::default();
    let syncer = Syncer::new(store.clone(), stripe(), policy);
    let broken_syncer = Syncer::new(broken.clone(), stripe(), policy);
    let config = ApiConfig {
        origins: OriginAllowlist::parse("https://app.example.com"),
        sync_per_minute: 1,
        offer: Default::default(),
    };
    let all: ModuleSet = ServiceModule::ALL.into_iter().collect();
    let org = build::org("openapi");
    let member = || Some(allowed(&org, Role::Member, all));
    let admin = || Some(allowed(&org, Role::Admin, all));
    let now = Timestamp::now();

    // GET /api/billing/services and /openapi.json (public).
    c.expect(
        &services,
        200,
        handlers::services(&config, &request("GET", None, &[], "")),
    );
    let some = ModuleSet::from_csv("LeadGeneration");
    c.expect(
        &services,
        200,
        handlers::services(
            &config,
            &request("GET", Some(allowed(&org, Role::Member, some)), &[], ""),
        ),
    );
    c.view(&services, views::services(&Catalog::standard(), None));
    c.expect(&openapi, 200, handlers::openapi(&config));

    // GET /api/billing/subscription, and the overview POST /api/billing/sync also answers.
    let get_subscription = |ctx| {
        let req = request("GET", ctx, &[], "");
        let (store, config) = (&store, &config);
        async move { handlers::subscription(store, policy, config, &req).await }
    };
    c.expect(&subscription, 200, get_subscription(member()).await);
    c.expect(&subscription, 401, get_subscription(None).await);
    c.expect(
        &subscription,
        503,
        handlers::subscription(&broken, policy, &config, &request("GET", member(), &[], "")).await,
    );
    let held = build::subscription(
        "sub_openapi_held",
        "cus_openapi",
        SubscriptionStatus::Active,
        &[ServiceModule::LeadGeneration],
    );
    store
        .apply_subscription(&org, &held, FetchTime::now(), None, policy)
        .await
        .unwrap();
    c.expect(&subscription, 200, get_subscription(member()).await);
    let grants = EntitlementSet::from_grants([
        (ServiceModule::LeadGeneration, Grant { until: None }),
        (
            ServiceModule::SocialInbox,
            Grant {
                until: Some(now.plus_seconds(3_600)),
            },
        ),
    ]);
    let grace = policy.past_due_grace_seconds;
    for operation in [&subscription, &sync] {
        c.view(
            operation,
            views::overview(&subscriptions(now), &grants, grace, now),
        );
        c.view(
            operation,
            views::overview(&[], &EntitlementSet::default(), grace, now),
        );
        let mut ending = build::subscription(
            "sub_openapi_trial_ending",
            "cus_openapi",
            SubscriptionStatus::Trialing,
            &[ServiceModule::LeadGeneration],
        );
        ending.trial_end = Some(now.plus_seconds(86_400));
        ending.trial_end_notice = ending.trial_end;
        let mut trialed = views::overview(&[ending], &grants, grace, now);
        trialed.trial_days = 14;
        trialed.trialed_modules = Catalog::standard()
            .paid_entries()
            .map(|e| e.module)
            .collect();
        assert!(trialed.subscriptions[0].trial_will_end);
        c.view(operation, trialed);
        for (i, status) in SubscriptionStatus::ALL.into_iter().enumerate() {
            let one = build::subscription(
                &format!("sub_openapi_{i}"),
                "cus_openapi",
                status,
                &[ServiceModule::Integrations],
            );
            c.view(operation, views::overview(&[one], &grants, grace, now));
        }
    }

    // GET /api/billing/invoices
    let get_invoices = |ctx, query: &[(&str, &str)]| {
        let req = request("GET", ctx, query, "");
        let (store, config) = (&store, &config);
        async move { handlers::invoices(store, config, &req).await }
    };
    c.expect(&invoices, 200, get_invoices(member(), &[]).await);
    for i in 0..2 {
        let invoice = build::invoice(&format!("in_openapi_{i}"), "cus_openapi", 1_700_000_000 + i);
        store
            .apply_invoice(&org, &invoice, FetchTime::now(), None)
            .await
            .unwrap();
    }
    let page = c.expect(
        &invoices,
        200,
        get_invoices(member(), &[("limit", "1")]).await,
    );
    let cursor = page["nextCursor"].as_str().expect("a next page").to_owned();
    c.expect(
        &invoices,
        200,
        get_invoices(member(), &[("limit", "100"), ("cursor", &cursor)]).await,
    );
    for bad in ["0", "101", "ten"] {
        c.expect(
            &invoices,
            400,
            get_invoices(member(), &[("limit", bad)]).await,
        );
    }
    c.expect(
        &invoices,
        400,
        get_invoices(member(), &[("cursor", "!!!")]).await,
    );
    c.expect(&invoices, 401, get_invoices(None, &[]).await);
    c.expect(
        &invoices,
        503,
        handlers::invoices(&broken, &config, &request("GET", member(), &[], "")).await,
    );
    let statuses = at(&doc, "/components/schemas/Invoice/properties/status/enum");
    let mut samples: Vec<InvoiceView> = statuses
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .enumerate()
        .map(|(i, s)| {
            let mut invoice =
                build::invoice(&format!("in_status_{i}"), "cus_openapi", 1_700_000_000);
            invoice.status =
                Some(InvoiceStatus::parse(s).unwrap_or_else(|| panic!("no invoice status {s}")));
            InvoiceView::from(invoice)
        })
        .collect();
    let mut draft = build::invoice("in_draft", "cus_openapi", 1_700_000_000);
    draft.status = None;
    draft.number = None;
    draft.due_date = Some(now);
    draft.paid_at = None;
    draft.hosted_invoice_url = None;
    draft.invoice_pdf = None;
    samples.push(draft.into());
    c.view(
        &invoices,
        InvoicePageView {
            invoices: samples,
            next_cursor: Some(cursor.clone()),
        },
    );

    // GET /api/billing/payment-methods
    c.expect(
        &methods,
        200,
        handlers::payment_methods(&store, &config, &request("GET", member(), &[], "")).await,
    );
    c.expect(
        &methods,
        401,
        handlers::payment_methods(&store, &config, &request("GET", None, &[], "")).await,
    );
    c.expect(
        &methods,
        503,
        handlers::payment_methods(&broken, &config, &request("GET", member(), &[], "")).await,
    );
    let card = payment_method(
        "pm_openapi_card",
        Some(CardDetails {
            brand: "visa".to_owned(),
            last4: "4242".to_owned(),
            exp_month: 12,
            exp_year: 2030,
        }),
    );
    let default = card.id.clone();
    c.view(
        &methods,
        views::payment_methods(
            vec![card, payment_method("pm_openapi_sepa", None)],
            Some(&default),
        ),
    );

    // POST /api/billing/checkout
    let checkout_body = |services: &[&str], interval: &str, success: &str| {
        json!({"services": services, "interval": interval, "successUrl": success,
            "cancelUrl": "https://app.example.com/billing"})
        .to_string()
    };
    let ok_url = "https://app.example.com/billing/done";
    let post_checkout = |syncer: &Syncer, ctx, body: String| {
        let req = request("POST", ctx, &[], &body);
        let syncer = syncer.clone();
        let config = config.clone();
        async move { handlers::checkout(&syncer, &config, &req).await }
    };
    // The org pays for LeadGeneration monthly (below): a yearly purchase is a first checkout.
    let social = checkout_body(&["SocialInbox"], "year", ok_url);
    c.expect(
        &checkout,
        401,
        post_checkout(&syncer, None, social.clone()).await,
    );
    c.expect(
        &checkout,
        403,
        post_checkout(&syncer, member(), social.clone()).await,
    );
    c.expect(
        &checkout,
        400,
        post_checkout(&syncer, admin(), "nope".to_owned()).await,
    );
    for body in [
        checkout_body(&["BasicCRM"], "month", ok_url),
        checkout_body(&[], "month", ok_url),
        checkout_body(&["SocialInbox"], "week", ok_url),
        checkout_body(&["SocialInbox"], "month", "https://evil.test/"),
    ] {
        c.expect(&checkout, 422, post_checkout(&syncer, admin(), body).await);
    }
    c.expect(
        &checkout,
        409,
        post_checkout(
            &syncer,
            admin(),
            checkout_body(&["LeadGeneration"], "year", ok_url),
        )
        .await,
    );
    c.expect(
        &checkout,
        503,
        post_checkout(&broken_syncer, admin(), social.clone()).await,
    );
    // No prices in Stripe yet: catalog-sync has not run.
    let unavailable = c.expect(
        &checkout,
        503,
        post_checkout(&syncer, admin(), social.clone()).await,
    );
    assert_eq!(unavailable["error"], "catalog_unavailable");
    sync_catalog(&syncer.stripe, Catalog::standard().entries())
        .await
        .unwrap();
    c.expect(
        &checkout,
        200,
        post_checkout(&syncer, admin(), social.clone()).await,
    );
    // A monthly purchase joins the monthly plan instead.
    let joins = c.expect(
        &checkout,
        409,
        post_checkout(
            &syncer,
            admin(),
            checkout_body(&["SocialInbox"], "month", ok_url),
        )
        .await,
    );
    assert_eq!(joins["error"], "plan_exists");
    for code in ["payment_past_due", "plan_canceling", "checkout_completed"] {
        c.error(
            &checkout,
            ApiError::conflict(code, "(the code's own message)"),
        );
    }
    c.view(
        &checkout,
        CheckoutView {
            session_id: "cs_test_openapi".to_owned(),
            url: "https://checkout.stripe.test/c/pay/cs_test_openapi".to_owned(),
        },
    );

    // POST /api/billing/preview and /api/billing/modules (the org pays for LeadGeneration
    // monthly; its Stripe-side plan is exercised in tests/tests/plan.rs).
    let post_plan = |syncer: &Syncer, ctx, path: &'static str, body: String| {
        let mut req = request("POST", ctx, &[], &body);
        *req.uri_mut() = path.parse().unwrap();
        let syncer = syncer.clone();
        let config = config.clone();
        async move { handlers::plan(&syncer, &config, &req).await }
    };
    let purchase = |services: &[&str], interval: &str| {
        json!({"services": services, "interval": interval}).to_string()
    };
    let add = |services: &[&str], interval: &str, date: i64| {
        json!({"services": services, "interval": interval, "prorationDate": date}).to_string()
    };
    for (operation, path) in [
        (&preview, "/api/billing/preview"),
        (&modules, "/api/billing/modules"),
    ] {
        let body = add(&["SocialInbox"], "year", now.unix());
        c.expect(
            operation,
            401,
            post_plan(&syncer, None, path, body.clone()).await,
        );
        c.expect(
            operation,
            403,
            post_plan(&syncer, member(), path, body.clone()).await,
        );
        c.expect(
            operation,
            400,
            post_plan(&syncer, admin(), path, "nope".to_owned()).await,
        );
        for bad in [
            add(&["Teleport"], "year", 1),
            add(&["SocialInbox"], "week", 1),
        ] {
            c.expect(operation, 422, post_plan(&syncer, admin(), path, bad).await);
        }
        let held = c.expect(
            operation,
            409,
            post_plan(
                &syncer,
                admin(),
                path,
                add(&["LeadGeneration"], "month", now.unix()),
            )
            .await,
        );
        assert_eq!(held["error"], "already_subscribed");
        c.expect(
            operation,
            503,
            post_plan(&broken_syncer, admin(), path, body.clone()).await,
        );
        for error in [
            StripeApiError::Unavailable("down".to_owned()),
            StripeApiError::Rejected {
                status: 400,
                code: None,
            },
        ] {
            c.error(operation, error.into());
        }
        c.error(
            operation,
            ApiError::new(
                lambda_http::http::StatusCode::SERVICE_UNAVAILABLE,
                "catalog_unavailable",
                "Prices are not available right now.",
            ),
        );
        c.error(
            operation,
            ApiError::conflict(
                "payment_past_due",
                "This plan has an unpaid invoice: pay it first, then add modules.",
            ),
        );
        c.error(
            operation,
            ApiError::conflict("payment_pending", "An earlier addition is waiting.")
                .with_invoice_url(Some("https://invoice.stripe.test/i/in_1".to_owned())),
        );
        c.error(
            operation,
            ApiError::conflict("plan_canceling", "This plan is set to end."),
        );
        c.error(
            operation,
            ApiError::conflict("trial_used", "The plan is in its free trial."),
        );
        // A module of the plan set to end (billing::api::plan's refuse_scheduled_change).
        c.error(
            operation,
            ApiError::conflict("change_scheduled", "Email Automation is set to end."),
        );
        c.error(operation, StoreError::Conflict("billing data").into());
        c.error(
            operation,
            SyncError::Unattributable("sub_x".to_owned()).into(),
        );
    }
    // No yearly plan: the preview is Checkout's first invoice, and nothing can be added.
    let first = c.expect(
        &preview,
        200,
        post_plan(
            &syncer,
            admin(),
            "/api/billing/preview",
            purchase(&["SocialInbox"], "year"),
        )
        .await,
    );
    assert_eq!(first["mode"], "checkout");
    let none = c.expect(
        &modules,
        409,
        post_plan(
            &syncer,
            admin(),
            "/api/billing/modules",
            add(&["SocialInbox"], "year", now.unix()),
        )
        .await,
    );
    assert_eq!(none["error"], "no_subscription");
    let zero = c.expect(
        &modules,
        422,
        post_plan(
            &syncer,
            admin(),
            "/api/billing/modules",
            add(&["SocialInbox"], "year", 0),
        )
        .await,
    );
    assert_eq!(zero["error"], "invalid_proration_date");
    c.error(
        &modules,
        ApiError::conflict("preview_expired", "The price shown is out of date."),
    );
    c.error(
        &modules,
        ApiError::new(
            lambda_http::http::StatusCode::PAYMENT_REQUIRED,
            "payment_incomplete",
            "The charge did not go through.",
        )
        .with_invoice_url(Some("https://invoice.stripe.test/i/in_2".to_owned())),
    );
    // Every field, null and module name a preview and a change can carry.
    let line = |service: Option<ServiceModule>, dated: bool| PreviewLineView {
        description: "Remaining time on 1 × Email Automation after 11 Dec 2026".to_owned(),
        amount: 3267,
        service,
        proration: dated,
        period_start: dated.then_some(now),
        period_end: dated.then_some(now.plus_seconds(86_400)),
    };
    let paid: Vec<ServiceModule> = Catalog::standard()
        .paid_entries()
        .map(|e| e.module)
        .collect();
    let mut lines: Vec<PreviewLineView> = paid.iter().map(|m| line(Some(*m), true)).collect();
    lines.push(line(None, false));
    c.view(
        &preview,
        PlanPreviewView {
            mode: PurchaseMode::Add,
            interval: BillingInterval::Month,
            currency: "usd".to_owned(),
            services: paid.clone(),
            proration_date: Some(now),
            trial_days: None,
            amount_due_today: 3267,
            next_invoice: NextInvoiceView {
                amount: 17_700,
                date: None,
            },
            lines,
        },
    );
    c.view(
        &preview,
        PlanPreviewView {
            mode: PurchaseMode::Checkout,
            interval: BillingInterval::Year,
            currency: "usd".to_owned(),
            services: vec![ServiceModule::LeadGeneration],
            proration_date: None,
            trial_days: Some(14),
            amount_due_today: 0,
            next_invoice: NextInvoiceView {
                amount: 99_900,
                date: Some(now.plus_seconds(14 * 86_400)),
            },
            lines: vec![line(Some(ServiceModule::LeadGeneration), true)],
        },
    );
    let mut overview = views::overview(&subscriptions(now), &grants, grace, now);
    overview.trial_days = 14;
    overview.trialed_modules = paid.clone();
    c.view(
        &modules,
        PlanChangeView {
            added: paid.clone(),
            amount_charged: 3267,
            currency: "usd".to_owned(),
            invoice_id: Some("in_1".to_owned()),
            hosted_invoice_url: Some("https://invoice.stripe.test/i/in_1".to_owned()),
            subscription: overview,
        },
    );
    c.view(
        &modules,
        PlanChangeView {
            added: vec![ServiceModule::EmailAutomation],
            amount_charged: 0,
            currency: "usd".to_owned(),
            invoice_id: None,
            hosted_invoice_url: None,
            subscription: views::overview(&[], &EntitlementSet::default(), grace, now),
        },
    );

    // DELETE /api/billing/modules/{service} and POST /api/billing/modules/{service}/resume
    // (the org holds LeadGeneration monthly in the store only: a change would reach Stripe,
    // which is exercised in tests/tests/plan.rs).
    let call_plan = |syncer: &Syncer, ctx, method: &str, path: String, body: String| {
        let mut req = request(method, ctx, &[], &body);
        *req.uri_mut() = path.parse().unwrap();
        let syncer = syncer.clone();
        let config = config.clone();
        async move { handlers::plan(&syncer, &config, &req).await }
    };
    for (operation, method, suffix) in [(&remove, "DELETE", ""), (&resume, "POST", "/resume")] {
        let path = |service: &str| format!("/api/billing/modules/{service}{suffix}");
        c.expect(
            operation,
            401,
            call_plan(&syncer, None, method, path("SocialInbox"), String::new()).await,
        );
        c.expect(
            operation,
            403,
            call_plan(
                &syncer,
                member(),
                method,
                path("SocialInbox"),
                String::new(),
            )
            .await,
        );
        let unknown = c.expect(
            operation,
            404,
            call_plan(&syncer, admin(), method, path("Teleport"), String::new()).await,
        );
        assert_eq!(unknown["error"], "unknown_service");
        let free = c.expect(
            operation,
            422,
            call_plan(&syncer, admin(), method, path("BasicCRM"), String::new()).await,
        );
        assert_eq!(free["error"], "free_service");
        // A module the org does not pay for, and an org without a billing account.
        let not_held = c.expect(
            operation,
            404,
            call_plan(&syncer, admin(), method, path("SocialInbox"), String::new()).await,
        );
        assert_eq!(not_held["error"], "not_subscribed");
        let stranger = Some(allowed(&build::org("openapi-stranger"), Role::Admin, all));
        let none = c.expect(
            operation,
            404,
            call_plan(
                &syncer,
                stranger,
                method,
                path("LeadGeneration"),
                String::new(),
            )
            .await,
        );
        assert_eq!(none["error"], "not_subscribed");
        c.expect(
            operation,
            503,
            call_plan(
                &broken_syncer,
                admin(),
                method,
                path("LeadGeneration"),
                String::new(),
            )
            .await,
        );
        for error in [
            StripeApiError::Unavailable("down".to_owned()),
            StripeApiError::Rejected {
                status: 400,
                code: None,
            },
        ] {
            c.error(operation, error.into());
        }
        c.error(
            operation,
            ApiError::conflict(
                "payment_past_due",
                "This plan has an unpaid invoice: pay it first, then add modules.",
            )
            .with_invoice_url(Some("https://invoice.stripe.test/i/in_3".to_owned())),
        );
        c.error(
            operation,
            ApiError::conflict("payment_past_due", "No invoice page from Stripe."),
        );
        c.error(
            operation,
            ApiError::conflict("payment_pending", "An earlier addition is waiting.")
                .with_invoice_url(Some("https://invoice.stripe.test/i/in_1".to_owned())),
        );
        // Stripe's state after the change is not what was asked (billing::api::manage).
        c.error(
            operation,
            ApiError::conflict("conflict", "The plan changed meanwhile."),
        );
        c.error(operation, StoreError::Conflict("billing data").into());
        c.error(
            operation,
            SyncError::Unattributable("sub_x".to_owned()).into(),
        );
        for ends_at in [Some(now.plus_seconds(30 * 86_400)), None] {
            c.view(
                operation,
                ModuleChangeView {
                    service: ServiceModule::LeadGeneration,
                    ends_at,
                    subscription: views::overview(&subscriptions(now), &grants, grace, now),
                },
            );
        }
    }
    for service in paid.iter().copied() {
        c.view(
            &remove,
            ModuleChangeView {
                service,
                ends_at: Some(now),
                subscription: views::overview(&[], &EntitlementSet::default(), grace, now),
            },
        );
    }

    // POST /api/billing/interval/preview and /api/billing/interval (the org's plan is monthly).
    let switch = |interval: &str, date: i64| {
        json!({"interval": interval, "prorationDate": date}).to_string()
    };
    for (operation, path) in [
        (&interval_preview, "/api/billing/interval/preview"),
        (&interval_switch, "/api/billing/interval"),
    ] {
        let path = path.to_owned();
        let body = switch("year", now.unix());
        c.expect(
            operation,
            401,
            call_plan(&syncer, None, "POST", path.clone(), body.clone()).await,
        );
        c.expect(
            operation,
            403,
            call_plan(&syncer, member(), "POST", path.clone(), body.clone()).await,
        );
        c.expect(
            operation,
            400,
            call_plan(&syncer, admin(), "POST", path.clone(), "nope".to_owned()).await,
        );
        let week = c.expect(
            operation,
            422,
            call_plan(&syncer, admin(), "POST", path.clone(), switch("week", 1)).await,
        );
        assert_eq!(week["error"], "invalid_interval");
        let already = c.expect(
            operation,
            409,
            call_plan(
                &syncer,
                admin(),
                "POST",
                path.clone(),
                switch("month", now.unix()),
            )
            .await,
        );
        assert_eq!(already["error"], "already_on_interval");
        let stranger = Some(allowed(&build::org("openapi-stranger"), Role::Admin, all));
        let none = c.expect(
            operation,
            409,
            call_plan(&syncer, stranger, "POST", path.clone(), body.clone()).await,
        );
        assert_eq!(none["error"], "no_subscription");
        c.expect(
            operation,
            503,
            call_plan(&broken_syncer, admin(), "POST", path.clone(), body.clone()).await,
        );
        for error in [
            StripeApiError::Unavailable("down".to_owned()),
            StripeApiError::Rejected {
                status: 400,
                code: None,
            },
        ] {
            c.error(operation, error.into());
        }
        c.error(
            operation,
            ApiError::new(
                lambda_http::http::StatusCode::SERVICE_UNAVAILABLE,
                "catalog_unavailable",
                "Prices are not available right now.",
            ),
        );
        for code in [
            "plan_exists",
            "plan_canceling",
            "change_scheduled",
            "conflict",
            "payment_past_due",
        ] {
            c.error(
                operation,
                ApiError::conflict(code, "(the code's own message)"),
            );
        }
        for code in ["payment_past_due", "payment_pending"] {
            c.error(
                operation,
                ApiError::conflict(code, "(the code's own message)")
                    .with_invoice_url(Some("https://invoice.stripe.test/i/in_4".to_owned())),
            );
        }
        c.error(operation, StoreError::Conflict("billing data").into());
        c.error(
            operation,
            SyncError::Unattributable("sub_x".to_owned()).into(),
        );
    }
    let no_date = c.expect(
        &interval_switch,
        422,
        call_plan(
            &syncer,
            admin(),
            "POST",
            "/api/billing/interval".to_owned(),
            json!({"interval": "year"}).to_string(),
        )
        .await,
    );
    assert_eq!(no_date["error"], "invalid_proration_date");
    c.error(
        &interval_switch,
        ApiError::conflict("preview_expired", "The price shown is out of date."),
    );
    c.error(
        &interval_switch,
        ApiError::new(
            lambda_http::http::StatusCode::PAYMENT_REQUIRED,
            "payment_incomplete",
            "The charge did not go through.",
        )
        .with_invoice_url(Some("https://invoice.stripe.test/i/in_5".to_owned())),
    );
    c.view(
        &interval_preview,
        PlanPreviewView {
            mode: PurchaseMode::Switch,
            interval: BillingInterval::Year,
            currency: "usd".to_owned(),
            services: vec![ServiceModule::LeadGeneration],
            proration_date: Some(now),
            trial_days: None,
            amount_due_today: 96_733,
            next_invoice: NextInvoiceView {
                amount: 99_900,
                date: Some(now.plus_seconds(365 * 86_400)),
            },
            lines: vec![line(Some(ServiceModule::LeadGeneration), true)],
        },
    );
    c.view(
        &interval_switch,
        IntervalChangeView {
            interval: BillingInterval::Year,
            amount_charged: 96_733,
            currency: "usd".to_owned(),
            invoice_id: Some("in_6".to_owned()),
            hosted_invoice_url: Some("https://invoice.stripe.test/i/in_6".to_owned()),
            subscription: views::overview(&subscriptions(now), &grants, grace, now),
        },
    );
    c.view(
        &interval_switch,
        IntervalChangeView {
            interval: BillingInterval::Month,
            amount_charged: 0,
            currency: "usd".to_owned(),
            invoice_id: None,
            hosted_invoice_url: None,
            subscription: views::overview(&[], &EntitlementSet::default(), grace, now),
        },
    );

    // POST /api/billing/portal (the checkout above created the org's Stripe customer).
    let portal_body = |url: &str| json!({ "returnUrl": url }).to_string();
    let post_portal = |syncer: &Syncer, ctx, body: String| {
        let req = request("POST", ctx, &[], &body);
        let syncer = syncer.clone();
        let config = config.clone();
        async move { handlers::portal(&syncer, &config, &req).await }
    };
    let back = portal_body("https://app.example.com/billing");
    c.expect(
        &portal,
        200,
        post_portal(&syncer, admin(), back.clone()).await,
    );
    c.view(
        &portal,
        UrlView {
            url: "https://billing.stripe.test/p/session/bps_openapi".to_owned(),
        },
    );
    c.expect(&portal, 401, post_portal(&syncer, None, back.clone()).await);
    c.expect(
        &portal,
        403,
        post_portal(&syncer, member(), back.clone()).await,
    );
    c.expect(
        &portal,
        400,
        post_portal(&syncer, admin(), "{}".to_owned()).await,
    );
    c.expect(
        &portal,
        422,
        post_portal(&syncer, admin(), portal_body("https://evil.test/")).await,
    );
    // Straight to the card form (the portal configuration catalog-sync made allows it).
    let card_form =
        json!({"returnUrl": "https://app.example.com/billing", "flow": "payment_method_update"});
    c.expect(
        &portal,
        200,
        post_portal(&syncer, admin(), card_form.to_string()).await,
    );
    let bad_flow = json!({"returnUrl": "https://app.example.com/billing", "flow": "cancel"});
    let refused = c.expect(
        &portal,
        422,
        post_portal(&syncer, admin(), bad_flow.to_string()).await,
    );
    assert_eq!(refused["error"], "invalid_flow");
    // No portal configuration of this service in Stripe (catalog-sync has not run): the
    // fixture's account has one from the sync above, so the answer is built as the code does.
    c.error(
        &portal,
        ApiError::new(
            lambda_http::http::StatusCode::SERVICE_UNAVAILABLE,
            "portal_unavailable",
            "Billing management is not available right now.",
        ),
    );
    let newcomer = build::org("openapi-new");
    c.expect(
        &portal,
        409,
        post_portal(
            &syncer,
            Some(allowed(&newcomer, Role::Owner, all)),
            back.clone(),
        )
        .await,
    );
    c.expect(
        &portal,
        503,
        post_portal(&broken_syncer, admin(), back.clone()).await,
    );

    // POST /api/billing/sync (one per org and minute).
    let post_sync = |syncer: &Syncer, org: &OrgId, session: Option<&str>| {
        let query: Vec<(&str, &str)> = session.map(|s| ("session_id", s)).into_iter().collect();
        let req = request("POST", Some(allowed(org, Role::Member, all)), &query, "");
        let syncer = syncer.clone();
        let config = config.clone();
        async move { handlers::sync(&syncer, &config, &req).await }
    };
    let limited = build::org("openapi-sync");
    // A malformed session id is refused before the minute's one sync is spent.
    c.expect(&sync, 400, post_sync(&syncer, &limited, Some("cs#1")).await);
    c.expect(&sync, 200, post_sync(&syncer, &limited, None).await);
    c.expect(&sync, 429, post_sync(&syncer, &limited, None).await);
    c.expect(
        &sync,
        404,
        post_sync(
            &syncer,
            &build::org("openapi-sync"),
            Some("cs_test_missing"),
        )
        .await,
    );
    c.expect(
        &sync,
        200,
        post_sync(&syncer, &build::org("openapi-sync"), None).await,
    );
    c.expect(
        &sync,
        503,
        post_sync(&broken_syncer, &build::org("openapi-sync"), None).await,
    );
    let req = request("POST", None, &[], "");
    c.expect(&sync, 401, handlers::sync(&syncer, &config, &req).await);
    c.error(
        &sync,
        SyncError::Unattributable("cs_test_x".to_owned()).into(),
    );
    // Stripe failing.
    let fail = |count: u32| {
        let url = format!("{stripe_url}/_test/fail");
        pss_billing_tests::http::blocking(move || {
            let reply =
                pss_billing_tests::http::post_json(&url, &json!({"status": 503, "count": count}));
            assert_eq!(reply.status, 200, "{}", reply.body);
        })
    };
    fail(10).await;
    let down = c.expect(
        &checkout,
        502,
        post_checkout(
            &syncer,
            admin(),
            checkout_body(&["Integrations"], "year", ok_url),
        )
        .await,
    );
    fail(0).await;
    assert_eq!(down["error"], "stripe_unavailable");
    for operation in [&checkout, &portal, &sync] {
        for error in [
            StripeApiError::Unavailable("down".to_owned()),
            StripeApiError::Rejected {
                status: 400,
                code: None,
            },
            StripeApiError::Malformed("?".to_owned()),
        ] {
            c.error(operation, error.into());
        }
    }
    c.error(&invoices, StoreError::InvalidCursor.into());
    // A write that lost to a concurrent one.
    for operation in [&checkout, &sync] {
        c.error(operation, StoreError::Conflict("billing data").into());
    }
    // Two first checkouts racing to link different Stripe customers (billing::api's
    // ensure_customer, which a single-threaded test cannot make lose).
    c.error(
        &checkout,
        ApiError::conflict(
            "billing_account_conflict",
            "This Stripe customer is linked elsewhere.",
        ),
    );

    // GET /api/leads
    store
        .put_lead(&org, &lead("lead_full", true))
        .await
        .unwrap();
    store
        .put_lead(&org, &lead("lead_bare", false))
        .await
        .unwrap();
    let get_leads = |ctx, query: &[(&str, &str)]| {
        let req = request("GET", ctx, query, "");
        let (store, config) = (&store, &config);
        async move { handlers::leads(store, config, &req).await }
    };
    let page = c.expect(&leads, 200, get_leads(member(), &[("limit", "1")]).await);
    assert!(page["nextCursor"].is_string());
    let max = MAX_PAGE_SIZE.to_string();
    let page = c.expect(&leads, 200, get_leads(member(), &[("limit", &max)]).await);
    assert_eq!(page["leads"].as_array().unwrap().len(), 2);
    let over = (MAX_PAGE_SIZE + 1).to_string();
    for bad in ["0", over.as_str()] {
        c.expect(&leads, 400, get_leads(member(), &[("limit", bad)]).await);
    }
    c.expect(&leads, 400, get_leads(member(), &[("cursor", "!!!")]).await);
    c.expect(&leads, 401, get_leads(None, &[]).await);
    let locked = ModuleSet::from_csv("");
    c.expect(
        &leads,
        403,
        get_leads(Some(allowed(&org, Role::Owner, locked)), &[]).await,
    );
    let req = request("GET", member(), &[], "");
    c.expect(&leads, 503, handlers::leads(&broken, &config, &req).await);

    // What the authorizer and API Gateway answer before any function runs.
    let gateway = gateway_responses();
    let template_body = |name: &str| {
        gateway
            .iter()
            .find(|r| r.name == name)
            .map(|r| (r.status, r.body.clone()))
            .unwrap_or_else(|| panic!("no {name} gateway response"))
    };
    let (unauthorized_status, unauthorized) = template_body("UNAUTHORIZED");
    assert_eq!(unauthorized, UNAUTHORIZED_BODY);
    let (failure_status, failure) = template_body("AUTHORIZER_FAILURE");
    let (_, denied) = template_body("ACCESS_DENIED");
    assert_eq!(
        denied, "$context.authorizer.body",
        "403 bodies come from the authorizer"
    );
    let (_, internal) = template_body("DEFAULT_5XX");
    for route in ROUTES {
        let operation = op(route.method, route.path);
        c.raw(&operation, 500, &internal);
        c.error(&operation, ApiError::internal());
        if route.is_public() {
            continue;
        }
        c.raw(&operation, unauthorized_status.unwrap(), &unauthorized);
        c.raw(&operation, failure_status.unwrap(), &failure);
        for denial in denials(route) {
            c.raw(&operation, 403, &denial.body());
        }
    }
    // The local gateway's authorizer-failure body (see the report: its code differs).
    validate(
        &doc,
        "/components/schemas/Error",
        &serde_json::from_str(AUTHORIZER_FAILURE_BODY).unwrap(),
        "$",
        &mut Coverage::default(),
    )
    .unwrap();

    // The Stripe webhook.
    let secret = WebhookSecret::new("whsec_openapi");
    let hook = WebhookHandler::new(
        syncer.clone(),
        WebhookConfig {
            secrets: vec![secret.clone()],
            tolerance_seconds: 300,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            livemode: false,
        },
    );
    let media = format!("{WEBHOOK}/requestBody/{JSON_MEDIA}");
    for (name, example) in at(&doc, &format!("{media}/examples")).as_object().unwrap() {
        let event = &example["value"];
        validate(
            &doc,
            &format!("{media}/schema"),
            event,
            "$",
            &mut Coverage::default(),
        )
        .unwrap_or_else(|e| panic!("webhook example {name}: {e}"));
        let body = event.to_string();
        let signed = lambda_http::http::Request::builder()
            .method("POST")
            .uri(pss_local::gateway::WEBHOOK_PATH)
            .header("stripe-signature", secret.sign(now.unix(), body.as_bytes()))
            .body(Body::Text(body.clone()))
            .unwrap();
        let ack = c.expect(WEBHOOK, 200, billing::webhook::handle(&hook, &signed).await);
        assert_eq!(ack["outcome"], "ignored", "webhook example {name}");

        let mut live = event.clone();
        live["livemode"] = json!(true);
        let live = live.to_string();
        let refusals = [
            (None, body.clone().into_bytes()),
            (
                Some(secret.sign(now.unix(), b"not json")),
                b"not json".to_vec(),
            ),
            (
                Some(secret.sign(now.unix(), live.as_bytes())),
                live.into_bytes(),
            ),
            (None, vec![b' '; DEFAULT_MAX_BODY_BYTES + 1]),
        ];
        for (signature, body) in refusals {
            let outcome = hook.process(signature.as_deref(), &body, now.unix()).await;
            c.expect(WEBHOOK, 400, outcome.into_response());
        }
    }
    for (outcome, status) in [
        (Outcome::Duplicate, 200),
        (Outcome::Processed(Applied::Written), 200),
        (Outcome::Processed(Applied::Stale), 200),
        (Outcome::Processed(Applied::Duplicate), 200),
        (Outcome::Parked("no org".to_owned()), 200),
        (Outcome::Failed("down".to_owned()), 503),
    ] {
        c.expect(WEBHOOK, status, outcome.into_response());
    }

    // The other direction: every documented response was produced, and all of every schema.
    let mut missing = Vec::new();
    for operation in operations() {
        for status in at(&doc, &format!("{operation}/responses"))
            .as_object()
            .unwrap()
            .keys()
        {
            if !c.answered.contains(&(operation.clone(), status.clone())) {
                missing.push(format!("{} {status}", describe(&operation)));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documented responses the code never produced: {missing:?}"
    );
    assert_covered(
        &doc,
        &c.seen,
        &[
            "CheckoutRequest",
            "PortalRequest",
            "PurchaseRequest",
            "AddModulesRequest",
            "IntervalPreviewRequest",
            "IntervalSwitchRequest",
            "FrontendUrl",
            "StripeEvent",
        ],
    );
}

/// Every error example validates against its schema and names a code the code or the template
/// actually uses.
#[test]
fn error_examples_are_valid_and_name_real_codes() {
    let doc = document();
    let mut source = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let mut dirs = vec![workspace_root().join("shared/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                source.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut responses: Vec<String> = operations()
        .iter()
        .flat_map(|o| {
            at(&doc, &format!("{o}/responses"))
                .as_object()
                .unwrap()
                .keys()
                .map(move |s| format!("{o}/responses/{s}"))
        })
        .collect();
    responses.extend(
        at(&doc, "/components/responses")
            .as_object()
            .unwrap()
            .keys()
            .map(|name| format!("/components/responses/{name}")),
    );
    let mut checked = 0;
    for response in responses {
        if at(&doc, &response).get("$ref").is_some() {
            continue;
        }
        let media = format!("{response}/{JSON_MEDIA}");
        let Some(examples) = doc
            .pointer(&format!("{media}/examples"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for (name, example) in examples {
            let value = &example["value"];
            validate(
                &doc,
                &format!("{media}/schema"),
                value,
                "$",
                &mut Coverage::default(),
            )
            .unwrap_or_else(|e| panic!("{response} example {name}: {e}"));
            let code = value["error"].as_str().expect("an error code");
            assert!(
                source.contains(&format!("\"{code}\""))
                    || source.contains(&format!("\"error\":\"{code}\"")),
                "{response} example {name}: no code {code:?} in shared/src or template.yaml"
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} examples");
}

/// What a fuzzer reading the served document does (schemathesis's ST202 found a 2 KB
/// `HTTPS://000…0` valid by the schema and refused by the API): the served `FrontendUrl`
/// schema, pattern and `maxLength` (counted in characters, as JSON Schema counts), accepts a URL
/// exactly when the validator does, whatever the case of its scheme and host, at every length.
#[test]
fn the_served_frontend_url_schema_admits_exactly_what_the_validator_accepts() {
    let config = ApiConfig {
        origins: OriginAllowlist::parse("http://localhost:5173, https://App.Example.test"),
        sync_per_minute: 5,
        offer: Default::default(),
    };
    let served: Value =
        serde_json::from_slice(body_bytes(handlers::openapi(&config).body())).unwrap();
    let schema = at(&served, "/components/schemas/FrontendUrl");
    let pattern = regex_lite::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
    let max_length = schema["maxLength"].as_u64().unwrap() as usize;
    let schema_admits = |url: &str| url.chars().count() <= max_length && pattern.is_match(url);
    let padded = |prefix: &str, len: usize| format!("{prefix}{}", "0".repeat(len - prefix.len()));
    let mut candidates = vec![
        padded("HTTPS://", 2048),
        padded("HTTPS://", 40),
        padded("HTTPS://APP.EXAMPLE.TEST/", max_length),
        padded("HTTPS://APP.EXAMPLE.TEST/", max_length + 1),
        padded("https://app.example.test/", max_length),
        padded("https://app.example.test/", max_length + 1),
        padded("hTtP://LOCALHOST:5173/", max_length),
        "Https://app.example.test".to_owned(),
        "https://app.example.test.evil/".to_owned(),
        "http://app.example.test/".to_owned(),
        "https://localhost:5173/".to_owned(),
    ];
    candidates.extend(random_urls());
    let (mut admitted, mut refused) = (0, 0);
    for url in &candidates {
        let allowed = config.origins.allows(url);
        assert_eq!(
            schema_admits(url),
            allowed,
            "{} chars: {url:.60}",
            url.len()
        );
        if allowed { admitted += 1 } else { refused += 1 }
    }
    assert!(
        admitted >= 4 && refused >= 4,
        "{admitted} admitted, {refused} refused"
    );
}
