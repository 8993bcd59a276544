//! `clearwatch ingest` and `stats`: quarantine, idempotency, atomicity, profiles.

use predicates::str::contains;

use crate::support::{Db, external, fixture, summary_counts};

#[test]
fn every_kind_of_bad_row_is_quarantined_with_its_reason() {
    let db = Db::new();
    let out = db
        .cmd()
        .args(["ingest", "--accept-partial", "--transactions"])
        .arg(fixture("bad_rows.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let [read, loaded, quarantined, duplicates] = summary_counts(&out.stdout);
    assert_eq!((read, loaded, quarantined, duplicates), (11, 2, 9, 0));
    assert_eq!(read, loaded + quarantined + duplicates);

    let stats = db.stats();
    assert_eq!(stats["transactions"], 2);
    assert_eq!(stats["quarantined"], 9);
    let rows = stats["quarantine_rows"].as_array().unwrap();
    let reason_at = |line: u64| -> (String, String) {
        let r = rows
            .iter()
            .find(|r| r["line"] == line)
            .unwrap_or_else(|| panic!("line {line} not quarantined: {rows:#?}"));
        assert!(r["source"].as_str().unwrap().ends_with("bad_rows.csv"));
        (
            r["field"].as_str().unwrap_or("").to_string(),
            r["reason"].as_str().unwrap().to_string(),
        )
    };
    let expect = [
        (3, "", "expected 11 fields, found 12"),
        (4, "memo", "not valid UTF-8"),
        (5, "amount", "not a decimal number"),
        (6, "ts", "not an RFC 3339 timestamp"),
        (7, "amount", "negative amount"),
        (8, "amount", "overflows"),
        (9, "tx_id", "tx_id is empty"),
        (10, "from", "from (column \"from\") is empty"),
        (11, "currency", "unknown ISO 4217 currency"),
    ];
    for (line, field, reason) in expect {
        let (f, r) = reason_at(line);
        assert_eq!(f, field, "line {line}: {r}");
        assert!(r.contains(reason), "line {line}: {r:?} lacks {reason:?}");
    }
    // The raw row is kept for the analyst.
    let raw = rows.iter().find(|r| r["line"] == 5).unwrap()["raw"]
        .as_str()
        .unwrap();
    assert!(raw.starts_with("badamount,"), "{raw}");
}

#[test]
fn a_load_over_the_quarantine_limit_stores_nothing_and_fails() {
    let db = Db::new();
    let mut text = String::from("tx_id,ts,from,to,amount,currency,type\n");
    for i in 0..200 {
        // Every tenth amount has a thousands separator the profile does not read.
        let amount = if i % 10 == 0 { "1,234.50" } else { "12.50" };
        text.push_str(&format!(
            "T{i},2026-03-05T14:22:10Z,A,B,\"{amount}\",CNY,transfer\n"
        ));
    }
    let f = db.write("export.csv", &text);
    let out = db
        .cmd()
        .args(["ingest", "--transactions"])
        .arg(&f)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("20 of 200 rows quarantined, more than 1 % allowed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing of this load was stored"),
        "{stderr}"
    );
    assert!(
        stderr.contains("export.csv:2: "),
        "the first rejection: {stderr}"
    );
    let stats = db.stats();
    assert_eq!(
        (
            stats["transactions"].as_u64(),
            stats["quarantined"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(stats["batches"], 0);
    // A higher limit, or --accept-partial, stores what loaded and keeps the rejected rows.
    db.cmd()
        .args(["ingest", "--max-quarantine", "10", "--transactions"])
        .arg(&f)
        .assert()
        .success()
        .stdout(contains("loaded 180, quarantined 20"));
    let stats = db.stats();
    assert_eq!(
        (
            stats["transactions"].as_u64(),
            stats["quarantined"].as_u64()
        ),
        (Some(180), Some(20))
    );
    db.cmd()
        .args(["ingest", "--max-quarantine", "101", "--transactions"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(contains("not a percentage from 0 to 100"));
}

#[test]
fn a_bank_export_with_thousands_separators_and_symbols_loads_completely() {
    let db = Db::new();
    let profile = db.write(
        "bank.yaml",
        "name: bank\ntransactions:\n  fields:\n    tx_id: 流水号\n    ts: 交易时间\n    from: 付款账号\n    \
         to: 收款账号\n    amount: 金额\n    currency: 币种\n    type: { value: transfer }\n  \
         timestamp: { format: \"%Y/%m/%d %H:%M:%S\", timezone: \"+08:00\" }\n  \
         currencies: { 人民币: CNY }\n  \
         amount_format: { thousands: \",\", symbols: [\"¥\"] }\n",
    );
    let f = db.write(
        "export.csv",
        "流水号,交易时间,付款账号,收款账号,金额,币种\r\n\
         B1,2026/03/05 14:22:10,6222001,6222002,\"¥1,234.50\",人民币\r\n\
         B2,2026/03/05 23:59:59,6222001,6222003,\"23,008.77\",人民币\r\n\
         B3,2026/03/06 00:00:01,6222002,6222003,88.00,人民币\r\n",
    );
    db.cmd()
        .args(["ingest", "--profile"])
        .arg(&profile)
        .arg("--transactions")
        .arg(&f)
        .assert()
        .success()
        .stdout(contains("read 3, loaded 3, quarantined 0"));
    let out = db.cmd().args(["stats", "--json"]).output().unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["transactions"], 3);
    let totals = stats["totals"].to_string();
    assert!(
        totals.contains("24331.27"),
        "1,234.50 + 23,008.77 + 88.00: {totals}"
    );
    // 14:22:10 in Beijing is 06:22:10 UTC.
    assert_eq!(stats["first_ts"], "2026-03-05T06:22:10Z", "{stats}");
}

/// A bank statement as Chinese banks export it: GBK text, CRLF line ends, Chinese headers,
/// date and time in two columns in Beijing time, a 借/贷 (debit/credit) column and amounts
/// with thousands separators and a currency symbol.
const STATEMENT_PROFILE: &str = "name: icbc-statement
encoding: gbk
transactions:
  fields:
    tx_id: 流水号
    ts: { template: \"{交易日期} {交易时间}\" }
    amount: 交易金额
    currency: { value: CNY }
    type: { value: transfer }
    memo: 摘要
  timestamp: { format: \"%Y/%m/%d %H:%M:%S\", timezone: Asia/Shanghai }
  amount_format: { thousands: \",\", symbols: [\"￥\", \"¥\"] }
  statement:
    account: { value: \"6222020000000001\" }
    counterparty: 对方账号
    direction: { column: 借贷标志, debit: [借], credit: [贷] }
";

fn gbk_file(db: &Db, name: &str, text: &str) -> std::path::PathBuf {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    let path = db.write(name, "");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_gbk_bank_statement_with_local_times_and_debit_credit_columns_loads_completely() {
    let db = Db::new();
    let profile = db.write("statement.yaml", STATEMENT_PROFILE);
    let header = "流水号,交易日期,交易时间,借贷标志,交易金额,对方账号,摘要\r\n";
    let statement = gbk_file(
        &db,
        "statement.csv",
        &format!(
            "{header}S1,2026/03/05,14:22:10,贷,\"￥1,234.50\",6222020000000002,货款\r\n\
             S2,2026/03/05,23:59:59,借,\"23,008.77\",6222020000000003,转账\r\n\
             S3,2026/03/06,00:00:01,贷,88.00,6222020000000003,退款\r\n"
        ),
    );
    // What the reader makes of each row: line, payer, payee, minor units, instant.
    let loaded = clearwatch_ingest::Profile::load(profile.to_str().unwrap()).unwrap();
    let mut rows = Vec::new();
    let summary = clearwatch_ingest::read_transactions(
        &statement,
        &loaded,
        |rec, id, line| {
            rows.push((
                line,
                id.to_string(),
                rec.from.to_string(),
                rec.to.to_string(),
                rec.amount,
                clearwatch_model::format_ts(rec.ts),
            ))
        },
        |r| panic!("refused: {r:?}"),
    )
    .unwrap();
    assert_eq!(summary.rejected, 0);
    let row = |line, id: &str, from: &str, to: &str, amount, ts: &str| {
        (
            line,
            id.into(),
            from.into(),
            to.into(),
            amount,
            ts.to_string(),
        )
    };
    assert_eq!(
        rows,
        [
            row(
                2,
                "S1",
                "6222020000000002",
                "6222020000000001",
                123_450,
                "2026-03-05T06:22:10Z"
            ),
            row(
                3,
                "S2",
                "6222020000000001",
                "6222020000000003",
                2_300_877,
                "2026-03-05T15:59:59Z"
            ),
            row(
                4,
                "S3",
                "6222020000000003",
                "6222020000000001",
                8_800,
                "2026-03-05T16:00:01Z"
            ),
        ]
    );
    db.cmd()
        .args(["ingest", "--profile"])
        .arg(&profile)
        .arg("--transactions")
        .arg(&statement)
        .assert()
        .success()
        .stdout(contains("read 3, loaded 3, quarantined 0"));

    // A row with an unknown direction is refused at its line (CRLF counted once), and the
    // file read without its encoding is refused with the likely one named.
    let bad = gbk_file(
        &db,
        "bad.csv",
        &format!(
            "{header}S4,2026/03/07,09:00:00,贷,10.00,6222020000000002,货款\r\n\
             S5,2026/03/07,09:00:01,冲,10.00,6222020000000002,货款\r\n"
        ),
    );
    db.cmd()
        .args(["ingest", "--accept-partial", "--profile"])
        .arg(&profile)
        .arg("--transactions")
        .arg(&bad)
        .assert()
        .success()
        .stdout(contains("read 2, loaded 1, quarantined 1"));
    let listed = db.stdout(&["quarantine", "list", "--json"]);
    let entry: serde_json::Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!(entry["line"], 3, "{entry}");
    assert_eq!(entry["field"], "direction", "{entry}");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("neither debit (借) nor credit (贷)"),
        "{entry}"
    );
    let undeclared = db.write(
        "undeclared.yaml",
        &STATEMENT_PROFILE.replace("encoding: gbk\n", ""),
    );
    db.cmd()
        .args(["ingest", "--profile"])
        .arg(&undeclared)
        .arg("--transactions")
        .arg(&statement)
        .assert()
        .code(2)
        .stderr(contains("line 1: the header is not UTF-8"))
        .stderr(contains("encoding: gb18030"));
}

#[test]
fn loading_the_same_file_twice_adds_nothing() {
    let db = Db::new();
    for expected_loaded in [2, 0] {
        let out = db
            .cmd()
            .args(["ingest", "--accept-partial", "--transactions"])
            .arg(fixture("bad_rows.csv"))
            .output()
            .unwrap();
        let [read, loaded, quarantined, duplicates] = summary_counts(&out.stdout);
        assert_eq!(loaded, expected_loaded);
        assert_eq!(read, loaded + quarantined + duplicates);
    }
    let stats = db.stats();
    assert_eq!(stats["transactions"], 2);
    assert_eq!(stats["batches"], 2);
}

#[test]
fn a_reused_id_with_different_content_is_quarantined_not_overwritten() {
    let db = Db::new();
    let header = "tx_id,ts,from,to,amount,currency,type\n";
    let a = db.write(
        "a.csv",
        &format!("{header}t1,2026-01-01T00:00:00Z,x,y,1.00,CNY,transfer\n"),
    );
    let b = db.write(
        "b.csv",
        &format!("{header}t1,2026-01-01T00:00:00Z,x,y,2.00,CNY,transfer\nt1,2026-01-01T00:00:00Z,x,y,1.00,CNY,transfer\n"),
    );
    db.cmd()
        .args(["ingest", "--accept-partial", "--transactions"])
        .arg(&a)
        .assert()
        .success();
    let out = db
        .cmd()
        .args(["ingest", "--accept-partial", "--transactions"])
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(summary_counts(&out.stdout), [2, 0, 1, 1]);
    let stats = db.stats();
    let rows = stats["quarantine_rows"].as_array().unwrap();
    assert!(
        rows[0]["reason"]
            .as_str()
            .unwrap()
            .contains("different content")
    );
    assert_eq!(stats["totals"][0]["amount"], 100, "the first t1 is kept");
}

#[test]
fn a_failed_load_leaves_the_database_as_it_was() {
    let db = Db::new();
    db.cmd()
        .args(["ingest", "--accept-partial", "--transactions"])
        .arg(fixture("bad_rows.csv"))
        .assert()
        .success();
    let before = db.stats();
    // Accounts load first and are good; the merchants file lacks its id column.
    db.cmd()
        .args(["ingest", "--accept-partial", "--accounts"])
        .arg(fixture("accounts.csv"))
        .arg("--merchants")
        .arg(fixture("merchants_noid.csv"))
        .assert()
        .code(2)
        .stderr(contains("merchants_noid.csv"))
        .stderr(contains("merchant_id"));
    assert_eq!(db.stats(), before);
    // An unreadable file is an error naming it, and writes nothing either.
    db.cmd()
        .args(["ingest", "--accept-partial", "--accounts"])
        .arg(fixture("accounts.csv"))
        .args(["--transactions", "no/such/file.csv"])
        .assert()
        .code(2)
        .stderr(contains("no/such/file.csv"));
    assert_eq!(db.stats(), before);
}

#[test]
fn a_row_over_the_ingest_limit_flags_is_quarantined_and_the_rest_loads() {
    let db = Db::new();
    let f = db.write(
        "t.csv",
        "tx_id,ts,from,to,amount,currency,type,memo\n\
         t1,2026-01-01T00:00:00Z,a,b,1.00,CNY,payment,short\n\
         t2,2026-01-01T00:00:00Z,a,b,1.00,CNY,payment,a memo of thirty-two bytes......\n\
         t3,2026-01-01T00:00:00Z,a,b,1.00,CNY,payment,\n",
    );
    let ingest = |db: &Db, flags: &[&str]| {
        let out = db
            .cmd()
            .args(["ingest", "--accept-partial"])
            .args(flags)
            .arg("--transactions")
            .arg(&f)
            .assert();
        summary_counts(&out.success().get_output().stdout)
    };
    assert_eq!(ingest(&db, &["--max-field-bytes", "20"]), [3, 2, 1, 0]);
    let rows = &db.stats()["quarantine_rows"];
    assert_eq!(rows[0]["line"], 3);
    assert_eq!(rows[0]["field"], "memo");
    let reason = rows[0]["reason"].as_str().unwrap();
    assert!(reason.contains("20-byte field limit"), "{reason}");
    // The same file under the default limits loads whole.
    assert_eq!(ingest(&Db::new(), &[]), [3, 3, 0, 0]);
}

#[test]
fn ingest_of_a_device_fifo_or_directory_is_refused_up_front() {
    let db = Db::new();
    for path in ["/dev/zero", "/tmp"] {
        db.cmd()
            .args(["ingest", "--transactions", path])
            .timeout(std::time::Duration::from_secs(60))
            .assert()
            .code(2)
            .stderr(contains(path))
            .stderr(contains("not a regular file"));
    }
}

#[test]
fn a_broken_profile_is_an_error_with_line_and_column() {
    let db = Db::new();
    let profile = db.write(
        "p.yaml",
        "name: p\ntransactions:\n  fields:\n    ts: a\n    from: b\n    to: c\n    amount: d\n    currency: e\n    type: f\n  colour: red\n",
    );
    db.cmd()
        .args(["ingest", "--transactions"])
        .arg(fixture("bad_rows.csv"))
        .arg("--profile")
        .arg(&profile)
        .assert()
        .code(2)
        .stderr(contains("p.yaml:10:"))
        .stderr(contains("colour"));
}

#[test]
fn json_lines_load_like_csv() {
    let db = Db::new();
    let f = db.write(
        "t.jsonl",
        concat!(
            r#"{"tx_id":"j1","ts":"2026-01-01T00:00:00Z","from":"a","to":"b","amount":12.5,"currency":"CNY","type":"payment","memo":"<script>"}"#,
            "\n",
            r#"{"tx_id":"j2","ts":"2026-01-01T00:00:00Z","from":"a","to":"b","amount":"x","currency":"CNY","type":"payment"}"#,
            "\n{not json\n"
        ),
    );
    let out = db
        .cmd()
        .args(["ingest", "--accept-partial", "--transactions"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(summary_counts(&out.stdout), [3, 1, 2, 0]);
    assert_eq!(db.stats()["totals"][0]["amount"], 1250);
}

#[test]
fn registries_load_and_show_in_stats() {
    let db = Db::new();
    db.cmd()
        .args(["ingest", "--accept-partial", "--transactions"])
        .arg(fixture("bad_rows.csv"))
        .arg("--accounts")
        .arg(fixture("accounts.csv"))
        .assert()
        .success();
    let s = db.stats();
    assert_eq!(s["accounts_registered"], 2);
    assert_eq!(s["accounts_unregistered"], 1, "B1 is only in transactions");
    assert_eq!(
        s["accounts_by_role"],
        serde_json::json!([["acquirer", 1], ["agent", 1]])
    );
}

#[test]
fn amlworld_profile_loads_its_schema() {
    let db = Db::new();
    let f = db.write(
        "HI-Small_Trans.csv",
        "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,Payment Currency,Payment Format,Is Laundering\n\
         2022/09/01 00:20,10,8000EBD30,10,8000EBD30,3697.34,US Dollar,3697.34,US Dollar,Reinvestment,0\n\
         2022/09/01 00:20,3208,8000F4580,1,8000F5340,0.01,US Dollar,0.01,US Dollar,Cheque,0\n\
         2022/09/01 00:15,1,8000F5AD0,1,8000F5AD0,14.41,Bitcoin,0.000126,Bitcoin,Bitcoin,1\n",
    );
    let out = db
        .cmd()
        .args([
            "ingest",
            "--accept-partial",
            "--profile",
            "amlworld",
            "--transactions",
        ])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary_counts(&out.stdout), [3, 2, 1, 0]);
    let s = db.stats();
    let rows = s["quarantine_rows"].as_array().unwrap();
    assert!(rows[0]["reason"].as_str().unwrap().contains("Bitcoin"));
    let accounts = |key: &str| -> Vec<String> {
        s[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["account"].as_str().unwrap().to_string())
            .collect()
    };
    // The second `Account` column is the receiving side.
    assert_eq!(
        accounts("top_out_degree"),
        ["10:8000EBD30", "3208:8000F4580"]
    );
    assert_eq!(accounts("top_in_degree"), ["10:8000EBD30", "1:8000F5340"]);
    assert_eq!(s["first_ts"], "2022-09-01T00:20:00Z");
}

#[test]
fn amlgentex_profile_loads_its_schema() {
    let db = Db::new();
    let f = db.write(
        "transfers_account_to_account.csv",
        "step,amount,nameOrig,nameDest,bankOrig,bankDest,isSAR,patternID,modelType\n\
         0,100.5,1,2,b1,b2,0,-1,0\n\
         3,99.999,2,3,b2,b1,1,7,1\n\
         3,99.999,2,3,b2,b1,1,7,1\n",
    );
    let out = db
        .cmd()
        .args(["ingest", "--profile", "amlgentex", "--transactions"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Identical rows are distinct transactions; amounts round to cents.
    assert_eq!(summary_counts(&out.stdout), [3, 3, 0, 0]);
    let s = db.stats();
    assert_eq!(s["totals"][0]["amount"], 10050 + 2 * 10000);
    assert_eq!(s["last_ts"], "2017-01-04T00:00:00Z");
}

fn load_external(profile: &str, rel: &str, expected: u64) {
    let db = Db::new();
    for expected_loaded in [expected, 0] {
        let out = db
            .cmd()
            .args(["ingest", "--profile", profile, "--transactions"])
            .arg(external(rel))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let [read, loaded, quarantined, duplicates] = summary_counts(&out.stdout);
        assert_eq!((read, loaded, quarantined), (expected, expected_loaded, 0));
        assert_eq!(duplicates, expected - expected_loaded);
    }
    let s = db.stats();
    assert_eq!(s["transactions"], expected);
    assert_eq!(s["quarantined"], 0);
}

#[test]
fn external_amlsim_mix12k_loads_completely() {
    load_external("amlsim", "amlsim-mix12k/transactions.csv", 65_207);
}

#[test]
fn external_amlsim_typologies389_loads_completely() {
    load_external("amlsim", "amlsim-typologies389/transactions.csv", 1_766);
}

#[test]
fn external_paysim_loads_completely() {
    load_external("paysim", "paysim-2k/rawLog.csv", 41_204);
}

#[test]
fn external_amlsim_sample_loads_completely() {
    load_external(
        "amlsim-sample",
        "amlsim-sample-20k-fanin200cycle200/transactions.csv",
        120_558,
    );
}

#[test]
fn external_account_registries_load() {
    let db = Db::new();
    db.cmd()
        .args(["ingest", "--profile", "amlsim", "--accounts"])
        .arg(external("amlsim-mix12k/accounts.csv"))
        .assert()
        .success();
    assert_eq!(
        db.stats()["accounts_by_role"],
        serde_json::json!([["individual", 12043]])
    );
}
