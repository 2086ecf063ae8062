//! Validation of checkout and portal requests (pure) and the Stripe request they turn into.

use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::{BillingInterval, Catalog, CustomerId, OrgId, ServiceModule};
use crate::http::{ApiError, OriginAllowlist};
use crate::stripe::requests::{
    CheckoutSessionBillingAddressCollection, CheckoutSessionMode, CreateCheckoutSession,
    CreateCheckoutSessionAutomaticTax, CreateCheckoutSessionCustomerUpdate,
    CreateCheckoutSessionCustomerUpdateAddress, CreateCheckoutSessionCustomerUpdateName,
    CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentMethodCollection,
    CreateCheckoutSessionSubscriptionData, CreateCheckoutSessionSubscriptionDataTrialSettings,
    CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehavior,
    CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehaviorMissingPaymentMethod as MissingCard,
    CreateCheckoutSessionTaxIdCollection,
};
use crate::sync::ORG_METADATA_KEY;
use lambda_http::http::StatusCode;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutBody {
    pub services: Vec<String>,
    pub interval: String,
    pub success_url: String,
    pub cancel_url: String,
}

/// A validated checkout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub modules: Vec<ServiceModule>,
    pub interval: BillingInterval,
    pub success_url: String,
    pub cancel_url: String,
}

pub(super) fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn valid_services(catalog: &Catalog) -> String {
    catalog
        .paid_entries()
        .map(|e| e.module.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The modules and interval of a purchase (checkout, preview, add to the plan): paid modules
/// of the catalog, each once, and `month` or `year`.
pub fn parse_purchase(
    services: &[String],
    interval: &str,
    catalog: &Catalog,
) -> Result<(Vec<ServiceModule>, BillingInterval), ApiError> {
    if services.is_empty() || services.len() > 20 {
        return Err(unprocessable(
            "invalid_services",
            format!(
                "Choose at least one service. Valid services: {}.",
                valid_services(catalog)
            ),
        ));
    }
    let mut modules = Vec::new();
    let mut invalid = Vec::new();
    for name in services {
        match name.parse::<ServiceModule>() {
            Ok(m) if !m.is_free() => {
                if !modules.contains(&m) {
                    modules.push(m);
                }
            }
            _ => invalid.push(name.chars().take(64).collect::<String>()),
        }
    }
    if !invalid.is_empty() {
        return Err(unprocessable(
            "invalid_services",
            format!(
                "Unknown or free service(s): {}. Valid services: {}.",
                invalid.join(", "),
                valid_services(catalog)
            ),
        ));
    }
    let interval = interval.parse::<BillingInterval>().map_err(|_| {
        unprocessable(
            "invalid_interval",
            "interval must be \"month\" or \"year\".",
        )
    })?;
    Ok((modules, interval))
}

/// Parses and validates a checkout body. Any field naming an organization is ignored: the org
/// always comes from the verified token.
pub fn parse_checkout(
    body: &[u8],
    catalog: &Catalog,
    origins: &OriginAllowlist,
) -> Result<CheckoutRequest, ApiError> {
    let body: CheckoutBody = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request(
            "Body must be JSON: {\"services\":[...],\"interval\":\"month\"|\"year\",\"successUrl\":\"...\",\"cancelUrl\":\"...\"}.",
        )
    })?;
    let (modules, interval) = parse_purchase(&body.services, &body.interval, catalog)?;
    for (field, url) in [
        ("successUrl", &body.success_url),
        ("cancelUrl", &body.cancel_url),
    ] {
        if !origins.allows(url) {
            return Err(unprocessable(
                "invalid_redirect_url",
                format!("{field} must be under an allowed frontend origin."),
            ));
        }
    }
    Ok(CheckoutRequest {
        modules,
        interval,
        success_url: body.success_url,
        cancel_url: body.cancel_url,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortalBody {
    return_url: String,
    /// Absent for the portal's home; an explicit `null` is refused like any other value the
    /// document does not list.
    #[serde(default, deserialize_with = "present")]
    flow: Option<serde_json::Value>,
}

/// A field given, whatever its value (`null` included): `Some`; absent: `None` (the default).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// Where the portal session opens: its home page, or straight on one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalFlow {
    Home,
    /// `flow_data[type]=payment_method_update`: the card form (a past-due org's fix).
    PaymentMethodUpdate,
}

/// `{"returnUrl": "...", "flow"?: "payment_method_update"}`
pub fn parse_portal(
    body: &[u8],
    origins: &OriginAllowlist,
) -> Result<(String, PortalFlow), ApiError> {
    let body: PortalBody = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request(
            "Body must be JSON: {\"returnUrl\":\"...\",\"flow\"?:\"payment_method_update\"}.",
        )
    })?;
    if !origins.allows(&body.return_url) {
        return Err(unprocessable(
            "invalid_redirect_url",
            "returnUrl must be under an allowed frontend origin.",
        ));
    }
    let flow = match body.flow.as_ref().map(|f| f.as_str()) {
        None => PortalFlow::Home,
        Some(Some("payment_method_update")) => PortalFlow::PaymentMethodUpdate,
        Some(_) => {
            return Err(unprocessable(
                "invalid_flow",
                "flow must be \"payment_method_update\" or absent.",
            ));
        }
    };
    Ok((body.return_url, flow))
}

/// Stripe replaces this placeholder with the session id when redirecting after payment; the
/// frontend hands it to `POST /api/billing/sync`.
pub const SESSION_PLACEHOLDER: &str = "session_id={CHECKOUT_SESSION_ID}";

pub fn success_url_with_session(url: &str) -> String {
    let (base, fragment) = url
        .split_once('#')
        .map_or((url, None), |(b, f)| (b, Some(f)));
    let sep = if base.contains('?') { '&' } else { '?' };
    match fragment {
        Some(f) => format!("{base}{sep}{SESSION_PLACEHOLDER}#{f}"),
        None => format!("{base}{sep}{SESSION_PLACEHOLDER}"),
    }
}

/// What a deployment's checkouts offer a buyer (template parameters `AutomaticTax`,
/// `AllowPromotionCodes`, `TrialDays`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutOffer {
    /// Stripe Tax computes the tax of the session and of the subscription's invoices.
    pub automatic_tax: bool,
    /// The buyer may enter a promotion code.
    pub promotion_codes: bool,
    /// Days of free trial a first purchase of modules gets (0: none).
    pub trial_days: u32,
}

impl Default for CheckoutOffer {
    fn default() -> Self {
        Self {
            automatic_tax: true,
            promotion_codes: true,
            trial_days: DEFAULT_TRIAL_DAYS,
        }
    }
}

pub const DEFAULT_TRIAL_DAYS: u32 = 14;

/// The free trial a checkout starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trial {
    pub days: u32,
    /// The customer already pays for another plan (a card is on file): Checkout confirms a
    /// card rather than start a no-card trial.
    pub card_up_front: bool,
}

impl CheckoutOffer {
    /// `CHECKOUT_AUTOMATIC_TAX`, `CHECKOUT_PROMOTION_CODES` (`true`/`false`, default true) and
    /// `TRIAL_DAYS` (default 14; 0: no trials).
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        use crate::config;
        Ok(Self {
            automatic_tax: config::parse_or("CHECKOUT_AUTOMATIC_TAX", true)?,
            promotion_codes: config::parse_or("CHECKOUT_PROMOTION_CODES", true)?,
            trial_days: config::parse_or("TRIAL_DAYS", DEFAULT_TRIAL_DAYS)?,
        })
    }
}

/// The Checkout Session request: subscription mode, one line item per module, the org in the
/// session's and the subscription's metadata. `request_key`, once known, names the API request
/// that made the session (see [`super::CHECKOUT_REQUEST_METADATA_KEY`]).
///
/// Companies buy here: the billing address and a tax ID are collected and saved on the
/// customer (`customer_update`), and tax is computed by Stripe Tax when `offer` says so. With
/// `trial_days`, the subscription starts with a free trial and, unless `card_up_front` (the
/// customer already pays for another plan), no card is asked for
/// (`payment_method_collection=if_required`): a trial that ends without a card cancels
/// (`missing_payment_method=cancel`), so nothing is granted unpaid after it.
pub fn checkout_session_request(
    org: &OrgId,
    customer: &CustomerId,
    request: &CheckoutRequest,
    price_ids: &[String],
    request_key: Option<&str>,
    offer: &CheckoutOffer,
    trial: Option<Trial>,
) -> CreateCheckoutSession {
    let trial_days = trial.map(|t| t.days);
    let card_up_front = trial.is_some_and(|t| t.card_up_front);
    let org_metadata = || HashMap::from([(ORG_METADATA_KEY.to_owned(), org.to_string())]);
    let mut metadata = org_metadata();
    if let Some(key) = request_key {
        metadata.insert(
            super::CHECKOUT_REQUEST_METADATA_KEY.to_owned(),
            key.to_owned(),
        );
    }
    let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
    subscription_data.metadata = Some(org_metadata());
    if let Some(days) = trial_days.filter(|d| *d > 0) {
        subscription_data.trial_period_days = Some(days);
        subscription_data.trial_settings =
            Some(CreateCheckoutSessionSubscriptionDataTrialSettings::new(
                CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehavior::new(
                    MissingCard::Cancel,
                ),
            ));
    }
    let line_items: Vec<CreateCheckoutSessionLineItems> = price_ids
        .iter()
        .map(|price| {
            let mut item = CreateCheckoutSessionLineItems::new();
            item.price = Some(price.clone());
            item.quantity = Some(1);
            item
        })
        .collect();
    let mut customer_update = CreateCheckoutSessionCustomerUpdate::new();
    customer_update.name = Some(CreateCheckoutSessionCustomerUpdateName::Auto);
    customer_update.address = Some(CreateCheckoutSessionCustomerUpdateAddress::Auto);
    let mut session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer.as_str())
        .client_reference_id(org.to_string())
        .metadata(metadata)
        .subscription_data(subscription_data)
        .success_url(success_url_with_session(&request.success_url))
        .cancel_url(request.cancel_url.as_str())
        .line_items(line_items)
        .billing_address_collection(CheckoutSessionBillingAddressCollection::Required)
        .tax_id_collection(CreateCheckoutSessionTaxIdCollection::new(true))
        .customer_update(customer_update);
    if offer.automatic_tax {
        session = session.automatic_tax(CreateCheckoutSessionAutomaticTax::new(true));
    }
    if offer.promotion_codes {
        session = session.allow_promotion_codes(true);
    }
    if trial_days.is_some_and(|d| d > 0) && !card_up_front {
        session = session
            .payment_method_collection(CreateCheckoutSessionPaymentMethodCollection::IfRequired);
    }
    session
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_portal_flow_is_the_card_form_or_absent() {
        let origins = OriginAllowlist::parse("https://app.example.test");
        let body = |flow: &str| {
            format!(r#"{{"returnUrl":"https://app.example.test/billing"{flow}}}"#).into_bytes()
        };
        assert_eq!(
            parse_portal(&body(""), &origins).unwrap().1,
            PortalFlow::Home
        );
        assert_eq!(
            parse_portal(&body(r#","flow":"payment_method_update""#), &origins)
                .unwrap()
                .1,
            PortalFlow::PaymentMethodUpdate
        );
        for flow in [
            r#","flow":null"#,
            r#","flow":"subscription_update""#,
            r#","flow":3"#,
        ] {
            let e = parse_portal(&body(flow), &origins).unwrap_err();
            assert_eq!(e.code, "invalid_flow", "{flow}");
        }
    }

    use super::*;

    fn origins() -> OriginAllowlist {
        OriginAllowlist::parse("https://app.example.com, http://localhost:5173/")
    }

    #[test]
    fn checkout_body_rules() {
        let c = Catalog::standard();
        let ok = br#"{"services":["LeadGeneration","SocialInbox","LeadGeneration"],"interval":"year",
            "successUrl":"https://app.example.com/ok","cancelUrl":"https://app.example.com/no","orgId":"other"}"#;
        let req = parse_checkout(ok, &c, &origins()).unwrap();
        assert_eq!(
            req.modules,
            vec![ServiceModule::LeadGeneration, ServiceModule::SocialInbox]
        );
        assert_eq!(req.interval, BillingInterval::Year);
        let err = |body: &[u8]| parse_checkout(body, &c, &origins()).unwrap_err();
        assert_eq!(err(b"nope").status, StatusCode::BAD_REQUEST);
        let e = err(br#"{"services":["BasicCRM","Teleport"],"interval":"month","successUrl":"https://app.example.com","cancelUrl":"https://app.example.com"}"#);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_services")
        );
        assert!(e.message.contains("BasicCRM, Teleport") && e.message.contains("LeadGeneration"));
        let e = err(br#"{"services":[],"interval":"month","successUrl":"https://app.example.com","cancelUrl":"https://app.example.com"}"#);
        assert_eq!(e.code, "invalid_services");
        let e = err(br#"{"services":["SocialInbox"],"interval":"week","successUrl":"https://app.example.com","cancelUrl":"https://app.example.com"}"#);
        assert_eq!(e.code, "invalid_interval");
        let e = err(br#"{"services":["SocialInbox"],"interval":"month","successUrl":"https://evil.test","cancelUrl":"https://app.example.com"}"#);
        assert_eq!(e.code, "invalid_redirect_url");
    }

    #[test]
    fn success_url_gets_the_session_placeholder() {
        assert_eq!(
            success_url_with_session("https://a.test/x"),
            "https://a.test/x?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(
            success_url_with_session("https://a.test/x?y=1#top"),
            "https://a.test/x?y=1&session_id={CHECKOUT_SESSION_ID}#top"
        );
    }
}
