//! Ground truth loaders: clearwatch's own `truth.csv` and the labels of public simulators
//! (AMLSim, PaySim, AMLGentex, AMLworld), all turned into labelled schemes with member
//! accounts, key accounts and (where the source labels them) transaction ids that match
//! the ids ingest gives the same rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clearwatch_ingest::{self as ingest, Profile};

#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    #[error(
        "unknown truth profile {0:?} (valid: native, amlsim, amlsim-sample, paysim, amlgentex, amlworld)"
    )]
    UnknownProfile(String),
}

/// One labelled pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scheme {
    pub id: String,
    pub typology: String,
    /// A pattern that is *not* laundering (AMLSim `is_sar=False`, a legitimate aggregator).
    pub decoy: bool,
    pub members: BTreeSet<String>,
    /// Hub or main accounts; empty when the source does not say.
    pub key_accounts: BTreeSet<String>,
    pub transactions: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Truth {
    pub schemes: Vec<Scheme>,
    /// Positive transaction ids, when the source labels transactions.
    pub positive_transactions: Option<BTreeSet<String>>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TruthError + '_ {
    move |source| TruthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a CSV as header-indexed rows of strings with their line numbers.
/// A CSV header and its rows, each with its line number.
type Rows = (Vec<String>, Vec<(u64, Vec<String>)>);

fn read_rows(path: &Path) -> Result<Rows, TruthError> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| TruthError::Malformed {
            path: path.to_path_buf(),
            line: 0,
            message: e.to_string(),
        })?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| TruthError::Malformed {
            path: path.to_path_buf(),
            line: 1,
            message: e.to_string(),
        })?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| TruthError::Malformed {
            path: path.to_path_buf(),
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        out.push((line, rec.iter().map(|v| v.trim().to_string()).collect()));
    }
    Ok((header, out))
}

fn col(path: &Path, header: &[String], name: &str) -> Result<usize, TruthError> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| TruthError::Malformed {
            path: path.to_path_buf(),
            line: 1,
            message: format!("missing column {name:?} (columns: {})", header.join(", ")),
        })
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "y")
}

/// Loads truth of `profile` from `path` (a file or the folder holding it). `transactions`
/// is the transactions file of the data set, for sources that label rows in it.
pub fn load(profile: &str, path: &Path, transactions: Option<&Path>) -> Result<Truth, TruthError> {
    let in_dir = |name: &str| {
        if path.is_dir() {
            path.join(name)
        } else {
            path.to_path_buf()
        }
    };
    match profile {
        "native" => native(&in_dir("truth.csv")),
        "amlsim" => amlsim(
            &in_dir("alert_accounts.csv"),
            path.is_dir()
                .then(|| path.join("alert_transactions.csv"))
                .as_deref(),
        ),
        "paysim" => labelled_rows(
            &in_dir("rawLog.csv"),
            "paysim",
            "isFraud",
            None,
            "account_takeover",
        ),
        "amlgentex" => amlgentex(path, transactions),
        "amlsim-sample" => fraud_accounts(&in_dir("nodes.csv")),
        "amlworld" => amlworld(path),
        other => Err(TruthError::UnknownProfile(other.to_string())),
    }
}

/// Typologies of the generator's legitimate look-alikes (decoys in `truth.csv`).
pub const LOOKALIKE_TYPOLOGIES: &[&str] = &[
    "legit_aggregator",
    "payroll",
    "supplier_run",
    "group_treasury",
    "marketplace",
    "payment_facilitator",
    "bill_collector",
    "refund_batch",
    "family",
    "rent",
];

/// `truth.csv`: `scheme_id,typology,kind,id,role` (kind `account` or `transaction`). A
/// scheme is a decoy (a legitimate look-alike, never a true pattern) when its typology is
/// one of [`LOOKALIKE_TYPOLOGIES`].
pub fn native(path: &Path) -> Result<Truth, TruthError> {
    let (header, rows) = read_rows(path)?;
    let (s, t, k, i, r) = (
        col(path, &header, "scheme_id")?,
        col(path, &header, "typology")?,
        col(path, &header, "kind")?,
        col(path, &header, "id")?,
        col(path, &header, "role")?,
    );
    let mut schemes: BTreeMap<String, Scheme> = BTreeMap::new();
    let mut positives = BTreeSet::new();
    for (line, row) in rows {
        let scheme = schemes.entry(row[s].clone()).or_insert_with(|| Scheme {
            id: row[s].clone(),
            typology: row[t].clone(),
            decoy: LOOKALIKE_TYPOLOGIES.contains(&row[t].as_str()),
            ..Default::default()
        });
        match row[k].as_str() {
            "account" => {
                scheme.members.insert(row[i].clone());
                if matches!(
                    row[r].as_str(),
                    "hub" | "nested_hub" | "mule" | "aggregator"
                ) {
                    scheme.key_accounts.insert(row[i].clone());
                }
            }
            "transaction" => {
                scheme.transactions.insert(row[i].clone());
                if !scheme.decoy {
                    positives.insert(row[i].clone());
                }
            }
            other => {
                return Err(TruthError::Malformed {
                    path: path.to_path_buf(),
                    line,
                    message: format!("kind {other:?} (valid: account, transaction)"),
                });
            }
        }
    }
    Ok(Truth {
        schemes: schemes.into_values().collect(),
        positive_transactions: Some(positives),
    })
}

/// The AMLSim repository sample: `nodes.csv` flags accounts (`isFraud`) without pattern
/// ids, so each flagged account is scored as a one-account scheme (account-level recall).
fn fraud_accounts(path: &Path) -> Result<Truth, TruthError> {
    let (header, rows) = read_rows(path)?;
    let (id, flag) = (
        col(path, &header, "nodeid")?,
        col(path, &header, "isFraud")?,
    );
    let schemes = rows
        .into_iter()
        .filter(|(_, r)| truthy(&r[flag]))
        .map(|(_, r)| Scheme {
            id: r[id].clone(),
            typology: "fraud_account".into(),
            members: BTreeSet::from([r[id].clone()]),
            ..Default::default()
        })
        .collect();
    Ok(Truth {
        schemes,
        positive_transactions: None,
    })
}

/// AMLSim: `alert_accounts.csv` (members, `is_sar`) and `alert_transactions.csv`.
pub fn amlsim(accounts: &Path, transactions: Option<&Path>) -> Result<Truth, TruthError> {
    let (header, rows) = read_rows(accounts)?;
    let (a, t, acct, sar) = (
        col(accounts, &header, "alert_id")?,
        col(accounts, &header, "alert_type")?,
        col(accounts, &header, "acct_id")?,
        col(accounts, &header, "is_sar")?,
    );
    let mut schemes: BTreeMap<String, Scheme> = BTreeMap::new();
    for (_, row) in rows {
        let s = schemes.entry(row[a].clone()).or_insert_with(|| Scheme {
            id: row[a].clone(),
            typology: row[t].clone(),
            decoy: !truthy(&row[sar]),
            ..Default::default()
        });
        s.members.insert(row[acct].clone());
    }
    let mut positives = None;
    if let Some(tp) = transactions.filter(|p| p.exists()) {
        let (header, rows) = read_rows(tp)?;
        let (a, tx, sar, orig, bene) = (
            col(tp, &header, "alert_id")?,
            col(tp, &header, "tran_id")?,
            col(tp, &header, "is_sar")?,
            col(tp, &header, "orig_acct")?,
            col(tp, &header, "bene_acct")?,
        );
        let mut pos = BTreeSet::new();
        let mut degree: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (_, row) in rows {
            if let Some(s) = schemes.get_mut(&row[a]) {
                s.transactions.insert(row[tx].clone());
                let d = degree.entry(row[a].clone()).or_default();
                *d.entry(row[orig].clone()).or_default() += 1;
                *d.entry(row[bene].clone()).or_default() += 1;
            }
            if truthy(&row[sar]) {
                pos.insert(row[tx].clone());
            }
        }
        // The hub of a pattern is its busiest member.
        for (id, d) in degree {
            if let (Some(s), Some(max)) = (schemes.get_mut(&id), d.values().max()) {
                s.key_accounts = d
                    .iter()
                    .filter(|(_, n)| *n == max && *max > 1)
                    .map(|(a, _)| a.clone())
                    .collect();
            }
        }
        positives = Some(pos);
    }
    Ok(Truth {
        schemes: schemes.into_values().collect(),
        positive_transactions: positives,
    })
}

/// Sources that flag rows of their own transactions file (PaySim `isFraud`, AMLGentex
/// `isSAR`): the rows are read through the ingest profile so that ids match, and grouped
/// into schemes by `group_col` (or one scheme per flagged row).
fn labelled_rows(
    path: &Path,
    profile: &str,
    flag_col: &str,
    group_col: Option<&str>,
    typology: &str,
) -> Result<Truth, TruthError> {
    let (header, rows) = read_rows(path)?;
    let flag = col(path, &header, flag_col)?;
    let group = group_col.map(|g| col(path, &header, g)).transpose()?;
    let flagged: BTreeMap<u64, (String, String)> = rows
        .iter()
        .filter(|(_, r)| truthy(&r[flag]))
        .map(|(line, r)| {
            let g = group.map_or_else(|| format!("row{line}"), |g| r[g].clone());
            (*line, (g, String::new()))
        })
        .collect();
    let profile = Profile::load(profile).map_err(ingest::IngestError::from)?;
    let mut schemes: BTreeMap<String, Scheme> = BTreeMap::new();
    let mut positives = BTreeSet::new();
    ingest::read_transactions(
        path,
        &profile,
        |rec, id, line| {
            if let Some((g, _)) = flagged.get(&line) {
                let s = schemes.entry(g.clone()).or_insert_with(|| Scheme {
                    id: g.clone(),
                    typology: typology.to_string(),
                    ..Default::default()
                });
                s.members.insert(rec.from.to_string());
                s.members.insert(rec.to.to_string());
                s.transactions.insert(id.to_string());
                positives.insert(id.to_string());
            }
        },
        |_| {},
    )?;
    Ok(Truth {
        schemes: schemes.into_values().collect(),
        positive_transactions: Some(positives),
    })
}

/// AMLGentex: `alert_models.csv` (`modelID,type,accountID,isMain,…`) and the transfers file
/// (`isSAR`, `patternID`).
fn amlgentex(path: &Path, transactions: Option<&Path>) -> Result<Truth, TruthError> {
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    let models = if path.is_dir() {
        path.join("alert_models.csv")
    } else {
        path.to_path_buf()
    };
    let (header, rows) = read_rows(&models)?;
    let (m, t, a, main) = (
        col(&models, &header, "modelID")?,
        col(&models, &header, "type")?,
        col(&models, &header, "accountID")?,
        col(&models, &header, "isMain")?,
    );
    let mut schemes: BTreeMap<String, Scheme> = BTreeMap::new();
    for (_, row) in rows {
        let s = schemes.entry(row[m].clone()).or_insert_with(|| Scheme {
            id: row[m].clone(),
            typology: row[t].clone(),
            ..Default::default()
        });
        s.members.insert(row[a].clone());
        if truthy(&row[main]) {
            s.key_accounts.insert(row[a].clone());
        }
    }
    let transfers = transactions
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("transfers_account_to_account.csv"));
    let mut positives = None;
    if transfers.exists() {
        let rows_truth = labelled_rows(&transfers, "amlgentex", "isSAR", Some("patternID"), "")?;
        for s in &rows_truth.schemes {
            if let Some(target) = schemes.get_mut(&s.id) {
                target.transactions.extend(s.transactions.iter().cloned());
            }
        }
        positives = rows_truth.positive_transactions;
    }
    Ok(Truth {
        schemes: schemes.into_values().collect(),
        positive_transactions: positives,
    })
}

/// AMLworld `*_Patterns.txt`: blocks `BEGIN LAUNDERING ATTEMPT - TYPE: …` … `END …` of
/// transaction lines in the transactions file's format.
fn amlworld(path: &Path) -> Result<Truth, TruthError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let profile = Profile::load("amlworld").map_err(ingest::IngestError::from)?;
    let header = "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,Payment Currency,Payment Format,Is Laundering";
    let mut schemes = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("BEGIN LAUNDERING ATTEMPT - ") {
            let typology = rest.split(':').next().unwrap_or(rest).trim().to_string();
            current = Some((typology, Vec::new()));
        } else if t.starts_with("END LAUNDERING ATTEMPT") {
            if let Some((typology, lines)) = current.take() {
                schemes.push((typology, lines, i));
            }
        } else if let Some((_, lines)) = current.as_mut()
            && !t.is_empty()
        {
            lines.push(t.to_string());
        }
    }
    let dir = tempfile::tempdir().map_err(io(path))?;
    let mut truth = Truth::default();
    let mut positives = BTreeSet::new();
    for (n, (typology, lines, end_line)) in schemes.into_iter().enumerate() {
        let file = dir.path().join("block.csv");
        std::fs::write(&file, format!("{header}\n{}\n", lines.join("\n"))).map_err(io(&file))?;
        let mut s = Scheme {
            id: format!("P{:05}", n + 1),
            typology: typology.to_ascii_lowercase().replace(['-', ' '], "_"),
            ..Default::default()
        };
        ingest::read_transactions(
            &file,
            &profile,
            |rec, id, _| {
                s.members.insert(rec.from.to_string());
                s.members.insert(rec.to.to_string());
                s.transactions.insert(id.to_string());
            },
            |_| {},
        )?;
        if s.members.is_empty() {
            return Err(TruthError::Malformed {
                path: path.to_path_buf(),
                line: end_line as u64 + 1,
                message: "a laundering attempt with no readable transaction".into(),
            });
        }
        positives.extend(s.transactions.iter().cloned());
        truth.schemes.push(s);
    }
    truth.positive_transactions = Some(positives);
    Ok(truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalike_decoys_are_not_true_patterns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("truth.csv");
        std::fs::write(
            &path,
            "scheme_id,typology,kind,id,role\n\
             D0001,payroll,account,E,hub\n\
             D0001,payroll,account,s1,payee\n\
             D0001,payroll,transaction,T1,\n\
             D0002,rent,account,L,hub\n\
             S0001,fan_in,account,H,hub\n\
             S0001,fan_in,transaction,T2,\n",
        )
        .expect("write");
        let truth = native(&path).expect("load");
        let decoy: BTreeMap<&str, bool> = truth
            .schemes
            .iter()
            .map(|s| (s.id.as_str(), s.decoy))
            .collect();
        assert_eq!(
            decoy,
            BTreeMap::from([("D0001", true), ("D0002", true), ("S0001", false)])
        );
        assert_eq!(
            truth.positive_transactions,
            Some(BTreeSet::from(["T2".to_string()]))
        );
        let payroll = &truth.schemes[0];
        assert!(payroll.key_accounts.contains("E"));
    }
}
