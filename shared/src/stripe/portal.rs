//! The billing portal configuration this service needs, created by catalog-sync and passed to
//! every portal session (`configuration`): on a fresh Stripe account no default
//! configuration exists, and a session without one is refused.
//!
//! The portal offers what the app does not: the card, invoice history, the billing address
//! and tax ID, and cancelling the whole plan at period end. Changing the plan (modules,
//! interval) is off: the app does it with previews, and Stripe's portal could not change a
//! multi-item subscription anyway.

use super::StripePortalConfiguration;
use super::requests::{
    CreateBillingPortalConfiguration, CreateBillingPortalConfigurationBusinessProfile,
    CreateBillingPortalConfigurationFeatures,
    CreateBillingPortalConfigurationFeaturesCustomerUpdate,
    CreateBillingPortalConfigurationFeaturesCustomerUpdateAllowedUpdates as AllowedUpdate,
    CreateBillingPortalConfigurationFeaturesSubscriptionCancel,
    CreateBillingPortalConfigurationFeaturesSubscriptionCancelMode,
    CreateBillingPortalConfigurationFeaturesSubscriptionCancelProrationBehavior,
    CreateBillingPortalConfigurationFeaturesSubscriptionUpdate, InvoiceListParam,
    PaymentMethodUpdateParam,
};

/// Metadata key marking this service's configuration; its value is [`PORTAL_VERSION`].
pub const PORTAL_METADATA_KEY: &str = "pss_billing_portal";
/// Bumped whenever [`configuration_request`] changes: catalog-sync then creates the new one
/// and deactivates the older ones, and portal sessions pick the current one.
pub const PORTAL_VERSION: &str = "1";

/// Whether `configuration` is this service's current one.
pub fn is_current(configuration: &StripePortalConfiguration) -> bool {
    configuration.active != Some(false)
        && configuration
            .metadata
            .as_ref()
            .and_then(|m| m.get(PORTAL_METADATA_KEY))
            .is_some_and(|v| v == PORTAL_VERSION)
}

/// Whether `configuration` is an older one of this service's.
pub fn is_outdated(configuration: &StripePortalConfiguration) -> bool {
    configuration.active != Some(false)
        && configuration
            .metadata
            .as_ref()
            .and_then(|m| m.get(PORTAL_METADATA_KEY))
            .is_some_and(|v| v != PORTAL_VERSION)
}

pub fn configuration_request() -> CreateBillingPortalConfiguration {
    let mut features = CreateBillingPortalConfigurationFeatures::new();
    features.payment_method_update = Some(PaymentMethodUpdateParam::new(true));
    features.invoice_history = Some(InvoiceListParam::new(true));
    let mut customer = CreateBillingPortalConfigurationFeaturesCustomerUpdate::new(true);
    customer.allowed_updates = Some(vec![AllowedUpdate::Address, AllowedUpdate::TaxId]);
    features.customer_update = Some(customer);
    let mut cancel = CreateBillingPortalConfigurationFeaturesSubscriptionCancel::new(true);
    cancel.mode = Some(CreateBillingPortalConfigurationFeaturesSubscriptionCancelMode::AtPeriodEnd);
    cancel.proration_behavior =
        Some(CreateBillingPortalConfigurationFeaturesSubscriptionCancelProrationBehavior::None);
    features.subscription_cancel = Some(cancel);
    features.subscription_update =
        Some(CreateBillingPortalConfigurationFeaturesSubscriptionUpdate::new(false));
    let mut profile = CreateBillingPortalConfigurationBusinessProfile::new();
    profile.headline = Some("Manage your card, invoices and billing details.".to_owned());
    CreateBillingPortalConfiguration::new(features)
        .business_profile(profile)
        .name("pss-billing")
        .metadata(std::collections::HashMap::from([(
            PORTAL_METADATA_KEY.to_owned(),
            PORTAL_VERSION.to_owned(),
        )]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::canonical_encoding;

    #[test]
    fn the_portal_offers_what_the_app_does_not_and_no_plan_changes() {
        let form = canonical_encoding(&configuration_request());
        for pair in [
            "features[payment_method_update][enabled]=true",
            "features[invoice_history][enabled]=true",
            "features[customer_update][enabled]=true",
            "features[customer_update][allowed_updates][0]=address",
            "features[customer_update][allowed_updates][1]=tax_id",
            "features[subscription_cancel][enabled]=true",
            "features[subscription_cancel][mode]=at_period_end",
            "features[subscription_cancel][proration_behavior]=none",
            "features[subscription_update][enabled]=false",
            "metadata[pss_billing_portal]=1",
        ] {
            assert!(form.contains(pair), "{pair} missing from {form}");
        }
    }
}
