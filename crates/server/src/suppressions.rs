//! The suppressions area: the list of remembered dismissals with their state and the
//! alerts each hides now (`/suppressions`, `GET /api/v1/suppressions`), and a
//! supervisor's early lift (`POST /suppressions/{id}/lift`). Suppressions are asked for
//! with a dismissal on the alert page and approved with it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::alerts::see_other;
use super::extract::CurrentUser;
use super::views::PageCtx;
use super::{ApiError, AppError, Shared};
use clearwatch_model::suppression::{Suppression, SuppressionState};
use clearwatch_store::{SuppressionQuery, SuppressionStore};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/suppressions", get(page))
        .route("/suppressions/{id}/lift", post(lift))
        .route("/api/v1/suppressions", get(api))
}

/// The list's filter, as the page and the API take it.
#[derive(Deserialize, Serialize, IntoParams, Default, Clone)]
#[into_params(parameter_in = Query)]
pub struct SuppressionParams {
    /// `active` (the default), `pending`, `expired`, `rejected`, `lifted` or `any`.
    #[serde(default)]
    pub state: String,
    /// Only suppressions of this subject id.
    #[serde(default)]
    pub subject: String,
}

fn query_of(p: &SuppressionParams) -> Result<SuppressionQuery, String> {
    let state = match p.state.trim() {
        "" => Some(SuppressionState::Active),
        "any" => None,
        s => Some(
            s.parse::<SuppressionState>()
                .map_err(|e| format!("{e}, or any"))?,
        ),
    };
    let subject = p.subject.trim();
    Ok(SuppressionQuery {
        subject_id: (!subject.is_empty()).then(|| subject.to_string()),
        state,
        limit: clearwatch_store::suppressions::LIST_LIMIT,
        ..SuppressionQuery::default()
    })
}

/// One suppression as the API gives it.
#[derive(Serialize, ToSchema)]
pub struct SuppressionView {
    pub id: i64,
    /// `account` or `merchant`.
    pub subject_kind: String,
    pub subject_id: String,
    /// The rule it suppresses; absent for every rule on the subject.
    pub rule_id: Option<String>,
    pub reason: String,
    /// When it ends, RFC 3339 UTC.
    pub expires_at: String,
    /// `pending`, `active`, `expired`, `rejected` or `lifted`.
    pub state: String,
    /// The alerts it hides now.
    pub hidden: u64,
    /// The dismissal request it came with, and that request's alert.
    pub approval_id: i64,
    pub alert_id: String,
    pub requested_by: String,
    pub requested_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
}

impl From<&Suppression> for SuppressionView {
    fn from(s: &Suppression) -> Self {
        SuppressionView {
            id: s.id,
            subject_kind: s.subject.kind.to_string(),
            subject_id: s.subject.id.clone(),
            rule_id: s.rule_id.clone(),
            reason: s.reason.clone(),
            expires_at: clearwatch_model::format_ts(s.expires_at),
            state: s.state.as_str().to_string(),
            hidden: s.hidden,
            approval_id: s.approval_id,
            alert_id: s.alert_id.clone(),
            requested_by: s.requested_by.clone(),
            requested_at: s.requested_at.clone(),
            decided_by: s.decided_by.clone(),
            decided_at: s.decided_at.clone(),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/suppressions", params(SuppressionParams),
    operation_id = "list_suppressions", tag = "suppressions",
    responses((status = 200, body = Vec<SuppressionView>), (status = 400, description = "bad filter", body = super::ErrorBody)))]
pub async fn api(
    State(st): State<Shared>,
    Query(p): Query<SuppressionParams>,
) -> Result<Json<Vec<SuppressionView>>, ApiError> {
    let q = query_of(&p).map_err(AppError::BadRequest)?;
    let found = st.store.suppressions(&q).await?;
    Ok(Json(found.iter().map(SuppressionView::from).collect()))
}

#[derive(Template)]
#[template(path = "suppressions.html")]
pub struct SuppressionsPage {
    pub ctx: PageCtx,
    pub p: SuppressionParams,
    pub states: Vec<&'static str>,
    pub rows: Vec<Suppression>,
}

async fn page(
    State(st): State<Shared>,
    user: CurrentUser,
    Query(p): Query<SuppressionParams>,
) -> Result<Response, AppError> {
    let q = query_of(&p).map_err(AppError::BadRequest)?;
    let view = SuppressionsPage {
        ctx: PageCtx::new(&user),
        rows: st.store.suppressions(&q).await?,
        states: SuppressionState::ALL.iter().map(|s| s.as_str()).collect(),
        p,
    };
    Ok(Html(view.render()?).into_response())
}

async fn lift(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    st.store.lift_suppression(id, &user.user.name).await?;
    Ok(see_other(
        Redirect::to("/suppressions?state=lifted").into_response(),
    ))
}
