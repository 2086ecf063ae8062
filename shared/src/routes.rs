//! The route table: every API route, the module and minimum role it needs, and the function that
//! serves it. It is the declarative replacement of the original plan's `[RequiresService]`
//! attribute: the authorizer decides from it, and template.yaml, the OpenAPI document and the
//! local gateway are derived from it or checked against it by tests, so they cannot drift.

use std::fmt;
use std::str::FromStr;

use crate::domain::ServiceModule;

/// A user's role in their organization, as the portal API puts it in the token. Ordered: a role
/// satisfies every requirement at or below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Member, Role::Admin, Role::Owner];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Member => "Member",
            Role::Admin => "Admin",
            Role::Owner => "Owner",
        }
    }

    /// The canonical names, plus their all-lowercase spelling (some token issuers lowercase
    /// claim values). Nothing else: a typo must not silently map to a role.
    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| value == r.as_str() || value == r.as_str().to_ascii_lowercase())
    }

    /// Whether this role meets `required`.
    pub fn satisfies(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without a token (the catalog, the API description).
    Public,
    /// A verified token whose organization has `module` unlocked and whose role is at least
    /// `min_role`.
    Authenticated {
        module: ServiceModule,
        min_role: Role,
    },
}

/// One API route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Upper-case HTTP method.
    pub method: &'static str,
    /// The API Gateway resource template (`/api/leads`, or `/api/x/{id}` with parameters), the
    /// form API Gateway passes to the authorizer as `resource`.
    pub path: &'static str,
    pub access: Access,
    /// The binary (function crate) that serves the route.
    pub function: &'static str,
}

impl Route {
    pub const fn is_public(&self) -> bool {
        matches!(self.access, Access::Public)
    }
}

const fn public(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route {
        method,
        path,
        access: Access::Public,
        function,
    }
}

const fn gated(
    method: &'static str,
    path: &'static str,
    module: ServiceModule,
    min_role: Role,
    function: &'static str,
) -> Route {
    Route {
        method,
        path,
        access: Access::Authenticated { module, min_role },
        function,
    }
}

use ServiceModule::{BasicCrm, LeadGeneration};

/// Every route of the API. Billing reads need BasicCRM (every org has it, but the caller must
/// be signed in); starting a checkout or opening the billing portal changes what the org pays,
/// so it needs an Admin or the Owner.
pub const ROUTES: &[Route] = &[
    public("GET", "/api/billing/services", "billing-services"),
    public("GET", "/api/billing/openapi.json", "billing-services"),
    gated(
        "GET",
        "/api/billing/subscription",
        BasicCrm,
        Role::Member,
        "billing-subscription",
    ),
    gated(
        "GET",
        "/api/billing/invoices",
        BasicCrm,
        Role::Member,
        "billing-invoices",
    ),
    gated(
        "GET",
        "/api/billing/payment-methods",
        BasicCrm,
        Role::Member,
        "billing-payment-methods",
    ),
    gated(
        "POST",
        "/api/billing/checkout",
        BasicCrm,
        Role::Admin,
        "billing-checkout",
    ),
    gated(
        "POST",
        "/api/billing/preview",
        BasicCrm,
        Role::Admin,
        "billing-plan",
    ),
    gated(
        "POST",
        "/api/billing/modules",
        BasicCrm,
        Role::Admin,
        "billing-plan",
    ),
    gated(
        "DELETE",
        "/api/billing/modules/{service}",
        BasicCrm,
        Role::Admin,
        "billing-plan",
    ),
    gated(
        "POST",
        "/api/billing/modules/{service}/resume",
        BasicCrm,
        Role::Admin,
        "billing-plan",
    ),
    gated(
        "POST",
        "/api/billing/interval/preview",
        BasicCrm,
        Role::Admin,
        "billing-plan",
    ),
    gated(
        "POST",
        "/api/billing/interval",
        BasicCrm,
        Role::Admin,
        "billing-plan",
    ),
    gated(
        "POST",
        "/api/billing/portal",
        BasicCrm,
        Role::Admin,
        "billing-portal",
    ),
    gated(
        "POST",
        "/api/billing/sync",
        BasicCrm,
        Role::Member,
        "billing-sync",
    ),
    gated("GET", "/api/leads", LeadGeneration, Role::Member, "leads"),
];

/// The route for a method and an API Gateway resource template. Exact match on the template:
/// API Gateway has already matched the concrete path to it, so nothing here re-parses paths.
pub fn find(method: &str, resource_path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == resource_path)
}

/// The route a concrete request path matches (as API Gateway matches it: `{name}` stands for
/// one non-empty path segment), with its path parameters. For the local gateway; in AWS the
/// gateway has done this before the authorizer and the function see the request.
pub fn route_for_path(
    method: &str,
    path: &str,
) -> Option<(&'static Route, Vec<(&'static str, String)>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    ROUTES
        .iter()
        .filter(|r| r.method.eq_ignore_ascii_case(method))
        .find_map(|route| {
            let template: Vec<&'static str> =
                route.path.trim_start_matches('/').split('/').collect();
            if template.len() != segments.len() {
                return None;
            }
            let mut params = Vec::new();
            for (t, s) in template.iter().zip(&segments) {
                match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    Some(name) if !s.is_empty() => params.push((name, (*s).to_owned())),
                    Some(_) => return None,
                    None if t == s => {}
                    None => return None,
                }
            }
            Some((route, params))
        })
}

/// The distinct function binaries that serve routes, in table order.
pub fn functions() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for route in ROUTES {
        if !names.contains(&route.function) {
            names.push(route.function);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_strictly() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert!(Role::Owner.satisfies(Role::Admin));
        assert!(Role::Admin.satisfies(Role::Admin));
        assert!(!Role::Member.satisfies(Role::Admin));
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(Role::parse(&role.as_str().to_ascii_lowercase()), Some(role));
        }
        for bad in ["OWNER", "admin ", "", "SuperAdmin", "Owner,Admin"] {
            assert_eq!(Role::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn table_has_no_duplicates_and_well_formed_entries() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(a.path.starts_with("/api/"), "{}", a.path);
            assert!(!a.path.ends_with('/'), "{}", a.path);
            assert_eq!(a.method, a.method.to_ascii_uppercase());
            assert!(!a.function.is_empty());
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "duplicate {} {}",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn find_matches_method_and_template_exactly() {
        let leads = find("GET", "/api/leads").unwrap();
        assert_eq!(leads.function, "leads");
        assert_eq!(
            leads.access,
            Access::Authenticated {
                module: LeadGeneration,
                min_role: Role::Member
            }
        );
        assert_eq!(find("get", "/api/leads"), Some(leads));
        assert_eq!(find("POST", "/api/leads"), None);
        assert_eq!(find("GET", "/api/leads/"), None);
        assert_eq!(find("GET", "/api/Leads"), None);
        assert_eq!(find("GET", "/api/billing"), None);
    }

    #[test]
    fn the_issue_access_rules_hold() {
        let access = |m, p| find(m, p).unwrap().access;
        assert_eq!(access("GET", "/api/billing/services"), Access::Public);
        assert_eq!(access("GET", "/api/billing/openapi.json"), Access::Public);
        for (m, p) in [
            ("GET", "/api/billing/subscription"),
            ("GET", "/api/billing/invoices"),
            ("GET", "/api/billing/payment-methods"),
            ("POST", "/api/billing/sync"),
        ] {
            assert_eq!(
                access(m, p),
                Access::Authenticated {
                    module: BasicCrm,
                    min_role: Role::Member
                },
                "{m} {p}"
            );
        }
        for p in [
            "/api/billing/checkout",
            "/api/billing/portal",
            "/api/billing/preview",
            "/api/billing/modules",
            "/api/billing/modules/{service}/resume",
            "/api/billing/interval/preview",
            "/api/billing/interval",
        ] {
            assert_eq!(
                access("POST", p),
                Access::Authenticated {
                    module: BasicCrm,
                    min_role: Role::Admin
                },
                "{p}"
            );
        }
    }

    #[test]
    fn a_concrete_path_matches_its_template_with_its_parameters() {
        let (route, params) =
            route_for_path("DELETE", "/api/billing/modules/LeadGeneration").unwrap();
        assert_eq!(route.path, "/api/billing/modules/{service}");
        assert_eq!(params, vec![("service", "LeadGeneration".to_owned())]);
        let (route, _) = route_for_path("POST", "/api/billing/modules/X/resume").unwrap();
        assert_eq!(route.path, "/api/billing/modules/{service}/resume");
        let (route, params) = route_for_path("POST", "/api/billing/modules").unwrap();
        assert_eq!((route.path, params.len()), ("/api/billing/modules", 0));
        assert!(route_for_path("DELETE", "/api/billing/modules/").is_none());
        assert!(route_for_path("DELETE", "/api/billing/modules/a/b").is_none());
        assert!(route_for_path("GET", "/api/billing/modules/a").is_none());
        assert_eq!(
            find("DELETE", "/api/billing/modules/{service}")
                .unwrap()
                .access,
            Access::Authenticated {
                module: BasicCrm,
                min_role: Role::Admin
            }
        );
    }

    #[test]
    fn functions_are_listed_once() {
        let names = functions();
        assert_eq!(names.first(), Some(&"billing-services"));
        assert_eq!(
            names.iter().filter(|n| **n == "billing-services").count(),
            1
        );
        assert!(names.contains(&"leads"));
        assert_eq!(names.len(), 9);
        assert_eq!(names.iter().filter(|n| **n == "billing-plan").count(), 1);
    }
}
