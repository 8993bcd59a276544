//! User management (admin role): the users with their role, time zone and whether they are
//! disabled; adding a user with a password the administrator sets (argon2, as `clearwatch
//! users add`); changing a role; disabling and enabling. Every user's own profile, where
//! they choose the time zone the dashboard shows times in. Every change is audited in the
//! hash-chained log (by the store, in the same transaction). The JSON API mirrors the page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::hash_password;
use super::extract::CurrentUser;
use super::views::{self, PageCtx};
use super::{ApiError, AppError, Shared};
use clearwatch_model::case::UserRole;
use clearwatch_store::UserStore;
use clearwatch_store::cases::{User, UserChange};

/// Shortest password accepted (as `clearwatch users add`).
pub const MIN_PASSWORD: usize = 10;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/admin/users", get(list).post(add))
        .route("/admin/users/{name}", post(change))
        .route("/profile", get(profile).post(save_profile))
        .route("/api/v1/users", get(api_list).post(api_add))
        .route("/api/v1/users/{name}", post(api_change))
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub ctx: PageCtx,
    pub users: Vec<User>,
    pub roles: Vec<&'static str>,
    pub flash: Option<String>,
}

#[derive(Template)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    pub ctx: PageCtx,
    pub name: String,
    pub created_at: String,
    pub time_zone: String,
    pub zones: Vec<&'static str>,
    pub flash: Option<String>,
}

/// A user name: 1 to 64 printable characters, no surrounding space.
pub fn check_name(name: &str) -> Result<&str, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AppError::BadRequest(
            "a user name is 1 to 64 printable characters".into(),
        ));
    }
    Ok(name)
}

fn parse_role(s: &str) -> Result<UserRole, AppError> {
    s.trim().parse::<UserRole>().map_err(AppError::BadRequest)
}

fn check_time_zone(tz: &str) -> Result<String, AppError> {
    let tz = tz.trim();
    if views::is_time_zone(tz) {
        Ok(tz.to_string())
    } else {
        Err(AppError::BadRequest(format!("unknown time zone {tz:?}")))
    }
}

/// Adds a user with an argon2 hash of `password` (hashed off the async threads).
async fn create(
    st: &Shared,
    actor: &str,
    name: &str,
    role: UserRole,
    password: String,
) -> Result<User, AppError> {
    let name = check_name(name)?;
    if password.chars().count() < MIN_PASSWORD {
        return Err(AppError::BadRequest(format!(
            "the password needs at least {MIN_PASSWORD} characters"
        )));
    }
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(AppError::Internal)?;
    Ok(st.store.add_user(name, role, &hash, actor).await?)
}

/// Applies `change` to `name` for the administrator `actor`, who cannot lock themselves
/// out (change their own role or disable themselves).
async fn apply(st: &Shared, actor: &str, name: &str, change: UserChange) -> Result<User, AppError> {
    if name == actor
        && (change.role.is_some_and(|r| r != UserRole::Admin) || change.disabled == Some(true))
    {
        return Err(AppError::BadRequest(
            "you cannot change your own role or disable yourself: ask another administrator".into(),
        ));
    }
    if st.store.user(name).await?.is_none() {
        return Err(AppError::NotFound);
    }
    Ok(st.store.update_user(name, &change, actor).await?)
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

async fn list(
    State(st): State<Shared>,
    user: CurrentUser,
    Query(d): Query<Done>,
) -> Result<Response, AppError> {
    let flash = d.done.as_deref().and_then(|k| {
        let msg = match k {
            "add" => "users.done.add",
            "change" => "users.done.change",
            _ => return None,
        };
        Some(format!(
            "{} {}",
            user.catalog.get(msg),
            d.user.as_deref().unwrap_or("")
        ))
    });
    let page = UsersPage {
        ctx: PageCtx::new(&user),
        users: st.store.users().await?,
        roles: UserRole::ALL.iter().map(|r| r.as_str()).collect(),
        flash,
    };
    Ok(Html(page.render()?).into_response())
}

fn done(what: &str, name: &str) -> Response {
    let mut r = Redirect::to(&format!(
        "/admin/users?done={what}&user={}",
        views::urlencode(name)
    ))
    .into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

#[derive(Deserialize)]
struct AddForm {
    name: String,
    role: String,
    password: String,
}

async fn add(
    State(st): State<Shared>,
    user: CurrentUser,
    axum::Form(f): axum::Form<AddForm>,
) -> Result<Response, AppError> {
    let role = parse_role(&f.role)?;
    let u = create(&st, &user.user.name, &f.name, role, f.password).await?;
    Ok(done("add", &u.name))
}

#[derive(Deserialize)]
struct ChangeForm {
    #[serde(default)]
    role: Option<String>,
    /// `true` or `false`.
    #[serde(default)]
    disabled: Option<String>,
}

fn change_of(f: &ChangeForm) -> Result<UserChange, AppError> {
    let role = match f.role.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(parse_role(r)?),
    };
    let disabled = match f.disabled.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(AppError::BadRequest("disabled is true or false".into())),
    };
    Ok(UserChange {
        role,
        time_zone: None,
        disabled,
    })
}

async fn change(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(name): Path<String>,
    axum::Form(f): axum::Form<ChangeForm>,
) -> Result<Response, AppError> {
    let u = apply(&st, &user.user.name, &name, change_of(&f)?).await?;
    Ok(done("change", &u.name))
}

#[derive(Deserialize, Default)]
struct Saved {
    #[serde(default)]
    saved: Option<u8>,
}

/// The session's copy of the user is current (it is read on every request).
async fn profile(user: CurrentUser, Query(s): Query<Saved>) -> Result<Response, AppError> {
    let page = ProfilePage {
        ctx: PageCtx::new(&user),
        name: user.user.name.clone(),
        created_at: user.user.created_at.clone(),
        time_zone: user.user.time_zone.clone(),
        zones: views::time_zone_names(),
        flash: s
            .saved
            .map(|_| user.catalog.get("profile.saved").to_string()),
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Deserialize)]
struct ProfileForm {
    time_zone: String,
}

async fn save_profile(
    State(st): State<Shared>,
    user: CurrentUser,
    axum::Form(f): axum::Form<ProfileForm>,
) -> Result<Response, AppError> {
    let tz = check_time_zone(&f.time_zone)?;
    let change = UserChange {
        time_zone: Some(tz),
        ..UserChange::default()
    };
    st.store
        .update_user(&user.user.name, &change, &user.user.name)
        .await?;
    let mut r = Redirect::to("/profile?saved=1").into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    Ok(r)
}

/// A user as the API shows it (never the password hash).
#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub name: String,
    /// admin, supervisor, analyst, rule_author or auditor.
    pub role: String,
    pub time_zone: String,
    pub created_at: String,
    pub disabled: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            name: u.name,
            role: u.role.as_str().to_string(),
            time_zone: u.time_zone,
            created_at: u.created_at,
            disabled: u.disabled,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = Vec<UserView>)))]
pub async fn api_list(State(st): State<Shared>) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(
        st.store
            .users()
            .await?
            .into_iter()
            .map(UserView::from)
            .collect(),
    ))
}

/// A user to add.
#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    pub name: String,
    pub role: String,
    /// At least 10 characters; stored as an argon2 hash.
    pub password: String,
}

#[utoipa::path(post, path = "/api/v1/users", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 400, description = "bad name, role or password")))]
pub async fn api_add(
    State(st): State<Shared>,
    user: CurrentUser,
    Json(n): Json<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let role = parse_role(&n.role)?;
    let u = create(&st, &user.user.name, &n.name, role, n.password).await?;
    Ok((StatusCode::CREATED, Json(u.into())))
}

/// Fields to change; those left out stay.
#[derive(Deserialize, ToSchema)]
pub struct UserPatch {
    pub role: Option<String>,
    pub disabled: Option<bool>,
    /// An IANA time zone name.
    pub time_zone: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/users/{name}", request_body = UserPatch,
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserView), (status = 404, description = "no such user")))]
pub async fn api_change(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(name): Path<String>,
    Json(p): Json<UserPatch>,
) -> Result<Json<UserView>, ApiError> {
    let change = UserChange {
        role: p.role.as_deref().map(parse_role).transpose()?,
        disabled: p.disabled,
        time_zone: p.time_zone.as_deref().map(check_time_zone).transpose()?,
    };
    let u = apply(&st, &user.user.name, &name, change).await?;
    Ok(Json(u.into()))
}
