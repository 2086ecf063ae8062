//! The authorizer's decision and its wire forms, with no I/O: given a route, a verified caller
//! and the org's entitlements, allow or deny, and render the IAM policy, the context and the
//! exact JSON bodies the client sees. The local gateway reuses these to answer byte for byte
//! what API Gateway answers.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use serde::Serialize;
use serde_json::{Map, Value};

use super::Caller;
use crate::domain::{EntitlementSet, ModuleSet, ServiceModule, Timestamp};
use crate::routes::{Access, Role, Route};

/// What the authorizer Lambda returns to API Gateway.
pub type AuthorizerResponse = ApiGatewayCustomAuthorizerResponse<Value>;

/// The 401 body (API Gateway's UNAUTHORIZED gateway response, and the functions' own 401).
/// Same text as [`crate::http::ApiError::unauthorized`]; a test holds them together.
pub const UNAUTHORIZED_BODY: &str =
    r#"{"error":"unauthorized","message":"A valid bearer token is required."}"#;

/// The body when the authorizer could not decide (DynamoDB or the JWKS unreachable): the
/// AUTHORIZER_FAILURE gateway response, served with 503 because the cause is transient and a
/// retry shortly after usually succeeds. A test holds template.yaml to this text.
pub const AUTHORIZER_FAILURE_BODY: &str = r#"{"error":"temporarily_unavailable","message":"Access could not be checked; retry shortly."}"#;

/// The principal of a request that carries no verified token.
pub const ANONYMOUS: &str = "anonymous";

/// Why a request is refused with a 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// No route in the table for this method and resource.
    UnknownRoute,
    /// The caller's role is below the route's minimum.
    Role { required: Role },
    /// The org has not unlocked the route's module.
    Module(ServiceModule),
}

impl Denial {
    pub const fn code(self) -> &'static str {
        match self {
            Denial::UnknownRoute | Denial::Role { .. } => "forbidden",
            Denial::Module(_) => "subscription_required",
        }
    }

    pub fn message(self) -> String {
        match self {
            Denial::UnknownRoute => "This route is not available.".to_owned(),
            Denial::Role {
                required: Role::Owner,
            } => "This action requires the Owner role.".to_owned(),
            Denial::Role {
                required: Role::Admin,
            } => "This action requires the Admin or Owner role.".to_owned(),
            Denial::Role {
                required: Role::Member,
            } => "This action requires a member of the organization.".to_owned(),
            Denial::Module(module) => format!("This feature requires a {module} subscription."),
        }
    }

    pub const fn service(self) -> Option<ServiceModule> {
        match self {
            Denial::Module(module) => Some(module),
            _ => None,
        }
    }

    /// The exact 403 body, e.g.
    /// `{"error":"subscription_required","message":"This feature requires a LeadGeneration subscription.","service":"LeadGeneration"}`.
    pub fn body(self) -> String {
        error_body(
            self.code(),
            &self.message(),
            self.service().map(ServiceModule::as_str),
        )
    }
}

/// `{"error":..,"message":..[,"service":..]}` in exactly that key order, JSON-escaped.
pub fn error_body(code: &str, message: &str, service: Option<&str>) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        service: Option<&'a str>,
    }
    serde_json::to_string(&Body {
        error: code,
        message,
        service,
    })
    // Serializing three strings cannot fail; the fallback only avoids a panic path.
    .unwrap_or_else(|_| r#"{"error":"forbidden","message":"Access denied."}"#.to_owned())
}

/// The 403 body for a module the org has not unlocked.
pub fn subscription_required_body(module: ServiceModule) -> String {
    Denial::Module(module).body()
}

/// What the authorizer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `caller` is `None` on a public route called without a (valid) token; `entitlements` is
    /// `None` where they were not read (an anonymous call of a public route, or a public route
    /// whose read failed): the context then carries an empty `entitlements`.
    Allow {
        caller: Option<Caller>,
        entitlements: Option<ModuleSet>,
    },
    Deny {
        caller: Option<Caller>,
        denial: Denial,
    },
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    pub fn caller(&self) -> Option<&Caller> {
        match self {
            Decision::Allow { caller, .. } | Decision::Deny { caller, .. } => caller.as_ref(),
        }
    }

    pub fn principal(&self) -> String {
        self.caller()
            .map_or_else(|| ANONYMOUS.to_owned(), |c| c.user.to_string())
    }

    /// The authorizer context: on allow `{orgId, userId, role, entitlements}` (what the
    /// functions read), on deny `{error, message, [service,] body}` where `body` is the exact
    /// response body, for the ACCESS_DENIED gateway response template
    /// `$context.authorizer.body`. API Gateway only passes flat string/number/boolean values,
    /// hence the body as a string.
    pub fn context(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let mut put = |k: &str, v: String| {
            map.insert(k.to_owned(), Value::String(v));
        };
        match self {
            Decision::Allow {
                caller,
                entitlements,
            } => {
                put(
                    "orgId",
                    caller
                        .as_ref()
                        .map(|c| c.org.to_string())
                        .unwrap_or_default(),
                );
                put(
                    "userId",
                    caller
                        .as_ref()
                        .map(|c| c.user.to_string())
                        .unwrap_or_default(),
                );
                put(
                    "role",
                    caller
                        .as_ref()
                        .map(|c| c.role.to_string())
                        .unwrap_or_default(),
                );
                put(
                    "entitlements",
                    entitlements.map(ModuleSet::to_csv).unwrap_or_default(),
                );
                let details = caller.as_ref().map(|c| &c.details);
                if let Some(name) = details.and_then(|d| d.org_name.clone()) {
                    put("orgName", name);
                }
                if let Some(email) = details.and_then(|d| d.email.clone()) {
                    put("email", email);
                }
            }
            Decision::Deny { denial, .. } => {
                put("error", denial.code().to_owned());
                put("message", denial.message());
                if let Some(module) = denial.service() {
                    put("service", module.as_str().to_owned());
                }
                put("body", denial.body());
            }
        }
        map
    }
}

/// The role gate alone: free to evaluate, so it runs before any DynamoDB read.
pub fn check_role(route: &Route, caller: &Caller) -> Result<(), Denial> {
    match route.access {
        Access::Public => Ok(()),
        Access::Authenticated { min_role, .. } if caller.role.satisfies(min_role) => Ok(()),
        Access::Authenticated { min_role, .. } => Err(Denial::Role { required: min_role }),
    }
}

/// The whole gate for an authenticated caller: role, then module, evaluated at `now` (grants
/// with an end, such as a past-due grace period, lapse by the clock). On success, the modules
/// unlocked at `now`, for the context.
pub fn evaluate(
    route: &Route,
    caller: &Caller,
    entitlements: &EntitlementSet,
    now: Timestamp,
) -> Result<ModuleSet, Denial> {
    check_role(route, caller)?;
    if let Access::Authenticated { module, .. } = route.access
        && !entitlements.unlocks(module, now)
    {
        return Err(Denial::Module(module));
    }
    Ok(entitlements.unlocked_at(now))
}

/// The response for `decision`: a policy naming exactly `method_arn` (so a decision cached by
/// API Gateway can never be applied to another method or path), plus the context.
pub fn response(method_arn: &str, decision: &Decision) -> AuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = if decision.is_allow() {
        IamPolicyEffect::Allow
    } else {
        IamPolicyEffect::Deny
    };
    statement.resource = vec![method_arn.to_owned()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];
    let mut response = AuthorizerResponse::default();
    response.principal_id = Some(decision.principal());
    response.policy_document = policy;
    response.context = Value::Object(decision.context());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Grant, OrgId, UserId};
    use crate::routes::find;
    use ServiceModule::*;

    const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

    fn caller(role: Role) -> Caller {
        Caller {
            org: OrgId::parse("org_1").unwrap(),
            user: UserId::parse("user_1").unwrap(),
            details: Default::default(),
            role,
        }
    }

    fn grants(modules: &[(ServiceModule, Option<i64>)]) -> EntitlementSet {
        EntitlementSet::from_grants(modules.iter().map(|(m, until)| {
            (
                *m,
                Grant {
                    until: until.map(Timestamp::from_unix),
                },
            )
        }))
    }

    #[test]
    fn the_subscription_required_body_is_exact() {
        assert_eq!(
            subscription_required_body(LeadGeneration),
            r#"{"error":"subscription_required","message":"This feature requires a LeadGeneration subscription.","service":"LeadGeneration"}"#
        );
        assert_eq!(
            subscription_required_body(EnterpriseFeatures),
            r#"{"error":"subscription_required","message":"This feature requires a EnterpriseFeatures subscription.","service":"EnterpriseFeatures"}"#
        );
        assert_eq!(
            Denial::Role {
                required: Role::Admin
            }
            .body(),
            r#"{"error":"forbidden","message":"This action requires the Admin or Owner role."}"#
        );
        assert_eq!(
            Denial::UnknownRoute.body(),
            r#"{"error":"forbidden","message":"This route is not available."}"#
        );
    }

    #[test]
    fn fixed_bodies_match_the_functions_error_shape() {
        let unauthorized = crate::http::ApiError::unauthorized();
        assert_eq!(
            UNAUTHORIZED_BODY,
            error_body(unauthorized.code, &unauthorized.message, None)
        );
        let unavailable =
            crate::http::ApiError::unavailable("Access could not be checked; retry shortly.");
        assert_eq!(
            AUTHORIZER_FAILURE_BODY,
            error_body(unavailable.code, &unavailable.message, None)
        );
        assert_eq!(
            error_body("x", "say \"hi\"", None),
            r#"{"error":"x","message":"say \"hi\""}"#
        );
    }

    #[test]
    fn role_is_checked_before_the_module() {
        let checkout = find("POST", "/api/billing/checkout").unwrap();
        let none = EntitlementSet::default();
        assert_eq!(
            evaluate(checkout, &caller(Role::Member), &none, NOW),
            Err(Denial::Role {
                required: Role::Admin
            })
        );
        assert!(evaluate(checkout, &caller(Role::Admin), &none, NOW).is_ok());
        assert!(evaluate(checkout, &caller(Role::Owner), &none, NOW).is_ok());
        assert!(check_role(checkout, &caller(Role::Member)).is_err());
    }

    #[test]
    fn paid_module_needs_a_live_grant_at_decision_time() {
        let leads = find("GET", "/api/leads").unwrap();
        let member = caller(Role::Member);
        assert_eq!(
            evaluate(leads, &member, &EntitlementSet::default(), NOW),
            Err(Denial::Module(LeadGeneration))
        );
        let forever = grants(&[(LeadGeneration, None)]);
        let unlocked = evaluate(leads, &member, &forever, NOW).unwrap();
        assert_eq!(unlocked.to_csv(), "BasicCRM,LeadGeneration");
        // A grace period that ends one second from now still unlocks; one that ended does not.
        let grace = grants(&[(LeadGeneration, Some(NOW.unix() + 1))]);
        assert!(evaluate(leads, &member, &grace, NOW).is_ok());
        assert!(evaluate(leads, &member, &grace, NOW.plus_seconds(1)).is_err());
        // Another module's grant does not open this one.
        let other = grants(&[(SocialInbox, None)]);
        assert!(evaluate(leads, &member, &other, NOW).is_err());
    }

    #[test]
    fn basic_crm_routes_open_for_every_org() {
        let sub = find("GET", "/api/billing/subscription").unwrap();
        let unlocked =
            evaluate(sub, &caller(Role::Member), &EntitlementSet::default(), NOW).unwrap();
        assert_eq!(unlocked.to_csv(), "BasicCRM");
    }

    #[test]
    fn allow_names_exactly_the_method_arn_and_carries_the_caller() {
        let arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/leads";
        let decision = Decision::Allow {
            caller: Some(caller(Role::Admin)),
            entitlements: Some([BasicCrm, LeadGeneration].into_iter().collect()),
        };
        let json = serde_json::to_value(response(arn, &decision)).unwrap();
        assert_eq!(json["principalId"], "user_1");
        assert_eq!(
            json["policyDocument"],
            serde_json::json!({"Version":"2012-10-17","Statement":[{"Action":["execute-api:Invoke"],"Effect":"Allow","Resource":[arn]}]})
        );
        assert_eq!(
            json["context"],
            serde_json::json!({"orgId":"org_1","userId":"user_1","role":"Admin","entitlements":"BasicCRM,LeadGeneration"})
        );
    }

    #[test]
    fn deny_carries_the_body_for_the_gateway_response() {
        let arn = "arn:aws:execute-api:us-east-1:1:abc/prod/GET/api/leads";
        let decision = Decision::Deny {
            caller: Some(caller(Role::Member)),
            denial: Denial::Module(LeadGeneration),
        };
        let json = serde_json::to_value(response(arn, &decision)).unwrap();
        assert_eq!(json["policyDocument"]["Statement"][0]["Effect"], "Deny");
        assert_eq!(json["policyDocument"]["Statement"][0]["Resource"][0], arn);
        let context = &json["context"];
        assert_eq!(context["error"], "subscription_required");
        assert_eq!(context["service"], "LeadGeneration");
        assert_eq!(context["body"], subscription_required_body(LeadGeneration));
        let role = Decision::Deny {
            caller: None,
            denial: Denial::Role {
                required: Role::Admin,
            },
        };
        let context = role.context();
        assert!(!context.contains_key("service"));
        assert_eq!(role.principal(), ANONYMOUS);
        // Every context value is a flat string, as API Gateway requires.
        assert!(context.values().all(Value::is_string));
    }

    #[test]
    fn anonymous_allow_has_empty_caller_fields() {
        let decision = Decision::Allow {
            caller: None,
            entitlements: None,
        };
        let context = decision.context();
        for key in ["orgId", "userId", "role", "entitlements"] {
            assert_eq!(context[key], "", "{key}");
        }
    }
}
