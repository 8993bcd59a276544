//! The store: where loaded input (and, later, alerts and cases) persist. A [`Store`]
//! trait with one implementation per backend; [`open`] picks one from a database URL.
//! SQLite is the embedded default.

pub mod sqlite;

use std::path::Path;

use serde::Serialize;
use tokio::sync::mpsc::Receiver;

use crate::ingest::load::LoadMsg;
use crate::model::{Account, Merchant, Millis, Transaction};

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
    #[error("PostgreSQL is not supported yet (database URL {0:?})")]
    PostgresNotYetSupported(String),
    #[error("the load was aborted before commit; nothing was written")]
    Aborted,
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
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
    ) -> Result<Vec<Transaction>, StoreError>;
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    async fn merchants(&self) -> Result<Vec<Merchant>, StoreError>;
}

/// A store of any backend, chosen at run time.
pub enum AnyStore {
    Sqlite(SqliteStore),
}

/// Opens (creating and migrating if needed) the database at `url`: `sqlite:PATH`,
/// `sqlite::memory:`, a plain file path, or `postgres://…`.
pub async fn open(url: &str) -> Result<AnyStore, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(StoreError::PostgresNotYetSupported(url.to_string()));
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
    async fn transactions(
        &self,
        from: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<Vec<Transaction>, StoreError> {
        dispatch!(self, s => s.transactions(from, until).await)
    }
    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        dispatch!(self, s => s.accounts().await)
    }
    async fn merchants(&self) -> Result<Vec<Merchant>, StoreError> {
        dispatch!(self, s => s.merchants().await)
    }
}
