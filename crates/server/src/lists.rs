//! The lists area: watch lists and allow lists (`/lists`), one list with its entries
//! (`/lists/{name}`), and the forms that create a list, add an entry and remove one. Who
//! may do what is the store's rule ([`clearwatch_store::lists`]): the pages only offer
//! the forms a user may use. `/api/v1/lists` and `/api/v1/lists/{name}` give the same
//! as JSON.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::alerts::see_other;
use super::extract::CurrentUser;
use super::views::{self, PageCtx};
use super::{ApiError, AppError, Shared};
use clearwatch_model::case::UserRole;
use clearwatch_model::lists::{EntryKind, ListEntry, ListKind, NewListEntry, WatchList};
use clearwatch_store::ListStore;

/// How long a new entry lasts unless the form says otherwise.
const DEFAULT_ENTRY_DAYS: i64 = 365;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/lists", get(index).post(create))
        .route("/lists/{name}", get(page))
        .route("/lists/{name}/entries", post(add))
        .route("/lists/{name}/entries/{id}/remove", post(remove))
        .route("/api/v1/lists", get(api_lists))
        .route("/api/v1/lists/{name}", get(api_list))
}

/// A list as the API gives it.
#[derive(Serialize, ToSchema)]
pub struct ListView {
    pub name: String,
    /// `watch` or `allow`.
    pub kind: String,
    pub description: String,
    pub created_by: String,
    pub created_at: String,
    /// Entries in force now.
    pub active: u64,
}

impl From<&WatchList> for ListView {
    fn from(l: &WatchList) -> Self {
        ListView {
            name: l.name.clone(),
            kind: l.kind.as_str().to_string(),
            description: l.description.clone(),
            created_by: l.created_by.clone(),
            created_at: l.created_at.clone(),
            active: l.active,
        }
    }
}

/// An entry of a list as the API gives it.
#[derive(Serialize, ToSchema)]
pub struct EntryView {
    pub id: i64,
    /// `account` or `holder`.
    pub kind: String,
    pub value: String,
    pub reason: String,
    /// RFC 3339 UTC.
    pub expires_at: String,
    /// `active`, `expired` or `removed`, as of the request.
    pub state: String,
    pub added_by: String,
    pub added_at: String,
    pub removed_by: Option<String>,
    pub removed_at: Option<String>,
}

/// A list with its entries, newest first.
#[derive(Serialize, ToSchema)]
pub struct ListDetail {
    #[serde(flatten)]
    pub list: ListView,
    /// The newest entries, at most 1,000.
    pub entries: Vec<EntryView>,
    /// Whether the newest 1,000 were given: the list may have more.
    pub truncated: bool,
}

#[utoipa::path(get, path = "/api/v1/lists", operation_id = "list_lists", tag = "lists",
    responses((status = 200, body = Vec<ListView>)))]
pub async fn api_lists(State(st): State<Shared>) -> Result<Json<Vec<ListView>>, ApiError> {
    Ok(Json(
        st.store.lists().await?.iter().map(ListView::from).collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/lists/{name}", params(("name" = String, Path)),
    operation_id = "get_list", tag = "lists",
    responses((status = 200, body = ListDetail), (status = 404, body = super::ErrorBody)))]
pub async fn api_list(
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<ListDetail>, ApiError> {
    let (list, entries) = st.store.list(&name).await?.ok_or(AppError::NotFound)?;
    let now = super::auth::now_ms();
    Ok(Json(ListDetail {
        truncated: entries.len() >= clearwatch_store::lists::ENTRY_LIMIT as usize,
        list: ListView::from(&list),
        entries: entries
            .iter()
            .map(|e| EntryView {
                id: e.id,
                kind: e.kind.as_str().to_string(),
                value: e.value.clone(),
                reason: e.reason.clone(),
                expires_at: clearwatch_model::format_ts(e.expires_at),
                state: e.state(now).as_str().to_string(),
                added_by: e.added_by.clone(),
                added_at: e.added_at.clone(),
                removed_by: e.removed_by.clone(),
                removed_at: e.removed_at.clone(),
            })
            .collect(),
    }))
}

#[derive(Template)]
#[template(path = "lists.html")]
pub struct ListsPage {
    pub ctx: PageCtx,
    pub lists: Vec<WatchList>,
    pub kinds: Vec<&'static str>,
}

async fn index(State(st): State<Shared>, user: CurrentUser) -> Result<Response, AppError> {
    let view = ListsPage {
        ctx: PageCtx::new(&user),
        lists: st.store.lists().await?,
        kinds: ListKind::ALL.iter().map(|k| k.as_str()).collect(),
    };
    Ok(Html(view.render()?).into_response())
}

#[derive(Deserialize)]
struct CreateForm {
    name: String,
    kind: String,
    #[serde(default)]
    description: String,
}

async fn create(
    State(st): State<Shared>,
    user: CurrentUser,
    Form(f): Form<CreateForm>,
) -> Result<Response, AppError> {
    let kind: ListKind = f.kind.parse().map_err(AppError::BadRequest)?;
    let name = f.name.trim();
    st.store
        .create_list(name, kind, &f.description, &user.user.name)
        .await?;
    Ok(see_other(
        Redirect::to(&format!("/lists/{}", views::urlencode(name))).into_response(),
    ))
}

/// One entry as the list page shows it.
pub struct EntryRow {
    pub entry: ListEntry,
    /// `active`, `expired` or `removed`.
    pub state: &'static str,
}

#[derive(Template)]
#[template(path = "list.html")]
pub struct ListPage {
    pub ctx: PageCtx,
    pub list: WatchList,
    pub entries: Vec<EntryRow>,
    pub entry_kinds: Vec<&'static str>,
    /// Whether the user may add to this list (an allow list needs a supervisor).
    pub can_add: bool,
    /// The expiry the form proposes, as a `datetime-local` value in the user's zone.
    pub default_expiry: String,
    /// Who may change the list, by its kind.
    pub help: String,
}

async fn page(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let (list, entries) = st.store.list(&name).await?.ok_or(AppError::NotFound)?;
    let ctx = PageCtx::new(&user);
    let now = super::auth::now_ms();
    let can_add = match list.kind {
        ListKind::Allow => user.user.role == UserRole::Supervisor,
        ListKind::Watch => ctx.can_work_cases(),
    };
    let view = ListPage {
        help: ctx
            .t
            .get(&format!("list.help.{}", list.kind.as_str()))
            .to_string(),
        default_expiry: views::input_time(now + DEFAULT_ENTRY_DAYS * 86_400_000, ctx.tz),
        ctx,
        entries: entries
            .into_iter()
            .map(|entry| EntryRow {
                state: entry.state(now).as_str(),
                entry,
            })
            .collect(),
        entry_kinds: EntryKind::ALL.iter().map(|k| k.as_str()).collect(),
        can_add,
        list,
    };
    Ok(Html(view.render()?).into_response())
}

#[derive(Deserialize)]
struct EntryForm {
    kind: String,
    value: String,
    reason: String,
    expires: String,
}

async fn add(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(name): Path<String>,
    Form(f): Form<EntryForm>,
) -> Result<Response, AppError> {
    let tz = views::time_zone(&user.user.time_zone);
    let new = NewListEntry {
        kind: f.kind.parse().map_err(AppError::BadRequest)?,
        value: f.value,
        reason: f.reason,
        expires_at: views::parse_input_time(&f.expires, tz)
            .map_err(|e| AppError::BadRequest(format!("expires {e}")))?,
    };
    st.store
        .add_list_entry(&name, &new, &user.user.name)
        .await?;
    Ok(see_other(
        Redirect::to(&format!("/lists/{}", views::urlencode(&name))).into_response(),
    ))
}

async fn remove(
    State(st): State<Shared>,
    user: CurrentUser,
    Path((name, id)): Path<(String, i64)>,
) -> Result<Response, AppError> {
    let removed = st
        .store
        .remove_list_entry(&name, id, &user.user.name)
        .await?;
    Ok(see_other(
        Redirect::to(&format!("/lists/{}", views::urlencode(&removed.list))).into_response(),
    ))
}
