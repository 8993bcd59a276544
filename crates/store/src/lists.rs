//! The list area: watch lists and allow lists, their entries, and the entries in force
//! that scans give the rules. Who may change what: a supervisor creates lists, adds to
//! allow lists and removes entries; an analyst may also add to watch lists (raising
//! attention needs no second pair of eyes; passing over an account does). Every change
//! appends its audit entry under `list:NAME`.

use clearwatch_model::case::UserRole;
use clearwatch_model::lists::{
    EntryKind, EntryProblem, ListEntry, ListKind, ListValues, MAX_DESCRIPTION_CHARS, NewListEntry,
    WatchList, valid_list_name,
};

use crate::audit;
use crate::cases::CaseError;
use crate::data::Backend;
use crate::rows::{self, corrupt};
use crate::sql::{self, Dialect, get, query};
use crate::{ListStore, SqlStore, StoreError, workflow};

/// The most entries one list page returns (the newest).
pub const ENTRY_LIMIT: i64 = 1000;

const ENTRY_COLUMNS: &str =
    "id, list_name, kind, value, reason, expires_at, added_by, added_at, removed_by, removed_at";

fn entry<DB: Dialect>(r: &DB::Row) -> Result<ListEntry, StoreError> {
    let id: i64 = get::<DB, _>(r, 0)?;
    let kind: EntryKind = get::<DB, String>(r, 2)?
        .parse()
        .map_err(|e| corrupt(format!("list entry {id}: {e}")))?;
    Ok(ListEntry {
        id,
        list: get::<DB, _>(r, 1)?,
        kind,
        value: get::<DB, _>(r, 3)?,
        reason: get::<DB, _>(r, 4)?,
        expires_at: get::<DB, _>(r, 5)?,
        added_by: get::<DB, _>(r, 6)?,
        added_at: get::<DB, _>(r, 7)?,
        removed_by: get::<DB, _>(r, 8)?,
        removed_at: get::<DB, _>(r, 9)?,
    })
}

fn entry_json(e: &ListEntry) -> String {
    serde_json::json!({
        "kind": e.kind.as_str(),
        "value": e.value,
        "reason": e.reason,
        "expires_at": e.expires_at,
        "removed": e.removed_at.is_some(),
    })
    .to_string()
}

/// Refuses `actor` unless their role is in `allowed`.
async fn require_role<DB: Dialect>(
    c: &mut DB::Connection,
    actor: &str,
    allowed: &[UserRole],
    refusal: &'static str,
) -> Result<(), StoreError> {
    match workflow::user_role::<DB>(c, actor).await? {
        Some(r) if allowed.contains(&r) => Ok(()),
        _ => Err(CaseError::NotAllowed(refusal).into()),
    }
}

async fn list_in<DB: Dialect>(
    c: &mut DB::Connection,
    name: &str,
) -> Result<Option<WatchList>, StoreError> {
    let sql = format!("{LIST_SELECT} WHERE l.name = $2");
    let q = DB::bind(DB::bind(query(&sql), rows::now_ms()), name);
    let row = DB::fetch_optional(c, q).await?;
    row.map(|r| watch_list::<DB>(&r)).transpose()
}

/// A list with its entries in force at `$1`.
const LIST_SELECT: &str = "SELECT l.name, l.kind, l.description, l.created_by, l.created_at, \
     (SELECT COUNT(*) FROM list_entries e WHERE e.list_name = l.name \
      AND e.removed_at IS NULL AND e.expires_at > $1) FROM lists l";

fn watch_list<DB: Dialect>(r: &DB::Row) -> Result<WatchList, StoreError> {
    let name: String = get::<DB, _>(r, 0)?;
    let kind: ListKind = get::<DB, String>(r, 1)?
        .parse()
        .map_err(|e| corrupt(format!("list {name}: {e}")))?;
    Ok(WatchList {
        kind,
        description: get::<DB, _>(r, 2)?,
        created_by: get::<DB, _>(r, 3)?,
        created_at: get::<DB, _>(r, 4)?,
        active: get::<DB, i64>(r, 5)?.max(0) as u64,
        name,
    })
}

impl<DB: Backend> ListStore for SqlStore<DB> {
    async fn lists(&self) -> Result<Vec<WatchList>, StoreError> {
        let sql = format!("{LIST_SELECT} ORDER BY l.name");
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, DB::bind(query(&sql), rows::now_ms()))
            .await?
            .iter()
            .map(watch_list::<DB>)
            .collect()
    }

    async fn list(&self, name: &str) -> Result<Option<(WatchList, Vec<ListEntry>)>, StoreError> {
        let mut c = self.pool.acquire().await?;
        let Some(list) = list_in::<DB>(&mut c, name).await? else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM list_entries WHERE list_name = $1 ORDER BY id DESC LIMIT $2"
        );
        let q = DB::bind(DB::bind(query(&sql), name), ENTRY_LIMIT);
        let entries = DB::fetch_all(&mut c, q)
            .await?
            .iter()
            .map(entry::<DB>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((list, entries)))
    }

    async fn create_list(
        &self,
        name: &str,
        kind: ListKind,
        description: &str,
        actor: &str,
    ) -> Result<WatchList, StoreError> {
        if !valid_list_name(name) {
            return Err(CaseError::BadListEntry(EntryProblem::ListName).into());
        }
        if description.trim().chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(CaseError::BadListEntry(EntryProblem::LongDescription).into());
        }
        let mut tx = sql::begin(&self.pool).await?;
        require_role::<DB>(
            &mut tx,
            actor,
            &[UserRole::Supervisor],
            "only a supervisor may create a list",
        )
        .await?;
        let at = rows::now_text();
        // Two supervisors creating the same name at once: one insert, one refusal.
        let q = query(
            "INSERT INTO lists (name, kind, description, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        );
        let q = DB::bind(
            DB::bind(DB::bind(q, name), kind.as_str()),
            description.trim(),
        );
        if DB::execute(&mut tx, DB::bind(DB::bind(q, actor), at.as_str())).await? != 1 {
            return Err(CaseError::ListExists(name.to_string()).into());
        }
        let after = serde_json::json!({ "kind": kind.as_str(), "description": description.trim() });
        let sealed = audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            "list.create",
            &format!("list:{name}"),
            None,
            Some(after.to_string()),
        )
        .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(WatchList {
            name: name.to_string(),
            kind,
            description: description.trim().to_string(),
            created_by: actor.to_string(),
            created_at: at,
            active: 0,
        })
    }

    async fn add_list_entry(
        &self,
        list: &str,
        new: &NewListEntry,
        actor: &str,
    ) -> Result<ListEntry, StoreError> {
        new.check(rows::now_ms()).map_err(CaseError::BadListEntry)?;
        let mut tx = sql::begin(&self.pool).await?;
        let found = list_in::<DB>(&mut tx, list)
            .await?
            .ok_or_else(|| CaseError::NotFound(format!("list {list}")))?;
        match found.kind {
            ListKind::Allow => {
                require_role::<DB>(
                    &mut tx,
                    actor,
                    &[UserRole::Supervisor],
                    "only a supervisor may add to an allow list",
                )
                .await?
            }
            ListKind::Watch => {
                require_role::<DB>(
                    &mut tx,
                    actor,
                    &[UserRole::Supervisor, UserRole::Analyst],
                    "only an analyst or a supervisor may add to a watch list",
                )
                .await?
            }
        }
        let at = rows::now_text();
        let q = query(
            "INSERT INTO list_entries (list_name, kind, value, reason, expires_at, added_by, \
             added_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        );
        let q = DB::bind(
            DB::bind(DB::bind(q, list), new.kind.as_str()),
            new.value.trim(),
        );
        let q = DB::bind(DB::bind(q, new.reason.trim()), new.expires_at);
        let row = DB::fetch_optional(&mut tx, DB::bind(DB::bind(q, actor), at.as_str()))
            .await?
            .ok_or_else(|| StoreError::Corrupt("INSERT … RETURNING gave no row".into()))?;
        let written = ListEntry {
            id: get::<DB, _>(&row, 0)?,
            list: list.to_string(),
            kind: new.kind,
            value: new.value.trim().to_string(),
            reason: new.reason.trim().to_string(),
            expires_at: new.expires_at,
            added_by: actor.to_string(),
            added_at: at,
            removed_by: None,
            removed_at: None,
        };
        let sealed = audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            "list.add",
            &format!("list:{list}"),
            None,
            Some(entry_json(&written)),
        )
        .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(written)
    }

    async fn remove_list_entry(
        &self,
        list: &str,
        id: i64,
        actor: &str,
    ) -> Result<ListEntry, StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        require_role::<DB>(
            &mut tx,
            actor,
            &[UserRole::Supervisor],
            "only a supervisor may remove a list entry",
        )
        .await?;
        let sql =
            format!("SELECT {ENTRY_COLUMNS} FROM list_entries WHERE id = $1 AND list_name = $2");
        let old = DB::fetch_optional(&mut tx, DB::bind(DB::bind(query(&sql), id), list))
            .await?
            .map(|r| entry::<DB>(&r))
            .transpose()?
            .ok_or_else(|| CaseError::NotFound(format!("entry {id} of list {list}")))?;
        let at = rows::now_text();
        let q = query(
            "UPDATE list_entries SET removed_by = $1, removed_at = $2 \
             WHERE id = $3 AND removed_at IS NULL",
        );
        let q = DB::bind(DB::bind(DB::bind(q, actor), at.as_str()), id);
        if DB::execute(&mut tx, q).await? != 1 {
            return Err(CaseError::AlreadyRemoved(id).into());
        }
        let removed = ListEntry {
            removed_by: Some(actor.to_string()),
            removed_at: Some(at),
            ..old.clone()
        };
        let sealed = audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            "list.remove",
            &format!("list:{}", old.list),
            Some(entry_json(&old)),
            Some(entry_json(&removed)),
        )
        .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(removed)
    }

    async fn list_values(&self) -> Result<ListValues, StoreError> {
        let mut c = self.pool.acquire().await?;
        let q = query(
            "SELECT list_name, kind, value, expires_at FROM list_entries \
             WHERE removed_at IS NULL AND expires_at > $1",
        );
        let mut values = ListValues::default();
        for r in DB::fetch_all(&mut c, DB::bind(q, rows::now_ms())).await? {
            let list: String = get::<DB, _>(&r, 0)?;
            let kind: EntryKind = get::<DB, String>(&r, 1)?
                .parse()
                .map_err(|e| corrupt(format!("list {list}: {e}")))?;
            let value: String = get::<DB, _>(&r, 2)?;
            values.insert(&list, kind, &value, get::<DB, _>(&r, 3)?);
        }
        Ok(values)
    }
}
