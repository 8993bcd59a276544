//! What each fuzz target does with its input, shared by the `cargo fuzz` targets in
//! `fuzz_targets/` and by the `it` test that replays every kept input on each run. A
//! target may refuse its input with an error; it must never panic, hang or grow without
//! bound.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clearwatch_ingest::{FileFormat, Profile, profile::BUILTIN};
use clearwatch_rules::expr::{self, Env, Schema, Ty, Val, VarId};
use clearwatch_rules::load::{RuleSet, compile_text, load_shipped};
use clearwatch_rules::scope;

/// What a fuzz target runs on one input.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name: the folders of `corpus/` and `regressions/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("csv", csv),
    ("jsonl", jsonl),
    ("profile", profile),
    ("rule", rule),
    ("cel", cel),
    ("evidence", evidence),
];

/// A file of this process's own that each input is written to: the readers take paths.
fn scratch(extension: &str, data: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "clearwatch-fuzz-{}-{:?}.{extension}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut f = std::fs::File::create(&path).expect("the temporary folder is writable");
    f.write_all(data).expect("the temporary folder is writable");
    path
}

/// Profiles of bank exports beside the shipped ones: a declared encoding, local times in
/// zones with and without daylight saving time, statements with a debit/credit column, a
/// signed amount, or two amount columns; amounts with separators and symbols.
const EXPORTS: &[&str] = &[
    "name: gbk-statement\nencoding: gbk\ntransactions:\n  fields:\n    tx_id: id\n    \
     ts: { template: \"{date} {time}\" }\n    amount: amount\n    currency: { value: CNY }\n    \
     type: { value: transfer }\n  timestamp: { format: \"%Y/%m/%d %H:%M:%S\", timezone: Asia/Shanghai }\n  \
     amount_format: { thousands: \",\", symbols: [\"￥\", \"人民币\"] }\n  statement:\n    \
     account: { value: \"6222020000000001\" }\n    counterparty: other\n    \
     direction: { column: dc, debit: [借, D], credit: [贷, C] }\n",
    "name: signed\nencoding: utf-16le\ntransactions:\n  fields:\n    ts: ts\n    amount: amount\n    \
     currency: currency\n    type: { value: transfer }\n  timestamp: { format: \"%d.%m.%Y %H:%M\", timezone: Europe/Berlin }\n  \
     amount_format: { decimal: \",\", thousands: \".\" }\n  statement:\n    account: account\n    counterparty: other\n",
    "name: two-columns\nencoding: gb18030\ntransactions:\n  fields:\n    ts: ts\n    \
     currency: { value: CNY }\n    type: type\n  timestamp: { format: \"%Y-%m-%d %H:%M\", timezone: America/New_York }\n  \
     statement:\n    account: { value: A }\n    counterparty: other\n    debit_amount: out\n    credit_amount: in\n",
];

fn profiles() -> &'static [Profile] {
    static ALL: OnceLock<Vec<Profile>> = OnceLock::new();
    ALL.get_or_init(|| {
        let shipped = BUILTIN
            .iter()
            .map(|(name, _)| Profile::load(name).expect("shipped profiles parse"));
        let exports = EXPORTS.iter().map(|text| {
            Profile::parse(text, Path::new("export.yaml")).expect("export profiles parse")
        });
        shipped.chain(exports).collect()
    })
}

/// Reads `data` as each table of a profile chosen by its first byte.
fn read_table(data: &[u8], format: FileFormat) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let all = profiles();
    let mut profile = all[usize::from(pick) % all.len()].clone();
    profile.format = Some(format);
    let path = scratch("txt", rest);
    let _ = clearwatch_ingest::read_transactions(&path, &profile, |_, _, _| {}, |_| {});
    if profile.accounts.is_some() {
        let _ = clearwatch_ingest::read_accounts(&path, &profile, |_, _| {}, |_| {});
    }
    if profile.merchants.is_some() {
        let _ = clearwatch_ingest::read_merchants(&path, &profile, |_, _| {}, |_| {});
    }
    let _ = std::fs::remove_file(path);
}

/// A CSV file read through each shipped profile.
pub fn csv(data: &[u8]) {
    read_table(data, FileFormat::Csv);
}

/// A JSON Lines file read through each shipped profile.
pub fn jsonl(data: &[u8]) {
    read_table(data, FileFormat::Jsonl);
}

/// A mapping profile, parsed and compiled against a header of the columns it names.
pub fn profile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(profile) = Profile::parse(&text, Path::new("fuzz.yaml")) else {
        return;
    };
    let header = profile.transactions.columns();
    let _ = clearwatch_ingest::mapping::TxMapper::compile(&profile.transactions, &header);
    if let Some(accounts) = &profile.accounts {
        let _ = clearwatch_ingest::mapping::AccountMapper::compile(accounts, &accounts.columns());
    }
    if let Some(merchants) = &profile.merchants {
        let _ =
            clearwatch_ingest::mapping::MerchantMapper::compile(merchants, &merchants.columns());
    }
}

fn shipped() -> &'static RuleSet {
    static SET: OnceLock<RuleSet> = OnceLock::new();
    SET.get_or_init(|| load_shipped().0)
}

/// A rule file, compiled as a file of the shipped pack (with its shared lists and macros).
pub fn rule(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = compile_text(shipped(), Path::new("rules/fuzz/FZ-01.yaml"), &text);
}

/// Every variable answers with a value of its declared type, so an expression runs to
/// the end.
struct Values<'s>(&'s Schema);

impl Env for Values<'_> {
    fn get(&self, var: VarId) -> Val<'_> {
        let name = self.0.var_name(var).unwrap_or("");
        let field = name.rsplit_once('.').map_or(name, |(_, f)| f);
        let ty = [
            scope::TX_FIELDS,
            scope::ACCOUNT_FIELDS,
            scope::MERCHANT_FIELDS,
        ]
        .iter()
        .flat_map(|fields| fields.iter())
        .find(|(n, _, _)| *n == field)
        .map(|(_, ty, _)| *ty);
        match ty {
            Some(Ty::Bool) => Val::Bool(true),
            Some(Ty::Int) => Val::Int(3),
            Some(Ty::Float) => Val::Float(1234.5),
            _ => Val::Str("6222 0001"),
        }
    }
    fn code(&self, _var: VarId) -> i64 {
        0
    }
}

/// A CEL expression, compiled against the variables of a star rule and evaluated.
pub fn cel(data: &[u8]) {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    let schema = SCHEMA.get_or_init(|| {
        let mut s = Schema::new();
        scope::add_tx(&mut s);
        scope::add_account(&mut s, "hub", 0);
        scope::add_account(&mut s, "peer", 1);
        scope::add_merchant(&mut s);
        s
    });
    let text = String::from_utf8_lossy(data);
    for want in [Ty::Bool, Ty::Float] {
        if let Ok(program) = expr::compile(&text, schema, want) {
            let _ = program.eval(&Values(schema));
        }
    }
}

/// An evidence bundle: any ZIP, checked as `evidence verify` checks one.
pub fn evidence(data: &[u8]) {
    let path = scratch("zip", data);
    let _ = clearwatch_export::bundle::verify(&path, None);
    let _ = std::fs::remove_file(path);
}
