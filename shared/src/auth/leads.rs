//! `GET /api/leads`: the one paywalled route that proves the gate end to end. It lives with the
//! auth code because all it adds to the store is reading the caller from the authorizer.

use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};

use super::AuthContext;
use super::decision::subscription_required_body;
use crate::domain::{ServiceModule, Timestamp};
use crate::http::{ApiError, json, with_cors};
use crate::store::{BillingStore, StoreError};

/// A lead as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lead {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadPage {
    pub leads: Vec<Lead>,
    /// Opaque; pass back for the next page. `None` on the last page.
    pub next_cursor: Option<String>,
}

pub const DEFAULT_PAGE_SIZE: u16 = 50;
pub const MAX_PAGE_SIZE: u16 = 100;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeadsBody {
    leads: Vec<Lead>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// The leads function's logic, independent of the Lambda runtime.
#[derive(Debug, Clone)]
pub struct LeadsHandler {
    store: BillingStore,
}

impl LeadsHandler {
    pub fn new(store: BillingStore) -> Self {
        Self { store }
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let response = match self.list(&request).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        with_cors(&request, response)
    }

    async fn list(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        if request.method() != Method::GET {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Use GET.",
            ));
        }
        let auth = AuthContext::from_request(request)?;
        // The authorizer already refused orgs without the module; checking its context again
        // costs nothing and keeps the route closed if it is ever wired without the authorizer's
        // paywall.
        if !auth.entitlements.contains(ServiceModule::LeadGeneration) {
            return Ok(raw_json(
                StatusCode::FORBIDDEN,
                subscription_required_body(ServiceModule::LeadGeneration),
            ));
        }
        let params = request.query_string_parameters();
        let limit =
            crate::api::params::limit(params.first("limit"), MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)?;
        let cursor = crate::api::params::lead_cursor(params.first("cursor"))?;
        let page = self
            .store
            .list_leads(&auth.caller.org, limit, cursor)
            .await
            .map_err(|e| match e {
                StoreError::InvalidCursor => ApiError::bad_request("invalid cursor"),
                other => {
                    tracing::error!(org = %auth.caller.org, error = %other, "listing leads failed");
                    ApiError::unavailable("Leads are temporarily unavailable.")
                }
            })?;
        Ok(json(
            StatusCode::OK,
            &LeadsBody {
                leads: page.leads,
                next_cursor: page.next_cursor,
            },
        ))
    }
}

/// A response with an already-rendered JSON body (bodies shared with the gateway responses).
pub fn raw_json(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}
