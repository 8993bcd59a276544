//! Evidence export for regulators: gathers a case (alerts, their rule versions, evidence
//! transactions and accounts, input batches, audit trail) from the store, and writes it as
//! a signed, self-verifying bundle ([`bundle`]), a goAML report ([`goaml`]) or CAMLMAC
//! suspicious-transaction reports ([`camlmac`]).

use std::collections::BTreeMap;

/// An IANA time zone, as the report's times are shown in.
pub use chrono_tz::Tz;

use clearwatch_model::StoredAlert;
use clearwatch_model::{Account, Transaction};
use clearwatch_store::{BatchInfo, RuleVersion};

/// Everything an export needs about one case, gathered from the store.
#[derive(Debug, Clone, Default)]
pub struct CaseExport {
    /// The alerts of the case, in the order given.
    pub alerts: Vec<StoredAlert>,
    /// The exact rule versions that produced them.
    pub rules: Vec<RuleVersion>,
    /// Regulator codes per rule id, from the rules' `codes:` (e.g. `stcr`, `goaml`).
    pub rule_codes: BTreeMap<String, BTreeMap<String, String>>,
    /// Evidence transactions (union over the alerts), sorted by time then id, each with
    /// the batch it was loaded in.
    pub transactions: Vec<(Transaction, i64)>,
    /// Evidence accounts and every account the transactions touch, sorted by id.
    pub accounts: Vec<Account>,
    /// The input batches: the transaction loads the evidence came from and every registry
    /// load (accounts, merchants), by id.
    pub batches: Vec<BatchInfo>,
    /// The analyst's narrative, if any.
    pub narrative: Option<String>,
    /// The case's audit entries, each a JSON object with its chain hashes.
    pub audit: Vec<serde_json::Value>,
    /// The audit log's signed head when the case was gathered: a checkpoint the receiver
    /// can later hold the installation's log against (`audit verify --checkpoint`).
    pub audit_checkpoint: Option<clearwatch_model::audit::SignedHead>,
}

impl CaseExport {
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts
            .binary_search_by(|a| a.account_id.as_str().cmp(id))
            .ok()
            .map(|i| &self.accounts[i])
    }
}

/// Errors of exporting and verifying.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] clearwatch_store::StoreError),
    #[error(transparent)]
    Key(#[from] clearwatch_store::keys::KeyError),
    #[error("XML: {0}")]
    Xml(String),
    #[error("ZIP: {0}")]
    Zip(String),
    #[error("{path}:{line}:{column}: invalid reporting entity: {message}")]
    Config {
        path: std::path::PathBuf,
        line: u32,
        column: u32,
        message: String,
    },
}

pub mod bundle;
pub mod camlmac;
pub mod entity;
pub mod files;
#[cfg(test)]
mod fixture;
pub mod flowgraph;
pub mod goaml;
pub mod keys;
pub mod report;
mod xml;

use clearwatch_store::{AlertStore, AuditStore, IngestStore, UserStore};

/// The `codes:` block of a rule text (regulator codes), if any.
fn rule_codes(text: &str) -> BTreeMap<String, String> {
    #[derive(serde::Deserialize)]
    struct Codes {
        #[serde(default)]
        codes: BTreeMap<String, String>,
    }
    serde_saphyr::from_str::<Codes>(text)
        .map(|c| c.codes)
        .unwrap_or_default()
}

/// What alerts rest on: their evidence transactions and every account they name or touch.
#[derive(Debug, Clone, Default)]
pub struct EvidenceSet {
    /// The evidence transactions (union over the alerts), sorted by time then id, each
    /// with the batch it was loaded in.
    pub transactions: Vec<(Transaction, i64)>,
    /// The evidence accounts and every account the transactions touch, sorted by id, with
    /// what the registry says of each (unregistered ones as such).
    pub accounts: Vec<Account>,
}

/// Reads the evidence of `alerts` from the store: the transactions the alerts cite, by
/// id (wherever they fall in time), and the registry rows of every account involved, in
/// one query. The dashboard's alert page and every export read evidence through here.
pub async fn evidence(
    store: &(impl AlertStore + IngestStore),
    alerts: &[&StoredAlert],
) -> Result<EvidenceSet, ExportError> {
    let mut set = EvidenceSet::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    for a in alerts {
        for (t, batch) in store.evidence_transactions(&a.alert.id).await? {
            if seen.insert(t.tx_id.clone()) {
                ids.insert(t.from.clone());
                ids.insert(t.to.clone());
                set.transactions.push((t, batch));
            }
        }
        ids.extend(a.alert.evidence.accounts.iter().cloned());
        if a.alert.subject.kind == clearwatch_model::SubjectKind::Account {
            ids.insert(a.alert.subject.id.clone());
        }
    }
    set.transactions
        .sort_by(|(a, _), (b, _)| (a.ts, &a.tx_id).cmp(&(b.ts, &b.tx_id)));
    set.accounts = store
        .accounts_of(&ids.into_iter().collect::<Vec<_>>())
        .await?;
    Ok(set)
}

/// Gathers the case of `alert_ids` from the store. Every evidence transaction is included:
/// nothing is cut, whatever the size.
pub async fn gather(
    store: &(impl AlertStore + IngestStore + AuditStore),
    alert_ids: &[String],
    narrative: Option<String>,
) -> Result<CaseExport, ExportError> {
    let mut case = CaseExport {
        narrative,
        audit_checkpoint: store.audit_checkpoint().await?,
        ..Default::default()
    };
    for id in alert_ids {
        let alert = store
            .alert(id)
            .await?
            .ok_or_else(|| ExportError::Invalid(format!("no alert with id {id:?} in the store")))?;
        let (rule_id, version) = (&alert.alert.rule_id, &alert.alert.rule_version);
        if !case
            .rules
            .iter()
            .any(|r| &r.rule_id == rule_id && &r.version == version)
        {
            let rule = store.rule_version(rule_id, version).await?.ok_or_else(|| {
                ExportError::Invalid(format!(
                    "rule {rule_id} version {version} of alert {id} is not in the store"
                ))
            })?;
            case.rule_codes
                .insert(rule.rule_id.clone(), rule_codes(&rule.text));
            case.rules.push(rule);
        }
        let mut trail = store
            .audit_log(Some(&format!("alert:{id}")), u64::MAX / 2, 0)
            .await?;
        trail.reverse();
        // Earlier exports are in the audit log, not in the bundle: the same case exports
        // to the same bytes, however often it was exported.
        for entry in trail.into_iter().filter(|e| e.action != "export") {
            case.audit.push(
                serde_json::to_value(entry)
                    .map_err(|e| ExportError::Invalid(format!("audit entry of {id}: {e}")))?,
            );
        }
        case.alerts.push(alert);
    }
    let evidence = evidence(store, &case.alerts.iter().collect::<Vec<_>>()).await?;
    case.transactions = evidence.transactions;
    case.accounts = evidence.accounts;
    // The transaction batches the evidence came from, and every registry load (accounts,
    // merchants): the registry rows carry no batch outside the store, and the accounts'
    // and merchants' attributes the rules read come from those loads.
    let used: std::collections::BTreeSet<i64> = case.transactions.iter().map(|(_, b)| *b).collect();
    case.batches = store
        .batches()
        .await?
        .into_iter()
        .filter(|b| used.contains(&b.batch_id) || b.kind != "transactions")
        .collect();
    Ok(case)
}

/// The time zone of the dashboard user `user`, when there is such a user and their zone
/// is an IANA name: the zone the report shows times in.
pub async fn user_time_zone(
    store: &impl UserStore,
    user: &str,
) -> Result<Option<chrono_tz::Tz>, ExportError> {
    Ok(store
        .user(user)
        .await?
        .and_then(|u| u.time_zone.parse::<chrono_tz::Tz>().ok()))
}

/// Gathers one alert's case and writes its signed bundle, returning the bytes (for the
/// dashboard's download); the report shows times in the user's zone and speaks `lang`
/// with the rule texts `texts` gives for the case, and the export is recorded in the
/// audit log.
pub async fn export_bundle_bytes(
    store: &(impl AlertStore + IngestStore + AuditStore + UserStore),
    alert_id: &str,
    user: &str,
    key_path: &std::path::Path,
    lang: clearwatch_model::Lang,
    texts: impl FnOnce(&CaseExport) -> report::ReportTexts,
) -> Result<Vec<u8>, ExportError> {
    let case = gather(store, &[alert_id.to_string()], None).await?;
    let texts = texts(&case);
    let time_zone = user_time_zone(store, user).await?;
    let key = keys::load_or_create(key_path)?;
    let dir = tempfile::tempdir().map_err(|source| ExportError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let path = dir.path().join("bundle.zip");
    let extra = bundle::Options {
        time_zone,
        lang,
        texts: Some(&texts),
        ..Default::default()
    };
    let manifest = bundle::write(&path, &case, &key, user, chrono::Utc::now(), &extra)?;
    record_export(store, user, &case, &manifest).await?;
    std::fs::read(&path).map_err(|source| ExportError::Io { path, source })
}

/// Appends an `export` entry per alert to the audit log: chain of custody.
pub async fn record_export(
    store: &impl AuditStore,
    user: &str,
    case: &CaseExport,
    manifest: &bundle::Manifest,
) -> Result<(), ExportError> {
    let detail = serde_json::json!({
        "exported_at": manifest.exported_at,
        "key_sha256": manifest.public_key_sha256,
        "files": manifest.files,
    })
    .to_string();
    for a in &case.alerts {
        store
            .audit(
                user,
                "export",
                &format!("alert:{}", a.alert.id),
                None,
                Some(detail.clone()),
            )
            .await?;
    }
    Ok(())
}
