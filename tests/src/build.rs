//! Builders for domain records used across tests.

use billing::domain::*;

pub fn org(name: &str) -> OrgId {
    OrgId::parse(crate::unique(name)).expect("valid org id")
}

pub fn subscription(
    id: &str,
    customer: &str,
    status: SubscriptionStatus,
    modules: &[ServiceModule],
) -> Subscription {
    Subscription {
        id: SubscriptionId::parse(id).unwrap(),
        customer_id: CustomerId::parse(customer).unwrap(),
        status,
        current_period_start: Some(Timestamp::now()),
        current_period_end: Some(Timestamp::now().plus_seconds(30 * 86_400)),
        cancel_at_period_end: false,
        cancel_at: None,
        canceled_at: None,
        ended_at: None,
        trial_end: None,
        created: Some(Timestamp::now()),
        items: modules
            .iter()
            .enumerate()
            .map(|(i, m)| SubscriptionItem {
                id: format!("si_{id}_{i}"),
                price_id: format!("price_{m}"),
                lookup_key: None,
                module: Some(*m),
                interval: Some(BillingInterval::Month),
                quantity: 1,
                unit_amount: Some(100),
                currency: Some(Currency::Usd),
                product_id: None,
                ends_at: None,
            })
            .collect(),
        default_payment_method: None,
        past_due_since: None,
        ended_unseen: false,
        trial_end_notice: None,
        schedule_id: None,
        open_invoice: None,
    }
}

pub fn invoice(id: &str, customer: &str, created: i64) -> Invoice {
    Invoice {
        id: InvoiceId::parse(id).unwrap(),
        customer_id: CustomerId::parse(customer).unwrap(),
        subscription_id: None,
        number: Some(format!("NUM-{created}")),
        status: Some(InvoiceStatus::Paid),
        amount_due: 9_900,
        amount_paid: 9_900,
        amount_remaining: 0,
        currency: "usd".to_owned(),
        created: Timestamp::from_unix(created),
        due_date: None,
        paid_at: Some(Timestamp::from_unix(created + 5)),
        hosted_invoice_url: Some(format!("https://invoice.stripe.test/{id}")),
        invoice_pdf: Some(format!("https://invoice.stripe.test/{id}.pdf")),
        attempt_count: 1,
        subtotal: Some(9900),
        tax: Some(0),
        discount: Some(0),
        total: Some(9900),
    }
}
