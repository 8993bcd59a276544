//! The audit log page: entries newest first with the result of checking the whole chain.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::extract::CurrentUser;
use super::views::{AuditPage, PageCtx};
use super::{AppError, Shared};
use clearwatch_store::AuditStore;

pub const AUDIT_PAGE: u64 = 100;

pub fn router() -> Router<Shared> {
    Router::new().route("/audit", get(audit))
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    #[serde(default)]
    page: Option<u64>,
}

async fn audit(
    State(st): State<Shared>,
    user: CurrentUser,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let page = q.page.unwrap_or(1).max(1);
    let entries = st
        .store
        .audit_log(None, AUDIT_PAGE + 1, (page - 1).saturating_mul(AUDIT_PAGE))
        .await?;
    let more = entries.len() as u64 > AUDIT_PAGE;
    let view = AuditPage {
        ctx: PageCtx::new(&user),
        entries: entries.into_iter().take(AUDIT_PAGE as usize).collect(),
        check: st.store.audit_verify().await?,
        page,
        prev_link: (page > 1).then(|| format!("/audit?page={}", page - 1)),
        next_link: more.then(|| format!("/audit?page={}", page + 1)),
    };
    Ok(Html(view.render()?).into_response())
}
