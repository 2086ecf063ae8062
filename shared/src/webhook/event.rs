//! Which re-sync a Stripe event triggers. Pure: no I/O.

use crate::domain::{CustomerId, InvalidId, InvoiceId, SubscriptionId};
use crate::stripe::StripeEvent;

/// What to re-read from Stripe for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CompleteCheckout(String),
    /// A Checkout Session expired unpaid: nothing to sync or grant, only counted (the
    /// checkout success rate) once per event.
    CheckoutExpired(String),
    SyncSubscription(SubscriptionId),
    SyncInvoice(InvoiceId),
    SyncCustomer(CustomerId),
    /// An event type this service does not act on: acknowledged, nothing stored.
    Ignore,
}

/// Every event type that triggers a sync (the webhook endpoint should subscribe to these).
pub const HANDLED_EVENT_TYPES: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.expired",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    // A change made with `pending_if_incomplete` was paid (its items now apply) or lapsed.
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
    // Removals at period end live on a schedule: each of its changes re-reads the
    // subscription it manages (or managed, once released).
    "subscription_schedule.created",
    "subscription_schedule.updated",
    "subscription_schedule.released",
    "subscription_schedule.canceled",
    "subscription_schedule.completed",
    "subscription_schedule.aborted",
    "customer.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.finalized",
    "invoice.updated",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.payment_action_required",
    "payment_method.attached",
    "payment_method.detached",
    "payment_method.updated",
    "payment_method.automatically_updated",
    "customer.updated",
];

/// Decides the action for an event, from its type and the ids on its object.
pub fn decide(event: &StripeEvent) -> Result<Action, InvalidId> {
    let object = &event.data.object;
    let kind = event.event_type.as_str();
    if !HANDLED_EVENT_TYPES.contains(&kind) {
        return Ok(Action::Ignore);
    }
    Ok(match kind.split_once('.').map(|(prefix, _)| prefix) {
        Some("checkout") if kind == "checkout.session.expired" => {
            Action::CheckoutExpired(object.id.clone())
        }
        Some("checkout") => Action::CompleteCheckout(object.id.clone()),
        Some("customer") if kind.starts_with("customer.subscription.") => {
            Action::SyncSubscription(SubscriptionId::parse(&object.id)?)
        }
        Some("customer") => Action::SyncCustomer(CustomerId::parse(&object.id)?),
        Some("invoice") => Action::SyncInvoice(InvoiceId::parse(&object.id)?),
        Some("subscription_schedule") => {
            match object
                .subscription
                .as_ref()
                .map(|s| s.id())
                .or(object.released_subscription.as_deref())
            {
                Some(id) => Action::SyncSubscription(SubscriptionId::parse(id)?),
                // A schedule that never started a subscription: nothing of the org's changed.
                None => Action::Ignore,
            }
        }
        Some("payment_method") => {
            // A detached method has no customer any more; the previous one is in
            // previous_attributes. Re-syncing that customer's whole list drops it.
            let customer = object
                .customer
                .as_ref()
                .map(|c| c.id().to_owned())
                .or_else(|| {
                    event
                        .data
                        .previous_attributes
                        .as_ref()?
                        .get("customer")?
                        .as_str()
                        .map(str::to_owned)
                });
            match customer {
                Some(c) => Action::SyncCustomer(CustomerId::parse(c)?),
                None => Action::Ignore,
            }
        }
        _ => Action::Ignore,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, object: &str) -> StripeEvent {
        serde_json::from_str(&format!(
            r#"{{"id":"evt_1","type":"{kind}","livemode":false,"data":{{"object":{object}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn maps_each_event_family_to_its_sync() {
        let sub = r#"{"id":"sub_1","object":"subscription","customer":"cus_1"}"#;
        for kind in [
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
        ] {
            assert_eq!(
                decide(&event(kind, sub)),
                Ok(Action::SyncSubscription(
                    SubscriptionId::parse("sub_1").unwrap()
                ))
            );
        }
        let inv = r#"{"id":"in_1","customer":"cus_1","subscription":"sub_1"}"#;
        for kind in [
            "invoice.paid",
            "invoice.payment_action_required",
            "invoice.payment_failed",
            "invoice.payment_succeeded",
            "invoice.finalized",
            "invoice.updated",
        ] {
            assert_eq!(
                decide(&event(kind, inv)),
                Ok(Action::SyncInvoice(InvoiceId::parse("in_1").unwrap()))
            );
        }
        assert_eq!(
            decide(&event("checkout.session.expired", r#"{"id":"cs_2"}"#)),
            Ok(Action::CheckoutExpired("cs_2".to_owned()))
        );
        assert_eq!(
            decide(&event("checkout.session.completed", r#"{"id":"cs_1"}"#)),
            Ok(Action::CompleteCheckout("cs_1".to_owned()))
        );
        for kind in ["customer.updated", "customer.deleted"] {
            assert_eq!(
                decide(&event(kind, r#"{"id":"cus_1"}"#)),
                Ok(Action::SyncCustomer(CustomerId::parse("cus_1").unwrap()))
            );
        }
        assert_eq!(
            decide(&event(
                "payment_method.automatically_updated",
                r#"{"id":"pm_1","customer":"cus_2"}"#
            )),
            Ok(Action::SyncCustomer(CustomerId::parse("cus_2").unwrap()))
        );
        assert_eq!(
            decide(&event(
                "payment_method.attached",
                r#"{"id":"pm_1","customer":"cus_2"}"#
            )),
            Ok(Action::SyncCustomer(CustomerId::parse("cus_2").unwrap()))
        );
        assert_eq!(
            decide(&event("charge.succeeded", r#"{"id":"ch_1"}"#)),
            Ok(Action::Ignore)
        );
    }

    #[test]
    fn schedule_events_resync_the_subscription_they_manage() {
        for (kind, object) in [
            (
                "subscription_schedule.updated",
                r#"{"id":"sub_sched_1","object":"subscription_schedule","customer":"cus_1","subscription":"sub_1"}"#,
            ),
            (
                "subscription_schedule.released",
                r#"{"id":"sub_sched_1","object":"subscription_schedule","customer":"cus_1","subscription":null,"released_subscription":"sub_1"}"#,
            ),
        ] {
            assert_eq!(
                decide(&event(kind, object)),
                Ok(Action::SyncSubscription(
                    SubscriptionId::parse("sub_1").unwrap()
                )),
                "{kind}"
            );
        }
        assert_eq!(
            decide(&event(
                "subscription_schedule.canceled",
                r#"{"id":"sub_sched_2","subscription":null}"#
            )),
            Ok(Action::Ignore)
        );
    }

    #[test]
    fn detached_methods_resync_the_previous_customer() {
        let e: StripeEvent = serde_json::from_str(
            r#"{"id":"evt_1","type":"payment_method.detached","livemode":false,
            "data":{"object":{"id":"pm_1","customer":null},"previous_attributes":{"customer":"cus_9"}}}"#,
        )
        .unwrap();
        assert_eq!(
            decide(&e),
            Ok(Action::SyncCustomer(CustomerId::parse("cus_9").unwrap()))
        );
    }

    #[test]
    fn ids_that_could_forge_keys_are_refused() {
        assert!(decide(&event("customer.subscription.updated", r#"{"id":"sub#x"}"#)).is_err());
    }
}
