//! `scripts/local-stack` (or `cargo run -p pss-local --bin local-stack`): moto, localstripe and
//! the fixture Stripe on loopback, the table, the catalog, the webhook, and every route of
//! template.yaml at http://127.0.0.1:3000 behind the real authorizer. Ctrl-C stops it all.
//!
//! Ports: PSS_PORT (3000), PSS_MOTO_PORT (3001), PSS_STRIPE_PORT (3002), PSS_LOCALSTRIPE_PORT
//! (3003); env.local.json names the defaults; 0 picks a free port. The frontend:
//! PSS_FRONTEND_PORT (5173; 0 for a free one). What checkouts offer, as in AWS: TRIAL_DAYS
//! (14), CHECKOUT_AUTOMATIC_TAX and CHECKOUT_PROMOTION_CODES (true).
//!
//! Stripe test mode instead of the emulators: `STRIPE_SECRET_KEY=sk_test_...` and
//! `STRIPE_WEBHOOK_SECRETS=$(stripe listen --print-secret)`; live keys are refused.

use pss_local::emulators::{free_port, start_fake_stripe, start_localstripe, start_moto};
use pss_local::frontend;
use pss_local::stack::{
    self, DEFAULT_LOCALSTRIPE_PORT, DEFAULT_MOTO_PORT, DEFAULT_STRIPE_PORT, DEMO_ORG, StackConfig,
    StripeSetup, WEBHOOK_SECRET,
};
use pss_local::stripe_mode::StripeMode;

fn port(name: &str, default: u16) -> u16 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 0 asks for a free port (two stacks side by side, as the browser tests start them).
fn free_if_zero(port: u16) -> u16 {
    if port == 0 { free_port() } else { port }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    billing::telemetry::init();
    // Checked before anything starts: a live key never reaches a running stack.
    let mode = match StripeMode::from_env() {
        Ok(mode) => mode,
        Err(e) => {
            eprintln!("local-stack: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let gateway_port = port("PSS_PORT", 3000);
    // The frontend's origin goes into the allowed origins, so pick its port first.
    let frontend_port = match port("PSS_FRONTEND_PORT", 5173) {
        0 => free_port(),
        p => p,
    };
    let moto = start_moto(free_if_zero(port("PSS_MOTO_PORT", DEFAULT_MOTO_PORT)));
    let (emulators, setup, stripe_line, webhook_line) = match mode {
        StripeMode::Emulated => {
            let localstripe = start_localstripe(free_if_zero(port(
                "PSS_LOCALSTRIPE_PORT",
                DEFAULT_LOCALSTRIPE_PORT,
            )));
            let stripe = start_fake_stripe(
                free_if_zero(port("PSS_STRIPE_PORT", DEFAULT_STRIPE_PORT)),
                Some(&localstripe.url),
            );
            let lines = (
                format!(
                    "{}  (checkout, portal, prices; the rest forwards to localstripe {})",
                    stripe.url, localstripe.url
                ),
                format!("(secret {WEBHOOK_SECRET}, delivered by localstripe)"),
            );
            let setup = StripeSetup {
                secret_key: stack::STRIPE_KEY.to_owned(),
                api_base: Some(stripe.url.clone()),
                webhook_secrets: vec![WEBHOOK_SECRET.to_owned()],
                localstripe_url: Some(localstripe.url.clone()),
                account_id: Some(stack::EMULATED_ACCOUNT_ID.to_owned()),
            };
            (vec![localstripe, stripe], setup, lines.0, lines.1)
        }
        StripeMode::TestMode(keys) => {
            let setup = StripeSetup::test_mode(keys);
            let endpoint = setup
                .api_base
                .clone()
                .unwrap_or_else(|| "https://api.stripe.com".to_owned());
            (
                Vec::new(),
                setup,
                format!("{endpoint}  (Stripe TEST MODE, key from STRIPE_SECRET_KEY)"),
                "(secret from STRIPE_WEBHOOK_SECRETS; run `stripe listen --forward-to` it)"
                    .to_owned(),
            )
        }
    };
    let offer = match billing::api::checkout::CheckoutOffer::from_env() {
        Ok(offer) => offer,
        Err(e) => {
            eprintln!("local-stack: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let config = StackConfig {
        offer,
        port: gateway_port,
        dynamodb_url: moto.url.clone(),
        stripe_url: setup.api_base.clone().unwrap_or_default(),
        localstripe_url: setup.localstripe_url.clone().unwrap_or_default(),
        table: "pss-billing-local".to_owned(),
        cache_seconds: 1,
        frontend_origins: vec![
            format!("http://127.0.0.1:{frontend_port}"),
            format!("http://localhost:{frontend_port}"),
        ],
    };
    let stack = match stack::start_with(config, setup).await {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("local-stack: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let base = &stack.base_url;
    let dist = frontend::dist_dir();
    let frontend_url = match frontend::serve(frontend_port, dist.clone(), base.clone()).await {
        Ok(url) => url,
        Err(e) => {
            eprintln!("local-stack: cannot serve the frontend on {frontend_port}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if !dist.join("index.html").is_file() {
        eprintln!(
            "local-stack: {} has no build; run `npm ci && npm run build` in frontend/",
            dist.display()
        );
    }
    println!(
        "\npss-billing local stack\n\
         \n  Frontend                     {frontend_url}\
         \n  API (behind the authorizer)  {base}/api/billing/services\
         \n  Stripe webhook               {base}/webhooks/stripe  {webhook_line}\
         \n  DynamoDB (moto)              {}  table pss-billing-local\
         \n  Stripe API for the functions {stripe_line}\
         \n\n  Owner token ({DEMO_ORG}):\n    {}\
         \n  Member token ({DEMO_ORG}):\n    {}\
         \n\n  try: curl -H \"Authorization: Bearer $OWNER\" {base}/api/billing/subscription\
         \n\nCtrl-C stops everything.\n",
        moto.url, stack.owner_token, stack.member_token
    );
    let _ = tokio::signal::ctrl_c().await;
    println!("local-stack: stopping");
    // Dropping the emulators closes their supervisors' stdin: they stop the servers.
    drop(emulators);
    std::process::ExitCode::SUCCESS
}
