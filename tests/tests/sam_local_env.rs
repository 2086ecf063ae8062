//! `sam local invoke <Function> --env-vars env.local.json -e .events/...` without Docker: every
//! real function binary runs under a Lambda Runtime API emulator with exactly the environment
//! SAM would give it (template declarations, overridden by env.local.json, plus SAM's AWS
//! variables), against moto and the fixture Stripe where env.local.json points at the local
//! stack's, and answers the ready-to-invoke events `scripts/events` writes. Only the two local
//! ports are changed, to the emulators this test started.

mod dev_paths;

use std::collections::{BTreeMap, BTreeSet};

use billing::domain::ServiceModule::LeadGeneration;
use billing::domain::SubscriptionStatus::Active;
use billing::domain::{CustomerId, OrgId, Timestamp};
use billing::store::BillingStore;
use billing::store::table::create_table;
use billing::webhook::HANDLED_EVENT_TYPES;
use dev_paths::{Sandbox, event_files, exe, http_answer, run_scripts_events, sam_local_env};
use pss_billing_tests::build::subscription;
use pss_billing_tests::template::{self, Function, declared_env, functions};
use pss_billing_tests::{dynamo_client, fake_stripe, moto, store_subscription, workspace_root};
use pss_local::stack::{DEFAULT_MOTO_PORT, DEFAULT_STRIPE_PORT};

fn local_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}
use serde_json::Value;

/// Every variable name the code reads through `billing::config` (required, optional, parse_or,
/// secret), found in the sources.
fn variables_read_by_the_code() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stack = vec![
        workspace_root().join("shared/src"),
        workspace_root().join("functions"),
    ];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for call in [
            "required(",
            "optional(",
            "parse_or(",
            "secret(",
            "parse_or::<",
        ] {
            for (at, _) in text.match_indices(call) {
                let rest = &text[at + call.len()..];
                let rest = rest.trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let name: String = rest.chars().take_while(|c| *c != '"').collect();
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    names.insert(name);
                }
            }
        }
    }
    // Lambda itself sets these (AWS_LAMBDA_LOG_LEVEL from LoggingConfig): never declared.
    names.retain(|n| !n.starts_with("AWS_LAMBDA_"));
    // The AWS SDK's own override, read by aws-config rather than through billing::config.
    names.insert("AWS_ENDPOINT_URL_DYNAMODB".to_owned());
    names
}

#[test]
fn template_declares_every_variable_the_code_reads_and_is_inert_in_aws() {
    let t = template::load();
    let fns = functions(&t);
    let mut declared_anywhere = BTreeSet::new();
    for f in &fns {
        declared_anywhere.extend(declared_env(&t, &f.logical_id).into_keys());
    }
    let read = variables_read_by_the_code();
    for name in [
        "JWT_ISSUER",
        "STRIPE_WEBHOOK_SECRETS",
        "SYNC_RATE_PER_MINUTE",
        "RUST_LOG",
    ] {
        assert!(read.contains(name), "the source scan missed {name}");
    }
    let missing: Vec<_> = read.difference(&declared_anywhere).collect();
    assert!(
        missing.is_empty(),
        "read by the code but not declared in template.yaml (sam local cannot set them): {missing:?}"
    );

    // In AWS the local-only variables must change nothing: secrets come from SSM, the endpoints
    // are AWS's and Stripe's own, the log level is LoggingConfig's.
    let all: BTreeMap<String, String> = fns
        .iter()
        .flat_map(|f| declared_env(&t, &f.logical_id))
        .collect();
    for name in [
        "STRIPE_SECRET_KEY",
        "STRIPE_API_BASE",
        "STRIPE_WEBHOOK_SECRETS",
        "JWT_SECRET",
        "JWT_PUBLIC_KEY_PEM",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "RUST_LOG",
    ] {
        assert_eq!(all.get(name).map(String::as_str), Some(""), "{name}");
    }
    assert_eq!(
        all["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"], "true",
        "an empty endpoint must be ignored in AWS"
    );
    // Every parameter a local run needs has a default, or a value in samconfig.toml's local
    // commands (the ones a deployment must set have no default; sam_transform.rs checks those
    // values are the local stack's).
    let config = pss_billing_tests::template::samconfig();
    for (name, p) in t["Parameters"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        for cmd in ["local_invoke", "local_start_api"] {
            assert!(
                !p["Default"].is_null()
                    || config["default"][cmd]["parameter_overrides"][name].is_string(),
                "parameter {name} has no default and no value for `sam {cmd}`"
            );
        }
    }
    assert_eq!(
        t["Parameters"]["Architecture"]["Default"].as_str(),
        Some("arm64")
    );
    // Each function: env.local.json names only variables the template declares for it.
    let env_local = dev_paths::env_local();
    let mut listed: Vec<&String> = env_local.keys().collect();
    listed.sort();
    let ids: Vec<&String> = fns.iter().map(|f| &f.logical_id).collect();
    assert_eq!(
        listed, ids,
        "env.local.json and template.yaml list different functions"
    );
    for f in &fns {
        sam_local_env(&t, f);
    }
}

/// The local stack's URLs in env.local.json, replaced by this test's emulators.
fn with_test_ports(
    mut env: BTreeMap<String, String>,
    dynamo: &str,
    stripe: &str,
) -> BTreeMap<String, String> {
    assert_eq!(
        env.get("AWS_ENDPOINT_URL_DYNAMODB").map(String::as_str),
        Some(local_url(DEFAULT_MOTO_PORT).as_str()),
    );
    env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), dynamo.to_owned());
    if let Some(base) = env.get_mut("STRIPE_API_BASE") {
        assert_eq!(base.as_str(), local_url(DEFAULT_STRIPE_PORT));
        *base = stripe.to_owned();
    }
    env
}

fn outcome(completion: &dev_paths::runtime_api::Completion) -> (u16, Value) {
    http_answer(completion)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_function_answers_fresh_events_with_the_sam_local_environment() {
    let t = template::load();
    let fns = functions(&t);
    let by_binary = |name: &str| -> Function {
        fns.iter()
            .find(|f| f.binary == name)
            .unwrap_or_else(|| panic!("{name} in template.yaml"))
            .clone()
    };
    let out = workspace_root().join("target/dev-paths-events/sam");
    let printed = run_scripts_events(&out, &[]);
    for secret in ["whsec_test_local_stack", "local-dev-jwt-secret"] {
        assert!(!printed.contains(secret), "scripts/events printed a secret");
    }

    // The state the samples describe, in the table env.local.json names.
    let stripe_url = &fake_stripe().url;
    let moto_url = &moto().url;
    let env_of = |f: &Function| with_test_ports(sam_local_env(&t, f), moto_url, stripe_url);
    let webhook_env = env_of(&by_binary("stripe-webhook"));
    let table = webhook_env["BILLING_TABLE"].clone();
    let client = dynamo_client(moto_url);
    create_table(&client, &table).await.expect("table");
    let store = BillingStore::new(client, &table);
    pss_billing_tests::seed_sample_stripe(stripe_url).await;
    let org = OrgId::parse("org_sample").unwrap();
    store
        .link_customer(&org, &CustomerId::parse("cus_sample").unwrap())
        .await
        .unwrap();
    let unlocked = OrgId::parse("org_sample_unlocked").unwrap();
    let sub = subscription("sub_dev_paths", "cus_dev_paths", Active, &[LeadGeneration]);
    store_subscription(&store, &unlocked, &sub).await;

    // Billing functions: every sample, in the order api_samples.rs uses, gets the status its
    // name starts with.
    let mut billing: Vec<&Function> = fns
        .iter()
        .filter(|f| f.binary.starts_with("billing-"))
        .collect();
    billing.sort_by(|a, b| a.binary.cmp(&b.binary));
    let mut seen = 0;
    for f in billing {
        let sandbox = Sandbox::start(&f.binary, &exe(f), &env_of(f)).await;
        for (name, event) in event_files(&out, &f.binary) {
            let expected: u16 = name[..3].parse().unwrap();
            let completion = sandbox
                .invoke(&event)
                .await
                .unwrap_or_else(|e| panic!("{}/{name}: {e}", f.binary));
            let (status, body) = outcome(&completion);
            assert_eq!(status, expected, "{}/{name}: {body}", f.binary);
            seen += 1;
        }
    }
    assert!(seen >= 15, "{seen} billing samples");

    // Leads.
    let leads = by_binary("leads");
    let sandbox = Sandbox::start("leads", &exe(&leads), &env_of(&leads)).await;
    for (name, event) in event_files(&out, "leads") {
        let (status, body) = outcome(&sandbox.invoke(&event).await.unwrap());
        let expected = if name == "no-authorizer-context" {
            401
        } else {
            200
        };
        assert_eq!(status, expected, "leads/{name}: {body}");
    }
    drop(sandbox);

    // The authorizer, with the tokens scripts/events minted; the committed token is expired.
    let auth = by_binary("authorizer");
    let sandbox = Sandbox::start("authorizer", &exe(&auth), &env_of(&auth)).await;
    for (name, event) in event_files(&out, "authorizer") {
        let completion = sandbox.invoke(&event).await.unwrap();
        let reply: Value = serde_json::from_slice(&completion.body).unwrap();
        let effect = reply["policyDocument"]["Statement"][0]["Effect"].clone();
        match name.as_str() {
            "allow-unlocked" => {
                assert!(completion.ok, "{reply}");
                assert_eq!(effect, "Allow", "{reply}");
                assert_eq!(reply["context"]["orgId"], "org_sample_unlocked");
            }
            "deny-locked" => {
                assert_eq!(effect, "Deny", "{reply}");
                let body: Value =
                    serde_json::from_str(reply["context"]["body"].as_str().unwrap()).unwrap();
                assert_eq!(body["error"], "subscription_required");
                assert_eq!(body["service"], "LeadGeneration");
            }
            "deny-role" => assert_eq!(reply["context"]["error"], "forbidden", "{reply}"),
            "public" => assert_eq!(effect, "Allow", "{reply}"),
            "unauthorized" => {
                assert!(!completion.ok);
                assert_eq!(reply["errorMessage"], "Unauthorized", "{reply}");
            }
            other => panic!("authorizer/{other} has no expected answer here"),
        }
    }
    let committed =
        std::fs::read(workspace_root().join("events/authorizer/allow-unlocked.json")).unwrap();
    let completion = sandbox.invoke(&committed).await.unwrap();
    assert!(
        !completion.ok,
        "the committed (expired) token must be refused"
    );
    drop(sandbox);

    // The webhook, with every sample re-signed now.
    let hook = by_binary("stripe-webhook");
    let sandbox = Sandbox::start("stripe-webhook", &exe(&hook), &webhook_env).await;
    let committed =
        std::fs::read(workspace_root().join("events/stripe-webhook/invoice.paid.json")).unwrap();
    let (status, body) = outcome(&sandbox.invoke(&committed).await.unwrap());
    assert_eq!(status, 400, "a sample signed long ago is refused: {body}");
    let files = event_files(&out, "stripe-webhook");
    let samples: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
    for kind in HANDLED_EVENT_TYPES {
        assert!(samples.contains(*kind), "no sample for handled type {kind}");
    }
    for (kind, event) in &files {
        let (status, body) = outcome(&sandbox.invoke(event).await.unwrap());
        assert_eq!(status, 200, "{kind}: {body}");
        let got = body["outcome"].as_str().unwrap_or_default();
        if HANDLED_EVENT_TYPES.contains(&kind.as_str()) {
            assert_ne!(got, "ignored", "{kind}: {body}");
        } else {
            assert_eq!(got, "ignored", "{kind}: {body}");
        }
    }
    // The markers went to the table env.local.json names: a redelivery is a duplicate.
    let (_, paid) = files.iter().find(|(n, _)| n == "invoice.paid").unwrap();
    let (status, body) = outcome(&sandbox.invoke(paid).await.unwrap());
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
    // And the checkout samples unlocked the sample org's module in that table.
    let ents = store
        .entitlements(&org, true)
        .await
        .unwrap()
        .expect("entitlements");
    assert!(ents.set.unlocks(LeadGeneration, Timestamp::now()));
}

/// env.local.json, the local stack and scripts/events share one set of local secrets, so a
/// token the stack prints or the script mints passes the authorizer under SAM or cargo-lambda.
#[test]
fn env_local_json_uses_the_local_stack_values() {
    use pss_local::stack::{JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, STRIPE_KEY, WEBHOOK_SECRET};
    let env = dev_paths::env_local();
    let auth = &env["AuthorizerFunction"];
    assert_eq!(auth["JWT_ISSUER"], JWT_ISSUER);
    assert_eq!(auth["JWT_AUDIENCE"], JWT_AUDIENCE);
    assert_eq!(auth["JWT_SECRET"], JWT_SECRET);
    assert_eq!(auth["JWT_ALGORITHM"], "HS256");
    let hook = &env["StripeWebhookFunction"];
    assert_eq!(hook["STRIPE_WEBHOOK_SECRETS"], WEBHOOK_SECRET);
    for (function, vars) in &env {
        if let Some(key) = vars.get("STRIPE_SECRET_KEY") {
            assert_eq!(key, STRIPE_KEY, "{function}");
        }
        assert_eq!(vars["BILLING_TABLE"], "pss-billing-local", "{function}");
    }
    // samconfig.toml gives `sam local` the same local values for the template's parameters.
    let config = pss_billing_tests::template::samconfig();
    let local = &config["default"]["local_invoke"]["parameter_overrides"];
    assert_eq!(local["JwtIssuer"], JWT_ISSUER);
    assert_eq!(local["JwtAudience"], JWT_AUDIENCE);
}

/// scripts/events with explicit secrets (as for Stripe test mode and another portal): the
/// webhook signature verifies with that secret now, the tokens carry that issuer, audience
/// and org and verify with that key, `--new-ids` makes each webhook a new event.
#[test]
fn scripts_events_signs_and_mints_with_the_given_secrets() {
    use billing::webhook::{WebhookSecret, verify};
    let out = workspace_root().join("target/dev-paths-events/custom");
    let args = [
        "--webhook-secret",
        "whsec_test_from_stripe_listen",
        "--jwt-secret",
        "another-portal-test-secret",
        "--issuer",
        "https://portal.example.test",
        "--audience",
        "pss-billing-staging",
        "--org",
        "org_custom",
        "--origin",
        "http://localhost:4000",
        "--new-ids",
    ];
    let first = run_scripts_events(&out, &args);
    assert!(!first.contains("whsec_test_from_stripe_listen") && !first.contains("another-portal"));
    let now = Timestamp::now().unix();

    let read = |function: &str, name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(out.join(function).join(name)).unwrap()).unwrap()
    };
    let hook = read("stripe-webhook", "invoice.paid.json");
    let body = hook["body"].as_str().unwrap();
    let signature = hook["headers"]["stripe-signature"].as_str();
    let secret = [WebhookSecret::new("whsec_test_from_stripe_listen")];
    assert_eq!(
        verify(signature, body.as_bytes(), &secret, now, 300),
        Ok(())
    );
    let other = [WebhookSecret::new("whsec_test_local_stack")];
    assert!(verify(signature, body.as_bytes(), &other, now, 300).is_err());
    let id = serde_json::from_str::<Value>(body).unwrap()["id"].clone();
    assert!(id.as_str().unwrap().starts_with("evt_sample_"), "{id}");
    run_scripts_events(&out, &args);
    let again = read("stripe-webhook", "invoice.paid.json");
    let id_again =
        serde_json::from_str::<Value>(again["body"].as_str().unwrap()).unwrap()["id"].clone();
    assert_ne!(id, id_again, "--new-ids gives every run new event ids");

    let auth = read("authorizer", "allow-unlocked.json");
    let token = auth["headers"]["Authorization"].as_str().unwrap();
    let token = token.strip_prefix("Bearer ").unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&["https://portal.example.test"]);
    validation.set_audience(&["pss-billing-staging"]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(b"another-portal-test-secret"),
        &validation,
    )
    .expect("a valid token")
    .claims;
    assert_eq!(claims["org_id"], "org_custom");
    assert!(claims["exp"].as_i64().unwrap() > now + 3000);
    assert_eq!(
        auth["multiValueHeaders"]["Authorization"][0].as_str(),
        Some(format!("Bearer {token}").as_str())
    );
    let expired = read("authorizer", "unauthorized.json");
    let expired = expired["headers"]["Authorization"].as_str().unwrap();
    let err = jsonwebtoken::decode::<Value>(
        expired.strip_prefix("Bearer ").unwrap(),
        &jsonwebtoken::DecodingKey::from_secret(b"another-portal-test-secret"),
        &validation,
    )
    .unwrap_err();
    assert_eq!(
        err.kind(),
        &jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );

    let checkout = read("billing-checkout", "200-checkout.json");
    assert_eq!(checkout["headers"]["Origin"], "http://localhost:4000");
    assert!(
        checkout["body"]
            .as_str()
            .unwrap()
            .contains("http://localhost:4000/billing")
    );
    assert_eq!(
        checkout["requestContext"]["authorizer"]["orgId"],
        "org_custom"
    );
    let no_customer = read("billing-portal", "409-no-billing-account.json");
    assert_eq!(
        no_customer["requestContext"]["authorizer"]["orgId"], "org_without_customer",
        "only the sample org is swapped"
    );
}
