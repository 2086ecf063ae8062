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

    /// The same time of day `months` calendar months later (UTC), the day clamped to the
    /// month's last, as Stripe advances a billing period from its anchor.
    pub fn plus_months(self, months: i64) -> Self {
        let days = self.0.div_euclid(86_400);
        let second_of_day = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let index = year * 12 + (month as i64 - 1) + months;
        let (year, month) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
        let day = day.min(days_in_month(year, month));
        Self(days_from_civil(year, month, day) * 86_400 + second_of_day)
    }
}

impl Timestamp {
    /// The UTC calendar date, `YYYY-MM-DD`, for messages to a person.
    pub fn date_text(self) -> String {
        let (year, month, day) = civil_from_days(self.0.div_euclid(86_400));
        format!("{year:04}-{month:02}-{day:02}")
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms (proleptic Gregorian, days since 1970-01-01).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

#[cfg(test)]
mod calendar_tests {
    use super::Timestamp;

    #[test]
    fn months_advance_by_the_calendar_and_clamp_to_the_last_day() {
        // 2026-12-01T10:00:00Z = 1796119200 (computed independently: 20788 days * 86400 + 36000).
        let dec1 = Timestamp::from_unix(1_796_119_200);
        assert_eq!(dec1.plus_months(1).unix(), 1_796_119_200 + 31 * 86_400);
        assert_eq!(dec1.plus_months(12).unix(), 1_796_119_200 + 365 * 86_400);
        // 2027-01-31T00:00:00Z + 1 month = 2027-02-28T00:00:00Z (28 days later).
        let jan31 = Timestamp::from_unix(1_801_353_600);
        assert_eq!(jan31.plus_months(1).unix(), 1_801_353_600 + 28 * 86_400);
        // 2028-01-31 + 1 month = 2028-02-29 (leap year): 29 days.
        let jan31_2028 = Timestamp::from_unix(1_832_889_600);
        assert_eq!(
            jan31_2028.plus_months(1).unix(),
            1_832_889_600 + 29 * 86_400
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_told_in_utc() {
        assert_eq!(Timestamp::from_unix(0).date_text(), "1970-01-01");
        // 2026-12-01T10:00:00Z
        assert_eq!(
            Timestamp::from_unix(1_796_119_200).date_text(),
            "2026-12-01"
        );
        assert_eq!(Timestamp::from_unix(951_782_400).date_text(), "2000-02-29");
    }
}
