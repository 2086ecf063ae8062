//! An org's modules of one interval live on one Stripe subscription: a later purchase adds
//! items to it, charged now for the rest of the period at the price its preview showed, and a
//! charge that fails (or waits for 3-D Secure) adds nothing until it is paid. Against the
//! fixture Stripe, whose subscriptions, prorations, previews and test cards behave as
//! Stripe documents (tests/emulators/test_fake_stripe_billing.py checks them against
//! Stripe's own figures).

use billing::api::checkout::CheckoutOffer;
use billing::api::plan;
use billing::catalog_sync::sync_catalog;
use billing::domain::{Catalog, GracePolicy, OrgId};
use billing::http::ApiError;
use billing::routes::Role;
use billing::stripe::StripeApi;
use billing::sync::Syncer;
use pss_billing_tests::http::{blocking, get, post_json, stripe_form};
use pss_billing_tests::rig::{Rig, STRIPE_KEY, customer_object, fake_put};
use serde_json::{Value, json};

/// This binary's checkouts offer no trial (trials are tested in tests/tests/b2b_checkout.rs).
const NO_TRIAL: CheckoutOffer = CheckoutOffer {
    automatic_tax: true,
    promotion_codes: true,
    trial_days: 0,
};

struct Plan {
    rig: Rig,
    syncer: Syncer,
    url: String,
}

async fn world() -> Plan {
    let rig = Rig::on_fake_stripe().await;
    let url = rig.stripe_url.clone();
    let stripe = StripeApi::new(STRIPE_KEY, Some(&url)).unwrap();
    // Idempotent: every test of this binary shares the fixture Stripe.
    sync_catalog(&stripe, Catalog::standard().entries())
        .await
        .unwrap();
    let syncer = Syncer::new(rig.store.clone(), stripe, GracePolicy::default());
    Plan { rig, syncer, url }
}

async fn stripe(url: String, method: &'static str, form: Vec<(String, String)>) -> Value {
    blocking(move || {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let reply = stripe_form(method, &url, &pairs);
        assert!(reply.status < 300, "{method} {url}: {}", reply.body);
        reply.json()
    })
    .await
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn price_id(url: &str, lookup_key: &str) -> String {
    let list = stripe(
        format!("{url}/v1/prices?lookup_keys[0]={lookup_key}&active=true"),
        "GET",
        vec![],
    )
    .await;
    list["data"][0]["id"].as_str().expect("a price").to_owned()
}

impl Plan {
    /// An org whose Stripe customer pays with `card` and holds a subscription to the
    /// catalog prices `lookup_keys` (one item each), stored as the webhook would.
    async fn paying_org(
        &self,
        name: &str,
        card: &str,
        lookup_keys: &[&str],
    ) -> (OrgId, String, String) {
        let (customer, org) = self.rig.billed_customer(name).await;
        let mut object = customer_object(&customer, Some(&org));
        object["invoice_settings"]["default_payment_method"] = "pm_card_visa".into();
        fake_put(&self.url, &object).await;
        let mut pairs = vec![
            ("customer".to_owned(), customer.clone()),
            ("metadata[organization_id]".to_owned(), org.to_string()),
        ];
        for (i, key) in lookup_keys.iter().enumerate() {
            pairs.push((format!("items[{i}][price]"), price_id(&self.url, key).await));
        }
        let sub = stripe(format!("{}/v1/subscriptions", self.url), "POST", pairs).await;
        assert_eq!(sub["status"], "active", "{sub}");
        let sub_id = sub["id"].as_str().unwrap().to_owned();
        // Ten days into a 30-day period, as Stripe's proration examples are.
        let mut backdated = self.subscription(&sub_id).await;
        let start = billing::domain::Timestamp::now().unix() - 10 * 86_400;
        for item in backdated["items"]["data"].as_array_mut().unwrap() {
            item["current_period_start"] = start.into();
            item["current_period_end"] = (start + 30 * 86_400).into();
        }
        backdated["start_date"] = start.into();
        backdated["billing_cycle_anchor"] = start.into();
        fake_put(&self.url, &backdated).await;
        if card != "pm_card_visa" {
            // The card that pays from now on (as the portal's card update sets it).
            stripe(
                format!("{}/v1/subscriptions/{sub_id}", self.url),
                "POST",
                form(&[("default_payment_method", card)]),
            )
            .await;
        }
        self.syncer.sync_org(&org).await.unwrap();
        (org, customer, sub_id)
    }

    async fn preview(
        &self,
        org: &OrgId,
        services: &[&str],
        interval: &str,
    ) -> Result<Value, ApiError> {
        let body = json!({"services": services, "interval": interval}).to_string();
        plan::preview(&self.syncer, &NO_TRIAL, org, Role::Admin, body.as_bytes())
            .await
            .map(|v| serde_json::to_value(v).unwrap())
    }

    async fn add(
        &self,
        org: &OrgId,
        services: &[&str],
        interval: &str,
        date: i64,
    ) -> Result<Value, ApiError> {
        let body =
            json!({"services": services, "interval": interval, "prorationDate": date}).to_string();
        plan::add_modules(&self.syncer, &NO_TRIAL, org, Role::Admin, body.as_bytes())
            .await
            .map(|v| serde_json::to_value(v).unwrap())
    }

    /// The proration date of a preview of adding `services` (an add-mode preview).
    async fn previewed_date(&self, org: &OrgId, services: &[&str], interval: &str) -> i64 {
        let preview = self.preview(org, services, interval).await.unwrap();
        assert_eq!(preview["mode"], "add", "{preview}");
        preview["prorationDate"].as_i64().unwrap()
    }

    async fn subscription(&self, id: &str) -> Value {
        stripe(format!("{}/v1/subscriptions/{id}", self.url), "GET", vec![]).await
    }

    async fn customer_subscriptions(&self, customer: &str) -> Vec<Value> {
        let list = stripe(
            format!(
                "{}/v1/subscriptions?customer={customer}&status=all",
                self.url
            ),
            "GET",
            vec![],
        )
        .await;
        list["data"].as_array().unwrap().clone()
    }

    /// The fixture Stripe's events about `object_id`, oldest first, delivered to the webhook.
    async fn deliver_events_of(&self, object_id: &str) {
        let url = format!("{}/_test/events", self.url);
        let events = blocking(move || get(&url).json()).await;
        for event in events.as_array().unwrap() {
            let object = &event["data"]["object"];
            if object["id"] == object_id || object["subscription"] == object_id {
                let (status, body) = self.rig.deliver(event).await;
                assert_eq!(status, 200, "{}: {body}", event["type"]);
            }
        }
    }

    /// The requests the fixture Stripe received for `path`.
    async fn requests_to(&self, method: &'static str, path: String) -> Vec<Value> {
        let url = format!("{}/_test/requests", self.url);
        let all = blocking(move || get(&url).json()).await;
        all.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == method && r["path"] == path.as_str())
            .cloned()
            .collect()
    }
}

fn modules_of(subscription: &Value) -> Vec<String> {
    let mut keys: Vec<String> = subscription["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["price"]["lookup_key"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn a_later_purchase_joins_the_one_subscription_for_the_previewed_price() {
    let w = world().await;
    let (org, customer, sub) = w
        .paying_org("plan-add", "pm_card_visa", &["leadgen_monthly"])
        .await;
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);

    let preview = w
        .preview(&org, &["EmailAutomation", "SocialInbox"], "month")
        .await
        .unwrap();
    assert_eq!(preview["mode"], "add", "{preview}");
    let date = preview["prorationDate"].as_i64().unwrap();
    // Independently of the code under test: each price × the rest of the period, to the
    // second, rounded to the cent (Stripe's proration), from the subscription's own period.
    let stripe_sub = w.subscription(&sub).await;
    let item = &stripe_sub["items"]["data"][0];
    let (start, end) = (
        item["current_period_start"].as_i64().unwrap(),
        item["current_period_end"].as_i64().unwrap(),
    );
    let prorate =
        |cents: i64| ((cents * (end - date)) as f64 / (end - start) as f64).round() as i64;
    let today = prorate(4900) + prorate(7900);
    assert_eq!(preview["amountDueToday"], today, "{preview}");
    // 20 of 30 days left: about two thirds of $49 + $79 (3267 + 5267 at the period's start).
    assert!((8500..=8534).contains(&today), "{today}");
    assert_eq!(preview["nextInvoice"]["amount"], 9900 + 4900 + 7900);
    assert_eq!(preview["nextInvoice"]["date"], end);
    let lines = preview["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{preview}");
    assert!(lines.iter().all(|l| l["proration"] == true));
    let mut named: Vec<&str> = lines
        .iter()
        .map(|l| l["service"].as_str().unwrap())
        .collect();
    named.sort();
    assert_eq!(named, ["EmailAutomation", "SocialInbox"]);

    // Time passes between the preview and the confirm: the charge is still the preview's.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let added = w
        .add(&org, &["EmailAutomation", "SocialInbox"], "month", date)
        .await
        .unwrap();
    assert_eq!(added["amountCharged"], today, "{added}");
    let unlocked: Vec<&str> = added["subscription"]["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["unlocked"] == true)
        .map(|e| e["module"].as_str().unwrap())
        .collect();
    assert_eq!(
        unlocked,
        [
            "BasicCRM",
            "LeadGeneration",
            "EmailAutomation",
            "SocialInbox"
        ]
    );
    // Opened at once, in the table the authorizer reads, before any webhook.
    assert_eq!(
        w.rig.unlocked(&org).await,
        [
            "BasicCRM",
            "LeadGeneration",
            "EmailAutomation",
            "SocialInbox"
        ]
    );

    // One subscription with three items, and one proration invoice for the preview's instant.
    let subs = w.customer_subscriptions(&customer).await;
    assert_eq!(subs.len(), 1, "one subscription per interval");
    assert_eq!(
        modules_of(&subs[0]),
        [
            "email_automation_monthly",
            "leadgen_monthly",
            "social_inbox_monthly"
        ]
    );
    let invoice_id = added["invoiceId"].as_str().unwrap().to_owned();
    let invoice = stripe(format!("{}/v1/invoices/{invoice_id}", w.url), "GET", vec![]).await;
    assert_eq!(invoice["amount_paid"], today);
    for line in invoice["lines"]["data"].as_array().unwrap() {
        // Stripe's proration line covers [proration_date, period end].
        assert_eq!(line["period"]["start"], date, "{line}");
    }
    let updates = w
        .requests_to("POST", format!("/v1/subscriptions/{sub}"))
        .await;
    let sent = &updates.last().unwrap()["form"];
    assert_eq!(sent["proration_date"], date.to_string());
    assert_eq!(sent["proration_behavior"], "always_invoice");
    assert_eq!(sent["payment_behavior"], "pending_if_incomplete");
    assert!(updates.last().unwrap()["idempotency_key"].is_string());

    // Stripe's own events about the change end in the same stored state.
    w.deliver_events_of(&sub).await;
    assert_eq!(
        w.rig.unlocked(&org).await,
        [
            "BasicCRM",
            "LeadGeneration",
            "EmailAutomation",
            "SocialInbox"
        ]
    );
    // Bought again: refused, nothing charged.
    let again = w
        .add(&org, &["SocialInbox"], "month", date)
        .await
        .unwrap_err();
    assert_eq!(
        (again.status.as_u16(), again.code),
        (409, "already_subscribed")
    );
}

#[tokio::test]
async fn a_yearly_module_on_a_monthly_plan_goes_through_checkout() {
    let w = world().await;
    let (org, _, _) = w
        .paying_org("plan-year", "pm_card_visa", &["leadgen_monthly"])
        .await;
    let preview = w
        .preview(&org, &["AdvancedAnalytics"], "year")
        .await
        .unwrap();
    assert_eq!(preview["mode"], "checkout");
    assert_eq!(preview["amountDueToday"], 29_900);
    assert_eq!(preview["prorationDate"], Value::Null);
    let refused = w
        .add(
            &org,
            &["AdvancedAnalytics"],
            "year",
            billing::domain::Timestamp::now().unix(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status.as_u16(), refused.code),
        (409, "no_subscription")
    );
    // And a monthly checkout is refused: the monthly plan takes it.
    let config = billing::api::ApiConfig {
        origins: billing::api::OriginAllowlist::parse("https://app.example.test"),
        sync_per_minute: 5,
        offer: NO_TRIAL,
    };
    let body = |interval: &str| {
        json!({"services": ["AdvancedAnalytics"], "interval": interval,
            "successUrl": "https://app.example.test/ok", "cancelUrl": "https://app.example.test/no"})
        .to_string()
    };
    let monthly = billing::api::checkout(
        &w.syncer,
        &config,
        &org,
        Role::Admin,
        body("month").as_bytes(),
    )
    .await
    .unwrap_err();
    assert_eq!(monthly.code, "plan_exists");
    billing::api::checkout(
        &w.syncer,
        &config,
        &org,
        Role::Admin,
        body("year").as_bytes(),
    )
    .await
    .expect("a yearly plan starts with a checkout");
}

/// A declined card: nothing is added and nothing unlocks; the plan keeps its one item. Paying
/// the open invoice (with another card) applies the change, and its events unlock the module.
#[tokio::test]
async fn a_declined_charge_adds_and_unlocks_nothing_until_the_invoice_is_paid() {
    let w = world().await;
    let (org, _, sub) = w
        .paying_org(
            "plan-declined",
            "pm_card_chargeCustomerFail",
            &["leadgen_monthly"],
        )
        .await;
    let preview = w
        .preview(&org, &["EmailAutomation"], "month")
        .await
        .unwrap();
    let date = preview["prorationDate"].as_i64().unwrap();
    let refused = w
        .add(&org, &["EmailAutomation"], "month", date)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status.as_u16(), refused.code),
        (402, "payment_incomplete")
    );
    let page = refused.hosted_invoice_url.clone().expect("where to pay");
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    let stripe_sub = w.subscription(&sub).await;
    assert_eq!(
        modules_of(&stripe_sub),
        ["leadgen_monthly"],
        "the plan is as it was"
    );
    assert!(!stripe_sub["pending_update"].is_null());
    // Every event Stripe sent about it changes nothing either.
    w.deliver_events_of(&sub).await;
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    // A second try while the first waits for its payment names the same invoice.
    let waiting = w
        .add(&org, &["EmailAutomation"], "month", date)
        .await
        .unwrap_err();
    assert_eq!(waiting.code, "payment_pending");
    assert_eq!(waiting.hosted_invoice_url.as_deref(), Some(page.as_str()));

    let invoice = stripe_sub["latest_invoice"].as_str().unwrap().to_owned();
    stripe(
        format!("{}/v1/invoices/{invoice}/pay", w.url),
        "POST",
        form(&[("payment_method", "pm_card_visa")]),
    )
    .await;
    w.deliver_events_of(&sub).await;
    assert_eq!(
        w.rig.unlocked(&org).await,
        ["BasicCRM", "LeadGeneration", "EmailAutomation"]
    );
}

/// A card that needs 3-D Secure: the buyer is sent to the invoice's page, and authenticating
/// there applies the change.
#[tokio::test]
async fn a_charge_that_needs_authentication_is_finished_on_the_invoice_page() {
    let w = world().await;
    let (org, _, sub) = w
        .paying_org(
            "plan-3ds",
            "pm_card_authenticationRequired",
            &["leadgen_monthly"],
        )
        .await;
    let date = w.previewed_date(&org, &["Integrations"], "month").await;
    let refused = w
        .add(&org, &["Integrations"], "month", date)
        .await
        .unwrap_err();
    assert_eq!(refused.code, "payment_incomplete");
    assert!(refused.hosted_invoice_url.is_some());
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    let invoice = w.subscription(&sub).await["latest_invoice"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/_test/invoices/{invoice}/authenticate", w.url);
    let reply = blocking(move || post_json(&url, &json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    w.deliver_events_of(&sub).await;
    assert_eq!(
        w.rig.unlocked(&org).await,
        ["BasicCRM", "LeadGeneration", "Integrations"]
    );
}

/// Two admins confirm the same module at once: one item, one charge. With the same preview
/// the idempotency key is shared (Stripe answers the second 409 `idempotency_key_in_use`
/// while the first runs, then replays it); with two previews Stripe refuses a second item of
/// the same price, and the loser is told the org has it.
#[tokio::test]
async fn concurrent_adds_of_one_module_end_with_one_item() {
    let w = world().await;
    let (org, _, sub) = w
        .paying_org("plan-race", "pm_card_visa", &["leadgen_monthly"])
        .await;
    let date = w.previewed_date(&org, &["EmailAutomation"], "month").await;
    // The update takes 400 ms, so the two requests overlap.
    let url = format!("{}/_test/latency", w.url);
    let path = format!("/v1/subscriptions/{sub}");
    blocking(move || post_json(&url, &json!({"path": path, "ms": 400}))).await;
    let (a, b) = tokio::join!(
        w.add(&org, &["EmailAutomation"], "month", date),
        w.add(&org, &["EmailAutomation"], "month", date),
    );
    let a = a.unwrap();
    let b = b.unwrap();
    assert_eq!(a["invoiceId"], b["invoiceId"], "one change, replayed");
    assert_eq!(
        modules_of(&w.subscription(&sub).await),
        ["email_automation_monthly", "leadgen_monthly"]
    );
    let in_use = w
        .requests_to("POST", format!("/v1/subscriptions/{sub}"))
        .await
        .len();
    assert!(in_use >= 2, "both reached Stripe");

    // Two previews, two keys: the second copy of the price is refused by Stripe.
    let date2 = date - 1;
    let (c, d) = tokio::join!(
        w.add(&org, &["SocialInbox"], "month", date),
        w.add(&org, &["SocialInbox"], "month", date2),
    );
    let outcomes = [c.map(|_| "added"), d.map(|_| "added")];
    let added = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(added, 1, "{outcomes:?}");
    let loser = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert_eq!(
        (loser.status.as_u16(), loser.code),
        (409, "already_subscribed")
    );
    assert_eq!(
        modules_of(&w.subscription(&sub).await),
        [
            "email_automation_monthly",
            "leadgen_monthly",
            "social_inbox_monthly"
        ]
    );
}

#[tokio::test]
async fn a_stale_or_invented_proration_date_is_refused_before_stripe_is_asked() {
    let w = world().await;
    let (org, _, sub) = w
        .paying_org("plan-stale", "pm_card_visa", &["leadgen_monthly"])
        .await;
    let now = billing::domain::Timestamp::now().unix();
    let before = w
        .requests_to("POST", format!("/v1/subscriptions/{sub}"))
        .await
        .len();
    let stale = w
        .add(&org, &["EmailAutomation"], "month", now - 3_700)
        .await
        .unwrap_err();
    assert_eq!(
        (stale.status.as_u16(), stale.code),
        (409, "preview_expired")
    );
    let future = w
        .add(&org, &["EmailAutomation"], "month", now + 3_600)
        .await
        .unwrap_err();
    assert_eq!(
        (future.status.as_u16(), future.code),
        (409, "preview_expired")
    );
    let after = w
        .requests_to("POST", format!("/v1/subscriptions/{sub}"))
        .await
        .len();
    assert_eq!(before, after, "nothing was sent to Stripe");
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
}

/// The same addition made through this service, or straight through Stripe's API (as the
/// Dashboard does), ends in the same stored plan and access once Stripe's events arrive.
#[tokio::test]
async fn an_item_added_in_stripe_directly_ends_in_the_same_state_as_one_added_here() {
    let w = world().await;
    let (here, _, here_sub) = w
        .paying_org("plan-here", "pm_card_visa", &["leadgen_monthly"])
        .await;
    let (there, _, there_sub) = w
        .paying_org("plan-there", "pm_card_visa", &["leadgen_monthly"])
        .await;
    let date = w.previewed_date(&here, &["EmailAutomation"], "month").await;
    w.add(&here, &["EmailAutomation"], "month", date)
        .await
        .unwrap();
    let price = price_id(&w.url, "email_automation_monthly").await;
    stripe(
        format!("{}/v1/subscriptions/{there_sub}", w.url),
        "POST",
        form(&[
            ("items[0][price]", price.as_str()),
            ("proration_behavior", "always_invoice"),
        ]),
    )
    .await;
    assert_eq!(
        w.rig.unlocked(&there).await,
        ["BasicCRM", "LeadGeneration"],
        "nothing is known before Stripe's events"
    );
    w.deliver_events_of(&here_sub).await;
    w.deliver_events_of(&there_sub).await;
    let stored = |org: OrgId| {
        let store = w.rig.store.clone();
        async move {
            let subs = store.subscriptions(&org).await.unwrap();
            assert_eq!(subs.len(), 1);
            let mut modules: Vec<_> = subs[0].subscription.modules().collect();
            modules.sort();
            (
                subs[0].subscription.status,
                modules,
                subs[0].subscription.items.len(),
            )
        }
    };
    assert_eq!(stored(here.clone()).await, stored(there.clone()).await);
    assert_eq!(w.rig.unlocked(&here).await, w.rig.unlocked(&there).await);
    assert_eq!(
        w.rig.unlocked(&there).await,
        ["BasicCRM", "LeadGeneration", "EmailAutomation"]
    );
}

/// A plan set to end takes no module (it would be charged for the rest of the period and end
/// with the plan); once kept, it does.
#[tokio::test]
async fn a_plan_set_to_end_takes_no_module_until_it_is_kept() {
    let w = world().await;
    let (org, _, sub) = w
        .paying_org("plan-ending", "pm_card_visa", &["leadgen_monthly"])
        .await;
    let url = format!("{}/v1/subscriptions/{sub}", w.url);
    stripe(
        url.clone(),
        "POST",
        form(&[("cancel_at_period_end", "true")]),
    )
    .await;
    let refused = w
        .preview(&org, &["EmailAutomation"], "month")
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status.as_u16(), refused.code),
        (409, "plan_canceling")
    );
    let refused = w
        .add(
            &org,
            &["EmailAutomation"],
            "month",
            billing::domain::Timestamp::now().unix(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, "plan_canceling");
    stripe(url, "POST", form(&[("cancel_at_period_end", "false")])).await;
    let preview = w
        .preview(&org, &["EmailAutomation"], "month")
        .await
        .unwrap();
    assert_eq!(preview["mode"], "add");
}

/// The same confirm sent again after the module was removed: Stripe replays the first answer
/// (the key is the same), which must not unlock the module again with nothing charged.
#[tokio::test]
async fn a_replayed_answer_after_a_removal_unlocks_nothing() {
    let w = world().await;
    let (org, _, sub) = w
        .paying_org("plan-replay", "pm_card_visa", &["leadgen_monthly"])
        .await;
    let date = w.previewed_date(&org, &["EmailAutomation"], "month").await;
    w.add(&org, &["EmailAutomation"], "month", date)
        .await
        .unwrap();
    let item = w.subscription(&sub).await["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["price"]["lookup_key"] == "email_automation_monthly")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stripe(
        format!("{}/v1/subscriptions/{sub}", w.url),
        "POST",
        form(&[
            ("items[0][id]", item.as_str()),
            ("items[0][deleted]", "true"),
            ("proration_behavior", "none"),
        ]),
    )
    .await;
    w.deliver_events_of(&sub).await;
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let replayed = w
        .add(&org, &["EmailAutomation"], "month", date)
        .await
        .unwrap_err();
    assert_eq!(
        (replayed.status.as_u16(), replayed.code),
        (409, "preview_expired")
    );
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    assert_eq!(modules_of(&w.subscription(&sub).await), ["leadgen_monthly"]);
}
