//! A webhook handler wired to moto and a Stripe emulator over HTTP, plus delivery helpers.

use billing::domain::{CustomerId, GracePolicy, OrgId, Timestamp};
use billing::store::{BillingStore, LinkOutcome};
use billing::stripe::StripeApi;
use billing::sync::Syncer;
use billing::webhook::{WebhookConfig, WebhookHandler, WebhookSecret};
use lambda_http::{Body, Request};
use serde_json::Value;

pub use pss_local::fixtures::{fixture, subscription_object};
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

pub const SECRET: &str = "whsec_test_rig_secret";
pub const STRIPE_KEY: &str = "sk_test_rig_key";

pub struct Rig {
    pub handler: WebhookHandler,
    pub store: BillingStore,
    pub stripe_url: String,
}

impl Rig {
    /// A handler on a fresh table, reading Stripe at `stripe_url`.
    pub async fn new(stripe_url: &str) -> Rig {
        let store = crate::fresh_store().await;
        Self::with_store(store, stripe_url)
    }

    /// A handler on a fresh table, reading the fixture Stripe shared by the test binary.
    pub async fn on_fake_stripe() -> Rig {
        Self::new(&crate::fake_stripe().url).await
    }

    pub fn with_store(store: BillingStore, stripe_url: &str) -> Rig {
        Self::with_policy(store, stripe_url, GracePolicy::default())
    }

    /// A handler on a fresh table whose Stripe key is pinned to `account`, as every function's
    /// is in AWS (`STRIPE_ACCOUNT_ID`).
    pub async fn pinned(stripe_url: &str, account: &str) -> Rig {
        let store = crate::fresh_store().await;
        let stripe = StripeApi::new(STRIPE_KEY, Some(stripe_url))
            .expect("stripe client")
            .pinned_to(account);
        Self::with_stripe(store, stripe_url, stripe, GracePolicy::default())
    }

    /// A handler on `store` whose Stripe key is pinned to `account` (a new container of the
    /// same deployment).
    pub fn with_store_pinned(store: BillingStore, stripe_url: &str, account: &str) -> Rig {
        let stripe = StripeApi::new(STRIPE_KEY, Some(stripe_url))
            .expect("stripe client")
            .pinned_to(account);
        Self::with_stripe(store, stripe_url, stripe, GracePolicy::default())
    }

    /// A handler with another past-due grace period.
    pub fn with_policy(store: BillingStore, stripe_url: &str, policy: GracePolicy) -> Rig {
        let stripe = StripeApi::new(STRIPE_KEY, Some(stripe_url)).expect("stripe client");
        Self::with_stripe(store, stripe_url, stripe, policy)
    }

    fn with_stripe(
        store: BillingStore,
        stripe_url: &str,
        stripe: StripeApi,
        policy: GracePolicy,
    ) -> Rig {
        let config = WebhookConfig {
            secrets: vec![
                WebhookSecret::new("whsec_test_previous_secret"),
                WebhookSecret::new(SECRET),
            ],
            tolerance_seconds: 300,
            max_body_bytes: billing::webhook::DEFAULT_MAX_BODY_BYTES,
            livemode: false,
        };
        let syncer = Syncer::new(store.clone(), stripe, policy);
        Rig {
            handler: WebhookHandler::new(syncer, config),
            store,
            stripe_url: stripe_url.to_owned(),
        }
    }

    /// Signs `body` now with the rig's secret and runs it through the handler.
    pub async fn deliver_raw(&self, body: &str) -> (u16, Value) {
        let signature = WebhookSecret::new(SECRET).sign(Timestamp::now().unix(), body.as_bytes());
        self.deliver_signed(body, Some(&signature)).await
    }

    pub async fn deliver_signed(&self, body: &str, signature: Option<&str>) -> (u16, Value) {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/");
        if let Some(sig) = signature {
            builder = builder.header("stripe-signature", sig);
        }
        let request: Request = builder.body(Body::Text(body.to_owned())).expect("request");
        let response = billing::webhook::handle(&self.handler, &request).await;
        let status = response.status().as_u16();
        let json =
            serde_json::from_slice(billing::http::body_bytes(response.body())).expect("JSON reply");
        (status, json)
    }

    pub async fn deliver(&self, event: &Value) -> (u16, Value) {
        self.deliver_raw(&event.to_string()).await
    }

    /// Delivers a new event (an id of its own) of type `kind` around `object`.
    pub async fn deliver_new(&self, kind: &str, object: &Value) -> (u16, Value) {
        self.deliver(&event(&crate::unique("evt_"), kind, object))
            .await
    }

    /// Drops the rig's table. moto copies every table on each transaction (to roll back), so
    /// long tests keep moto fast by not leaving tables behind.
    pub async fn drop_table(&self) {
        let _ = self
            .store
            .client()
            .delete_table()
            .table_name(self.store.table())
            .send()
            .await;
    }

    /// Deletes one item of the rig's table, by its keys.
    pub async fn delete_item(&self, pk: String, sk: String) {
        self.store
            .client()
            .delete_item()
            .table_name(self.store.table())
            .key("PK", AttributeValue::S(pk))
            .key("SK", AttributeValue::S(sk))
            .send()
            .await
            .unwrap();
    }

    /// Every item in the table but the audit trail's metadata of refused deliveries (to prove
    /// a refused delivery stored no billing state).
    pub async fn item_count(&self) -> usize {
        self.scan().await.iter().filter(|i| !is_refused(i)).count()
    }

    /// What the audit trail kept of refused deliveries.
    pub async fn refused_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.scan().await.into_iter().filter(is_refused).collect()
    }

    async fn scan(&self) -> Vec<HashMap<String, AttributeValue>> {
        let out = self
            .store
            .client()
            .scan()
            .table_name(self.store.table())
            .consistent_read(true)
            .send()
            .await
            .expect("scan");
        out.items.unwrap_or_default()
    }

    /// Links `customer` to `org` in the rig's store.
    pub async fn link(&self, org: &OrgId, customer: &str) -> LinkOutcome {
        self.store
            .link_customer(org, &CustomerId::parse(customer).unwrap())
            .await
            .unwrap()
    }

    /// A new org (its id starts with `name`) that `customer` belongs to.
    pub async fn linked_org(&self, name: &str, customer: &str) -> OrgId {
        let org = crate::build::org(name);
        assert_eq!(self.link(&org, customer).await, LinkOutcome::Created);
        org
    }

    /// A new customer (its id only, Stripe does not hold it) of a new org (its id starts with
    /// `name`), linked in the rig's store.
    pub async fn linked_customer(&self, name: &str) -> (String, OrgId) {
        let customer = crate::unique("cus_");
        let org = self.linked_org(name, &customer).await;
        (customer, org)
    }

    /// A new customer of a new org (its id starts with `name`): Stripe holds it with the org in
    /// its metadata, and the rig's store links the two.
    pub async fn billed_customer(&self, name: &str) -> (String, OrgId) {
        let customer = crate::unique("cus_");
        let org = crate::build::org(name);
        fake_put(&self.stripe_url, &customer_object(&customer, Some(&org))).await;
        assert_eq!(self.link(&org, &customer).await, LinkOutcome::Created);
        (customer, org)
    }

    /// A new active subscription of `customer` to one unit of the price `lookup_key`, held by
    /// the rig's Stripe.
    pub async fn put_subscription(&self, customer: &str, lookup_key: &str) -> Value {
        let sub = active_subscription(customer, lookup_key);
        fake_put(&self.stripe_url, &sub).await;
        sub
    }

    /// The stored status of one of the org's subscriptions, if the table has it.
    pub async fn status_of(
        &self,
        org: &OrgId,
        subscription: &str,
    ) -> Option<billing::domain::SubscriptionStatus> {
        let id = billing::domain::SubscriptionId::parse(subscription).expect("subscription id");
        self.store
            .subscriptions(org)
            .await
            .expect("subscriptions")
            .into_iter()
            .find(|s| s.subscription.id == id)
            .map(|s| s.subscription.status)
    }

    pub async fn unlocked(&self, org: &OrgId) -> Vec<String> {
        match self
            .store
            .entitlements(org, true)
            .await
            .expect("entitlements")
        {
            Some(e) => e
                .set
                .unlocked_at(Timestamp::now())
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect(),
            None => vec!["BasicCRM".to_owned()],
        }
    }
}

impl Rig {
    /// The reconciliation job over the rig's store and Stripe, `page_size` profiles a scan
    /// page, fast enough for a test and still paced (the pacing itself is unit-tested).
    pub fn reconciler(&self, page_size: i32) -> billing::reconcile::Reconciler {
        let config = WebhookConfig {
            secrets: Vec::new(),
            tolerance_seconds: 300,
            max_body_bytes: billing::webhook::DEFAULT_MAX_BODY_BYTES,
            livemode: false,
        };
        billing::reconcile::Reconciler::new(
            WebhookHandler::new(self.handler.syncer().clone(), config),
            billing::reconcile::ReconcileConfig {
                requests_per_second: 500.0,
                page_size,
                parked_cap: billing::reconcile::DEFAULT_PARKED_CAP,
            },
        )
    }
}

/// Whether a table item is the audit trail's metadata of a refused delivery.
fn is_refused(item: &HashMap<String, AttributeValue>) -> bool {
    item.get("PK")
        .and_then(|pk| pk.as_s().ok())
        .map(String::as_str)
        == Some("AUDIT#REFUSED")
}

/// A Stripe event envelope around an object.
pub fn event(id: &str, kind: &str, object: &Value) -> Value {
    serde_json::json!({
        "id": id,
        "object": "event",
        "type": kind,
        "livemode": false,
        "created": Timestamp::now().unix(),
        "api_version": billing::stripe::API_VERSION,
        "data": { "object": object },
    })
}

/// Asserts the handler acknowledged a delivery (200) with `expected` as its outcome.
pub fn assert_outcome(reply: (u16, Value), expected: &str) {
    assert_eq!(reply.0, 200, "{}", reply.1);
    assert_eq!(reply.1["outcome"], expected, "{}", reply.1);
}

pub use pss_local::fixtures::{fake_forget, fake_put, put_sample_objects, sample_objects};

/// Deletes a customer in the fake Stripe, as Stripe does (its subscriptions are canceled).
pub async fn delete_customer(base: &str, customer: &str) -> crate::http::Reply {
    let url = format!("{base}/v1/customers/{customer}");
    crate::http::blocking(move || {
        crate::http::request(
            "DELETE",
            &url,
            &[("Authorization", "Bearer sk_test_x")],
            b"",
        )
    })
    .await
}

/// A current-shape Stripe customer, attributed to `org` by its metadata when there is one.
pub fn customer_object(id: &str, org: Option<&OrgId>) -> Value {
    let mut c = fixture("customer");
    c["id"] = id.into();
    c["metadata"] = match org {
        Some(org) => serde_json::json!({ "organization_id": org.as_str() }),
        None => serde_json::json!({}),
    };
    c["invoice_settings"]["default_payment_method"] = Value::Null;
    c
}

/// A new active subscription object (an id of its own) of `customer` to one unit of the price
/// `lookup_key`.
pub fn active_subscription(customer: &str, lookup_key: &str) -> Value {
    subscription_object(
        &crate::unique("sub_"),
        customer,
        "active",
        &[(lookup_key, 1)],
    )
}

/// A current-shape invoice for a subscription.
pub fn invoice_object(
    id: &str,
    customer: &str,
    subscription: &str,
    status: &str,
    created: i64,
) -> Value {
    let mut inv = fixture("invoice");
    inv["id"] = id.into();
    inv["customer"] = customer.into();
    inv["status"] = status.into();
    inv["created"] = created.into();
    inv["currency"] = "usd".into();
    inv["amount_due"] = 9_900.into();
    inv["amount_paid"] = (if status == "paid" { 9_900 } else { 0 }).into();
    inv["amount_remaining"] = (if status == "paid" { 0 } else { 9_900 }).into();
    inv["parent"] = serde_json::json!({
        "type": "subscription_details",
        "quote_details": null,
        "subscription_details": { "metadata": {}, "subscription": subscription },
    });
    inv
}
