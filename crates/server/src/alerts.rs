//! The alert queue and the alert detail page, and the case actions on them: assignment,
//! status moves, notes, approval requests and decisions, bulk changes.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::extract::CurrentUser;
use super::i18n::{Catalog, Worded};
use super::views::{self, AlertPage, NotesFragment, PageCtx, QueuePage, QueueQuery, TxRow};
use super::{AppError, Shared};
use clearwatch_export::flowgraph::flow_graph;
use clearwatch_export::report::ReportTexts;
use clearwatch_model::StoredAlert;
use clearwatch_model::calendar::{WorkingCalendar, china_date, china_today};
use clearwatch_model::case::{Deadline, Status, UserRole};
use clearwatch_model::cases::fold_cases;
use clearwatch_model::suppression::{
    NewSuppression, Suppression, SuppressionScope, SuppressionState,
};
use clearwatch_model::{Currency, Severity, Transaction, Zone, format_ts, parse_rfc3339};
use clearwatch_store::cases::CaseUpdate;
use clearwatch_store::queue::{CASE_ALERT_LIMIT, subject_case};
use clearwatch_store::{
    AlertFilter, AlertSort, AlertStore, AuditStore, CaseStore, ScanStore, Suppressed,
    SuppressionQuery, SuppressionStore, UserStore,
};

/// Alerts per queue page.
pub const PAGE_SIZE: u64 = 50;

/// The most alerts on the subject the alert page's side panel lists (highest score first,
/// and always the alert shown); the account page lists the rest.
const CASE_HEADER_ALERTS: usize = 20;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/alerts", get(queue))
        .route("/alerts/bulk", post(bulk))
        .route("/alerts/{id}", get(detail))
        .route("/alerts/{id}/case", post(change_case))
        .route("/alerts/{id}/notes", post(add_note))
        .route("/alerts/{id}/request", post(request))
        .route("/alerts/{id}/export", get(export_bundle))
        .route("/approvals/{id}/decide", post(decide))
}

/// Whether the request comes from htmx and wants a fragment (a history restore, made
/// when the page is not in htmx's cache, wants the whole page).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
        && headers.get("hx-history-restore-request").is_none()
}

/// Marks a response as depending on `HX-Request` (fragment or whole page).
pub fn vary(mut r: Response) -> Response {
    r.headers_mut()
        .append(header::VARY, HeaderValue::from_static("HX-Request"));
    r
}

/// The queue filter of the page an htmx request was sent from (its `HX-Current-URL`);
/// the default filter when there is none or it does not parse.
fn current_query(headers: &HeaderMap) -> QueueQuery {
    headers
        .get("hx-current-url")
        .and_then(|v| v.to_str().ok())
        .and_then(|u| u.split_once('?'))
        .map(|(_, query)| query.split('#').next().unwrap_or(""))
        .and_then(|query| serde_urlencoded::from_str::<QueueQuery>(query).ok())
        .unwrap_or_default()
}

/// `YYYY-MM-DD` (start of that UTC day) or RFC 3339.
fn parse_day(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    parse_rfc3339(s).or_else(|| parse_rfc3339(&format!("{s}T00:00:00Z")))
}

/// The store filter of a queue query (shared with the JSON API).
pub fn filter_of(q: &QueueQuery) -> Result<AlertFilter, AppError> {
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    // `open`: new, in review or escalated.
    let open_only = opt(&q.status).as_deref() == Some("open");
    let status = match opt(&q.status).filter(|_| !open_only) {
        Some(s) => Some(s.parse::<Status>().map_err(AppError::BadRequest)?),
        None => None,
    };
    let min_severity = match opt(&q.severity) {
        Some(s) => Some(s.parse::<Severity>().map_err(AppError::BadRequest)?),
        None => None,
    };
    let sort = match q.sort.as_str() {
        "" => AlertSort::Score,
        s => AlertSort::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| AppError::BadRequest(format!("unknown sort {s:?}")))?,
    };
    let until = parse_day(&q.until).map(|t| {
        // A date means through the end of that day.
        if q.until.trim().len() == 10 {
            t + 86_400_000
        } else {
            t
        }
    });
    let page = q.page.unwrap_or(1).max(1);
    Ok(AlertFilter {
        suppressed: suppressed_of(&q.suppressed).map_err(AppError::BadRequest)?,
        status,
        open_only,
        min_severity,
        rule_id: opt(&q.rule),
        subject: opt(&q.subject),
        subject_is: None,
        assignee: match q.assignee.trim() {
            "" => None,
            "-" => Some(String::new()),
            a => Some(a.to_string()),
        },
        from: parse_day(&q.from),
        until,
        sort,
        limit: PAGE_SIZE,
        offset: (page - 1).saturating_mul(PAGE_SIZE),
    })
}

/// A queue's `suppressed` parameter: hidden unless it says otherwise.
pub fn suppressed_of(s: &str) -> Result<Suppressed, String> {
    match s.trim() {
        "" => Ok(Suppressed::Hide),
        s => s.parse(),
    }
}

fn query_link(q: &QueueQuery, status: Option<&str>, page: u64) -> String {
    sorted_link(q, status, None, page)
}

fn sorted_link(q: &QueueQuery, status: Option<&str>, sort: Option<&str>, page: u64) -> String {
    let status = status.unwrap_or(&q.status);
    let sort = sort.unwrap_or(&q.sort);
    let pairs = [
        ("status", status),
        ("severity", q.severity.as_str()),
        ("rule", q.rule.as_str()),
        ("assignee", q.assignee.as_str()),
        ("from", q.from.as_str()),
        ("until", q.until.as_str()),
        ("subject", q.subject.as_str()),
        ("sort", sort),
        ("suppressed", q.suppressed.as_str()),
    ];
    let mut s: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", views::urlencode(v)))
        .collect();
    if page > 1 {
        s.push(format!("page={page}"));
    }
    format!("/alerts?{}", s.join("&"))
}

pub async fn case_workers(st: &Shared) -> Result<Vec<String>, AppError> {
    Ok(st
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| matches!(u.role, UserRole::Analyst | UserRole::Supervisor))
        .map(|u| u.name)
        .collect())
}

/// The outcome of a bulk change, carried to the queue it redirects to.
#[derive(serde::Deserialize, Default)]
pub struct BulkOutcome {
    #[serde(default)]
    done: Option<u64>,
    #[serde(default)]
    failed: Option<u64>,
}

impl BulkOutcome {
    /// The flash message (`key` of the catalogue `t`), if a bulk change was made.
    pub fn message(&self, t: &Catalog, key: &str) -> Option<String> {
        self.done
            .map(|d| bulk_message(t, key, d, self.failed.unwrap_or(0)))
    }
}

async fn queue(
    State(st): State<Shared>,
    user: CurrentUser,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
    Query(outcome): Query<BulkOutcome>,
) -> Result<Response, AppError> {
    let flash = outcome.message(user.catalog, "bulk.result");
    let view = queue_view(&st, &user, q, flash).await?;
    render_queue(view, is_htmx(&headers))
}

/// The message `key` with its `{done}` and `{failed}` counts filled in.
fn bulk_message(t: &Catalog, key: &str, done: u64, failed: u64) -> String {
    t.get(key)
        .replace("{done}", &done.to_string())
        .replace("{failed}", &failed.to_string())
}

/// The queue page for `q`.
async fn queue_view(
    st: &Shared,
    user: &CurrentUser,
    q: QueueQuery,
    flash: Option<String>,
) -> Result<QueuePage, AppError> {
    let filter = filter_of(&q)?;
    let rows = st.store.alerts(&filter).await?;
    let mut deadlines = Vec::with_capacity(rows.len());
    for r in &rows {
        deadlines.push(case_deadline(st, r).await?);
    }
    let total = st.store.count_alerts(&filter).await?;
    let counts = st.store.status_counts(&filter).await?;
    let hidden = hidden_count(st, &filter).await?;
    let hidden_link = query_link(
        &QueueQuery {
            suppressed: Suppressed::Only.as_str().into(),
            ..q.clone()
        },
        None,
        1,
    );
    let page = q.page.unwrap_or(1).max(1);
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let rules: Vec<String> = st
        .store
        .rule_hits()
        .await?
        .into_iter()
        .map(|h| h.rule_id)
        .collect();
    let status_links = counts
        .iter()
        .map(|(s, n)| {
            (
                s.as_str().to_string(),
                *n,
                query_link(&q, Some(s.as_str()), 1),
            )
        })
        .collect();
    let sort_links = AlertSort::ALL
        .iter()
        .map(|s| (s.as_str(), sorted_link(&q, None, Some(s.as_str()), 1)))
        .collect();
    Ok(QueuePage {
        ctx: PageCtx::new(user),
        oob: false,
        prev_link: (page > 1).then(|| query_link(&q, None, page - 1)),
        next_link: (page < pages).then(|| query_link(&q, None, page + 1)),
        q,
        rows,
        deadlines,
        total,
        page,
        pages,
        status_links,
        sort_links,
        rules,
        users: case_workers(st).await?,
        severities: Severity::ALL.iter().map(|s| s.as_str()).collect(),
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        sorts: AlertSort::ALL.iter().map(|s| s.as_str()).collect(),
        flash,
        hidden,
        hidden_link,
    })
}

/// How many alerts under `filter` suppressions hide, when the filter hides them.
pub async fn hidden_count(st: &Shared, filter: &AlertFilter) -> Result<u64, AppError> {
    if filter.suppressed != Suppressed::Hide {
        return Ok(0);
    }
    Ok(st
        .store
        .count_alerts(&AlertFilter {
            suppressed: Suppressed::Only,
            ..filter.clone()
        })
        .await?)
}

/// The whole page, or for htmx the results fragment with the filter form out of band.
fn render_queue(mut view: QueuePage, fragment: bool) -> Result<Response, AppError> {
    if !fragment {
        return Ok(vary(Html(view.render()?).into_response()));
    }
    view.oob = true;
    let mut html = view.as_results().render()?;
    html.push('\n');
    html.push_str(&view.as_filters().render()?);
    Ok(vary(Html(html).into_response()))
}

/// The deadline of an alert's case: the review deadline from detection, or after an
/// approved escalation the report deadline.
pub async fn case_deadline(st: &Shared, a: &StoredAlert) -> Result<Deadline, AppError> {
    let detected = parse_rfc3339(&a.created_at).unwrap_or(a.alert.window.until);
    let escalated = if matches!(
        a.status,
        Status::Escalated | Status::Reported | Status::Closed
    ) {
        st.store
            .approvals(Some(&a.alert.id), false)
            .await?
            .into_iter()
            .filter(|p| p.target == "escalated" && p.approved == Some(true))
            .filter_map(|p| p.decided_at.as_deref().and_then(parse_rfc3339))
            .max()
            .map(china_date)
    } else {
        None
    };
    Ok(clearwatch_model::case::deadline(
        a.status,
        china_date(detected),
        escalated,
        china_today(),
        WorkingCalendar::china(),
        st.review_days,
    ))
}

fn metric_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A metric as a number: JSON numbers, and money written with thousands separators.
fn metric_number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.replace(',', "").trim().parse().ok(),
        _ => None,
    }
}

/// A threshold or margin as a person writes it: no trailing zeros.
fn plain_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The alert's figures, each beside the tests of the rule's condition on it and, for a
/// one-sided test, the margin by which it passed.
fn metric_rows(
    metrics: &BTreeMap<String, serde_json::Value>,
    thresholds: &[clearwatch_rules::compile::Threshold],
) -> Vec<views::MetricRow> {
    metrics
        .iter()
        .map(|(name, v)| {
            let tests: Vec<_> = thresholds.iter().filter(|t| &t.metric == name).collect();
            let threshold = (!tests.is_empty()).then(|| {
                tests
                    .iter()
                    .map(|t| format!("{} {}", t.op, plain_number(t.value)))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            let margin = match (tests.as_slice(), metric_number(v)) {
                ([t], Some(x)) => match t.op {
                    "≥" | ">" => Some(x - t.value),
                    "≤" | "<" => Some(t.value - x),
                    _ => None,
                },
                _ => None,
            }
            .map(|m| {
                let text = plain_number(m);
                if m >= 0.0 { format!("+{text}") } else { text }
            });
            views::MetricRow {
                name: name.clone(),
                value: metric_text(v),
                threshold,
                margin,
            }
        })
        .collect()
}

async fn build_detail(st: &Shared, user: &CurrentUser, id: &str) -> Result<AlertPage, AppError> {
    let a = st.store.alert(id).await?.ok_or(AppError::NotFound)?;
    let evidence = clearwatch_export::evidence(&st.store, &[&a]).await?;
    let txs: Vec<Transaction> = evidence.transactions.into_iter().map(|(t, _)| t).collect();
    let subject = a.alert.subject.id.clone();
    let mut graph = flow_graph(&txs, &evidence.accounts, &[subject.as_str()]);
    let inferred = st.store.inferred_roles(&graph.without_role()).await?;
    graph.mark_inferred(&inferred);
    let inferred_role = (a.alert.subject.kind == clearwatch_model::SubjectKind::Account)
        .then(|| inferred.get(&subject).copied())
        .flatten();
    let graph_json =
        serde_json::to_string(&graph).map_err(|e| AppError::Internal(e.to_string()))?;
    // The rule as loaded now, for thresholds and the opening balance; a rule folder that
    // does not load (an edit in progress) costs those extras, not the page.
    let pack = super::rules::effective_pack(st).await.ok();
    let rule = pack
        .as_ref()
        .and_then(|p| p.set.rules.iter().find(|r| r.id == a.alert.rule_id));
    let current = rule.filter(|r| r.version == a.alert.rule_version);
    let balance = rule.map(|r| r.balance.clone()).unwrap_or_default();
    // The pool's replay needs both its opening balance and its peak; without them the
    // chart is the net flow.
    let opening = balance
        .open
        .as_ref()
        .and_then(|n| a.alert.metrics.get(n))
        .and_then(metric_number)
        .filter(|_| {
            balance
                .peak
                .as_ref()
                .is_some_and(|p| a.alert.metrics.contains_key(p))
        });
    let pooled = opening.is_some();
    let chart = balance_points(
        &txs,
        &subject,
        a.alert.currency.as_deref(),
        (a.alert.window.from, a.alert.window.until),
        opening,
    );
    let ctx = PageCtx::new(user);
    let ctx_tz = ctx.tz;
    let balance_svg = chart
        .as_ref()
        .map_or_else(String::new, |(points, currency)| {
            views::balance_svg(
                points,
                (a.alert.window.from, a.alert.window.until),
                currency.code(),
                currency.exponent(),
                ctx.tz,
            )
        });
    let status = a.status;
    let pending = st.store.approvals(Some(id), true).await?.into_iter().next();
    // The subject's active suppressions that cover this rule, and the one this alert's
    // pending dismissal asks for.
    let mut suppressions: Vec<Suppression> = st
        .store
        .suppressions(&SuppressionQuery {
            subject_id: Some(a.alert.subject.id.clone()),
            subject_kind: Some(a.alert.subject.kind),
            state: Some(SuppressionState::Active),
            count_hidden: false,
            ..SuppressionQuery::default()
        })
        .await?
        .into_iter()
        .filter(|s| s.covers(&a.alert.rule_id))
        .collect();
    if let Some(p) = &pending {
        suppressions.extend(
            st.store
                .suppressions(&SuppressionQuery {
                    approval_id: Some(p.id),
                    count_hidden: false,
                    ..SuppressionQuery::default()
                })
                .await?,
        );
    }
    let hidden = status == Status::New
        && a.assignee.is_none()
        && suppressions
            .iter()
            .any(|s| s.state == SuppressionState::Active);
    let deadline = case_deadline(st, &a).await?;
    let episode = st.store.alert_episode(id).await?;
    // The header: the subject's case as the queue shows it, or, when none of its alerts
    // is open, all of them. The side list: every alert on the subject, this one always.
    let subject = &a.alert.subject;
    let case = match subject_case(&st.store, subject, true, china_today(), st.review_days).await? {
        Some(open) => Some(open),
        None => subject_case(&st.store, subject, false, china_today(), st.review_days).await?,
    };
    let hits = st
        .store
        .case_hits(&AlertFilter {
            subject_is: Some(subject.clone()),
            limit: CASE_ALERT_LIMIT,
            ..AlertFilter::default()
        })
        .await?;
    let every: Vec<clearwatch_model::cases::CaseAlert> = fold_cases(
        &hits,
        china_today(),
        WorkingCalendar::china(),
        st.review_days,
        Default::default(),
    )
    .into_iter()
    .flat_map(|c| c.alerts)
    .collect();
    let mut listed: Vec<&clearwatch_model::cases::CaseAlert> =
        every.iter().take(CASE_HEADER_ALERTS).collect();
    if !listed.iter().any(|c| c.id == a.alert.id)
        && let Some(this) = every.iter().find(|c| c.id == a.alert.id)
    {
        listed.pop();
        listed.push(this);
    }
    let ids: Vec<String> = listed.iter().map(|c| c.id.clone()).collect();
    let spans = st.store.alert_episodes(&ids).await?;
    let case_alerts = listed
        .iter()
        .map(|c| {
            let span = spans.get(&c.id).copied().unwrap_or(c.window);
            views::CaseAlertRow {
                id: c.id.clone(),
                rule_id: c.rule_id.clone(),
                score: c.score,
                status: c.status,
                span: (format_ts(span.from), format_ts(span.until)),
                current: c.id == a.alert.id,
            }
        })
        .collect();
    let subject_alerts = every.len();
    let summary = current
        .and_then(|r| r.summary_in(&a.alert, Zone::Named(ctx.tz), ctx.t.language))
        .unwrap_or_else(|| a.alert.summary.clone());
    Ok(AlertPage {
        ctx,
        deadline,
        metrics: metric_rows(
            &a.alert.metrics,
            current.map_or(&[][..], |r| r.thresholds.as_slice()),
        ),
        rule_changed: current.is_none(),
        summary,
        window: (
            format_ts(a.alert.window.from),
            format_ts(a.alert.window.until),
        ),
        episode: episode
            .filter(|e| *e != a.alert.window)
            .map(|e| (format_ts(e.from), format_ts(e.until))),
        graph_json,
        node_count: graph.nodes.len(),
        links_left_out: graph.links_left_out,
        pooled,
        txs: txs.iter().map(TxRow::new).collect(),
        balance_svg,
        notes: st.store.notes(id).await?,
        pending,
        history: st
            .store
            .audit_log(Some(&format!("alert:{id}")), 50, 0)
            .await?,
        next_statuses: status
            .next()
            .iter()
            .filter(|s| !s.needs_approval())
            .map(|s| s.as_str())
            .collect(),
        can_request_escalation: status.can_move_to(Status::Escalated),
        can_request_dismissal: status.can_move_to(Status::Dismissed),
        users: case_workers(st).await?,
        flash: None,
        suppress_until: views::input_time(
            super::auth::now_ms() + SUPPRESS_DEFAULT_DAYS * 86_400_000,
            ctx_tz,
        ),
        suppressions,
        hidden,
        case,
        case_alerts,
        subject_alerts,
        inferred_role,
        a,
    })
}

/// The subject's balance over the alert's window, in major units of one currency (the
/// alert's, or else the first evidence transaction's; other currencies are left out,
/// never mixed in), starting at the window start; evidence outside the window (a flow
/// followed further) is not part of it. With `pooled` (the rule's opening
/// balance) it is replayed as the rule's `balance_peak` replays it: inflows before
/// outflows at the same instant and never below zero, so its peak is the metric's;
/// without, it is the net flow of the evidence from zero.
fn balance_points(
    txs: &[Transaction],
    subject: &str,
    alert_currency: Option<&str>,
    (from, until): (i64, i64),
    pooled: Option<f64>,
) -> Option<(Vec<(i64, f64)>, Currency)> {
    let currency = alert_currency
        .and_then(Currency::from_code)
        .or_else(|| txs.first().map(|t| t.currency))?;
    let scale = 10f64.powi(currency.exponent() as i32);
    let mut moves: Vec<(i64, bool, i128)> = txs
        .iter()
        .filter(|t| t.currency == currency && (from..until).contains(&t.ts))
        .filter_map(|t| {
            if t.to == subject {
                Some((t.ts, false, i128::from(t.amount)))
            } else if t.from == subject {
                Some((t.ts, true, -i128::from(t.amount)))
            } else {
                None
            }
        })
        .collect();
    if moves.is_empty() {
        return None;
    }
    moves.sort_by_key(|m| (m.0, m.1));
    let mut balance = pooled.map_or(0, |o| (o * scale).round() as i128);
    let mut points = vec![(from, balance as f64 / scale)];
    for (ts, _, delta) in moves {
        balance += delta;
        if pooled.is_some() {
            balance = balance.max(0);
        }
        points.push((ts, balance as f64 / scale));
    }
    Some((points, currency))
}

async fn detail(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let page = build_detail(&st, &user, &id).await?;
    Ok(Html(page.render()?).into_response())
}

/// The alert's signed evidence bundle, as a download; the export is audited.
async fn export_bundle(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let Some(stored) = st.store.alert(&id).await? else {
        return Err(AppError::NotFound);
    };
    // The report in the user's language: rule titles and figure names from the pack's
    // texts, the summary as the alert page shows it.
    let ctx = PageCtx::new(&user);
    let lang = ctx.t.language;
    let pack = super::rules::effective_pack(&st).await.ok();
    let summary = pack
        .as_ref()
        .and_then(|p| p.set.rules.iter().find(|r| r.id == stored.alert.rule_id))
        .and_then(|r| r.summary_in(&stored.alert, Zone::Named(ctx.tz), lang));
    let texts = |case: &clearwatch_export::CaseExport| {
        let mut t = ReportTexts::for_case(
            case,
            |id, english| ctx.rule_title(id, english),
            |m| ctx.metric_label(m),
        );
        if let Some(s) = summary {
            t.summaries.insert(stored.alert.id.clone(), s);
        }
        t
    };
    let bytes = clearwatch_export::export_bundle_bytes(
        &st.store,
        &id,
        &user.user.name,
        &st.export_key,
        lang,
        texts,
    )
    .await?;
    let name = format!(
        "clearwatch-{}.zip",
        id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    );
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/zip".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn back_to(id: &str) -> Response {
    Redirect::to(&format!("/alerts/{}", views::urlencode(id))).into_response()
}

pub fn see_other(mut r: Response) -> Response {
    *r.status_mut() = axum::http::StatusCode::SEE_OTHER;
    r
}

#[derive(serde::Deserialize)]
struct CaseForm {
    version: i64,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

fn parse_assignee(a: Option<&str>) -> Option<Option<String>> {
    match a.map(str::trim) {
        None | Some("") => None,
        Some("-") => Some(None),
        Some(name) => Some(Some(name.to_string())),
    }
}

/// Refuses an assignment to anyone but an active user whose role works cases
/// ([`crate::routes::CASE_WORK`]); unassigning and leaving the assignee are always allowed.
pub async fn check_assignee(st: &Shared, a: &Option<Option<String>>) -> Result<(), AppError> {
    let Some(Some(name)) = a else { return Ok(()) };
    let ok = st
        .store
        .user(name)
        .await?
        .is_some_and(|u| !u.disabled && crate::routes::CASE_WORK.contains(&u.role));
    if ok {
        Ok(())
    } else {
        Err(AppError::Worded(
            axum::http::StatusCode::BAD_REQUEST,
            Worded::new("case.problem.assignee").arg("user", name),
        ))
    }
}

fn parse_status(s: Option<&str>) -> Result<Option<Status>, AppError> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Ok(Some(s.parse::<Status>().map_err(AppError::BadRequest)?)),
    }
}

async fn change_case(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<CaseForm>,
) -> Result<Response, AppError> {
    let assignee = parse_assignee(f.assignee.as_deref());
    check_assignee(&st, &assignee).await?;
    st.store
        .update_case(&CaseUpdate {
            alert_id: id.clone(),
            expected_version: f.version,
            actor: user.user.name.clone(),
            status: parse_status(f.status.as_deref())?,
            assignee,
        })
        .await?;
    Ok(see_other(back_to(&id)))
}

#[derive(serde::Deserialize)]
struct NoteForm {
    body: String,
}

async fn add_note(
    State(st): State<Shared>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<NoteForm>,
) -> Result<Response, AppError> {
    st.store.add_note(&id, &user.user.name, &f.body).await?;
    if is_htmx(&headers) {
        let view = NotesFragment {
            ctx: PageCtx::new(&user),
            notes: st.store.notes(&id).await?,
        };
        return Ok(vary(Html(view.render()?).into_response()));
    }
    Ok(see_other(back_to(&id)))
}

/// The dismissal form's default suppression length, in days.
const SUPPRESS_DEFAULT_DAYS: i64 = 90;

#[derive(serde::Deserialize)]
struct RequestForm {
    version: i64,
    target: String,
    #[serde(default)]
    reason: Option<String>,
    /// With a dismissal: `rule` or `all_rules` to suppress; empty for none.
    #[serde(default)]
    suppress: String,
    /// When the suppression ends: a local time in the user's zone (`YYYY-MM-DDTHH:MM`,
    /// seconds optional).
    #[serde(default)]
    suppress_until: String,
}

/// The suppression a request form asks for, its end read in `tz`.
fn suppression_of(f: &RequestForm, tz: chrono_tz::Tz) -> Result<Option<NewSuppression>, String> {
    let scope = match f.suppress.trim() {
        "" | "none" => return Ok(None),
        s => s.parse::<SuppressionScope>()?,
    };
    let expires_at = views::parse_input_time(&f.suppress_until, tz)
        .map_err(|e| format!("suppress_until {e}"))?;
    Ok(Some(NewSuppression { scope, expires_at }))
}

async fn request(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<RequestForm>,
) -> Result<Response, AppError> {
    let target = f.target.parse::<Status>().map_err(AppError::BadRequest)?;
    let tz = views::time_zone(&user.user.time_zone);
    let suppress = suppression_of(&f, tz).map_err(AppError::BadRequest)?;
    st.store
        .request_approval(
            &id,
            f.version,
            target,
            f.reason.as_deref(),
            &user.user.name,
            suppress.as_ref(),
        )
        .await?;
    Ok(see_other(back_to(&id)))
}

#[derive(serde::Deserialize)]
struct DecideForm {
    decision: String,
}

async fn decide(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<DecideForm>,
) -> Result<Response, AppError> {
    let approve = match f.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(AppError::BadRequest("decision is approve or reject".into())),
    };
    let a = st
        .store
        .decide_approval(id, approve, &user.user.name)
        .await?;
    Ok(see_other(back_to(&a.alert_id)))
}

/// Bulk form: `sel=ID:VERSION` repeated (a value may hold several, space-separated: a
/// case selects all of its alerts), `assignee`, `status`, applied in one transaction
/// (all or none). Without JavaScript it redirects to the queue; for htmx it answers the
/// queue's results fragment under the filter of the page it was sent from
/// (`HX-Current-URL`), with the outcome.
async fn bulk(
    State(st): State<Shared>,
    user: CurrentUser,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let (done, failed) = apply_bulk(&st, &user, &body, false).await?;
    if is_htmx(&headers) {
        let q = current_query(&headers);
        let view = queue_view(
            &st,
            &user,
            q,
            Some(bulk_message(user.catalog, "bulk.result", done, failed)),
        )
        .await?;
        return render_queue(view, true);
    }
    Ok(see_other(
        Redirect::to(&format!("/alerts?done={done}&failed={failed}")).into_response(),
    ))
}

/// Applies a bulk form (see [`bulk`]): the alerts changed and the alerts not changed.
/// With `skip_unmovable`, a status change leaves out the alerts that are at that status
/// or cannot move to it (a case's alerts stand at different steps), counted as not changed.
pub async fn apply_bulk(
    st: &Shared,
    user: &CurrentUser,
    body: &[u8],
    skip_unmovable: bool,
) -> Result<(u64, u64), AppError> {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| AppError::BadRequest("malformed form".into()))?;
    let mut selected: BTreeMap<String, i64> = BTreeMap::new();
    let (mut assignee, mut status) = (None, None);
    for (k, v) in &fields {
        match k.as_str() {
            "sel" => {
                for one in v.split_whitespace() {
                    let (id, version) = one
                        .rsplit_once(':')
                        .and_then(|(i, ver)| Some((i.to_string(), ver.parse::<i64>().ok()?)))
                        .ok_or_else(|| AppError::BadRequest("malformed selection".into()))?;
                    selected.insert(id, version);
                }
            }
            "assignee" => assignee = parse_assignee(Some(v)),
            "status" => status = parse_status(Some(v))?,
            _ => {}
        }
    }
    check_assignee(st, &assignee).await?;
    let mut skipped = 0;
    if let (true, Some(target)) = (skip_unmovable, status) {
        let mut movable = BTreeMap::new();
        for (id, version) in selected {
            match st.store.alert(&id).await? {
                Some(a) if a.status.can_move_to(target) => {
                    movable.insert(id, version);
                }
                _ => skipped += 1,
            }
        }
        selected = movable;
    }
    let updates: Vec<CaseUpdate> = selected
        .into_iter()
        .map(|(id, version)| CaseUpdate {
            alert_id: id,
            expected_version: version,
            actor: user.user.name.clone(),
            status,
            assignee: assignee.clone(),
        })
        .collect();
    // All or nothing: one refused change leaves every alert as it was.
    match st.store.bulk_update(&updates).await {
        Ok(changed) => Ok((changed, skipped)),
        Err(clearwatch_store::StoreError::Case(_)) => Ok((0, updates.len() as u64 + skipped)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clearwatch_model::TxType;

    fn tx(id: &str, ts: i64, from: &str, to: &str, amount: i64, currency: &str) -> Transaction {
        Transaction {
            tx_id: id.into(),
            ts,
            from: from.into(),
            to: to.into(),
            amount,
            currency: Currency::from_code(currency).unwrap(),
            tx_type: TxType::Transfer,
            merchant_id: None,
            channel: None,
            region: None,
            memo: None,
        }
    }

    #[test]
    fn balance_chart_uses_the_alert_currency_and_its_exponent() {
        let txs = [
            tx("a", 1, "P", "H", 12_345, "CNY"),
            tx("b", 2, "P", "H", 500, "JPY"),
            tx("c", 3, "H", "Q", 200, "JPY"),
        ];
        let (points, currency) = balance_points(&txs, "H", Some("JPY"), (0, 10), None).unwrap();
        assert_eq!(currency.code(), "JPY");
        assert_eq!(points, vec![(0, 0.0), (2, 500.0), (3, 300.0)]);
        let (points, currency) = balance_points(&txs, "H", Some("CNY"), (0, 10), None).unwrap();
        assert_eq!(currency.code(), "CNY");
        assert_eq!(points, vec![(0, 0.0), (1, 123.45)]);
    }

    #[test]
    fn pooled_balance_starts_at_the_opening_balance_and_never_dips_below_zero() {
        // Opening 50.00; at t=2 an outflow and an inflow at the same instant: the rule's
        // replay takes the inflow first, so the pool never runs dry there.
        let txs = [
            tx("a", 1, "H", "Q", 8_000, "CNY"),
            tx("b", 2, "H", "Q", 3_000, "CNY"),
            tx("c", 2, "P", "H", 4_000, "CNY"),
            tx("d", 3, "P", "H", 1_000, "CNY"),
        ];
        let (points, _) = balance_points(&txs, "H", Some("CNY"), (0, 10), Some(50.0)).unwrap();
        assert_eq!(
            points,
            vec![(0, 50.0), (1, 0.0), (2, 40.0), (2, 10.0), (3, 20.0)]
        );
        let (net, _) = balance_points(&txs, "H", Some("CNY"), (0, 10), None).unwrap();
        assert_eq!(net[1], (1, -80.0));
    }

    #[test]
    fn figures_show_their_threshold_and_margin() {
        use clearwatch_rules::compile::Threshold;
        let metrics: BTreeMap<String, serde_json::Value> = [
            ("payees".to_string(), serde_json::json!(12)),
            ("pass_through".to_string(), serde_json::json!(0.95)),
            ("inflow".to_string(), serde_json::json!("3500.00")),
            ("dwell_hours".to_string(), serde_json::json!(3.5)),
        ]
        .into_iter()
        .collect();
        let t = |m: &str, op, value| Threshold {
            metric: m.into(),
            op,
            value,
        };
        let rows = metric_rows(
            &metrics,
            &[
                t("payees", "≥", 10.0),
                t("pass_through", "≥", 0.9),
                t("pass_through", "≤", 1.5),
                t("inflow", "≥", 3000.0),
            ],
        );
        let row = |n: &str| rows.iter().find(|r| r.name == n).unwrap();
        assert_eq!(row("payees").threshold.as_deref(), Some("≥ 10"));
        assert_eq!(row("payees").margin.as_deref(), Some("+2"));
        assert_eq!(
            row("pass_through").threshold.as_deref(),
            Some("≥ 0.9, ≤ 1.5")
        );
        assert_eq!(row("pass_through").margin, None);
        assert_eq!(row("inflow").margin.as_deref(), Some("+500"));
        assert_eq!(row("dwell_hours").threshold, None);
    }
}
