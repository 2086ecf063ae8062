//! Reading the caller inside a function, from the context the authorizer attached.
//!
//! The org id comes ONLY from there, never from the path, query or body: the authorizer derived
//! it from a verified token, and API Gateway lets no client set the authorizer context.

use lambda_http::Request;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use serde_json::Value;
use std::collections::HashMap;

use super::Caller;
use crate::domain::{ModuleSet, OrgId, UserId};
use crate::http::ApiError;
use crate::routes::Role;

/// The caller and the modules the authorizer found unlocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    pub caller: Caller,
    pub entitlements: ModuleSet,
}

fn fields(request: &Request) -> Option<&HashMap<String, Value>> {
    match request.request_context_ref()? {
        // REST API: `requestContext.authorizer` is the flat context map.
        RequestContext::ApiGatewayV1(ctx) => Some(&ctx.authorizer.fields),
        // HTTP API: the same map under `authorizer.lambda`.
        RequestContext::ApiGatewayV2(ctx) => ctx.authorizer.as_ref().map(|a| &a.fields),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

impl AuthContext {
    /// 401 when there is no authorizer context with a valid org and user: the route was
    /// reached without the authorizer (a misconfiguration) or anonymously on a public route.
    pub fn from_request(request: &Request) -> Result<Self, ApiError> {
        let fields = fields(request).ok_or_else(ApiError::unauthorized)?;
        let text = |key: &str| fields.get(key).and_then(Value::as_str);
        let org = text("orgId")
            .and_then(|v| OrgId::parse(v).ok())
            .ok_or_else(ApiError::unauthorized)?;
        let user = text("userId")
            .and_then(|v| UserId::parse(v).ok())
            .ok_or_else(ApiError::unauthorized)?;
        let role = text("role").and_then(Role::parse).unwrap_or(Role::Member);
        let entitlements = ModuleSet::from_csv(text("entitlements").unwrap_or(""));
        let details = super::BuyerDetails::from_claims(text("orgName"), text("email"));
        Ok(Self {
            caller: Caller {
                org,
                user,
                role,
                details,
            },
            entitlements,
        })
    }
}

impl AuthContext {
    /// The modules for the public catalog's `unlocked` flags: `None` for an anonymous caller,
    /// and when the authorizer could not read the org's entitlements (an empty
    /// `entitlements` field): the catalog then says nothing rather than "locked".
    pub fn catalog_modules(request: &Request) -> Option<ModuleSet> {
        let context = Self::from_request(request).ok()?;
        let raw = fields(request)?
            .get("entitlements")
            .and_then(Value::as_str)?;
        (!raw.trim().is_empty()).then_some(context.entitlements)
    }
}

impl Caller {
    /// The verified caller of a request that passed the authorizer; 401 JSON otherwise.
    pub fn from_request(request: &Request) -> Result<Caller, ApiError> {
        AuthContext::from_request(request).map(|c| c.caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ServiceModule;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyRequestContext;
    use lambda_http::http::StatusCode;

    fn request(fields: &[(&str, &str)]) -> Request {
        let mut ctx = ApiGatewayProxyRequestContext::default();
        ctx.authorizer.fields = fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        Request::default().with_request_context(RequestContext::ApiGatewayV1(ctx))
    }

    #[test]
    fn reads_the_rest_authorizer_context() {
        let req = request(&[
            ("orgId", "org_1"),
            ("userId", "u_1"),
            ("role", "Admin"),
            ("entitlements", "BasicCRM,LeadGeneration"),
            ("principalId", "u_1"),
        ]);
        let auth = AuthContext::from_request(&req).unwrap();
        assert_eq!(auth.caller.org.as_str(), "org_1");
        assert_eq!(auth.caller.role, Role::Admin);
        assert!(auth.entitlements.contains(ServiceModule::LeadGeneration));
        assert_eq!(Caller::from_request(&req).unwrap(), auth.caller);
        assert_eq!(auth.caller.details, super::super::BuyerDetails::default());
    }

    #[test]
    fn the_org_name_and_email_the_authorizer_passed_on_reach_the_function() {
        use crate::auth::{BuyerDetails, Decision};
        let caller = Caller {
            org: OrgId::parse("org_1").unwrap(),
            user: UserId::parse("u_1").unwrap(),
            role: Role::Owner,
            details: BuyerDetails::from_claims(Some("Acme GmbH"), Some("ap@acme.test")),
        };
        let context = Decision::Allow {
            caller: Some(caller.clone()),
            entitlements: None,
        }
        .context();
        assert_eq!(context["orgName"], "Acme GmbH");
        assert_eq!(context["email"], "ap@acme.test");
        let fields: Vec<(String, String)> = context
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(Caller::from_request(&request(&fields)).unwrap(), caller);
        // Without the claims, the context carries neither.
        let bare = Decision::Allow {
            caller: Some(Caller {
                details: BuyerDetails::default(),
                ..caller
            }),
            entitlements: None,
        }
        .context();
        assert!(!bare.contains_key("orgName") && !bare.contains_key("email"));
    }

    #[test]
    fn catalog_modules_need_a_caller_and_a_read() {
        let read = request(&[
            ("orgId", "org_1"),
            ("userId", "u_1"),
            ("entitlements", "BasicCRM,LeadGeneration"),
        ]);
        let set = AuthContext::catalog_modules(&read).unwrap();
        assert!(set.contains(ServiceModule::LeadGeneration));
        assert!(!set.contains(ServiceModule::SocialInbox));
        let unread = request(&[("orgId", "org_1"), ("userId", "u_1"), ("entitlements", "")]);
        assert_eq!(AuthContext::catalog_modules(&unread), None);
        let anonymous = request(&[("orgId", ""), ("entitlements", "")]);
        assert_eq!(AuthContext::catalog_modules(&anonymous), None);
    }

    #[test]
    fn no_context_or_empty_org_is_401() {
        for req in [
            Request::default(),
            request(&[]),
            request(&[("orgId", ""), ("userId", "u")]),
            request(&[("orgId", "a#b"), ("userId", "u")]),
            request(&[("orgId", "o")]),
        ] {
            let err = Caller::from_request(&req).unwrap_err();
            assert_eq!(err.status, StatusCode::UNAUTHORIZED);
            assert_eq!(err.code, "unauthorized");
        }
    }
}
