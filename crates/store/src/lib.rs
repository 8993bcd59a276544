//! The store: where loaded input, alerts and rule versions persist. A [`Store`] trait with
//! one implementation per backend (SQLite, the embedded default; PostgreSQL for teams);
//! [`open`] picks one from a database URL and refuses a schema newer than this binary.

pub mod cases;
#[macro_use]
mod cases_sql;
mod common;
pub mod postgres;
pub mod sqlite;

use std::path::Path;

use serde::Serialize;
use tokio::sync::mpsc::Receiver;

use clearwatch_ingest::load::LoadMsg;
use clearwatch_model::case::Status;
use clearwatch_model::{Account, Merchant, Millis, Transaction};
use clearwatch_model::{Alert, Severity, StoredAlert};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// The default database when neither `--db` nor `CLEARWATCH_DB` is given.
pub const DEFAULT_DB: &str = "sqlite:clearwatch.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("unsupported database URL {0:?}: use sqlite:PATH, a file path, or postgres://…")]
    UnsupportedUrl(String),
    #[error(
        "database schema version {found} is newer than this clearwatch (knows up to {known}): upgrade clearwatch"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("cannot encode alert metrics as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the load was aborted before commit; nothing was written")]
    Aborted,
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Case(#[from] cases::CaseError),
}

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
    /// Minor units.
    pub amount: i64,
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
    /// This severity or above.
    pub min_severity: Option<Severity>,
    pub rule_id: Option<String>,
    /// A substring of the subject id.
    pub subject: Option<String>,
    /// The assignee; `Some("")` means unassigned.
    pub assignee: Option<String>,
    /// Alerts whose window starts at or after this time.
    pub from: Option<Millis>,
    /// Alerts whose window starts before this time.
    pub until: Option<Millis>,
    pub sort: AlertSort,
    pub limit: u64,
    pub offset: u64,
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
            min_severity: None,
            rule_id: None,
            subject: None,
            assignee: None,
            from: None,
            until: None,
            sort: AlertSort::Score,
            limit: 100,
            offset: 0,
        }
    }
}

/// The persistence interface, one implementation per backend.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// Consumes a load stream in one database transaction; commits only on `Commit`.
    async fn load(&self, rx: Receiver<LoadMsg>) -> Result<Vec<BatchReport>, StoreError>;
    async fn stats(&self, top: usize) -> Result<Stats, StoreError>;
    async fn quarantine(&self, limit: u64) -> Result<Vec<QuarantineRow>, StoreError>;
    /// Every transaction with `ts` in `[from, until)`, in no particular order.
    async fn transactions(
        &self,
        from: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<Vec<Transaction>, StoreError> {
        let mut all = Vec::new();
        self.each_transaction(from, until, |t| all.push(t)).await?;
        Ok(all)
    }
    /// Streams the transactions of [`Store::transactions`] into `sink` one row at a time
    /// (a scan of the store never holds every row at once); returns how many.
    async fn each_transaction(
        &self,
        from: Option<Millis>,
        until: Option<Millis>,
        sink: impl FnMut(Transaction) + Send,
    ) -> Result<u64, StoreError>;
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    async fn merchants(&self) -> Result<Vec<Merchant>, StoreError>;
    /// Stores alerts (keyed by id: a stored id is left as it is) and rule versions, in one
    /// transaction.
    async fn save_alerts(
        &self,
        alerts: &[Alert],
        rules: &[RuleVersion],
    ) -> Result<SaveReport, StoreError>;
    /// The alerts matching `filter`, evidence included.
    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError>;
    async fn alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError>;
    async fn rule_version(
        &self,
        rule_id: &str,
        version: &str,
    ) -> Result<Option<RuleVersion>, StoreError>;
    /// The newest migration applied to the database.
    async fn schema_version(&self) -> Result<i64, StoreError>;

    // Evidence, for exports and the dashboard.

    /// The alert's evidence transactions that are stored, by id, with their batch.
    async fn evidence_transactions(
        &self,
        alert_id: &str,
    ) -> Result<Vec<(Transaction, i64)>, StoreError>;
    /// The alert's evidence accounts; those not in the registry come back unregistered.
    async fn evidence_accounts(&self, alert_id: &str) -> Result<Vec<Account>, StoreError>;
    /// Every load batch, by id.
    async fn batches(&self) -> Result<Vec<BatchInfo>, StoreError>;

    // ---- Cases: users, sessions, workflow, notes, approvals, rules, audit log. ----
    // Implemented once in `cases_sql.rs` for both backends; every change appends to the
    // hash-chained audit log in the same transaction.

    /// Adds a user; refuses a name that exists.
    async fn add_user(
        &self,
        name: &str,
        role: cases::UserRole,
        password_hash: &str,
        actor: &str,
    ) -> Result<cases::User, StoreError>;
    async fn user(&self, name: &str) -> Result<Option<cases::User>, StoreError>;
    async fn users(&self) -> Result<Vec<cases::User>, StoreError>;
    /// Changes a user's role, time zone and/or disabled flag, audited (before and after);
    /// disabling ends the user's sessions.
    async fn update_user(
        &self,
        name: &str,
        change: &cases::UserChange,
        actor: &str,
    ) -> Result<cases::User, StoreError>;
    /// The newest published version of each rule that was published from the dashboard.
    async fn published_rules(&self) -> Result<Vec<cases::StoredRuleVersion>, StoreError>;
    async fn create_session(&self, s: &cases::NewSession) -> Result<(), StoreError>;
    /// The unexpired session whose id (token hash) is `id`.
    async fn session(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<cases::SessionInfo>, StoreError>;
    /// Deletes the session `id` and every expired one.
    async fn delete_session(&self, id: &str, now_ms: i64) -> Result<(), StoreError>;
    /// Changes status and/or assignee if the alert is still at `expected_version`
    /// (else [`cases::CaseError::Conflict`]); escalation and dismissal go through
    /// [`Store::request_approval`].
    async fn update_case(&self, u: &cases::CaseUpdate) -> Result<StoredAlert, StoreError>;
    async fn add_note(
        &self,
        alert_id: &str,
        author: &str,
        body: &str,
    ) -> Result<cases::Note, StoreError>;
    async fn notes(&self, alert_id: &str) -> Result<Vec<cases::Note>, StoreError>;
    /// Asks a supervisor to approve an escalation or dismissal (a reason is required for
    /// dismissal); bumps the alert's version.
    async fn request_approval(
        &self,
        alert_id: &str,
        expected_version: i64,
        target: cases::Status,
        reason: Option<&str>,
        actor: &str,
    ) -> Result<cases::Approval, StoreError>;
    /// A supervisor other than the requester approves (the case moves) or rejects.
    async fn decide_approval(
        &self,
        approval_id: i64,
        approve: bool,
        actor: &str,
    ) -> Result<cases::Approval, StoreError>;
    /// Requests, newest first, of one alert or all.
    async fn approvals(
        &self,
        alert_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<cases::Approval>, StoreError>;
    /// How many alerts match `filter` (its limit and offset aside).
    async fn count_alerts(&self, filter: &AlertFilter) -> Result<u64, StoreError>;
    /// Alerts per status, for every status, under `filter` without its status condition.
    async fn status_counts(&self, filter: &AlertFilter) -> Result<Vec<(Status, u64)>, StoreError>;
    /// Alert counts and dispositions per rule.
    async fn rule_hits(&self) -> Result<Vec<cases::RuleHits>, StoreError>;
    /// The stored versions of a rule, newest first.
    async fn rule_versions(
        &self,
        rule_id: &str,
    ) -> Result<Vec<cases::StoredRuleVersion>, StoreError>;
    /// Stores a rule version published from the dashboard and records who published it.
    async fn publish_rule(&self, rule: &RuleVersion, actor: &str) -> Result<(), StoreError>;
    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;
    /// An account's transactions in and out, newest first.
    async fn account_transactions(
        &self,
        id: &str,
        limit: u64,
    ) -> Result<Vec<Transaction>, StoreError>;
    /// Appends one entry to the audit log on its own.
    async fn audit(
        &self,
        actor: &str,
        action: &str,
        entity: &str,
        before: Option<String>,
        after: Option<String>,
    ) -> Result<cases::AuditEntry, StoreError>;
    /// Entries newest first, optionally of one entity (`alert:ID`).
    async fn audit_log(
        &self,
        entity: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<cases::AuditEntry>, StoreError>;
    /// Walks the whole chain and names the first broken entry.
    async fn audit_verify(&self) -> Result<cases::AuditCheck, StoreError>;
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

/// A store of any backend, chosen at run time.
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl AnyStore {
    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }

    /// The newest schema version this binary knows for the store's backend.
    pub fn known_schema_version(&self) -> i64 {
        match self {
            AnyStore::Sqlite(_) => sqlite::known_schema_version(),
            AnyStore::Postgres(_) => postgres::known_schema_version(),
        }
    }
}

/// Opens (creating and migrating if needed) the database at `url`: `sqlite:PATH`,
/// `sqlite::memory:`, a plain file path, or `postgres://…` / `postgresql://…`.
pub async fn open(url: &str) -> Result<AnyStore, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(AnyStore::Postgres(PgStore::open(url).await?));
    }
    if url.starts_with("sqlite:") {
        return Ok(AnyStore::Sqlite(SqliteStore::open(url).await?));
    }
    if url.contains("://") {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    }
    let path = Path::new(url);
    Ok(AnyStore::Sqlite(
        SqliteStore::open(&format!("sqlite:{}", path.display())).await?,
    ))
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

impl Store for AnyStore {
    async fn load(&self, rx: Receiver<LoadMsg>) -> Result<Vec<BatchReport>, StoreError> {
        dispatch!(self, s => s.load(rx).await)
    }
    async fn stats(&self, top: usize) -> Result<Stats, StoreError> {
        dispatch!(self, s => s.stats(top).await)
    }
    async fn quarantine(&self, limit: u64) -> Result<Vec<QuarantineRow>, StoreError> {
        dispatch!(self, s => s.quarantine(limit).await)
    }
    async fn each_transaction(
        &self,
        from: Option<Millis>,
        until: Option<Millis>,
        sink: impl FnMut(Transaction) + Send,
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.each_transaction(from, until, sink).await)
    }
    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        dispatch!(self, s => s.accounts().await)
    }
    async fn merchants(&self) -> Result<Vec<Merchant>, StoreError> {
        dispatch!(self, s => s.merchants().await)
    }
    async fn save_alerts(
        &self,
        alerts: &[Alert],
        rules: &[RuleVersion],
    ) -> Result<SaveReport, StoreError> {
        dispatch!(self, s => s.save_alerts(alerts, rules).await)
    }
    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError> {
        dispatch!(self, s => s.alerts(filter).await)
    }
    async fn alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        dispatch!(self, s => s.alert(id).await)
    }
    async fn rule_version(
        &self,
        rule_id: &str,
        version: &str,
    ) -> Result<Option<RuleVersion>, StoreError> {
        dispatch!(self, s => s.rule_version(rule_id, version).await)
    }
    async fn evidence_transactions(
        &self,
        alert_id: &str,
    ) -> Result<Vec<(Transaction, i64)>, StoreError> {
        dispatch!(self, s => s.evidence_transactions(alert_id).await)
    }
    async fn evidence_accounts(&self, alert_id: &str) -> Result<Vec<Account>, StoreError> {
        dispatch!(self, s => s.evidence_accounts(alert_id).await)
    }
    async fn batches(&self) -> Result<Vec<BatchInfo>, StoreError> {
        dispatch!(self, s => s.batches().await)
    }
    async fn schema_version(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => s.schema_version().await)
    }

    // ---- Cases ----
    async fn add_user(
        &self,
        name: &str,
        role: cases::UserRole,
        password_hash: &str,
        actor: &str,
    ) -> Result<cases::User, StoreError> {
        dispatch!(self, s => s.add_user(name, role, password_hash, actor).await)
    }
    async fn user(&self, name: &str) -> Result<Option<cases::User>, StoreError> {
        dispatch!(self, s => s.user(name).await)
    }
    async fn users(&self) -> Result<Vec<cases::User>, StoreError> {
        dispatch!(self, s => s.users().await)
    }
    async fn update_user(
        &self,
        name: &str,
        change: &cases::UserChange,
        actor: &str,
    ) -> Result<cases::User, StoreError> {
        dispatch!(self, s => s.update_user(name, change, actor).await)
    }
    async fn published_rules(&self) -> Result<Vec<cases::StoredRuleVersion>, StoreError> {
        dispatch!(self, s => s.published_rules().await)
    }
    async fn create_session(&self, x: &cases::NewSession) -> Result<(), StoreError> {
        dispatch!(self, s => s.create_session(x).await)
    }
    async fn session(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<cases::SessionInfo>, StoreError> {
        dispatch!(self, s => s.session(id, now_ms).await)
    }
    async fn delete_session(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        dispatch!(self, s => s.delete_session(id, now_ms).await)
    }
    async fn update_case(&self, u: &cases::CaseUpdate) -> Result<StoredAlert, StoreError> {
        dispatch!(self, s => s.update_case(u).await)
    }
    async fn add_note(
        &self,
        alert_id: &str,
        author: &str,
        body: &str,
    ) -> Result<cases::Note, StoreError> {
        dispatch!(self, s => s.add_note(alert_id, author, body).await)
    }
    async fn notes(&self, alert_id: &str) -> Result<Vec<cases::Note>, StoreError> {
        dispatch!(self, s => s.notes(alert_id).await)
    }
    async fn request_approval(
        &self,
        alert_id: &str,
        expected_version: i64,
        target: cases::Status,
        reason: Option<&str>,
        actor: &str,
    ) -> Result<cases::Approval, StoreError> {
        dispatch!(self, s => s.request_approval(alert_id, expected_version, target, reason, actor).await)
    }
    async fn decide_approval(
        &self,
        approval_id: i64,
        approve: bool,
        actor: &str,
    ) -> Result<cases::Approval, StoreError> {
        dispatch!(self, s => s.decide_approval(approval_id, approve, actor).await)
    }
    async fn approvals(
        &self,
        alert_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<cases::Approval>, StoreError> {
        dispatch!(self, s => s.approvals(alert_id, pending_only).await)
    }
    async fn count_alerts(&self, filter: &AlertFilter) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count_alerts(filter).await)
    }
    async fn status_counts(&self, filter: &AlertFilter) -> Result<Vec<(Status, u64)>, StoreError> {
        dispatch!(self, s => s.status_counts(filter).await)
    }
    async fn rule_hits(&self) -> Result<Vec<cases::RuleHits>, StoreError> {
        dispatch!(self, s => s.rule_hits().await)
    }
    async fn rule_versions(
        &self,
        rule_id: &str,
    ) -> Result<Vec<cases::StoredRuleVersion>, StoreError> {
        dispatch!(self, s => s.rule_versions(rule_id).await)
    }
    async fn publish_rule(&self, rule: &RuleVersion, actor: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.publish_rule(rule, actor).await)
    }
    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        dispatch!(self, s => s.account(id).await)
    }
    async fn account_transactions(
        &self,
        id: &str,
        limit: u64,
    ) -> Result<Vec<Transaction>, StoreError> {
        dispatch!(self, s => s.account_transactions(id, limit).await)
    }
    async fn audit(
        &self,
        actor: &str,
        action: &str,
        entity: &str,
        before: Option<String>,
        after: Option<String>,
    ) -> Result<cases::AuditEntry, StoreError> {
        dispatch!(self, s => s.audit(actor, action, entity, before, after).await)
    }
    async fn audit_log(
        &self,
        entity: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<cases::AuditEntry>, StoreError> {
        dispatch!(self, s => s.audit_log(entity, limit, offset).await)
    }
    async fn audit_verify(&self) -> Result<cases::AuditCheck, StoreError> {
        dispatch!(self, s => s.audit_verify().await)
    }
}
