//! The OpenAPI 3 document of the HTTP API (openapi.json at the repository root), embedded so
//! `GET /api/billing/openapi.json` serves the committed file. A test checks it against the route
//! table and the response types.
//!
//! One value differs in what a deployment serves: the committed `FrontendUrl` pattern admits
//! every origin (the file is the same for every deployment), while a served document must admit
//! exactly the redirect URLs its validator accepts, so [`with_frontend_url_pattern`] puts the
//! deployment's own pattern (its `FRONTEND_ORIGINS`) in its place. A client or fuzzer reading the
//! served document then never meets a URL the schema calls valid and the API refuses.

pub const DOCUMENT: &str = include_str!("../../openapi.json");

/// Where the `FrontendUrl` schema's `pattern` begins in [`DOCUMENT`].
const FRONTEND_URL_SCHEMA: &str = "\"FrontendUrl\": {";
const PATTERN_KEY: &str = "\"pattern\": ";

/// [`DOCUMENT`] with the `FrontendUrl` pattern replaced by `pattern`, byte for byte the same
/// elsewhere.
pub fn with_frontend_url_pattern(pattern: &str) -> String {
    let literal = frontend_url_pattern_literal();
    let mut served = String::with_capacity(DOCUMENT.len() + pattern.len());
    served.push_str(&DOCUMENT[..literal.start]);
    served.push_str(&serde_json::Value::String(pattern.to_owned()).to_string());
    served.push_str(&DOCUMENT[literal.end..]);
    served
}

/// The byte range of the JSON string literal (quotes included) of `FrontendUrl`'s pattern. The
/// document is a compile-time constant checked by tests, so a missing schema is a build bug.
fn frontend_url_pattern_literal() -> std::ops::Range<usize> {
    let schema = DOCUMENT
        .find(FRONTEND_URL_SCHEMA)
        .expect("openapi.json has a FrontendUrl schema");
    let start = schema
        + DOCUMENT[schema..]
            .find(PATTERN_KEY)
            .expect("FrontendUrl has a pattern")
        + PATTERN_KEY.len();
    let bytes = DOCUMENT.as_bytes();
    assert_eq!(bytes[start], b'"', "FrontendUrl's pattern is a string");
    let mut end = start + 1;
    while bytes[end] != b'"' {
        // Skip an escaped character (`\\`, `\"`): only an unescaped quote ends the literal.
        end += if bytes[end] == b'\\' { 2 } else { 1 };
    }
    start..end + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_frontend_url_pattern_changes() {
        let served = with_frontend_url_pattern("^https://a\\.test(/.*)?$");
        let mut committed: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        committed["components"]["schemas"]["FrontendUrl"]["pattern"] =
            "^https://a\\.test(/.*)?$".into();
        let served_value: serde_json::Value = serde_json::from_str(&served).unwrap();
        assert_eq!(served_value, committed);
        let changed: Vec<_> = DOCUMENT
            .lines()
            .zip(served.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
    }
}
