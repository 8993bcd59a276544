//! CAMLMAC suspicious-transaction reports (BSTR) of a case: XML files named
//! `{N|C|D}BS{institution code}-{YYYYMMDD}-{8-digit seq}.XML`, packed into ZIPs of at most
//! 5 MB. A case too large for one file is split: every file repeats the header (`RBIF`) and
//! the suspects (`SEIFs`) and carries its share of the transactions (`TSIFs`), so no
//! transaction is ever dropped. Unknown values are written `@I`.

use std::collections::BTreeSet;
use std::io::Cursor;

use chrono::{Datelike, FixedOffset, NaiveDate, TimeZone, Utc};

use super::entity::{ReportKind, ReportingEntity};
use super::xml::{Xml, is_xml_char};
use super::{CaseExport, ExportError};
use clearwatch_model::{Account, SubjectKind, Transaction, format_amount};

/// Largest package (and so largest XML file) in bytes: 5 MB, read as 5,000,000.
pub const PACKAGE_LIMIT: usize = 5_000_000;
/// Longest `STCB` and `AOSP` text, in characters.
const NARRATIVE_MAX: usize = 4000;
/// Longest name or institution, in characters.
const NAME_MAX: usize = 255;
/// Longest transaction remark (`ROTF`), in characters.
const REMARK_MAX: usize = 500;
/// Value of a field whose content is not known.
const UNKNOWN: &str = "@I";

/// `TSDR`: the suspect receives the funds.
pub const RECEIVE: &str = "01";
/// `TSDR`: the suspect pays.
pub const PAY: &str = "02";

/// Writes the BSTR reports of `case` as ZIP packages `(file name, bytes)`, numbering the
/// XML files from `first_seq`; each package is at most [`PACKAGE_LIMIT`] bytes.
pub fn write_camlmac(
    entity: &ReportingEntity,
    case: &CaseExport,
    date: NaiveDate,
    first_seq: u32,
) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
    write_packages(entity, case, date, first_seq, PACKAGE_LIMIT)
}

/// `{N|C|D}BS{14-digit institution code}-{YYYYMMDD}-{8-digit seq}.XML`.
pub fn file_name(kind: ReportKind, institution_code: &str, date: NaiveDate, seq: u32) -> String {
    format!(
        "{}BS{}-{}-{:08}.XML",
        kind.letter(),
        institution_code,
        date.format("%Y%m%d"),
        seq
    )
}

/// The accounts reported as suspects: the subjects of account alerts, and for alerts on a
/// merchant, their evidence accounts (where the rule found the merchant's money going).
pub fn suspects(case: &CaseExport) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    for a in &case.alerts {
        let a = &a.alert;
        if a.subject.kind == SubjectKind::Account {
            out.insert(a.subject.id.as_str());
        } else {
            out.extend(a.evidence.accounts.iter().map(String::as_str));
        }
    }
    out
}

/// The `TSIF` rows of a transaction: `(suspect account, TSDR, counterparty account)`, one
/// per suspect end; a transaction touching no suspect is listed from the payee's side.
pub fn sides<'a>(
    tx: &'a Transaction,
    suspects: &BTreeSet<&str>,
) -> Vec<(&'a str, &'static str, &'a str)> {
    let mut out = Vec::with_capacity(2);
    if suspects.contains(tx.from.as_str()) {
        out.push((tx.from.as_str(), PAY, tx.to.as_str()));
    }
    if suspects.contains(tx.to.as_str()) || out.is_empty() {
        out.push((tx.to.as_str(), RECEIVE, tx.from.as_str()));
    }
    out
}

pub(crate) fn write_packages(
    entity: &ReportingEntity,
    case: &CaseExport,
    date: NaiveDate,
    first_seq: u32,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
    if case.transactions.is_empty() {
        return Err(ExportError::Invalid(
            "a CAMLMAC report needs at least one transaction; the case has no evidence \
             transactions"
                .into(),
        ));
    }
    let suspects = suspects(case);
    let frame = frame(entity, case, &suspects)?;
    // Room for the ZIP headers and deflate's worst-case growth of one file.
    let xml_limit = limit.saturating_sub(limit / 100 + 1024);
    let fixed = frame.before.len()
        + "<TTNM>4294967295</TTNM>\n".len()
        + frame.after.len()
        + frame.tail.len();
    let mtime = zip_time(date);
    let mut singles: Vec<(String, Vec<u8>)> = Vec::new();
    let mut seq = first_seq;
    let mut rows: Vec<u8> = Vec::new();
    let mut count: u32 = 0;
    let mut flush = |rows: &mut Vec<u8>, count: &mut u32| -> Result<(), ExportError> {
        if seq > 99_999_999 {
            return Err(ExportError::Invalid(format!(
                "CAMLMAC file sequence {seq} does not fit 8 digits"
            )));
        }
        let name = file_name(entity.report_kind, &entity.institution_code, date, seq);
        let mut xml = Vec::with_capacity(fixed + rows.len());
        xml.extend_from_slice(&frame.before);
        xml.extend_from_slice(format!("<TTNM>{count}</TTNM>\n").as_bytes());
        xml.extend_from_slice(&frame.after);
        xml.append(rows);
        xml.extend_from_slice(&frame.tail);
        singles.push((name.clone(), single_zip(&name, &xml, mtime)?));
        seq += 1;
        *count = 0;
        Ok(())
    };
    for (tx, _batch) in &case.transactions {
        for (account, direction, counterparty) in sides(tx, &suspects) {
            let row = tsif(case, tx, account, direction, counterparty)?;
            if fixed + row.len() > xml_limit {
                return Err(ExportError::Invalid(format!(
                    "transaction {} does not fit a CAMLMAC file of {limit} bytes",
                    tx.tx_id
                )));
            }
            if fixed + rows.len() + row.len() > xml_limit {
                flush(&mut rows, &mut count)?;
            }
            rows.extend_from_slice(&row);
            count += 1;
        }
    }
    flush(&mut rows, &mut count)?;
    pack(singles, limit)
}

/// What every file holds around its rows and their count (`TTNM`).
struct Frame {
    /// The declaration and the header up to `TTNM`.
    before: Vec<u8>,
    /// The rest of the header, the suspects and the opening `TSIFs`.
    after: Vec<u8>,
    /// From the closing `TSIFs` to the end.
    tail: Vec<u8>,
}

fn frame(
    entity: &ReportingEntity,
    case: &CaseExport,
    suspects: &BTreeSet<&str>,
) -> Result<Frame, ExportError> {
    let mut x = Xml::new(Vec::new(), false);
    x.decl()?;
    x.raw(b"\n")?;
    x.open("BSTR")?;
    x.raw(b"\n")?;
    x.open("RBIF")?;
    x.raw(b"\n")?;
    for (tag, text, max) in [
        ("RICD", entity.institution_code.clone(), 14),
        ("STCB", stcb(case), NARRATIVE_MAX),
        ("AOSP", aosp(case), NARRATIVE_MAX),
        ("STCR", stcr(case)?, NARRATIVE_MAX),
        ("SETN", suspects.len().to_string(), 10),
    ] {
        x.text(tag, &text, max)?;
        x.raw(b"\n")?;
    }
    let before = x.finish_raw();

    let mut x = Xml::new(Vec::new(), false);
    x.close("RBIF")?;
    x.raw(b"\n")?;
    x.open("SEIFs")?;
    x.raw(b"\n")?;
    for id in suspects {
        check_id("account id", id)?;
        let a = account(case, id);
        x.open("SEIF")?;
        x.text("CSNM", or_unknown(a.holder_id.as_deref()), NAME_MAX)?;
        x.text("SENM", or_unknown(a.holder_name.as_deref()), NAME_MAX)?;
        x.text("CTAC", id, usize::MAX)?;
        x.close("SEIF")?;
        x.raw(b"\n")?;
    }
    x.close("SEIFs")?;
    x.raw(b"\n")?;
    x.open("TSIFs")?;
    x.raw(b"\n")?;
    let after = x.finish_raw();

    let mut x = Xml::new(Vec::new(), false);
    x.close("TSIFs")?;
    x.raw(b"\n")?;
    x.close("BSTR")?;
    x.raw(b"\n")?;
    Ok(Frame {
        before,
        after,
        tail: x.finish_raw(),
    })
}

/// One `TSIF` row, newline-terminated.
fn tsif(
    case: &CaseExport,
    tx: &Transaction,
    suspect: &str,
    direction: &str,
    counterparty: &str,
) -> Result<Vec<u8>, ExportError> {
    check_id("transaction id", &tx.tx_id)?;
    check_id("account id", suspect)?;
    check_id("account id", counterparty)?;
    let c = account(case, counterparty);
    let mut x = Xml::new(Vec::with_capacity(512), false);
    x.open("TSIF")?;
    x.text("TICD", &tx.tx_id, usize::MAX)?;
    x.text("CTAC", suspect, usize::MAX)?;
    x.text("TSTM", &china_time(tx.ts)?, 14)?;
    x.text("TSDR", direction, 2)?;
    x.text("CRTP", tx.currency.code(), 3)?;
    x.text(
        "CRAT",
        &format_amount(tx.amount, tx.currency.exponent()),
        40,
    )?;
    x.open("TCIF")?;
    x.text("TCNM", or_unknown(c.holder_name.as_deref()), NAME_MAX)?;
    x.text("TCAC", counterparty, usize::MAX)?;
    x.text("CFIN", or_unknown(c.institution.as_deref()), NAME_MAX)?;
    x.close("TCIF")?;
    x.text("ROTF", &remark(tx), REMARK_MAX)?;
    x.close("TSIF")?;
    x.raw(b"\n")?;
    Ok(x.finish_raw())
}

/// `STCB`: what the funds and the customer did, from the alerts' summaries.
fn stcb(case: &CaseExport) -> String {
    case.alerts
        .iter()
        .map(|a| format!("[{}] {}", a.alert.rule_id, a.alert.summary.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `AOSP`: the grounds for suspicion: the rules that fired, then the analyst's narrative.
fn aosp(case: &CaseExport) -> String {
    let mut rules: Vec<(&str, &str)> = case
        .alerts
        .iter()
        .map(|a| (a.alert.rule_id.as_str(), a.alert.title.trim()))
        .collect();
    rules.sort();
    rules.dedup_by_key(|r| r.0);
    let mut text = format!(
        "Monitoring rules met: {}",
        rules
            .iter()
            .map(|(id, title)| format!("{id} ({title})"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    if let Some(n) = case
        .narrative
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        text.push_str("\n\n");
        text.push_str(n);
    }
    text
}

/// `STCR`: the rules' registered codes (`codes.stcr`), sorted and joined with commas.
/// A rule without one is an error: the report must name every rule it rests on.
fn stcr(case: &CaseExport) -> Result<String, ExportError> {
    let rules: BTreeSet<&str> = case
        .alerts
        .iter()
        .map(|a| a.alert.rule_id.as_str())
        .collect();
    let mut codes = BTreeSet::new();
    let mut missing = Vec::new();
    for r in rules {
        match case.rule_codes.get(r).and_then(|c| c.get("stcr")) {
            Some(code) if !code.trim().is_empty() && !code.contains(',') => {
                codes.insert(code.trim());
            }
            _ => missing.push(r),
        }
    }
    if !missing.is_empty() {
        return Err(ExportError::Invalid(format!(
            "rule(s) {} have no usable `codes: {{ stcr: … }}`; CAMLMAC reports need the \
             institution's registered rule code of every rule",
            missing.join(", ")
        )));
    }
    Ok(codes.into_iter().collect::<Vec<_>>().join(","))
}

fn remark(tx: &Transaction) -> String {
    let mut r = tx.tx_type.as_str().to_string();
    if let Some(m) = tx.merchant_id.as_deref().filter(|m| !m.trim().is_empty()) {
        r.push_str(&format!(" for merchant {m}"));
    }
    if let Some(ch) = tx.channel.as_deref().filter(|c| !c.trim().is_empty()) {
        r.push_str(&format!(" via {ch}"));
    }
    if let Some(memo) = tx.memo.as_deref().filter(|m| !m.trim().is_empty()) {
        r.push_str(&format!("; memo: {memo}"));
    }
    r
}

/// `TSTM`: `YYYYMMDDhhmmss` in China Standard Time (UTC+8, no daylight saving).
pub fn china_time(ts: i64) -> Result<String, ExportError> {
    let cst = FixedOffset::east_opt(8 * 3600)
        .ok_or_else(|| ExportError::Invalid("UTC+8 offset".into()))?;
    let t = Utc
        .timestamp_millis_opt(ts)
        .single()
        .ok_or_else(|| ExportError::Invalid(format!("timestamp {ts} is out of range")))?
        .with_timezone(&cst);
    if !(0..=9999).contains(&t.year()) {
        return Err(ExportError::Invalid(format!(
            "date {t} does not fit YYYYMMDDhhmmss"
        )));
    }
    Ok(t.format("%Y%m%d%H%M%S").to_string())
}

fn account<'a>(case: &'a CaseExport, id: &str) -> std::borrow::Cow<'a, Account> {
    match case.account(id) {
        Some(a) => std::borrow::Cow::Borrowed(a),
        None => std::borrow::Cow::Owned(Account::unregistered(id)),
    }
}

fn or_unknown(s: Option<&str>) -> &str {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(UNKNOWN)
}

fn check_id(what: &str, id: &str) -> Result<(), ExportError> {
    if id.is_empty() || !id.chars().all(is_xml_char) {
        return Err(ExportError::Invalid(format!(
            "{what} {id:?} cannot be reported: it is empty or holds characters XML cannot carry"
        )));
    }
    Ok(())
}

fn zip_err(e: zip::result::ZipError) -> ExportError {
    ExportError::Zip(e.to_string())
}

/// Files are stamped with the report date, so output depends only on the inputs.
fn zip_time(date: NaiveDate) -> zip::DateTime {
    u16::try_from(date.year())
        .ok()
        .and_then(|y| {
            zip::DateTime::from_date_and_time(y, date.month() as u8, date.day() as u8, 0, 0, 0).ok()
        })
        .unwrap_or_default()
}

fn options(mtime: zip::DateTime) -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(mtime)
        .unix_permissions(0o644)
}

/// A ZIP holding one file, to learn its compressed size before packing.
fn single_zip(name: &str, data: &[u8], mtime: zip::DateTime) -> Result<Vec<u8>, ExportError> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file(name, options(mtime)).map_err(zip_err)?;
    w.write_all(data)
        .map_err(|e| ExportError::Zip(e.to_string()))?;
    Ok(w.finish().map_err(zip_err)?.into_inner())
}

/// Packs the one-file ZIPs into packages of at most `limit` bytes (copying the compressed
/// data as is); a package is named after its first XML file.
fn pack(
    singles: Vec<(String, Vec<u8>)>,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
    let mut groups: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
    let mut size = 0;
    for s in singles {
        // A one-file ZIP's length bounds what the file adds to a package.
        match groups.last_mut() {
            Some(g) if size + s.1.len() <= limit => {
                size += s.1.len();
                g.push(s);
            }
            _ => {
                size = s.1.len();
                groups.push(vec![s]);
            }
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let name = format!("{}.ZIP", g[0].0.trim_end_matches(".XML"));
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (_, single) in &g {
            let mut archive =
                zip::ZipArchive::new(Cursor::new(single.as_slice())).map_err(zip_err)?;
            let file = archive.by_index_raw(0).map_err(zip_err)?;
            w.raw_copy_file(file).map_err(zip_err)?;
        }
        let bytes = w.finish().map_err(zip_err)?.into_inner();
        if bytes.len() > limit {
            return Err(ExportError::Zip(format!(
                "package {name} is {} bytes, over the limit of {limit}",
                bytes.len()
            )));
        }
        out.push((name, bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::fixture::{self, XSS, leaves, under};
    use clearwatch_model::{AccountKind, Role};

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 20).unwrap()
    }

    /// The XML files of a package, by name.
    fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut a = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        (0..a.len())
            .map(|i| {
                let mut f = a.by_index(i).unwrap();
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                (f.name().unwrap().to_string(), data)
            })
            .collect()
    }

    #[test]
    fn file_names_follow_the_convention() {
        assert_eq!(
            file_name(ReportKind::Normal, "12345678901234", date(), 1),
            "NBS12345678901234-20260120-00000001.XML"
        );
        assert_eq!(
            file_name(ReportKind::Correction, "12345678901234", date(), 12_345_678),
            "CBS12345678901234-20260120-12345678.XML"
        );
        assert!(file_name(ReportKind::Deletion, "12345678901234", date(), 0).starts_with("DBS"));
        let mut entity = fixture::entity();
        entity.report_kind = ReportKind::Correction;
        let out = write_camlmac(&entity, &fixture::case(), date(), 7).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "CBS12345678901234-20260120-00000007.ZIP");
        let files = unzip(&out[0].1);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, "CBS12345678901234-20260120-00000007.XML");
        let err = write_camlmac(&entity, &fixture::case(), date(), 100_000_000).unwrap_err();
        assert!(err.to_string().contains("8 digits"), "{err}");
    }

    #[test]
    fn a_small_case_reports_header_suspects_and_transactions() {
        let case = fixture::case();
        let out = write_camlmac(&fixture::entity(), &case, date(), 1).unwrap();
        let files = unzip(&out[0].1);
        let xml = &files[0].1;
        let text = std::str::from_utf8(xml).unwrap();
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(!text.contains("<img"), "unescaped markup");
        let l = leaves(xml);
        let h = under(&l, "BSTR/RBIF");
        assert_eq!(h["RICD"], "12345678901234");
        assert_eq!(h["STCR"], "CW0001,CW0004");
        for a in &case.alerts {
            assert!(h["STCB"].contains(&a.alert.summary), "{}", h["STCB"]);
        }
        assert!(h["AOSP"].contains("TC-04 (TC-04 title)"), "{}", h["AOSP"]);
        assert!(h["AOSP"].ends_with(XSS), "{}", h["AOSP"]);
        // The pool's hub is the suspect, both as TC-04's subject and as the account
        // TC-01 found the merchant's settlements going to.
        assert_eq!(h["SETN"], "1");
        assert_eq!(h["TTNM"], "6");
        let s = under(&l, "BSTR/SEIFs/SEIF[0]");
        assert_eq!(s["CTAC"], "HUB001");
        assert_eq!(s["CSNM"], "H-HUB001");
        assert_eq!(s["SENM"], "Li  Lei");
        for (i, (tx, _)) in case.transactions.iter().enumerate() {
            let t = under(&l, &format!("BSTR/TSIFs/TSIF[{i}]"));
            assert_eq!(t["TICD"], tx.tx_id);
            assert_eq!(t["CTAC"], "HUB001");
            let (dir, other) = if tx.to == "HUB001" {
                (RECEIVE, &tx.from)
            } else {
                (PAY, &tx.to)
            };
            assert_eq!(t["TSDR"], dir, "{}", tx.tx_id);
            assert_eq!(t["TCIF/TCAC"], *other);
            let name = case
                .account(other)
                .and_then(|a| a.holder_name.clone())
                .unwrap_or_else(|| UNKNOWN.to_string());
            assert_eq!(t["TCIF/TCNM"], name);
            assert_eq!(t["CRTP"], tx.currency.code());
            assert_eq!(t["CRAT"], format_amount(tx.amount, tx.currency.exponent()));
            assert_eq!(t["TSTM"].len(), 14);
            assert!(t["TSTM"].bytes().all(|b| b.is_ascii_digit()));
        }
        let s1 = under(&l, "BSTR/TSIFs/TSIF[0]");
        assert_eq!(s1["TSTM"], "20260105100000");
        assert_eq!(s1["TCIF/CFIN"], "祥瑞银行");
        let o1 = under(&l, "BSTR/TSIFs/TSIF[2]");
        assert_eq!(o1["TCIF/TCNM"], XSS);
        assert!(o1["ROTF"].contains(XSS), "{}", o1["ROTF"]);
        // 16:30 UTC is 00:30 the next day in China.
        let o2 = under(&l, "BSTR/TSIFs/TSIF[3]");
        assert_eq!(o2["TSTM"], "20260106003000");
        let o3 = under(&l, "BSTR/TSIFs/TSIF[4]");
        assert_eq!(o3["TCIF/TCNM"], UNKNOWN);
        assert_eq!(o3["TCIF/CFIN"], UNKNOWN);
        let o4 = under(&l, "BSTR/TSIFs/TSIF[5]");
        assert_eq!(
            (o4["CRTP"].as_str(), o4["CRAT"].as_str()),
            ("USD", "1000.01")
        );
    }

    #[test]
    fn both_ends_suspect_gives_two_rows_and_no_end_suspect_one() {
        let suspects: BTreeSet<&str> = ["A", "B"].into_iter().collect();
        let t = fixture::tx("T", "2026-01-05T00:00:00Z", "A", "B", 1, "CNY");
        assert_eq!(sides(&t, &suspects), [("A", PAY, "B"), ("B", RECEIVE, "A")]);
        let t = fixture::tx("T", "2026-01-05T00:00:00Z", "X", "Y", 1, "CNY");
        assert_eq!(sides(&t, &suspects), [("Y", RECEIVE, "X")]);
    }

    #[test]
    fn every_rule_needs_a_registered_code() {
        let mut case = fixture::case();
        case.rule_codes.remove("TC-01");
        let err = write_camlmac(&fixture::entity(), &case, date(), 1).unwrap_err();
        assert!(err.to_string().contains("TC-01"), "{err}");
    }

    #[test]
    fn output_is_deterministic() {
        let a = write_camlmac(&fixture::entity(), &fixture::case(), date(), 1).unwrap();
        let b = write_camlmac(&fixture::entity(), &fixture::case(), date(), 1).unwrap();
        assert_eq!(a, b);
    }

    /// Checks packages: each within `limit`, named after their first file, files numbered
    /// on from `first`, each a complete report; returns the `TICD`s in order.
    fn check_packages(out: &[(String, Vec<u8>)], limit: usize, first: u32) -> Vec<String> {
        let mut seq = first;
        let mut ticds = Vec::new();
        for (name, bytes) in out {
            assert!(bytes.len() <= limit, "{name} is {} bytes", bytes.len());
            let files = unzip(bytes);
            assert_eq!(
                *name,
                format!("{}.ZIP", files[0].0.trim_end_matches(".XML"))
            );
            for (file, xml) in files {
                assert_eq!(
                    file,
                    file_name(ReportKind::Normal, "12345678901234", date(), seq)
                );
                seq += 1;
                let l = leaves(&xml);
                let rows: Vec<String> = l
                    .iter()
                    .filter(|(k, _)| k.ends_with("/TICD"))
                    .map(|(_, v)| v.clone())
                    .collect();
                let h = under(&l, "BSTR/RBIF");
                assert_eq!(h["TTNM"], rows.len().to_string());
                assert_eq!(h["RICD"], "12345678901234");
                assert!(!rows.is_empty());
                ticds.extend(rows);
            }
        }
        ticds
    }

    #[test]
    fn splits_into_files_and_packages_under_the_limit() {
        let mut case = fixture::case();
        let base = case.transactions.clone();
        for i in 0..40 {
            for (t, b) in &base {
                let mut t = t.clone();
                t.tx_id = format!("{}-{i}", t.tx_id);
                t.memo = Some(hex::encode(Sha256::digest(t.tx_id.as_bytes())));
                case.transactions.push((t, *b));
            }
        }
        let limit = 12_000;
        let out = write_packages(&fixture::entity(), &case, date(), 1, limit).unwrap();
        assert!(out.len() >= 2, "{} packages", out.len());
        let ticds = check_packages(&out, limit, 1);
        let want: Vec<String> = case
            .transactions
            .iter()
            .map(|(t, _)| t.tx_id.clone())
            .collect();
        assert_eq!(ticds, want);
    }

    #[test]
    fn a_hundred_thousand_transactions_split_at_five_megabytes() {
        use clearwatch_model::TxType;
        let mut case = fixture::case();
        let hub = "HUB001";
        let n = 100_000;
        let start = clearwatch_model::parse_rfc3339("2026-01-05T00:00:00Z").unwrap();
        let mut transactions = Vec::with_capacity(n);
        let mut accounts = case.accounts.clone();
        for i in 0..n {
            // Hash-derived memos and names compress about as badly as real ones.
            let h = hex::encode(Sha256::digest(i.to_string().as_bytes()));
            let payer = format!("PAYER{i:06}");
            let mut t = fixture::tx(
                &format!("T{i:07}"),
                "2026-01-05T00:00:00Z",
                &payer,
                hub,
                1_000 + i as i64,
                "CNY",
            );
            t.ts = start + i as i64 * 1_000;
            t.tx_type = TxType::Transfer;
            t.memo = Some(h.clone());
            transactions.push((t, 1));
            let name = hex::encode(Sha256::digest(h.as_bytes()));
            accounts.push(fixture::account(
                &payer,
                Some(&format!("Payer {}", &name[..32])),
                AccountKind::Personal,
                Role::Individual,
                "兴富银行",
            ));
        }
        accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        case.accounts = accounts;
        case.transactions = transactions;
        case.alerts = vec![fixture::alert("TC-04", "account", hub, &[], &[])];
        case.rule_codes = BTreeMap::from([(
            "TC-04".to_string(),
            BTreeMap::from([("stcr".to_string(), "CW0004".to_string())]),
        )]);
        let out = write_camlmac(&fixture::entity(), &case, date(), 1).unwrap();
        assert!(out.len() >= 2, "{} packages", out.len());
        let ticds = check_packages(&out, PACKAGE_LIMIT, 1);
        assert_eq!(ticds.len(), n);
        assert!(
            ticds
                .iter()
                .enumerate()
                .all(|(i, t)| *t == format!("T{i:07}"))
        );
    }
}
