//! Mapping profiles: YAML files that say how a foreign file's columns, timestamps and
//! vocabularies translate into clearwatch's model. These are configuration types only;
//! [`super::mapping`] compiles them against a file's header.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use clearwatch_model::ExcessPrecision;

/// The profiles shipped in `datasets/profiles/`, embedded in the binary.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "native",
        include_str!("../../../datasets/profiles/native.yaml"),
    ),
    (
        "amlsim",
        include_str!("../../../datasets/profiles/amlsim.yaml"),
    ),
    (
        "amlsim-sample",
        include_str!("../../../datasets/profiles/amlsim-sample.yaml"),
    ),
    (
        "paysim",
        include_str!("../../../datasets/profiles/paysim.yaml"),
    ),
    (
        "amlgentex",
        include_str!("../../../datasets/profiles/amlgentex.yaml"),
    ),
    (
        "amlworld",
        include_str!("../../../datasets/profiles/amlworld.yaml"),
    ),
];

/// A profile file could not be found or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "unknown profile {name:?}: not a built-in profile ({}) nor a readable file: {source}",
        builtin_names()
    )]
    NotFound {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: invalid profile: {message}")]
    Parse {
        path: PathBuf,
        line: u32,
        column: u32,
        message: String,
    },
}

fn builtin_names() -> String {
    BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A whole mapping profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `csv` or `jsonl`; when absent, chosen by file extension.
    #[serde(default)]
    pub format: Option<FileFormat>,
    #[serde(default)]
    pub delimiter: Option<char>,
    /// The file's text encoding (`utf-8`, `gbk`, `gb18030`, `utf-16le`, `utf-16be`, …).
    /// When absent, a byte order mark decides, and otherwise the file must be UTF-8.
    #[serde(default)]
    pub encoding: Option<TextEncoding>,
    /// What a repeated CSV header name means; by default it is an error.
    #[serde(default)]
    pub repeated_columns: RepeatedColumns,
    /// Size limits enforced while reading.
    #[serde(default)]
    pub limits: Limits,
    pub transactions: TransactionTable,
    #[serde(default)]
    pub accounts: Option<AccountTable>,
    #[serde(default)]
    pub merchants: Option<MerchantTable>,
}

/// A text encoding by its WHATWG label, as `encoding_rs` knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextEncoding(pub &'static encoding_rs::Encoding);

impl<'de> Deserialize<'de> for TextEncoding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let label = String::deserialize(d)?;
        encoding_rs::Encoding::for_label(label.trim().as_bytes())
            .map(TextEncoding)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown encoding {label:?}: use utf-8, gbk, gb18030, utf-16le, utf-16be, big5, shift_jis or another WHATWG label"
                ))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Jsonl,
}

impl FileFormat {
    /// `.jsonl`, `.ndjson` and `.json` are JSON Lines; everything else is CSV.
    pub fn for_path(path: &Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson" | "json") => FileFormat::Jsonl,
            _ => FileFormat::Csv,
        }
    }
}

/// What a CSV header that names the same column twice means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepeatedColumns {
    /// The file is refused, naming the column: a mapping by name would be ambiguous.
    #[default]
    Reject,
    /// The file is read; `name` is the first such column, `name.1` the second, and so on.
    Numbered,
}

/// Size limits enforced while a file is read, so that no line, field or row is ever
/// held in memory beyond them. A row over a limit is quarantined with the limit it broke
/// and the rest of it is skipped unread; the load goes on with the next row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Bytes of one physical line, without its line terminator.
    pub max_line_bytes: usize,
    /// Bytes of one field's value (a CSV cell after unquoting, a JSON key's value).
    pub max_field_bytes: usize,
    /// Bytes of one row as written, terminator included; a CSV row may span lines
    /// through quoted line breaks. For JSON Lines a row is a line.
    pub max_record_bytes: usize,
}

impl Limits {
    pub const DEFAULT_LINE_BYTES: usize = 1 << 20;
    pub const DEFAULT_FIELD_BYTES: usize = 64 << 10;
    pub const DEFAULT_RECORD_BYTES: usize = 4 << 20;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: Limits::DEFAULT_LINE_BYTES,
            max_field_bytes: Limits::DEFAULT_FIELD_BYTES,
            max_record_bytes: Limits::DEFAULT_RECORD_BYTES,
        }
    }
}

/// How the transactions file maps onto [`clearwatch_model::Transaction`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionTable {
    pub fields: TransactionFields,
    #[serde(default)]
    pub timestamp: TimestampSpec,
    /// Source type values → clearwatch types; identity when empty.
    #[serde(default)]
    pub types: BTreeMap<String, String>,
    /// What an unmapped type value becomes.
    #[serde(default)]
    pub unknown_type: UnknownType,
    /// Source currency values → ISO 4217 codes.
    #[serde(default)]
    pub currencies: BTreeMap<String, String>,
    #[serde(default)]
    pub excess_precision: ExcessPrecision,
    /// How amounts are written: decimal mark, thousands separator, currency symbols.
    #[serde(default)]
    pub amount_format: AmountFormat,
    /// An account statement: each row is seen from one account's side, and the payer and
    /// payee follow from the direction. In place of `fields.from` and `fields.to`.
    #[serde(default)]
    pub statement: Option<StatementSpec>,
}

/// How a statement row names its two parties and which way the money went.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementSpec {
    /// Whose statement it is: usually `{ value: "6222…" }`, or a column of the account.
    pub account: FieldSpec,
    /// The other party of each row.
    pub counterparty: FieldSpec,
    /// A column saying debit (money out of `account`) or credit (money in). Without it,
    /// and without `debit_amount`/`credit_amount`, the amount's sign says: negative is out.
    #[serde(default)]
    pub direction: Option<DirectionSpec>,
    /// Separate amount columns for money out and money in, in place of `fields.amount`:
    /// each row fills one of them (the other empty or zero).
    #[serde(default)]
    pub debit_amount: Option<FieldSpec>,
    #[serde(default)]
    pub credit_amount: Option<FieldSpec>,
}

/// A debit/credit column and its values (`借`/`贷`, `D`/`C`, `DR`/`CR`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectionSpec {
    pub column: String,
    pub debit: Vec<String>,
    pub credit: Vec<String>,
}

/// How the amount column writes numbers, for exports that do not write `1234.50`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmountFormat {
    /// The decimal mark: `.` (default) or `,`.
    pub decimal: char,
    /// The thousands separator, if the export writes one (`,`, `.`, a space, `'`, `_`):
    /// it is accepted only between groups of three digits of the integer part.
    pub thousands: Option<char>,
    /// Texts written before or after the number (`¥`, `￥`, `元`, `人民币`, `CNY`),
    /// removed before it is read.
    pub symbols: Vec<String>,
}

impl Default for AmountFormat {
    fn default() -> Self {
        AmountFormat {
            decimal: '.',
            thousands: None,
            symbols: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionFields {
    /// When absent, ids are content hashes (stable across reloads).
    #[serde(default)]
    pub tx_id: Option<FieldSpec>,
    pub ts: FieldSpec,
    /// Payer and payee; absent when the table is a `statement`.
    #[serde(default)]
    pub from: Option<FieldSpec>,
    #[serde(default)]
    pub to: Option<FieldSpec>,
    /// Absent only for a `statement` with `debit_amount` and `credit_amount`.
    #[serde(default)]
    pub amount: Option<FieldSpec>,
    pub currency: FieldSpec,
    #[serde(rename = "type")]
    pub tx_type: FieldSpec,
    #[serde(default)]
    pub merchant_id: Option<FieldSpec>,
    #[serde(default)]
    pub channel: Option<FieldSpec>,
    #[serde(default)]
    pub region: Option<FieldSpec>,
    #[serde(default)]
    pub memo: Option<FieldSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountTable {
    pub fields: AccountFields,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountFields {
    pub account_id: FieldSpec,
    #[serde(default)]
    pub holder_id: Option<FieldSpec>,
    #[serde(default)]
    pub holder_name: Option<FieldSpec>,
    #[serde(default)]
    pub kind: Option<FieldSpec>,
    #[serde(default)]
    pub role: Option<FieldSpec>,
    #[serde(default)]
    pub licensed: Option<FieldSpec>,
    #[serde(default)]
    pub institution: Option<FieldSpec>,
    #[serde(default)]
    pub region: Option<FieldSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantTable {
    pub fields: MerchantFields,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantFields {
    pub merchant_id: FieldSpec,
    #[serde(default)]
    pub legal_name: Option<FieldSpec>,
    #[serde(default)]
    pub holder_id: Option<FieldSpec>,
    #[serde(default)]
    pub settlement_account: Option<FieldSpec>,
    #[serde(default)]
    pub acquirer: Option<FieldSpec>,
    #[serde(default)]
    pub mcc: Option<FieldSpec>,
    #[serde(default)]
    pub settlement_cycle_days: Option<FieldSpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownType {
    /// Load as `transfer` and count a warning.
    #[default]
    Transfer,
    /// Quarantine the row.
    Reject,
}

/// How timestamps are written in the source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampSpec {
    /// `rfc3339`, `unix_seconds`, `unix_millis`, `step`, or a chrono strftime pattern
    /// (`%Y/%m/%d %H:%M`) read in `timezone`.
    #[serde(default = "default_ts_format")]
    pub format: String,
    /// The zone that patterns without an offset are read in: an IANA name
    /// (`Asia/Shanghai`) or an offset (`+08:00`). Default UTC. A local time that the
    /// zone's daylight-saving change skipped or repeated is refused, not guessed.
    #[serde(default)]
    pub timezone: Option<String>,
    /// For `step`: the instant of step 0 (RFC 3339).
    #[serde(default)]
    pub start: Option<String>,
    /// For `step`: seconds per step.
    #[serde(default)]
    pub step_seconds: Option<i64>,
}

fn default_ts_format() -> String {
    "rfc3339".to_string()
}

impl Default for TimestampSpec {
    fn default() -> Self {
        TimestampSpec {
            format: default_ts_format(),
            timezone: None,
            start: None,
            step_seconds: None,
        }
    }
}

/// Where one model field comes from. Written either as a bare column name or as a map.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpecMap {
    /// Source column; `name.1` addresses the second column of a repeated header name.
    #[serde(default)]
    pub column: Option<String>,
    /// A constant.
    #[serde(default)]
    pub value: Option<String>,
    /// Columns joined by a pattern: `"{From Bank}:{Account}"`.
    #[serde(default)]
    pub template: Option<String>,
    /// Source value → model value.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// Prepended to the value (ids from several sources stay apart).
    #[serde(default)]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FieldSpec(pub FieldSpecMap);

impl<'de> Deserialize<'de> for FieldSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = FieldSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column name, or a map with column | value | template, map, prefix")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldSpec, E> {
                Ok(FieldSpec(FieldSpecMap {
                    column: Some(v.to_string()),
                    ..Default::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FieldSpec, A::Error> {
                let spec = FieldSpecMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let sources = [&spec.column, &spec.value, &spec.template]
                    .iter()
                    .filter(|s| s.is_some())
                    .count();
                if sources != 1 {
                    return Err(de::Error::custom(
                        "a field needs exactly one of `column`, `value` or `template`",
                    ));
                }
                Ok(FieldSpec(spec))
            }
        }
        d.deserialize_any(SpecVisitor)
    }
}

impl FieldSpec {
    /// The source columns this field reads (for JSON Lines key lookup).
    pub fn columns(&self) -> Vec<String> {
        let spec = &self.0;
        if let Some(c) = &spec.column {
            return vec![c.clone()];
        }
        let mut out = Vec::new();
        if let Some(t) = &spec.template {
            let mut rest = t.as_str();
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}') else {
                    break;
                };
                out.push(rest[open + 1..open + close].to_string());
                rest = &rest[open + close + 1..];
            }
        }
        out
    }
}

fn columns_of<'a>(specs: impl IntoIterator<Item = Option<&'a FieldSpec>>) -> Vec<String> {
    let mut out: Vec<String> = specs
        .into_iter()
        .flatten()
        .flat_map(FieldSpec::columns)
        .collect();
    out.sort();
    out.dedup();
    out
}

impl TransactionTable {
    pub fn columns(&self) -> Vec<String> {
        let f = &self.fields;
        let st = self.statement.as_ref();
        let direction = st.and_then(|s| s.direction.as_ref()).map(|d| {
            FieldSpec(FieldSpecMap {
                column: Some(d.column.clone()),
                ..Default::default()
            })
        });
        columns_of([
            f.tx_id.as_ref(),
            Some(&f.ts),
            f.from.as_ref(),
            f.to.as_ref(),
            f.amount.as_ref(),
            st.map(|s| &s.account),
            st.map(|s| &s.counterparty),
            st.and_then(|s| s.debit_amount.as_ref()),
            st.and_then(|s| s.credit_amount.as_ref()),
            direction.as_ref(),
            Some(&f.currency),
            Some(&f.tx_type),
            f.merchant_id.as_ref(),
            f.channel.as_ref(),
            f.region.as_ref(),
            f.memo.as_ref(),
        ])
    }
}

impl AccountTable {
    pub fn columns(&self) -> Vec<String> {
        let f = &self.fields;
        columns_of([
            Some(&f.account_id),
            f.holder_id.as_ref(),
            f.holder_name.as_ref(),
            f.kind.as_ref(),
            f.role.as_ref(),
            f.licensed.as_ref(),
            f.institution.as_ref(),
            f.region.as_ref(),
        ])
    }
}

impl MerchantTable {
    pub fn columns(&self) -> Vec<String> {
        let f = &self.fields;
        columns_of([
            Some(&f.merchant_id),
            f.legal_name.as_ref(),
            f.holder_id.as_ref(),
            f.settlement_account.as_ref(),
            f.acquirer.as_ref(),
            f.mcc.as_ref(),
            f.settlement_cycle_days.as_ref(),
        ])
    }
}

impl Profile {
    /// Parses profile text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Profile, ProfileError> {
        serde_saphyr::from_str::<Profile>(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ProfileError::Parse {
                path: origin.to_path_buf(),
                line: line as u32,
                column: column as u32,
                message: first_line(&e.to_string()),
            }
        })
    }

    /// A built-in profile by name, or a profile file by path.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            let origin = PathBuf::from(format!("datasets/profiles/{name_or_path}.yaml"));
            return Profile::parse(text, &origin);
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::NotFound {
            name: name_or_path.to_string(),
            source,
        })?;
        Profile::parse(&text, path)
    }

    pub fn native() -> Profile {
        Profile::load("native").expect("the built-in native profile parses")
    }
}

/// serde-saphyr renders a snippet below the message; keep the message line.
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_parses() {
        for (name, _) in BUILTIN {
            let p = Profile::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&p.name, name);
        }
    }

    #[test]
    fn unknown_profile_fields_are_errors_with_position() {
        let text = "name: x\ntransactions:\n  fields:\n    ts: a\n    from: b\n    to: c\n    amount: d\n    currency: e\n    type: f\n    colour: g\n";
        let err = Profile::parse(text, Path::new("p.yaml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("p.yaml:10:"), "{msg}");
        assert!(msg.contains("colour"), "{msg}");
    }

    #[test]
    fn field_spec_needs_exactly_one_source() {
        let text = "name: x\ntransactions:\n  fields:\n    ts: a\n    from: b\n    to: c\n    amount: d\n    currency: { value: CNY, column: cur }\n    type: f\n";
        let err = Profile::parse(text, Path::new("p.yaml")).unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
    }

    #[test]
    fn missing_profile_names_the_builtins() {
        let err = Profile::load("no-such-profile").unwrap_err().to_string();
        assert!(err.contains("native, amlsim"), "{err}");
    }
}
