//! Leads of an organization (the paywalled demo route). The CRM writes leads; this service only
//! lists them, so every field but the id is optional.

use serde::{Deserialize, Serialize};

use super::Timestamp;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_json_is_camel_case_and_omits_absent_fields() {
        let lead = Lead {
            id: "lead_1".into(),
            name: Some("Ada".into()),
            email: None,
            company: None,
            source: Some("form".into()),
            status: None,
            score: Some(42),
            created_at: Some(Timestamp::from_unix(1_700_000_000)),
        };
        let json = serde_json::to_value(&lead).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id":"lead_1","name":"Ada","source":"form","score":42,"createdAt":1_700_000_000})
        );
        let back: Lead = serde_json::from_value(serde_json::json!({"id":"x"})).unwrap();
        assert_eq!(back.name, None);
    }
}
