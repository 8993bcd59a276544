//! The case queue: one row per subject over all of its alerts ([`clearwatch_model::cases`]),
//! with holder, role, rules, amounts, entity risk, age and deadline, at `/cases` (page,
//! the dashboard's landing page), `/cases/bulk` (the selected cases' alerts changed in one
//! transaction), `/cases/next` (take the next case nobody holds) and `/api/v1/cases`
//! (JSON). The alert queue stays at `/alerts`.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::alerts::{BulkOutcome, apply_bulk, case_workers, see_other};
use super::extract::CurrentUser;
use super::views::PageCtx;
use super::{ApiError, AppError, Shared};
use clearwatch_model::calendar::china_today;
use clearwatch_model::case::{Sla, Status};
use clearwatch_model::cases::{Case, CaseSort};
use clearwatch_model::{format_ts, group_thousands};
use clearwatch_store::cases::CaseUpdate;
use clearwatch_store::queue::{
    Amount, CASE_ALERT_LIMIT, CasePage, CaseQuery, CaseRow, case_page, cases,
};
use clearwatch_store::{AlertFilter, AlertStore, CaseStore, Suppressed, UserStore};

/// Cases per page.
pub const CASES_PER_PAGE: usize = 50;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/cases", get(page))
        .route("/cases/bulk", post(bulk))
        .route("/cases/next", post(next))
        .route("/cases/assign", post(assign))
        .route("/api/v1/cases", get(api))
}

/// The case queue's filter, as the page's form and the API take it.
#[derive(Deserialize, Serialize, IntoParams, Default, Clone)]
#[into_params(parameter_in = Query)]
pub struct CaseParams {
    /// `open` (new, in review or escalated: the default), `any`, or one case status:
    /// the alerts that make up the cases.
    #[serde(default)]
    pub status: String,
    /// Only alerts of this rule.
    #[serde(default)]
    pub rule: String,
    /// Only alerts assigned to this user; `-` for unassigned.
    #[serde(default)]
    pub assignee: String,
    /// Only subjects whose id contains this text.
    #[serde(default)]
    pub subject: String,
    /// Only cases in this deadline band: `on_time`, `due_soon`, `overdue` or `done`.
    #[serde(default)]
    pub sla: String,
    /// `risk` (the default), `due`, `oldest` or `alerts`.
    #[serde(default)]
    pub sort: String,
    /// Alerts an active suppression covers: `hide` (the default), `only` or `include`.
    #[serde(default)]
    pub suppressed: String,
    /// From 1.
    #[serde(default)]
    #[param(minimum = 1)]
    pub page: Option<usize>,
}

fn opt(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// The store's query for `p`; a value it does not know is refused, naming the valid ones.
pub fn query_of(p: &CaseParams) -> Result<CaseQuery, String> {
    let (status, open_only) = match opt(&p.status).unwrap_or("open") {
        "open" => (None, true),
        "any" => (None, false),
        s => (
            Some(s.parse::<Status>().map_err(|_| {
                format!(
                    "unknown case status {s:?} (valid: open, any, new, in_review, escalated, reported, dismissed, closed)"
                )
            })?),
            false,
        ),
    };
    let sla = match opt(&p.sla) {
        None => None,
        Some(s) => Some(
            Sla::ALL
                .into_iter()
                .find(|v| v.as_str() == s)
                .ok_or_else(|| {
                    format!("unknown deadline band {s:?} (valid: on_time, due_soon, overdue, done)")
                })?,
        ),
    };
    let sort = match opt(&p.sort) {
        None => CaseSort::Risk,
        Some(s) => s.parse()?,
    };
    let page = p.page.unwrap_or(1).max(1);
    Ok(CaseQuery {
        filter: AlertFilter {
            status,
            open_only,
            rule_id: opt(&p.rule).map(str::to_string),
            subject: opt(&p.subject).map(str::to_string),
            assignee: match opt(&p.assignee) {
                None => None,
                Some("-") => Some(String::new()),
                Some(a) => Some(a.to_string()),
            },
            suppressed: super::alerts::suppressed_of(&p.suppressed)?,
            ..AlertFilter::default()
        },
        sla,
        sort,
        limit: CASES_PER_PAGE,
        offset: (page - 1).saturating_mul(CASES_PER_PAGE),
    })
}

async fn read(st: &Shared, p: &CaseParams) -> Result<CasePage, AppError> {
    let q = query_of(p).map_err(AppError::BadRequest)?;
    Ok(case_page(&st.store, &q, china_today(), st.review_days).await?)
}

/// One case as the API gives it.
#[derive(Serialize, ToSchema)]
pub struct CaseSummary {
    /// `KIND:ID` of its subject: one case per subject.
    pub id: String,
    /// `account` or `merchant`.
    pub subject_kind: String,
    pub subject: String,
    pub holder_name: Option<String>,
    /// The registry's role of an account subject.
    pub role: Option<String>,
    /// The furthest status of its alerts (open work first).
    pub status: String,
    pub assignees: Vec<String>,
    /// The distinct rules that alerted, sorted.
    pub rules: Vec<String>,
    /// Highest score first.
    pub alert_ids: Vec<String>,
    /// Entity risk, 0 to 100.
    pub score: u32,
    /// Evidence transactions of its alerts, each counted once, per currency.
    pub amounts: Vec<Amount>,
    /// The local date (Asia/Shanghai) its first alert was detected.
    pub opened: String,
    /// The due date of its most urgent deadline, in working days of mainland China.
    pub due: String,
    /// `review` or `report`.
    pub deadline: String,
    /// `on_time`, `due_soon`, `overdue` or `done`.
    pub sla: String,
    /// Earliest window start and latest window end of its alerts.
    pub window_from: String,
    pub window_until: String,
}

impl From<&CaseRow> for CaseSummary {
    fn from(r: &CaseRow) -> Self {
        let c = &r.case;
        CaseSummary {
            id: format!("{}:{}", c.subject.kind, c.subject.id),
            subject_kind: c.subject.kind.to_string(),
            subject: c.subject.id.clone(),
            holder_name: r.holder_name.clone(),
            role: r.role.map(|x| x.as_str().to_string()),
            status: c.status.as_str().to_string(),
            assignees: c.assignees.clone(),
            rules: c.rules.clone(),
            alert_ids: c.alerts.iter().map(|a| a.id.clone()).collect(),
            score: c.score,
            amounts: r.amounts.clone(),
            opened: c.opened.to_string(),
            due: c.deadline.due.to_string(),
            deadline: c.deadline.kind.as_str().to_string(),
            sla: c.deadline.sla.as_str().to_string(),
            window_from: format_ts(c.span.from),
            window_until: format_ts(c.span.until),
        }
    }
}

/// One page of cases.
#[derive(Serialize, ToSchema)]
pub struct CaseList {
    pub cases: Vec<CaseSummary>,
    /// Cases under the filter, all pages.
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    /// Alerts folded into cases.
    pub alerts_read: u64,
    /// Whether more alerts matched than one list folds (then only the highest-scored were).
    pub truncated: bool,
}

#[utoipa::path(get, path = "/api/v1/cases", params(CaseParams), operation_id = "list_cases", tag = "cases",
    responses((status = 200, body = CaseList), (status = 400, description = "bad filter", body = super::ErrorBody)))]
pub async fn api(
    State(st): State<Shared>,
    Query(p): Query<CaseParams>,
) -> Result<Json<CaseList>, ApiError> {
    let r = read(&st, &p).await?;
    Ok(Json(CaseList {
        cases: r.cases.iter().map(CaseSummary::from).collect(),
        total: r.total,
        page: p.page.unwrap_or(1).max(1),
        pages: r.total.div_ceil(CASES_PER_PAGE).max(1),
        alerts_read: r.alerts_read,
        truncated: r.truncated,
    }))
}

#[derive(Template)]
#[template(path = "cases.html")]
pub struct CasesPage {
    pub ctx: PageCtx,
    pub p: CaseParams,
    pub statuses: Vec<&'static str>,
    /// The statuses a bulk change may set: those that need no approval.
    pub bulk_statuses: Vec<&'static str>,
    pub rules: Vec<String>,
    pub users: Vec<String>,
    pub slas: Vec<&'static str>,
    pub sorts: Vec<&'static str>,
    pub rows: Vec<CaseRow>,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub prev_link: Option<String>,
    pub next_link: Option<String>,
    pub truncated: bool,
    pub limit: u64,
    pub flash: Option<String>,
    /// The day deadlines and ages are counted to.
    pub today: chrono::NaiveDate,
    /// Alerts under the filter that suppressions hide, and the link that lists them.
    pub hidden: u64,
    pub hidden_link: String,
}

impl CasesPage {
    /// This page's filter, for the bulk form to come back to.
    pub fn back(&self) -> String {
        serde_urlencoded::to_string(&self.p).unwrap_or_default()
    }

    /// The message key of the kind of a case's deadline.
    pub fn deadline_label(&self, r: &CaseRow) -> String {
        format!("deadline.{}", r.case.deadline.kind.as_str())
    }

    /// The `sel` value that selects every alert of a case at the version shown.
    pub fn selection(&self, r: &CaseRow) -> String {
        r.case
            .alerts
            .iter()
            .map(|a| format!("{}:{}", a.id, a.version))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Calendar days since the case was opened, as of the page's day.
    pub fn age_days(&self, r: &CaseRow) -> i64 {
        (self.today - r.case.opened).num_days()
    }

    /// The alert queue on this case's subject under the queue's status, rule and assignee.
    pub fn alerts_link(&self, r: &CaseRow) -> String {
        let status = match opt(&self.p.status).unwrap_or("open") {
            "any" => "",
            s => s,
        };
        format!(
            "/alerts?subject={}&status={}&rule={}&assignee={}",
            super::views::urlencode(&r.case.subject.id),
            super::views::urlencode(status),
            super::views::urlencode(&self.p.rule),
            super::views::urlencode(&self.p.assignee)
        )
    }

    pub fn amounts(&self, r: &CaseRow) -> String {
        r.amounts
            .iter()
            .map(|a| format!("{} {}", group_thousands(&a.amount), a.currency))
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

fn link(p: &CaseParams, page: usize) -> String {
    let q = CaseParams {
        page: Some(page),
        ..p.clone()
    };
    format!(
        "/cases?{}",
        serde_urlencoded::to_string(&q).unwrap_or_default()
    )
}

async fn page(
    State(st): State<Shared>,
    user: CurrentUser,
    Query(p): Query<CaseParams>,
    Query(outcome): Query<BulkOutcome>,
    Query(next): Query<NextOutcome>,
) -> Result<Response, AppError> {
    let r = read(&st, &p).await?;
    let hidden = match query_of(&p) {
        Ok(q) => super::alerts::hidden_count(&st, &q.filter).await?,
        Err(e) => return Err(AppError::BadRequest(e)),
    };
    let hidden_link = link(
        &CaseParams {
            suppressed: Suppressed::Only.as_str().into(),
            ..p.clone()
        },
        1,
    );
    let page = p.page.unwrap_or(1).max(1);
    let pages = r.total.div_ceil(CASES_PER_PAGE).max(1);
    let rules = st
        .store
        .rule_hits()
        .await?
        .into_iter()
        .map(|h| h.rule_id)
        .collect();
    let view = CasesPage {
        ctx: PageCtx::new(&user),
        prev_link: (page > 1).then(|| link(&p, page - 1)),
        next_link: (page < pages).then(|| link(&p, page + 1)),
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        bulk_statuses: Status::ALL
            .iter()
            .filter(|s| !s.needs_approval())
            .map(|s| s.as_str())
            .collect(),
        rules,
        users: case_workers(&st).await?,
        slas: Sla::ALL.iter().map(|s| s.as_str()).collect(),
        sorts: CaseSort::ALL.iter().map(|s| s.as_str()).collect(),
        rows: r.cases,
        total: r.total,
        page,
        pages,
        truncated: r.truncated,
        limit: CASE_ALERT_LIMIT,
        today: china_today(),
        hidden,
        hidden_link,
        flash: outcome
            .message(user.catalog, "bulk.result.cases")
            .or_else(|| next.message(user.catalog)),
        p,
    };
    Ok(Html(view.render()?).into_response())
}

#[derive(Deserialize, Default)]
struct NextOutcome {
    /// Set when "next case" found no unassigned open case.
    #[serde(default)]
    empty: Option<String>,
    /// Set after "assign in turn": cases dealt, and to how many analysts.
    #[serde(default)]
    dealt: Option<u64>,
    #[serde(default)]
    analysts: Option<usize>,
}

impl NextOutcome {
    fn message(&self, t: &super::i18n::Catalog) -> Option<String> {
        if self.empty.is_some() {
            return Some(t.get("cases.next.none").to_string());
        }
        let n = self.dealt?;
        Some(match self.analysts.unwrap_or(0) {
            0 => t.get("cases.dealt.nobody").to_string(),
            m => t
                .get("cases.dealt")
                .replace("{n}", &n.to_string())
                .replace("{m}", &m.to_string()),
        })
    }
}

/// The bulk form of the case queue: each selected case stands for the alerts it listed, at
/// the versions the page showed. A status change leaves out the alerts that cannot make
/// that move; the rest change together or not at all. Back to the queue under the filter
/// the form was sent from (`back`, read as the queue's parameters, never as a URL).
async fn bulk(
    State(st): State<Shared>,
    user: CurrentUser,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let (done, failed) = apply_bulk(&st, &user, &body, true).await?;
    let mut to = link(&back_of(&body), 1);
    to.push_str(&format!("&done={done}&failed={failed}"));
    Ok(see_other(Redirect::to(&to).into_response()))
}

/// The most cases one deal assigns (one transaction each): the rest wait for the next.
pub const DEAL_LIMIT: usize = 500;

/// The actor that automatic assignment (`serve --auto-assign-minutes`) is audited under.
pub const AUTO_ASSIGNER: &str = "auto-assign";

/// What dealing cases did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dealt {
    /// Cases assigned.
    pub cases: u64,
    /// Analysts who could take cases.
    pub analysts: usize,
}

/// Deals the open cases nobody holds under `filter` (most urgent first; suppressed alerts
/// left out) to the analysts who take cases now (active, not away), each case with all of
/// its alerts to whoever holds the fewest open cases, ties by name: with equal loads that
/// is round robin, and an analyst back from leave catches up before the others get more.
/// A subject of which anyone holds an open alert is left to them. At most [`DEAL_LIMIT`]
/// cases per call; a case someone changes meanwhile is left for next time.
pub async fn deal_cases(
    st: &Shared,
    filter: &AlertFilter,
    sla: Option<Sla>,
    actor: &str,
) -> Result<Dealt, AppError> {
    let now = super::auth::now_ms();
    let analysts: Vec<String> = st
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| u.takes_cases_at(now))
        .map(|u| u.name)
        .collect();
    let mut dealt = Dealt {
        cases: 0,
        analysts: analysts.len(),
    };
    if analysts.is_empty() {
        return Ok(dealt);
    }
    let open = AlertFilter {
        open_only: true,
        suppressed: Suppressed::Hide,
        ..AlertFilter::default()
    };
    let today = china_today();
    let (held, _, _) = cases(&st.store, &open, CaseSort::Due, today, st.review_days).await?;
    let mut load: std::collections::BTreeMap<&str, u64> =
        analysts.iter().map(|a| (a.as_str(), 0)).collect();
    // A subject someone holds any open alert of is theirs, whatever the queue's filter.
    let mut taken = std::collections::HashSet::new();
    for c in held.iter().filter(|c| !c.assignees.is_empty()) {
        taken.insert(&c.subject);
        for a in &c.assignees {
            if let Some(n) = load.get_mut(a.as_str()) {
                *n += 1;
            }
        }
    }
    let wanted = AlertFilter {
        open_only: true,
        status: None,
        suppressed: Suppressed::Hide,
        ..filter.clone()
    };
    let (todo, _, _) = cases(&st.store, &wanted, CaseSort::Due, today, st.review_days).await?;
    let free = todo.iter().filter(|c| {
        c.assignees.is_empty()
            && !taken.contains(&c.subject)
            && sla.is_none_or(|b| c.deadline.sla == b)
    });
    for case in free.take(DEAL_LIMIT) {
        let Some((&to, _)) = load.iter().min_by_key(|(name, n)| (**n, **name)) else {
            break;
        };
        match st.store.bulk_update(&assign_all(case, to, actor)).await {
            Ok(_) => {
                *load.entry(to).or_default() += 1;
                dealt.cases += 1;
            }
            Err(clearwatch_store::StoreError::Case(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(dealt)
}

/// The changes that assign every alert of `case`, at the versions read, to `to`.
fn assign_all(case: &Case, to: &str, actor: &str) -> Vec<CaseUpdate> {
    case.alerts
        .iter()
        .map(|a| CaseUpdate {
            alert_id: a.id.clone(),
            expected_version: a.version,
            actor: actor.to_string(),
            status: None,
            assignee: Some(Some(to.to_string())),
        })
        .collect()
}

/// The queue filter a case form came from: its `back` field, read as the queue's
/// parameters (never as a URL); the default queue without one.
fn back_of(body: &[u8]) -> CaseParams {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()
        .and_then(|f| f.into_iter().find(|(k, _)| k == "back"))
        .and_then(|(_, v)| serde_urlencoded::from_str(&v).ok())
        .unwrap_or_default()
}

/// "Assign in turn" (supervisors): deals the open unassigned cases under the queue's
/// filter (`back`) to the available analysts, then back to that queue with the count.
async fn assign(
    State(st): State<Shared>,
    user: CurrentUser,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let back = back_of(&body);
    let q = query_of(&back).map_err(AppError::BadRequest)?;
    let dealt = deal_cases(&st, &q.filter, q.sla, &user.user.name).await?;
    let mut to = link(&back, 1);
    to.push_str(&format!(
        "&dealt={}&analysts={}",
        dealt.cases, dealt.analysts
    ));
    Ok(see_other(Redirect::to(&to).into_response()))
}

/// Deals cases every `every` (`serve --auto-assign-minutes`); a failure is reported on
/// stderr and tried again next time.
pub async fn auto_assign(st: Shared, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match deal_cases(&st, &AlertFilter::default(), None, AUTO_ASSIGNER).await {
            Ok(d) if d.cases > 0 => {
                eprintln!("auto-assign: {} cases to {} analysts", d.cases, d.analysts);
            }
            Ok(_) => {}
            Err(e) => eprintln!("warning: auto-assign failed: {e:?}"),
        }
    }
}

/// Tries before "next case" gives up on cases that others take at the same moment.
const NEXT_CASE_TRIES: usize = 3;

/// "Next case": assigns the signed-in user the most urgent open case that nobody holds
/// (earliest deadline, then highest risk; a case with any assigned alert is someone's) and
/// opens its highest-scored alert; back to the queue with a message when there is none.
async fn next(State(st): State<Shared>, user: CurrentUser) -> Result<Response, AppError> {
    let open = AlertFilter {
        open_only: true,
        suppressed: Suppressed::Hide,
        ..AlertFilter::default()
    };
    for _ in 0..NEXT_CASE_TRIES {
        let (open_cases, _, _) = cases(
            &st.store,
            &open,
            CaseSort::Due,
            china_today(),
            st.review_days,
        )
        .await?;
        let Some(case) = open_cases.iter().find(|c| c.assignees.is_empty()) else {
            break;
        };
        let me = &user.user.name;
        match st.store.bulk_update(&assign_all(case, me, me)).await {
            Ok(_) => {
                let top = &case.alerts[0].id;
                return Ok(see_other(
                    Redirect::to(&format!("/alerts/{}", super::views::urlencode(top)))
                        .into_response(),
                ));
            }
            // Taken or changed by someone else meanwhile: look again.
            Err(clearwatch_store::StoreError::Case(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(see_other(Redirect::to("/cases?empty=1").into_response()))
}
