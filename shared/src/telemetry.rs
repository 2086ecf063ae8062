//! JSON logs to stdout (CloudWatch). Nothing logged by this crate carries secrets, card data or
//! personal data: only ids, types and outcomes.
//!
//! The level comes from Lambda's own setting first: `AWS_LAMBDA_LOG_LEVEL`, which Lambda sets
//! from the function's `LoggingConfig.ApplicationLogLevel` (template parameter `LogLevel`, also
//! changeable in the console without a deploy; `sam local` sets it too). `RUST_LOG` adds
//! per-target directives on top (`aws_smithy_runtime=debug`), and sets the base level itself
//! only where Lambda's setting is absent (`cargo lambda watch`, tests). Neither: `info`.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const DEFAULT_LEVEL: &str = "info";

/// Lambda's level names (`TRACE` ... `FATAL`) as a tracing level; `None` for anything else.
fn lambda_level(raw: &str) -> Option<&'static str> {
    match raw.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Some("trace"),
        "DEBUG" => Some("debug"),
        "INFO" => Some("info"),
        "WARN" | "WARNING" => Some("warn"),
        // tracing has no FATAL: ERROR is the closest that still shows fatal lines.
        "ERROR" | "FATAL" => Some("error"),
        _ => None,
    }
}

/// A `RUST_LOG` directive without a target (`debug`, `off`) sets the base level.
fn is_bare_level(directive: &str) -> bool {
    !directive.contains('=')
        && !directive.contains('[')
        && !directive.contains("::")
        && matches!(
            directive.trim().to_ascii_lowercase().as_str(),
            "trace" | "debug" | "info" | "warn" | "error" | "off"
        )
}

/// The filter directives for the two settings (pure, so it is unit-tested).
pub fn filter_directives(aws_lambda_log_level: Option<&str>, rust_log: Option<&str>) -> String {
    let rust_log: Vec<&str> = rust_log
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    match aws_lambda_log_level.and_then(lambda_level) {
        Some(base) => std::iter::once(base)
            .chain(rust_log.into_iter().filter(|d| !is_bare_level(d)))
            .collect::<Vec<_>>()
            .join(","),
        None if rust_log.is_empty() => DEFAULT_LEVEL.to_owned(),
        None => rust_log.join(","),
    }
}

/// `target=level` and bare-level directives, as `RUST_LOG` writes them. A `Targets` filter
/// rather than an `EnvFilter`: span and field directives (`[span{field}]`) are not supported,
/// and in exchange no regex engine is linked into every function (about 0.3 MiB each).
fn filter(aws_lambda_log_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let directives = filter_directives(aws_lambda_log_level, rust_log);
    // An invalid RUST_LOG must not stop a function from starting: keep what parses.
    let mut targets = Targets::new().with_default(LevelFilter::INFO);
    for directive in directives.split(',').map(str::trim) {
        let Ok(parsed) = directive.parse::<Targets>() else {
            continue;
        };
        for (target, level) in parsed.iter() {
            targets = targets.with_target(target, level);
        }
        if let Some(level) = parsed.default_level() {
            targets = targets.with_default(level);
        }
    }
    targets
}

pub fn init() {
    let level = crate::config::optional("AWS_LAMBDA_LOG_LEVEL");
    let rust_log = crate::config::optional("RUST_LOG");
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(LevelFilter::TRACE)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .finish()
        .with(filter(level.as_deref(), rust_log.as_deref()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most verbose level the filter lets through for any target.
    fn max(level: Option<&str>, rust_log: Option<&str>) -> Option<LevelFilter> {
        let targets = filter(level, rust_log);
        targets
            .iter()
            .map(|(_, level)| level)
            .chain(targets.default_level())
            .max()
    }

    #[test]
    fn lambda_log_level_sets_the_level() {
        assert_eq!(max(Some("DEBUG"), None), Some(LevelFilter::DEBUG));
        assert_eq!(max(Some("WARN"), None), Some(LevelFilter::WARN));
        assert_eq!(max(Some("ERROR"), None), Some(LevelFilter::ERROR));
        assert_eq!(max(Some("FATAL"), None), Some(LevelFilter::ERROR));
        assert_eq!(max(Some("trace"), None), Some(LevelFilter::TRACE));
    }

    #[test]
    fn lambda_log_level_wins_over_a_bare_rust_log_level() {
        // The template used to ship RUST_LOG=info: the console's level must still apply.
        assert_eq!(max(Some("DEBUG"), Some("info")), Some(LevelFilter::DEBUG));
        assert_eq!(max(Some("ERROR"), Some("debug")), Some(LevelFilter::ERROR));
        assert_eq!(filter_directives(Some("WARN"), Some("info")), "warn");
    }

    #[test]
    fn rust_log_targets_refine_lambda_log_level() {
        assert_eq!(
            filter_directives(Some("WARN"), Some("info,aws_smithy_runtime=debug")),
            "warn,aws_smithy_runtime=debug"
        );
        // The targeted directive raises the maximum level the subscriber may see.
        assert_eq!(
            max(Some("WARN"), Some("aws_smithy_runtime=debug")),
            Some(LevelFilter::DEBUG)
        );
    }

    #[test]
    fn rust_log_alone_still_works() {
        assert_eq!(max(None, Some("debug")), Some(LevelFilter::DEBUG));
        assert_eq!(
            max(None, Some("warn,billing=trace")),
            Some(LevelFilter::TRACE)
        );
        assert_eq!(
            filter_directives(None, Some("warn,billing=trace")),
            "warn,billing=trace"
        );
    }

    #[test]
    fn default_is_info_and_unknown_lambda_levels_are_ignored() {
        assert_eq!(max(None, None), Some(LevelFilter::INFO));
        assert_eq!(filter_directives(None, None), "info");
        // An unresolved or misspelt level falls back to RUST_LOG, then info; it never stops init.
        assert_eq!(max(Some("LOUD"), Some("warn")), Some(LevelFilter::WARN));
        assert_eq!(max(Some(""), None), Some(LevelFilter::INFO));
        // A RUST_LOG that does not parse falls back to info instead of silencing everything.
        assert_eq!(max(None, Some("[=")), Some(LevelFilter::INFO));
    }
}
