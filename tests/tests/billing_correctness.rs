//! Billing correctness through the webhook: who a Checkout Session may attribute, deleted
//! customers and subscriptions, price → module mapping, payment methods of every type, and lists
//! that page. Expected states are written out by hand from what the fake Stripe holds.

use billing::api;
use billing::domain::{CustomerId, OrgId};
use billing::stripe::StripeApi;
use pss_billing_tests::build::org;
use pss_billing_tests::http::{blocking, request};
use pss_billing_tests::rig::{self, Rig, event, fake_put};
use pss_billing_tests::{fake_stripe, unique};
use serde_json::{Value, json};

fn outcome(reply: (u16, Value)) -> String {
    assert_eq!(reply.0, 200, "{}", reply.1);
    reply.1["outcome"].as_str().unwrap().to_owned()
}

/// A completed subscription-mode session as Stripe returns it.
fn session_object(
    customer: &str,
    subscription: &str,
    metadata: Value,
    reference: Option<&str>,
) -> Value {
    let mut s = rig::fixture("checkout.session");
    s["id"] = unique("cs_test_").into();
    s["mode"] = "subscription".into();
    s["status"] = "complete".into();
    s["customer"] = customer.into();
    s["subscription"] = subscription.into();
    s["metadata"] = metadata;
    s["client_reference_id"] = reference.map_or(Value::Null, Value::from);
    s
}

/// Stripe holds the session and sends its checkout.session.completed: the webhook's outcome.
async fn complete(rig: &Rig, session: &Value) -> String {
    fake_put(&rig.stripe_url, session).await;
    let evt = event(&unique("evt_"), "checkout.session.completed", session);
    outcome(rig.deliver(&evt).await)
}

#[tokio::test]
async fn only_sessions_this_service_created_attribute_a_customer() {
    let rig = Rig::on_fake_stripe().await;
    // The buyer's own customer and subscription, made outside this service (a Payment Link).
    let buyer = unique("cus_buyer");
    fake_put(&rig.stripe_url, &rig::customer_object(&buyer, None)).await;
    let buyer_sub = unique("sub_");
    fake_put(
        &rig.stripe_url,
        &rig::subscription_object(&buyer_sub, &buyer, "active", &[("leadgen_monthly", 1)]),
    )
    .await;

    // 1. client_reference_id names an org with no billing account yet: nothing is linked.
    let victim = org("victim");
    let payment_link = session_object(&buyer, &buyer_sub, json!({}), Some(victim.as_str()));
    // The buyer's session, with the server-set metadata naming `org`.
    let naming = |org: &OrgId| {
        let metadata = json!({"organization_id": org.as_str()});
        session_object(&buyer, &buyer_sub, metadata, None)
    };
    assert_eq!(complete(&rig, &payment_link).await, "parked");
    assert!(rig.store.billing_profile(&victim).await.unwrap().is_none());
    let buyer_id = CustomerId::parse(&buyer).unwrap();
    assert_eq!(rig.store.org_for_customer(&buyer_id).await.unwrap(), None);
    assert_eq!(rig.unlocked(&victim).await, ["BasicCRM"]);
    // ...so the victim's portal still has no billing account to open.
    let api_config = api::ApiConfig {
        origins: api::OriginAllowlist::parse("https://app.example.test"),
        sync_per_minute: 5,
        offer: Default::default(),
    };
    let portal = api::portal(
        rig.handler.syncer(),
        &api_config,
        &victim,
        billing::routes::Role::Owner,
        br#"{"returnUrl":"https://app.example.test/billing"}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(portal.code, "no_billing_account");

    // 2. Server-set metadata naming an org that is linked to another customer: refused.
    let paying = org("paying");
    let paying_customer = unique("cus_paying");
    rig.link(&paying, &paying_customer).await;
    assert_eq!(complete(&rig, &naming(&paying)).await, "parked");
    let profile = rig.store.billing_profile(&paying).await.unwrap().unwrap();
    assert_eq!(profile.customer_id.as_str(), paying_customer);

    // 3. An org without a profile, and a customer whose metadata does not name it: refused.
    let stranger = org("stranger");
    assert_eq!(complete(&rig, &naming(&stranger)).await, "parked");
    assert!(
        rig.store
            .billing_profile(&stranger)
            .await
            .unwrap()
            .is_none()
    );

    // 4. What this service writes: the org in the session's and the customer's metadata.
    let ours = org("ours");
    let our_customer = unique("cus_ours");
    fake_put(
        &rig.stripe_url,
        &rig::customer_object(&our_customer, Some(&ours)),
    )
    .await;
    let our_sub = unique("sub_");
    fake_put(
        &rig.stripe_url,
        &rig::subscription_object(
            &our_sub,
            &our_customer,
            "active",
            &[("social_inbox_yearly", 1)],
        ),
    )
    .await;
    let genuine = session_object(
        &our_customer,
        &our_sub,
        json!({"organization_id": ours.as_str()}),
        None,
    );
    assert_eq!(complete(&rig, &genuine).await, "processed");
    assert_eq!(rig.unlocked(&ours).await, ["BasicCRM", "SocialInbox"]);
    let ours_profile = rig.store.billing_profile(&ours).await.unwrap().unwrap();
    assert_eq!(ours_profile.customer_id.as_str(), our_customer);

    // The eager sync applies the same rule: a session naming the caller only in
    // client_reference_id is "not found".
    let err = api::sync(
        rig.handler.syncer(),
        &api_config,
        &victim,
        Some(payment_link["id"].as_str().unwrap()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status.as_u16(), 404);
    assert!(rig.store.billing_profile(&victim).await.unwrap().is_none());
}

#[tokio::test]
async fn a_deleted_customer_unlinks_the_org_and_ends_its_subscriptions() {
    let rig = Rig::on_fake_stripe().await;
    let (customer, org) = rig.billed_customer("deleted").await;
    let sub_id = unique("sub_");
    let sub = rig::subscription_object(&sub_id, &customer, "active", &[("enterprise_monthly", 1)]);
    fake_put(&rig.stripe_url, &sub).await;
    let created = rig.deliver_new("customer.subscription.created", &sub).await;
    assert_eq!(outcome(created), "processed");
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "EnterpriseFeatures"]);

    // Stripe deletes the customer, which cancels its subscriptions. The customer.deleted event
    // comes first; the subscription's own event has not arrived (yet).
    let reply = rig::delete_customer(&rig.stripe_url, &customer).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    fake_put(
        &rig.stripe_url,
        &rig::subscription_object(&sub_id, &customer, "canceled", &[("enterprise_monthly", 1)]),
    )
    .await;
    let deleted = json!({"id": customer, "object": "customer", "deleted": true});
    let delivered = rig.deliver_new("customer.deleted", &deleted).await;
    assert_eq!(outcome(delivered), "processed");
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM"]);
    assert!(
        rig.store.billing_profile(&org).await.unwrap().is_none(),
        "can check out again"
    );
    // Late events of the old customer's subscriptions still reach the org.
    let customer_id = CustomerId::parse(&customer).unwrap();
    assert_eq!(
        rig.store.org_for_customer(&customer_id).await.unwrap(),
        Some(org.clone())
    );
}

#[tokio::test]
async fn a_subscription_stripe_no_longer_has_grants_nothing() {
    let rig = Rig::on_fake_stripe().await;
    let (customer, org) = rig.linked_customer("gone").await;
    let sub_id = unique("sub_");
    let sub =
        rig::subscription_object(&sub_id, &customer, "active", &[("integrations_monthly", 1)]);
    fake_put(&rig.stripe_url, &sub).await;
    assert_eq!(
        outcome(rig.deliver_new("customer.subscription.created", &sub).await),
        "processed"
    );
    let url = format!("{}/_test/objects/{sub_id}", rig.stripe_url);
    blocking(move || request("DELETE", &url, &[], b"")).await;
    let evt = event(&unique("evt_"), "customer.subscription.deleted", &sub);
    assert_eq!(outcome(rig.deliver(&evt).await), "processed");
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM"]);
    assert_eq!(outcome(rig.deliver(&evt).await), "duplicate");
}

/// A price with neither a catalog lookup key nor module metadata.
fn subscription_with_bare_price(id: &str, customer: &str, product: &str) -> Value {
    let mut sub = rig::subscription_object(id, customer, "active", &[("leadgen_monthly", 1)]);
    let price = &mut sub["items"]["data"][0]["price"];
    price["id"] = unique("price_bare").into();
    price["lookup_key"] = Value::Null;
    price["metadata"] = json!({});
    price["product"] = product.into();
    sub["items"]["data"][0]["plan"]["id"] = price["id"].clone();
    sub
}

#[tokio::test]
async fn prices_map_by_product_metadata_and_unmapped_ones_grant_nothing() {
    let rig = Rig::on_fake_stripe().await;
    let (customer, org) = rig.linked_customer("mapping").await;
    let product = unique("prod_");
    let mut product_object = rig::fixture("product");
    product_object["id"] = product.clone().into();
    product_object["metadata"] = json!({});
    fake_put(&rig.stripe_url, &product_object).await;
    let sub = subscription_with_bare_price(&unique("sub_"), &customer, &product);
    fake_put(&rig.stripe_url, &sub).await;
    let evt = event(&unique("evt_"), "customer.subscription.created", &sub);

    // The product says nothing either: stored as Stripe has it, the item grants nothing
    // (never a guess), and the alarm's metric counts it.
    assert_eq!(outcome(rig.deliver(&evt).await), "processed");
    assert_eq!(rig.store.subscriptions(&org).await.unwrap().len(), 1);
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM"]);

    // catalog-sync writes the module on the product: the next event maps it.
    product_object["metadata"] = json!({"service_module": "AdvancedAnalytics"});
    fake_put(&rig.stripe_url, &product_object).await;
    assert_eq!(
        outcome(rig.deliver_new("customer.subscription.updated", &sub).await),
        "processed"
    );
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "AdvancedAnalytics"]);
    assert!(rig.store.unresolved_events().await.unwrap().is_empty());
}

fn payment_method(id: &str, customer: &str, kind: &str, created: i64) -> Value {
    let mut pm = rig::fixture("payment_method");
    pm["id"] = id.into();
    pm["customer"] = customer.into();
    pm["type"] = kind.into();
    pm["created"] = created.into();
    if kind != "card" {
        pm["card"] = Value::Null;
    }
    match kind {
        "sepa_debit" => {
            pm["sepa_debit"] = json!({"bank_code": "37040044", "country": "DE", "last4": "3000"})
        }
        "us_bank_account" => {
            pm["us_bank_account"] = json!({"bank_name": "STRIPE TEST BANK", "last4": "6789", "account_type": "checking"})
        }
        "link" => pm["link"] = json!({"email": "billing@example.test"}),
        _ => {}
    }
    pm
}

#[tokio::test]
async fn payment_methods_of_every_type_and_the_subscription_default() {
    let rig = Rig::on_fake_stripe().await;
    let (customer, org) = rig.billed_customer("methods").await;
    let card = unique("pm_card");
    for (id, kind, created) in [
        (card.clone(), "card", 10),
        (unique("pm_sepa"), "sepa_debit", 20),
        (unique("pm_bank"), "us_bank_account", 30),
        (unique("pm_link"), "link", 40),
    ] {
        fake_put(
            &rig.stripe_url,
            &payment_method(&id, &customer, kind, created),
        )
        .await;
    }
    // Checkout stores the card it collected on the subscription, not on the customer.
    let mut sub = rig::active_subscription(&customer, "leadgen_yearly");
    sub["default_payment_method"] = card.clone().into();
    fake_put(&rig.stripe_url, &sub).await;
    assert_eq!(
        outcome(rig.deliver_new("customer.subscription.created", &sub).await),
        "processed"
    );
    let attached = payment_method(&card, &customer, "card", 10);
    assert_eq!(
        outcome(rig.deliver_new("payment_method.attached", &attached).await),
        "processed"
    );
    let view = api::payment_methods(&rig.store, &org).await.unwrap();
    // (type, last4, bank name, email, default)
    type Listed = (String, Option<String>, Option<String>, Option<String>, bool);
    let listed: Vec<Listed> = view
        .payment_methods
        .iter()
        .map(|m| {
            (
                m.kind.clone(),
                m.last4.clone(),
                m.bank_name.clone(),
                m.email.clone(),
                m.is_default,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "link".into(),
                None,
                None,
                Some("billing@example.test".into()),
                false
            ),
            (
                "us_bank_account".into(),
                Some("6789".into()),
                Some("STRIPE TEST BANK".into()),
                None,
                false
            ),
            ("sepa_debit".into(), Some("3000".into()), None, None, false),
            ("card".into(), Some("4242".into()), None, None, true),
        ]
    );
}

#[tokio::test]
async fn lists_follow_has_more_past_one_page() {
    let stripe = fake_stripe();
    let customer = unique("cus_");
    for i in 0..150 {
        fake_put(
            &stripe.url,
            &payment_method(
                &format!("pm_{customer}_{i:03}"),
                &customer,
                "card",
                1_000 + i,
            ),
        )
        .await;
    }
    let api = StripeApi::new("sk_test_pages", Some(&stripe.url)).unwrap();
    let all = api.payment_methods(&customer).await.unwrap();
    assert_eq!(all.len(), 150);
}
