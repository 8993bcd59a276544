//! The row decoders: each stored record read back the same way on both backends, from the
//! column lists defined here beside them.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};

use crate::StoreError;
use crate::cases::{Approval, Note, StoredRuleVersion, User};
use crate::records::{BatchInfo, QuarantineRow, RuleVersion};
use crate::sql::{Dialect, get};
use clearwatch_model::case::{AuditEntry, UserRole};
use clearwatch_model::suppression::{Suppression, SuppressionState};
use clearwatch_model::{
    Account, AccountKind, Alert, Currency, Evidence, Merchant, Role, Severity, StoredAlert,
    Subject, Transaction, TxType, Window,
};

/// Evidence kinds as stored.
pub const EVIDENCE_TX: &str = "transaction";
pub const EVIDENCE_ACCOUNT: &str = "account";

/// Now, in UTC, to the second (what both backends store).
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    t.with_nanosecond(0).unwrap_or(t)
}

/// Now in UTC milliseconds, to the millisecond (what expiries are compared with).
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Now as stored: RFC 3339 UTC text, to the second.
pub fn now_text() -> String {
    now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

fn parsed<T: std::str::FromStr<Err = String>>(text: String) -> Result<T, StoreError> {
    text.parse::<T>().map_err(corrupt)
}

/// Quarantine text as stored: a NUL byte shown as U+FFFD (PostgreSQL text cannot hold it).
pub fn printable(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
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

/// The transaction columns, in [`transaction`] order, of a table aliased `t`.
pub const TX_COLUMNS: &str = "t.tx_id, t.ts, t.from_account, t.to_account, t.amount, \
     t.currency, t.type, t.merchant_id, t.channel, t.region, t.memo";

/// The [`TX_COLUMNS`] of one transaction, decoded, in order.
pub type TxFields = (
    String,
    i64,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A transaction from [`TX_COLUMNS`] starting at column `at`.
pub fn transaction<DB: Dialect>(r: &DB::Row, at: usize) -> Result<Transaction, StoreError> {
    transaction_of((
        get::<DB, _>(r, at)?,
        get::<DB, _>(r, at + 1)?,
        get::<DB, _>(r, at + 2)?,
        get::<DB, _>(r, at + 3)?,
        get::<DB, _>(r, at + 4)?,
        get::<DB, _>(r, at + 5)?,
        get::<DB, _>(r, at + 6)?,
        get::<DB, _>(r, at + 7)?,
        get::<DB, _>(r, at + 8)?,
        get::<DB, _>(r, at + 9)?,
        get::<DB, _>(r, at + 10)?,
    ))
}

/// A transaction from its decoded columns.
pub fn transaction_of(f: TxFields) -> Result<Transaction, StoreError> {
    let (tx_id, ts, from, to, amount, currency, tx_type, merchant_id, channel, region, memo) = f;
    Ok(Transaction {
        tx_id,
        ts,
        from,
        to,
        amount,
        currency: Currency::from_code(&currency)
            .ok_or_else(|| corrupt(format!("currency {currency:?}")))?,
        tx_type: parsed::<TxType>(tx_type)?,
        merchant_id,
        channel,
        region,
        memo,
    })
}

/// The account columns, in [`account`] order, of a registry row aliased `a` joined to an
/// id column `id` (a missing registry row gives an unregistered account).
pub fn account_columns(id: &str) -> String {
    format!(
        "{id}, a.account_id IS NOT NULL, a.holder_id, a.holder_name, a.kind, a.role, \
         a.licensed, a.institution, a.region"
    )
}

pub fn account<DB: Dialect>(r: &DB::Row) -> Result<Account, StoreError> {
    let id: String = get::<DB, _>(r, 0)?;
    if !get::<DB, bool>(r, 1)? {
        return Ok(Account::unregistered(&id));
    }
    let kind: Option<String> = get::<DB, _>(r, 4)?;
    let role: Option<String> = get::<DB, _>(r, 5)?;
    Ok(Account {
        account_id: id,
        holder_id: get::<DB, _>(r, 2)?,
        holder_name: get::<DB, _>(r, 3)?,
        kind: kind.map(parsed::<AccountKind>).transpose()?,
        role: parsed::<Role>(role.unwrap_or_else(|| "unknown".into()))?,
        licensed: get::<DB, Option<bool>>(r, 6)?.unwrap_or(false),
        institution: get::<DB, _>(r, 7)?,
        region: get::<DB, _>(r, 8)?,
    })
}

pub const MERCHANT_COLUMNS: &str = "merchant_id, legal_name, holder_id, settlement_account, \
     acquirer, mcc, settlement_cycle_days";

pub fn merchant<DB: Dialect>(r: &DB::Row) -> Result<Merchant, StoreError> {
    let days: Option<i64> = get::<DB, _>(r, 6)?;
    Ok(Merchant {
        merchant_id: get::<DB, _>(r, 0)?,
        legal_name: get::<DB, _>(r, 1)?,
        holder_id: get::<DB, _>(r, 2)?,
        settlement_account: get::<DB, _>(r, 3)?,
        acquirer: get::<DB, _>(r, 4)?,
        mcc: get::<DB, _>(r, 5)?,
        settlement_cycle_days: days
            .map(|d| u32::try_from(d).map_err(|_| corrupt(format!("settlement_cycle_days {d}"))))
            .transpose()?,
    })
}

/// The alert columns every alert query selects, in [`alert`] order.
pub fn alert_columns<DB: Dialect>() -> String {
    format!(
        "id, rule_id, rule_version, title, subject_kind, subject_id, window_from, window_until, \
         severity, score, summary, currency, metrics, status, assignee, {}, {}, version",
        DB::ts_text("created_at"),
        DB::ts_text("updated_at")
    )
}

/// A stored alert from [`alert_columns`]; its evidence is joined in by the caller.
pub fn alert<DB: Dialect>(r: &DB::Row, evidence: Evidence) -> Result<StoredAlert, StoreError> {
    let id: String = get::<DB, _>(r, 0)?;
    let bad = |what: String| corrupt(format!("alert {id}: {what}"));
    let score: i64 = get::<DB, _>(r, 9)?;
    let metrics: String = get::<DB, _>(r, 12)?;
    let subject = Subject {
        kind: get::<DB, String>(r, 4)?.parse().map_err(bad)?,
        id: get::<DB, _>(r, 5)?,
    };
    Ok(StoredAlert {
        alert: Alert {
            rule_id: get::<DB, _>(r, 1)?,
            rule_version: get::<DB, _>(r, 2)?,
            title: get::<DB, _>(r, 3)?,
            subject,
            window: Window {
                from: get::<DB, _>(r, 6)?,
                until: get::<DB, _>(r, 7)?,
            },
            severity: get::<DB, String>(r, 8)?.parse::<Severity>().map_err(bad)?,
            score: u32::try_from(score).map_err(|_| bad("score out of range".into()))?,
            summary: get::<DB, _>(r, 10)?,
            currency: get::<DB, _>(r, 11)?,
            metrics: serde_json::from_str(&metrics).map_err(|e| bad(format!("metrics: {e}")))?,
            evidence,
            id: id.clone(),
        },
        status: get::<DB, String>(r, 13)?.parse().map_err(bad)?,
        assignee: get::<DB, _>(r, 14)?,
        created_at: get::<DB, _>(r, 15)?,
        updated_at: get::<DB, _>(r, 16)?,
        version: get::<DB, _>(r, 17)?,
    })
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
            other => return Err(corrupt(format!("evidence kind {other:?}"))),
        }
    }
    Ok(out)
}

/// An alert's evidence as `(kind, ord, ref_id)` rows.
pub fn evidence_rows(alert: &Alert) -> impl Iterator<Item = (&'static str, i64, &str)> {
    let tx = alert.evidence.transactions.iter().enumerate();
    let acc = alert.evidence.accounts.iter().enumerate();
    tx.map(|(i, r)| (EVIDENCE_TX, i as i64, r.as_str()))
        .chain(acc.map(|(i, r)| (EVIDENCE_ACCOUNT, i as i64, r.as_str())))
}

pub const QUARANTINE_COLUMNS: &str = "id, batch_id, source, line, field, reason, raw";

pub fn quarantine<DB: Dialect>(r: &DB::Row) -> Result<QuarantineRow, StoreError> {
    Ok(QuarantineRow {
        id: get::<DB, _>(r, 0)?,
        batch_id: get::<DB, _>(r, 1)?,
        source: get::<DB, _>(r, 2)?,
        line: get::<DB, i64>(r, 3)? as u64,
        field: get::<DB, _>(r, 4)?,
        reason: get::<DB, _>(r, 5)?,
        raw: get::<DB, _>(r, 6)?,
    })
}

pub fn batch_columns<DB: Dialect>() -> String {
    format!(
        "batch_id, kind, source, profile, sha256, {}",
        DB::ts_text("loaded_at")
    )
}

pub fn batch<DB: Dialect>(r: &DB::Row) -> Result<BatchInfo, StoreError> {
    Ok(BatchInfo {
        batch_id: get::<DB, _>(r, 0)?,
        kind: get::<DB, _>(r, 1)?,
        source: get::<DB, _>(r, 2)?,
        profile: get::<DB, _>(r, 3)?,
        sha256: get::<DB, _>(r, 4)?,
        loaded_at: get::<DB, _>(r, 5)?,
    })
}

pub const RULE_VERSION_COLUMNS: &str = "rule_id, version, title, text";

pub fn rule_version<DB: Dialect>(r: &DB::Row) -> Result<RuleVersion, StoreError> {
    Ok(RuleVersion {
        rule_id: get::<DB, _>(r, 0)?,
        version: get::<DB, _>(r, 1)?,
        title: get::<DB, _>(r, 2)?,
        text: get::<DB, _>(r, 3)?,
    })
}

/// A rule version from `rule_id, version, title, text, created_at, published_by`.
pub fn stored_rule_version<DB: Dialect>(r: &DB::Row) -> Result<StoredRuleVersion, StoreError> {
    Ok(StoredRuleVersion {
        rule_id: get::<DB, _>(r, 0)?,
        version: get::<DB, _>(r, 1)?,
        title: get::<DB, _>(r, 2)?,
        text: get::<DB, _>(r, 3)?,
        created_at: get::<DB, _>(r, 4)?,
        published_by: get::<DB, _>(r, 5)?,
    })
}

/// The user columns, in [`user`] order, of a table aliased `u`.
pub const USER_COLUMNS: &str = "u.name, u.role, u.password_hash, u.time_zone, u.created_at, u.disabled, \
     u.must_change_password, u.unavailable_until";
/// How many columns [`USER_COLUMNS`] has: what a query selecting more reads after them.
pub const USER_COLUMN_COUNT: usize = 8;

pub fn user<DB: Dialect>(r: &DB::Row) -> Result<User, StoreError> {
    Ok(User {
        name: get::<DB, _>(r, 0)?,
        role: parsed::<UserRole>(get::<DB, _>(r, 1)?)?,
        password_hash: get::<DB, _>(r, 2)?,
        time_zone: get::<DB, _>(r, 3)?,
        created_at: get::<DB, _>(r, 4)?,
        disabled: get::<DB, i32>(r, 5)? != 0,
        must_change_password: get::<DB, i32>(r, 6)? != 0,
        unavailable_until: get::<DB, _>(r, 7)?,
    })
}

pub const NOTE_COLUMNS: &str = "id, alert_id, author, body, created_at";

pub fn note<DB: Dialect>(r: &DB::Row) -> Result<Note, StoreError> {
    Ok(Note {
        id: get::<DB, _>(r, 0)?,
        alert_id: get::<DB, _>(r, 1)?,
        author: get::<DB, _>(r, 2)?,
        body: get::<DB, _>(r, 3)?,
        created_at: get::<DB, _>(r, 4)?,
    })
}

pub const APPROVAL_COLUMNS: &str = "id, alert_id, target, reason, requested_by, requested_at, \
     decided_by, decided_at, approved";

pub fn approval<DB: Dialect>(r: &DB::Row) -> Result<Approval, StoreError> {
    Ok(Approval {
        id: get::<DB, _>(r, 0)?,
        alert_id: get::<DB, _>(r, 1)?,
        target: get::<DB, _>(r, 2)?,
        reason: get::<DB, _>(r, 3)?,
        requested_by: get::<DB, _>(r, 4)?,
        requested_at: get::<DB, _>(r, 5)?,
        decided_by: get::<DB, _>(r, 6)?,
        decided_at: get::<DB, _>(r, 7)?,
        approved: get::<DB, _>(r, 8)?,
    })
}

pub const SUPPRESSION_COLUMNS: &str = "id, subject_kind, subject_id, rule_id, reason, expires_at, \
     approval_id, alert_id, requested_by, requested_at, decided_by, decided_at, state";

/// A suppression row of [`SUPPRESSION_COLUMNS`], its state read at `now` and its count
/// of hidden alerts left at zero.
pub fn suppression<DB: Dialect>(r: &DB::Row, now: i64) -> Result<Suppression, StoreError> {
    let id: i64 = get::<DB, _>(r, 0)?;
    let bad = |what: String| corrupt(format!("suppression {id}: {what}"));
    let expires_at: i64 = get::<DB, _>(r, 5)?;
    let stored: SuppressionState = get::<DB, String>(r, 12)?.parse().map_err(bad)?;
    Ok(Suppression {
        id,
        subject: Subject {
            kind: get::<DB, String>(r, 1)?.parse().map_err(bad)?,
            id: get::<DB, _>(r, 2)?,
        },
        rule_id: get::<DB, _>(r, 3)?,
        reason: get::<DB, _>(r, 4)?,
        expires_at,
        approval_id: get::<DB, _>(r, 6)?,
        alert_id: get::<DB, _>(r, 7)?,
        requested_by: get::<DB, _>(r, 8)?,
        requested_at: get::<DB, _>(r, 9)?,
        decided_by: get::<DB, _>(r, 10)?,
        decided_at: get::<DB, _>(r, 11)?,
        state: SuppressionState::at(stored, expires_at, now),
        hidden: 0,
    })
}

pub const AUDIT_COLUMNS: &str = "seq, at, actor, action, entity, before, after, prev_hash, hash";

pub fn audit_entry<DB: Dialect>(r: &DB::Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: get::<DB, _>(r, 0)?,
        at: get::<DB, _>(r, 1)?,
        actor: get::<DB, _>(r, 2)?,
        action: get::<DB, _>(r, 3)?,
        entity: get::<DB, _>(r, 4)?,
        before: get::<DB, _>(r, 5)?,
        after: get::<DB, _>(r, 6)?,
        prev_hash: get::<DB, _>(r, 7)?,
        hash: get::<DB, _>(r, 8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_column_count_is_the_user_columns() {
        assert_eq!(USER_COLUMNS.split(',').count(), USER_COLUMN_COUNT);
    }
}
