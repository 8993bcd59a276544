//! The rules pages: the pack with hit counts and precision from dispositions, each rule's
//! YAML and stored versions, and the rule author's tools on an edited text: lint (errors at
//! line:column), backtest against the stored data (which alerts would appear or disappear;
//! nothing is written), and publish as a new stored version. A draft of a new rule (not in
//! the pack yet) is linted and backtested the same way at `/rules/new`; it joins the pack
//! when its file is added to the rules folder.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::extract::CurrentUser;
use super::views::{BacktestRow, BacktestView, LintLine, PageCtx, RulePage, RuleRow, RulesPage};
use super::{AppError, Shared};
use clearwatch_model::SubjectKind;
use clearwatch_model::case::UserRole;
use clearwatch_rules::Rule;
use clearwatch_rules::diag::Diagnostic;
use clearwatch_scan::{self as scan, Pack, Published};
use clearwatch_store::AlertStore;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/rules", get(list))
        .route("/rules/new", get(new_rule))
        .route("/rules/new/lint", post(new_lint))
        .route("/rules/new/backtest", post(new_backtest))
        .route("/rules/{id}", get(show))
        .route("/rules/{id}/lint", post(lint))
        .route("/rules/{id}/backtest", post(backtest))
        .route("/rules/{id}/publish", post(publish))
}

/// The pack as store scans run it (the scan service's one policy for published
/// versions).
pub async fn effective_pack(st: &Shared) -> Result<Pack, AppError> {
    let pack = Pack::load(st.rules.clone(), &st.store, Published::Use).await?;
    for d in &pack.broken {
        eprintln!("warning: {d}");
    }
    Ok(pack)
}

async fn list(State(st): State<Shared>, user: CurrentUser) -> Result<Response, AppError> {
    let pack = effective_pack(&st).await?;
    let published = pack.published_ids();
    let hits: HashMap<String, _> = st
        .store
        .rule_hits()
        .await?
        .into_iter()
        .map(|h| (h.rule_id.clone(), h))
        .collect();
    let rows = pack
        .set
        .rules
        .iter()
        .map(|r| {
            let h = hits.get(&r.id);
            RuleRow {
                id: r.id.clone(),
                title: r.title.clone(),
                status: r.status.as_str().to_string(),
                severity: r.severity.as_str().to_string(),
                alerts: h.map_or(0, |h| h.alerts),
                open: h.map_or(0, |h| h.open),
                reported: h.map_or(0, |h| h.reported),
                dismissed: h.map_or(0, |h| h.dismissed),
                precision: h
                    .and_then(|h| h.precision())
                    .map_or_else(|| "—".to_string(), |p| format!("{:.0}%", p * 100.0)),
                published: published.contains(&r.id),
            }
        })
        .collect();
    let page = RulesPage {
        ctx: PageCtx::new(&user),
        rows,
        can_draft: may_check(user.user.role),
        unknown_lists: pack.unknown_lists.clone(),
    };
    Ok(Html(page.render()?).into_response())
}

/// Whether `role` may lint and backtest rule texts (the routes' `RULE_TOOLS`).
fn may_check(role: UserRole) -> bool {
    matches!(
        role,
        UserRole::RuleAuthor | UserRole::Supervisor | UserRole::Admin
    )
}

#[derive(serde::Deserialize)]
struct ShowQuery {
    #[serde(default)]
    version: Option<String>,
}

struct Base {
    title: String,
    status: String,
    severity: String,
    version: String,
    text: String,
    /// Whether the text is a published version (else the rule file).
    published: bool,
}

/// The rule `id` as store scans run it, and the pack it compiles in.
async fn base(st: &Shared, id: &str) -> Result<(Base, Pack), AppError> {
    let pack = effective_pack(st).await?;
    let r = pack.rule(id).ok_or(AppError::NotFound)?;
    let b = Base {
        title: r.title.clone(),
        status: r.status.as_str().to_string(),
        severity: r.severity.as_str().to_string(),
        version: r.version.clone(),
        text: r.text.clone(),
        published: pack.published_ids().contains(id),
    };
    Ok((b, pack))
}

async fn page(
    st: &Shared,
    user: &CurrentUser,
    id: &str,
    text: Option<String>,
) -> Result<RulePage, AppError> {
    let (b, _) = base(st, id).await?;
    let role = user.user.role;
    Ok(RulePage {
        id: id.to_string(),
        title: b.title,
        status: b.status,
        severity: b.severity,
        version: b.version,
        published: b.published,
        versions: st.store.rule_versions(id).await?,
        can_check: may_check(role),
        can_publish: role == UserRole::RuleAuthor,
        draft: false,
        ..draft_page(user, text.unwrap_or(b.text))
    })
}

async fn show(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, AppError> {
    let mut text = None;
    if let Some(v) = q.version.filter(|v| !v.is_empty()) {
        let stored = st
            .store
            .rule_version(&id, &v)
            .await?
            .ok_or(AppError::NotFound)?;
        text = Some(stored.text);
    }
    let p = page(&st, &user, &id, text).await?;
    Ok(Html(p.render()?).into_response())
}

#[derive(serde::Deserialize)]
struct RuleForm {
    text: String,
}

fn lint_lines(diags: &[Diagnostic]) -> Vec<LintLine> {
    diags
        .iter()
        .map(|d| LintLine {
            line: d.line,
            column: d.column,
            message: if d.warning {
                format!("warning: {}", d.message)
            } else {
                d.message.clone()
            },
            help: d.help.clone().unwrap_or_default(),
        })
        .collect()
}

/// Compiles an edited `text` as the file of rule `id` in the pack (same `_shared`, so the
/// version is the one a scan computes for this text); returns its diagnostics and the rule.
async fn checked(
    st: &Shared,
    id: &str,
    text: String,
) -> Result<(Vec<Diagnostic>, Option<Rule>), AppError> {
    let (_, pack) = base(st, id).await?;
    let id = id.to_string();
    compile_in(pack, move |p| p.compile_edit(&id, &text)).await
}

/// Compiles a text in `pack` off the async runtime: its errors, or the rule.
async fn compile_in(
    pack: Pack,
    compile: impl FnOnce(&Pack) -> Result<Rule, Vec<Diagnostic>> + Send + 'static,
) -> Result<(Vec<Diagnostic>, Option<Rule>), AppError> {
    tokio::task::spawn_blocking(move || match compile(&pack) {
        Ok(rule) => (Vec::new(), Some(rule)),
        Err(d) => (d, None),
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))
}

/// The lint box: the errors, then the compiled rule's warnings.
fn lint_box(diags: &[Diagnostic], rule: Option<&Rule>) -> Vec<LintLine> {
    let mut lines = lint_lines(diags);
    if let Some(rule) = rule {
        lines.extend(lint_lines(&rule.warnings));
    }
    lines
}

/// The backtest of a rule that compiled without errors, as the page shows it.
async fn backtest_clean(
    st: &Shared,
    diags: &[Diagnostic],
    rule: Option<Rule>,
) -> Result<Option<BacktestView>, AppError> {
    match (diags.is_empty(), rule) {
        (true, Some(rule)) => {
            let b =
                scan::backtest(&st.store, rule, st.shutdown.child(), st.backtest_budget).await?;
            Ok(Some(backtest_view(&b)))
        }
        _ => Ok(None),
    }
}

async fn lint(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<RuleForm>,
) -> Result<Response, AppError> {
    let (diags, rule) = checked(&st, &id, f.text.clone()).await?;
    let mut p = page(&st, &user, &id, Some(f.text)).await?;
    p.lint = Some(lint_box(&diags, rule.as_ref()));
    Ok(Html(p.render()?).into_response())
}

/// What `/rules/new` starts from when no rule is named: the smallest rule that lints, to
/// be edited.
pub const DRAFT_SKELETON: &str = r#"id: NEW-01
title: "A new rule"
status: experimental
severity: low
description: >
  What the rule detects and why it matters.
author: ""
date: 2026-01-01
parameters:
  window: { type: duration, default: 7d, description: "Length of the sliding window." }
  min_payees: { type: int, default: 10, min: 2, description: "Distinct payees in the window." }
detect:
  kind: star
  subject: '!is_institution'
  out: 'tx.type == "transfer"'
  window: { length: window, step: 1d }
  aggregates:
    payees: { fn: count_distinct, over: out, field: counterparty }
  condition: 'payees >= params.min_payees'
summary: "{subject} paid {payees:distinct payee|distinct payees} between {from} and {until}."
"#;

#[derive(serde::Deserialize)]
struct NewQuery {
    /// A rule of the pack whose text the draft starts from.
    #[serde(default)]
    from: Option<String>,
}

/// The editor with `text` as a draft of a new rule; a rule's own page starts from it.
fn draft_page(user: &CurrentUser, text: String) -> RulePage {
    RulePage {
        ctx: PageCtx::new(user),
        id: "new".to_string(),
        title: user.catalog.get("rules.new").to_string(),
        status: String::new(),
        severity: String::new(),
        version: String::new(),
        published: false,
        text,
        versions: Vec::new(),
        can_check: true,
        can_publish: false,
        lint: None,
        backtest: None,
        flash: None,
        draft: true,
    }
}

async fn new_rule(
    State(st): State<Shared>,
    user: CurrentUser,
    Query(q): Query<NewQuery>,
) -> Result<Response, AppError> {
    let text = match q.from.filter(|f| !f.is_empty()) {
        Some(id) => copy_of(&base(&st, &id).await?.0.text, &id),
        None => DRAFT_SKELETON.to_string(),
    };
    Ok(Html(draft_page(&user, text).render()?).into_response())
}

/// A rule's text as the start of a new rule: its `id:` line names `ID-copy`, an id the
/// pack does not have yet.
fn copy_of(text: &str, id: &str) -> String {
    let line = format!("id: {id}");
    let mut renamed = false;
    text.lines()
        .map(|l| {
            if !renamed && l.trim_end() == line {
                renamed = true;
                format!("id: {id}-copy")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Compiles a draft in the pack: the rule id is the one its text declares.
async fn checked_draft(
    st: &Shared,
    text: String,
) -> Result<(Vec<Diagnostic>, Option<Rule>), AppError> {
    let pack = effective_pack(st).await?;
    compile_in(pack, move |p| p.compile_draft(&text)).await
}

async fn new_lint(
    State(st): State<Shared>,
    user: CurrentUser,
    axum::Form(f): axum::Form<RuleForm>,
) -> Result<Response, AppError> {
    let (diags, rule) = checked_draft(&st, f.text.clone()).await?;
    let mut p = draft_page(&user, f.text);
    p.lint = Some(lint_box(&diags, rule.as_ref()));
    Ok(Html(p.render()?).into_response())
}

async fn new_backtest(
    State(st): State<Shared>,
    user: CurrentUser,
    axum::Form(f): axum::Form<RuleForm>,
) -> Result<Response, AppError> {
    let (diags, rule) = checked_draft(&st, f.text.clone()).await?;
    let mut p = draft_page(&user, f.text);
    p.lint = Some(lint_lines(&diags));
    p.backtest = backtest_clean(&st, &diags, rule).await?;
    Ok(Html(p.render()?).into_response())
}

/// The backtest as the rule page shows it.
pub fn backtest_view(b: &scan::Backtest) -> BacktestView {
    let score = |s: Option<u32>| s.map_or_else(|| "—".to_string(), |s| s.to_string());
    BacktestView {
        rows: b
            .subjects
            .iter()
            .map(|s| {
                let (old, new) = s.scores();
                BacktestRow {
                    change: s.change.as_str(),
                    subject: format!("{} {}", s.subject.kind, s.subject.id),
                    href: (s.subject.kind == SubjectKind::Account)
                        .then(|| crate::views::account_href(&s.subject.id)),
                    old_score: score(old),
                    new_score: score(new),
                    old_alerts: s.old_alerts,
                    new_alerts: s.new_alerts,
                    summary: s
                        .new
                        .as_ref()
                        .map(|a| a.summary.clone())
                        .or_else(|| s.old.as_ref().map(|a| a.alert.summary.clone()))
                        .unwrap_or_default(),
                    alert_id: s.old.as_ref().map(|a| a.alert.id.clone()),
                }
            })
            .collect(),
        appear: b.count(scan::Change::Appears),
        disappear: b.count(scan::Change::Disappears),
        changed: b.count(scan::Change::Changed),
        unchanged: b.unchanged,
        capped: b.capped.as_ref().map(|c| (c.capped, c.searches)),
    }
}

async fn backtest(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<RuleForm>,
) -> Result<Response, AppError> {
    let (diags, rule) = checked(&st, &id, f.text.clone()).await?;
    let mut p = page(&st, &user, &id, Some(f.text)).await?;
    p.lint = Some(lint_lines(&diags));
    if let Some(rule) = rule.as_ref().filter(|r| r.id != id) {
        return Err(AppError::BadRequest(format!(
            "the text defines rule {}, not {id}",
            rule.id
        )));
    }
    p.backtest = backtest_clean(&st, &diags, rule).await?;
    Ok(Html(p.render()?).into_response())
}

async fn publish(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<RuleForm>,
) -> Result<Response, AppError> {
    let (diags, rule) = checked(&st, &id, f.text.clone()).await?;
    let mut p = page(&st, &user, &id, Some(f.text.clone())).await?;
    p.lint = Some(lint_lines(&diags));
    match rule {
        Some(rule) if diags.is_empty() && rule.id == id => {
            st.store
                .publish_rule(&scan::rule_version(&rule), &user.user.name)
                .await?;
            p.versions = st.store.rule_versions(&id).await?;
            // From now on store scans run this text.
            p.published = true;
            p.version = rule.version.clone();
            p.title = rule.title.clone();
            p.status = rule.status.as_str().to_string();
            p.severity = rule.severity.as_str().to_string();
            p.flash = Some(format!(
                "{} {}",
                user.catalog.get("rules.published"),
                &rule.version[..12.min(rule.version.len())]
            ));
        }
        _ => {
            p.flash = Some("not published: fix the lint errors first".into());
        }
    }
    Ok(Html(p.render()?).into_response())
}
