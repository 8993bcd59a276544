//! `clearwatch rules` and `clearwatch scan`: diagnostics, rule tests, scanning.

use std::path::Path;

use predicates::str::contains;

use crate::support::{Db, external, fixture, ingest_demo};
use clearwatch_store::AlertStore;

#[test]
fn every_rule_error_is_reported_at_file_line_column_in_one_run() {
    let db = Db::new();
    let out = db
        .cmd()
        .args(["rules", "lint"])
        .arg(fixture("rules/broken"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let expect = [
        ("X-01-bad-yaml.yaml:6:1", "did not find expected ','"),
        (
            "X-02-unknown-field.yaml:5:1",
            "unknown field `colour`, expected one of id, title",
        ),
        (
            "X-03-expressions.yaml:4:11",
            "valid: info, low, medium, high, critical",
        ),
        (
            "X-03-expressions.yaml:7:8",
            "unknown variable `hub.licenced`",
        ),
        ("X-03-expressions.yaml:11:26", "syntax error"),
        (
            "X-04-kinds.yaml:6:9",
            "valid kinds: relation, star, flow, cycle, series",
        ),
    ];
    for (at, what) in expect {
        assert!(err.contains(at), "no diagnostic at {at}:\n{err}");
        assert!(err.contains(what), "no {what:?}:\n{err}");
    }
    let help = err
        .lines()
        .find(|l| l.contains("help: valid fields: hub."))
        .unwrap_or_else(|| panic!("no list of hub fields:\n{err}"));
    assert!(help.contains("hub.licensed"), "{help}");
    assert!(err.contains("6 error(s) in rules"), "{err}");
}

#[test]
fn the_shipped_pack_lints_and_its_tests_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let db = Db::new();
    db.cmd()
        .current_dir(root)
        .args(["rules", "lint", "rules"])
        .assert()
        .success()
        .stdout(contains("rules OK"));
    let out = db
        .cmd()
        .current_dir(root)
        .args(["rules", "test", "rules"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
}

/// `rules lint` warns, at the condition's line, when an inequality holds through an absent
/// field alone (`peer.holder != hub.holder` with either holder unknown), and not once
/// both sides are guarded; the shipped pack has no such condition.
#[test]
fn lint_warns_when_an_absent_field_would_count_as_evidence() {
    let db = Db::new();
    let dir = db.dir.path().join("pack");
    std::fs::create_dir_all(&dir).unwrap();
    let rule = |out: &str| {
        format!(
            r#"id: T-2
title: paid another holder
status: test
severity: low
detect:
  kind: star
  out: '{out}'
  window: {{ length: 1d }}
  aggregates:
    payees: {{ fn: count_distinct, over: out, field: counterparty }}
  condition: 'payees >= 2'
summary: "{{subject}} paid {{payees}} payees"
"#
        )
    };
    let lint = |text: String| {
        std::fs::write(dir.join("T-2-other-holder.yaml"), text).unwrap();
        let out = db.cmd().args(["rules", "lint"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "warnings do not fail the lint");
        (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (stdout, stderr) = lint(rule("peer.holder != hub.holder"));
    assert!(stdout.contains("1 rules OK, 2 warning(s)"), "{stdout}");
    assert!(stderr.contains("T-2-other-holder.yaml:7:8"), "{stderr}");
    assert!(
        stderr.contains("warning: `peer.holder` may be absent"),
        "{stderr}"
    );
    assert!(stderr.contains("`hub.holder != \"\" && …`"), "{stderr}");
    let (stdout, stderr) = lint(rule(
        "hub.holder != \"\" && peer.holder != \"\" && peer.holder != hub.holder",
    ));
    assert!(stdout.contains("1 rules OK\n"), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");
    // A negated equality excludes (same holder) and is left alone.
    let (stdout, _) = lint(rule("!(hub.holder != \"\" && peer.holder == hub.holder)"));
    assert!(stdout.contains("1 rules OK\n"), "{stdout}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = db
        .cmd()
        .current_dir(root)
        .args(["rules", "lint", "rules"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// A test-status fan-out rule after its `id` line, up to its `tests:` key.
const FAN_OUT: &str = "title: fan-out\nstatus: test\nseverity: low\ndetect:\n  kind: star\n  window: { length: 1d }\n  aggregates:\n    payees: { fn: count_distinct, over: out, field: counterparty }\n  condition: 'payees >= 2'\nsummary: \"{subject} paid {payees} payees\"\ntests:\n";

/// Runs `rules test` on a pack holding only `rule` (as `file`), which must fail (exit 1);
/// returns what it printed.
fn failing_rules_test(file: &str, rule: &str) -> String {
    let db = Db::new();
    let dir = db.dir.path().join("pack");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), rule).unwrap();
    let out = db.cmd().args(["rules", "test"]).arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_failing_rule_test_fails_the_run() {
    let rule = format!(
        "id: T-1\n{FAN_OUT}{}",
        r#"  - name: passes
    transactions: |
      tx_id,ts,from,to,amount,currency,type
      t1,2026-01-01T01:00:00Z,A,B,1.00,CNY,transfer
      t2,2026-01-01T02:00:00Z,A,C,1.00,CNY,transfer
    expect: { subjects: [A] }
  - name: fails on purpose
    transactions: |
      tx_id,ts,from,to,amount,currency,type
      t1,2026-01-01T01:00:00Z,A,B,1.00,CNY,transfer
      t2,2026-01-01T02:00:00Z,A,C,1.00,CNY,transfer
    expect: { alerts: 0 }
"#
    );
    let text = failing_rules_test("T-1-fan-out.yaml", &rule);
    assert!(text.contains("FAILED T-1 fails on purpose"), "{text}");
    assert!(text.contains("expected 0 alerts, got 1"), "{text}");
    assert!(
        text.lines().last().unwrap().ends_with("1 passed, 1 failed"),
        "{text}"
    );
}

/// A refused row of a case's inline data is reported at its line in the rule file, not in
/// a temporary CSV file.
#[test]
fn a_bad_row_in_rule_test_data_is_reported_at_its_yaml_line() {
    let rule = format!(
        "id: T-3\n{FAN_OUT}{}",
        r#"  - name: a row with a bad amount
    transactions: |
      tx_id,ts,from,to,amount,currency,type
      t1,2026-01-01T01:00:00Z,A,B,1.00,CNY,transfer
      t2,2026-01-01T02:00:00Z,A,C,12x,CNY,transfer
    expect: { alerts: 0 }
"#
    );
    assert_eq!(
        rule.lines().nth(16).unwrap().trim(),
        "t2,2026-01-01T02:00:00Z,A,C,12x,CNY,transfer"
    );
    let text = failing_rules_test("T-3-bad-row.yaml", &rule);
    assert!(
        text.contains("T-3-bad-row.yaml:17: line 3 of `transactions`, field `amount`"),
        "{text}"
    );
    assert!(!text.contains("transactions.csv"), "{text}");
}

/// A rule whose condition an absent merchant id satisfies passes its own case (every
/// row has a merchant id) and still fails `rules test`: the runner reruns each case with
/// merchant ids, channels, regions and holders removed, and an alert that appears only
/// then is an absent value taken for evidence.
#[test]
fn rule_tests_fail_a_rule_that_takes_an_absent_value_for_evidence() {
    let rule = r#"
id: T-2
title: payments without a merchant
status: test
severity: low
detect:
  kind: star
  in: 'tx.merchant == ""'
  window: { length: 1d }
  aggregates:
    payers: { fn: count_distinct, over: in, field: counterparty }
  condition: 'payers >= 2'
summary: "{subject} was paid by {payers} payers without a merchant id"
tests:
  - name: payments that name their merchant are not counted
    transactions: |
      tx_id,ts,from,to,amount,currency,type,merchant_id
      t1,2026-01-01T01:00:00Z,A,SHOP,1.00,CNY,payment,M1
      t2,2026-01-01T02:00:00Z,B,SHOP,1.00,CNY,payment,M1
    expect: { alerts: 0 }
"#;
    let text = failing_rules_test("T-2-no-merchant.yaml", rule);
    assert!(
        text.contains("without merchant ids and the merchant registry, the rule alerts on SHOP"),
        "{text}"
    );
    assert!(text.contains("an absent value became evidence"), "{text}");
}

/// An exclusion that reads the holder spares a subject only while the holder is known:
/// the case declares it under `spared_by`, the rerun without holders must then alert on
/// it, and a declaration that spares nobody fails the run.
#[test]
fn spared_by_declares_what_an_exclusion_needs_and_fails_when_stale() {
    let rule = |spared: &str| {
        format!(
            r#"
id: T-4
title: many payers unless the holder is a registered merchant's
status: test
severity: low
requires: [accounts, merchants]
detect:
  kind: star
  subject: '!hub.holds_merchant'
  in: 'tx.type == "transfer"'
  window: {{ length: 1d }}
  aggregates:
    payers: {{ fn: count_distinct, over: in, field: counterparty }}
  condition: 'payers >= 2'
summary: "{{subject}} was paid by {{payers}} payers"
tests:
  - name: the owner of a registered merchant is spared
    accounts: |
      account_id,holder_id,holder_name,kind,role,licensed,institution,region
      OWN,P9,Wang Fang,personal,,,,GD
    merchants: |
      merchant_id,legal_name,holder_id,settlement_account,acquirer,mcc,settlement_cycle_days
      M1,Wang Fang Noodles,P9,PF,ACQ,5814,1
    transactions: |
      tx_id,ts,from,to,amount,currency,type,merchant_id
      t1,2026-01-01T01:00:00Z,A,OWN,1.00,CNY,transfer,
      t2,2026-01-01T02:00:00Z,B,OWN,1.00,CNY,transfer,
    expect: {{ alerts: 0, spared_by: {{ holders: [{spared}] }} }}
"#
        )
    };
    let db = Db::new();
    let dir = db.dir.path().join("pack");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("T-4-owner.yaml"), rule("OWN")).unwrap();
    db.cmd()
        .args(["rules", "test"])
        .arg(&dir)
        .assert()
        .success();
    let text = failing_rules_test("T-4-owner.yaml", &rule("OWN, A"));
    assert!(
        text.contains("without holders in the registries, the rule does not alert on A"),
        "{text}"
    );
    let text = failing_rules_test("T-4-owner.yaml", &rule(""));
    assert!(text.contains("the rule alerts on OWN"), "{text}");
}

/// `scan --format json` over `transactions` with the demo registries, from the
/// repository root.
fn demo_scan(db: &Db, transactions: &Path, rules: &[&str]) -> assert_cmd::Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = root.join("datasets/demo");
    let mut cmd = db.cmd();
    cmd.current_dir(root).args(["scan", "--format", "json"]);
    for r in rules {
        cmd.args(["--rules", r]);
    }
    cmd.arg("--input")
        .arg(transactions)
        .arg("--accounts")
        .arg(demo.join("accounts.csv"))
        .arg("--merchants")
        .arg(demo.join("merchants.csv"));
    cmd
}

fn demo_transactions() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo/transactions.csv")
}

fn scan_demo(rules: &str) -> Vec<serde_json::Value> {
    let out = demo_scan(&Db::new(), &demo_transactions(), &[rules])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn demo_pool_hub_raises_the_pool_alert_with_its_figures() {
    let alerts = scan_demo("rules/two-clear/TC-04-fund-pool.yaml");
    let hub: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|a| a["subject"]["id"] == "A00000236")
        .collect();
    assert!(
        !hub.is_empty(),
        "no TC-04 alert on the demo hub: {alerts:#?}"
    );
    let a = hub[0];
    assert_eq!(a["rule_id"], "TC-04");
    let summary = a["summary"].as_str().unwrap();
    for figure in ["inflow", "outflow", "pass_through", "payees", "dwell_hours"] {
        let v = &a["metrics"][figure];
        assert!(!v.is_null(), "metric {figure} missing");
        let shown = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) if figure == "payees" => n.to_string(),
            _ => continue,
        };
        assert!(
            summary.contains(&shown),
            "summary lacks {figure} = {shown}: {summary}"
        );
    }
    assert!(summary.contains("pass-through") && summary.contains("median dwell"));
    assert!(a["evidence"]["transactions"].as_array().unwrap().len() > 10);
}

#[test]
fn demo_legitimate_aggregators_raise_nothing() {
    let alerts = scan_demo("rules");
    for agg in ["A00000369", "A00000202"] {
        assert!(
            !alerts.iter().any(|a| a["subject"]["id"] == agg),
            "legitimate aggregator {agg} alerted"
        );
    }
}

#[test]
fn scan_output_is_deterministic_and_ids_are_stable() {
    let a = scan_demo("rules/two-clear/TC-04-fund-pool.yaml");
    let b = scan_demo("rules/two-clear/TC-04-fund-pool.yaml");
    assert_eq!(a, b);
    assert!(!a.is_empty());
}

/// Every shipped rule's alerts on the demo set, one snapshot per rule: a change in what a
/// rule detects (or in its text, which changes its version and alert ids) shows up as a
/// diff to review.
#[test]
fn every_shipped_rule_has_a_snapshot_of_its_demo_alerts() {
    let alerts = scan_demo("rules");
    let (set, diags) = clearwatch_rules::load::load_shipped();
    assert!(diags.is_empty());
    for rule in &set.rules {
        let mine: Vec<&serde_json::Value> =
            alerts.iter().filter(|a| a["rule_id"] == rule.id).collect();
        insta::assert_json_snapshot!(format!("demo_alerts_{}", rule.id), mine);
    }
}

/// The shipped pack's alerts on the demo set, each with the rule that raised it.
fn demo_alerts_with_rules(
    set: &clearwatch_rules::load::RuleSet,
) -> Vec<(clearwatch_model::Alert, &clearwatch_rules::Rule)> {
    scan_demo("rules")
        .into_iter()
        .map(|value| {
            let alert: clearwatch_model::Alert = serde_json::from_value(value).expect("an alert");
            let rule = set.rules.iter().find(|r| r.id == alert.rule_id);
            (alert, rule.expect("a shipped rule"))
        })
        .collect()
}

/// A stored alert's summary renders again from its stored metrics: the same text in UTC,
/// and times with the reader's offset in another zone (what the dashboard shows).
#[test]
fn stored_summaries_render_again_in_a_readers_zone() {
    let (set, _) = clearwatch_rules::load::load_shipped();
    let alerts = demo_alerts_with_rules(&set);
    let shanghai = clearwatch_model::Zone::parse("Asia/Shanghai").expect("known zone");
    let (mut with_times, mut rendered) = (0, 0);
    for (alert, rule) in &alerts {
        // Where rounded metrics would print differently, nothing is rendered again.
        let Some(utc) = rule.summary_in(
            alert,
            clearwatch_model::Zone::UTC,
            clearwatch_model::Lang::En,
        ) else {
            continue;
        };
        rendered += 1;
        assert_eq!(utc, alert.summary, "{}", alert.id);
        let local = rule
            .summary_in(alert, shanghai, clearwatch_model::Lang::En)
            .expect("renders");
        if alert.summary.contains("Z ") || alert.summary.contains("Z.") {
            with_times += 1;
            assert!(local.contains("+08:00"), "{local}");
            assert!(!local.contains("Z "), "{local}");
        }
    }
    assert!(
        rendered * 10 >= alerts.len() * 9,
        "{rendered} of {} summaries render again",
        alerts.len()
    );
    assert!(with_times > 50, "only {with_times} summaries print times");
}

/// Every shipped rule reads in Chinese: its title and every demo alert's summary are in
/// Chinese, state the same figures as the English summary, and leave no English word;
/// the pack lints without a warning (a missing translation or figure name would be one).
#[test]
fn shipped_rules_read_in_chinese_with_the_same_figures() {
    use clearwatch_model::{Lang, Zone};
    let (set, diags) = clearwatch_rules::load::load_shipped();
    assert!(diags.is_empty(), "{diags:?}");
    for rule in &set.rules {
        assert!(rule.warnings.is_empty(), "{}: {:?}", rule.id, rule.warnings);
        let title = rule.title_in(Lang::ZhCn);
        assert!(
            title.chars().any(|c| c > '\u{2e80}'),
            "{}: {title}",
            rule.id
        );
    }
    let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    for id in set.shared.texts.rule_ids(Lang::ZhCn) {
        assert!(
            ids.contains(&id),
            "texts for `{id}`, which is no shipped rule"
        );
    }
    // The figures of a text: runs of digits and the signs inside numbers and times.
    let numbers = |text: &str| {
        let mut found: Vec<String> = text
            .split(|c: char| !(c.is_ascii_digit() || ",.:+-TZ".contains(c)))
            .map(|t| t.trim_matches(|c: char| !c.is_ascii_digit()).to_string())
            .filter(|t| !t.is_empty())
            .collect();
        found.sort();
        found
    };
    let has_english_word = |text: &str| {
        text.split(|c: char| !c.is_ascii_alphabetic())
            .any(|w| w.len() >= 4)
    };
    let alerts = demo_alerts_with_rules(&set);
    let mut rendered = 0;
    for (alert, rule) in &alerts {
        let Some(zh) = rule.summary_in(alert, Zone::UTC, Lang::ZhCn) else {
            continue;
        };
        rendered += 1;
        assert_eq!(
            numbers(&zh),
            numbers(&alert.summary),
            "{zh}\n{}",
            alert.summary
        );
        let words = zh.replace(&alert.subject.id, "");
        assert!(!has_english_word(&words), "English left in: {zh}");
    }
    assert!(
        rendered * 10 >= alerts.len() * 9,
        "{rendered} of {}",
        alerts.len()
    );
}

#[test]
fn fail_on_severity_sets_the_exit_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = root.join("datasets/demo");
    let db = Db::new();
    let base = |sev: &str| {
        let mut c = db.cmd();
        c.current_dir(root)
            .args([
                "scan",
                "--rules",
                "rules/two-clear/TC-04-fund-pool.yaml",
                "--input",
            ])
            .arg(demo.join("transactions.csv"))
            .arg("--accounts")
            .arg(demo.join("accounts.csv"))
            .args(["--fail-on", sev]);
        c
    };
    base("high").assert().code(1);
    base("critical").assert().code(0);
}

#[test]
fn amlsim_typologies_shapes_are_found() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = external("amlsim-typologies389");
    let db = Db::new();
    let out = db
        .cmd()
        .current_dir(root)
        .args(["scan", "--format", "json", "--profile", "amlsim", "--input"])
        .arg(dir.join("transactions.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let members = std::fs::read_to_string(dir.join("alert_accounts.csv")).unwrap();
    let mut patterns: std::collections::BTreeMap<(String, String), Vec<String>> =
        Default::default();
    for line in members.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        patterns
            .entry((f[0].to_string(), f[1].to_string()))
            .or_default()
            .push(f[2].to_string());
    }
    for typology in [
        "fan_in",
        "fan_out",
        "cycle",
        "scatter_gather",
        "gather_scatter",
    ] {
        let found = patterns
            .iter()
            .filter(|((_, t), _)| t == typology)
            .any(|(_, accts)| {
                alerts.iter().any(|a| {
                    let ev: Vec<&str> = a["evidence"]["accounts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect();
                    let subject = a["subject"]["id"].as_str().unwrap();
                    accts.iter().any(|m| m == subject)
                        || accts.iter().filter(|m| ev.contains(&m.as_str())).count() * 2
                            >= accts.len()
                })
            });
        assert!(found, "{typology} pattern not found");
    }
}

#[test]
fn rule_reference_doc_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Db::new()
        .cmd()
        .current_dir(root)
        .args(["rules", "docs", "rules"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(root.join("docs/rule-reference.md")).unwrap();
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "docs/rule-reference.md is stale: run `clearwatch rules docs rules > docs/rule-reference.md`"
    );
}

fn run_rule(db: &Db, rule: &str, transactions: &str) -> Vec<serde_json::Value> {
    let dir = db.dir.path().join("r");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("C-1-cycle.yaml"), rule).unwrap();
    let tx = db.write("tx.csv", transactions);
    let out = db
        .cmd()
        .args(["scan", "--format", "json", "--rules"])
        .arg(&dir)
        .arg("--input")
        .arg(&tx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const CYCLE_RULE: &str = "id: C-1\ntitle: cycle\nstatus: test\nseverity: low\ndetect:\n  kind: cycle\n  ORDERED\n  window: { length: 30d }\n  condition: 'length >= 3'\nsummary: \"{subject} cycle of {length}\"\n";

#[test]
fn cycles_are_found_whichever_account_sends_first() {
    let db = Db::new();
    // The lowest account (A) sends last: B → C → A → B.
    let tx = "tx_id,ts,from,to,amount,currency,type\n\
              t1,2026-01-01T00:00:00Z,B,C,100.00,CNY,transfer\n\
              t2,2026-01-02T00:00:00Z,C,A,99.00,CNY,transfer\n\
              t3,2026-01-03T00:00:00Z,A,B,98.00,CNY,transfer\n";
    let alerts = run_rule(&db, &CYCLE_RULE.replace("ORDERED", "ordered: true"), tx);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["subject"]["id"], "A");
    assert_eq!(alerts[0]["metrics"]["first_amount"], "100.00");
    assert_eq!(alerts[0]["metrics"]["last_amount"], "98.00");
}

#[test]
fn unordered_cycles_need_only_fall_within_the_window() {
    let db = Db::new();
    // Hops out of time order: not a time-ordered cycle, but one within the window.
    let tx = "tx_id,ts,from,to,amount,currency,type\n\
              t1,2026-01-05T00:00:00Z,A,B,100.00,CNY,transfer\n\
              t2,2026-01-02T00:00:00Z,B,C,99.00,CNY,transfer\n\
              t3,2026-01-09T00:00:00Z,C,A,98.00,CNY,transfer\n";
    let ordered = run_rule(&db, &CYCLE_RULE.replace("ORDERED", "ordered: true"), tx);
    assert!(ordered.is_empty(), "{ordered:#?}");
    let unordered = run_rule(&db, &CYCLE_RULE.replace("ORDERED", "ordered: false"), tx);
    assert_eq!(unordered.len(), 1, "{unordered:#?}");
}

#[test]
fn ordered_cycles_with_equal_timestamps_are_found() {
    let db = Db::new();
    // Whole-day timestamps: the first two hops share one, and the second hop's sender (A)
    // sorts before the first's (C): C → A, A → B on day 1, B → C on day 2.
    let tx = "tx_id,ts,from,to,amount,currency,type\n\
              t1,2026-01-01T00:00:00Z,C,A,100.00,CNY,transfer\n\
              t2,2026-01-01T00:00:00Z,A,B,99.00,CNY,transfer\n\
              t3,2026-01-02T00:00:00Z,B,C,98.00,CNY,transfer\n";
    let alerts = run_rule(&db, &CYCLE_RULE.replace("ORDERED", "ordered: true"), tx);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
}

/// A rule reads the store's lists at each scan: an allow-list entry on a pool's account
/// takes it out of the next full scan, and only it.
#[tokio::test]
async fn an_allow_list_entry_takes_its_account_out_of_the_next_scan() {
    use clearwatch_model::case::UserRole;
    use clearwatch_model::lists::{EntryKind, ListKind, NewListEntry};
    use clearwatch_store::{ListStore, UserStore};
    let db = Db::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ingest_demo(db.cmd());
    let shipped =
        std::fs::read_to_string(root.join("rules/two-clear/TC-04-fund-pool.yaml")).unwrap();
    let listed = shipped.replace(
        "subject: '!is_institution'",
        "subject: '!is_institution && !in_list(\"group_treasury\", hub.id)'",
    );
    assert_ne!(listed, shipped);
    let rule = db.dir.path().join("TC-04-listed.yaml");
    std::fs::write(&rule, listed).unwrap();
    let rule = rule.to_str().unwrap();
    let scan = || {
        let alerts = db.json(&["scan", "--full", "--format", "json", "--rules", rule]);
        let alerts = alerts.as_array().unwrap();
        let mut subjects: Vec<String> = alerts
            .iter()
            .map(|a| a["subject"]["id"].as_str().unwrap().to_string())
            .collect();
        subjects.dedup();
        subjects
    };
    // A list the store does not have yet is warned about: a misspelt name would make the
    // allow list apply to nobody.
    let warns = || {
        let out = db
            .cmd()
            .args(["scan", "--full", "--format", "json", "--rules", rule])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr)
            .contains("read list `group_treasury`, which the store does not have")
    };
    assert!(warns(), "no warning about the missing list");
    let before = scan();
    assert!(before.len() >= 2, "{before:?}");
    let store = clearwatch_store::open(&db.url()).await.unwrap();
    store
        .add_user("sue", UserRole::Supervisor, "x", "test")
        .await
        .unwrap();
    store
        .create_list("group_treasury", ListKind::Allow, "checked groups", "sue")
        .await
        .unwrap();
    let entry = NewListEntry {
        kind: EntryKind::Account,
        value: before[0].clone(),
        reason: "the group's own treasury".into(),
        expires_at: chrono::Utc::now().timestamp_millis() + 86_400_000,
    };
    store
        .add_list_entry("group_treasury", &entry, "sue")
        .await
        .unwrap();
    drop(store);
    assert!(!warns(), "the list exists now");
    let after = scan();
    assert!(!after.contains(&before[0]), "{after:?}");
    assert_eq!(after, before[1..].to_vec());
}

/// A rule version published from the dashboard (stored in the database) is what the next
/// store scan runs in place of the rule file of the same id; `--files-only` runs the file.
#[tokio::test]
async fn a_published_rule_version_changes_the_next_store_scan() {
    use clearwatch_store::RuleVersion;
    let db = Db::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ingest_demo(db.cmd());
    let file = "rules/two-clear/TC-04-fund-pool.yaml";
    let scan = |extra: &[&str]| {
        let out = db
            .cmd()
            .current_dir(root)
            .args(["scan", "--format", "json", "--rules", file])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        let alerts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        (alerts, err)
    };
    let (before, err) = scan(&[]);
    assert!(!before.is_empty(), "the file finds pools");
    assert!(!err.contains("from the store"), "{err}");
    // An author publishes an edit that asks for 1000 payees: no pool in the demo set has them.
    let original = std::fs::read_to_string(root.join(file)).unwrap();
    let edited = original.replace(
        "min_payees: { type: int, default: 10,",
        "min_payees: { type: int, default: 1000,",
    );
    assert_ne!(edited, original);
    let (set, diags) = clearwatch_rules::load::load(&[root.join("rules")]);
    assert!(diags.is_empty());
    let rule = clearwatch_rules::load::compile_text(&set, &root.join(file), &edited).unwrap();
    let store = clearwatch_store::open(&db.url()).await.unwrap();
    store
        .publish_rule(
            &RuleVersion {
                rule_id: "TC-04".into(),
                version: rule.version.clone(),
                title: rule.title.clone(),
                text: edited,
            },
            "author",
        )
        .await
        .unwrap();
    drop(store);
    let (after, err) = scan(&[]);
    assert!(after.is_empty(), "the published version ran: {after:?}");
    assert!(
        err.contains("rule TC-04 from the store: version ")
            && err.contains("published by author")
            && err.contains("overrides the file"),
        "{err}"
    );
    // The file alone still finds them (its version scanned the store already: `--full`
    // prints every alert, not only what changed).
    let (files_only, err) = scan(&["--files-only", "--full"]);
    assert_eq!(files_only.len(), before.len(), "{err}");
}

/// The file loader parses on one thread and builds on another: a refused row in the
/// middle of the file is reported with its line, the rows around it give the same alerts
/// as the file without it, and `--timings` lists the load and every rule.
#[test]
fn scan_input_refuses_a_bad_row_in_place_and_reports_timings() {
    let clean_file = demo_transactions();
    let text = std::fs::read_to_string(&clean_file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let bad_line = lines.len() / 2;
    lines.insert(
        bad_line - 1,
        "bad-1,2026-03-02T10:00:00Z,A,B,not-a-number,CNY,transfer,",
    );
    let db = Db::new();
    let with_bad = db.write("transactions.csv", &(lines.join("\n") + "\n"));
    let rules = [
        "rules/two-clear/TC-04-fund-pool.yaml",
        "rules/laundering/ML-04-scatter-gather.yaml",
    ];
    let scan = |file: &Path| {
        demo_scan(&db, file, &rules)
            .arg("--timings")
            .output()
            .unwrap()
    };
    let (clean, dirty) = (scan(&clean_file), scan(&with_bad));
    assert!(dirty.status.success());
    let err = String::from_utf8_lossy(&dirty.stderr);
    let want = format!(
        "note: 1 input rows refused (first: {}:{bad_line}:",
        with_bad.display()
    );
    assert!(err.contains(&want), "{err}");
    for line in [
        "read input and build graph",
        "rule TC-04",
        "rule ML-04",
        "all rules",
    ] {
        assert!(err.contains(line), "--timings should print {line:?}: {err}");
    }
    let alerts: serde_json::Value = serde_json::from_slice(&dirty.stdout).unwrap();
    assert!(!alerts.as_array().unwrap().is_empty());
    assert_eq!(
        alerts,
        serde_json::from_slice::<serde_json::Value>(&clean.stdout).unwrap()
    );
}

/// `rules backtest FILE --param k=v` compares a rule file with the stored alerts of its
/// id subject by subject: the shipped TC-04 changes nothing after the demo's scan, a
/// threshold no pool reaches makes every subject disappear, and a rule not yet in the
/// pack (its own id) makes them appear; nothing is written.
#[test]
fn cli_backtest_compares_a_rule_file_with_the_stored_alerts_by_subject() {
    let db = Db::new();
    db.cmd().args(["demo", "--no-serve"]).assert().success();
    let tc04 = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/two-clear/TC-04-fund-pool.yaml");
    let backtest = |file: &Path, extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["rules", "backtest", file.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        db.json(&args)
    };
    let stored = || {
        db.json(&["alerts", "list", "--json", "--limit", "100000"])
            .as_array()
            .unwrap()
            .len()
    };
    let alerts_before = stored();
    assert!(alerts_before > 100, "the demo stores its alerts");

    let same = backtest(&tc04, &[]);
    assert_eq!(
        (
            &same["appears"],
            &same["disappears"],
            &same["changed"],
            &same["unchanged"]
        ),
        (&0.into(), &0.into(), &0.into(), &3.into()),
        "{same}"
    );

    let strict = backtest(&tc04, &["--param", "min_inflow=1e15"]);
    assert_eq!(strict["disappears"], 3, "{strict}");
    let subjects = strict["subjects"].as_array().unwrap();
    assert!(subjects.iter().all(|s| s["change"] == "disappears"
        && s["alerts_after"] == 0
        && s["stored_alert"].is_string()));

    let text = std::fs::read_to_string(&tc04)
        .unwrap()
        .replacen("id: TC-04", "id: TC-99", 1);
    let new_rule = db.write("TC-99-new-pool.yaml", &text);
    let new = backtest(&new_rule, &[]);
    assert_eq!(
        (&new["rule_id"], &new["appears"]),
        (&"TC-99".into(), &3.into()),
        "{new}"
    );
    let a236 = new["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"]["id"] == "A00000236")
        .expect("the demo's pool");
    assert_eq!(
        (&a236["alerts_before"], &a236["alerts_after"]),
        (&0.into(), &3.into())
    );

    let bad = db
        .cmd()
        .args([
            "rules",
            "backtest",
            tc04.to_str().unwrap(),
            "--param",
            "nope=1",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown parameter `nope`"));
    assert_eq!(stored(), alerts_before, "a backtest stores nothing");
}

/// "At least five distinct payers between 00:00 and 05:00 local time within three local
/// days", for the zone the folder's `_shared` gives or the rule's own.
fn night_rule(id: &str, time_zone: Option<&str>) -> String {
    let zone = time_zone.map_or(String::new(), |z| format!("time_zone: {z}\n"));
    format!(
        "id: {id}\ntitle: night collections\nstatus: experimental\nseverity: medium\n{zone}\
         detect:\n  kind: star\n  in: 'tx.local_hour < 5'\n  \
         window: {{ length: 3d, step: 1d, align: local_day }}\n  aggregates:\n    \
         payers: {{ fn: count_distinct, over: in, field: counterparty }}\n    \
         nights: {{ fn: count, over: in }}\n  condition: 'payers >= 5'\n\
         summary: \"{{subject}} was paid by {{payers}} payers at night between {{from}} and {{until}}\"\n"
    )
}

#[test]
fn a_local_night_rule_fires_on_the_right_local_nights_across_a_daylight_saving_change() {
    let db = Db::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("_shared")).unwrap();
    std::fs::write(
        dir.path().join("_shared/zone.yaml"),
        "time_zone: Asia/Shanghai\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("N-1-night.yaml"), night_rule("N-1", None)).unwrap();
    std::fs::write(
        dir.path().join("N-2-night.yaml"),
        night_rule("N-2", Some("America/New_York")),
    )
    .unwrap();
    // Each account, and the five payers it receives from at these instants.
    let payments: [(&str, [&str; 5]); 5] = [
        // Beijing (UTC+8): 01:00–04:00 on the nights of 10 and 11 March. In UTC these are
        // 17:00–20:00 the day before: not night hours there.
        (
            "BJ",
            [
                "2026-03-09T17:00:00Z",
                "2026-03-09T18:00:00Z",
                "2026-03-09T20:00:00Z",
                "2026-03-10T17:30:00Z",
                "2026-03-10T19:59:00Z",
            ],
        ),
        // 06:00–10:00 Beijing time (22:00–02:00 UTC): mornings, not nights.
        (
            "BJ-MORNING",
            [
                "2026-03-09T22:00:00Z",
                "2026-03-09T23:00:00Z",
                "2026-03-10T00:00:00Z",
                "2026-03-10T01:00:00Z",
                "2026-03-10T02:00:00Z",
            ],
        ),
        // Night payers over four local days (10 and 13 March): not within three.
        (
            "BJ-SPREAD",
            [
                "2026-03-09T17:00:00Z",
                "2026-03-09T18:00:00Z",
                "2026-03-09T19:00:00Z",
                "2026-03-12T17:00:00Z",
                "2026-03-12T18:00:00Z",
            ],
        ),
        // New York, where daylight saving time begins at 02:00 on 8 March 2026 (UTC-5,
        // then UTC-4): nights of 7, 8 and 9 March. The last payer of NY pays at 04:59 EDT;
        // that of NY-DAWN at 05:30 EDT, which a fixed UTC-5 would take for 04:30.
        (
            "NY",
            [
                "2026-03-07T06:30:00Z",
                "2026-03-08T06:30:00Z",
                "2026-03-08T07:30:00Z",
                "2026-03-09T05:00:00Z",
                "2026-03-09T08:59:00Z",
            ],
        ),
        (
            "NY-DAWN",
            [
                "2026-03-07T06:30:00Z",
                "2026-03-08T06:30:00Z",
                "2026-03-08T07:30:00Z",
                "2026-03-09T05:00:00Z",
                "2026-03-09T09:30:00Z",
            ],
        ),
    ];
    let mut rows = vec!["tx_id,ts,from,to,amount,currency,type".to_string()];
    for (to, times) in payments {
        for (i, ts) in times.iter().enumerate() {
            let n = rows.len();
            rows.push(format!("t{n},{ts},{to}-P{i},{to},100.00,CNY,transfer"));
        }
    }
    let transactions = db.write("night.csv", &(rows.join("\n") + "\n"));
    let out = db
        .cmd()
        .args(["scan", "--format", "json", "--rules"])
        .arg(dir.path())
        .arg("--input")
        .arg(&transactions)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let fired: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap().to_string(),
                a["subject"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        fired,
        [
            ("N-1".to_string(), "BJ".to_string()),
            ("N-2".to_string(), "NY".to_string())
        ],
        "{alerts:#?}"
    );
    // Windows run from local midnight to local midnight: 9 March 00:00 Beijing time is
    // 8 March 16:00 UTC; in New York, 7 March 00:00 EST is 05:00 UTC and 10 March 00:00
    // EDT is 04:00 UTC (a 71-hour window).
    let window = |a: &serde_json::Value| {
        (
            a["window"]["from"].as_str().unwrap().to_string(),
            a["window"]["until"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        window(&alerts[0]).0,
        "2026-03-08T16:00:00Z",
        "{:#?}",
        alerts[0]
    );
    assert_eq!(
        window(&alerts[1]),
        (
            "2026-03-07T05:00:00Z".to_string(),
            "2026-03-10T04:00:00Z".to_string()
        ),
        "{:#?}",
        alerts[1]
    );
    // The summary prints the window in the rule's zone, with its offset.
    let summary = alerts[1]["summary"].as_str().unwrap();
    assert!(
        summary.contains("between 2026-03-07T00:00:00-05:00 and 2026-03-10T00:00:00-04:00"),
        "{summary}"
    );
}

#[test]
fn local_day_windows_need_whole_days_a_known_zone_and_a_calendar_kind() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |id: &str, body: &str| {
        std::fs::write(
            dir.path().join(format!("{id}-x.yaml")),
            format!("id: {id}\ntitle: t\nstatus: experimental\nseverity: low\n{body}summary: \"{{subject}}\"\n"),
        )
        .unwrap();
    };
    rule(
        "L-1",
        "detect:\n  kind: star\n  window: { length: 36h, align: local_day }\n  \
         aggregates:\n    n: { fn: count, over: in }\n  condition: 'n > 1'\n",
    );
    rule(
        "L-2",
        "detect:\n  kind: cycle\n  edge: 'true'\n  min_length: 2\n  max_length: 3\n  \
         window: { length: 2d, align: local_day }\n  condition: 'true'\n",
    );
    rule(
        "L-3",
        "time_zone: Asia/Beijing\ndetect:\n  kind: star\n  window: { length: 1d, align: midnight }\n  \
         aggregates:\n    n: { fn: count, over: in }\n  condition: 'n > 1'\n",
    );
    let out = Db::new()
        .cmd()
        .args(["rules", "lint"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for (at, what) in [
        (
            "L-1-x.yaml:7:",
            "needs a window `length` and `step` of whole days",
        ),
        ("L-2-x.yaml:10:", "`align` does not apply"),
        ("L-3-x.yaml:5:", "neither an IANA zone name"),
        ("L-3-x.yaml:8:", "valid values: epoch, local_day"),
    ] {
        assert!(
            err.contains(at) && err.contains(what),
            "no {what:?} at {at}:\n{err}"
        );
    }
}

/// `inferred_role` names what an account's behaviour shows only where the registry gives
/// no role: an unregistered account paid by twenty shoppers reads as a merchant, a
/// registered individual paid the same way keeps its role and infers nothing.
#[test]
fn inferred_role_speaks_only_where_the_registry_is_silent() {
    let db = Db::new();
    let dir = db.dir.path().join("inferred");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("T-6-inferred.yaml"),
        "id: T-6\ntitle: inferred merchant\nstatus: test\nseverity: low\ndetect:\n  kind: star\n  subject: 'hub.inferred_role == \"merchant\" && hub.role == \"unknown\"'\n  in: 'tx.type == \"payment\"'\n  window: { length: 1d }\n  aggregates:\n    payers: { fn: count_distinct, over: in, field: counterparty }\n  condition: 'payers >= 1'\nsummary: \"{subject} paid by {payers} payers\"\n",
    )
    .unwrap();
    let mut tx = String::from("tx_id,ts,from,to,amount,currency,type\n");
    for i in 0..20 {
        for shop in ["SHOP", "REG"] {
            tx.push_str(&format!(
                "{shop}{i},2026-01-01T01:{i:02}:00Z,P{i},{shop},1.00,CNY,payment\n"
            ));
        }
    }
    let tx = db.write("tx.csv", &tx);
    let accounts = db.write(
        "accounts.csv",
        "account_id,holder_id,holder_name,kind,role,licensed,institution,region\nREG,H1,Li Wei,personal,individual,false,,GD\n",
    );
    let scan = |tx: &Path| {
        let alerts = db.json(&[
            "scan",
            "--format",
            "json",
            "--rules",
            dir.to_str().unwrap(),
            "--input",
            tx.to_str().unwrap(),
            "--accounts",
            accounts.to_str().unwrap(),
        ]);
        alerts
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["subject"]["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(scan(&tx), ["SHOP"]);
    // Nineteen shoppers are not enough.
    let text = std::fs::read_to_string(&tx).unwrap();
    let fewer: String = text
        .lines()
        .filter(|l| !l.starts_with("SHOP19,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let fewer = db.write("fewer.csv", &fewer);
    assert!(scan(&fewer).is_empty());
}
