//! `clearwatch export` and `clearwatch evidence verify`: the signed bundle round trip, and
//! every kind of tampering named.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::support::{Db, ingest_demo};

/// A database holding the demo set and its pool alerts; returns the id of the demo hub's.
fn demo_with_alerts(db: &Db) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ingest_demo(db.cmd());
    db.cmd()
        .current_dir(root)
        .args(["scan", "--rules", "rules/two-clear/TC-04-fund-pool.yaml"])
        .assert()
        .success();
    let out = db
        .cmd()
        .args([
            "alerts",
            "list",
            "--rule",
            "TC-04",
            "--subject",
            "A00000236",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    alerts[0]["id"].as_str().unwrap().to_string()
}

fn export(db: &Db, id: &str, out: &Path, key: &Path) {
    export_with(db, id, out, key, &[]);
}

fn export_with(db: &Db, id: &str, out: &Path, key: &Path, extra: &[&str]) {
    db.cmd()
        .args(["export", id, "--user", "analyst-1", "--out"])
        .arg(out)
        .arg("--key")
        .arg(key)
        .args(extra)
        .assert()
        .success();
}

fn entries(zip_path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).unwrap();
            (f.name().unwrap().to_string(), buf)
        })
        .collect()
}

fn rewrite(from: &Path, to: &Path, files: &[(String, Vec<u8>)]) {
    let _ = from;
    let mut z = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    for (name, bytes) in files {
        z.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

fn verify(db: &Db, bundle: &Path, pubkey: Option<&Path>) -> (bool, String) {
    let mut c = db.cmd();
    c.args(["evidence", "verify"]).arg(bundle);
    if let Some(k) = pubkey {
        c.arg("--pubkey").arg(k);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `export --lang zh-CN` writes the case file in Chinese: its own words, the rule's title
/// and the figures' names from the pack's texts; the data and the English summary as
/// stored. The bundle still verifies.
#[test]
fn a_bundle_exported_in_chinese_has_a_chinese_case_file() {
    let db = Db::new();
    let id = demo_with_alerts(&db);
    let key = db.dir.path().join("export.key");
    let bundle = db.dir.path().join("case-zh.zip");
    export_with(&db, &id, &bundle, &key, &["--lang", "zh-CN"]);
    let (ok, text) = verify(&db, &bundle, None);
    assert!(ok, "{text}");
    let files = entries(&bundle);
    let report = files.iter().find(|(n, _)| n == "report.html").unwrap();
    let report = String::from_utf8_lossy(&report.1);
    assert!(report.starts_with("<!DOCTYPE html><html lang=\"zh-CN\">"));
    for want in [
        "案件报告",
        "资金池：集中转入、分散转出",
        "收款方数",
        "A00000236",
    ] {
        assert!(report.contains(want), "{want}");
    }
    db.cmd()
        .args(["export", &id, "--lang", "fr", "--out"])
        .arg(&bundle)
        .assert()
        .failure()
        .stderr(predicates::str::contains("valid: en, zh-CN"));
}

#[test]
fn bundle_round_trip_verifies_and_names_every_tampered_file() {
    let db = Db::new();
    let id = demo_with_alerts(&db);
    let key = db.dir.path().join("export.key");
    let bundle = db.dir.path().join("case.zip");
    export(&db, &id, &bundle, &key);
    let pubkey = PathBuf::from(format!("{}.pub", key.display()));
    let (ok, text) = verify(&db, &bundle, Some(&pubkey));
    assert!(ok, "{text}");

    let files = entries(&bundle);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "report.html",
        "transactions.csv",
        "accounts.csv",
        "graph.graphml",
        "audit.jsonl",
        "audit-checkpoint.json",
        "public_key.pem",
        "manifest.json",
        "manifest.sig",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&files.iter().find(|(n, _)| n == "manifest.json").unwrap().1)
            .unwrap();
    assert_eq!(manifest["alerts"][0]["id"], id.as_str());
    assert_eq!(manifest["exported_by"], "analyst-1");
    assert!(
        manifest["rules"][0]["text"]
            .as_str()
            .unwrap()
            .contains("id: TC-04")
    );
    assert!(!manifest["input_batches"].as_array().unwrap().is_empty());

    let tampered = db.dir.path().join("tampered.zip");
    // Flip one byte of each file in turn.
    for (i, (name, bytes)) in files.iter().enumerate() {
        if bytes.is_empty() {
            continue;
        }
        let mut copy = files.clone();
        let mid = bytes.len() / 2;
        copy[i].1[mid] ^= 0x01;
        rewrite(&bundle, &tampered, &copy);
        let (ok, text) = verify(&db, &tampered, Some(&pubkey));
        assert!(!ok, "flipping a byte of {name} went unnoticed");
        let named = if name == "manifest.sig" {
            "manifest.json"
        } else {
            name.as_str()
        };
        assert!(text.contains(named), "{name} not named:\n{text}");
    }
    // Remove a file.
    let without: Vec<_> = files
        .iter()
        .filter(|(n, _)| n != "accounts.csv")
        .cloned()
        .collect();
    rewrite(&bundle, &tampered, &without);
    let (ok, text) = verify(&db, &tampered, Some(&pubkey));
    assert!(!ok && text.contains("accounts.csv: missing"), "{text}");
    // Add a file.
    let mut extra = files.clone();
    extra.push(("notes.txt".into(), b"added later".to_vec()));
    rewrite(&bundle, &tampered, &extra);
    let (ok, text) = verify(&db, &tampered, Some(&pubkey));
    assert!(!ok && text.contains("notes.txt: extra file"), "{text}");
    // Edit the manifest so that it matches an altered file: the signature catches it.
    let mut edited = files.clone();
    let csv = edited
        .iter()
        .position(|(n, _)| n == "transactions.csv")
        .unwrap();
    edited[csv].1.extend_from_slice(b"forged,row\n");
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&edited[csv].1))
    };
    let m = edited
        .iter()
        .position(|(n, _)| n == "manifest.json")
        .unwrap();
    let mut manifest = manifest.clone();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["path"] == "transactions.csv" {
            f["sha256"] = serde_json::json!(sha);
            f["size"] = serde_json::json!(edited[csv].1.len());
        }
    }
    edited[m].1 = serde_json::to_vec_pretty(&manifest).unwrap();
    rewrite(&bundle, &tampered, &edited);
    let (ok, text) = verify(&db, &tampered, Some(&pubkey));
    assert!(
        !ok && text.contains("manifest.json: the signature does not match"),
        "{text}"
    );
}

#[test]
fn a_bundle_signed_with_another_key_fails_against_the_expected_key() {
    let db = Db::new();
    let id = demo_with_alerts(&db);
    let (ours, theirs) = (
        db.dir.path().join("ours.key"),
        db.dir.path().join("theirs.key"),
    );
    db.cmd()
        .args(["keys", "generate", "--out"])
        .arg(&ours)
        .assert()
        .success();
    let bundle = db.dir.path().join("case.zip");
    export(&db, &id, &bundle, &theirs);
    let (ok, text) = verify(
        &db,
        &bundle,
        Some(&PathBuf::from(format!("{}.pub", ours.display()))),
    );
    assert!(!ok, "{text}");
    assert!(text.contains("signature does not match"), "{text}");
    // Without an expected key the bundle's own key is used, and its fingerprint shown.
    let (ok, text) = verify(&db, &bundle, None);
    assert!(ok && text.contains("the key inside the bundle"), "{text}");
}

#[test]
fn export_is_deterministic_apart_from_time_and_signature() {
    let db = Db::new();
    let id = demo_with_alerts(&db);
    let key = db.dir.path().join("k");
    let (a, b) = (db.dir.path().join("a.zip"), db.dir.path().join("b.zip"));
    export(&db, &id, &a, &key);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    export(&db, &id, &b, &key);
    let (fa, fb) = (entries(&a), entries(&b));
    assert_eq!(fa.len(), fb.len());
    for ((na, ba), (nb, bb)) in fa.iter().zip(&fb) {
        assert_eq!(na, nb);
        match na.as_str() {
            "manifest.sig" => {}
            "audit-checkpoint.json" => {
                // The audit log's head at export time: the first export's entry moved it.
                let seq = |b: &[u8]| {
                    serde_json::from_slice::<serde_json::Value>(b).unwrap()["seq"]
                        .as_i64()
                        .unwrap()
                };
                assert!(seq(bb) > seq(ba), "the checkpoint is not the current head");
            }
            "manifest.json" => {
                // The export time, the hash of the report that shows it and the audit
                // checkpoint's may differ.
                let strip = |b: &[u8]| {
                    let mut m: serde_json::Value = serde_json::from_slice(b).unwrap();
                    m["exported_at"] = serde_json::Value::Null;
                    for f in m["files"].as_array_mut().unwrap() {
                        if f["path"] == "report.html" || f["path"] == "audit-checkpoint.json" {
                            f["sha256"] = serde_json::Value::Null;
                        }
                    }
                    m
                };
                assert_eq!(
                    strip(ba),
                    strip(bb),
                    "manifest.json differs beyond the export time"
                );
            }
            "report.html" => {
                let ta = String::from_utf8_lossy(ba);
                let tb = String::from_utf8_lossy(bb);
                // Everything but the paragraph and the table row that state the export
                // time.
                let without_time = |t: &str| {
                    let (head, rest) = t.split_once("Exported by").unwrap();
                    let t = format!("{head}{}", rest.split_once("</p>").unwrap().1);
                    let (head, rest) = t.split_once("<tr><th>exported at</th>").unwrap();
                    format!("{head}{}", rest.split_once("</tr>").unwrap().1)
                };
                assert_eq!(
                    without_time(&ta),
                    without_time(&tb),
                    "report.html differs beyond its export line"
                );
            }
            _ => assert!(ba == bb, "{na} differs between two exports"),
        }
    }
}

#[test]
fn a_receiver_verifies_with_sha256sum_and_openssl_alone() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: openssl is not installed");
        return;
    }
    let db = Db::new();
    let id = demo_with_alerts(&db);
    let key = db.dir.path().join("k");
    let bundle = db.dir.path().join("case.zip");
    export(&db, &id, &bundle, &key);
    let dir = db.dir.path().join("unpacked");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in entries(&bundle) {
        std::fs::write(dir.join(&name), bytes).unwrap();
    }
    let status = std::process::Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(format!("{}.pub", key.display()))
        .args(["-rawin", "-in", "manifest.json", "-sigfile", "manifest.sig"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let list: String = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}  {}\n",
                f["sha256"].as_str().unwrap(),
                f["path"].as_str().unwrap()
            )
        })
        .collect();
    std::fs::write(dir.join("SHA256SUMS"), list).unwrap();
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn an_alert_with_100000_evidence_transactions_exports_completely() {
    let db = Db::new();
    let mut csv = String::from("tx_id,ts,from,to,amount,currency,type\n");
    for i in 0..100_000u32 {
        csv.push_str(&format!(
            "t{i:06},2026-01-0{}T{:02}:{:02}:00Z,P{},HUB,1.00,CNY,transfer\n",
            1 + i % 5,
            (i / 60) % 24,
            i % 60,
            i % 997
        ));
    }
    let tx = db.write("big.csv", &csv);
    let rules = db.dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("B-1-big-fan-in.yaml"),
        "id: B-1\ntitle: big fan-in\nstatus: test\nseverity: low\ndetect:\n  kind: star\n  window: { length: 30d }\n  aggregates:\n    n: { fn: count, over: in }\n  condition: 'n >= 1000'\nsummary: \"{subject} received {n} payments\"\n",
    )
    .unwrap();
    db.cmd()
        .args(["ingest", "--transactions"])
        .arg(&tx)
        .assert()
        .success();
    db.cmd()
        .args(["scan", "--rules"])
        .arg(&rules)
        .assert()
        .success();
    let out = db
        .cmd()
        .args(["alerts", "list", "--json"])
        .output()
        .unwrap();
    let alerts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(alerts.len(), 1);
    let id = alerts[0]["id"].as_str().unwrap();
    let bundle = db.dir.path().join("big.zip");
    export(&db, id, &bundle, &db.dir.path().join("k"));
    let files = entries(&bundle);
    let csv = &files
        .iter()
        .find(|(n, _)| n == "transactions.csv")
        .unwrap()
        .1;
    assert_eq!(csv.iter().filter(|&&b| b == b'\n').count(), 100_001);
    assert!(verify(&db, &bundle, None).0);
}

#[test]
fn demo_pool_alert_goaml_validates_and_lists_every_evidence_transaction() {
    let db = Db::new();
    let id = demo_with_alerts(&db);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let xml_path = db.dir.path().join("report.xml");
    db.cmd()
        .args(["export", &id, "--format", "goaml", "--entity"])
        .arg(root.join("docs/reporting-entity.example.yaml"))
        .arg("--out")
        .arg(&xml_path)
        .assert()
        .success();
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let out = db
        .cmd()
        .args(["alerts", "show", &id, "--json"])
        .output()
        .unwrap();
    let alert: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let evidence = alert["evidence"]["transactions"].as_array().unwrap();
    assert!(evidence.len() > 10);
    for t in evidence {
        let tag = format!(
            "<transactionnumber>{}</transactionnumber>",
            t.as_str().unwrap()
        );
        assert!(xml.contains(&tag), "{tag} missing from the goAML report");
    }
    assert_eq!(xml.matches("<transaction>").count(), evidence.len());
    let xsd = root.join("../shared/schemas/goaml-5.0.1.xsd");
    match std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(&xml_path)
        .output()
    {
        Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => eprintln!("SKIPPED: xmllint is not installed (apt-get install libxml2-utils)"),
    }
}

/// The bundle's report.html is a case file: the reporting institution from `--entity`, the
/// key fingerprint the manifest and `evidence verify` name, the rule without its test
/// fixtures, every input batch of the manifest, times in the zone asked for.
#[test]
fn the_report_is_a_case_file_with_institution_key_rule_and_every_batch() {
    let db = Db::new();
    let id = demo_with_alerts(&db);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let key = db.dir.path().join("k");
    let bundle = db.dir.path().join("case.zip");
    db.cmd()
        .args([
            "export",
            &id,
            "--user",
            "analyst-1",
            "--time-zone",
            "Asia/Shanghai",
        ])
        .arg("--entity")
        .arg(root.join("docs/reporting-entity.example.yaml"))
        .arg("--out")
        .arg(&bundle)
        .arg("--key")
        .arg(&key)
        .assert()
        .success();
    let (ok, text) = verify(&db, &bundle, None);
    assert!(ok, "{text}");
    let files = entries(&bundle);
    let file = |name: &str| files.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let report = String::from_utf8(file("report.html")).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&file("manifest.json")).unwrap();

    // The institution and the key, as the manifest and `evidence verify` name it.
    assert!(
        report.contains("<td>12345678901234</td>"),
        "institution code"
    );
    assert!(report.contains("<td>Head office compliance department</td>"));
    let fingerprint = manifest["public_key_sha256"].as_str().unwrap();
    assert!(text.contains(fingerprint), "{text}");
    assert!(report.contains(&format!("<td class=\"mono\">{fingerprint}</td>")));

    // The rule as configured, without its fixtures; the manifest keeps the whole text.
    let rule = manifest["rules"][0]["text"].as_str().unwrap();
    assert!(rule.contains("\ntests:"));
    let rules =
        &report[report.find("id=\"rules\"").unwrap()..report.find("id=\"batches\"").unwrap()];
    assert!(rules.contains("id: TC-04") && rules.contains("summary: &gt;"));
    assert!(
        !rules.contains("tests:"),
        "the rule's fixtures are in the report"
    );

    // Every input batch: the transactions and both registry loads.
    let batches = manifest["input_batches"].as_array().unwrap();
    let mut kinds: Vec<&str> = batches
        .iter()
        .map(|b| b["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["accounts", "merchants", "transactions"]);
    assert!(report.contains("Input batches (3)"));
    for b in batches {
        let source = b["source"].as_str().unwrap();
        assert!(
            report.contains(&format!("<td>{source}</td>")),
            "{source} not listed"
        );
    }

    // Times in the zone asked for; no case activity yet.
    assert!(report.contains("Times in this report are in Asia/Shanghai"));
    assert!(report.contains("<th>time (Asia/Shanghai)</th>") && report.contains(" +08:00</td>"));
    assert!(report.contains("No case activity recorded."));
    assert!(!report.contains("<script"));
}

/// `evidence verify` refuses a ZIP that holds two entries of one name (a forged
/// `report.html` could survive extraction) or names that escape the folder, and names an
/// entry larger than it may be as too large, reading it as a stream.
#[test]
fn evidence_verify_refuses_duplicate_and_unsafe_entries_and_names_oversized_ones() {
    let db = Db::new();
    let id = demo_with_alerts(&db);
    let key = db.dir.path().join("export.key");
    let bundle = db.dir.path().join("case.zip");
    export(&db, &id, &bundle, &key);
    let pubkey = PathBuf::from(format!("{}.pub", key.display()));
    let files = entries(&bundle);
    let tampered = db.dir.path().join("tampered.zip");

    // A second `report.html`: written under another name of the same length, then renamed
    // in place (ZIP writers refuse duplicate names).
    let mut twice = files.clone();
    twice.push(("report.htmX".into(), b"<h1>forged</h1>".to_vec()));
    rewrite(&bundle, &tampered, &twice);
    let bytes = std::fs::read(&tampered).unwrap();
    let mut patched = bytes.clone();
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(11).position(|w| w == b"report.htmX") {
        patched[at + i + 10] = b'l';
        at += i + 11;
    }
    std::fs::write(&tampered, &patched).unwrap();
    let (ok, text) = verify(&db, &tampered, Some(&pubkey));
    assert!(!ok && text.contains("two entries of one name"), "{text}");

    for name in ["../escape.txt", "/etc/cron.d/x", "dir\\file.txt"] {
        let mut evil = files.clone();
        evil.push((name.to_string(), b"x".to_vec()));
        rewrite(&bundle, &tampered, &evil);
        let (ok, text) = verify(&db, &tampered, Some(&pubkey));
        assert!(!ok && text.contains("unsafe path"), "{name}: {text}");
    }

    // A manifest over the size limit is too large, not missing.
    let mut big = files.clone();
    let m = big.iter().position(|(n, _)| n == "manifest.json").unwrap();
    big[m].1 = vec![b' '; 17 << 20];
    rewrite(&bundle, &tampered, &big);
    let (ok, text) = verify(&db, &tampered, Some(&pubkey));
    assert!(!ok && text.contains("manifest.json: too large"), "{text}");

    // A file that inflates far past its manifest size stops at that size.
    let mut inflated = files.clone();
    let t = inflated
        .iter()
        .position(|(n, _)| n == "transactions.csv")
        .unwrap();
    inflated[t].1 = vec![b'0'; 64 << 20];
    rewrite(&bundle, &tampered, &inflated);
    let (ok, text) = verify(&db, &tampered, Some(&pubkey));
    assert!(
        !ok && text.contains("transactions.csv: altered (larger than"),
        "{text}"
    );
}
