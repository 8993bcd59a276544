//! Rule test cases: each case's data (inline native CSV or a folder beside the rule) is
//! loaded into a graph, the rule runs with the case's parameter overrides, and the alerts
//! are checked against the expectations.

use std::path::{Path, PathBuf};

use crate::Inputs;
use clearwatch_graph::load::from_files;
use clearwatch_ingest::Profile;
use clearwatch_rules::compile::compile_rule;
use clearwatch_rules::config::TestConfig;
use clearwatch_rules::load::{RuleSet, RuleSource};

/// The outcome of one test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub rule_id: String,
    pub name: String,
    pub path: PathBuf,
    /// `None` when it passed; otherwise what went wrong.
    pub failure: Option<String>,
}

/// Runs every test case of every rule source in the set.
pub fn run_all(set: &RuleSet) -> Vec<Outcome> {
    set.sources
        .iter()
        .flat_map(|src| {
            src.config
                .tests
                .iter()
                .map(|t| Outcome {
                    rule_id: src.config.id.value.clone(),
                    name: t.name.clone(),
                    path: src.path.clone(),
                    failure: run_case(set, src, t).err(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

struct CaseData {
    _dir: Option<tempfile::TempDir>,
    transactions: PathBuf,
    accounts: Option<PathBuf>,
    merchants: Option<PathBuf>,
}

fn case_data(rule_path: &Path, t: &TestConfig) -> Result<CaseData, String> {
    if let Some(rel) = &t.data {
        let dir = rule_path.parent().unwrap_or(Path::new(".")).join(rel);
        let opt = |name: &str| {
            let p = dir.join(name);
            p.exists().then_some(p)
        };
        return Ok(CaseData {
            _dir: None,
            transactions: dir.join("transactions.csv"),
            accounts: opt("accounts.csv"),
            merchants: opt("merchants.csv"),
        });
    }
    let Some(tx) = &t.transactions else {
        return Err("a test case needs `transactions` (inline CSV) or `data` (a folder)".into());
    };
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let write = |name: &str, text: &str| -> Result<PathBuf, String> {
        let p = dir.path().join(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        Ok(p)
    };
    Ok(CaseData {
        transactions: write("transactions.csv", tx)?,
        accounts: t
            .accounts
            .as_deref()
            .map(|a| write("accounts.csv", a))
            .transpose()?,
        merchants: t
            .merchants
            .as_deref()
            .map(|m| write("merchants.csv", m))
            .transpose()?,
        _dir: Some(dir),
    })
}

fn run_case(set: &RuleSet, src: &RuleSource, t: &TestConfig) -> Result<(), String> {
    let rule = compile_rule(&src.config, &src.path, &src.text, &set.shared, &t.params).map_err(
        |diags| {
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        },
    )?;
    let data = case_data(&src.path, t)?;
    let (graph, load) = from_files(
        &data.transactions,
        data.accounts.as_deref(),
        data.merchants.as_deref(),
        &Profile::native(),
        None,
        None,
    )
    .map_err(|e| e.to_string())?;
    if let Some(r) = load.rejections.first() {
        return Err(format!(
            "test data row refused: {}:{}: {}",
            r.source, r.line, r.reason
        ));
    }
    let inputs = Inputs {
        accounts: data.accounts.is_some(),
        merchants: data.merchants.is_some(),
    };
    let report = crate::run(&[&rule], &graph, inputs);
    if let Some(s) = report.skipped.first() {
        return Err(format!("the rule was skipped: {}", s.reason));
    }
    let alerts = &report.alerts;
    let subjects: Vec<&str> = alerts.iter().map(|a| a.subject.id.as_str()).collect();
    let e = &t.expect;
    let mut problems = Vec::new();
    if let Some(n) = e.alerts
        && alerts.len() != n
    {
        problems.push(format!(
            "expected {n} alerts, got {} (subjects: {subjects:?})",
            alerts.len()
        ));
    }
    for s in &e.subjects {
        if !subjects.contains(&s.as_str()) {
            problems.push(format!("no alert on {s} (subjects: {subjects:?})"));
        }
    }
    for s in &e.not_subjects {
        if subjects.contains(&s.as_str()) {
            problems.push(format!("unexpected alert on {s}"));
        }
    }
    for acct in &e.evidence_accounts {
        if !alerts
            .iter()
            .any(|a| a.evidence.accounts.iter().any(|x| x == acct))
        {
            problems.push(format!("{acct} is in no alert's evidence"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let shown: Vec<String> = alerts
            .iter()
            .map(|a| format!("  {}: {}", a.subject.id, a.summary))
            .collect();
        Err(format!("{}\n{}", problems.join("; "), shown.join("\n")))
    }
}
