//! Sign-in and the per-request guard: argon2 password hashes, session cookies (HttpOnly,
//! SameSite=Strict; the store keeps only the token's SHA-256), the CSRF token of every
//! state-changing request, the role check against [`super::routes`], and the login
//! rate limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use askama::Template;
use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use governor::Quota;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::extract::CurrentUser;
use super::i18n::{Catalog, Worded};
use super::password::{self, MAX_PASSWORD};
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

/// Bounds the argon2 work of the whole server: at most `running` hashes at once (each
/// takes ~19 MiB and a core for a fraction of a second), run on the blocking pool, and at
/// most `queued` more waiting, each for at most `wait`. Anything beyond that is refused at
/// once with 503, so a flood of sign-ins costs neither memory nor an unbounded queue.
pub struct HashGate {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    wait: Duration,
}

impl Default for HashGate {
    /// As many hashes at once as there are cores, four times as many waiting, for 5 s.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        HashGate::new(cores, 4 * cores, Duration::from_secs(5))
    }
}

impl HashGate {
    pub fn new(running: usize, queued: usize, wait: Duration) -> HashGate {
        HashGate {
            running: Arc::new(Semaphore::new(running.max(1))),
            admitted: Arc::new(Semaphore::new(running.max(1) + queued)),
            wait,
        }
    }

    /// Runs `work` (an argon2 hash or check) on the blocking pool once a slot is free; a
    /// full queue or a wait over the limit is [`AppError::Unavailable`]. The slot is held
    /// until the work ends, even if the request is dropped meanwhile.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let busy = || {
            AppError::Unavailable(
                "The server is busy signing others in: try again in a moment.".into(),
            )
        };
        let ticket = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        let slot = tokio::time::timeout(self.wait, self.running.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop((slot, ticket));
            out
        })
        .await
        .map_err(|e| AppError::Internal(format!("password hashing: {e}")))
    }

    /// An argon2 hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || hash_password(&password))
            .await?
            .map_err(AppError::Internal)
    }

    /// Whether `password` matches `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, AppError> {
        self.run(move || verify_password(&password, &hash)).await
    }
}

/// The longest user name, in characters (after NFKC normalisation).
pub const MAX_NAME: usize = 64;

/// Why a user name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("a user name is 1 to {MAX_NAME} characters")]
    Length,
    #[error("a user name cannot hold control, format, direction or invisible characters")]
    Invisible,
}

/// A user name in its one form: NFKC-normalised, without surrounding white space, 1 to
/// [`MAX_NAME`] characters, and none of them a control or format character (bidirectional
/// overrides such as U+202E, zero-width characters such as U+200B and U+FEFF, and the
/// like), which would let two names look the same. The raw input is measured first so
/// that a huge name costs nothing.
pub fn normalise_name(raw: &str) -> Result<String, NameProblem> {
    use unicode_normalization::UnicodeNormalization;
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    if raw.len() > 4 * MAX_NAME * 4 {
        return Err(NameProblem::Length);
    }
    let name: String = raw.nfkc().collect();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(NameProblem::Length);
    }
    let hidden = |c: char| {
        c.is_control()
            || matches!(
                c.general_category(),
                GeneralCategory::Format
                    | GeneralCategory::Control
                    | GeneralCategory::Unassigned
                    | GeneralCategory::PrivateUse
                    | GeneralCategory::Surrogate
                    | GeneralCategory::LineSeparator
                    | GeneralCategory::ParagraphSeparator
            )
            || matches!(
                c,
                '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{034F}'
            )
    };
    if name.chars().any(hidden) {
        return Err(NameProblem::Invisible);
    }
    Ok(name.to_string())
}

/// Sign-in attempts allowed per (client address, user name) in a burst; one more comes
/// back every [`LOGIN_WINDOW`] / [`LOGIN_MAX_FAILURES`].
pub const LOGIN_MAX_FAILURES: usize = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);
/// Sign-in attempts allowed per client address in a burst, whatever the names; one more
/// comes back every [`CLIENT_PERIOD`].
pub const CLIENT_BURST: u32 = 30;
pub const CLIENT_PERIOD: Duration = Duration::from_secs(2);

type Keyed<K> = governor::DefaultKeyedRateLimiter<K>;

/// The sign-in rate limit, in bounded memory (GCRA, crate `governor`): every attempt
/// spends a cell of its (client, user name) key, which locks that pair out after
/// [`LOGIN_MAX_FAILURES`] quick attempts, and one of its client's key, a looser limit on
/// one address trying many names. The lock-out is per client, so nobody can lock a user
/// out from elsewhere by failing on their name. Keys whose cells are all back are
/// forgotten (`retain_recent`) every [`LoginLimiter::SWEEP_EVERY`] attempts, so memory
/// holds only recent attempts, each key at most [`MAX_NAME`] characters long.
pub struct LoginLimiter {
    pairs: Keyed<(IpAddr, String)>,
    clients: Keyed<IpAddr>,
    attempts: AtomicU64,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        let pair = Quota::with_period(LOGIN_WINDOW / LOGIN_MAX_FAILURES as u32)
            .expect("non-zero period")
            .allow_burst(NonZeroU32::new(LOGIN_MAX_FAILURES as u32).expect("non-zero"));
        let client = Quota::with_period(CLIENT_PERIOD)
            .expect("non-zero period")
            .allow_burst(NonZeroU32::new(CLIENT_BURST).expect("non-zero"));
        LoginLimiter::new(pair, client)
    }
}

impl LoginLimiter {
    /// Sweep forgotten keys every this many attempts.
    pub const SWEEP_EVERY: u64 = 256;

    pub fn new(pair: Quota, client: Quota) -> LoginLimiter {
        LoginLimiter {
            pairs: governor::RateLimiter::keyed(pair),
            clients: governor::RateLimiter::keyed(client),
            attempts: AtomicU64::new(0),
        }
    }

    /// Spends one attempt of `client` on `name` (already normalised); `false` when either
    /// limit is reached.
    pub fn attempt(&self, client: IpAddr, name: &str) -> bool {
        if self.attempts.fetch_add(1, Ordering::Relaxed) % Self::SWEEP_EVERY
            == Self::SWEEP_EVERY - 1
        {
            self.sweep();
        }
        self.clients.check_key(&client).is_ok()
            && self.pairs.check_key(&(client, name.to_lowercase())).is_ok()
    }

    /// Forgets the keys whose limits are fully replenished.
    pub fn sweep(&self) {
        self.pairs.retain_recent();
        self.pairs.shrink_to_fit();
        self.clients.retain_recent();
        self.clients.shrink_to_fit();
    }

    /// How many keys are remembered.
    pub fn keys(&self) -> usize {
        self.pairs.len() + self.clients.len()
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

/// The `host[:port]` of an `http://` or `https://` URL (an `Origin` or a `Referer`).
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    rest.split(['/', '?', '#']).next().filter(|a| !a.is_empty())
}

/// Whether a state-changing request comes from another site, by OWASP's "verifying the
/// origin with standard headers": the `Origin` header, else the `Referer`, must name the
/// host the request was sent to (`Host`, or the URI's authority under HTTP/2). An origin of
/// `null` or one that is not an http(s) URL is cross-origin. When both headers are absent
/// the request is let through (OWASP leaves this to the application): browsers send
/// `Origin` on every cross-origin POST, so only non-browser clients (scripts, the API)
/// omit both, and the CSRF token still guards every such request.
pub fn cross_origin(req: &Request) -> bool {
    let h = req.headers();
    let source = h
        .get(header::ORIGIN)
        .or_else(|| h.get(header::REFERER))
        .map(|v| v.to_str().unwrap_or(""));
    let Some(source) = source else { return false };
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match (authority(source), host) {
        (Some(a), Some(host)) => !a.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// The routes open to a session that must change its password first.
fn open_before_change(method: &str, pattern: &str) -> bool {
    matches!(
        (method, pattern),
        ("GET" | "HEAD", "/password") | ("POST", "/password") | ("POST", "/logout")
    )
}

/// Every request passes here: a state-changing request from another origin is refused;
/// public routes go through; others need a live session whose role the route table
/// allows, and a state-changing request needs the session's CSRF token (header
/// `X-CSRF-Token` or form field `csrf`). A session that must change its password is sent
/// to `/password` and refused everything else.
pub async fn guard(State(st): State<Shared>, mut req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    req.extensions_mut().insert(ClientAddr(client));
    if !is_safe(req.method()) && cross_origin(&req) {
        return deny(
            AppError::Worded(
                StatusCode::FORBIDDEN,
                Worded::new("auth.problem.cross_origin"),
            ),
            api,
        );
    }
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
    if session.user.must_change_password && !open_before_change(req.method().as_str(), &pattern) {
        if api {
            return deny(
                AppError::Refused("change your password first (at /password)".into()),
                api,
            );
        }
        let mut r = Redirect::to("/password").into_response();
        *r.status_mut() = StatusCode::SEE_OTHER;
        if req.headers().contains_key("hx-request") {
            r.headers_mut()
                .insert("hx-redirect", HeaderValue::from_static("/password"));
        }
        return r;
    }
    let catalog = Catalog::for_request(req.headers());
    if !is_safe(req.method()) {
        let (ok, rebuilt) = match check_csrf(req, &session.csrf).await {
            Ok(v) => v,
            Err(e) => return deny(e, api),
        };
        if !ok {
            return deny(
                AppError::Worded(StatusCode::FORBIDDEN, Worded::new("auth.problem.csrf")),
                api,
            );
        }
        req = rebuilt;
    }
    req.extensions_mut().insert(CurrentUser {
        user: session.user,
        csrf: session.csrf,
        catalog,
        texts: st.texts(),
    });
    next.run(req).await
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

/// The address the request came from (the socket's peer; `0.0.0.0` when unknown, as in
/// router tests). Forwarding headers are not trusted.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// Largest form body of the sign-in and password pages.
pub const FORM_LIMIT: usize = 8 * 1024;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/password", get(password_page).post(change_password))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .route("/", get(|| async { Redirect::to("/cases") }))
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
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, AppError> {
    let t = Catalog::for_request(&headers);
    let refuse =
        |key: &str, status| render_login(&st, &headers, Some(t.get(key).to_string()), status);
    let pre = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_token(&pre, &form.csrf) {
        return refuse("login.expired", StatusCode::FORBIDDEN);
    }
    // Checked before the name is a key of the limiter or a password is hashed.
    let Ok(name) = normalise_name(&form.username) else {
        return refuse("login.bad_name", StatusCode::BAD_REQUEST);
    };
    if form.password.len() > MAX_PASSWORD {
        return refuse("password.too_long", StatusCode::BAD_REQUEST);
    }
    if !st.limiter.attempt(client, &name) {
        return refuse("login.rate_limited", StatusCode::TOO_MANY_REQUESTS);
    }
    let user = st.store.user(&name).await?;
    let hash = user
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let ok = match st.hashing.verify(form.password, hash).await {
        Ok(ok) => ok,
        Err(AppError::Unavailable(_)) => {
            return refuse("login.busy", StatusCode::SERVICE_UNAVAILABLE);
        }
        Err(e) => return Err(e),
    };
    let Some(user) = user.filter(|u| ok && !u.disabled) else {
        return refuse("login.failed", StatusCode::UNAUTHORIZED);
    };
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
    let next = if user.must_change_password {
        "/password"
    } else {
        "/cases"
    };
    let mut resp = Redirect::to(next).into_response();
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

#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    pub ctx: views::PageCtx,
    /// The user must change the password before anything else.
    pub forced: bool,
    pub error: Option<String>,
    pub flash: Option<String>,
    pub min: usize,
}

#[derive(serde::Deserialize, Default)]
struct PasswordDone {
    #[serde(default)]
    done: Option<u8>,
}

async fn password_page(
    user: CurrentUser,
    axum::extract::Query(q): axum::extract::Query<PasswordDone>,
) -> Result<Response, AppError> {
    let flash = q
        .done
        .map(|_| user.catalog.get("password.changed").to_string());
    render_password(&user, None, flash, StatusCode::OK)
}

fn render_password(
    user: &CurrentUser,
    error: Option<String>,
    flash: Option<String>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let page = PasswordPage {
        ctx: views::PageCtx::new(user),
        forced: user.user.must_change_password,
        error,
        flash,
        min: password::MIN_PASSWORD,
    };
    Ok((status, Html(page.render()?)).into_response())
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

/// A user's own password change: the current password, then a new one that meets the
/// policy ([`password::check`]), twice. Every other session of the user ends; this one
/// stays, and a forced change is lifted.
async fn change_password(
    State(st): State<Shared>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    user: CurrentUser,
    headers: HeaderMap,
    axum::Form(f): axum::Form<PasswordForm>,
) -> Result<Response, AppError> {
    let t = user.catalog;
    let refuse = |msg: String, status| render_password(&user, Some(msg), None, status);
    if f.current.len() > MAX_PASSWORD {
        return refuse(
            t.get("password.wrong_current").into(),
            StatusCode::BAD_REQUEST,
        );
    }
    if let Err(p) = password::check(&f.new) {
        return refuse(p.message(t), StatusCode::BAD_REQUEST);
    }
    if f.new != f.confirm {
        return refuse(t.get("password.mismatch").into(), StatusCode::BAD_REQUEST);
    }
    if f.new == f.current {
        return refuse(t.get("password.same").into(), StatusCode::BAD_REQUEST);
    }
    // Guessing the current password from a stolen session is rate limited like sign-in.
    if !st.limiter.attempt(client, &user.user.name) {
        return refuse(
            t.get("login.rate_limited").into(),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    if !st
        .hashing
        .verify(f.current, user.user.password_hash.clone())
        .await?
    {
        return refuse(
            t.get("password.wrong_current").into(),
            StatusCode::BAD_REQUEST,
        );
    }
    let hash = st.hashing.hash(f.new).await?;
    let keep = cookie(&headers, SESSION_COOKIE).map(|t| token_id(&t));
    st.store
        .set_password(
            &user.user.name,
            &hash,
            false,
            &user.user.name,
            keep.as_deref(),
        )
        .await?;
    let mut r = Redirect::to("/password?done=1").into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    Ok(r)
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
    use std::time::Instant;

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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn limiter_blocks_a_client_and_name_after_five_attempts() {
        let l = LoginLimiter::default();
        for _ in 0..LOGIN_MAX_FAILURES {
            assert!(l.attempt(ip("10.0.0.1"), "Ann"));
        }
        assert!(!l.attempt(ip("10.0.0.1"), "ANN"));
        // Another client is not locked out of the same name.
        assert!(l.attempt(ip("10.0.0.2"), "ann"));
    }

    /// Finding: the limiter kept every user name ever tried, forever, each up to 256 KB.
    /// Now keys are swept once their limits are back, so memory holds recent attempts only.
    #[test]
    fn the_login_limiter_forgets_names_once_their_limit_is_back() {
        let quick = Quota::with_period(Duration::from_millis(1))
            .unwrap()
            .allow_burst(NonZeroU32::new(5).unwrap());
        let l = LoginLimiter::new(quick, quick);
        for i in 0..10_000u32 {
            let client = IpAddr::from(i.to_be_bytes());
            assert!(l.attempt(client, &format!("user{i}")));
        }
        std::thread::sleep(Duration::from_millis(20));
        l.sweep();
        assert_eq!(l.keys(), 0, "swept keys are forgotten");
        // The sweep runs by itself every SWEEP_EVERY attempts.
        for i in 0..LoginLimiter::SWEEP_EVERY as u32 * 4 {
            l.attempt(ip("10.0.0.1"), &format!("user{i}"));
            std::thread::sleep(Duration::from_micros(50));
        }
        assert!(
            l.keys() < 2 * LoginLimiter::SWEEP_EVERY as usize,
            "{} keys kept",
            l.keys()
        );
    }

    /// Finding: 64 parallel sign-ins ran 64 argon2 hashes at once (33 MB -> 3.7 GB).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_logins_cannot_run_unbounded_argon2_hashes() {
        let gate = Arc::new(HashGate::new(2, 2, Duration::from_millis(200)));
        let now = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (gate, now, most) = (gate.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    gate.run(move || {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        let started = Instant::now();
        let (mut ran, mut refused) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ran += 1,
                Err(AppError::Unavailable(_)) => refused += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(most.load(Ordering::SeqCst) <= 2, "at most 2 hashes at once");
        assert!(ran >= 2 && refused >= 32, "{ran} ran, {refused} refused");
        assert_eq!(ran + refused, 64);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "refusals are quick"
        );
        // Free again afterwards.
        assert!(gate.verify("x".into(), "not a hash".into()).await.is_ok());
    }

    /// Finding: user names were taken as typed, so look-alike names (bidi overrides,
    /// zero-width characters, compatibility forms) could impersonate others.
    #[test]
    fn user_names_are_nfkc_and_refuse_invisible_characters() {
        assert_eq!(normalise_name("  ａｎｎ ").unwrap(), "ann");
        assert_eq!(normalise_name("ﬁona").unwrap(), "fiona");
        for bad in [
            "ann\u{202E}",
            "a\u{200B}nn",
            "\u{FEFF}ann",
            "an\u{2066}n",
            "a\u{00AD}nn",
            "a\u{0007}",
        ] {
            assert_eq!(normalise_name(bad), Err(NameProblem::Invisible), "{bad:?}");
        }
        assert_eq!(normalise_name("   "), Err(NameProblem::Length));
        assert_eq!(normalise_name(&"a".repeat(65)), Err(NameProblem::Length));
        assert_eq!(
            normalise_name(&"a".repeat(256 * 1024)),
            Err(NameProblem::Length)
        );
        assert_eq!(normalise_name(&"a".repeat(64)).unwrap().len(), 64);
        assert_eq!(normalise_name("李雷").unwrap(), "李雷");
    }

    fn post_from(origin: Option<&str>, referer: Option<&str>, host: &str) -> Request {
        let mut b = Request::builder()
            .method("POST")
            .uri("/alerts/x/notes")
            .header(header::HOST, host);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        if let Some(r) = referer {
            b = b.header(header::REFERER, r);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn origin_or_referer_must_name_the_host() {
        let h = "dash.example:8080";
        assert!(!cross_origin(&post_from(None, None, h)));
        assert!(!cross_origin(&post_from(
            Some("https://dash.example:8080"),
            None,
            h
        )));
        assert!(!cross_origin(&post_from(
            None,
            Some("http://dash.example:8080/alerts?x=1"),
            h
        )));
        assert!(cross_origin(&post_from(
            Some("https://evil.example"),
            None,
            h
        )));
        assert!(cross_origin(&post_from(Some("null"), None, h)));
        assert!(cross_origin(&post_from(
            Some("https://dash.example:8080.evil.example"),
            None,
            h
        )));
        assert!(cross_origin(&post_from(
            None,
            Some("https://evil.example/dash.example:8080"),
            h
        )));
        // Origin wins over Referer.
        assert!(cross_origin(&post_from(
            Some("https://evil.example"),
            Some("http://dash.example:8080/"),
            h
        )));
    }
}
