//! `scripts/local-stack` (or `cargo run -p pss-local --bin local-stack`): moto, localstripe and
//! the fixture Stripe on loopback, the table, the catalog, the webhook, and every route of
//! template.yaml at http://127.0.0.1:3000 behind the real authorizer. Ctrl-C stops it all.
//!
//! Ports: PSS_PORT (3000), PSS_FRONTEND_PORT (5173; 0 for a free one), PSS_MOTO_PORT, PSS_LOCALSTRIPE_PORT, PSS_STRIPE_PORT (free ports).

use pss_local::emulators::{free_port, start_fake_stripe, start_localstripe, start_moto};
use pss_local::frontend;
use pss_local::stack::{self, DEMO_ORG, StackConfig, WEBHOOK_SECRET};

fn port(name: &str, default: impl FnOnce() -> u16) -> u16 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(default)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    billing::telemetry::init();
    let gateway_port = port("PSS_PORT", || 3000);
    // The frontend's origin goes into the allowed origins, so pick its port first.
    let frontend_port = match port("PSS_FRONTEND_PORT", || 5173) {
        0 => free_port(),
        p => p,
    };
    let moto = start_moto(port("PSS_MOTO_PORT", free_port));
    let localstripe = start_localstripe(port("PSS_LOCALSTRIPE_PORT", free_port));
    let stripe = start_fake_stripe(port("PSS_STRIPE_PORT", free_port), Some(&localstripe.url));
    let config = StackConfig {
        port: gateway_port,
        dynamodb_url: moto.url.clone(),
        stripe_url: stripe.url.clone(),
        localstripe_url: localstripe.url.clone(),
        table: "pss-billing-local".to_owned(),
        cache_seconds: 1,
        frontend_origins: vec![
            format!("http://127.0.0.1:{frontend_port}"),
            format!("http://localhost:{frontend_port}"),
        ],
    };
    let stack = match stack::start(config).await {
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
         \n  Stripe webhook               {base}/webhooks/stripe  (secret {WEBHOOK_SECRET})\
         \n  DynamoDB (moto)              {}  table pss-billing-local\
         \n  Stripe API for the functions {}  (checkout, portal, prices; the rest forwards to localstripe)\
         \n  localstripe                  {}\
         \n\n  Owner token ({DEMO_ORG}):\n    {}\
         \n  Member token ({DEMO_ORG}):\n    {}\
         \n\n  try: curl -H \"Authorization: Bearer $OWNER\" {base}/api/billing/subscription\
         \n\nCtrl-C stops everything.\n",
        moto.url, stripe.url, localstripe.url, stack.owner_token, stack.member_token
    );
    let _ = tokio::signal::ctrl_c().await;
    println!("local-stack: stopping");
    // Dropping the emulators closes their supervisors' stdin: they stop the servers.
    std::process::ExitCode::SUCCESS
}
