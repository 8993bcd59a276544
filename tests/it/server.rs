//! Router tests of the dashboard, with `tower::ServiceExt::oneshot` (no socket): every
//! route of the authorization table for every role and without a session, CSRF
//! rejection, sign-in and its rate limit, security headers, escaping of untrusted data,
//! and the workflow rules over HTTP (self-approval refused, version conflict reported).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clearwatch_model::case::Status;
use clearwatch_model::case::UserRole;
use clearwatch_model::{Alert, Evidence, Severity, Subject, SubjectKind, Window};
use clearwatch_rules::load::PackSource;
use clearwatch_server::auth::{self, CSRF_HEADER, SESSION_COOKIE};
use clearwatch_server::routes::{Access, ROUTES};
use clearwatch_server::{self as server, AppState, Shared};
use clearwatch_store::AlertStore;
use clearwatch_store::AuditStore;
use clearwatch_store::CaseStore;
use clearwatch_store::UserStore;
use clearwatch_store::{AlertFilter, RuleVersion};
use tower::ServiceExt;

use crate::store::TestDb;
use crate::support::ingest_demo;

struct Fixture {
    _db: TestDb,
    _keys: tempfile::TempDir,
    st: Shared,
    app: Router,
    alert_id: String,
    approval_id: i64,
}

fn alert() -> Alert {
    let subject = Subject {
        kind: SubjectKind::Account,
        id: "H1".into(),
    };
    let window = Window {
        from: 1_767_225_600_000,
        until: 1_767_830_400_000,
    };
    Alert {
        id: Alert::make_id("TC-04", "v1", &subject, window),
        rule_id: "TC-04".into(),
        rule_version: "v1".into(),
        title: "pool".into(),
        subject,
        window,
        severity: Severity::High,
        score: 80,
        summary: "H1 pooled <script>alert(1)</script>".into(),
        currency: Some("CNY".into()),
        metrics: BTreeMap::from([("payers".to_string(), serde_json::json!(12))]),
        evidence: Evidence {
            transactions: vec![],
            accounts: vec!["H1".into(), "X1".into()],
        },
    }
}

async fn fixture() -> Fixture {
    let db = TestDb::sqlite().await;
    let a = alert();
    let rule = RuleVersion {
        rule_id: "TC-04".into(),
        version: "v1".into(),
        title: "pool".into(),
        text: "id: TC-04\n".into(),
    };
    db.store
        .save_alerts(std::slice::from_ref(&a), std::slice::from_ref(&rule))
        .await
        .unwrap();
    let hash = auth::hash_password("password-123").unwrap();
    for role in UserRole::ALL {
        db.store
            .add_user(role.as_str(), role, &hash, "test")
            .await
            .unwrap();
    }
    db.store
        .add_user("supervisor2", UserRole::Supervisor, &hash, "test")
        .await
        .unwrap();
    // A second alert with a pending request, for the decide route.
    let mut b = alert();
    b.subject.id = "H2".into();
    b.id = Alert::make_id("TC-04", "v1", &b.subject, b.window);
    db.store
        .save_alerts(std::slice::from_ref(&b), &[])
        .await
        .unwrap();
    let req = db
        .store
        .request_approval(&b.id, 1, Status::Dismissed, Some("known"), "analyst", None)
        .await
        .unwrap();
    let store = db.reopen().await.unwrap();
    let mut st = AppState::new(store, PackSource::resolve(&[]));
    // Exports sign with a key of their own, never one in the working directory.
    let keys = tempfile::tempdir().unwrap();
    std::sync::Arc::get_mut(&mut st)
        .expect("not shared yet")
        .export_key = keys.path().join("export.key");
    let app = server::app(st.clone());
    Fixture {
        _db: db,
        _keys: keys,
        st,
        app,
        alert_id: a.id,
        approval_id: req.id,
    }
}

/// A fresh session of `user`: `(cookie header, csrf token)`.
async fn login_as(st: &Shared, user: &str) -> (String, String) {
    let token = auth::start_session(st, user).await.unwrap();
    let s = st
        .store
        .session(&auth::token_id(&token), auth::now_ms())
        .await
        .unwrap()
        .unwrap();
    (format!("{SESSION_COOKIE}={token}"), s.csrf)
}

fn concrete(path: &str, f: &Fixture) -> String {
    // A reset forces a password change: not on a user the walk signs in as.
    path.replace(
        "/admin/users/{name}/password",
        "/admin/users/supervisor2/password",
    )
    .replace("{*path}", "app.css")
    .replace("/approvals/{id}", &format!("/approvals/{}", f.approval_id))
    .replace("/suppressions/{id}", "/suppressions/1")
    .replace("/accounts/{id}", "/accounts/H1")
    .replace("/rules/{id}", "/rules/TC-04")
    .replace("{name}", "auditor")
    .replace("{id}", &f.alert_id)
}

/// A JSON API request of a session.
fn json_request(method: &str, uri: &str, cookie: &str, csrf: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header(CSRF_HEADER, csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 4 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn request(
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    form: &str,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    if let Some(t) = csrf {
        b = b.header(CSRF_HEADER, t);
    }
    if method == "POST" {
        b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    b.body(Body::from(form.to_string())).unwrap()
}

#[tokio::test]
async fn every_route_for_every_role() {
    let f = fixture().await;
    let mut checked = 0;
    for spec in ROUTES {
        let uri = concrete(spec.path, &f);
        match spec.access {
            Access::Public => {
                let (status, _, _) = send(&f.app, request(spec.method, &uri, None, None, "")).await;
                assert_ne!(status, StatusCode::FORBIDDEN, "{} {uri}", spec.method);
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{} {uri}", spec.method);
            }
            Access::Roles(allowed) => {
                // No session: sign in first (a redirect for pages, 401 for the API).
                let (status, headers, _) =
                    send(&f.app, request(spec.method, &uri, None, None, "")).await;
                if uri.starts_with("/api/") {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {uri}", spec.method);
                } else {
                    assert!(status.is_redirection(), "{} {uri}: {status}", spec.method);
                    assert_eq!(headers[header::LOCATION], "/login");
                }
                for role in UserRole::ALL {
                    let (cookie, csrf) = login_as(&f.st, role.as_str()).await;
                    let body = if uri.starts_with("/api/v1/cases") && spec.method == "POST" {
                        String::new()
                    } else {
                        "version=1&body=x&text=x&decision=reject&target=escalated".to_string()
                    };
                    let mut req = request(spec.method, &uri, Some(&cookie), Some(&csrf), &body);
                    if uri.starts_with("/api/v1/cases") && spec.method == "POST" {
                        req = Request::builder()
                            .method("POST")
                            .uri(&uri)
                            .header(header::COOKIE, &cookie)
                            .header(CSRF_HEADER, &csrf)
                            .header(header::CONTENT_TYPE, "application/json")
                            .body(Body::from(r#"{"expected_version": 999}"#))
                            .unwrap();
                    }
                    let (status, _, text) = send(&f.app, req).await;
                    if allowed.contains(&role) {
                        assert!(
                            status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                            "{role} should be allowed {} {uri}: {status} {text}",
                            spec.method
                        );
                        assert!(
                            !status.is_server_error(),
                            "{role} {} {uri}: {status} {text}",
                            spec.method
                        );
                    } else {
                        assert_eq!(
                            status,
                            StatusCode::FORBIDDEN,
                            "{role} should be refused {} {uri}",
                            spec.method
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 100, "{checked}");
}

#[tokio::test]
async fn state_changes_need_the_csrf_token() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let uri = format!("/alerts/{}/notes", f.alert_id);
    let (status, _, _) = send(
        &f.app,
        request("POST", &uri, Some(&cookie), None, "body=hi"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(
        &f.app,
        request("POST", &uri, Some(&cookie), Some("wrong"), "body=hi"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let form = format!("body=hi&csrf={csrf}");
    let (status, _, _) = send(&f.app, request("POST", &uri, Some(&cookie), None, &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(
        &f.app,
        request("POST", &uri, Some(&cookie), Some(&csrf), "body=again"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(f.st.store.notes(&f.alert_id).await.unwrap().len(), 2);
    // Another session's token does not do.
    let (_, other) = login_as(&f.st, "supervisor").await;
    let (status, _, _) = send(
        &f.app,
        request("POST", &uri, Some(&cookie), Some(&other), "body=x"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The JSON API too.
    let req = Request::builder()
        .method("POST")
        .uri(format!("/api/v1/cases/{}", f.alert_id))
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"expected_version": 1, "assignee": "analyst"}"#,
        ))
        .unwrap();
    assert_eq!(send(&f.app, req).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn workflow_over_http() {
    let f = fixture().await;
    let (sup, sup_csrf) = login_as(&f.st, "supervisor").await;
    let case = format!("/alerts/{}/case", f.alert_id);
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            &case,
            Some(&sup),
            Some(&sup_csrf),
            "version=1&status=in_review&assignee=analyst",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The same form again, made on version 1: a conflict, reported, nothing overwritten.
    let (status, _, text) = send(
        &f.app,
        request(
            "POST",
            &case,
            Some(&sup),
            Some(&sup_csrf),
            "version=1&assignee=supervisor",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(text.contains("changed by someone else"), "{text}");
    let a = f.st.store.alert(&f.alert_id).await.unwrap().unwrap();
    assert_eq!(a.assignee.as_deref(), Some("analyst"));
    // The supervisor asks for escalation and cannot approve it.
    let req_uri = format!("/alerts/{}/request", f.alert_id);
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            &req_uri,
            Some(&sup),
            Some(&sup_csrf),
            "version=2&target=escalated",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let pending = f.st.store.approvals(Some(&f.alert_id), true).await.unwrap();
    let decide = format!("/approvals/{}/decide", pending[0].id);
    let (status, _, text) = send(
        &f.app,
        request(
            "POST",
            &decide,
            Some(&sup),
            Some(&sup_csrf),
            "decision=approve",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("cannot be decided by the user who made it"),
        "{text}"
    );
    let (sup2, sup2_csrf) = login_as(&f.st, "supervisor2").await;
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            &decide,
            Some(&sup2),
            Some(&sup2_csrf),
            "decision=approve",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        f.st.store.alert(&f.alert_id).await.unwrap().unwrap().status,
        Status::Escalated
    );
    // A dismissal without a reason is refused.
    let (an, an_csrf) = login_as(&f.st, "analyst").await;
    let (status, _, text) = send(
        &f.app,
        request(
            "POST",
            &req_uri,
            Some(&an),
            Some(&an_csrf),
            "version=4&target=dismissed&reason=",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    // The API reports conflicts as JSON.
    let req = Request::builder()
        .method("POST")
        .uri(format!("/api/v1/cases/{}", f.alert_id))
        .header(header::COOKIE, &an)
        .header(CSRF_HEADER, &an_csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"expected_version": 1, "assignee": "analyst"}"#,
        ))
        .unwrap();
    let (status, _, text) = send(&f.app, req).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["error"].as_str().unwrap().contains("version"), "{text}");
    assert!(matches!(
        f.st.store.audit_verify().await.unwrap(),
        clearwatch_model::case::AuditCheck::Intact { .. }
    ));
}

fn login_form(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    page[start..start + 32].to_string()
}

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_is_rate_limited() {
    let f = fixture().await;
    let (status, headers, page) = send(&f.app, request("GET", "/login", None, None, "")).await;
    assert_eq!(status, StatusCode::OK);
    let pre = headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        pre.contains("HttpOnly") && pre.contains("SameSite=Strict"),
        "{pre}"
    );
    let token = login_form(&page);
    let cookie = format!("{}={token}", auth::LOGIN_COOKIE);
    let post = |form: String| {
        Request::builder()
            .method("POST")
            .uri("/login")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap()
    };
    // Without the form token: refused.
    let (status, _, _) = send(
        &f.app,
        Request::builder()
            .method("POST")
            .uri("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("username=analyst&password=password-123&csrf=x"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = send(
        &f.app,
        post(format!(
            "username=analyst&password=password-123&csrf={token}"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set: Vec<String> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = set.iter().find(|c| c.starts_with(SESSION_COOKIE)).unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    for _ in 0..auth::LOGIN_MAX_FAILURES {
        let (status, _, text) = send(
            &f.app,
            post(format!("username=auditor&password=nope&csrf={token}")),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!text.contains("argon2"));
    }
    let (status, _, _) = send(
        &f.app,
        post(format!(
            "username=auditor&password=password-123&csrf={token}"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn headers_limits_and_escaping() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let (status, headers, page) = send(
        &f.app,
        request(
            "GET",
            &format!("/alerts/{}", f.alert_id),
            Some(&cookie),
            None,
            "",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    // Untrusted text is escaped; the page has no inline script.
    assert!(!page.contains("<script>alert(1)</script>"));
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "summary not escaped as expected"
    );
    assert!(!page.contains("<script>"), "inline script in the page");
    // A body over the limit is refused.
    let big = format!("csrf={csrf}&body={}", "a".repeat(server::BODY_LIMIT + 10));
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            &format!("/alerts/{}/notes", f.alert_id),
            Some(&cookie),
            None,
            &big,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown pages are 404 without details.
    let (status, _, text) = send(&f.app, request("GET", "/nope", Some(&cookie), None, "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!text.contains("panicked"));
    // The OpenAPI document.
    let (status, _, text) = send(
        &f.app,
        request("GET", "/api/openapi.json", Some(&cookie), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc["paths"]["/api/v1/alerts"].is_object());
    // Query parameters are documented as query parameters, and the case list and the
    // single case keep schemas of their own.
    for path in ["/api/v1/alerts", "/api/v1/cases", "/api/v1/audit"] {
        for p in doc["paths"][path]["get"]["parameters"].as_array().unwrap() {
            assert_eq!(p["in"], "query", "{path}: {p}");
        }
    }
    let body_of = |path: &str| {
        doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["$ref"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(body_of("/api/v1/cases"), "#/components/schemas/CaseList");
    assert_eq!(
        body_of("/api/v1/cases/{id}"),
        "#/components/schemas/CaseView"
    );
    assert!(doc["components"]["schemas"]["CaseSummary"]["properties"]["due"].is_object());
    let (_, _, text) = send(
        &f.app,
        request("GET", "/api/v1/alerts?status=new", Some(&cookie), None, ""),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["total"], 2);
}

/// `demo` ends by serving: it prints the address and a one-time admin login that works.
#[tokio::test]
async fn demo_serves_with_a_one_time_login() {
    use std::io::{BufRead, BufReader};
    let db = crate::support::Db::new();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("clearwatch"))
        .env("CLEARWATCH_DB", db.url())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut password) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("dashboard: http://") {
            addr = rest.split('/').next().map(String::from);
        }
        if let Some(rest) = line.strip_prefix("first sign-in: user admin, one-time password ") {
            password = Some(rest.trim().to_string());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let addr = addr.expect("no address printed");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let password = password.expect("no one-time password printed");
    let store = clearwatch_store::open(&db.url()).await.unwrap();
    let admin = store.user("admin").await.unwrap().unwrap();
    assert_eq!(admin.role, UserRole::Admin);
    assert!(auth::verify_password(&password, &admin.password_hash));
}

#[tokio::test]
async fn alert_page_export_downloads_a_verifiable_bundle_and_is_audited() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "auditor").await;
    let uri = format!("/alerts/{}/export", f.alert_id);
    let resp = f
        .app
        .clone()
        .oneshot(request("GET", &uri, Some(&cookie), Some(&csrf), ""))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/zip");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.zip");
    std::fs::write(&path, &bytes).unwrap();
    let v = clearwatch_export::bundle::verify(&path, None).unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    let trail =
        f.st.store
            .audit_log(Some(&format!("alert:{}", f.alert_id)), 50, 0)
            .await
            .unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.action == "export" && e.actor == "auditor"),
        "{trail:?}"
    );
}

fn htmx(mut req: Request<Body>, current_url: Option<&str>) -> Request<Body> {
    let h = req.headers_mut();
    h.insert("hx-request", "true".parse().unwrap());
    if let Some(u) = current_url {
        h.insert("hx-current-url", u.parse().unwrap());
    }
    req
}

/// The queue answers htmx with the results fragment (and the filter form out of band),
/// and everyone else, a history restore included, with the whole page.
#[tokio::test]
async fn queue_answers_htmx_with_a_fragment() {
    let f = fixture().await;
    let (cookie, _) = login_as(&f.st, "analyst").await;
    let uri = "/alerts?rule=TC-04&subject=H1&sort=newest";
    let (status, headers, page) = send(
        &f.app,
        htmx(request("GET", uri, Some(&cookie), None, ""), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::VARY]
            .to_str()
            .unwrap()
            .contains("HX-Request"),
        "{headers:?}"
    );
    assert!(
        page.trim_start().starts_with("<div id=\"results\""),
        "{page}"
    );
    assert!(
        !page.contains("<html") && !page.contains("<header"),
        "{page}"
    );
    assert!(page.contains("id=\"total\">1 "), "{page}");
    assert!(page.contains(&format!("data-alert=\"{}\"", f.alert_id)));
    // The filter form comes along, out of band, with the query's values.
    assert!(page.contains("id=\"filters\""), "{page}");
    assert!(page.contains("hx-swap-oob=\"true\""), "{page}");
    assert!(page.contains("value=\"H1\""), "{page}");
    // Status, sort and paging links keep the filter and push the URL.
    assert!(
        page.contains(
            "hx-get=\"/alerts?status=new&#38;rule=TC-04&#38;subject=H1&#38;sort=newest\""
        ),
        "{page}"
    );
    assert!(
        page.contains("hx-get=\"/alerts?rule=TC-04&#38;subject=H1&#38;sort=score\" hx-push-url=\"true\" id=\"sort-score\""),
        "{page}"
    );
    // Without htmx: the whole page, which enhances the form and links.
    let (_, _, full) = send(&f.app, request("GET", uri, Some(&cookie), None, "")).await;
    assert!(full.starts_with("<!doctype html>"), "{full}");
    assert!(full.contains("<div id=\"results\""));
    assert!(full.contains("hx-get=\"/alerts\" hx-target=\"#results\""));
    assert!(full.contains("/static/vendor/htmx.min.js"));
    assert!(
        !full.contains("hx-swap-oob"),
        "the page has no out-of-band form"
    );
    // A history restore (htmx's cache missed) needs the whole page too.
    let mut req = htmx(request("GET", uri, Some(&cookie), None, ""), None);
    req.headers_mut()
        .insert("hx-history-restore-request", "true".parse().unwrap());
    let (_, _, restored) = send(&f.app, req).await;
    assert!(restored.starts_with("<!doctype html>"));
    // Without a session, htmx is told to load the sign-in page (not handed it to swap in).
    let (status, headers, _) = send(&f.app, htmx(request("GET", uri, None, None, ""), None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["hx-redirect"], "/login");
    // The meta configuration keeps htmx within the CSP: no eval, no inline styles (nor
    // style attributes copied while settling a swap).
    assert!(
        full.contains("\"allowEval\": false") && full.contains("\"includeIndicatorStyles\": false")
    );
    assert!(full.contains(r#""attributesToSettle": ["class", "width", "height"]"#));
}

/// htmx posts carry the CSRF token in a header; without it they are refused like any post.
/// A note answers the notes list, a bulk change the queue fragment of the page it was made on.
#[tokio::test]
async fn htmx_posts_need_csrf_and_answer_fragments() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let notes = format!("/alerts/{}/notes", f.alert_id);
    let (status, _, _) = send(
        &f.app,
        htmx(
            request("POST", &notes, Some(&cookie), None, "body=hi"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(
        &f.app,
        htmx(
            request("POST", &notes, Some(&cookie), Some("nope"), "body=hi"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, page) = send(
        &f.app,
        htmx(
            request(
                "POST",
                &notes,
                Some(&cookie),
                Some(&csrf),
                "body=%3Cb%3Ebold%3C%2Fb%3E",
            ),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.trim_start()
            .starts_with("<ul class=\"notes\" id=\"note-list\">"),
        "{page}"
    );
    assert!(page.contains("&#60;b&#62;bold&#60;/b&#62;"), "{page}");
    assert!(!page.contains("<html"));
    // The page's page-wide htmx headers carry the session's token.
    let (_, _, detail) = send(
        &f.app,
        request(
            "GET",
            &format!("/alerts/{}", f.alert_id),
            Some(&cookie),
            None,
            "",
        ),
    )
    .await;
    assert!(
        detail.contains(&format!("&#34;X-CSRF-Token&#34;:&#34;{csrf}&#34;")),
        "no hx-headers"
    );
    assert!(detail.contains(&format!("hx-post=\"{notes}\" hx-target=\"#note-list\"")));
    // Bulk: refused without the token; with it, the fragment under the page's filter.
    let bulk_form = format!("sel={}%3A1&assignee=analyst&status=", f.alert_id);
    let current = "http://127.0.0.1:8080/alerts?rule=TC-04&subject=H1";
    let (status, _, _) = send(
        &f.app,
        htmx(
            request("POST", "/alerts/bulk", Some(&cookie), None, &bulk_form),
            Some(current),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        f.st.store
            .alert(&f.alert_id)
            .await
            .unwrap()
            .unwrap()
            .assignee,
        None
    );
    let (status, _, page) = send(
        &f.app,
        htmx(
            request(
                "POST",
                "/alerts/bulk",
                Some(&cookie),
                Some(&csrf),
                &bulk_form,
            ),
            Some(current),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.trim_start().starts_with("<div id=\"results\""),
        "{page}"
    );
    assert!(page.contains("1 changed, 0 not changed"), "{page}");
    assert!(
        page.contains("id=\"total\">1 "),
        "the page's filter (H1 only) applies: {page}"
    );
    assert!(page.contains("value=\"H1\""), "{page}");
    assert_eq!(
        f.st.store
            .alert(&f.alert_id)
            .await
            .unwrap()
            .unwrap()
            .assignee
            .as_deref(),
        Some("analyst")
    );
    // The same post without htmx redirects, as before.
    let bulk_form = format!("sel={}%3A2&status=in_review&csrf={csrf}", f.alert_id);
    let (status, headers, _) = send(
        &f.app,
        request("POST", "/alerts/bulk", Some(&cookie), None, &bulk_form),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/alerts?done=1")
    );
}

/// Only an administrator manages users; every change is in the audit chain; a disabled
/// user's session stops working and they cannot sign in; an admin cannot lock themselves out.
#[tokio::test]
async fn admin_manages_users() {
    let f = fixture().await;
    let (admin, admin_csrf) = login_as(&f.st, "admin").await;
    let (status, _, page) = send(
        &f.app,
        request("GET", "/admin/users", Some(&admin), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-user=\"analyst\""), "{page}");
    for role in [UserRole::Analyst, UserRole::Supervisor, UserRole::Auditor] {
        let (c, t) = login_as(&f.st, role.as_str()).await;
        let (status, _, _) = send(&f.app, request("GET", "/admin/users", Some(&c), None, "")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        let (status, _, _) = send(
            &f.app,
            request(
                "POST",
                "/admin/users",
                Some(&c),
                Some(&t),
                "name=x&role=admin&password=0123456789",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    // Add: a short password is refused; the CSRF token is required.
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            "/admin/users",
            Some(&admin),
            None,
            "name=carol&role=analyst&password=long-enough-1",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            "/admin/users",
            Some(&admin),
            Some(&admin_csrf),
            "name=carol&role=analyst&password=short",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, headers, _) = send(
        &f.app,
        request(
            "POST",
            "/admin/users",
            Some(&admin),
            Some(&admin_csrf),
            "name=carol&role=analyst&password=long-enough-1",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[header::LOCATION],
        "/admin/users?done=add&user=carol"
    );
    let carol = f.st.store.user("carol").await.unwrap().unwrap();
    assert_eq!(carol.role, UserRole::Analyst);
    assert!(auth::verify_password("long-enough-1", &carol.password_hash));
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            "/admin/users",
            Some(&admin),
            Some(&admin_csrf),
            "name=carol&role=analyst&password=long-enough-1",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a name is added once");
    // Change role, then disable: carol's session ends.
    let (carol_cookie, _) = login_as(&f.st, "carol").await;
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            "/admin/users/carol",
            Some(&admin),
            Some(&admin_csrf),
            "role=supervisor",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        f.st.store.user("carol").await.unwrap().unwrap().role,
        UserRole::Supervisor
    );
    let (status, _, _) = send(
        &f.app,
        request("GET", "/alerts", Some(&carol_cookie), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            "/admin/users/carol",
            Some(&admin),
            Some(&admin_csrf),
            "disabled=true",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, headers, _) = send(
        &f.app,
        request("GET", "/alerts", Some(&carol_cookie), None, ""),
    )
    .await;
    assert!(
        status.is_redirection() && headers[header::LOCATION] == "/login",
        "{status}"
    );
    let (_, _, page) = send(
        &f.app,
        request("GET", "/admin/users", Some(&admin), None, ""),
    )
    .await;
    assert!(
        page.contains("<tr data-user=\"carol\" class=\"disabled\">"),
        "{page}"
    );
    // Unknown users and self-lockout.
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            "/admin/users/nobody",
            Some(&admin),
            Some(&admin_csrf),
            "role=analyst",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            "/admin/users/admin",
            Some(&admin),
            Some(&admin_csrf),
            "disabled=true",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The JSON API: list and change.
    let (status, _, text) = send(
        &f.app,
        request("GET", "/api/v1/users", Some(&admin), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let users: serde_json::Value = serde_json::from_str(&text).unwrap();
    let c = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "carol")
        .unwrap();
    assert_eq!(c["disabled"], true);
    assert!(c.get("password_hash").is_none() && !text.contains("argon2"));
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/users/carol")
        .header(header::COOKIE, &admin)
        .header(CSRF_HEADER, &admin_csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"disabled": false, "time_zone": "Europe/Berlin"}"#,
        ))
        .unwrap();
    let (status, _, text) = send(&f.app, req).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["disabled"].as_bool(), v["time_zone"].as_str()),
        (Some(false), Some("Europe/Berlin"))
    );
    // Every change is audited, before and after, and the chain holds.
    let trail =
        f.st.store
            .audit_log(Some("user:carol"), 50, 0)
            .await
            .unwrap();
    let actions: Vec<&str> = trail.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.add",
            "user.role",
            "user.disable",
            "user.time_zone+enable"
        ]
    );
    assert!(trail.iter().all(|e| e.actor == "admin"));
    let role = trail.iter().find(|e| e.action == "user.role").unwrap();
    assert_eq!(role.before.as_deref(), Some(r#"{"role":"analyst"}"#));
    assert_eq!(role.after.as_deref(), Some(r#"{"role":"supervisor"}"#));
    assert!(matches!(
        f.st.store.audit_verify().await.unwrap(),
        clearwatch_model::case::AuditCheck::Intact { .. }
    ));
}

/// Posts the profile form with `zone` (URL-encoded) as the signed-in user's time zone.
async fn set_time_zone(
    f: &Fixture,
    cookie: &str,
    csrf: &str,
    zone: &str,
) -> (StatusCode, axum::http::HeaderMap) {
    let body = format!("time_zone={zone}");
    let (status, headers, _) = send(
        &f.app,
        request("POST", "/profile", Some(cookie), Some(csrf), &body),
    )
    .await;
    (status, headers)
}

/// A user sets their own time zone (audited); every page then shows times in it.
#[tokio::test]
async fn times_show_in_the_users_time_zone() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    // The alert window starts 2026-01-01T00:00:00Z.
    let (_, _, page) = send(&f.app, request("GET", "/alerts", Some(&cookie), None, "")).await;
    assert!(page.contains(">2026-01-01 00:00:00 UTC</time>"), "{page}");
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            "/profile",
            Some(&cookie),
            Some(&csrf),
            "time_zone=Mars%2FOlympus",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            "/profile",
            Some(&cookie),
            None,
            "time_zone=Asia%2FShanghai",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers) = set_time_zone(&f, &cookie, &csrf, "Asia%2FShanghai").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/profile?saved=1");
    let (_, _, page) = send(
        &f.app,
        request("GET", "/profile?saved=1", Some(&cookie), None, ""),
    )
    .await;
    assert!(
        page.contains("<option value=\"Asia/Shanghai\" selected>"),
        "{page}"
    );
    let (_, _, page) = send(&f.app, request("GET", "/alerts", Some(&cookie), None, "")).await;
    assert!(
        page.contains("datetime=\"2026-01-01T00:00:00Z\">2026-01-01 08:00:00 CST</time>"),
        "{page}"
    );
    let (_, _, page) = send(
        &f.app,
        request(
            "GET",
            &format!("/alerts/{}", f.alert_id),
            Some(&cookie),
            None,
            "",
        ),
    )
    .await;
    assert!(page.contains(">2026-01-01 08:00:00 CST</time>"), "{page}");
    // Another user still sees UTC.
    let (other, _) = login_as(&f.st, "supervisor").await;
    let (_, _, page) = send(&f.app, request("GET", "/alerts", Some(&other), None, "")).await;
    assert!(page.contains(">2026-01-01 00:00:00 UTC</time>"));
    let trail =
        f.st.store
            .audit_log(Some("user:analyst"), 10, 0)
            .await
            .unwrap();
    assert_eq!(trail[0].action, "user.time_zone");
    assert_eq!(trail[0].actor, "analyst");
    assert_eq!(
        trail[0].after.as_deref(),
        Some(r#"{"time_zone":"Asia/Shanghai"}"#)
    );
}

/// A stored summary prints its times in the reader's zone, rendered again from the
/// alert's metrics by the rule version that raised it.
#[tokio::test]
async fn alert_summaries_show_times_in_the_users_time_zone() {
    let f = fixture().await;
    ingest_demo(f._db.cmd());
    let rule = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rules/two-clear/TC-04-fund-pool.yaml");
    f._db
        .cmd()
        .arg("scan")
        .arg("--rules")
        .arg(rule)
        .assert()
        .success();
    let filter = AlertFilter {
        rule_id: Some("TC-04".into()),
        limit: 1,
        ..AlertFilter::default()
    };
    let stored = f.st.store.alerts(&filter).await.unwrap().remove(0);
    assert!(
        stored.alert.summary.contains("T00:00:00Z"),
        "{}",
        stored.alert.summary
    );
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let summary_of = |page: &str| {
        let at = page.find("<p id=\"summary\">").expect("a summary");
        page[at..at + page[at..].find("</p>").unwrap()].to_string()
    };
    let path = format!("/alerts/{}", stored.alert.id);
    let (_, _, page) = send(&f.app, request("GET", &path, Some(&cookie), None, "")).await;
    assert!(summary_of(&page).contains("T00:00:00Z"), "{page}");
    let (status, _) = set_time_zone(&f, &cookie, &csrf, "Asia%2FShanghai").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = send(&f.app, request("GET", &path, Some(&cookie), None, "")).await;
    let local = summary_of(&page);
    assert!(local.contains("T08:00:00+08:00"), "{local}");
    assert!(!local.contains("T00:00:00Z"), "{local}");
}

/// The dashboard shows which rules run a published version; a publication is stored and
/// audited, and the rule page then shows it as what scans run.
#[tokio::test]
async fn published_rules_are_marked_on_the_rules_pages() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "rule_author").await;
    let (_, _, page) = send(
        &f.app,
        request("GET", "/rules/TC-04", Some(&cookie), None, ""),
    )
    .await;
    assert!(page.contains("data-published=\"false\""), "{page}");
    let text = tc04_file().replace("severity: high", "severity: critical");
    let form = serde_urlencoded::to_string([("text", text.as_str())]).unwrap();
    let (status, _, page) = send(
        &f.app,
        request(
            "POST",
            "/rules/TC-04/publish",
            Some(&cookie),
            Some(&csrf),
            &form,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-published=\"true\""), "{page}");
    let (_, _, page) = send(&f.app, request("GET", "/rules", Some(&cookie), None, "")).await;
    assert!(page.contains("class=\"badge published\""), "{page}");
    let published = f.st.store.published_rules().await.unwrap();
    assert_eq!(published.len(), 1);
    assert!(published[0].text.contains("severity: critical"));
    let (_, _, text) = send(
        &f.app,
        request("GET", "/api/v1/rules", Some(&cookie), None, ""),
    )
    .await;
    let rules: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tc04 = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "TC-04")
        .unwrap();
    assert_eq!(
        (tc04["published"].as_bool(), tc04["severity"].as_str()),
        (Some(true), Some("critical"))
    );
    assert_eq!(tc04["version"], published[0].version.as_str());
}

/// The shipped TC-04 rule file, the text the rules pages' tests edit.
fn tc04_file() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("rules/two-clear/TC-04-fund-pool.yaml"),
    )
    .unwrap()
}

/// The rules page's backtest runs the edited text over the stored transactions and lists
/// the alerts that would appear and disappear against the stored ones; nothing is stored.
#[tokio::test]
async fn backtest_compares_an_edited_rule_with_the_stored_alerts() {
    let f = fixture().await;
    ingest_demo(f._db.cmd());
    let (cookie, csrf) = login_as(&f.st, "rule_author").await;
    let file = tc04_file();
    let backtest = |text: String| {
        let form = serde_urlencoded::to_string([("text", text.as_str())]).unwrap();
        request(
            "POST",
            "/rules/TC-04/backtest",
            Some(&cookie),
            Some(&csrf),
            &form,
        )
    };
    // The rows of one kind of change: one per subject.
    let list = |page: &str, change: &str| -> Vec<String> {
        page.split(&format!("data-change=\"{change}\">"))
            .skip(1)
            .map(|row| row[..row.find("</tr>").unwrap()].to_string())
            .collect()
    };
    let stored_before =
        f.st.store
            .count_alerts(&AlertFilter::default())
            .await
            .unwrap();

    let (status, _, page) = send(&f.app, backtest(file.clone())).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let appear = list(&page, "appears");
    assert!(!appear.is_empty(), "the demo's pool fires TC-04: {page}");
    assert!(
        appear.iter().all(|a| a.contains(">account A")),
        "{appear:?}"
    );
    // One row per subject, with its score and alert count: the demo's pools alert in
    // several windows each (A00000236 in three).
    let subjects: std::collections::BTreeSet<&str> = appear
        .iter()
        .map(|r| {
            r.split(">account ")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(subjects.len(), appear.len(), "{appear:?}");
    assert!(
        appear
            .iter()
            .any(|r| r.contains(">account A00000236<") && r.contains("0 → 3")),
        "{appear:?}"
    );
    // The fixture's stored TC-04 alerts are on subjects the demo data does not have,
    // with a link to the stored alert.
    let disappear = list(&page, "disappears");
    assert!(
        disappear
            .iter()
            .any(|a| a.contains("H1") && a.contains("href=\"/alerts/")),
        "{disappear:?}"
    );

    // A threshold no pool reaches: every alert would disappear, none appear.
    let strict = file.replace("default: 3000.0,", "default: 1.0e15,");
    assert_ne!(strict, file, "TC-04's min_inflow default");
    let (status, _, page) = send(&f.app, backtest(strict)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(list(&page, "appears").is_empty(), "{page}");
    assert_eq!(
        f.st.store
            .count_alerts(&AlertFilter::default())
            .await
            .unwrap(),
        stored_before,
        "a backtest stores nothing"
    );
}

/// A rule author drafts a rule that is not in the pack: `/rules/new` starts from a
/// skeleton or from a rule of the pack, lint names a draft's errors at their line, and the
/// backtest runs the draft over the stored data (every subject appears, nothing is
/// stored). Analysts may not draft.
#[tokio::test]
async fn a_new_rule_is_drafted_and_backtested_without_its_file() {
    let f = fixture().await;
    ingest_demo(f._db.cmd());
    let (cookie, csrf) = login_as(&f.st, "rule_author").await;
    let get = |uri: &str| request("GET", uri, Some(&cookie), None, "");
    let post = |uri: &str, text: &str| {
        let form = serde_urlencoded::to_string([("text", text)]).unwrap();
        request("POST", uri, Some(&cookie), Some(&csrf), &form)
    };
    let (status, _, page) = send(&f.app, get("/rules")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("href=\"/rules/new\""), "{page}");
    let (status, _, page) = send(&f.app, get("/rules/new")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("id: NEW-01"), "{page}");
    assert!(!page.contains("id=\"publish\""), "a draft is not published");

    // The skeleton lints; a misspelt parameter is an error at its line.
    let (_, _, page) = send(
        &f.app,
        post("/rules/new/lint", clearwatch_server::rules::DRAFT_SKELETON),
    )
    .await;
    assert!(page.contains("class=\"ok\""), "{page}");
    let broken =
        clearwatch_server::rules::DRAFT_SKELETON.replace("params.min_payees'", "params.min_payes'");
    let (_, _, page) = send(&f.app, post("/rules/new/lint", &broken)).await;
    assert!(page.contains("min_payes"), "{page}");
    assert!(!page.contains("class=\"ok\""), "{page}");

    // A draft may not take an id of the pack, nor the reserved `new`; a copy of a rule
    // starts under an id of its own.
    let (_, _, page) = send(&f.app, get("/rules/new?from=TC-04")).await;
    assert!(page.contains("id: TC-04-copy"), "{page}");
    let (_, _, page) = send(
        &f.app,
        post(
            "/rules/new/lint",
            &clearwatch_server::rules::DRAFT_SKELETON.replace("id: NEW-01", "id: TC-04"),
        ),
    )
    .await;
    assert!(page.contains("duplicate rule id `TC-04`"), "{page}");
    let (_, _, page) = send(
        &f.app,
        post(
            "/rules/new/lint",
            &clearwatch_server::rules::DRAFT_SKELETON.replace("id: NEW-01", "id: new"),
        ),
    )
    .await;
    assert!(page.contains("is reserved"), "{page}");

    // A copy of TC-04 under a new id: every pool it finds is a subject that appears.
    let file = tc04_file();
    let draft = file.replacen("id: TC-04", "id: TC-99", 1);
    let stored_before =
        f.st.store
            .count_alerts(&AlertFilter::default())
            .await
            .unwrap();
    let (status, _, page) = send(&f.app, post("/rules/new/backtest", &draft)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("data-change=\"appears\""), "{page}");
    assert!(page.contains(">account A00000236<"), "{page}");
    assert!(!page.contains("data-change=\"disappears\""), "{page}");
    assert_eq!(
        f.st.store
            .count_alerts(&AlertFilter::default())
            .await
            .unwrap(),
        stored_before,
        "a backtest stores nothing"
    );

    let (an, an_csrf) = login_as(&f.st, "analyst").await;
    let (status, _, _) = send(&f.app, request("GET", "/rules/new", Some(&an), None, "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let form = serde_urlencoded::to_string([("text", draft.as_str())]).unwrap();
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            "/rules/new/backtest",
            Some(&an),
            Some(&an_csrf),
            &form,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The alert page reads an alert's evidence by id, wherever it falls in time: a
/// transaction 200 days after the window is on the page, with its counterparty's
/// registered name in the graph.
#[tokio::test]
async fn alert_page_shows_evidence_far_outside_the_window() {
    let f = fixture().await;
    let db = TestDb::sqlite().await;
    let tx = db.write(
        "tx.csv",
        "tx_id,ts,from,to,amount,currency,type\n\
         NEAR,2026-01-02T00:00:00Z,P1,H9,10.00,CNY,transfer\n\
         FAR,2026-07-20T00:00:00Z,H9,P2,9.00,CNY,transfer\n",
    );
    let acc = db.write(
        "acc.csv",
        "account_id,holder_id,holder_name,kind,role,licensed,institution,region\n\
         P2,HP2,Far Away Trading,corporate,merchant,false,,\n",
    );
    db.load_ok(vec![
        (clearwatch_ingest::TableKind::Accounts, acc),
        (clearwatch_ingest::TableKind::Transactions, tx),
    ])
    .await;
    let mut a = alert();
    a.subject.id = "H9".into();
    a.id = Alert::make_id("TC-04", "v1", &a.subject, a.window);
    a.evidence = Evidence {
        transactions: vec!["FAR".into(), "NEAR".into()],
        accounts: vec!["H9".into()],
    };
    db.store
        .save_alerts(std::slice::from_ref(&a), &[])
        .await
        .unwrap();
    let mut st = AppState::new(db.reopen().await.unwrap(), PackSource::resolve(&[]));
    std::sync::Arc::get_mut(&mut st).unwrap().export_key = f.st.export_key.clone();
    for role in [UserRole::Analyst] {
        let hash = auth::hash_password("password-123").unwrap();
        st.store
            .add_user(role.as_str(), role, &hash, "test")
            .await
            .unwrap();
    }
    let app = server::app(st.clone());
    let (cookie, _) = login_as(&st, "analyst").await;
    let (status, _, page) = send(
        &app,
        request("GET", &format!("/alerts/{}", a.id), Some(&cookie), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("FAR"),
        "the far evidence transaction is listed"
    );
    assert!(page.contains("NEAR"));
    assert!(
        page.contains("Far Away Trading"),
        "registered names label the graph"
    );
    // Every case has a deadline: ten working days of mainland China's calendar from
    // detection, on the alert page and in the queue.
    let stored = st.store.alert(&a.id).await.unwrap().unwrap();
    let detected = clearwatch_model::parse_rfc3339(&stored.created_at).unwrap();
    let shanghai = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .unwrap()
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
            .date_naive()
    };
    let due = clearwatch_model::calendar::WorkingCalendar::china()
        .add_working_days(shanghai(detected), 10);
    assert!(
        page.contains(&format!(
            "id=\"deadline\" data-due=\"{due}\" data-sla=\"on_time\""
        )),
        "due {due}: {page}"
    );
    let (status, _, queue) = send(&app, request("GET", "/alerts", Some(&cookie), None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        queue.contains(&format!("data-sla=\"on_time\" title=\"on time\">{due}<")),
        "{queue}"
    );
}

/// A backtest has a time budget, and a server that shuts down stops it: both answer 503
/// with a sentence instead of keeping a core busy.
#[tokio::test]
async fn a_backtest_is_stopped_by_its_budget_and_by_shutdown() {
    let f = fixture().await;
    let file = tc04_file();
    let form = serde_urlencoded::to_string([("text", file.as_str())]).unwrap();
    let (cookie, csrf) = login_as(&f.st, "rule_author").await;
    let post = || {
        request(
            "POST",
            "/rules/TC-04/backtest",
            Some(&cookie),
            Some(&csrf),
            &form,
        )
    };

    let mut st = AppState::new(f._db.reopen().await.unwrap(), PackSource::resolve(&[]));
    std::sync::Arc::get_mut(&mut st).unwrap().backtest_budget = std::time::Duration::ZERO;
    let (status, _, page) = send(&server::app(st), post()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("time budget"), "{page}");

    f.st.shutdown.stop();
    let (status, _, page) = send(&f.app, post()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("stopped"), "{page}");
}

/// Every 4xx and 5xx of the JSON API has one body, `{"error": sentence, "code": name}`,
/// including the errors made before a handler runs.
#[tokio::test]
async fn every_api_error_has_the_one_error_format() {
    let f = fixture().await;
    let (admin, admin_csrf) = login_as(&f.st, "admin").await;
    let (analyst, analyst_csrf) = login_as(&f.st, "analyst").await;
    let json = json_request;
    let case = format!("/api/v1/cases/{}", f.alert_id);
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            request("GET", "/api/v1/alerts", None, None, ""),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            request("GET", "/api/v1/nothing-here", Some(&admin), None, ""),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            request("GET", "/api/v1/alerts/nope", Some(&admin), None, ""),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            request("GET", "/api/v1/users", Some(&analyst), None, ""),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            json("POST", &case, &analyst, &analyst_csrf, "{not json"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json(
                "POST",
                &case,
                &analyst,
                &analyst_csrf,
                r#"{"version": "one"}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            json(
                "POST",
                "/api/v1/users",
                &admin,
                &admin_csrf,
                &"x".repeat(server::BODY_LIMIT + 1),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            request("GET", "/api/v1/alerts?page=abc", Some(&admin), None, ""),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (req, status, code) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let (got, headers, body) = send(&f.app, req).await;
        assert_eq!(got, status, "{what}: {body}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}: {body}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
        assert_eq!(v["code"], code, "{what}: {body}");
        assert!(
            !v["error"].as_str().unwrap_or_default().is_empty(),
            "{what}: {body}"
        );
    }
}

/// Adds user `analyst` to the state's store: the app and a session cookie of theirs.
async fn analyst_session(st: &Shared) -> (Router, String) {
    let hash = auth::hash_password("password-123").unwrap();
    st.store
        .add_user("analyst", UserRole::Analyst, &hash, "test")
        .await
        .unwrap();
    let (cookie, _) = login_as(st, "analyst").await;
    (server::app(st.clone()), cookie)
}

/// Account totals of amounts at the maximum pass 2^63 and are shown exact, not wrapped.
#[tokio::test]
async fn account_totals_at_the_maximum_amount_do_not_wrap() {
    let db = TestDb::sqlite().await;
    let mut csv = String::from("tx_id,ts,from,to,amount,currency,type\n");
    for i in 0..12 {
        csv.push_str(&format!(
            "t{i},2026-01-0{}T00:00:00Z,A,B,1000000000000000.000,BHD,transfer\n",
            1 + i % 9
        ));
    }
    let tx = db.write("tx.csv", &csv);
    db.load_ok(vec![(clearwatch_ingest::TableKind::Transactions, tx)])
        .await;
    let st = AppState::new(db.reopen().await.unwrap(), PackSource::resolve(&[]));
    let (app, cookie) = analyst_session(&st).await;
    for account in ["A", "B"] {
        let url = format!("/accounts/{account}");
        let (status, _, page) = send(&app, request("GET", &url, Some(&cookie), None, "")).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert!(
            page.contains("12000000000000000.000"),
            "{url}: no exact total"
        );
        // 12 * 10^18 wrapped at 2^64 would read -6446744073709551.616.
        assert!(
            !page.contains("6446744073709551.616"),
            "{url}: a wrapped total"
        );
    }
}

/// Links built from ingested ids are percent-encoded: an id like `../../admin/users`,
/// `A1#x` or `..` links to its own account page, not elsewhere.
#[tokio::test]
async fn account_links_of_hostile_ids_lead_to_their_own_pages() {
    let f = fixture().await;
    let db = TestDb::sqlite().await;
    let tx = db.write(
        "tx.csv",
        "tx_id,ts,from,to,amount,currency,type\n\
         T1,2026-01-02T00:00:00Z,../../admin/users,A1#x,10.00,CNY,transfer\n\
         T2,2026-01-03T00:00:00Z,A1#x,..,9.00,CNY,transfer\n",
    );
    db.load_ok(vec![(clearwatch_ingest::TableKind::Transactions, tx)])
        .await;
    let mut a = alert();
    a.subject.id = "../../admin/users".into();
    a.id = Alert::make_id("TC-04", "v1", &a.subject, a.window);
    a.evidence = Evidence {
        transactions: vec!["T1".into(), "T2".into()],
        accounts: vec![],
    };
    db.store
        .save_alerts(std::slice::from_ref(&a), &[])
        .await
        .unwrap();
    let mut st = AppState::new(db.reopen().await.unwrap(), PackSource::resolve(&[]));
    std::sync::Arc::get_mut(&mut st).unwrap().export_key = f.st.export_key.clone();
    let (app, cookie) = analyst_session(&st).await;
    let (_, _, page) = send(
        &app,
        request("GET", &format!("/alerts/{}", a.id), Some(&cookie), None, ""),
    )
    .await;
    for (id, href) in [
        (
            "../../admin/users",
            "/accounts/%2E%2E%2F%2E%2E%2Fadmin%2Fusers",
        ),
        ("A1#x", "/accounts/A1%23x"),
        ("..", "/account?id=%2E%2E"),
    ] {
        assert!(
            page.contains(&format!("href=\"{href}\"")),
            "{id}: {href} not in the page"
        );
        let (status, _, account) = send(&app, request("GET", href, Some(&cookie), None, "")).await;
        assert_eq!(status, StatusCode::OK, "{href}");
        let shown = id.replace('#', "&#35;");
        assert!(
            account.contains(&format!("<span id=\"account-id\">{id}</span>"))
                || account.contains(&format!("<span id=\"account-id\">{shown}</span>")),
            "{href} shows account {id}"
        );
    }
}

#[tokio::test]
async fn a_huge_audit_page_number_is_an_empty_page_not_an_overflow() {
    let f = fixture().await;
    let (auditor, _) = login_as(&f.st, "auditor").await;
    let uri = format!("/audit?page={}", u64::MAX);
    let (status, _, body) = send(&f.app, request("GET", &uri, Some(&auditor), None, "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let prev = format!("/audit?page={}", u64::MAX - 1);
    assert!(body.contains(&prev), "a page past the end links back");
}

#[tokio::test]
async fn the_openapi_document_describes_the_error_body() {
    let f = fixture().await;
    let (admin, _) = login_as(&f.st, "admin").await;
    let (status, _, body) = send(
        &f.app,
        request("GET", "/api/openapi.json", Some(&admin), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let schema = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(schema["required"], serde_json::json!(["error", "code"]));
    let not_found = &doc["paths"]["/api/v1/alerts/{id}"]["get"]["responses"]["404"];
    assert_eq!(
        not_found["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
}

/// The server copies the signed audit head into the checkpoints folder beside the key at
/// start-up and again on its schedule; each copy verifies against the log.
#[tokio::test]
async fn the_server_writes_audit_checkpoints_on_schedule() {
    let f = fixture().await;
    let dir = std::path::PathBuf::from(format!("{}.checkpoints", f._db.audit_key().display()));
    let dir = &dir;
    let task = tokio::spawn(server::write_checkpoints(
        f.st.clone(),
        std::time::Duration::from_millis(100),
    ));
    let files = |n: usize| async move {
        for _ in 0..100 {
            let found: Vec<_> = std::fs::read_dir(dir)
                .map(|d| d.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("fewer than {n} checkpoints in {}", dir.display());
    };
    files(1).await;
    f.st.store
        .audit("analyst", "session.login", "user:analyst", None, None)
        .await
        .unwrap();
    let found = files(2).await;
    task.abort();
    let mut given = Vec::new();
    for path in found {
        let bytes = std::fs::read(&path).unwrap();
        let cp = clearwatch_store::seal::read_signed(&path, &bytes).unwrap();
        given.push((path.display().to_string(), cp));
    }
    let report = f.st.store.audit_report(&given).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!(report.checkpoints, 2);
}

/// A bulk change in which one alert was changed by someone else changes none of them.
#[tokio::test]
async fn a_bulk_change_with_one_stale_alert_changes_none() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let other =
        f.st.store
            .alerts(&AlertFilter::default())
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.alert.id != f.alert_id)
            .unwrap();
    let before = f.st.store.audit_report(&[]).await.unwrap().entries;
    // The first at its version, the second at one it no longer has.
    let form = format!(
        "sel={}%3A1&sel={}%3A{}&assignee=analyst&status=&csrf={csrf}",
        f.alert_id,
        other.alert.id,
        other.version - 1
    );
    let (status, headers, _) = send(
        &f.app,
        request("POST", "/alerts/bulk", Some(&cookie), None, &form),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/alerts?done=0&failed=2");
    for id in [&f.alert_id, &other.alert.id] {
        assert_eq!(f.st.store.alert(id).await.unwrap().unwrap().assignee, None);
    }
    assert_eq!(f.st.store.audit_report(&[]).await.unwrap().entries, before);
}

// ---- Bounded authentication -------------------------------------------------------------

/// A sign-in POST from `client` (a socket address, as the server's connect info gives it).
fn login_request(user: &str, password: &str, client: &str) -> Request<Body> {
    let form = serde_urlencoded::to_string([
        ("username", user),
        ("password", password),
        ("csrf", "pre-token"),
    ])
    .unwrap();
    let mut req = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::COOKIE, format!("{}=pre-token", auth::LOGIN_COOKIE))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let addr: std::net::SocketAddr = client.parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    req
}

/// A sign-in from `client`: `(status, headers, body)`.
async fn sign_in(
    app: &Router,
    user: &str,
    password: &str,
    client: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    send(app, login_request(user, password, client)).await
}

async fn with_state(f: &Fixture, change: impl FnOnce(&mut AppState)) -> Router {
    let mut st = AppState::new(f._db.reopen().await.unwrap(), PackSource::resolve(&[]));
    change(std::sync::Arc::get_mut(&mut st).unwrap());
    server::app(st)
}

/// Finding 1: argon2 had no bound on concurrent hashes (64 parallel sign-ins took the
/// server from 33 MB to 3.7 GB). Beyond the bound, sign-ins are refused with 503 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_logins_beyond_the_hashing_bound_get_503() {
    let f = fixture().await;
    let app = with_state(&f, |s| {
        s.hashing = auth::HashGate::new(1, 0, std::time::Duration::from_millis(1));
    })
    .await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let req = login_request("analyst", "wrong-password", &format!("10.1.0.{i}:5000"));
                send(&app, req).await.0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let busy = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(busy >= 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
}

/// Finding 2: the limiter stored every name tried, up to 256 KB each. A name over 64
/// characters is refused before it becomes a key or costs a hash; a form over the form
/// limit is refused before it is read.
#[tokio::test]
async fn a_long_user_name_is_refused_before_it_is_a_key_or_hashed() {
    let f = fixture().await;
    let (status, _, page) =
        sign_in(&f.app, &"n".repeat(65), "whatever-password", "10.0.0.1:1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("1 to 64"), "{page}");
    assert_eq!(f.st.limiter.keys(), 0, "nothing remembered");
    let (status, _, _) = sign_in(&f.app, &"n".repeat(20_000), "x", "10.0.0.1:1").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(f.st.limiter.keys(), 0);
    let (status, _, _) = sign_in(&f.app, "analyst", "password-123", "10.0.0.1:1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(f.st.limiter.keys() > 0);
}

/// Finding 2: a third party could lock any user out by failing on their name. The
/// lock-out is per (client, name): another client still signs in.
#[tokio::test]
async fn another_client_cannot_lock_a_user_out() {
    let f = fixture().await;
    for _ in 0..auth::LOGIN_MAX_FAILURES {
        let (status, _, _) = sign_in(&f.app, "auditor", "nope-nope-nope", "203.0.113.9:4000").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = sign_in(&f.app, "auditor", "password-123", "203.0.113.9:4001").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker's address is locked out"
    );
    let (status, headers, _) =
        sign_in(&f.app, "auditor", "password-123", "198.51.100.7:4000").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the user's own address is not"
    );
    assert_eq!(headers[header::LOCATION], "/cases");
    // One address trying many names meets the per-client limit.
    // (Each refused attempt costs a hash, during which cells come back: try a few more.)
    let mut limited = false;
    for i in 0..3 * auth::CLIENT_BURST {
        let (status, _, _) = sign_in(
            &f.app,
            &format!("nobody{i}"),
            "nope-nope-nope",
            "192.0.2.1:1",
        )
        .await;
        limited = status == StatusCode::TOO_MANY_REQUESTS;
        if limited {
            assert!(i >= auth::CLIENT_BURST, "limited after {i}");
            break;
        }
    }
    assert!(limited);
}

/// Finding 8: names were taken as typed. They are NFKC-normalised, and names with bidi
/// controls or invisible characters are refused, at creation and at sign-in.
#[tokio::test]
async fn names_with_invisible_characters_are_refused_at_creation_and_login() {
    let f = fixture().await;
    let (admin, csrf) = login_as(&f.st, "admin").await;
    for bad in ["ann\u{202E}", "a\u{200B}nn", "\u{FEFF}ann"] {
        let form = serde_urlencoded::to_string([
            ("name", bad),
            ("role", "analyst"),
            ("password", "violet-anchor-tundra"),
        ])
        .unwrap();
        let (status, _, page) = send(
            &f.app,
            request("POST", "/admin/users", Some(&admin), Some(&csrf), &form),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(page.contains("invisible"), "{page}");
    }
    let form = "name=%EF%BD%82%EF%BD%8F%EF%BD%82&role=analyst&password=violet-anchor-tundra";
    let (status, _, _) = send(
        &f.app,
        request("POST", "/admin/users", Some(&admin), Some(&csrf), form),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        f.st.store.user("bob").await.unwrap().is_some(),
        "stored as NFKC"
    );
    let (status, _, _) = sign_in(&f.app, "analyst\u{200B}", "password-123", "10.0.0.2:1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = sign_in(&f.app, "ｂｏｂ", "violet-anchor-tundra", "10.0.0.2:1").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "full-width sign-in finds bob"
    );
}

/// Finding 3: any 10-character password was accepted. Short, blank and common ones are
/// refused with a message in the user's language.
#[tokio::test]
async fn weak_passwords_are_refused_with_messages_in_both_languages() {
    let f = fixture().await;
    let (admin, csrf) = login_as(&f.st, "admin").await;
    let add = |pw: &str, lang: &str| {
        let form = serde_urlencoded::to_string([
            ("name", "carol"),
            ("role", "analyst"),
            ("password", pw),
            ("csrf", csrf.as_str()),
        ])
        .unwrap();
        let mut req = request("POST", "/admin/users", Some(&admin), None, &form);
        req.headers_mut()
            .insert(header::ACCEPT_LANGUAGE, lang.parse().unwrap());
        req
    };
    let cases = [
        ("qwerty123456", "most common", "常见的密码"),
        ("Password2024!", "most common", "常见的密码"),
        ("short-one", "at least 12", "至少需要 12"),
        ("              ", "only spaces", "只包含空格"),
    ];
    for (pw, en, zh) in cases {
        let (status, _, page) = send(&f.app, add(pw, "en")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{pw:?}");
        assert!(page.contains(en), "{pw:?}: {page}");
        let (status, _, page) = send(&f.app, add(pw, "zh-CN")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains(zh), "{pw:?}: {page}");
    }
    assert!(f.st.store.user("carol").await.unwrap().is_none());
    let (status, _, _) = send(&f.app, add("violet-anchor-tundra", "en")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// Rule titles, rule statuses and figure names follow the reader's language, from the
/// pack's `_shared` texts; the stored alert keeps its English title.
#[tokio::test]
async fn rule_titles_and_figure_names_follow_the_readers_language() {
    let f = fixture().await;
    let (cookie, _) = login_as(&f.st, "analyst").await;
    let get = |uri: String, lang: &str| {
        let mut req = request("GET", &uri, Some(&cookie), None, "");
        req.headers_mut()
            .insert(header::ACCEPT_LANGUAGE, lang.parse().unwrap());
        req
    };
    let alert = format!("/alerts/{}", f.alert_id);
    let (status, _, page) = send(&f.app, get(alert.clone(), "zh-CN")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("资金池：集中转入、分散转出"), "{page}");
    assert!(
        page.contains(r#"<th title="payers">付款方数</th>"#),
        "{page}"
    );
    let (_, _, page) = send(&f.app, get(alert, "en")).await;
    assert!(
        page.contains(">pool <span"),
        "the stored English title: {page}"
    );
    assert!(page.contains(r#"<th title="payers">payers</th>"#), "{page}");
    let (_, _, page) = send(&f.app, get("/alerts".into(), "zh-CN")).await;
    assert!(page.contains("资金池：集中转入、分散转出"), "{page}");
    let (_, _, page) = send(&f.app, get("/rules".into(), "zh-CN")).await;
    for (en, zh) in [
        ("Settlement to a non-same-name account", "结算至非同名账户"),
        ("Rapid movement of funds", "资金快进快出"),
    ] {
        assert!(page.contains(zh) && !page.contains(en), "{page}");
    }
    assert!(
        page.contains(r#"<td data-status="stable">稳定</td>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<td data-severity="high">高</td>"#),
        "{page}"
    );
    let (_, _, page) = send(&f.app, get("/rules".into(), "en")).await;
    assert!(page.contains("Rapid movement of funds"), "{page}");
}

/// Error pages speak the reader's language too: the fixed messages are translated, and
/// the page keeps the security headers of every response.
#[tokio::test]
async fn error_pages_follow_the_readers_language() {
    let f = fixture().await;
    let (cookie, _) = login_as(&f.st, "analyst").await;
    let get = |uri: &str, lang: &str| {
        let mut req = request("GET", uri, Some(&cookie), None, "");
        req.headers_mut()
            .insert(header::ACCEPT_LANGUAGE, lang.parse().unwrap());
        req
    };
    let (status, headers, page) = send(&f.app, get("/admin/users", "zh-CN")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains(r#"<html lang="zh-CN">"#), "{page}");
    assert!(
        page.contains("错误 403") && page.contains("您的角色无权执行此操作"),
        "{page}"
    );
    assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
    let (status, _, page) = send(&f.app, get("/no/such/page", "zh-CN")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("未找到"), "{page}");
    let (_, _, page) = send(&f.app, get("/admin/users", "en")).await;
    assert!(page.contains("Your role does not allow this."), "{page}");
    let (status, _, body) = send(&f.app, get("/api/v1/users", "zh-CN")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body.contains(r#""code":"forbidden""#),
        "the API keeps its body: {body}"
    );
    // Refusals of the workflow are worded from the catalogue, their details filled in.
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let post = |uri: String, form: &str, lang: &str| {
        let mut req = request("POST", &uri, Some(&cookie), Some(&csrf), form);
        req.headers_mut()
            .insert(header::ACCEPT_LANGUAGE, lang.parse().unwrap());
        req
    };
    let notes = format!("/alerts/{}/notes", f.alert_id);
    let (status, _, page) = send(&f.app, post(notes.clone(), "body=+", "zh-CN")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("备注不能为空"), "{page}");
    let (_, _, page) = send(&f.app, post(notes, "body=+", "en")).await;
    assert!(page.contains("a note cannot be empty"), "{page}");
    let case = format!("/alerts/{}/case", f.alert_id);
    let (status, _, page) = send(&f.app, post(case, "version=99&assignee=-", "zh-CN")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        page.contains(&format!("预警 {} 已被他人修改", f.alert_id)),
        "{page}"
    );
}

/// Lists are managed from the dashboard: a supervisor creates them, an analyst adds to a
/// watch list but not to an allow list, and a supervisor removes an entry, which stays
/// listed as removed.
#[tokio::test]
async fn watch_and_allow_lists_are_managed_from_the_dashboard() {
    let f = fixture().await;
    let (sue, sue_csrf) = login_as(&f.st, "supervisor").await;
    let (ana, ana_csrf) = login_as(&f.st, "analyst").await;
    let post = |uri: &str, cookie: &str, csrf: &str, form: &[(&str, &str)]| {
        let form = serde_urlencoded::to_string(form).unwrap();
        request("POST", uri, Some(cookie), Some(csrf), &form)
    };
    let create = |name: &'static str, kind: &'static str| {
        [("name", name), ("kind", kind), ("description", "checked")]
    };
    let (status, _, _) = send(
        &f.app,
        post("/lists", &ana, &ana_csrf, &create("w", "watch")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an analyst creates no list");
    for (name, kind) in [("watched", "watch"), ("treasury", "allow")] {
        let (status, headers, page) =
            send(&f.app, post("/lists", &sue, &sue_csrf, &create(name, kind))).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(headers[header::LOCATION], format!("/lists/{name}").as_str());
    }
    let in_a_month = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let entry = [
        ("kind", "account"),
        ("value", "H1"),
        ("reason", "a new agent"),
        ("expires", in_a_month.as_str()),
    ];
    let (status, _, _) = send(
        &f.app,
        post("/lists/watched/entries", &ana, &ana_csrf, &entry),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(
        &f.app,
        post("/lists/treasury/entries", &ana, &ana_csrf, &entry),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an allow list takes a supervisor"
    );
    let (status, _, page) = send(
        &f.app,
        request("GET", "/lists/treasury", Some(&ana), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains(r#"id="add-entry""#),
        "no form an analyst cannot use: {page}"
    );
    let (status, _, page) = send(
        &f.app,
        request("GET", "/lists/watched", Some(&ana), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"data-state="active" data-value="H1""#),
        "{page}"
    );
    assert!(page.contains(r#"id="add-entry""#), "{page}");
    use clearwatch_store::ListStore;
    let id = f.st.store.list("watched").await.unwrap().unwrap().1[0].id;
    let remove = format!("/lists/watched/entries/{id}/remove");
    let (status, _, _) = send(&f.app, post(&remove, &ana, &ana_csrf, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(&f.app, post(&remove, &sue, &sue_csrf, &[])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = send(&f.app, request("GET", "/lists", Some(&ana), None, "")).await;
    assert!(
        page.contains(r#"data-list="watched" data-kind="watch""#),
        "{page}"
    );
    let (_, _, page) = send(
        &f.app,
        request("GET", "/lists/watched", Some(&sue), None, ""),
    )
    .await;
    assert!(
        page.contains(r#"data-state="removed" data-value="H1""#),
        "{page}"
    );
    let bad = [
        ("kind", "account"),
        ("value", "H2"),
        ("reason", " "),
        ("expires", "2099-01-01T00:00"),
    ];
    let (status, _, page) = send(
        &f.app,
        post("/lists/watched/entries", &sue, &sue_csrf, &bad),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("an entry needs a reason"), "{page}");
    let (status, _, _) = send(&f.app, request("GET", "/lists/nope", Some(&ana), None, "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Finding 6: cookies lacked `Secure` when the dashboard was exposed.
#[tokio::test]
async fn cookies_are_secure_off_loopback_or_behind_tls() {
    let lo: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let v6: std::net::SocketAddr = "[::1]:8080".parse().unwrap();
    let any: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
    assert!(!server::secure_cookies(lo, false));
    assert!(!server::secure_cookies(v6, false));
    assert!(server::secure_cookies(lo, true));
    assert!(server::secure_cookies(any, false));
    let f = fixture().await;
    let app = with_state(&f, |s| {
        s.secure_cookies = server::secure_cookies(any, false)
    })
    .await;
    let (status, headers, _) = sign_in(&app, "analyst", "password-123", "10.0.0.3:1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let session = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(SESSION_COOKIE))
        .unwrap();
    assert!(session.contains("; Secure"), "{session}");
}

/// Finding 7: state-changing requests from another origin were accepted whenever they
/// carried a token. Now one whose Origin (or Referer) names another host is refused with
/// 403, in the API's one error format.
#[tokio::test]
async fn cross_origin_posts_are_refused_in_the_one_error_format() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let case = format!("/api/v1/cases/{}", f.alert_id);
    let api = |origin: Option<&str>, referer: Option<&str>| {
        let mut req = json_request(
            "POST",
            &case,
            &cookie,
            &csrf,
            r#"{"expected_version": 999}"#,
        );
        let h = req.headers_mut();
        h.insert(header::HOST, "dash.example".parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        if let Some(r) = referer {
            h.insert(header::REFERER, r.parse().unwrap());
        }
        req
    };
    for (o, r) in [
        (Some("https://evil.example"), None),
        (None, Some("https://evil.example/x")),
        (Some("null"), None),
    ] {
        let (status, _, text) = send(&f.app, api(o, r)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{o:?} {r:?}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["code"], "forbidden");
        assert!(v["error"].as_str().unwrap().contains("cross-origin"), "{v}");
    }
    // Same origin, or neither header (a script): on to the handler (a version conflict).
    for (o, r) in [
        (Some("https://dash.example"), None),
        (None, Some("https://dash.example/alerts")),
        (None, None),
    ] {
        let (status, _, _) = send(&f.app, api(o, r)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{o:?} {r:?}");
    }
    // The sign-in form too, before any session.
    let mut req = login_request("analyst", "password-123", "10.0.0.4:1");
    req.headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    req.headers_mut()
        .insert(header::HOST, "dash.example".parse().unwrap());
    assert_eq!(send(&f.app, req).await.0, StatusCode::FORBIDDEN);
}

fn password_form(current: &str, new: &str, confirm: &str, csrf: &str) -> String {
    serde_urlencoded::to_string([
        ("current", current),
        ("new", new),
        ("confirm", confirm),
        ("csrf", csrf),
    ])
    .unwrap()
}

/// Finding 4: users could not change their password, nor could an administrator reset
/// one. Now every user can (with the current password), and a reset sets a temporary
/// password that must be changed at the next sign-in; until then nothing else is allowed.
#[tokio::test]
async fn users_change_their_password_and_a_reset_forces_a_change() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let (other, _) = login_as(&f.st, "analyst").await;
    let (status, _, page) =
        send(&f.app, request("GET", "/password", Some(&cookie), None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"password-form\""), "{page}");
    let tundra = "violet-anchor-tundra";
    let attempts = [
        (
            "wrong-current-pw",
            tundra,
            tundra,
            StatusCode::BAD_REQUEST,
            "current password is wrong",
        ),
        (
            "password-123",
            "qwerty123456",
            "qwerty123456",
            StatusCode::BAD_REQUEST,
            "most common",
        ),
        (
            "password-123",
            tundra,
            "violet-anchor-tundrA",
            StatusCode::BAD_REQUEST,
            "differ",
        ),
        ("password-123", tundra, tundra, StatusCode::SEE_OTHER, ""),
    ];
    for (current, new, confirm, want, text) in attempts {
        let form = password_form(current, new, confirm, &csrf);
        let (status, headers, page) = send(
            &f.app,
            request("POST", "/password", Some(&cookie), None, &form),
        )
        .await;
        assert_eq!(status, want, "{current} {new} {confirm}");
        assert!(page.contains(text), "{page}");
        if status == StatusCode::SEE_OTHER {
            assert_eq!(headers[header::LOCATION], "/password?done=1");
        }
    }
    let u = f.st.store.user("analyst").await.unwrap().unwrap();
    assert!(auth::verify_password(
        "violet-anchor-tundra",
        &u.password_hash
    ));
    // This session stays; the other one ended.
    assert_eq!(
        send(&f.app, request("GET", "/alerts", Some(&cookie), None, ""))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(&f.app, request("GET", "/alerts", Some(&other), None, ""))
            .await
            .0,
        StatusCode::SEE_OTHER
    );

    // An administrator resets it: a temporary password, shown once; sessions end.
    let (admin, admin_csrf) = login_as(&f.st, "admin").await;
    let (status, _, page) = send(
        &f.app,
        request(
            "POST",
            "/admin/users/analyst/password",
            Some(&admin),
            Some(&admin_csrf),
            "",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let start = page.find("analyst: ").expect("temporary password shown") + "analyst: ".len();
    let temporary = page[start..start + 24].to_string();
    assert!(
        temporary.chars().all(|c| c.is_ascii_hexdigit()),
        "{temporary}"
    );
    assert_eq!(
        send(&f.app, request("GET", "/alerts", Some(&cookie), None, ""))
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    // Sign-in with it leads to the password page, and nothing else is allowed.
    let (status, headers, _) = sign_in(&f.app, "analyst", &temporary, "10.0.0.5:1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/password");
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let (status, headers, _) =
        send(&f.app, request("GET", "/alerts", Some(&cookie), None, "")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/password");
    let note = format!("/alerts/{}/notes", f.alert_id);
    let (status, _, _) = send(
        &f.app,
        request("POST", &note, Some(&cookie), Some(&csrf), "body=x"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(f.st.store.notes(&f.alert_id).await.unwrap().is_empty());
    let (status, _, text) = send(
        &f.app,
        request("GET", "/api/v1/alerts", Some(&cookie), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("\"code\":\"forbidden\""), "{text}");
    let (status, _, page) =
        send(&f.app, request("GET", "/password", Some(&cookie), None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"password-forced\""));
    let form = password_form(
        &temporary,
        "granite-lantern-orbit",
        "granite-lantern-orbit",
        &csrf,
    );
    let (status, _, _) = send(
        &f.app,
        request("POST", "/password", Some(&cookie), None, &form),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        send(&f.app, request("GET", "/alerts", Some(&cookie), None, ""))
            .await
            .0,
        StatusCode::OK
    );
    let audit = f.st.store.audit_log(None, 100, 0).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "user.password_reset" && e.actor == "admin")
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "user.password" && e.actor == "analyst")
    );
}

/// Finding 5: the bootstrap password printed by `serve` stayed valid for good. It now
/// only opens the password change, and stops working once the admin has chosen their own.
#[tokio::test]
async fn the_bootstrap_password_only_opens_the_password_change() {
    let db = crate::store::TestDb::sqlite().await;
    let (name, password) = server::bootstrap_admin(&db.store).await.unwrap().unwrap();
    assert!(server::bootstrap_admin(&db.store).await.unwrap().is_none());
    let st = AppState::new(db.reopen().await.unwrap(), PackSource::resolve(&[]));
    let app = server::app(st.clone());
    let (status, headers, _) = sign_in(&app, &name, &password, "10.0.0.6:1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/password");
    let (cookie, csrf) = login_as(&st, &name).await;
    let (status, headers, _) = send(
        &app,
        request("GET", "/admin/users", Some(&cookie), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/password");
    let form = password_form(
        &password,
        "granite-lantern-orbit",
        "granite-lantern-orbit",
        &csrf,
    );
    let (status, _, _) = send(
        &app,
        request("POST", "/password", Some(&cookie), None, &form),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        send(
            &app,
            request("GET", "/admin/users", Some(&cookie), None, "")
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, _, _) = sign_in(&app, &name, &password, "10.0.0.6:2").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the one-time password is spent"
    );
    let (status, headers, _) = sign_in(&app, &name, "granite-lantern-orbit", "10.0.0.6:3").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/cases");
}

/// The fixture alert's assignee.
async fn assignee_of(f: &Fixture) -> Option<String> {
    f.st.store
        .alert(&f.alert_id)
        .await
        .unwrap()
        .unwrap()
        .assignee
}

/// Finding 9: a case could be assigned to anyone, even a name that is no user, a
/// disabled user or an auditor. Only active analysts and supervisors are accepted.
#[tokio::test]
async fn cases_are_assigned_only_to_active_case_workers() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "supervisor").await;
    f.st.store
        .update_user(
            "supervisor2",
            &clearwatch_store::UserChange {
                disabled: Some(true),
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    let case = format!("/alerts/{}/case", f.alert_id);
    for who in ["auditor", "admin", "nobody", "supervisor2"] {
        let (status, _, page) = send(
            &f.app,
            request(
                "POST",
                &case,
                Some(&cookie),
                Some(&csrf),
                &format!("version=1&assignee={who}"),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{who}");
        assert!(page.contains("active analyst or supervisor"), "{page}");
    }
    let bulk = format!("sel={}%3A1&assignee=auditor&status=", f.alert_id);
    let (status, _, _) = send(
        &f.app,
        request("POST", "/alerts/bulk", Some(&cookie), Some(&csrf), &bulk),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let req = json_request(
        "POST",
        &format!("/api/v1/cases/{}", f.alert_id),
        &cookie,
        &csrf,
        r#"{"expected_version": 1, "assignee": "rule_author"}"#,
    );
    let (status, _, text) = send(&f.app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert_eq!(assignee_of(&f).await, None);
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            &case,
            Some(&cookie),
            Some(&csrf),
            "version=1&assignee=analyst",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(assignee_of(&f).await.as_deref(), Some("analyst"));
}

/// The audit page filters by actor, group of actions and entity (one, or a kind), keeps
/// the filter in its paging links, and shows each change field by field: the assignment
/// as `assignee: — → analyst`, fields that did not change left out. The API takes the
/// same filter.
#[tokio::test]
async fn audit_filters_by_actor_action_and_entity_and_shows_each_change() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            &format!("/alerts/{}/case", f.alert_id),
            Some(&cookie),
            Some(&csrf),
            "version=1&assignee=analyst",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (auditor, _) = login_as(&f.st, "auditor").await;
    let page = |uri: &str| {
        let req = request("GET", uri, Some(&auditor), None, "");
        async {
            let (status, _, page) = send(&f.app, req).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page
        }
    };
    let actions = |page: &str| -> Vec<String> {
        page.split("<tr data-action=\"")
            .skip(1)
            .map(|r| r.split('"').next().unwrap().to_string())
            .collect()
    };
    let all = actions(&page("/audit").await);
    assert!(all.iter().any(|a| a == "user.add"), "{all:?}");
    let cases = actions(&page("/audit?action=case.").await);
    assert!(
        !cases.is_empty() && cases.iter().all(|a| a.starts_with("case.")),
        "{cases:?}"
    );
    assert!(
        cases.contains(&"case.assign".to_string()) && cases.contains(&"case.request".to_string())
    );
    let one = actions(&page("/audit?action=case.assign").await);
    assert_eq!(one, ["case.assign"]);
    let by_analyst = page("/audit?actor=analyst").await;
    assert!(
        actions(&by_analyst).iter().all(|a| a.starts_with("case.")),
        "{by_analyst}"
    );
    let users = page("/audit?entity=user").await;
    assert!(
        actions(&users).iter().all(|a| a.starts_with("user.")),
        "{users}"
    );
    assert!(!actions(&users).is_empty());
    let alert = page(&format!("/audit?entity=alert:{}", f.alert_id)).await;
    assert_eq!(actions(&alert), ["case.assign"]);
    // Field by field: what changed, and nothing that did not.
    assert!(
        alert.contains(
            "<b title=\"assignee\">assignee</b>: <span data-raw><del>—</del> → <ins>analyst</ins></span>"
        ),
        "{alert}"
    );
    assert!(
        alert.contains(
            "<b title=\"version\">version</b>: <span data-raw><del>1</del> → <ins>2</ins></span>"
        ),
        "{alert}"
    );
    assert!(
        !alert.contains("<b title=\"status\">"),
        "an unchanged status is not a change: {alert}"
    );
    // The API takes the same filter.
    let (_, _, text) = send(
        &f.app,
        request(
            "GET",
            "/api/v1/audit?action=case.&actor=analyst",
            Some(&auditor),
            None,
            "",
        ),
    )
    .await;
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(!entries.is_empty(), "{text}");
    assert!(
        entries
            .iter()
            .all(|e| e["actor"] == "analyst" && e["action"].as_str().unwrap().starts_with("case."))
    );
}

/// "Assign in turn" deals the open unassigned cases, most urgent first, to the active
/// analysts who are not away, each to whoever holds the fewest: equal loads alternate. An
/// analyst marks themselves away on the profile page; only supervisors deal.
#[tokio::test]
async fn cases_are_dealt_in_turn_to_analysts_who_are_not_away() {
    let f = fixture().await;
    let hash = auth::hash_password("password-123").unwrap();
    for name in ["ann", "bob"] {
        f.st.store
            .add_user(name, UserRole::Analyst, &hash, "test")
            .await
            .unwrap();
    }
    for subject in ["H3", "H4", "H5"] {
        let mut a = alert();
        a.subject.id = subject.into();
        a.id = Alert::make_id("TC-04", "v1", &a.subject, a.window);
        f.st.store
            .save_alerts(std::slice::from_ref(&a), &[])
            .await
            .unwrap();
    }
    // ann already holds H6 through its ML-02 alert: H6's TC-04 alert stays hers even on a
    // TC-04 queue, where H6 looks unassigned.
    let mut held = alert();
    held.subject.id = "H6".into();
    held.rule_id = "ML-02".into();
    held.id = Alert::make_id("ML-02", "v1", &held.subject, held.window);
    let mut loose = alert();
    loose.subject.id = "H6".into();
    loose.id = Alert::make_id("TC-04", "v1", &loose.subject, loose.window);
    f.st.store
        .save_alerts(&[held.clone(), loose.clone()], &[])
        .await
        .unwrap();
    f.st.store
        .update_case(&clearwatch_store::cases::CaseUpdate {
            alert_id: held.id.clone(),
            expected_version: 1,
            actor: "test".into(),
            status: None,
            assignee: Some(Some("ann".into())),
        })
        .await
        .unwrap();
    // bob is away; a time in the past is refused.
    let (bob, bob_csrf) = login_as(&f.st, "bob").await;
    let profile = |form: &str| request("POST", "/profile", Some(&bob), Some(&bob_csrf), form);
    let (status, _, page) = send(
        &f.app,
        profile("time_zone=Asia%2FShanghai&unavailable_until=2020-01-01T09%3A00"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("in the future"), "{page}");
    let (status, _, _) = send(
        &f.app,
        profile("time_zone=Asia%2FShanghai&unavailable_until=2099-01-01T09%3A00"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let away = f.st.store.user("bob").await.unwrap().unwrap();
    assert_eq!(
        away.unavailable_until,
        clearwatch_model::parse_rfc3339("2099-01-01T09:00:00Z"),
        "read in the zone the form was shown in (UTC), not the one chosen with it"
    );
    let (_, _, page) = send(&f.app, request("GET", "/profile", Some(&bob), None, "")).await;
    assert!(
        page.contains("value=\"2099-01-01T17:00\""),
        "shown in the new zone: {page}"
    );

    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let deal = |cookie: &str, csrf: &str| {
        request(
            "POST",
            "/cases/assign",
            Some(cookie),
            Some(csrf),
            "back=rule%3DTC-04",
        )
    };
    let (status, _, _) = send(&f.app, deal(&cookie, &csrf)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "analysts do not deal");
    let (sup, sup_csrf) = login_as(&f.st, "supervisor").await;
    let (status, headers, _) = send(&f.app, deal(&sup, &sup_csrf)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(to.contains("dealt=5&analysts=2"), "{to}");
    let mut dealt_to: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in f.st.store.alerts(&AlertFilter::default()).await.unwrap() {
        if a.alert.id == loose.id {
            assert_eq!(a.assignee, None, "H6 is ann's case: not dealt again");
            continue;
        }
        let who = a.assignee.clone().expect("every open case is assigned");
        dealt_to.entry(who).or_default().push(a.alert.subject.id);
    }
    assert_eq!(
        dealt_to.keys().collect::<Vec<_>>(),
        ["analyst", "ann"],
        "bob is away"
    );
    // ann starts with one case (H6), so the five are dealt 3 and 2 (plus her H6).
    assert_eq!(dealt_to["analyst"].len(), 3, "{dealt_to:?}");
    assert_eq!(dealt_to["ann"].len(), 3, "{dealt_to:?}");
    let (_, _, page) = send(&f.app, request("GET", &to, Some(&sup), None, "")).await;
    assert!(
        page.contains("5 cases assigned in turn to 2 available analysts"),
        "{page}"
    );
    // Nothing left to deal; bob back (an empty field) would take the next one.
    let (_, _, _) = send(&f.app, profile("time_zone=UTC&unavailable_until=")).await;
    assert_eq!(
        f.st.store
            .user("bob")
            .await
            .unwrap()
            .unwrap()
            .unavailable_until,
        None
    );
    let (_, headers, _) = send(&f.app, deal(&sup, &sup_csrf)).await;
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("dealt=0&analysts=3"),
        "{headers:?}"
    );
    let log = f.st.store.audit_log(Some("user:bob"), 10, 0).await.unwrap();
    assert_eq!(log[0].action, "user.time_zone+availability");
}

/// A dismissal asks to suppress its rule on its subject; the supervisor's approval
/// activates it, the subject's other new alert of that rule leaves the queues (the API,
/// the alert and case pages say how many are hidden and list them under
/// `suppressed=only`), the suppression is listed, and a supervisor's lift brings the alert
/// back. Bad scopes and times are 400s naming what is valid.
#[tokio::test]
async fn a_dismissal_suppresses_the_rule_on_its_subject_until_lifted() {
    let f = fixture().await;
    let mut later = alert();
    later.window.from += 7 * 86_400_000;
    later.window.until += 7 * 86_400_000;
    later.id = Alert::make_id("TC-04", "v1", &later.subject, later.window);
    f.st.store
        .save_alerts(std::slice::from_ref(&later), &[])
        .await
        .unwrap();
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let (sup_cookie, sup_csrf) = login_as(&f.st, "supervisor").await;
    let get = |uri: &str, cookie: &str| request("GET", uri, Some(cookie), None, "");
    let listed = |text: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    let ask = format!("/alerts/{}/request", f.alert_id);
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    for (form, says) in [
        (
            format!("suppress=forever&suppress_until={in_an_hour}"),
            "rule, all_rules",
        ),
        (
            "suppress=rule&suppress_until=tomorrow".to_string(),
            "YYYY-MM-DDTHH:MM",
        ),
        (
            "suppress=rule&suppress_until=2020-01-01T00:00".to_string(),
            "future",
        ),
    ] {
        let body = format!("version=1&target=dismissed&reason=known&{form}");
        let (status, _, page) = send(
            &f.app,
            request("POST", &ask, Some(&cookie), Some(&csrf), &body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form}");
        assert!(page.contains(says), "{form}: {page}");
    }
    let body = format!(
        "version=1&target=dismissed&reason=group+treasury&suppress=rule&suppress_until={in_an_hour}"
    );
    let (status, _, _) = send(
        &f.app,
        request("POST", &ask, Some(&cookie), Some(&csrf), &body),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = send(&f.app, get(&format!("/alerts/{}", f.alert_id), &sup_cookie)).await;
    assert!(page.contains("id=\"pending-suppression\""), "{page}");
    let (_, _, text) = send(&f.app, get("/api/v1/alerts?subject=H1", &cookie)).await;
    assert_eq!(listed(&text).len(), 2, "pending hides nothing: {text}");
    let pending = f.st.store.approvals(Some(&f.alert_id), true).await.unwrap();
    let (status, _, _) = send(
        &f.app,
        request(
            "POST",
            &format!("/approvals/{}/decide", pending[0].id),
            Some(&sup_cookie),
            Some(&sup_csrf),
            "decision=approve",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // The later alert is hidden from the lists and listed under `only`; never dropped.
    let (_, _, text) = send(&f.app, get("/api/v1/alerts?subject=H1", &cookie)).await;
    assert_eq!(listed(&text), std::slice::from_ref(&f.alert_id), "{text}");
    let (_, _, text) = send(
        &f.app,
        get("/api/v1/alerts?subject=H1&suppressed=only", &cookie),
    )
    .await;
    assert_eq!(listed(&text), std::slice::from_ref(&later.id), "{text}");
    let (_, _, text) = send(
        &f.app,
        get("/api/v1/alerts?subject=H1&suppressed=include", &cookie),
    )
    .await;
    assert_eq!(listed(&text).len(), 2, "{text}");
    let (status, _, text) = send(&f.app, get("/api/v1/alerts?suppressed=never", &cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("include, hide, only"), "{text}");
    let (_, _, page) = send(&f.app, get("/alerts", &cookie)).await;
    assert!(page.contains("id=\"hidden-note\""), "{page}");
    assert!(!page.contains(&format!("data-alert=\"{}\"", later.id)));
    let (_, _, page) = send(&f.app, get("/cases", &cookie)).await;
    assert!(page.contains("id=\"hidden-note\""), "{page}");
    assert!(page.contains("suppressed=only"), "{page}");
    let (_, _, page) = send(&f.app, get(&format!("/alerts/{}", later.id), &cookie)).await;
    assert!(
        page.contains("id=\"suppressed-note\" data-hidden=\"true\""),
        "{page}"
    );

    // Listed, with who decided and what it hides; only a supervisor sees Lift.
    let (_, _, text) = send(&f.app, get("/api/v1/suppressions", &cookie)).await;
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{text}");
    let s = &list[0];
    assert_eq!(s["state"], "active");
    assert_eq!(s["rule_id"], "TC-04");
    assert_eq!(s["subject_id"], "H1");
    assert_eq!(s["hidden"], 1);
    assert_eq!(s["decided_by"], "supervisor");
    assert_eq!(s["reason"], "group treasury");
    let id = s["id"].as_i64().unwrap();
    let (_, _, page) = send(&f.app, get("/suppressions", &cookie)).await;
    assert!(
        page.contains(&format!("data-suppression=\"{id}\"")),
        "{page}"
    );
    assert!(!page.contains("class=\"lift\""));
    let (_, _, page) = send(&f.app, get("/suppressions", &sup_cookie)).await;
    assert!(page.contains("class=\"lift\""));
    let (status, _, text) = send(&f.app, get("/api/v1/suppressions?state=later", &cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("pending, active, expired, rejected, lifted"),
        "{text}"
    );

    let lift = format!("/suppressions/{id}/lift");
    let (status, _, _) = send(
        &f.app,
        request("POST", &lift, Some(&cookie), Some(&csrf), ""),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(
        &f.app,
        request("POST", &lift, Some(&sup_cookie), Some(&sup_csrf), ""),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, text) = send(&f.app, get("/api/v1/alerts?subject=H1", &cookie)).await;
    assert_eq!(listed(&text).len(), 2, "lifted: back in the queue: {text}");
    let (_, _, text) = send(&f.app, get("/api/v1/suppressions?state=lifted", &cookie)).await;
    assert!(text.contains("\"state\":\"lifted\""), "{text}");
    let (status, _, _) = send(
        &f.app,
        request("POST", &lift, Some(&sup_cookie), Some(&sup_csrf), ""),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "no longer active");
}

/// `/api/v1/cases` and `/cases` fold every alert on a subject into one case ranked by
/// entity risk: a subject with two rules outranks one with a single rule at the same
/// score, filters apply, a value the queue does not know is a 400 in the API's error
/// format, and the bulk form acts on all of a case's alerts at once.
#[tokio::test]
async fn cases_fold_each_subjects_alerts_into_one_row() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    // H1 gets a second rule; H2 keeps one.
    let mut second = alert();
    second.rule_id = "ML-02".into();
    second.score = 50;
    second.id = Alert::make_id("ML-02", "v1", &second.subject, second.window);
    f.st.store
        .save_alerts(std::slice::from_ref(&second), &[])
        .await
        .unwrap();
    let get = |uri: &str| request("GET", uri, Some(&cookie), None, "");
    let (status, _, text) = send(&f.app, get("/api/v1/cases")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = list["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["account:H1", "account:H2"], "{text}");
    let h1 = &list["cases"][0];
    assert_eq!(h1["rules"], serde_json::json!(["ML-02", "TC-04"]));
    assert_eq!(
        h1["alert_ids"],
        serde_json::json!([f.alert_id, second.id]),
        "highest score first"
    );
    assert_eq!(h1["score"], 90, "1 - 0.2 * 0.5");
    assert_eq!(h1["status"], "new");
    assert_eq!(h1["deadline"], "review");
    assert!(
        h1["due"].as_str().is_some_and(|d| d.len() == 10),
        "every case has a due date: {text}"
    );
    assert_eq!(list["total"], 2);
    assert_eq!(list["alerts_read"], 3);
    assert_eq!(list["truncated"], false);
    let (_, _, text) = send(&f.app, get("/api/v1/cases?rule=ML-02")).await;
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["total"], 1, "{text}");
    assert_eq!(list["cases"][0]["score"], 50, "{text}");
    for (band, total) in [("on_time", 2), ("overdue", 0), ("done", 0)] {
        let (_, _, text) = send(&f.app, get(&format!("/api/v1/cases?sla={band}"))).await;
        let list: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(list["total"], total, "{band}: {text}");
    }
    for bad in [
        "/api/v1/cases?status=nope",
        "/api/v1/cases?sort=nope",
        "/api/v1/cases?sla=late",
    ] {
        let (status, _, text) = send(&f.app, get(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {text}");
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("valid"),
            "{bad}: {text}"
        );
    }
    let (status, _, page) = send(&f.app, get("/cases")).await;
    assert_eq!(status, StatusCode::OK);
    let h1 = page.find(">H1<").expect("H1 listed");
    let h2 = page.find(">H2<").expect("H2 listed");
    assert!(h1 < h2, "ranked by risk");
    assert_eq!(
        page.matches("<tr data-subject=").count(),
        2,
        "one row per subject"
    );
    assert!(
        page.contains("/alerts?subject=H1"),
        "links to the subject's alerts"
    );
    // Posts the case bulk form; where it sends the browser back to.
    let bulk = |body: &str| {
        let req = request("POST", "/cases/bulk", Some(&cookie), Some(&csrf), body);
        async {
            let (status, headers, _) = send(&f.app, req).await;
            assert_eq!(status, StatusCode::SEE_OTHER);
            headers[header::LOCATION].to_str().unwrap().to_string()
        }
    };
    // One selected case assigns both of its alerts.
    let sel = format!("{}:1 {}:1", f.alert_id, second.id);
    let body = serde_urlencoded::to_string([
        ("sel", sel.as_str()),
        ("assignee", "analyst"),
        ("back", "rule=TC-04&sort=due&page=3"),
    ])
    .unwrap();
    // Back to the queue under the filter the form came from, on its first page.
    assert_eq!(
        bulk(&body).await,
        "/cases?status=&rule=TC-04&assignee=&subject=&sla=&sort=due&suppressed=&page=1&done=2&failed=0"
    );
    for id in [&f.alert_id, &second.id] {
        let a = f.st.store.alert(id).await.unwrap().unwrap();
        assert_eq!(a.assignee.as_deref(), Some("analyst"), "{id}");
    }
    let (_, _, text) = send(&f.app, get("/api/v1/cases?assignee=-")).await;
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["cases"][0]["id"], "account:H2", "{text}");
    assert_eq!(list["total"], 1, "{text}");
    // A stale version refuses the whole case.
    assert!(bulk(&body).await.ends_with("&done=0&failed=2"));
    // A status change moves the alerts that can make the move and leaves the rest: the
    // TC-04 alert is put in review first, so only the ML-02 alert moves.
    f.st.store
        .update_case(&clearwatch_store::cases::CaseUpdate {
            alert_id: f.alert_id.clone(),
            expected_version: 2,
            actor: "analyst".into(),
            status: Some(Status::InReview),
            assignee: None,
        })
        .await
        .unwrap();
    let sel = format!("{}:3 {}:2", f.alert_id, second.id);
    let body =
        serde_urlencoded::to_string([("sel", sel.as_str()), ("status", "in_review")]).unwrap();
    assert!(bulk(&body).await.ends_with("&done=1&failed=1"));
    let moved = f.st.store.alert(&second.id).await.unwrap().unwrap();
    assert_eq!(moved.status, Status::InReview);
    let (_, _, page) = send(&f.app, get("/cases?done=1&failed=1")).await;
    assert!(page.contains("1 alerts changed, 1 not changed"), "{page}");
    // The case bulk form offers only the statuses that need no approval.
    let offered = page[page.find(r#"id="cb-status""#).unwrap()..]
        .split("</select>")
        .next()
        .unwrap();
    assert!(offered.contains(r#"value="in_review""#), "{offered}");
    for needs_approval in ["escalated", "dismissed"] {
        assert!(
            !offered.contains(&format!(r#"value="{needs_approval}""#)),
            "{offered}"
        );
    }
    let (status, _, _) = send(&f.app, request("GET", "/api/v1/cases", None, None, "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// "Next case" hands out unassigned open cases one at a time, most urgent and riskiest
/// first, assigning all of a case's alerts, and says so when none is left.
#[tokio::test]
async fn next_case_takes_the_most_urgent_unassigned_case() {
    let f = fixture().await;
    let mut second = alert();
    second.rule_id = "ML-02".into();
    second.score = 50;
    second.id = Alert::make_id("ML-02", "v1", &second.subject, second.window);
    f.st.store
        .save_alerts(std::slice::from_ref(&second), &[])
        .await
        .unwrap();
    let h2 =
        f.st.store
            .alerts(&AlertFilter {
                subject: Some("H2".into()),
                ..AlertFilter::default()
            })
            .await
            .unwrap()
            .remove(0);
    let (cookie, csrf) = login_as(&f.st, "analyst").await;
    let next = || request("POST", "/cases/next", Some(&cookie), Some(&csrf), "");
    // H1 (two rules) outranks H2 at the same deadline.
    let (status, headers, _) = send(&f.app, next()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], format!("/alerts/{}", f.alert_id));
    for id in [&f.alert_id, &second.id] {
        let a = f.st.store.alert(id).await.unwrap().unwrap();
        assert_eq!(a.assignee.as_deref(), Some("analyst"), "{id}");
    }
    // A new alert on H1 joins the case its analyst holds: it is not handed out again.
    let mut third = alert();
    third.rule_id = "ML-05".into();
    third.id = Alert::make_id("ML-05", "v1", &third.subject, third.window);
    f.st.store
        .save_alerts(std::slice::from_ref(&third), &[])
        .await
        .unwrap();
    let (_, headers, _) = send(&f.app, next()).await;
    assert_eq!(
        headers[header::LOCATION],
        format!("/alerts/{}", h2.alert.id)
    );
    let (_, headers, _) = send(&f.app, next()).await;
    assert_eq!(headers[header::LOCATION], "/cases?empty=1");
    let (_, _, page) = send(
        &f.app,
        request("GET", "/cases?empty=1", Some(&cookie), None, ""),
    )
    .await;
    assert!(page.contains("No unassigned open case is left."), "{page}");
    // Not for roles that do not work cases.
    let (cookie, csrf) = login_as(&f.st, "auditor").await;
    let (status, _, _) = send(
        &f.app,
        request("POST", "/cases/next", Some(&cookie), Some(&csrf), ""),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The dashboard's lint shows the absent-field warning of an edited rule, and the shipped
/// text lints clean.
#[tokio::test]
async fn dashboard_lint_shows_absent_field_warnings() {
    let f = fixture().await;
    let (cookie, csrf) = login_as(&f.st, "rule_author").await;
    let file = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("rules/two-clear/TC-01-non-same-name-settlement.yaml"),
    )
    .unwrap();
    let lint = |text: &str| {
        let form = serde_urlencoded::to_string([("text", text)]).unwrap();
        request(
            "POST",
            "/rules/TC-01/lint",
            Some(&cookie),
            Some(&csrf),
            &form,
        )
    };
    let (status, _, page) = send(&f.app, lint(&file)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("warning:"), "shipped text: {page}");
    let unguarded = file.replace("payee.holder != \"\" && payee.holder", "payee.holder");
    assert_ne!(unguarded, file, "the guard is in the shipped text");
    let (status, _, page) = send(&f.app, lint(&unguarded)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("warning: `payee.holder` may be absent"),
        "{page}"
    );
}

/// A server on the fixture's store watching the stream `name`, and an admin's cookie for it.
async fn watching(f: &Fixture, nats: &str, name: &str) -> (Router, String) {
    let mut st = AppState::new(f._db.reopen().await.unwrap(), PackSource::resolve(&[]));
    std::sync::Arc::get_mut(&mut st).unwrap().stream = Some(server::streaming::StreamWatch {
        nats: nats.to_string(),
        stream: name.to_string(),
    });
    let app = server::app(st.clone());
    let (cookie, _) = login_as(&st, "admin").await;
    (app, cookie)
}

/// The admin page and API show each partition's lag of the stream the server watches,
/// against the real nats-server; other roles are refused, and a server started without
/// `--nats` says that no stream is watched.
#[tokio::test]
async fn the_stream_page_shows_each_partitions_lag_to_admins() {
    let f = fixture().await;
    let (cookie, _) = login_as(&f.st, "admin").await;
    let (status, _, text) = send(
        &f.app,
        request("GET", "/admin/stream", Some(&cookie), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("--nats"), "{text}");
    for role in ["analyst", "supervisor", "auditor", "rule_author"] {
        let (cookie, _) = login_as(&f.st, role).await;
        let (status, _, _) = send(
            &f.app,
            request("GET", "/api/v1/stream", Some(&cookie), None, ""),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    // A server whose NATS does not answer says so, and nothing more.
    let (app, cookie) = watching(&f, "nats://127.0.0.1:9", "CLEARWATCH").await;
    let (status, _, text) = send(
        &app,
        request("GET", "/api/v1/stream", Some(&cookie), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(!text.contains("127.0.0.1:9"), "{text}");

    let Some(url) = crate::stream::nats() else {
        return;
    };
    let s = crate::stream::TestStream::new(&url, "lag");
    let topo = clearwatch_stream::Topology::new(&s.name, 3).unwrap();
    let js = clearwatch_stream::connect(&url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let header = "tx_id,ts,from,to,amount,currency,type,merchant_id,channel,region,memo\n";
    let file = |name: &str, ids: std::ops::Range<u32>| {
        let mut text = header.to_string();
        for i in ids {
            text.push_str(&format!(
                "T{i},2026-01-05T00:00:{:02}Z,A{i},B{i},10.00,CNY,transfer,,,,\n",
                i % 60
            ));
        }
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        vec![p]
    };
    let native = || clearwatch_ingest::Profile::load("native").unwrap();
    clearwatch_stream::publish(&js, &topo, file("a.csv", 0..5), native(), None)
        .await
        .unwrap();
    // A worker makes the consumers and drains them; what is published next waits.
    let store = f._db.reopen().await.unwrap();
    let opts = clearwatch_stream::WorkOptions {
        topology: topo.clone(),
        worker: 0,
        of: 1,
        scans: false,
        evaluates: false,
        batch_every: std::time::Duration::from_secs(3600),
        ack_wait: std::time::Duration::from_secs(30),
        fetch: 100,
        once: true,
        idle: None,
    };
    clearwatch_stream::work(&js, &store, &[], &opts, |_| {})
        .await
        .unwrap();
    let waiting = clearwatch_stream::publish(&js, &topo, file("b.csv", 5..12), native(), None)
        .await
        .unwrap()
        .messages;
    assert!(waiting >= 7, "{waiting}");

    let (app, cookie) = watching(&f, &url, &s.name).await;
    let (status, _, text) = send(
        &app,
        request("GET", "/api/v1/stream", Some(&cookie), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let lag: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(lag["exists"], true);
    assert_eq!(lag["partitions"], 3);
    assert_eq!(lag["pending"], waiting);
    assert_eq!(lag["lags"].as_array().unwrap().len(), 3);
    assert!(
        lag["lags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["exists"] == true)
    );
    let (status, _, page) = send(
        &app,
        request("GET", "/admin/stream", Some(&cookie), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!(
            r#"<strong id="stream-pending">{waiting}</strong>"#
        )),
        "{page}"
    );
    assert_eq!(page.matches("data-partition=").count(), 3);
}

/// An alert that reports an episode of several firing windows shows the episode's span
/// beside its best window (its evidence is every window's, gathered by the scan).
#[tokio::test]
async fn alert_page_shows_the_span_of_its_episode() {
    use clearwatch_store::ScanStore;
    use clearwatch_store::scans::ScanSave;
    let db = TestDb::sqlite().await;
    let a = alert();
    let episode = Window {
        from: a.window.from,
        until: a.window.until + 2 * 86_400_000,
    };
    // One alert of a single window: its episode is its window and is not repeated.
    // H10 contains H1, and a merchant may share an account's id: neither is H1's.
    let mut single = alert();
    single.subject.id = "H10".into();
    single.id = Alert::make_id("TC-04", "v1", &single.subject, single.window);
    let mut merchant = alert();
    merchant.subject.kind = SubjectKind::Merchant;
    merchant.id = Alert::make_id("TC-04", "v1", &merchant.subject, merchant.window);
    // Another rule's alert on the same subject: the page's header lists both.
    let mut other = alert();
    other.rule_id = "ML-01".into();
    other.score = 40;
    other.id = Alert::make_id("ML-01", "v1", &other.subject, other.window);
    db.store
        .save_scan(ScanSave {
            alerts: &[a.clone(), single.clone(), other.clone(), merchant.clone()],
            episodes: &std::collections::HashMap::from([
                (a.id.clone(), episode),
                (single.id.clone(), single.window),
            ]),
            rules: &[],
        })
        .await
        .unwrap();
    assert_eq!(db.store.alert_episode(&a.id).await.unwrap(), Some(episode));
    assert_eq!(db.store.alert_episode("nope").await.unwrap(), None);
    let st = AppState::new(db.reopen().await.unwrap(), PackSource::resolve(&[]));
    let (app, cookie) = analyst_session(&st).await;
    let url = format!("/alerts/{}", a.id);
    let (status, _, page) = send(&app, request("GET", &url, Some(&cookie), None, "")).await;
    assert_eq!(status, StatusCode::OK);
    let until = clearwatch_model::format_ts(episode.until);
    let at = page.find("id=\"episode\"").expect("the episode row");
    assert!(
        page[at..].contains(&format!("<time datetime=\"{until}\">")),
        "{}",
        &page[at..]
    );
    // The header: the subject's case, each of its alerts with the span it reports.
    assert!(page.contains("id=\"case-head\""), "{page}");
    let row = |id: &str| {
        let at = page
            .find(&format!("data-alert=\"{id}\""))
            .unwrap_or_else(|| panic!("no row for {id}"));
        let end = page[at..].find("</tr>").unwrap();
        page[at..at + end].to_string()
    };
    assert!(row(&a.id).contains(&format!("<time datetime=\"{until}\"")));
    assert!(page.contains(&format!("aria-current=\"true\" data-alert=\"{}\"", a.id)));
    assert!(row(&other.id).contains(&format!("href=\"/alerts/{}\"", other.id)));
    assert!(
        row(&other.id).contains(&format!(
            "<time datetime=\"{}\"",
            clearwatch_model::format_ts(other.window.until)
        )),
        "an alert without a stored episode shows its window"
    );
    assert!(!page.contains(&format!("data-alert=\"{}\"", single.id)));
    assert!(!page.contains(&format!("data-alert=\"{}\"", merchant.id)));
    assert!(
        page.contains("<dd class=\"big\">2</dd>"),
        "two alerts on H1: {page}"
    );
    assert!(
        page.contains("<span class=\"rule-chip\" title=\"ML-01\">ML-01</span>"),
        "{page}"
    );
    // The API gives the episode beside the window.
    let get = |uri: &str, cookie: &str| request("GET", uri, Some(cookie), None, "");
    let (status, _, body) = send(&app, get(&format!("/api/v1/alerts/{}", a.id), &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["episode"]["until"], until.as_str(), "{v}");
    assert_eq!(
        v["window"]["until"],
        clearwatch_model::format_ts(a.window.until).as_str()
    );
    let url = format!("/alerts/{}", single.id);
    let (status, _, page) = send(&app, request("GET", &url, Some(&cookie), None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("id=\"episode\""));
    let (_, _, body) = send(&app, get(&format!("/api/v1/alerts/{}", other.id), &cookie)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["episode"], v["window"], "an episode of one window: {v}");
}

/// `/api/v1/lists` gives every list with its entries in force, and `/api/v1/lists/{name}`
/// one list's entries with their state; a list that does not exist is a 404.
#[tokio::test]
async fn lists_api_gives_lists_and_their_entries() {
    use clearwatch_model::lists::{EntryKind, ListKind, NewListEntry};
    use clearwatch_store::ListStore;
    let db = TestDb::sqlite().await;
    let st = AppState::new(db.reopen().await.unwrap(), PackSource::resolve(&[]));
    let (app, cookie) = analyst_session(&st).await;
    let get = |uri: &str, cookie: &str| request("GET", uri, Some(cookie), None, "");
    st.store
        .create_list("watched", ListKind::Watch, "new agents", "analyst")
        .await
        .unwrap_err();
    st.store
        .add_user("sue", UserRole::Supervisor, "x", "test")
        .await
        .unwrap();
    st.store
        .create_list("watched", ListKind::Watch, "new agents", "sue")
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let entry = |value: &str| NewListEntry {
        kind: EntryKind::Account,
        value: value.into(),
        reason: "opened last week".into(),
        expires_at: now + 86_400_000,
    };
    st.store
        .add_list_entry("watched", &entry("A1"), "analyst")
        .await
        .unwrap();
    let gone = st
        .store
        .add_list_entry("watched", &entry("A2"), "analyst")
        .await
        .unwrap();
    st.store
        .remove_list_entry("watched", gone.id, "sue")
        .await
        .unwrap();
    let (status, _, body) = send(&app, get("/api/v1/lists", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["name"], "watched", "{v}");
    assert_eq!(v[0]["kind"], "watch");
    assert_eq!(v[0]["active"], 1);
    let (status, _, body) = send(&app, get("/api/v1/lists/watched", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "watched", "{v}");
    let states: Vec<(&str, &str)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["value"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("A2", "removed"), ("A1", "active")], "{v}");
    assert_eq!(v["truncated"], false);
    assert_eq!(v["entries"][0]["removed_by"], "sue");
    let (status, _, _) = send(&app, get("/api/v1/lists/nope", &cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The Rules page warns about a list that a rule reads and the store does not have (a
/// misspelt allow list would apply to nobody), until a list of that name exists.
#[tokio::test]
async fn rules_page_warns_about_a_list_that_does_not_exist() {
    use clearwatch_model::lists::ListKind;
    use clearwatch_store::ListStore;
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped =
        std::fs::read_to_string(root.join("rules/two-clear/TC-04-fund-pool.yaml")).unwrap();
    let listed = shipped.replace(
        "subject: '!is_institution'",
        "subject: '!is_institution && !in_list(\"group_tresury\", hub.id)'",
    );
    assert_ne!(listed, shipped);
    let file = dir.path().join("TC-04-fund-pool.yaml");
    std::fs::write(&file, listed).unwrap();
    let pack = vec![file];
    let st = AppState::new(db.reopen().await.unwrap(), PackSource::resolve(&pack));
    let (app, cookie) = analyst_session(&st).await;
    let warned = || async {
        let (status, _, page) = send(&app, request("GET", "/rules", Some(&cookie), None, "")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page.contains("data-unknown-list=\"group_tresury\"")
    };
    assert!(warned().await);
    st.store
        .add_user("sue", UserRole::Supervisor, "x", "test")
        .await
        .unwrap();
    st.store
        .create_list("group_tresury", ListKind::Allow, "", "sue")
        .await
        .unwrap();
    assert!(!warned().await);
}

/// An account the registry gives no role gets the role its transactions show from the next
/// store scan (the demo's pool, settled by the acquirer, reads as a merchant); the account
/// page, the alert page's header and its graph mark that role as inferred, and a role of
/// the registry is never overruled.
#[tokio::test]
async fn accounts_without_a_registry_role_show_their_inferred_role() {
    let db = TestDb::sqlite().await;
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo");
    let registry = std::fs::read_to_string(demo.join("accounts.csv")).unwrap();
    let silent: String = registry
        .lines()
        .map(|l| {
            if l.starts_with("A00000236,") {
                l.replace(",agent,", ",,")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_ne!(silent, registry);
    let accounts = db.write("accounts.csv", &silent);
    db.cmd()
        .args(["ingest", "--transactions"])
        .arg(demo.join("transactions.csv"))
        .arg("--accounts")
        .arg(&accounts)
        .arg("--merchants")
        .arg(demo.join("merchants.csv"))
        .assert()
        .success();
    db.cmd().arg("scan").assert().success();
    let st = AppState::new(db.reopen().await.unwrap(), PackSource::resolve(&[]));
    let (app, cookie) = analyst_session(&st).await;
    let get = |uri: String| request("GET", &uri, Some(&cookie), None, "");
    let (status, _, page) = send(&app, get("/accounts/A00000236".into())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-inferred=\"merchant\""), "{page}");
    let (_, _, page) = send(&app, get("/accounts/A00000470".into())).await;
    assert!(
        !page.contains("data-inferred"),
        "the registry's acquirer: {page}"
    );
    let pool = st
        .store
        .alerts(&AlertFilter {
            subject_is: Some(Subject {
                kind: SubjectKind::Account,
                id: "A00000236".into(),
            }),
            ..AlertFilter::default()
        })
        .await
        .unwrap();
    let alert = pool.first().expect("the pool still alerts");
    let (_, _, page) = send(&app, get(format!("/alerts/{}", alert.alert.id))).await;
    assert!(
        page.contains("<span id=\"subject-inferred-role\">merchant (inferred)</span>"),
        "{page}"
    );
    assert!(page.contains("&#34;inferred&#34;:true"), "{page}");
}
