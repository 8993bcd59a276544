//! The data files of a bundle: `transactions.csv` and `accounts.csv` in clearwatch's
//! native format (plus the batch each transaction came from), the fund-flow graph as
//! GraphML, and the audit trail as JSON Lines. Each writer streams into any `Write`.

use std::collections::BTreeMap;
use std::io::Write;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::{CaseExport, ExportError};
use clearwatch_model::{Millis, format_amount, format_ts};

fn csv_err(e: csv::Error) -> ExportError {
    ExportError::Invalid(format!("CSV: {e}"))
}

fn xml_err(e: impl std::fmt::Display) -> ExportError {
    ExportError::Xml(e.to_string())
}

pub fn transactions_csv<W: Write>(case: &CaseExport, w: W) -> Result<(), ExportError> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record([
        "tx_id",
        "ts",
        "from",
        "to",
        "amount",
        "currency",
        "type",
        "merchant_id",
        "channel",
        "region",
        "memo",
        "batch_id",
    ])
    .map_err(csv_err)?;
    for (t, batch) in &case.transactions {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        out.write_record([
            t.tx_id.clone(),
            format_ts(t.ts),
            t.from.clone(),
            t.to.clone(),
            format_amount(t.amount, t.currency.exponent()),
            t.currency.code().to_string(),
            t.tx_type.as_str().to_string(),
            o(&t.merchant_id),
            o(&t.channel),
            o(&t.region),
            o(&t.memo),
            batch.to_string(),
        ])
        .map_err(csv_err)?;
    }
    out.flush()
        .map_err(|e| ExportError::Invalid(format!("CSV: {e}")))
}

pub fn accounts_csv<W: Write>(case: &CaseExport, w: W) -> Result<(), ExportError> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record([
        "account_id",
        "holder_id",
        "holder_name",
        "kind",
        "role",
        "licensed",
        "institution",
        "region",
    ])
    .map_err(csv_err)?;
    for a in &case.accounts {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        out.write_record([
            a.account_id.clone(),
            o(&a.holder_id),
            o(&a.holder_name),
            a.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
            a.role.as_str().to_string(),
            a.licensed.to_string(),
            o(&a.institution),
            o(&a.region),
        ])
        .map_err(csv_err)?;
    }
    out.flush()
        .map_err(|e| ExportError::Invalid(format!("CSV: {e}")))
}

/// One edge of the drawn graph: all transactions from one account to another.
#[derive(Debug, Clone, Default)]
pub struct FlowEdge {
    pub count: u64,
    /// Minor units per currency code.
    pub amounts: BTreeMap<String, (i64, u32)>,
    pub first: Millis,
    pub last: Millis,
}

impl FlowEdge {
    pub fn label(&self) -> String {
        let amounts: Vec<String> = self
            .amounts
            .iter()
            .map(|(c, (m, exp))| format!("{} {c}", format_amount(*m, *exp)))
            .collect();
        format!("{} × {}", self.count, amounts.join(" + "))
    }
}

/// Transactions aggregated per (from, to) pair, in account order.
pub fn flows(case: &CaseExport) -> BTreeMap<(String, String), FlowEdge> {
    let mut out: BTreeMap<(String, String), FlowEdge> = BTreeMap::new();
    for (t, _) in &case.transactions {
        let e = out
            .entry((t.from.clone(), t.to.clone()))
            .or_insert(FlowEdge {
                first: t.ts,
                last: t.ts,
                ..Default::default()
            });
        e.count += 1;
        let amount = e
            .amounts
            .entry(t.currency.code().to_string())
            .or_insert((0, t.currency.exponent()));
        amount.0 = amount.0.saturating_add(t.amount);
        e.first = e.first.min(t.ts);
        e.last = e.last.max(t.ts);
    }
    out
}

/// GraphML: one node per account (role, licensed, holder name), one edge per transaction.
pub fn graphml<W: Write>(case: &CaseExport, w: W) -> Result<(), ExportError> {
    let mut x = Writer::new_with_indent(w, b' ', 2);
    x.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(xml_err)?;
    let mut root = BytesStart::new("graphml");
    root.push_attribute(("xmlns", "http://graphml.graphdrawing.org/xmlns"));
    x.write_event(Event::Start(root)).map_err(xml_err)?;
    for (id, target, name, ty) in [
        ("role", "node", "role", "string"),
        ("licensed", "node", "licensed", "boolean"),
        ("holder", "node", "holder_name", "string"),
        ("ts", "edge", "ts", "string"),
        ("amount", "edge", "amount", "string"),
        ("currency", "edge", "currency", "string"),
        ("type", "edge", "type", "string"),
    ] {
        let mut k = BytesStart::new("key");
        k.push_attribute(("id", id));
        k.push_attribute(("for", target));
        k.push_attribute(("attr.name", name));
        k.push_attribute(("attr.type", ty));
        x.write_event(Event::Empty(k)).map_err(xml_err)?;
    }
    let mut g = BytesStart::new("graph");
    g.push_attribute(("id", "evidence"));
    g.push_attribute(("edgedefault", "directed"));
    x.write_event(Event::Start(g)).map_err(xml_err)?;
    let data = |x: &mut Writer<W>, key: &str, value: &str| -> Result<(), ExportError> {
        let mut d = BytesStart::new("data");
        d.push_attribute(("key", key));
        x.write_event(Event::Start(d)).map_err(xml_err)?;
        x.write_event(Event::Text(BytesText::new(value)))
            .map_err(xml_err)?;
        x.write_event(Event::End(BytesEnd::new("data")))
            .map_err(xml_err)
    };
    for a in &case.accounts {
        let mut n = BytesStart::new("node");
        n.push_attribute(("id", a.account_id.as_str()));
        x.write_event(Event::Start(n)).map_err(xml_err)?;
        data(&mut x, "role", a.role.as_str())?;
        data(
            &mut x,
            "licensed",
            if a.licensed { "true" } else { "false" },
        )?;
        data(&mut x, "holder", a.holder_name.as_deref().unwrap_or(""))?;
        x.write_event(Event::End(BytesEnd::new("node")))
            .map_err(xml_err)?;
    }
    for (t, _) in &case.transactions {
        let mut e = BytesStart::new("edge");
        e.push_attribute(("id", t.tx_id.as_str()));
        e.push_attribute(("source", t.from.as_str()));
        e.push_attribute(("target", t.to.as_str()));
        x.write_event(Event::Start(e)).map_err(xml_err)?;
        data(&mut x, "ts", &format_ts(t.ts))?;
        data(
            &mut x,
            "amount",
            &format_amount(t.amount, t.currency.exponent()),
        )?;
        data(&mut x, "currency", t.currency.code())?;
        data(&mut x, "type", t.tx_type.as_str())?;
        x.write_event(Event::End(BytesEnd::new("edge")))
            .map_err(xml_err)?;
    }
    x.write_event(Event::End(BytesEnd::new("graph")))
        .map_err(xml_err)?;
    x.write_event(Event::End(BytesEnd::new("graphml")))
        .map_err(xml_err)?;
    Ok(())
}

pub fn audit_jsonl<W: Write>(case: &CaseExport, mut w: W) -> Result<(), ExportError> {
    for entry in &case.audit {
        serde_json::to_writer(&mut w, entry)
            .map_err(|e| ExportError::Invalid(format!("audit entry: {e}")))?;
        w.write_all(b"\n")
            .map_err(|e| ExportError::Invalid(format!("audit: {e}")))?;
    }
    Ok(())
}
