//! The case area: status and assignment changes guarded by the alert's version, notes,
//! and the maker-checker approvals of escalations and dismissals. Every change appends its
//! audit entry in the same transaction; on PostgreSQL the alert row is locked first. A
//! bulk change is one transaction: all of its changes and entries, or none. A dismissal
//! request may carry a suppression ([`crate::suppressions`]), decided with it.

use crate::audit;
use crate::cases::{Approval, CaseError, CaseUpdate, Note};
use crate::data::Backend;
use crate::rows::{self, APPROVAL_COLUMNS, NOTE_COLUMNS};
use crate::sql::{self, Dialect, get, query};
use crate::{AlertStore, CaseStore, SqlStore, StoreError, suppressions};
use clearwatch_model::StoredAlert;
use clearwatch_model::audit::AuditKey;
use clearwatch_model::case::{AuditEntry, Status, UserRole};
use clearwatch_model::suppression::NewSuppression;

/// The alert's `(status, assignee, version)`, locked for the transaction where the
/// backend locks rows.
async fn case_state<DB: Dialect>(
    c: &mut DB::Connection,
    alert_id: &str,
) -> Result<(Status, Option<String>, i64), StoreError> {
    let sql = format!(
        "SELECT status, assignee, version FROM alerts WHERE id = $1{}",
        DB::FOR_UPDATE
    );
    let row = DB::fetch_optional(c, DB::bind(query(&sql), alert_id))
        .await?
        .ok_or_else(|| CaseError::NotFound(format!("alert {alert_id}")))?;
    let status = get::<DB, String>(&row, 0)?
        .parse::<Status>()
        .map_err(StoreError::Corrupt)?;
    Ok((status, get::<DB, _>(&row, 1)?, get::<DB, _>(&row, 2)?))
}

/// Refuses `actor` unless they are a supervisor, as stored now.
pub(crate) async fn require_supervisor<DB: Dialect>(
    c: &mut DB::Connection,
    actor: &str,
) -> Result<(), StoreError> {
    if user_role::<DB>(c, actor).await? != Some(UserRole::Supervisor) {
        return Err(CaseError::NotSupervisor.into());
    }
    Ok(())
}

/// The role of user `actor`, if there is such a user.
pub(crate) async fn user_role<DB: Dialect>(
    c: &mut DB::Connection,
    actor: &str,
) -> Result<Option<UserRole>, StoreError> {
    let row = DB::fetch_optional(
        c,
        DB::bind(query("SELECT role FROM users WHERE name = $1"), actor),
    )
    .await?;
    let role = row.map(|r| get::<DB, String>(&r, 0)).transpose()?;
    Ok(role.and_then(|r| r.parse().ok()))
}

fn check_version(alert_id: &str, expected: i64, found: i64) -> Result<(), StoreError> {
    if expected != found {
        return Err(CaseError::Conflict {
            alert_id: alert_id.to_string(),
            expected,
            found,
        }
        .into());
    }
    Ok(())
}

async fn write_case<DB: Dialect>(
    c: &mut DB::Connection,
    alert_id: &str,
    version: i64,
    status: Status,
    assignee: Option<&str>,
) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE alerts SET status = $1, assignee = $2, version = version + 1, updated_at = {} \
         WHERE id = $4 AND version = $5",
        DB::ts_param(3)
    );
    let q = DB::bind(DB::bind(query(&sql), status.as_str()), assignee);
    let q = DB::bind(DB::bind(q, rows::now_text()), alert_id);
    if DB::execute(c, DB::bind(q, version)).await? != 1 {
        return Err(CaseError::Conflict {
            alert_id: alert_id.to_string(),
            expected: version,
            found: -1,
        }
        .into());
    }
    Ok(())
}

fn case_json(status: Status, assignee: Option<&str>, version: i64) -> String {
    serde_json::json!({ "status": status.as_str(), "assignee": assignee, "version": version })
        .to_string()
}

/// Applies one status/assignee change inside the transaction `c`, appending its audit
/// entry; `None` when it changes nothing.
async fn apply_update<DB: Dialect>(
    c: &mut DB::Connection,
    key: &AuditKey,
    u: &CaseUpdate,
) -> Result<Option<AuditEntry>, StoreError> {
    let (status, assignee, version) = case_state::<DB>(c, &u.alert_id).await?;
    check_version(&u.alert_id, u.expected_version, version)?;
    let new_status = match u.status {
        Some(to) if to != status => {
            if !status.can_move_to(to) {
                return Err(CaseError::BadTransition { from: status, to }.into());
            }
            if to.needs_approval() {
                return Err(CaseError::NeedsApproval(to).into());
            }
            to
        }
        _ => status,
    };
    let new_assignee = match &u.assignee {
        Some(a) => a.clone(),
        None => assignee.clone(),
    };
    if new_status == status && new_assignee == assignee {
        return Ok(None);
    }
    write_case::<DB>(c, &u.alert_id, version, new_status, new_assignee.as_deref()).await?;
    let action = if new_status != status {
        "case.status"
    } else {
        "case.assign"
    };
    let e = audit::append::<DB>(
        c,
        key,
        &u.actor,
        action,
        &format!("alert:{}", u.alert_id),
        Some(case_json(status, assignee.as_deref(), version)),
        Some(case_json(new_status, new_assignee.as_deref(), version + 1)),
    )
    .await?;
    Ok(Some(e))
}

impl<DB: Backend> CaseStore for SqlStore<DB> {
    async fn update_case(&self, u: &CaseUpdate) -> Result<StoredAlert, StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        if let Some(sealed) = apply_update::<DB>(&mut tx, self.seal.key(), u).await? {
            tx.commit().await?;
            self.sealed(&sealed)?;
        }
        self.alert(&u.alert_id)
            .await?
            .ok_or_else(|| CaseError::NotFound(format!("alert {}", u.alert_id)).into())
    }

    async fn bulk_update(&self, updates: &[CaseUpdate]) -> Result<u64, StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        let mut last = None;
        let mut changed = 0;
        for u in updates {
            let applied = apply_update::<DB>(&mut tx, self.seal.key(), u)
                .await
                .map_err(|e| match e {
                    StoreError::Case(c) => CaseError::Bulk {
                        alert_id: u.alert_id.clone(),
                        source: Box::new(c),
                    }
                    .into(),
                    other => other,
                })?;
            if let Some(e) = applied {
                last = Some(e);
                changed += 1;
            }
        }
        tx.commit().await?;
        if let Some(e) = &last {
            self.sealed(e)?;
        }
        Ok(changed)
    }

    async fn add_note(&self, alert_id: &str, author: &str, body: &str) -> Result<Note, StoreError> {
        if body.trim().is_empty() {
            return Err(CaseError::EmptyNote.into());
        }
        let mut tx = sql::begin(&self.pool).await?;
        case_state::<DB>(&mut tx, alert_id).await?;
        let at = rows::now_text();
        let mut q = query(
            "INSERT INTO notes (alert_id, author, body, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        );
        for v in [alert_id, author, body, &at] {
            q = DB::bind(q, v);
        }
        let row = DB::fetch_optional(&mut tx, q)
            .await?
            .ok_or_else(|| StoreError::Corrupt("INSERT … RETURNING gave no row".into()))?;
        let id: i64 = get::<DB, _>(&row, 0)?;
        let after = serde_json::json!({ "note": id, "body": body }).to_string();
        let sealed = audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            author,
            "case.note",
            &format!("alert:{alert_id}"),
            None,
            Some(after),
        )
        .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(Note {
            id,
            alert_id: alert_id.to_string(),
            author: author.to_string(),
            body: body.to_string(),
            created_at: at,
        })
    }

    async fn notes(&self, alert_id: &str) -> Result<Vec<Note>, StoreError> {
        let sql = format!("SELECT {NOTE_COLUMNS} FROM notes WHERE alert_id = $1 ORDER BY id");
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, DB::bind(query(&sql), alert_id))
            .await?
            .iter()
            .map(rows::note::<DB>)
            .collect()
    }

    async fn request_approval(
        &self,
        alert_id: &str,
        expected_version: i64,
        target: Status,
        reason: Option<&str>,
        actor: &str,
        suppress: Option<&NewSuppression>,
    ) -> Result<Approval, StoreError> {
        if !target.needs_approval() {
            return Err(CaseError::NoApprovalNeeded(target).into());
        }
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if target == Status::Dismissed && reason.is_none() {
            return Err(CaseError::ReasonRequired.into());
        }
        if let Some(sup) = suppress {
            if target != Status::Dismissed {
                return Err(CaseError::SuppressionNeedsDismissal.into());
            }
            sup.check(rows::now_ms())
                .map_err(CaseError::BadSuppression)?;
        }
        let mut tx = sql::begin(&self.pool).await?;
        let (status, assignee, version) = case_state::<DB>(&mut tx, alert_id).await?;
        check_version(alert_id, expected_version, version)?;
        if !status.can_move_to(target) {
            return Err(CaseError::BadTransition {
                from: status,
                to: target,
            }
            .into());
        }
        let pending = DB::fetch_optional(
            &mut tx,
            DB::bind(
                query("SELECT id FROM approvals WHERE alert_id = $1 AND decided_at IS NULL"),
                alert_id,
            ),
        )
        .await?;
        if pending.is_some() {
            return Err(CaseError::AlreadyPending(alert_id.to_string()).into());
        }
        write_case::<DB>(&mut tx, alert_id, version, status, assignee.as_deref()).await?;
        let at = rows::now_text();
        let q = query(
            "INSERT INTO approvals (alert_id, target, reason, requested_by, requested_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        );
        let q = DB::bind(DB::bind(DB::bind(q, alert_id), target.as_str()), reason);
        let q = DB::bind(DB::bind(q, actor), at.as_str());
        let row = DB::fetch_optional(&mut tx, q)
            .await?
            .ok_or_else(|| StoreError::Corrupt("INSERT … RETURNING gave no row".into()))?;
        let id: i64 = get::<DB, _>(&row, 0)?;
        let after =
            serde_json::json!({ "request": id, "target": target.as_str(), "reason": reason })
                .to_string();
        let mut sealed = audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            "case.request",
            &format!("alert:{alert_id}"),
            Some(case_json(status, assignee.as_deref(), version)),
            Some(after),
        )
        .await?;
        if let (Some(sup), Some(reason)) = (suppress, reason) {
            sealed = suppressions::insert::<DB>(
                &mut tx,
                self.seal.key(),
                alert_id,
                id,
                sup,
                reason,
                actor,
                &at,
            )
            .await?;
        }
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(Approval {
            id,
            alert_id: alert_id.to_string(),
            target: target.as_str().to_string(),
            reason: reason.map(String::from),
            requested_by: actor.to_string(),
            requested_at: at,
            decided_by: None,
            decided_at: None,
            approved: None,
        })
    }

    async fn decide_approval(
        &self,
        approval_id: i64,
        approve: bool,
        actor: &str,
    ) -> Result<Approval, StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        require_supervisor::<DB>(&mut tx, actor).await?;
        let sql = format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1{}",
            DB::FOR_UPDATE
        );
        let mut a = DB::fetch_optional(&mut tx, DB::bind(query(&sql), approval_id))
            .await?
            .as_ref()
            .map(rows::approval::<DB>)
            .transpose()?
            .ok_or_else(|| CaseError::NotFound(format!("request {approval_id}")))?;
        if a.decided_at.is_some() {
            return Err(CaseError::AlreadyDecided(approval_id).into());
        }
        if a.requested_by == actor {
            return Err(CaseError::SelfApproval.into());
        }
        let target = a.target.parse::<Status>().map_err(StoreError::Corrupt)?;
        let (status, assignee, version) = case_state::<DB>(&mut tx, &a.alert_id).await?;
        let before = case_json(status, assignee.as_deref(), version);
        let after = if approve {
            if !status.can_move_to(target) {
                return Err(CaseError::BadTransition {
                    from: status,
                    to: target,
                }
                .into());
            }
            write_case::<DB>(&mut tx, &a.alert_id, version, target, assignee.as_deref()).await?;
            case_json(target, assignee.as_deref(), version + 1)
        } else {
            before.clone()
        };
        let at = rows::now_text();
        let q = query(
            "UPDATE approvals SET decided_by = $1, decided_at = $2, approved = $3 WHERE id = $4",
        );
        let q = DB::bind(DB::bind(q, actor), at.as_str());
        DB::execute(&mut tx, DB::bind(DB::bind(q, approve), approval_id)).await?;
        suppressions::decide::<DB>(&mut tx, self.seal.key(), approval_id, approve, actor, &at)
            .await?;
        let sealed = audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            if approve {
                "case.approve"
            } else {
                "case.reject"
            },
            &format!("alert:{}", a.alert_id),
            Some(before),
            Some(after),
        )
        .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        a.decided_by = Some(actor.to_string());
        a.decided_at = Some(at);
        a.approved = Some(approve);
        Ok(a)
    }

    async fn approvals(
        &self,
        alert_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<Approval>, StoreError> {
        let sql = format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals \
             WHERE ($1 IS NULL OR alert_id = $1) AND ($2 = 0 OR decided_at IS NULL) \
             ORDER BY id DESC LIMIT 500"
        );
        let q = DB::bind(DB::bind(query(&sql), alert_id), i64::from(pending_only));
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, q)
            .await?
            .iter()
            .map(rows::approval::<DB>)
            .collect()
    }
}
