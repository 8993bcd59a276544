//! Time: UTC milliseconds since the Unix epoch, their RFC 3339 text, and the time zones
//! that local times are read and shown in ([`Zone`]).

use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, SecondsFormat,
    TimeZone, Timelike, Utc,
};

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

/// A time zone: a fixed UTC offset (`+08:00`) or an IANA zone (`Asia/Shanghai`), whose
/// offset may change with daylight saving time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

/// A local time that names no instant, or more than one, in its zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalTimeError {
    #[error(
        "{local} does not exist in {zone}: the clocks skipped it (daylight saving time begins)"
    )]
    Gap { local: NaiveDateTime, zone: Zone },
    #[error(
        "{local} happened twice in {zone} (daylight saving time ends): at {earlier} and at {later}; \
         the source must say which, with an offset"
    )]
    Overlap {
        local: NaiveDateTime,
        zone: Zone,
        earlier: String,
        later: String,
    },
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::UTC
    }
}

impl Zone {
    pub const UTC: Zone = Zone::Named(chrono_tz::Tz::UTC);

    /// `UTC`, `Z`, an offset (`+08:00`, `-0530`) or an IANA name (`Asia/Shanghai`).
    pub fn parse(text: &str) -> Result<Zone, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Ok(Zone::UTC);
        }
        if t.starts_with(['+', '-']) {
            return t
                .parse::<FixedOffset>()
                .map(Zone::Fixed)
                .map_err(|_| format!("time zone {text:?} is not an offset like +08:00"));
        }
        t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!(
                "time zone {text:?} is neither an IANA zone name (such as Asia/Shanghai or Europe/Berlin) nor an offset like +08:00"
            )
        })
    }

    /// The local date and time of `ts` in this zone (`ts` clamped to [`TS_RANGE`]).
    pub fn local(self, ts: Millis) -> NaiveDateTime {
        let utc = utc(ts);
        match self {
            Zone::Fixed(o) => utc.with_timezone(&o).naive_local(),
            Zone::Named(z) => utc.with_timezone(&z).naive_local(),
        }
    }

    /// The offset from UTC in force at `ts`.
    pub fn offset_at(self, ts: Millis) -> FixedOffset {
        let utc = utc(ts);
        match self {
            Zone::Fixed(o) => o,
            Zone::Named(z) => z.offset_from_utc_datetime(&utc.naive_utc()).fix(),
        }
    }

    /// The instant of a local time, or why it has none or several.
    pub fn instant(self, local: NaiveDateTime) -> Result<Millis, LocalTimeError> {
        let result = match self {
            Zone::Fixed(o) => o.from_local_datetime(&local).map(|t| t.fixed_offset()),
            Zone::Named(z) => z.from_local_datetime(&local).map(|t| t.fixed_offset()),
        };
        match result {
            LocalResult::Single(t) => Ok(t.timestamp_millis()),
            LocalResult::None => Err(LocalTimeError::Gap { local, zone: self }),
            LocalResult::Ambiguous(a, b) => Err(LocalTimeError::Overlap {
                local,
                zone: self,
                earlier: a.to_rfc3339(),
                later: b.to_rfc3339(),
            }),
        }
    }

    /// Local days since 1970-01-01 of `ts`.
    pub fn day_number(self, ts: Millis) -> i64 {
        i64::from(self.local(ts).date().num_days_from_ce()) - EPOCH_DAYS_FROM_CE
    }

    /// The first instant of local day `day` (days since 1970-01-01): its midnight, or the
    /// first instant after it where the clocks skipped midnight.
    pub fn day_start(self, day: i64) -> Millis {
        // Days well inside TS_RANGE (±92.5 million days) in every zone; beyond, saturate.
        const DAYS: i64 = 90_000_000;
        if day < -DAYS {
            return *TS_RANGE.start();
        }
        if day > DAYS {
            return *TS_RANGE.end();
        }
        let date = i32::try_from(day + EPOCH_DAYS_FROM_CE)
            .ok()
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .unwrap_or_default();
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        match self.instant(midnight) {
            Ok(t) => t,
            Err(LocalTimeError::Overlap { .. }) => match self {
                Zone::Fixed(o) => o.from_local_datetime(&midnight).earliest(),
                Zone::Named(z) => z
                    .from_local_datetime(&midnight)
                    .earliest()
                    .map(|t| t.fixed_offset()),
            }
            .map_or(0, |t| t.timestamp_millis()),
            // A gap at midnight: the day starts when the clocks resume (gaps are under a day).
            Err(LocalTimeError::Gap { .. }) => (1..=24 * 4)
                .find_map(|q| {
                    self.instant(midnight + chrono::Duration::minutes(15 * q))
                        .ok()
                })
                .unwrap_or_default(),
        }
    }

    /// Local hour (0–23), weekday (0 = Monday) and date (`2026-03-05`) of `ts`.
    pub fn hour(self, ts: Millis) -> i64 {
        i64::from(self.local(ts).hour())
    }

    /// The local date as the number yyyymmdd (20260305).
    pub fn date_number(self, ts: Millis) -> i64 {
        let d = self.local(ts).date();
        i64::from(d.year()) * 10_000 + i64::from(d.month() * 100 + d.day())
    }

    pub fn weekday(self, ts: Millis) -> i64 {
        i64::from(self.local(ts).weekday().num_days_from_monday())
    }

    /// `ts` as RFC 3339 in this zone, with its offset (`2026-03-05T14:22:10+08:00`).
    pub fn format(self, ts: Millis) -> String {
        match DateTime::<Utc>::from_timestamp_millis(ts) {
            Some(t) => t
                .with_timezone(&self.offset_at(ts))
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            None => ts.to_string(),
        }
    }
}

/// The instants local times are computed for: about ±250,000 years, inside what chrono
/// represents in every zone. Times outside are clamped (ingest refuses them long before).
pub const TS_RANGE: std::ops::RangeInclusive<Millis> =
    -8_000_000_000_000_000..=8_000_000_000_000_000;

fn utc(ts: Millis) -> DateTime<Utc> {
    let ts = ts.clamp(*TS_RANGE.start(), *TS_RANGE.end());
    DateTime::<Utc>::from_timestamp_millis(ts).expect("TS_RANGE is representable")
}

/// Days from 0001-01-01 (day 1) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Fixed(o) => write!(f, "{o}"),
            Zone::Named(z) => f.write_str(z.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_read_offsets_and_iana_names_and_refuse_others() {
        assert_eq!(Zone::parse("+08:00").unwrap().to_string(), "+08:00");
        assert_eq!(
            Zone::parse("Asia/Shanghai").unwrap().to_string(),
            "Asia/Shanghai"
        );
        assert_eq!(Zone::parse("utc").unwrap(), Zone::UTC);
        let err = Zone::parse("Beijing").unwrap_err();
        assert!(err.contains("IANA"), "{err}");
    }

    #[test]
    fn daylight_saving_gaps_and_overlaps_are_reported_not_guessed() {
        let ny = Zone::parse("America/New_York").unwrap();
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        let gap = ny.instant(at("2026-03-08 02:30")).unwrap_err();
        assert!(gap.to_string().contains("does not exist"), "{gap}");
        let overlap = ny.instant(at("2026-11-01 01:30")).unwrap_err();
        assert!(
            overlap.to_string().contains("-04:00") && overlap.to_string().contains("-05:00"),
            "{overlap}"
        );
        assert_eq!(
            ny.instant(at("2026-03-08 03:30")).unwrap(),
            parse_rfc3339("2026-03-08T07:30:00Z").unwrap()
        );
    }

    #[test]
    fn days_whose_midnight_the_clocks_skip_or_repeat_start_at_their_first_instant() {
        // Havana moves its clocks at midnight: forward on 8 March 2026, back on 1 November.
        let havana = Zone::parse("America/Havana").unwrap();
        let day = |s: &str| havana.day_number(parse_rfc3339(s).unwrap());
        let spring = day("2026-03-08T12:00:00Z");
        assert_eq!(
            havana.day_start(spring),
            parse_rfc3339("2026-03-08T05:00:00Z").unwrap()
        );
        let autumn = day("2026-11-01T12:00:00Z");
        assert_eq!(
            havana.day_start(autumn),
            parse_rfc3339("2026-11-01T04:00:00Z").unwrap()
        );
        assert!(havana.day_start(spring) < havana.day_start(spring + 1));
    }

    #[test]
    fn extreme_instants_keep_days_in_order() {
        let z = Zone::parse("Asia/Shanghai").unwrap();
        for ts in [
            i64::MIN,
            -9_000_000_000_000_000,
            0,
            9_000_000_000_000_000,
            i64::MAX,
        ] {
            let d = z.day_number(ts);
            assert!(z.day_start(d) <= z.day_start(d + 1), "{ts}");
        }
        assert!(z.day_number(i64::MIN) < z.day_number(0));
        assert!(z.day_number(i64::MAX) > z.day_number(0));
        assert_eq!(
            Zone::UTC.hour(parse_rfc3339("2026-03-05T23:10:00Z").unwrap()),
            23
        );
    }

    #[test]
    fn local_days_start_at_local_midnight_across_a_daylight_saving_change() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let sunday = berlin.day_number(parse_rfc3339("2026-03-29T12:00:00Z").unwrap());
        assert_eq!(
            berlin.day_start(sunday),
            parse_rfc3339("2026-03-28T23:00:00Z").unwrap()
        );
        assert_eq!(
            berlin.day_start(sunday + 1),
            parse_rfc3339("2026-03-29T22:00:00Z").unwrap()
        );
        let shanghai = Zone::parse("Asia/Shanghai").unwrap();
        let t = parse_rfc3339("2026-03-04T17:30:00Z").unwrap();
        assert_eq!((shanghai.hour(t), shanghai.weekday(t)), (1, 3));
        assert_eq!(shanghai.date_number(t), 20260305);
        assert_eq!(shanghai.format(t), "2026-03-05T01:30:00+08:00");
        assert_eq!(
            shanghai.day_start(shanghai.day_number(t)),
            parse_rfc3339("2026-03-04T16:00:00Z").unwrap()
        );
    }

    #[test]
    fn timestamps_round_trip_as_rfc3339_utc() {
        let t = parse_rfc3339("2026-01-05T09:31:07+08:00").unwrap();
        assert_eq!(format_ts(t), "2026-01-05T01:31:07Z");
    }
}
