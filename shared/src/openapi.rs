//! The OpenAPI 3 document of the HTTP API (openapi.json at the repository root), embedded so
//! `GET /api/billing/openapi.json` serves exactly the committed file. A test checks it against
//! the route table and the response types.

pub const DOCUMENT: &str = include_str!("../../openapi.json");
