//! goAML 5.0.1 suspicious-transaction report (STR) of a case: the reporting entity from
//! configuration, the alerts' summaries and the analyst's narrative as the reason, one
//! `transaction` per evidence transaction with both sides' accounts, and one indicator per
//! rule. Untrusted text is escaped, stripped of characters XML cannot carry and cut to the
//! schema's lengths; identifiers that do not fit are refused, never cut.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use chrono::{DateTime, Datelike, TimeZone, Utc};

use super::entity::{ReportingEntity, codes};
use super::xml::{Xml, clean, is_xml_char};
use super::{CaseExport, ExportError};
use clearwatch_model::{Account, AccountKind, Currency, Millis, Transaction, format_amount};

/// Longest `comments_type` text (`reason`, `transaction_description`, `comments`).
const COMMENTS_MAX: usize = 8000;
/// `sql_decimal` bounds, in major units.
const DECIMAL_MAX: i128 = 7_900_000_000_000_000;

/// Writes the goAML STR of `case`, dated `report_date`.
pub fn write_goaml(
    entity: &ReportingEntity,
    case: &CaseExport,
    report_date: DateTime<Utc>,
) -> Result<Vec<u8>, ExportError> {
    write_goaml_to(entity, case, report_date, Vec::new())
}

/// [`write_goaml`] streaming into `out`, which is returned. On error, `out` holds a
/// partial document and must be discarded.
pub fn write_goaml_to<W: Write>(
    entity: &ReportingEntity,
    case: &CaseExport,
    report_date: DateTime<Utc>,
    out: W,
) -> Result<W, ExportError> {
    if case.transactions.is_empty() {
        return Err(ExportError::Invalid(
            "a goAML STR needs at least one transaction; the case has no evidence transactions"
                .into(),
        ));
    }
    let local = Currency::from_code(&entity.currency_code_local).ok_or_else(|| {
        ExportError::Invalid(format!(
            "currency_code_local {:?} is not an ISO 4217 currency",
            entity.currency_code_local
        ))
    })?;
    let mut x = Xml::new(out, true);
    x.decl()?;
    x.open("report")?;
    x.text("rentity_id", &entity.rentity_id.to_string(), 11)?;
    x.text("rentity_branch", &entity.rentity_branch, 255)?;
    x.text("submission_code", &entity.submission_code, 1)?;
    x.text("report_code", "STR", 3)?;
    if let Some(reference) = entity_reference(case) {
        x.text("entity_reference", &reference, 255)?;
    }
    // Whole seconds: the report date is not evidence.
    let date = sql_date(report_date.timestamp() * 1000, entity)?;
    x.text("submission_date", &date, 40)?;
    x.text("currency_code_local", &entity.currency_code_local, 3)?;
    write_reporting_person(&mut x, entity)?;
    write_address(&mut x, "location", entity)?;
    x.text("reason", &reason(case), COMMENTS_MAX)?;

    let mut alerts_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for a in &case.alerts {
        for t in &a.alert.evidence.transactions {
            alerts_of.entry(t.as_str()).or_default().push(&a.alert.id);
        }
    }
    for (tx, _batch) in &case.transactions {
        let alerts = alerts_of
            .get(tx.tx_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        write_transaction(&mut x, entity, case, local, tx, alerts)?;
    }

    x.open("report_indicators")?;
    for code in indicators(case) {
        x.text("indicator", &code, 255)?;
    }
    x.close("report_indicators")?;
    x.close("report")?;
    x.finish()
}

/// The indicator codes: per distinct rule, its `codes.goaml`, else `-`. The generic
/// schema's `report_indicator_type` enumerates only `-`, so a rule id there would not
/// validate; rule ids are named in `reason` instead.
pub fn indicators(case: &CaseExport) -> BTreeSet<String> {
    let rules: BTreeSet<&str> = case
        .alerts
        .iter()
        .map(|a| a.alert.rule_id.as_str())
        .collect();
    let mut out: BTreeSet<String> = rules
        .into_iter()
        .map(|r| {
            case.rule_codes
                .get(r)
                .and_then(|c| c.get("goaml"))
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
                .unwrap_or("-")
                .to_string()
        })
        .collect();
    if out.is_empty() {
        out.insert("-".into());
    }
    out
}

fn entity_reference(case: &CaseExport) -> Option<String> {
    let first = &case.alerts.first()?.alert.id;
    Some(match case.alerts.len() {
        1 => first.clone(),
        n => format!("{first} (+{} more alerts)", n - 1),
    })
}

/// `reason`: one line per alert, then the narrative; when both do not fit, the narrative
/// keeps at least half of the space and the alert list ends with a count of the rest.
fn reason(case: &CaseExport) -> String {
    let lines: Vec<String> = case
        .alerts
        .iter()
        .map(|a| {
            let a = &a.alert;
            format!(
                "- [{}] {} (alert {}, severity {}, score {}): {}",
                a.rule_id,
                a.title.trim(),
                a.id,
                a.severity,
                a.score,
                a.summary.trim()
            )
        })
        .collect();
    let narrative = case
        .narrative
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| format!("Analyst's narrative:\n{n}"));
    let chars = |s: &str| s.chars().count();
    let more = |n: usize| format!("\n… and {n} more alerts (see the evidence bundle)");
    let sep = if narrative.is_some() { 2 } else { 0 };
    let narrative_len = narrative.as_deref().map_or(0, chars);
    let alert_room = COMMENTS_MAX - sep - narrative_len.min(COMMENTS_MAX / 2);
    let mut text = String::from("Alerts:");
    let mut used = chars(&text);
    for (i, line) in lines.iter().enumerate() {
        let after = lines.len() - i - 1;
        let tail = if after > 0 { chars(&more(after)) } else { 0 };
        if used + 1 + chars(line) + tail > alert_room {
            let m = more(lines.len() - i);
            used += chars(&m);
            text.push_str(&m);
            break;
        }
        text.push('\n');
        text.push_str(line);
        used += 1 + chars(line);
    }
    if let Some(n) = narrative {
        text.push_str("\n\n");
        text.push_str(&clean(&n, COMMENTS_MAX.saturating_sub(used + sep)));
    }
    text
}

fn write_reporting_person<W: Write>(
    x: &mut Xml<W>,
    entity: &ReportingEntity,
) -> Result<(), ExportError> {
    let p = &entity.reporting_person;
    x.open("reporting_person")?;
    if let Some(t) = &p.title {
        x.text("title", t, 30)?;
    }
    x.text("first_name", &p.first_name, 100)?;
    x.text("last_name", &p.last_name, 100)?;
    if let Some(ph) = &p.phone {
        x.open("phones")?;
        x.open("phone")?;
        x.text("tph_contact_type", &ph.contact_type, 1)?;
        x.text("tph_communication_type", &ph.communication_type, 1)?;
        x.text("tph_country_prefix", &ph.country_prefix, 4)?;
        x.text("tph_number", &ph.number, 50)?;
        x.close("phone")?;
        x.close("phones")?;
    }
    if let Some(e) = &p.email {
        x.text("email", e, 255)?;
    }
    if let Some(o) = &p.occupation {
        x.text("occupation", o, 255)?;
    }
    x.close("reporting_person")
}

fn write_address<W: Write>(
    x: &mut Xml<W>,
    tag: &str,
    entity: &ReportingEntity,
) -> Result<(), ExportError> {
    let l = &entity.location;
    x.open(tag)?;
    x.text("address_type", &l.address_type, 1)?;
    x.text("address", &l.address, 100)?;
    if let Some(t) = &l.town {
        x.text("town", t, 255)?;
    }
    x.text("city", &l.city, 255)?;
    if let Some(z) = &l.zip {
        x.text("zip", z, 10)?;
    }
    x.text("country_code", &l.country_code, 2)?;
    if let Some(s) = &l.state {
        x.text("state", s, 255)?;
    }
    x.close(tag)
}

/// A transaction not in the local currency: its own currency, amount and the rate used.
struct Foreign {
    code: &'static str,
    amount: String,
    rate: String,
}

fn write_transaction<W: Write>(
    x: &mut Xml<W>,
    entity: &ReportingEntity,
    case: &CaseExport,
    local: Currency,
    tx: &Transaction,
    alerts: &[&str],
) -> Result<(), ExportError> {
    check_id("transaction id", &tx.tx_id, 100)?;
    let (amount_local, foreign) = amounts(entity, local, tx)?;
    x.open("transaction")?;
    x.text("transactionnumber", &tx.tx_id, 100)?;
    x.text(
        "transaction_location",
        tx.region.as_deref().unwrap_or(""),
        255,
    )?;
    x.text("transaction_description", &description(tx), COMMENTS_MAX)?;
    x.text("date_transaction", &sql_date(tx.ts, entity)?, 40)?;
    x.text(
        "transmode_code",
        entity.transmode(tx.tx_type, tx.channel.as_deref()),
        2,
    )?;
    if let Some(ch) = nonempty(tx.channel.as_deref()) {
        x.text("transmode_comment", ch, 50)?;
    }
    x.text("amount_local", &amount_local, 40)?;
    for side in [Side::From, Side::To] {
        let id = match side {
            Side::From => &tx.from,
            Side::To => &tx.to,
        };
        let unregistered;
        let account = match case.account(id) {
            Some(a) => a,
            None => {
                unregistered = Account::unregistered(id);
                &unregistered
            }
        };
        write_side(x, entity, side, account, foreign.as_ref())?;
    }
    if !alerts.is_empty() {
        x.text(
            "comments",
            &format!("Evidence of alerts: {}", alerts.join(", ")),
            COMMENTS_MAX,
        )?;
    }
    x.close("transaction")
}

/// `amount_local`, and the foreign-currency part when the transaction is not local.
fn amounts(
    entity: &ReportingEntity,
    local: Currency,
    tx: &Transaction,
) -> Result<(String, Option<Foreign>), ExportError> {
    let in_range =
        |minor: i64, exp: u32| (i128::from(minor) / 10i128.pow(exp)).abs() <= DECIMAL_MAX;
    let out_of_range = || {
        ExportError::Invalid(format!(
            "transaction {}: amount {} is beyond goAML's sql_decimal range",
            tx.tx_id, tx.amount
        ))
    };
    if tx.currency == local {
        if !in_range(tx.amount, local.exponent()) {
            return Err(out_of_range());
        }
        return Ok((format_amount(tx.amount, local.exponent()), None));
    }
    let code = tx.currency.code();
    if !codes::CURRENCIES.contains(&code) {
        return Err(ExportError::Invalid(format!(
            "transaction {}: currency {code} is not in goAML's currency_type",
            tx.tx_id
        )));
    }
    let rate = entity.goaml.exchange_rates.get(code).ok_or_else(|| {
        ExportError::Invalid(format!(
            "transaction {} is in {code}, not the local currency {local}; set \
             goaml.exchange_rates.{code} in the reporting entity",
            tx.tx_id
        ))
    })?;
    let converted = rate
        .convert(tx.amount, tx.currency.exponent(), local.exponent())
        .filter(|m| in_range(*m, local.exponent()))
        .ok_or_else(out_of_range)?;
    if !in_range(tx.amount, tx.currency.exponent()) {
        return Err(out_of_range());
    }
    Ok((
        format_amount(converted, local.exponent()),
        Some(Foreign {
            code,
            amount: format_amount(tx.amount, tx.currency.exponent()),
            rate: rate.to_decimal(),
        }),
    ))
}

fn description(tx: &Transaction) -> String {
    let mut d = tx.tx_type.as_str().to_string();
    if let Some(m) = nonempty(tx.merchant_id.as_deref()) {
        d.push_str(&format!(" for merchant {m}"));
    }
    if let Some(ch) = nonempty(tx.channel.as_deref()) {
        d.push_str(&format!(" via {ch}"));
    }
    if let Some(memo) = nonempty(tx.memo.as_deref()) {
        d.push_str(&format!("; memo: {memo}"));
    }
    d
}

#[derive(Clone, Copy)]
enum Side {
    From,
    To,
}

fn write_side<W: Write>(
    x: &mut Xml<W>,
    entity: &ReportingEntity,
    side: Side,
    account: &Account,
    foreign: Option<&Foreign>,
) -> Result<(), ExportError> {
    let (tag, p) = match side {
        Side::From => ("t_from", "from"),
        Side::To => ("t_to", "to"),
    };
    check_id("account id", &account.account_id, 255)?;
    x.open(tag)?;
    x.text(&format!("{p}_funds_code"), &entity.goaml.funds_code, 2)?;
    if let Some(f) = foreign {
        let t = format!("{p}_foreign_currency");
        x.open(&t)?;
        x.text("foreign_currency_code", f.code, 3)?;
        x.text("foreign_amount", &f.amount, 40)?;
        x.text("foreign_exchange_rate", &f.rate, 40)?;
        x.close(&t)?;
    }
    let t = format!("{p}_account");
    x.open(&t)?;
    write_account(x, entity, account)?;
    x.close(&t)?;
    x.text(&format!("{p}_country"), &entity.location.country_code, 2)?;
    x.close(tag)
}

/// The body of a `t_account`: institution, number, holder (an entity for corporate
/// accounts, a signatory person for personal ones) and what clearwatch knows of its role.
fn write_account<W: Write>(
    x: &mut Xml<W>,
    entity: &ReportingEntity,
    a: &Account,
) -> Result<(), ExportError> {
    let institution = nonempty(a.institution.as_deref());
    x.text("institution_name", institution.unwrap_or("Unknown"), 255)?;
    x.text(
        "institution_code",
        entity.institution_code_of(institution),
        50,
    )?;
    x.text("account", &a.account_id, 255)?;
    let name = nonempty(a.holder_name.as_deref());
    if let Some(n) = name {
        x.text("account_name", n, 255)?;
    }
    if let Some(h) = nonempty(a.holder_id.as_deref()).filter(|h| h.chars().count() <= 30) {
        x.text("client_number", h, 30)?;
    }
    match (a.kind, name) {
        (Some(AccountKind::Corporate), Some(n)) => {
            x.open("t_entity")?;
            x.text("name", n, 255)?;
            x.close("t_entity")?;
        }
        (Some(AccountKind::Personal), Some(n)) => {
            let (first, last) = split_name(n);
            x.open("signatory")?;
            x.open("t_person")?;
            x.text("first_name", &first, 100)?;
            x.text("last_name", &last, 100)?;
            x.close("t_person")?;
            x.close("signatory")?;
        }
        _ => {}
    }
    let mut c = format!(
        "clearwatch role: {}; licensed: {}",
        a.role,
        if a.licensed { "yes" } else { "no" }
    );
    if let Some(k) = a.kind {
        c.push_str(&format!("; kind: {k}"));
    }
    if let Some(h) = nonempty(a.holder_id.as_deref()) {
        c.push_str(&format!("; holder id: {h}"));
    }
    if let Some(r) = nonempty(a.region.as_deref()) {
        c.push_str(&format!("; region: {r}"));
    }
    x.text("comments", &c, COMMENTS_MAX)
}

/// Splits a holder name into goAML first and last name: on whitespace, the last word is
/// the last name; a name without spaces (as Chinese names are written) is not guessed at:
/// it all goes to `last_name` and `first_name` is `-`. `account_name` keeps it whole.
pub fn split_name(full: &str) -> (String, String) {
    let full = full.trim();
    match full.rsplit_once(char::is_whitespace) {
        Some((first, last)) if !first.trim().is_empty() => {
            (first.trim().to_string(), last.to_string())
        }
        _ => ("-".to_string(), full.to_string()),
    }
}

/// A goAML date-time: local time of the entity's zone without offset, milliseconds only
/// when present.
fn sql_date(ts: Millis, entity: &ReportingEntity) -> Result<String, ExportError> {
    let t = Utc
        .timestamp_millis_opt(ts)
        .single()
        .ok_or_else(|| ExportError::Invalid(format!("timestamp {ts} is out of range")))?
        .with_timezone(&entity.timezone);
    if !(1753..=9999).contains(&t.year()) {
        return Err(ExportError::Invalid(format!(
            "date {t} is outside goAML's years 1753..9999"
        )));
    }
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(match ts.rem_euclid(1000) {
        0 => base,
        ms => format!("{base}.{ms:03}"),
    })
}

fn check_id(what: &str, id: &str, max: usize) -> Result<(), ExportError> {
    let n = id.chars().count();
    if n == 0 || n > max || !id.chars().all(is_xml_char) {
        return Err(ExportError::Invalid(format!(
            "{what} {id:?} cannot be reported: goAML takes 1 to {max} characters of XML text"
        )));
    }
    Ok(())
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use chrono::TimeZone;

    use super::*;
    use crate::fixture::{self, XSS, leaves, under};

    fn report_date() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 20, 1, 2, 3).unwrap() + chrono::Duration::milliseconds(456)
    }

    fn report() -> Vec<u8> {
        write_goaml(&fixture::entity(), &fixture::case(), report_date()).unwrap()
    }

    fn xsd() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/schemas/goaml-5.0.1.xsd")
    }

    fn xmllint_installed() -> bool {
        Command::new("xmllint").arg("--version").output().is_ok()
    }

    fn xmllint(xml: &[u8]) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.xml");
        std::fs::write(&file, xml).unwrap();
        let out = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(xsd())
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), text)
    }

    #[test]
    fn validates_against_the_goaml_schema() {
        if !xmllint_installed() {
            eprintln!("xmllint is not installed: skipping the schema check");
            return;
        }
        assert!(xsd().exists(), "{} is missing", xsd().display());
        let (ok, msg) = xmllint(&report());
        assert!(ok, "xmllint rejected the report:\n{msg}");
        assert!(msg.contains("validates"), "{msg}");

        // The checker itself rejects a broken report.
        let broken = String::from_utf8(report()).unwrap().replace(
            "<report_code>STR</report_code>",
            "<report_code>XYZ</report_code>",
        );
        let (ok, msg) = xmllint(broken.as_bytes());
        assert!(!ok, "a wrong report_code validated:\n{msg}");
    }

    #[test]
    fn a_report_with_cut_text_and_accounts_of_every_shape_validates() {
        if !xmllint_installed() {
            return;
        }
        let mut case = fixture::case();
        case.narrative = Some("n".repeat(20_000));
        case.transactions[0].0.memo = Some("m".repeat(9_000));
        case.accounts[0].holder_name = Some("x ".repeat(400));
        case.accounts[1].institution = None;
        case.accounts[1].holder_name = None;
        case.accounts[2].kind = None;
        let mut person = fixture::entity();
        person.reporting_person.phone = Some(crate::entity::Phone {
            contact_type: "-".into(),
            communication_type: "-".into(),
            country_prefix: "86".into(),
            number: "2155550100".into(),
        });
        person.reporting_person.title = Some("Mr".into());
        person.reporting_person.occupation = Some("MLRO".into());
        person.location.state = Some("Shanghai".into());
        person.location.town = Some("Pudong".into());
        let xml = write_goaml(&person, &case, report_date()).unwrap();
        let (ok, msg) = xmllint(&xml);
        assert!(ok, "xmllint rejected the report:\n{msg}");
    }

    #[test]
    fn header_holds_the_entity_and_reason() {
        let l = leaves(&report());
        let top = under(&l, "report");
        assert_eq!(top["rentity_id"], "1024");
        assert_eq!(top["rentity_branch"], "Head office");
        assert_eq!(top["submission_code"], "E");
        assert_eq!(top["report_code"], "STR");
        assert_eq!(top["submission_date"], "2026-01-20T09:02:03");
        assert_eq!(top["currency_code_local"], "CNY");
        assert_eq!(top["reporting_person/first_name"], "Wei");
        assert_eq!(top["reporting_person/email"], "mlro@example.cn");
        assert_eq!(top["location/country_code"], "CN");
        let case = fixture::case();
        let reason = &top["reason"];
        for a in &case.alerts {
            assert!(reason.contains(&a.alert.summary), "{reason}");
            assert!(reason.contains(&a.alert.id), "{reason}");
        }
        assert!(
            reason.contains(case.narrative.as_deref().unwrap()),
            "{reason}"
        );
        assert!(top["entity_reference"].starts_with("TC-04-"));
    }

    #[test]
    fn transactions_match_the_case_field_by_field() {
        let case = fixture::case();
        let entity = fixture::entity();
        let l = leaves(&report());
        assert_eq!(
            l.iter()
                .filter(|(k, _)| k.ends_with("/transactionnumber"))
                .count(),
            case.transactions.len()
        );
        for (i, (tx, _)) in case.transactions.iter().enumerate() {
            let t = under(&l, &format!("report/transaction[{i}]"));
            assert_eq!(t["transactionnumber"], tx.tx_id);
            let local = chrono::DateTime::from_timestamp_millis(tx.ts)
                .unwrap()
                .with_timezone(&entity.timezone)
                .naive_local();
            let written = chrono::NaiveDateTime::parse_from_str(
                &t["date_transaction"],
                "%Y-%m-%dT%H:%M:%S%.f",
            )
            .unwrap();
            assert_eq!(written, local, "{}", tx.tx_id);
            assert_eq!(t["t_from/from_account/account"], tx.from);
            assert_eq!(t["t_to/to_account/account"], tx.to);
            assert_eq!(t["t_from/from_country"], "CN");
            assert_eq!(t["transaction_location"], "GD");
            assert_eq!(t["transmode_code"], "-");
            if tx.currency.code() == "CNY" {
                assert_eq!(t["amount_local"], format_amount(tx.amount, 2));
                assert!(!t.contains_key("t_from/from_foreign_currency/foreign_amount"));
            } else {
                // 1000.01 USD at 7.1 = 7100.071 CNY → 7100.07.
                assert_eq!(t["amount_local"], "7100.07");
                for side in ["t_from/from", "t_to/to"] {
                    let f = format!("{side}_foreign_currency");
                    assert_eq!(t[&format!("{f}/foreign_currency_code")], "USD");
                    assert_eq!(t[&format!("{f}/foreign_amount")], "1000.01");
                    assert_eq!(t[&format!("{f}/foreign_exchange_rate")], "7.1");
                }
            }
            for (side, id) in [
                ("t_from/from_account", &tx.from),
                ("t_to/to_account", &tx.to),
            ] {
                match case.account(id) {
                    Some(a) => {
                        assert_eq!(
                            t[&format!("{side}/institution_name")],
                            a.institution.clone().unwrap()
                        );
                        assert_eq!(
                            t[&format!("{side}/account_name")],
                            a.holder_name.clone().unwrap()
                        );
                        assert_eq!(
                            t[&format!("{side}/client_number")],
                            a.holder_id.clone().unwrap()
                        );
                    }
                    None => {
                        assert_eq!(t[&format!("{side}/institution_name")], "Unknown");
                        assert_eq!(t[&format!("{side}/institution_code")], "-");
                        assert!(!t.contains_key(&format!("{side}/account_name")));
                    }
                }
            }
        }
        let s1 = under(&l, "report/transaction[0]");
        assert_eq!(s1["date_transaction"], "2026-01-05T10:00:00");
        assert_eq!(s1["transmode_comment"], "acquiring");
        assert_eq!(
            s1["transaction_description"],
            "settlement for merchant M00000001 via acquiring"
        );
        // The hub is a personal account: a signatory, its name split on the space.
        assert_eq!(s1["t_to/to_account/signatory/t_person/first_name"], "Li");
        assert_eq!(s1["t_to/to_account/signatory/t_person/last_name"], "Lei");
        assert_eq!(s1["t_to/to_account/institution_code"], "XYBKCNSH");
        // The acquirer is a company: a t_entity.
        assert_eq!(
            s1["t_from/from_account/t_entity/name"],
            "Acquirer Bank & Co"
        );
        assert_eq!(s1["t_from/from_account/institution_code"], "-");
        let s2 = under(&l, "report/transaction[1]");
        assert_eq!(s2["date_transaction"], "2026-01-05T11:00:00.250");
        assert_eq!(s2["amount_local"], "8000.50");
        let o2 = under(&l, "report/transaction[3]");
        assert_eq!(
            o2["t_to/to_account/t_entity/name"],
            "义乌市灿瑞文化用品有限公司"
        );
        assert!(o2["comments"].contains("TC-04-"), "{:?}", o2["comments"]);
        // A Chinese name is not split.
        let o4 = under(&l, "report/transaction[5]");
        assert_eq!(o4["t_to/to_account/signatory/t_person/first_name"], "-");
        assert_eq!(o4["t_to/to_account/signatory/t_person/last_name"], "高倩玉");
    }

    #[test]
    fn untrusted_text_is_escaped_and_cleaned() {
        let xml = report();
        let text = String::from_utf8(xml.clone()).unwrap();
        assert!(!text.contains("<img"), "unescaped markup in:\n{text}");
        assert!(text.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!text.contains('\u{1}') && !text.contains('\u{7}'));
        let l = leaves(&xml);
        let o1 = under(&l, "report/transaction[2]");
        assert_eq!(o1["t_to/to_account/account_name"], XSS);
        assert_eq!(
            o1["transaction_description"],
            format!("transfer via qr; memo: {XSS} & \u{FFFD}bell\u{FFFD}")
        );
        assert!(under(&l, "report")["reason"].ends_with(XSS));
    }

    #[test]
    fn long_text_is_cut_to_the_schema_lengths() {
        let mut case = fixture::case();
        case.transactions[0].0.memo = Some("m".repeat(9_000));
        case.accounts[0].holder_name = Some("名".repeat(300));
        case.narrative = Some("n".repeat(20_000));
        for _ in 0..300 {
            let a = case.alerts[0].clone();
            case.alerts.push(a);
        }
        let xml = write_goaml(&fixture::entity(), &case, report_date()).unwrap();
        let l = leaves(&xml);
        let len = |s: &str| s.chars().count();
        let top = under(&l, "report");
        let reason = &top["reason"];
        assert!(len(reason) <= 8000, "{}", len(reason));
        assert!(reason.contains("more alerts (see the evidence bundle)"));
        assert!(
            reason.contains(&"n".repeat(3000)),
            "the narrative keeps half the space"
        );
        assert!(reason.ends_with('…'));
        let s1 = under(&l, "report/transaction[0]");
        assert_eq!(len(&s1["transaction_description"]), 8000);
        assert!(s1["transaction_description"].ends_with('…'));
        let o4 = under(&l, "report/transaction[5]");
        assert_eq!(len(&o4["t_to/to_account/account_name"]), 255);
        assert_eq!(
            len(&o4["t_to/to_account/signatory/t_person/last_name"]),
            100
        );
    }

    #[test]
    fn indicators_come_from_the_rules_codes() {
        let l = leaves(&report());
        let ind: Vec<&str> = l
            .iter()
            .filter(|(k, _)| k == "report/report_indicators/indicator")
            .map(|(_, v)| v.as_str())
            .collect();
        // TC-01 maps to `-`, TC-04 has no goaml code: one `-`.
        assert_eq!(ind, ["-"]);
        let mut case = fixture::case();
        case.rule_codes
            .get_mut("TC-04")
            .unwrap()
            .insert("goaml".into(), "FIU7".into());
        assert_eq!(
            indicators(&case).into_iter().collect::<Vec<_>>(),
            ["-", "FIU7"]
        );
    }

    #[test]
    fn refuses_what_it_cannot_report_faithfully() {
        let entity = fixture::entity();
        let mut case = fixture::case();
        case.transactions[5].0.currency = Currency::from_code("EUR").unwrap();
        let err = write_goaml(&entity, &case, report_date()).unwrap_err();
        assert!(err.to_string().contains("exchange_rates.EUR"), "{err}");

        let mut case = fixture::case();
        case.transactions[0].0.tx_id = "T".repeat(101);
        let err = write_goaml(&entity, &case, report_date()).unwrap_err();
        assert!(err.to_string().contains("1 to 100"), "{err}");

        let mut case = fixture::case();
        case.transactions.clear();
        assert!(write_goaml(&entity, &case, report_date()).is_err());
    }

    #[test]
    fn names_split_only_on_whitespace() {
        assert_eq!(split_name("Li Lei"), ("Li".into(), "Lei".into()));
        assert_eq!(
            split_name(" Anna Maria  Schmidt "),
            ("Anna Maria".into(), "Schmidt".into())
        );
        assert_eq!(split_name("高倩玉"), ("-".into(), "高倩玉".into()));
    }
}
