//! A small realistic case (a fund pool) and an XML reader, shared by the report tests.

use std::collections::BTreeMap;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::CaseExport;
use crate::entity::ReportingEntity;
use clearwatch_model::{Account, AccountKind, Currency, Role, Transaction, TxType, parse_rfc3339};
use clearwatch_model::{Alert, Evidence, Severity, StoredAlert, Subject, Window};

pub const XSS: &str = "<img src=x onerror=alert(1)>";

pub fn entity() -> ReportingEntity {
    let text = "rentity_id: 1024\nrentity_branch: Head office\ncurrency_code_local: CNY\n\
        timezone: Asia/Shanghai\n\
        reporting_person: { first_name: Wei, last_name: Zhang, email: mlro@example.cn }\n\
        location: { address: 100 Century Avenue, city: Shanghai, zip: '200120', country_code: CN }\n\
        institution_code: '12345678901234'\n\
        goaml: { institution_codes: { 信宇银行: XYBKCNSH }, exchange_rates: { USD: '7.1' } }\n";
    ReportingEntity::parse(text, Path::new("test-entity.yaml")).unwrap()
}

pub fn account(
    id: &str,
    name: Option<&str>,
    kind: AccountKind,
    role: Role,
    institution: &str,
) -> Account {
    Account {
        account_id: id.into(),
        holder_id: Some(format!("H-{id}")),
        holder_name: name.map(str::to_string),
        kind: Some(kind),
        role,
        licensed: role == Role::Acquirer,
        institution: Some(institution.into()),
        region: Some("GD".into()),
    }
}

pub fn tx(id: &str, ts: &str, from: &str, to: &str, amount: i64, cur: &str) -> Transaction {
    Transaction {
        tx_id: id.into(),
        ts: parse_rfc3339(ts).unwrap(),
        from: from.into(),
        to: to.into(),
        amount,
        currency: Currency::from_code(cur).unwrap(),
        tx_type: TxType::Transfer,
        merchant_id: None,
        channel: None,
        region: Some("GD".into()),
        memo: None,
    }
}

pub fn alert(
    rule: &str,
    kind: &str,
    subject: &str,
    txs: &[&str],
    accounts: &[&str],
) -> StoredAlert {
    let subject = Subject {
        kind: kind.parse().expect("account or merchant"),
        id: subject.into(),
    };
    let window = Window {
        from: parse_rfc3339("2026-01-05T00:00:00Z").unwrap(),
        until: parse_rfc3339("2026-01-12T00:00:00Z").unwrap(),
    };
    let alert = Alert {
        id: Alert::make_id(rule, "v1", &subject, window),
        rule_id: rule.into(),
        rule_version: "v1".into(),
        title: format!("{rule} title"),
        summary: format!("{rule} found {} on {}.", txs.len(), subject.id),
        subject,
        window,
        severity: Severity::High,
        score: 80,
        currency: Some("CNY".into()),
        metrics: BTreeMap::new(),
        evidence: Evidence {
            transactions: txs.iter().map(|t| t.to_string()).collect(),
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
        },
    };
    StoredAlert {
        alert,
        status: clearwatch_model::case::Status::New,
        assignee: None,
        created_at: "2026-01-12T00:00:00Z".into(),
        updated_at: "2026-01-12T00:00:00Z".into(),
        version: 1,
    }
}

/// A pool: an acquirer settles a merchant's money into an agent's personal account,
/// which pays it out within hours to people, a company, an unregistered account and,
/// in dollars, the merchant's operator.
pub fn case() -> CaseExport {
    use AccountKind::*;
    let mut accounts = vec![
        account(
            "A00000001",
            Some("高倩玉"),
            Personal,
            Role::Merchant,
            "信宇银行",
        ),
        account(
            "ACQ001",
            Some("Acquirer Bank & Co"),
            Corporate,
            Role::Acquirer,
            "祥瑞银行",
        ),
        account("HUB001", Some("Li  Lei"), Personal, Role::Agent, "信宇银行"),
        account("P001", Some(XSS), Personal, Role::Individual, "兴富银行"),
        account(
            "P002",
            Some("义乌市灿瑞文化用品有限公司"),
            Corporate,
            Role::Individual,
            "兴富银行",
        ),
    ];
    accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let mut s1 = tx(
        "S1",
        "2026-01-05T02:00:00Z",
        "ACQ001",
        "HUB001",
        1_000_000,
        "CNY",
    );
    s1.tx_type = TxType::Settlement;
    s1.merchant_id = Some("M00000001".into());
    s1.channel = Some("acquiring".into());
    let mut s2 = tx(
        "S2",
        "2026-01-05T03:00:00.250Z",
        "ACQ001",
        "HUB001",
        800_050,
        "CNY",
    );
    s2.tx_type = TxType::Settlement;
    s2.merchant_id = Some("M00000001".into());
    let mut o1 = tx(
        "O1",
        "2026-01-05T05:00:00Z",
        "HUB001",
        "P001",
        300_000,
        "CNY",
    );
    o1.memo = Some(format!("{XSS} & \u{1}bell\u{7}"));
    o1.channel = Some("qr".into());
    let o2 = tx(
        "O2",
        "2026-01-05T16:30:00Z",
        "HUB001",
        "P002",
        450_000,
        "CNY",
    );
    let o3 = tx(
        "O3",
        "2026-01-05T17:00:00Z",
        "HUB001",
        "P003",
        200_000,
        "CNY",
    );
    let o4 = tx(
        "O4",
        "2026-01-05T18:00:00Z",
        "HUB001",
        "A00000001",
        100_001,
        "USD",
    );
    let transactions: Vec<(Transaction, i64)> = [s1, s2, o1, o2, o3, o4]
        .into_iter()
        .map(|t| (t, 1))
        .collect();
    let pool = alert(
        "TC-04",
        "account",
        "HUB001",
        &["O1", "O2", "O3", "O4", "S1", "S2"],
        &["A00000001", "ACQ001", "HUB001", "P001", "P002", "P003"],
    );
    let settle = alert("TC-01", "merchant", "M00000001", &["S1", "S2"], &["HUB001"]);
    let mut rule_codes = BTreeMap::new();
    rule_codes.insert(
        "TC-04".to_string(),
        BTreeMap::from([("stcr".to_string(), "CW0004".to_string())]),
    );
    rule_codes.insert(
        "TC-01".to_string(),
        BTreeMap::from([
            ("stcr".to_string(), "CW0001".to_string()),
            ("goaml".to_string(), "-".to_string()),
        ]),
    );
    CaseExport {
        alerts: vec![pool, settle],
        rule_codes,
        transactions,
        accounts,
        narrative: Some(format!(
            "HUB001 took the merchant's settlements and paid them out within hours. {XSS}"
        )),
        ..CaseExport::default()
    }
}

/// Every leaf element as (path, text), in document order; `transaction` and `TSIF`
/// steps carry their index, e.g. `report/transaction[2]/amount_local`.
pub fn leaves(xml: &[u8]) -> Vec<(String, String)> {
    let xml = std::str::from_utf8(xml).expect("UTF-8");
    let mut r = Reader::from_str(xml);
    let mut stack: Vec<(String, bool)> = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut text = String::new();
    let mut out = Vec::new();
    loop {
        match r.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                if let Some(parent) = stack.last_mut() {
                    parent.1 = false;
                }
                let mut name = e.name().as_ref().to_string();
                if name == "transaction" || name == "TSIF" || name == "SEIF" {
                    let n = counts.entry(name.clone()).or_default();
                    name = format!("{name}[{n}]");
                    *n += 1;
                }
                stack.push((name, true));
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(g) => match g.resolve_char_ref().expect("char ref") {
                Some(c) => text.push(c),
                None => text.push(match &*g {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    other => panic!("unknown entity {other}"),
                }),
            },
            Event::End(_) => {
                let path = stack
                    .iter()
                    .map(|s| s.0.as_str())
                    .collect::<Vec<_>>()
                    .join("/");
                if stack.pop().is_some_and(|s| s.1) {
                    out.push((path, std::mem::take(&mut text)));
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

/// The leaf texts under `prefix/`, keyed by the rest of their path.
pub fn under(leaves: &[(String, String)], prefix: &str) -> BTreeMap<String, String> {
    let p = format!("{prefix}/");
    leaves
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&p).map(|rest| (rest.to_string(), v.clone())))
        .collect()
}
