//! Router tests of the dashboard, with `tower::ServiceExt::oneshot` (no socket): every
//! route of the authorization table for every role and without a session, CSRF
//! rejection, sign-in and its rate limit, security headers, escaping of untrusted data,
//! and the workflow rules over HTTP (self-approval refused, version conflict reported).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clearwatch::detect::{Alert, Evidence, Severity, Subject, Window};
use clearwatch::rules::load::default_rules_dir;
use clearwatch::server::auth::{self, CSRF_HEADER, SESSION_COOKIE};
use clearwatch::server::routes::{Access, ROUTES};
use clearwatch::server::{self, AppState, Shared};
use clearwatch::store::cases::{Status, UserRole};
use clearwatch::store::{RuleVersion, Store};
use tower::ServiceExt;

use crate::store::TestDb;

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
        kind: "account".into(),
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
        .request_approval(&b.id, 1, Status::Dismissed, Some("known"), "analyst")
        .await
        .unwrap();
    let store = db.reopen().await.unwrap();
    let mut st = AppState::new(store, default_rules_dir());
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
    path.replace("{*path}", "app.css")
        .replace("/approvals/{id}", &format!("/approvals/{}", f.approval_id))
        .replace("/accounts/{id}", "/accounts/H1")
        .replace("/rules/{id}", "/rules/TC-04")
        .replace("{id}", &f.alert_id)
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
        "escalated"
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
        clearwatch::store::cases::AuditCheck::Intact { .. }
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
    let store = clearwatch::store::open(&db.url()).await.unwrap();
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
    let v = clearwatch::export::bundle::verify(&path, None).unwrap();
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
