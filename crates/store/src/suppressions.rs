//! The suppression area: a suppression is written with the dismissal request that asks
//! for it and decided with it, in the same transactions ([`insert`], [`decide`], called
//! by the workflow); it is listed with its state and the alerts it hides, and a supervisor
//! may lift it early. Every change appends its audit entry under `suppression:ID`. Which
//! alerts it hides is the queue's condition ([`crate::Suppressed`]).

use clearwatch_model::audit::AuditKey;
use clearwatch_model::case::AuditEntry;
use clearwatch_model::suppression::{
    NewSuppression, Suppression, SuppressionScope, SuppressionState,
};

use crate::audit;
use crate::cases::CaseError;
use crate::data::Backend;
use crate::records::SuppressionQuery;
use crate::rows::{self, SUPPRESSION_COLUMNS};
use crate::sql::{self, Builder, Dialect, Value, get, query};
use crate::{SqlStore, StoreError, SuppressionStore, workflow};

/// The most suppressions one list returns.
pub const LIST_LIMIT: u64 = 500;

fn state_json(s: &Suppression, state: SuppressionState) -> String {
    serde_json::json!({
        "subject": format!("{}:{}", s.subject.kind, s.subject.id),
        "rule": s.rule_id,
        "reason": s.reason,
        "expires_at": s.expires_at,
        "state": state.as_str(),
    })
    .to_string()
}

async fn one<DB: Dialect>(
    c: &mut DB::Connection,
    where_clause: &str,
    id: i64,
    now: i64,
) -> Result<Option<Suppression>, StoreError> {
    let sql = format!("SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE {where_clause} = $1");
    DB::fetch_optional(c, DB::bind(query(&sql), id))
        .await?
        .as_ref()
        .map(|r| rows::suppression::<DB>(r, now))
        .transpose()
}

/// Writes the suppression a dismissal request (`approval_id`, on `alert_id`) asks for,
/// pending its decision, scoped by the alert's subject and rule; returns its audit entry.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert<DB: Dialect>(
    c: &mut DB::Connection,
    key: &AuditKey,
    alert_id: &str,
    approval_id: i64,
    sup: &NewSuppression,
    reason: &str,
    actor: &str,
    at: &str,
) -> Result<AuditEntry, StoreError> {
    let row = DB::fetch_optional(
        c,
        DB::bind(
            query("SELECT subject_kind, subject_id, rule_id FROM alerts WHERE id = $1"),
            alert_id,
        ),
    )
    .await?
    .ok_or_else(|| CaseError::NotFound(format!("alert {alert_id}")))?;
    let kind: String = get::<DB, _>(&row, 0)?;
    let subject: String = get::<DB, _>(&row, 1)?;
    let rule: String = get::<DB, _>(&row, 2)?;
    let rule = (sup.scope == SuppressionScope::Rule).then_some(rule.as_str());
    let mut q = query(
        "INSERT INTO suppressions (subject_kind, subject_id, rule_id, reason, expires_at, \
         approval_id, alert_id, requested_by, requested_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    );
    q = DB::bind(DB::bind(DB::bind(q, kind.as_str()), subject.as_str()), rule);
    q = DB::bind(DB::bind(DB::bind(q, reason), sup.expires_at), approval_id);
    q = DB::bind(DB::bind(DB::bind(q, alert_id), actor), at);
    let row = DB::fetch_optional(c, q)
        .await?
        .ok_or_else(|| StoreError::Corrupt("INSERT … RETURNING gave no row".into()))?;
    let id: i64 = get::<DB, _>(&row, 0)?;
    let written = one::<DB>(c, "id", id, rows::now_ms())
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("suppression {id} vanished")))?;
    audit::append::<DB>(
        c,
        key,
        actor,
        "suppression.request",
        &format!("suppression:{id}"),
        None,
        Some(state_json(&written, SuppressionState::Pending)),
    )
    .await
}

/// Activates or rejects the suppression waiting on dismissal request `approval_id`, if
/// there is one, appending its audit entry.
pub(crate) async fn decide<DB: Dialect>(
    c: &mut DB::Connection,
    key: &AuditKey,
    approval_id: i64,
    approve: bool,
    actor: &str,
    at: &str,
) -> Result<(), StoreError> {
    let now = rows::now_ms();
    let Some(s) = one::<DB>(c, "approval_id", approval_id, now).await? else {
        return Ok(());
    };
    if s.state != SuppressionState::Pending {
        return Ok(());
    }
    let to = if approve {
        SuppressionState::Active
    } else {
        SuppressionState::Rejected
    };
    if !set_state::<DB>(c, s.id, SuppressionState::Pending, to, actor, at).await? {
        return Ok(());
    }
    let action = if approve {
        "suppression.approve"
    } else {
        "suppression.reject"
    };
    audit::append::<DB>(
        c,
        key,
        actor,
        action,
        &format!("suppression:{}", s.id),
        Some(state_json(&s, SuppressionState::Pending)),
        Some(state_json(&s, SuppressionState::at(to, s.expires_at, now))),
    )
    .await?;
    Ok(())
}

/// Moves suppression `id` from stored state `from` to `to`; false when it was no longer
/// in `from` (someone else moved it first).
async fn set_state<DB: Dialect>(
    c: &mut DB::Connection,
    id: i64,
    from: SuppressionState,
    to: SuppressionState,
    actor: &str,
    at: &str,
) -> Result<bool, StoreError> {
    let q = query(
        "UPDATE suppressions SET state = $1, decided_by = $2, decided_at = $3 \
         WHERE id = $4 AND state = $5",
    );
    let q = DB::bind(DB::bind(DB::bind(q, to.as_str()), actor), at);
    Ok(DB::execute(c, DB::bind(DB::bind(q, id), from.as_str())).await? == 1)
}

/// The alerts `s` hides now: its subject's alerts under its scope that nobody has taken
/// up (the condition of [`crate::Suppressed`], for one suppression).
async fn hidden_by<DB: Dialect>(
    c: &mut DB::Connection,
    s: &Suppression,
) -> Result<u64, StoreError> {
    let kind = s.subject.kind.to_string();
    let mut b = Builder::new(
        "SELECT COUNT(*) FROM alerts WHERE status = 'new' AND assignee IS NULL \
         AND subject_id = ",
    );
    b.push_value(Value::Text(&s.subject.id))
        .push(" AND subject_kind = ")
        .push_value(Value::Text(&kind));
    if let Some(rule) = &s.rule_id {
        b.push(" AND rule_id = ").push_value(Value::Text(rule));
    }
    let row = DB::fetch_optional(c, b.build()).await?;
    Ok(row.map_or(Ok(0), |r| get::<DB, i64>(&r, 0))? as u64)
}

impl<DB: Backend> SuppressionStore for SqlStore<DB> {
    async fn suppressions(&self, q: &SuppressionQuery) -> Result<Vec<Suppression>, StoreError> {
        let now = rows::now_ms();
        let mut b = Builder::new(format!(
            "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE 1 = 1"
        ));
        if let Some(id) = &q.subject_id {
            b.push(" AND subject_id = ").push_value(Value::Text(id));
        }
        if let Some(approval) = q.approval_id {
            b.push(" AND approval_id = ")
                .push_value(Value::Int(approval));
        }
        if let Some(kind) = q.subject_kind {
            b.push(" AND subject_kind = ")
                .push_value(Value::Text(kind.as_str()));
        }
        match q.state {
            None => {}
            Some(SuppressionState::Active) => {
                b.push(" AND state = 'active' AND expires_at > ")
                    .push_value(Value::Int(now));
            }
            Some(SuppressionState::Expired) => {
                b.push(" AND state = 'active' AND expires_at <= ")
                    .push_value(Value::Int(now));
            }
            Some(s) => {
                b.push(" AND state = ").push_value(Value::Text(s.as_str()));
            }
        }
        b.push(" ORDER BY id DESC LIMIT ")
            .push_value(Value::Int(sql::count(q.limit.min(LIST_LIMIT))));
        let mut c = self.pool.acquire().await?;
        let mut found = DB::fetch_all(&mut c, b.build())
            .await?
            .iter()
            .map(|r| rows::suppression::<DB>(r, now))
            .collect::<Result<Vec<_>, _>>()?;
        for s in &mut found {
            if q.count_hidden && s.state == SuppressionState::Active {
                s.hidden = hidden_by::<DB>(&mut c, s).await?;
            }
        }
        Ok(found)
    }

    async fn lift_suppression(&self, id: i64, actor: &str) -> Result<Suppression, StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        workflow::require_supervisor::<DB>(&mut tx, actor).await?;
        let now = rows::now_ms();
        let s = one::<DB>(&mut tx, "id", id, now)
            .await?
            .ok_or_else(|| CaseError::NotFound(format!("suppression {id}")))?;
        if s.state != SuppressionState::Active {
            return Err(CaseError::NotActive(id, s.state.as_str()).into());
        }
        let at = rows::now_text();
        let lifted = SuppressionState::Lifted;
        if !set_state::<DB>(&mut tx, id, SuppressionState::Active, lifted, actor, &at).await? {
            return Err(CaseError::NotActive(id, "lifted").into());
        }
        let sealed = audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            "suppression.lift",
            &format!("suppression:{id}"),
            Some(state_json(&s, SuppressionState::Active)),
            Some(state_json(&s, SuppressionState::Lifted)),
        )
        .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(Suppression {
            state: SuppressionState::Lifted,
            decided_by: Some(actor.to_string()),
            decided_at: Some(at),
            ..s
        })
    }
}
