//! Subjects ranked by entity risk: one row per account or merchant over all of its alerts
//! under a status and rule filter, at `/entities` (page) and `/api/v1/entities` (JSON).
//! The score is [`clearwatch_model::triage`]'s, read from the alerts' subject, rule and
//! score only, so a whole queue is ranked without loading evidence.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::alerts::filter_of;
use super::extract::CurrentUser;
use super::views::{PageCtx, QueueQuery};
use super::{ApiError, AppError, Shared};
use clearwatch_model::case::Status;
use clearwatch_model::triage::{EntityRisk, entity_risk_of_hits};
use clearwatch_store::{AlertFilter, AlertStore};

/// The most alerts one ranking reads (about 100 bytes each): beyond it the ranking covers
/// the highest-scored alerts only and says so.
pub const ENTITY_ALERT_LIMIT: u64 = 200_000;
/// The most subjects one ranking returns.
pub const MAX_ENTITIES: usize = 500;
const DEFAULT_ENTITIES: usize = 50;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/entities", get(page))
        .route("/api/v1/entities", get(api))
}

#[derive(Deserialize, IntoParams, Default)]
pub struct EntityParams {
    /// Only alerts in this case status.
    pub status: Option<String>,
    /// Only alerts of this rule.
    pub rule: Option<String>,
    /// At most this many subjects (1 to 500, default 50).
    pub limit: Option<usize>,
}

/// One subject and its risk over its alerts.
#[derive(Serialize, ToSchema)]
pub struct EntityView {
    /// `account` or `merchant`.
    pub kind: String,
    pub id: String,
    /// 0 to 100.
    pub score: u32,
    pub alerts: usize,
    /// The distinct rules that alerted on it, sorted.
    pub rules: Vec<String>,
}

/// Subjects by entity risk, highest first.
#[derive(Serialize, ToSchema)]
pub struct EntityList {
    pub entities: Vec<EntityView>,
    /// Alerts the ranking read.
    pub alerts_read: u64,
    /// Whether more alerts matched than one ranking reads (then only the highest-scored
    /// were ranked).
    pub truncated: bool,
}

struct Ranked {
    entities: Vec<EntityRisk>,
    alerts_read: u64,
    truncated: bool,
}

async fn ranked(st: &Shared, p: &EntityParams) -> Result<Ranked, AppError> {
    let limit = p.limit.unwrap_or(DEFAULT_ENTITIES);
    if !(1..=MAX_ENTITIES).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit must be between 1 and {MAX_ENTITIES}"
        )));
    }
    // The queue's own reading of the status and rule filter.
    let filter = filter_of(&QueueQuery {
        status: p.status.clone().unwrap_or_default(),
        rule: p.rule.clone().unwrap_or_default(),
        ..QueueQuery::default()
    })?;
    let hits = st
        .store
        .alert_hits(&AlertFilter {
            limit: ENTITY_ALERT_LIMIT,
            offset: 0,
            ..filter
        })
        .await?;
    let mut entities = entity_risk_of_hits(&hits);
    entities.truncate(limit);
    Ok(Ranked {
        entities,
        alerts_read: hits.len() as u64,
        truncated: hits.len() as u64 == ENTITY_ALERT_LIMIT,
    })
}

#[utoipa::path(get, path = "/api/v1/entities", params(EntityParams),
    responses((status = 200, body = EntityList), (status = 400, description = "bad filter", body = super::ErrorBody)))]
pub async fn api(
    State(st): State<Shared>,
    Query(p): Query<EntityParams>,
) -> Result<Json<EntityList>, ApiError> {
    let r = ranked(&st, &p).await?;
    Ok(Json(EntityList {
        entities: r
            .entities
            .into_iter()
            .map(|e| EntityView {
                kind: e.subject.kind.to_string(),
                id: e.subject.id,
                score: e.score,
                alerts: e.alerts,
                rules: e.rules,
            })
            .collect(),
        alerts_read: r.alerts_read,
        truncated: r.truncated,
    }))
}

#[derive(Template)]
#[template(path = "entities.html")]
pub struct EntitiesPage {
    pub ctx: PageCtx,
    pub status: String,
    pub rule: String,
    pub statuses: Vec<&'static str>,
    pub rules: Vec<String>,
    pub rows: Vec<EntityRisk>,
    pub alerts_read: u64,
    pub truncated: bool,
}

async fn page(
    State(st): State<Shared>,
    user: CurrentUser,
    Query(p): Query<EntityParams>,
) -> Result<Response, AppError> {
    let r = ranked(&st, &p).await?;
    let rules = st
        .store
        .rule_hits()
        .await?
        .into_iter()
        .map(|h| h.rule_id)
        .collect();
    let page = EntitiesPage {
        ctx: PageCtx::new(&user),
        status: p.status.unwrap_or_default(),
        rule: p.rule.unwrap_or_default(),
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        rules,
        rows: r.entities,
        alerts_read: r.alerts_read,
        truncated: r.truncated,
    };
    Ok(Html(page.render()?).into_response())
}
