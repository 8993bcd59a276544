//! The audit log page: entries newest first, filtered by actor, action group and entity,
//! each change shown field by field, with the result of checking the whole chain.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::extract::CurrentUser;
use super::views::{AuditPage, PageCtx};
use super::{AppError, Shared};
use clearwatch_store::{AuditFilter, AuditStore};

pub const AUDIT_PAGE: u64 = 100;

pub fn router() -> Router<Shared> {
    Router::new().route("/audit", get(audit))
}

/// The audit page's filter: who, which group of actions, and what.
#[derive(serde::Deserialize, serde::Serialize, Default, Clone)]
pub struct AuditQuery {
    /// A user name, exactly.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actor: String,
    /// An action (`case.approve`) or a group of them (`case.`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    /// `KIND:ID` for one entity, or `KIND` (`alert`, `user`, `suppression`, `rule`) for
    /// every entity of that kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub entity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
}

impl AuditQuery {
    /// The store's filter of this query.
    pub fn filter(&self) -> AuditFilter {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let entity = opt(&self.entity);
        let (entity, entity_kind) = match entity {
            Some(e) if e.contains(':') => (Some(e), None),
            kind => (None, kind),
        };
        AuditFilter {
            entity,
            entity_kind,
            actor: opt(&self.actor),
            action: opt(&self.action),
        }
    }

    fn link(&self, page: u64) -> String {
        let q = AuditQuery {
            page: Some(page),
            ..self.clone()
        };
        format!(
            "/audit?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    }
}

/// The groups of actions the filter offers.
pub const ACTION_GROUPS: [&str; 8] = [
    "case.",
    "suppression.",
    "list.",
    "user.",
    "session.",
    "rule.",
    "quarantine.",
    "audit.",
];

async fn audit(
    State(st): State<Shared>,
    user: CurrentUser,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let page = q.page.unwrap_or(1).max(1);
    let entries = st
        .store
        .audit_search(
            &q.filter(),
            AUDIT_PAGE + 1,
            (page - 1).saturating_mul(AUDIT_PAGE),
        )
        .await?;
    let more = entries.len() as u64 > AUDIT_PAGE;
    let view = AuditPage {
        ctx: PageCtx::new(&user),
        entries: entries.into_iter().take(AUDIT_PAGE as usize).collect(),
        check: st.store.audit_verify().await?,
        page,
        prev_link: (page > 1).then(|| q.link(page - 1)),
        next_link: more.then(|| q.link(page + 1)),
        groups: ACTION_GROUPS.to_vec(),
        q,
    };
    Ok(Html(view.render()?).into_response())
}
