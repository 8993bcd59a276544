//! The ingest area: the load loop (one database transaction per load, one batch per file,
//! NUL-byte rows quarantined so both backends agree, `read = loaded + quarantined +
//! duplicates` checked before commit), and what loads produced: transactions, accounts,
//! merchants, batches, the quarantine, statistics. How rows reach their table fast is the
//! [`Backend`].

use std::future::Future;

use futures_util::TryStreamExt;
use tokio::sync::mpsc::Receiver;

use crate::cases::CaseError;
use crate::records::{BatchInfo, BatchReport, CurrencyTotal, Degree, QuarantineRow, Stats};
use crate::rows;
use crate::sql::{self, Dialect, Value, get, query};
use crate::{IngestStore, SqlStore, StoreError};
use clearwatch_ingest::load::{LoadMsg, LoadRow};
use clearwatch_ingest::{Rejection, TableKind};
use clearwatch_model::{
    Account, Currency, Merchant, Millis, Table, Transaction, format_amount, format_ts,
};

/// 2^32: amounts are summed in two halves of this size (see `stats`).
const HALF: i64 = 1 << 32;

/// A loaded record as the store writes it: its columns' values in
/// [`Table::COLUMNS`] order.
pub trait Loadable: Table {
    fn values(&self) -> Vec<Value<'_>>;
}

impl Loadable for Transaction {
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::Text(&self.tx_id),
            Value::Int(self.ts),
            Value::Text(&self.from),
            Value::Text(&self.to),
            Value::Int(self.amount),
            Value::Text(self.currency.code()),
            Value::Text(self.tx_type.as_str()),
            Value::OptText(self.merchant_id.as_deref()),
            Value::OptText(self.channel.as_deref()),
            Value::OptText(self.region.as_deref()),
            Value::OptText(self.memo.as_deref()),
        ]
    }
}

impl Loadable for Account {
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::Text(&self.account_id),
            Value::OptText(self.holder_id.as_deref()),
            Value::OptText(self.holder_name.as_deref()),
            Value::OptText(self.kind.map(|k| k.as_str())),
            Value::Text(self.role.as_str()),
            Value::Bool(self.licensed),
            Value::OptText(self.institution.as_deref()),
            Value::OptText(self.region.as_deref()),
        ]
    }
}

impl Loadable for Merchant {
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::Text(&self.merchant_id),
            Value::OptText(self.legal_name.as_deref()),
            Value::OptText(self.holder_id.as_deref()),
            Value::OptText(self.settlement_account.as_deref()),
            Value::OptText(self.acquirer.as_deref()),
            Value::OptText(self.mcc.as_deref()),
            Value::OptInt(self.settlement_cycle_days.map(i64::from)),
        ]
    }
}

/// The file being loaded: its report so far, and the rows a backend has staged for it.
#[derive(Debug, Default)]
pub struct FileLoad {
    pub report: BatchReport,
    /// The table of the rows staged so far, and how many (PostgreSQL stages a file's
    /// rows and merges them at its end).
    pub staged: Option<(TableKind, u64)>,
    /// The first and last time of the transactions offered so far (duplicates included).
    pub ts_span: Option<(Millis, Millis)>,
}

impl FileLoad {
    /// A repeated id with different content: the row is quarantined.
    pub fn conflict<T: Table>(
        &self,
        line: u64,
        id: &str,
        stored_batch: i64,
        stored_line: i64,
    ) -> Rejection {
        let key = T::key_column();
        Rejection {
            source: self.report.source.clone(),
            line,
            field: Some(key.to_string()),
            reason: format!(
                "{key} {id:?} is already loaded (batch {stored_batch}, line {stored_line}) with different content"
            ),
            raw: String::new(),
        }
    }
}

/// What each backend keeps for itself: its schema version, and writing loaded rows,
/// quarantine entries and alerts in bulk.
pub trait Backend: Dialect {
    /// Taken at the start of a load, so that one load writes at a time.
    const LOAD_LOCK: Option<&'static str>;

    /// Counts the migrations tables (0 or 1) of the database.
    const HAS_MIGRATIONS: &'static str;

    /// Writes a chunk of a file's rows (none holds a NUL byte): new ids are loaded, a
    /// repeat of a stored row counts as a duplicate, a stored id with other content is
    /// quarantined.
    fn put_rows<'e, T: Loadable>(
        c: &'e mut Self::Connection,
        file: &'e mut FileLoad,
        kind: TableKind,
        rows: &'e [LoadRow<T>],
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'e;

    /// Finishes the file's rows.
    fn finish_rows<'e>(
        c: &'e mut Self::Connection,
        file: &'e mut FileLoad,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'e;

    fn put_quarantine<'e>(
        c: &'e mut Self::Connection,
        file: &'e mut FileLoad,
        rows: &'e [Rejection],
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'e;

    /// Inserts the alerts whose id is new, with their evidence; returns how many were new.
    fn put_alerts<'e>(
        c: &'e mut Self::Connection,
        alerts: &'e [clearwatch_model::Alert],
        now: &'e str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'e;

    /// Hands every transaction with `lo <= ts < hi` to `sink`, in no particular order;
    /// returns how many.
    fn each_transaction<'e>(
        c: &'e mut Self::Connection,
        lo: i64,
        hi: i64,
        sink: &'e mut (dyn FnMut(Transaction) + Send),
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'e;
}

/// [`Backend::each_transaction`] row by row: a statement streamed through sqlx.
pub async fn each_transaction_streamed<DB: Backend>(
    c: &mut DB::Connection,
    lo: i64,
    hi: i64,
    sink: &mut (dyn FnMut(Transaction) + Send),
) -> Result<u64, StoreError> {
    let sql = format!(
        "SELECT {} FROM transactions t WHERE t.ts >= $1 AND t.ts < $2",
        rows::TX_COLUMNS
    );
    let mut stream = DB::fetch(c, DB::bind(DB::bind(query(&sql), lo), hi));
    let mut n = 0;
    while let Some(row) = stream.try_next().await? {
        sink(rows::transaction::<DB>(&row, 0)?);
        n += 1;
    }
    Ok(n)
}

/// Splits off the rows holding a NUL byte, which PostgreSQL text cannot store, as
/// quarantine entries; both backends do it so that they agree.
fn without_nul_rows<T: Table>(
    rows: Vec<LoadRow<T>>,
    source: &str,
) -> (Vec<LoadRow<T>>, Vec<Rejection>) {
    if !rows.iter().any(|r| r.record.nul_field().is_some()) {
        return (rows, Vec::new());
    }
    let mut bad = Vec::new();
    let good = rows
        .into_iter()
        .filter(|row| match row.record.nul_field() {
            None => true,
            Some(field) => {
                bad.push(Rejection {
                    source: source.to_string(),
                    line: row.line,
                    field: Some(field.to_string()),
                    reason: format!("{field} contains a NUL byte"),
                    raw: String::new(),
                });
                false
            }
        })
        .collect();
    (good, bad)
}

async fn put_chunk<DB: Backend, T: Loadable>(
    c: &mut DB::Connection,
    file: &mut FileLoad,
    kind: TableKind,
    rows: Vec<LoadRow<T>>,
) -> Result<(), StoreError> {
    // Rows belong to the batch `Begin` made; a stream without it is refused (no foreign
    // key checks a transaction's batch on PostgreSQL).
    if file.report.batch_id == 0 {
        return Err(StoreError::Corrupt(format!(
            "load stream sends {} rows before naming their file",
            kind.as_str()
        )));
    }
    let (good, bad) = without_nul_rows(rows, &file.report.source);
    if !bad.is_empty() {
        DB::put_quarantine(c, file, &bad).await?;
    }
    match file.staged {
        Some((k, _)) if k != kind => {
            return Err(StoreError::Corrupt(format!(
                "load stream mixes record kinds in one file ({})",
                kind.as_str()
            )));
        }
        _ => {}
    }
    DB::put_rows(c, file, kind, &good).await
}

/// The newest applied migration, if the database has a migrations table.
pub async fn applied_version<DB: Backend>(
    pool: &sqlx::Pool<DB>,
) -> Result<Option<i64>, StoreError> {
    let mut c = pool.acquire().await?;
    let has = DB::fetch_optional(&mut c, query(DB::HAS_MIGRATIONS)).await?;
    if has.map_or(Ok(0), |r| get::<DB, i64>(&r, 0))? == 0 {
        return Ok(None);
    }
    let row = DB::fetch_optional(
        &mut c,
        query("SELECT MAX(version) FROM _sqlx_migrations WHERE success"),
    )
    .await?;
    Ok(row
        .map(|r| get::<DB, Option<i64>>(&r, 0))
        .transpose()?
        .flatten())
}

fn tx_filter(from: Option<Millis>, until: Option<Millis>) -> [i64; 2] {
    [from.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)]
}

impl<DB: Backend> IngestStore for SqlStore<DB> {
    async fn load(&self, mut rx: Receiver<LoadMsg>) -> Result<Vec<BatchReport>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(lock) = DB::LOAD_LOCK {
            DB::execute(&mut tx, query(lock)).await?;
        }
        let mut reports = Vec::new();
        let mut file = FileLoad::default();
        let mut first_rejection: Option<String> = None;
        let mut sealed = Vec::new();
        while let Some(msg) = rx.recv().await {
            match msg {
                LoadMsg::Begin {
                    kind,
                    source,
                    profile,
                } => {
                    // Batch ids stay dense: one load writes at a time on both backends.
                    let sql = format!(
                        "INSERT INTO batches (batch_id, kind, source, profile, loaded_at) \
                         SELECT COALESCE(MAX(batch_id), 0) + 1, $1, $2, $3, {} FROM batches \
                         RETURNING batch_id",
                        DB::ts_param(4)
                    );
                    let q = DB::bind(query(&sql), kind.as_str());
                    let q = DB::bind(
                        DB::bind(DB::bind(q, source.as_str()), profile.as_str()),
                        rows::now_text(),
                    );
                    let row = DB::fetch_optional(&mut tx, q)
                        .await?
                        .ok_or(StoreError::Aborted)?;
                    file = FileLoad {
                        report: BatchReport {
                            batch_id: get::<DB, _>(&row, 0)?,
                            kind: kind.as_str().to_string(),
                            source,
                            ..Default::default()
                        },
                        staged: None,
                        ts_span: None,
                    };
                }
                LoadMsg::Transactions(rows) => {
                    for r in &rows {
                        let t = r.record.ts;
                        file.ts_span =
                            Some(file.ts_span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
                    }
                    put_chunk::<DB, _>(&mut tx, &mut file, TableKind::Transactions, rows).await?
                }
                LoadMsg::Accounts(rows) => {
                    put_chunk::<DB, _>(&mut tx, &mut file, TableKind::Accounts, rows).await?
                }
                LoadMsg::Merchants(rows) => {
                    put_chunk::<DB, _>(&mut tx, &mut file, TableKind::Merchants, rows).await?
                }
                LoadMsg::Rejected(rows) => {
                    if first_rejection.is_none()
                        && let Some(r) = rows.first()
                    {
                        first_rejection = Some(format!("{}:{}: {}", r.source, r.line, r.reason));
                    }
                    DB::put_quarantine(&mut tx, &mut file, &rows).await?
                }
                LoadMsg::End(summary) => {
                    DB::finish_rows(&mut tx, &mut file).await?;
                    let r = &mut file.report;
                    r.read = summary.rows_read;
                    r.sha256 = summary.sha256;
                    r.unknown_types = summary.unknown_types;
                    if r.read != r.loaded + r.quarantined + r.duplicates {
                        return Err(StoreError::Corrupt(format!(
                            "{}: read {} != loaded {} + quarantined {} + duplicates {}",
                            r.source, r.read, r.loaded, r.quarantined, r.duplicates
                        )));
                    }
                    let mut q = query(
                        "UPDATE batches SET sha256 = $1, rows_read = $2, rows_loaded = $3, \
                         rows_quarantined = $4, rows_duplicate = $5, unknown_types = $6, \
                         ts_first = $7, ts_last = $8 WHERE batch_id = $9",
                    );
                    q = DB::bind(q, r.sha256.clone());
                    for n in [
                        r.read,
                        r.loaded,
                        r.quarantined,
                        r.duplicates,
                        r.unknown_types,
                    ] {
                        q = DB::bind(q, n as i64);
                    }
                    q = DB::bind(q, file.ts_span.map(|s| s.0));
                    q = DB::bind(q, file.ts_span.map(|s| s.1));
                    q = DB::bind(q, r.batch_id);
                    DB::execute(&mut tx, q).await?;
                    reports.push(std::mem::take(&mut file).report);
                }
                LoadMsg::Retried {
                    batch_id,
                    lines,
                    actor,
                } => {
                    let q = DB::bind(
                        query("SELECT batch_id FROM batches WHERE batch_id = $1"),
                        batch_id,
                    );
                    if DB::fetch_optional(&mut tx, q).await?.is_none() {
                        return Err(CaseError::NotFound(format!("batch {batch_id}")).into());
                    }
                    let mut removed = 0;
                    for line in &lines {
                        let q = query("DELETE FROM quarantine WHERE batch_id = $1 AND line = $2");
                        let q = DB::bind(DB::bind(q, batch_id), *line as i64);
                        removed += DB::execute(&mut tx, q).await?;
                    }
                    let into = reports.last().map_or(0, |r: &BatchReport| r.batch_id);
                    let (loaded, quarantined) = reports
                        .last()
                        .map_or((0, 0), |r: &BatchReport| (r.loaded, r.quarantined));
                    let after = serde_json::json!({
                        "retried_rows": removed,
                        "into_batch": into,
                        "loaded": loaded,
                        "quarantined_again": quarantined,
                    })
                    .to_string();
                    sealed.push(
                        crate::audit::append::<DB>(
                            &mut tx,
                            self.seal.key(),
                            &actor,
                            "quarantine.retry",
                            &format!("batch:{batch_id}"),
                            None,
                            Some(after),
                        )
                        .await?,
                    );
                }
                LoadMsg::Commit(policy) => {
                    if let Some(r) = reports
                        .iter()
                        .find(|r| !policy.allows(r.quarantined, r.read))
                    {
                        // Dropping `tx` rolls the whole load back.
                        return Err(StoreError::TooManyQuarantined {
                            file: r.source.clone(),
                            quarantined: r.quarantined,
                            read: r.read,
                            max_percent: policy.max_quarantined.unwrap_or(1.0) * 100.0,
                            first: first_rejection.unwrap_or_default(),
                        });
                    }
                    tx.commit().await?;
                    for entry in &sealed {
                        self.sealed(entry)?;
                    }
                    return Ok(reports);
                }
            }
        }
        // The sender went away without committing: dropping `tx` rolls back.
        Err(StoreError::Aborted)
    }

    async fn stats(&self, top: usize) -> Result<Stats, StoreError> {
        let mut c = self.pool.acquire().await?;
        let mut count = async |sql: &str| -> Result<u64, StoreError> {
            let row = DB::fetch_optional(&mut c, query(sql)).await?;
            Ok(row.map_or(Ok(0), |r| get::<DB, i64>(&r, 0))? as u64)
        };
        let transactions = count("SELECT COUNT(*) FROM transactions").await?;
        let quarantined = count("SELECT COUNT(*) FROM quarantine").await?;
        let batches = count("SELECT COUNT(*) FROM batches").await?;
        let merchants = count("SELECT COUNT(*) FROM merchants").await?;
        let accounts_registered = count("SELECT COUNT(*) FROM accounts").await?;
        let accounts_unregistered = count(
            "SELECT COUNT(*) FROM (SELECT from_account AS a FROM transactions \
             UNION SELECT to_account FROM transactions) u \
             WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE account_id = u.a)",
        )
        .await?;
        let accounts_by_role = DB::fetch_all(
            &mut c,
            query("SELECT role, COUNT(*) FROM accounts GROUP BY role ORDER BY role"),
        )
        .await?
        .iter()
        .map(|r| Ok((get::<DB, String>(r, 0)?, get::<DB, i64>(r, 1)? as u64)))
        .collect::<Result<_, StoreError>>()?;
        let range = DB::fetch_optional(&mut c, query("SELECT MIN(ts), MAX(ts) FROM transactions"))
            .await?
            .ok_or_else(|| StoreError::Corrupt("no MIN/MAX row".into()))?;
        let first_ts = get::<DB, Option<i64>>(&range, 0)?.map(format_ts);
        let last_ts = get::<DB, Option<i64>>(&range, 1)?.map(format_ts);
        // SUM(amount) overflows 64 bits (SQLite fails, a cast would too): the amounts are
        // summed as high and low 32-bit halves, each sum far from 2^63 for under 2^31
        // rows, and joined in 128 bits.
        let totals_sql = format!(
            "SELECT currency, COUNT(*), CAST(SUM(amount / {HALF}) AS {int8}), \
             CAST(SUM(amount % {HALF}) AS {int8}) FROM transactions \
             GROUP BY currency ORDER BY currency",
            int8 = DB::INT8
        );
        let mut totals = Vec::new();
        for r in DB::fetch_all(&mut c, query(&totals_sql)).await? {
            let currency: String = get::<DB, _>(&r, 0)?;
            let high = i128::from(get::<DB, i64>(&r, 2)?);
            let low = i128::from(get::<DB, i64>(&r, 3)?);
            let amount = high * i128::from(HALF) + low;
            let exp = Currency::from_code(&currency).map_or(0, Currency::exponent);
            totals.push(CurrencyTotal {
                amount_text: format_amount(amount, exp),
                currency,
                transactions: get::<DB, i64>(&r, 1)? as u64,
                amount,
            });
        }
        let mut degrees = Vec::new();
        for (side, other) in [
            ("from_account", "to_account"),
            ("to_account", "from_account"),
        ] {
            let sql = format!(
                "SELECT {side}, COUNT(DISTINCT {other}) AS d, COUNT(*) FROM transactions \
                 GROUP BY {side} ORDER BY d DESC, {side} LIMIT $1"
            );
            let rows = DB::fetch_all(&mut c, DB::bind(query(&sql), top as i64)).await?;
            degrees.push(
                rows.iter()
                    .map(|r| {
                        Ok(Degree {
                            account: get::<DB, _>(r, 0)?,
                            degree: get::<DB, i64>(r, 1)? as u64,
                            transactions: get::<DB, i64>(r, 2)? as u64,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?,
            );
        }
        let top_in_degree = degrees.pop().unwrap_or_default();
        let top_out_degree = degrees.pop().unwrap_or_default();
        Ok(Stats {
            transactions,
            quarantined,
            batches,
            merchants,
            accounts_registered,
            accounts_unregistered,
            accounts_by_role,
            first_ts,
            last_ts,
            totals,
            top_out_degree,
            top_in_degree,
        })
    }

    async fn quarantine(
        &self,
        batch: Option<i64>,
        limit: u64,
    ) -> Result<Vec<QuarantineRow>, StoreError> {
        let columns = rows::QUARANTINE_COLUMNS;
        let filter = if batch.is_some() {
            "WHERE batch_id = $1 ORDER BY batch_id, line, id LIMIT $2"
        } else {
            "ORDER BY batch_id, line, id LIMIT $1"
        };
        let sql = format!("SELECT {columns} FROM quarantine {filter}");
        let mut q = query(&sql);
        if let Some(b) = batch {
            q = DB::bind(q, b);
        }
        let q = DB::bind(q, sql::count(limit));
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, q)
            .await?
            .iter()
            .map(rows::quarantine::<DB>)
            .collect()
    }

    async fn quarantine_entry(&self, id: i64) -> Result<Option<QuarantineRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM quarantine WHERE id = $1",
            rows::QUARANTINE_COLUMNS
        );
        let mut c = self.pool.acquire().await?;
        DB::fetch_optional(&mut c, DB::bind(query(&sql), id))
            .await?
            .as_ref()
            .map(rows::quarantine::<DB>)
            .transpose()
    }

    async fn purge_quarantine(&self, batch: Option<i64>, actor: &str) -> Result<u64, StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        let purged = match batch {
            Some(b) => {
                let q = DB::bind(query("SELECT batch_id FROM batches WHERE batch_id = $1"), b);
                if DB::fetch_optional(&mut tx, q).await?.is_none() {
                    return Err(CaseError::NotFound(format!("batch {b}")).into());
                }
                let q = DB::bind(query("DELETE FROM quarantine WHERE batch_id = $1"), b);
                DB::execute(&mut tx, q).await?
            }
            None => DB::execute(&mut tx, query("DELETE FROM quarantine")).await?,
        };
        let entity = batch.map_or_else(|| "quarantine".to_string(), |b| format!("batch:{b}"));
        let after = serde_json::json!({ "purged_rows": purged }).to_string();
        let sealed = crate::audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            "quarantine.purge",
            &entity,
            None,
            Some(after),
        )
        .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(purged)
    }

    async fn each_transaction(
        &self,
        from: Option<Millis>,
        until: Option<Millis>,
        mut sink: impl FnMut(Transaction) + Send,
    ) -> Result<u64, StoreError> {
        let [lo, hi] = tx_filter(from, until);
        let mut c = self.pool.acquire().await?;
        DB::each_transaction(&mut c, lo, hi, &mut sink).await
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let sql = format!(
            "SELECT {} FROM accounts a ORDER BY a.account_id",
            rows::account_columns("a.account_id")
        );
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, query(&sql))
            .await?
            .iter()
            .map(rows::account::<DB>)
            .collect()
    }

    async fn each_transaction_of(
        &self,
        accounts: &[String],
        mut sink: impl FnMut(Transaction) + Send,
    ) -> Result<u64, StoreError> {
        // A transaction between two accounts of different chunks comes back twice.
        let mut seen = std::collections::HashSet::new();
        let mut c = self.pool.acquire().await?;
        for part in accounts.chunks(400) {
            let mut b = sql::Builder::new(format!(
                "SELECT {} FROM transactions t WHERE t.from_account IN ",
                rows::TX_COLUMNS
            ));
            b.push_list(part.iter().map(|id| Value::Text(id)));
            b.push(" OR t.to_account IN ");
            b.push_list(part.iter().map(|id| Value::Text(id)));
            for r in DB::fetch_all(&mut c, b.build()).await? {
                let t = rows::transaction::<DB>(&r, 0)?;
                if seen.insert(t.tx_id.clone()) {
                    sink(t);
                }
            }
        }
        Ok(seen.len() as u64)
    }

    async fn accounts_of(&self, ids: &[String]) -> Result<Vec<Account>, StoreError> {
        let mut found = std::collections::HashMap::new();
        let mut c = self.pool.acquire().await?;
        for part in ids.chunks(500) {
            let mut b = sql::Builder::new(format!(
                "SELECT {} FROM accounts a WHERE a.account_id IN ",
                rows::account_columns("a.account_id")
            ));
            b.push_list(part.iter().map(|id| Value::Text(id)));
            for r in DB::fetch_all(&mut c, b.build()).await? {
                let a = rows::account::<DB>(&r)?;
                found.insert(a.account_id.clone(), a);
            }
        }
        Ok(ids
            .iter()
            .map(|id| {
                found
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| Account::unregistered(id))
            })
            .collect())
    }

    async fn merchants(&self) -> Result<Vec<Merchant>, StoreError> {
        let sql = format!(
            "SELECT {} FROM merchants ORDER BY merchant_id",
            rows::MERCHANT_COLUMNS
        );
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, query(&sql))
            .await?
            .iter()
            .map(rows::merchant::<DB>)
            .collect()
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let sql = format!(
            "SELECT {} FROM accounts a WHERE a.account_id = $1",
            rows::account_columns("a.account_id")
        );
        let mut c = self.pool.acquire().await?;
        DB::fetch_optional(&mut c, DB::bind(query(&sql), id))
            .await?
            .as_ref()
            .map(rows::account::<DB>)
            .transpose()
    }

    async fn account_transactions(
        &self,
        id: &str,
        limit: u64,
    ) -> Result<Vec<Transaction>, StoreError> {
        let sql = format!(
            "SELECT {} FROM transactions t WHERE t.from_account = $1 OR t.to_account = $1 \
             ORDER BY t.ts DESC, t.tx_id LIMIT $2",
            rows::TX_COLUMNS
        );
        let mut c = self.pool.acquire().await?;
        let q = DB::bind(DB::bind(query(&sql), id), sql::count(limit));
        DB::fetch_all(&mut c, q)
            .await?
            .iter()
            .map(|r| rows::transaction::<DB>(r, 0))
            .collect()
    }

    async fn batches(&self) -> Result<Vec<BatchInfo>, StoreError> {
        let sql = format!(
            "SELECT {} FROM batches ORDER BY batch_id",
            rows::batch_columns::<DB>()
        );
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, query(&sql))
            .await?
            .iter()
            .map(rows::batch::<DB>)
            .collect()
    }

    async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(applied_version(&self.pool).await?.unwrap_or(0))
    }
}
