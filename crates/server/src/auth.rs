//! Sign-in and the per-request guard: argon2 password hashes, session cookies (HttpOnly,
//! SameSite=Strict; the store keeps only the token's SHA-256), the CSRF token of every
//! state-changing request, the role check against [`super::routes`], and the login
//! rate limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};

use super::extract::CurrentUser;
use super::i18n::Catalog;
use super::routes::{self, Access};
use super::{AppError, Shared, views};
use clearwatch_store::AuditStore;
use clearwatch_store::UserStore;
use clearwatch_store::cases::NewSession;

pub const SESSION_COOKIE: &str = "cw_session";
/// The login form's double-submit token (there is no session yet to hold one).
pub const LOGIN_COOKIE: &str = "cw_login";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Failed sign-ins allowed per user name within [`LOGIN_WINDOW`].
pub const LOGIN_MAX_FAILURES: usize = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);

/// `n` random bytes, hex-encoded.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes[..]);
    hex::encode(bytes)
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt[..]);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The hash of an argon2 run on a fixed password, so that an unknown user name costs as
/// much time as a wrong password.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("clearwatch-dummy").unwrap_or_default())
}

pub fn token_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Compares without an early exit.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Counts failed sign-ins per user name.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    fn key(name: &str) -> String {
        name.trim().to_lowercase()
    }

    pub fn blocked(&self, name: &str) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(Self::key(name)).or_default();
        list.retain(|t| t.elapsed() < LOGIN_WINDOW);
        list.len() >= LOGIN_MAX_FAILURES
    }

    pub fn failed(&self, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(Self::key(name)).or_default().push(Instant::now());
    }

    pub fn succeeded(&self, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&Self::key(name));
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Every request passes here: public routes go through; others need a live session whose
/// role the route table allows, and a state-changing request needs the session's CSRF
/// token (header `X-CSRF-Token` or form field `csrf`).
pub async fn guard(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let Some(pattern) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
    else {
        // No route matched: the fallback answers 404.
        return next.run(req).await;
    };
    let access = match routes::access(req.method().as_str(), &pattern) {
        Some(a) => a,
        None => return deny(AppError::Forbidden, api),
    };
    if access == Access::Public {
        return next.run(req).await;
    }
    let session = match cookie(req.headers(), SESSION_COOKIE) {
        Some(token) => match st.store.session(&token_id(&token), now_ms()).await {
            Ok(s) => s,
            Err(e) => return deny(e.into(), api),
        },
        None => None,
    };
    let Some(session) = session else {
        // htmx follows a redirect inside its request and would swap the sign-in page into
        // the fragment's place: tell it to load the sign-in page instead.
        if !api && req.headers().contains_key("hx-request") {
            let mut r = StatusCode::UNAUTHORIZED.into_response();
            r.headers_mut()
                .insert("hx-redirect", HeaderValue::from_static("/login"));
            return r;
        }
        return deny(AppError::Unauthenticated { api }, api);
    };
    if !access.allows(session.user.role) {
        return deny(AppError::Forbidden, api);
    }
    let catalog = Catalog::for_request(req.headers());
    let mut req = req;
    if !is_safe(req.method()) {
        let (ok, rebuilt) = match check_csrf(req, &session.csrf).await {
            Ok(v) => v,
            Err(e) => return deny(e, api),
        };
        if !ok {
            return deny(
                AppError::BadRequest("missing or wrong CSRF token: reload the page".into()),
                api,
            )
            .map_status(StatusCode::FORBIDDEN);
        }
        req = rebuilt;
    }
    req.extensions_mut().insert(CurrentUser {
        user: session.user,
        csrf: session.csrf,
        catalog,
    });
    next.run(req).await
}

trait MapStatus {
    fn map_status(self, s: StatusCode) -> Self;
}

impl MapStatus for Response {
    fn map_status(mut self, s: StatusCode) -> Self {
        *self.status_mut() = s;
        self
    }
}

fn deny(e: AppError, api: bool) -> Response {
    if api {
        super::ApiError(e).into_response()
    } else {
        e.into_response()
    }
}

/// Checks the CSRF token and gives the request back with its body intact.
async fn check_csrf(req: Request, expected: &str) -> Result<(bool, Request), AppError> {
    if let Some(h) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        let ok = same_token(h, expected);
        return Ok((ok, req));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((false, req));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, super::BODY_LIMIT)
        .await
        .map_err(|_| AppError::TooLarge)?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let ok = fields
        .iter()
        .any(|(k, v)| k == CSRF_FIELD && same_token(v, expected));
    Ok((ok, Request::from_parts(parts, Body::from(bytes))))
}

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(|| async { Redirect::to("/alerts") }))
}

fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u64>,
    secure: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn login_page(State(st): State<Shared>, headers: HeaderMap) -> Result<Response, AppError> {
    render_login(&st, &headers, None, StatusCode::OK)
}

fn render_login(
    st: &Shared,
    headers: &HeaderMap,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let token = random_token(16);
    let page = views::LoginPage {
        t: Catalog::for_request(headers),
        csrf: token.clone(),
        error,
    };
    let mut resp = (status, Html(page.render()?)).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &token,
            "/login",
            Some(3600),
            st.secure_cookies,
        ),
    );
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub csrf: String,
}

async fn login(
    State(st): State<Shared>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, AppError> {
    let t = Catalog::for_request(&headers);
    let pre = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_token(&pre, &form.csrf) {
        return render_login(
            &st,
            &headers,
            Some(t.get("login.expired").to_string()),
            StatusCode::FORBIDDEN,
        );
    }
    if st.limiter.blocked(&form.username) {
        return render_login(
            &st,
            &headers,
            Some(t.get("login.rate_limited").to_string()),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let user = st.store.user(form.username.trim()).await?;
    let hash = user
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let password = form.password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|u| ok && !u.disabled) else {
        st.limiter.failed(&form.username);
        return render_login(
            &st,
            &headers,
            Some(t.get("login.failed").to_string()),
            StatusCode::UNAUTHORIZED,
        );
    };
    st.limiter.succeeded(&form.username);
    let token = start_session(&st, &user.name).await?;
    st.store
        .audit(
            &user.name,
            "session.login",
            &format!("user:{}", user.name),
            None,
            None,
        )
        .await?;
    let mut resp = Redirect::to("/alerts").into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &token,
            "/",
            Some(SESSION_TTL.as_secs()),
            st.secure_cookies,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", "/login", Some(0), st.secure_cookies),
    );
    Ok(resp)
}

/// Creates a session for `user` and returns the cookie's token.
pub async fn start_session(st: &Shared, user: &str) -> Result<String, AppError> {
    let token = random_token(32);
    st.store
        .create_session(&NewSession {
            id: token_id(&token),
            user_name: user.to_string(),
            csrf: random_token(24),
            expires_at: now_ms() + SESSION_TTL.as_millis() as i64,
        })
        .await?;
    Ok(token)
}

async fn logout(State(st): State<Shared>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        st.store.delete_session(&token_id(&token), now_ms()).await?;
    }
    let mut resp = Redirect::to("/login").into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/", Some(0), st.secure_cookies),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("", ""));
        assert_eq!(random_token(16).len(), 32);
    }

    #[test]
    fn limiter_blocks_after_five_failures() {
        let l = LoginLimiter::default();
        for _ in 0..LOGIN_MAX_FAILURES {
            assert!(!l.blocked("Ann"));
            l.failed("ann");
        }
        assert!(l.blocked("ANN"));
        l.succeeded("ann");
        assert!(!l.blocked("ann"));
    }
}
