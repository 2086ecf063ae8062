//! The fixture Stripe (tests/emulators/fake_stripe.py) is the oracle of many tests, so where the
//! code depends on Stripe's behaviour it must behave as Stripe documents. Each test here checks
//! one documented behaviour against the server itself:
//! * idempotent requests (docs.stripe.com/api/idempotent_requests): a key in flight answers 409
//!   `idempotency_key_in_use`; a key reused with other parameters answers 400 with type
//!   `idempotency_error`; the same request again replays the first result.
//! * pagination (docs.stripe.com/api/pagination): `limit` 1–100 (default 10), `has_more`,
//!   `starting_after`.
//! * subscriptions list: "By default, returns a list of subscriptions that have not been
//!   canceled"; `status=all` returns every one.
//! * required parameters answer 400 `parameter_missing`.
//! * Checkout Sessions: only open ones can be expired; a completed one names its subscription.
//! * a deleted customer is retrieved as `{"id", "deleted": true}`.
//! * events (docs.stripe.com/api/events/list): `delivery_success=false` lists events not yet
//!   delivered to every endpoint (`pending_webhooks` > 0), `created[gte]` bounds the creation
//!   time, and one event is retrieved by id.
//! * parameters (docs.stripe.com/error-codes): a name the endpoint does not have answers 400
//!   `parameter_unknown` with `param` (top level or nested), a value of the wrong type 400
//!   `parameter_invalid_integer` / `parameter_invalid_empty`, a value outside an enum or a
//!   non-boolean 400 `invalid_request_error` naming `param`; documented global parameters
//!   (`expand[]`, `limit`, `starting_after`, `ending_before`) are accepted everywhere they apply.

use pss_billing_tests::http::{Reply, post_json, request};
use pss_billing_tests::{Emulator, emulators, free_port};
use serde_json::{Value, json};

fn fake() -> Emulator {
    emulators::start_fake_stripe(free_port(), None)
}

fn call(method: &str, url: &str, form: &[(&str, &str)], key: Option<&str>) -> Reply {
    let body = serde_urlencoded::to_string(form).unwrap();
    let mut headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Authorization", "Bearer sk_test_fake_stripe"),
    ];
    if let Some(key) = key {
        headers.push(("Idempotency-Key", key));
    }
    request(method, url, &headers, body.as_bytes())
}

/// An authenticated GET (the server refuses calls without a test key, as Stripe does).
fn get(url: &str) -> Reply {
    call("GET", url, &[], None)
}

fn error_of(reply: &Reply) -> (String, String) {
    let e = &reply.json()["error"];
    (
        e["type"].as_str().unwrap_or_default().to_owned(),
        e["code"].as_str().unwrap_or_default().to_owned(),
    )
}

fn put(fake: &Emulator, object: Value) {
    let reply = post_json(&format!("{}/_test/objects", fake.url), &object);
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[test]
fn idempotency_keys_behave_as_stripe_documents() {
    let fake = fake();
    let customers = format!("{}/v1/customers", fake.url);
    let latency = json!({"path": "/v1/customers", "ms": 400});
    assert_eq!(
        post_json(&format!("{}/_test/latency", fake.url), &latency).status,
        200
    );
    let form = [("metadata[organization_id]", "org_1")];
    let (first, second) = std::thread::scope(|s| {
        let a = s.spawn(|| call("POST", &customers, &form, Some("key-1")));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let b = s.spawn(|| call("POST", &customers, &form, Some("key-1")));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(second.status, 409, "{}", second.body);
    assert_eq!(
        error_of(&second),
        (
            "invalid_request_error".to_owned(),
            "idempotency_key_in_use".to_owned()
        )
    );

    // Done: the same request replays the first result, another request with the key fails.
    let replay = call("POST", &customers, &form, Some("key-1"));
    assert_eq!(replay.status, 200);
    assert_eq!(replay.json()["id"], first.json()["id"]);
    let other = call(
        "POST",
        &customers,
        &[("metadata[organization_id]", "org_2")],
        Some("key-1"),
    );
    assert_eq!(other.status, 400, "{}", other.body);
    assert_eq!(error_of(&other).0, "idempotency_error");
    // Without a key, every POST creates.
    let fresh = call("POST", &customers, &form, None);
    assert_ne!(fresh.json()["id"], first.json()["id"]);
}

#[test]
fn lists_page_with_limit_has_more_and_starting_after() {
    let fake = fake();
    for i in 0..25 {
        put(
            &fake,
            json!({"id": format!("pm_{i:02}"), "object": "payment_method", "type": "card",
                   "customer": "cus_pages", "created": 1_000 + i}),
        );
    }
    let list = |query: &str| {
        get(&format!(
            "{}/v1/customers/cus_pages/payment_methods{query}",
            fake.url
        ))
    };
    let first = list("").json();
    assert_eq!(first["data"].as_array().unwrap().len(), 10, "default limit");
    assert_eq!(first["has_more"], true);
    assert_eq!(first["data"][0]["id"], "pm_24", "newest first");

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = match &after {
            Some(id) => format!("?limit=7&starting_after={id}"),
            None => "?limit=7".to_owned(),
        };
        let page = list(&query).json();
        let ids: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect();
        after = ids.last().cloned();
        seen.extend(ids);
        if page["has_more"] == false {
            break;
        }
    }
    assert_eq!(seen.len(), 25);
    seen.dedup();
    assert_eq!(seen.len(), 25, "no object twice");
    assert_eq!(list("?limit=101").status, 400);
    assert_eq!(list("?limit=0").status, 400);
}

#[test]
fn subscription_lists_leave_out_canceled_unless_asked() {
    let fake = fake();
    for (id, status) in [("sub_live", "active"), ("sub_gone", "canceled")] {
        put(
            &fake,
            json!({"id": id, "object": "subscription", "status": status, "customer": "cus_s", "created": 1}),
        );
    }
    let ids = |query: &str| -> Vec<String> {
        get(&format!(
            "{}/v1/subscriptions?customer=cus_s{query}",
            fake.url
        ))
        .json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(""), ["sub_live"]);
    let mut all = ids("&status=all");
    all.sort();
    assert_eq!(all, ["sub_gone", "sub_live"]);
    assert_eq!(ids("&status=canceled"), ["sub_gone"]);
}

#[test]
fn creates_refuse_missing_required_parameters() {
    let fake = fake();
    let sessions = format!("{}/v1/checkout/sessions", fake.url);
    let no_mode = call(
        "POST",
        &sessions,
        &[("success_url", "https://a.test/")],
        None,
    );
    assert_eq!(no_mode.status, 400);
    assert_eq!(error_of(&no_mode).1, "parameter_missing");
    let no_items = call(
        "POST",
        &sessions,
        &[("mode", "subscription"), ("success_url", "https://a.test/")],
        None,
    );
    assert_eq!(error_of(&no_items).1, "parameter_missing");
    let no_customer = call(
        "POST",
        &sessions,
        &[
            ("mode", "subscription"),
            ("success_url", "https://a.test/"),
            ("line_items[0][price]", "price_1"),
            ("customer", "cus_nobody"),
        ],
        None,
    );
    assert_eq!(no_customer.status, 400);
}

#[test]
fn checkout_sessions_expire_only_while_open_and_complete_with_a_subscription() {
    let fake = fake();
    let customer = call("POST", &format!("{}/v1/customers", fake.url), &[], None).json();
    let create = || {
        call(
            "POST",
            &format!("{}/v1/checkout/sessions", fake.url),
            &[
                ("mode", "subscription"),
                ("success_url", "https://a.test/ok"),
                ("line_items[0][price]", "price_1"),
                ("customer", customer["id"].as_str().unwrap()),
            ],
            None,
        )
        .json()
    };
    let (paid, left) = (create(), create());
    let open = |fake: &Emulator| {
        get(&format!(
            "{}/v1/checkout/sessions?customer={}&status=open",
            fake.url,
            customer["id"].as_str().unwrap()
        ))
        .json()["data"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(open(&fake), 2);

    let expire = |id: &Value| {
        call(
            "POST",
            &format!(
                "{}/v1/checkout/sessions/{}/expire",
                fake.url,
                id.as_str().unwrap()
            ),
            &[],
            None,
        )
    };
    let expired = expire(&left["id"]);
    assert_eq!(expired.status, 200);
    assert_eq!(expired.json()["status"], "expired");
    assert_eq!(expire(&left["id"]).status, 400, "already expired");

    let completed = post_json(
        &format!(
            "{}/_test/checkout/{}/complete",
            fake.url,
            paid["id"].as_str().unwrap()
        ),
        &json!({"subscription": "sub_paid"}),
    );
    assert_eq!(completed.status, 200);
    assert_eq!(expire(&paid["id"]).status, 400, "a completed session stays");
    let session = get(&format!(
        "{}/v1/checkout/sessions/{}",
        fake.url,
        paid["id"].as_str().unwrap()
    ))
    .json();
    assert_eq!(
        (&session["status"], &session["subscription"]),
        (&json!("complete"), &json!("sub_paid"))
    );
    assert_eq!(open(&fake), 0);
}

#[test]
fn a_deleted_customer_is_retrieved_as_deleted() {
    let fake = fake();
    let customer = call("POST", &format!("{}/v1/customers", fake.url), &[], None).json();
    let url = format!(
        "{}/v1/customers/{}",
        fake.url,
        customer["id"].as_str().unwrap()
    );
    let deleted = call("DELETE", &url, &[], None);
    assert_eq!(deleted.json()["deleted"], true);
    let read = call("GET", &url, &[], None).json();
    assert_eq!(
        (&read["id"], &read["deleted"]),
        (&customer["id"], &json!(true))
    );
    let missing = call(
        "GET",
        &format!("{}/v1/customers/cus_never", fake.url),
        &[],
        None,
    );
    assert_eq!(
        (missing.status, error_of(&missing).1),
        (404, "resource_missing".to_owned())
    );
}

#[test]
fn events_list_by_delivery_success_and_creation_time_and_retrieve_by_id() {
    let fake = fake();
    for (id, created, pending) in [
        ("evt_old", 100, 1),
        ("evt_new", 200, 1),
        ("evt_done", 200, 0),
    ] {
        put(
            &fake,
            json!({"id": id, "object": "event", "type": "customer.updated", "created": created,
                   "pending_webhooks": pending, "livemode": false, "data": {"object": {"id": "cus_1"}}}),
        );
    }
    let ids = |reply: Reply| -> Vec<String> {
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let base = format!("{}/v1/events", fake.url);
    assert_eq!(
        ids(get(&format!("{base}?delivery_success=false"))),
        ["evt_new", "evt_old"]
    );
    assert_eq!(
        ids(get(&format!(
            "{base}?delivery_success=false&created%5Bgte%5D=150"
        ))),
        ["evt_new"]
    );
    assert_eq!(
        ids(get(&format!("{base}?delivery_success=true"))),
        ["evt_done"]
    );
    let one = get(&format!("{base}/evt_old"));
    assert_eq!(
        (one.status, one.json()["created"].as_i64()),
        (200, Some(100))
    );
    assert_eq!(get(&format!("{base}/evt_missing")).status, 404);
}

/// Stripe's refusal of one parameter: (status, type, code, param).
fn refusal(reply: &Reply) -> (u16, String, String, String) {
    let (kind, code) = error_of(reply);
    let param = reply.json()["error"]["param"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (reply.status, kind, code, param)
}

fn refused(code: &str, param: &str) -> (u16, String, String, String) {
    (
        400,
        "invalid_request_error".to_owned(),
        code.to_owned(),
        param.to_owned(),
    )
}

#[test]
fn unknown_parameters_are_refused_as_stripe_refuses_them() {
    let fake = fake();
    let sessions = format!("{}/v1/checkout/sessions", fake.url);
    let valid = [
        ("mode", "subscription"),
        ("success_url", "https://a.test/ok"),
        ("line_items[0][price]", "price_1"),
        ("line_items[0][quantity]", "1"),
        ("subscription_data[metadata][organization_id]", "org_1"),
        ("metadata[organization_id]", "org_1"),
        ("expand[0]", "subscription"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut form = valid.to_vec();
        form.push(extra);
        call("POST", &sessions, &form, None)
    };
    assert_eq!(call("POST", &sessions, &valid, None).status, 200);
    // Top level, inside a documented hash, inside an array element, below a metadata value.
    for (name, param) in [
        ("modes", "modes"),
        (
            "subscription_data[metadta][organization_id]",
            "subscription_data[metadta]",
        ),
        ("line_items[0][prize]", "line_items[0][prize]"),
        (
            "metadata[organization_id][x]",
            "metadata[organization_id][x]",
        ),
    ] {
        let reply = with((name, "x"));
        assert_eq!(
            refusal(&reply),
            refused("parameter_unknown", param),
            "{name}"
        );
        assert_eq!(
            reply.json()["error"]["message"],
            format!("Received unknown parameter: {param}")
        );
    }
    // Every endpoint, reads included: the query is checked as the form is.
    for url in [
        format!("{}/v1/subscriptions?customer=cus_1&stauts=all", fake.url),
        format!("{}/v1/customers/cus_1?expand%5B%5D=x&expnd=y", fake.url),
        format!("{}/v1/events?delivery_succes=false", fake.url),
        format!("{}/v1/prices?lookup_key=leadgen_monthly", fake.url),
        format!("{}/v1/account?x=1", fake.url),
    ] {
        assert_eq!(refusal(&get(&url)).2, "parameter_unknown", "{url}");
    }
    // Nothing Stripe would refuse is stored or answered by the fixture itself.
    assert_eq!(
        get(&format!("{}/v1/checkout/sessions", fake.url)).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the valid create made a session"
    );
}

#[test]
fn wrong_types_and_enum_values_are_refused() {
    let fake = fake();
    let prices = format!("{}/v1/prices", fake.url);
    let price = |extra: &[(&'static str, &'static str)]| {
        let mut form = vec![
            ("currency", "usd"),
            ("product", "prod_1"),
            ("unit_amount", "9900"),
            ("recurring[interval]", "month"),
        ];
        form.extend_from_slice(extra);
        call("POST", &prices, &form, None)
    };
    assert_eq!(price(&[]).status, 200);
    for (extra, code, param) in [
        (
            ("unit_amount", "99.00"),
            "parameter_invalid_integer",
            "unit_amount",
        ),
        (
            ("recurring[interval_count]", "often"),
            "parameter_invalid_integer",
            "recurring[interval_count]",
        ),
        (("product", ""), "parameter_invalid_empty", "product"),
        (
            ("recurring[interval]", "monthly"),
            "",
            "recurring[interval]",
        ),
        (("transfer_lookup_key", "yes"), "", "transfer_lookup_key"),
    ] {
        // A name given twice is checked twice: the valid first value does not hide the second.
        let reply = price(&[extra]);
        assert_eq!(refusal(&reply), refused(code, param), "{extra:?}");
    }
    let list = |query: &str| get(&format!("{}/v1/events{query}", fake.url));
    assert_eq!(
        refusal(&list("?limit=ten")),
        refused("parameter_invalid_integer", "limit")
    );
    assert_eq!(
        refusal(&list("?created%5Bgte%5D=yesterday")),
        refused("parameter_invalid_integer", "created[gte]")
    );
    assert_eq!(
        refusal(&list("?delivery_success=no")),
        refused("", "delivery_success")
    );
    assert_eq!(
        refusal(&get(&format!(
            "{}/v1/subscriptions?status=cancelled",
            fake.url
        ))),
        refused("", "status")
    );
    // Documented global and list parameters pass.
    for url in [
        format!(
            "{}/v1/events?limit=3&created=5&expand%5B%5D=data.object",
            fake.url
        ),
        format!(
            "{}/v1/subscriptions?customer=cus_1&status=all&limit=100&ending_before=sub_1",
            fake.url
        ),
        format!("{}/v1/account", fake.url),
    ] {
        assert_ne!(get(&url).status, 400, "{url}");
    }
    // An endpoint Stripe does not have is a 404, whatever its parameters.
    assert_eq!(
        get(&format!("{}/v1/customers/cus_1/nonsense", fake.url)).status,
        404
    );
}
