//! The PostgreSQL store: the shared deployment for teams. A load streams each file with
//! `COPY ... FROM STDIN` (text format) into a temporary staging table and moves it with one
//! `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, all inside the one load transaction, so
//! that counts and quarantine come out exactly as in the SQLite store.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, QueryBuilder, Row};
use tokio::sync::mpsc::Receiver;

use super::common::{self, ALERT_COLUMNS, AlertRow};
use super::{
    AlertFilter, BatchReport, CurrencyTotal, Degree, QuarantineRow, RuleVersion, SaveReport, Stats,
    Store, StoreError,
};
use clearwatch_ingest::load::{LoadMsg, LoadRow};
use clearwatch_ingest::{Rejection, TableKind};
use clearwatch_model::{
    Account, AccountKind, Currency, Merchant, Millis, Role, Transaction, format_amount, format_ts,
};
use clearwatch_model::{Alert, Evidence, StoredAlert};

/// Alerts per `INSERT ... SELECT FROM UNNEST(...)` statement.
const ALERTS_PER_STATEMENT: usize = 1000;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// The newest migration this binary carries.
pub fn known_schema_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (the connection's `search_path` picks the schema) and migrates.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let shown = redact(url);
        let open_err = |source| StoreError::Open {
            url: shown.clone(),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        common::check_schema(applied_version(&pool).await?, known_schema_version())?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// `url` with its password, if any, masked.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match auth.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The newest applied migration, if the schema has a migrations table.
async fn applied_version(pool: &PgPool) -> Result<Option<i64>, StoreError> {
    let has_table: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !has_table {
        return Ok(None);
    }
    Ok(
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?,
    )
}

/// Appends `v` in COPY text format.
fn put_text(buf: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

fn put_opt(buf: &mut String, v: Option<&str>) {
    match v {
        Some(v) => put_text(buf, v),
        None => buf.push_str("\\N"),
    }
}

fn put_int(buf: &mut String, v: i64) {
    let _ = write!(buf, "{v}");
}

/// Streams `data` (COPY text rows) through `statement`, a `COPY ... FROM STDIN`.
async fn copy_in(
    conn: &mut PgConnection,
    statement: &str,
    data: String,
) -> Result<u64, StoreError> {
    let mut copy = conn.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(data.into_bytes()).await {
        let _ = copy.abort("clearwatch: sending COPY data failed").await;
        return Err(e.into());
    }
    Ok(copy.finish().await?)
}

/// A record kind that loads into one table keyed by one id column.
trait Loadable: common::TextFields {
    const TABLE: &'static str;
    const KEY: &'static str;
    /// Data columns, in COPY order, before `row_hash, line`.
    const COLUMNS: &'static [&'static str];
    /// Appends the data columns, tab-separated, in COPY text format.
    fn put(&self, buf: &mut String);
}

impl Loadable for Transaction {
    const TABLE: &'static str = "transactions";
    const KEY: &'static str = "tx_id";
    const COLUMNS: &'static [&'static str] = &[
        "tx_id",
        "ts",
        "from_account",
        "to_account",
        "amount",
        "currency",
        "type",
        "merchant_id",
        "channel",
        "region",
        "memo",
    ];
    fn put(&self, b: &mut String) {
        put_text(b, &self.tx_id);
        b.push('\t');
        put_int(b, self.ts);
        b.push('\t');
        put_text(b, &self.from);
        b.push('\t');
        put_text(b, &self.to);
        b.push('\t');
        put_int(b, self.amount);
        b.push('\t');
        put_text(b, self.currency.code());
        b.push('\t');
        put_text(b, self.tx_type.as_str());
        for v in [&self.merchant_id, &self.channel, &self.region, &self.memo] {
            b.push('\t');
            put_opt(b, v.as_deref());
        }
    }
}

impl Loadable for Account {
    const TABLE: &'static str = "accounts";
    const KEY: &'static str = "account_id";
    const COLUMNS: &'static [&'static str] = &[
        "account_id",
        "holder_id",
        "holder_name",
        "kind",
        "role",
        "licensed",
        "institution",
        "region",
    ];
    fn put(&self, b: &mut String) {
        put_text(b, &self.account_id);
        b.push('\t');
        put_opt(b, self.holder_id.as_deref());
        b.push('\t');
        put_opt(b, self.holder_name.as_deref());
        b.push('\t');
        put_opt(b, self.kind.map(|k| k.as_str()));
        b.push('\t');
        put_text(b, self.role.as_str());
        b.push('\t');
        b.push(if self.licensed { 't' } else { 'f' });
        b.push('\t');
        put_opt(b, self.institution.as_deref());
        b.push('\t');
        put_opt(b, self.region.as_deref());
    }
}

impl Loadable for Merchant {
    const TABLE: &'static str = "merchants";
    const KEY: &'static str = "merchant_id";
    const COLUMNS: &'static [&'static str] = &[
        "merchant_id",
        "legal_name",
        "holder_id",
        "settlement_account",
        "acquirer",
        "mcc",
        "settlement_cycle_days",
    ];
    fn put(&self, b: &mut String) {
        put_text(b, &self.merchant_id);
        for v in [
            &self.legal_name,
            &self.holder_id,
            &self.settlement_account,
            &self.acquirer,
            &self.mcc,
        ] {
            b.push('\t');
            put_opt(b, v.as_deref());
        }
        b.push('\t');
        match self.settlement_cycle_days {
            Some(d) => put_int(b, i64::from(d)),
            None => b.push_str("\\N"),
        }
    }
}

/// The temporary table a file's rows are staged in before they are merged.
fn stage_name<T: Loadable>() -> String {
    format!("cw_stage_{}", T::TABLE)
}

/// Creates (afresh) the staging table of `T`; it is dropped at commit.
async fn create_stage<T: Loadable>(conn: &mut PgConnection) -> Result<(), StoreError> {
    let stage = stage_name::<T>();
    sqlx::query(AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS pg_temp.{stage}"
    )))
    .execute(&mut *conn)
    .await?;
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {}, row_hash, line FROM {} WITH NO DATA",
        T::COLUMNS.join(", "),
        T::TABLE
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Copies a chunk of rows into the staging table of `T`.
async fn stage_rows<T: Loadable>(
    conn: &mut PgConnection,
    rows: &[LoadRow<T>],
) -> Result<u64, StoreError> {
    let mut buf = String::with_capacity(rows.len() * 128);
    for row in rows {
        row.record.put(&mut buf);
        buf.push('\t');
        put_int(&mut buf, row.hash);
        buf.push('\t');
        put_int(&mut buf, row.line as i64);
        buf.push('\n');
    }
    let statement = format!(
        "COPY {} ({}, row_hash, line) FROM STDIN",
        stage_name::<T>(),
        T::COLUMNS.join(", ")
    );
    copy_in(conn, &statement, buf).await
}

/// Merges the staged rows of one file: the first row of each new id is inserted; a later
/// row whose id is stored counts as a duplicate if its content is the same, else it is
/// quarantined. The same outcome as the SQLite store's row-by-row order.
async fn merge_stage<T: Loadable>(
    conn: &mut PgConnection,
    staged: u64,
    report: &mut BatchReport,
) -> Result<(), StoreError> {
    let stage = stage_name::<T>();
    let (table, key) = (T::TABLE, T::KEY);
    let cols = T::COLUMNS.join(", ");
    sqlx::query(AssertSqlSafe(format!("ANALYZE {stage}")))
        .execute(&mut *conn)
        .await?;
    let loaded = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} ({cols}, row_hash, batch_id, line) \
         SELECT DISTINCT ON ({key}) {cols}, row_hash, $1, line FROM {stage} ORDER BY {key}, line \
         ON CONFLICT ({key}) DO NOTHING"
    )))
    .bind(report.batch_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    report.loaded += loaded;
    if loaded == staged {
        return Ok(());
    }
    // Staged rows that were not inserted, against the stored row of their id.
    let others = format!(
        "FROM {stage} s JOIN {table} t ON t.{key} = s.{key} \
         WHERE NOT (t.batch_id = $1 AND t.line = s.line)"
    );
    let counts = sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*) FILTER (WHERE t.row_hash = s.row_hash), \
         COUNT(*) FILTER (WHERE t.row_hash <> s.row_hash) {others}"
    )))
    .bind(report.batch_id)
    .fetch_one(&mut *conn)
    .await?;
    let (duplicates, conflicts): (i64, i64) = (counts.get(0), counts.get(1));
    if loaded + duplicates as u64 + conflicts as u64 != staged {
        return Err(StoreError::Corrupt(format!(
            "{table}: staged {staged} rows but loaded {loaded}, duplicates {duplicates}, conflicts {conflicts}"
        )));
    }
    report.duplicates += duplicates as u64;
    if conflicts == 0 {
        return Ok(());
    }
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT s.line, s.{key}, t.batch_id, t.line {others} AND t.row_hash <> s.row_hash ORDER BY s.line"
    )))
    .bind(report.batch_id)
    .fetch_all(&mut *conn)
    .await?;
    let rejections: Vec<Rejection> = rows
        .iter()
        .map(|r| {
            let (line, id, stored_batch, stored_line): (i64, String, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            Rejection {
                source: report.source.clone(),
                line: line as u64,
                field: Some(key.to_string()),
                reason: format!(
                    "{key} {id:?} is already loaded (batch {stored_batch}, line {stored_line}) with different content"
                ),
                raw: String::new(),
            }
        })
        .collect();
    let batch_id = report.batch_id;
    insert_quarantine(conn, batch_id, &rejections, report).await
}

async fn insert_quarantine(
    conn: &mut PgConnection,
    batch_id: i64,
    rows: &[Rejection],
    report: &mut BatchReport,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut buf = String::new();
    for r in rows {
        put_int(&mut buf, batch_id);
        buf.push('\t');
        put_text(&mut buf, &common::printable(&r.source));
        buf.push('\t');
        put_int(&mut buf, r.line as i64);
        buf.push('\t');
        put_opt(&mut buf, r.field.as_deref());
        buf.push('\t');
        put_text(&mut buf, &common::printable(&r.reason));
        buf.push('\t');
        put_text(&mut buf, &common::printable(&r.raw));
        buf.push('\n');
    }
    copy_in(
        conn,
        "COPY quarantine (batch_id, source, line, field, reason, raw) FROM STDIN",
        buf,
    )
    .await?;
    report.quarantined += rows.len() as u64;
    Ok(())
}

/// Rows of the current file copied to its staging table so far.
struct Staging {
    kind: TableKind,
    rows: u64,
}

async fn stage_chunk<T: Loadable>(
    conn: &mut PgConnection,
    staging: &mut Option<Staging>,
    kind: TableKind,
    rows: &[LoadRow<T>],
    report: &mut BatchReport,
) -> Result<(), StoreError> {
    let kept;
    let rows = match common::take_nul_rows(rows, &report.source) {
        Some((good, bad)) => {
            let batch_id = report.batch_id;
            insert_quarantine(conn, batch_id, &bad, report).await?;
            kept = good;
            &kept[..]
        }
        None => rows,
    };
    if staging.is_none() {
        create_stage::<T>(conn).await?;
        *staging = Some(Staging { kind, rows: 0 });
    }
    match staging {
        Some(s) if s.kind == kind => {
            s.rows += stage_rows(conn, rows).await?;
            Ok(())
        }
        _ => Err(StoreError::Corrupt(format!(
            "load stream mixes record kinds in one file ({})",
            kind.as_str()
        ))),
    }
}

impl Store for PgStore {
    async fn load(&self, mut rx: Receiver<LoadMsg>) -> Result<Vec<BatchReport>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // One load at a time: batch ids stay dense, as in SQLite, and id checks see
        // every earlier load.
        sqlx::query("LOCK TABLE batches IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let mut reports = Vec::new();
        let mut current = BatchReport::default();
        let mut staging: Option<Staging> = None;
        while let Some(msg) = rx.recv().await {
            match msg {
                LoadMsg::Begin {
                    kind,
                    source,
                    profile,
                } => {
                    let batch_id: i64 = sqlx::query_scalar(
                        "INSERT INTO batches (batch_id, kind, source, profile, loaded_at) \
                         SELECT COALESCE(MAX(batch_id), 0) + 1, $1, $2, $3, $4 FROM batches \
                         RETURNING batch_id",
                    )
                    .bind(kind.as_str())
                    .bind(&source)
                    .bind(&profile)
                    .bind(common::now())
                    .fetch_one(&mut *tx)
                    .await?;
                    current = BatchReport {
                        batch_id,
                        kind: kind.as_str().to_string(),
                        source,
                        ..Default::default()
                    };
                    staging = None;
                }
                LoadMsg::Transactions(rows) => {
                    stage_chunk(
                        &mut tx,
                        &mut staging,
                        TableKind::Transactions,
                        &rows,
                        &mut current,
                    )
                    .await?
                }
                LoadMsg::Accounts(rows) => {
                    stage_chunk(
                        &mut tx,
                        &mut staging,
                        TableKind::Accounts,
                        &rows,
                        &mut current,
                    )
                    .await?
                }
                LoadMsg::Merchants(rows) => {
                    stage_chunk(
                        &mut tx,
                        &mut staging,
                        TableKind::Merchants,
                        &rows,
                        &mut current,
                    )
                    .await?
                }
                LoadMsg::Rejected(rows) => {
                    insert_quarantine(&mut tx, current.batch_id, &rows, &mut current).await?
                }
                LoadMsg::End(summary) => {
                    if let Some(s) = staging.take() {
                        match s.kind {
                            TableKind::Transactions => {
                                merge_stage::<Transaction>(&mut tx, s.rows, &mut current).await?
                            }
                            TableKind::Accounts => {
                                merge_stage::<Account>(&mut tx, s.rows, &mut current).await?
                            }
                            TableKind::Merchants => {
                                merge_stage::<Merchant>(&mut tx, s.rows, &mut current).await?
                            }
                        }
                    }
                    current.read = summary.rows_read;
                    current.sha256 = summary.sha256;
                    current.unknown_types = summary.unknown_types;
                    if current.read != current.loaded + current.quarantined + current.duplicates {
                        return Err(StoreError::Corrupt(format!(
                            "{}: read {} != loaded {} + quarantined {} + duplicates {}",
                            current.source,
                            current.read,
                            current.loaded,
                            current.quarantined,
                            current.duplicates
                        )));
                    }
                    sqlx::query(
                        "UPDATE batches SET sha256 = $1, rows_read = $2, rows_loaded = $3, rows_quarantined = $4, rows_duplicate = $5, unknown_types = $6 WHERE batch_id = $7",
                    )
                    .bind(&current.sha256)
                    .bind(current.read as i64)
                    .bind(current.loaded as i64)
                    .bind(current.quarantined as i64)
                    .bind(current.duplicates as i64)
                    .bind(current.unknown_types as i64)
                    .bind(current.batch_id)
                    .execute(&mut *tx)
                    .await?;
                    reports.push(std::mem::take(&mut current));
                }
                LoadMsg::Commit => {
                    tx.commit().await?;
                    return Ok(reports);
                }
            }
        }
        // The sender went away without committing: dropping `tx` rolls back.
        Err(StoreError::Aborted)
    }

    async fn stats(&self, top: usize) -> Result<Stats, StoreError> {
        let p = &self.pool;
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(p)
                .await
                .map(|n| n as u64)
        };
        let transactions = count("SELECT COUNT(*) FROM transactions").await?;
        let quarantined = count("SELECT COUNT(*) FROM quarantine").await?;
        let batches = count("SELECT COUNT(*) FROM batches").await?;
        let merchants = count("SELECT COUNT(*) FROM merchants").await?;
        let accounts_registered = count("SELECT COUNT(*) FROM accounts").await?;
        let accounts_unregistered = count(
            "SELECT COUNT(*) FROM (SELECT from_account AS a FROM transactions UNION SELECT to_account FROM transactions) u \
             WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE account_id = u.a)",
        )
        .await?;
        let accounts_by_role =
            sqlx::query("SELECT role, COUNT(*) FROM accounts GROUP BY role ORDER BY role")
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) as u64))
                .collect();
        let range = sqlx::query("SELECT MIN(ts), MAX(ts) FROM transactions")
            .fetch_one(p)
            .await?;
        let first_ts = range.get::<Option<i64>, _>(0).map(format_ts);
        let last_ts = range.get::<Option<i64>, _>(1).map(format_ts);
        let mut totals = Vec::new();
        for r in sqlx::query(
            "SELECT currency, COUNT(*), SUM(amount)::BIGINT FROM transactions GROUP BY currency ORDER BY currency",
        )
        .fetch_all(p)
        .await?
        {
            let currency: String = r.get(0);
            let amount: i64 = r.get(2);
            let exp = Currency::from_code(&currency).map_or(0, Currency::exponent);
            totals.push(CurrencyTotal {
                amount_text: format_amount(amount, exp),
                currency,
                transactions: r.get::<i64, _>(1) as u64,
                amount,
            });
        }
        let degree = |sql: &'static str| async move {
            sqlx::query(sql)
                .bind(top as i64)
                .fetch_all(p)
                .await
                .map(|rows| {
                    rows.into_iter()
                        .map(|r| Degree {
                            account: r.get(0),
                            degree: r.get::<i64, _>(1) as u64,
                            transactions: r.get::<i64, _>(2) as u64,
                        })
                        .collect::<Vec<_>>()
                })
        };
        let top_out_degree = degree(
            "SELECT from_account, COUNT(DISTINCT to_account) AS d, COUNT(*) FROM transactions GROUP BY from_account ORDER BY d DESC, from_account LIMIT $1",
        )
        .await?;
        let top_in_degree = degree(
            "SELECT to_account, COUNT(DISTINCT from_account) AS d, COUNT(*) FROM transactions GROUP BY to_account ORDER BY d DESC, to_account LIMIT $1",
        )
        .await?;
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

    async fn quarantine(&self, limit: u64) -> Result<Vec<QuarantineRow>, StoreError> {
        Ok(sqlx::query(
            "SELECT batch_id, source, line, field, reason, raw FROM quarantine ORDER BY batch_id, line, id LIMIT $1",
        )
        .bind(common::sql_count(limit))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| QuarantineRow {
            batch_id: r.get(0),
            source: r.get(1),
            line: r.get::<i64, _>(2) as u64,
            field: r.get(3),
            reason: r.get(4),
            raw: r.get(5),
        })
        .collect())
    }

    async fn each_transaction(
        &self,
        from: Option<Millis>,
        until: Option<Millis>,
        mut sink: impl FnMut(Transaction) + Send,
    ) -> Result<u64, StoreError> {
        let mut rows = sqlx::query(
            "SELECT tx_id, ts, from_account, to_account, amount, currency, type, merchant_id, channel, region, memo FROM transactions WHERE ts >= $1 AND ts < $2",
        )
        .bind(from.unwrap_or(i64::MIN))
        .bind(until.unwrap_or(i64::MAX))
        .fetch(&self.pool);
        let mut n = 0;
        while let Some(row) = rows.try_next().await? {
            sink(tx_from_row(&row)?);
            n += 1;
        }
        Ok(n)
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, holder_id, holder_name, kind, role, licensed, institution, region FROM accounts ORDER BY account_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let kind: Option<String> = r.get(3);
                Ok(Account {
                    account_id: r.get(0),
                    holder_id: r.get(1),
                    holder_name: r.get(2),
                    kind: kind
                        .map(|k| {
                            k.parse::<AccountKind>()
                                .map_err(|_| StoreError::Corrupt(format!("bad kind {k:?}")))
                        })
                        .transpose()?,
                    role: r
                        .get::<String, _>(4)
                        .parse::<Role>()
                        .map_err(StoreError::Corrupt)?,
                    licensed: r.get(5),
                    institution: r.get(6),
                    region: r.get(7),
                })
            })
            .collect()
    }

    async fn merchants(&self) -> Result<Vec<Merchant>, StoreError> {
        let rows = sqlx::query(
            "SELECT merchant_id, legal_name, holder_id, settlement_account, acquirer, mcc, settlement_cycle_days FROM merchants ORDER BY merchant_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let days: Option<i64> = r.get(6);
                Ok(Merchant {
                    merchant_id: r.get(0),
                    legal_name: r.get(1),
                    holder_id: r.get(2),
                    settlement_account: r.get(3),
                    acquirer: r.get(4),
                    mcc: r.get(5),
                    settlement_cycle_days: days
                        .map(|d| {
                            u32::try_from(d).map_err(|_| {
                                StoreError::Corrupt(format!("settlement_cycle_days {d}"))
                            })
                        })
                        .transpose()?,
                })
            })
            .collect()
    }

    async fn save_alerts(
        &self,
        alerts: &[Alert],
        rules: &[RuleVersion],
    ) -> Result<SaveReport, StoreError> {
        let now = common::now();
        let mut tx = self.pool.begin().await?;
        for r in rules {
            sqlx::query(
                "INSERT INTO rule_versions (rule_id, version, title, text, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (rule_id, version) DO NOTHING",
            )
            .bind(&r.rule_id)
            .bind(&r.version)
            .bind(&r.title)
            .bind(&r.text)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let mut report = SaveReport::default();
        for part in alerts.chunks(ALERTS_PER_STATEMENT) {
            let text = |f: fn(&Alert) -> String| part.iter().map(f).collect::<Vec<String>>();
            let metrics = part
                .iter()
                .map(|a| serde_json::to_string(&a.metrics))
                .collect::<Result<Vec<_>, _>>()?;
            let inserted: Vec<String> = sqlx::query_scalar(
                "INSERT INTO alerts (id, rule_id, rule_version, title, subject_kind, subject_id, window_from, window_until, severity, score, summary, currency, metrics, created_at, updated_at) \
                 SELECT u.*, $14, $14 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::text[], $10::int8[], $11::text[], $12::text[], $13::text[]) AS u \
                 ON CONFLICT (id) DO NOTHING RETURNING id",
            )
            .bind(text(|a| a.id.clone()))
            .bind(text(|a| a.rule_id.clone()))
            .bind(text(|a| a.rule_version.clone()))
            .bind(text(|a| a.title.clone()))
            .bind(text(|a| a.subject.kind.as_str().to_string()))
            .bind(text(|a| a.subject.id.clone()))
            .bind(part.iter().map(|a| a.window.from).collect::<Vec<i64>>())
            .bind(part.iter().map(|a| a.window.until).collect::<Vec<i64>>())
            .bind(text(|a| a.severity.as_str().to_string()))
            .bind(part.iter().map(|a| i64::from(a.score)).collect::<Vec<i64>>())
            .bind(text(|a| a.summary.clone()))
            .bind(part.iter().map(|a| a.currency.clone()).collect::<Vec<Option<String>>>())
            .bind(metrics)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let mut inserted: std::collections::HashSet<String> = inserted.into_iter().collect();
            // An id given twice is inserted once, from its first occurrence.
            let new: Vec<&Alert> = part.iter().filter(|a| inserted.remove(&a.id)).collect();
            report.inserted += new.len() as u64;
            report.existing += (part.len() - new.len()) as u64;
            let mut buf = String::new();
            for a in &new {
                for (kind, ord, r) in common::evidence_rows(a) {
                    put_text(&mut buf, &a.id);
                    buf.push('\t');
                    buf.push_str(kind);
                    buf.push('\t');
                    put_int(&mut buf, ord);
                    buf.push('\t');
                    put_text(&mut buf, r);
                    buf.push('\n');
                }
            }
            if !buf.is_empty() {
                copy_in(
                    &mut tx,
                    "COPY alert_evidence (alert_id, kind, ord, ref_id) FROM STDIN",
                    buf,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError> {
        let mut qb =
            QueryBuilder::<Postgres>::new(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE TRUE"));
        super::cases_sql::postgres::push_filter(&mut qb, filter);
        qb.push(filter.sort.order_by())
            .push(" LIMIT ")
            .push_bind(common::sql_count(filter.limit))
            .push(" OFFSET ")
            .push_bind(common::sql_count(filter.offset));
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(alert_row)
            .collect::<Vec<_>>();
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let evidence = load_evidence(&self.pool, ids).await?;
        common::assemble(rows, evidence)
    }

    async fn alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let row = alert_row(&row);
        let evidence = load_evidence(&self.pool, vec![id.to_string()]).await?;
        Ok(common::assemble(vec![row], evidence)?.pop())
    }

    async fn rule_version(
        &self,
        rule_id: &str,
        version: &str,
    ) -> Result<Option<RuleVersion>, StoreError> {
        Ok(sqlx::query(
            "SELECT rule_id, version, title, text FROM rule_versions WHERE rule_id = $1 AND version = $2",
        )
        .bind(rule_id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| RuleVersion {
            rule_id: r.get(0),
            version: r.get(1),
            title: r.get(2),
            text: r.get(3),
        }))
    }

    async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(applied_version(&self.pool).await?.unwrap_or(0))
    }

    async fn evidence_transactions(
        &self,
        alert_id: &str,
    ) -> Result<Vec<(Transaction, i64)>, StoreError> {
        let sql = format!(
            "SELECT {}, t.batch_id FROM alert_evidence e JOIN transactions t ON t.tx_id = e.ref_id \
             WHERE e.alert_id = $1 AND e.kind = 'transaction' ORDER BY e.ord",
            common::TX_COLUMNS
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(alert_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| Ok((tx_from_row(&r)?, r.get::<i64, _>(11))))
            .collect()
    }

    async fn evidence_accounts(&self, alert_id: &str) -> Result<Vec<Account>, StoreError> {
        sqlx::query(
            "SELECT e.ref_id, a.account_id IS NOT NULL, a.holder_id, a.holder_name, a.kind, a.role, \
             a.licensed, a.institution, a.region FROM alert_evidence e \
             LEFT JOIN accounts a ON a.account_id = e.ref_id \
             WHERE e.alert_id = $1 AND e.kind = 'account' ORDER BY e.ord",
        )
        .bind(alert_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| common::account_from_columns(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                    r.get(7),
                    r.get(8),
                ))
        .collect()
    }

    async fn batches(&self) -> Result<Vec<super::BatchInfo>, StoreError> {
        Ok(sqlx::query(
            "SELECT batch_id, kind, source, profile, sha256, loaded_at FROM batches ORDER BY batch_id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| super::BatchInfo {
            batch_id: r.get(0),
            kind: r.get(1),
            source: r.get(2),
            profile: r.get(3),
            sha256: r.get(4),
            loaded_at: common::rfc3339(r.get::<DateTime<Utc>, _>(5)),
        })
        .collect())
    }

    // ---- Cases: the statements are in cases_sql.rs. ----
    case_methods!(postgres);
}

fn alert_row(r: &PgRow) -> AlertRow {
    AlertRow {
        id: r.get(0),
        rule_id: r.get(1),
        rule_version: r.get(2),
        title: r.get(3),
        subject_kind: r.get(4),
        subject_id: r.get(5),
        window_from: r.get(6),
        window_until: r.get(7),
        severity: r.get(8),
        score: r.get(9),
        summary: r.get(10),
        currency: r.get(11),
        metrics: r.get(12),
        status: r.get(13),
        assignee: r.get(14),
        created_at: common::rfc3339(r.get::<DateTime<Utc>, _>(15)),
        updated_at: common::rfc3339(r.get::<DateTime<Utc>, _>(16)),
        version: r.get(17),
    }
}

/// The evidence of the given alerts, grouped by alert, in stored order.
async fn load_evidence(
    pool: &PgPool,
    ids: Vec<String>,
) -> Result<HashMap<String, Evidence>, StoreError> {
    let rows = sqlx::query(
        "SELECT alert_id, kind, ref_id FROM alert_evidence WHERE alert_id = ANY($1) ORDER BY alert_id, kind, ord",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    common::group_evidence(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// A transaction from the columns `tx_id, ts, from_account, to_account, amount, currency,
/// type, merchant_id, channel, region, memo`, in that order.
fn tx_from_row(r: &PgRow) -> Result<Transaction, StoreError> {
    common::transaction_from_columns(
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
        r.get(8),
        r.get(9),
        r.get(10),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_separators_and_backslashes() {
        let mut b = String::new();
        put_text(&mut b, "a\tb\nc\\d\re");
        assert_eq!(b, "a\\tb\\nc\\\\d\\re");
        put_opt(&mut b, None);
        assert!(b.ends_with("\\N"));
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
