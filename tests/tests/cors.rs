//! CORS as a browser on another origin sees it, through the local stack, whose gateway adds no
//! CORS header to function responses (API Gateway's proxy integration does not either): every
//! function names an allowed origin on its own responses, success and error alike, and never a
//! foreign one; the gateway's own answers (preflight, 401, paywall 403) carry the template's
//! gateway-response header. Also pays through the local Checkout page, so the paid routes answer
//! from their functions.

use pss_billing_tests::{EmulatedStack, emulated_stack};
use std::time::{Duration, Instant};

use billing::routes::ROUTES;
use pss_local::gateway::GATEWAY_ALLOW_ORIGIN;
use pss_local::http::{Reply, blocking, request};
use pss_local::stack::{OTHER_ORG, dev_token};
use serde_json::json;

const APP: &str = "http://app.cors.test:4173";
const EVIL: &str = "https://app.cors.test.evil.example";

async fn call(
    method: &'static str,
    url: String,
    origin: &str,
    token: Option<&str>,
    body: &str,
) -> Reply {
    let origin = origin.to_owned();
    let auth = token.map(|t| format!("Bearer {t}"));
    let body = body.to_owned();
    blocking(move || {
        let mut headers = vec![
            ("Origin", origin.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(auth) = auth.as_deref() {
            headers.push(("Authorization", auth));
        }
        request(method, &url, &headers, body.as_bytes())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_answer_cors_themselves_and_the_gateway_only_for_its_own_responses() {
    let EmulatedStack {
        stack,
        moto: _moto,
        localstripe: _localstripe,
        fake,
    } = emulated_stack("pss-billing-cors", vec![APP.to_owned()]).await;
    let api = |path: &str| format!("{}{path}", stack.base_url);
    let (owner, member) = (stack.owner_token.clone(), stack.member_token.clone());
    let stranger = dev_token(OTHER_ORG, "user_other", "Owner");

    // Pay for LeadGeneration on the local Checkout page, as a browser would.
    let checkout = call(
        "POST",
        api("/api/billing/checkout"),
        APP,
        Some(&owner),
        &json!({"services": ["LeadGeneration"], "interval": "month",
            "successUrl": format!("{APP}/billing/success"), "cancelUrl": format!("{APP}/pricing")})
        .to_string(),
    )
    .await;
    assert_eq!(checkout.status, 200, "{}", checkout.body);
    let page = checkout.json()["url"].as_str().unwrap().to_owned();
    assert!(page.starts_with(&fake.url), "a local Checkout page: {page}");
    let paid = blocking(move || {
        request(
            "POST",
            &page,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"country=US&line1=1+Main+Street&city=Springfield&postal_code=12345&card=4242+4242+4242+4242&exp=12%2F34&cvc=123",
        )
    })
    .await;
    assert_eq!(paid.status, 303, "{}", paid.body);
    let back = paid.header("location").unwrap();
    assert!(
        back.starts_with(&format!("{APP}/billing/success?session_id=cs_")),
        "{back}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while call("GET", api("/api/leads"), APP, Some(&member), "")
        .await
        .status
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "the payment never unlocked LeadGeneration"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every route, answered by its function (200 or the function's own 4xx), from both origins.
    let cases: Vec<(&str, &str, &str, &str, u16)> = vec![
        ("GET", "/api/billing/services", "", "", 200),
        ("GET", "/api/billing/openapi.json", "", "", 200),
        ("GET", "/api/billing/subscription", "owner", "", 200),
        ("GET", "/api/billing/invoices", "owner", "", 200),
        ("GET", "/api/billing/invoices?limit=0", "owner", "", 400),
        ("GET", "/api/billing/payment-methods", "member", "", 200),
        ("POST", "/api/billing/checkout", "owner", "{not json", 400),
        ("POST", "/api/billing/preview", "owner", "{not json", 400),
        (
            "POST",
            "/api/billing/modules",
            "owner",
            r#"{"services":[]}"#,
            400,
        ),
        (
            "POST",
            "/api/billing/portal",
            "stranger",
            r#"{"returnUrl":"http://app.cors.test:4173/billing"}"#,
            409,
        ),
        ("POST", "/api/billing/sync", "owner", "", 200),
        ("GET", "/api/leads", "member", "", 200),
    ];
    let mut covered: Vec<&str> = Vec::new();
    for (method, path, who, body, status) in cases {
        let token = match who {
            "owner" => Some(owner.as_str()),
            "member" => Some(member.as_str()),
            "stranger" => Some(stranger.as_str()),
            _ => None,
        };
        let allowed = call(method, api(path), APP, token, body).await;
        assert_eq!(allowed.status, status, "{method} {path}: {}", allowed.body);
        assert_eq!(
            allowed.header("access-control-allow-origin"),
            Some(APP),
            "{method} {path}"
        );
        assert!(
            allowed.header("vary").is_some_and(|v| v.contains("Origin")),
            "{method} {path}: Vary: Origin"
        );
        let foreign = call(method, api(path), EVIL, token, body).await;
        assert_eq!(
            foreign.header("access-control-allow-origin"),
            None,
            "{method} {path} from {EVIL}"
        );
        let route = path.split('?').next().unwrap();
        covered.push(billing::routes::find(method, route).unwrap().function);
    }
    // Each function of the route table answered at least once.
    for route in ROUTES {
        assert!(
            covered.contains(&route.function),
            "{} not covered",
            route.function
        );
    }

    // The gateway's own answers: preflight, 401, the paywall's 403.
    let preflight = call("OPTIONS", api("/api/billing/checkout"), APP, None, "").await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(GATEWAY_ALLOW_ORIGIN)
    );
    assert!(
        preflight
            .header("access-control-allow-headers")
            .unwrap()
            .contains("Authorization")
    );
    let unauthorized = call("GET", api("/api/billing/subscription"), APP, None, "").await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(
        unauthorized.header("access-control-allow-origin"),
        Some(GATEWAY_ALLOW_ORIGIN)
    );
    let paywall = call("GET", api("/api/leads"), APP, Some(&stranger), "").await;
    assert_eq!(paywall.status, 403);
    assert_eq!(
        paywall.body,
        r#"{"error":"subscription_required","message":"This feature requires a LeadGeneration subscription.","service":"LeadGeneration"}"#
    );
    assert_eq!(
        paywall.header("access-control-allow-origin"),
        Some(GATEWAY_ALLOW_ORIGIN)
    );

    // The catalog through the local gateway's authorizer: the paying org sees LeadGeneration.
    let services = call("GET", api("/api/billing/services"), APP, Some(&member), "")
        .await
        .json();
    let lead = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "LeadGeneration")
        .unwrap()
        .clone();
    assert_eq!(lead["unlocked"], true, "{services}");
    let theirs = call(
        "GET",
        api("/api/billing/services"),
        APP,
        Some(&stranger),
        "",
    )
    .await
    .json();
    assert!(
        theirs["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["unlocked"] == (s["id"] == "BasicCRM"))
    );
}

#[test]
fn template_gateway_responses_and_preflight_accept_every_origin() {
    // The local gateway mirrors template.yaml; hold the template to the same value.
    let template = pss_billing_tests::template::load();
    let api = &template["Resources"]["BillingApi"]["Properties"];
    let quoted = format!("'{GATEWAY_ALLOW_ORIGIN}'");
    assert_eq!(api["Cors"]["AllowOrigin"].as_str(), Some(quoted.as_str()));
    let responses = api["GatewayResponses"].as_mapping().unwrap();
    assert!(responses.len() >= 6);
    for (name, response) in responses {
        assert_eq!(
            response["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"].as_str(),
            Some(quoted.as_str()),
            "{name:?}"
        );
    }
}
