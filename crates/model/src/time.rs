//! Time: UTC milliseconds since the Unix epoch, and their RFC 3339 text.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// UTC milliseconds since the Unix epoch.
pub type Millis = i64;

/// Renders a timestamp as RFC 3339 UTC (`2026-01-05T09:31:07Z`, milliseconds only when present).
pub fn format_ts(ts: Millis) -> String {
    match Utc.timestamp_millis_opt(ts).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => ts.to_string(),
    }
}

/// Parses an RFC 3339 timestamp into UTC milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_as_rfc3339_utc() {
        let t = parse_rfc3339("2026-01-05T09:31:07+08:00").unwrap();
        assert_eq!(format_ts(t), "2026-01-05T01:31:07Z");
    }
}
