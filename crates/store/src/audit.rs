//! The audit area: the append-only log whose entries are hash-chained
//! ([`clearwatch_model::case::audit_hash`]). Every change of the other areas appends its
//! entry inside its own transaction with [`append`].

use crate::data::Backend;
use crate::rows::{self, AUDIT_COLUMNS};
use crate::sql::{self, Dialect, get, query};
use crate::{AuditStore, SqlStore, StoreError};
use clearwatch_model::case::{AuditCheck, AuditEntry, GENESIS_HASH, audit_hash, verify_chain};

/// Appends one entry to the audit chain inside the transaction `c`.
pub async fn append<DB: Dialect>(
    c: &mut DB::Connection,
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
    let at = rows::now_text();
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
    let sql = format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    let mut q = DB::bind(query(&sql), seq);
    for v in [at.as_str(), actor, action, entity] {
        q = DB::bind(q, v);
    }
    q = DB::bind(DB::bind(q, before.as_deref()), after.as_deref());
    q = DB::bind(DB::bind(q, prev_hash.as_str()), hash.as_str());
    DB::execute(c, q).await?;
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
        let e = append::<DB>(&mut tx, actor, action, entity, before, after).await?;
        tx.commit().await?;
        Ok(e)
    }

    async fn audit_log(
        &self,
        entity: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE ($1 IS NULL OR entity = $1) \
             ORDER BY seq DESC LIMIT $2 OFFSET $3"
        );
        let q = DB::bind(query(&sql), entity);
        let q = DB::bind(DB::bind(q, sql::count(limit)), sql::count(offset));
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, q)
            .await?
            .iter()
            .map(rows::audit_entry::<DB>)
            .collect()
    }

    async fn audit_verify(&self) -> Result<AuditCheck, StoreError> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq");
        let mut c = self.pool.acquire().await?;
        let entries = DB::fetch_all(&mut c, query(&sql))
            .await?
            .iter()
            .map(rows::audit_entry::<DB>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(verify_chain(entries))
    }
}
