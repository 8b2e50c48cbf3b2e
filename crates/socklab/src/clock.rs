//! Wall-clock time as socklab stores and shows it: Unix milliseconds in the database and
//! in JSON (`*_ms`), RFC 3339 UTC with milliseconds for people (`2026-11-26T19:00:00.123Z`).

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;

/// The current time in Unix milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Formats Unix milliseconds as RFC 3339 UTC with exactly three fractional digits.
/// Out-of-range values (beyond year 9999) are clamped to the epoch instead of failing,
/// since a display string must always exist.
pub fn format_ms(ms: i64) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_string())
}

/// Formats Unix milliseconds as a short `HH:MM:SS.mmmZ` for the console: UTC, and the
/// `Z` says so (the dashboard shows the same by default).
pub fn format_clock(ms: i64) -> String {
    let full = format_ms(ms);
    full.get(11..24).unwrap_or(&full).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds survive formatting and the format is the contract's.
    #[test]
    fn formats_rfc3339_millis() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(format_clock(1_795_000_000_123), "11:06:40.123Z");
    }
}
