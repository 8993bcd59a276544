//! Suppressions: a dismissal's decision remembered. Dismissing an alert with a reason may
//! ask to suppress its rule on its subject, or every rule on it, until a given time. The
//! supervisor who approves the dismissal approves the suppression with it. While it is
//! active, the subject's alerts under its scope that nobody has taken up (status `new`,
//! no assignee) are left out of the queues; they are still stored and listed under the
//! `suppressed` filter, and reappear by themselves once it expires or is lifted.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::{Millis, Subject};

/// The longest a suppression may last: a year, so that no decision outlives a review.
pub const MAX_SUPPRESSION_MS: Millis = 366 * 86_400_000;

/// What a dismissal asks to suppress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionScope {
    /// The dismissed alert's rule on its subject.
    Rule,
    /// Every rule on the subject.
    AllRules,
}

impl SuppressionScope {
    pub const ALL: [SuppressionScope; 2] = [SuppressionScope::Rule, SuppressionScope::AllRules];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionScope::Rule => "rule",
            SuppressionScope::AllRules => "all_rules",
        }
    }
}

impl FromStr for SuppressionScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SuppressionScope::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown suppression scope {s:?} (valid: rule, all_rules)"))
    }
}

/// A suppression asked for with a dismissal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSuppression {
    pub scope: SuppressionScope,
    /// UTC milliseconds; later than the request and at most [`MAX_SUPPRESSION_MS`] after it.
    pub expires_at: Millis,
}

impl NewSuppression {
    /// Why the expiry cannot be used at `now`, if it cannot.
    pub fn check(&self, now: Millis) -> Result<(), ExpiryProblem> {
        if self.expires_at <= now {
            return Err(ExpiryProblem::Past);
        }
        if self.expires_at - now > MAX_SUPPRESSION_MS {
            return Err(ExpiryProblem::TooLong);
        }
        Ok(())
    }
}

/// Why a suppression's expiry cannot be used. Each has a message key for the dashboard
/// (`suppress.problem.*`); the English text is its `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryProblem {
    #[error("a suppression must expire in the future")]
    Past,
    #[error("a suppression may last at most 366 days")]
    TooLong,
}

impl ExpiryProblem {
    /// Its message key.
    pub fn key(self) -> &'static str {
        match self {
            ExpiryProblem::Past => "suppress.problem.past",
            ExpiryProblem::TooLong => "suppress.problem.too_long",
        }
    }
}

/// What a suppression does now. Stored as pending, active, rejected or lifted; an active
/// one whose time is up reads as expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionState {
    /// Waiting for its dismissal's approval.
    Pending,
    /// Hiding alerts.
    Active,
    /// Its time is up.
    Expired,
    /// Its dismissal was rejected.
    Rejected,
    /// A supervisor ended it early.
    Lifted,
}

impl SuppressionState {
    pub const ALL: [SuppressionState; 5] = [
        SuppressionState::Pending,
        SuppressionState::Active,
        SuppressionState::Expired,
        SuppressionState::Rejected,
        SuppressionState::Lifted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionState::Pending => "pending",
            SuppressionState::Active => "active",
            SuppressionState::Expired => "expired",
            SuppressionState::Rejected => "rejected",
            SuppressionState::Lifted => "lifted",
        }
    }

    /// The state `stored` reads as at `now`, given the expiry.
    pub fn at(stored: SuppressionState, expires_at: Millis, now: Millis) -> SuppressionState {
        match stored {
            SuppressionState::Active if expires_at <= now => SuppressionState::Expired,
            s => s,
        }
    }
}

impl fmt::Display for SuppressionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SuppressionState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SuppressionState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown suppression state {s:?} (valid: pending, active, expired, rejected, lifted)"
                )
            })
    }
}

/// A suppression as stored, with its state at the time it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub id: i64,
    pub subject: Subject,
    /// `None`: every rule on the subject.
    pub rule_id: Option<String>,
    pub reason: String,
    pub expires_at: Millis,
    /// The dismissal request it came with, and the alert that request was about.
    pub approval_id: i64,
    pub alert_id: String,
    pub requested_by: String,
    pub requested_at: String,
    /// Who approved, rejected or lifted it, and when.
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub state: SuppressionState,
    /// The alerts it hides now (zero unless active).
    pub hidden: u64,
}

impl Suppression {
    /// Whether it hides an alert of `rule_id` on its subject.
    pub fn covers(&self, rule_id: &str) -> bool {
        self.rule_id.as_deref().is_none_or(|r| r == rule_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_suppression_reads_as_expired_once_its_time_is_up() {
        use SuppressionState::*;
        assert_eq!(SuppressionState::at(Active, 1_000, 999), Active);
        assert_eq!(SuppressionState::at(Active, 1_000, 1_000), Expired);
        assert_eq!(SuppressionState::at(Lifted, 1_000, 999), Lifted);
        assert_eq!(SuppressionState::at(Pending, 1_000, 5_000), Pending);
    }

    #[test]
    fn an_expiry_must_be_ahead_and_within_a_year() {
        let s = |expires_at| NewSuppression {
            scope: SuppressionScope::Rule,
            expires_at,
        };
        assert!(s(100).check(100).is_err());
        assert!(s(101).check(100).is_ok());
        assert!(s(100 + MAX_SUPPRESSION_MS).check(100).is_ok());
        assert!(s(101 + MAX_SUPPRESSION_MS).check(100).is_err());
    }

    #[test]
    fn scopes_and_states_round_trip_and_list_the_valid_values() {
        for s in SuppressionScope::ALL {
            assert_eq!(s.as_str().parse::<SuppressionScope>(), Ok(s));
        }
        for s in SuppressionState::ALL {
            assert_eq!(s.as_str().parse::<SuppressionState>(), Ok(s));
        }
        let e = "forever".parse::<SuppressionScope>().unwrap_err();
        assert!(e.contains("rule, all_rules"), "{e}");
    }
}
