/// JSON logs to stdout (CloudWatch), level from `RUST_LOG` (default `info`). Nothing logged by
/// this crate carries secrets, card data or personal data: only ids, types and outcomes.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}
