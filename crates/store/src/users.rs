//! The user area: dashboard users (audited changes of role, time zone, the disabled flag
//! and availability) and their sessions.

use crate::audit;
use crate::cases::{CaseError, NewSession, SessionInfo, User, UserChange};
use crate::data::Backend;
use crate::rows::{self, USER_COLUMN_COUNT, USER_COLUMNS};
use crate::sql::{self, get, query};
use crate::{SqlStore, StoreError, UserStore};
use clearwatch_model::case::UserRole;

impl<DB: Backend> SqlStore<DB> {
    async fn user_in(c: &mut DB::Connection, name: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1");
        DB::fetch_optional(c, DB::bind(query(&sql), name))
            .await?
            .as_ref()
            .map(rows::user::<DB>)
            .transpose()
    }
}

impl<DB: Backend> UserStore for SqlStore<DB> {
    async fn add_user(
        &self,
        name: &str,
        role: UserRole,
        password_hash: &str,
        actor: &str,
    ) -> Result<User, StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        if Self::user_in(&mut tx, name).await?.is_some() {
            return Err(CaseError::UserExists(name.to_string()).into());
        }
        let at = rows::now_text();
        let mut q = query(
            "INSERT INTO users (name, role, password_hash, time_zone, created_at) \
             VALUES ($1, $2, $3, 'UTC', $4)",
        );
        for v in [name, role.as_str(), password_hash, &at] {
            q = DB::bind(q, v);
        }
        DB::execute(&mut tx, q).await?;
        let after = serde_json::json!({ "name": name, "role": role.as_str() }).to_string();
        let sealed = audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            "user.add",
            &format!("user:{name}"),
            None,
            Some(after),
        )
        .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(User {
            name: name.to_string(),
            role,
            password_hash: password_hash.to_string(),
            time_zone: "UTC".into(),
            created_at: at,
            disabled: false,
            must_change_password: false,
            unavailable_until: None,
        })
    }

    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let mut c = self.pool.acquire().await?;
        Self::user_in(&mut c, name).await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.name");
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, query(&sql))
            .await?
            .iter()
            .map(rows::user::<DB>)
            .collect()
    }

    async fn update_user(
        &self,
        name: &str,
        change: &UserChange,
        actor: &str,
    ) -> Result<User, StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1{}",
            DB::FOR_UPDATE
        );
        let old = DB::fetch_optional(&mut tx, DB::bind(query(&sql), name))
            .await?
            .as_ref()
            .map(rows::user::<DB>)
            .transpose()?
            .ok_or_else(|| CaseError::NotFound(format!("user {name}")))?;
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
        if let Some(u) = change
            .unavailable_until
            .filter(|u| *u != old.unavailable_until)
        {
            before.insert("unavailable_until".into(), old.unavailable_until.into());
            after.insert("unavailable_until".into(), u.into());
            new.unavailable_until = u;
            actions.push("availability");
        }
        if actions.is_empty() {
            return Ok(old);
        }
        let q = query(
            "UPDATE users SET role = $1, time_zone = $2, disabled = $3, unavailable_until = $4 \
             WHERE name = $5",
        );
        let q = DB::bind(DB::bind(q, new.role.as_str()), new.time_zone.as_str());
        let q = DB::bind(DB::bind(q, i32::from(new.disabled)), new.unavailable_until);
        let q = DB::bind(q, name);
        DB::execute(&mut tx, q).await?;
        if new.disabled {
            let q = DB::bind(query("DELETE FROM sessions WHERE user_name = $1"), name);
            DB::execute(&mut tx, q).await?;
        }
        let sealed = audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            &format!("user.{}", actions.join("+")),
            &format!("user:{name}"),
            Some(serde_json::Value::Object(before).to_string()),
            Some(serde_json::Value::Object(after).to_string()),
        )
        .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(new)
    }

    async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        must_change: bool,
        actor: &str,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        let q =
            query("UPDATE users SET password_hash = $1, must_change_password = $2 WHERE name = $3");
        let q = DB::bind(
            DB::bind(DB::bind(q, password_hash), i32::from(must_change)),
            name,
        );
        if DB::execute(&mut tx, q).await? == 0 {
            return Err(CaseError::NotFound(format!("user {name}")).into());
        }
        let q = query("DELETE FROM sessions WHERE user_name = $1 AND id <> $2");
        let q = DB::bind(DB::bind(q, name), keep_session.unwrap_or(""));
        DB::execute(&mut tx, q).await?;
        let action = if must_change {
            "user.password_reset"
        } else {
            "user.password"
        };
        let entity = format!("user:{name}");
        let sealed =
            audit::append::<DB>(&mut tx, self.seal.key(), actor, action, &entity, None, None)
                .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(())
    }

    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let mut q = query(
            "INSERT INTO sessions (id, user_name, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        );
        for v in [s.id.as_str(), &s.user_name, &s.csrf, &rows::now_text()] {
            q = DB::bind(q, v.to_string());
        }
        let mut c = self.pool.acquire().await?;
        DB::execute(&mut c, DB::bind(q, s.expires_at)).await?;
        Ok(())
    }

    async fn session(&self, id: &str, now_ms: i64) -> Result<Option<SessionInfo>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.csrf, s.expires_at FROM sessions s \
             JOIN users u ON u.name = s.user_name \
             WHERE s.id = $1 AND s.expires_at > $2 AND u.disabled = 0"
        );
        let mut c = self.pool.acquire().await?;
        let row = DB::fetch_optional(&mut c, DB::bind(DB::bind(query(&sql), id), now_ms)).await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SessionInfo {
            user: rows::user::<DB>(&r)?,
            csrf: get::<DB, _>(&r, USER_COLUMN_COUNT)?,
            expires_at: get::<DB, _>(&r, USER_COLUMN_COUNT + 1)?,
        }))
    }

    async fn delete_session(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        let q = query("DELETE FROM sessions WHERE id = $1 OR expires_at <= $2");
        let mut c = self.pool.acquire().await?;
        DB::execute(&mut c, DB::bind(DB::bind(q, id), now_ms)).await?;
        Ok(())
    }
}
