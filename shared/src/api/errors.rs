//! The one place where store, Stripe and sync failures become HTTP answers ([`ApiError`]),
//! here where those errors meet: the API layer, above both the HTTP helpers and the modules
//! that fail. Messages are written for the client; internal details go to the log only.

use lambda_http::http::StatusCode;

use crate::http::ApiError;
use crate::store::StoreError;
use crate::stripe::StripeApiError;
use crate::sync::SyncError;

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidCursor => ApiError::bad_request("cursor is not valid."),
            // The store's own phrase names items and conditions: log it, never send it.
            StoreError::Conflict(what) => {
                tracing::warn!(conflict = what, "store conflict");
                ApiError::conflict(
                    "conflict",
                    "The request conflicts with a concurrent change; retry it.",
                )
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::unavailable("Billing data is temporarily unavailable; retry shortly.")
            }
        }
    }
}

impl From<StripeApiError> for ApiError {
    fn from(err: StripeApiError) -> Self {
        tracing::error!(error = %err, "Stripe call failed");
        match err {
            StripeApiError::Unavailable(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_unavailable",
                "Stripe could not be reached; retry shortly.",
            ),
            // A misconfigured key heals once an operator fixes it (the alarm fires): retry.
            StripeApiError::WrongAccount => {
                ApiError::unavailable("Billing is temporarily unavailable; retry shortly.")
            }
            StripeApiError::NotFound
            | StripeApiError::Rejected { .. }
            | StripeApiError::Malformed(_) => ApiError::bad_gateway("Stripe refused the request."),
        }
    }
}

impl From<SyncError> for ApiError {
    fn from(err: SyncError) -> Self {
        match err {
            SyncError::Stripe(e) => e.into(),
            SyncError::Store(e) => e.into(),
            SyncError::NotFoundUnconfirmed(_) => {
                ApiError::unavailable("Billing data is temporarily unavailable; retry shortly.")
            }
            other => {
                tracing::warn!(error = %other, "sync could not attribute an object");
                ApiError::conflict(
                    "sync_conflict",
                    "Billing data could not be matched to this organization.",
                )
            }
        }
    }
}
