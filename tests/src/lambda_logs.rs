//! Lambda's application log-level filter for JSON logs, as AWS documents it ("Log-level
//! filtering", Lambda developer guide): a line's level is its `level` key (TRACE, DEBUG, INFO,
//! WARN, ERROR, FATAL, any case); a line whose level is missing or invalid is INFO; a line
//! without a valid RFC 3339 `timestamp` is INFO too (Lambda adds a timestamp of its own);
//! anything that is not a JSON object is INFO. At ApplicationLogLevel L, Lambda sends the lines
//! of level L and above (less detailed) and drops the rest. Nothing here is kinder: a level
//! spelt otherwise (`WARNING`) or a timestamp without a zone is INFO.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

/// Every value of ApplicationLogLevel (the template's `LogLevel`), most detailed first.
pub const LEVELS: [Level; 6] = [
    Level::Trace,
    Level::Debug,
    Level::Info,
    Level::Warn,
    Level::Error,
    Level::Fatal,
];

impl Level {
    pub fn parse(name: &str) -> Option<Level> {
        Some(match name.to_ascii_uppercase().as_str() {
            "TRACE" => Level::Trace,
            "DEBUG" => Level::Debug,
            "INFO" => Level::Info,
            "WARN" => Level::Warn,
            "ERROR" => Level::Error,
            "FATAL" => Level::Fatal,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }
}

/// The level Lambda assigns to one line of output.
pub fn level_of(line: &str) -> Level {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(line) else {
        return Level::Info;
    };
    let valid_time = object
        .get("timestamp")
        .and_then(Value::as_str)
        .is_some_and(is_rfc3339);
    match object
        .get("level")
        .and_then(Value::as_str)
        .and_then(Level::parse)
    {
        Some(level) if valid_time => level,
        _ => Level::Info,
    }
}

/// Whether Lambda sends the line to CloudWatch Logs at ApplicationLogLevel `setting`.
pub fn sent(line: &str, setting: Level) -> bool {
    level_of(line) >= setting
}

/// The level a line says it has (its `level` key), whatever Lambda makes of it.
pub fn declared(line: &str) -> Option<Level> {
    serde_json::from_str::<Value>(line)
        .ok()?
        .get("level")?
        .as_str()
        .and_then(Level::parse)
}

/// An RFC 3339 date-time: `2024-11-02T16:51:31.587199Z`, `...+02:00`; the date and time must
/// exist (no month 13, no February 30, no hour 24).
pub fn is_rfc3339(text: &str) -> bool {
    let re = regex_lite::Regex::new(
        r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$",
    )
    .unwrap();
    let Some(c) = re.captures(text) else {
        return false;
    };
    let n = |i: usize| c.get(i).map_or(0, |m| m.as_str().parse::<u32>().unwrap());
    let (year, month, day) = (n(1), n(2), n(3));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day) && n(4) <= 23 && n(5) <= 59 && n(6) <= 60 && n(9) <= 23 && n(10) <= 59
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_and_each_fallback_to_info() {
        let doc = r#"{"level": "debug", "msg": "my debug log", "timestamp": "2024-11-02T16:51:31.587199Z"}"#;
        assert_eq!(level_of(doc), Level::Debug);
        let cases = [
            r#"{"msg": "no level", "timestamp": "2024-11-02T16:51:31Z"}"#,
            r#"{"level": "WARNING", "timestamp": "2024-11-02T16:51:31Z"}"#,
            r#"{"level": "ERROR"}"#,
            r#"{"level": "ERROR", "timestamp": 1730566291000}"#,
            r#"{"level": "ERROR", "timestamp": "2024-11-02 16:51:31"}"#,
            r#"{"level": "ERROR", "timestamp": "2024-02-30T16:51:31Z"}"#,
            "Error: plain text",
            r#"["ERROR"]"#,
        ];
        for line in cases {
            assert_eq!(level_of(line), Level::Info, "{line}");
        }
        let ok = r#"{"level": "Error", "timestamp": "2024-02-29T23:59:60.1+05:30"}"#;
        assert_eq!(level_of(ok), Level::Error);
        assert!(sent(ok, Level::Error) && !sent(ok, Level::Fatal));
        assert!(!sent(doc, Level::Info) && sent(doc, Level::Trace));
    }
}
