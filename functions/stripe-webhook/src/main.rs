//! Stripe webhook Lambda, behind a Function URL. Everything but the wiring lives in
//! `billing::webhook`.

use billing::config::{self, Secret};
use billing::sync::Syncer;
use billing::webhook::{self, WebhookConfig, WebhookHandler};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing::telemetry::init();
    let aws = config::aws().await;
    // Both secrets in one SSM round trip.
    let secrets = config::load_secrets(
        &aws,
        &[Secret::STRIPE_SECRET_KEY, Secret::STRIPE_WEBHOOK_SECRETS],
    )
    .await?;
    let syncer = Syncer::from_env(&aws, &secrets)?;
    let config = WebhookConfig::from_env(syncer.stripe.livemode(), &secrets)?;
    let handler = WebhookHandler::new(syncer, config);
    billing::runtime::serve(&handler, |handler, request| {
        Box::pin(webhook::handle(handler, request))
    })
    .await
}
