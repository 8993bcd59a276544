//! `clearwatch demo` and `clearwatch generate`.

use std::path::Path;

use predicates::str::contains;

use crate::support::Db;

#[test]
fn demo_loads_the_demo_set_into_a_fresh_database() {
    let db = Db::new();
    db.cmd()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--no-serve"])
        .assert()
        .success()
        .stdout(contains("quarantined 0"));
    let s = db.stats();
    assert_eq!(s["transactions"], 6535);
    assert_eq!(s["merchants"], 84);
    assert_eq!(s["quarantined"], 0);
}

#[test]
fn shipped_demo_set_is_what_generate_demo_writes() {
    let db = Db::new();
    let out = db.dir.path().join("demo");
    db.cmd()
        .args(["generate", "--demo", "--out"])
        .arg(&out)
        .assert()
        .success();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo");
    for f in [
        "transactions.csv",
        "accounts.csv",
        "merchants.csv",
        "truth.csv",
    ] {
        let a = std::fs::read(out.join(f)).unwrap();
        let b = std::fs::read(shipped.join(f)).unwrap();
        assert!(a == b, "{f} differs from `clearwatch generate --demo`");
    }
}

/// A binary copied into an empty folder, run from there, has its rule pack and demo set:
/// nothing is read from the source tree it was built in.
#[test]
fn a_copied_binary_runs_the_shipped_pack_and_demo_from_an_empty_folder() {
    let place = tempfile::tempdir().unwrap();
    let bin = place.path().join("clearwatch");
    std::fs::copy(env!("CARGO_BIN_EXE_clearwatch"), &bin).unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(args)
            .current_dir(work.path())
            .env_remove("CLEARWATCH_DB")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let list = run(&["rules", "list"]);
    assert!(list.contains("TC-04") && list.contains("ML-07"), "{list}");
    assert!(
        list.lines().skip(1).all(|l| l.contains(" shipped ")),
        "every rule comes from the binary: {list}"
    );
    let demo = run(&["--db", "sqlite:demo.db", "demo", "--no-serve"]);
    assert!(demo.contains("loaded 6535"), "{demo}");
    assert!(
        !demo.contains(env!("CARGO_MANIFEST_DIR")),
        "the demo set is the binary's own copy, not the source tree's: {demo}"
    );
    assert!(
        demo.contains("TC-04"),
        "the shipped pack found the demo's pools: {demo}"
    );
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo");
    let scan = run(&[
        "scan",
        "--input",
        shipped.join("transactions.csv").to_str().unwrap(),
        "--accounts",
        shipped.join("accounts.csv").to_str().unwrap(),
        "--merchants",
        shipped.join("merchants.csv").to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert_eq!(scan.lines().count(), 140, "the demo set's alerts");
    assert!(
        std::fs::read_dir(work.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("rules")),
        "nothing was written beside the database"
    );
}

#[test]
fn cases_list_folds_each_subjects_alerts_into_one_case() {
    use std::collections::{BTreeMap, BTreeSet};
    let db = Db::new();
    db.cmd()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--no-serve"])
        .assert()
        .success();
    let json = |args: &[&str]| -> serde_json::Value {
        let out = db.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Each subject's alert ids, rules and evidence transactions.
    type Folded = (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>);
    let mut by_subject: BTreeMap<String, Folded> = BTreeMap::new();
    let alerts = json(&["alerts", "list", "--json", "--limit", "100000"]);
    for a in alerts.as_array().unwrap() {
        let key = format!(
            "{}:{}",
            a["subject"]["kind"].as_str().unwrap(),
            a["subject"]["id"].as_str().unwrap()
        );
        let e = by_subject.entry(key).or_default();
        e.0.insert(a["id"].as_str().unwrap().to_string());
        e.1.insert(a["rule_id"].as_str().unwrap().to_string());
        for t in a["evidence"]["transactions"].as_array().unwrap() {
            e.2.insert(t.as_str().unwrap().to_string());
        }
    }
    // Demo amounts in cents, by transaction id.
    let csv = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo/transactions.csv"),
    )
    .unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let (id_col, amount_col) = (col("tx_id"), col("amount"));
    let cents: BTreeMap<&str, i64> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let (units, frac) = f[amount_col]
                .split_once('.')
                .unwrap_or((f[amount_col], "0"));
            let frac = format!("{frac:0<2}");
            (
                f[id_col],
                units.parse::<i64>().unwrap() * 100 + frac[..2].parse::<i64>().unwrap(),
            )
        })
        .collect();
    let mut cases = Vec::new();
    let mut page = 1;
    loop {
        let list = json(&[
            "cases",
            "list",
            "--json",
            "--status",
            "any",
            "--page",
            &page.to_string(),
        ]);
        cases.extend(list["cases"].as_array().unwrap().iter().cloned());
        if page >= list["pages"].as_u64().unwrap() {
            break;
        }
        page += 1;
    }
    assert_eq!(cases.len(), by_subject.len(), "one case per subject");
    let scores: Vec<u64> = cases.iter().map(|c| c["score"].as_u64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "highest risk first"
    );
    for c in &cases {
        let (ids, rules, txs) = &by_subject[c["id"].as_str().unwrap()];
        let listed: BTreeSet<String> = serde_json::from_value(c["alert_ids"].clone()).unwrap();
        assert_eq!(&listed, ids, "{c}");
        let listed: BTreeSet<String> = serde_json::from_value(c["rules"].clone()).unwrap();
        assert_eq!(&listed, rules, "{c}");
        // Each evidence transaction once (the demo is in CNY).
        let expected: i64 = txs.iter().map(|t| cents[t.as_str()]).sum();
        let amount = if txs.is_empty() {
            serde_json::json!([])
        } else {
            serde_json::json!([{ "currency": "CNY", "amount": format!("{}.{:02}", expected / 100, expected % 100) }])
        };
        assert_eq!(c["amounts"], amount, "{c}");
        assert_eq!(c["status"], "new");
        assert!(c["due"].as_str().is_some_and(|d| d.len() == 10), "{c}");
    }
    // The top case is corroborated by more than one rule on the demo set.
    assert!(cases[0]["rules"].as_array().unwrap().len() > 1);
}
