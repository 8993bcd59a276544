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
use clearwatch_model::cases::CaseSort;
use clearwatch_model::{format_ts, group_thousands};
use clearwatch_store::cases::CaseUpdate;
use clearwatch_store::queue::{
    Amount, CASE_ALERT_LIMIT, CasePage, CaseQuery, CaseRow, case_page, cases,
};
use clearwatch_store::{AlertFilter, AlertStore, CaseStore, Suppressed};

/// Cases per page.
pub const CASES_PER_PAGE: usize = 50;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/cases", get(page))
        .route("/cases/bulk", post(bulk))
        .route("/cases/next", post(next))
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
            .or_else(|| {
                next.empty
                    .is_some()
                    .then(|| user.catalog.get("cases.next.none").to_string())
            }),
        p,
    };
    Ok(Html(view.render()?).into_response())
}

#[derive(Deserialize, Default)]
struct NextOutcome {
    /// Set when "next case" found no unassigned open case.
    #[serde(default)]
    empty: Option<String>,
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
    let back: Option<CaseParams> = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|f| f.into_iter().find(|(k, _)| k == "back"))
        .and_then(|(_, v)| serde_urlencoded::from_str(&v).ok());
    let mut to = link(&back.unwrap_or_default(), 1);
    to.push_str(&format!("&done={done}&failed={failed}"));
    Ok(see_other(Redirect::to(&to).into_response()))
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
        let updates: Vec<CaseUpdate> = case
            .alerts
            .iter()
            .map(|a| CaseUpdate {
                alert_id: a.id.clone(),
                expected_version: a.version,
                actor: user.user.name.clone(),
                status: None,
                assignee: Some(Some(user.user.name.clone())),
            })
            .collect();
        match st.store.bulk_update(&updates).await {
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
