//! IAM held to the template. Every function's real binary runs its paths as Lambda would run it
//! in AWS: the environment and execution role of the transformed template (SAM's own transform),
//! the role's temporary keys, its secrets read from SSM, against an emulator that enforces IAM
//! per action and resource as DynamoDB and SSM do (tests/emulators/moto_iam.py). A call the
//! policy does not allow fails as in AWS (AccessDeniedException), and a grant no path uses fails
//! here too, so the policies are exactly what the code needs.
//!
//! Paths: the webhook's applied, parked, audited and refused deliveries; reconciliation's run
//! (a parked event whose cause was fixed, the profiles scan) and its replay and audit commands;
//! checkout, portal, sync; the authorizer; each reader; the catalog (no table access).

mod dev_paths;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ssm::types::ParameterType;
use billing::domain::ServiceModule::LeadGeneration;
use billing::domain::SubscriptionStatus::Active;
use billing::domain::{CustomerId, EventId, OrgId, Timestamp};
use billing::store::BillingStore;
use billing::store::table::create_table;
use billing::webhook::WebhookSecret;
use dev_paths::{Sandbox, event_files, exe, http_answer, run_scripts_events};
use pss_billing_tests::iam::{self, Decision, RoleKeys};
use pss_billing_tests::rig::{self, fake_put};
use pss_billing_tests::template::{self, Json, Stack, transformed};
use pss_billing_tests::{build, fake_stripe, store_subscription, unique, workspace_root};

const WEBHOOK_SECRET: &str = "whsec_test_iam_paths";
const JWT_SECRET: &str = "iam-paths-jwt-secret-of-the-test";
const STRIPE_KEY: &str = "sk_test_iam_paths";
const ISSUER: &str = "https://portal.iam.test";
const AUDIENCE: &str = "pss-billing-iam";
const ORIGIN: &str = "http://localhost:5173";

/// The parameter values of this stack; the SSM parameter names are the template's defaults.
const PARAMETERS: &[(&str, &str)] = &[
    ("JwtIssuer", ISSUER),
    ("JwtAudience", AUDIENCE),
    ("JwtAlgorithm", "HS256"),
    ("FrontendOrigins", ORIGIN),
    // The fixture Stripe's account, as env.local.json pins the local stack to.
    ("StripeAccountId", "acct_1LocalPssFixture"),
];

/// One function as deployed: its role's keys and its environment in AWS, pointed at the
/// emulators (the only change: where DynamoDB, SSM and Stripe are).
struct Deployed {
    logical_id: String,
    binary: String,
    role: Json,
    env: BTreeMap<String, String>,
}

async fn deploy(
    stack: &Stack<'_>,
    function: &template::Function,
    aws: &str,
    stripe: &str,
) -> Deployed {
    let role = iam::function_role(stack, &function.logical_id);
    let keys: RoleKeys = iam::create_role(aws, &function.logical_id, &role).await;
    let mut env = template::lambda_env(stack, &function.logical_id);
    env.extend(keys.env());
    for (k, v) in [
        ("AWS_ENDPOINT_URL_DYNAMODB", aws),
        ("AWS_ENDPOINT_URL_SSM", aws),
        ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false"),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    if env.contains_key("STRIPE_API_BASE") {
        env.insert("STRIPE_API_BASE".into(), stripe.to_owned());
    }
    // Nothing given directly: every secret comes from SSM, through the role.
    for secret in ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRETS", "JWT_SECRET"] {
        assert_eq!(env.get(secret).map(String::as_str).unwrap_or(""), "");
    }
    Deployed {
        logical_id: function.logical_id.clone(),
        binary: function.binary.clone(),
        role,
        env,
    }
}

async fn put_secret(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .expect("put a SecureString parameter");
}

/// A Function URL request carrying `body`, signed now with the endpoint's secret (or `forged`).
fn webhook_request(envelope: &[u8], body: &str, forged: bool) -> Vec<u8> {
    let mut request: Json = serde_json::from_slice(envelope).unwrap();
    let secret = if forged {
        "whsec_not_the_endpoints"
    } else {
        WEBHOOK_SECRET
    };
    request["body"] = body.into();
    request["headers"]["stripe-signature"] = WebhookSecret::new(secret)
        .sign(Timestamp::now().unix(), body.as_bytes())
        .into();
    serde_json::to_vec(&request).unwrap()
}

/// Runs the reconcile binary as the operator's command, with the function's environment.
fn reconcile_command(reconcile: &Deployed, args: &[&str]) -> String {
    let function = template::Function {
        logical_id: reconcile.logical_id.clone(),
        binary: reconcile.binary.clone(),
    };
    let out = Command::new(exe(&function))
        .env_clear()
        .envs(&reconcile.env)
        .args(args)
        .output()
        .expect("the reconcile binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "reconcile {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn every_function_works_with_exactly_the_policy_the_template_gives_it() {
    let aws_emulator = iam::start();
    let aws = aws_emulator.url.clone();
    let stripe = fake_stripe().url.clone();

    // The stack: a table, the secrets in SSM, the sample state, one role per function.
    let admin = iam::admin(&aws, "test-admin").await;
    let table = unique("pss-billing-iam-");
    let client = admin.dynamo_client(&aws);
    create_table(&client, &table).await.expect("table");
    let store = BillingStore::new(client, &table);
    let cfn = transformed(PARAMETERS);
    let stack = Stack::new(&cfn, PARAMETERS).with_table("BillingTable", &table);
    let ssm = admin.ssm_client(&aws);
    for (parameter, value) in [
        ("StripeSecretKeyParameter", STRIPE_KEY),
        ("StripeWebhookSecretsParameter", WEBHOOK_SECRET),
        ("JwtSecretParameter", JWT_SECRET),
    ] {
        put_secret(&ssm, &stack.parameters[parameter], value).await;
    }
    pss_billing_tests::seed_sample_stripe(&stripe).await;
    let sample_org = OrgId::parse("org_sample").unwrap();
    store
        .link_customer(&sample_org, &CustomerId::parse("cus_sample").unwrap())
        .await
        .unwrap();
    let unlocked = OrgId::parse("org_sample_unlocked").unwrap();
    let sub = build::subscription("sub_iam_paths", "cus_iam_paths", Active, &[LeadGeneration]);
    store_subscription(&store, &unlocked, &sub).await;

    let mut deployed = BTreeMap::new();
    for f in template::functions(&template::load()) {
        let d = deploy(&stack, &f, &aws, &stripe).await;
        deployed.insert(f.binary.clone(), d);
    }
    let start = |binary: &str| {
        let d = &deployed[binary];
        let function = template::Function {
            logical_id: d.logical_id.clone(),
            binary: d.binary.clone(),
        };
        let name = format!("iam-{binary}");
        let env = d.env.clone();
        async move { Sandbox::start(&name, &exe(&function), &env).await }
    };
    let out = workspace_root().join("target/iam-events");
    run_scripts_events(
        &out,
        &[
            "--webhook-secret",
            WEBHOOK_SECRET,
            "--jwt-secret",
            JWT_SECRET,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--origin",
            ORIGIN,
        ],
    );

    // An org's first checkout creates its Stripe customer and billing profile.
    let first = workspace_root().join("target/iam-events-first-checkout");
    run_scripts_events(
        &first,
        &[
            "--jwt-secret",
            JWT_SECRET,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--origin",
            ORIGIN,
            "--org",
            &unique("org_iam_first"),
        ],
    );

    // Checkout, portal, sync and the readers: every sample answers as its name says.
    let mut billing: Vec<&str> = deployed
        .keys()
        .map(String::as_str)
        .filter(|b| b.starts_with("billing-"))
        .collect();
    billing.sort();
    for binary in billing {
        if binary == "billing-sync" {
            // A payment method the table still has but Stripe no longer lists (the readers
            // before would fail on it): the eager sync drops it.
            store
                .client()
                .put_item()
                .table_name(store.table())
                .item("PK", AttributeValue::S("ORG#org_sample".into()))
                .item("SK", AttributeValue::S("PM#pm_iam_detached".into()))
                .send()
                .await
                .unwrap();
        }
        if binary == "billing-plan" {
            // Stripe's copy changed since checkout stored it (a seat more): the plan's read
            // of the subscriptions writes it, as an addition's answer is written.
            let mut changed = pss_billing_tests::rig::sample_objects()["subscription"].clone();
            assert_eq!(changed["id"], "sub_sample");
            changed["items"]["data"][0]["quantity"] = 2.into();
            pss_billing_tests::rig::fake_put(&stripe, &changed).await;
        }
        let sandbox = start(binary).await;
        for (name, event) in event_files(&out, binary) {
            let completion = sandbox
                .invoke(&event)
                .await
                .unwrap_or_else(|e| panic!("{binary}/{name}: {e}"));
            let (status, body) = http_answer(&completion);
            let expected: u16 = name[..3].parse().unwrap();
            assert_eq!(status, expected, "{binary}/{name}: {body}");
        }
        if binary == "billing-checkout" {
            let (_, event) = &event_files(&first, binary)
                .into_iter()
                .find(|(n, _)| n == "200-checkout")
                .unwrap();
            let (status, body) = http_answer(&sandbox.invoke(event).await.unwrap());
            assert_eq!(status, 200, "a first checkout: {body}");
            // The sample org again, its subscription now stored and unchanged in Stripe:
            // checkout's read of Stripe's list touches only the copy's fetch time.
            let (_, event) = &event_files(&out, binary)
                .into_iter()
                .find(|(n, _)| n == "200-checkout")
                .unwrap();
            let (status, body) = http_answer(&sandbox.invoke(event).await.unwrap());
            assert_eq!(status, 200, "a checkout with stored subscriptions: {body}");
        }
    }
    let leads = start("leads").await;
    for (name, event) in event_files(&out, "leads") {
        let (status, body) = http_answer(&leads.invoke(&event).await.unwrap());
        let expected = if name == "no-authorizer-context" {
            401
        } else {
            200
        };
        assert_eq!(status, expected, "leads/{name}: {body}");
    }
    drop(leads);

    // The authorizer: its secret from SSM, one consistent GetItem per paid route.
    let authorizer = start("authorizer").await;
    for (name, event) in event_files(&out, "authorizer") {
        let completion = authorizer.invoke(&event).await.unwrap();
        let reply: Json = serde_json::from_slice(&completion.body).unwrap();
        let effect = &reply["policyDocument"]["Statement"][0]["Effect"];
        match name.as_str() {
            "allow-unlocked" | "public" => assert_eq!(effect, "Allow", "{name}: {reply}"),
            "deny-locked" | "deny-role" => assert_eq!(effect, "Deny", "{name}: {reply}"),
            "unauthorized" => assert_eq!(reply["errorMessage"], "Unauthorized", "{reply}"),
            other => panic!("authorizer/{other} has no expected answer here"),
        }
    }
    drop(authorizer);

    // The webhook: every sample applied (or ignored), an event parked, a forgery refused; each
    // verified delivery kept in the audit trail.
    let webhook = start("stripe-webhook").await;
    let files = event_files(&out, "stripe-webhook");
    for (kind, event) in &files {
        let (status, body) = http_answer(&webhook.invoke(event).await.unwrap());
        assert_eq!(status, 200, "{kind}: {body}");
    }
    let envelope = &files.iter().find(|(n, _)| n == "invoice.paid").unwrap().1;
    let stranger = unique("cus_iam_stranger");
    let parked_sub = rig::active_subscription(&stranger, "leadgen_monthly");
    fake_put(&stripe, &parked_sub).await;
    let parked_id = unique("evt_iam_parked");
    let mut parked_event = rig::event(&parked_id, "customer.subscription.updated", &parked_sub);
    parked_event["pending_webhooks"] = 0.into();
    fake_put(&stripe, &parked_event).await;
    let request = webhook_request(envelope, &parked_event.to_string(), false);
    let (status, body) = http_answer(&webhook.invoke(&request).await.unwrap());
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("parked")),
        "{body}"
    );
    let forged = webhook_request(envelope, &parked_event.to_string(), true);
    let (status, body) = http_answer(&webhook.invoke(&forged).await.unwrap());
    assert_eq!(status, 400, "{body}");
    drop(webhook);
    let parked = EventId::parse(parked_id.as_str()).unwrap();
    assert_eq!(
        store.deliveries_of_event(&parked).await.unwrap().len(),
        1,
        "the parked delivery is in the audit trail"
    );
    let paid: Json = serde_json::from_slice(envelope).unwrap();
    let paid: Json = serde_json::from_str(paid["body"].as_str().unwrap()).unwrap();
    let paid = EventId::parse(paid["id"].as_str().unwrap()).unwrap();
    assert!(
        !store.deliveries_of_event(&paid).await.unwrap().is_empty(),
        "an applied delivery is in the audit trail"
    );
    assert!(
        !store
            .refused_since(Timestamp::from_unix(Timestamp::now().unix() - 600))
            .await
            .unwrap()
            .is_empty(),
        "the refusal's metadata is kept"
    );

    // Reconciliation: the stranger's customer now belongs to an org, so the scheduled run
    // applies the parked event; then the operator's commands with the function's environment.
    let org = build::org("org_iam_fixed");
    fake_put(&stripe, &rig::customer_object(&stranger, Some(&org))).await;
    store
        .link_customer(&org, &CustomerId::parse(stranger.as_str()).unwrap())
        .await
        .unwrap();
    let reconcile = start("reconcile").await;
    let scheduled = &event_files(&out, "reconcile")[0].1;
    let completion = reconcile.invoke(scheduled).await.unwrap();
    let report: Json = serde_json::from_slice(&completion.body).unwrap();
    assert!(completion.ok, "{report}");
    assert_eq!(report["org_errors"], 0, "{report}");
    assert!(report["orgs_checked"].as_u64() >= Some(2), "{report}");
    drop(reconcile);
    let reconcile = &deployed["reconcile"];
    // The Runtime API emulator gives each invocation 30 s, less than the run's 2-minute margin,
    // so the scheduled run above had no time for parked events: `--once` is the same run
    // (Reconciler::run) with the command's 13-minute budget.
    let once = reconcile_command(reconcile, &["--once"]);
    assert!(once.contains("reconcile_report"), "{once}");
    let replayed = reconcile_command(reconcile, &["replay", parked.as_str()]);
    assert!(replayed.contains(r#""outcome":"duplicate""#), "{replayed}");
    let since = (Timestamp::now().unix() - 600).to_string();
    let replayed = reconcile_command(reconcile, &["replay", "--since", &since]);
    assert!(replayed.contains(parked.as_str()), "{replayed}");
    let kept = reconcile_command(reconcile, &["audit", "--event", parked.as_str()]);
    assert!(
        kept.lines()
            .filter(|l| l.contains(r#""source":"replay""#))
            .count()
            >= 2,
        "the replays are kept too: {kept}"
    );

    // Nothing was refused, and every grant was used by some path.
    let decisions = iam::decisions(&aws).await;
    let denied: Vec<&Decision> = decisions.iter().filter(|d| !d.allowed).collect();
    assert!(
        denied.is_empty(),
        "the template's policies refused calls the code makes: {denied:#?}"
    );
    let mut unused = Vec::new();
    for d in deployed.values() {
        let used: BTreeSet<(String, String)> = decisions
            .iter()
            .filter(|x| x.role == d.logical_id)
            .map(|x| (x.action.clone(), x.resource.clone()))
            .collect();
        for grant in iam::granted(&d.role).difference(&used) {
            unused.push(format!("{}: {} on {}", d.logical_id, grant.0, grant.1));
        }
    }
    assert!(
        unused.is_empty(),
        "granted, but used by none of the function's paths: {unused:#?}"
    );
}
