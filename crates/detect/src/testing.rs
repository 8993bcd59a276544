//! Rule test cases: each case's data (inline native CSV or a folder beside the rule) is
//! loaded into a graph, the rule runs with the case's parameter overrides, and the alerts
//! are checked against the expectations.

use std::path::{Path, PathBuf};

use crate::{Inputs, ScanReport};
use clearwatch_graph::load::from_files;
use clearwatch_ingest::Profile;
use clearwatch_ingest::source::Rejection;
use clearwatch_rules::Rule;
use clearwatch_rules::compile::compile_rule;
use clearwatch_rules::config::{Absent, TestConfig};
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

/// Loads a case's files and runs the rule over them; the first refused row, if any, is
/// returned beside the report.
fn scan_case(rule: &Rule, data: &CaseData) -> Result<(ScanReport, Option<Rejection>), String> {
    let (graph, load) = from_files(
        &data.transactions,
        data.accounts.as_deref(),
        data.merchants.as_deref(),
        &Profile::native(),
        None,
        None,
    )
    .map_err(|e| e.to_string())?;
    let inputs = Inputs {
        accounts: data.accounts.is_some(),
        merchants: data.merchants.is_some(),
    };
    let refused = load.rejections.into_iter().next();
    Ok((crate::run(&[rule], &graph, inputs), refused))
}

/// Where a refused row of a case's data is: its line in the rule file for inline data
/// (the CSV's line counted from the line of its `transactions: |`, `accounts: |` or
/// `merchants: |`), else the data file and line.
fn refused_row(src: &RuleSource, t: &TestConfig, r: &Rejection) -> String {
    let field = ["transactions", "accounts", "merchants"]
        .into_iter()
        .find(|f| r.source.ends_with(&format!("{f}.csv")));
    let block = field.filter(|_| t.data.is_none()).and_then(|field| {
        let lines: Vec<&str> = src.text.lines().collect();
        let case = lines.iter().position(|l| {
            let l = l.trim_start();
            l.strip_prefix("- name:")
                .is_some_and(|n| n.trim().trim_matches(['"', '\'']) == t.name)
        })?;
        // The case ends where the next one starts.
        let end = lines[case + 1..]
            .iter()
            .position(|l| l.trim_start().starts_with("- name:"))
            .map_or(lines.len(), |n| case + 1 + n);
        let at = lines[case..end].iter().position(|l| {
            let l = l.trim_start();
            l.strip_prefix(field)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })?;
        Some((field, case + at + 1))
    });
    let column = r
        .field
        .as_deref()
        .map_or(String::new(), |f| format!(", field `{f}`"));
    match block {
        Some((field, yaml_line)) => format!(
            "test data row refused: {}:{}: line {} of `{field}`{column}: {}",
            src.path.display(),
            yaml_line + r.line as usize,
            r.line,
            r.reason
        ),
        None => format!(
            "test data row refused: {}:{}{column}: {}",
            r.source, r.line, r.reason
        ),
    }
}

/// A file of a case and the columns to empty in it (none listed: leave the file out).
type Blank = (&'static str, &'static [&'static str]);

/// Ways a registry or a transaction file can be incomplete, each of which must not make
/// the rule alert on a subject it did not alert on with the complete data: an absent
/// value is never evidence.
const ABSENT: &[(Absent, &str, &[Blank])] = &[
    (
        Absent::MerchantIds,
        "without merchant ids and the merchant registry",
        &[
            ("transactions.csv", &["merchant_id"]),
            ("merchants.csv", &[]),
        ],
    ),
    (
        Absent::Channels,
        "without channels and regions",
        &[("transactions.csv", &["channel", "region"])],
    ),
    (
        Absent::Holders,
        "without holders in the registries",
        &[
            ("accounts.csv", &["holder_id", "holder_name"]),
            ("merchants.csv", &["holder_id", "legal_name"]),
        ],
    ),
];

/// `data` with the columns of `blank` emptied (a file with no columns listed is left out).
fn without(data: &CaseData, blank: &[Blank]) -> Result<CaseData, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let copy = |from: Option<&Path>, name: &str| -> Result<Option<PathBuf>, String> {
        let Some(from) = from else { return Ok(None) };
        let columns = blank.iter().find(|(file, _)| *file == name).map(|b| b.1);
        if columns.is_some_and(<[&str]>::is_empty) {
            return Ok(None);
        }
        let to = dir.path().join(name);
        blank_columns(from, &to, columns.unwrap_or(&[]))
            .map_err(|e| format!("cannot rewrite {}: {e}", from.display()))?;
        Ok(Some(to))
    };
    Ok(CaseData {
        transactions: copy(Some(&data.transactions), "transactions.csv")?
            .expect("the transactions file is kept"),
        accounts: copy(data.accounts.as_deref(), "accounts.csv")?,
        merchants: copy(data.merchants.as_deref(), "merchants.csv")?,
        _dir: Some(dir),
    })
}

fn blank_columns(from: &Path, to: &Path, columns: &[&str]) -> Result<(), csv::Error> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(from)?;
    let mut writer = csv::WriterBuilder::new().flexible(true).from_path(to)?;
    let headers = reader.headers()?.clone();
    let blanked: Vec<bool> = headers
        .iter()
        .map(|h| columns.contains(&h.trim()))
        .collect();
    writer.write_record(&headers)?;
    for row in reader.records() {
        let row = row?;
        let fields = row
            .iter()
            .enumerate()
            .map(|(i, f)| if blanked.get(i) == Some(&true) { "" } else { f });
        writer.write_record(fields)?;
    }
    writer.flush()?;
    Ok(())
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
    let (report, refused) = scan_case(&rule, &data)?;
    if let Some(r) = refused {
        return Err(refused_row(src, t, &r));
    }
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
    for (absent, what, blank) in ABSENT {
        // Rows the complete data loads may be refused without a field; the rest still run.
        let (partial, _) = scan_case(&rule, &without(&data, blank)?)?;
        let spared = e.spared_by.get(absent).map_or(&[][..], Vec::as_slice);
        for a in &partial.alerts {
            if !subjects.contains(&a.subject.id.as_str()) && !spared.contains(&a.subject.id) {
                problems.push(format!(
                    "{what}, the rule alerts on {}, which the complete data does not: an absent value became evidence",
                    a.subject.id
                ));
            }
        }
        // A declared exclusion must be what spares the subject.
        for s in spared {
            if subjects.contains(&s.as_str()) {
                problems.push(format!(
                    "{s} is alerted on with the complete data: nothing spares it, so drop it from `spared_by`"
                ));
            } else if !partial.alerts.iter().any(|a| &a.subject.id == s) {
                problems.push(format!(
                    "{what}, the rule does not alert on {s}: nothing there spares it, so drop it from `spared_by`"
                ));
            }
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
