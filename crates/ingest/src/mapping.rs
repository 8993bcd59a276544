//! Compiles a profile table against a file's header into mappers that turn one source
//! row into a model record, or into the field and reason it was refused for.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use super::profile::{
    AccountTable, AmountFormat, FieldSpec, FieldSpecMap, MerchantTable, StatementSpec,
    TimestampSpec, TransactionTable, UnknownType,
};
use clearwatch_model::{
    AccountKind, AmountError, Currency, ExcessPrecision, Millis, Role, TxType, Zone, parse_amount,
    parse_rfc3339,
};

/// A profile that does not fit the file it is applied to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("column {column:?} (for field `{field}`) is not in the header; columns are: {header}")]
    MissingColumn {
        field: &'static str,
        column: String,
        header: String,
    },
    #[error("field `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// Access to the fields of one source row by header position.
pub trait Fields {
    /// The field's text; `Err(())` when it is not valid UTF-8. Missing fields are empty.
    #[allow(clippy::result_unit_err)]
    fn text(&self, index: usize) -> Result<&str, ()>;
}

impl Fields for csv::ByteRecord {
    fn text(&self, index: usize) -> Result<&str, ()> {
        std::str::from_utf8(self.get(index).unwrap_or(b"")).map_err(|_| ())
    }
}

impl Fields for csv::StringRecord {
    fn text(&self, index: usize) -> Result<&str, ()> {
        Ok(self.get(index).unwrap_or(""))
    }
}

impl Fields for Vec<Option<String>> {
    fn text(&self, index: usize) -> Result<&str, ()> {
        Ok(self.get(index).and_then(|v| v.as_deref()).unwrap_or(""))
    }
}

/// Why one row was refused: the model field and a reason naming the column and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

fn field_err(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Column(usize),
}

#[derive(Debug, Clone)]
enum Source {
    Column(usize, String),
    Constant(String),
    Template(Vec<Part>),
    Absent,
}

/// One model field, resolved against a header.
#[derive(Debug, Clone)]
pub struct CompiledField {
    name: &'static str,
    source: Source,
    map: HashMap<String, String>,
    prefix: Option<String>,
}

fn resolve_column(header: &[String], name: &str) -> Option<usize> {
    if let Some(i) = header.iter().position(|h| h == name) {
        return Some(i);
    }
    let (base, nth) = name.rsplit_once('.')?;
    let nth: usize = nth.parse().ok()?;
    header
        .iter()
        .enumerate()
        .filter(|(_, h)| *h == base)
        .nth(nth)
        .map(|(i, _)| i)
}

fn missing(field: &'static str, column: &str, header: &[String]) -> MappingError {
    MappingError::MissingColumn {
        field,
        column: column.to_string(),
        header: header.join(", "),
    }
}

fn parse_template(
    field: &'static str,
    template: &str,
    header: &[String],
) -> Result<Vec<Part>, MappingError> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Literal(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| MappingError::Invalid {
                field,
                message: format!("unclosed `{{` in template {template:?}"),
            })?
            + open;
        let column = &rest[open + 1..close];
        let index = resolve_column(header, column).ok_or_else(|| missing(field, column, header))?;
        parts.push(Part::Column(index));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    Ok(parts)
}

impl CompiledField {
    fn compile(
        name: &'static str,
        spec: Option<&FieldSpec>,
        header: &[String],
        required: bool,
    ) -> Result<CompiledField, MappingError> {
        let Some(FieldSpec(spec)) = spec else {
            return Ok(CompiledField {
                name,
                source: Source::Absent,
                map: HashMap::new(),
                prefix: None,
            });
        };
        let source = if let Some(column) = &spec.column {
            match resolve_column(header, column) {
                Some(i) => Source::Column(i, column.clone()),
                None if required => return Err(missing(name, column, header)),
                None => Source::Absent,
            }
        } else if let Some(value) = &spec.value {
            Source::Constant(value.clone())
        } else if let Some(template) = &spec.template {
            Source::Template(parse_template(name, template, header)?)
        } else {
            Source::Absent
        };
        Ok(CompiledField {
            name,
            source,
            map: spec
                .map
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            prefix: spec.prefix.clone(),
        })
    }

    fn column_label(&self) -> String {
        match &self.source {
            Source::Column(_, c) => format!(" (column {c:?})"),
            _ => String::new(),
        }
    }

    /// The trimmed, mapped, prefixed value; `None` when empty or absent.
    pub fn get<'r, R: Fields + ?Sized>(
        &self,
        row: &'r R,
    ) -> Result<Option<Cow<'r, str>>, FieldError> {
        let utf8 = |i: usize| {
            row.text(i).map_err(|()| {
                field_err(
                    self.name,
                    format!("{}{} is not valid UTF-8", self.name, self.column_label()),
                )
            })
        };
        let raw: Cow<'r, str> = match &self.source {
            Source::Absent => return Ok(None),
            Source::Column(i, _) => Cow::Borrowed(utf8(*i)?.trim()),
            Source::Constant(v) => Cow::Owned(v.clone()),
            Source::Template(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Literal(l) => s.push_str(l),
                        Part::Column(i) => s.push_str(utf8(*i)?.trim()),
                    }
                }
                Cow::Owned(s)
            }
        };
        if raw.is_empty() {
            return Ok(None);
        }
        let mapped = match self.map.get(raw.as_ref()) {
            Some(m) => Cow::Owned(m.clone()),
            None => raw,
        };
        Ok(Some(match &self.prefix {
            Some(p) => Cow::Owned(format!("{p}{mapped}")),
            None => mapped,
        }))
    }

    fn require<'r, R: Fields + ?Sized>(&self, row: &'r R) -> Result<Cow<'r, str>, FieldError> {
        self.get(row)?.ok_or_else(|| {
            field_err(
                self.name,
                format!("{}{} is empty", self.name, self.column_label()),
            )
        })
    }

    fn refuse(&self, value: &str, why: impl std::fmt::Display) -> FieldError {
        field_err(
            self.name,
            format!("{}{} = {value:?}: {why}", self.name, self.column_label()),
        )
    }
}

/// The instants a transaction may have: anything else is a misread column (seconds read
/// as milliseconds, a row number), and would put a row millennia from the others.
const YEARS_1900_TO_2199: std::ops::Range<Millis> = -2_208_988_800_000..7_258_118_400_000;

/// How source timestamps become UTC milliseconds.
#[derive(Debug, Clone)]
enum TimestampParser {
    Rfc3339,
    UnixSeconds,
    UnixMillis,
    Step { start: Millis, step_ms: i64 },
    Pattern { pattern: String, zone: Zone },
}

impl TimestampParser {
    fn compile(spec: &TimestampSpec) -> Result<TimestampParser, MappingError> {
        let invalid = |message: String| MappingError::Invalid {
            field: "ts",
            message,
        };
        Ok(match spec.format.as_str() {
            "rfc3339" => TimestampParser::Rfc3339,
            "unix_seconds" => TimestampParser::UnixSeconds,
            "unix_millis" => TimestampParser::UnixMillis,
            "step" => {
                let start = spec
                    .start
                    .as_deref()
                    .and_then(parse_rfc3339)
                    .ok_or_else(|| {
                        invalid("format `step` needs `start` as an RFC 3339 time".into())
                    })?;
                let step = spec.step_seconds.filter(|s| *s > 0).ok_or_else(|| {
                    invalid("format `step` needs a positive `step_seconds`".into())
                })?;
                TimestampParser::Step {
                    start,
                    step_ms: step * 1000,
                }
            }
            pattern if pattern.contains('%') => {
                let zone = match spec.timezone.as_deref() {
                    None => Zone::UTC,
                    Some(tz) => Zone::parse(tz).map_err(invalid)?,
                };
                TimestampParser::Pattern {
                    pattern: pattern.to_string(),
                    zone,
                }
            }
            other => {
                return Err(invalid(format!(
                    "unknown timestamp format {other:?} (valid: rfc3339, unix_seconds, unix_millis, step, or a strftime pattern with %)"
                )));
            }
        })
    }

    fn parse(&self, s: &str) -> Result<Millis, String> {
        match self {
            TimestampParser::Rfc3339 => {
                parse_rfc3339(s).ok_or_else(|| "not an RFC 3339 timestamp".to_string())
            }
            TimestampParser::UnixSeconds => s
                .parse::<i64>()
                .ok()
                .and_then(|v| v.checked_mul(1000))
                .ok_or_else(|| "not integer Unix seconds".to_string()),
            TimestampParser::UnixMillis => s
                .parse::<i64>()
                .map_err(|_| "not integer Unix milliseconds".to_string()),
            TimestampParser::Step { start, step_ms } => s
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .and_then(|v| v.checked_mul(*step_ms))
                .and_then(|v| v.checked_add(*start))
                .ok_or_else(|| "not a non-negative integer step".to_string()),
            TimestampParser::Pattern { pattern, zone } => {
                let naive = NaiveDateTime::parse_from_str(s, pattern).or_else(|_| {
                    NaiveDate::parse_from_str(s, pattern)
                        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists"))
                });
                match naive {
                    Ok(n) => zone.instant(n).map_err(|e| e.to_string()),
                    Err(_) => DateTime::parse_from_str(s, pattern)
                        .map(|t| t.timestamp_millis())
                        .map_err(|e| format!("does not match {pattern:?}: {e}")),
                }
            }
        }
    }
}

/// A mapped transaction row, borrowing from the source row where it can.
#[derive(Debug, Clone)]
pub struct TxRecord<'r> {
    pub tx_id: Option<Cow<'r, str>>,
    pub ts: Millis,
    pub from: Cow<'r, str>,
    pub to: Cow<'r, str>,
    pub amount: i64,
    pub currency: Currency,
    pub tx_type: TxType,
    /// The source type was not in the vocabulary and was loaded as `transfer`.
    pub unknown_type: bool,
    pub merchant_id: Option<Cow<'r, str>>,
    pub channel: Option<Cow<'r, str>>,
    pub region: Option<Cow<'r, str>>,
    pub memo: Option<Cow<'r, str>>,
}

/// Where a row's payer, payee and amount come from.
#[derive(Debug, Clone)]
enum Parties {
    /// Payer and payee columns, and a non-negative amount.
    Columns {
        from: CompiledField,
        to: CompiledField,
        amount: CompiledField,
    },
    /// A statement of `account`: the direction says which side `counterparty` is on.
    Statement {
        account: CompiledField,
        counterparty: CompiledField,
        direction: Direction,
    },
}

#[derive(Debug, Clone)]
enum Direction {
    /// The amount's sign: negative is money out of the statement's account.
    Sign(CompiledField),
    /// A debit/credit column beside a non-negative amount.
    Column {
        column: CompiledField,
        debit: Vec<String>,
        credit: Vec<String>,
        amount: CompiledField,
    },
    /// One amount column for money out and one for money in.
    Amounts {
        debit: CompiledField,
        credit: CompiledField,
    },
}

/// Money out of the statement's account (the account pays) or into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Out,
    In,
}

/// Maps rows of a transactions file.
#[derive(Debug, Clone)]
pub struct TxMapper {
    tx_id: CompiledField,
    ts: CompiledField,
    parties: Parties,
    currency: CompiledField,
    tx_type: CompiledField,
    merchant_id: CompiledField,
    channel: CompiledField,
    region: CompiledField,
    memo: CompiledField,
    timestamp: TimestampParser,
    types: HashMap<String, TxType>,
    unknown_type: UnknownType,
    currencies: HashMap<String, Currency>,
    excess: ExcessPrecision,
    amount_format: AmountFormat,
}

fn invalid(field: &'static str, message: &str) -> MappingError {
    MappingError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// Payer, payee and amount columns, or a statement's account, counterparty and direction.
fn compile_parties(table: &TransactionTable, header: &[String]) -> Result<Parties, MappingError> {
    let f = &table.fields;
    let req = |n, s: &FieldSpec| CompiledField::compile(n, Some(s), header, true);
    let Some(st) = &table.statement else {
        let need = |n: &'static str, s: &Option<FieldSpec>| match s {
            Some(s) => req(n, s),
            None => Err(invalid(
                n,
                "is missing: name its column, or describe the file as a `statement`",
            )),
        };
        return Ok(Parties::Columns {
            from: need("from", &f.from)?,
            to: need("to", &f.to)?,
            amount: need("amount", &f.amount)?,
        });
    };
    if f.from.is_some() || f.to.is_some() {
        return Err(invalid(
            "from",
            "a `statement` names its parties with `account` and `counterparty`: remove `fields.from` and `fields.to`",
        ));
    }
    let StatementSpec {
        account,
        counterparty,
        direction,
        debit_amount,
        credit_amount,
    } = st;
    let direction = match (direction, debit_amount, credit_amount, &f.amount) {
        (None, None, None, Some(amount)) => Direction::Sign(req("amount", amount)?),
        (Some(d), None, None, Some(amount)) => {
            if d.debit.is_empty() || d.credit.is_empty() {
                return Err(invalid(
                    "direction",
                    "statement.direction needs the values of both `debit` and `credit`",
                ));
            }
            if let Some(both) = d.debit.iter().find(|v| d.credit.contains(v)) {
                return Err(invalid(
                    "direction",
                    &format!("statement.direction: {both:?} is listed as both debit and credit"),
                ));
            }
            let spec = FieldSpec(FieldSpecMap {
                column: Some(d.column.clone()),
                ..Default::default()
            });
            Direction::Column {
                column: req("direction", &spec)?,
                debit: d.debit.iter().map(|v| v.trim().to_string()).collect(),
                credit: d.credit.iter().map(|v| v.trim().to_string()).collect(),
                amount: req("amount", amount)?,
            }
        }
        (None, Some(debit), Some(credit), None) => Direction::Amounts {
            debit: req("debit_amount", debit)?,
            credit: req("credit_amount", credit)?,
        },
        (_, Some(_), _, _) | (_, _, Some(_), _) => {
            return Err(invalid(
                "amount",
                "a statement with `debit_amount` and `credit_amount` takes both, and neither `fields.amount` nor `direction`",
            ));
        }
        (_, None, None, None) => {
            return Err(invalid(
                "amount",
                "is missing: name the amount column, or the statement's `debit_amount` and `credit_amount`",
            ));
        }
    };
    Ok(Parties::Statement {
        account: req("account", account)?,
        counterparty: req("counterparty", counterparty)?,
        direction,
    })
}

/// Refuses a format whose marks could be read two ways.
fn check_amount_format(f: &AmountFormat) -> Result<AmountFormat, MappingError> {
    let invalid = |message: String| MappingError::Invalid {
        field: "amount",
        message,
    };
    if !matches!(f.decimal, '.' | ',') {
        return Err(invalid(format!(
            "amount_format.decimal {:?}: expected \".\" or \",\"",
            f.decimal
        )));
    }
    if let Some(sep) = f.thousands
        && (!matches!(sep, ',' | '.' | ' ' | '\'' | '_' | '\u{a0}') || sep == f.decimal)
    {
        return Err(invalid(format!(
            "amount_format.thousands {sep:?}: expected one of \",\", \".\", \" \", \"'\", \"_\" other than the decimal mark"
        )));
    }
    if f.symbols.iter().any(|s| s.trim().is_empty()) {
        return Err(invalid(
            "amount_format.symbols: a symbol is empty".to_string(),
        ));
    }
    Ok(f.clone())
}

/// The amount as `parse_amount` reads it (`1234.50`), or why the text does not fit `f`.
fn plain_amount<'a>(text: &'a str, f: &AmountFormat) -> Result<Cow<'a, str>, String> {
    if f.decimal == '.' && f.thousands.is_none() && f.symbols.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    let mut t = text.trim();
    for s in &f.symbols {
        t = t.strip_prefix(s.as_str()).unwrap_or(t).trim_start();
        t = t.strip_suffix(s.as_str()).unwrap_or(t).trim_end();
    }
    let (sign, body) = match t.strip_prefix(['+', '-']) {
        Some(rest) => (&t[..1], rest),
        None => ("", t),
    };
    let (int_part, frac) = match body.split_once(f.decimal) {
        Some((i, fr)) => (i, Some(fr)),
        None => (body, None),
    };
    let int_digits = match f.thousands {
        Some(sep) if int_part.contains(sep) => {
            let groups: Vec<&str> = int_part.split(sep).collect();
            let first_ok = (1..=3).contains(&groups[0].len());
            if !first_ok || groups[1..].iter().any(|g| g.len() != 3) {
                return Err(format!(
                    "the thousands separator {sep:?} is not between groups of three digits"
                ));
            }
            groups.concat()
        }
        _ => int_part.to_string(),
    };
    Ok(Cow::Owned(match frac {
        Some(fr) => format!("{sign}{int_digits}.{fr}"),
        None => format!("{sign}{int_digits}"),
    }))
}

impl TxMapper {
    pub fn compile(table: &TransactionTable, header: &[String]) -> Result<TxMapper, MappingError> {
        // Checklist for a new transactions option: its field in `TransactionTable`, here,
        // and docs/ingest.md's profile example.
        let f = &table.fields;
        let req = |n, s: &FieldSpec| CompiledField::compile(n, Some(s), header, true);
        let opt = |n, s: &Option<FieldSpec>| CompiledField::compile(n, s.as_ref(), header, false);
        let mut types = HashMap::new();
        for (src, dst) in &table.types {
            let t = dst
                .parse::<TxType>()
                .map_err(|message| MappingError::Invalid {
                    field: "type",
                    message: format!("types[{src:?}]: {message}"),
                })?;
            types.insert(src.clone(), t);
        }
        let mut currencies = HashMap::new();
        for (src, dst) in &table.currencies {
            let c = Currency::from_code(dst).ok_or_else(|| MappingError::Invalid {
                field: "currency",
                message: format!("currencies[{src:?}]: {dst:?} is not an ISO 4217 code"),
            })?;
            currencies.insert(src.clone(), c);
        }
        Ok(TxMapper {
            tx_id: opt("tx_id", &f.tx_id)?,
            ts: req("ts", &f.ts)?,
            parties: compile_parties(table, header)?,
            currency: req("currency", &f.currency)?,
            tx_type: req("type", &f.tx_type)?,
            merchant_id: opt("merchant_id", &f.merchant_id)?,
            channel: opt("channel", &f.channel)?,
            region: opt("region", &f.region)?,
            memo: opt("memo", &f.memo)?,
            timestamp: TimestampParser::compile(&table.timestamp)?,
            types,
            unknown_type: table.unknown_type,
            currencies,
            excess: table.excess_precision,
            amount_format: check_amount_format(&table.amount_format)?,
        })
    }

    /// A non-negative amount in minor units of `currency`.
    fn amount(
        &self,
        field: &CompiledField,
        text: &str,
        currency: Currency,
    ) -> Result<i64, FieldError> {
        let plain =
            plain_amount(text, &self.amount_format).map_err(|why| field.refuse(text, why))?;
        parse_amount(&plain, currency.exponent(), self.excess).map_err(|e| match e {
            AmountError::TooLarge(..) => field.refuse(text, format!("{e} {currency}")),
            AmountError::NotDecimal(_) if plain.as_ref() != text => field.refuse(
                text,
                "not a decimal number once `amount_format` is applied (a currency sign or name missing from `symbols`?)",
            ),
            e => field.refuse(text, e),
        })
    }

    /// Which way a statement row's money went, and how much.
    fn statement_amount<R: Fields + ?Sized>(
        &self,
        direction: &Direction,
        row: &R,
        currency: Currency,
    ) -> Result<(Flow, i64), FieldError> {
        match direction {
            Direction::Sign(field) => {
                let text = field.require(row)?;
                let t = text.trim();
                match t.strip_prefix('-') {
                    Some(rest) => Ok((Flow::Out, self.amount(field, rest, currency)?)),
                    None => Ok((
                        Flow::In,
                        self.amount(field, t.strip_prefix('+').unwrap_or(t), currency)?,
                    )),
                }
            }
            Direction::Column {
                column,
                debit,
                credit,
                amount,
            } => {
                let value = column.require(row)?;
                let flow = if debit.iter().any(|d| d == value.as_ref()) {
                    Flow::Out
                } else if credit.iter().any(|c| c == value.as_ref()) {
                    Flow::In
                } else {
                    return Err(column.refuse(
                        &value,
                        format!(
                            "neither debit ({}) nor credit ({})",
                            debit.join(", "),
                            credit.join(", ")
                        ),
                    ));
                };
                Ok((flow, self.amount(amount, &amount.require(row)?, currency)?))
            }
            Direction::Amounts { debit, credit } => {
                let read = |field: &CompiledField| -> Result<i64, FieldError> {
                    match field.get(row)? {
                        Some(text) => self.amount(field, &text, currency),
                        None => Ok(0),
                    }
                };
                match (read(debit)?, read(credit)?) {
                    (out, 0) if out > 0 => Ok((Flow::Out, out)),
                    (0, into) if into > 0 => Ok((Flow::In, into)),
                    (0, 0) => Err(field_err(
                        "amount",
                        format!(
                            "debit_amount{} and credit_amount{} are both empty or zero",
                            debit.column_label(),
                            credit.column_label()
                        ),
                    )),
                    _ => Err(field_err(
                        "amount",
                        format!(
                            "debit_amount{} and credit_amount{} are both filled: a row moves money one way",
                            debit.column_label(),
                            credit.column_label()
                        ),
                    )),
                }
            }
        }
    }

    /// Whether ids come from the source; otherwise the reader derives them from content.
    pub fn has_ids(&self) -> bool {
        !matches!(self.tx_id.source, Source::Absent)
    }

    pub fn map<'r, R: Fields + ?Sized>(&self, row: &'r R) -> Result<TxRecord<'r>, FieldError> {
        let tx_id = match self.tx_id.get(row)? {
            Some(id) => Some(id),
            None if self.has_ids() => {
                return Err(field_err("tx_id", "tx_id is empty"));
            }
            None => None,
        };
        let ts_text = self.ts.require(row)?;
        let ts = self
            .timestamp
            .parse(&ts_text)
            .and_then(|ts| {
                (YEARS_1900_TO_2199.contains(&ts))
                    .then_some(ts)
                    .ok_or_else(|| "is not between the years 1900 and 2199".to_string())
            })
            .map_err(|why| self.ts.refuse(&ts_text, why))?;
        let cur_text = self.currency.require(row)?;
        let currency = match self.currencies.get(cur_text.as_ref()) {
            Some(c) => *c,
            None => Currency::from_code(&cur_text)
                .ok_or_else(|| self.currency.refuse(&cur_text, "unknown ISO 4217 currency"))?,
        };
        let (from, to, amount) = match &self.parties {
            Parties::Columns { from, to, amount } => (
                from.require(row)?,
                to.require(row)?,
                self.amount(amount, &amount.require(row)?, currency)?,
            ),
            Parties::Statement {
                account,
                counterparty,
                direction,
            } => {
                let (flow, amount) = self.statement_amount(direction, row, currency)?;
                let (us, them) = (account.require(row)?, counterparty.require(row)?);
                match flow {
                    Flow::Out => (us, them, amount),
                    Flow::In => (them, us, amount),
                }
            }
        };
        let type_text = self.tx_type.require(row)?;
        let (tx_type, unknown_type) = match self.types.get(type_text.as_ref()) {
            Some(t) => (*t, false),
            None => match type_text.parse::<TxType>() {
                Ok(t) => (t, false),
                Err(why) => match self.unknown_type {
                    UnknownType::Transfer => (TxType::Transfer, true),
                    UnknownType::Reject => return Err(self.tx_type.refuse(&type_text, why)),
                },
            },
        };
        Ok(TxRecord {
            tx_id,
            ts,
            from,
            to,
            amount,
            currency,
            tx_type,
            unknown_type,
            merchant_id: self.merchant_id.get(row)?,
            channel: self.channel.get(row)?,
            region: self.region.get(row)?,
            memo: self.memo.get(row)?,
        })
    }
}

fn parse_bool(field: &CompiledField, v: &str) -> Result<bool, FieldError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" => Ok(true),
        "false" | "f" | "0" | "no" | "n" => Ok(false),
        _ => Err(field.refuse(v, "not a boolean (valid: true, false, 1, 0, yes, no)")),
    }
}

fn owned(v: Option<Cow<'_, str>>) -> Option<String> {
    v.map(Cow::into_owned)
}

/// Maps rows of an accounts file.
#[derive(Debug, Clone)]
pub struct AccountMapper {
    fields: BTreeMap<&'static str, CompiledField>,
}

impl AccountMapper {
    pub fn compile(table: &AccountTable, header: &[String]) -> Result<AccountMapper, MappingError> {
        let f = &table.fields;
        let mut fields = BTreeMap::new();
        fields.insert(
            "account_id",
            CompiledField::compile("account_id", Some(&f.account_id), header, true)?,
        );
        for (name, spec) in [
            ("holder_id", &f.holder_id),
            ("holder_name", &f.holder_name),
            ("kind", &f.kind),
            ("role", &f.role),
            ("licensed", &f.licensed),
            ("institution", &f.institution),
            ("region", &f.region),
        ] {
            fields.insert(
                name,
                CompiledField::compile(name, spec.as_ref(), header, false)?,
            );
        }
        Ok(AccountMapper { fields })
    }

    pub fn map<R: Fields + ?Sized>(
        &self,
        row: &R,
    ) -> Result<clearwatch_model::Account, FieldError> {
        let f = |n: &str| &self.fields[n];
        let kind = match f("kind").get(row)? {
            Some(k) => Some(
                k.parse::<AccountKind>()
                    .map_err(|why| f("kind").refuse(&k, why))?,
            ),
            None => None,
        };
        let role = match f("role").get(row)? {
            Some(r) => r.parse::<Role>().map_err(|why| f("role").refuse(&r, why))?,
            None => Role::Unknown,
        };
        let licensed = match f("licensed").get(row)? {
            Some(v) => parse_bool(f("licensed"), &v)?,
            None => false,
        };
        Ok(clearwatch_model::Account {
            account_id: f("account_id").require(row)?.into_owned(),
            holder_id: owned(f("holder_id").get(row)?),
            holder_name: owned(f("holder_name").get(row)?),
            kind,
            role,
            licensed,
            institution: owned(f("institution").get(row)?),
            region: owned(f("region").get(row)?),
        })
    }
}

/// Maps rows of a merchants file.
#[derive(Debug, Clone)]
pub struct MerchantMapper {
    fields: BTreeMap<&'static str, CompiledField>,
}

impl MerchantMapper {
    pub fn compile(
        table: &MerchantTable,
        header: &[String],
    ) -> Result<MerchantMapper, MappingError> {
        let f = &table.fields;
        let mut fields = BTreeMap::new();
        fields.insert(
            "merchant_id",
            CompiledField::compile("merchant_id", Some(&f.merchant_id), header, true)?,
        );
        for (name, spec) in [
            ("legal_name", &f.legal_name),
            ("holder_id", &f.holder_id),
            ("settlement_account", &f.settlement_account),
            ("acquirer", &f.acquirer),
            ("mcc", &f.mcc),
            ("settlement_cycle_days", &f.settlement_cycle_days),
        ] {
            fields.insert(
                name,
                CompiledField::compile(name, spec.as_ref(), header, false)?,
            );
        }
        Ok(MerchantMapper { fields })
    }

    pub fn map<R: Fields + ?Sized>(
        &self,
        row: &R,
    ) -> Result<clearwatch_model::Merchant, FieldError> {
        let f = |n: &str| &self.fields[n];
        let cycle = match f("settlement_cycle_days").get(row)? {
            Some(v) => Some(v.parse::<u32>().map_err(|_| {
                f("settlement_cycle_days").refuse(&v, "not a whole number of days")
            })?),
            None => None,
        };
        Ok(clearwatch_model::Merchant {
            merchant_id: f("merchant_id").require(row)?.into_owned(),
            legal_name: owned(f("legal_name").get(row)?),
            holder_id: owned(f("holder_id").get(row)?),
            settlement_account: owned(f("settlement_account").get(row)?),
            acquirer: owned(f("acquirer").get(row)?),
            mcc: owned(f("mcc").get(row)?),
            settlement_cycle_days: cycle,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    fn header(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|c| c.to_string()).collect()
    }

    fn row(vals: &[&str]) -> Vec<Option<String>> {
        vals.iter().map(|v| Some(v.to_string())).collect()
    }

    #[test]
    fn amounts_in_export_formats_read_as_plain_decimals() {
        let f = |decimal, thousands, symbols: &[&str]| AmountFormat {
            decimal,
            thousands,
            symbols: symbols.iter().map(|s| s.to_string()).collect(),
        };
        let cn = f('.', Some(','), &["¥", "人民币"]);
        for (text, plain) in [
            ("1,234.50", "1234.50"),
            ("¥1,234,567.8", "1234567.8"),
            (" 23,008.77 人民币", "23008.77"),
            ("999", "999"),
            ("-1,000", "-1000"),
        ] {
            assert_eq!(plain_amount(text, &cn).as_deref(), Ok(plain), "{text}");
        }
        for bad in ["12,34.5", "1,2345", ",123", "1,234,56"] {
            let e = plain_amount(bad, &cn).unwrap_err();
            assert!(e.contains("groups of three digits"), "{bad}: {e}");
        }
        let eu = f(',', Some('.'), &[]);
        assert_eq!(plain_amount("1.234,50", &eu).as_deref(), Ok("1234.50"));
        assert_eq!(plain_amount("0,5", &eu).as_deref(), Ok("0.5"));
        // Without a format the text is passed on untouched, as before.
        assert!(matches!(
            plain_amount("1,5", &AmountFormat::default()),
            Ok(Cow::Borrowed("1,5"))
        ));
        assert!(check_amount_format(&f(',', Some(','), &[])).is_err());
        assert!(check_amount_format(&f(';', None, &[])).is_err());
    }

    #[test]
    fn maps_a_native_row() {
        let p = Profile::native();
        let h = header(&["tx_id", "ts", "from", "to", "amount", "currency", "type"]);
        let m = TxMapper::compile(&p.transactions, &h).unwrap();
        let r = row(&[
            "t1",
            "2026-01-01T00:00:00Z",
            "a",
            "b",
            "12.34",
            "CNY",
            "payment",
        ]);
        let rec = m.map(&r).unwrap();
        assert_eq!(rec.amount, 1234);
        assert_eq!(rec.tx_type, TxType::Payment);
        assert_eq!(rec.merchant_id, None);
    }

    /// A statement profile of account `A` over columns ts, other, amount (and `extra`).
    fn statement(extra: &str, amount: &str) -> TransactionTable {
        let text = format!(
            "name: s\ntransactions:\n  fields:\n    ts: ts\n{amount}    currency: {{ value: CNY }}\n    \
             type: {{ value: transfer }}\n  statement:\n    account: {{ value: A }}\n    counterparty: other\n{extra}"
        );
        Profile::parse(&text, std::path::Path::new("s.yaml"))
            .unwrap()
            .transactions
    }

    fn parties(m: &TxMapper, r: &[&str]) -> Result<(String, String, i64), String> {
        m.map(&row(r))
            .map(|t| (t.from.to_string(), t.to.to_string(), t.amount))
            .map_err(|e| e.reason)
    }

    #[test]
    fn statements_take_the_direction_from_a_column_a_sign_or_two_amount_columns() {
        let ts = "2026-01-01T00:00:00Z";
        let column = statement(
            "    direction: { column: dc, debit: [借, D], credit: [贷, C] }\n",
            "    amount: amount\n",
        );
        let m = TxMapper::compile(&column, &header(&["ts", "other", "amount", "dc"])).unwrap();
        assert_eq!(
            parties(&m, &[ts, "B", "5.00", "借"]),
            Ok(("A".into(), "B".into(), 500))
        );
        assert_eq!(
            parties(&m, &[ts, "B", "5.00", "C"]),
            Ok(("B".into(), "A".into(), 500))
        );
        let err = parties(&m, &[ts, "B", "5.00", "X"]).unwrap_err();
        assert!(
            err.contains("neither debit (借, D) nor credit (贷, C)"),
            "{err}"
        );

        let signed = statement("", "    amount: amount\n");
        let m = TxMapper::compile(&signed, &header(&["ts", "other", "amount"])).unwrap();
        assert_eq!(
            parties(&m, &[ts, "B", "-7.25"]),
            Ok(("A".into(), "B".into(), 725))
        );
        assert_eq!(
            parties(&m, &[ts, "B", "+7.25"]),
            Ok(("B".into(), "A".into(), 725))
        );

        let two = statement("    debit_amount: out\n    credit_amount: in\n", "");
        let m = TxMapper::compile(&two, &header(&["ts", "other", "out", "in"])).unwrap();
        assert_eq!(
            parties(&m, &[ts, "B", "3.00", "0.00"]),
            Ok(("A".into(), "B".into(), 300))
        );
        assert_eq!(
            parties(&m, &[ts, "B", "", "4.00"]),
            Ok(("B".into(), "A".into(), 400))
        );
        let both = parties(&m, &[ts, "B", "3.00", "4.00"]).unwrap_err();
        assert!(both.contains("both filled"), "{both}");
        let none = parties(&m, &[ts, "B", "", "0"]).unwrap_err();
        assert!(none.contains("both empty or zero"), "{none}");
    }

    #[test]
    fn a_statement_profile_that_could_be_read_two_ways_is_refused() {
        let with_from = "name: s\ntransactions:\n  fields:\n    ts: ts\n    from: f\n    amount: a\n    \
             currency: c\n    type: t\n  statement:\n    account: { value: A }\n    counterparty: o\n";
        let t = Profile::parse(with_from, std::path::Path::new("s.yaml"))
            .unwrap()
            .transactions;
        let err = TxMapper::compile(&t, &header(&["ts", "f", "a", "c", "t", "o"])).unwrap_err();
        assert!(err.to_string().contains("remove `fields.from`"), "{err}");
        let both = statement(
            "    direction: { column: dc, debit: [D], credit: [D] }\n",
            "    amount: amount\n",
        );
        let err = TxMapper::compile(&both, &header(&["ts", "other", "amount", "dc"])).unwrap_err();
        assert!(err.to_string().contains("both debit and credit"), "{err}");
        let no_to = "name: s\ntransactions:\n  fields:\n    ts: ts\n    from: f\n    amount: a\n    \
             currency: c\n    type: t\n";
        let t = Profile::parse(no_to, std::path::Path::new("s.yaml"))
            .unwrap()
            .transactions;
        let err = TxMapper::compile(&t, &header(&["ts", "f", "a", "c", "t"])).unwrap_err();
        assert!(err.to_string().contains("field `to`: is missing"), "{err}");
    }

    #[test]
    fn missing_required_column_is_a_mapping_error() {
        let p = Profile::native();
        let h = header(&["tx_id", "ts", "from", "to", "currency", "type"]);
        let err = TxMapper::compile(&p.transactions, &h).unwrap_err();
        assert!(err.to_string().contains("\"amount\""), "{err}");
    }

    #[test]
    fn repeated_header_names_resolve_by_occurrence() {
        let h = header(&["From Bank", "Account", "To Bank", "Account"]);
        assert_eq!(resolve_column(&h, "Account"), Some(1));
        assert_eq!(resolve_column(&h, "Account.1"), Some(3));
        assert_eq!(resolve_column(&h, "Account.2"), None);
    }

    #[test]
    fn step_and_pattern_timestamps() {
        let step = TimestampParser::compile(&TimestampSpec {
            format: "step".into(),
            timezone: None,
            start: Some("2017-01-01T00:00:00Z".into()),
            step_seconds: Some(3600),
        })
        .unwrap();
        assert_eq!(
            step.parse("2").unwrap(),
            parse_rfc3339("2017-01-01T02:00:00Z").unwrap()
        );
        assert!(step.parse("-1").is_err());
        let pat = TimestampParser::compile(&TimestampSpec {
            format: "%Y/%m/%d %H:%M".into(),
            timezone: Some("+08:00".into()),
            start: None,
            step_seconds: None,
        })
        .unwrap();
        assert_eq!(
            pat.parse("2022/09/01 08:20").unwrap(),
            parse_rfc3339("2022-09-01T00:20:00Z").unwrap()
        );
    }

    #[test]
    fn iana_zones_read_local_times_and_report_daylight_saving_gaps_and_overlaps() {
        let spec = |tz: &str| TimestampSpec {
            format: "%Y-%m-%d %H:%M:%S".into(),
            timezone: Some(tz.into()),
            start: None,
            step_seconds: None,
        };
        let shanghai = TimestampParser::compile(&spec("Asia/Shanghai")).unwrap();
        assert_eq!(
            shanghai.parse("2026-03-05 14:22:10").unwrap(),
            parse_rfc3339("2026-03-05T06:22:10Z").unwrap()
        );
        let ny = TimestampParser::compile(&spec("America/New_York")).unwrap();
        assert_eq!(
            ny.parse("2026-07-01 12:00:00").unwrap(),
            parse_rfc3339("2026-07-01T16:00:00Z").unwrap()
        );
        let gap = ny.parse("2026-03-08 02:30:00").unwrap_err();
        assert!(gap.contains("does not exist"), "{gap}");
        let overlap = ny.parse("2026-11-01 01:30:00").unwrap_err();
        assert!(overlap.contains("happened twice"), "{overlap}");
        let err = TimestampParser::compile(&spec("Mars/Olympus")).unwrap_err();
        assert!(err.to_string().contains("IANA"), "{err}");
    }

    #[test]
    fn field_errors_name_field_column_and_value() {
        let p = Profile::native();
        let h = header(&["tx_id", "ts", "from", "to", "amount", "currency", "type"]);
        let m = TxMapper::compile(&p.transactions, &h).unwrap();
        let r = row(&[
            "t1",
            "2026-01-01T00:00:00Z",
            "a",
            "b",
            "12.3x",
            "CNY",
            "payment",
        ]);
        let err = m.map(&r).unwrap_err();
        assert_eq!(err.field, "amount");
        assert!(err.reason.contains("\"12.3x\""), "{}", err.reason);
    }
}
