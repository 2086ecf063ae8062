//! The billing API functions against moto and the fixture-backed Stripe, which records every
//! request so the exact Stripe call can be asserted.

use billing::api::{self, ApiConfig, OriginAllowlist, views};
use billing::catalog_sync::sync_catalog;
use billing::domain::ServiceModule::*;
use billing::domain::SubscriptionStatus::*;
use billing::domain::*;
use billing::http::ApiError;
use billing::routes::Role;
use billing::store::BillingStore;
use billing::stripe::StripeApi;
use billing::stripe::requests::{
    CheckoutSessionBillingAddressCollection, CheckoutSessionMode, CreateBillingPortalSession,
    CreateCheckoutSession, CreateCheckoutSessionAutomaticTax, CreateCheckoutSessionCustomerUpdate,
    CreateCheckoutSessionCustomerUpdateAddress, CreateCheckoutSessionCustomerUpdateName,
    CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentMethodCollection,
    CreateCheckoutSessionSubscriptionData, CreateCheckoutSessionSubscriptionDataTrialSettings,
    CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehavior,
    CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehaviorMissingPaymentMethod,
    CreateCheckoutSessionTaxIdCollection, CreateCustomer,
};
use billing::sync::Syncer;
use lambda_http::http::StatusCode;
use pss_billing_tests::build::{invoice, org, subscription};
use pss_billing_tests::http::{blocking, get};
use pss_billing_tests::rig::{self, fake_put};
use pss_billing_tests::{fake_stripe, fresh_store, store_subscription, unique};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use stripe_client_core::StripeRequest;
use tokio::sync::OnceCell;

const ORIGIN: &str = "https://app.example.test";

fn config(sync_per_minute: u32) -> ApiConfig {
    ApiConfig {
        origins: OriginAllowlist::parse(ORIGIN),
        sync_per_minute,
        offer: Default::default(),
    }
}

/// The customer pays the Checkout Session: it becomes `complete` and names its subscription.
async fn complete_session(session_id: &str, subscription: &str) {
    let url = format!("{}/_test/checkout/{session_id}/complete", fake_stripe().url);
    let body = json!({ "subscription": subscription });
    let reply = blocking(move || pss_billing_tests::http::post_json(&url, &body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn syncer_on(store: BillingStore) -> Syncer {
    static CATALOG: OnceCell<()> = OnceCell::const_new();
    let stripe = StripeApi::new("sk_test_billing_api", Some(&fake_stripe().url)).unwrap();
    CATALOG
        .get_or_init(|| async {
            let stripe = StripeApi::new("sk_test_billing_api", Some(&fake_stripe().url)).unwrap();
            sync_catalog(&stripe, Catalog::standard().entries())
                .await
                .expect("catalog sync");
        })
        .await;
    Syncer::new(store, stripe, GracePolicy::default())
}

async fn syncer() -> Syncer {
    syncer_on(fresh_store().await).await
}

/// Requests the fake Stripe received that mention `needle` (an org id) anywhere. None of them
/// may have been refused as Stripe would refuse it (an unknown or mistyped parameter), even
/// where the code under test tolerates a 400.
async fn stripe_requests(needle: &str) -> Vec<Value> {
    let url = format!("{}/_test/requests", fake_stripe().url);
    let all = blocking(move || get(&url).json()).await;
    let mentioning: Vec<Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.to_string().contains(needle))
        .cloned()
        .collect();
    for request in &mentioning {
        assert!(
            request.get("refused").is_none(),
            "Stripe would refuse: {request}"
        );
    }
    mentioning
}

/// The parameters the fake Stripe received in a request's form, decoded.
fn form_of(recorded: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(recorded["form"].clone()).unwrap()
}

/// The parameters of async-stripe's encoding of a typed request, decoded as Stripe decodes them.
fn encoding_of(request: &impl StripeRequest) -> BTreeMap<String, String> {
    let body = request.build().body.unwrap_or_default();
    serde_urlencoded::from_str::<Vec<(String, String)>>(&body)
        .unwrap()
        .into_iter()
        .collect()
}

fn checkout_body(services: &[&str], interval: &str) -> Vec<u8> {
    json!({
        "services": services,
        "interval": interval,
        "successUrl": format!("{ORIGIN}/billing/success"),
        "cancelUrl": format!("{ORIGIN}/billing"),
    })
    .to_string()
    .into_bytes()
}

/// A checkout of `services` at `interval` by a caller with `role`, back to the allowed origin.
async fn checkout(
    syncer: &Syncer,
    org: &OrgId,
    role: Role,
    services: &[&str],
    interval: &str,
) -> Result<views::CheckoutView, ApiError> {
    let body = checkout_body(services, interval);
    api::checkout(syncer, &config(5), org, role, &body).await
}

/// The Stripe customer the org's billing profile names.
async fn customer_of(syncer: &Syncer, org: &OrgId) -> CustomerId {
    syncer
        .store
        .billing_profile(org)
        .await
        .unwrap()
        .expect("a billing profile")
        .customer_id
}

#[tokio::test]
async fn checkout_sends_the_exact_stripe_request() {
    let syncer = syncer().await;
    let org = org("org");
    let mut body: Value =
        serde_json::from_slice(&checkout_body(&["LeadGeneration", "SocialInbox"], "year")).unwrap();
    body["orgId"] = "someone_else".into(); // ignored: the org comes from the token only
    let view = api::checkout(
        &syncer,
        &config(5),
        &org,
        Role::Admin,
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert!(
        view.url.starts_with("https://checkout.stripe.test/"),
        "{}",
        view.url
    );

    let profile = syncer
        .store
        .billing_profile(&org)
        .await
        .unwrap()
        .expect("customer created once");
    let requests = stripe_requests(org.as_str()).await;
    let customers: Vec<_> = requests
        .iter()
        .filter(|r| r["path"] == "/v1/customers")
        .collect();
    assert_eq!(customers.len(), 1);
    assert!(
        customers[0]["idempotency_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("pss-customer-")),
        "{}",
        customers[0]
    );
    let expected_customer = CreateCustomer::new()
        .metadata(HashMap::from([(
            "organization_id".to_owned(),
            org.to_string(),
        )]))
        .description(format!("CRM organization {org}"));
    assert_eq!(form_of(customers[0]), encoding_of(&expected_customer));

    let session = requests
        .iter()
        .find(|r| r["path"] == "/v1/checkout/sessions")
        .expect("session request");
    let prices = syncer
        .stripe
        .prices_by_lookup_keys(&["leadgen_yearly", "social_inbox_yearly"])
        .await
        .unwrap();
    let price = |key: &str| {
        prices
            .iter()
            .find(|p| p.lookup_key.as_deref() == Some(key))
            .unwrap()
            .id
            .clone()
    };
    // Exactly the typed request Stripe's API describes: nothing more, nothing less.
    let key = session["idempotency_key"].as_str().unwrap();
    let line_item = |price: String| {
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(price);
        item.quantity = Some(1);
        item
    };
    let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
    subscription_data.metadata = Some(HashMap::from([(
        "organization_id".to_owned(),
        org.to_string(),
    )]));
    // A first purchase by this org: the default 14-day trial, no card up front.
    subscription_data.trial_period_days = Some(14);
    subscription_data.trial_settings = Some(CreateCheckoutSessionSubscriptionDataTrialSettings::new(
        CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehavior::new(
            CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehaviorMissingPaymentMethod::Cancel,
        ),
    ));
    let mut customer_update = CreateCheckoutSessionCustomerUpdate::new();
    customer_update.name = Some(CreateCheckoutSessionCustomerUpdateName::Auto);
    customer_update.address = Some(CreateCheckoutSessionCustomerUpdateAddress::Auto);
    let expected = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(profile.customer_id.as_str())
        .client_reference_id(org.as_str())
        .metadata(HashMap::from([
            ("organization_id".to_owned(), org.to_string()),
            ("pss_checkout_request".to_owned(), key.to_owned()),
        ]))
        .subscription_data(subscription_data)
        .line_items(vec![
            line_item(price("leadgen_yearly")),
            line_item(price("social_inbox_yearly")),
        ])
        .success_url(format!(
            "{ORIGIN}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
        ))
        .cancel_url(format!("{ORIGIN}/billing"))
        .billing_address_collection(CheckoutSessionBillingAddressCollection::Required)
        .tax_id_collection(CreateCheckoutSessionTaxIdCollection::new(true))
        .customer_update(customer_update)
        .automatic_tax(CreateCheckoutSessionAutomaticTax::new(true))
        .allow_promotion_codes(true)
        .payment_method_collection(CreateCheckoutSessionPaymentMethodCollection::IfRequired);
    assert_eq!(form_of(session), encoding_of(&expected));
    assert!(
        session["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("pss-checkout-")
    );
    assert!(
        session["stripe_version"]
            .as_str()
            .unwrap()
            .starts_with("2026-")
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.to_string().contains("someone_else"))
    );

    // A retried request reuses the same session (same idempotency key) and the same customer.
    let again = api::checkout(
        &syncer,
        &config(5),
        &org,
        Role::Owner,
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(again.session_id, view.session_id);
}

#[tokio::test]
async fn concurrent_first_checkouts_create_one_customer_mapping() {
    let syncer = syncer().await;
    let org = org("org");
    let body = checkout_body(&["Integrations"], "month");
    let cfg = config(5);
    let (a, b) = tokio::join!(
        api::checkout(&syncer, &cfg, &org, Role::Admin, &body),
        api::checkout(&syncer, &cfg, &org, Role::Admin, &body)
    );
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    let customer = customer_of(&syncer, &org).await;
    let created: Vec<_> = stripe_requests(org.as_str())
        .await
        .into_iter()
        .filter(|r| r["path"] == "/v1/customers")
        .collect();
    // Both requests sent the same key, so Stripe made one customer.
    assert!(
        created
            .iter()
            .all(|r| r["idempotency_key"] == created[0]["idempotency_key"])
    );
    assert_eq!(
        syncer.store.org_for_customer(&customer).await.unwrap(),
        Some(org)
    );
}

#[tokio::test]
async fn checkout_refuses_bad_input_roles_and_held_modules() {
    let syncer = syncer().await;
    let org = org("org");
    let cfg = config(5);
    let member = checkout(&syncer, &org, Role::Member, &["LeadGeneration"], "month").await;
    assert_eq!(member.unwrap_err().status, StatusCode::FORBIDDEN);
    let cases: Vec<(&[u8], StatusCode, &str)> = vec![
        (b"{", StatusCode::BAD_REQUEST, "bad_request"),
        (b"[]", StatusCode::BAD_REQUEST, "bad_request"),
        (br#"{"services":["Teleport"],"interval":"month","successUrl":"https://app.example.test/","cancelUrl":"https://app.example.test/"}"#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_services"),
        (br#"{"services":["BasicCRM"],"interval":"month","successUrl":"https://app.example.test/","cancelUrl":"https://app.example.test/"}"#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_services"),
        (br#"{"services":["SocialInbox"],"interval":"weekly","successUrl":"https://app.example.test/","cancelUrl":"https://app.example.test/"}"#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_interval"),
        (br#"{"services":["SocialInbox"],"interval":"month","successUrl":"https://app.example.test.evil.test/","cancelUrl":"https://app.example.test/"}"#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_redirect_url"),
        (br#"{"services":["SocialInbox"],"interval":"month","successUrl":"https://app.example.test/","cancelUrl":"//evil.test"}"#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_redirect_url"),
    ];
    for (body, status, code) in cases {
        let err = api::checkout(&syncer, &cfg, &org, Role::Owner, body)
            .await
            .unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (status, code),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // An org that already has a module gets 409, and nothing was sent to Stripe for it.
    let held = subscription(&unique("sub_"), &unique("cus_"), Active, &[LeadGeneration]);
    store_subscription(&syncer.store, &org, &held).await;
    let err = checkout(
        &syncer,
        &org,
        Role::Owner,
        &["EmailAutomation", "LeadGeneration"],
        "month",
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.status, err.code),
        (StatusCode::CONFLICT, "already_subscribed")
    );
    assert!(err.message.contains("LeadGeneration"));
    assert!(stripe_requests(org.as_str()).await.is_empty());
}

#[tokio::test]
async fn portal_needs_a_billing_account_and_an_allowed_return_url() {
    let syncer = syncer().await;
    let org = org("org");
    let cfg = config(5);
    let body = json!({ "returnUrl": format!("{ORIGIN}/settings/billing") }).to_string();
    let err = api::portal(&syncer, &cfg, &org, Role::Owner, body.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status, err.code),
        (StatusCode::CONFLICT, "no_billing_account")
    );
    let customer = CustomerId::parse(unique("cus_")).unwrap();
    syncer.store.link_customer(&org, &customer).await.unwrap();
    let view = api::portal(&syncer, &cfg, &org, Role::Admin, body.as_bytes())
        .await
        .unwrap();
    assert!(view.url.starts_with("https://billing.stripe.test/"));
    let sent = stripe_requests(customer.as_str()).await;
    let portal = sent
        .iter()
        .find(|r| r["path"] == "/v1/billing_portal/sessions")
        .unwrap();
    // The configuration catalog-sync created: a fresh account has no default one.
    let configuration = syncer
        .stripe
        .our_portal_configuration()
        .await
        .unwrap()
        .expect("catalog-sync created the portal configuration");
    let expected_portal = CreateBillingPortalSession::new()
        .customer(customer.as_str())
        .configuration(configuration.clone())
        .return_url(format!("{ORIGIN}/settings/billing"));
    assert_eq!(form_of(portal), encoding_of(&expected_portal));
    // A past-due org's "Update card" opens the portal on the card form.
    let card = json!({ "returnUrl": format!("{ORIGIN}/settings/billing"), "flow": "payment_method_update" })
        .to_string();
    api::portal(&syncer, &cfg, &org, Role::Admin, card.as_bytes())
        .await
        .unwrap();
    let sent = stripe_requests(customer.as_str()).await;
    let deep = sent
        .iter()
        .filter(|r| r["path"] == "/v1/billing_portal/sessions")
        .nth(1)
        .unwrap();
    assert_eq!(
        form_of(deep).get("flow_data[type]").map(String::as_str),
        Some("payment_method_update"),
        "{deep}"
    );
    let odd =
        json!({ "returnUrl": format!("{ORIGIN}/settings/billing"), "flow": "subscription_update" })
            .to_string();
    let err = api::portal(&syncer, &cfg, &org, Role::Admin, odd.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
    let member = api::portal(&syncer, &cfg, &org, Role::Member, body.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(member.status, StatusCode::FORBIDDEN);
    let evil = api::portal(
        &syncer,
        &cfg,
        &org,
        Role::Owner,
        br#"{"returnUrl":"https://evil.test/"}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(evil.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = api::portal(&syncer, &cfg, &org, Role::Owner, b"returnUrl=x")
        .await
        .unwrap_err();
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn eager_sync_after_checkout_unlocks_and_is_rate_limited() {
    let syncer = syncer().await;
    let org = org("org");
    let cfg = config(3);
    let checkout = checkout(&syncer, &org, Role::Owner, &["LeadGeneration"], "month")
        .await
        .unwrap();
    let customer = customer_of(&syncer, &org).await;
    // Stripe completes the Checkout: a subscription exists, the session points at it.
    let sub_id = unique("sub_");
    fake_put(
        &fake_stripe().url,
        &rig::subscription_object(
            &sub_id,
            customer.as_str(),
            "active",
            &[("leadgen_monthly", 1)],
        ),
    )
    .await;
    complete_session(&checkout.session_id, &sub_id).await;

    let before = api::subscription(&syncer.store, &org, GracePolicy::default())
        .await
        .unwrap();
    assert_eq!(before.status, "none");
    let after = api::sync(&syncer, &cfg, &org, Some(&checkout.session_id))
        .await
        .unwrap();
    assert_eq!(after.status, "active");
    let unlocked: Vec<_> = after
        .entitlements
        .iter()
        .filter(|e| e.unlocked)
        .map(|e| e.module)
        .collect();
    assert_eq!(unlocked, [BasicCrm, LeadGeneration]);
    assert_eq!(after.subscriptions[0].items[0].module, Some(LeadGeneration));

    // Another org cannot use this session id.
    let other = pss_billing_tests::build::org("other");
    let err = api::sync(&syncer, &cfg, &other, Some(&checkout.session_id))
        .await
        .unwrap_err();
    assert_eq!(err.status, StatusCode::NOT_FOUND);
    assert!(
        syncer
            .store
            .billing_profile(&other)
            .await
            .unwrap()
            .is_none()
    );

    // The budget is 3 per minute per org. (A minute boundary may fall in between, so allow
    // one refill: the 4th call of a window must be refused.)
    let mut passed = 1;
    let limited = loop {
        match api::sync(&syncer, &cfg, &org, None).await {
            Ok(_) => passed += 1,
            Err(e) => break e,
        }
        assert!(passed <= 6, "never rate limited");
    };
    assert_eq!(
        (limited.status, limited.code),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(passed >= 3);
}

#[tokio::test]
async fn reads_are_tenant_isolated_and_invoices_page() {
    let store = fresh_store().await;
    let (a, b) = (org("orga"), org("orgb"));
    for i in 0..5 {
        store
            .apply_invoice(
                &a,
                &invoice(&format!("in_a{i}"), "cus_a", 1_700_000_000 + i),
                FetchTime::now(),
                None,
            )
            .await
            .unwrap();
    }
    store
        .apply_invoice(
            &b,
            &invoice("in_b0", "cus_b", 1_800_000_000),
            FetchTime::now(),
            None,
        )
        .await
        .unwrap();
    let sub = subscription("sub_a", "cus_a", Trialing, &[EmailAutomation]);
    store_subscription(&store, &a, &sub).await;

    let first = api::invoices(&store, &a, Some("2"), None).await.unwrap();
    assert_eq!(
        first
            .invoices
            .iter()
            .map(|i| i.id.as_str())
            .collect::<Vec<_>>(),
        ["in_a4", "in_a3"]
    );
    let cursor = first.next_cursor.unwrap();
    let second = api::invoices(&store, &a, Some("2"), Some(&cursor))
        .await
        .unwrap();
    assert_eq!(second.invoices[0].id, "in_a2");
    // Org B's cursor space is its own partition: A's cursor shows B nothing of A's.
    let crossed = api::invoices(&store, &b, Some("2"), Some(&cursor))
        .await
        .unwrap();
    assert!(crossed.invoices.iter().all(|i| i.id.starts_with("in_b")));
    let all_b = api::invoices(&store, &b, None, None).await.unwrap();
    assert_eq!(all_b.invoices.len(), 1);
    for bad in ["0", "101", "ten", "-1"] {
        assert_eq!(
            api::invoices(&store, &a, Some(bad), None)
                .await
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        api::invoices(&store, &a, None, Some("%%%"))
            .await
            .unwrap_err()
            .status,
        StatusCode::BAD_REQUEST
    );

    let view_a = api::subscription(&store, &a, GracePolicy::default())
        .await
        .unwrap();
    let view_b = api::subscription(&store, &b, GracePolicy::default())
        .await
        .unwrap();
    assert_eq!(view_a.status, "trialing");
    assert_eq!(view_b.status, "none");
    assert!(view_b.subscriptions.is_empty());
    assert_eq!(
        view_b.entitlements.iter().filter(|e| e.unlocked).count(),
        1,
        "BasicCRM only"
    );
    assert!(
        api::payment_methods(&store, &b)
            .await
            .unwrap()
            .payment_methods
            .is_empty()
    );
}

#[test]
fn services_view_lists_every_module_with_prices() {
    let anonymous = serde_json::to_value(views::services(&Catalog::standard(), None)).unwrap();
    let services = anonymous["services"].as_array().unwrap();
    assert_eq!(services.len(), 7);
    assert_eq!(services[0]["id"], "BasicCRM");
    assert_eq!(services[0]["free"], true);
    assert!(services[0].get("unlocked").is_none());
    assert_eq!(
        services[1]["prices"][0],
        json!({"interval":"month","unitAmount":9900,"currency":"usd","lookupKey":"leadgen_monthly"})
    );
    assert_eq!(services[6]["prices"][1]["unitAmount"], 199_900);
    let known = serde_json::to_value(views::services(
        &Catalog::standard(),
        Some(ModuleSet::from_csv("LeadGeneration")),
    ))
    .unwrap();
    assert_eq!(known["services"][0]["unlocked"], true);
    assert_eq!(known["services"][1]["unlocked"], true);
    assert_eq!(known["services"][2]["unlocked"], false);
}

#[tokio::test]
async fn stripe_unreachable_is_a_retryable_502() {
    let store = fresh_store().await;
    let dead = format!("http://127.0.0.1:{}", pss_billing_tests::free_port());
    let syncer = Syncer::new(
        store,
        StripeApi::new("sk_test_dead", Some(&dead)).unwrap(),
        GracePolicy::default(),
    );
    let org = org("org");
    let err = checkout(&syncer, &org, Role::Owner, &["LeadGeneration"], "month")
        .await
        .unwrap_err();
    assert_eq!(
        (err.status, err.code),
        (StatusCode::BAD_GATEWAY, "stripe_unavailable")
    );
    let body =
        String::from_utf8(billing::http::body_bytes(err.into_response().body()).to_vec()).unwrap();
    assert!(
        !body.contains("127.0.0.1") && !body.contains("sk_test"),
        "{body}"
    );
    assert!(syncer.store.billing_profile(&org).await.unwrap().is_none());
}

#[tokio::test]
async fn checkout_refuses_modules_held_in_any_status_that_is_not_over() {
    let syncer = syncer().await;
    let _cfg = config(5);
    for status in [Active, Trialing, PastDue, Unpaid, Paused, Incomplete] {
        let org = org("held");
        let held = subscription(&unique("sub_"), &unique("cus_"), status, &[SocialInbox]);
        store_subscription(&syncer.store, &org, &held).await;
        let err = checkout(&syncer, &org, Role::Owner, &["SocialInbox"], "year")
            .await
            .unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::CONFLICT, "already_subscribed"),
            "{status:?}"
        );
    }
    // Over: the module can be bought again.
    for status in [Canceled, IncompleteExpired] {
        let org = org("over");
        let over = subscription(&unique("sub_"), &unique("cus_"), status, &[SocialInbox]);
        store_subscription(&syncer.store, &org, &over).await;
        checkout(&syncer, &org, Role::Owner, &["SocialInbox"], "year")
            .await
            .unwrap_or_else(|e| panic!("{status:?}: {e:?}"));
    }
}

async fn session_status(id: &str) -> String {
    let url = format!("{}/v1/checkout/sessions/{id}", fake_stripe().url);
    let reply = blocking(move || {
        pss_billing_tests::http::request(
            "GET",
            &url,
            &[("Authorization", "Bearer sk_test_billing_api")],
            b"",
        )
    })
    .await;
    reply.json()["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_new_checkout_expires_the_previous_open_session() {
    let syncer = syncer().await;
    let _cfg = config(5);
    let org = org("twice");
    let first = checkout(&syncer, &org, Role::Owner, &["LeadGeneration"], "month")
        .await
        .unwrap();
    // The same request again (a double click) gets the same, still open, session.
    let again = checkout(&syncer, &org, Role::Owner, &["LeadGeneration"], "month")
        .await
        .unwrap();
    assert_eq!(again.session_id, first.session_id);
    assert_eq!(session_status(&first.session_id).await, "open");

    let second = checkout(
        &syncer,
        &org,
        Role::Owner,
        &["LeadGeneration", "EmailAutomation"],
        "month",
    )
    .await
    .unwrap();
    assert_ne!(second.session_id, first.session_id);
    assert_eq!(session_status(&first.session_id).await, "expired");
    assert_eq!(session_status(&second.session_id).await, "open");
}

#[tokio::test]
async fn concurrent_identical_checkouts_wait_out_the_key_in_flight() {
    let syncer = syncer().await;
    let cfg = config(5);
    let org = org("inflight");
    let slow = |path: &'static str, ms: u32| {
        let url = format!("{}/_test/latency", fake_stripe().url);
        blocking(move || pss_billing_tests::http::post_json(&url, &json!({"path": path, "ms": ms})))
    };
    // Stripe answers 409 idempotency_key_in_use while the first request is still running.
    slow("/v1/customers", 300).await;
    slow("/v1/checkout/sessions", 300).await;
    let body = checkout_body(&["AdvancedAnalytics"], "year");
    let (a, b) = tokio::join!(
        api::checkout(&syncer, &cfg, &org, Role::Owner, &body),
        api::checkout(&syncer, &cfg, &org, Role::Owner, &body)
    );
    slow("/v1/customers", 0).await;
    slow("/v1/checkout/sessions", 0).await;
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.session_id, b.session_id, "one session for one request");
    let customers: Vec<_> = stripe_requests(org.as_str())
        .await
        .into_iter()
        .filter(|r| r["path"] == "/v1/customers")
        .collect();
    assert!(customers.len() >= 2, "both requests reached Stripe");
    assert!(syncer.store.billing_profile(&org).await.unwrap().is_some());
}

#[test]
fn a_store_conflict_does_not_tell_the_client_its_internals() {
    let err: billing::http::ApiError =
        billing::store::StoreError::Conflict("billing profile or customer link already exists")
            .into();
    assert_eq!((err.status, err.code), (StatusCode::CONFLICT, "conflict"));
    assert!(!err.message.contains("profile") && !err.message.contains("link"));
}

#[tokio::test]
async fn a_module_paid_in_stripe_is_refused_even_when_the_table_is_behind() {
    let syncer = syncer().await;
    let org = org("behind");
    // The first checkout creates the org's customer; then the buyer pays, but the webhook is
    // failing and the success page was closed: the table knows nothing of the subscription.
    checkout(&syncer, &org, Role::Owner, &["LeadGeneration"], "month")
        .await
        .unwrap();
    let customer = customer_of(&syncer, &org).await;
    let paid = rig::active_subscription(customer.as_str(), "leadgen_monthly");
    fake_put(&fake_stripe().url, &paid).await;
    assert!(syncer.store.subscriptions(&org).await.unwrap().is_empty());

    let err = checkout(&syncer, &org, Role::Owner, &["LeadGeneration"], "month")
        .await
        .unwrap_err();
    assert_eq!(
        (err.status, err.code),
        (StatusCode::CONFLICT, "already_subscribed"),
        "{}",
        err.message
    );
    // What Stripe listed was stored on the way, so the paywall opens too.
    assert_eq!(syncer.store.subscriptions(&org).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_replayed_session_that_was_expired_meanwhile_is_replaced_by_an_open_one() {
    let syncer = syncer().await;
    let org = org("replayed");
    let first = checkout(&syncer, &org, Role::Owner, &["SocialInbox"], "month")
        .await
        .unwrap();
    // Another checkout (more modules) expires the first session.
    checkout(
        &syncer,
        &org,
        Role::Owner,
        &["SocialInbox", "Integrations"],
        "month",
    )
    .await
    .unwrap();
    assert_eq!(session_status(&first.session_id).await, "expired");
    // The first request again, within its idempotency window: Stripe replays the first
    // answer (which said "open"), so the session's current state must be read. (Past the
    // two whole seconds by which a fresh session's `created` is told from a replayed one's.)
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    let again = checkout(&syncer, &org, Role::Owner, &["SocialInbox"], "month")
        .await
        .unwrap();
    assert_ne!(again.session_id, first.session_id);
    assert_eq!(session_status(&again.session_id).await, "open");
}
