//! The world the functions run against: moto (DynamoDB) and the fixture-backed Stripe on
//! loopback ports, one table seeded so that every committed sample event succeeds, and the
//! events themselves (webhook bodies re-signed now with a fresh event id, authorizer tokens
//! re-issued now).

use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use billing::catalog_sync::sync_catalog;
use billing::domain::{
    Catalog, CustomerId, GracePolicy, InvoiceId, OrgId, SubscriptionId, Timestamp,
};
use billing::store::BillingStore;
use billing::store::table::create_table;
use billing::stripe::StripeApi;
use billing::sync::Syncer;
use billing::webhook::WebhookSecret;
use pss_local::emulators::{Emulator, free_port, start_fake_stripe, start_moto, workspace_root};
use pss_local::fixtures::{fake_put, put_sample_objects, sample_objects};
use serde_json::{Value, json};

use crate::counter::OpCounter;

/// Fake, obviously local-only values.
pub const TABLE: &str = "pss-bench";
pub const STRIPE_KEY: &str = "sk_test_bench_not_a_real_key";
pub const WEBHOOK_SECRET: &str = "whsec_test_bench_not_a_real_secret";
pub const JWT_SECRET: &str = "bench-only-hs256-secret-at-least-32-bytes-long";
pub const JWT_ISSUER: &str = "https://portal.example.test";
pub const JWT_AUDIENCE: &str = "pss-billing";
pub const FRONTEND_ORIGINS: &str = "https://app.example.test";
pub const ORG: &str = "org_sample";
pub const ORG_UNLOCKED: &str = "org_sample_unlocked";
/// The org the Checkout runs buy for (it has no subscription).
pub const ORG_CHECKOUT: &str = "org_bench_checkout";
/// The webhook event the warm and cold runs send (the most common one in production).
pub const WEBHOOK_SAMPLE: &str = "customer.subscription.updated";

/// The secrets as SSM SecureString parameters, the way AWS deployments read them at init:
/// `(variable, parameter name, value)`. A function given `<variable>_PARAMETER` instead of
/// `<variable>` fetches the value from SSM (here moto's) before serving its first event.
pub const SSM_SECRETS: &[(&str, &str, &str)] = &[
    (
        "STRIPE_SECRET_KEY",
        "/pss-billing/bench/stripe-secret-key",
        STRIPE_KEY,
    ),
    (
        "STRIPE_WEBHOOK_SECRETS",
        "/pss-billing/bench/stripe-webhook-secrets",
        WEBHOOK_SECRET,
    ),
    ("JWT_SECRET", "/pss-billing/bench/jwt-secret", JWT_SECRET),
];

pub struct World {
    pub moto: Emulator,
    pub stripe: Emulator,
    pub client: Client,
    pub store: BillingStore,
}

pub fn dynamo_client(endpoint: &str, counter: Option<OpCounter>) -> Client {
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"));
    if let Some(counter) = counter {
        config = config.interceptor(counter);
    }
    Client::from_conf(config.build())
}

pub fn stripe_api(world: &World) -> StripeApi {
    StripeApi::new(STRIPE_KEY, Some(&world.stripe.url)).expect("stripe client")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn events_dir(function: &str) -> PathBuf {
    workspace_root().join("events").join(function)
}

pub fn sample(function: &str, name: &str) -> Value {
    read_json(&events_dir(function).join(format!("{name}.json")))
}

/// Starts the emulators and seeds the table and the fake Stripe.
pub async fn start() -> World {
    let moto = start_moto(free_port());
    let stripe = start_fake_stripe(free_port(), None);
    let client = dynamo_client(&moto.url, None);
    create_table(&client, TABLE)
        .await
        .expect("create the bench table in moto");
    let store = BillingStore::new(client.clone(), TABLE);
    let world = World {
        moto,
        stripe,
        client,
        store,
    };
    seed(&world).await;
    put_ssm_secrets(&world.moto.url).await;
    world
}

/// Stores [`SSM_SECRETS`] in moto's SSM (the same server as its DynamoDB).
async fn put_ssm_secrets(endpoint: &str) {
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .build();
    let ssm = aws_sdk_ssm::Client::from_conf(config);
    for (_, name, value) in SSM_SECRETS {
        ssm.put_parameter()
            .name(*name)
            .value(*value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {name} into moto's SSM: {e:?}"));
    }
}

async fn seed(world: &World) {
    let api = stripe_api(world);
    // Prices by lookup key, for Checkout.
    sync_catalog(&api, Catalog::standard().entries())
        .await
        .expect("catalog into the fake Stripe");
    // The objects the samples refer to (org_sample, cus_sample, sub_sample, in_sample, ...).
    put_sample_objects(&world.stripe.url).await;
    let objects = sample_objects();
    // A second subscription for the authorizer's and leads' sample org (LeadGeneration).
    let mut unlocked = objects["subscription"].clone();
    unlocked["id"] = "sub_sample_unlocked".into();
    unlocked["customer"] = "cus_sample_unlocked".into();
    unlocked["metadata"] = json!({"organization_id": ORG_UNLOCKED});
    fake_put(&world.stripe.url, &unlocked).await;

    let syncer = Syncer::new(world.store.clone(), api, GracePolicy::default());
    let org = OrgId::parse(ORG).unwrap();
    let unlocked_org = OrgId::parse(ORG_UNLOCKED).unwrap();
    world
        .store
        .link_customer(&org, &CustomerId::parse("cus_sample").unwrap())
        .await
        .expect("link org_sample");
    world
        .store
        .link_customer(
            &unlocked_org,
            &CustomerId::parse("cus_sample_unlocked").unwrap(),
        )
        .await
        .expect("link org_sample_unlocked");
    syncer
        .sync_subscription(&SubscriptionId::parse("sub_sample").unwrap(), None)
        .await
        .expect("seed sub_sample");
    syncer
        .sync_subscription(&SubscriptionId::parse("sub_sample_unlocked").unwrap(), None)
        .await
        .expect("seed sub_sample_unlocked");
    syncer
        .sync_invoice(&InvoiceId::parse("in_sample").unwrap(), None)
        .await
        .expect("seed in_sample");
    syncer
        .sync_customer(&CustomerId::parse("cus_sample").unwrap(), None)
        .await
        .expect("seed cus_sample payment methods");
    for i in 0..5 {
        let lead: billing::domain::Lead = serde_json::from_value(json!({
            "id": format!("lead_bench_{i}"),
            "name": format!("Bench Lead {i}"),
            "company": "Example Co",
            "source": "web_form",
            "status": "new",
            "score": 70 + i,
        }))
        .expect("lead");
        world
            .store
            .put_lead(&unlocked_org, &lead)
            .await
            .expect("seed lead");
    }
}

/// Replaces the subscription row the Python peer wrote (its own shape) with the Rust one.
pub async fn restore_subscription(world: &World) {
    let _ = world
        .client
        .delete_item()
        .table_name(TABLE)
        .key("PK", AttributeValue::S(format!("ORG#{ORG}")))
        .key("SK", AttributeValue::S("SUB#sub_sample".to_owned()))
        .send()
        .await;
    let syncer = Syncer::new(
        world.store.clone(),
        stripe_api(world),
        GracePolicy::default(),
    );
    syncer
        .sync_subscription(&SubscriptionId::parse("sub_sample").unwrap(), None)
        .await
        .expect("restore sub_sample after the Python peer");
}

/// Deletes what processing an event added to the table (outside any timed section): its
/// marker, and its audit trail (each delivery's item under `AUDIT#<eventId>`, with the payload,
/// and the delivery's entry in the org's index, `ORG#<orgId>` / `AUDIT#<received µs>#<eventId>`;
/// see shared/src/store/audit.rs). moto deep-copies the whole table for every item of every
/// transaction, keeps every copy (its model registry tracks each copied item), and walks a
/// partition's items on every Query, so a table that kept every event's items would make moto,
/// not the code under test, slower with every event. Kept, the audit trail alone grew the table
/// to 2,700 items (5.7 MB) over a full run; moto's memory then grew by gigabytes a minute and
/// its garbage collector paused it for 20-60 s at a time (the `billing-sync` warm run, last,
/// timed out). DynamoDB's latency does not depend on the table's size.
pub async fn forget_event(client: &Client, event_id: &str) {
    let _ = client
        .delete_item()
        .table_name(TABLE)
        .key("PK", AttributeValue::S(format!("EVT#{event_id}")))
        .key("SK", AttributeValue::S("EVENT".to_owned()))
        .send()
        .await;
    let audit_pk = format!("AUDIT#{event_id}");
    let Ok(deliveries) = client
        .query()
        .table_name(TABLE)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(audit_pk.clone()))
        .projection_expression("SK, org_id, received_at")
        .send()
        .await
    else {
        return;
    };
    for item in deliveries.items() {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        if let Some(sk) = text("SK") {
            let _ = client
                .delete_item()
                .table_name(TABLE)
                .key("PK", AttributeValue::S(audit_pk.clone()))
                .key("SK", AttributeValue::S(sk))
                .send()
                .await;
        }
        let received = item
            .get("received_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok());
        if let (Some(org), Some(received)) = (text("org_id"), received) {
            let _ = client
                .delete_item()
                .table_name(TABLE)
                .key("PK", AttributeValue::S(format!("ORG#{org}")))
                .key(
                    "SK",
                    AttributeValue::S(format!("AUDIT#{received:020}#{event_id}")),
                )
                .send()
                .await;
        }
    }
}

/// The webhook sample's Stripe event body with a new event id (compact JSON).
pub fn webhook_body(template: &Value, event_id: &str) -> String {
    let mut event: Value =
        serde_json::from_str(template["body"].as_str().expect("sample has a body"))
            .expect("JSON body");
    event["id"] = event_id.into();
    event.to_string()
}

/// A Function URL event carrying `body`, signed now with the bench secret.
pub fn webhook_event(template: &Value, event_id: &str) -> Vec<u8> {
    let body = webhook_body(template, event_id);
    let signature =
        WebhookSecret::new(WEBHOOK_SECRET).sign(Timestamp::now().unix(), body.as_bytes());
    let mut event = template.clone();
    event["headers"]["stripe-signature"] = signature.into();
    event["body"] = body.into();
    serde_json::to_vec(&event).expect("event")
}

/// The sample's token claims, re-issued now (valid one hour) with the bench secret.
pub fn fresh_token(sample_token: &str) -> String {
    let payload = sample_token.split('.').nth(1).expect("a JWT");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .expect("base64url claims");
    let mut claims: Value = serde_json::from_slice(&raw).expect("JSON claims");
    let now = Timestamp::now().unix();
    claims["iss"] = JWT_ISSUER.into();
    claims["aud"] = JWT_AUDIENCE.into();
    claims["iat"] = now.into();
    claims["nbf"] = now.into();
    claims["exp"] = (now + 3_600).into();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("HS256 signing")
}

/// An authorizer sample with its token(s) re-issued now.
pub fn authorizer_event(name: &str) -> Vec<u8> {
    let mut event = sample("authorizer", name);
    let fresh = event["headers"]["Authorization"]
        .as_str()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(fresh_token);
    if let Some(token) = fresh {
        let bearer = format!("Bearer {token}");
        event["headers"]["Authorization"] = bearer.clone().into();
        if event["multiValueHeaders"]["Authorization"].is_array() {
            event["multiValueHeaders"]["Authorization"] = json!([bearer]);
        }
    }
    serde_json::to_vec(&event).expect("event")
}

/// The bearer token of the authorizer's allow sample, re-issued now.
pub fn allow_token() -> String {
    let event = sample("authorizer", "allow-unlocked");
    let token = event["headers"]["Authorization"]
        .as_str()
        .and_then(|v| v.strip_prefix("Bearer "))
        .expect("sample token");
    fresh_token(token)
}
