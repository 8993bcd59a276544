//! User management (admin role): the users with their role, time zone and whether they are
//! disabled; adding a user with a password the administrator sets (argon2, as `clearwatch
//! users add`); changing a role; disabling and enabling. Every user's own profile, where
//! they choose the time zone the dashboard shows times in. Every change is audited in the
//! hash-chained log (by the store, in the same transaction). The JSON API mirrors the page.
//! An administrator can reset a password: the server picks a temporary one, shows it once,
//! ends the user's sessions, and the user must choose their own at the next sign-in.
//! Names are normalised and checked by [`crate::auth::normalise_name`], passwords by
//! [`crate::password::check`].

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{FORM_LIMIT, normalise_name, now_ms, random_token};
use super::extract::CurrentUser;
use super::i18n::{Catalog, Worded, english};
use super::password;
use super::views::{self, PageCtx};
use super::{ApiError, AppError, Shared};
use clearwatch_model::case::UserRole;
use clearwatch_store::UserStore;
use clearwatch_store::cases::{User, UserChange};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/admin/users", get(list).post(add))
        .route("/admin/users/{name}", post(change))
        .route("/admin/users/{name}/password", post(reset_password))
        .route("/profile", get(profile).post(save_profile))
        .route("/api/v1/users", get(api_list).post(api_add))
        .route("/api/v1/users/{name}", post(api_change))
        .layer(axum::extract::DefaultBodyLimit::max(FORM_LIMIT))
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
    /// Whether the user works cases (and so may mark themselves away), and until when
    /// they are away (a `datetime-local` value in their zone; empty when available).
    pub works_cases: bool,
    pub unavailable_until: String,
}

/// A new user's name, normalised ([`normalise_name`]).
pub fn check_name(name: &str) -> Result<String, AppError> {
    normalise_name(name).map_err(|e| {
        let w = match e {
            super::auth::NameProblem::Length => {
                Worded::new("users.problem.name_length").arg("max", super::auth::MAX_NAME)
            }
            super::auth::NameProblem::Invisible => Worded::new("users.problem.name_invisible"),
        };
        AppError::Worded(StatusCode::BAD_REQUEST, w)
    })
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
    t: &Catalog,
) -> Result<User, AppError> {
    let name = check_name(name)?;
    password::check(&password).map_err(|p| AppError::BadRequest(p.message(t)))?;
    let hash = st.hashing.hash(password).await?;
    Ok(st.store.add_user(&name, role, &hash, actor).await?)
}

/// Applies `change` to `name` for the administrator `actor`, who cannot lock themselves
/// out (change their own role or disable themselves).
async fn apply(st: &Shared, actor: &str, name: &str, change: UserChange) -> Result<User, AppError> {
    if name == actor
        && (change.role.is_some_and(|r| r != UserRole::Admin) || change.disabled == Some(true))
    {
        return Err(AppError::Worded(
            StatusCode::BAD_REQUEST,
            Worded::new("users.problem.self_change"),
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
    render_list(&st, &user, flash).await
}

async fn render_list(
    st: &Shared,
    user: &CurrentUser,
    flash: Option<String>,
) -> Result<Response, AppError> {
    let page = UsersPage {
        ctx: PageCtx::new(user),
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
    let u = create(
        &st,
        &user.user.name,
        &f.name,
        role,
        f.password,
        user.catalog,
    )
    .await?;
    Ok(done("add", &u.name))
}

/// Sets a temporary password for `name` (the server picks it, so it is never weak), ends
/// their sessions and makes them choose their own at the next sign-in. The page answers
/// directly, showing the password once (never in a URL).
async fn reset_password(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    if name == user.user.name {
        return Err(AppError::Worded(
            StatusCode::BAD_REQUEST,
            Worded::new("users.problem.own_password"),
        ));
    }
    if st.store.user(&name).await?.is_none() {
        return Err(AppError::NotFound);
    }
    let temporary = random_token(12);
    let hash = st.hashing.hash(temporary.clone()).await?;
    st.store
        .set_password(&name, &hash, true, &user.user.name, None)
        .await?;
    let flash = format!(
        "{} {name}: {temporary}",
        user.catalog.get("users.done.reset")
    );
    render_list(&st, &user, Some(flash)).await
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
        unavailable_until: None,
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
        works_cases: crate::routes::CASE_WORK.contains(&user.user.role),
        unavailable_until: user
            .user
            .unavailable_until
            .filter(|u| *u > now_ms())
            .map(|u| views::input_time(u, views::time_zone(&user.user.time_zone)))
            .unwrap_or_default(),
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Deserialize)]
struct ProfileForm {
    time_zone: String,
    /// Away until this local time (in the chosen zone); empty: available. Absent for
    /// users who do not work cases.
    #[serde(default)]
    unavailable_until: Option<String>,
}

async fn save_profile(
    State(st): State<Shared>,
    user: CurrentUser,
    axum::Form(f): axum::Form<ProfileForm>,
) -> Result<Response, AppError> {
    let tz = check_time_zone(&f.time_zone)?;
    let now = now_ms();
    let unavailable_until = match f.unavailable_until.as_deref().map(str::trim) {
        None => None,
        // Empty while the stored time has passed: nothing to change.
        Some("") if user.user.unavailable_until.is_none_or(|u| u <= now) => None,
        Some("") => Some(None),
        Some(text) => {
            // The form showed it in the zone the user had, so it is read in that zone.
            let until = views::parse_input_time(text, views::time_zone(&user.user.time_zone))
                .map_err(|e| AppError::BadRequest(format!("unavailable until {e}")))?;
            if until <= now {
                return Err(AppError::Worded(
                    StatusCode::BAD_REQUEST,
                    Worded::new("users.problem.away_past"),
                ));
            }
            Some(Some(until))
        }
    };
    let change = UserChange {
        time_zone: Some(tz),
        unavailable_until,
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
    /// Away until this time (RFC 3339 UTC): automatic assignment passes over them.
    pub unavailable_until: Option<String>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            name: u.name,
            role: u.role.as_str().to_string(),
            time_zone: u.time_zone,
            created_at: u.created_at,
            disabled: u.disabled,
            unavailable_until: u.unavailable_until.map(clearwatch_model::format_ts),
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
    /// At least 12 characters and not a common password; stored as an argon2 hash.
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
    let u = create(&st, &user.user.name, &n.name, role, n.password, english()).await?;
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
        unavailable_until: None,
    };
    let u = apply(&st, &user.user.name, &name, change).await?;
    Ok(Json(u.into()))
}
