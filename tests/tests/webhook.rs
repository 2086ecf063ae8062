//! The webhook handler against moto and the fixture-backed Stripe, with current-shape events.

use billing::domain::{EventId, OrgId, Timestamp};
use billing::webhook::WebhookSecret;
use pss_billing_tests::rig::{self, Rig, assert_outcome, event, fake_put};
use pss_billing_tests::{fake_stripe, unique, workspace_root};
use serde_json::{Value, json};

/// The outcome of a sample whose type may not be handled yet.
fn handled_or_ignored(kind: &str) -> &'static str {
    if billing::webhook::HANDLED_EVENT_TYPES.contains(&kind) {
        "processed"
    } else {
        "ignored"
    }
}

#[tokio::test]
async fn every_sample_event_in_events_dir_is_handled() {
    let stripe = fake_stripe();
    let rig = Rig::new(&stripe.url).await;
    rig::put_sample_objects(&stripe.url).await;
    let org = OrgId::parse("org_sample").unwrap();
    let order = [
        ("checkout.session.completed", "processed"),
        ("customer.subscription.created", "processed"),
        ("customer.subscription.updated", "processed"),
        ("invoice.finalized", "processed"),
        ("invoice.updated", "processed"),
        ("invoice.paid", "processed"),
        ("invoice.payment_succeeded", "processed"),
        ("invoice.payment_failed", "processed"),
        ("payment_method.attached", "processed"),
        ("payment_method.detached", "processed"),
        ("customer.updated", "processed"),
        ("checkout.session.async_payment_succeeded", "processed"),
        ("customer.subscription.paused", "processed"),
        ("customer.subscription.resumed", "processed"),
        ("customer.subscription.trial_will_end", "processed"),
        ("customer.subscription.pending_update_applied", "processed"),
        ("customer.subscription.pending_update_expired", "processed"),
        ("checkout.session.expired", "processed"),
        ("invoice.voided", "processed"),
        ("invoice.marked_uncollectible", "processed"),
        ("payment_method.updated", "processed"),
        // A schedule's events re-read the subscription it manages (or managed).
        ("subscription_schedule.created", "processed"),
        ("subscription_schedule.updated", "processed"),
        ("subscription_schedule.released", "processed"),
        ("subscription_schedule.canceled", "processed"),
        ("subscription_schedule.completed", "processed"),
        ("subscription_schedule.aborted", "processed"),
        ("customer.subscription.deleted", "processed"),
        ("product.created", "ignored"),
        // Types being added to HANDLED_EVENT_TYPES: processed once handled, ignored before.
        (
            "invoice.payment_action_required",
            handled_or_ignored("invoice.payment_action_required"),
        ),
        (
            "payment_method.automatically_updated",
            handled_or_ignored("payment_method.automatically_updated"),
        ),
        ("customer.deleted", handled_or_ignored("customer.deleted")),
    ];
    let dir = workspace_root().join("events/stripe-webhook");
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        files,
        order.len(),
        "every sample in events/stripe-webhook is exercised"
    );
    for (kind, expected) in order {
        let raw = std::fs::read_to_string(dir.join(format!("{kind}.json"))).unwrap();
        let request =
            lambda_http::request::from_str(&raw).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let body = String::from_utf8(billing::http::body_bytes(request.body()).to_vec()).unwrap();
        if kind == "customer.subscription.deleted" {
            let mut sub = rig::sample_objects()["subscription"].clone();
            sub["status"] = "canceled".into();
            sub["canceled_at"] = Timestamp::now().unix().into();
            fake_put(&stripe.url, &sub).await;
        }
        // The committed samples are signed at a fixed time; sign the same body now.
        let signature =
            WebhookSecret::new(rig::SECRET).sign(Timestamp::now().unix(), body.as_bytes());
        assert_outcome(rig.deliver_signed(&body, Some(&signature)).await, expected);
        match kind {
            "checkout.session.completed" => {
                let profile = rig.store.billing_profile(&org).await.unwrap().unwrap();
                assert_eq!(profile.customer_id.as_str(), "cus_sample");
                assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
            }
            "invoice.paid" => {
                let page = rig.store.list_invoices(&org, 10, None).await.unwrap();
                assert_eq!(page.invoices.len(), 1);
                assert_eq!(page.invoices[0].amount_paid, 9_900);
                assert_eq!(
                    page.invoices[0].hosted_invoice_url.as_deref(),
                    Some("https://invoice.stripe.com/i/sample")
                );
            }
            "payment_method.attached" => {
                let (methods, default) = rig.store.payment_methods(&org).await.unwrap();
                assert_eq!(methods.len(), 1);
                assert_eq!(methods[0].card.as_ref().unwrap().last4, "4242");
                assert_eq!(default.unwrap().as_str(), "pm_sample");
            }
            "customer.subscription.deleted" => {
                assert_eq!(rig.unlocked(&org).await, ["BasicCRM"]);
            }
            _ => {}
        }
        // A second delivery of the same event changes nothing.
        let again = rig.deliver_signed(&body, Some(&signature)).await;
        let expect_again = if expected == "ignored" {
            "ignored"
        } else {
            "duplicate"
        };
        assert_outcome(again, expect_again);
    }
}

#[tokio::test]
async fn subscription_lifecycle_grants_then_revokes() {
    let stripe = fake_stripe();
    let rig = Rig::new(&stripe.url).await;
    let customer = unique("cus_");
    let sub_id = unique("sub_");
    let org = rig.linked_org("org", &customer).await;

    let active = rig::subscription_object(
        &sub_id,
        &customer,
        "active",
        &[("leadgen_monthly", 1), ("social_inbox_yearly", 3)],
    );
    fake_put(&stripe.url, &active).await;
    assert_outcome(
        rig.deliver_new("customer.subscription.created", &active)
            .await,
        "processed",
    );
    assert_eq!(
        rig.unlocked(&org).await,
        ["BasicCRM", "LeadGeneration", "SocialInbox"]
    );
    let stored = rig.store.subscriptions(&org).await.unwrap();
    let items: Vec<_> = stored[0]
        .subscription
        .items
        .iter()
        .map(|i| (i.module.unwrap().as_str(), i.quantity))
        .collect();
    assert_eq!(items, [("LeadGeneration", 1), ("SocialInbox", 3)]);

    // Payment fails: past_due keeps access (grace), and the invoice is recorded.
    let past_due = rig::subscription_object(
        &sub_id,
        &customer,
        "past_due",
        &[("leadgen_monthly", 1), ("social_inbox_yearly", 3)],
    );
    fake_put(&stripe.url, &past_due).await;
    let inv_id = unique("in_");
    let invoice = rig::invoice_object(&inv_id, &customer, &sub_id, "open", Timestamp::now().unix());
    fake_put(&stripe.url, &invoice).await;
    assert_outcome(
        rig.deliver_new("invoice.payment_failed", &invoice).await,
        "processed",
    );
    let stored = rig.store.subscriptions(&org).await.unwrap();
    assert!(stored[0].subscription.past_due_since.is_some());
    assert_eq!(
        rig.unlocked(&org).await,
        ["BasicCRM", "LeadGeneration", "SocialInbox"]
    );

    // The old "created" event arrives late: the re-fetch reads the current state, not the event's.
    assert_outcome(
        rig.deliver_new("customer.subscription.created", &active)
            .await,
        "processed",
    );
    assert_eq!(
        rig.store.subscriptions(&org).await.unwrap()[0]
            .subscription
            .status
            .as_str(),
        "past_due"
    );

    let canceled =
        rig::subscription_object(&sub_id, &customer, "canceled", &[("leadgen_monthly", 1)]);
    fake_put(&stripe.url, &canceled).await;
    assert_outcome(
        rig.deliver_new("customer.subscription.deleted", &canceled)
            .await,
        "processed",
    );
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM"]);
}

#[tokio::test]
async fn parked_events_stay_replayable_until_their_cause_is_fixed() {
    let stripe = fake_stripe();
    let rig = Rig::new(&stripe.url).await;
    let customer = unique("cus_");
    let sub_id = unique("sub_");
    let sub = rig::subscription_object(&sub_id, &customer, "active", &[("leadgen_monthly", 1)]);
    fake_put(&stripe.url, &sub).await;
    let evt = event(&unique("evt_"), "customer.subscription.created", &sub);
    // No org knows the customer: acknowledged and kept, but not marked processed, so a
    // redelivery is tried again rather than answered "duplicate".
    assert_outcome(rig.deliver(&evt).await, "parked");
    assert_outcome(rig.deliver(&evt).await, "parked");
    let parked = rig.store.unresolved_events().await.unwrap();
    assert_eq!(
        parked.len(),
        1,
        "one item per event, however often delivered"
    );
    assert_eq!(parked[0].customer_id.as_ref().unwrap().as_str(), customer);
    assert_eq!(parked[0].object_id, sub_id);

    // The cause is fixed (the customer is linked): the same event now applies, once, and the
    // parked item is gone with it.
    let org = rig.linked_org("parked", &customer).await;
    assert_outcome(rig.deliver(&evt).await, "processed");
    assert_eq!(rig.unlocked(&org).await, ["BasicCRM", "LeadGeneration"]);
    assert!(rig.store.unresolved_events().await.unwrap().is_empty());
    assert_outcome(rig.deliver(&evt).await, "duplicate");
}

#[tokio::test]
async fn bad_deliveries_get_400_and_store_nothing() {
    let stripe = fake_stripe();
    let rig = Rig::new(&stripe.url).await;
    let customer = unique("cus_");
    let sub = rig::active_subscription(&customer, "leadgen_monthly");
    let body = event(&unique("evt_"), "customer.subscription.created", &sub).to_string();
    let now = Timestamp::now().unix();
    let good = WebhookSecret::new(rig::SECRET).sign(now, body.as_bytes());
    let v1 = good.split("v1=").nth(1).unwrap().to_owned();
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024));
    let huge_sig = WebhookSecret::new(rig::SECRET).sign(now, huge.as_bytes());
    let not_json = "this is not json";
    let not_json_sig = WebhookSecret::new(rig::SECRET).sign(now, not_json.as_bytes());
    let not_event = r#"{"hello":"world"}"#;
    let not_event_sig = WebhookSecret::new(rig::SECRET).sign(now, not_event.as_bytes());
    let mut live = event(&unique("evt_"), "customer.subscription.created", &sub);
    live["livemode"] = true.into();
    let live = live.to_string();
    let live_sig = WebhookSecret::new(rig::SECRET).sign(now, live.as_bytes());
    let cases: Vec<(&str, String, Option<String>, &str)> = vec![
        ("missing signature", body.clone(), None, "invalid_signature"),
        (
            "garbled signature",
            body.clone(),
            Some("t=abc,v1=nothex".into()),
            "invalid_signature",
        ),
        (
            "no v1",
            body.clone(),
            Some(format!("t={now}")),
            "invalid_signature",
        ),
        (
            "stale",
            body.clone(),
            Some(WebhookSecret::new(rig::SECRET).sign(now - 400, body.as_bytes())),
            "invalid_signature",
        ),
        (
            "future",
            body.clone(),
            Some(WebhookSecret::new(rig::SECRET).sign(now + 400, body.as_bytes())),
            "invalid_signature",
        ),
        (
            "wrong secret",
            body.clone(),
            Some(WebhookSecret::new("whsec_test_intruder").sign(now, body.as_bytes())),
            "invalid_signature",
        ),
        (
            "signature of another timestamp",
            body.clone(),
            Some(format!("t={},v1={v1}", now - 1)),
            "invalid_signature",
        ),
        (
            "tampered body",
            body.replace("active", "trialing"),
            Some(good.clone()),
            "invalid_signature",
        ),
        ("oversized", huge, Some(huge_sig), "payload_too_large"),
        (
            "not JSON",
            not_json.to_owned(),
            Some(not_json_sig),
            "invalid_payload",
        ),
        (
            "not an event",
            not_event.to_owned(),
            Some(not_event_sig),
            "invalid_payload",
        ),
        (
            "livemode mismatch",
            live,
            Some(live_sig),
            "livemode_mismatch",
        ),
    ];
    for (name, body, signature, code) in cases {
        let (status, reply) = rig.deliver_signed(&body, signature.as_deref()).await;
        assert_eq!(status, 400, "{name}: {reply}");
        assert_eq!(reply["error"], code, "{name}");
        assert_eq!(
            reply["message"], "The webhook request was refused.",
            "{name}"
        );
        assert_eq!(rig.item_count().await, 0, "{name} stored something");
    }
    // The audit trail keeps what they looked like, never their payloads, and only a few a
    // minute (a flood costs a bounded number of writes).
    let refused = rig.refused_items().await;
    assert!(!refused.is_empty());
    assert!(refused.len() <= billing::webhook::REFUSED_KEPT_PER_MINUTE as usize);
    for item in refused {
        assert!(!item.contains_key("payload"), "{item:?}");
        assert!(item["reason"].as_s().unwrap().contains('_'), "{item:?}");
    }
}

#[tokio::test]
async fn payment_methods_follow_attach_detach_and_default_changes() {
    let stripe = fake_stripe();
    let rig = Rig::new(&stripe.url).await;
    let customer_id = unique("cus_");
    let org = rig.linked_org("org", &customer_id).await;
    let mut customer = rig::fixture("customer");
    customer["id"] = customer_id.clone().into();
    let mut pms = Vec::new();
    for (i, last4) in ["4242", "5555"].iter().enumerate() {
        let mut pm = rig::fixture("payment_method");
        pm["id"] = unique("pm_").into();
        pm["customer"] = customer_id.clone().into();
        pm["created"] = (1_700_000_000 + i as i64).into();
        pm["card"]["last4"] = (*last4).into();
        fake_put(&stripe.url, &pm).await;
        pms.push(pm);
    }
    customer["invoice_settings"]["default_payment_method"] = pms[0]["id"].clone();
    fake_put(&stripe.url, &customer).await;
    assert_outcome(
        rig.deliver(&event(&unique("evt_"), "payment_method.attached", &pms[1]))
            .await,
        "processed",
    );
    let (methods, default) = rig.store.payment_methods(&org).await.unwrap();
    assert_eq!(
        methods
            .iter()
            .map(|m| m.card.as_ref().unwrap().last4.as_str())
            .collect::<Vec<_>>(),
        ["5555", "4242"]
    );
    assert_eq!(default.unwrap().as_str(), pms[0]["id"].as_str().unwrap());

    // Default changes to the second card, then the first is detached.
    customer["invoice_settings"]["default_payment_method"] = pms[1]["id"].clone();
    fake_put(&stripe.url, &customer).await;
    assert_outcome(
        rig.deliver_new("customer.updated", &customer).await,
        "processed",
    );
    let mut detached = pms[0].clone();
    detached["customer"] = Value::Null;
    fake_put(&stripe.url, &detached).await;
    let mut evt = event(&unique("evt_"), "payment_method.detached", &detached);
    evt["data"]["previous_attributes"] = json!({ "customer": customer_id });
    assert_outcome(rig.deliver(&evt).await, "processed");
    let (methods, default) = rig.store.payment_methods(&org).await.unwrap();
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].id.as_str(), pms[1]["id"].as_str().unwrap());
    assert_eq!(default.unwrap().as_str(), pms[1]["id"].as_str().unwrap());
    assert!(
        !rig.store
            .event_processed(&EventId::parse("evt_never").unwrap())
            .await
            .unwrap()
    );
}

#[test]
fn the_readme_names_every_event_type_the_code_handles() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme
        .split("**Events to enable**")
        .nth(1)
        .and_then(|rest| rest.split("* **").next())
        .expect("the README's events section");
    for kind in billing::webhook::HANDLED_EVENT_TYPES {
        assert!(
            section.contains(&format!("`{kind}`")),
            "README does not list {kind}"
        );
    }
}
