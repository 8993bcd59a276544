//! Pieces both backends share: alert row decoding, evidence assembly, the schema-version
//! guard, the clock, and the NUL-byte rule for loaded text.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};

use super::StoreError;
use clearwatch_ingest::Rejection;
use clearwatch_ingest::load::LoadRow;
use clearwatch_model::{Account, Merchant, Transaction};
use clearwatch_model::{Alert, Evidence, Severity, StoredAlert, Subject, Window};

/// The alert columns every alert query selects, in [`AlertRow`] order.
pub const ALERT_COLUMNS: &str = "id, rule_id, rule_version, title, subject_kind, subject_id, \
     window_from, window_until, severity, score, summary, currency, metrics, status, assignee, \
     created_at, updated_at, version";

/// Evidence kinds as stored.
pub const EVIDENCE_TX: &str = "transaction";
pub const EVIDENCE_ACCOUNT: &str = "account";

/// Now, in UTC, to the second (what both backends store).
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    t.with_nanosecond(0).unwrap_or(t)
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Refuses a database that has migrations this binary does not know.
pub fn check_schema(applied: Option<i64>, known: i64) -> Result<(), StoreError> {
    match applied {
        Some(found) if found > known => Err(StoreError::NewerSchema { found, known }),
        _ => Ok(()),
    }
}

/// A `u64` count as an SQL `LIMIT`/`OFFSET` value.
pub fn sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The severity names at or above `min`.
pub fn severities_at_least(min: Severity) -> Vec<&'static str> {
    Severity::ALL
        .into_iter()
        .filter(|s| *s >= min)
        .map(Severity::as_str)
        .collect()
}

/// One row of the alerts table, decoded by a backend.
pub struct AlertRow {
    pub id: String,
    pub rule_id: String,
    pub rule_version: String,
    pub title: String,
    pub subject_kind: String,
    pub subject_id: String,
    pub window_from: i64,
    pub window_until: i64,
    pub severity: String,
    pub score: i64,
    pub summary: String,
    pub currency: Option<String>,
    pub metrics: String,
    pub status: String,
    pub assignee: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

impl AlertRow {
    pub fn into_stored(self, evidence: Evidence) -> Result<StoredAlert, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("alert {}: {what}", self.id));
        let severity = self.severity.parse::<Severity>().map_err(|e| corrupt(&e))?;
        let score = u32::try_from(self.score).map_err(|_| corrupt("score out of range"))?;
        let metrics =
            serde_json::from_str(&self.metrics).map_err(|e| corrupt(&format!("metrics: {e}")))?;
        let subject_kind = self.subject_kind.parse().map_err(|e: String| corrupt(&e))?;
        let status = self.status.parse().map_err(|e: String| corrupt(&e))?;
        Ok(StoredAlert {
            alert: Alert {
                id: self.id,
                rule_id: self.rule_id,
                rule_version: self.rule_version,
                title: self.title,
                subject: Subject {
                    kind: subject_kind,
                    id: self.subject_id,
                },
                window: Window {
                    from: self.window_from,
                    until: self.window_until,
                },
                severity,
                score,
                summary: self.summary,
                currency: self.currency,
                metrics,
                evidence,
            },
            status,
            assignee: self.assignee,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

/// Groups evidence rows `(alert_id, kind, ref_id)`, already in `ord` order, by alert.
pub fn group_evidence(
    rows: impl IntoIterator<Item = (String, String, String)>,
) -> Result<HashMap<String, Evidence>, StoreError> {
    let mut out: HashMap<String, Evidence> = HashMap::new();
    for (alert_id, kind, ref_id) in rows {
        let e = out.entry(alert_id).or_default();
        match kind.as_str() {
            EVIDENCE_TX => e.transactions.push(ref_id),
            EVIDENCE_ACCOUNT => e.accounts.push(ref_id),
            other => return Err(StoreError::Corrupt(format!("evidence kind {other:?}"))),
        }
    }
    Ok(out)
}

/// Joins alert rows with their evidence, keeping the rows' order.
pub fn assemble(
    rows: Vec<AlertRow>,
    mut evidence: HashMap<String, Evidence>,
) -> Result<Vec<StoredAlert>, StoreError> {
    rows.into_iter()
        .map(|r| {
            let e = evidence.remove(&r.id).unwrap_or_default();
            r.into_stored(e)
        })
        .collect()
}

/// An alert's evidence as `(kind, ord, ref_id)` rows.
pub fn evidence_rows(alert: &Alert) -> impl Iterator<Item = (&'static str, i64, &str)> {
    let tx = alert.evidence.transactions.iter().enumerate();
    let acc = alert.evidence.accounts.iter().enumerate();
    tx.map(|(i, r)| (EVIDENCE_TX, i as i64, r.as_str()))
        .chain(acc.map(|(i, r)| (EVIDENCE_ACCOUNT, i as i64, r.as_str())))
}

/// Text fields of a loaded record, by their input column name.
pub trait TextFields: Clone {
    fn text_fields(&self) -> Vec<(&'static str, Option<&str>)>;

    /// The first field holding a NUL byte, which PostgreSQL text cannot store. Both
    /// backends quarantine such rows so that they agree.
    fn nul_field(&self) -> Option<&'static str> {
        self.text_fields()
            .into_iter()
            .find(|(_, v)| v.is_some_and(|v| v.contains('\0')))
            .map(|(name, _)| name)
    }
}

impl TextFields for Transaction {
    fn text_fields(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("tx_id", Some(&self.tx_id)),
            ("from", Some(&self.from)),
            ("to", Some(&self.to)),
            ("merchant_id", self.merchant_id.as_deref()),
            ("channel", self.channel.as_deref()),
            ("region", self.region.as_deref()),
            ("memo", self.memo.as_deref()),
        ]
    }
}

impl TextFields for Account {
    fn text_fields(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("account_id", Some(&self.account_id)),
            ("holder_id", self.holder_id.as_deref()),
            ("holder_name", self.holder_name.as_deref()),
            ("institution", self.institution.as_deref()),
            ("region", self.region.as_deref()),
        ]
    }
}

impl TextFields for Merchant {
    fn text_fields(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("merchant_id", Some(&self.merchant_id)),
            ("legal_name", self.legal_name.as_deref()),
            ("holder_id", self.holder_id.as_deref()),
            ("settlement_account", self.settlement_account.as_deref()),
            ("acquirer", self.acquirer.as_deref()),
            ("mcc", self.mcc.as_deref()),
        ]
    }
}

/// Splits off the rows holding a NUL byte, as quarantine entries.
pub fn take_nul_rows<T: TextFields>(
    rows: &[LoadRow<T>],
    source: &str,
) -> Option<(Vec<LoadRow<T>>, Vec<Rejection>)> {
    if !rows.iter().any(|r| r.record.nul_field().is_some()) {
        return None;
    }
    let mut good = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for row in rows {
        match row.record.nul_field() {
            None => good.push(row.clone()),
            Some(field) => bad.push(Rejection {
                source: source.to_string(),
                line: row.line,
                field: Some(field.to_string()),
                reason: format!("{field} contains a NUL byte"),
                raw: String::new(),
            }),
        }
    }
    Some((good, bad))
}

/// Quarantine text as stored: a NUL byte shown as U+FFFD.
pub fn printable(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// A transaction from its stored columns (in `TX_COLUMNS` order).
#[allow(clippy::too_many_arguments)]
pub fn transaction_from_columns(
    tx_id: String,
    ts: i64,
    from: String,
    to: String,
    amount: i64,
    currency: String,
    tx_type: String,
    merchant_id: Option<String>,
    channel: Option<String>,
    region: Option<String>,
    memo: Option<String>,
) -> Result<Transaction, StoreError> {
    Ok(Transaction {
        tx_id,
        ts,
        from,
        to,
        amount,
        currency: clearwatch_model::Currency::from_code(&currency)
            .ok_or_else(|| StoreError::Corrupt(format!("currency {currency:?}")))?,
        tx_type: tx_type
            .parse::<clearwatch_model::TxType>()
            .map_err(StoreError::Corrupt)?,
        merchant_id,
        channel,
        region,
        memo,
    })
}

/// The transaction columns, in [`transaction_from_columns`] order.
pub const TX_COLUMNS: &str = "t.tx_id, t.ts, t.from_account, t.to_account, t.amount, t.currency, t.type, t.merchant_id, t.channel, t.region, t.memo";

/// An account from its stored columns; a missing registry row gives an unregistered account.
#[allow(clippy::too_many_arguments)]
pub fn account_from_columns(
    account_id: String,
    registered: bool,
    holder_id: Option<String>,
    holder_name: Option<String>,
    kind: Option<String>,
    role: Option<String>,
    licensed: Option<bool>,
    institution: Option<String>,
    region: Option<String>,
) -> Result<Account, StoreError> {
    if !registered {
        return Ok(Account::unregistered(&account_id));
    }
    Ok(Account {
        account_id,
        holder_id,
        holder_name,
        kind: kind
            .map(|k| {
                k.parse::<clearwatch_model::AccountKind>()
                    .map_err(StoreError::Corrupt)
            })
            .transpose()?,
        role: role
            .as_deref()
            .unwrap_or("unknown")
            .parse::<clearwatch_model::Role>()
            .map_err(StoreError::Corrupt)?,
        licensed: licensed.unwrap_or(false),
        institution,
        region,
    })
}

/// A `LIKE … ESCAPE '\'` pattern matching values that contain `needle` literally.
pub fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
