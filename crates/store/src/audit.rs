//! The audit area: the append-only log whose entries are chained by a keyed hash
//! ([`clearwatch_model::audit::keyed_hash`], the key outside the database in
//! [`crate::seal`]). Every change of the other areas appends its entry inside its own
//! transaction with [`append`] and, once committed, signs the new head with
//! [`crate::seal::AuditSeal::seal`]. A log written before the keyed chain is re-keyed on
//! the first open that finds no signed head, if its unkeyed chain holds.

use crate::data::Backend;
use crate::records::AuditFilter;
use crate::rows::{self, AUDIT_COLUMNS};
use crate::sql::{self, Builder, Dialect, Value, get, query};
use std::path::{Path, PathBuf};

use crate::seal::{signed_json, write_atomically};
use crate::{AuditStore, SqlStore, StoreError};
use clearwatch_model::audit::{
    AuditKey, AuditReport, HeadState, SignedHead, keyed_hash, verify_log,
};
use clearwatch_model::case::{AuditCheck, AuditEntry, GENESIS_HASH, verify_unkeyed};

/// Appends one entry to the audit chain inside the transaction `c`, its hash keyed with
/// `key`; the caller seals the returned entry once the transaction is committed.
pub async fn append<DB: Dialect>(
    c: &mut DB::Connection,
    key: &AuditKey,
    actor: &str,
    action: &str,
    entity: &str,
    before: Option<String>,
    after: Option<String>,
) -> Result<AuditEntry, StoreError> {
    if let Some(lock) = DB::AUDIT_LOCK {
        DB::execute(c, query(lock)).await?;
    }
    let head = DB::fetch_optional(
        c,
        query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"),
    )
    .await?;
    let (seq, prev_hash) = match head {
        Some(r) => (get::<DB, i64>(&r, 0)? + 1, get::<DB, String>(&r, 1)?),
        None => (1, GENESIS_HASH.to_string()),
    };
    let mut entry = AuditEntry {
        seq,
        at: rows::now_text(),
        actor: actor.to_string(),
        action: action.to_string(),
        entity: entity.to_string(),
        before,
        after,
        prev_hash,
        hash: String::new(),
    };
    entry.hash = keyed_hash(key, &entry);
    let e = &entry;
    let sql = format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    let mut q = DB::bind(query(&sql), e.seq);
    for v in [&e.at, &e.actor, &e.action, &e.entity] {
        q = DB::bind(q, v.as_str());
    }
    q = DB::bind(DB::bind(q, e.before.as_deref()), e.after.as_deref());
    q = DB::bind(DB::bind(q, e.prev_hash.as_str()), e.hash.as_str());
    DB::execute(c, q).await?;
    Ok(entry)
}

async fn all_entries<DB: Dialect>(c: &mut DB::Connection) -> Result<Vec<AuditEntry>, StoreError> {
    let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq");
    DB::fetch_all(c, query(&sql))
        .await?
        .iter()
        .map(rows::audit_entry::<DB>)
        .collect()
}

impl<DB: Backend> SqlStore<DB> {
    /// Gives a log with no signed head one: an empty log gets the genesis head; a log
    /// written before the keyed chain whose unkeyed chain holds is re-keyed in one
    /// transaction, with an `audit.rekey` entry that keeps the old head hash. A log whose
    /// chain holds neither way is left as it is, for `audit verify` to name.
    pub(crate) async fn seal_unsealed_log(&self) -> Result<(), StoreError> {
        if !matches!(self.seal.head()?, HeadState::Missing) {
            return Ok(());
        }
        let mut tx = sql::begin(&self.pool).await?;
        if let Some(lock) = DB::AUDIT_LOCK {
            DB::execute(&mut tx, query(lock)).await?;
        }
        let mut entries = all_entries::<DB>(&mut tx).await?;
        if entries.is_empty() {
            tx.commit().await?;
            return self.seal.write_head(0, GENESIS_HASH);
        }
        let AuditCheck::Intact { head: old_head, .. } = verify_unkeyed(&entries) else {
            return Ok(());
        };
        let mut prev = GENESIS_HASH.to_string();
        for e in &mut entries {
            e.prev_hash = prev;
            e.hash = keyed_hash(self.seal.key(), e);
            let q = query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3");
            let q = DB::bind(DB::bind(q, e.prev_hash.as_str()), e.hash.as_str());
            DB::execute(&mut tx, DB::bind(q, e.seq)).await?;
            prev = e.hash.clone();
        }
        let note = serde_json::json!({ "unkeyed_head": old_head, "entries": entries.len() });
        let e = append::<DB>(
            &mut tx,
            self.seal.key(),
            "clearwatch",
            "audit.rekey",
            "audit:log",
            Some(note.to_string()),
            None,
        )
        .await?;
        tx.commit().await?;
        self.seal.seal(&e)
    }

    /// Appends `e`'s head once its transaction is committed.
    pub(crate) fn sealed(&self, e: &AuditEntry) -> Result<(), StoreError> {
        self.seal.seal(e)
    }
}

/// A `LIKE … ESCAPE '\'` pattern matching values that start with `prefix` literally.
fn prefix_pattern(prefix: &str) -> String {
    let mut p = rows::contains_pattern(prefix);
    p.remove(0);
    p
}

impl<DB: Backend> AuditStore for SqlStore<DB> {
    async fn audit(
        &self,
        actor: &str,
        action: &str,
        entity: &str,
        before: Option<String>,
        after: Option<String>,
    ) -> Result<AuditEntry, StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        let e = append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            action,
            entity,
            before,
            after,
        )
        .await?;
        tx.commit().await?;
        self.sealed(&e)?;
        Ok(e)
    }

    async fn audit_search(
        &self,
        f: &AuditFilter,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let kind = f
            .entity_kind
            .as_deref()
            .map(|k| prefix_pattern(&format!("{k}:")));
        // A group of actions by its prefix (`case.`), or one action exactly.
        let group = f
            .action
            .as_deref()
            .filter(|a| a.ends_with('.'))
            .map(prefix_pattern);
        let mut b = Builder::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1"));
        if let Some(e) = &f.entity {
            b.push(" AND entity = ").push_value(Value::Text(e));
        }
        if let Some(k) = &kind {
            b.push(" AND entity LIKE ")
                .push_value(Value::Text(k))
                .push(" ESCAPE '\\'");
        }
        if let Some(a) = &f.actor {
            b.push(" AND actor = ").push_value(Value::Text(a));
        }
        match (&group, &f.action) {
            (Some(g), _) => {
                b.push(" AND action LIKE ")
                    .push_value(Value::Text(g))
                    .push(" ESCAPE '\\'");
            }
            (None, Some(a)) => {
                b.push(" AND action = ").push_value(Value::Text(a));
            }
            (None, None) => {}
        }
        b.push(" ORDER BY seq DESC LIMIT ")
            .push_value(Value::Int(sql::count(limit)))
            .push(" OFFSET ")
            .push_value(Value::Int(sql::count(offset)));
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, b.build())
            .await?
            .iter()
            .map(rows::audit_entry::<DB>)
            .collect()
    }

    async fn audit_log(
        &self,
        entity: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let f = AuditFilter {
            entity: entity.map(str::to_string),
            ..AuditFilter::default()
        };
        self.audit_search(&f, limit, offset).await
    }

    async fn audit_verify(&self) -> Result<AuditCheck, StoreError> {
        Ok(self.audit_report(&[]).await?.check())
    }

    async fn audit_report(
        &self,
        checkpoints: &[(String, SignedHead)],
    ) -> Result<AuditReport, StoreError> {
        let head = self.seal.head()?;
        let mut c = self.pool.acquire().await?;
        let entries = all_entries::<DB>(&mut c).await?;
        Ok(verify_log(
            entries,
            self.seal.key(),
            &head,
            self.seal.public_key().as_ref(),
            checkpoints,
        ))
    }

    async fn audit_checkpoint(&self) -> Result<Option<SignedHead>, StoreError> {
        Ok(match self.seal.head()? {
            HeadState::Present(h) => Some(h),
            HeadState::Missing | HeadState::NotKept => None,
        })
    }

    async fn write_audit_checkpoint(
        &self,
        out: Option<&Path>,
    ) -> Result<Option<(PathBuf, SignedHead)>, StoreError> {
        let HeadState::Present(head) = self.seal.head()? else {
            return Ok(None);
        };
        let path = match (out, self.seal.checkpoint_dir()) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(dir)) => {
                std::fs::create_dir_all(&dir).map_err(|source| StoreError::AuditFile {
                    path: dir.clone(),
                    source,
                })?;
                let at: String = head.at.chars().filter(char::is_ascii_digit).collect();
                dir.join(format!("checkpoint-{:010}-{at}.json", head.seq))
            }
            (None, None) => return Ok(None),
        };
        write_atomically(&path, &signed_json(&head)?)?;
        Ok(Some((path, head)))
    }
}
