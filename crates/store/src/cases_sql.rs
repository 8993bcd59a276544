//! The statements behind case work (users, sessions, workflow, notes, approvals, rule
//! publications, audit log), written once and expanded per backend by `case_sql!`:
//! SQLite serializes writers with `BEGIN IMMEDIATE`; PostgreSQL locks the alert row
//! (`FOR UPDATE`) and takes a transaction-level advisory lock before appending to the
//! audit chain, so the chain stays linear under concurrent writers.

macro_rules! case_sql {
    ($db:ty, $begin:literal, $audit_lock:literal, $for_update:literal, $ts:literal, $created_text:literal, $ilike:literal, $int8:literal) => {
        use sqlx::{Pool, QueryBuilder, Row, Transaction as DbTx};

        use clearwatch_model::{Account, AccountKind, Currency, Role, Transaction, TxType};
        use crate::StoreError;
        use crate::cases::{
            Approval, AuditEntry, CaseError, CaseUpdate, GENESIS_HASH, NewSession, Note,
            RuleHits, SessionInfo, Status, StoredRuleVersion, User, UserChange, UserRole, audit_hash,
        };
        use crate::common;
        use crate::AlertFilter;

        type Db = $db;

        fn now() -> String {
            common::rfc3339(common::now())
        }

        fn corrupt(what: String) -> StoreError {
            StoreError::Corrupt(what)
        }

        async fn begin(pool: &Pool<Db>) -> Result<DbTx<'static, Db>, StoreError> {
            Ok(match $begin {
                "" => pool.begin().await?,
                stmt => pool.begin_with(stmt).await?,
            })
        }

        /// Appends one entry to the audit chain inside `tx`.
        pub async fn append_audit(
            tx: &mut DbTx<'static, Db>,
            actor: &str,
            action: &str,
            entity: &str,
            before: Option<String>,
            after: Option<String>,
        ) -> Result<AuditEntry, StoreError> {
            if !$audit_lock.is_empty() {
                sqlx::query($audit_lock).execute(&mut **tx).await?;
            }
            let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut **tx)
                .await?;
            let (seq, prev_hash) = match head {
                Some(r) => (r.get::<i64, _>(0) + 1, r.get::<String, _>(1)),
                None => (1, GENESIS_HASH.to_string()),
            };
            let at = now();
            let hash = audit_hash(
                &prev_hash,
                seq,
                &at,
                actor,
                action,
                entity,
                before.as_deref(),
                after.as_deref(),
            );
            sqlx::query(
                "INSERT INTO audit_log (seq, at, actor, action, entity, before, after, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(seq)
            .bind(&at)
            .bind(actor)
            .bind(action)
            .bind(entity)
            .bind(&before)
            .bind(&after)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut **tx)
            .await?;
            Ok(AuditEntry {
                seq,
                at,
                actor: actor.to_string(),
                action: action.to_string(),
                entity: entity.to_string(),
                before,
                after,
                prev_hash,
                hash,
            })
        }

        pub async fn audit(
            pool: &Pool<Db>,
            actor: &str,
            action: &str,
            entity: &str,
            before: Option<String>,
            after: Option<String>,
        ) -> Result<AuditEntry, StoreError> {
            let mut tx = begin(pool).await?;
            let e = append_audit(&mut tx, actor, action, entity, before, after).await?;
            tx.commit().await?;
            Ok(e)
        }

        fn audit_row(r: &<Db as sqlx::Database>::Row) -> AuditEntry {
            AuditEntry {
                seq: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                entity: r.get(4),
                before: r.get(5),
                after: r.get(6),
                prev_hash: r.get(7),
                hash: r.get(8),
            }
        }

        const AUDIT_COLUMNS: &str =
            "SELECT seq, at, actor, action, entity, before, after, prev_hash, hash FROM audit_log";

        /// Entries newest first, optionally of one entity.
        pub async fn audit_log(
            pool: &Pool<Db>,
            entity: Option<&str>,
            limit: u64,
            offset: u64,
        ) -> Result<Vec<AuditEntry>, StoreError> {
            let sql = format!(
                "{AUDIT_COLUMNS} WHERE ($1 IS NULL OR entity = $1) ORDER BY seq DESC LIMIT $2 OFFSET $3"
            );
            Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(entity)
                .bind(common::sql_count(limit))
                .bind(common::sql_count(offset))
                .fetch_all(pool)
                .await?
                .iter()
                .map(audit_row)
                .collect())
        }

        /// Every entry in chain order.
        pub async fn audit_chain(pool: &Pool<Db>) -> Result<Vec<AuditEntry>, StoreError> {
            let sql = format!("{AUDIT_COLUMNS} ORDER BY seq");
            Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?
                .iter()
                .map(audit_row)
                .collect())
        }

        fn user_row(r: &<Db as sqlx::Database>::Row) -> Result<User, StoreError> {
            Ok(User {
                name: r.get(0),
                role: r
                    .get::<String, _>(1)
                    .parse::<UserRole>()
                    .map_err(corrupt)?,
                password_hash: r.get(2),
                time_zone: r.get(3),
                created_at: r.get(4),
                disabled: r.get::<i32, _>(5) != 0,
            })
        }

        pub async fn add_user(
            pool: &Pool<Db>,
            name: &str,
            role: UserRole,
            password_hash: &str,
            actor: &str,
        ) -> Result<User, StoreError> {
            let mut tx = begin(pool).await?;
            let exists: Option<String> = sqlx::query_scalar("SELECT name FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                return Err(CaseError::UserExists(name.to_string()).into());
            }
            let at = now();
            sqlx::query(
                "INSERT INTO users (name, role, password_hash, time_zone, created_at) VALUES ($1, $2, $3, 'UTC', $4)",
            )
            .bind(name)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
            let after = serde_json::json!({ "name": name, "role": role.as_str() }).to_string();
            append_audit(&mut tx, actor, "user.add", &format!("user:{name}"), None, Some(after))
                .await?;
            tx.commit().await?;
            Ok(User {
                name: name.to_string(),
                role,
                password_hash: password_hash.to_string(),
                time_zone: "UTC".into(),
                created_at: at,
                disabled: false,
            })
        }

        pub async fn user(pool: &Pool<Db>, name: &str) -> Result<Option<User>, StoreError> {
            sqlx::query(
                "SELECT name, role, password_hash, time_zone, created_at, disabled FROM users WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(user_row)
            .transpose()
        }

        pub async fn users(pool: &Pool<Db>) -> Result<Vec<User>, StoreError> {
            sqlx::query("SELECT name, role, password_hash, time_zone, created_at, disabled FROM users ORDER BY name")
                .fetch_all(pool)
                .await?
                .iter()
                .map(user_row)
                .collect()
        }

        /// Changes a user's role, time zone or disabled flag (whichever is given), audited
        /// with the values before and after; disabling also ends the user's sessions.
        pub async fn update_user(
            pool: &Pool<Db>,
            name: &str,
            change: &UserChange,
            actor: &str,
        ) -> Result<User, StoreError> {
            let mut tx = begin(pool).await?;
            let row = sqlx::query(
                "SELECT name, role, password_hash, time_zone, created_at, disabled FROM users WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| CaseError::NotFound(format!("user {name}")))?;
            let old = user_row(&row)?;
            let mut new = old.clone();
            let mut before = serde_json::Map::new();
            let mut after = serde_json::Map::new();
            let mut actions = Vec::new();
            if let Some(role) = change.role.filter(|r| *r != old.role) {
                before.insert("role".into(), old.role.as_str().into());
                after.insert("role".into(), role.as_str().into());
                new.role = role;
                actions.push("role");
            }
            if let Some(tz) = change.time_zone.as_ref().filter(|t| **t != old.time_zone) {
                before.insert("time_zone".into(), old.time_zone.clone().into());
                after.insert("time_zone".into(), tz.clone().into());
                new.time_zone = tz.clone();
                actions.push("time_zone");
            }
            if let Some(d) = change.disabled.filter(|d| *d != old.disabled) {
                before.insert("disabled".into(), old.disabled.into());
                after.insert("disabled".into(), d.into());
                new.disabled = d;
                actions.push(if d { "disable" } else { "enable" });
            }
            if actions.is_empty() {
                return Ok(old);
            }
            sqlx::query("UPDATE users SET role = $1, time_zone = $2, disabled = $3 WHERE name = $4")
                .bind(new.role.as_str())
                .bind(&new.time_zone)
                .bind(i32::from(new.disabled))
                .bind(name)
                .execute(&mut *tx)
                .await?;
            if new.disabled {
                sqlx::query("DELETE FROM sessions WHERE user_name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
            }
            append_audit(
                &mut tx,
                actor,
                &format!("user.{}", actions.join("+")),
                &format!("user:{name}"),
                Some(serde_json::Value::Object(before).to_string()),
                Some(serde_json::Value::Object(after).to_string()),
            )
            .await?;
            tx.commit().await?;
            Ok(new)
        }

        /// A rule version from `rule_id, version, title, text, created_at, published_by`.
        fn rule_version_row(r: &<Db as sqlx::Database>::Row) -> StoredRuleVersion {
            StoredRuleVersion {
                rule_id: r.get(0),
                version: r.get(1),
                title: r.get(2),
                text: r.get(3),
                created_at: r.get(4),
                published_by: r.get(5),
            }
        }

        /// The newest published version of every rule that has one (by publication order).
        pub async fn published_rules(pool: &Pool<Db>) -> Result<Vec<StoredRuleVersion>, StoreError> {
            Ok(sqlx::query(
                "SELECT v.rule_id, v.version, v.title, v.text, p.published_at, p.published_by \
                 FROM rule_publications p JOIN rule_versions v ON v.rule_id = p.rule_id AND v.version = p.version \
                 WHERE p.id = (SELECT MAX(p2.id) FROM rule_publications p2 WHERE p2.rule_id = p.rule_id) \
                 ORDER BY v.rule_id",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(rule_version_row)
            .collect())
        }

        pub async fn create_session(pool: &Pool<Db>, s: &NewSession) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO sessions (id, user_name, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&s.id)
            .bind(&s.user_name)
            .bind(&s.csrf)
            .bind(now())
            .bind(s.expires_at)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub async fn session(
            pool: &Pool<Db>,
            id: &str,
            now_ms: i64,
        ) -> Result<Option<SessionInfo>, StoreError> {
            let row = sqlx::query(
                "SELECT u.name, u.role, u.password_hash, u.time_zone, u.created_at, u.disabled, s.csrf, s.expires_at \
                 FROM sessions s JOIN users u ON u.name = s.user_name \
                 WHERE s.id = $1 AND s.expires_at > $2 AND u.disabled = 0",
            )
            .bind(id)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?;
            let Some(r) = row else { return Ok(None) };
            Ok(Some(SessionInfo {
                user: user_row(&r)?,
                csrf: r.get(6),
                expires_at: r.get(7),
            }))
        }

        pub async fn delete_session(pool: &Pool<Db>, id: &str, now_ms: i64) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM sessions WHERE id = $1 OR expires_at <= $2")
                .bind(id)
                .bind(now_ms)
                .execute(pool)
                .await?;
            Ok(())
        }

        /// The alert's `(status, assignee, version)`, locked for this transaction on PostgreSQL.
        async fn case_state(
            tx: &mut DbTx<'static, Db>,
            alert_id: &str,
        ) -> Result<(Status, Option<String>, i64), StoreError> {
            let row = sqlx::query(concat!(
                "SELECT status, assignee, version FROM alerts WHERE id = $1",
                $for_update
            ))
            .bind(alert_id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| CaseError::NotFound(format!("alert {alert_id}")))?;
            let status = row
                .get::<String, _>(0)
                .parse::<Status>()
                .map_err(corrupt)?;
            Ok((status, row.get(1), row.get(2)))
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

        async fn write_case(
            tx: &mut DbTx<'static, Db>,
            alert_id: &str,
            version: i64,
            status: Status,
            assignee: Option<&str>,
        ) -> Result<(), StoreError> {
            let done = sqlx::query(concat!(
                "UPDATE alerts SET status = $1, assignee = $2, version = version + 1, updated_at = $3",
                $ts,
                " WHERE id = $4 AND version = $5"
            ))
            .bind(status.as_str())
            .bind(assignee)
            .bind(now())
            .bind(alert_id)
            .bind(version)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() != 1 {
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

        /// Changes status and/or assignee if the alert is still at the expected version.
        pub async fn update_case(pool: &Pool<Db>, u: &CaseUpdate) -> Result<(), StoreError> {
            let mut tx = begin(pool).await?;
            let (status, assignee, version) = case_state(&mut tx, &u.alert_id).await?;
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
                return Ok(());
            }
            write_case(&mut tx, &u.alert_id, version, new_status, new_assignee.as_deref()).await?;
            let action = if new_status != status { "case.status" } else { "case.assign" };
            append_audit(
                &mut tx,
                &u.actor,
                action,
                &format!("alert:{}", u.alert_id),
                Some(case_json(status, assignee.as_deref(), version)),
                Some(case_json(new_status, new_assignee.as_deref(), version + 1)),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        }

        /// Appends the status, severity and rule conditions of `f`: columns of both
        /// `alerts` and `alert_counts`.
        fn push_key_columns(qb: &mut QueryBuilder<Db>, f: &AlertFilter) {
            if let Some(status) = f.status {
                qb.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(min) = f.min_severity {
                qb.push(" AND severity IN (");
                let mut sep = qb.separated(", ");
                for s in common::severities_at_least(min) {
                    sep.push_bind(s);
                }
                qb.push(")");
            }
            if let Some(rule) = &f.rule_id {
                qb.push(" AND rule_id = ").push_bind(rule.clone());
            }
        }

        /// Appends the `WHERE` conditions of `f` (after a `WHERE TRUE`/`WHERE 1 = 1`).
        pub fn push_filter(qb: &mut QueryBuilder<Db>, f: &AlertFilter) {
            push_key_columns(qb, f);
            if let Some(subject) = &f.subject {
                qb.push(concat!(
                    " AND subject_id IN (SELECT subject_id FROM alert_subjects WHERE subject_id ",
                    $ilike,
                    " "
                ))
                .push_bind(common::contains_pattern(subject))
                .push(" ESCAPE '\\')");
            }
            match f.assignee.as_deref() {
                None => {}
                Some("") => {
                    qb.push(" AND assignee IS NULL");
                }
                Some(a) => {
                    qb.push(" AND assignee = ").push_bind(a.to_string());
                }
            }
            if let Some(from) = f.from {
                qb.push(" AND window_from >= ").push_bind(from);
            }
            if let Some(until) = f.until {
                qb.push(" AND window_from < ").push_bind(until);
            }
        }

        /// Whether `f` filters only on the columns `alert_counts` is keyed by.
        fn counted_by_key(f: &AlertFilter) -> bool {
            f.subject.is_none() && f.from.is_none() && f.until.is_none()
        }

        /// The `WHERE` conditions of `f` on `alert_counts` (see [`counted_by_key`]).
        fn push_key_filter(qb: &mut QueryBuilder<Db>, f: &AlertFilter) {
            push_key_columns(qb, f);
            if let Some(a) = &f.assignee {
                qb.push(" AND assignee = ").push_bind(a.clone());
            }
        }

        /// Alerts matching `f`, grouped by status.
        async fn counts_by_status(
            pool: &Pool<Db>,
            f: &AlertFilter,
        ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
            let mut qb = if counted_by_key(f) {
                let mut qb = QueryBuilder::<Db>::new(concat!(
                    "SELECT status, CAST(SUM(n) AS ",
                    $int8,
                    ") FROM alert_counts WHERE 1 = 1"
                ));
                push_key_filter(&mut qb, f);
                qb
            } else {
                let mut qb =
                    QueryBuilder::<Db>::new("SELECT status, COUNT(*) FROM alerts WHERE 1 = 1");
                push_filter(&mut qb, f);
                qb
            };
            qb.push(" GROUP BY status");
            let rows = qb.build().fetch_all(pool).await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        }

        pub async fn count_alerts(pool: &Pool<Db>, f: &AlertFilter) -> Result<u64, StoreError> {
            if counted_by_key(f) {
                let n: i64 = counts_by_status(pool, f).await?.values().sum();
                return Ok(n as u64);
            }
            let mut qb = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM alerts WHERE 1 = 1");
            push_filter(&mut qb, f);
            let n: i64 = qb.build_query_scalar().fetch_one(pool).await?;
            Ok(n as u64)
        }

        /// Alerts per status under `f` with its status condition left out.
        pub async fn status_counts(
            pool: &Pool<Db>,
            f: &AlertFilter,
        ) -> Result<Vec<(Status, u64)>, StoreError> {
            let f = AlertFilter {
                status: None,
                ..f.clone()
            };
            let got = counts_by_status(pool, &f).await?;
            Ok(Status::ALL
                .iter()
                .map(|s| (*s, got.get(s.as_str()).copied().unwrap_or(0) as u64))
                .collect())
        }

        fn note_row(r: &<Db as sqlx::Database>::Row) -> Note {
            Note {
                id: r.get(0),
                alert_id: r.get(1),
                author: r.get(2),
                body: r.get(3),
                created_at: r.get(4),
            }
        }

        pub async fn add_note(
            pool: &Pool<Db>,
            alert_id: &str,
            author: &str,
            body: &str,
        ) -> Result<Note, StoreError> {
            if body.trim().is_empty() {
                return Err(CaseError::EmptyNote.into());
            }
            let mut tx = begin(pool).await?;
            case_state(&mut tx, alert_id).await?;
            let at = now();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO notes (alert_id, author, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(alert_id)
            .bind(author)
            .bind(body)
            .bind(&at)
            .fetch_one(&mut *tx)
            .await?;
            let after = serde_json::json!({ "note": id, "body": body }).to_string();
            append_audit(&mut tx, author, "case.note", &format!("alert:{alert_id}"), None, Some(after))
                .await?;
            tx.commit().await?;
            Ok(Note {
                id,
                alert_id: alert_id.to_string(),
                author: author.to_string(),
                body: body.to_string(),
                created_at: at,
            })
        }

        pub async fn notes(pool: &Pool<Db>, alert_id: &str) -> Result<Vec<Note>, StoreError> {
            Ok(sqlx::query(
                "SELECT id, alert_id, author, body, created_at FROM notes WHERE alert_id = $1 ORDER BY id",
            )
            .bind(alert_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(note_row)
            .collect())
        }

        const APPROVAL_COLUMNS: &str = "SELECT id, alert_id, target, reason, requested_by, requested_at, \
             decided_by, decided_at, approved FROM approvals";

        fn approval_row(r: &<Db as sqlx::Database>::Row) -> Approval {
            Approval {
                id: r.get(0),
                alert_id: r.get(1),
                target: r.get(2),
                reason: r.get(3),
                requested_by: r.get(4),
                requested_at: r.get(5),
                decided_by: r.get(6),
                decided_at: r.get(7),
                approved: r.get(8),
            }
        }

        /// Asks for an escalation or dismissal; the case does not move until a supervisor
        /// other than `actor` approves. Bumps the alert's version.
        pub async fn request_approval(
            pool: &Pool<Db>,
            alert_id: &str,
            expected_version: i64,
            target: Status,
            reason: Option<&str>,
            actor: &str,
        ) -> Result<Approval, StoreError> {
            if !target.needs_approval() {
                return Err(CaseError::NoApprovalNeeded(target).into());
            }
            let reason = reason.map(str::trim).filter(|r| !r.is_empty());
            if target == Status::Dismissed && reason.is_none() {
                return Err(CaseError::ReasonRequired.into());
            }
            let mut tx = begin(pool).await?;
            let (status, assignee, version) = case_state(&mut tx, alert_id).await?;
            check_version(alert_id, expected_version, version)?;
            if !status.can_move_to(target) {
                return Err(CaseError::BadTransition { from: status, to: target }.into());
            }
            let pending: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM approvals WHERE alert_id = $1 AND decided_at IS NULL",
            )
            .bind(alert_id)
            .fetch_optional(&mut *tx)
            .await?;
            if pending.is_some() {
                return Err(CaseError::AlreadyPending(alert_id.to_string()).into());
            }
            write_case(&mut tx, alert_id, version, status, assignee.as_deref()).await?;
            let at = now();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO approvals (alert_id, target, reason, requested_by, requested_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(alert_id)
            .bind(target.as_str())
            .bind(reason)
            .bind(actor)
            .bind(&at)
            .fetch_one(&mut *tx)
            .await?;
            let after =
                serde_json::json!({ "request": id, "target": target.as_str(), "reason": reason })
                    .to_string();
            append_audit(
                &mut tx,
                actor,
                "case.request",
                &format!("alert:{alert_id}"),
                Some(case_json(status, assignee.as_deref(), version)),
                Some(after),
            )
            .await?;
            tx.commit().await?;
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

        /// A supervisor other than the requester approves (the case moves) or rejects.
        pub async fn decide_approval(
            pool: &Pool<Db>,
            approval_id: i64,
            approve: bool,
            actor: &str,
        ) -> Result<Approval, StoreError> {
            let mut tx = begin(pool).await?;
            let role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE name = $1")
                .bind(actor)
                .fetch_optional(&mut *tx)
                .await?;
            if role.as_deref() != Some(UserRole::Supervisor.as_str()) {
                return Err(CaseError::NotSupervisor.into());
            }
            let sql = format!("{APPROVAL_COLUMNS} WHERE id = $1{}", $for_update);
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(approval_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| CaseError::NotFound(format!("request {approval_id}")))?;
            let mut a = approval_row(&row);
            if a.decided_at.is_some() {
                return Err(CaseError::AlreadyDecided(approval_id).into());
            }
            if a.requested_by == actor {
                return Err(CaseError::SelfApproval.into());
            }
            let target = a.target.parse::<Status>().map_err(corrupt)?;
            let (status, assignee, version) = case_state(&mut tx, &a.alert_id).await?;
            let before = case_json(status, assignee.as_deref(), version);
            let after = if approve {
                if !status.can_move_to(target) {
                    return Err(CaseError::BadTransition { from: status, to: target }.into());
                }
                write_case(&mut tx, &a.alert_id, version, target, assignee.as_deref()).await?;
                case_json(target, assignee.as_deref(), version + 1)
            } else {
                before.clone()
            };
            let at = now();
            sqlx::query(
                "UPDATE approvals SET decided_by = $1, decided_at = $2, approved = $3 WHERE id = $4",
            )
            .bind(actor)
            .bind(&at)
            .bind(approve)
            .bind(approval_id)
            .execute(&mut *tx)
            .await?;
            append_audit(
                &mut tx,
                actor,
                if approve { "case.approve" } else { "case.reject" },
                &format!("alert:{}", a.alert_id),
                Some(before),
                Some(after),
            )
            .await?;
            tx.commit().await?;
            a.decided_by = Some(actor.to_string());
            a.decided_at = Some(at);
            a.approved = Some(approve);
            Ok(a)
        }

        pub async fn approvals(
            pool: &Pool<Db>,
            alert_id: Option<&str>,
            pending_only: bool,
        ) -> Result<Vec<Approval>, StoreError> {
            let sql = format!(
                "{APPROVAL_COLUMNS} WHERE ($1 IS NULL OR alert_id = $1) AND ($2 = 0 OR decided_at IS NULL) ORDER BY id DESC LIMIT 500"
            );
            Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(alert_id)
                .bind(i64::from(pending_only))
                .fetch_all(pool)
                .await?
                .iter()
                .map(approval_row)
                .collect())
        }

        pub async fn rule_hits(pool: &Pool<Db>) -> Result<Vec<RuleHits>, StoreError> {
            Ok(sqlx::query(
                concat!(
                    "SELECT rule_id, CAST(SUM(n) AS ", $int8, "), \
                     CAST(COALESCE(SUM(n) FILTER (WHERE status = 'reported'), 0) AS ", $int8, "), \
                     CAST(COALESCE(SUM(n) FILTER (WHERE status = 'dismissed'), 0) AS ", $int8, "), \
                     CAST(COALESCE(SUM(n) FILTER (WHERE status IN ('new', 'in_review', 'escalated')), 0) AS ", $int8, ") \
                     FROM alert_counts GROUP BY rule_id HAVING SUM(n) > 0 ORDER BY rule_id"
                ),
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| RuleHits {
                rule_id: r.get(0),
                alerts: r.get::<i64, _>(1) as u64,
                reported: r.get::<i64, _>(2) as u64,
                dismissed: r.get::<i64, _>(3) as u64,
                open: r.get::<i64, _>(4) as u64,
            })
            .collect())
        }

        pub async fn rule_versions(
            pool: &Pool<Db>,
            rule_id: &str,
        ) -> Result<Vec<StoredRuleVersion>, StoreError> {
            Ok(sqlx::query(concat!(
                "SELECT v.rule_id, v.version, v.title, v.text, ",
                $created_text,
                ", (SELECT p.published_by FROM rule_publications p WHERE p.rule_id = v.rule_id AND p.version = v.version ORDER BY p.id DESC LIMIT 1) \
                 FROM rule_versions v WHERE v.rule_id = $1 ORDER BY v.created_at DESC, v.version"
            ))
            .bind(rule_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(rule_version_row)
            .collect())
        }

        pub async fn publish_rule(
            pool: &Pool<Db>,
            rule_id: &str,
            version: &str,
            title: &str,
            text: &str,
            actor: &str,
        ) -> Result<(), StoreError> {
            let mut tx = begin(pool).await?;
            let at = now();
            sqlx::query(concat!(
                "INSERT INTO rule_versions (rule_id, version, title, text, created_at) VALUES ($1, $2, $3, $4, $5",
                $ts,
                ") ON CONFLICT (rule_id, version) DO NOTHING"
            ))
            .bind(rule_id)
            .bind(version)
            .bind(title)
            .bind(text)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO rule_publications (rule_id, version, published_by, published_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(rule_id)
            .bind(version)
            .bind(actor)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
            let after = serde_json::json!({ "version": version, "title": title }).to_string();
            append_audit(&mut tx, actor, "rule.publish", &format!("rule:{rule_id}"), None, Some(after))
                .await?;
            tx.commit().await?;
            Ok(())
        }

        pub async fn account(pool: &Pool<Db>, id: &str) -> Result<Option<Account>, StoreError> {
            let row = sqlx::query(
                "SELECT account_id, holder_id, holder_name, kind, role, licensed, institution, region \
                 FROM accounts WHERE account_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            let Some(r) = row else { return Ok(None) };
            let kind: Option<String> = r.get(3);
            Ok(Some(Account {
                account_id: r.get(0),
                holder_id: r.get(1),
                holder_name: r.get(2),
                kind: kind
                    .map(|k| k.parse::<AccountKind>().map_err(corrupt))
                    .transpose()?,
                role: r.get::<String, _>(4).parse::<Role>().map_err(corrupt)?,
                licensed: r.get(5),
                institution: r.get(6),
                region: r.get(7),
            }))
        }

        /// The account's transactions in and out, newest first.
        pub async fn account_transactions(
            pool: &Pool<Db>,
            id: &str,
            limit: u64,
        ) -> Result<Vec<Transaction>, StoreError> {
            sqlx::query(
                "SELECT tx_id, ts, from_account, to_account, amount, currency, type, merchant_id, channel, region, memo \
                 FROM transactions WHERE from_account = $1 OR to_account = $1 ORDER BY ts DESC, tx_id LIMIT $2",
            )
            .bind(id)
            .bind(common::sql_count(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                let currency: String = r.get(5);
                let tx_type: String = r.get(6);
                Ok(Transaction {
                    tx_id: r.get(0),
                    ts: r.get(1),
                    from: r.get(2),
                    to: r.get(3),
                    amount: r.get(4),
                    currency: Currency::from_code(&currency)
                        .ok_or_else(|| corrupt(format!("currency {currency:?}")))?,
                    tx_type: tx_type.parse::<TxType>().map_err(corrupt)?,
                    merchant_id: r.get(7),
                    channel: r.get(8),
                    region: r.get(9),
                    memo: r.get(10),
                })
            })
            .collect()
        }
    };
}

pub mod sqlite {
    //! Case statements for SQLite.
    case_sql!(
        sqlx::Sqlite,
        "BEGIN IMMEDIATE",
        "",
        "",
        "",
        "v.created_at",
        "LIKE",
        "INTEGER"
    );
}

pub mod postgres {
    //! Case statements for PostgreSQL.
    case_sql!(
        sqlx::Postgres,
        "",
        "SELECT pg_advisory_xact_lock(7461636865)",
        " FOR UPDATE",
        "::timestamptz",
        "to_char(v.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
        "ILIKE",
        "BIGINT"
    );
}

/// The case methods of `impl Store` for a backend whose statements are in `cases_sql::$m`
/// and whose struct has a `pool` field.
macro_rules! case_methods {
    ($m:ident) => {
        async fn add_user(
            &self,
            name: &str,
            role: $crate::cases::UserRole,
            password_hash: &str,
            actor: &str,
        ) -> Result<$crate::cases::User, StoreError> {
            super::cases_sql::$m::add_user(&self.pool, name, role, password_hash, actor).await
        }
        async fn user(&self, name: &str) -> Result<Option<$crate::cases::User>, StoreError> {
            super::cases_sql::$m::user(&self.pool, name).await
        }
        async fn users(&self) -> Result<Vec<$crate::cases::User>, StoreError> {
            super::cases_sql::$m::users(&self.pool).await
        }
        async fn update_user(
            &self,
            name: &str,
            change: &$crate::cases::UserChange,
            actor: &str,
        ) -> Result<$crate::cases::User, StoreError> {
            super::cases_sql::$m::update_user(&self.pool, name, change, actor).await
        }
        async fn published_rules(
            &self,
        ) -> Result<Vec<$crate::cases::StoredRuleVersion>, StoreError> {
            super::cases_sql::$m::published_rules(&self.pool).await
        }
        async fn create_session(&self, s: &$crate::cases::NewSession) -> Result<(), StoreError> {
            super::cases_sql::$m::create_session(&self.pool, s).await
        }
        async fn session(
            &self,
            id: &str,
            now_ms: i64,
        ) -> Result<Option<$crate::cases::SessionInfo>, StoreError> {
            super::cases_sql::$m::session(&self.pool, id, now_ms).await
        }
        async fn delete_session(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
            super::cases_sql::$m::delete_session(&self.pool, id, now_ms).await
        }
        async fn update_case(
            &self,
            u: &$crate::cases::CaseUpdate,
        ) -> Result<StoredAlert, StoreError> {
            super::cases_sql::$m::update_case(&self.pool, u).await?;
            self.alert(&u.alert_id).await?.ok_or_else(|| {
                $crate::cases::CaseError::NotFound(format!("alert {}", u.alert_id)).into()
            })
        }
        async fn add_note(
            &self,
            alert_id: &str,
            author: &str,
            body: &str,
        ) -> Result<$crate::cases::Note, StoreError> {
            super::cases_sql::$m::add_note(&self.pool, alert_id, author, body).await
        }
        async fn notes(&self, alert_id: &str) -> Result<Vec<$crate::cases::Note>, StoreError> {
            super::cases_sql::$m::notes(&self.pool, alert_id).await
        }
        async fn request_approval(
            &self,
            alert_id: &str,
            expected_version: i64,
            target: $crate::cases::Status,
            reason: Option<&str>,
            actor: &str,
        ) -> Result<$crate::cases::Approval, StoreError> {
            super::cases_sql::$m::request_approval(
                &self.pool,
                alert_id,
                expected_version,
                target,
                reason,
                actor,
            )
            .await
        }
        async fn decide_approval(
            &self,
            approval_id: i64,
            approve: bool,
            actor: &str,
        ) -> Result<$crate::cases::Approval, StoreError> {
            super::cases_sql::$m::decide_approval(&self.pool, approval_id, approve, actor).await
        }
        async fn approvals(
            &self,
            alert_id: Option<&str>,
            pending_only: bool,
        ) -> Result<Vec<$crate::cases::Approval>, StoreError> {
            super::cases_sql::$m::approvals(&self.pool, alert_id, pending_only).await
        }
        async fn count_alerts(&self, filter: &AlertFilter) -> Result<u64, StoreError> {
            super::cases_sql::$m::count_alerts(&self.pool, filter).await
        }
        async fn status_counts(
            &self,
            filter: &AlertFilter,
        ) -> Result<Vec<(clearwatch_model::case::Status, u64)>, StoreError> {
            super::cases_sql::$m::status_counts(&self.pool, filter).await
        }
        async fn rule_hits(&self) -> Result<Vec<$crate::cases::RuleHits>, StoreError> {
            super::cases_sql::$m::rule_hits(&self.pool).await
        }
        async fn rule_versions(
            &self,
            rule_id: &str,
        ) -> Result<Vec<$crate::cases::StoredRuleVersion>, StoreError> {
            super::cases_sql::$m::rule_versions(&self.pool, rule_id).await
        }
        async fn publish_rule(&self, rule: &RuleVersion, actor: &str) -> Result<(), StoreError> {
            super::cases_sql::$m::publish_rule(
                &self.pool,
                &rule.rule_id,
                &rule.version,
                &rule.title,
                &rule.text,
                actor,
            )
            .await
        }
        async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
            super::cases_sql::$m::account(&self.pool, id).await
        }
        async fn account_transactions(
            &self,
            id: &str,
            limit: u64,
        ) -> Result<Vec<Transaction>, StoreError> {
            super::cases_sql::$m::account_transactions(&self.pool, id, limit).await
        }
        async fn audit(
            &self,
            actor: &str,
            action: &str,
            entity: &str,
            before: Option<String>,
            after: Option<String>,
        ) -> Result<$crate::cases::AuditEntry, StoreError> {
            super::cases_sql::$m::audit(&self.pool, actor, action, entity, before, after).await
        }
        async fn audit_log(
            &self,
            entity: Option<&str>,
            limit: u64,
            offset: u64,
        ) -> Result<Vec<$crate::cases::AuditEntry>, StoreError> {
            super::cases_sql::$m::audit_log(&self.pool, entity, limit, offset).await
        }
        async fn audit_verify(&self) -> Result<$crate::cases::AuditCheck, StoreError> {
            Ok($crate::cases::verify_chain(
                super::cases_sql::$m::audit_chain(&self.pool).await?,
            ))
        }
    };
}
