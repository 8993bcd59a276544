//! Cases per entity: every alert on one account or merchant folds into that subject's
//! case, so the queue shows one row per entity however many rules and windows fired on
//! it. A new alert on a subject joins its case; nothing needs to be stored for that,
//! because a case is the subject's alerts under the queue's filter (by default the open
//! ones: new, in review or escalated). A case is acted on by acting on its alerts, in one
//! transaction.
//!
//! A case's figures, each from its alerts:
//! - status: the furthest open status of its alerts (escalated, in review, new), or, when
//!   none is open, reported, closed or dismissed in that order;
//! - score: the entity risk of its alerts ([`crate::triage`]);
//! - deadline: the most urgent deadline of its alerts that is not done, otherwise the
//!   latest ([`crate::case::deadline`]);
//! - opened: the day its first alert was detected.

use std::collections::BTreeMap;

use chrono::{Datelike as _, NaiveDate};
use serde::Serialize;

use crate::alert::{Subject, Window};
use crate::calendar::{WorkingCalendar, china_date};
use crate::case::{Deadline, Sla, Status, deadline};
use crate::time::Millis;
use crate::triage::entity_score;

/// What a case reads of one alert: no evidence, no metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseHit {
    pub alert_id: String,
    /// The alert's case version, which a change must name.
    pub version: i64,
    pub subject: Subject,
    pub rule_id: String,
    pub score: u32,
    pub status: Status,
    pub assignee: Option<String>,
    /// When the alert was stored (detected).
    pub detected: Millis,
    /// When its escalation was approved, if it was.
    pub escalated: Option<Millis>,
    pub window: Window,
}

/// One alert of a case, with the version a change must name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseAlert {
    pub id: String,
    pub version: i64,
    pub rule_id: String,
    pub score: u32,
    pub status: Status,
    /// The alert's best window.
    pub window: Window,
}

/// A subject's alerts, folded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    pub subject: Subject,
    pub status: Status,
    /// The distinct assignees of its alerts, sorted.
    pub assignees: Vec<String>,
    /// Highest score first, then by id.
    pub alerts: Vec<CaseAlert>,
    /// The distinct rules, sorted.
    pub rules: Vec<String>,
    /// Entity risk, 0 to 100.
    pub score: u32,
    /// The local date (mainland China) its first alert was detected.
    pub opened: NaiveDate,
    /// From the start of its earliest window to the end of its latest.
    pub span: Window,
    pub deadline: Deadline,
}

/// The order of a case list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseSort {
    /// Highest entity risk first (the default).
    #[default]
    Risk,
    /// Earliest deadline first.
    Due,
    /// Opened longest ago first.
    Oldest,
    /// Most alerts first.
    Alerts,
}

impl CaseSort {
    pub const ALL: [CaseSort; 4] = [
        CaseSort::Risk,
        CaseSort::Due,
        CaseSort::Oldest,
        CaseSort::Alerts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseSort::Risk => "risk",
            CaseSort::Due => "due",
            CaseSort::Oldest => "oldest",
            CaseSort::Alerts => "alerts",
        }
    }
}

impl std::str::FromStr for CaseSort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CaseSort::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown case sort {s:?} (valid: risk, due, oldest, alerts)"))
    }
}

/// How far along a status is, for the case's own status: open work outranks closed work.
fn status_rank(s: Status) -> u8 {
    match s {
        Status::Escalated => 5,
        Status::InReview => 4,
        Status::New => 3,
        Status::Reported => 2,
        Status::Closed => 1,
        Status::Dismissed => 0,
    }
}

/// Folds `hits` into one case per subject, in `sort` order. Deadlines are counted on
/// `calendar` as of `today`, with `review_days` to decide.
pub fn fold_cases(
    hits: &[CaseHit],
    today: NaiveDate,
    calendar: &WorkingCalendar,
    review_days: u32,
    sort: CaseSort,
) -> Vec<Case> {
    let mut by_subject: BTreeMap<&Subject, Vec<&CaseHit>> = BTreeMap::new();
    for h in hits {
        by_subject.entry(&h.subject).or_default().push(h);
    }
    let mut cases: Vec<Case> = by_subject
        .into_iter()
        .map(|(subject, hits)| {
            let deadlines = hits.iter().map(|h| {
                deadline(
                    h.status,
                    china_date(h.detected),
                    h.escalated.map(china_date),
                    today,
                    calendar,
                    review_days,
                )
            });
            // Most urgent open deadline; when all are done, the latest.
            let deadline = deadlines
                .min_by_key(|d| {
                    let done = d.sla == Sla::Done;
                    (done, if done { -days(d.due) } else { days(d.due) })
                })
                .expect("a case has an alert");
            let mut alerts: Vec<CaseAlert> = hits
                .iter()
                .map(|h| CaseAlert {
                    id: h.alert_id.clone(),
                    version: h.version,
                    rule_id: h.rule_id.clone(),
                    score: h.score,
                    status: h.status,
                    window: h.window,
                })
                .collect();
            alerts.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
            let mut rules: Vec<String> = hits.iter().map(|h| h.rule_id.clone()).collect();
            rules.sort();
            rules.dedup();
            let mut assignees: Vec<String> =
                hits.iter().filter_map(|h| h.assignee.clone()).collect();
            assignees.sort();
            assignees.dedup();
            Case {
                subject: subject.clone(),
                status: hits
                    .iter()
                    .map(|h| h.status)
                    .max_by_key(|s| status_rank(*s))
                    .expect("a case has an alert"),
                assignees,
                alerts,
                rules,
                score: entity_score(hits.iter().map(|h| (h.rule_id.as_str(), h.score))),
                opened: hits
                    .iter()
                    .map(|h| china_date(h.detected))
                    .min()
                    .expect("a case has an alert"),
                span: Window {
                    from: hits.iter().map(|h| h.window.from).min().unwrap_or(0),
                    until: hits.iter().map(|h| h.window.until).max().unwrap_or(0),
                },
                deadline,
            }
        })
        .collect();
    sort_cases(&mut cases, sort);
    cases
}

fn days(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce())
}

/// Puts `cases` in `sort` order; ties go to the higher risk, then the subject.
pub fn sort_cases(cases: &mut [Case], sort: CaseSort) {
    cases.sort_by(|a, b| {
        let first = match sort {
            CaseSort::Risk => b
                .score
                .cmp(&a.score)
                .then(b.rules.len().cmp(&a.rules.len())),
            CaseSort::Due => (a.deadline.sla == Sla::Done, a.deadline.due)
                .cmp(&(b.deadline.sla == Sla::Done, b.deadline.due)),
            CaseSort::Oldest => a.opened.cmp(&b.opened),
            CaseSort::Alerts => b.alerts.len().cmp(&a.alerts.len()),
        };
        first
            .then(b.score.cmp(&a.score))
            .then_with(|| a.subject.cmp(&b.subject))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    /// 2026-03-02T00:00:00Z, a Monday.
    const MONDAY: i64 = 1_772_409_600_000;

    fn hit(id: &str, subject: &str, rule: &str, score: u32, status: Status, day: i64) -> CaseHit {
        CaseHit {
            alert_id: id.into(),
            version: 1,
            subject: Subject::account(subject),
            rule_id: rule.into(),
            score,
            status,
            assignee: None,
            detected: MONDAY + day * DAY,
            escalated: None,
            window: Window {
                from: MONDAY + (day - 3) * DAY,
                until: MONDAY + day * DAY,
            },
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 6).unwrap()
    }

    #[test]
    fn alerts_on_one_subject_fold_into_one_case() {
        let hits = [
            hit("a1", "A", "ML-02", 60, Status::New, 0),
            hit("a2", "A", "ML-02", 55, Status::InReview, 1),
            hit("a3", "A", "TC-04", 80, Status::New, 2),
            hit("b1", "B", "ML-05", 40, Status::New, 3),
        ];
        let cases = fold_cases(&hits, today(), WorkingCalendar::china(), 10, CaseSort::Risk);
        assert_eq!(cases.len(), 2);
        let a = &cases[0];
        assert_eq!(a.subject, Subject::account("A"));
        assert_eq!(a.rules, ["ML-02", "TC-04"]);
        assert_eq!(
            a.alerts.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            ["a3", "a1", "a2"]
        );
        assert_eq!(a.status, Status::InReview);
        assert_eq!(a.opened, NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
        assert_eq!(a.span.from, MONDAY - 3 * DAY);
        assert_eq!(a.span.until, MONDAY + 2 * DAY);
        // Entity risk: TC-04 0.8, ML-02 0.6 over two windows: 1 - 0.2 * 0.4 * 0.9.
        assert_eq!(a.score, 93);
        // Ten working days from the earliest detection (Monday 2 March).
        assert_eq!(
            a.deadline.due,
            NaiveDate::from_ymd_opt(2026, 3, 16).unwrap()
        );
    }

    #[test]
    fn a_case_is_open_while_any_of_its_alerts_is() {
        let hits = [
            hit("a1", "A", "ML-02", 60, Status::Dismissed, 0),
            hit("a2", "A", "ML-02", 60, Status::New, 5),
            hit("b1", "B", "ML-02", 60, Status::Reported, 0),
            hit("b2", "B", "ML-02", 60, Status::Dismissed, 0),
        ];
        let cases = fold_cases(&hits, today(), WorkingCalendar::china(), 10, CaseSort::Due);
        let status: Vec<(String, Status, Sla)> = cases
            .iter()
            .map(|c| (c.subject.id.clone(), c.status, c.deadline.sla))
            .collect();
        // A's open alert holds it to the review deadline of the later detection.
        assert_eq!(
            status,
            [
                ("A".into(), Status::New, Sla::OnTime),
                ("B".into(), Status::Reported, Sla::Done)
            ]
        );
        assert_eq!(
            cases[0].deadline.due,
            NaiveDate::from_ymd_opt(2026, 3, 20).unwrap()
        );
    }

    #[test]
    fn an_approved_escalation_holds_the_case_to_the_report_deadline() {
        let mut escalated = hit("a2", "A", "TC-04", 80, Status::Escalated, 1);
        // Approved on Tuesday 3 March: five working days.
        escalated.escalated = Some(MONDAY + DAY);
        let hits = [hit("a1", "A", "ML-02", 60, Status::New, 0), escalated];
        let cases = fold_cases(&hits, today(), WorkingCalendar::china(), 10, CaseSort::Risk);
        let a = &cases[0];
        assert_eq!(a.status, Status::Escalated);
        assert_eq!(a.deadline.kind, crate::case::DeadlineKind::Report);
        assert_eq!(
            a.deadline.due,
            NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
        );
    }

    #[test]
    fn sorts_order_cases_by_deadline_age_and_alert_count() {
        let hits = [
            hit("a1", "A", "R", 90, Status::New, 4),
            hit("b1", "B", "R", 10, Status::New, 0),
            hit("b2", "B", "R", 10, Status::New, 1),
            hit("b3", "B", "S", 10, Status::New, 2),
        ];
        let order = |sort| {
            fold_cases(&hits, today(), WorkingCalendar::china(), 10, sort)
                .into_iter()
                .map(|c| c.subject.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(order(CaseSort::Risk), ["A", "B"]);
        assert_eq!(order(CaseSort::Due), ["B", "A"]);
        assert_eq!(order(CaseSort::Oldest), ["B", "A"]);
        assert_eq!(order(CaseSort::Alerts), ["B", "A"]);
    }
}
