//! The data files of a bundle: `transactions.csv` and `accounts.csv` in clearwatch's
//! native format (plus the batch each transaction came from), the fund-flow graph as
//! GraphML, and the audit trail as JSON Lines. Each writer streams into any `Write`.

use std::io::Write;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::{CaseExport, ExportError};
use clearwatch_model::{Account, Table, Transaction, format_amount, format_ts};

fn csv_err(e: csv::Error) -> ExportError {
    ExportError::Invalid(format!("CSV: {e}"))
}

fn xml_err(e: impl std::fmt::Display) -> ExportError {
    ExportError::Xml(e.to_string())
}

/// A cell as written to a bundle's CSV files: one that a spreadsheet would read as a
/// formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading
/// `'`, as OWASP's CSV-injection guidance asks; strip that one character to get the value
/// as loaded (docs/evidence.md).
pub fn neutralised(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn safe_row(row: Vec<String>) -> Vec<String> {
    row.into_iter().map(neutralised).collect()
}

/// `transactions.csv`: the native columns, then the batch each transaction was loaded in.
pub fn transactions_csv<W: Write>(case: &CaseExport, w: W) -> Result<(), ExportError> {
    let mut out = csv::Writer::from_writer(w);
    let mut header = Transaction::native_header();
    header.push("batch_id");
    out.write_record(header).map_err(csv_err)?;
    for (t, batch) in &case.transactions {
        let mut row = t.native_row();
        row.push(batch.to_string());
        out.write_record(safe_row(row)).map_err(csv_err)?;
    }
    out.flush()
        .map_err(|e| ExportError::Invalid(format!("CSV: {e}")))
}

/// `accounts.csv`: the native columns.
pub fn accounts_csv<W: Write>(case: &CaseExport, w: W) -> Result<(), ExportError> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(Account::native_header())
        .map_err(csv_err)?;
    for a in &case.accounts {
        out.write_record(safe_row(a.native_row()))
            .map_err(csv_err)?;
    }
    out.flush()
        .map_err(|e| ExportError::Invalid(format!("CSV: {e}")))
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

#[cfg(test)]
mod tests {
    #[test]
    fn spreadsheet_formulas_in_bundle_csv_cells_are_neutralised() {
        for (cell, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-1+1", "'-1+1"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("A00000236", "A00000236"),
            ("12.50", "12.50"),
            ("", ""),
        ] {
            assert_eq!(super::neutralised(cell.to_string()), written);
        }
    }

    use super::*;
    use clearwatch_model::{AccountKind, Currency, Role, TxType};

    #[test]
    fn csv_files_are_the_native_format_plus_the_batch() {
        let tx = Transaction {
            tx_id: "T1".into(),
            ts: 1_767_225_600_500,
            from: "A1".into(),
            to: "A2".into(),
            amount: 12_345,
            currency: Currency::from_code("CNY").unwrap(),
            tx_type: TxType::Payment,
            merchant_id: None,
            channel: Some("qr".into()),
            region: None,
            memo: Some("rent, \"May\"".into()),
        };
        let bank = Account {
            account_id: "A1".into(),
            holder_id: None,
            holder_name: Some("Bank".into()),
            kind: None,
            role: Role::Bank,
            licensed: true,
            institution: None,
            region: Some("CN-31".into()),
        };
        let person = Account {
            account_id: "A2".into(),
            holder_id: Some("H2".into()),
            holder_name: Some("Li Lei".into()),
            kind: Some(AccountKind::Personal),
            role: Role::Individual,
            licensed: false,
            institution: Some("信宇银行".into()),
            region: None,
        };
        let case = CaseExport {
            transactions: vec![(tx, 7)],
            accounts: vec![bank, person],
            ..Default::default()
        };
        let mut out = Vec::new();
        transactions_csv(&case, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "tx_id,ts,from,to,amount,currency,type,merchant_id,channel,region,memo,batch_id\n\
             T1,2026-01-01T00:00:00.500Z,A1,A2,123.45,CNY,payment,,qr,,\"rent, \"\"May\"\"\",7\n"
        );
        let mut out = Vec::new();
        accounts_csv(&case, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "account_id,holder_id,holder_name,kind,role,licensed,institution,region\n\
             A1,,Bank,,bank,true,,CN-31\n\
             A2,H2,Li Lei,personal,individual,false,信宇银行,\n"
        );
    }
}
