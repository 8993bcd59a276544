//! `report.html`: a self-contained case file (no scripts, no external resources): the
//! reporting institution and the key that signs the bundle, the alerts with the figures
//! behind each condition, the fund-flow graph as inline SVG, the transactions, the
//! accounts, the case's decisions and notes as a table, each rule as configured (without
//! its `tests:` fixtures) and every input batch; with a print stylesheet for A4. Times are
//! shown in one IANA zone, named at the top; its own words in English or Chinese
//! ([`Meta::lang`]), rule titles and figure names as the caller gives them
//! ([`ReportTexts`]). Written by hand rather than with a template
//! engine: it is one static document, and every value from the data goes through [`esc`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;

use super::CaseExport;
use super::entity::ReportingEntity;
use super::flowgraph;
use clearwatch_model::{Lang, Millis, Role, format_amount, format_ts};

/// HTML-escapes text (element content and quoted attribute values).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The fund-flow graph as inline SVG, laid out as the dashboard draws it
/// ([`flowgraph::flow_graph`]): one arrow per (from, to) pair labelled with the count and
/// total, money from left to right through the subjects; subjects are ringed, licensed
/// institutions drawn as squares.
pub fn svg_graph(case: &CaseExport) -> String {
    let txs: Vec<clearwatch_model::Transaction> =
        case.transactions.iter().map(|(t, _)| t.clone()).collect();
    let subjects: Vec<&str> = case
        .alerts
        .iter()
        .map(|a| a.alert.subject.id.as_str())
        .collect();
    let g = flowgraph::flow_graph(&txs, &case.accounts, &subjects);
    const MARGIN: f64 = 110.0;
    let (mut x0, mut y0, mut x1, mut y1) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for n in &g.nodes {
        x0 = x0.min(n.x);
        y0 = y0.min(n.y);
        x1 = x1.max(n.x);
        y1 = y1.max(n.y);
    }
    let (w, h) = (x1 - x0 + 2.0 * MARGIN, y1 - y0 + 2.0 * MARGIN);
    let pos: BTreeMap<&str, (f64, f64)> = g
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), (n.x - x0 + MARGIN, n.y - y0 + MARGIN)))
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="flow" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif" font-size="10"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>"##
    );
    for l in &g.links {
        let (Some(&(x1, y1)), Some(&(x2, y2))) =
            (pos.get(l.source.as_str()), pos.get(l.target.as_str()))
        else {
            continue;
        };
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ex, ey) = (x2 - dx / len * 11.0, y2 - dy / len * 11.0);
        let _ = write!(
            s,
            r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{ex:.1}" y2="{ey:.1}" stroke="{}" stroke-opacity="0.7" marker-end="url(#arrow)"><title>{}</title></line>"##,
            l.colour,
            esc(&format!(
                "{} → {}: {} ({}), {} .. {}",
                l.source,
                l.target,
                l.label,
                l.kind.as_str(),
                format_ts(l.first),
                format_ts(l.last)
            ))
        );
        if g.links.len() <= 40 {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#333" font-size="8" text-anchor="middle">{}</text>"##,
                x1 + dx * 0.6,
                y1 + dy * 0.6 - 3.0,
                esc(&l.label)
            );
        }
    }
    for n in &g.nodes {
        let Some(&(x, y)) = pos.get(n.id.as_str()) else {
            continue;
        };
        if n.licensed {
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="16" height="16" fill="{}"/>"#,
                x - 8.0,
                y - 8.0,
                n.colour
            );
        } else {
            let _ = write!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="8" fill="{}"/>"#,
                n.colour
            );
        }
        if n.subject {
            let _ = write!(
                s,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="12" fill="none" stroke="#000" stroke-width="2"/>"##
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle"><title>{}</title>{}</text>"#,
            x,
            y + 22.0,
            esc(&n.title),
            esc(&n.label)
        );
    }
    if g.links_left_out > 0 {
        let _ = write!(
            s,
            r##"<text x="8" y="{:.1}" fill="#a00">{} smaller pairs not drawn</text>"##,
            h - 6.0,
            g.links_left_out
        );
    }
    s.push_str("</svg>");
    s
}

/// Screen and print styles: on paper, A4 with page breaks before the major sections, table
/// headers repeated on every page and no row cut in two.
const STYLE: &str = "\
body{font-family:sans-serif;margin:2em;color:#222;font-size:13px;line-height:1.4}\
h1{font-size:20px;margin:0 0 .3em}\
h2{font-size:16px;margin:2em 0 .5em;border-bottom:2px solid #444;padding-bottom:2px}\
h3{font-size:14px;margin:1.4em 0 .4em}\
table{border-collapse:collapse;margin:.5em 0 1em}\
td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top;font-size:12px}\
th{background:#eee}\
table.kv th{width:14em}\
td.num{text-align:right;white-space:nowrap}\
td.t{white-space:nowrap}\
td.text{white-space:pre-wrap;overflow-wrap:anywhere}\
.mono{font-family:monospace;overflow-wrap:anywhere}\
pre{background:#f7f7f7;border:1px solid #ddd;padding:.8em;white-space:pre-wrap;overflow-wrap:anywhere;font-size:11px}\
.note{color:#555;font-size:12px}\
.legend span{display:inline-block;margin-right:1em}\
.graph{overflow:auto}\
@page{size:A4;margin:14mm 12mm 16mm}\
@media print{\
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}\
body{margin:0;font-size:10pt}\
h2.major{break-before:page}\
h2,h3{break-after:avoid}\
table{width:100%}\
table.kv,table.keep,.alert{break-inside:avoid}\
thead{display:table-header-group}\
tr,td,th,svg{break-inside:avoid}\
td,th{font-size:8.5pt;padding:2px 4px}\
.graph{overflow:visible}\
svg.flow{max-width:100%;max-height:220mm;height:auto}\
pre{font-size:8pt;break-inside:auto}\
}";

/// What the report says about its own making, beside the case.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    /// Who exported the case.
    pub exported_by: &'a str,
    pub exported_at: DateTime<Utc>,
    /// The fingerprint of the key that signs the bundle: SHA-256 of the raw Ed25519 public
    /// key, as `manifest.json` (`public_key_sha256`) and `evidence verify` name it.
    pub key_sha256: &'a str,
    /// The reporting institution (`--entity`), when one is configured.
    pub entity: Option<&'a ReportingEntity>,
    /// The zone every time in the report is shown in.
    pub time_zone: Tz,
    /// The language of the report's own words; data and rule texts stay as written.
    pub lang: Lang,
    /// Rule titles, summaries and figure names in `lang`, where the caller knows them.
    pub texts: Option<&'a ReportTexts>,
}

/// What the caller knows of the case in the report's language: each rule's title (by rule
/// id), each alert's summary (by alert id) and each figure's name (by metric name).
#[derive(Debug, Clone, Default)]
pub struct ReportTexts {
    pub titles: BTreeMap<String, String>,
    pub summaries: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, String>,
}

impl ReportTexts {
    /// The titles of `case`'s rules and the names of its alerts' figures, from `title`
    /// (rule id, English title) and `metric` (name); summaries are the caller's to add.
    pub fn for_case(
        case: &CaseExport,
        title: impl Fn(&str, &str) -> String,
        metric: impl Fn(&str) -> String,
    ) -> ReportTexts {
        let mut t = ReportTexts::default();
        for a in case.alerts.iter().map(|s| &s.alert) {
            t.titles
                .insert(a.rule_id.clone(), title(&a.rule_id, &a.title));
            for name in a.metrics.keys() {
                t.metrics.insert(name.clone(), metric(name));
            }
        }
        for r in &case.rules {
            t.titles
                .insert(r.rule_id.clone(), title(&r.rule_id, &r.title));
        }
        t
    }
}

/// The report's own words in Chinese, by their English text. Written here rather than in
/// the dashboard's catalogue: the report is made below the dashboard (by the CLI too), and
/// these words are its alone. A word missing here is shown in English (and fails the
/// `every_word_of_the_report_has_its_chinese` test).
const ZH_CN: &[(&str, &str)] = &[
    ("Case report", "案件报告"),
    ("alerts", "条预警"),
    ("on", "对象"),
    ("Exported by", "导出人"),
    ("at", "导出时间"),
    ("with", "工具"),
    ("Times in this report are in", "本报告的时间均为"),
    ("at export", "导出时"),
    ("Reporting institution", "报告机构"),
    (
        "No reporting institution configured: export with",
        "未配置报告机构：导出时请使用",
    ),
    ("Export and signature", "导出与签名"),
    ("exported by", "导出人"),
    ("exported at", "导出时间"),
    ("tool", "工具"),
    (
        "signing key (SHA-256 fingerprint)",
        "签名密钥（SHA-256 指纹）",
    ),
    (
        "The bundle's manifest.json lists this report with its SHA-256 and names the key as",
        "证据包的 manifest.json 列出本报告及其 SHA-256，并以此字段指明密钥：",
    ),
    (
        "manifest.sig is its Ed25519 signature.",
        "manifest.sig 是其 Ed25519 签名。",
    ),
    (
        "checks both and prints the fingerprint of the key the signature holds for: it must equal the one above and the one the exporter published.",
        "会校验两者并打印签名所对应密钥的指纹：它必须与上方及导出方公布的指纹一致。",
    ),
    ("Alerts", "预警"),
    ("Alert", "预警"),
    ("rule", "规则"),
    ("rule version", "规则版本"),
    ("subject", "对象"),
    ("window", "时间窗口"),
    ("severity / score", "严重程度 / 评分"),
    ("status", "状态"),
    ("figure behind the alert", "预警所依据的数据"),
    ("value", "数值"),
    ("Narrative", "案情叙述"),
    ("Fund flow", "资金流向"),
    (
        "squares: licensed institutions; ringed: alert subjects",
        "方形：持牌机构；带环：预警对象",
    ),
    ("Transactions", "交易"),
    ("id", "编号"),
    ("time", "时间"),
    ("from", "付款方"),
    ("to", "收款方"),
    ("amount", "金额"),
    ("type", "类型"),
    ("merchant", "商户"),
    ("memo", "附言"),
    ("Accounts", "账户"),
    ("account", "账户"),
    ("holder", "持有人"),
    ("kind", "类别"),
    ("role", "角色"),
    ("licensed", "持牌"),
    ("institution", "开户机构"),
    ("yes", "是"),
    ("no", "否"),
    ("Case decisions and notes", "案件决定与备注"),
    ("No case activity recorded.", "没有案件处理记录。"),
    ("alert", "预警"),
    ("actor", "操作人"),
    ("action", "操作"),
    ("from → to", "变更"),
    ("reason / note", "原因 / 备注"),
    (
        "# is the entry's sequence number in audit.jsonl, which holds each entry whole with its chain hashes.",
        "# 是该条目在 audit.jsonl 中的序号；audit.jsonl 完整保存每个条目及其链式哈希。",
    ),
    ("Rules as configured", "规则（按配置）"),
    ("version", "版本"),
    (
        "Shown without its unit-test fixtures (the top-level tests key); the full text is in manifest.json.",
        "已略去其单元测试用例（顶层 tests 键）；全文见 manifest.json。",
    ),
    (
        "Shown whole: its unit-test fixtures (the top-level tests key) could not be cut out line by line.",
        "完整显示：其单元测试用例（顶层 tests 键）无法逐行剔除。",
    ),
    ("Input batches", "输入批次"),
    ("batch", "批次"),
    ("source", "来源"),
    ("profile", "映射配置"),
    ("loaded", "载入时间"),
    ("evidence transactions", "证据交易数"),
    ("— (registry)", "—（登记表）"),
    (
        "The transaction batches the evidence came from, and every account and merchant registry load: the accounts' and merchants' attributes the rules read come from those.",
        "证据所来自的交易批次，以及每一次账户与商户登记表的载入：规则读取的账户与商户属性均来自这些批次。",
    ),
    ("note", "备注"),
    ("approval requested", "提交审批"),
    ("requested", "待批"),
    ("status changed", "状态变更"),
    ("assigned", "分派"),
    ("request approved", "批准申请"),
    ("request rejected", "驳回申请"),
    ("assignee", "处理人"),
    (
        "institution code (CAMLMAC RICD)",
        "机构代码（CAMLMAC RICD）",
    ),
    (
        "FIU registration (goAML rentity_id)",
        "金融情报机构登记号（goAML rentity_id）",
    ),
    ("branch", "分支机构"),
    ("reporting person", "报告人"),
    ("occupation", "职务"),
    ("email", "电子邮件"),
    ("phone", "电话"),
    ("address", "地址"),
    // Values of the vocabularies, as the dashboard's catalogue names them.
    ("info", "提示"),
    ("low", "低"),
    ("medium", "中"),
    ("high", "高"),
    ("critical", "严重"),
    ("new", "新建"),
    ("in_review", "审查中"),
    ("escalated", "已升级"),
    ("reported", "已上报"),
    ("closed", "已关闭"),
    ("dismissed", "已排除"),
    ("payment", "支付"),
    ("settlement", "结算"),
    ("transfer", "转账"),
    ("cash_in", "现金存入"),
    ("cash_out", "现金支取"),
    ("fee", "手续费"),
    ("refund", "退款"),
    ("acquirer", "收单机构"),
    ("agent", "代理/服务商"),
    ("individual", "个人"),
    ("bank", "银行"),
    ("unknown", "未知"),
    ("personal", "个人"),
    ("corporate", "单位"),
];

/// The report's own words in one language.
#[derive(Clone, Copy)]
struct Words(Lang);

impl Words {
    /// `en` in the report's language (English when it has no translation).
    fn w(self, en: &'static str) -> &'static str {
        match self.0 {
            Lang::En => en,
            Lang::ZhCn => match ZH_CN.iter().find(|(e, _)| *e == en) {
                Some((_, zh)) => zh,
                None => {
                    #[cfg(test)]
                    UNTRANSLATED.with(|u| u.borrow_mut().push(en));
                    en
                }
            },
        }
    }
}

#[cfg(test)]
thread_local! {
    /// The words a test's reports showed in English for want of a translation.
    static UNTRANSLATED: std::cell::RefCell<Vec<&'static str>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A time in `tz` with its UTC offset, e.g. `2026-01-05 10:00:00 +08:00` (milliseconds
/// only when there are some).
fn local(t: DateTime<Utc>, tz: Tz) -> String {
    let l = t.with_timezone(&tz);
    if l.timestamp_subsec_millis() == 0 {
        l.format("%Y-%m-%d %H:%M:%S %:z").to_string()
    } else {
        l.format("%Y-%m-%d %H:%M:%S%.3f %:z").to_string()
    }
}

fn local_ms(ms: Millis, tz: Tz) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => local(t, tz),
        None => format_ts(ms),
    }
}

/// An RFC 3339 text (as the store writes `loaded_at` and audit times) in `tz`; other text
/// as it is.
fn local_text(s: &str, tz: Tz) -> String {
    match DateTime::parse_from_rfc3339(s.trim()) {
        Ok(t) => local(t.with_timezone(&Utc), tz),
        Err(_) => s.to_string(),
    }
}

/// Whether `line` starts the top-level mapping key `key` (`tests:`, `"tests":`, `'tests' :`).
fn is_top_level_key(line: &str, key: &str) -> bool {
    let rest = line
        .strip_prefix(key)
        .or_else(|| {
            line.strip_prefix('"')
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix('"'))
        })
        .or_else(|| {
            line.strip_prefix('\'')
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix('\''))
        });
    let Some(rest) = rest else {
        return false;
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.strip_prefix(':')
        .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\r', '\n']))
}

/// Whether `line` starts something at the top level of the document (a key or a document
/// marker): not indented, not a comment, not a blank line, and not a `- ` item (a sequence
/// under a top-level key may sit in column 0).
fn starts_top_level(line: &str) -> bool {
    match line.chars().next() {
        None | Some(' ' | '\t' | '\r' | '\n' | '#') => false,
        Some('-') => !matches!(
            line[1..].chars().next(),
            None | Some(' ' | '\t' | '\r' | '\n')
        ),
        Some(_) => true,
    }
}

/// The rule text without its top-level `tests:` block (the unit-test fixtures): cut from
/// the line where that key starts up to the next top-level key, if one follows (with the
/// column-0 comments just above that key, which belong to it); every other byte is kept.
/// `None` when the text has no top-level `tests:` line.
pub fn without_tests(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = lines.iter().position(|l| is_top_level_key(l, "tests"))?;
    let mut end = lines[start + 1..]
        .iter()
        .position(|l| starts_top_level(l))
        .map_or(lines.len(), |i| start + 1 + i);
    if end < lines.len() {
        while end > start + 1 && lines[end - 1].starts_with('#') {
            end -= 1;
        }
    }
    Some(lines[..start].concat() + &lines[end..].concat())
}

/// The top-level keys of a YAML mapping, or `None` when the text is not one.
fn top_level_keys(text: &str) -> Option<Vec<String>> {
    serde_saphyr::from_str::<BTreeMap<String, serde::de::IgnoredAny>>(text)
        .ok()
        .map(|m| m.into_keys().collect())
}

/// The rule text as the report shows it, and a note on what was left out. The cut is
/// checked by parsing: the result must hold exactly the original's keys but `tests`;
/// otherwise the text is shown whole and the note says so.
pub fn rule_text_for_report(text: &str) -> (String, Option<&'static str>) {
    let Some(keys) = top_level_keys(text) else {
        return (text.to_string(), None);
    };
    if !keys.iter().any(|k| k == "tests") {
        return (text.to_string(), None);
    }
    let expected: Vec<&String> = keys.iter().filter(|k| *k != "tests").collect();
    match without_tests(text) {
        Some(cut)
            if top_level_keys(&cut).is_some_and(|k| k.iter().collect::<Vec<_>>() == expected) =>
        {
            (
                cut,
                Some(
                    "Shown without its unit-test fixtures (the top-level tests key); the full text is in manifest.json.",
                ),
            )
        }
        _ => (
            text.to_string(),
            Some(
                "Shown whole: its unit-test fixtures (the top-level tests key) could not be cut out line by line.",
            ),
        ),
    }
}

/// One audit entry as a row of the decisions table: the action in words, the change of
/// status or assignee, and the note or reason.
struct Decision {
    seq: String,
    at: String,
    alert: String,
    actor: String,
    action: String,
    change: String,
    text: String,
}

fn parse_json(v: &serde_json::Value, key: &str) -> Option<serde_json::Value> {
    v.get(key)
        .and_then(|s| s.as_str())
        .and_then(|s| serde_json::from_str(s).ok())
}

fn text_of(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `status (assignee)`, for a case state as the audit log records it.
fn case_state(v: &serde_json::Value, words: Words) -> Option<String> {
    let status = text_of(v.get("status"))?;
    Some(match text_of(v.get("assignee")) {
        Some(a) => format!("{status} ({} {a})", words.w("assignee")),
        None => status,
    })
}

fn decision(e: &serde_json::Value, tz: Tz, words: Words) -> Decision {
    let case_state = |v: &serde_json::Value| case_state(v, words);
    let field = |k: &str| text_of(e.get(k)).unwrap_or_default();
    let action = field("action");
    let before = parse_json(e, "before");
    let after = parse_json(e, "after");
    let after_field = |k: &str| after.as_ref().and_then(|a| text_of(a.get(k)));
    let (label, change, text) = match action.as_str() {
        "case.note" => (
            words.w("note").to_string(),
            String::new(),
            after_field("body").unwrap_or_default(),
        ),
        "case.request" => (
            words.w("approval requested").to_string(),
            format!(
                "{} → {} ({})",
                before.as_ref().and_then(case_state).unwrap_or_default(),
                after_field("target").unwrap_or_default(),
                words.w("requested")
            ),
            after_field("reason").unwrap_or_default(),
        ),
        other => {
            let label = match other {
                "case.status" => words.w("status changed"),
                "case.assign" => words.w("assigned"),
                "case.approve" => words.w("request approved"),
                "case.reject" => words.w("request rejected"),
                // An action this table does not know is shown by its code, its states as
                // recorded.
                _ => other,
            };
            let change = match (
                before.as_ref().and_then(case_state),
                after.as_ref().and_then(case_state),
            ) {
                (Some(b), Some(a)) => format!("{b} → {a}"),
                (None, Some(a)) => format!("→ {a}"),
                _ => match (field("before"), field("after")) {
                    (b, a) if b.is_empty() && a.is_empty() => String::new(),
                    (b, a) => format!("{b} → {a}"),
                },
            };
            (label.to_string(), change, String::new())
        }
    };
    let entity = field("entity");
    Decision {
        seq: field("seq"),
        at: local_text(&field("at"), tz),
        alert: entity
            .strip_prefix("alert:")
            .map_or_else(|| entity.clone(), str::to_string),
        actor: field("actor"),
        action: label,
        change,
        text,
    }
}

/// A key-value table row.
fn kv(h: &mut String, key: &str, value: &str) {
    let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(key), esc(value));
}

/// The reporting institution, as the `--entity` file gives it.
fn entity_block(h: &mut String, e: &ReportingEntity, words: Words) {
    let kv = |h: &mut String, key: &'static str, value: &str| kv(h, words.w(key), value);
    h.push_str("<table class=\"kv\"><tbody>");
    kv(h, "institution code (CAMLMAC RICD)", &e.institution_code);
    kv(
        h,
        "FIU registration (goAML rentity_id)",
        &e.rentity_id.to_string(),
    );
    kv(h, "branch", &e.rentity_branch);
    let p = &e.reporting_person;
    let name = [p.title.as_deref(), Some(&p.first_name), Some(&p.last_name)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    kv(h, "reporting person", &name);
    if let Some(o) = &p.occupation {
        kv(h, "occupation", o);
    }
    if let Some(m) = &p.email {
        kv(h, "email", m);
    }
    if let Some(ph) = &p.phone {
        kv(h, "phone", &format!("+{} {}", ph.country_prefix, ph.number));
    }
    let l = &e.location;
    let address = [
        Some(l.address.as_str()),
        l.town.as_deref(),
        Some(l.city.as_str()),
        l.state.as_deref(),
        l.zip.as_deref(),
        Some(l.country_code.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    kv(h, "address", &address);
    h.push_str("</tbody></table>");
}

/// Opens a table with a header row (repeated on every printed page).
fn table_head(h: &mut String, class: &str, headers: &[&str], words: Words) {
    let _ = write!(h, "<table class=\"{class}\"><thead><tr>");
    for c in headers {
        let shown = ZH_CN
            .iter()
            .find(|(e, _)| e == c)
            .map_or(*c, |(e, _)| words.w(e));
        let _ = write!(h, "<th>{}</th>", esc(shown));
    }
    h.push_str("</tr></thead><tbody>");
}

/// The whole report.
pub fn html(case: &CaseExport, meta: &Meta) -> String {
    let tz = meta.time_zone;
    let words = Words(meta.lang);
    let w = |en: &'static str| words.w(en);
    let mut h = String::new();
    let title = match case.alerts.as_slice() {
        [one] => format!(
            "{}: {} {} {}",
            w("Case report"),
            one.alert.rule_id,
            w("on"),
            one.alert.subject.id
        ),
        many => format!("{}: {} {}", w("Case report"), many.len(), w("alerts")),
    };
    let offset = meta
        .exported_at
        .with_timezone(&tz)
        .format("%:z")
        .to_string();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1><p class=\"note\">{} {} · {} {} · {} clearwatch {}. {} {} (UTC{} {}).</p>",
        meta.lang.tag(),
        esc(&title),
        esc(&title),
        w("Exported by"),
        esc(meta.exported_by),
        w("at"),
        esc(&local(meta.exported_at, tz)),
        w("with"),
        env!("CARGO_PKG_VERSION"),
        w("Times in this report are in"),
        esc(tz.name()),
        esc(&offset),
        w("at export")
    );

    let _ = write!(
        h,
        "<h2 id=\"institution\">{}</h2>",
        w("Reporting institution")
    );
    match meta.entity {
        Some(e) => entity_block(&mut h, e, words),
        None => {
            let _ = write!(
                h,
                "<p>{} <code>--entity FILE</code> (docs/reporting-entity.example.yaml).</p>",
                w("No reporting institution configured: export with")
            );
        }
    }

    let _ = write!(
        h,
        "<h2 id=\"integrity\">{}</h2><table class=\"kv\"><tbody>",
        w("Export and signature")
    );
    kv(&mut h, w("exported by"), meta.exported_by);
    kv(
        &mut h,
        w("exported at"),
        &format!(
            "{} ({})",
            local(meta.exported_at, tz),
            meta.exported_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    );
    kv(
        &mut h,
        w("tool"),
        &format!("clearwatch {}", env!("CARGO_PKG_VERSION")),
    );
    let _ = write!(
        h,
        "<tr><th>{}</th><td class=\"mono\">{}</td></tr>",
        w("signing key (SHA-256 fingerprint)"),
        esc(meta.key_sha256)
    );
    let _ = write!(
        h,
        "</tbody></table><p class=\"note\">{} <code>public_key_sha256</code>; {} <code>clearwatch evidence verify</code> {}</p>",
        w("The bundle's manifest.json lists this report with its SHA-256 and names the key as"),
        w("manifest.sig is its Ed25519 signature."),
        w(
            "checks both and prints the fingerprint of the key the signature holds for: it must equal the one above and the one the exporter published."
        )
    );

    let known = |pick: fn(&ReportTexts) -> &BTreeMap<String, String>, key: &str| {
        meta.texts.and_then(|t| pick(t).get(key)).cloned()
    };
    let _ = write!(
        h,
        "<h2 id=\"alerts\">{} ({})</h2>",
        w("Alerts"),
        case.alerts.len()
    );
    for s in &case.alerts {
        let a = &s.alert;
        let title = known(|t| &t.titles, &a.rule_id).unwrap_or_else(|| a.title.clone());
        let summary = known(|t| &t.summaries, &a.id).unwrap_or_else(|| a.summary.clone());
        let _ = write!(
            h,
            "<div class=\"alert\"><h3>{} {}</h3><table class=\"kv\"><tbody><tr><th>{}</th><td>{} — {}</td></tr><tr><th>{}</th><td class=\"mono\">{}</td></tr><tr><th>{}</th><td>{} {}</td></tr><tr><th>{}</th><td>{} .. {}</td></tr><tr><th>{}</th><td>{} / {}</td></tr><tr><th>{}</th><td>{}</td></tr></tbody></table><p>{}</p>",
            w("Alert"),
            esc(&a.id),
            w("rule"),
            esc(&a.rule_id),
            esc(&title),
            w("rule version"),
            esc(&a.rule_version),
            w("subject"),
            w(a.subject.kind.as_str()),
            esc(&a.subject.id),
            w("window"),
            esc(&local_ms(a.window.from, tz)),
            esc(&local_ms(a.window.until, tz)),
            w("severity / score"),
            w(a.severity.as_str()),
            a.score,
            w("status"),
            w(s.status.as_str()),
            esc(&summary)
        );
        table_head(&mut h, "keep", &["figure behind the alert", "value"], words);
        for (name, value) in &a.metrics {
            let shown = match value {
                serde_json::Value::String(v) => {
                    format!("{v} {}", a.currency.as_deref().unwrap_or(""))
                }
                other => other.to_string(),
            };
            // The name as the rule text writes it stays beside the figure's name in words.
            let label = match known(|t| &t.metrics, name) {
                Some(l) if l != *name => format!("{l} ({name})"),
                _ => name.clone(),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&label),
                esc(&shown)
            );
        }
        h.push_str("</tbody></table></div>");
    }
    if let Some(n) = &case.narrative {
        let _ = write!(
            h,
            "<h2 id=\"narrative\">{}</h2><p class=\"text\" style=\"white-space:pre-wrap\">{}</p>",
            w("Narrative"),
            esc(n)
        );
    }

    let _ = write!(
        h,
        "<h2 id=\"flow\" class=\"major\">{}</h2><p class=\"legend\">",
        w("Fund flow")
    );
    for role in Role::ALL {
        let _ = write!(
            h,
            "<span><svg width=\"10\" height=\"10\"><circle cx=\"5\" cy=\"5\" r=\"5\" fill=\"{}\"/></svg> {}</span>",
            flowgraph::role_colour(*role),
            w(role.as_str())
        );
    }
    let _ = write!(
        h,
        "<span>{}</span></p><div class=\"graph\">",
        w("squares: licensed institutions; ringed: alert subjects")
    );
    h.push_str(&svg_graph(case));
    h.push_str("</div>");

    let _ = write!(
        h,
        "<h2 id=\"transactions\" class=\"major\">{} ({})</h2>",
        w("Transactions"),
        case.transactions.len()
    );
    let time = format!("{} ({})", w("time"), tz.name());
    table_head(
        &mut h,
        "tx",
        &[
            "id", &time, "from", "to", "amount", "type", "merchant", "memo",
        ],
        words,
    );
    for (t, _) in &case.transactions {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.tx_id),
            esc(&local_ms(t.ts, tz)),
            esc(&t.from),
            esc(&t.to),
            format_amount(t.amount, t.currency.exponent()),
            t.currency,
            w(t.tx_type.as_str()),
            esc(t.merchant_id.as_deref().unwrap_or("")),
            esc(t.memo.as_deref().unwrap_or(""))
        );
    }
    let _ = write!(
        h,
        "</tbody></table><h2 id=\"accounts\" class=\"major\">{}</h2>",
        w("Accounts")
    );
    table_head(
        &mut h,
        "accounts",
        &[
            "account",
            "holder",
            "kind",
            "role",
            "licensed",
            "institution",
        ],
        words,
    );
    for a in &case.accounts {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.account_id),
            esc(a.holder_name.as_deref().unwrap_or("")),
            a.kind.map_or("", |k| w(k.as_str())),
            w(a.role.as_str()),
            if a.licensed { w("yes") } else { w("no") },
            esc(a.institution.as_deref().unwrap_or(""))
        );
    }
    let _ = write!(
        h,
        "</tbody></table><h2 id=\"decisions\" class=\"major\">{}</h2>",
        w("Case decisions and notes")
    );
    if case.audit.is_empty() {
        let _ = write!(h, "<p>{}</p>", w("No case activity recorded."));
    } else {
        let many = case.alerts.len() > 1;
        let mut headers = vec!["#", "time"];
        if many {
            headers.push("alert");
        }
        headers.extend(["actor", "action", "from → to", "reason / note"]);
        table_head(&mut h, "decisions", &headers, words);
        for e in &case.audit {
            let d = decision(e, tz, words);
            let _ = write!(
                h,
                "<tr><td class=\"num\">{}</td><td class=\"t\">{}</td>",
                esc(&d.seq),
                esc(&d.at)
            );
            if many {
                let _ = write!(h, "<td class=\"mono\">{}</td>", esc(&d.alert));
            }
            let _ = write!(
                h,
                "<td>{}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
                esc(&d.actor),
                esc(&d.action),
                esc(&d.change),
                esc(&d.text)
            );
        }
        let _ = write!(
            h,
            "</tbody></table><p class=\"note\">{}</p>",
            w(
                "# is the entry's sequence number in audit.jsonl, which holds each entry whole with its chain hashes."
            )
        );
    }

    let _ = write!(
        h,
        "<h2 id=\"rules\" class=\"major\">{}</h2>",
        w("Rules as configured")
    );
    for r in &case.rules {
        let (text, note) = rule_text_for_report(&r.text);
        let title = known(|t| &t.titles, &r.rule_id).unwrap_or_else(|| r.title.clone());
        let _ = write!(
            h,
            "<h3>{} — {}</h3><p class=\"note\">{} <span class=\"mono\">{}</span>{}</p><pre>{}</pre>",
            esc(&r.rule_id),
            esc(&title),
            w("version"),
            esc(&r.version),
            note.map(|n| format!(". {}", esc(w(n)))).unwrap_or_default(),
            esc(&text)
        );
    }

    let _ = write!(
        h,
        "<h2 id=\"batches\" class=\"major\">{} ({})</h2>",
        w("Input batches"),
        case.batches.len()
    );
    let mut per_batch: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, b) in &case.transactions {
        *per_batch.entry(*b).or_default() += 1;
    }
    table_head(
        &mut h,
        "batches",
        &[
            "batch",
            "kind",
            "source",
            "profile",
            "sha256",
            "loaded",
            "evidence transactions",
        ],
        words,
    );
    for b in &case.batches {
        let used = match per_batch.get(&b.batch_id) {
            Some(n) => n.to_string(),
            None if b.kind == "transactions" => "0".to_string(),
            None => w("— (registry)").to_string(),
        };
        let _ = write!(
            h,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"t\">{}</td><td class=\"num\">{}</td></tr>",
            b.batch_id,
            esc(&b.kind),
            esc(&b.source),
            esc(&b.profile),
            esc(b.sha256.as_deref().unwrap_or("")),
            esc(&local_text(&b.loaded_at, tz)),
            esc(&used)
        );
    }
    let _ = writeln!(
        h,
        "</tbody></table><p class=\"note\">{}</p></body></html>",
        w(
            "The transaction batches the evidence came from, and every account and merchant registry load: the accounts' and merchants' attributes the rules read come from those."
        )
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{self, XSS};
    use clearwatch_store::{BatchInfo, RuleVersion};

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<img src=x onerror=alert(1)> & \"'"),
            "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;&#39;"
        );
    }

    const RULE: &str = "id: TC-04\ntitle: Pool\nparameters:\n  min_payees: { type: int, default: 10 }\nsummary: >\n  {subject} pooled\ntests:\n  - name: a hub is a pool\n    accounts: |\n      account_id,holder_name\n      HUB,Hub Co\n    expect: [{ subject: HUB }]\n\n# what the regulator codes are\ncodes: { stcr: CW0004 }\n";

    fn audit(
        seq: i64,
        actor: &str,
        action: &str,
        before: Option<&str>,
        after: &str,
    ) -> serde_json::Value {
        serde_json::json!({
            "seq": seq, "at": "2026-01-06T01:30:00Z", "actor": actor, "action": action,
            "entity": "alert:A-1", "before": before, "after": after,
            "prev_hash": "00", "hash": "11",
        })
    }

    fn case() -> CaseExport {
        let mut case = fixture::case();
        case.rules = vec![RuleVersion {
            rule_id: "TC-04".into(),
            version: "v1".into(),
            title: format!("Pool {XSS}"),
            text: RULE.into(),
        }];
        let batch = |id: i64, kind: &str, source: &str| BatchInfo {
            batch_id: id,
            kind: kind.into(),
            source: source.into(),
            profile: "native".into(),
            sha256: Some(format!("{id:064x}")),
            loaded_at: "2026-01-05T16:00:00Z".into(),
        };
        case.batches = vec![
            batch(1, "transactions", "tx-january.csv"),
            batch(2, "accounts", &format!("accounts{XSS}.csv")),
            batch(3, "merchants", "merchants.csv"),
        ];
        let state = |s: &str, a: Option<&str>| {
            serde_json::json!({ "status": s, "assignee": a, "version": 1 }).to_string()
        };
        case.audit = vec![
            audit(7, "analyst-1", "case.status", Some(&state("new", None)), &state("in_review", Some("analyst-1"))),
            audit(8, "analyst-1", "case.note", None, &serde_json::json!({ "note": 1, "body": format!("Called the bank.\n{XSS}") }).to_string()),
            audit(9, "analyst-1", "case.request", Some(&state("in_review", Some("analyst-1"))), &serde_json::json!({ "request": 1, "target": "escalated", "reason": "pool confirmed" }).to_string()),
            audit(10, "supervisor-1", "case.approve", Some(&state("in_review", Some("analyst-1"))), &state("escalated", Some("analyst-1"))),
        ];
        case
    }

    fn meta<'a>(entity: Option<&'a ReportingEntity>) -> Meta<'a> {
        Meta {
            exported_by: "analyst-1",
            exported_at: "2026-01-20T02:00:00Z".parse().unwrap(),
            key_sha256: "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",
            entity,
            time_zone: chrono_tz::Asia::Shanghai,
            lang: Lang::En,
            texts: None,
        }
    }

    /// In Chinese every word of the report's own is translated, the rule titles, summaries
    /// and figure names the caller gives are used, and data stays as written.
    #[test]
    fn every_word_of_the_report_has_its_chinese() {
        let entity = fixture::entity();
        let mut case = fixture::case();
        case.alerts[0]
            .alert
            .metrics
            .insert("payees".into(), serde_json::json!(12));
        let a = &case.alerts[0].alert;
        let texts = ReportTexts {
            titles: BTreeMap::from([(a.rule_id.clone(), "资金池".to_string())]),
            summaries: BTreeMap::from([(a.id.clone(), "摘要".to_string())]),
            metrics: a
                .metrics
                .keys()
                .map(|k| (k.clone(), format!("指标{k}")))
                .collect(),
        };
        let zh = |entity: Option<&ReportingEntity>, case: &CaseExport| {
            let m = Meta {
                lang: Lang::ZhCn,
                texts: Some(&texts),
                ..meta(entity)
            };
            html(case, &m)
        };
        let h = zh(Some(&entity), &case);
        let mut quiet = fixture::case();
        quiet.audit.clear();
        quiet.narrative = Some("n".into());
        let q = zh(None, &quiet);
        let missing = UNTRANSLATED.with(|u| u.borrow().clone());
        assert!(missing.is_empty(), "no Chinese for {missing:?}");
        assert!(h.starts_with("<!DOCTYPE html><html lang=\"zh-CN\">"));
        for want in [
            "报告机构",
            "导出与签名",
            "案件决定与备注",
            "资金池",
            "<p>摘要</p>",
        ] {
            assert!(h.contains(want), "{want}");
        }
        assert!(
            h.contains("指标payees (payees)"),
            "figure names, with the rule's"
        );
        assert!(q.contains("没有案件处理记录。") && q.contains("未配置报告机构"));
        assert!(
            h.contains(&esc(&case.transactions[0].0.tx_id)),
            "data stays"
        );
    }

    #[test]
    fn without_tests_cuts_the_tests_block_and_keeps_every_other_byte() {
        assert_eq!(
            without_tests(RULE).unwrap(),
            "id: TC-04\ntitle: Pool\nparameters:\n  min_payees: { type: int, default: 10 }\nsummary: >\n  {subject} pooled\n# what the regulator codes are\ncodes: { stcr: CW0004 }\n"
        );
        // At the end, a sequence in column 0, CRLF line ends, a quoted key.
        assert_eq!(
            without_tests("id: X\r\ntests:\r\n- name: a\r\n  expect: []\r\n").unwrap(),
            "id: X\r\n"
        );
        assert_eq!(without_tests("\"tests\" : []\nid: X").unwrap(), "id: X");
        // Not the key: nested, or a longer name.
        assert_eq!(without_tests("detect:\n  tests: 1\ntests_x: 2\n"), None);
        assert_eq!(without_tests("id: X\n"), None);
    }

    #[test]
    fn rule_text_is_checked_after_the_cut() {
        let (text, note) = rule_text_for_report(RULE);
        assert!(!text.contains("tests:") && !text.contains("a hub is a pool"));
        assert!(text.contains("codes: { stcr: CW0004 }") && note.unwrap().contains("without"));
        let (text, note) = rule_text_for_report("id: X\n");
        assert_eq!((text.as_str(), note), ("id: X\n", None));
        // A flow sequence running on in column 0 cannot be cut by lines: shown whole.
        let odd = "id: X\ntests: [\n1, 2]\nsummary: s\n";
        assert!(top_level_keys(odd).is_some(), "the text is YAML");
        let (text, note) = rule_text_for_report(odd);
        assert_eq!(text, odd);
        assert!(note.unwrap().contains("whole"));
    }

    #[test]
    fn every_shipped_rule_loses_its_fixtures_and_nothing_else() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let mut cut = 0;
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&dir).unwrap() {
                let path = f.unwrap().path();
                if path.extension().is_none_or(|e| e != "yaml") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let (shown, note) = rule_text_for_report(&text);
                if text.lines().any(|l| l.starts_with("tests:")) {
                    assert!(
                        note.is_some_and(|n| n.starts_with("Shown without")),
                        "{}",
                        path.display()
                    );
                    assert!(!shown.lines().any(|l| l.starts_with("tests:")));
                    assert!(text.starts_with(&shown[..text.find("\ntests:").unwrap() + 1]));
                    cut += 1;
                } else {
                    assert_eq!(shown, text);
                }
            }
        }
        assert!(cut >= 10, "{cut} shipped rules with fixtures");
    }

    #[test]
    fn report_is_a_case_file() {
        let case = case();
        let mut entity = fixture::entity();
        entity.rentity_branch = format!("Head office {XSS}");
        let h = html(&case, &meta(Some(&entity)));

        // The reporting institution and the signing key.
        assert!(h.contains("Reporting institution"));
        assert!(h.contains("<td>12345678901234</td>"), "institution code");
        assert!(h.contains("<td>Wei Zhang</td>"));
        assert!(h.contains("100 Century Avenue, Shanghai, 200120, CN"));
        assert!(h.contains(&format!("<td>Head office {}</td>", esc(XSS))));
        assert!(h.contains(&format!(
            "<td class=\"mono\">{}</td>",
            meta(None).key_sha256
        )));

        // Decisions as rows, not JSON.
        assert!(!h.contains("&quot;status&quot;") && !h.contains("prev_hash"));
        assert!(
            h.contains("<td>status changed</td><td>new → in_review (assignee analyst-1)</td>"),
            "{h}"
        );
        assert!(h.contains(&format!(
            "<td>note</td><td></td><td class=\"text\">Called the bank.\n{}</td>",
            esc(XSS)
        )));
        assert!(h.contains("<td>approval requested</td><td>in_review (assignee analyst-1) → escalated (requested)</td><td class=\"text\">pool confirmed</td>"));
        assert!(h.contains("<td>supervisor-1</td><td>request approved</td>"));
        assert!(
            h.contains("<td class=\"t\">2026-01-06 09:30:00 +08:00</td>"),
            "audit time in the zone"
        );
        // Two alerts: each row names its alert.
        assert!(h.contains("<th>alert</th>") && h.contains("<td class=\"mono\">A-1</td>"));

        // The rule as configured, without its fixtures.
        let rules = &h[h.find("id=\"rules\"").unwrap()..h.find("id=\"batches\"").unwrap()];
        assert!(!rules.contains("tests:") && !rules.contains("a hub is a pool"));
        assert!(rules.contains(&esc(&without_tests(RULE).unwrap())));
        assert!(rules.contains(&format!("TC-04 — Pool {}", esc(XSS))));

        // Every batch.
        assert!(h.contains("Input batches (3)"));
        for source in [
            "tx-january.csv",
            &esc(&format!("accounts{XSS}.csv")),
            "merchants.csv",
        ] {
            assert!(
                h.contains(&format!("<td>{source}</td>")),
                "{source} not listed"
            );
        }
        assert!(
            h.contains("<td class=\"num\">6</td></tr>"),
            "evidence count of batch 1"
        );
        assert!(h.contains("<td class=\"num\">— (registry)</td>"));

        // Times in the exporting user's zone.
        assert!(h.contains("Times in this report are in Asia/Shanghai (UTC+08:00 at export)"));
        assert!(h.contains("<td class=\"t\">2026-01-05 10:00:00 +08:00</td>"));
        assert!(h.contains("<td class=\"t\">2026-01-05 11:00:00.250 +08:00</td>"));
        assert!(h.contains("<th>time (Asia/Shanghai)</th>"));

        // Static, printable, and nothing hostile unescaped.
        assert!(!h.contains(XSS));
        for forbidden in [
            "<script",
            "<link",
            "@import",
            "src=\"",
            "href=\"http",
            "url(http",
        ] {
            assert!(!h.to_lowercase().contains(forbidden), "{forbidden}");
        }
        assert!(h.contains("@media print") && h.contains("@page{size:A4"));
        assert!(
            h.contains("h2.major{break-before:page}")
                && h.contains("thead{display:table-header-group}")
        );
        assert!(h.contains("tr,td,th,svg{break-inside:avoid}"));
        assert_eq!(h.matches("<h2 ").count(), h.matches("</h2>").count());
        assert_eq!(h.matches("<div").count(), h.matches("</div>").count());
        assert_eq!(h.matches("<table").count(), h.matches("</table>").count());
        assert_eq!(h.matches("<tr>").count(), h.matches("</tr>").count());
    }

    #[test]
    fn without_an_entity_the_report_says_how_to_give_one_and_shows_utc() {
        let case = case();
        let mut m = meta(None);
        m.time_zone = chrono_tz::UTC;
        let h = html(&case, &m);
        assert!(h.contains("No reporting institution configured"));
        assert!(h.contains("<td class=\"t\">2026-01-05 02:00:00 +00:00</td>"));
        let quiet = CaseExport {
            alerts: case.alerts.clone(),
            ..CaseExport::default()
        };
        assert!(html(&quiet, &m).contains("No case activity recorded."));
    }
}
