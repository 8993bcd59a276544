//! Case records of the store: users, sessions, notes, approvals, case updates, rule hits
//! and published rule versions, and why a case change was refused. The workflow itself
//! (statuses, roles, the audit chain) is [`clearwatch_model::case`]; the statements that
//! persist these records live in `cases_sql.rs`, shared by both backends.

use serde::Serialize;

use clearwatch_model::case::{Status, UserRole};

/// Why a case change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error(
        "alert {alert_id} was changed by someone else (version {found}, you had {expected}): reload and try again"
    )]
    Conflict {
        alert_id: String,
        expected: i64,
        found: i64,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("a case cannot move from {from} to {to}")]
    BadTransition { from: Status, to: Status },
    #[error("moving a case to {0} needs a supervisor's approval: request it")]
    NeedsApproval(Status),
    #[error("{0} does not need an approval")]
    NoApprovalNeeded(Status),
    #[error("a dismissal needs a reason")]
    ReasonRequired,
    #[error("a request cannot be decided by the user who made it")]
    SelfApproval,
    #[error("only a supervisor may decide a request")]
    NotSupervisor,
    #[error("alert {0} already has a request waiting for approval")]
    AlreadyPending(String),
    #[error("request {0} was already decided")]
    AlreadyDecided(i64),
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("a note cannot be empty")]
    EmptyNote,
    #[error("only a dismissal can ask for a suppression")]
    SuppressionNeedsDismissal,
    #[error("{0}")]
    BadSuppression(clearwatch_model::suppression::ExpiryProblem),
    #[error("suppression {0} is {1}, not active")]
    NotActive(i64, &'static str),
    #[error("{0}")]
    BadListEntry(clearwatch_model::lists::EntryProblem),
    #[error("list {0} already exists")]
    ListExists(String),
    #[error("list entry {0} was already removed")]
    AlreadyRemoved(i64),
    #[error("{0}")]
    NotAllowed(&'static str),
    /// One change of a bulk change was refused, so none was made.
    #[error("nothing was changed: alert {alert_id}: {source}")]
    Bulk {
        alert_id: String,
        #[source]
        source: Box<CaseError>,
    },
}

/// A dashboard user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub role: UserRole,
    #[serde(skip)]
    pub password_hash: String,
    /// An IANA time zone name; times are shown in it.
    pub time_zone: String,
    pub created_at: String,
    /// A disabled user cannot sign in and their sessions no longer work.
    pub disabled: bool,
    /// Set by an administrator's password reset (and on the first admin): the user's
    /// sessions may do nothing but choose a new password.
    pub must_change_password: bool,
    /// Away until this time (UTC milliseconds): automatic assignment passes over them.
    pub unavailable_until: Option<i64>,
}

impl User {
    /// Whether automatic assignment may give this user a case at `now`: an active
    /// analyst who is not away.
    pub fn takes_cases_at(&self, now: i64) -> bool {
        self.role == UserRole::Analyst
            && !self.disabled
            && self.unavailable_until.is_none_or(|u| u <= now)
    }
}

/// A change to a user: each field that is `Some` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChange {
    pub role: Option<UserRole>,
    /// An IANA time zone name (the caller checks it).
    pub time_zone: Option<String>,
    pub disabled: Option<bool>,
    /// `Some(None)` marks the user available again.
    pub unavailable_until: Option<Option<i64>>,
}

/// A session to create: `id` is the SHA-256 (hex) of the cookie's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: String,
    pub user_name: String,
    pub csrf: String,
    /// UTC milliseconds.
    pub expires_at: i64,
}

/// A live session with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub user: User,
    pub csrf: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Note {
    pub id: i64,
    pub alert_id: String,
    pub author: String,
    pub body: String,
    pub created_at: String,
}

/// A request to escalate or dismiss, and its decision once made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Approval {
    pub id: i64,
    pub alert_id: String,
    /// `escalated` or `dismissed`.
    pub target: String,
    pub reason: Option<String>,
    pub requested_by: String,
    pub requested_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub approved: Option<bool>,
}

/// A change of status and/or assignee, made only if the alert is still at
/// `expected_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseUpdate {
    pub alert_id: String,
    pub expected_version: i64,
    pub actor: String,
    pub status: Option<Status>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<String>>,
}

/// Alert counts and dispositions of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RuleHits {
    pub rule_id: String,
    pub alerts: u64,
    pub reported: u64,
    pub dismissed: u64,
    pub open: u64,
}

impl RuleHits {
    /// Reported / (reported + dismissed), once any alert was decided.
    pub fn precision(&self) -> Option<f64> {
        let decided = self.reported + self.dismissed;
        (decided > 0).then(|| self.reported as f64 / decided as f64)
    }
}

/// A rule version as stored, with who published it from the dashboard, if anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredRuleVersion {
    pub rule_id: String,
    pub version: String,
    pub title: String,
    pub text: String,
    pub created_at: String,
    pub published_by: Option<String>,
}
