//! `GET /api/leads` against moto: the org comes only from the authorizer context, pages stay in
//! the caller's partition, and every failure is a JSON error.

use aws_sdk_dynamodb::types::AttributeValue;
use billing::api::{ApiConfig, OriginAllowlist, handlers};
use billing::auth::{UNAUTHORIZED_BODY, subscription_required_body};
use billing::domain::{Lead, OrgId, ServiceModule, Timestamp};
use billing::store::BillingStore;
use lambda_http::{Body, Request, Response};
use pss_billing_tests::build::org;
use pss_billing_tests::{dynamo_client, fresh_store, gateway_request, moto, unique};
use serde_json::{Map, Value};

fn lead(id: &str) -> Lead {
    Lead {
        id: id.to_owned(),
        name: Some(format!("Lead {id}")),
        email: Some(format!("{id}@example.test")),
        company: None,
        source: Some("web_form".to_owned()),
        status: Some("new".to_owned()),
        score: Some(50),
        created_at: Some(Timestamp::now()),
    }
}

/// A request as API Gateway hands it to the function after the authorizer allowed it.
fn request(
    method: &str,
    uri: &str,
    context: Option<(&OrgId, &str)>,
    query: &[(&str, &str)],
) -> Request {
    let authorizer = context.map(|(org, entitlements)| {
        Map::from_iter([
            ("principalId".to_owned(), Value::from("user_1")),
            ("orgId".to_owned(), Value::from(org.as_str())),
            ("userId".to_owned(), Value::from("user_1")),
            ("role".to_owned(), Value::from("Member")),
            ("entitlements".to_owned(), Value::from(entitlements)),
        ])
    });
    gateway_request(method, uri, authorizer, query, Body::Empty)
}

const UNLOCKED: &str = "BasicCRM,LeadGeneration";

/// The leads function's init state, as its main.rs builds it, and its entry point.
struct LeadsHandler {
    store: BillingStore,
    config: ApiConfig,
}

impl LeadsHandler {
    fn new(store: BillingStore) -> Self {
        let config = ApiConfig {
            origins: OriginAllowlist::parse(""),
            sync_per_minute: 5,
            offer: Default::default(),
        };
        Self { store, config }
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        handlers::leads(&self.store, &self.config, &request).await
    }
}

async fn call(handler: &LeadsHandler, request: Request) -> (u16, Value, String) {
    let response = handler.handle(request).await;
    let status = response.status().as_u16();
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/json")
    );
    let text = String::from_utf8(billing::http::body_bytes(response.body()).to_vec()).unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, json, text)
}

fn ids(body: &Value) -> Vec<String> {
    body["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The lead ids `org` sees page by page (`limit` a page), following `nextCursor` for at most
/// `pages` pages.
async fn page_through(
    handler: &LeadsHandler,
    org: &OrgId,
    limit: &str,
    pages: usize,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..pages {
        let mut query = vec![("limit", limit)];
        if let Some(c) = cursor.as_deref() {
            query.push(("cursor", c));
        }
        let (status, body, _) = call(
            handler,
            request("GET", "/api/leads", Some((org, UNLOCKED)), &query),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        seen.extend(ids(&body));
        cursor = body["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    seen
}

#[tokio::test]
async fn lists_only_the_callers_leads_whatever_the_query_says() {
    let store = fresh_store().await;
    let mine = org("mine");
    let theirs = org("theirs");
    for id in ["lead_a", "lead_b"] {
        store.put_lead(&mine, &lead(id)).await.unwrap();
    }
    store.put_lead(&theirs, &lead("lead_secret")).await.unwrap();
    let handler = LeadsHandler::new(store);

    let uri = format!("/api/leads?orgId={theirs}");
    let (status, body, _) = call(
        &handler,
        request(
            "GET",
            &uri,
            Some((&mine, UNLOCKED)),
            &[("orgId", theirs.as_str())],
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), vec!["lead_a", "lead_b"]);
    assert_eq!(body["leads"][0]["source"], "web_form");
    assert!(body.get("nextCursor").is_none());

    // An org with no leads: an empty list.
    let empty = org("empty");
    let (status, body, _) = call(
        &handler,
        request("GET", "/api/leads", Some((&empty, UNLOCKED)), &[]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({"leads": []}));
}

#[tokio::test]
async fn pages_follow_the_cursor_and_never_leave_the_partition() {
    let store = fresh_store().await;
    let mine = org("mine");
    let theirs = org("theirs");
    for i in 0..5 {
        store
            .put_lead(&mine, &lead(&format!("lead_{i}")))
            .await
            .unwrap();
        store
            .put_lead(&theirs, &lead(&format!("other_{i}")))
            .await
            .unwrap();
    }
    let handler = LeadsHandler::new(store);
    assert_eq!(
        page_through(&handler, &mine, "2", 10).await,
        (0..5).map(|i| format!("lead_{i}")).collect::<Vec<_>>()
    );

    // A cursor taken from another org's listing only names a sort key: used by `mine`, it
    // continues inside `mine`'s partition.
    let (_, their_page, _) = call(
        &handler,
        request(
            "GET",
            "/api/leads",
            Some((&theirs, UNLOCKED)),
            &[("limit", "1")],
        ),
    )
    .await;
    let their_cursor = their_page["nextCursor"].as_str().unwrap().to_owned();
    let (status, body, _) = call(
        &handler,
        request(
            "GET",
            "/api/leads",
            Some((&mine, UNLOCKED)),
            &[("cursor", &their_cursor)],
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        ids(&body).iter().all(|id| id.starts_with("lead_")),
        "{body}"
    );
}

#[tokio::test]
async fn bad_input_and_missing_rights_are_json_errors() {
    let store = fresh_store().await;
    let mine = org("mine");
    let handler = LeadsHandler::new(store);

    let (status, _, text) = call(&handler, request("GET", "/api/leads", None, &[])).await;
    assert_eq!((status, text.as_str()), (401, UNAUTHORIZED_BODY));

    // The authorizer context without the module: the exact paywall body, even here.
    let (status, _, text) = call(
        &handler,
        request("GET", "/api/leads", Some((&mine, "BasicCRM")), &[]),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        text,
        subscription_required_body(ServiceModule::LeadGeneration)
    );

    for (query, field) in [
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "101")], "limit"),
        (vec![("limit", "ten")], "limit"),
        (vec![("cursor", "!!!")], "cursor"),
        (vec![("cursor", "SU5WIzAwMDEjaW5fMQ")], "cursor"),
    ] {
        let (status, body, _) = call(
            &handler,
            request("GET", "/api/leads", Some((&mine, UNLOCKED)), &query),
        )
        .await;
        assert_eq!(status, 400, "{query:?}");
        assert_eq!(body["error"], "bad_request");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }

    let (status, body, _) = call(
        &handler,
        request("POST", "/api/leads", Some((&mine, UNLOCKED)), &[]),
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(body["error"], "method_not_allowed");
}

/// A lead item of `org` without the `data` map, as some other system might write it, with a
/// `name` attribute when given.
async fn put_malformed_lead(store: &BillingStore, org: &OrgId, name: Option<&str>) {
    let mut put = store
        .client()
        .put_item()
        .table_name(store.table())
        .item("PK", AttributeValue::S(format!("ORG#{org}")))
        .item("SK", AttributeValue::S("LEAD#broken".to_owned()));
    if let Some(name) = name {
        put = put.item("name", AttributeValue::S(name.to_owned()));
    }
    put.send().await.unwrap();
}

#[tokio::test]
async fn a_malformed_item_is_skipped_and_an_outage_is_503() {
    let store = fresh_store().await;
    let mine = org("mine");
    store.put_lead(&mine, &lead("lead_ok")).await.unwrap();
    // Written by some other system without the `data` map.
    put_malformed_lead(&store, &mine, Some("no data map")).await;
    let handler = LeadsHandler::new(store);
    let (status, body, _) = call(
        &handler,
        request("GET", "/api/leads", Some((&mine, UNLOCKED)), &[]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), vec!["lead_ok"]);

    // Paging one by one walks past the malformed item instead of stopping at it.
    let handler = {
        let store = fresh_store().await;
        store.put_lead(&mine, &lead("lead_ok")).await.unwrap();
        store.put_lead(&mine, &lead("zz_last")).await.unwrap();
        put_malformed_lead(&store, &mine, None).await;
        LeadsHandler::new(store)
    };
    assert_eq!(
        page_through(&handler, &mine, "1", 5).await,
        vec!["lead_ok", "zz_last"]
    );

    let down = LeadsHandler::new(BillingStore::new(
        dynamo_client(&moto().url),
        unique("missing-"),
    ));
    let (status, body, _) = call(
        &down,
        request("GET", "/api/leads", Some((&mine, UNLOCKED)), &[]),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "temporarily_unavailable");
}
