//! The JSON API under `/api/v1` (alerts, cases, accounts, rules, audit; users in
//! [`super::users`], the stream's lag in [`super::streaming`]) and its OpenAPI document at `/api/openapi.json`, generated with utoipa
//! from the handlers.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::alerts::filter_of;
use super::extract::CurrentUser;
use super::views::QueueQuery;
use super::{ApiError, AppError, ErrorBody, Shared};
use clearwatch_model::case::{AuditEntry, Status};
use clearwatch_store::AlertStore;
use clearwatch_store::AuditStore;
use clearwatch_store::CaseStore;
use clearwatch_store::IngestStore;
use clearwatch_store::ScanStore;
use clearwatch_store::cases::{Approval, CaseUpdate, Note, RuleHits};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "clearwatch API",
        description = "Alerts, cases, accounts, rules and the audit log of a clearwatch store."
    ),
    paths(
        list_alerts,
        get_alert,
        get_case,
        update_case,
        get_account,
        super::cases::api,
        super::suppressions::api,
        super::lists::api_lists,
        super::lists::api_list,
        list_rules,
        audit_log,
        super::users::api_list,
        super::users::api_add,
        super::users::api_change,
        super::streaming::api
    ),
    components(schemas(
        ErrorBody,
        AlertList,
        CaseView,
        CaseChange,
        AccountView,
        super::cases::CaseList,
        super::cases::CaseSummary,
        super::suppressions::SuppressionView,
        super::lists::ListView,
        super::lists::EntryView,
        super::lists::ListDetail,
        clearwatch_store::queue::Amount,
        RuleView,
        Note,
        Approval,
        AuditEntry,
        RuleHits,
        super::users::UserView,
        super::users::NewUser,
        super::users::UserPatch,
        super::streaming::StreamLag
    ))
)]
pub struct ApiDoc;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert))
        .route("/api/v1/cases/{id}", get(get_case).post(update_case))
        .route("/api/v1/accounts/{id}", get(get_account))
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/audit", get(audit_log))
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// A page of alerts, in the stored-alert JSON shape (see docs/alerts.md).
#[derive(Serialize, ToSchema)]
pub struct AlertList {
    pub total: u64,
    #[schema(value_type = Vec<Object>)]
    pub alerts: Vec<serde_json::Value>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Case status, or `open` (new, in review or escalated).
    pub status: Option<String>,
    /// This severity or above.
    pub severity: Option<String>,
    pub rule: Option<String>,
    /// Assignee; `-` for unassigned.
    pub assignee: Option<String>,
    /// Window start at or after (date or RFC 3339).
    pub from: Option<String>,
    pub until: Option<String>,
    /// Substring of the subject id.
    pub subject: Option<String>,
    /// score, newest, oldest or updated.
    pub sort: Option<String>,
    /// Alerts an active suppression covers: `hide` (the default), `only` or `include`.
    pub suppressed: Option<String>,
    /// 1-based page of 50.
    pub page: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/alerts", params(ListParams),
    responses((status = 200, body = AlertList), (status = 400, description = "bad filter", body = ErrorBody)))]
async fn list_alerts(
    State(st): State<Shared>,
    Query(p): Query<ListParams>,
) -> Result<Json<AlertList>, ApiError> {
    let q = QueueQuery {
        status: p.status.unwrap_or_default(),
        severity: p.severity.unwrap_or_default(),
        rule: p.rule.unwrap_or_default(),
        assignee: p.assignee.unwrap_or_default(),
        from: p.from.unwrap_or_default(),
        until: p.until.unwrap_or_default(),
        subject: p.subject.unwrap_or_default(),
        sort: p.sort.unwrap_or_default(),
        suppressed: p.suppressed.unwrap_or_default(),
        page: p.page,
    };
    let filter = filter_of(&q)?;
    let alerts = st.store.alerts(&filter).await?;
    let total = st.store.count_alerts(&filter).await?;
    let alerts = alerts
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Json(AlertList { total, alerts }))
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn get_alert(
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let a = st.store.alert(&id).await?.ok_or(AppError::NotFound)?;
    let mut v = serde_json::to_value(a).map_err(|e| AppError::Internal(e.to_string()))?;
    // The span of the episode the alert reports (its firing windows in a row), which its
    // evidence covers; the window is its best one's. `null` where no scan stored one.
    let episode = st.store.alert_episode(&id).await?;
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "episode".into(),
            serde_json::to_value(episode).map_err(|e| AppError::Internal(e.to_string()))?,
        );
    }
    Ok(Json(v))
}

/// A case: the alert's workflow state with notes, requests and history.
#[derive(Serialize, ToSchema)]
pub struct CaseView {
    pub alert_id: String,
    pub status: String,
    pub assignee: Option<String>,
    pub version: i64,
    pub notes: Vec<Note>,
    pub approvals: Vec<Approval>,
    pub history: Vec<AuditEntry>,
}

async fn case_view(st: &Shared, id: &str) -> Result<CaseView, ApiError> {
    let a = st.store.alert(id).await?.ok_or(AppError::NotFound)?;
    Ok(CaseView {
        alert_id: a.alert.id,
        status: a.status.as_str().to_string(),
        assignee: a.assignee,
        version: a.version,
        notes: st.store.notes(id).await?,
        approvals: st.store.approvals(Some(id), false).await?,
        history: st
            .store
            .audit_log(Some(&format!("alert:{id}")), 200, 0)
            .await?,
    })
}

#[utoipa::path(get, path = "/api/v1/cases/{id}", params(("id" = String, Path)),
    responses((status = 200, body = CaseView), (status = 404, body = ErrorBody)))]
async fn get_case(
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<CaseView>, ApiError> {
    Ok(Json(case_view(&st, &id).await?))
}

/// A change of status and/or assignee, made only at `expected_version`.
#[derive(Deserialize, ToSchema)]
pub struct CaseChange {
    pub expected_version: i64,
    /// `new`, `in_review`, `reported`, `closed` (escalation and dismissal need approval).
    pub status: Option<String>,
    /// An active analyst or supervisor; an empty string unassigns.
    pub assignee: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/cases/{id}", params(("id" = String, Path)), request_body = CaseChange,
    responses((status = 200, body = CaseView), (status = 409, description = "version conflict", body = ErrorBody),
        (status = 400, description = "transition not allowed", body = ErrorBody),
        (status = 403, description = "role or CSRF token", body = ErrorBody)))]
async fn update_case(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(c): Json<CaseChange>,
) -> Result<Json<CaseView>, ApiError> {
    let status = match c.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<Status>().map_err(AppError::BadRequest)?),
    };
    let assignee = c.assignee.map(|a| (!a.is_empty()).then_some(a));
    super::alerts::check_assignee(&st, &assignee).await?;
    st.store
        .update_case(&CaseUpdate {
            alert_id: id.clone(),
            expected_version: c.expected_version,
            actor: user.user.name,
            status,
            assignee,
        })
        .await?;
    Ok(Json(case_view(&st, &id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct AccountView {
    #[schema(value_type = Object)]
    pub account: Option<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub transactions: Vec<serde_json::Value>,
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}", params(("id" = String, Path)),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)))]
async fn get_account(
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    let account = st.store.account(&id).await?;
    let txs = st.store.account_transactions(&id, 100).await?;
    if account.is_none() && txs.is_empty() {
        return Err(AppError::NotFound.into());
    }
    let internal = |e: serde_json::Error| AppError::Internal(e.to_string());
    Ok(Json(AccountView {
        account: account
            .map(serde_json::to_value)
            .transpose()
            .map_err(internal)?,
        transactions: txs
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(internal)?,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RuleView {
    pub rule_id: String,
    pub title: String,
    pub status: String,
    pub severity: String,
    pub version: String,
    /// Whether scans of the store run a version published from the dashboard instead of
    /// the rule file.
    pub published: bool,
    pub hits: Option<RuleHits>,
    pub precision: Option<f64>,
}

#[utoipa::path(get, path = "/api/v1/rules", responses((status = 200, body = Vec<RuleView>)))]
async fn list_rules(State(st): State<Shared>) -> Result<Json<Vec<RuleView>>, ApiError> {
    let pack = super::rules::effective_pack(&st).await?;
    let published = pack.published_ids();
    let hits = st.store.rule_hits().await?;
    Ok(Json(
        pack.set
            .rules
            .iter()
            .map(|r| {
                let h = hits.iter().find(|h| h.rule_id == r.id).cloned();
                RuleView {
                    rule_id: r.id.clone(),
                    title: r.title.clone(),
                    status: r.status.as_str().to_string(),
                    severity: r.severity.as_str().to_string(),
                    version: r.version.clone(),
                    published: published.contains(&r.id),
                    precision: h.as_ref().and_then(RuleHits::precision),
                    hits: h,
                }
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// `kind:id` for one entity (e.g. `alert:TC-04-…`), or a kind (`alert`, `user`,
    /// `suppression`, `rule`) for all of its entities.
    pub entity: Option<String>,
    /// A user name, exactly.
    pub actor: Option<String>,
    /// An action (`case.approve`), or a group of them by prefix (`case.`).
    pub action: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/audit", params(AuditParams),
    responses((status = 200, body = Vec<AuditEntry>)))]
async fn audit_log(
    State(st): State<Shared>,
    Query(p): Query<AuditParams>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let q = super::audit::AuditQuery {
        actor: p.actor.unwrap_or_default(),
        action: p.action.unwrap_or_default(),
        entity: p.entity.unwrap_or_default(),
        page: None,
    };
    Ok(Json(
        st.store
            .audit_search(
                &q.filter(),
                p.limit.unwrap_or(100).min(1000),
                p.offset.unwrap_or(0),
            )
            .await?,
    ))
}
