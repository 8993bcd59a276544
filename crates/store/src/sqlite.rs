//! The SQLite store: the embedded default (one file, nothing to install). Bulk loads use
//! batched multi-row prepared inserts inside one transaction; alerts and their evidence
//! are saved the same way.

use std::collections::HashSet;
use std::str::FromStr;

use futures_util::TryStreamExt;
use sqlx::migrate::Migrator;
use sqlx::query_builder::Separated;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::mpsc::Receiver;

use super::common::{self, ALERT_COLUMNS, AlertRow};
use super::{
    AlertFilter, BatchReport, CurrencyTotal, Degree, QuarantineRow, RuleVersion, SaveReport, Stats,
    Store, StoreError,
};
use clearwatch_ingest::Rejection;
use clearwatch_ingest::load::{LoadMsg, LoadRow};
use clearwatch_model::{
    Account, AccountKind, Currency, Merchant, Millis, Role, Transaction, format_amount, format_ts,
};
use clearwatch_model::{Alert, StoredAlert};

/// Rows per INSERT statement (14 binds each stays under SQLite's 32,766 variables).
const ROWS_PER_STATEMENT: usize = 1000;
/// Alerts per INSERT statement (16 binds each).
const ALERTS_PER_STATEMENT: usize = 500;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The newest migration this binary carries.
pub fn known_schema_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The newest applied migration, if the database has a migrations table.
async fn applied_version(pool: &SqlitePool) -> Result<Option<i64>, StoreError> {
    let has_table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(pool)
    .await?;
    if has_table.is_none() {
        return Ok(None);
    }
    Ok(
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?,
    )
}

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 4 })
            .connect_with(options)
            .await
            .map_err(open_err)?;
        common::check_schema(applied_version(&pool).await?, known_schema_version())?;
        MIGRATOR.run(&pool).await?;
        // Keeps the query planner's statistics current (SQLite's advice for long-lived
        // connections); bounded by analysis_limit, so it stays cheap on large stores.
        let mut conn = pool.acquire().await?;
        sqlx::raw_sql("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002")
            .execute(&mut *conn)
            .await?;
        drop(conn);
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// A record kind that loads into one table keyed by one id column.
trait Loadable: common::TextFields {
    const TABLE: &'static str;
    const KEY: &'static str;
    /// Data columns, in bind order, before `row_hash, batch_id, line`.
    const COLUMNS: &'static [&'static str];
    fn key(&self) -> &str;
    fn bind(&self, b: &mut Separated<'_, Sqlite, &'static str>);
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
    fn key(&self) -> &str {
        &self.tx_id
    }
    fn bind(&self, b: &mut Separated<'_, Sqlite, &'static str>) {
        b.push_bind(self.tx_id.clone())
            .push_bind(self.ts)
            .push_bind(self.from.clone())
            .push_bind(self.to.clone())
            .push_bind(self.amount)
            .push_bind(self.currency.code())
            .push_bind(self.tx_type.as_str())
            .push_bind(self.merchant_id.clone())
            .push_bind(self.channel.clone())
            .push_bind(self.region.clone())
            .push_bind(self.memo.clone());
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
    fn key(&self) -> &str {
        &self.account_id
    }
    fn bind(&self, b: &mut Separated<'_, Sqlite, &'static str>) {
        b.push_bind(self.account_id.clone())
            .push_bind(self.holder_id.clone())
            .push_bind(self.holder_name.clone())
            .push_bind(self.kind.map(|k| k.as_str()))
            .push_bind(self.role.as_str())
            .push_bind(self.licensed)
            .push_bind(self.institution.clone())
            .push_bind(self.region.clone());
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
    fn key(&self) -> &str {
        &self.merchant_id
    }
    fn bind(&self, b: &mut Separated<'_, Sqlite, &'static str>) {
        b.push_bind(self.merchant_id.clone())
            .push_bind(self.legal_name.clone())
            .push_bind(self.holder_id.clone())
            .push_bind(self.settlement_account.clone())
            .push_bind(self.acquirer.clone())
            .push_bind(self.mcc.clone())
            .push_bind(self.settlement_cycle_days.map(i64::from));
    }
}

/// Inserts rows that are new; counts repeats of stored rows as duplicates and
/// quarantines rows that reuse a stored id with different content.
async fn insert_rows<T: Loadable>(
    conn: &mut SqliteConnection,
    batch_id: i64,
    source: &str,
    rows: &[LoadRow<T>],
    report: &mut BatchReport,
) -> Result<(), StoreError> {
    let kept;
    let rows = match common::take_nul_rows(rows, source) {
        Some((good, bad)) => {
            insert_quarantine(conn, batch_id, &bad, report).await?;
            kept = good;
            &kept[..]
        }
        None => rows,
    };
    for part in rows.chunks(ROWS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO {} ({}, row_hash, batch_id, line) ",
            T::TABLE,
            T::COLUMNS.join(", ")
        ));
        qb.push_values(part, |mut b, row| {
            row.record.bind(&mut b);
            b.push_bind(row.hash)
                .push_bind(batch_id)
                .push_bind(row.line as i64);
        });
        qb.push(format!(" ON CONFLICT ({}) DO NOTHING", T::KEY));
        let inserted = qb.build().execute(&mut *conn).await?.rows_affected();
        report.loaded += inserted;
        if inserted as usize == part.len() {
            continue;
        }
        // Some ids were already stored (earlier batch, or earlier in this file).
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {}, row_hash, batch_id, line FROM {} WHERE {} IN (",
            T::KEY,
            T::TABLE,
            T::KEY
        ));
        let mut sep = q.separated(", ");
        for row in part {
            sep.push_bind(row.record.key().to_string());
        }
        q.push(")");
        let stored: std::collections::HashMap<String, (i64, i64, i64)> = q
            .build()
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r: SqliteRow| {
                (
                    r.get::<String, _>(0),
                    (r.get::<i64, _>(1), r.get::<i64, _>(2), r.get::<i64, _>(3)),
                )
            })
            .collect();
        let mut conflicts = Vec::new();
        for row in part {
            let Some(&(hash, stored_batch, stored_line)) = stored.get(row.record.key()) else {
                return Err(StoreError::Corrupt(format!(
                    "{} {} neither inserted nor stored",
                    T::KEY,
                    row.record.key()
                )));
            };
            if stored_batch == batch_id && stored_line == row.line as i64 {
                continue; // this row was inserted
            }
            if hash == row.hash {
                report.duplicates += 1;
            } else {
                conflicts.push(Rejection {
                    source: source.to_string(),
                    line: row.line,
                    field: Some(T::KEY.to_string()),
                    reason: format!(
                        "{} {:?} is already loaded (batch {stored_batch}, line {stored_line}) with different content",
                        T::KEY,
                        row.record.key()
                    ),
                    raw: String::new(),
                });
            }
        }
        insert_quarantine(conn, batch_id, &conflicts, report).await?;
    }
    Ok(())
}

async fn insert_quarantine(
    conn: &mut SqliteConnection,
    batch_id: i64,
    rows: &[Rejection],
    report: &mut BatchReport,
) -> Result<(), StoreError> {
    for part in rows.chunks(ROWS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO quarantine (batch_id, source, line, field, reason, raw) ",
        );
        qb.push_values(part, |mut b, r| {
            b.push_bind(batch_id)
                .push_bind(common::printable(&r.source).into_owned())
                .push_bind(r.line as i64)
                .push_bind(r.field.clone())
                .push_bind(common::printable(&r.reason).into_owned())
                .push_bind(common::printable(&r.raw).into_owned());
        });
        qb.build().execute(&mut *conn).await?;
        report.quarantined += part.len() as u64;
    }
    Ok(())
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn opt_parse<T: FromStr>(v: Option<String>, what: &str) -> Result<Option<T>, StoreError> {
    v.map(|s| {
        s.parse::<T>()
            .map_err(|_| StoreError::Corrupt(format!("bad {what} {s:?}")))
    })
    .transpose()
}

impl Store for SqliteStore {
    async fn load(&self, mut rx: Receiver<LoadMsg>) -> Result<Vec<BatchReport>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut reports = Vec::new();
        let mut current = BatchReport::default();
        while let Some(msg) = rx.recv().await {
            match msg {
                LoadMsg::Begin {
                    kind,
                    source,
                    profile,
                } => {
                    let batch_id: i64 = sqlx::query_scalar(
                        "INSERT INTO batches (kind, source, profile, loaded_at) VALUES (?, ?, ?, ?) RETURNING batch_id",
                    )
                    .bind(kind.as_str())
                    .bind(&source)
                    .bind(&profile)
                    .bind(now_rfc3339())
                    .fetch_one(&mut *tx)
                    .await?;
                    current = BatchReport {
                        batch_id,
                        kind: kind.as_str().to_string(),
                        source,
                        ..Default::default()
                    };
                }
                LoadMsg::Transactions(rows) => {
                    let (id, src) = (current.batch_id, current.source.clone());
                    insert_rows(&mut tx, id, &src, &rows, &mut current).await?
                }
                LoadMsg::Accounts(rows) => {
                    let (id, src) = (current.batch_id, current.source.clone());
                    insert_rows(&mut tx, id, &src, &rows, &mut current).await?
                }
                LoadMsg::Merchants(rows) => {
                    let (id, src) = (current.batch_id, current.source.clone());
                    insert_rows(&mut tx, id, &src, &rows, &mut current).await?
                }
                LoadMsg::Rejected(rows) => {
                    insert_quarantine(&mut tx, current.batch_id, &rows, &mut current).await?
                }
                LoadMsg::End(summary) => {
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
                        "UPDATE batches SET sha256 = ?, rows_read = ?, rows_loaded = ?, rows_quarantined = ?, rows_duplicate = ?, unknown_types = ? WHERE batch_id = ?",
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
            "SELECT COUNT(*) FROM (SELECT from_account AS a FROM transactions UNION SELECT to_account FROM transactions) WHERE a NOT IN (SELECT account_id FROM accounts)",
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
            "SELECT currency, COUNT(*), SUM(amount) FROM transactions GROUP BY currency ORDER BY currency",
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
            "SELECT from_account, COUNT(DISTINCT to_account) AS d, COUNT(*) FROM transactions GROUP BY from_account ORDER BY d DESC, from_account LIMIT ?",
        )
        .await?;
        let top_in_degree = degree(
            "SELECT to_account, COUNT(DISTINCT from_account) AS d, COUNT(*) FROM transactions GROUP BY to_account ORDER BY d DESC, to_account LIMIT ?",
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
            "SELECT batch_id, source, line, field, reason, raw FROM quarantine ORDER BY batch_id, line, id LIMIT ?",
        )
        .bind(limit as i64)
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
            "SELECT tx_id, ts, from_account, to_account, amount, currency, type, merchant_id, channel, region, memo FROM transactions WHERE ts >= ? AND ts < ?",
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
                Ok(Account {
                    account_id: r.get(0),
                    holder_id: r.get(1),
                    holder_name: r.get(2),
                    kind: opt_parse::<AccountKind>(r.get(3), "kind")?,
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
        Ok(rows
            .into_iter()
            .map(|r| Merchant {
                merchant_id: r.get(0),
                legal_name: r.get(1),
                holder_id: r.get(2),
                settlement_account: r.get(3),
                acquirer: r.get(4),
                mcc: r.get(5),
                settlement_cycle_days: r.get::<Option<i64>, _>(6).map(|d| d as u32),
            })
            .collect())
    }

    async fn save_alerts(
        &self,
        alerts: &[Alert],
        rules: &[RuleVersion],
    ) -> Result<SaveReport, StoreError> {
        let now = common::rfc3339(common::now());
        let mut tx = self.pool.begin().await?;
        for r in rules {
            sqlx::query(
                "INSERT INTO rule_versions (rule_id, version, title, text, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (rule_id, version) DO NOTHING",
            )
            .bind(&r.rule_id)
            .bind(&r.version)
            .bind(&r.title)
            .bind(&r.text)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        let mut report = SaveReport::default();
        for part in alerts.chunks(ALERTS_PER_STATEMENT) {
            let metrics = part
                .iter()
                .map(|a| serde_json::to_string(&a.metrics))
                .collect::<Result<Vec<_>, _>>()?;
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO alerts (id, rule_id, rule_version, title, subject_kind, subject_id, window_from, window_until, severity, score, summary, currency, metrics, created_at, updated_at) ",
            );
            qb.push_values(part.iter().zip(metrics), |mut b, (a, m)| {
                b.push_bind(a.id.clone())
                    .push_bind(a.rule_id.clone())
                    .push_bind(a.rule_version.clone())
                    .push_bind(a.title.clone())
                    .push_bind(a.subject.kind.as_str())
                    .push_bind(a.subject.id.clone())
                    .push_bind(a.window.from)
                    .push_bind(a.window.until)
                    .push_bind(a.severity.as_str())
                    .push_bind(i64::from(a.score))
                    .push_bind(a.summary.clone())
                    .push_bind(a.currency.clone())
                    .push_bind(m)
                    .push_bind(now.clone())
                    .push_bind(now.clone());
            });
            qb.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            let mut inserted: HashSet<String> = qb
                .build_query_scalar::<String>()
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
            // An id given twice is inserted once, from its first occurrence.
            let new: Vec<&Alert> = part.iter().filter(|a| inserted.remove(&a.id)).collect();
            report.inserted += new.len() as u64;
            report.existing += (part.len() - new.len()) as u64;
            let evidence: Vec<(&str, &'static str, i64, &str)> = new
                .iter()
                .flat_map(|a| {
                    common::evidence_rows(a).map(|(kind, ord, r)| (a.id.as_str(), kind, ord, r))
                })
                .collect();
            for rows in evidence.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO alert_evidence (alert_id, kind, ord, ref_id) ",
                );
                qb.push_values(rows, |mut b, (id, kind, ord, r)| {
                    b.push_bind(*id)
                        .push_bind(*kind)
                        .push_bind(*ord)
                        .push_bind(*r);
                });
                qb.build().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError> {
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE 1 = 1"));
        super::cases_sql::sqlite::push_filter(&mut qb, filter);
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
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let evidence = load_evidence(&self.pool, &ids).await?;
        common::assemble(rows, evidence)
    }

    async fn alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let row = alert_row(&row);
        let evidence = load_evidence(&self.pool, &[id]).await?;
        Ok(common::assemble(vec![row], evidence)?.pop())
    }

    async fn rule_version(
        &self,
        rule_id: &str,
        version: &str,
    ) -> Result<Option<RuleVersion>, StoreError> {
        Ok(sqlx::query(
            "SELECT rule_id, version, title, text FROM rule_versions WHERE rule_id = ? AND version = ?",
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
             WHERE e.alert_id = ? AND e.kind = 'transaction' ORDER BY e.ord",
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
             WHERE e.alert_id = ? AND e.kind = 'account' ORDER BY e.ord",
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
            loaded_at: r.get::<String, _>(5),
        })
        .collect())
    }

    // ---- Cases: the statements are in cases_sql.rs. ----
    case_methods!(sqlite);
}

fn alert_row(r: &SqliteRow) -> AlertRow {
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
        created_at: r.get(15),
        updated_at: r.get(16),
        version: r.get(17),
    }
}

/// The evidence of the given alerts, grouped by alert, in stored order.
async fn load_evidence(
    pool: &SqlitePool,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, clearwatch_model::Evidence>, StoreError> {
    let mut rows = Vec::new();
    for part in ids.chunks(ROWS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT alert_id, kind, ref_id FROM alert_evidence WHERE alert_id IN (",
        );
        let mut sep = qb.separated(", ");
        for id in part {
            sep.push_bind(*id);
        }
        qb.push(") ORDER BY alert_id, kind, ord");
        rows.extend(
            qb.build()
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2))),
        );
    }
    common::group_evidence(rows)
}

/// A transaction from the columns `tx_id, ts, from_account, to_account, amount, currency,
/// type, merchant_id, channel, region, memo`, in that order.
fn tx_from_row(r: &SqliteRow) -> Result<Transaction, StoreError> {
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
