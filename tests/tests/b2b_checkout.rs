//! What a company buying at checkout gets: its billing address and tax ID collected and saved,
//! Stripe Tax, promotion codes, one free trial per module and organization, and the checkout
//! success rate counted. The exact Stripe parameters are asserted as Stripe's API reference
//! spells them (the fixture Stripe records each request and refuses unknown parameters).

use billing::api::checkout::CheckoutOffer;
use billing::api::{self, ApiConfig, OriginAllowlist};
use billing::auth::BuyerDetails;
use billing::catalog_sync::sync_catalog;
use billing::domain::{Catalog, GracePolicy};
use billing::routes::Role;
use billing::stripe::StripeApi;
use billing::sync::Syncer;
use pss_billing_tests::http::{blocking, get};
use pss_billing_tests::rig::{self, Rig, STRIPE_KEY, customer_object, fake_put};
use pss_billing_tests::{build, fake_stripe};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const ORIGIN: &str = "https://app.example.test";

/// The metric lines are captured process-wide: this binary's tests run one at a time, so each
/// counts only its own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(offer: CheckoutOffer) -> ApiConfig {
    ApiConfig {
        origins: OriginAllowlist::parse(ORIGIN),
        sync_per_minute: 5,
        offer,
    }
}

async fn world() -> (Rig, Syncer) {
    world_on(&fake_stripe().url).await
}

async fn world_on(stripe_url: &str) -> (Rig, Syncer) {
    billing::metrics::capture();
    let rig = Rig::new(stripe_url).await;
    let stripe = StripeApi::new(STRIPE_KEY, Some(&rig.stripe_url)).unwrap();
    sync_catalog(&stripe, Catalog::standard().entries())
        .await
        .unwrap();
    let syncer = Syncer::new(rig.store.clone(), stripe, GracePolicy::default());
    (rig, syncer)
}

fn body(services: &[&str], interval: &str) -> Vec<u8> {
    json!({"services": services, "interval": interval,
        "successUrl": format!("{ORIGIN}/billing/done"), "cancelUrl": format!("{ORIGIN}/billing")})
    .to_string()
    .into_bytes()
}

/// The form of every request the fixture Stripe received to `path` that mentions `needle`.
async fn forms(path: &'static str, needle: String) -> Vec<BTreeMap<String, String>> {
    let url = format!("{}/_test/requests", fake_stripe().url);
    let all = blocking(move || get(&url).json()).await;
    all.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == path && r.to_string().contains(&needle))
        .map(|r| {
            assert!(r.get("refused").is_none(), "Stripe would refuse: {r}");
            serde_json::from_value(r["form"].clone()).unwrap()
        })
        .collect()
}

fn has(form: &BTreeMap<String, String>, key: &str, value: &str) -> bool {
    form.get(key).map(String::as_str) == Some(value)
}

#[tokio::test]
async fn a_first_checkout_collects_company_details_tax_promotion_codes_and_starts_a_trial() {
    let _serial = SERIAL.lock().await;
    let (_rig, syncer) = world().await;
    let org = build::org("b2b-first");
    let details = BuyerDetails::from_claims(Some("Acme GmbH"), Some("billing@acme.test"));
    let config = config(CheckoutOffer::default());
    api::checkout_for(
        &syncer,
        &config,
        &org,
        Role::Admin,
        &details,
        &body(&["LeadGeneration"], "month"),
    )
    .await
    .unwrap();
    let sessions = forms("/v1/checkout/sessions", org.to_string()).await;
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    // As Stripe's reference names them.
    for (key, value) in [
        ("billing_address_collection", "required"),
        ("tax_id_collection[enabled]", "true"),
        ("customer_update[name]", "auto"),
        ("customer_update[address]", "auto"),
        ("automatic_tax[enabled]", "true"),
        ("allow_promotion_codes", "true"),
        ("payment_method_collection", "if_required"),
        ("subscription_data[trial_period_days]", "14"),
        (
            "subscription_data[trial_settings][end_behavior][missing_payment_method]",
            "cancel",
        ),
        ("subscription_data[metadata][organization_id]", org.as_str()),
    ] {
        assert!(
            has(session, key, value),
            "{key}={value} missing: {session:?}"
        );
    }
    // The customer carries what the token said of the org.
    let customers = forms("/v1/customers", org.to_string()).await;
    assert_eq!(customers.len(), 1);
    assert!(
        has(&customers[0], "name", "Acme GmbH"),
        "{:?}",
        customers[0]
    );
    assert!(has(&customers[0], "email", "billing@acme.test"));
}

#[tokio::test]
async fn switched_off_tax_and_codes_are_not_sent_and_absent_claims_invent_nothing() {
    let _serial = SERIAL.lock().await;
    let (_rig, syncer) = world().await;
    let org = build::org("b2b-off");
    let offer = CheckoutOffer {
        automatic_tax: false,
        promotion_codes: false,
        trial_days: 0,
    };
    api::checkout_for(
        &syncer,
        &config(offer),
        &org,
        Role::Admin,
        &BuyerDetails::from_claims(None, Some("not an email")),
        &body(&["SocialInbox"], "year"),
    )
    .await
    .unwrap();
    let session = &forms("/v1/checkout/sessions", org.to_string()).await[0];
    for absent in [
        "automatic_tax[enabled]",
        "allow_promotion_codes",
        "payment_method_collection",
        "subscription_data[trial_period_days]",
    ] {
        assert!(!session.contains_key(absent), "{absent} sent: {session:?}");
    }
    // Company details are still collected: they are the invoice's, tax or not.
    assert!(has(session, "billing_address_collection", "required"));
    assert!(has(session, "tax_id_collection[enabled]", "true"));
    let customer = &forms("/v1/customers", org.to_string()).await[0];
    assert!(
        !customer.contains_key("name") && !customer.contains_key("email"),
        "{customer:?}"
    );
}

/// A module's trial is offered once per organization: the trial's use is kept in the table,
/// so a later checkout of it (even with a new Stripe customer after the old one was deleted)
/// is charged at once.
#[tokio::test]
async fn a_second_trial_of_a_module_is_refused_even_after_the_customer_was_deleted() {
    let _serial = SERIAL.lock().await;
    let (rig, syncer) = world().await;
    let (customer, org) = rig.billed_customer("b2b-trialed").await;
    let mut sub = rig::subscription_object(
        &billing_sub_id(),
        &customer,
        "trialing",
        &[("leadgen_monthly", 1)],
    );
    sub["trial_end"] = (billing::domain::Timestamp::now().unix() + 10 * 86_400).into();
    fake_put(&rig.stripe_url, &sub).await;
    syncer.sync_org(&org).await.unwrap();
    let trialed = rig.store.trialed_modules(&org).await.unwrap();
    assert_eq!(trialed, [billing::domain::ServiceModule::LeadGeneration]);

    // The customer is deleted in Stripe (its subscriptions with it) and the webhook applies it.
    let reply = rig::delete_customer(&rig.stripe_url, &customer).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (status, answer) = rig.deliver_new("customer.subscription.deleted", &sub).await;
    assert_eq!(status, 200, "{answer}");
    let deleted = customer_object(&customer, Some(&org));
    let (status, answer) = rig.deliver_new("customer.deleted", &deleted).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM"]);

    let config = config(CheckoutOffer::default());
    let view = api::checkout_for(
        &syncer,
        &config,
        &org,
        Role::Admin,
        &BuyerDetails::default(),
        &body(&["LeadGeneration", "EmailAutomation"], "month"),
    )
    .await
    .unwrap();
    assert!(view.url.contains("cs_"), "{}", view.url);
    let sessions = forms("/v1/checkout/sessions", org.to_string()).await;
    let session = sessions.last().unwrap();
    assert!(
        !session.contains_key("subscription_data[trial_period_days]"),
        "a second trial of LeadGeneration: {session:?}"
    );
    assert!(!session.contains_key("payment_method_collection"));
    // A module never trialled still gets its trial.
    let fresh = api::checkout_for(
        &syncer,
        &config,
        &org,
        Role::Admin,
        &BuyerDetails::default(),
        &body(&["EmailAutomation"], "month"),
    )
    .await;
    assert!(fresh.is_ok(), "{fresh:?}");
    let sessions = forms("/v1/checkout/sessions", org.to_string()).await;
    assert!(has(
        sessions.last().unwrap(),
        "subscription_data[trial_period_days]",
        "14"
    ));
}

fn billing_sub_id() -> String {
    pss_billing_tests::unique("sub_b2b_")
}

fn outcomes(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("CheckoutSessions").is_some())
        .map(|v| {
            // An EMF line as CloudWatch reads it: the metric under the `Outcome` dimension.
            let directive = &v["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], "PssBilling");
            assert_eq!(directive["Dimensions"], json!([["Outcome"]]));
            assert_eq!(directive["Metrics"][0]["Name"], "CheckoutSessions");
            assert_eq!(v["CheckoutSessions"], 1.0);
            v["Outcome"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Each outcome is counted where it happens, once: `created` by the checkout, `completed` by
/// the webhook's completion event, `expired` by the webhook's expiry event, which grants
/// nothing (and a redelivery counts nothing more).
#[tokio::test]
async fn checkout_outcomes_are_counted_once_and_an_expired_session_grants_nothing() {
    let _serial = SERIAL.lock().await;
    let (rig, syncer) = world().await;
    let org = build::org("b2b-outcomes");
    let before = billing::metrics::captured().len();
    let view = api::checkout_for(
        &syncer,
        &config(CheckoutOffer::default()),
        &org,
        Role::Admin,
        &BuyerDetails::default(),
        &body(&["Integrations"], "month"),
    )
    .await
    .unwrap();
    // The buyer never pays: at `expires_at` Stripe expires the session and sends the event
    // (here at that time: the fixture's expiry is immediate, its timer is the clock).
    let url = format!(
        "{}/v1/checkout/sessions/{}/expire",
        fake_stripe().url,
        view.session_id
    );
    let reply = blocking(move || pss_billing_tests::http::stripe_form("POST", &url, &[])).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let session = stripe_get(&format!("/v1/checkout/sessions/{}", view.session_id)).await;
    let mut expired = rig::event(
        &pss_billing_tests::unique("evt_"),
        "checkout.session.expired",
        &session,
    );
    expired["created"] = session["expires_at"].clone();
    // The same session expired before its time (by a later checkout, or by hand): not an
    // abandoned checkout, so not counted.
    let early = rig::event(
        &pss_billing_tests::unique("evt_"),
        "checkout.session.expired",
        &session,
    );
    let (status, answer) = rig.deliver(&early).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("processed")),
        "{answer}"
    );
    let (status, answer) = rig.deliver(&expired).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("processed")),
        "{answer}"
    );
    let (status, again) = rig.deliver(&expired).await;
    assert_eq!(
        (status, again["outcome"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );
    assert_eq!(
        rig.unlocked(&org).await,
        ["BasicCRM"],
        "an expired session grants nothing"
    );

    // Another checkout, paid: its completion event counts once.
    let view = api::checkout_for(
        &syncer,
        &config(CheckoutOffer::default()),
        &org,
        Role::Admin,
        &BuyerDetails::default(),
        &body(&["Integrations", "SocialInbox"], "month"),
    )
    .await
    .unwrap();
    let profile = rig.store.billing_profile(&org).await.unwrap().unwrap();
    let sub = rig
        .put_subscription(profile.customer_id.as_str(), "integrations_monthly")
        .await;
    let url = format!(
        "{}/_test/checkout/{}/complete",
        fake_stripe().url,
        view.session_id
    );
    let paid = json!({"subscription": sub["id"]});
    let reply = blocking(move || pss_billing_tests::http::post_json(&url, &paid)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let session = stripe_get(&format!("/v1/checkout/sessions/{}", view.session_id)).await;
    let completed = rig::event(
        &pss_billing_tests::unique("evt_"),
        "checkout.session.completed",
        &session,
    );
    let (status, answer) = rig.deliver(&completed).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("processed")),
        "{answer}"
    );
    let (_, again) = rig.deliver(&completed).await;
    assert_eq!(again["outcome"], "duplicate");
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "Integrations"]);

    let lines = billing::metrics::captured()[before..].to_vec();
    let counted = outcomes(&lines);
    assert_eq!(
        counted.iter().filter(|o| *o == "expired").count(),
        1,
        "{counted:?}"
    );
    assert_eq!(
        counted.iter().filter(|o| *o == "created").count(),
        2,
        "{counted:?}"
    );
    assert_eq!(
        counted.iter().filter(|o| *o == "completed").count(),
        1,
        "{counted:?}"
    );
}

async fn stripe_get(path: &str) -> Value {
    let url = format!("{}{path}", fake_stripe().url);
    blocking(move || {
        pss_billing_tests::http::request(
            "GET",
            &url,
            &[("Authorization", "Bearer sk_test_b2b")],
            b"",
        )
        .json()
    })
    .await
}

/// The fixture Stripe's events not delivered yet by this test, delivered to the webhook.
async fn deliver_new_events(rig: &Rig, seen: &mut std::collections::BTreeSet<String>) {
    let url = format!("{}/_test/events", rig.stripe_url);
    let events = blocking(move || get(&url).json()).await;
    for event in events.as_array().unwrap() {
        let id = event["id"].as_str().unwrap().to_owned();
        if seen.insert(id) {
            let (status, body) = rig.deliver(event).await;
            assert_eq!(status, 200, "{}: {body}", event["type"]);
        }
    }
}

async fn events_seen_so_far(stripe_url: &str) -> std::collections::BTreeSet<String> {
    let url = format!("{stripe_url}/_test/events");
    let events = blocking(move || get(&url).json()).await;
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn control(stripe_url: &str, path: &str, body: Value) -> Value {
    let url = format!("{stripe_url}{path}");
    let reply = blocking(move || pss_billing_tests::http::post_json(&url, &body)).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.json()
}

fn german_company(vat_id: Option<&str>) -> Value {
    let mut buyer = json!({"business_name": "Acme GmbH", "email": "ap@acme.test",
        "address": {"country": "DE", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115"}});
    if let Some(vat) = vat_id {
        buyer["vat_id"] = vat.into();
    }
    buyer
}

/// A trial started at checkout with company details and no card: trialing (unlocked) with the
/// trial on record, told three days before the end to add a card, then canceled and locked
/// when it ends without one (`missing_payment_method=cancel`).
#[tokio::test]
async fn a_trial_without_a_card_is_announced_then_ends_canceled_and_locked() {
    let _serial = SERIAL.lock().await;
    // A fixture Stripe of its own: its clock moves forward only, and this test moves it.
    let fake =
        pss_billing_tests::emulators::start_fake_stripe(pss_billing_tests::free_port(), None);
    let (rig, syncer) = world_on(&fake.url).await;
    let mut seen = events_seen_so_far(&rig.stripe_url).await;
    let org = build::org("b2b-trial");
    let config = config(CheckoutOffer::default());
    let view = api::checkout_for(
        &syncer,
        &config,
        &org,
        Role::Admin,
        &BuyerDetails::default(),
        &body(&["LeadGeneration"], "month"),
    )
    .await
    .unwrap();
    let session = control(
        &rig.stripe_url,
        &format!("/_test/checkout/{}/complete", view.session_id),
        german_company(Some("DE123456789")),
    )
    .await;
    assert_eq!(
        session["payment_status"], "no_payment_required",
        "{session}"
    );
    deliver_new_events(&rig, &mut seen).await;
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    let overview = |at: &'static str| {
        let (store, config, org) = (rig.store.clone(), config.clone(), org.clone());
        async move {
            let o = api::subscription_offered(&store, &org, GracePolicy::default(), &config.offer)
                .await
                .unwrap();
            serde_json::to_value(o).map(|v| (at, v)).unwrap()
        }
    };
    let (_, first) = overview("started").await;
    assert_eq!(first["trialDays"], 14);
    assert_eq!(first["trialedModules"], json!(["LeadGeneration"]));
    let sub = &first["subscriptions"][0];
    assert_eq!(sub["status"], "trialing", "{first}");
    assert_eq!(sub["trialWillEnd"], false);
    let trial_end = sub["trialEnd"].as_i64().unwrap();
    let clock = control(&rig.stripe_url, "/_test/clock", json!({})).await;
    let started = clock["now"].as_i64().unwrap_or(trial_end - 14 * 86_400);
    assert!(
        (trial_end - started - 14 * 86_400).abs() <= 5,
        "14 days: {trial_end} {started}"
    );

    // Eleven days later Stripe announces the end.
    control(
        &rig.stripe_url,
        "/_test/clock",
        json!({"advance_seconds": 11 * 86_400 + 60}),
    )
    .await;
    deliver_new_events(&rig, &mut seen).await;
    let (_, announced) = overview("announced").await;
    assert_eq!(
        announced["subscriptions"][0]["trialWillEnd"], true,
        "{announced}"
    );
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);

    // The trial ends with no card: canceled, locked; its trial stays on record.
    control(
        &rig.stripe_url,
        "/_test/clock",
        json!({"advance_seconds": 3 * 86_400}),
    )
    .await;
    deliver_new_events(&rig, &mut seen).await;
    let (_, ended) = overview("ended").await;
    assert_eq!(ended["subscriptions"][0]["status"], "canceled", "{ended}");
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM"]);
    assert_eq!(ended["trialedModules"], json!(["LeadGeneration"]));
}

/// Tax computed by Stripe Tax on the buyer's address and a promotion code reach the invoice
/// list; a module added later is taxed too (the subscription keeps automatic tax).
#[tokio::test]
async fn tax_and_discount_reach_the_invoices_and_an_addition_is_taxed_too() {
    let _serial = SERIAL.lock().await;
    let (rig, syncer) = world().await;
    let mut seen = events_seen_so_far(&rig.stripe_url).await;
    let code = pss_billing_tests::unique("TWENTY");
    fake_put(
        &rig.stripe_url,
        &json!({"id": pss_billing_tests::unique("promo_"), "object": "promotion_code", "code": code,
            "active": true, "coupon": {"id": pss_billing_tests::unique("coupon_"), "object": "coupon",
            "percent_off": 20, "duration": "forever"}}),
    )
    .await;
    let org = build::org("b2b-tax");
    let offer = CheckoutOffer {
        trial_days: 0,
        ..CheckoutOffer::default()
    };
    let view = api::checkout_for(
        &syncer,
        &config(offer),
        &org,
        Role::Admin,
        &BuyerDetails::default(),
        &body(&["LeadGeneration"], "month"),
    )
    .await
    .unwrap();
    let mut buyer = german_company(None);
    buyer["promotion_code"] = code.clone().into();
    buyer["payment_method"] = "pm_card_visa".into();
    control(
        &rig.stripe_url,
        &format!("/_test/checkout/{}/complete", view.session_id),
        buyer,
    )
    .await;
    deliver_new_events(&rig, &mut seen).await;
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    let page = api::invoices(&rig.store, &org, None, None).await.unwrap();
    let page = serde_json::to_value(page).unwrap();
    let invoice = &page["invoices"][0];
    // Computed by hand: $99.00, 20 % off = $19.80, German VAT 19 % of $79.20 = $15.05.
    assert_eq!(
        (
            &invoice["subtotal"],
            &invoice["discount"],
            &invoice["tax"],
            &invoice["total"]
        ),
        (&json!(9900), &json!(1980), &json!(1505), &json!(9425)),
        "{invoice}"
    );

    // An addition to the taxed plan: the charge carries tax on top of its lines.
    let preview = billing::api::plan::preview(
        &syncer,
        &offer,
        &org,
        Role::Admin,
        br#"{"services":["EmailAutomation"],"interval":"month"}"#,
    )
    .await
    .unwrap();
    let lines: i64 = preview.lines.iter().map(|l| l.amount).sum();
    assert!(lines > 0);
    assert!(
        preview.amount_due_today > lines * 80 / 100,
        "taxed: {} for lines of {lines}",
        preview.amount_due_today
    );
    let sub_id = rig.store.subscriptions(&org).await.unwrap()[0]
        .subscription
        .id
        .to_string();
    let sub = stripe_get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub["automatic_tax"]["enabled"], true, "{sub}");
}

/// A trial is for a module's first purchase: a returning customer (the module held in an ended
/// subscription) gets none; a customer paying for another plan gets its trial with the card
/// confirmed up front (it would otherwise cancel for want of a card it has); and a module had
/// before cannot ride another plan's trial by being added to it.
#[tokio::test]
async fn trials_are_for_first_purchases_only() {
    let _serial = SERIAL.lock().await;
    let (rig, syncer) = world().await;
    let config = config(CheckoutOffer::default());
    let checkout =
        |org: billing::domain::OrgId, services: &'static [&'static str], interval: &'static str| {
            let (syncer, config) = (syncer.clone(), config.clone());
            async move {
                api::checkout_for(
                    &syncer,
                    &config,
                    &org,
                    Role::Admin,
                    &BuyerDetails::default(),
                    &body(services, interval),
                )
                .await
            }
        };
    let last_session = |org: billing::domain::OrgId| async move {
        forms("/v1/checkout/sessions", org.to_string())
            .await
            .pop()
            .expect("a session")
    };

    // Paid for LeadGeneration once, canceled since: buying it again starts no trial.
    let (customer, returning) = rig.billed_customer("b2b-returning").await;
    let ended = rig::subscription_object(
        &billing_sub_id(),
        &customer,
        "canceled",
        &[("leadgen_monthly", 1)],
    );
    fake_put(&rig.stripe_url, &ended).await;
    syncer.sync_org(&returning).await.unwrap();
    checkout(returning.clone(), &["LeadGeneration"], "month")
        .await
        .unwrap();
    let session = last_session(returning.clone()).await;
    assert!(
        !session.contains_key("subscription_data[trial_period_days]"),
        "{session:?}"
    );

    // Paying monthly, buying a yearly module never had: a trial, and the card confirmed.
    let (customer, paying) = rig.billed_customer("b2b-paying").await;
    let live = rig.put_subscription(&customer, "leadgen_monthly").await;
    syncer.sync_org(&paying).await.unwrap();
    checkout(paying.clone(), &["SocialInbox"], "year")
        .await
        .unwrap();
    let session = last_session(paying.clone()).await;
    assert!(
        has(&session, "subscription_data[trial_period_days]", "14"),
        "{session:?}"
    );
    assert!(
        !session.contains_key("payment_method_collection"),
        "{session:?}"
    );
    assert!(live["id"].is_string());

    // In a trial of LeadGeneration, having had SocialInbox before: adding it is refused;
    // adding a module never had is not.
    let (customer, trialing) = rig.billed_customer("b2b-trialing").await;
    let mut sub = rig::subscription_object(
        &billing_sub_id(),
        &customer,
        "trialing",
        &[("leadgen_monthly", 1)],
    );
    sub["trial_end"] = (billing::domain::Timestamp::now().unix() + 10 * 86_400).into();
    fake_put(&rig.stripe_url, &sub).await;
    syncer.sync_org(&trialing).await.unwrap();
    rig.store
        .record_trials(
            &trialing,
            &[billing::domain::ServiceModule::SocialInbox],
            billing::domain::Timestamp::now(),
        )
        .await
        .unwrap();
    let preview = |services: &'static [u8]| {
        let (syncer, org) = (syncer.clone(), trialing.clone());
        async move {
            billing::api::plan::preview(
                &syncer,
                &CheckoutOffer::default(),
                &org,
                Role::Admin,
                services,
            )
            .await
        }
    };
    let refused = preview(br#"{"services":["SocialInbox"],"interval":"month"}"#)
        .await
        .unwrap_err();
    assert_eq!((refused.status.as_u16(), refused.code), (409, "trial_used"));
    let refused = preview(br#"{"services":["EmailAutomation","SocialInbox"],"interval":"month"}"#)
        .await
        .unwrap_err();
    assert_eq!(refused.code, "trial_used");
    let stripe_sub = stripe_get(&format!(
        "/v1/subscriptions/{}",
        sub["id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(stripe_sub["status"], "trialing");
}
