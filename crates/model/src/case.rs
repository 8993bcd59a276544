//! The case workflow and its audit trail: who may do what ([`UserRole`]), the states of a
//! case and which moves need a supervisor ([`Status`]), and the hash chain that links the
//! entries of the audit log ([`AuditEntry`]; the keyed chain, its signed head and the
//! verification that names tampering are in [`crate::audit`]).

use std::fmt;
use std::str::FromStr;

use chrono::Datelike as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash an empty audit log chains from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a user may do; checked by the server on every route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    Admin,
    Supervisor,
    Analyst,
    RuleAuthor,
    Auditor,
}

impl UserRole {
    pub const ALL: [UserRole; 5] = [
        UserRole::Admin,
        UserRole::Supervisor,
        UserRole::Analyst,
        UserRole::RuleAuthor,
        UserRole::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::Supervisor => "supervisor",
            UserRole::Analyst => "analyst",
            UserRole::RuleAuthor => "rule_author",
            UserRole::Auditor => "auditor",
        }
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UserRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        UserRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?} (valid: admin, supervisor, analyst, rule_author, auditor)"
                )
            })
    }
}

/// A case's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    InReview,
    Escalated,
    Reported,
    Dismissed,
    Closed,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::New,
        Status::InReview,
        Status::Escalated,
        Status::Reported,
        Status::Dismissed,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::InReview => "in_review",
            Status::Escalated => "escalated",
            Status::Reported => "reported",
            Status::Dismissed => "dismissed",
            Status::Closed => "closed",
        }
    }

    /// Whether work on the case is still open: new, in review or escalated.
    pub fn is_open(self) -> bool {
        matches!(self, Status::New | Status::InReview | Status::Escalated)
    }

    /// Whether moving to this state waits for a second person with the supervisor role.
    pub fn needs_approval(self) -> bool {
        matches!(self, Status::Escalated | Status::Dismissed)
    }

    /// The states a case may move to from this one.
    pub fn next(self) -> &'static [Status] {
        match self {
            Status::New => &[Status::InReview, Status::Dismissed],
            Status::InReview => &[Status::New, Status::Escalated, Status::Dismissed],
            Status::Escalated => &[Status::Reported, Status::Dismissed],
            Status::Reported | Status::Dismissed => &[Status::Closed],
            Status::Closed => &[],
        }
    }

    pub fn can_move_to(self, to: Status) -> bool {
        self.next().contains(&to)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Status::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown case status {s:?} (valid: new, in_review, escalated, reported, dismissed, closed)"))
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    /// What changed, as `kind:id` (`alert:…`, `user:…`, `rule:…`).
    pub entity: String,
    /// JSON of the state before and after, when there is one.
    pub before: Option<String>,
    pub after: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// The unkeyed SHA-256 of this entry's fields and `prev_hash`: the chain of logs
    /// written before the keyed chain, checked only when re-keying such a log.
    pub fn unkeyed_hash(&self) -> String {
        let mut h = Sha256::new();
        self.feed(&mut |bytes| h.update(bytes));
        hex::encode(h.finalize())
    }

    /// Feeds the entry's canonical bytes to `update`: `prev_hash`, `seq`, `at`, `actor`,
    /// `action` and `entity` each followed by a unit separator, then `before` and `after`
    /// each as a presence byte (`None` and `""` differ), its text and a unit separator.
    pub fn feed(&self, update: &mut dyn FnMut(&[u8])) {
        let seq = self.seq.to_string();
        for part in [
            self.prev_hash.as_str(),
            &seq,
            &self.at,
            &self.actor,
            &self.action,
            &self.entity,
        ] {
            update(part.as_bytes());
            update(&[0x1f]);
        }
        for part in [&self.before, &self.after] {
            match part {
                Some(p) => {
                    update(&[1]);
                    update(p.as_bytes());
                }
                None => update(&[0]),
            }
            update(&[0x1f]);
        }
    }
}

/// What checking the audit log found: intact, or broken at the first finding's entry with
/// every finding named in `reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AuditCheck {
    Intact { entries: u64, head: String },
    Broken { seq: i64, reason: String },
}

/// Walks entries in `seq` order under the unkeyed chain and names the first that does not
/// chain (the check of a log written before the keyed chain).
pub fn verify_unkeyed(entries: &[AuditEntry]) -> AuditCheck {
    let mut prev = GENESIS_HASH.to_string();
    let mut last_seq = 0;
    for e in entries {
        let reason = if e.seq != last_seq + 1 {
            format!("sequence jumps from {last_seq} to {}", e.seq)
        } else if e.prev_hash != prev {
            "prev_hash does not match the previous entry's hash".into()
        } else if e.unkeyed_hash() != e.hash {
            "hash does not match the entry's contents".into()
        } else {
            prev.clone_from(&e.hash);
            last_seq = e.seq;
            continue;
        };
        return AuditCheck::Broken { seq: e.seq, reason };
    }
    AuditCheck::Intact {
        entries: entries.len() as u64,
        head: prev,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` chained entries, each hashed with `hash`.
    pub(crate) fn chain_with(n: i64, hash: impl Fn(&AuditEntry) -> String) -> Vec<AuditEntry> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let mut e = AuditEntry {
                    seq,
                    at: "2026-01-01T00:00:00Z".into(),
                    actor: "ann".into(),
                    action: "status".into(),
                    entity: format!("alert:{seq}"),
                    before: Some("{}".into()),
                    after: None,
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = hash(&e);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn chain(n: i64) -> Vec<AuditEntry> {
        chain_with(n, AuditEntry::unkeyed_hash)
    }

    #[test]
    fn an_intact_unkeyed_chain_verifies_and_an_edit_is_named() {
        let c = chain(5);
        assert!(matches!(
            verify_unkeyed(&c),
            AuditCheck::Intact { entries: 5, .. }
        ));
        let mut edited = c.clone();
        edited[2].actor = "mallory".into();
        assert!(matches!(
            verify_unkeyed(&edited),
            AuditCheck::Broken { seq: 3, .. }
        ));
        let mut dropped = c;
        dropped.remove(1);
        assert!(matches!(
            verify_unkeyed(&dropped),
            AuditCheck::Broken { seq: 3, .. }
        ));
    }

    #[test]
    fn none_and_empty_hash_differently() {
        let mut e = chain(1).remove(0);
        e.before = None;
        let a = e.unkeyed_hash();
        e.before = Some(String::new());
        assert_ne!(a, e.unkeyed_hash());
    }

    #[test]
    fn workflow_transitions() {
        assert!(Status::New.can_move_to(Status::InReview));
        assert!(Status::InReview.can_move_to(Status::Escalated));
        assert!(!Status::New.can_move_to(Status::Reported));
        assert!(!Status::Closed.can_move_to(Status::New));
        assert!(Status::Escalated.needs_approval());
        assert!(!Status::Reported.needs_approval());
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        for r in UserRole::ALL {
            assert_eq!(r.as_str().parse::<UserRole>(), Ok(r));
        }
    }
}

/// Working days from detection to a decision, by default (`serve --review-days`).
pub const REVIEW_WORKING_DAYS: u32 = 10;
/// Working days from the approved escalation to the report: "最迟不超过5个工作日" (PBOC
/// Order 2016 No. 3, as amended in 2018).
pub const REPORT_WORKING_DAYS: u32 = 5;
/// A deadline this many working days away or fewer is due soon.
pub const DUE_SOON_WORKING_DAYS: i64 = 2;

/// Which deadline a case is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// From detection to a decision (escalate or dismiss).
    Review,
    /// From the approved escalation to the report.
    Report,
}

/// Where a case stands against its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sla {
    OnTime,
    DueSoon,
    Overdue,
    /// Reported, dismissed or closed: nothing is due.
    Done,
}

impl DeadlineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::Review => "review",
            DeadlineKind::Report => "report",
        }
    }
}

impl Sla {
    pub const ALL: [Sla; 4] = [Sla::Overdue, Sla::DueSoon, Sla::OnTime, Sla::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            Sla::OnTime => "on_time",
            Sla::DueSoon => "due_soon",
            Sla::Overdue => "overdue",
            Sla::Done => "done",
        }
    }
}

/// A case's deadline: every case has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Deadline {
    pub kind: DeadlineKind,
    pub due: chrono::NaiveDate,
    pub sla: Sla,
    /// Working days from today to the due date (negative when overdue).
    pub working_days_left: i64,
    /// Whether the count crosses a year the calendar does not cover (its holidays are not
    /// known: weekends only), so the date may be off.
    pub approximate: bool,
}

impl Deadline {
    /// Working days past the due date (0 when not overdue).
    pub fn overdue_by(&self) -> i64 {
        (-self.working_days_left).max(0)
    }
}

/// The deadline of a case in `status`, detected on `detected` and, if its escalation was
/// approved, escalated on `escalated` (local dates of the calendar's jurisdiction).
pub fn deadline(
    status: Status,
    detected: chrono::NaiveDate,
    escalated: Option<chrono::NaiveDate>,
    today: chrono::NaiveDate,
    calendar: &crate::calendar::WorkingCalendar,
    review_days: u32,
) -> Deadline {
    let (kind, due) = match escalated {
        Some(e)
            if matches!(
                status,
                Status::Escalated | Status::Reported | Status::Closed
            ) =>
        {
            (
                DeadlineKind::Report,
                calendar.add_working_days(e, REPORT_WORKING_DAYS),
            )
        }
        _ => (
            DeadlineKind::Review,
            calendar.add_working_days(detected, review_days),
        ),
    };
    let left = calendar.working_days_between(today, due);
    let sla = if matches!(
        status,
        Status::Reported | Status::Dismissed | Status::Closed
    ) {
        Sla::Done
    } else if today > due {
        Sla::Overdue
    } else if left <= DUE_SOON_WORKING_DAYS {
        Sla::DueSoon
    } else {
        Sla::OnTime
    };
    let start = if kind == DeadlineKind::Report {
        escalated.unwrap_or(detected)
    } else {
        detected
    };
    Deadline {
        kind,
        due,
        sla,
        working_days_left: left,
        approximate: (start.year()..=due.year().max(today.year())).any(|y| !calendar.covers(y)),
    }
}

#[cfg(test)]
mod deadline_tests {
    use super::*;
    use crate::calendar::WorkingCalendar;

    fn day(s: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn review_and_report_deadlines_count_working_days_and_band() {
        let cn = WorkingCalendar::china();
        let d = deadline(
            Status::New,
            day("2026-09-30"),
            None,
            day("2026-10-08"),
            cn,
            10,
        );
        assert_eq!(
            (d.kind, d.due, d.sla),
            (DeadlineKind::Review, day("2026-10-20"), Sla::OnTime)
        );
        assert_eq!(d.working_days_left, 9);
        let d = deadline(
            Status::InReview,
            day("2026-09-30"),
            None,
            day("2026-10-16"),
            cn,
            10,
        );
        assert_eq!(d.sla, Sla::DueSoon);
        let d = deadline(
            Status::InReview,
            day("2026-09-30"),
            None,
            day("2026-10-21"),
            cn,
            10,
        );
        assert_eq!((d.sla, d.working_days_left), (Sla::Overdue, -1));
        // Escalated on Friday 13 February: the report is due five working days later,
        // past the Spring Festival.
        let d = deadline(
            Status::Escalated,
            day("2026-02-02"),
            Some(day("2026-02-13")),
            day("2026-02-16"),
            cn,
            10,
        );
        assert_eq!(
            (d.kind, d.due, d.sla),
            (DeadlineKind::Report, day("2026-02-27"), Sla::OnTime)
        );
        let d = deadline(
            Status::Dismissed,
            day("2026-02-02"),
            None,
            day("2026-12-01"),
            cn,
            10,
        );
        assert_eq!(d.sla, Sla::Done);
        assert!(!d.approximate);
        // A count into a year without a calendar file is flagged.
        let d = deadline(
            Status::New,
            day("2026-12-28"),
            None,
            day("2026-12-28"),
            cn,
            10,
        );
        assert!(d.approximate);
    }
}
