//! The pages: one askama template struct per page (templates in `dashboards/templates/`,
//! HTML auto-escaped), the context every page shares, and display helpers.

use askama::Template;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::extract::CurrentUser;
use super::i18n::Catalog;
use clearwatch_model::StoredAlert;
use clearwatch_model::case::{AuditCheck, AuditEntry, UserRole};
use clearwatch_model::{Transaction, format_amount, format_ts};
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
        }
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

    pub fn role_name(&self) -> &'static str {
        self.role.as_str()
    }

    pub fn sort_label(&self, s: &str) -> String {
        self.t.get(&format!("queue.sort.{s}")).to_string()
    }

    /// The message of a status value.
    pub fn status_label(&self, s: &str) -> String {
        self.t.get(&format!("status.{s}")).to_string()
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
}

/// One node of the fund-flow graph.
#[derive(serde::Serialize)]
pub struct GraphNode {
    pub id: String,
    pub label: String,
    pub role: String,
    pub licensed: bool,
    pub subject: bool,
}

#[derive(serde::Serialize)]
pub struct GraphEdge {
    pub id: String,
    pub source: String,
    pub target: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "alert.html")]
pub struct AlertPage {
    pub ctx: PageCtx,
    pub a: StoredAlert,
    pub metrics: Vec<(String, String)>,
    pub window: (String, String),
    /// JSON for the graph, placed in a `data-` attribute (escaped as any attribute).
    pub graph_json: String,
    pub node_count: usize,
    pub txs: Vec<TxRow>,
    pub balance_svg: String,
    pub notes: Vec<Note>,
    pub pending: Option<Approval>,
    pub history: Vec<AuditEntry>,
    pub next_statuses: Vec<&'static str>,
    pub can_request_escalation: bool,
    pub can_request_dismissal: bool,
    pub users: Vec<String>,
    pub flash: Option<String>,
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
    pub transactions: u64,
    pub amount: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub ctx: PageCtx,
    pub id: String,
    pub registered: bool,
    pub role: String,
    pub kind: String,
    pub holder: String,
    pub holder_id: String,
    pub institution: String,
    pub licensed: bool,
    pub totals_in: Vec<(String, String)>,
    pub totals_out: Vec<(String, String)>,
    pub counterparties: Vec<Counterparty>,
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
}

/// A diagnostic shown in the lint box.
pub struct LintLine {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: String,
}

pub struct BacktestView {
    pub appear: Vec<String>,
    pub disappear: Vec<String>,
    pub unchanged: usize,
    /// "capped of searches" when the rule's search stopped at its work cap.
    pub capped: Option<(usize, usize)>,
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

/// An inline SVG line chart of `(time ms, value)` points; the text in it is numbers and
/// dates only, made here.
pub fn balance_svg(points: &[(i64, f64)], currency: &str) -> String {
    const W: f64 = 640.0;
    const H: f64 = 180.0;
    const PAD: f64 = 40.0;
    if points.len() < 2 {
        return String::new();
    }
    let t0 = points[0].0 as f64;
    let t1 = points[points.len() - 1].0 as f64;
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for &(_, v) in points {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if (hi - lo).abs() < f64::EPSILON {
        hi = lo + 1.0;
    }
    let x = |t: i64| PAD + (t as f64 - t0) / (t1 - t0).max(1.0) * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD / 2.0 - (v - lo) / (hi - lo) * (H - PAD);
    let mut path = String::new();
    let mut prev_y = y(0.0);
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
    let currency: String = currency
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let day = |t: i64| format_ts(t).chars().take(10).collect::<String>();
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"balance\">\
<line x1=\"{PAD}\" y1=\"{zy:.1}\" x2=\"{x2}\" y2=\"{zy:.1}\" class=\"axis\"/>\
<path d=\"{path}\" class=\"line\"/>\
<text x=\"{PAD}\" y=\"14\" class=\"lbl\">max {hi:.2} {currency}</text>\
<text x=\"{PAD}\" y=\"{by}\" class=\"lbl\">{d0}</text>\
<text x=\"{x2}\" y=\"{by}\" class=\"lbl\" text-anchor=\"end\">{d1}</text></svg>",
        zy = y(0.0),
        x2 = W - PAD,
        by = H - 2.0,
        d0 = day(points[0].0),
        d1 = day(points[points.len() - 1].0),
    )
}

#[cfg(test)]
mod tests {
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
    fn chart_has_a_path_and_no_markup_from_input() {
        let svg = balance_svg(
            &[(0, 0.0), (86_400_000, 10.0), (2 * 86_400_000, 4.0)],
            "<b>",
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("<path d=\"M"));
        assert!(!svg.contains("<b>"));
        assert!(balance_svg(&[(0, 1.0)], "CNY").is_empty());
    }
}
