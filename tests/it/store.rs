//! The store suite, written once and run per backend: `store::sqlite::*` always, and
//! `store::postgres::*` when `CLEARWATCH_TEST_PG` holds a PostgreSQL URL (each test in a
//! fresh schema of a random name, selected through `search_path` and dropped at the end).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::PathBuf;

use assert_cmd::Command;
use clearwatch_ingest::load::{CommitPolicy, LoadMsg, LoadRow, stream_files};
use clearwatch_ingest::{IngestError, Profile, TableKind};
use clearwatch_model::case::Status;
use clearwatch_model::triage::AlertHit;
use clearwatch_model::{Alert, Evidence, Severity, Subject, SubjectKind, Window};
use clearwatch_model::{Currency, Table, Transaction};
use clearwatch_store::AlertStore;
use clearwatch_store::AuditStore;
use clearwatch_store::IngestStore;
use clearwatch_store::{
    self as store, AlertFilter, AnyStore, BatchReport, RuleVersion, SaveReport, Store, StoreError,
};
use predicates::str::contains;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tempfile::TempDir;

use crate::support::{fixture, stdout_of, summary_counts};

/// One fresh database of one backend, with a folder for input files.
pub struct TestDb {
    pub url: String,
    pub store: AnyStore,
    pub dir: TempDir,
    /// `(server URL, schema)` of a PostgreSQL test, dropped with the `TestDb`.
    pg: Option<(String, String)>,
}

fn random_name() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("cw_test_{:016x}", h.finish())
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("cw.db").display());
        let store = store::open(&url).await.unwrap();
        TestDb {
            url,
            store,
            dir,
            pg: None,
        }
    }

    /// `None` when `CLEARWATCH_TEST_PG` is unset; panics when it is set but unusable.
    pub async fn postgres() -> Option<TestDb> {
        let base = std::env::var("CLEARWATCH_TEST_PG")
            .ok()
            .filter(|s| !s.is_empty())?;
        let schema = random_name();
        let mut conn = PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("CLEARWATCH_TEST_PG={base}: {e}"));
        // The name is made here of hex digits only.
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={schema}");
        // The audit key and head of this database only: the binary, run in `dir`, finds
        // them there by default.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join(store::seal::DEFAULT_PG_AUDIT_KEY);
        let db = TestDb {
            store: store::open_with(&url, Some(&key)).await.unwrap(),
            url,
            dir,
            pg: Some((base, schema)),
        };
        Some(db)
    }

    /// The audit key file of this database.
    pub fn audit_key(&self) -> PathBuf {
        match self.pg {
            Some(_) => self.dir.path().join(store::seal::DEFAULT_PG_AUDIT_KEY),
            None => self.dir.path().join("cw.db.audit-key"),
        }
    }

    pub async fn reopen(&self) -> Result<AnyStore, StoreError> {
        store::open_with(&self.url, Some(&self.audit_key())).await
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The binary, pointed at this database.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("clearwatch").unwrap();
        c.env("CLEARWATCH_DB", &self.url)
            .current_dir(self.dir.path());
        c
    }

    /// Loads files through the native profile, as `ingest` does.
    pub async fn load(
        &self,
        plan: Vec<(TableKind, PathBuf)>,
    ) -> (
        Result<Vec<BatchReport>, StoreError>,
        Result<(), IngestError>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let producer = tokio::task::spawn_blocking(move || {
            stream_files(&plan, &Profile::native(), CommitPolicy::ANY, tx, &|_| {})
        });
        let loaded = self.store.load(rx).await;
        (loaded, producer.await.unwrap())
    }

    pub async fn load_ok(&self, plan: Vec<(TableKind, PathBuf)>) -> Vec<BatchReport> {
        let (loaded, produced) = self.load(plan).await;
        produced.unwrap();
        loaded.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, schema)) = self.pg.take() else {
            return;
        };
        // Drop cannot await: a thread of its own, with its own runtime and connection.
        let result = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut c = PgConnection::connect(&base).await?;
                sqlx::query("SET lock_timeout = '10s'")
                    .execute(&mut c)
                    .await?;
                sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&mut c)
                    .await?;
                c.close().await
            })
            .map_err(|e| format!("schema {schema}: {e}"))
        })
        .join();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: cleaning up the test schema failed: {e}"),
            Err(_) => eprintln!("warning: cleaning up the test schema panicked"),
        }
    }
}

/// Says on the real stderr (not the captured one) that a PostgreSQL variant did not run.
pub fn say_skipped(name: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "store::postgres::{name}: SKIPPED, CLEARWATCH_TEST_PG is not set (no PostgreSQL URL)"
    );
}

/// Runs each named `async fn(&TestDb)` as `store::sqlite::NAME` and `store::postgres::NAME`.
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres().await else {
                        super::say_skipped(stringify!($name));
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

store_suite!(
    load_counts_and_quarantine,
    reload_adds_nothing,
    reused_id_with_other_content_is_quarantined,
    duplicates_and_conflicts_across_chunks,
    reads_every_transaction_across_chunks_and_ranges,
    account_reads_take_each_transaction_once_and_streamed_batches_are_told_apart,
    aborted_load_leaves_nothing,
    rows_before_their_file_is_named_are_refused,
    stats_and_reads,
    amounts_at_the_maximum_sum_in_stats_without_overflow,
    nul_bytes_are_quarantined,
    demo_set_loads_as_on_sqlite,
    save_alerts_is_idempotent,
    alert_filters_and_order,
    alert_hits_are_the_filtered_alerts_without_evidence,
    case_hits_and_amounts_read_what_the_alerts_hold,
    suppressions_hide_untaken_alerts_until_they_expire_or_are_lifted,
    list_entries_count_until_they_expire_or_are_removed,
    alert_with_100k_evidence_round_trips,
    inferred_roles_are_replaced_whole,
    rule_versions_keep_their_text,
    newer_schema_is_refused,
    migrate_prints_the_schema_version,
    cli_ingest_and_stats,
    cli_quarantine_list_export_and_purge,
    cli_quarantine_retry_loads_what_a_fixed_profile_reads,
    cli_alerts_list_and_show,
);

fn counts(r: &BatchReport) -> [u64; 4] {
    [r.read, r.loaded, r.quarantined, r.duplicates]
}

async fn load_counts_and_quarantine(db: &TestDb) {
    let reports = db
        .load_ok(vec![
            (TableKind::Accounts, fixture("accounts.csv")),
            (TableKind::Transactions, fixture("bad_rows.csv")),
        ])
        .await;
    assert_eq!(reports.len(), 2);
    assert_eq!((reports[0].batch_id, reports[1].batch_id), (1, 2));
    assert_eq!(counts(&reports[0]), [2, 2, 0, 0]);
    assert_eq!(counts(&reports[1]), [11, 2, 9, 0]);
    assert_eq!(reports[1].kind, "transactions");
    assert_eq!(reports[1].sha256.len(), 64);
    let q = db.store.quarantine(None, 100).await.unwrap();
    assert_eq!(q.len(), 9);
    let lines: Vec<u64> = q.iter().map(|r| r.line).collect();
    assert_eq!(lines, (3..=11).collect::<Vec<u64>>(), "listed by line");
    assert!(q.iter().all(|r| r.batch_id == 2));
    assert_eq!(q[2].field.as_deref(), Some("amount"));
    assert!(
        q[2].reason.contains("not a decimal number"),
        "{}",
        q[2].reason
    );
    assert!(q[2].raw.starts_with("badamount,"), "{}", q[2].raw);
    assert!(q[1].raw.starts_with("utf8,"), "{}", q[1].raw);
    assert_eq!(db.store.quarantine(None, 2).await.unwrap().len(), 2);
}

async fn reload_adds_nothing(db: &TestDb) {
    let plan = || vec![(TableKind::Transactions, fixture("bad_rows.csv"))];
    let first = db.load_ok(plan()).await;
    let second = db.load_ok(plan()).await;
    assert_eq!(counts(&first[0]), [11, 2, 9, 0]);
    assert_eq!(counts(&second[0]), [11, 0, 9, 2]);
    assert_eq!(second[0].batch_id, 2);
    let s = db.store.stats(5).await.unwrap();
    assert_eq!((s.transactions, s.batches, s.quarantined), (2, 2, 18));
}

async fn reused_id_with_other_content_is_quarantined(db: &TestDb) {
    let header = "tx_id,ts,from,to,amount,currency,type\n";
    let a = db.write(
        "a.csv",
        &format!("{header}t1,2026-01-01T00:00:00Z,x,y,1.00,CNY,transfer\n"),
    );
    let b = db.write(
        "b.csv",
        &format!(
            "{header}t1,2026-01-01T00:00:00Z,x,y,2.00,CNY,transfer\n\
             t1,2026-01-01T00:00:00Z,x,y,1.00,CNY,transfer\n\
             t2,2026-01-01T00:00:00Z,x,y,5.00,CNY,transfer\n\
             t2,2026-01-01T00:00:00Z,x,y,6.00,CNY,transfer\n"
        ),
    );
    db.load_ok(vec![(TableKind::Transactions, a)]).await;
    let r = db.load_ok(vec![(TableKind::Transactions, b)]).await;
    assert_eq!(counts(&r[0]), [4, 1, 2, 1]);
    let q = db.store.quarantine(None, 10).await.unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!((q[0].line, q[0].field.as_deref()), (2, Some("tx_id")));
    assert_eq!(
        q[0].reason,
        "tx_id \"t1\" is already loaded (batch 1, line 2) with different content"
    );
    assert_eq!(
        q[1].reason,
        "tx_id \"t2\" is already loaded (batch 2, line 4) with different content"
    );
    let s = db.store.stats(5).await.unwrap();
    assert_eq!(
        s.totals[0].amount,
        100 + 500,
        "the first t1 and t2 are kept"
    );
}

/// What the stream workers read: an account's transactions, with and without the account
/// indexes (each once, even between accounts of two chunks of the id list); and whether a
/// rule's mark was followed only by batches of evaluating workers loaded after it.
async fn account_reads_take_each_transaction_once_and_streamed_batches_are_told_apart(db: &TestDb) {
    use clearwatch_store::ScanStore;
    use clearwatch_store::scans::{RuleScan, ScanSave, Supersede};
    let head = "tx_id,ts,from,to,amount,currency,type,merchant_id,memo\n";
    let rows = |rows: &[(&str, &str, &str)]| {
        let mut t = head.to_string();
        for (id, from, to) in rows {
            t.push_str(&format!(
                "{id},2026-01-05T00:00:00Z,{from},{to},1.00,CNY,transfer,,\n"
            ));
        }
        t
    };
    let a = db.write(
        "a.csv",
        &rows(&[("T1", "A1", "B1"), ("T2", "A2", "A1"), ("T3", "C1", "C2")]),
    );
    db.load_ok(vec![(TableKind::Transactions, a)]).await;
    let first = db.store.newest_batches().await.unwrap();
    let b = db.write("b.csv", &rows(&[("T4", "D1", "A1"), ("T5", "E1", "E2")]));
    db.load_ok(vec![(TableKind::Transactions, b)]).await;
    // A1 first and A2 last of 450 ids: two chunks of the list, both holding T2.
    let mut ids = vec!["A1".to_string()];
    ids.extend((0..448).map(|i| format!("Z{i}")));
    ids.push("A2".to_string());
    // Without the account indexes (a whole-table read), then with them, made twice (the
    // second time finds them).
    for indexed in [false, true] {
        if indexed {
            for _ in 0..2 {
                db.store.ensure_account_indexes().await.unwrap();
            }
        }
        let mut got = Vec::new();
        let n = db
            .store
            .each_transaction_of(&ids, |t| got.push(t.tx_id))
            .await
            .unwrap();
        got.sort();
        assert_eq!(got, ["T1", "T2", "T4"], "indexed: {indexed}");
        assert_eq!(n, 3);
    }
    // Marks: none yet, then one at the newest batch.
    let rule = RuleVersion {
        rule_id: "TC-04".into(),
        version: "v1".into(),
        title: "pool".into(),
        text: "id: TC-04\n".into(),
    };
    assert!(!db.store.streamed_since_mark(&rule).await.unwrap());
    let _ = first;
    let newest = db.store.newest_batches().await.unwrap();
    db.store
        .save_scan(ScanSave {
            alerts: &[],
            episodes: &Default::default(),
            rules: &[RuleScan {
                version: rule.clone(),
                supersede: Supersede::Nothing,
                mark: Some(newest),
            }],
        })
        .await
        .unwrap();
    assert!(db.store.streamed_since_mark(&rule).await.unwrap());
    // A batch of an evaluating worker, loaded in a later second than the mark: streamed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    load_from_source(db, "stream:CW.tx.0", "T6").await;
    assert!(db.store.streamed_since_mark(&rule).await.unwrap());
    // A batch of a worker that does not evaluate, or of `ingest`: not streamed.
    load_from_source(db, "nats:CW.tx.0", "T7").await;
    assert!(!db.store.streamed_since_mark(&rule).await.unwrap());
}

/// A CNY transfer with only the required fields.
fn transfer(id: &str, ts: i64, from: &str, to: &str, amount: i64) -> Transaction {
    Transaction {
        tx_id: id.into(),
        ts,
        from: from.into(),
        to: to.into(),
        amount,
        currency: Currency::from_code("CNY").unwrap(),
        tx_type: "transfer".parse().unwrap(),
        merchant_id: None,
        channel: None,
        region: None,
        memo: None,
    }
}

/// Loads one transaction `id` as a batch named `source`, as a stream worker does.
async fn load_from_source(db: &TestDb, source: &str, id: &str) {
    let t = transfer(id, 1_767_571_200_000, "S1", "S2", 100);
    let hash = t.content_hash();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let msgs = [
        LoadMsg::Begin {
            kind: TableKind::Transactions,
            source: source.into(),
            profile: "native".into(),
        },
        LoadMsg::Transactions(vec![LoadRow {
            record: t,
            line: 1,
            hash,
        }]),
        LoadMsg::End(clearwatch_ingest::ReadSummary {
            sha256: String::new(),
            rows_read: 1,
            rejected: 0,
            unknown_types: 0,
        }),
        LoadMsg::Commit(CommitPolicy::ANY),
    ];
    let feed = async move {
        for m in msgs {
            tx.send(m).await.unwrap();
        }
    };
    let (loaded, ()) = tokio::join!(db.store.load(rx), feed);
    assert_eq!(loaded.unwrap()[0].loaded, 1);
}

/// Repeats far apart in one file (several load chunks) count as on SQLite.
/// SQLite reads transactions in chunks of 20,000 (JSON built by SQLite): every row comes
/// back once, whole, inside the time range asked for.
async fn reads_every_transaction_across_chunks_and_ranges(db: &TestDb) {
    let mut text = String::from("tx_id,ts,from,to,amount,currency,type,merchant_id,memo\n");
    let n = 45_000;
    for i in 0..n {
        let merchant = if i % 3 == 0 {
            format!("M{}", i % 7)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "T{i:05},2026-01-{:02}T{:02}:00:00Z,A{},B{},{}.{:02},CNY,payment,{merchant},\"say \"\"hi\"\" \\ 商户 {i}\"\n",
            1 + i % 28,
            i % 24,
            i % 97,
            i % 89,
            i / 100,
            i % 100,
        ));
    }
    let f = db.write("many.csv", &text);
    db.load_ok(vec![(TableKind::Transactions, f)]).await;
    let all = db.store.transactions(None, None).await.unwrap();
    assert_eq!(all.len(), n);
    let mut ids: Vec<&str> = all.iter().map(|t| t.tx_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no row twice");
    let t = all.iter().find(|t| t.tx_id == "T12345").unwrap();
    assert_eq!(
        (t.from.as_str(), t.to.as_str(), t.amount),
        ("A26", "B63", 12_345)
    );
    assert_eq!(t.memo.as_deref(), Some("say \"hi\" \\ 商户 12345"));
    assert_eq!(t.merchant_id.as_deref(), Some("M4"));
    let u = all.iter().find(|t| t.tx_id == "T12346").unwrap();
    assert_eq!(u.merchant_id, None);
    // Days 10 to 19: the rows whose day-of-month index falls there.
    let day = 86_400_000;
    let from = clearwatch_model::parse_rfc3339("2026-01-10T00:00:00Z").unwrap();
    let inside = db
        .store
        .transactions(Some(from), Some(from + 10 * day))
        .await
        .unwrap();
    let expected = (0..n).filter(|i| (9..19).contains(&(i % 28))).count();
    assert_eq!(inside.len(), expected);
    assert!(
        inside
            .iter()
            .all(|t| t.ts >= from && t.ts < from + 10 * day)
    );
}

async fn duplicates_and_conflicts_across_chunks(db: &TestDb) {
    let mut text = String::from("tx_id,ts,from,to,amount,currency,type,memo\n");
    let row = |i: usize, cents: usize| {
        format!(
            "T{i:05},2026-01-01T00:00:00Z,A{},B{},{}.{:02},CNY,transfer,\"tab\tand \\\\ back\"\n",
            i % 97,
            i % 89,
            cents / 100,
            cents % 100
        )
    };
    for i in 0..10_000 {
        text.push_str(&row(i, 100 + i));
    }
    text.push_str(&row(0, 100)); // duplicate of line 2
    text.push_str(&row(1, 1)); // conflict with line 3
    text.push_str(&row(9_999, 100 + 9_999)); // duplicate of the last
    let f = db.write("big.csv", &text);
    let r = db.load_ok(vec![(TableKind::Transactions, f.clone())]).await;
    assert_eq!(counts(&r[0]), [10_003, 10_000, 1, 2]);
    let q = db.store.quarantine(None, 10).await.unwrap();
    assert_eq!(q[0].line, 10_003);
    assert!(q[0].reason.contains("(batch 1, line 3)"), "{}", q[0].reason);
    let r = db.load_ok(vec![(TableKind::Transactions, f)]).await;
    assert_eq!(counts(&r[0]), [10_003, 0, 1, 10_002]);
    let txs = db.store.transactions(None, None).await.unwrap();
    assert_eq!(txs.len(), 10_000);
    let t0 = txs.iter().find(|t| t.tx_id == "T00000").unwrap();
    assert_eq!(t0.memo.as_deref(), Some("tab\tand \\\\ back"));
}

async fn aborted_load_leaves_nothing(db: &TestDb) {
    db.load_ok(vec![(TableKind::Transactions, fixture("bad_rows.csv"))])
        .await;
    let before = db.store.stats(5).await.unwrap();
    let q_before = db.store.quarantine(None, 100).await.unwrap();
    // A good accounts file, then a transactions file that cannot be read.
    let (loaded, produced) = db
        .load(vec![
            (TableKind::Accounts, fixture("accounts.csv")),
            (TableKind::Transactions, db.dir.path().join("missing.csv")),
        ])
        .await;
    assert!(produced.is_err());
    assert!(matches!(loaded, Err(StoreError::Aborted)), "{loaded:?}");
    // A stream that ends mid-file, after rows and rejections were sent.
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(LoadMsg::Begin {
        kind: TableKind::Transactions,
        source: "stream".into(),
        profile: "native".into(),
    })
    .await
    .unwrap();
    tx.send(one_transfer_row("late")).await.unwrap();
    drop(tx);
    assert!(matches!(db.store.load(rx).await, Err(StoreError::Aborted)));
    assert_eq!(db.store.stats(5).await.unwrap(), before);
    assert_eq!(db.store.quarantine(None, 100).await.unwrap(), q_before);
    assert!(db.store.accounts().await.unwrap().is_empty());
    // Batch ids stay dense after a rollback.
    let r = db
        .load_ok(vec![(TableKind::Accounts, fixture("accounts.csv"))])
        .await;
    assert_eq!(r[0].batch_id, 2);
}

/// A load message of one transfer `id`, at line 2.
fn one_transfer_row(id: &str) -> LoadMsg {
    let record = transfer(id, 0, "a", "b", 1);
    let hash = record.content_hash();
    LoadMsg::Transactions(vec![LoadRow {
        record,
        line: 2,
        hash,
    }])
}

/// Rows belong to the batch `Begin` makes: a stream that sends them first is refused and
/// stores nothing (no foreign key would catch their batch id 0 on PostgreSQL).
async fn rows_before_their_file_is_named_are_refused(db: &TestDb) {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(one_transfer_row("early")).await.unwrap();
    drop(tx);
    let err = db.store.load(rx).await.unwrap_err();
    assert!(
        err.to_string().contains("before naming their file"),
        "{err}"
    );
    assert!(db.store.transactions(None, None).await.unwrap().is_empty());
}

/// Twelve amounts at the maximum of a three-decimal currency (10^18 minor units) sum past
/// 2^63: `stats` gives the exact sum rather than failing with "integer overflow".
async fn amounts_at_the_maximum_sum_in_stats_without_overflow(db: &TestDb) {
    let mut csv = String::from("tx_id,ts,from,to,amount,currency,type\n");
    for i in 0..12 {
        csv.push_str(&format!(
            "t{i},2026-01-01T00:00:00Z,A,B,1000000000000000.000,BHD,transfer\n"
        ));
    }
    csv.push_str("t12,2026-01-01T00:00:00Z,A,B,1000000000000000.001,BHD,transfer\n");
    csv.push_str("t13,2026-01-01T00:00:00Z,A,B,1.50,CNY,transfer\n");
    let reports = db
        .load_ok(vec![(TableKind::Transactions, db.write("max.csv", &csv))])
        .await;
    assert_eq!(counts(&reports[0]), [14, 13, 1, 0]);
    let s = db.store.stats(5).await.unwrap();
    let bhd = &s.totals[0];
    assert_eq!((bhd.currency.as_str(), bhd.transactions), ("BHD", 12));
    assert_eq!(bhd.amount, 12 * 10i128.pow(18));
    assert!(bhd.amount > i128::from(i64::MAX));
    assert_eq!(bhd.amount_text, "12000000000000000.000");
    assert_eq!(
        (s.totals[1].amount, s.totals[1].amount_text.as_str()),
        (150, "1.50")
    );
}

async fn stats_and_reads(db: &TestDb) {
    let m = db.write(
        "m.csv",
        "merchant_id,legal_name,holder_id,settlement_account,acquirer,mcc,settlement_cycle_days\n\
         M1,Shop \"One\",HUB,H1,ACQ,5411,3\nM2,,,,,,\n",
    );
    db.load_ok(vec![
        (TableKind::Accounts, fixture("accounts.csv")),
        (TableKind::Merchants, m),
        (TableKind::Transactions, fixture("bad_rows.csv")),
    ])
    .await;
    let s = db.store.stats(5).await.unwrap();
    assert_eq!(s.transactions, 2);
    assert_eq!(s.quarantined, 9);
    assert_eq!(s.batches, 3);
    assert_eq!(s.merchants, 2);
    assert_eq!((s.accounts_registered, s.accounts_unregistered), (2, 1));
    assert_eq!(
        s.accounts_by_role,
        vec![("acquirer".to_string(), 1), ("agent".to_string(), 1)]
    );
    assert_eq!(s.first_ts.as_deref(), Some("2026-01-05T02:00:00Z"));
    assert_eq!(s.last_ts.as_deref(), Some("2026-01-05T09:00:00Z"));
    assert_eq!(s.totals.len(), 1);
    assert_eq!(
        (s.totals[0].currency.as_str(), s.totals[0].amount),
        ("CNY", 19_900)
    );
    assert_eq!(s.totals[0].amount_text, "199.00");
    let out: Vec<&str> = s
        .top_out_degree
        .iter()
        .map(|d| d.account.as_str())
        .collect();
    assert_eq!(out, ["A1", "H1"]);
    let accounts = db.store.accounts().await.unwrap();
    assert_eq!(accounts.len(), 2);
    assert!(accounts[0].licensed && !accounts[1].licensed);
    let merchants = db.store.merchants().await.unwrap();
    assert_eq!(merchants[0].legal_name.as_deref(), Some("Shop \"One\""));
    assert_eq!(merchants[0].settlement_cycle_days, Some(3));
    assert_eq!(merchants[1].mcc, None);
    let all = db.store.transactions(None, None).await.unwrap();
    assert_eq!(all.len(), 2);
    let cut = clearwatch_model::parse_rfc3339("2026-01-05T09:00:00Z").unwrap();
    assert_eq!(
        db.store.transactions(None, Some(cut)).await.unwrap().len(),
        1
    );
    assert_eq!(
        db.store.transactions(Some(cut), None).await.unwrap().len(),
        1
    );
}

/// PostgreSQL text cannot hold a NUL byte; both backends quarantine such rows alike.
async fn nul_bytes_are_quarantined(db: &TestDb) {
    let f = db.write(
        "nul.csv",
        "tx_id,ts,from,to,amount,currency,type,merchant_id,channel,region,memo\n\
         n1,2026-01-01T00:00:00Z,a,b,1.00,CNY,transfer,,,,ok\n\
         n2,2026-01-01T00:00:00Z,a,b,1.00,CNY,transfer,,,,bad\0memo\n\
         n3,2026-01-01T00:00:00Z,a,b,1.0x,CNY,transfer,,,,bad\0too\n",
    );
    let r = db.load_ok(vec![(TableKind::Transactions, f)]).await;
    assert_eq!(counts(&r[0]), [3, 1, 2, 0]);
    let q = db.store.quarantine(None, 10).await.unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!((q[0].line, q[0].field.as_deref()), (3, Some("memo")));
    assert_eq!(q[0].reason, "memo contains a NUL byte");
    assert_eq!(q[1].field.as_deref(), Some("amount"));
    assert!(q[1].raw.ends_with("bad\u{FFFD}too"), "{:?}", q[1].raw);
}

/// The demo set gives the same reports, stats and records as a SQLite store.
async fn demo_set_loads_as_on_sqlite(db: &TestDb) {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo");
    let plan = || {
        vec![
            (TableKind::Accounts, demo.join("accounts.csv")),
            (TableKind::Merchants, demo.join("merchants.csv")),
            (TableKind::Transactions, demo.join("transactions.csv")),
        ]
    };
    let reference = TestDb::sqlite().await;
    for _ in 0..2 {
        let got = db.load_ok(plan()).await;
        let want = reference.load_ok(plan()).await;
        assert_eq!(got, want);
    }
    assert_eq!(
        db.store.stats(10).await.unwrap(),
        reference.store.stats(10).await.unwrap()
    );
    assert_eq!(
        db.store.quarantine(None, 10_000).await.unwrap(),
        reference.store.quarantine(None, 10_000).await.unwrap()
    );
    let sorted = |mut v: Vec<Transaction>| {
        v.sort_by(|a, b| a.tx_id.cmp(&b.tx_id));
        v
    };
    assert_eq!(
        sorted(db.store.transactions(None, None).await.unwrap()),
        sorted(reference.store.transactions(None, None).await.unwrap())
    );
    assert_eq!(
        db.store.accounts().await.unwrap(),
        reference.store.accounts().await.unwrap()
    );
    assert_eq!(
        db.store.merchants().await.unwrap(),
        reference.store.merchants().await.unwrap()
    );
}

fn alert(rule: &str, version: &str, subject: &str, day: i64, sev: Severity, score: u32) -> Alert {
    let subject = Subject {
        kind: SubjectKind::Account,
        id: subject.into(),
    };
    let from = 1_767_225_600_000 + day * 86_400_000;
    let window = Window {
        from,
        until: from + 7 * 86_400_000,
    };
    Alert {
        id: Alert::make_id(rule, version, &subject, window),
        rule_id: rule.into(),
        rule_version: version.into(),
        title: format!("{rule} title"),
        subject,
        window,
        severity: sev,
        score,
        summary: format!("{rule} fired, score {score}"),
        currency: Some("CNY".into()),
        metrics: BTreeMap::from([
            ("payees".to_string(), serde_json::json!(12)),
            ("amount".to_string(), serde_json::json!("1234.50")),
            ("ratio".to_string(), serde_json::json!(0.75)),
        ]),
        evidence: Evidence {
            transactions: vec!["T1".into(), "T2".into()],
            accounts: vec!["A1".into(), subject_id(day)],
        },
    }
}

fn subject_id(day: i64) -> String {
    format!("ACC-{day}")
}

fn sample_alerts() -> Vec<Alert> {
    vec![
        alert("TC-01", "v1", "HUB-7", 0, Severity::High, 80),
        alert("TC-01", "v1", "HUB-8", 0, Severity::Medium, 55),
        alert("TC-02", "v1", "SHOP-1", 1, Severity::Critical, 95),
        alert("TC-02", "v1", "SHOP-2", 2, Severity::Low, 30),
        alert("TC-03", "v1", "HUB-70", 3, Severity::Info, 10),
        alert("TC-03", "v1", "X-1", 4, Severity::High, 80),
    ]
}

async fn save_alerts_is_idempotent(db: &TestDb) {
    let alerts = sample_alerts();
    let first = db.store.save_alerts(&alerts, &[]).await.unwrap();
    assert_eq!(
        first,
        SaveReport {
            inserted: 6,
            existing: 0
        }
    );
    let again = db.store.save_alerts(&alerts, &[]).await.unwrap();
    assert_eq!(
        again,
        SaveReport {
            inserted: 0,
            existing: 6
        }
    );
    // A new rule version makes new ids; an id given twice in one call is stored once.
    let v2 = alert("TC-01", "v2", "HUB-7", 0, Severity::High, 80);
    assert_ne!(v2.id, alerts[0].id);
    let r = db
        .store
        .save_alerts(&[v2.clone(), v2.clone(), alerts[1].clone()], &[])
        .await
        .unwrap();
    assert_eq!(
        r,
        SaveReport {
            inserted: 1,
            existing: 2
        }
    );
    let all = db
        .store
        .alerts(&AlertFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 7);
    let stored = db.store.alert(&alerts[2].id).await.unwrap().unwrap();
    assert_eq!(stored.alert, alerts[2]);
    assert_eq!(stored.status, Status::New);
    assert_eq!(stored.assignee, None);
    assert!(clearwatch_model::parse_rfc3339(&stored.created_at).is_some());
    assert!(stored.created_at.ends_with('Z'), "{}", stored.created_at);
    assert_eq!(stored.created_at, stored.updated_at);
    assert!(db.store.alert("no-such-id").await.unwrap().is_none());
    assert_eq!(
        db.store.save_alerts(&[], &[]).await.unwrap(),
        SaveReport::default()
    );
}

async fn alert_hits_are_the_filtered_alerts_without_evidence(db: &TestDb) {
    let alerts = sample_alerts();
    db.store.save_alerts(&alerts, &[]).await.unwrap();
    for filter in [
        AlertFilter::default(),
        AlertFilter {
            rule_id: Some("TC-02".into()),
            ..AlertFilter::default()
        },
        AlertFilter {
            limit: 2,
            offset: 1,
            ..AlertFilter::default()
        },
    ] {
        let full: Vec<AlertHit> = db
            .store
            .alerts(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|a| AlertHit {
                subject: a.alert.subject,
                rule_id: a.alert.rule_id,
                score: a.alert.score,
            })
            .collect();
        assert!(!full.is_empty());
        assert_eq!(
            db.store.alert_hits(&filter).await.unwrap(),
            full,
            "{filter:?}"
        );
    }
}

/// What the case queue reads: each alert's version, status, assignee, detection time and
/// approved escalation, `open_only` leaving out reported work, and the amounts of a
/// subject's evidence with each transaction counted once.
/// The ids of the alerts `f` lists, sorted.
async fn listed(db: &TestDb, f: &AlertFilter) -> Vec<String> {
    let mut ids: Vec<String> = db
        .store
        .alerts(f)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.alert.id)
        .collect();
    ids.sort();
    ids
}

/// The suppressions in `state`.
async fn in_state(
    db: &TestDb,
    state: clearwatch_model::suppression::SuppressionState,
) -> Vec<clearwatch_model::suppression::Suppression> {
    use clearwatch_store::{SuppressionQuery, SuppressionStore};
    db.store
        .suppressions(&SuppressionQuery {
            state: Some(state),
            ..SuppressionQuery::default()
        })
        .await
        .unwrap()
}

async fn suppressions_hide_untaken_alerts_until_they_expire_or_are_lifted(db: &TestDb) {
    use clearwatch_model::case::UserRole;
    use clearwatch_model::suppression::{NewSuppression, SuppressionScope, SuppressionState};
    use clearwatch_store::cases::{CaseError, CaseUpdate};
    use clearwatch_store::{
        CaseStore, StoreError, Suppressed, SuppressionQuery, SuppressionStore, UserStore,
    };
    for (name, role) in [("ana", UserRole::Analyst), ("sue", UserRole::Supervisor)] {
        db.store.add_user(name, role, "x", "test").await.unwrap();
    }
    let dismissed = alert("TC-04", "v1", "HUB-7", 0, Severity::High, 80);
    let covered = alert("TC-04", "v1", "HUB-7", 3, Severity::High, 70);
    let other_rule = alert("ML-02", "v1", "HUB-7", 1, Severity::Medium, 50);
    let taken = alert("TC-04", "v1", "HUB-7", 5, Severity::High, 60);
    let other_subject = alert("TC-04", "v1", "SHOP-1", 0, Severity::High, 40);
    let all = [&dismissed, &covered, &other_rule, &taken, &other_subject];
    db.store
        .save_alerts(&all.map(|a| a.clone()), &[])
        .await
        .unwrap();
    db.store
        .update_case(&CaseUpdate {
            alert_id: taken.id.clone(),
            expected_version: 1,
            actor: "ana".into(),
            status: None,
            assignee: Some(Some("ana".into())),
        })
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let case_err = |e: StoreError| match e {
        StoreError::Case(c) => c,
        other => panic!("{other}"),
    };
    let rule_scope = |expires_at| NewSuppression {
        scope: SuppressionScope::Rule,
        expires_at,
    };
    // Only a dismissal asks for one, and only until a time ahead.
    let e = db
        .store
        .request_approval(
            &dismissed.id,
            1,
            Status::Escalated,
            None,
            "ana",
            Some(&rule_scope(now + 60_000)),
        )
        .await
        .unwrap_err();
    assert_eq!(case_err(e), CaseError::SuppressionNeedsDismissal);
    let e = db
        .store
        .request_approval(
            &dismissed.id,
            1,
            Status::Dismissed,
            Some("known"),
            "ana",
            Some(&rule_scope(now - 1)),
        )
        .await
        .unwrap_err();
    assert!(matches!(case_err(e), CaseError::BadSuppression(_)));

    let hide = AlertFilter {
        suppressed: Suppressed::Hide,
        ..AlertFilter::default()
    };
    let only = AlertFilter {
        suppressed: Suppressed::Only,
        ..AlertFilter::default()
    };
    let mut everything: Vec<String> = all.iter().map(|a| a.id.clone()).collect();
    everything.sort();
    // Three seconds to approve it and look while it is active.
    let expires_at = chrono::Utc::now().timestamp_millis() + 3_000;
    let req = db
        .store
        .request_approval(
            &dismissed.id,
            1,
            Status::Dismissed,
            Some("the group's own treasury"),
            "ana",
            Some(&rule_scope(expires_at)),
        )
        .await
        .unwrap();
    assert_eq!(
        listed(db, &hide).await,
        everything,
        "a pending suppression hides nothing"
    );
    let pending = in_state(db, SuppressionState::Pending).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].rule_id.as_deref(), Some("TC-04"));
    assert_eq!(pending[0].subject, dismissed.subject);
    assert_eq!(pending[0].approval_id, req.id);
    db.store.decide_approval(req.id, true, "sue").await.unwrap();

    // Active: the subject's new, unassigned TC-04 alert is hidden and only it.
    let active = db
        .store
        .suppressions(&SuppressionQuery {
            state: Some(SuppressionState::Active),
            subject_id: Some("HUB-7".into()),
            ..SuppressionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0].hidden, 1);
    assert_eq!(active[0].decided_by.as_deref(), Some("sue"));
    let visible: Vec<String> = everything
        .iter()
        .filter(|id| **id != covered.id)
        .cloned()
        .collect();
    assert_eq!(listed(db, &hide).await, visible);
    assert_eq!(listed(db, &only).await, vec![covered.id.clone()]);
    assert_eq!(
        listed(db, &AlertFilter::default()).await,
        everything,
        "never dropped"
    );
    assert_eq!(db.store.count_alerts(&hide).await.unwrap(), 4);
    assert_eq!(db.store.count_alerts(&only).await.unwrap(), 1);
    let on_hub = AlertFilter {
        subject: Some("HUB".into()),
        ..hide.clone()
    };
    assert_eq!(db.store.count_alerts(&on_hub).await.unwrap(), 3);
    let counts = db.store.status_counts(&hide).await.unwrap();
    assert!(
        counts.contains(&(Status::New, 3)) && counts.contains(&(Status::Dismissed, 1)),
        "{counts:?}"
    );
    let hits = db.store.case_hits(&hide).await.unwrap();
    assert!(hits.iter().all(|h| h.alert_id != covered.id));
    assert_eq!(hits.len(), 4);
    // Only a supervisor lifts.
    let e = db
        .store
        .lift_suppression(active[0].id, "ana")
        .await
        .unwrap_err();
    assert_eq!(case_err(e), CaseError::NotSupervisor);

    // It expires by itself: the alert comes back, and it can no longer be lifted.
    let wait = expires_at - chrono::Utc::now().timestamp_millis() + 50;
    if wait > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
    }
    assert_eq!(listed(db, &hide).await, everything);
    assert!(listed(db, &only).await.is_empty());
    let expired = in_state(db, SuppressionState::Expired).await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].hidden, 0);
    let e = db
        .store
        .lift_suppression(expired[0].id, "sue")
        .await
        .unwrap_err();
    assert!(matches!(case_err(e), CaseError::NotActive(..)));

    // Every rule on the subject, lifted early by a supervisor.
    let req = db
        .store
        .request_approval(
            &other_rule.id,
            1,
            Status::Dismissed,
            Some("payroll"),
            "ana",
            Some(&NewSuppression {
                scope: SuppressionScope::AllRules,
                expires_at: chrono::Utc::now().timestamp_millis() + 3_600_000,
            }),
        )
        .await
        .unwrap();
    db.store.decide_approval(req.id, true, "sue").await.unwrap();
    assert_eq!(
        listed(db, &only).await,
        vec![covered.id.clone()],
        "the assigned alert stays"
    );
    let all_rules = in_state(db, SuppressionState::Active).await;
    assert_eq!(all_rules.len(), 1);
    assert_eq!(all_rules[0].rule_id, None);
    let lifted = db
        .store
        .lift_suppression(all_rules[0].id, "sue")
        .await
        .unwrap();
    assert_eq!(lifted.state, SuppressionState::Lifted);
    assert!(listed(db, &only).await.is_empty());

    // A rejected dismissal rejects its suppression.
    let req = db
        .store
        .request_approval(
            &other_subject.id,
            1,
            Status::Dismissed,
            Some("refunds"),
            "ana",
            Some(&rule_scope(
                chrono::Utc::now().timestamp_millis() + 3_600_000,
            )),
        )
        .await
        .unwrap();
    db.store
        .decide_approval(req.id, false, "sue")
        .await
        .unwrap();
    let rejected = in_state(db, SuppressionState::Rejected).await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].subject.id, "SHOP-1");
    assert!(listed(db, &only).await.is_empty());

    // Every step is audited, and the chain holds.
    let actions = audit_actions(db, "suppression:").await;
    for want in [
        "suppression.request",
        "suppression.approve",
        "suppression.reject",
        "suppression.lift",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
    assert!(matches!(
        db.store.audit_verify().await.unwrap(),
        clearwatch_model::case::AuditCheck::Intact { .. }
    ));
}

/// The actions audited on entities whose name starts with `prefix`, newest first.
async fn audit_actions(db: &TestDb, prefix: &str) -> Vec<String> {
    use clearwatch_store::AuditStore;
    db.store
        .audit_log(None, 100, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entity.starts_with(prefix))
        .map(|e| e.action)
        .collect()
}

async fn list_entries_count_until_they_expire_or_are_removed(db: &TestDb) {
    use clearwatch_model::case::UserRole;
    use clearwatch_model::lists::{EntryKind, EntryState, ListKind, NewListEntry};
    use clearwatch_store::cases::CaseError;
    use clearwatch_store::{AuditStore, ListStore, StoreError, UserStore};
    for (name, role) in [("ana", UserRole::Analyst), ("sue", UserRole::Supervisor)] {
        db.store.add_user(name, role, "x", "test").await.unwrap();
    }
    fn refused<T>(r: Result<T, StoreError>) -> CaseError {
        match r {
            Err(StoreError::Case(e)) => e,
            Err(other) => panic!("not a refusal: {other}"),
            Ok(_) => panic!("not refused"),
        }
    }
    let e = refused(
        db.store
            .create_list("vip", ListKind::Watch, "", "ana")
            .await,
    );
    assert!(matches!(e, CaseError::NotAllowed(_)), "{e}");
    let e = refused(
        db.store
            .create_list("Bad-Name", ListKind::Watch, "", "sue")
            .await,
    );
    assert!(matches!(e, CaseError::BadListEntry(_)), "{e}");
    db.store
        .create_list("watched", ListKind::Watch, "new agents", "sue")
        .await
        .unwrap();
    db.store
        .create_list("group_treasury", ListKind::Allow, "checked groups", "sue")
        .await
        .unwrap();
    let e = refused(
        db.store
            .create_list("watched", ListKind::Allow, "", "sue")
            .await,
    );
    assert!(matches!(e, CaseError::ListExists(_)), "{e}");
    let now = chrono::Utc::now().timestamp_millis();
    let entry = |value: &str, expires_at: i64| NewListEntry {
        kind: EntryKind::Account,
        value: value.into(),
        reason: "seen in case 12".into(),
        expires_at,
    };
    // An analyst raises attention; passing over an account takes a supervisor.
    db.store
        .add_list_entry("watched", &entry("A1", now + 86_400_000), "ana")
        .await
        .unwrap();
    let e = refused(
        db.store
            .add_list_entry("group_treasury", &entry("A2", now + 86_400_000), "ana")
            .await,
    );
    assert!(matches!(e, CaseError::NotAllowed(_)), "{e}");
    let kept = db
        .store
        .add_list_entry("group_treasury", &entry("A2", now + 86_400_000), "sue")
        .await
        .unwrap();
    db.store
        .add_list_entry("group_treasury", &entry("A3", now + 3_000), "sue")
        .await
        .unwrap();
    let e = refused(
        db.store
            .add_list_entry(
                "group_treasury",
                &NewListEntry {
                    reason: " ".into(),
                    ..entry("A4", now + 60_000)
                },
                "sue",
            )
            .await,
    );
    assert!(matches!(e, CaseError::BadListEntry(_)), "{e}");
    let e = refused(
        db.store
            .add_list_entry("nope", &entry("A4", now + 60_000), "sue")
            .await,
    );
    assert!(matches!(e, CaseError::NotFound(_)), "{e}");
    let values = db.store.list_values().await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let account = |list: &str, value: &str| values.contains(list, EntryKind::Account, value, now);
    assert!(account("watched", "A1") && account("group_treasury", "A3"));
    assert!(!account("watched", "A2"), "lists are kept apart");
    let lists = db.store.lists().await.unwrap();
    let names: Vec<(&str, u64)> = lists.iter().map(|l| (l.name.as_str(), l.active)).collect();
    assert_eq!(names, [("group_treasury", 2), ("watched", 1)]);
    // An entry ends by itself at its expiry, and a supervisor may end one earlier.
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    let e = refused(
        db.store
            .remove_list_entry("group_treasury", kept.id, "ana")
            .await,
    );
    assert!(matches!(e, CaseError::NotAllowed(_)), "{e}");
    let e = refused(db.store.remove_list_entry("watched", kept.id, "sue").await);
    assert!(
        matches!(e, CaseError::NotFound(_)),
        "an entry of another list: {e}"
    );
    db.store
        .remove_list_entry("group_treasury", kept.id, "sue")
        .await
        .unwrap();
    let e = refused(
        db.store
            .remove_list_entry("group_treasury", kept.id, "sue")
            .await,
    );
    assert!(matches!(e, CaseError::AlreadyRemoved(_)), "{e}");
    let values = db.store.list_values().await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let account = |list: &str, value: &str| values.contains(list, EntryKind::Account, value, now);
    assert!(!account("group_treasury", "A2") && !account("group_treasury", "A3"));
    assert!(account("watched", "A1"));
    let long = NewListEntry {
        reason: "x".repeat(1001),
        ..entry("A5", now + 60_000)
    };
    let e = refused(db.store.add_list_entry("watched", &long, "sue").await);
    assert!(matches!(e, CaseError::BadListEntry(_)), "{e}");
    let (list, entries) = db.store.list("group_treasury").await.unwrap().unwrap();
    assert_eq!(list.active, 0);
    let now = chrono::Utc::now().timestamp_millis();
    let states: Vec<(&str, EntryState)> = entries
        .iter()
        .map(|e| (e.value.as_str(), e.state(now)))
        .collect();
    assert_eq!(
        states,
        [("A3", EntryState::Expired), ("A2", EntryState::Removed)]
    );
    assert_eq!(entries[1].removed_by.as_deref(), Some("sue"));
    assert!(db.store.list("nope").await.unwrap().is_none());
    let actions = audit_actions(db, "list:").await;
    assert_eq!(
        actions,
        [
            "list.remove",
            "list.add",
            "list.add",
            "list.add",
            "list.create",
            "list.create"
        ]
    );
    assert!(matches!(
        db.store.audit_verify().await.unwrap(),
        clearwatch_model::case::AuditCheck::Intact { .. }
    ));
}

async fn case_hits_and_amounts_read_what_the_alerts_hold(db: &TestDb) {
    use clearwatch_model::case::UserRole;
    use clearwatch_store::{CaseStore, UserStore};
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo");
    db.load_ok(vec![(
        TableKind::Transactions,
        demo.join("transactions.csv"),
    )])
    .await;
    let amount: BTreeMap<String, i64> = db
        .store
        .transactions(None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.tx_id, t.amount))
        .collect();
    let mut a = alert("TC-04", "v1", "HUB-7", 0, Severity::High, 80);
    a.evidence.transactions = vec!["T000000001".into(), "T000000002".into()];
    let mut b = alert("ML-02", "v1", "HUB-7", 3, Severity::Medium, 50);
    // T000000002 again, and one id the store does not hold.
    b.evidence.transactions = vec!["T000000002".into(), "T000000003".into(), "NOPE".into()];
    let c = alert("TC-02", "v1", "SHOP-1", 1, Severity::Low, 30);
    db.store
        .save_alerts(&[a.clone(), b.clone(), c.clone()], &[])
        .await
        .unwrap();
    // b is escalated (approved) and then reported; c is in review.
    for (name, role) in [("ana", UserRole::Analyst), ("sue", UserRole::Supervisor)] {
        db.store.add_user(name, role, "x", "test").await.unwrap();
    }
    let review = |id: &str| clearwatch_store::cases::CaseUpdate {
        alert_id: id.to_string(),
        expected_version: 1,
        actor: "ana".into(),
        status: Some(Status::InReview),
        assignee: None,
    };
    db.store.update_case(&review(&b.id)).await.unwrap();
    db.store.update_case(&review(&c.id)).await.unwrap();
    let req = db
        .store
        .request_approval(&b.id, 2, Status::Escalated, None, "ana", None)
        .await
        .unwrap();
    db.store.decide_approval(req.id, true, "sue").await.unwrap();
    let escalated = db.store.alert(&b.id).await.unwrap().unwrap();
    db.store
        .update_case(&clearwatch_store::cases::CaseUpdate {
            alert_id: b.id.clone(),
            expected_version: escalated.version,
            actor: "ana".into(),
            status: Some(Status::Reported),
            assignee: Some(Some("ana".into())),
        })
        .await
        .unwrap();
    let stored = db.store.alerts(&AlertFilter::default()).await.unwrap();
    let hits = db.store.case_hits(&AlertFilter::default()).await.unwrap();
    assert_eq!(hits.len(), 3);
    for (h, s) in hits.iter().zip(&stored) {
        assert_eq!(h.alert_id, s.alert.id);
        assert_eq!(h.version, s.version);
        assert_eq!(h.subject, s.alert.subject);
        assert_eq!(h.rule_id, s.alert.rule_id);
        assert_eq!(h.score, s.alert.score);
        assert_eq!(h.status, s.status);
        assert_eq!(h.assignee, s.assignee);
        assert_eq!(h.window, s.alert.window);
        assert_eq!(
            Some(h.detected),
            clearwatch_model::parse_rfc3339(&s.created_at)
        );
        assert_eq!(h.escalated.is_some(), h.alert_id == b.id, "{}", h.alert_id);
    }
    let open = db
        .store
        .case_hits(&AlertFilter {
            open_only: true,
            ..AlertFilter::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<&str> = open.iter().map(|h| h.alert_id.as_str()).collect();
    ids.sort();
    let mut want = vec![a.id.as_str(), c.id.as_str()];
    want.sort();
    assert_eq!(ids, want, "reported work is not open");
    // The status tabs of an `open` queue still count every status.
    let counts = db
        .store
        .status_counts(&AlertFilter {
            open_only: true,
            ..AlertFilter::default()
        })
        .await
        .unwrap();
    assert!(
        counts.contains(&(Status::Reported, 1)) && counts.contains(&(Status::InReview, 1)),
        "{counts:?}"
    );
    let hub = Subject {
        kind: SubjectKind::Account,
        id: "HUB-7".into(),
    };
    let sum = |ids: &[&str]| -> i128 { ids.iter().map(|t| i128::from(amount[*t])).sum() };
    assert_eq!(
        db.store
            .case_amounts(&hub, &AlertFilter::default())
            .await
            .unwrap(),
        [(
            "CNY".to_string(),
            sum(&["T000000001", "T000000002", "T000000003"])
        )]
    );
    assert_eq!(
        db.store
            .case_amounts(
                &hub,
                &AlertFilter {
                    open_only: true,
                    ..AlertFilter::default()
                }
            )
            .await
            .unwrap(),
        [("CNY".to_string(), sum(&["T000000001", "T000000002"]))]
    );
    assert!(
        db.store
            .case_amounts(
                &Subject {
                    kind: SubjectKind::Merchant,
                    id: "HUB-7".into()
                },
                &AlertFilter::default()
            )
            .await
            .unwrap()
            .is_empty(),
        "the subject's kind counts"
    );
}

async fn alert_filters_and_order(db: &TestDb) {
    let alerts = sample_alerts();
    db.store.save_alerts(&alerts, &[]).await.unwrap();
    let list = |f: AlertFilter| async move {
        db.store
            .alerts(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.alert.score, a.alert.subject.id))
            .collect::<Vec<_>>()
    };
    let all = list(AlertFilter::default()).await;
    let scores: Vec<u32> = all.iter().map(|a| a.0).collect();
    assert_eq!(scores, [95, 80, 80, 55, 30, 10]);
    // Equal scores are ordered by id.
    let tied: Vec<String> = db
        .store
        .alerts(&AlertFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.alert.score == 80)
        .map(|a| a.alert.id)
        .collect();
    let mut sorted = tied.clone();
    sorted.sort();
    assert_eq!(tied, sorted);
    let high = list(AlertFilter {
        min_severity: Some(Severity::High),
        ..Default::default()
    })
    .await;
    assert_eq!(high.len(), 3);
    let rule = list(AlertFilter {
        rule_id: Some("TC-02".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        rule,
        [(95, "SHOP-1".to_string()), (30, "SHOP-2".to_string())]
    );
    let hub = list(AlertFilter {
        subject: Some("HUB-7".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(hub, [(80, "HUB-7".to_string()), (10, "HUB-70".to_string())]);
    let exact = list(AlertFilter {
        subject_is: Some(Subject {
            kind: SubjectKind::Account,
            id: "HUB-7".into(),
        }),
        ..Default::default()
    })
    .await;
    assert_eq!(
        exact,
        [(80, "HUB-7".to_string())],
        "HUB-70 is another subject"
    );
    let merchant = list(AlertFilter {
        subject_is: Some(Subject {
            kind: SubjectKind::Merchant,
            id: "HUB-7".into(),
        }),
        ..Default::default()
    })
    .await;
    assert!(
        merchant.is_empty(),
        "an account is not a merchant of the same id"
    );
    // A `%` or `_` in the text is literal, not a pattern.
    let literal = list(AlertFilter {
        subject: Some("HUB_7".into()),
        ..Default::default()
    })
    .await;
    assert!(literal.is_empty());
    let combined = list(AlertFilter {
        status: Some(Status::New),
        min_severity: Some(Severity::Medium),
        rule_id: Some("TC-01".into()),
        subject: Some("HUB".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(combined.len(), 2);
    let closed = list(AlertFilter {
        status: Some(Status::Closed),
        ..Default::default()
    })
    .await;
    assert!(closed.is_empty());
    let page = list(AlertFilter {
        limit: 2,
        offset: 2,
        ..Default::default()
    })
    .await;
    assert_eq!(page, all[2..4].to_vec());
    let listed = db.store.alerts(&AlertFilter::default()).await.unwrap();
    let shop1 = listed
        .iter()
        .find(|a| a.alert.subject.id == "SHOP-1")
        .unwrap();
    assert_eq!(shop1.alert, alerts[2], "evidence and metrics included");
}

async fn alert_with_100k_evidence_round_trips(db: &TestDb) {
    let mut big = alert("TC-09", "v1", "POOL-1", 0, Severity::Critical, 99);
    big.evidence.transactions = (0..100_000).map(|i| format!("T{i:07}")).collect();
    big.evidence.accounts = (0..500).map(|i| format!("A{i:04}")).collect();
    let small = alert("TC-09", "v1", "POOL-2", 0, Severity::Low, 20);
    let r = db
        .store
        .save_alerts(&[big.clone(), small.clone()], &[])
        .await
        .unwrap();
    assert_eq!(r.inserted, 2);
    let back = db.store.alert(&big.id).await.unwrap().unwrap();
    assert_eq!(back.alert, big);
    let listed = db.store.alerts(&AlertFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].alert, big);
    assert_eq!(listed[1].alert, small);
}

async fn rule_versions_keep_their_text(db: &TestDb) {
    let text = "id: TC-04\nwhen: >\n  payees >= 10 && share > 0.8\t# pooled\nnote: \"quoted\" \\ back — 二清\n";
    let rules = vec![
        RuleVersion {
            rule_id: "TC-04".into(),
            version: "abc123".into(),
            title: "Pooling hub".into(),
            text: text.into(),
        },
        RuleVersion {
            rule_id: "TC-04".into(),
            version: "def456".into(),
            title: "Pooling hub".into(),
            text: "id: TC-04\n".into(),
        },
    ];
    let a = alert("TC-04", "abc123", "HUB", 0, Severity::High, 70);
    db.store.save_alerts(&[a], &rules).await.unwrap();
    db.store.save_alerts(&[], &rules).await.unwrap();
    assert_eq!(
        db.store.rule_version("TC-04", "abc123").await.unwrap(),
        Some(rules[0].clone())
    );
    assert_eq!(
        db.store.rule_version("TC-04", "def456").await.unwrap(),
        Some(rules[1].clone())
    );
    assert_eq!(db.store.rule_version("TC-04", "zzz").await.unwrap(), None);
    assert_eq!(
        db.store.rule_version("TC-05", "abc123").await.unwrap(),
        None
    );
}

async fn newer_schema_is_refused(db: &TestDb) {
    let known = db.store.known_schema_version();
    assert_eq!(db.store.schema_version().await.unwrap(), known);
    let future = known + 5;
    match &db.store {
        AnyStore::Sqlite(s) => sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (?, 'from the future', TRUE, ?, 0)")
            .bind(future)
            .bind(vec![0u8; 48])
            .execute(s.pool())
            .await
            .map(|_| ()),
        AnyStore::Postgres(s) => sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1, 'from the future', TRUE, $2, 0)")
            .bind(future)
            .bind(vec![0u8; 48])
            .execute(s.pool())
            .await
            .map(|_| ()),
    }
    .unwrap();
    let message = format!(
        "database schema version {future} is newer than this clearwatch (knows up to {known}): upgrade clearwatch"
    );
    match db.reopen().await {
        Err(e @ StoreError::NewerSchema { .. }) => assert_eq!(e.to_string(), message),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
    db.cmd()
        .arg("migrate")
        .assert()
        .code(2)
        .stderr(contains(message.as_str()));
    db.cmd()
        .args(["stats"])
        .assert()
        .code(2)
        .stderr(contains("upgrade clearwatch"));
}

async fn migrate_prints_the_schema_version(db: &TestDb) {
    let backend = db.store.backend();
    let known = db.store.known_schema_version();
    assert_eq!(known, 13);
    for _ in 0..2 {
        db.cmd()
            .arg("migrate")
            .assert()
            .success()
            .stdout(contains(format!(
                "{backend} schema version {known} (this clearwatch knows up to {known})"
            )));
    }
}

async fn cli_ingest_and_stats(db: &TestDb) {
    for expected in [[13, 4, 9, 0], [13, 0, 9, 4]] {
        let out = db
            .cmd()
            .args(["ingest", "--accept-partial", "--transactions"])
            .arg(fixture("bad_rows.csv"))
            .arg("--accounts")
            .arg(fixture("accounts.csv"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(summary_counts(&out.stdout), expected);
    }
    let out = db
        .cmd()
        .args(["stats", "--json", "--quarantine", "100"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["transactions"], 2);
    assert_eq!(s["quarantined"], 18);
    assert_eq!(s["batches"], 4);
    assert_eq!(s["accounts_registered"], 2);
    assert_eq!(s["quarantine_rows"].as_array().unwrap().len(), 18);
}

async fn cli_quarantine_list_export_and_purge(db: &TestDb) {
    let run = |args: &[&str]| stdout_of(db.cmd(), args);
    let bad = fixture("bad_rows.csv");
    run(&[
        "ingest",
        "--accept-partial",
        "--transactions",
        bad.to_str().unwrap(),
    ]);
    let listed = run(&["quarantine", "list", "--batch", "1", "--json"]);
    let rows: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 9, "{listed}");
    assert_eq!(rows[0]["line"], 3);
    assert!(rows[0]["id"].as_i64().unwrap() > 0);
    assert!(run(&["quarantine", "list", "--batch", "7"]).is_empty());
    let csv_path = db.dir.path().join("quarantine.csv");
    run(&["quarantine", "export", "--out", csv_path.to_str().unwrap()]);
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["id", "batch_id", "source", "line", "field", "reason", "raw"]
    );
    let exported: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(exported.len(), 9);
    assert!(
        exported
            .iter()
            .any(|r| r[4] == *"amount" && r[6].starts_with("badamount,"))
    );
    let out = db.cmd().args(["quarantine", "purge"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "purge names a batch or --all");
    let purged = run(&["quarantine", "purge", "--batch", "1", "--user", "auditor-7"]);
    assert_eq!(purged.trim(), "purged 9 quarantined rows of batch 1");
    assert!(db.store.quarantine(None, 100).await.unwrap().is_empty());
    let audit = db.store.audit_log(Some("batch:1"), 10, 0).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "quarantine.purge");
    assert_eq!(audit[0].actor, "auditor-7");
    let out = db
        .cmd()
        .args(["quarantine", "purge", "--batch", "99"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("batch 99 not found"));
    let audit = db.store.audit_log(Some("batch:99"), 10, 0).await.unwrap();
    assert!(audit.is_empty(), "a refused purge is not audited");
}

async fn cli_quarantine_retry_loads_what_a_fixed_profile_reads(db: &TestDb) {
    let run = |args: &[&str]| stdout_of(db.cmd(), args);
    let export = db.write(
        "export.csv",
        "tx_id,ts,from,to,amount,currency,type\r\n\
         e1,2026-03-05T06:00:00Z,A,B,12.00,CNY,transfer\r\n\
         e2,2026-03-05T07:00:00Z,A,C,\"1,234.50\",CNY,transfer\r\n\
         e3,2026-03-05T08:00:00Z,B,C,\"23,008.77\",CNY,transfer\r\n\
         e4,2026-03-05T09:00:00Z,B,C,\"5,000\",元,transfer\r\n",
    );
    let first = run(&[
        "ingest",
        "--accept-partial",
        "--transactions",
        export.to_str().unwrap(),
    ]);
    assert!(first.contains("read 4, loaded 1, quarantined 3"), "{first}");
    let listed: Vec<serde_json::Value> = run(&["quarantine", "list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["line"], 3, "CRLF lines counted once");
    assert_eq!(
        listed[0]["raw"],
        "e2,2026-03-05T07:00:00Z,A,C,\"1,234.50\",CNY,transfer"
    );
    let id = listed[0]["id"].as_i64().unwrap().to_string();
    let shown = run(&["quarantine", "show", &id]);
    assert!(
        shown.contains(&format!("{}:3", export.display())),
        "{shown}"
    );
    assert!(shown.contains("reason: amount"), "{shown}");

    // A file changed since the batch loaded it is refused, and nothing moves.
    let changed = std::fs::read_to_string(&export).unwrap()
        + "e4,2026-03-05T09:00:00Z,C,A,1.00,CNY,transfer\r\n";
    let moved = db.write("moved.csv", &changed);
    let out = db
        .cmd()
        .args([
            "quarantine",
            "retry",
            "--batch",
            "1",
            "--file",
            moved.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the file batch 1 loaded"));
    assert_eq!(db.store.quarantine(None, 10).await.unwrap().len(), 3);
    assert_eq!(
        db.store.batches().await.unwrap().len(),
        1,
        "no batch was added"
    );
    let stats: serde_json::Value = serde_json::from_str(&run(&["stats", "--json"])).unwrap();
    assert_eq!(stats["transactions"], 1, "{stats}");

    let fixed = db.write(
        "fixed.yaml",
        "name: fixed\ntransactions:\n  fields: { tx_id: tx_id, ts: ts, from: from, to: to, amount: amount, currency: currency, type: type }\n  amount_format: { thousands: \",\" }\n",
    );
    let retried = run(&[
        "quarantine",
        "retry",
        "--batch",
        "1",
        "--profile",
        fixed.to_str().unwrap(),
        "--user",
        "analyst-3",
    ]);
    assert!(
        retried.contains("read 3, loaded 2, quarantined 1"),
        "{retried}"
    );
    assert!(retried.contains("quarantined rows of batch 1"), "{retried}");
    // The row still refused is quarantined again under the new batch, with today's reason.
    let left = db.store.quarantine(None, 10).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!((left[0].batch_id, left[0].line), (2, 5));
    assert_eq!(left[0].field.as_deref(), Some("currency"));
    let stats: serde_json::Value = serde_json::from_str(&run(&["stats", "--json"])).unwrap();
    assert_eq!(stats["transactions"], 3, "{stats}");
    let audit = db.store.audit_log(Some("batch:1"), 10, 0).await.unwrap();
    assert_eq!(audit[0].action, "quarantine.retry");
    assert_eq!(audit[0].actor, "analyst-3");
    let nothing = run(&["quarantine", "retry", "--batch", "1"]);
    assert!(nothing.contains("no quarantined rows"), "{nothing}");
    // Without --profile, a retry reads with the batch's profile if it is a built-in one.
    let out = db
        .cmd()
        .args(["quarantine", "retry", "--batch", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give its file with --profile"));
    let again = run(&[
        "quarantine",
        "retry",
        "--batch",
        "2",
        "--profile",
        fixed.to_str().unwrap(),
    ]);
    assert!(again.contains("read 1, loaded 0, quarantined 1"), "{again}");
}

async fn cli_alerts_list_and_show(db: &TestDb) {
    let alerts = sample_alerts();
    db.store.save_alerts(&alerts, &[]).await.unwrap();
    let out = db
        .cmd()
        .args(["alerts", "list", "--json", "--severity", "high"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["score"], 95);
    assert_eq!(list[0]["status"], "new");
    assert_eq!(list[0]["evidence"]["transactions"][1], "T2");
    let table = db
        .cmd()
        .args(["alerts", "list", "--rule", "TC-02", "--subject", "SHOP"])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    for word in [
        "id", "rule", "severity", "score", "subject", "window", "status", "summary",
    ] {
        assert!(table.lines().next().unwrap().contains(word), "{table}");
    }
    assert!(table.contains(&alerts[2].id), "{table}");
    assert!(table.contains("account:SHOP-2"), "{table}");
    assert!(
        table.contains("2026-01-02T00:00:00Z..2026-01-09T00:00:00Z"),
        "{table}"
    );
    assert!(!table.contains("HUB-7"), "{table}");
    let out = db
        .cmd()
        .args(["alerts", "show", &alerts[0].id, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let one: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(one["id"], alerts[0].id.as_str());
    assert_eq!(one["metrics"]["payees"], 12);
    db.cmd()
        .args(["alerts", "show", &alerts[0].id])
        .assert()
        .success()
        .stdout(contains("HUB-7"));
    db.cmd()
        .args(["alerts", "show", "TC-00-0000"])
        .assert()
        .code(2)
        .stderr(contains("no alert with id \"TC-00-0000\""));
    db.cmd()
        .args(["alerts", "list", "--severity", "urgent"])
        .assert()
        .code(2)
        .stderr(contains("critical"));
}

/// A scan's inferred roles replace the last scan's whole: an account no longer inferred is
/// gone, and only asked-for accounts that have one are read back.
async fn inferred_roles_are_replaced_whole(db: &TestDb) {
    use clearwatch_model::Role;
    use clearwatch_store::ScanStore;
    let roles: Vec<(String, Role)> = (0..1200)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::Merchant
            } else {
                Role::Acquirer
            };
            (format!("A{i}"), role)
        })
        .collect();
    db.store.save_inferred_roles(&roles).await.unwrap();
    let ids: Vec<String> = ["A0", "A1", "A1199", "NONE"].map(String::from).to_vec();
    let got = db.store.inferred_roles(&ids).await.unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got["A0"], Role::Merchant);
    assert_eq!(got["A1199"], Role::Acquirer);
    db.store
        .save_inferred_roles(&[("A1".into(), Role::Merchant)])
        .await
        .unwrap();
    let got = db.store.inferred_roles(&ids).await.unwrap();
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        [("A1".to_string(), Role::Merchant)]
    );
}
