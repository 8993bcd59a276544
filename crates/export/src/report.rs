//! `report.html`: a self-contained, printable report of a case (no scripts, no external
//! resources): the alerts with the figures behind each condition, the fund-flow graph as
//! inline SVG, the transactions, the case's decisions and notes, the rule texts and the
//! input batches. Written by hand rather than with a template engine: it is one static
//! document, and every value from the data goes through [`esc`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::CaseExport;
use super::flowgraph;
use clearwatch_model::{Role, format_amount, format_ts};

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

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;font-size:12px}th{background:#f3f3f3}pre{background:#f7f7f7;padding:1em;white-space:pre-wrap;font-size:11px}h1{font-size:20px}h2{font-size:16px;margin-top:2em}.legend span{display:inline-block;margin-right:1em}@media print{h2{page-break-after:avoid}}";

/// The whole report.
pub fn html(case: &CaseExport, exported_by: &str, exported_at: &str) -> String {
    let mut h = String::new();
    let title = match case.alerts.as_slice() {
        [one] => format!(
            "Case report: {} on {}",
            one.alert.rule_id, one.alert.subject.id
        ),
        many => format!("Case report: {} alerts", many.len()),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1><p>Exported by {} at {} with clearwatch {}.</p>",
        esc(&title),
        esc(&title),
        esc(exported_by),
        esc(exported_at),
        env!("CARGO_PKG_VERSION")
    );
    for s in &case.alerts {
        let a = &s.alert;
        let _ = write!(
            h,
            "<h2>Alert {}</h2><table><tr><th>rule</th><td>{} — {}</td></tr><tr><th>rule version</th><td>{}</td></tr><tr><th>subject</th><td>{} {}</td></tr><tr><th>window</th><td>{} .. {}</td></tr><tr><th>severity / score</th><td>{} / {}</td></tr><tr><th>status</th><td>{}</td></tr></table><p>{}</p><h3>Figures behind the alert</h3><table><tr><th>metric</th><th>value</th></tr>",
            esc(&a.id),
            esc(&a.rule_id),
            esc(&a.title),
            esc(&a.rule_version),
            esc(a.subject.kind.as_str()),
            esc(&a.subject.id),
            esc(&format_ts(a.window.from)),
            esc(&format_ts(a.window.until)),
            a.severity,
            a.score,
            esc(s.status.as_str()),
            esc(&a.summary)
        );
        for (name, value) in &a.metrics {
            let shown = match value {
                serde_json::Value::String(v) => {
                    format!("{v} {}", a.currency.as_deref().unwrap_or(""))
                }
                other => other.to_string(),
            };
            let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(name), esc(&shown));
        }
        h.push_str("</table>");
    }
    if let Some(n) = &case.narrative {
        let _ = write!(h, "<h2>Narrative</h2><p>{}</p>", esc(n));
    }
    h.push_str("<h2>Fund flow</h2><p class=\"legend\">");
    for role in Role::ALL {
        let _ = write!(
            h,
            "<span><svg width=\"10\" height=\"10\"><circle cx=\"5\" cy=\"5\" r=\"5\" fill=\"{}\"/></svg> {}</span>",
            flowgraph::role_colour(*role),
            role
        );
    }
    h.push_str("<span>squares: licensed institutions; ringed: alert subjects</span></p>");
    h.push_str(&svg_graph(case));
    let _ = write!(
        h,
        "<h2>Transactions ({})</h2><table><tr><th>id</th><th>time (UTC)</th><th>from</th><th>to</th><th>amount</th><th>type</th><th>merchant</th><th>memo</th></tr>",
        case.transactions.len()
    );
    for (t, _) in &case.transactions {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.tx_id),
            esc(&format_ts(t.ts)),
            esc(&t.from),
            esc(&t.to),
            format_amount(t.amount, t.currency.exponent()),
            t.currency,
            t.tx_type,
            esc(t.merchant_id.as_deref().unwrap_or("")),
            esc(t.memo.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table><h2>Accounts</h2><table><tr><th>account</th><th>holder</th><th>kind</th><th>role</th><th>licensed</th><th>institution</th></tr>");
    for a in &case.accounts {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.account_id),
            esc(a.holder_name.as_deref().unwrap_or("")),
            a.kind.map_or("", |k| k.as_str()),
            a.role,
            a.licensed,
            esc(a.institution.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table><h2>Case decisions and notes</h2>");
    if case.audit.is_empty() {
        h.push_str("<p>No case activity recorded.</p>");
    } else {
        h.push_str("<table><tr><th>entry</th></tr>");
        for e in &case.audit {
            let _ = write!(h, "<tr><td>{}</td></tr>", esc(&e.to_string()));
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Rules</h2>");
    for r in &case.rules {
        let _ = write!(
            h,
            "<h3>{} (version {})</h3><pre>{}</pre>",
            esc(&r.rule_id),
            esc(&r.version),
            esc(&r.text)
        );
    }
    h.push_str("<h2>Input batches</h2><table><tr><th>batch</th><th>kind</th><th>source</th><th>sha256</th><th>loaded</th></tr>");
    for b in &case.batches {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            b.batch_id,
            esc(&b.kind),
            esc(&b.source),
            esc(b.sha256.as_deref().unwrap_or("")),
            esc(&b.loaded_at)
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<img src=x onerror=alert(1)> & \"'"),
            "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;&#39;"
        );
    }
}
