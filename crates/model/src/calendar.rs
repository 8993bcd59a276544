//! Working-day calendars, for deadlines counted in working days (a suspicious-transaction
//! report is due within 5 working days of the decision, PBOC Order 2016 No. 3 as amended
//! in 2018): weekends are rest days and weekdays working days, except the public holidays
//! and the weekend days that are worked instead (调休) that a calendar file lists. The
//! mainland China calendar is shipped, one file per year (`crates/model/calendars/`);
//! years a calendar does not cover count weekends only.
//!
//! The file format is a few lines of text, parsed here rather than with a YAML or TOML
//! crate: `year Y`, `holiday FROM[..UNTIL]`, `workday DAY`, `#` comments.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// The shipped calendar files of mainland China.
const CHINA: &[&str] = &[include_str!("../calendars/CN-2026.txt")];

/// The local date in mainland China (Asia/Shanghai) of an instant: the day the shipped
/// calendar counts working days in.
pub fn china_date(ms: crate::time::Millis) -> NaiveDate {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
}

/// Today's date in mainland China: what deadlines are counted from.
pub fn china_today() -> NaiveDate {
    china_date(chrono::Utc::now().timestamp_millis())
}

/// The calendar files of one jurisdiction, merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkingCalendar {
    years: BTreeSet<i32>,
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
}

impl WorkingCalendar {
    /// Mainland China's public holidays and adjusted working days.
    pub fn china() -> &'static WorkingCalendar {
        static C: OnceLock<WorkingCalendar> = OnceLock::new();
        C.get_or_init(|| {
            let mut c = WorkingCalendar::default();
            for text in CHINA {
                c.add(text).expect("the shipped calendar files parse");
            }
            c
        })
    }

    /// Adds one calendar file; an error names the line.
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        let date = |s: &str, line: usize| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| format!("line {line}: {s:?} is not a date (YYYY-MM-DD)"))
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let (word, rest) = content
                .split_once(char::is_whitespace)
                .unwrap_or((content, ""));
            let rest = rest.trim();
            match word {
                "year" => {
                    let y = rest
                        .parse()
                        .map_err(|_| format!("line {line}: {rest:?} is not a year"))?;
                    self.years.insert(y);
                }
                "holiday" => {
                    let (from, until) = rest.split_once("..").unwrap_or((rest, rest));
                    let (from, until) = (date(from.trim(), line)?, date(until.trim(), line)?);
                    if until < from {
                        return Err(format!("line {line}: {until} is before {from}"));
                    }
                    let mut d = from;
                    while d <= until {
                        self.holidays.insert(d);
                        d = d + Days::new(1);
                    }
                }
                "workday" => {
                    self.workdays.insert(date(rest, line)?);
                }
                other => {
                    return Err(format!(
                        "line {line}: unknown entry {other:?} (valid: year, holiday, workday)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the calendar lists the holidays of `year` (else only weekends rest).
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    /// The `n`-th working day after `start` (`start` itself does not count).
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> NaiveDate {
        let mut d = start;
        let mut left = n;
        while left > 0 {
            d = d + Days::new(1);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Working days after `from` up to and including `until` (negative when `until` is
    /// before `from`).
    pub fn working_days_between(&self, from: NaiveDate, until: NaiveDate) -> i64 {
        let (lo, hi, sign) = if until >= from {
            (from, until, 1)
        } else {
            (until, from, -1)
        };
        let mut d = lo;
        let mut n = 0;
        while d < hi {
            d = d + Days::new(1);
            if self.is_working_day(d) {
                n += 1;
            }
        }
        sign * n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn deadlines_skip_national_day_and_count_the_worked_saturday() {
        let cn = WorkingCalendar::china();
        assert!(cn.covers(2026));
        // Detected on Wednesday 30 September: 1 to 7 October are holidays, Saturday 10
        // October is worked (8, 9, 10, 12 to 16, 19, 20), so ten working days end on
        // Tuesday 20 October; weekends only would give 14 October.
        assert_eq!(
            cn.add_working_days(day("2026-09-30"), 10),
            day("2026-10-20")
        );
        assert!(cn.is_working_day(day("2026-10-10")));
        assert!(!cn.is_working_day(day("2026-10-05")));
        // Five working days for the report after a decision on Friday 13 February:
        // Saturday 14 is worked, the Spring Festival (15 to 23 February) is skipped.
        assert_eq!(cn.add_working_days(day("2026-02-13"), 5), day("2026-02-27"));
        // Without holidays: Monday + 5 working days is the next Monday.
        assert_eq!(cn.add_working_days(day("2026-03-02"), 5), day("2026-03-09"));
        assert_eq!(
            cn.working_days_between(day("2026-09-30"), day("2026-10-20")),
            10
        );
        assert_eq!(
            cn.working_days_between(day("2026-10-20"), day("2026-09-30")),
            -10
        );
    }

    #[test]
    fn a_bad_calendar_line_is_named() {
        let mut c = WorkingCalendar::default();
        let e = c.add("year 2027\nholiday 2027-13-01\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(
            c.add("vacation 2027-01-01")
                .unwrap_err()
                .contains("valid: year, holiday, workday")
        );
        assert!(c.add("holiday 2027-01-05..2027-01-01").is_err());
        // Uncovered years rest on weekends only.
        assert!(!WorkingCalendar::china().covers(2027));
        assert!(WorkingCalendar::china().is_working_day(day("2027-01-01")));
    }
}
