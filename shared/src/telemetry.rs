//! JSON logs to stdout (CloudWatch). Nothing logged by this crate carries secrets, card data or
//! personal data: only ids, types and outcomes.
//!
//! The level comes from Lambda's own setting first: `AWS_LAMBDA_LOG_LEVEL`, which Lambda sets
//! from the function's `LoggingConfig.ApplicationLogLevel` (template parameter `LogLevel`, also
//! changeable in the console without a deploy; `sam local` sets it too). `RUST_LOG` adds
//! per-target directives on top (`aws_smithy_runtime=debug`), and sets the base level itself
//! only where Lambda's setting is absent (`cargo lambda watch`, tests). Neither: `info`.
//!
//! Lambda filters the lines again with that same setting, reading each line's `level` and
//! `timestamp` keys: a line without a valid level, or without an RFC 3339 timestamp, counts as
//! INFO, and so vanishes at WARN and above. So every line printed here carries both: tracing's
//! (`{"timestamp":"...Z","level":"WARN",...}`), the EMF metric lines ([`METRICS_LEVEL`]), the
//! reconciliation report ([`print_json`]) and a panic's message (the hook [`init`] installs).

use std::io::Write;

use serde_json::{Map, Value};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The level of the EMF metric lines: FATAL, the one level no application log level filters
/// out, so every alarm keeps its data whatever LogLevel is set (in the template or the
/// console). Nothing else in this code logs at FATAL (tracing has no such level), so a search
/// for ERROR or FATAL lines that are not metrics stays exact: metric lines carry `_aws`.
pub const METRICS_LEVEL: &str = "FATAL";

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

/// The functions' subscriber: one JSON object per line with an RFC 3339 `timestamp` and a
/// `level`, written to `writer` (stdout in Lambda).
fn subscriber<W>(
    aws_lambda_log_level: Option<&str>,
    rust_log: Option<&str>,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_max_level(LevelFilter::TRACE)
        .with_current_span(false)
        .with_target(false)
        // The default timer: UTC, `2026-12-01T10:00:00.123456Z`, which Lambda's filter needs.
        .with_timer(tracing_subscriber::fmt::time::SystemTime)
        .with_writer(writer)
        .finish()
        .with(filter(aws_lambda_log_level, rust_log))
}

pub fn init() {
    let level = crate::config::optional("AWS_LAMBDA_LOG_LEVEL");
    let rust_log = crate::config::optional("RUST_LOG");
    let _ = subscriber(level.as_deref(), rust_log.as_deref(), std::io::stdout).try_init();
    // The default hook prints plain text, which Lambda's filter takes as INFO.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        print_json("ERROR", panic_fields(&message, location.as_deref()));
    }));
}

fn panic_fields(message: &str, location: Option<&str>) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(
        "message".to_owned(),
        Value::from(format!("panic: {message}")),
    );
    if let Some(location) = location {
        fields.insert("location".to_owned(), Value::from(location));
    }
    fields
}

/// What the functions' subscriber prints for the events `f` logs, with Lambda's log level
/// `aws_lambda_log_level`: for tests that hold the lines to Lambda's filter.
pub fn lines_logged(aws_lambda_log_level: Option<&str>, f: impl FnOnce()) -> Vec<String> {
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let sink = buffer.clone();
    tracing::subscriber::with_default(
        subscriber(aws_lambda_log_level, None, move || sink.clone()),
        f,
    );
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `fields` as one JSON log line with Lambda's `timestamp` (RFC 3339, from `unix_ms`) and
/// `level` keys (these two win over fields of the same names).
pub fn json_line(level: &str, unix_ms: i64, mut fields: Map<String, Value>) -> String {
    fields.insert("timestamp".to_owned(), Value::from(rfc3339(unix_ms)));
    fields.insert("level".to_owned(), Value::from(level));
    Value::Object(fields).to_string()
}

/// Prints `fields` as one log line at `level`, now (a line that is not a tracing event: the
/// reconciliation report).
pub fn print_json(level: &str, fields: Map<String, Value>) {
    let now = crate::domain::FetchTime::now().micros() / 1_000;
    println!("{}", json_line(level, now, fields));
}

/// An RFC 3339 UTC timestamp with milliseconds (`2023-11-14T22:13:20.000Z`).
pub fn rfc3339(unix_ms: i64) -> String {
    let (days, ms) = (
        unix_ms.div_euclid(86_400_000),
        unix_ms.rem_euclid(86_400_000),
    );
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, frac) = (
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{frac:03}Z")
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

    #[test]
    fn rfc3339_formats_utc_dates_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn tracing_lines_carry_a_timestamp_and_their_level() {
        let lines = lines_logged(Some("TRACE"), || {
            tracing::warn!(reason = "x", "refused");
            tracing::error!("failed");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        for (line, level) in lines.iter().zip(["WARN", "ERROR"]) {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["level"], level, "{line}");
            let ts = v["timestamp"].as_str().unwrap();
            // Today, in UTC, as rfc3339 writes it (the date part).
            let today = rfc3339(crate::domain::FetchTime::now().micros() / 1_000);
            assert_eq!(&ts[..10], &today[..10], "{line}");
            assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        }
        // The subscriber still filters by Lambda's level itself.
        assert!(lines_logged(Some("ERROR"), || tracing::warn!("no")).is_empty());
    }

    #[test]
    fn json_lines_and_panics_carry_a_timestamp_and_a_level() {
        let line = json_line(
            "INFO",
            1_700_000_000_000,
            panic_fields("boom", Some("a.rs:1")),
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["message"], "panic: boom");
        assert_eq!(v["location"], "a.rs:1");
    }
}
