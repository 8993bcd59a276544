//! The data model: transactions, accounts, merchants, money and time.
//!
//! Money is an integer number of minor units plus an ISO 4217 currency; time is UTC
//! milliseconds since the Unix epoch. Nothing here is `f64`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// UTC milliseconds since the Unix epoch.
pub type Millis = i64;

/// Renders a timestamp as RFC 3339 UTC (`2026-01-05T09:31:07Z`, milliseconds only when present).
pub fn format_ts(ts: Millis) -> String {
    match Utc.timestamp_millis_opt(ts).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => ts.to_string(),
    }
}

/// Parses an RFC 3339 timestamp into UTC milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

/// An ISO 4217 currency, with its minor-unit exponent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn from_code(code: &str) -> Option<Self> {
        iso_currency::Currency::from_code(code.trim()).map(Currency)
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Decimal places of the minor unit (2 for CNY, 0 for JPY). Currencies without
    /// a minor unit in ISO 4217 (XAU, XDR, …) count as 0.
    pub fn exponent(self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown ISO 4217 currency {code:?}")))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a decimal amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("empty amount")]
    Empty,
    #[error("not a decimal number: {0:?}")]
    NotDecimal(String),
    #[error("negative amount {0}")]
    Negative(String),
    #[error("amount {0} has more than {1} decimal places")]
    TooPrecise(String, u32),
    #[error("amount {0} overflows 64-bit minor units")]
    Overflow(String),
}

/// What to do with digits beyond the currency's minor unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcessPrecision {
    /// Refuse the row (the default: silent rounding changes evidence).
    #[default]
    Reject,
    /// Round half to even to the minor unit.
    Round,
}

/// Parses a non-negative decimal string (`123.45`, `7`, `1e3` is refused) into minor units.
pub fn parse_amount(s: &str, exponent: u32, excess: ExcessPrecision) -> Result<i64, AmountError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(AmountError::Empty);
    }
    let body = t.strip_prefix('+').unwrap_or(t);
    if body.starts_with('-') {
        return Err(AmountError::Negative(t.to_string()));
    }
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    let digits_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !digits_ok(int_part)
        || !digits_ok(frac_part)
    {
        return Err(AmountError::NotDecimal(t.to_string()));
    }
    let overflow = || AmountError::Overflow(t.to_string());
    let mut minor: i64 = 0;
    for b in int_part.bytes() {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    let exp = exponent as usize;
    let frac = frac_part.as_bytes();
    for i in 0..exp {
        let d = frac.get(i).map_or(0, |b| i64::from(b - b'0'));
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(d))
            .ok_or_else(overflow)?;
    }
    let rest = frac.get(exp..).unwrap_or(&[]);
    if rest.iter().any(|&b| b != b'0') {
        match excess {
            ExcessPrecision::Reject => {
                return Err(AmountError::TooPrecise(t.to_string(), exponent));
            }
            ExcessPrecision::Round => {
                let first = rest[0] - b'0';
                let tail_nonzero = rest[1..].iter().any(|&b| b != b'0');
                let round_up = first > 5 || (first == 5 && (tail_nonzero || minor % 2 == 1));
                if round_up {
                    minor = minor.checked_add(1).ok_or_else(overflow)?;
                }
            }
        }
    }
    Ok(minor)
}

/// Renders minor units as a decimal string with the currency's exponent (`12345`, 2 → `123.45`).
pub fn format_amount(minor: i64, exponent: u32) -> String {
    if exponent == 0 {
        return minor.to_string();
    }
    let scale = 10i64.pow(exponent);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale = scale as u64;
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = exponent as usize
    )
}

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[repr(u8)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The accepted spellings, for error messages.
            pub fn valid_values() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {:?} (valid: {})",
                        stringify!($name), other, Self::valid_values()
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// What a transaction is, in clearwatch's vocabulary.
    TxType {
        Payment => "payment",
        Settlement => "settlement",
        Transfer => "transfer",
        CashIn => "cash_in",
        CashOut => "cash_out",
        Fee => "fee",
        Refund => "refund",
    }
);

vocabulary!(
    /// Whether an account belongs to a natural person or a company.
    AccountKind {
        Personal => "personal",
        Corporate => "corporate",
    }
);

vocabulary!(
    /// The part an account plays in the payment chain.
    Role {
        Acquirer => "acquirer",
        Merchant => "merchant",
        Agent => "agent",
        Individual => "individual",
        Bank => "bank",
        Unknown => "unknown",
    }
);

/// One transaction, as loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub tx_id: String,
    pub ts: Millis,
    pub from: String,
    pub to: String,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
    pub tx_type: TxType,
    pub merchant_id: Option<String>,
    pub channel: Option<String>,
    pub region: Option<String>,
    pub memo: Option<String>,
}

/// One account of the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub holder_id: Option<String>,
    pub holder_name: Option<String>,
    pub kind: Option<AccountKind>,
    pub role: Role,
    pub licensed: bool,
    pub institution: Option<String>,
    pub region: Option<String>,
}

impl Account {
    /// An account known only from the transactions.
    pub fn unregistered(account_id: &str) -> Self {
        Account {
            account_id: account_id.to_string(),
            holder_id: None,
            holder_name: None,
            kind: None,
            role: Role::Unknown,
            licensed: false,
            institution: None,
            region: None,
        }
    }
}

/// One merchant of an acquirer's registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub merchant_id: String,
    pub legal_name: Option<String>,
    pub holder_id: Option<String>,
    pub settlement_account: Option<String>,
    pub acquirer: Option<String>,
    pub mcc: Option<String>,
    pub settlement_cycle_days: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny(s: &str) -> Result<i64, AmountError> {
        parse_amount(s, 2, ExcessPrecision::Reject)
    }

    #[test]
    fn parses_decimal_amounts_into_minor_units() {
        assert_eq!(cny("123.45"), Ok(12345));
        assert_eq!(cny("7"), Ok(700));
        assert_eq!(cny("0.5"), Ok(50));
        assert_eq!(cny(".5"), Ok(50));
        assert_eq!(cny("10.500"), Ok(1050));
        assert_eq!(parse_amount("1000", 0, ExcessPrecision::Reject), Ok(1000));
    }

    #[test]
    fn refuses_bad_amounts() {
        assert_eq!(cny(""), Err(AmountError::Empty));
        assert!(matches!(cny("-1.00"), Err(AmountError::Negative(_))));
        assert!(matches!(cny("1e3"), Err(AmountError::NotDecimal(_))));
        assert!(matches!(cny("12,5"), Err(AmountError::NotDecimal(_))));
        assert!(matches!(cny("."), Err(AmountError::NotDecimal(_))));
        assert!(matches!(cny("1.234"), Err(AmountError::TooPrecise(..))));
        assert!(matches!(
            cny("99999999999999999999"),
            Err(AmountError::Overflow(_))
        ));
    }

    #[test]
    fn rounds_half_even_when_asked() {
        let r = |s| parse_amount(s, 2, ExcessPrecision::Round).unwrap();
        assert_eq!(r("1.234"), 123);
        assert_eq!(r("1.236"), 124);
        assert_eq!(r("1.225"), 122);
        assert_eq!(r("1.235"), 124);
        assert_eq!(r("1.2251"), 123);
    }

    #[test]
    fn formats_amounts_back() {
        assert_eq!(format_amount(12345, 2), "123.45");
        assert_eq!(format_amount(5, 2), "0.05");
        assert_eq!(format_amount(-5, 2), "-0.05");
        assert_eq!(format_amount(42, 0), "42");
    }

    #[test]
    fn currency_exponents_come_from_iso_4217() {
        assert_eq!(Currency::from_code("CNY").unwrap().exponent(), 2);
        assert_eq!(Currency::from_code("JPY").unwrap().exponent(), 0);
        assert!(Currency::from_code("XYZ").is_none());
    }

    #[test]
    fn vocabularies_list_valid_values_in_errors() {
        let err = "wire".parse::<TxType>().unwrap_err();
        assert!(err.contains("payment, settlement, transfer"), "{err}");
        assert_eq!("cash_in".parse::<TxType>(), Ok(TxType::CashIn));
    }

    #[test]
    fn timestamps_round_trip_as_rfc3339_utc() {
        let t = parse_rfc3339("2026-01-05T09:31:07+08:00").unwrap();
        assert_eq!(format_ts(t), "2026-01-05T01:31:07Z");
    }
}
