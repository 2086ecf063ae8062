//! `GET /api/leads`: the one paywalled route that proves the gate end to end.

use serde::Serialize;

use crate::auth::AuthContext;
use crate::domain::Lead;
use crate::http::ApiError;
use crate::store::{BillingStore, StoreError};

pub const DEFAULT_PAGE_SIZE: u16 = 50;
pub const MAX_PAGE_SIZE: u16 = 100;

/// A page of leads as the API returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadsView {
    pub leads: Vec<Lead>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /api/leads?limit=&cursor=` for a caller whose org has the module.
pub async fn leads(
    store: &BillingStore,
    auth: &AuthContext,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<LeadsView, ApiError> {
    let limit = super::params::limit(limit, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)?;
    let cursor = super::params::lead_cursor(cursor)?;
    let page = store
        .list_leads(&auth.caller.org, limit, cursor)
        .await
        .map_err(|e| match e {
            StoreError::InvalidCursor => ApiError::bad_request("invalid cursor"),
            other => {
                tracing::error!(org = %auth.caller.org, error = %other, "listing leads failed");
                ApiError::unavailable("Leads are temporarily unavailable.")
            }
        })?;
    Ok(LeadsView {
        leads: page.leads,
        next_cursor: page.next_cursor,
    })
}
