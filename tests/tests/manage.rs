//! Managing a plan after its purchase: a module removed at period end stays unlocked until
//! the end of the period it was paid for and is not renewed; an undo renews it with nothing
//! charged; the last module cancels the plan at period end; a switch to yearly moves every
//! item in one invoice equal to its preview; a past-due org is shown the invoice it owes.
//!
//! Each test runs its own fixture Stripe (its clock moves forward only, and these tests move
//! it past period ends as a Stripe test clock does). Expected amounts are computed here from
//! Stripe's documented proration formula, not by the code under test.

use billing::api::checkout::CheckoutOffer;
use billing::api::{interval, manage};
use billing::catalog_sync::sync_catalog;
use billing::domain::{Catalog, GracePolicy, OrgId};
use billing::http::ApiError;
use billing::routes::Role;
use billing::stripe::StripeApi;
use billing::sync::Syncer;
use pss_billing_tests::emulators::Emulator;
use pss_billing_tests::http::{blocking, get, post_json, stripe_form};
use pss_billing_tests::rig::{Rig, STRIPE_KEY, customer_object, fake_put};
use serde_json::{Value, json};

const OFFER: CheckoutOffer = CheckoutOffer {
    automatic_tax: false,
    promotion_codes: false,
    trial_days: 0,
};

struct World {
    _fake: Emulator,
    rig: Rig,
    syncer: Syncer,
    url: String,
    seen: std::collections::BTreeSet<String>,
}

async fn world() -> World {
    let fake =
        pss_billing_tests::emulators::start_fake_stripe(pss_billing_tests::free_port(), None);
    let url = fake.url.clone();
    let rig = Rig::new(&url).await;
    let stripe = StripeApi::new(STRIPE_KEY, Some(&url)).unwrap();
    sync_catalog(&stripe, Catalog::standard().entries())
        .await
        .unwrap();
    let syncer = Syncer::new(rig.store.clone(), stripe, GracePolicy::default());
    World {
        _fake: fake,
        rig,
        syncer,
        url,
        seen: Default::default(),
    }
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

impl World {
    async fn get(&self, path: &str) -> Value {
        stripe(format!("{}{path}", self.url), "GET", vec![]).await
    }

    async fn price(&self, lookup_key: &str) -> Value {
        let list = self
            .get(&format!(
                "/v1/prices?lookup_keys[0]={lookup_key}&active=true"
            ))
            .await;
        list["data"][0].clone()
    }

    /// An org paying with `card` for a monthly plan of the catalog prices `lookup_keys`.
    async fn paying_org(
        &mut self,
        name: &str,
        card: &str,
        lookup_keys: &[&str],
    ) -> (OrgId, String) {
        self.paying_org_in(name, card, lookup_keys, None).await
    }

    /// As [`Self::paying_org`]; with `country`, the customer's billing address is there and
    /// the plan has Stripe Tax on (`automatic_tax`), as Checkout makes it.
    async fn paying_org_in(
        &mut self,
        name: &str,
        card: &str,
        lookup_keys: &[&str],
        country: Option<&str>,
    ) -> (OrgId, String) {
        let (customer, org) = self.rig.billed_customer(name).await;
        let mut object = customer_object(&customer, Some(&org));
        object["invoice_settings"]["default_payment_method"] = "pm_card_visa".into();
        if let Some(country) = country {
            object["address"] = json!({"country": country, "line1": "Hauptstr. 1",
                "city": "Berlin", "postal_code": "10115"});
        }
        fake_put(&self.url, &object).await;
        let mut pairs = vec![
            ("customer".to_owned(), customer.clone()),
            ("metadata[organization_id]".to_owned(), org.to_string()),
        ];
        if country.is_some() {
            pairs.push(("automatic_tax[enabled]".to_owned(), "true".to_owned()));
        }
        for (i, key) in lookup_keys.iter().enumerate() {
            let price = self.price(key).await;
            pairs.push((
                format!("items[{i}][price]"),
                price["id"].as_str().unwrap().to_owned(),
            ));
        }
        let sub = stripe(format!("{}/v1/subscriptions", self.url), "POST", pairs).await;
        assert_eq!(sub["status"], "active", "{sub}");
        let sub_id = sub["id"].as_str().unwrap().to_owned();
        if card != "pm_card_visa" {
            stripe(
                format!("{}/v1/subscriptions/{sub_id}", self.url),
                "POST",
                vec![("default_payment_method".to_owned(), card.to_owned())],
            )
            .await;
        }
        self.deliver_new_events().await;
        (org, sub_id)
    }

    async fn deliver_new_events(&mut self) {
        let url = format!("{}/_test/events", self.url);
        let events = blocking(move || get(&url).json()).await;
        for event in events.as_array().unwrap() {
            let id = event["id"].as_str().unwrap().to_owned();
            if self.seen.insert(id) {
                let (status, body) = self.rig.deliver(event).await;
                assert_eq!(status, 200, "{}: {body}", event["type"]);
            }
        }
    }

    /// Moves the fixture's clock (a Stripe test clock) `seconds` on, and delivers what it sent.
    async fn advance(&mut self, seconds: i64) {
        let url = format!("{}/_test/clock", self.url);
        let reply = blocking(move || post_json(&url, &json!({"advance_seconds": seconds}))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        self.deliver_new_events().await;
    }

    async fn remove(&self, org: &OrgId, service: &str) -> Result<Value, ApiError> {
        manage::remove_module(&self.syncer, &OFFER, org, Role::Admin, Some(service))
            .await
            .map(|v| serde_json::to_value(v).unwrap())
    }

    async fn resume(&self, org: &OrgId, service: &str) -> Result<Value, ApiError> {
        manage::resume_module(&self.syncer, &OFFER, org, Role::Admin, Some(service))
            .await
            .map(|v| serde_json::to_value(v).unwrap())
    }

    async fn invoices_of(&self, sub: &str) -> Vec<Value> {
        let list = self
            .get(&format!("/v1/invoices?subscription={sub}&limit=100"))
            .await;
        list["data"].as_array().unwrap().clone()
    }

    async fn overview(&self, org: &OrgId) -> Value {
        let o = billing::api::subscription(&self.rig.store, org, GracePolicy::default())
            .await
            .unwrap();
        serde_json::to_value(o).unwrap()
    }
}

fn line_prices(invoice: &Value) -> Vec<String> {
    let mut prices: Vec<String> = invoice["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["pricing"]["price_details"]["price"]
                .as_str()
                .or(l["price"]["id"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    prices.sort();
    prices
}

/// The guarded behaviour of "remove at period end": the module stays unlocked, with its
/// paid-through date shown, until Stripe's period ends, and the renewal bills only the rest.
#[tokio::test]
async fn a_removed_module_stays_unlocked_until_the_period_end_and_is_not_renewed() {
    let mut w = world().await;
    let (org, sub) = w
        .paying_org(
            "manage-remove",
            "pm_card_visa",
            &["leadgen_monthly", "email_automation_monthly"],
        )
        .await;
    let period_end =
        w.get(&format!("/v1/subscriptions/{sub}")).await["items"]["data"][0]["current_period_end"]
            .as_i64()
            .unwrap();
    let invoices_before = w.invoices_of(&sub).await.len();

    let removed = w.remove(&org, "EmailAutomation").await.unwrap();
    assert_eq!(removed["endsAt"], period_end, "{removed}");
    let plan = &removed["subscription"]["subscriptions"][0];
    let email = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["module"] == "EmailAutomation")
        .unwrap();
    assert_eq!(email["endsAt"], period_end);
    assert_eq!(email["paidThrough"], period_end);
    // Stripe holds the change: a schedule whose next phase has only the module that renews.
    let stripe_sub = w.get(&format!("/v1/subscriptions/{sub}")).await;
    let schedule_id = stripe_sub["schedule"]
        .as_str()
        .expect("a schedule")
        .to_owned();
    let schedule = w
        .get(&format!("/v1/subscription_schedules/{schedule_id}"))
        .await;
    let lead = w.price("leadgen_monthly").await["id"].clone();
    assert_eq!(
        schedule["phases"][1]["items"].as_array().unwrap().len(),
        1,
        "{schedule}"
    );
    assert_eq!(schedule["phases"][1]["items"][0]["price"], lead);
    // Nothing was charged for the removal.
    assert_eq!(w.invoices_of(&sub).await.len(), invoices_before);

    // The schedule's events reach the webhook; the module is still paid for.
    w.deliver_new_events().await;
    assert_eq!(
        w.rig.unlocked(&org).await,
        ["BasicCRM", "LeadGeneration", "EmailAutomation"]
    );
    let overview = w.overview(&org).await;
    let stored_email = overview["subscriptions"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["module"] == "EmailAutomation")
        .cloned()
        .unwrap();
    assert_eq!(stored_email["endsAt"], period_end, "{overview}");

    // The period ends: Stripe drops the item, renews the rest, and the module locks.
    w.advance(period_end - billing::domain::Timestamp::now().unix() + 60)
        .await;
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    let renewal = w.invoices_of(&sub).await;
    let newest = renewal
        .iter()
        .max_by_key(|i| i["created"].as_i64().unwrap_or(0))
        .unwrap();
    assert_eq!(newest["billing_reason"], "subscription_cycle", "{newest}");
    assert_eq!(line_prices(newest), vec![lead.as_str().unwrap().to_owned()]);
    assert_eq!(newest["amount_due"], 9900);
}

#[tokio::test]
async fn an_undone_removal_renews_the_module_with_nothing_charged_now() {
    let mut w = world().await;
    let (org, sub) = w
        .paying_org(
            "manage-undo",
            "pm_card_visa",
            &["leadgen_monthly", "email_automation_monthly"],
        )
        .await;
    let invoices_before = w.invoices_of(&sub).await.len();
    w.remove(&org, "EmailAutomation").await.unwrap();
    let kept = w.resume(&org, "EmailAutomation").await.unwrap();
    assert_eq!(kept["endsAt"], Value::Null, "{kept}");
    // A second undo changes nothing.
    assert_eq!(
        w.resume(&org, "EmailAutomation").await.unwrap()["endsAt"],
        Value::Null
    );
    let stripe_sub = w.get(&format!("/v1/subscriptions/{sub}")).await;
    assert_eq!(
        stripe_sub["schedule"],
        Value::Null,
        "released: {stripe_sub}"
    );
    assert_eq!(w.invoices_of(&sub).await.len(), invoices_before);
    w.deliver_new_events().await;
    let period_end = stripe_sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap();
    w.advance(period_end - billing::domain::Timestamp::now().unix() + 60)
        .await;
    assert_eq!(
        w.rig.unlocked(&org).await,
        ["BasicCRM", "LeadGeneration", "EmailAutomation"]
    );
    let invoices = w.invoices_of(&sub).await;
    let newest = invoices
        .iter()
        .max_by_key(|i| i["created"].as_i64().unwrap_or(0))
        .unwrap();
    assert_eq!(newest["amount_due"], 9900 + 4900, "{newest}");
}

#[tokio::test]
async fn removing_the_last_module_cancels_the_plan_at_period_end() {
    let mut w = world().await;
    let (org, sub) = w
        .paying_org(
            "manage-last",
            "pm_card_visa",
            &["leadgen_monthly", "email_automation_monthly"],
        )
        .await;
    // One module alone: the plan cancels at period end.
    let (solo, solo_sub) = w
        .paying_org("manage-solo", "pm_card_visa", &["social_inbox_monthly"])
        .await;
    let ended = w.remove(&solo, "SocialInbox").await.unwrap();
    assert!(ended["endsAt"].is_i64(), "{ended}");
    let stripe_solo = w.get(&format!("/v1/subscriptions/{solo_sub}")).await;
    assert_eq!(stripe_solo["cancel_at_period_end"], true, "{stripe_solo}");
    // Kept after all: it renews.
    w.resume(&solo, "SocialInbox").await.unwrap();
    let stripe_solo = w.get(&format!("/v1/subscriptions/{solo_sub}")).await;
    assert_eq!(stripe_solo["cancel_at_period_end"], false, "{stripe_solo}");
    w.remove(&solo, "SocialInbox").await.unwrap();

    // Two modules, removed one after the other: the schedule itself ends the plan (one
    // write: `end_behavior=cancel`), never a release that would renew everything first.
    w.remove(&org, "EmailAutomation").await.unwrap();
    let both = w.remove(&org, "LeadGeneration").await.unwrap();
    assert!(both["endsAt"].is_i64(), "{both}");
    let stripe_sub = w.get(&format!("/v1/subscriptions/{sub}")).await;
    let schedule_id = stripe_sub["schedule"]
        .as_str()
        .expect("a schedule")
        .to_owned();
    let schedule = w
        .get(&format!("/v1/subscription_schedules/{schedule_id}"))
        .await;
    assert_eq!(schedule["end_behavior"], "cancel", "{schedule}");
    // Keeping one module of the ending plan: it renews, the other still ends.
    let kept = w.resume(&org, "LeadGeneration").await.unwrap();
    let items = kept["subscription"]["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sub.as_str())
        .unwrap()["items"]
        .clone();
    for item in items.as_array().unwrap() {
        let ends = item["endsAt"].is_i64();
        assert_eq!(ends, item["module"] == "EmailAutomation", "{items}");
    }
    // And removing it again ends the whole plan at the period end.
    w.remove(&org, "LeadGeneration").await.unwrap();
    w.deliver_new_events().await;
    assert_eq!(
        w.rig.unlocked(&org).await,
        ["BasicCRM", "LeadGeneration", "EmailAutomation"]
    );
    let period_end = stripe_sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap();
    w.advance(period_end - billing::domain::Timestamp::now().unix() + 60)
        .await;
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM"]);
    assert_eq!(w.rig.unlocked(&solo).await, ["BasicCRM"]);
    for id in [&sub, &solo_sub] {
        let ended = w.get(&format!("/v1/subscriptions/{id}")).await;
        assert_eq!(ended["status"], "canceled", "{ended}");
    }
}

#[tokio::test]
async fn a_plan_with_a_module_ending_takes_no_other_change_and_refusals_are_clear() {
    let mut w = world().await;
    let (org, _) = w
        .paying_org(
            "manage-refuse",
            "pm_card_visa",
            &["leadgen_monthly", "email_automation_monthly"],
        )
        .await;
    let e = w.remove(&org, "SocialInbox").await.unwrap_err();
    assert_eq!((e.status.as_u16(), e.code), (404, "not_subscribed"));
    w.remove(&org, "EmailAutomation").await.unwrap();
    let body = json!({"services": ["SocialInbox"], "interval": "month"}).to_string();
    let e = billing::api::plan::preview(&w.syncer, &OFFER, &org, Role::Admin, body.as_bytes())
        .await
        .unwrap_err();
    assert_eq!((e.status.as_u16(), e.code), (409, "change_scheduled"));
    let e = interval::preview(&w.syncer, &org, Role::Admin, br#"{"interval":"year"}"#)
        .await
        .unwrap_err();
    assert_eq!((e.status.as_u16(), e.code), (409, "change_scheduled"));
    let e = manage::remove_module(
        &w.syncer,
        &OFFER,
        &org,
        Role::Member,
        Some("LeadGeneration"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status.as_u16(), 403);
}

/// Stripe's proration of an unused remainder: amount × unused / period, rounded half up.
fn unused(amount: i64, start: i64, end: i64, at: i64) -> i64 {
    let (num, den) = (amount * (end - at), end - start);
    (2 * num + den) / (2 * den)
}

#[tokio::test]
async fn switching_to_yearly_moves_every_item_in_one_invoice_equal_to_its_preview() {
    let mut w = world().await;
    let (org, sub) = w
        .paying_org(
            "manage-switch",
            "pm_card_visa",
            &["leadgen_monthly", "email_automation_monthly"],
        )
        .await;
    let before = w.get(&format!("/v1/subscriptions/{sub}")).await;
    let (start, end) = (
        before["items"]["data"][0]["current_period_start"]
            .as_i64()
            .unwrap(),
        before["items"]["data"][0]["current_period_end"]
            .as_i64()
            .unwrap(),
    );
    let preview = interval::preview(&w.syncer, &org, Role::Admin, br#"{"interval":"year"}"#)
        .await
        .unwrap();
    let preview = serde_json::to_value(preview).unwrap();
    assert_eq!(preview["mode"], "switch", "{preview}");
    let date = preview["prorationDate"].as_i64().unwrap();
    // Computed here: the new year in full, less the unused month of each old price.
    let expected =
        99_900 + 49_900 - unused(9_900, start, end, date) - unused(4_900, start, end, date);
    assert_eq!(preview["amountDueToday"], expected, "{preview}");
    assert_eq!(preview["nextInvoice"]["amount"], 99_900 + 49_900);

    let body = json!({"interval": "year", "prorationDate": date}).to_string();
    let switched = interval::switch_interval(&w.syncer, &OFFER, &org, Role::Admin, body.as_bytes())
        .await
        .unwrap();
    let switched = serde_json::to_value(switched).unwrap();
    assert_eq!(switched["amountCharged"], expected, "{switched}");
    let after = w.get(&format!("/v1/subscriptions/{sub}")).await;
    let mut keys: Vec<String> = after["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["price"]["lookup_key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    assert_eq!(keys, ["email_automation_yearly", "leadgen_yearly"]);
    // Still one subscription for the org, now yearly.
    let overview = w.overview(&org).await;
    assert_eq!(overview["subscriptions"].as_array().unwrap().len(), 1);
    assert_eq!(
        overview["subscriptions"][0]["interval"], "year",
        "{overview}"
    );
    w.deliver_new_events().await;
    assert_eq!(
        w.rig.unlocked(&org).await,
        ["BasicCRM", "LeadGeneration", "EmailAutomation"]
    );
    // Switching again to yearly is refused in words.
    let e = interval::preview(&w.syncer, &org, Role::Admin, br#"{"interval":"year"}"#)
        .await
        .unwrap_err();
    assert_eq!((e.status.as_u16(), e.code), (409, "already_on_interval"));
}

#[tokio::test]
async fn a_past_due_org_is_shown_the_invoice_it_owes_and_paying_it_clears_it() {
    let mut w = world().await;
    let (org, sub) = w
        .paying_org(
            "manage-due",
            "pm_card_chargeCustomerFail",
            &["leadgen_monthly"],
        )
        .await;
    let period_end =
        w.get(&format!("/v1/subscriptions/{sub}")).await["items"]["data"][0]["current_period_end"]
            .as_i64()
            .unwrap();
    w.advance(period_end - billing::domain::Timestamp::now().unix() + 60)
        .await;
    let overview = w.overview(&org).await;
    let plan = &overview["subscriptions"][0];
    assert_eq!(plan["status"], "past_due", "{overview}");
    let owed = &plan["openInvoice"];
    assert_eq!(owed["amountDue"], 9900, "{overview}");
    assert!(owed["hostedInvoiceUrl"].is_string(), "{overview}");
    assert!(plan["gracePeriodEnd"].is_i64());
    // Still unlocked in the grace period.
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    // Removing a module of an owing plan is refused with the invoice to pay.
    let e = w.remove(&org, "LeadGeneration").await.unwrap_err();
    assert_eq!((e.status.as_u16(), e.code), (409, "payment_past_due"));

    let invoice = owed["id"].as_str().unwrap();
    stripe(
        format!("{}/v1/invoices/{invoice}/pay", w.url),
        "POST",
        vec![("payment_method".to_owned(), "pm_card_visa".to_owned())],
    )
    .await;
    w.deliver_new_events().await;
    let overview = w.overview(&org).await;
    assert_eq!(
        overview["subscriptions"][0]["status"], "active",
        "{overview}"
    );
    assert_eq!(overview["subscriptions"][0]["openInvoice"], Value::Null);
}

/// The switch is a change of the same subscription, so Stripe Tax stays on it: the switch's
/// invoice is taxed like the plan's (Germany, 19 %).
#[tokio::test]
async fn a_switched_plan_keeps_its_automatic_tax() {
    let mut w = world().await;
    let (org, sub) = w
        .paying_org_in(
            "manage-tax",
            "pm_card_visa",
            &["leadgen_monthly"],
            Some("DE"),
        )
        .await;
    let preview = interval::preview(&w.syncer, &org, Role::Admin, br#"{"interval":"year"}"#)
        .await
        .unwrap();
    let date = preview.proration_date.unwrap().unix();
    let body = json!({"interval": "year", "prorationDate": date}).to_string();
    let switched = interval::switch_interval(&w.syncer, &OFFER, &org, Role::Admin, body.as_bytes())
        .await
        .unwrap();
    let invoice_id = switched.invoice_id.expect("an invoice");
    let invoice = w.get(&format!("/v1/invoices/{invoice_id}")).await;
    let subtotal = invoice["subtotal"].as_i64().unwrap();
    let tax: i64 = invoice["total_taxes"]
        .as_array()
        .expect("taxes")
        .iter()
        .map(|t| t["amount"].as_i64().unwrap())
        .sum();
    // 19 % of the subtotal, within a cent of per-line rounding.
    let expected = (subtotal * 19 + 50) / 100;
    assert!(
        (tax - expected).abs() <= 1,
        "tax {tax} on {subtotal}: {invoice}"
    );
    assert_eq!(invoice["total"].as_i64().unwrap(), subtotal + tax);
    assert_eq!(
        preview.amount_due_today,
        subtotal + tax,
        "the preview showed the tax"
    );
    let after = w.get(&format!("/v1/subscriptions/{sub}")).await;
    assert_eq!(after["automatic_tax"]["enabled"], true, "{after}");
}

/// The portal cancels a whole plan at period end; keeping one module of it in the app renews
/// that one only: the other still ends (a schedule made from the uncancelled plan ends it).
#[tokio::test]
async fn keeping_one_module_of_a_plan_the_portal_cancelled_renews_only_that_one() {
    let mut w = world().await;
    let (org, sub) = w
        .paying_org(
            "manage-portal-keep",
            "pm_card_visa",
            &["leadgen_monthly", "email_automation_monthly"],
        )
        .await;
    stripe(
        format!("{}/v1/subscriptions/{sub}", w.url),
        "POST",
        vec![("cancel_at_period_end".to_owned(), "true".to_owned())],
    )
    .await;
    w.deliver_new_events().await;
    let kept = w.resume(&org, "LeadGeneration").await.unwrap();
    let plan = kept["subscription"]["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sub.as_str())
        .cloned()
        .unwrap();
    assert_eq!(plan["cancelAtPeriodEnd"], false, "{plan}");
    for item in plan["items"].as_array().unwrap() {
        assert_eq!(
            item["endsAt"].is_i64(),
            item["module"] == "EmailAutomation",
            "{plan}"
        );
    }
    w.deliver_new_events().await;
    let period_end =
        w.get(&format!("/v1/subscriptions/{sub}")).await["items"]["data"][0]["current_period_end"]
            .as_i64()
            .unwrap();
    w.advance(period_end - billing::domain::Timestamp::now().unix() + 60)
        .await;
    assert_eq!(w.rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    let renewed = w.get(&format!("/v1/subscriptions/{sub}")).await;
    assert_eq!(renewed["status"], "active", "{renewed}");
}
