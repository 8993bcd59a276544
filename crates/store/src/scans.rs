//! Scan state: how far each rule version has scanned the store (its mark), the span of
//! the episode each alert reports, and saving a scan's alerts in place of the earlier
//! results they supersede. This is what lets `clearwatch scan` evaluate only what new
//! loads touch.
//!
//! An alert an analyst has worked on (a status, an assignee, a note, an approval or any
//! audit entry) is never removed: when a scan supersedes it, it stays beside the new alert and the save
//! counts it as kept.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::data::Backend;
use crate::records::{RuleVersion, SaveReport};
use crate::rows;
use crate::sql::{self, Builder, Value, get, query};
use crate::{ScanStore, SqlStore, StoreError};
use clearwatch_model::{Alert, Millis, Role, Window};

/// The indexes of transactions by account, `(name, DDL)`. Not a migration: they cost loads
/// about 4× on SQLite (300 k rows: 10.0 s against 2.5 s), so only what reads by account
/// creates them ([`crate::ScanStore::ensure_account_indexes`]).
pub const ACCOUNT_INDEXES: [(&str, &str); 2] = [
    (
        "transactions_from_account",
        "CREATE INDEX IF NOT EXISTS transactions_from_account ON transactions (from_account, ts)",
    ),
    (
        "transactions_to_account",
        "CREATE INDEX IF NOT EXISTS transactions_to_account ON transactions (to_account, ts)",
    ),
];

/// How the batches of stream workers that evaluate the local rules before acknowledging
/// begin their source (`stream:SUBJECT`); other workers' batches are `nats:SUBJECT`.
pub const EVALUATED_SOURCE: &str = "stream:";

/// The newest batches a scan saw: of transactions, and of registry records (accounts
/// and merchants); 0 when there is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batches {
    pub transactions: i64,
    pub registry: i64,
}

/// How far a rule version has scanned the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanMark {
    pub rule_id: String,
    pub rule_version: String,
    pub seen: Batches,
}

/// What the transaction batches loaded after some batch hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// No transaction was loaded.
    Nothing,
    /// Transactions with times in `[first, last]`.
    Span(Millis, Millis),
    /// A batch loaded before batches recorded their time span.
    Unknown,
}

/// Which stored alerts of a rule version a scan's alerts supersede.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supersede {
    /// None: the scan adds alerts only (a scan of part of the time range).
    Nothing,
    /// All of them: the rule ran over the whole store.
    All,
    /// Those on these subjects (by id): the rule ran for them over the whole store.
    Subjects(BTreeSet<String>),
}

/// One rule of a scan being saved.
#[derive(Debug, Clone)]
pub struct RuleScan {
    pub version: RuleVersion,
    pub supersede: Supersede,
    /// The batches the scan saw, recorded as the rule version's mark.
    pub mark: Option<Batches>,
}

/// A scan's results, saved in one database transaction.
#[derive(Debug, Clone, Copy)]
pub struct ScanSave<'a> {
    pub alerts: &'a [Alert],
    /// Alert id → the span of its episode (an alert missing here spans its window).
    pub episodes: &'a HashMap<String, Window>,
    pub rules: &'a [RuleScan],
}

/// What saving a scan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanSaved {
    pub saved: SaveReport,
    /// Superseded alerts removed (nobody had worked on them), including those stored
    /// again with new figures.
    pub removed: u64,
    /// Superseded alerts kept because an analyst had worked on them.
    pub kept: u64,
}

/// An alert `a` nobody has worked on: new, unassigned, never changed, without a note, an
/// approval or an audit entry. Checked again in the `DELETE`, so that work committed while
/// a scan ran is never removed with the alert.
const UNTOUCHED: &str = "a.status = 'new' AND a.assignee IS NULL AND a.version = 1 \
    AND NOT EXISTS (SELECT 1 FROM notes n WHERE n.alert_id = a.id) \
    AND NOT EXISTS (SELECT 1 FROM approvals p WHERE p.alert_id = a.id) \
    AND NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.entity = 'alert:' || a.id)";

/// Stored alerts of one rule version, as a save compares them.
struct Stored {
    id: String,
    subject: String,
    score: i64,
    summary: String,
    metrics: String,
    untouched: bool,
}

impl<DB: Backend> SqlStore<DB> {
    /// The stored alerts of `rule`, of the subjects `only` if given (through the subject
    /// index: a scan of a few accounts does not read every alert of the rule).
    async fn stored_of(
        c: &mut DB::Connection,
        rule: &RuleVersion,
        only: Option<&BTreeSet<String>>,
    ) -> Result<Vec<Stored>, StoreError> {
        let head = format!(
            "SELECT a.id, a.subject_id, a.score, a.summary, a.metrics, \
             CASE WHEN {UNTOUCHED} THEN 1 ELSE 0 END \
             FROM alerts a WHERE a.rule_id = "
        );
        let subjects: Vec<&String> = only.map(|s| s.iter().collect()).unwrap_or_default();
        let parts: Vec<&[&String]> = match only {
            None => vec![&[]],
            Some(_) => subjects.chunks(500).collect(),
        };
        let mut out = Vec::new();
        for part in parts {
            let mut b = Builder::new(head.clone());
            b.push_value(Value::Text(&rule.rule_id));
            b.push(" AND a.rule_version = ");
            b.push_value(Value::Text(&rule.version));
            if only.is_some() {
                b.push(" AND a.subject_id IN ");
                b.push_list(part.iter().map(|s| Value::Text(s)));
            }
            for r in DB::fetch_all(c, b.build()).await?.iter() {
                out.push(Stored {
                    id: get::<DB, _>(r, 0)?,
                    subject: get::<DB, _>(r, 1)?,
                    score: get::<DB, _>(r, 2)?,
                    summary: get::<DB, _>(r, 3)?,
                    metrics: get::<DB, _>(r, 4)?,
                    untouched: get::<DB, i32>(r, 5)? == 1,
                });
            }
        }
        Ok(out)
    }
}

impl<DB: Backend> ScanStore for SqlStore<DB> {
    async fn ensure_account_indexes(&self) -> Result<(), StoreError> {
        let mut c = self.pool.acquire().await?;
        for (name, ddl) in ACCOUNT_INDEXES {
            if let Err(e) = DB::execute(&mut c, query(ddl)).await {
                // Two workers starting at once on PostgreSQL: the second `CREATE INDEX IF NOT
                // EXISTS` can fail on the catalogue while the first commits the same index.
                let exists =
                    DB::fetch_optional(&mut c, DB::bind(query(DB::INDEX_EXISTS), name.to_string()))
                        .await?;
                if exists.is_none() {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    async fn newest_batches(&self) -> Result<Batches, StoreError> {
        let mut c = self.pool.acquire().await?;
        let rows = DB::fetch_all(
            &mut c,
            query("SELECT kind, MAX(batch_id) FROM batches GROUP BY kind"),
        )
        .await?;
        let mut b = Batches::default();
        for r in &rows {
            let kind: String = get::<DB, _>(r, 0)?;
            let newest: i64 = get::<DB, _>(r, 1)?;
            match kind.as_str() {
                "transactions" => b.transactions = newest,
                _ => b.registry = b.registry.max(newest),
            }
        }
        Ok(b)
    }

    async fn scan_marks(&self) -> Result<Vec<ScanMark>, StoreError> {
        let mut c = self.pool.acquire().await?;
        let q = query(
            "SELECT rule_id, rule_version, tx_batch, registry_batch FROM scan_marks \
             ORDER BY rule_id, rule_version",
        );
        DB::fetch_all(&mut c, q)
            .await?
            .iter()
            .map(|r| {
                Ok(ScanMark {
                    rule_id: get::<DB, _>(r, 0)?,
                    rule_version: get::<DB, _>(r, 1)?,
                    seen: Batches {
                        transactions: get::<DB, _>(r, 2)?,
                        registry: get::<DB, _>(r, 3)?,
                    },
                })
            })
            .collect()
    }

    async fn loaded_since(&self, batch: i64) -> Result<Since, StoreError> {
        let mut c = self.pool.acquire().await?;
        let q = query(
            "SELECT MIN(ts_first), MAX(ts_last), \
             SUM(CASE WHEN ts_first IS NULL THEN 1 ELSE 0 END) FROM batches \
             WHERE kind = 'transactions' AND batch_id > $1 AND rows_loaded > 0",
        );
        let row = DB::fetch_optional(&mut c, DB::bind(q, batch)).await?;
        let Some(r) = row else {
            return Ok(Since::Nothing);
        };
        let first: Option<i64> = get::<DB, _>(&r, 0)?;
        let last: Option<i64> = get::<DB, _>(&r, 1)?;
        let unknown: Option<i64> = get::<DB, _>(&r, 2)?;
        Ok(match (first, last, unknown.unwrap_or(0)) {
            (_, _, n) if n > 0 => Since::Unknown,
            (Some(first), Some(last), _) => Since::Span(first, last),
            _ => Since::Nothing,
        })
    }

    async fn streamed_since_mark(&self, rule: &RuleVersion) -> Result<bool, StoreError> {
        let mut c = self.pool.acquire().await?;
        let q = query(
            "SELECT COUNT(*) FROM scan_marks m JOIN batches b \
             ON b.kind = 'transactions' AND b.batch_id > m.tx_batch AND b.rows_loaded > 0 \
             AND NOT (b.source LIKE $1 AND b.loaded_at > m.scanned_at) \
             WHERE m.rule_id = $2 AND m.rule_version = $3",
        );
        let q = DB::bind(
            DB::bind(
                DB::bind(q, format!("{EVALUATED_SOURCE}%")),
                rule.rule_id.clone(),
            ),
            rule.version.clone(),
        );
        let others: i64 = match DB::fetch_optional(&mut c, q).await? {
            Some(r) => get::<DB, _>(&r, 0)?,
            None => 0,
        };
        if others > 0 {
            return Ok(false);
        }
        let q = query("SELECT 1 FROM scan_marks WHERE rule_id = $1 AND rule_version = $2");
        let q = DB::bind(DB::bind(q, rule.rule_id.clone()), rule.version.clone());
        Ok(DB::fetch_optional(&mut c, q).await?.is_some())
    }

    async fn episode_subjects(
        &self,
        rule: &RuleVersion,
        first: Millis,
        last: Millis,
    ) -> Result<Vec<String>, StoreError> {
        let mut c = self.pool.acquire().await?;
        let q = query(
            "SELECT DISTINCT a.subject_id FROM alerts a \
             LEFT JOIN alert_episodes e ON e.alert_id = a.id \
             WHERE a.rule_id = $1 AND a.rule_version = $2 \
             AND COALESCE(e.episode_until, a.window_until) > $3 \
             AND COALESCE(e.episode_from, a.window_from) <= $4 \
             ORDER BY a.subject_id",
        );
        let q = DB::bind(DB::bind(q, rule.rule_id.as_str()), rule.version.as_str());
        let q = DB::bind(DB::bind(q, first), last);
        DB::fetch_all(&mut c, q)
            .await?
            .iter()
            .map(|r| get::<DB, String>(r, 0))
            .collect()
    }

    async fn save_inferred_roles(&self, roles: &[(String, Role)]) -> Result<(), StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        // Two scans saving at once would each delete, then insert the same ids: the audit
        // log's lock serialises them (SQLite has one writer anyway).
        if let Some(lock) = DB::AUDIT_LOCK {
            DB::execute(&mut tx, query(lock)).await?;
        }
        DB::execute(&mut tx, query("DELETE FROM inferred_roles")).await?;
        for part in roles.chunks(500) {
            let mut b = Builder::new("INSERT INTO inferred_roles (account_id, role) VALUES ");
            for (i, (id, role)) in part.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.push_list([Value::Text(id), Value::Text(role.as_str())]);
            }
            DB::execute(&mut tx, b.build()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn alert_episodes(&self, ids: &[String]) -> Result<HashMap<String, Window>, StoreError> {
        let mut found = HashMap::new();
        let mut c = self.pool.acquire().await?;
        for part in ids.chunks(500) {
            let mut b = Builder::new(
                "SELECT alert_id, episode_from, episode_until FROM alert_episodes WHERE alert_id IN ",
            );
            b.push_list(part.iter().map(|id| Value::Text(id)));
            for r in DB::fetch_all(&mut c, b.build()).await? {
                let id: String = get::<DB, _>(&r, 0)?;
                let from: i64 = get::<DB, _>(&r, 1)?;
                let until: i64 = get::<DB, _>(&r, 2)?;
                found.insert(id, Window { from, until });
            }
        }
        Ok(found)
    }

    async fn inferred_roles(&self, ids: &[String]) -> Result<HashMap<String, Role>, StoreError> {
        let mut found = HashMap::new();
        let mut c = self.pool.acquire().await?;
        for part in ids.chunks(500) {
            let mut b =
                Builder::new("SELECT account_id, role FROM inferred_roles WHERE account_id IN ");
            b.push_list(part.iter().map(|id| Value::Text(id)));
            for r in DB::fetch_all(&mut c, b.build()).await? {
                let id: String = get::<DB, _>(&r, 0)?;
                let role: String = get::<DB, _>(&r, 1)?;
                if let Ok(role) = role.parse::<Role>() {
                    found.insert(id, role);
                }
            }
        }
        Ok(found)
    }

    async fn alert_episode(&self, id: &str) -> Result<Option<Window>, StoreError> {
        let mut c = self.pool.acquire().await?;
        let q = query("SELECT episode_from, episode_until FROM alert_episodes WHERE alert_id = $1");
        let Some(r) = DB::fetch_optional(&mut c, DB::bind(q, id)).await? else {
            return Ok(None);
        };
        Ok(Some(Window {
            from: get::<DB, i64>(&r, 0)?,
            until: get::<DB, i64>(&r, 1)?,
        }))
    }

    async fn save_scan(&self, save: ScanSave<'_>) -> Result<ScanSaved, StoreError> {
        let now = rows::now_text();
        let mut out = ScanSaved::default();
        let mut tx = sql::begin(&self.pool).await?;
        let sql = format!(
            "INSERT INTO rule_versions (rule_id, version, title, text, created_at) \
             VALUES ($1, $2, $3, $4, {}) ON CONFLICT (rule_id, version) DO NOTHING",
            DB::ts_param(5)
        );
        for r in save.rules {
            let v = &r.version;
            let mut q = query(&sql);
            for x in [&v.rule_id, &v.version, &v.title, &v.text, &now] {
                q = DB::bind(q, x.as_str());
            }
            DB::execute(&mut tx, q).await?;
        }
        // Superseded alerts nobody worked on go; so do those whose figures changed, to be
        // stored again below.
        // An id given twice (one subject and window in two currencies) is stored from its
        // first occurrence, as `put_alerts` does.
        let mut new: HashMap<&str, &Alert> = HashMap::new();
        for a in save.alerts {
            new.entry(a.id.as_str()).or_insert(a);
        }
        let mut remove: Vec<String> = Vec::new();
        // Alerts an analyst worked on keep their stored evidence, so they keep their span.
        let mut worked: HashSet<String> = HashSet::new();
        for r in save.rules {
            let in_scope = |subject: &str| match &r.supersede {
                Supersede::Nothing => false,
                Supersede::All => true,
                Supersede::Subjects(s) => s.contains(subject),
            };
            if r.supersede == Supersede::Nothing {
                continue;
            }
            let only = match &r.supersede {
                Supersede::Subjects(s) => Some(s),
                _ => None,
            };
            let stored: Vec<Stored> = Self::stored_of(&mut tx, &r.version, only)
                .await?
                .into_iter()
                .filter(|s| in_scope(&s.subject))
                .collect();
            let same_ids: Vec<&str> = stored
                .iter()
                .filter(|s| s.untouched && new.contains_key(s.id.as_str()))
                .map(|s| s.id.as_str())
                .collect();
            let evidence = Self::evidence_in(&mut tx, &same_ids).await?;
            for s in stored {
                let stale = match new.get(s.id.as_str()) {
                    None => true,
                    Some(a) => {
                        i64::from(a.score) != s.score
                            || a.summary != s.summary
                            || serde_json::to_string(&a.metrics)? != s.metrics
                            || evidence.get(&s.id).is_none_or(|e| *e != a.evidence)
                    }
                };
                match (stale, s.untouched) {
                    (true, true) => remove.push(s.id),
                    (true, false) if !new.contains_key(s.id.as_str()) => out.kept += 1,
                    (_, false) => {
                        worked.insert(s.id);
                    }
                    _ => {}
                }
            }
        }
        for part in remove.chunks(500) {
            let mut b = Builder::new("DELETE FROM alerts AS a WHERE a.id IN ");
            b.push_list(part.iter().map(|id| Value::Text(id)))
                .push(" AND ")
                .push(UNTOUCHED);
            out.removed += DB::execute(&mut tx, b.build()).await?;
        }
        let inserted = DB::put_alerts(&mut tx, save.alerts, &now).await?;
        out.saved = SaveReport {
            inserted,
            existing: save.alerts.len() as u64 - inserted,
        };
        let mut seen = HashSet::new();
        let spans: Vec<(&str, Window)> = save
            .alerts
            .iter()
            .filter(|a| !worked.contains(&a.id) && seen.insert(a.id.as_str()))
            .map(|a| {
                let w = save.episodes.get(&a.id).copied().unwrap_or(a.window);
                (a.id.as_str(), w)
            })
            .collect();
        for part in spans.chunks(300) {
            let mut b = Builder::new(
                "INSERT INTO alert_episodes (alert_id, episode_from, episode_until) VALUES ",
            );
            for (i, (id, w)) in part.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.push_list([Value::Text(id), Value::Int(w.from), Value::Int(w.until)]);
            }
            b.push(
                " ON CONFLICT (alert_id) DO UPDATE SET episode_from = excluded.episode_from, \
                 episode_until = excluded.episode_until",
            );
            DB::execute(&mut tx, b.build()).await?;
        }
        let mark = format!(
            "INSERT INTO scan_marks (rule_id, rule_version, tx_batch, registry_batch, scanned_at) \
             VALUES ($1, $2, $3, $4, {}) ON CONFLICT (rule_id, rule_version) DO UPDATE SET \
             tx_batch = excluded.tx_batch, registry_batch = excluded.registry_batch, \
             scanned_at = excluded.scanned_at",
            DB::ts_param(5)
        );
        for r in save.rules {
            let Some(seen) = r.mark else { continue };
            let q = DB::bind(
                DB::bind(query(&mark), r.version.rule_id.as_str()),
                r.version.version.as_str(),
            );
            let q = DB::bind(DB::bind(q, seen.transactions), seen.registry);
            DB::execute(&mut tx, DB::bind(q, now.as_str())).await?;
        }
        tx.commit().await?;
        Ok(out)
    }
}
