//! The analyst dashboard and JSON API (`clearwatch serve`): the router with one sub-router
//! per area, the shared state, the guard every request passes (session, role, CSRF),
//! security headers and body limits, errors that never leak internals, and the server loop
//! with graceful shutdown.

pub mod accounts;
pub mod alerts;
pub mod api;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod cases;
pub mod extract;
pub mod i18n;
pub mod lists;
pub mod password;
pub mod routes;
pub mod rules;
pub mod streaming;
pub mod suppressions;
pub mod users;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use clearwatch_rules::kinds::Stop;
use clearwatch_rules::load::PackSource;
use clearwatch_rules::texts::Texts;
use clearwatch_scan::ScanError;
use clearwatch_store::UserStore;
use clearwatch_store::cases::CaseError;
use clearwatch_store::{AnyStore, StoreError};

/// How long a dashboard backtest may run before it is stopped.
pub const DEFAULT_BACKTEST_BUDGET: Duration = Duration::from_secs(60);

/// How often the server writes an audit checkpoint by default: daily.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Largest request body accepted (rule texts are the largest legitimate bodies).
pub const BODY_LIMIT: usize = 256 * 1024;

/// The dashboard's Content-Security-Policy: scripts, styles and connections only from this
/// origin, no inline script, no framing. The one inline style allowed (by hash) is the rule
/// cytoscape.js inserts for its container: `.__________cytoscape_container { position: relative; }`.
pub const CSP: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'sha256-pgvDUBa4IjFA2yuSJ2cqcyxmNYJMborsd0ORcRv9vw8='; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot hash the password: {0}")]
    Password(String),
}

/// What every handler shares.
pub struct AppState {
    pub store: AnyStore,
    /// The rule pack the rules pages and backtests use (with the store's published
    /// versions applied by the scan service).
    pub rules: PackSource,
    pub limiter: auth::LoginLimiter,
    /// Bounds the argon2 work of sign-ins and password changes.
    pub hashing: auth::HashGate,
    /// Whether the cookies carry `Secure` (see [`secure_cookies`]).
    pub secure_cookies: bool,
    /// The installation's evidence signing key (created on first export).
    pub export_key: PathBuf,
    /// Set when the server shuts down: long work (backtests) stops.
    pub shutdown: Stop,
    /// The longest a backtest may run.
    pub backtest_budget: Duration,
    /// How often the server copies the audit log's signed head into the checkpoints
    /// folder beside the audit key (`None`: never).
    pub checkpoint_every: Option<Duration>,
    /// Working days from detection to a decision (the review deadline).
    pub review_days: u32,
    /// How often the server deals unassigned open cases to available analysts
    /// (`None`: never; supervisors can still do it from the case queue).
    pub auto_assign_every: Option<Duration>,
    /// The JetStream stream whose lag the admin page shows (`serve --nats`).
    pub stream: Option<streaming::StreamWatch>,
    /// The pack's texts in every language, read from its `_shared` files on first use (a
    /// changed translation shows after a restart).
    texts: OnceLock<Arc<Texts>>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(store: AnyStore, rules: PackSource) -> Shared {
        Arc::new(AppState {
            store,
            rules,
            limiter: auth::LoginLimiter::default(),
            hashing: auth::HashGate::default(),
            secure_cookies: false,
            export_key: std::env::var_os("CLEARWATCH_EXPORT_KEY").map_or_else(
                || PathBuf::from(clearwatch_export::keys::DEFAULT_KEY),
                PathBuf::from,
            ),
            shutdown: Stop::default(),
            backtest_budget: DEFAULT_BACKTEST_BUDGET,
            review_days: clearwatch_model::case::REVIEW_WORKING_DAYS,
            checkpoint_every: Some(DEFAULT_CHECKPOINT_EVERY),
            auto_assign_every: None,
            stream: None,
            texts: OnceLock::new(),
        })
    }

    /// Rule titles, summaries and figure names in every language.
    pub fn texts(&self) -> Arc<Texts> {
        self.texts
            .get_or_init(|| Arc::new(clearwatch_rules::load::load_texts(&self.rules)))
            .clone()
    }
}

/// The whole application: every area's router, the guard, and the security layers.
pub fn app(state: Shared) -> Router {
    let areas = Router::new()
        .merge(auth::router())
        .merge(alerts::router())
        .merge(accounts::router())
        .merge(cases::router())
        .merge(suppressions::router())
        .merge(lists::router())
        .merge(rules::router())
        .merge(audit::router())
        .merge(users::router())
        .merge(streaming::router())
        .merge(api::router())
        .merge(assets::router())
        .fallback(|| async { AppError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .with_state(state);
    areas
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::from_fn(api_errors))
        .layer(axum::middleware::from_fn(localise_errors))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
}

/// Whether cookies must carry `Secure`: whenever the server listens on anything but
/// loopback (a browser reaches it over the network, which must be through TLS), or when
/// it is told it sits behind a TLS-terminating proxy (`serve --behind-tls`). Only plain
/// HTTP on loopback, where a browser would drop a `Secure` cookie, goes without.
pub fn secure_cookies(bind: SocketAddr, behind_tls: bool) -> bool {
    behind_tls || !bind.ip().is_loopback()
}

/// Creates an `admin` with a random password when the store has no user; returns the
/// password, to be printed once. It is a one-time password: the admin must choose their
/// own at the first sign-in, and the dashboard allows nothing else until then.
pub async fn bootstrap_admin(store: &AnyStore) -> Result<Option<(String, String)>, ServerError> {
    if !store.users().await?.is_empty() {
        return Ok(None);
    }
    let password = auth::random_token(12);
    let hash = auth::hash_password(&password).map_err(ServerError::Password)?;
    match store
        .add_user(
            "admin",
            clearwatch_model::case::UserRole::Admin,
            &hash,
            "system",
        )
        .await
    {
        Ok(_) => {
            store
                .set_password("admin", &hash, true, "system", None)
                .await?;
            Ok(Some(("admin".to_string(), password)))
        }
        // Another process created it first.
        Err(StoreError::Case(CaseError::UserExists(_))) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Makes glibc give every allocation of 1 MiB or more its own mapping, returned to the
/// system when freed. Without it glibc raises its mmap threshold after the first argon2
/// buffer (19 MiB) is freed, and from then on keeps such buffers in the arena of every
/// blocking thread that hashed once: a sign-in flood grew the server by ~480 MB even with
/// only two hashes at a time (measured with `bench/login-flood`; 6 MB with this).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_large_buffers() {
    // SAFETY: mallopt only sets an allocator tunable; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_large_buffers() {}

/// Serves until Ctrl-C (or SIGTERM), then lets requests in flight finish.
pub async fn serve(
    state: Shared,
    addr: SocketAddr,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    release_large_buffers();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(ServerError::Serve)?;
    on_ready(bound);
    let shutdown = state.shutdown.clone();
    let checkpoints = state
        .checkpoint_every
        .map(|every| tokio::spawn(write_checkpoints(state.clone(), every)));
    let dealing = state
        .auto_assign_every
        .map(|every| tokio::spawn(cases::auto_assign(state.clone(), every)));
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Requests in flight finish; long work among them stops now.
            shutdown.stop();
        })
        .await
        .map_err(ServerError::Serve);
    for task in [checkpoints, dealing].into_iter().flatten() {
        task.abort();
    }
    served
}

/// Copies the audit log's signed head into the checkpoints folder now and then every
/// `every`; a failure is reported on stderr and tried again next time.
pub async fn write_checkpoints(state: Shared, every: Duration) {
    use clearwatch_store::AuditStore;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match state.store.write_audit_checkpoint(None).await {
            Ok(Some((path, head))) => {
                eprintln!(
                    "audit checkpoint of entry {} written to {}",
                    head.seq,
                    path.display()
                );
            }
            Ok(None) => return,
            Err(e) => eprintln!("warning: cannot write the audit checkpoint: {e}"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("shutting down: finishing requests in flight");
}

/// A failed request, as the user sees it: a status and a safe message. Internal errors are
/// logged to stderr and shown as a generic message.
#[derive(Debug)]
pub enum AppError {
    NotFound,
    Forbidden,
    /// Refused (403) for a reason the user can act on.
    Refused(String),
    Unauthenticated {
        api: bool,
    },
    BadRequest(String),
    Conflict(String),
    /// A refusal with this status, worded in the reader's language.
    Worded(StatusCode, i18n::Worded),
    TooManyRequests,
    TooLarge,
    /// The work was stopped (a time budget, a shutdown): try again or narrow it.
    Unavailable(String),
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Case(c) => match c {
                CaseError::NotAllowed(_) => AppError::Forbidden,
                CaseError::NotFound(_) => AppError::NotFound,
                CaseError::Conflict { .. }
                | CaseError::AlreadyPending(_)
                | CaseError::NotActive(..)
                | CaseError::ListExists(_)
                | CaseError::AlreadyRemoved(_) => {
                    AppError::Worded(StatusCode::CONFLICT, case_worded(&c))
                }
                _ => AppError::Worded(StatusCode::BAD_REQUEST, case_worded(&c)),
            },
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<ScanError> for AppError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Store(s) => s.into(),
            ScanError::WrongRule { .. } => AppError::BadRequest(e.to_string()),
            ScanError::OverBudget(_) | ScanError::Cancelled => AppError::Unavailable(e.to_string()),
            ScanError::NoSuchRule(_) => AppError::NotFound,
            other => {
                let details: Vec<String> =
                    other.diagnostics().iter().map(|d| d.to_string()).collect();
                AppError::Internal(format!("{other}\n{}", details.join("\n")))
            }
        }
    }
}

/// A refusal of the case workflow as the catalogue words it (`case.problem.*`); the
/// English catalogue gives the same text as its `Display`.
fn case_worded(c: &CaseError) -> i18n::Worded {
    use i18n::Worded as W;
    let status = |s: &clearwatch_model::case::Status| format!("status.{}", s.as_str());
    match c {
        CaseError::Conflict {
            alert_id,
            expected,
            found,
        } => W::new("case.problem.conflict")
            .arg("alert", alert_id)
            .arg("found", found)
            .arg("expected", expected),
        CaseError::NotFound(what) => W::new("case.problem.not_found").arg("what", what),
        CaseError::BadTransition { from, to } => W::new("case.problem.bad_transition")
            .term("from", status(from))
            .term("to", status(to)),
        CaseError::NeedsApproval(s) => W::new("case.problem.needs_approval").term("to", status(s)),
        CaseError::NoApprovalNeeded(s) => {
            W::new("case.problem.no_approval_needed").term("to", status(s))
        }
        CaseError::ReasonRequired => W::new("case.problem.reason_required"),
        CaseError::SelfApproval => W::new("case.problem.self_approval"),
        CaseError::NotSupervisor => W::new("case.problem.not_supervisor"),
        CaseError::AlreadyPending(a) => W::new("case.problem.already_pending").arg("alert", a),
        CaseError::AlreadyDecided(r) => W::new("case.problem.already_decided").arg("request", r),
        CaseError::UserExists(u) => W::new("case.problem.user_exists").arg("user", u),
        CaseError::EmptyNote => W::new("case.problem.empty_note"),
        CaseError::SuppressionNeedsDismissal => W::new("case.problem.suppression_needs_dismissal"),
        CaseError::BadSuppression(p) => W::new(p.key()),
        CaseError::NotActive(id, state) => W::new("case.problem.not_active")
            .arg("id", id)
            .term("state", format!("suppression.{state}")),
        CaseError::BadListEntry(p) => W::new(p.key()),
        CaseError::ListExists(name) => W::new("case.problem.list_exists").arg("list", name),
        CaseError::AlreadyRemoved(id) => W::new("case.problem.already_removed").arg("id", id),
        CaseError::NotAllowed(why) => W::new("case.problem.not_allowed").arg("why", why),
        CaseError::Bulk { alert_id, source } => W::new("case.problem.bulk")
            .arg("alert", alert_id)
            .then(case_worded(source)),
    }
}

impl From<clearwatch_export::ExportError> for AppError {
    fn from(e: clearwatch_export::ExportError) -> Self {
        match e {
            clearwatch_export::ExportError::Store(s) => s.into(),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(format!("template: {e}"))
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden | AppError::Refused(_) => StatusCode::FORBIDDEN,
            AppError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Worded(status, _) => *status,
            AppError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            AppError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The catalogue key of a message that does not depend on the error's detail.
    fn message_key(&self) -> Option<&'static str> {
        Some(match self {
            AppError::NotFound => "error.not_found",
            AppError::Forbidden => "error.forbidden",
            AppError::Unauthenticated { .. } => "error.sign_in",
            AppError::TooManyRequests => "error.too_many",
            AppError::TooLarge => "error.too_large",
            AppError::Internal(_) => "error.internal",
            _ => return None,
        })
    }

    /// The message shown to the user (never internal details), in English.
    pub fn public_message(&self) -> String {
        match (self, self.message_key()) {
            (_, Some(key)) => i18n::english().get(key).to_string(),
            (AppError::Worded(_, w), None) => w.render(i18n::english()),
            (
                AppError::BadRequest(m)
                | AppError::Refused(m)
                | AppError::Conflict(m)
                | AppError::Unavailable(m),
                None,
            ) => m.clone(),
            _ => "error".into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(detail) = &self {
            eprintln!("error: internal server error: {detail}");
        }
        if let AppError::Unauthenticated { api: false } = self {
            return Redirect::to("/login").into_response();
        }
        let shown = ShownError {
            key: self.message_key(),
            worded: match &self {
                AppError::Worded(_, w) => Some(w.clone()),
                _ => None,
            },
            message: self.public_message(),
        };
        let mut resp = error_page(i18n::english(), self.status(), &shown);
        resp.extensions_mut().insert(shown);
        resp
    }
}

/// What an error page shows, kept on the response so that [`localise_errors`] can show it
/// in the reader's language.
#[derive(Clone)]
struct ShownError {
    key: Option<&'static str>,
    worded: Option<i18n::Worded>,
    message: String,
}

fn error_page(t: &'static i18n::Catalog, status: StatusCode, shown: &ShownError) -> Response {
    let page = views::ErrorPage {
        t,
        status: status.as_u16(),
        message: match (&shown.worded, shown.key) {
            (Some(w), _) => w.render(t),
            (None, Some(k)) => t.get(k).to_string(),
            (None, None) => shown.message.clone(),
        },
    };
    match askama::Template::render(&page) {
        Ok(html) => (status, axum::response::Html(html)).into_response(),
        Err(_) => (status, shown.message.clone()).into_response(),
    }
}

/// Error pages in the language of the request's `Accept-Language` (an error is made where
/// the request is no longer at hand). Messages that carry a detail stay as written.
async fn localise_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let t = i18n::Catalog::for_request(req.headers());
    let resp = next.run(req).await;
    match resp.extensions().get::<ShownError>() {
        Some(shown) if t.language != clearwatch_model::Lang::En => {
            let page = error_page(t, resp.status(), shown);
            let (mut parts, _) = resp.into_parts();
            let (new, body) = page.into_parts();
            for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH] {
                match new.headers.get(&name) {
                    Some(v) => parts.headers.insert(name, v.clone()),
                    None => parts.headers.remove(name),
                };
            }
            Response::from_parts(parts, body)
        }
        _ => resp,
    }
}

/// The machine-readable name of an error status, the `code` of the API's error body.
pub fn error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// The API's one error body: `{"error": sentence, "code": name}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A sentence for people.
    pub error: String,
    /// A stable name for programs, such as `bad_request` or `not_found`.
    pub code: String,
}

fn api_error_body(status: StatusCode, message: &str) -> Response {
    let body = ErrorBody {
        error: message.to_string(),
        code: error_code(status).to_string(),
    };
    (status, axum::Json(body)).into_response()
}

/// Gives every error of `/api/` the API's error body, including those made before a
/// handler runs (a malformed JSON body, a bad query, a body over the limit, an unknown
/// route or method), which axum and tower-http answer in plain text or empty.
async fn api_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !api || status.as_u16() < 400 || is_json {
        return resp;
    }
    let message = if status.is_server_error() {
        AppError::Internal(String::new()).public_message()
    } else {
        let (_, body) = resp.into_parts();
        let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_string();
        if text.is_empty() || text.starts_with('<') {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        }
    };
    api_error_body(status, &message)
}

/// Errors of the JSON API: the same mapping, as `{"error": "...", "code": "..."}`.
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let AppError::Internal(detail) = &self.0 {
            eprintln!("error: internal server error: {detail}");
        }
        api_error_body(self.0.status(), &self.0.public_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clearwatch_model::case::Status;
    use clearwatch_model::lists::EntryProblem;
    use clearwatch_model::suppression::ExpiryProblem;

    /// One of every refusal of the case workflow.
    fn refusals() -> Vec<CaseError> {
        let conflict = || CaseError::Conflict {
            alert_id: "a1".into(),
            expected: 2,
            found: 3,
        };
        vec![
            conflict(),
            CaseError::NotFound("alert a1".into()),
            CaseError::BadTransition {
                from: Status::Closed,
                to: Status::InReview,
            },
            CaseError::NeedsApproval(Status::Escalated),
            CaseError::NoApprovalNeeded(Status::InReview),
            CaseError::ReasonRequired,
            CaseError::SelfApproval,
            CaseError::NotSupervisor,
            CaseError::AlreadyPending("a1".into()),
            CaseError::AlreadyDecided(7),
            CaseError::UserExists("ana".into()),
            CaseError::EmptyNote,
            CaseError::SuppressionNeedsDismissal,
            CaseError::BadSuppression(ExpiryProblem::Past),
            CaseError::BadSuppression(ExpiryProblem::TooLong),
            CaseError::NotActive(4, "lifted"),
            CaseError::BadListEntry(EntryProblem::ValueLength),
            CaseError::BadListEntry(EntryProblem::NoReason),
            CaseError::BadListEntry(EntryProblem::LongReason),
            CaseError::BadListEntry(EntryProblem::Past),
            CaseError::BadListEntry(EntryProblem::TooLong),
            CaseError::BadListEntry(EntryProblem::ListName),
            CaseError::BadListEntry(EntryProblem::LongDescription),
            CaseError::ListExists("vip".into()),
            CaseError::AlreadyRemoved(9),
            CaseError::Bulk {
                alert_id: "a2".into(),
                source: Box::new(conflict()),
            },
        ]
    }

    /// The catalogue words every refusal in Chinese with each placeholder filled, and in
    /// English as the error's own text (what the CLI and logs print), statuses aside: the
    /// catalogue names them by label ("in review"), the text by code.
    #[test]
    fn every_case_refusal_is_worded_in_both_languages() {
        let cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        for e in refusals() {
            let w = case_worded(&e);
            let zh = w.render(i18n::chinese());
            assert!(cjk(&zh) && !zh.contains('{'), "{e}: {zh}");
            let en = w.render(i18n::english());
            assert!(!en.contains('{') && !cjk(&en), "{e}: {en}");
            let labelled = e.to_string().replace("in_review", "in review");
            assert_eq!(en, labelled);
        }
    }
}
