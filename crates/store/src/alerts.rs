//! The alert area: saving a scan's alerts with the rule versions behind them, the queue's
//! filtered, sorted and counted lists (counts come from the trigger-kept `alert_counts`
//! table when the filter allows), evidence, rule versions and publications.

use std::collections::HashMap;

use crate::cases::{RuleHits, StoredRuleVersion};
use crate::data::Backend;
use crate::records::{AlertFilter, RuleVersion, SaveReport, Suppressed};
use crate::rows::{self, contains_pattern};
use crate::sql::{self, Builder, Dialect, Value, get, query};
use crate::{AlertStore, SqlStore, StoreError};
use clearwatch_model::case::Status;
use clearwatch_model::cases::CaseHit;
use clearwatch_model::triage::AlertHit;
use clearwatch_model::{
    Account, Alert, Evidence, Severity, StoredAlert, Subject, Transaction, Window, parse_rfc3339,
};

/// Appends the status, severity and rule conditions of `f`: columns of both `alerts` and
/// `alert_counts`.
fn push_key_columns<'a>(b: &mut Builder<'a>, f: &'a AlertFilter) {
    if let Some(status) = f.status {
        b.push(" AND status = ")
            .push_value(Value::Text(status.as_str()));
    }
    if f.open_only {
        // Written as the closed statuses left out, which no index serves: the planner
        // then walks the sort's index (score, window) and stops at the limit, instead of
        // sorting every open alert (SQLite, 800,000 open alerts: 0.7 s instead of 3.4 s).
        b.push(" AND status NOT IN ").push_list(
            Status::ALL
                .into_iter()
                .filter(|s| !s.is_open())
                .map(|s| Value::Text(s.as_str())),
        );
    }
    if let Some(min) = f.min_severity {
        b.push(" AND severity IN ").push_list(
            Severity::ALL
                .into_iter()
                .filter(|s| *s >= min)
                .map(|s| Value::Text(s.as_str())),
        );
    }
    if let Some(rule) = &f.rule_id {
        b.push(" AND rule_id = ").push_value(Value::Text(rule));
    }
}

/// Appends the conditions of `f` on `alerts` (after a `WHERE 1 = 1`).
fn push_filter<'a, DB: Dialect>(
    b: &mut Builder<'a>,
    f: &'a AlertFilter,
    pattern: &'a Option<String>,
) {
    push_key_columns(b, f);
    if let Some(s) = &f.subject_is {
        b.push(" AND subject_kind = ")
            .push_value(Value::Text(s.kind.as_str()))
            .push(" AND subject_id = ")
            .push_value(Value::Text(&s.id));
    }
    if let Some(p) = pattern {
        b.push(&format!(
            " AND subject_id IN (SELECT subject_id FROM alert_subjects WHERE subject_id {} ",
            DB::ILIKE
        ))
        .push_value(Value::Text(p))
        .push(" ESCAPE '\\')");
    }
    match f.assignee.as_deref() {
        None => {}
        Some("") => {
            b.push(" AND assignee IS NULL");
        }
        Some(a) => {
            b.push(" AND assignee = ").push_value(Value::Text(a));
        }
    }
    if let Some(from) = f.from {
        b.push(" AND window_from >= ").push_value(Value::Int(from));
    }
    if let Some(until) = f.until {
        b.push(" AND window_from < ").push_value(Value::Int(until));
    }
    push_suppressed(b, f.suppressed, rows::now_ms());
}

/// The alerts of `alerts` an active suppression covers at `now`: nobody has taken them up
/// and a suppression of their subject is active and names their rule or none.
const COVERED: &str = "status = 'new' AND assignee IS NULL AND EXISTS (SELECT 1 FROM \
     suppressions s WHERE s.subject_id = alerts.subject_id AND s.state = 'active' AND \
     s.expires_at > ";
const COVERED_END: &str = " AND s.subject_kind = alerts.subject_kind \
     AND (s.rule_id IS NULL OR s.rule_id = alerts.rule_id))";

/// Appends the condition of [`Suppressed`] at `now` (UTC milliseconds).
pub(crate) fn push_suppressed(b: &mut Builder<'_>, view: Suppressed, now: i64) {
    let open = match view {
        Suppressed::Include => return,
        Suppressed::Hide => " AND NOT (",
        Suppressed::Only => " AND (",
    };
    // The uncorrelated list of suppressed subjects first: it is built once per query (and
    // lets the planner read the subject index), so only the alerts of suppressed subjects
    // reach the correlated test of kind and rule.
    b.push(open)
        .push(
            "subject_id IN (SELECT subject_id FROM suppressions \
             WHERE state = 'active' AND expires_at > ",
        )
        .push_value(Value::Int(now))
        .push(") AND ")
        .push(COVERED)
        .push_value(Value::Int(now))
        .push(COVERED_END)
        .push(")");
}

/// Whether `f` filters only on the columns `alert_counts` is keyed by (suppressions
/// aside: [`SqlStore::counts_by_status`] subtracts the covered alerts).
fn counted_by_key(f: &AlertFilter) -> bool {
    f.subject.is_none() && f.subject_is.is_none() && f.from.is_none() && f.until.is_none()
}

impl<DB: Backend> SqlStore<DB> {
    /// Alerts matching `f`, grouped by status. Hiding suppressed alerts under a filter the
    /// counts table serves is that table's counts less the covered alerts, which the
    /// subject index finds.
    async fn counts_by_status(&self, f: &AlertFilter) -> Result<HashMap<String, i64>, StoreError> {
        if f.suppressed != Suppressed::Hide || !counted_by_key(f) {
            return self.counted(f).await;
        }
        let mut all = self
            .counted(&AlertFilter {
                suppressed: Suppressed::Include,
                ..f.clone()
            })
            .await?;
        let covered = self
            .counted(&AlertFilter {
                suppressed: Suppressed::Only,
                ..f.clone()
            })
            .await?;
        for (status, n) in covered {
            // Two reads, not one snapshot: an alert stored between them is never below zero.
            let left = all.entry(status).or_default();
            *left = (*left - n).max(0);
        }
        Ok(all)
    }

    /// [`Self::counts_by_status`] by one query: the counts table when `f` allows.
    async fn counted(&self, f: &AlertFilter) -> Result<HashMap<String, i64>, StoreError> {
        let pattern = f.subject.as_deref().map(contains_pattern);
        let mut b = if counted_by_key(f) && f.suppressed == Suppressed::Include {
            let mut b = Builder::new(format!(
                "SELECT status, CAST(SUM(n) AS {}) FROM alert_counts WHERE 1 = 1",
                DB::INT8
            ));
            push_key_columns(&mut b, f);
            if let Some(a) = &f.assignee {
                b.push(" AND assignee = ").push_value(Value::Text(a));
            }
            b
        } else {
            let mut b = Builder::new("SELECT status, COUNT(*) FROM alerts WHERE 1 = 1");
            push_filter::<DB>(&mut b, f, &pattern);
            b
        };
        b.push(" GROUP BY status");
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, b.build())
            .await?
            .iter()
            .map(|r| Ok((get::<DB, _>(r, 0)?, get::<DB, _>(r, 1)?)))
            .collect()
    }

    /// `columns` of the alerts matching `filter`, in its order, limit and offset.
    async fn page_of(
        &self,
        columns: &str,
        filter: &AlertFilter,
    ) -> Result<Vec<DB::Row>, StoreError> {
        let pattern = filter.subject.as_deref().map(contains_pattern);
        let mut b = Builder::new(format!("SELECT {columns} FROM alerts WHERE 1 = 1"));
        push_filter::<DB>(&mut b, filter, &pattern);
        b.push(filter.sort.order_by())
            .push(" LIMIT ")
            .push_value(Value::Int(sql::count(filter.limit)))
            .push(" OFFSET ")
            .push_value(Value::Int(sql::count(filter.offset)));
        let mut c = self.pool.acquire().await?;
        Ok(DB::fetch_all(&mut c, b.build()).await?)
    }

    /// The evidence of the given alerts, grouped by alert, in stored order.
    async fn evidence_of(&self, ids: &[&str]) -> Result<HashMap<String, Evidence>, StoreError> {
        let mut c = self.pool.acquire().await?;
        Self::evidence_in(&mut c, ids).await
    }

    /// [`Self::evidence_of`] on a given connection (a transaction in progress).
    pub(crate) async fn evidence_in(
        c: &mut DB::Connection,
        ids: &[&str],
    ) -> Result<HashMap<String, Evidence>, StoreError> {
        let mut found = Vec::new();
        for part in ids.chunks(500) {
            let mut b = Builder::new(
                "SELECT alert_id, kind, ref_id FROM alert_evidence WHERE alert_id IN ",
            );
            b.push_list(part.iter().map(|id| Value::Text(id)))
                .push(" ORDER BY alert_id, kind, ord");
            for r in DB::fetch_all(c, b.build()).await? {
                found.push((
                    get::<DB, _>(&r, 0)?,
                    get::<DB, _>(&r, 1)?,
                    get::<DB, _>(&r, 2)?,
                ));
            }
        }
        rows::group_evidence(found)
    }
}

impl<DB: Backend> AlertStore for SqlStore<DB> {
    async fn save_alerts(
        &self,
        alerts: &[Alert],
        rules: &[RuleVersion],
    ) -> Result<SaveReport, StoreError> {
        let now = rows::now_text();
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO rule_versions (rule_id, version, title, text, created_at) \
             VALUES ($1, $2, $3, $4, {}) ON CONFLICT (rule_id, version) DO NOTHING",
            DB::ts_param(5)
        );
        for r in rules {
            let mut q = query(&sql);
            for v in [&r.rule_id, &r.version, &r.title, &r.text, &now] {
                q = DB::bind(q, v.as_str());
            }
            DB::execute(&mut tx, q).await?;
        }
        let inserted = DB::put_alerts(&mut tx, alerts, &now).await?;
        tx.commit().await?;
        Ok(SaveReport {
            inserted,
            existing: alerts.len() as u64 - inserted,
        })
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError> {
        let found = self.page_of(&rows::alert_columns::<DB>(), filter).await?;
        let ids: Vec<String> = found
            .iter()
            .map(|r| get::<DB, String>(r, 0))
            .collect::<Result<_, _>>()?;
        let mut evidence = self
            .evidence_of(&ids.iter().map(String::as_str).collect::<Vec<_>>())
            .await?;
        found
            .iter()
            .zip(&ids)
            .map(|(r, id)| rows::alert::<DB>(r, evidence.remove(id).unwrap_or_default()))
            .collect()
    }

    async fn alert_hits(&self, filter: &AlertFilter) -> Result<Vec<AlertHit>, StoreError> {
        self.page_of("subject_kind, subject_id, rule_id, score", filter)
            .await?
            .iter()
            .map(|r| {
                let kind: String = get::<DB, _>(r, 0)?;
                let id: String = get::<DB, _>(r, 1)?;
                let score: i64 = get::<DB, _>(r, 3)?;
                Ok(AlertHit {
                    subject: Subject {
                        kind: kind
                            .parse()
                            .map_err(|e| rows::corrupt(format!("alert on {id}: {e}")))?,
                        id,
                    },
                    rule_id: get::<DB, _>(r, 2)?,
                    score: u32::try_from(score.clamp(0, 100)).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn case_hits(&self, filter: &AlertFilter) -> Result<Vec<CaseHit>, StoreError> {
        let columns = format!(
            "id, version, subject_kind, subject_id, rule_id, score, status, assignee, {}, \
             window_from, window_until",
            DB::ts_text("created_at")
        );
        let found = self.page_of(&columns, filter).await?;
        // Approved escalations start the report deadline: few (one per decision), read whole.
        let escalated: HashMap<String, i64> = {
            let mut c = self.pool.acquire().await?;
            let q = DB::bind(
                query(
                    "SELECT alert_id, decided_at FROM approvals \
                     WHERE target = 'escalated' AND approved = $1 AND decided_at IS NOT NULL",
                ),
                true,
            );
            let mut m = HashMap::new();
            for r in DB::fetch_all(&mut c, q).await? {
                let id: String = get::<DB, _>(&r, 0)?;
                let at: String = get::<DB, _>(&r, 1)?;
                if let Some(ms) = parse_rfc3339(&at) {
                    let e = m.entry(id).or_insert(ms);
                    *e = (*e).max(ms);
                }
            }
            m
        };
        found
            .iter()
            .map(|r| {
                let id: String = get::<DB, _>(r, 0)?;
                let bad = |what: String| rows::corrupt(format!("alert {id}: {what}"));
                let score: i64 = get::<DB, _>(r, 5)?;
                let created: String = get::<DB, _>(r, 8)?;
                let window = Window {
                    from: get::<DB, _>(r, 9)?,
                    until: get::<DB, _>(r, 10)?,
                };
                Ok(CaseHit {
                    version: get::<DB, _>(r, 1)?,
                    subject: Subject {
                        kind: get::<DB, String>(r, 2)?.parse().map_err(bad)?,
                        id: get::<DB, _>(r, 3)?,
                    },
                    rule_id: get::<DB, _>(r, 4)?,
                    score: u32::try_from(score.clamp(0, 100)).unwrap_or(0),
                    status: get::<DB, String>(r, 6)?.parse().map_err(bad)?,
                    assignee: get::<DB, _>(r, 7)?,
                    // As the alert page: an unreadable stored time counts from the window's end.
                    detected: parse_rfc3339(&created).unwrap_or(window.until),
                    escalated: escalated.get(&id).copied(),
                    window,
                    alert_id: id,
                })
            })
            .collect()
    }

    async fn case_amounts(
        &self,
        subject: &Subject,
        filter: &AlertFilter,
    ) -> Result<Vec<(String, i128)>, StoreError> {
        // The subject is matched exactly: its filter's substring adds nothing.
        let filter = &AlertFilter {
            subject: None,
            ..filter.clone()
        };
        let kind = subject.kind.to_string();
        let mut b = Builder::new(
            "SELECT currency, amount FROM transactions WHERE tx_id IN \
             (SELECT ref_id FROM alert_evidence WHERE kind = 'transaction' AND alert_id IN \
             (SELECT id FROM alerts WHERE subject_kind = ",
        );
        b.push_value(Value::Text(&kind))
            .push(" AND subject_id = ")
            .push_value(Value::Text(&subject.id));
        push_filter::<DB>(&mut b, filter, &None);
        b.push("))");
        let mut sums: std::collections::BTreeMap<String, i128> = Default::default();
        let mut c = self.pool.acquire().await?;
        let mut rows = DB::fetch(&mut c, b.build());
        while let Some(r) = futures_util::TryStreamExt::try_next(&mut rows).await? {
            let currency: String = get::<DB, _>(&r, 0)?;
            let amount: i64 = get::<DB, _>(&r, 1)?;
            *sums.entry(currency).or_default() += i128::from(amount);
        }
        Ok(sums.into_iter().collect())
    }

    async fn alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        let sql = format!(
            "SELECT {} FROM alerts WHERE id = $1",
            rows::alert_columns::<DB>()
        );
        let row = {
            let mut c = self.pool.acquire().await?;
            DB::fetch_optional(&mut c, DB::bind(query(&sql), id)).await?
        };
        let Some(row) = row else { return Ok(None) };
        let evidence = self
            .evidence_of(&[id])
            .await?
            .remove(id)
            .unwrap_or_default();
        rows::alert::<DB>(&row, evidence).map(Some)
    }

    async fn count_alerts(&self, f: &AlertFilter) -> Result<u64, StoreError> {
        if counted_by_key(f) && f.suppressed != Suppressed::Only {
            let n: i64 = self.counts_by_status(f).await?.values().sum();
            return Ok(n as u64);
        }
        let pattern = f.subject.as_deref().map(contains_pattern);
        let mut b = Builder::new("SELECT COUNT(*) FROM alerts WHERE 1 = 1");
        push_filter::<DB>(&mut b, f, &pattern);
        let mut c = self.pool.acquire().await?;
        let row = DB::fetch_optional(&mut c, b.build()).await?;
        Ok(row.map_or(Ok(0), |r| get::<DB, i64>(&r, 0))? as u64)
    }

    async fn status_counts(&self, f: &AlertFilter) -> Result<Vec<(Status, u64)>, StoreError> {
        let f = AlertFilter {
            status: None,
            open_only: false,
            ..f.clone()
        };
        let got = self.counts_by_status(&f).await?;
        Ok(Status::ALL
            .iter()
            .map(|s| (*s, got.get(s.as_str()).copied().unwrap_or(0) as u64))
            .collect())
    }

    async fn evidence_transactions(
        &self,
        alert_id: &str,
    ) -> Result<Vec<(Transaction, i64)>, StoreError> {
        let sql = format!(
            "SELECT {}, t.batch_id FROM alert_evidence e JOIN transactions t ON t.tx_id = e.ref_id \
             WHERE e.alert_id = $1 AND e.kind = '{}' ORDER BY e.ord",
            rows::TX_COLUMNS,
            rows::EVIDENCE_TX
        );
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, DB::bind(query(&sql), alert_id))
            .await?
            .iter()
            .map(|r| Ok((rows::transaction::<DB>(r, 0)?, get::<DB, i64>(r, 11)?)))
            .collect()
    }

    async fn evidence_accounts(&self, alert_id: &str) -> Result<Vec<Account>, StoreError> {
        let sql = format!(
            "SELECT {} FROM alert_evidence e LEFT JOIN accounts a ON a.account_id = e.ref_id \
             WHERE e.alert_id = $1 AND e.kind = '{}' ORDER BY e.ord",
            rows::account_columns("e.ref_id"),
            rows::EVIDENCE_ACCOUNT
        );
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, DB::bind(query(&sql), alert_id))
            .await?
            .iter()
            .map(rows::account::<DB>)
            .collect()
    }

    async fn rule_version(
        &self,
        rule_id: &str,
        version: &str,
    ) -> Result<Option<RuleVersion>, StoreError> {
        let sql = format!(
            "SELECT {} FROM rule_versions WHERE rule_id = $1 AND version = $2",
            rows::RULE_VERSION_COLUMNS
        );
        let mut c = self.pool.acquire().await?;
        DB::fetch_optional(&mut c, DB::bind(DB::bind(query(&sql), rule_id), version))
            .await?
            .as_ref()
            .map(rows::rule_version::<DB>)
            .transpose()
    }

    async fn rule_versions(&self, rule_id: &str) -> Result<Vec<StoredRuleVersion>, StoreError> {
        let sql = format!(
            "SELECT v.rule_id, v.version, v.title, v.text, {}, \
             (SELECT p.published_by FROM rule_publications p \
              WHERE p.rule_id = v.rule_id AND p.version = v.version ORDER BY p.id DESC LIMIT 1) \
             FROM rule_versions v WHERE v.rule_id = $1 ORDER BY v.created_at DESC, v.version",
            DB::ts_text("v.created_at")
        );
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, DB::bind(query(&sql), rule_id))
            .await?
            .iter()
            .map(rows::stored_rule_version::<DB>)
            .collect()
    }

    async fn published_rules(&self) -> Result<Vec<StoredRuleVersion>, StoreError> {
        let mut c = self.pool.acquire().await?;
        let sql = "SELECT v.rule_id, v.version, v.title, v.text, p.published_at, p.published_by \
             FROM rule_publications p \
             JOIN rule_versions v ON v.rule_id = p.rule_id AND v.version = p.version \
             WHERE p.id = (SELECT MAX(p2.id) FROM rule_publications p2 WHERE p2.rule_id = p.rule_id) \
             ORDER BY v.rule_id";
        DB::fetch_all(&mut c, query(sql))
            .await?
            .iter()
            .map(rows::stored_rule_version::<DB>)
            .collect()
    }

    async fn publish_rule(&self, rule: &RuleVersion, actor: &str) -> Result<(), StoreError> {
        let mut tx = sql::begin(&self.pool).await?;
        let at = rows::now_text();
        let sql = format!(
            "INSERT INTO rule_versions (rule_id, version, title, text, created_at) \
             VALUES ($1, $2, $3, $4, {}) ON CONFLICT (rule_id, version) DO NOTHING",
            DB::ts_param(5)
        );
        let mut q = query(&sql);
        for v in [&rule.rule_id, &rule.version, &rule.title, &rule.text, &at] {
            q = DB::bind(q, v.as_str());
        }
        DB::execute(&mut tx, q).await?;
        let mut q = query(
            "INSERT INTO rule_publications (rule_id, version, published_by, published_at) \
             VALUES ($1, $2, $3, $4)",
        );
        for v in [&rule.rule_id, &rule.version, actor, &at] {
            q = DB::bind(q, v);
        }
        DB::execute(&mut tx, q).await?;
        let after = serde_json::json!({ "version": rule.version, "title": rule.title }).to_string();
        let sealed = crate::audit::append::<DB>(
            &mut tx,
            self.seal.key(),
            actor,
            "rule.publish",
            &format!("rule:{}", rule.rule_id),
            None,
            Some(after),
        )
        .await?;
        tx.commit().await?;
        self.sealed(&sealed)?;
        Ok(())
    }

    async fn rule_hits(&self) -> Result<Vec<RuleHits>, StoreError> {
        let int8 = DB::INT8;
        let sum = |cond: &str| format!("CAST(COALESCE(SUM(n) FILTER (WHERE {cond}), 0) AS {int8})");
        let sql = format!(
            "SELECT rule_id, CAST(SUM(n) AS {int8}), {}, {}, {} FROM alert_counts \
             GROUP BY rule_id HAVING SUM(n) > 0 ORDER BY rule_id",
            sum("status = 'reported'"),
            sum("status = 'dismissed'"),
            sum("status IN ('new', 'in_review', 'escalated')")
        );
        let mut c = self.pool.acquire().await?;
        DB::fetch_all(&mut c, query(&sql))
            .await?
            .iter()
            .map(|r| {
                Ok(RuleHits {
                    rule_id: get::<DB, _>(r, 0)?,
                    alerts: get::<DB, i64>(r, 1)? as u64,
                    reported: get::<DB, i64>(r, 2)? as u64,
                    dismissed: get::<DB, i64>(r, 3)? as u64,
                    open: get::<DB, i64>(r, 4)? as u64,
                })
            })
            .collect()
    }
}
