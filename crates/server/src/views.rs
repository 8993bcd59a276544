//! The pages: one askama template struct per page (templates in `dashboards/templates/`,
//! HTML auto-escaped), the context every page shares, and display helpers.

use std::sync::Arc;

use askama::Template;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::extract::CurrentUser;
use super::i18n::Catalog;
use clearwatch_model::StoredAlert;
use clearwatch_model::case::{AuditCheck, AuditEntry, UserRole};
use clearwatch_model::{Transaction, format_amount, format_ts};
use clearwatch_rules::texts::Texts;
use clearwatch_store::cases::{Approval, Note, StoredRuleVersion};

/// What the layout needs: who is signed in, their CSRF token, the catalogue.
pub struct PageCtx {
    pub t: &'static Catalog,
    pub user: String,
    pub role: UserRole,
    pub csrf: String,
    /// `{"X-CSRF-Token": "…"}` for htmx requests.
    pub hx_headers: String,
    /// The user's time zone: every time on the page is shown in it.
    pub tz: chrono_tz::Tz,
    /// Rule titles and figure names in every language.
    pub texts: Arc<Texts>,
}

impl PageCtx {
    pub fn new(u: &CurrentUser) -> PageCtx {
        PageCtx {
            t: u.catalog,
            user: u.user.name.clone(),
            role: u.user.role,
            csrf: u.csrf.clone(),
            hx_headers: serde_json::json!({ "X-CSRF-Token": u.csrf }).to_string(),
            tz: time_zone(&u.user.time_zone),
            texts: u.texts.clone(),
        }
    }

    /// The title of rule `id` in the page's language (`english`, its own, otherwise).
    pub fn rule_title(&self, id: &str, english: &str) -> String {
        self.texts
            .title_or(self.t.language, id, english)
            .to_string()
    }

    /// What figure `metric` is called in the page's language (in English, else its name,
    /// when it has no name there).
    pub fn metric_label(&self, metric: &str) -> String {
        self.texts.metric_name(self.t.language, metric).to_string()
    }

    pub fn is_admin(&self) -> bool {
        self.role == UserRole::Admin
    }

    /// A millisecond UTC time in the user's time zone.
    pub fn ts(&self, ms: &i64) -> String {
        local_time(*ms, self.tz)
    }

    /// An RFC 3339 time in the user's time zone (text that does not parse is shown as is).
    pub fn at(&self, rfc3339: &str) -> String {
        match clearwatch_model::parse_rfc3339(rfc3339) {
            Some(ms) => local_time(ms, self.tz),
            None => rfc3339.to_string(),
        }
    }

    /// An RFC 3339 time in the user's time zone to the minute, without the zone: for
    /// narrow columns whose page names the zone elsewhere.
    pub fn at_minute(&self, rfc3339: &str) -> String {
        match clearwatch_model::parse_rfc3339(rfc3339) {
            Some(ms) => local_format(ms, self.tz, "%Y-%m-%d %H:%M"),
            None => rfc3339.to_string(),
        }
    }

    pub fn can_audit(&self) -> bool {
        matches!(
            self.role,
            UserRole::Admin | UserRole::Supervisor | UserRole::Auditor
        )
    }

    pub fn can_export(&self) -> bool {
        matches!(
            self.role,
            UserRole::Analyst | UserRole::Supervisor | UserRole::Auditor
        )
    }

    pub fn can_work_cases(&self) -> bool {
        matches!(self.role, UserRole::Analyst | UserRole::Supervisor)
    }

    pub fn is_supervisor(&self) -> bool {
        self.role == UserRole::Supervisor
    }

    /// The signed-in user's role, in the page's language.
    pub fn role_name(&self) -> String {
        self.user_role_label(self.role.as_str())
    }

    /// The message of a user role value (`admin`, `analyst`, …).
    pub fn user_role_label(&self, role: &str) -> String {
        self.t.get(&format!("user_role.{role}")).to_string()
    }

    /// The message of a severity value (`info` … `critical`).
    pub fn severity_label(&self, severity: &str) -> String {
        self.t.get(&format!("severity.{severity}")).to_string()
    }

    /// The catalogue's word for `value` in `vocabulary`, if it has one.
    pub fn known_term(&self, vocabulary: &str, value: &str) -> Option<String> {
        let key = format!("{vocabulary}.{value}");
        match self.t.get(&key) {
            m if m == key => None,
            m => Some(m.to_string()),
        }
    }

    /// The name of a value of one of the vocabularies (`txtype`, `account_kind`,
    /// `subject_kind`, `role`) in the page's language; a value outside the catalogue (data
    /// that predates a vocabulary) is shown as it is.
    pub fn term(&self, vocabulary: &str, value: &str) -> String {
        self.known_term(vocabulary, value)
            .unwrap_or_else(|| value.to_string())
    }

    /// What an audited action did (`case.assign`: "assigned"); a user change of several
    /// fields (`user.role+time_zone`) names each.
    pub fn action_label(&self, action: &str) -> String {
        let (group, parts) = action.split_once('.').unwrap_or(("", action));
        parts
            .split('+')
            .map(|p| self.term("action", &format!("{group}.{p}")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A group of actions of the audit filter (`case.`) by its name, with its prefix.
    pub fn action_group_label(&self, group: &str) -> String {
        let name = self.term("action_group", group.trim_end_matches('.'));
        format!("{name} ({group}*)")
    }

    /// The message of a rule status (`stable`, `experimental`, …).
    pub fn rule_status_label(&self, status: &str) -> String {
        self.t.get(&format!("rule_status.{status}")).to_string()
    }

    pub fn sort_label(&self, s: &str) -> String {
        self.t.get(&format!("queue.sort.{s}")).to_string()
    }

    /// The message of a status value.
    pub fn status_label(&self, s: &str) -> String {
        self.t.get(&format!("status.{s}")).to_string()
    }

    pub fn sla_label(&self, sla: &str) -> String {
        self.t.get(&format!("sla.{sla}")).to_string()
    }

    pub fn role_label(&self, role: &str) -> String {
        self.t.get(&format!("role.{role}")).to_string()
    }
}

/// A transaction as the tables show it.
pub struct TxRow {
    pub id: String,
    pub ts: String,
    pub from: String,
    pub to: String,
    pub amount: String,
    pub currency: String,
    pub tx_type: String,
    pub memo: String,
}

impl TxRow {
    pub fn new(t: &Transaction) -> TxRow {
        TxRow {
            id: t.tx_id.clone(),
            ts: format_ts(t.ts),
            from: t.from.clone(),
            to: t.to.clone(),
            amount: format_amount(t.amount, t.currency.exponent()),
            currency: t.currency.code().to_string(),
            tx_type: t.tx_type.as_str().to_string(),
            memo: t.memo.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub t: &'static Catalog,
    pub csrf: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub t: &'static Catalog,
    pub status: u16,
    pub message: String,
}

/// The queue's filter values, echoed into the form and the paging links.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub assignee: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub sort: String,
    /// `hide` (the default), `only` or `include`: the alerts a suppression covers.
    #[serde(default)]
    pub suppressed: String,
    #[serde(default)]
    pub page: Option<u64>,
}

/// The queue page; `as_filters()` and `as_results()` render its two fragments for htmx
/// requests (the filter form swapped out of band, so it always matches the URL).
#[derive(Template)]
#[template(path = "queue.html", blocks = ["filters", "results"])]
pub struct QueuePage {
    pub ctx: PageCtx,
    /// Whether the filter form is rendered for an out-of-band swap.
    pub oob: bool,
    pub q: QueueQuery,
    pub rows: Vec<StoredAlert>,
    /// The deadline of each row's case.
    pub deadlines: Vec<clearwatch_model::case::Deadline>,
    pub total: u64,
    pub page: u64,
    pub pages: u64,
    pub prev_link: Option<String>,
    pub next_link: Option<String>,
    pub status_links: Vec<(String, u64, String)>,
    /// `(sort, link)` of every sort order, under the current filter.
    pub sort_links: Vec<(&'static str, String)>,
    pub rules: Vec<String>,
    pub users: Vec<String>,
    pub severities: Vec<&'static str>,
    pub statuses: Vec<&'static str>,
    pub sorts: Vec<&'static str>,
    pub flash: Option<String>,
    /// Alerts under the filter that suppressions hide (when they are hidden), and the
    /// link that lists them.
    pub hidden: u64,
    pub hidden_link: String,
}

/// One figure of an alert, with the test of the rule's condition it was held against.
pub struct MetricRow {
    pub name: String,
    pub value: String,
    /// `≥ 10`, when the condition tests the figure against a constant.
    pub threshold: Option<String>,
    /// How far the figure is past the threshold, e.g. `+2`.
    pub margin: Option<String>,
}

#[derive(Template)]
#[template(path = "alert.html")]
pub struct AlertPage {
    pub ctx: PageCtx,
    pub a: StoredAlert,
    pub deadline: clearwatch_model::case::Deadline,
    pub metrics: Vec<MetricRow>,
    /// Whether the rule version that raised the alert is not the one loaded now (its
    /// thresholds are then not shown).
    pub rule_changed: bool,
    /// The summary with its times in the user's zone (as stored when the rule version
    /// that raised it is not loaded).
    pub summary: String,
    pub window: (String, String),
    /// The span of the episode the alert reports, where it is longer than the window: the
    /// evidence is every firing window's.
    pub episode: Option<(String, String)>,
    /// JSON for the graph, placed in a `data-` attribute (escaped as any attribute).
    pub graph_json: String,
    pub node_count: usize,
    pub links_left_out: usize,
    /// Whether the chart is the rule's pooled balance (from its opening balance) rather
    /// than the net flow of the evidence.
    pub pooled: bool,
    pub txs: Vec<TxRow>,
    pub balance_svg: String,
    pub notes: Vec<Note>,
    pub pending: Option<Approval>,
    /// The subject's suppressions that cover this alert's rule, active or pending.
    pub suppressions: Vec<clearwatch_model::suppression::Suppression>,
    /// Whether an active suppression hides this alert from the queues now.
    pub hidden: bool,
    /// The dismissal form's default suppression end: 90 days on, in the user's zone.
    pub suppress_until: String,
    pub history: Vec<AuditEntry>,
    pub next_statuses: Vec<&'static str>,
    pub can_request_escalation: bool,
    pub can_request_dismissal: bool,
    pub users: Vec<String>,
    pub flash: Option<String>,
    /// The subject's case for the page's header: as the case queue shows it (its open
    /// alerts, suppressed ones left out), or all of its alerts when none is open.
    pub case: Option<clearwatch_store::queue::CaseRow>,
    /// Alerts on the subject of any status, the highest-scored and this one, each with
    /// the span it reports.
    pub case_alerts: Vec<CaseAlertRow>,
    /// How many alerts the subject has, of any status.
    pub subject_alerts: usize,
    /// The role the subject's behaviour shows, where the registry gives none.
    pub inferred_role: Option<clearwatch_model::Role>,
}

impl AlertPage {
    /// The subject's holder name, where the registry gives a non-empty one.
    pub fn holder_name(&self) -> Option<&str> {
        self.case
            .as_ref()
            .and_then(|c| c.holder_name.as_deref())
            .filter(|n| !n.trim().is_empty())
    }
}

/// One alert of the subject's case, as the alert page's header lists it.
pub struct CaseAlertRow {
    pub id: String,
    pub rule_id: String,
    pub score: u32,
    pub status: clearwatch_model::case::Status,
    /// The episode's span where stored, else the alert's window (RFC 3339).
    pub span: (String, String),
    /// Whether it is the alert the page shows.
    pub current: bool,
}

/// The notes list of an alert, swapped in by htmx after a note is added.
#[derive(Template)]
#[template(path = "notes.html")]
pub struct NotesFragment {
    pub ctx: PageCtx,
    pub notes: Vec<Note>,
}

pub struct Counterparty {
    pub account: String,
    /// Whether the account paid the counterparty (else it received from it).
    pub outgoing: bool,
    pub transactions: u64,
    pub amount: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub ctx: PageCtx,
    pub id: String,
    pub registered: bool,
    /// The role its behaviour shows, where the registry gives none.
    pub inferred_role: Option<String>,
    pub role: String,
    pub kind: String,
    pub holder: String,
    pub holder_id: String,
    pub institution: String,
    pub licensed: bool,
    pub totals_in: Vec<(String, String)>,
    pub totals_out: Vec<(String, String)>,
    pub counterparties: Vec<Counterparty>,
    /// Money in and out per day, as an inline SVG bar chart (empty without transactions).
    pub activity_svg: String,
    pub alerts: Vec<StoredAlert>,
    pub txs: Vec<TxRow>,
}

pub struct RuleRow {
    pub id: String,
    pub title: String,
    pub status: String,
    pub severity: String,
    pub alerts: u64,
    pub open: u64,
    pub reported: u64,
    pub dismissed: u64,
    pub precision: String,
    /// Runs a version published from the dashboard instead of the rule file.
    pub published: bool,
}

#[derive(Template)]
#[template(path = "rules.html")]
pub struct RulesPage {
    pub ctx: PageCtx,
    pub rows: Vec<RuleRow>,
    /// Whether the user may draft and backtest a new rule.
    pub can_draft: bool,
    /// Lists the rules read that the store does not have.
    pub unknown_lists: Vec<String>,
}

/// A diagnostic shown in the lint box.
pub struct LintLine {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: String,
}

pub struct BacktestView {
    /// Subjects that appear, disappear or change, in that order.
    pub rows: Vec<BacktestRow>,
    pub appear: usize,
    pub disappear: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// "capped of searches" when the rule's search stopped at its work cap.
    pub capped: Option<(usize, usize)>,
}

/// One subject of a backtest.
pub struct BacktestRow {
    /// `appears`, `disappears` or `changed`.
    pub change: &'static str,
    pub subject: String,
    /// The subject's account page, when it is an account.
    pub href: Option<String>,
    /// Highest score stored and after the edit (`—` for none).
    pub old_score: String,
    pub new_score: String,
    /// Alerts stored and after the edit.
    pub old_alerts: usize,
    pub new_alerts: usize,
    /// The summary of the edited rule's best alert, or else of the stored one.
    pub summary: String,
    /// The stored alert with the highest score, to open it.
    pub alert_id: Option<String>,
}

#[derive(Template)]
#[template(path = "rule.html")]
pub struct RulePage {
    pub ctx: PageCtx,
    pub id: String,
    pub title: String,
    pub status: String,
    pub severity: String,
    pub version: String,
    /// Whether scans run a published version of this rule instead of its file.
    pub published: bool,
    pub text: String,
    pub versions: Vec<StoredRuleVersion>,
    pub can_check: bool,
    pub can_publish: bool,
    pub lint: Option<Vec<LintLine>>,
    pub backtest: Option<BacktestView>,
    pub flash: Option<String>,
    /// A draft of a new rule (`/rules/new`): no versions, nothing to publish.
    pub draft: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub ctx: PageCtx,
    pub entries: Vec<AuditEntry>,
    pub check: AuditCheck,
    pub page: u64,
    pub prev_link: Option<String>,
    pub next_link: Option<String>,
    pub q: super::audit::AuditQuery,
    pub groups: Vec<&'static str>,
}

/// One field an audit entry changed: its name, the value before and after (`None` where
/// the entry has no such side).
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The fields an audit entry changed, when both sides are JSON objects (or one side is
/// and the other absent); `None` when the entry is not of that shape, to be shown as it is.
pub fn audit_changes(e: &clearwatch_model::case::AuditEntry) -> Option<Vec<FieldChange>> {
    use serde_json::{Map, Value};
    let object = |side: &Option<String>| -> Option<Option<Map<String, Value>>> {
        match side {
            None => Some(None),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => Some(Some(m)),
                _ => None,
            },
        }
    };
    let (before, after) = (object(&e.before)?, object(&e.after)?);
    if before.is_none() && after.is_none() {
        return None;
    }
    // A time kept in UTC milliseconds (`expires_at`, `unavailable_until`) reads as a time.
    let text = |field: &str, v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_string(),
        Value::Number(n) if field.ends_with("_at") || field.ends_with("_until") => n
            .as_i64()
            .map_or_else(|| n.to_string(), clearwatch_model::format_ts),
        other => other.to_string(),
    };
    let mut fields: Vec<&String> = before
        .iter()
        .chain(after.iter())
        .flat_map(|m| m.keys())
        .collect();
    fields.sort();
    fields.dedup();
    Some(
        fields
            .into_iter()
            .filter_map(|f| {
                let b = before.as_ref().and_then(|m| m.get(f));
                let a = after.as_ref().and_then(|m| m.get(f));
                // A field both sides hold unchanged says nothing.
                (b != a || before.is_none() || after.is_none()).then(|| FieldChange {
                    field: f.clone(),
                    before: b.map(|v| text(f, v)),
                    after: a.map(|v| text(f, v)),
                })
            })
            .collect(),
    )
}

/// The time zone named `name` (IANA), UTC when the name is unknown.
pub fn time_zone(name: &str) -> chrono_tz::Tz {
    name.parse::<chrono_tz::Tz>().unwrap_or(chrono_tz::Tz::UTC)
}

/// Whether `name` is an IANA time zone this build knows.
pub fn is_time_zone(name: &str) -> bool {
    name.parse::<chrono_tz::Tz>().is_ok()
}

/// Every IANA time zone name, sorted, for the profile form.
pub fn time_zone_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    v.sort_unstable();
    v
}

/// `YYYY-MM-DD HH:MM:SS ABBR` of a millisecond UTC time in `tz`.
pub fn local_time(ms: i64, tz: chrono_tz::Tz) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
        Some(t) => t
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        None => format_ts(ms),
    }
}

/// `YYYY-MM-DDTHH:MM` of a millisecond UTC time in `tz`: a `datetime-local` value.
pub fn input_time(ms: i64, tz: chrono_tz::Tz) -> String {
    local_format(ms, tz, "%Y-%m-%dT%H:%M")
}

/// The instant of a `datetime-local` value (`YYYY-MM-DDTHH:MM`, seconds optional) in `tz`.
pub fn parse_input_time(text: &str, tz: chrono_tz::Tz) -> Result<i64, String> {
    let text = text.trim();
    let local = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|fmt| chrono::NaiveDateTime::parse_from_str(text, fmt).ok())
        .ok_or_else(|| format!("{text:?} is not a local time YYYY-MM-DDTHH:MM"))?;
    clearwatch_model::Zone::Named(tz)
        .instant(local)
        .map_err(|e| e.to_string())
}

/// RFC 3339 UTC of a millisecond time (templates pass references).
pub fn ts(ms: &i64) -> String {
    format_ts(*ms)
}

/// `s` as one URL path segment or query value: everything but letters, digits and
/// `-_~` percent-encoded (a `.` too, so no id reads as a relative path).
pub fn urlencode(s: &str) -> String {
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The link to an account's page. An id that is a dot segment (`.` or `..`), which
/// browsers resolve even percent-encoded, goes by query instead.
pub fn account_href(id: &str) -> String {
    if matches!(id, "." | "..") {
        format!("/account?id={}", urlencode(id))
    } else {
        format!("/accounts/{}", urlencode(id))
    }
}

/// Width of the dashboard's inline charts, and their margins left (amount labels) and
/// right.
const W: f64 = 660.0;
const LEFT: f64 = 92.0;
const RIGHT: f64 = 20.0;

/// A currency code as chart text: letters and digits only.
fn chart_code(currency: &str) -> String {
    currency
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// A time in `tz` with a chrono format.
fn local_format(t: i64, tz: chrono_tz::Tz, format: &str) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t).map_or_else(String::new, |d| {
        d.with_timezone(&tz).format(format).to_string()
    })
}

/// An inline SVG step chart of a balance over an alert's window: `points` are
/// `(time ms, balance in major units)`, the first at the window start (the opening
/// balance). Labelled axes: amounts in `currency` on the left, the window's start, middle
/// and end in the user's time zone below; the peak is marked and carried in `data-peak`,
/// formatted as the alert's metrics are. The text in it is numbers and dates only, made
/// here.
pub fn balance_svg(
    points: &[(i64, f64)],
    window: (i64, i64),
    currency: &str,
    exponent: u32,
    tz: chrono_tz::Tz,
) -> String {
    const H: f64 = 230.0;
    const TOP: f64 = 22.0;
    const BOTTOM: f64 = 40.0;
    if points.is_empty() || window.1 <= window.0 {
        return String::new();
    }
    let (t0, t1) = (window.0 as f64, window.1 as f64);
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    let mut peak = points[0];
    for &(t, v) in points {
        lo = lo.min(v);
        hi = hi.max(v);
        if v > peak.1 {
            peak = (t, v);
        }
    }
    if (hi - lo).abs() < f64::EPSILON {
        hi = lo + 1.0;
    }
    let x = |t: i64| LEFT + ((t as f64).clamp(t0, t1) - t0) / (t1 - t0) * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);
    let amount = |v: f64| {
        let minor = (v * 10f64.powi(exponent as i32)).round() as i128;
        clearwatch_model::format_amount(minor, exponent)
    };
    let mut path = String::new();
    let mut prev_y = 0.0;
    for (i, &(t, v)) in points.iter().enumerate() {
        let (px, py) = (x(t), y(v));
        if i == 0 {
            path.push_str(&format!("M{px:.1},{py:.1}"));
        } else {
            // A step: the balance holds until the next transaction.
            path.push_str(&format!(" L{px:.1},{prev_y:.1} L{px:.1},{py:.1}"));
        }
        prev_y = py;
    }
    path.push_str(&format!(" L{:.1},{prev_y:.1}", x(window.1)));
    let currency = chart_code(currency);
    let long = window.1 - window.0 >= 2 * 86_400_000;
    let date = |t: i64| local_format(t, tz, if long { "%Y-%m-%d" } else { "%m-%d %H:%M" });
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"balance\" data-peak=\"{}\">",
        amount(peak.1)
    );
    let (x_axis, y_axis) = (H - BOTTOM, LEFT);
    svg.push_str(&format!(
        "<line x1=\"{y_axis}\" y1=\"{TOP}\" x2=\"{y_axis}\" y2=\"{x_axis}\" class=\"axis\"/>\
<line x1=\"{y_axis}\" y1=\"{x_axis}\" x2=\"{}\" y2=\"{x_axis}\" class=\"axis\"/>",
        W - RIGHT
    ));
    for v in [lo, (lo + hi) / 2.0, hi] {
        let ty = y(v);
        svg.push_str(&format!(
            "<line x1=\"{}\" y1=\"{ty:.1}\" x2=\"{}\" y2=\"{ty:.1}\" class=\"grid\"/>\
<text x=\"{}\" y=\"{:.1}\" class=\"lbl tick-y\" text-anchor=\"end\">{}</text>",
            y_axis,
            W - RIGHT,
            y_axis - 4.0,
            ty + 3.0,
            amount(v)
        ));
    }
    if lo < 0.0 {
        svg.push_str(&format!(
            "<line x1=\"{y_axis}\" y1=\"{z:.1}\" x2=\"{}\" y2=\"{z:.1}\" class=\"axis\"/>",
            W - RIGHT,
            z = y(0.0)
        ));
    }
    let mid = window.0 + (window.1 - window.0) / 2;
    for (t, anchor) in [(window.0, "start"), (mid, "middle"), (window.1, "end")] {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"lbl tick-x\" text-anchor=\"{anchor}\">{}</text>",
            x(t),
            x_axis + 14.0,
            date(t)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"4\" y=\"12\" class=\"lbl\">{currency}</text>\
<text x=\"{:.1}\" y=\"{:.1}\" class=\"lbl zone\" text-anchor=\"middle\" data-raw=\"\">{}</text>\
<path d=\"{path}\" class=\"line\"/>\
<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3.5\" class=\"peak\"/>\
<text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"lbl peak-label\" text-anchor=\"{la}\">{p} {currency}</text></svg>",
        (LEFT + W - RIGHT) / 2.0,
        H - 4.0,
        tz.name(),
        px = x(peak.0),
        py = y(peak.1),
        lx = x(peak.0),
        ly = (y(peak.1) - 7.0).max(10.0),
        la = if x(peak.0) > W * 0.7 { "end" } else { "start" },
        p = amount(peak.1),
    ));
    svg
}

/// An inline SVG bar chart of money in (up, green) and out (down, red) per day:
/// `days` are `(day start ms, in, out)` in major units, in day order. Labelled amount
/// axis and first, middle and last day in `tz`; the text is numbers and dates only.
pub fn activity_svg(
    days: &[(i64, f64, f64)],
    currency: &str,
    exponent: u32,
    tz: chrono_tz::Tz,
) -> String {
    let p = exponent as usize;
    const H: f64 = 200.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 36.0;
    if days.is_empty() {
        return String::new();
    }
    let top = days.iter().map(|d| d.1).fold(0.0f64, f64::max).max(1e-9);
    let bottom = days.iter().map(|d| d.2).fold(0.0f64, f64::max).max(1e-9);
    let span = top + bottom;
    let zero = TOP + top / span * (H - TOP - BOTTOM);
    let scale = (H - TOP - BOTTOM) / span;
    let (d0, d1) = (days[0].0, days[days.len() - 1].0);
    // Whole days apart (rounded: a daylight-saving day is 23 or 25 hours).
    let days_from_start = |t: i64| ((t - d0) as f64 / 86_400_000.0).round();
    let slot = (W - LEFT - RIGHT) / (days_from_start(d1) + 1.0);
    let x = |t: i64| LEFT + days_from_start(t) * slot;
    let date = |t: i64| local_format(t, tz, "%Y-%m-%d");
    let currency = chart_code(currency);
    let mut svg = format!(
        "<svg class=\"chart activity\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"activity\" data-days=\"{}\">\
<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" class=\"axis\"/>\
<line x1=\"{LEFT}\" y1=\"{zero:.1}\" x2=\"{}\" y2=\"{zero:.1}\" class=\"axis\"/>",
        days.len(),
        H - BOTTOM,
        W - RIGHT
    );
    for &(t, i, o) in days {
        let w = (slot * 0.8).max(1.0);
        if i > 0.0 {
            svg.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" class=\"in\"><title>{} +{i:.p$}</title></rect>",
                x(t),
                zero - i * scale,
                i * scale,
                date(t)
            ));
        }
        if o > 0.0 {
            svg.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{zero:.1}\" width=\"{w:.1}\" height=\"{:.1}\" class=\"out\"><title>{} -{o:.p$}</title></rect>",
                x(t),
                o * scale,
                date(t)
            ));
        }
    }
    for (v, y) in [(top, TOP), (0.0, zero), (-bottom, H - BOTTOM)] {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"lbl tick-y\" text-anchor=\"end\">{v:.p$}</text>",
            LEFT - 4.0,
            y + 3.0
        ));
    }
    let mid = days[days.len() / 2].0;
    for (t, anchor) in [(d0, "start"), (mid, "middle"), (d1, "end")] {
        let tx = if anchor == "end" { x(t) + slot } else { x(t) };
        svg.push_str(&format!(
            "<text x=\"{tx:.1}\" y=\"{:.1}\" class=\"lbl tick-x\" text-anchor=\"{anchor}\">{}</text>",
            H - BOTTOM + 14.0,
            date(t)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"4\" y=\"12\" class=\"lbl\">{currency}</text></svg>"
    ));
    svg
}

#[cfg(test)]
mod tests {

    /// A time kept in milliseconds reads as a time; other numbers and texts stay as they are.
    #[test]
    fn audit_changes_show_times_kept_in_milliseconds_as_times() {
        let e = clearwatch_model::case::AuditEntry {
            seq: 1,
            at: "2026-12-07T00:00:00Z".into(),
            actor: "sue".into(),
            action: "list.add".into(),
            entity: "list:vip".into(),
            before: None,
            after: Some(r#"{"expires_at": 1796675631000, "version": 3, "reason": "x"}"#.into()),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let changes = audit_changes(&e).unwrap();
        let after: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.field.as_str(), c.after.as_deref().unwrap()))
            .collect();
        assert_eq!(
            after,
            [
                ("expires_at", "2026-12-07T20:33:51Z"),
                ("reason", "x"),
                ("version", "3")
            ]
        );
    }

    use super::*;

    #[test]
    fn times_show_in_the_time_zone() {
        // 2026-01-01T00:00:00Z
        let ms = 1_767_225_600_000;
        assert_eq!(local_time(ms, time_zone("UTC")), "2026-01-01 00:00:00 UTC");
        assert_eq!(
            local_time(ms, time_zone("Asia/Shanghai")),
            "2026-01-01 08:00:00 CST"
        );
        assert_eq!(
            local_time(ms, time_zone("America/New_York")),
            "2025-12-31 19:00:00 EST"
        );
        assert_eq!(time_zone("Mars/Olympus"), chrono_tz::Tz::UTC);
        assert!(is_time_zone("Europe/Berlin") && !is_time_zone("Berlin"));
        assert!(time_zone_names().contains(&"Asia/Shanghai"));
    }

    #[test]
    fn urlencode_escapes_everything_but_unreserved() {
        assert_eq!(urlencode("a b&c=<d>"), "a%20b%26c%3D%3Cd%3E");
    }

    #[test]
    fn activity_chart_draws_a_bar_per_direction_and_day() {
        let day = 86_400_000;
        let svg = activity_svg(
            &[(0, 100.0, 0.0), (2 * day, 50.0, 80.0)],
            "JPY",
            0,
            time_zone("UTC"),
        );
        assert!(svg.contains(">100</text>"), "JPY has no decimals: {svg}");
        assert_eq!(svg.matches("class=\"in\"").count(), 2);
        assert_eq!(svg.matches("class=\"out\"").count(), 1);
        assert!(svg.contains(">1970-01-03</text>"), "{svg}");
        assert!(activity_svg(&[], "CNY", 2, time_zone("UTC")).is_empty());
    }

    #[test]
    fn chart_has_axes_a_marked_peak_and_no_markup_from_input() {
        let day = 86_400_000;
        let tz = time_zone("Asia/Shanghai");
        let svg = balance_svg(
            &[(0, 5.0), (day, 1_234.5), (2 * day, 4.0)],
            (0, 3 * day),
            "<b>",
            2,
            tz,
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("<path d=\"M"));
        assert!(svg.contains("data-peak=\"1234.50\""), "{svg}");
        assert_eq!(svg.matches("tick-y").count(), 3);
        // The last date label is the window's end, in the user's zone.
        assert!(svg.contains(">1970-01-04</text>"), "{svg}");
        assert!(svg.contains("Asia/Shanghai"));
        assert!(!svg.contains("<b>"));
        assert!(balance_svg(&[], (0, day), "CNY", 2, tz).is_empty());
    }
}
