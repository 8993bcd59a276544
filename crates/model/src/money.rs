//! Money: an integer number of minor units plus an ISO 4217 currency; never `f64`.

use std::fmt;

use serde::{Deserialize, Serialize};

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
    #[error("amount {0} is over the per-currency maximum (10^15 major units): {1}")]
    TooLarge(String, String),
}

/// The largest amount accepted, in major units of any currency: 10^15. Larger amounts
/// are not payments but data errors, and the cap keeps sums of many amounts far from
/// the 64-bit limit (they are computed in 128 bits anyway).
pub const MAX_MAJOR_UNITS: i64 = 1_000_000_000_000_000;

/// Never more than 10^18 minor units (currencies with 4 decimals: 10^14 major units).
const MAX_MINOR_UNITS: i64 = 1_000_000_000_000_000_000;

/// The largest amount accepted in minor units of a currency with `exponent` decimals:
/// [`MAX_MAJOR_UNITS`] scaled by the exponent, at most 10^18.
pub fn max_minor_units(exponent: u32) -> i64 {
    10i64
        .checked_pow(exponent)
        .and_then(|scale| scale.checked_mul(MAX_MAJOR_UNITS))
        .map_or(MAX_MINOR_UNITS, |max| max.min(MAX_MINOR_UNITS))
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

/// Parses a non-negative decimal string (`123.45`, `7`, `1e3` is refused) into minor units,
/// at most [`max_minor_units`].
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
    let max = max_minor_units(exponent);
    if minor > max {
        return Err(AmountError::TooLarge(
            t.to_string(),
            format_amount(max, exponent),
        ));
    }
    Ok(minor)
}

/// Renders minor units as a decimal string with the currency's exponent (`12345`, 2 → `123.45`).
/// Takes sums as well as amounts: sums of amounts are 128-bit.
pub fn format_amount(minor: impl Into<i128>, exponent: u32) -> String {
    let minor: i128 = minor.into();
    if exponent == 0 {
        return minor.to_string();
    }
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale = 10u128.pow(exponent);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = exponent as usize
    )
}

/// A decimal string with its whole part grouped by thousands: `1234567.89` → `1,234,567.89`.
pub fn group_thousands(amount: &str) -> String {
    let (sign, rest) = amount.strip_prefix('-').map_or(("", amount), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn amounts_are_grouped_by_thousands() {
        use super::group_thousands;
        assert_eq!(group_thousands("1234567.89"), "1,234,567.89");
        assert_eq!(group_thousands("123.00"), "123.00");
        assert_eq!(group_thousands("-1000"), "-1,000");
        assert_eq!(group_thousands("0.5"), "0.5");
    }

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
    fn amounts_beyond_the_per_currency_maximum_are_refused() {
        let max = "1000000000000000";
        assert_eq!(cny(max), Ok(100_000_000_000_000_000));
        assert_eq!(cny(&format!("{max}.00")), Ok(max_minor_units(2)));
        assert_eq!(
            cny("1000000000000000.01"),
            Err(AmountError::TooLarge(
                "1000000000000000.01".into(),
                "1000000000000000.00".into()
            ))
        );
        let jpy = |s| parse_amount(s, 0, ExcessPrecision::Reject);
        assert_eq!(jpy(max), Ok(MAX_MAJOR_UNITS));
        assert!(matches!(
            jpy("1000000000000001"),
            Err(AmountError::TooLarge(..))
        ));
        // Four decimals: capped at 10^18 minor units, 10^14 major units.
        assert_eq!(max_minor_units(4), 1_000_000_000_000_000_000);
        let clf = |s| parse_amount(s, 4, ExcessPrecision::Reject);
        assert_eq!(clf("100000000000000"), Ok(max_minor_units(4)));
        assert!(matches!(
            clf("100000000000000.0001"),
            Err(AmountError::TooLarge(..))
        ));
        // Rounding up past the maximum is refused too.
        let round = parse_amount("1000000000000000.009", 2, ExcessPrecision::Round);
        assert!(matches!(round, Err(AmountError::TooLarge(..))), "{round:?}");
        let text = AmountError::TooLarge("2e15".into(), "1000000000000000.00".into()).to_string();
        assert!(
            text.ends_with("maximum (10^15 major units): 1000000000000000.00"),
            "{text}"
        );
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
        let beyond_i64 = i128::from(i64::MAX) * 10;
        assert_eq!(format_amount(beyond_i64, 2), "922337203685477580.70");
        assert_eq!(format_amount(i64::MIN, 2), "-92233720368547758.08");
    }

    #[test]
    fn currency_exponents_come_from_iso_4217() {
        assert_eq!(Currency::from_code("CNY").unwrap().exponent(), 2);
        assert_eq!(Currency::from_code("JPY").unwrap().exponent(), 0);
        assert!(Currency::from_code("XYZ").is_none());
    }
}
