//! Stripe webhook Lambda, behind a Function URL. Everything but the wiring lives in
//! `billing::webhook`.

use billing::config;
use billing::domain::GracePolicy;
use billing::store::BillingStore;
use billing::stripe::StripeApi;
use billing::sync::Syncer;
use billing::webhook::{WebhookConfig, WebhookHandler};
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    let aws = config::aws().await;
    let stripe = StripeApi::from_env(&aws).await?;
    let webhook = WebhookConfig::from_env(stripe.livemode(), &aws).await?;
    let grace_days = config::parse_or("PAST_DUE_GRACE_DAYS", GracePolicy::DEFAULT_DAYS)?;
    let store = BillingStore::from_env(&aws)?;
    let handler = WebhookHandler::new(
        Syncer::new(store, stripe, GracePolicy::days(grace_days)),
        webhook,
    );
    let handler = &handler;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handler.handle(request).await)
    }))
    .await
}
