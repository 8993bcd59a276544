//! The records the store reads and writes besides the domain types: load reports, the
//! quarantine, statistics, rule versions, and the filters of the queue and suppressions.

use serde::Serialize;

use clearwatch_model::case::Status;
use clearwatch_model::suppression::SuppressionState;
use clearwatch_model::{Millis, Severity, SubjectKind};

/// What one file's load amounted to. `read = loaded + quarantined + duplicates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    pub batch_id: i64,
    pub kind: String,
    pub source: String,
    pub sha256: String,
    pub read: u64,
    pub loaded: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    pub unknown_types: u64,
}

/// One row of the quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineRow {
    /// Stable within the store: `quarantine list` shows it.
    pub id: i64,
    pub batch_id: i64,
    pub source: String,
    pub line: u64,
    pub field: Option<String>,
    pub reason: String,
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrencyTotal {
    pub currency: String,
    pub transactions: u64,
    /// Minor units: a sum of many amounts, so 128-bit.
    pub amount: i128,
    /// Decimal major units, for display.
    pub amount_text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Degree {
    pub account: String,
    /// Distinct counterparties.
    pub degree: u64,
    pub transactions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub transactions: u64,
    pub quarantined: u64,
    pub batches: u64,
    pub merchants: u64,
    pub accounts_registered: u64,
    /// Accounts that appear in transactions but not in the account registry.
    pub accounts_unregistered: u64,
    pub accounts_by_role: Vec<(String, u64)>,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub totals: Vec<CurrencyTotal>,
    pub top_out_degree: Vec<Degree>,
    pub top_in_degree: Vec<Degree>,
}

/// The exact text of one version of a rule; alerts name it by `(rule_id, version)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleVersion {
    pub rule_id: String,
    /// The rule version hash that alerts carry in `rule_version`.
    pub version: String,
    pub title: String,
    pub text: String,
}

/// What saving a set of alerts amounted to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SaveReport {
    pub inserted: u64,
    /// Alerts whose id was already stored (their case fields are left alone).
    pub existing: u64,
}

/// Which alerts to list; results are ordered by score descending, then id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertFilter {
    pub status: Option<Status>,
    /// Only alerts whose case work is open: new, in review or escalated.
    pub open_only: bool,
    /// This severity or above.
    pub min_severity: Option<Severity>,
    pub rule_id: Option<String>,
    /// A substring of the subject id.
    pub subject: Option<String>,
    /// Exactly this subject (kind and id).
    pub subject_is: Option<clearwatch_model::Subject>,
    /// The assignee; `Some("")` means unassigned.
    pub assignee: Option<String>,
    /// Alerts whose window starts at or after this time.
    pub from: Option<Millis>,
    /// Alerts whose window starts before this time.
    pub until: Option<Millis>,
    /// What to do with the alerts an active suppression covers.
    pub suppressed: Suppressed,
    pub sort: AlertSort,
    pub limit: u64,
    pub offset: u64,
}

/// The alerts an active suppression covers (status `new`, no assignee, its subject and
/// scope; see [`clearwatch_model::suppression`]): listed with the rest, left out (what the
/// queues show by default), or the only ones listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppressed {
    #[default]
    Include,
    Hide,
    Only,
}

impl Suppressed {
    pub const ALL: [Suppressed; 3] = [Suppressed::Include, Suppressed::Hide, Suppressed::Only];

    pub fn as_str(self) -> &'static str {
        match self {
            Suppressed::Include => "include",
            Suppressed::Hide => "hide",
            Suppressed::Only => "only",
        }
    }
}

impl std::str::FromStr for Suppressed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Suppressed::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown suppressed filter {s:?} (valid: include, hide, only)"))
    }
}

/// Which audit entries to list (newest first); every field that is set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// One entity, exactly (`alert:ID`, `user:NAME`, …).
    pub entity: Option<String>,
    /// Entities of one kind: the part of `entity` before its `:` (`alert`, `user`, …).
    pub entity_kind: Option<String>,
    pub actor: Option<String>,
    /// An action (`case.approve`), or a group of them by their prefix (`case.`).
    pub action: Option<String>,
}

/// Which suppressions to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionQuery {
    /// The subject id, exactly.
    pub subject_id: Option<String>,
    pub subject_kind: Option<SubjectKind>,
    pub state: Option<SuppressionState>,
    /// The one asked for with this dismissal request.
    pub approval_id: Option<i64>,
    /// Whether to count the alerts each active one hides (a query each).
    pub count_hidden: bool,
    pub limit: u64,
}

impl Default for SuppressionQuery {
    fn default() -> Self {
        SuppressionQuery {
            subject_id: None,
            subject_kind: None,
            state: None,
            approval_id: None,
            count_hidden: true,
            limit: 100,
        }
    }
}

/// The order of an alert list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSort {
    /// Highest score first (the queue's default).
    #[default]
    Score,
    /// Newest window first.
    Newest,
    /// Oldest window first.
    Oldest,
    /// Most recently changed first.
    Updated,
}

impl AlertSort {
    pub const ALL: [AlertSort; 4] = [
        AlertSort::Score,
        AlertSort::Newest,
        AlertSort::Oldest,
        AlertSort::Updated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertSort::Score => "score",
            AlertSort::Newest => "newest",
            AlertSort::Oldest => "oldest",
            AlertSort::Updated => "updated",
        }
    }

    /// The `ORDER BY` clause; every order ends on the unique id.
    pub fn order_by(self) -> &'static str {
        match self {
            AlertSort::Score => " ORDER BY score DESC, id",
            AlertSort::Newest => " ORDER BY window_from DESC, id",
            AlertSort::Oldest => " ORDER BY window_from, id",
            AlertSort::Updated => " ORDER BY updated_at DESC, id",
        }
    }
}

impl Default for AlertFilter {
    fn default() -> Self {
        AlertFilter {
            status: None,
            open_only: false,
            min_severity: None,
            rule_id: None,
            subject: None,
            subject_is: None,
            assignee: None,
            from: None,
            until: None,
            suppressed: Suppressed::Include,
            sort: AlertSort::Score,
            limit: 100,
            offset: 0,
        }
    }
}

/// One load batch: a file as it was loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchInfo {
    pub batch_id: i64,
    pub kind: String,
    pub source: String,
    pub profile: String,
    pub sha256: Option<String>,
    pub loaded_at: String,
}
