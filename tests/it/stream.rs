//! `clearwatch stream` against the real NATS JetStream server (CLEARWATCH_TEST_NATS, else
//! nats://127.0.0.1:4222 when it answers): the stream's stored alerts equal `scan --input`,
//! republishing counts nothing twice, and a worker killed with SIGKILL loses nothing.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::store::TestDb;
use crate::support::{Db, stdout_of};

/// The database the binary is pointed at: SQLite, or a PostgreSQL schema of its own.
enum Target {
    Sqlite(Db),
    Postgres(Box<TestDb>),
}

impl Target {
    fn cmd(&self) -> Command {
        match self {
            Target::Sqlite(d) => d.cmd(),
            Target::Postgres(d) => d.cmd(),
        }
    }

    fn stdout(&self, args: &[&str]) -> String {
        stdout_of(self.cmd(), args)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.stdout(args)).unwrap()
    }

    fn transactions(&self) -> u64 {
        self.json(&["stats", "--json"])["transactions"]
            .as_u64()
            .unwrap()
    }
}

/// The NATS URL, or `None` (said on stderr) when no server is configured or answering.
pub(crate) fn nats() -> Option<String> {
    if let Ok(url) = std::env::var("CLEARWATCH_TEST_NATS")
        && !url.is_empty()
    {
        // Set explicitly (as CI does): an unreachable server fails the test.
        return Some(url);
    }
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:4222".parse().unwrap(),
        Duration::from_millis(300),
    )
    .is_ok();
    if !up {
        let _ = writeln!(
            std::io::stderr(),
            "stream tests: SKIPPED, no NATS server at 127.0.0.1:4222 and CLEARWATCH_TEST_NATS unset"
        );
        return None;
    }
    Some("nats://127.0.0.1:4222".to_string())
}

/// A stream of its own for one test, deleted afterwards.
pub(crate) struct TestStream {
    url: String,
    pub(crate) name: String,
}

impl TestStream {
    pub(crate) fn new(url: &str, tag: &str) -> TestStream {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        TestStream {
            url: url.to_string(),
            name: format!("CWTEST_{tag}_{}_{nanos}", std::process::id()),
        }
    }

    fn args<'a>(&'a self, partitions: &'a str) -> [&'a str; 6] {
        [
            "--nats",
            &self.url,
            "--stream",
            &self.name,
            "--partitions",
            partitions,
        ]
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                if let Ok(js) = clearwatch_stream::connect(&url).await {
                    let _ = clearwatch_stream::delete_stream(&js, &name).await;
                }
            });
        })
        .join();
    }
}

type Alerts = BTreeSet<(String, u64, String)>;

/// `(id, score, summary)` of each alert of a JSON list.
fn triples(list: &serde_json::Value) -> Alerts {
    triples_of(list, |_| true)
}

/// `(id, score, summary)` of the alerts of a JSON list whose rule id passes `keep`.
fn triples_of(list: &serde_json::Value, keep: impl Fn(&str) -> bool) -> Alerts {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|a| keep(a["rule_id"].as_str().unwrap()))
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["score"].as_u64().unwrap(),
                a["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every stored alert.
fn stored_alerts(db: &Target) -> Alerts {
    triples(&db.json(&["alerts", "list", "--json", "--limit", "1000000"]))
}

/// The alerts of `scan --input` over the files.
fn scanned_alerts(db: &Target, dir: &Path) -> Alerts {
    triples(&scan_input(db, dir))
}

fn scan_input(db: &Target, dir: &Path) -> serde_json::Value {
    let file = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (tx, acc, mer) = (
        file("transactions.csv"),
        file("accounts.csv"),
        file("merchants.csv"),
    );
    db.json(&[
        "scan",
        "--input",
        &tx,
        "--accounts",
        &acc,
        "--merchants",
        &mer,
        "--format",
        "json",
    ])
}

fn ingest_registry(db: &Target, dir: &Path) {
    db.stdout(&[
        "ingest",
        "--accounts",
        dir.join("accounts.csv").to_str().unwrap(),
        "--merchants",
        dir.join("merchants.csv").to_str().unwrap(),
    ]);
}

#[test]
fn stream_alerts_equal_scan_input_on_the_demo_set_sqlite() {
    stream_alerts_equal_scan_input_on_the_demo_set(Target::Sqlite(Db::new()));
}

#[test]
fn stream_alerts_equal_scan_input_on_the_demo_set_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    match rt.block_on(TestDb::postgres()) {
        Some(db) => stream_alerts_equal_scan_input_on_the_demo_set(Target::Postgres(Box::new(db))),
        None => crate::store::say_skipped("stream_alerts_equal_scan_input_on_the_demo_set"),
    }
}

fn stream_alerts_equal_scan_input_on_the_demo_set(db: Target) {
    let Some(url) = nats() else { return };
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo");
    let s = TestStream::new(&url, "demo");
    let at = s.args("4");
    ingest_registry(&db, &demo);
    let tx = demo.join("transactions.csv");
    let publish = |db: &Target| {
        let mut args = vec!["stream", "publish"];
        args.extend(at);
        args.extend(["--transactions", tx.to_str().unwrap()]);
        db.stdout(&args)
    };
    let first = publish(&db);
    assert!(first.contains("published 6535 transactions"), "{first}");
    let again = publish(&db);
    assert!(
        again.contains("as 0 messages"),
        "a republished file adds nothing: {again}"
    );
    // Two workers share the four partitions; worker 0 also scans. Run last, with nothing
    // left of its own, it still scans what worker 1 stored.
    for worker in ["0", "1", "0"] {
        let mut args = vec!["stream", "work"];
        args.extend(at);
        args.extend(["--worker", worker, "--of", "2", "--once"]);
        db.stdout(&args);
    }
    assert_eq!(db.transactions(), 6535);
    let expected = scanned_alerts(&db, &demo);
    assert_eq!(expected.len(), 140);
    assert_eq!(stored_alerts(&db), expected);
    let mut args = vec!["stream", "status", "--json"];
    args.extend(at);
    let lag: serde_json::Value = serde_json::from_str(&db.stdout(&args)).unwrap();
    let lags = lag.as_array().unwrap();
    assert_eq!(lags.len(), 4);
    assert!(
        lags.iter()
            .all(|l| l["pending"] == 0 && l["unacknowledged"] == 0 && l["exists"] == true),
        "{lag}"
    );
}

#[test]
fn workers_store_the_local_rules_alerts_as_batches_arrive_sqlite() {
    workers_store_the_local_rules_alerts_as_batches_arrive(Target::Sqlite(Db::new()));
}

#[test]
fn workers_store_the_local_rules_alerts_as_batches_arrive_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    match rt.block_on(TestDb::postgres()) {
        Some(db) => {
            workers_store_the_local_rules_alerts_as_batches_arrive(Target::Postgres(Box::new(db)))
        }
        None => crate::store::say_skipped("workers_store_the_local_rules_alerts_as_batches_arrive"),
    }
}

/// Without any store scan, the workers alone store exactly the alerts that `scan --input`
/// raises with the rules that read one account's transactions (`rules list`: reads
/// `account`). Once the rules have scanned the store, worker 0's scans leave those rules
/// to the workers, and after a second file the store holds the alerts of one scan of both.
fn workers_store_the_local_rules_alerts_as_batches_arrive(db: Target) {
    let Some(url) = nats() else { return };
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo");
    let listed = db.stdout(&["rules", "list"]);
    let local: BTreeSet<String> = listed
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.get(4) == Some(&"account")).then(|| cols[0].to_string())
        })
        .collect();
    assert!(
        local.contains("TC-04") && local.contains("TC-05") && !local.contains("ML-03"),
        "{listed}"
    );
    // The demo's transactions in two files: the first two thirds of the rows, then the rest.
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    std::fs::create_dir(&first).unwrap();
    for f in ["accounts.csv", "merchants.csv"] {
        std::fs::copy(demo.join(f), first.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(demo.join("transactions.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = 1 + (lines.len() - 1) * 2 / 3;
    let part = |rows: &[&str]| format!("{}\n{}\n", lines[0], rows.join("\n"));
    std::fs::write(first.join("transactions.csv"), part(&lines[1..cut])).unwrap();
    let rest = dir.path().join("rest.csv");
    std::fs::write(&rest, part(&lines[cut..])).unwrap();

    let s = TestStream::new(&url, "local");
    let at = s.args("3");
    ingest_registry(&db, &demo);
    let publish = |file: &Path| {
        let mut args = vec!["stream", "publish"];
        args.extend(at);
        args.extend(["--transactions", file.to_str().unwrap()]);
        db.stdout(&args)
    };
    let work = |worker: &str, more: &[&str]| {
        let mut args = vec!["stream", "work"];
        args.extend(at);
        // Small fetches: many batches, each evaluated before it is acknowledged.
        args.extend(["--worker", worker, "--of", "2", "--fetch", "300", "--once"]);
        args.extend(more);
        let out = db.cmd().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    publish(&first.join("transactions.csv"));
    for worker in ["0", "1"] {
        let (out, _) = work(worker, &["--no-scan"]);
        assert!(out.contains(" evaluations and 0 scans"), "{out}");
    }
    let scanned = scan_input(&db, &first);
    let expected = triples_of(&scanned, |r| local.contains(r));
    assert!(expected.len() > 10, "{expected:?}");
    assert_eq!(stored_alerts(&db), expected);
    db.stdout(&["scan"]);
    assert_eq!(stored_alerts(&db), triples(&scanned));

    // Marks and load times have a resolution of a second: a batch loaded in the second of
    // a mark is evaluated again by the scan, to be safe. These come later.
    std::thread::sleep(Duration::from_millis(1100));
    publish(&rest);
    work("1", &["--no-scan"]);
    let (_, said) = work("0", &[]);
    assert!(
        said.contains("rule TC-04: evaluated by the stream workers"),
        "{said}"
    );
    assert_eq!(stored_alerts(&db), scanned_alerts(&db, &demo));
}

#[test]
fn a_worker_killed_mid_stream_loses_and_duplicates_nothing_sqlite() {
    a_worker_killed_mid_stream_loses_and_duplicates_nothing(Target::Sqlite(Db::new()));
}

#[test]
fn a_worker_killed_mid_stream_loses_and_duplicates_nothing_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    match rt.block_on(TestDb::postgres()) {
        Some(db) => {
            a_worker_killed_mid_stream_loses_and_duplicates_nothing(Target::Postgres(Box::new(db)))
        }
        None => {
            crate::store::say_skipped("a_worker_killed_mid_stream_loses_and_duplicates_nothing")
        }
    }
}

fn a_worker_killed_mid_stream_loses_and_duplicates_nothing(db: Target) {
    let Some(url) = nats() else { return };
    let (url_db, dir) = match &db {
        Target::Sqlite(d) => (d.url(), d.dir.path().to_path_buf()),
        Target::Postgres(d) => (d.url.clone(), d.dir.path().to_path_buf()),
    };
    let data = dir.join("gen");
    db.stdout(&[
        "generate",
        "--seed",
        "3",
        "--transactions",
        "20000",
        "--out",
        data.to_str().unwrap(),
    ]);
    let s = TestStream::new(&url, "kill");
    let at = s.args("2");
    ingest_registry(&db, &data);
    let tx = data.join("transactions.csv");
    let mut args = vec!["stream", "publish"];
    args.extend(at);
    args.extend(["--transactions", tx.to_str().unwrap()]);
    db.stdout(&args);
    // A worker fetching 50 messages at a time is killed once it has stored some.
    let mut args = vec!["stream", "work"];
    args.extend(at);
    args.extend(["--fetch", "50", "--ack-wait", "1s", "--batch-every", "1h"]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clearwatch"))
        .args(&args)
        .env("CLEARWATCH_DB", &url_db)
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let n = db.transactions();
        if n > 500 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the worker stored nothing in a minute"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let stored = db.transactions();
    let total = std::fs::read_to_string(&tx).unwrap().lines().count() as u64 - 1;
    assert!(
        stored < total,
        "killed before the end ({stored} of {total})"
    );
    // Restarted, it takes up where the acknowledgements stopped.
    let mut args = vec!["stream", "work"];
    args.extend(at);
    args.extend(["--ack-wait", "1s", "--once"]);
    db.stdout(&args);
    assert_eq!(db.transactions(), total);
    assert_eq!(stored_alerts(&db), scanned_alerts(&db, &data));
}

/// Anything published on a partition subject that is not a valid transaction is kept in
/// quarantine and acknowledged: it neither stops the worker nor blocks the partition.
#[test]
fn a_message_that_is_not_a_transaction_is_quarantined() {
    let Some(url) = nats() else { return };
    let db = Target::Sqlite(Db::new());
    let s = TestStream::new(&url, "bad");
    let at = s.args("1");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let js = clearwatch_stream::connect(&url).await.unwrap();
        let topo = clearwatch_stream::Topology::new(&s.name, 1).unwrap();
        clearwatch_stream::ensure_stream(&js, &topo).await.unwrap();
        let good = clearwatch_model::Transaction {
            tx_id: "t1".into(),
            ts: 1_767_600_000_000,
            from: "A".into(),
            to: "B".into(),
            amount: 100,
            currency: clearwatch_model::Currency::from_code("CNY").unwrap(),
            tx_type: clearwatch_model::TxType::Transfer,
            merchant_id: None,
            channel: None,
            region: None,
            memo: None,
        };
        // A time no store or rule can handle.
        let far = clearwatch_model::Transaction {
            tx_id: "t2".into(),
            ts: i64::MAX,
            ..good.clone()
        };
        let json = |t: &clearwatch_model::Transaction| serde_json::to_vec(t).unwrap();
        for payload in [b"not json".to_vec(), json(&far), json(&good)] {
            js.publish(topo.subject(0), payload.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
    let mut args = vec!["stream", "work"];
    args.extend(at);
    args.push("--once");
    let out = db.stdout(&args);
    assert!(
        out.contains("1 transactions stored") && out.contains("2 quarantined"),
        "{out}"
    );
    assert_eq!(db.transactions(), 1);
    let stats = db.json(&["stats", "--json"]);
    assert_eq!(stats["quarantined"], 2, "{stats}");
    let mut args = vec!["stream", "status", "--json"];
    args.extend(at);
    let lag = db.json(&args);
    assert_eq!(lag[0]["unacknowledged"], 0, "{lag}");
}
