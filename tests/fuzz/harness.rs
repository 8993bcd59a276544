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

/// Reads `data` as each table of a shipped profile chosen by its first byte.
fn read_table(data: &[u8], format: FileFormat) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (name, _) = BUILTIN[usize::from(pick) % BUILTIN.len()];
    let mut profile = Profile::load(name).expect("shipped profiles parse");
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

/// Every variable answers with a value of its type, so an expression runs to the end.
struct Values<'s>(&'s Schema);

impl Env for Values<'_> {
    fn get(&self, var: VarId) -> Val<'_> {
        match self.0.var_name(var).unwrap_or("") {
            n if n.ends_with(".licensed") || n.ends_with(".registered") => Val::Bool(true),
            n if n.ends_with("amount") || n.ends_with("median") => Val::Float(1234.5),
            n if n.ends_with("count") || n.ends_with("_ts") || n.ends_with("hour") => Val::Int(3),
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
