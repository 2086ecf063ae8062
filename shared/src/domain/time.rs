use std::fmt;

use serde::{Deserialize, Serialize};

/// A point in time, as whole seconds since the Unix epoch (UTC), the resolution Stripe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix(seconds: i64) -> Self {
        Self(seconds)
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        Self(FetchTime::now().0 / 1_000_000)
    }

    pub const fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// When a copy of a Stripe object was requested, in microseconds since the epoch.
///
/// Taken *before* the request is sent: a sync that started after Stripe's last change is then
/// guaranteed to carry a larger value than any sync that could have read an older state, so
/// "newest fetch wins" converges on Stripe's final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FetchTime(i64);

impl FetchTime {
    pub fn now() -> Self {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self(micros)
    }

    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub const fn as_timestamp(self) -> Timestamp {
        Timestamp(self.0 / 1_000_000)
    }
}
