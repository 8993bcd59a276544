//! The store: where loaded input, alerts, cases, users and the audit log persist.
//!
//! Its interface is split by area: [`IngestStore`] (loads and the data they produced),
//! [`AlertStore`] (alerts, their evidence and the rule versions behind them),
//! [`CaseStore`] (the workflow: status, assignment, notes, approvals),
//! [`SuppressionStore`] (remembered dismissals), [`ListStore`] (watch and allow lists),
//! [`UserStore`] (users and sessions) and [`AuditStore`] (the hash-chained audit log); [`Store`] is all
//! of them. Each area is implemented once, in one module, for [`SqlStore`] over any
//! [`sql::Dialect`]; the two backends ([`sqlite`], the embedded default, and
//! [`postgres`], for teams) keep only connecting, migrating and bulk loading. [`open`]
//! picks a backend from a database URL and refuses a schema newer than this binary.

pub mod cases;
pub mod keys;
pub mod lists;
pub mod postgres;
pub mod queue;
pub mod records;
pub mod scans;
pub mod seal;
pub mod sql;
pub mod sqlite;
pub mod suppressions;

mod alerts;
mod audit;
mod data;
mod rows;
mod users;
mod workflow;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc::Receiver;

use clearwatch_ingest::load::LoadMsg;
use clearwatch_model::audit::{AuditReport, SignedHead};
use clearwatch_model::case::{AuditCheck, AuditEntry, Status, UserRole};
use clearwatch_model::cases::CaseHit;
use clearwatch_model::lists::{ListEntry, ListKind, ListValues, NewListEntry, WatchList};
use clearwatch_model::suppression::{NewSuppression, Suppression};
use clearwatch_model::triage::AlertHit;
use clearwatch_model::{
    Account, Alert, Merchant, Millis, Role, StoredAlert, Subject, Transaction, Window,
};

pub use cases::{
    Approval, CaseError, CaseUpdate, NewSession, Note, RuleHits, SessionInfo, StoredRuleVersion,
    User, UserChange,
};
pub use records::{
    AlertFilter, AlertSort, AuditFilter, BatchInfo, BatchReport, CurrencyTotal, Degree,
    QuarantineRow, RuleVersion, SaveReport, Stats, Suppressed, SuppressionQuery,
};

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
    #[error(
        "cannot reach database {url}: no connection within {seconds} s (is the server running and reachable?)"
    )]
    Unreachable { url: String, seconds: u64 },
    #[error(
        "{file}: {quarantined} of {read} rows quarantined, more than {max_percent} % allowed: nothing of this load was stored (first: {first})"
    )]
    TooManyQuarantined {
        file: String,
        quarantined: u64,
        read: u64,
        max_percent: f64,
        first: String,
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
    Case(#[from] CaseError),
    #[error("audit file {path}: {source}")]
    AuditFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit file {path}: {message}")]
    AuditFileInvalid { path: PathBuf, message: String },
    #[error("audit key {path}: holds {len} bytes, not 32")]
    AuditKeyInvalid { path: PathBuf, len: usize },
    #[error(
        "audit key {key} is missing but its signed head {head} exists: restore the key (a new one would fail every entry)"
    )]
    AuditKeyMissing { key: PathBuf, head: PathBuf },
    #[error(transparent)]
    Key(#[from] keys::KeyError),
}

/// A store over the sqlx database `DB`: a SQLite file or a PostgreSQL server, with the
/// audit log's key and signed head outside it.
pub struct SqlStore<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    seal: seal::AuditSeal,
}

impl<DB: sqlx::Database> SqlStore<DB> {
    pub fn pool(&self) -> &sqlx::Pool<DB> {
        &self.pool
    }
}

/// The embedded default store.
pub type SqliteStore = SqlStore<sqlx::Sqlite>;
/// The store for teams.
pub type PgStore = SqlStore<sqlx::Postgres>;

/// A store of either backend, chosen at run time.
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
/// `sqlite::memory:`, a plain file path, or `postgres://…` / `postgresql://…`; the audit
/// key is the default one of the backend ([`seal`]).
pub async fn open(url: &str) -> Result<AnyStore, StoreError> {
    open_with(url, None).await
}

/// [`open`] with the audit key file `audit_key` instead of the backend's default
/// (`PATH.audit-key` beside a SQLite file, [`seal::DEFAULT_PG_AUDIT_KEY`] in the working
/// directory for PostgreSQL); created on first use.
pub async fn open_with(url: &str, audit_key: Option<&Path>) -> Result<AnyStore, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let key = audit_key.unwrap_or(Path::new(seal::DEFAULT_PG_AUDIT_KEY));
        return Ok(AnyStore::Postgres(postgres::open(url, key).await?));
    }
    let url = if url.starts_with("sqlite:") {
        url.to_string()
    } else if url.contains("://") {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    } else {
        format!("sqlite:{}", Path::new(url).display())
    };
    let key = audit_key
        .map(Path::to_path_buf)
        .or_else(|| seal::sqlite_key_path(&url));
    Ok(AnyStore::Sqlite(sqlite::open(&url, key.as_deref()).await?))
}

/// Declares one area of the store interface and implements it for [`AnyStore`] by
/// handing each call to the backend's store: the signatures are written once.
macro_rules! store_area {
    (
        $(#[$meta:meta])*
        pub trait $area:ident {
            $(
                $(#[$fmeta:meta])*
                async fn $f:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
            )*
        }
    ) => {
        $(#[$meta])*
        #[allow(async_fn_in_trait)]
        pub trait $area {
            $(
                $(#[$fmeta])*
                async fn $f(&self $(, $arg: $ty)*) -> $ret;
            )*
        }

        impl $area for AnyStore {
            $(
                async fn $f(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        AnyStore::Sqlite(s) => s.$f($($arg),*).await,
                        AnyStore::Postgres(s) => s.$f($($arg),*).await,
                    }
                }
            )*
        }
    };
}

store_area! {
    /// Loads, and the data they produced: transactions, accounts, merchants, batches and
    /// the quarantine.
    pub trait IngestStore {
        /// Consumes a load stream in one database transaction; commits only on `Commit`.
        async fn load(&self, rx: Receiver<LoadMsg>) -> Result<Vec<BatchReport>, StoreError>;
        async fn stats(&self, top: usize) -> Result<Stats, StoreError>;
        /// Quarantined rows, of one batch or all, by batch and line, at most `limit`.
        async fn quarantine(
            &self,
            batch: Option<i64>,
            limit: u64,
        ) -> Result<Vec<QuarantineRow>, StoreError>;
        /// One quarantined row by its id.
        async fn quarantine_entry(&self, id: i64) -> Result<Option<QuarantineRow>, StoreError>;
        /// Deletes the quarantined rows of one batch, or all of them, in one transaction
        /// with its audit entry (`quarantine.purge`); returns how many. An unknown batch
        /// is an error (`not found`), not an audited purge of nothing.
        async fn purge_quarantine(&self, batch: Option<i64>, actor: &str) -> Result<u64, StoreError>;
        /// Streams the transactions with `ts` in `[from, until)`, in no particular order,
        /// into `sink` one row at a time (a scan of the store never holds every row at
        /// once); returns how many.
        async fn each_transaction(
            &self,
            from: Option<Millis>,
            until: Option<Millis>,
            sink: impl FnMut(Transaction) + Send,
        ) -> Result<u64, StoreError>;
        /// Every transaction from or to one of `accounts` (each once), into `sink`;
        /// returns how many. Reads through the account indexes when they exist
        /// ([`ScanStore::ensure_account_indexes`]), else the whole table.
        async fn each_transaction_of(
            &self,
            accounts: &[String],
            sink: impl FnMut(Transaction) + Send,
        ) -> Result<u64, StoreError>;
        /// Every registered account, by id.
        async fn accounts(&self) -> Result<Vec<Account>, StoreError>;
        /// The accounts `ids`, in the order given; those not in the registry come back
        /// unregistered.
        async fn accounts_of(&self, ids: &[String]) -> Result<Vec<Account>, StoreError>;
        async fn merchants(&self) -> Result<Vec<Merchant>, StoreError>;
        async fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;
        /// An account's transactions in and out, newest first.
        async fn account_transactions(
            &self,
            id: &str,
            limit: u64,
        ) -> Result<Vec<Transaction>, StoreError>;
        /// Every load batch, by id.
        async fn batches(&self) -> Result<Vec<BatchInfo>, StoreError>;
        /// The newest migration applied to the database.
        async fn schema_version(&self) -> Result<i64, StoreError>;
    }
}

store_area! {
    /// Alerts, the evidence they rest on, and the rule versions that produced them.
    pub trait AlertStore {
        /// Stores alerts (keyed by id: a stored id is left as it is) and rule versions, in
        /// one transaction.
        async fn save_alerts(
            &self,
            alerts: &[Alert],
            rules: &[RuleVersion],
        ) -> Result<SaveReport, StoreError>;
        /// The alerts matching `filter`, evidence included.
        async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError>;
        async fn alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError>;
        /// The subject, rule and score of the alerts matching `filter`, in its order and
        /// within its limit: what entity risk reads, without evidence.
        async fn alert_hits(&self, filter: &AlertFilter) -> Result<Vec<AlertHit>, StoreError>;
        /// What a case reads of the alerts matching `filter`, in its order and within its
        /// limit: no evidence, no metrics.
        async fn case_hits(&self, filter: &AlertFilter) -> Result<Vec<CaseHit>, StoreError>;
        /// The stored evidence transactions of `subject`'s alerts matching `filter`, each
        /// counted once, summed per currency (minor units), by currency.
        async fn case_amounts(
            &self,
            subject: &Subject,
            filter: &AlertFilter,
        ) -> Result<Vec<(String, i128)>, StoreError>;
        /// How many alerts match `filter` (its limit and offset aside).
        async fn count_alerts(&self, filter: &AlertFilter) -> Result<u64, StoreError>;
        /// Alerts per status, for every status, under `filter` without its status condition.
        async fn status_counts(&self, filter: &AlertFilter) -> Result<Vec<(Status, u64)>, StoreError>;
        /// The alert's evidence transactions that are stored, in evidence order, with the
        /// batch each was loaded in.
        async fn evidence_transactions(
            &self,
            alert_id: &str,
        ) -> Result<Vec<(Transaction, i64)>, StoreError>;
        /// The alert's evidence accounts; those not in the registry come back unregistered.
        async fn evidence_accounts(&self, alert_id: &str) -> Result<Vec<Account>, StoreError>;
        async fn rule_version(
            &self,
            rule_id: &str,
            version: &str,
        ) -> Result<Option<RuleVersion>, StoreError>;
        /// The stored versions of a rule, newest first.
        async fn rule_versions(&self, rule_id: &str) -> Result<Vec<StoredRuleVersion>, StoreError>;
        /// The newest published version of each rule that was published from the dashboard.
        async fn published_rules(&self) -> Result<Vec<StoredRuleVersion>, StoreError>;
        /// Stores a rule version published from the dashboard and records who published it.
        async fn publish_rule(&self, rule: &RuleVersion, actor: &str) -> Result<(), StoreError>;
        /// Alert counts and dispositions per rule.
        async fn rule_hits(&self) -> Result<Vec<RuleHits>, StoreError>;
    }
}

store_area! {
    /// Scan state: the marks of incremental scans, episode spans, and saving a scan in
    /// place of the results it supersedes ([`scans`]).
    pub trait ScanStore {
        /// The newest transaction and registry batches.
        async fn newest_batches(&self) -> Result<scans::Batches, StoreError>;
        /// Creates the indexes of transactions by account, if missing: what reads an
        /// account's transactions (the stream workers) creates them, so that loads into a
        /// store nothing reads that way do not pay for them ([`scans::ACCOUNT_INDEXES`]).
        async fn ensure_account_indexes(&self) -> Result<(), StoreError>;
        /// How far each rule version has scanned the store.
        async fn scan_marks(&self) -> Result<Vec<scans::ScanMark>, StoreError>;
        /// The time span of the transactions loaded after batch `batch`.
        async fn loaded_since(&self, batch: i64) -> Result<scans::Since, StoreError>;
        /// Whether every transaction batch loaded after `rule`'s mark came from a stream
        /// worker that evaluates the local rules ([`scans::EVALUATED_SOURCE`]) and was
        /// loaded after the mark was written (a batch loaded while the scan that wrote it
        /// ran may have had its worker's alerts replaced by that scan's). `false` without
        /// a mark.
        async fn streamed_since_mark(&self, rule: &RuleVersion) -> Result<bool, StoreError>;
        /// The subjects of `rule`'s stored alerts whose episodes hold some time in
        /// `[first, last]`, sorted.
        async fn episode_subjects(
            &self,
            rule: &RuleVersion,
            first: Millis,
            last: Millis,
        ) -> Result<Vec<String>, StoreError>;
        /// The span of the episode a stored alert reports (its first firing window's start
        /// to its last one's end), or `None` where no scan recorded one.
        async fn alert_episode(&self, id: &str) -> Result<Option<Window>, StoreError>;
        /// The episode spans stored for those of `ids` that have one.
        async fn alert_episodes(&self, ids: &[String]) -> Result<HashMap<String, Window>, StoreError>;
        /// Replaces the roles inferred from behaviour with `roles` (what a scan of the
        /// whole store found), in one transaction.
        async fn save_inferred_roles(&self, roles: &[(String, Role)]) -> Result<(), StoreError>;
        /// The inferred roles of those of `ids` that have one.
        async fn inferred_roles(&self, ids: &[String]) -> Result<HashMap<String, Role>, StoreError>;
        /// Stores a scan's alerts, episode spans and marks in one transaction, removing
        /// the superseded alerts nobody worked on.
        async fn save_scan(&self, save: scans::ScanSave<'_>) -> Result<scans::ScanSaved, StoreError>;
    }
}

store_area! {
    /// The case workflow on stored alerts; every change is audited in the same
    /// transaction.
    pub trait CaseStore {
        /// Changes status and/or assignee if the alert is still at `expected_version`
        /// (else [`CaseError::Conflict`]); escalation and dismissal go through
        /// [`CaseStore::request_approval`].
        async fn update_case(&self, u: &CaseUpdate) -> Result<StoredAlert, StoreError>;
        /// Applies every change as [`CaseStore::update_case`] does, in one transaction:
        /// if any is refused ([`CaseError::Bulk`] names which), none is made. Returns how
        /// many alerts changed.
        async fn bulk_update(&self, updates: &[CaseUpdate]) -> Result<u64, StoreError>;
        async fn add_note(&self, alert_id: &str, author: &str, body: &str) -> Result<Note, StoreError>;
        async fn notes(&self, alert_id: &str) -> Result<Vec<Note>, StoreError>;
        /// Asks a supervisor to approve an escalation or dismissal (a reason is required
        /// for dismissal); bumps the alert's version. A dismissal may ask for a
        /// suppression, which the same decision activates or rejects.
        async fn request_approval(
            &self,
            alert_id: &str,
            expected_version: i64,
            target: Status,
            reason: Option<&str>,
            actor: &str,
            suppress: Option<&NewSuppression>,
        ) -> Result<Approval, StoreError>;
        /// A supervisor other than the requester approves (the case moves) or rejects.
        async fn decide_approval(
            &self,
            approval_id: i64,
            approve: bool,
            actor: &str,
        ) -> Result<Approval, StoreError>;
        /// Requests, newest first, of one alert or all.
        async fn approvals(
            &self,
            alert_id: Option<&str>,
            pending_only: bool,
        ) -> Result<Vec<Approval>, StoreError>;
    }
}

store_area! {
    /// Suppressions: listed and lifted here; written and decided with their dismissal
    /// requests ([`CaseStore`]).
    pub trait SuppressionStore {
        /// Suppressions, newest first (at most [`suppressions::LIST_LIMIT`]), with their
        /// state and the alerts they hide now.
        async fn suppressions(&self, q: &SuppressionQuery) -> Result<Vec<Suppression>, StoreError>;
        /// A supervisor ends an active suppression before it expires, audited.
        async fn lift_suppression(&self, id: i64, actor: &str) -> Result<Suppression, StoreError>;
    }
}

store_area! {
    /// Watch lists and allow lists ([`lists`]).
    pub trait ListStore {
        /// Every list, by name, with its entries in force.
        async fn lists(&self) -> Result<Vec<WatchList>, StoreError>;
        /// A list and its entries, newest first (at most [`lists::ENTRY_LIMIT`]).
        async fn list(&self, name: &str) -> Result<Option<(WatchList, Vec<ListEntry>)>, StoreError>;
        /// A supervisor creates a list, audited.
        async fn create_list(
            &self,
            name: &str,
            kind: ListKind,
            description: &str,
            actor: &str,
        ) -> Result<WatchList, StoreError>;
        /// Adds an entry, audited: to an allow list a supervisor, to a watch list an
        /// analyst or a supervisor.
        async fn add_list_entry(
            &self,
            list: &str,
            new: &NewListEntry,
            actor: &str,
        ) -> Result<ListEntry, StoreError>;
        /// A supervisor ends an entry before it expires, audited; it stays listed.
        async fn remove_list_entry(
            &self,
            list: &str,
            id: i64,
            actor: &str,
        ) -> Result<ListEntry, StoreError>;
        /// The entries in force now, for the rules of a scan.
        async fn list_values(&self) -> Result<ListValues, StoreError>;
    }
}

store_area! {
    /// Dashboard users and their sessions.
    pub trait UserStore {
        /// Adds a user; refuses a name that exists.
        async fn add_user(
            &self,
            name: &str,
            role: UserRole,
            password_hash: &str,
            actor: &str,
        ) -> Result<User, StoreError>;
        async fn user(&self, name: &str) -> Result<Option<User>, StoreError>;
        async fn users(&self) -> Result<Vec<User>, StoreError>;
        /// Changes a user's role, time zone and/or disabled flag, audited (before and
        /// after); disabling ends the user's sessions.
        async fn update_user(
            &self,
            name: &str,
            change: &UserChange,
            actor: &str,
        ) -> Result<User, StoreError>;
        /// Sets a user's password hash and whether they must change it at their next
        /// request, audited; ends every session of the user but `keep_session`.
        async fn set_password(
            &self,
            name: &str,
            password_hash: &str,
            must_change: bool,
            actor: &str,
            keep_session: Option<&str>,
        ) -> Result<(), StoreError>;
        async fn create_session(&self, s: &NewSession) -> Result<(), StoreError>;
        /// The unexpired session whose id (token hash) is `id`.
        async fn session(&self, id: &str, now_ms: i64) -> Result<Option<SessionInfo>, StoreError>;
        /// Deletes the session `id` and every expired one.
        async fn delete_session(&self, id: &str, now_ms: i64) -> Result<(), StoreError>;
    }
}

store_area! {
    /// The append-only, hash-chained audit log.
    pub trait AuditStore {
        /// Appends one entry on its own.
        async fn audit(
            &self,
            actor: &str,
            action: &str,
            entity: &str,
            before: Option<String>,
            after: Option<String>,
        ) -> Result<AuditEntry, StoreError>;
        /// Entries newest first matching `filter`.
        async fn audit_search(
            &self,
            filter: &AuditFilter,
            limit: u64,
            offset: u64,
        ) -> Result<Vec<AuditEntry>, StoreError>;
        /// Entries newest first, optionally of one entity (`alert:ID`).
        async fn audit_log(
            &self,
            entity: Option<&str>,
            limit: u64,
            offset: u64,
        ) -> Result<Vec<AuditEntry>, StoreError>;
        /// Checks the whole log against the key and the signed head; broken at the first
        /// finding, with every finding named.
        async fn audit_verify(&self) -> Result<AuditCheck, StoreError>;
        /// Checks the whole log against the key, the signed head and `checkpoints`
        /// (`(name, checkpoint)`), naming every finding.
        async fn audit_report(
            &self,
            checkpoints: &[(String, SignedHead)],
        ) -> Result<AuditReport, StoreError>;
        /// The signed head as it is now, to copy out as a checkpoint (`None` for an
        /// in-memory store, or before the first head is written).
        async fn audit_checkpoint(&self) -> Result<Option<SignedHead>, StoreError>;
        /// Writes a copy of the signed head as a checkpoint file: to `out`, or else into
        /// the checkpoints folder beside the key, named after its sequence number and
        /// time. `None` when there is no head (an in-memory store).
        async fn write_audit_checkpoint(
            &self,
            out: Option<&Path>,
        ) -> Result<Option<(PathBuf, SignedHead)>, StoreError>;
    }
}

/// The whole store interface.
pub trait Store:
    IngestStore
    + AlertStore
    + CaseStore
    + SuppressionStore
    + ListStore
    + UserStore
    + AuditStore
    + ScanStore
{
    /// Every transaction with `ts` in `[from, until)`, in no particular order.
    #[allow(async_fn_in_trait)]
    async fn transactions(
        &self,
        from: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<Vec<Transaction>, StoreError> {
        let mut all = Vec::new();
        self.each_transaction(from, until, |t| all.push(t)).await?;
        Ok(all)
    }
}

impl<
    S: IngestStore
        + AlertStore
        + CaseStore
        + SuppressionStore
        + ListStore
        + UserStore
        + AuditStore
        + ScanStore,
> Store for S
{
}
