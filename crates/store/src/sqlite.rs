//! The SQLite backend: the embedded default (one file, nothing to install). What it keeps
//! for itself: opening the file (WAL, foreign keys), its migrations, and bulk writes as
//! batched multi-row prepared inserts inside the load's transaction.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection};

use crate::data::{Backend, FileLoad, Loadable};
use crate::rows::{self, printable};
use crate::sql::{self, Builder, Dialect, Value, get};
use crate::{SqliteStore, StoreError};
use clearwatch_ingest::load::LoadRow;
use clearwatch_ingest::{Rejection, TableKind};
use clearwatch_model::{Alert, Transaction};

/// Bound values per statement: SQLite allows 32,766.
const VALUES_PER_STATEMENT: usize = 16_000;
/// Transactions per chunk when reading them all ([`Backend::each_transaction`]).
const TX_PER_CHUNK: i64 = 20_000;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The newest migration this binary carries.
pub fn known_schema_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Opens (creating if needed) and migrates the SQLite database at `url`, then its audit
/// key `audit_key` (made on first use; `None`: a key in memory only).
pub async fn open(
    url: &str,
    audit_key: Option<&std::path::Path>,
) -> Result<SqliteStore, StoreError> {
    let open_err = |source| StoreError::Open {
        url: url.to_string(),
        source,
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(open_err)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        // Up to 64 MiB of pages per connection (SQLite's default is 2 MiB; at most four
        // connections): storing 16,715 alerts with 2.4 M evidence rows after a 10 M scan
        // re-read and spilled index pages, and the scan took 75 s instead of 63.
        .pragma("cache_size", "-65536");
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let pool = SqlitePoolOptions::new()
        .max_connections(if in_memory { 1 } else { 4 })
        .connect_with(options)
        .await
        .map_err(open_err)?;
    crate::sql::check_schema(
        crate::data::applied_version(&pool).await?,
        known_schema_version(),
    )?;
    MIGRATOR.run(&pool).await?;
    // Keeps the query planner's statistics current (SQLite's advice for long-lived
    // connections); bounded by analysis_limit, so it stays cheap on large stores.
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002")
        .execute(&mut *conn)
        .await?;
    drop(conn);
    let seal = match audit_key {
        Some(key) => crate::seal::AuditSeal::open(key)?,
        None => crate::seal::AuditSeal::ephemeral(),
    };
    let store = SqliteStore { pool, seal };
    store.seal_unsealed_log().await?;
    Ok(store)
}

impl Dialect for Sqlite {
    const BEGIN_WRITE: Option<&'static str> = Some("BEGIN IMMEDIATE");
    const AUDIT_LOCK: Option<&'static str> = None;
    const FOR_UPDATE: &'static str = "";
    const ILIKE: &'static str = "LIKE";
    const INT8: &'static str = "INTEGER";
    const INDEX_EXISTS: &'static str =
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = $1";

    fn ts_param(n: usize) -> String {
        format!("${n}")
    }

    fn ts_text(column: &str) -> String {
        column.to_string()
    }

    sql::sqlx_glue!(SqliteConnection);
}

/// `INSERT INTO table (columns) VALUES (…), (…)` for `rows` rows of `values` each.
fn multi_insert<'a>(head: &str, rows: impl Iterator<Item = Vec<Value<'a>>>) -> Builder<'a> {
    let mut b = Builder::positional(head);
    b.push(" VALUES ");
    for (i, row) in rows.enumerate() {
        if i > 0 {
            b.push(", ");
        }
        b.push_list(row);
    }
    b
}

/// Inserts rows whose id is new; counts repeats of stored rows as duplicates and
/// quarantines rows that reuse a stored id with different content.
async fn insert_rows<T: Loadable>(
    c: &mut SqliteConnection,
    file: &mut FileLoad,
    rows: &[LoadRow<T>],
) -> Result<(), StoreError> {
    let batch_id = file.report.batch_id;
    let width = T::COLUMNS.len() + 3;
    let key = T::key_column();
    for part in rows.chunks(VALUES_PER_STATEMENT / width) {
        let mut b = multi_insert(
            &format!(
                "INSERT INTO {} ({}, row_hash, batch_id, line)",
                T::NAME,
                T::stored_columns().join(", ")
            ),
            part.iter().map(|row| {
                let mut v = row.record.values();
                v.extend([
                    Value::Int(row.hash),
                    Value::Int(batch_id),
                    Value::Int(row.line as i64),
                ]);
                v
            }),
        );
        b.push(&format!(" ON CONFLICT ({key}) DO NOTHING"));
        let inserted = Sqlite::execute(c, b.build()).await?;
        file.report.loaded += inserted;
        if inserted as usize == part.len() {
            continue;
        }
        // Some ids were already stored (earlier batch, or earlier in this file).
        let mut b = Builder::positional(format!(
            "SELECT {key}, row_hash, batch_id, line FROM {} WHERE {key} IN ",
            T::NAME
        ));
        b.push_list(part.iter().map(|r| Value::Text(r.record.key())));
        let stored: HashMap<String, (i64, i64, i64)> = Sqlite::fetch_all(c, b.build())
            .await?
            .iter()
            .map(|r| {
                Ok((
                    get::<Sqlite, String>(r, 0)?,
                    (
                        get::<Sqlite, _>(r, 1)?,
                        get::<Sqlite, _>(r, 2)?,
                        get::<Sqlite, _>(r, 3)?,
                    ),
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        let mut conflicts = Vec::new();
        for row in part {
            let Some(&(hash, stored_batch, stored_line)) = stored.get(row.record.key()) else {
                return Err(StoreError::Corrupt(format!(
                    "{key} {} neither inserted nor stored",
                    row.record.key()
                )));
            };
            if stored_batch == batch_id && stored_line == row.line as i64 {
                continue; // this row was inserted
            }
            if hash == row.hash {
                file.report.duplicates += 1;
            } else {
                conflicts.push(file.conflict::<T>(
                    row.line,
                    row.record.key(),
                    stored_batch,
                    stored_line,
                ));
            }
        }
        if !conflicts.is_empty() {
            Sqlite::put_quarantine(c, file, &conflicts).await?;
        }
    }
    Ok(())
}

impl Backend for Sqlite {
    const LOAD_LOCK: Option<&'static str> = None;

    const HAS_MIGRATIONS: &'static str =
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";

    async fn put_rows<'e, T: Loadable>(
        c: &'e mut SqliteConnection,
        file: &'e mut FileLoad,
        kind: TableKind,
        rows: &'e [LoadRow<T>],
    ) -> Result<(), StoreError> {
        let staged = file.staged.map_or(0, |(_, n)| n);
        file.staged = Some((kind, staged + rows.len() as u64));
        insert_rows(c, file, rows).await
    }

    async fn finish_rows<'e>(
        _c: &'e mut SqliteConnection,
        _file: &'e mut FileLoad,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Reads the transactions in chunks of [`TX_PER_CHUNK`], each chunk one row holding a
    /// JSON array that SQLite builds: sqlx's SQLite driver hands every row from its worker
    /// thread to the caller through a channel, which at a million rows cost seven times
    /// the graph build (6.8 s against 0.9 s from the CSV file).
    async fn each_transaction<'e>(
        c: &'e mut SqliteConnection,
        lo: i64,
        hi: i64,
        sink: &'e mut (dyn FnMut(Transaction) + Send),
    ) -> Result<u64, StoreError> {
        let columns = rows::TX_COLUMNS.replace("t.", "");
        let sql = format!(
            "SELECT COUNT(*), MAX(r), json_group_array(json_array({columns})) \
             FROM (SELECT t.rowid AS r, {} FROM transactions t \
             WHERE t.rowid > $1 AND t.ts >= $2 AND t.ts < $3 ORDER BY t.rowid LIMIT $4)",
            rows::TX_COLUMNS
        );
        // One chunk is parsed (on a blocking thread) and handed to `sink` while SQLite
        // builds the next one in sqlx's worker thread.
        let fetch = |c: &'e mut SqliteConnection, after: i64| {
            let q = sql::query::<Sqlite>(&sql)
                .bind(after)
                .bind(lo)
                .bind(hi)
                .bind(TX_PER_CHUNK);
            async move {
                let Some(row) = Sqlite::fetch_optional(&mut *c, q).await? else {
                    return Ok::<_, StoreError>((c, None));
                };
                let count: i64 = get::<Sqlite, _>(&row, 0)?;
                if count == 0 {
                    return Ok((c, None));
                }
                let last: i64 = get::<Sqlite, _>(&row, 1)?;
                let json: String = get::<Sqlite, _>(&row, 2)?;
                Ok((c, Some((count, last, json))))
            }
        };
        let mut n = 0u64;
        let (mut c, mut next) = fetch(c, i64::MIN).await?;
        while let Some((count, last, json)) = next.take() {
            let parse = tokio::task::spawn_blocking(move || {
                serde_json::from_str::<Vec<rows::TxFields>>(&json)
                    .map_err(|e| StoreError::Corrupt(format!("a transaction chunk: {e}")))?
                    .into_iter()
                    .map(rows::transaction_of)
                    .collect::<Result<Vec<Transaction>, StoreError>>()
            });
            let more = count == TX_PER_CHUNK;
            let deliver = async {
                let chunk = match parse.await {
                    Ok(chunk) => chunk?,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(e) => return Err(StoreError::Corrupt(format!("a transaction chunk: {e}"))),
                };
                chunk.into_iter().for_each(&mut *sink);
                Ok::<_, StoreError>(())
            };
            if more {
                let (fetched, delivered) = tokio::join!(fetch(c, last), deliver);
                delivered?;
                (c, next) = fetched?;
            } else {
                deliver.await?;
            }
            n += count as u64;
        }
        Ok(n)
    }

    async fn put_quarantine<'e>(
        c: &'e mut SqliteConnection,
        file: &'e mut FileLoad,
        rows: &'e [Rejection],
    ) -> Result<(), StoreError> {
        let batch_id = file.report.batch_id;
        let texts: Vec<[std::borrow::Cow<'_, str>; 3]> = rows
            .iter()
            .map(|r| {
                [
                    printable(&r.source),
                    printable(&r.reason),
                    printable(&r.raw),
                ]
            })
            .collect();
        for (part, texts) in rows
            .chunks(VALUES_PER_STATEMENT / 6)
            .zip(texts.chunks(VALUES_PER_STATEMENT / 6))
        {
            let b = multi_insert(
                "INSERT INTO quarantine (batch_id, source, line, field, reason, raw)",
                part.iter().zip(texts).map(|(r, [source, reason, raw])| {
                    vec![
                        Value::Int(batch_id),
                        Value::Text(source),
                        Value::Int(r.line as i64),
                        Value::OptText(r.field.as_deref()),
                        Value::Text(reason),
                        Value::Text(raw),
                    ]
                }),
            );
            Sqlite::execute(c, b.build()).await?;
            file.report.quarantined += part.len() as u64;
        }
        Ok(())
    }

    async fn put_alerts<'e>(
        c: &'e mut SqliteConnection,
        alerts: &'e [Alert],
        now: &'e str,
    ) -> Result<u64, StoreError> {
        let mut inserted_total = 0;
        for part in alerts.chunks(VALUES_PER_STATEMENT / 16) {
            let metrics = part
                .iter()
                .map(|a| serde_json::to_string(&a.metrics))
                .collect::<Result<Vec<_>, _>>()?;
            let mut b = multi_insert(
                "INSERT INTO alerts (id, rule_id, rule_version, title, subject_kind, \
                 subject_id, window_from, window_until, severity, score, summary, currency, \
                 metrics, created_at, updated_at)",
                part.iter().zip(&metrics).map(|(a, m)| {
                    vec![
                        Value::Text(&a.id),
                        Value::Text(&a.rule_id),
                        Value::Text(&a.rule_version),
                        Value::Text(&a.title),
                        Value::Text(a.subject.kind.as_str()),
                        Value::Text(&a.subject.id),
                        Value::Int(a.window.from),
                        Value::Int(a.window.until),
                        Value::Text(a.severity.as_str()),
                        Value::Int(i64::from(a.score)),
                        Value::Text(&a.summary),
                        Value::OptText(a.currency.as_deref()),
                        Value::Text(m),
                        Value::Text(now),
                        Value::Text(now),
                    ]
                }),
            );
            b.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            let mut inserted: HashSet<String> = Sqlite::fetch_all(c, b.build())
                .await?
                .iter()
                .map(|r| get::<Sqlite, String>(r, 0))
                .collect::<Result<_, _>>()?;
            // An id given twice is inserted once, from its first occurrence.
            let new: Vec<&Alert> = part.iter().filter(|a| inserted.remove(&a.id)).collect();
            inserted_total += new.len() as u64;
            let evidence: Vec<Vec<Value<'_>>> = new
                .iter()
                .flat_map(|a| {
                    rows::evidence_rows(a).map(|(kind, ord, r)| {
                        vec![
                            Value::Text(&a.id),
                            Value::Text(kind),
                            Value::Int(ord),
                            Value::Text(r),
                        ]
                    })
                })
                .collect();
            for chunk in evidence.chunks(VALUES_PER_STATEMENT / 4) {
                let b = multi_insert(
                    "INSERT INTO alert_evidence (alert_id, kind, ord, ref_id)",
                    chunk.iter().cloned(),
                );
                Sqlite::execute(c, b.build()).await?;
            }
        }
        Ok(inserted_total)
    }
}
