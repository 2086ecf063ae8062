//! async-stripe's generated request types for the endpoints this service calls, in one place.
//! Each one knows its endpoint's parameters, their types and enum values for the pinned API
//! version; [`super::StripeApi::read`] and [`super::StripeApi::write`] send them. Only the
//! request side of these crates is used: answers are parsed by [`super::objects`].
//!
//! Gaps in async-stripe 1.0.0-rc.10 for what this service sends: none. A request it cannot
//! express would be built by hand in `super` with a comment naming the gap.

pub use stripe_billing::billing_portal_configuration::{
    CreateBillingPortalConfiguration, CreateBillingPortalConfigurationBusinessProfile,
    CreateBillingPortalConfigurationFeatures,
    CreateBillingPortalConfigurationFeaturesCustomerUpdate,
    CreateBillingPortalConfigurationFeaturesCustomerUpdateAllowedUpdates,
    CreateBillingPortalConfigurationFeaturesSubscriptionCancel,
    CreateBillingPortalConfigurationFeaturesSubscriptionCancelMode,
    CreateBillingPortalConfigurationFeaturesSubscriptionCancelProrationBehavior,
    CreateBillingPortalConfigurationFeaturesSubscriptionUpdate, InvoiceListParam,
    ListBillingPortalConfiguration, PaymentMethodUpdateParam, UpdateBillingPortalConfiguration,
};
pub use stripe_billing::billing_portal_session::{
    CreateBillingPortalSession, CreateBillingPortalSessionFlowData,
    CreateBillingPortalSessionFlowDataType,
};
pub use stripe_billing::invoice::{
    CreatePreviewInvoice, CreatePreviewInvoiceSubscriptionDetails,
    CreatePreviewInvoiceSubscriptionDetailsItems,
    CreatePreviewInvoiceSubscriptionDetailsProrationBehavior, ListInvoice, RetrieveInvoice,
};
pub use stripe_billing::subscription::{
    ListSubscription, ListSubscriptionStatus, RetrieveSubscription, UpdateSubscription,
    UpdateSubscriptionItems, UpdateSubscriptionPaymentBehavior,
    UpdateSubscriptionProrationBehavior,
};
pub use stripe_billing::subscription_schedule::{
    CreateSubscriptionSchedule, ReleaseSubscriptionSchedule, RetrieveSubscriptionSchedule,
    UpdateSubscriptionSchedule, UpdateSubscriptionSchedulePhases,
    UpdateSubscriptionSchedulePhasesAutomaticTax, UpdateSubscriptionSchedulePhasesDiscounts,
    UpdateSubscriptionSchedulePhasesDuration, UpdateSubscriptionSchedulePhasesDurationInterval,
    UpdateSubscriptionSchedulePhasesEndDate, UpdateSubscriptionSchedulePhasesItems,
    UpdateSubscriptionSchedulePhasesStartDate, UpdateSubscriptionSchedulePhasesTrialEnd,
    UpdateSubscriptionScheduleProrationBehavior,
};
pub use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAutomaticTax, CreateCheckoutSessionCustomerUpdate,
    CreateCheckoutSessionCustomerUpdateAddress, CreateCheckoutSessionCustomerUpdateName,
    CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentMethodCollection,
    CreateCheckoutSessionSubscriptionData, CreateCheckoutSessionSubscriptionDataTrialSettings,
    CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehavior,
    CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehaviorMissingPaymentMethod,
    CreateCheckoutSessionTaxIdCollection, ExpireCheckoutSession, ListCheckoutSession,
    RetrieveCheckoutSession,
};
pub use stripe_connect::account::RetrieveForMyAccountAccount;
pub use stripe_core::customer::{CreateCustomer, ListPaymentMethodsCustomer, RetrieveCustomer};
pub use stripe_core::event::{ListEvent, RetrieveEvent};
pub use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice, UpdatePrice,
};
pub use stripe_product::product::{CreateProduct, RetrieveProduct, UpdateProduct};
pub use stripe_shared::{
    CheckoutSessionBillingAddressCollection, CheckoutSessionMode, CheckoutSessionStatus,
    PriceTaxBehavior, SubscriptionScheduleEndBehavior,
};
pub use stripe_types::{Currency, RangeQueryTs};
