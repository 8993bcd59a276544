//! The reporting entity: who files the goAML and CAMLMAC reports (FIU registration, branch,
//! reporting person, address, CAMLMAC institution code) and the receiving FIU's lookup
//! codes, loaded from a YAML file whose errors point at file:line:column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::ExportError;
use super::xml::is_xml_char;
use clearwatch_model::{Currency, TxType};

/// One reporting entity, as configured (see `docs/reporting-entity.example.yaml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingEntity {
    /// The entity's registration number at the FIU (goAML `rentity_id`, ≥ 1).
    #[serde(deserialize_with = "de_rentity_id")]
    pub rentity_id: i32,
    /// goAML `rentity_branch`.
    #[serde(deserialize_with = "de_text::<_, 1, 255>")]
    pub rentity_branch: String,
    /// goAML `submission_code`: `E` electronic (default) or `M` manual.
    #[serde(
        default = "default_submission_code",
        deserialize_with = "de_submission"
    )]
    pub submission_code: String,
    /// ISO 4217 code of the currency amounts are reported in (goAML `amount_local`).
    #[serde(deserialize_with = "de_currency")]
    pub currency_code_local: String,
    /// IANA time zone goAML dates are written in (they carry no offset); default UTC.
    #[serde(default = "default_timezone", deserialize_with = "de_timezone")]
    pub timezone: chrono_tz::Tz,
    pub reporting_person: ReportingPerson,
    /// The entity's address (goAML `location`).
    pub location: Location,
    /// The 14-digit CAMLMAC institution code (`RICD`, file names).
    #[serde(deserialize_with = "de_institution_code")]
    pub institution_code: String,
    /// CAMLMAC report kind, the first letter of file names.
    #[serde(default)]
    pub report_kind: ReportKind,
    /// Lookup codes of the receiving FIU's goAML schema.
    #[serde(default)]
    pub goaml: GoamlCodes,
}

/// goAML `reporting_person` (`t_person_registration_in_report`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingPerson {
    #[serde(default, deserialize_with = "de_opt_text::<_, 1, 30>")]
    pub title: Option<String>,
    #[serde(deserialize_with = "de_text::<_, 1, 100>")]
    pub first_name: String,
    #[serde(deserialize_with = "de_text::<_, 1, 100>")]
    pub last_name: String,
    #[serde(default)]
    pub phone: Option<Phone>,
    #[serde(default, deserialize_with = "de_opt_text::<_, 1, 255>")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "de_opt_text::<_, 1, 255>")]
    pub occupation: Option<String>,
}

/// goAML `t_phone`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phone {
    #[serde(default = "dash", deserialize_with = "de_contact")]
    pub contact_type: String,
    #[serde(default = "dash", deserialize_with = "de_communication")]
    pub communication_type: String,
    #[serde(deserialize_with = "de_text::<_, 1, 4>")]
    pub country_prefix: String,
    #[serde(deserialize_with = "de_text::<_, 1, 50>")]
    pub number: String,
}

/// goAML `t_address`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// goAML `contact_type` code.
    #[serde(default = "dash", deserialize_with = "de_contact")]
    pub address_type: String,
    #[serde(deserialize_with = "de_text::<_, 1, 100>")]
    pub address: String,
    #[serde(default, deserialize_with = "de_opt_text::<_, 1, 255>")]
    pub town: Option<String>,
    #[serde(deserialize_with = "de_text::<_, 1, 255>")]
    pub city: String,
    #[serde(default, deserialize_with = "de_opt_text::<_, 1, 10>")]
    pub zip: Option<String>,
    /// goAML `country_type` (ISO 3166 alpha-2); also the country of transaction sides.
    #[serde(deserialize_with = "de_country")]
    pub country_code: String,
    #[serde(default, deserialize_with = "de_opt_text::<_, 1, 255>")]
    pub state: Option<String>,
}

/// CAMLMAC report kind: the `N|C|D` that file names start with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ReportKind {
    /// `N`: a normal (new) report.
    #[default]
    #[serde(rename = "N")]
    Normal,
    /// `C`: a correction of an earlier report.
    #[serde(rename = "C")]
    Correction,
    /// `D`: deletion of an earlier report.
    #[serde(rename = "D")]
    Deletion,
}

impl ReportKind {
    pub fn letter(self) -> char {
        match self {
            ReportKind::Normal => 'N',
            ReportKind::Correction => 'C',
            ReportKind::Deletion => 'D',
        }
    }
}

/// Codes from the receiving FIU's goAML lookup tables. The generic 5.0.1 schema lists
/// letters without meanings, so every default is `-` (unknown).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoamlCodes {
    /// `transmode_code` when neither the channel nor the type is mapped.
    #[serde(default = "dash", deserialize_with = "de_conduction")]
    pub transmode_code: String,
    /// `transmode_code` by transaction channel (`card`, `qr`, …); checked first.
    #[serde(default, deserialize_with = "de_conduction_map")]
    pub transmode_by_channel: BTreeMap<String, String>,
    /// `transmode_code` by transaction type (`transfer`, `cash_in`, …).
    #[serde(default, deserialize_with = "de_conduction_map")]
    pub transmode_by_type: BTreeMap<TxType, String>,
    /// `from_funds_code` / `to_funds_code` of every transaction side.
    #[serde(default = "dash", deserialize_with = "de_funds")]
    pub funds_code: String,
    /// `institution_code` by institution name as the accounts spell it; `-` when absent.
    #[serde(default, deserialize_with = "de_institution_codes")]
    pub institution_codes: BTreeMap<String, String>,
    /// Units of the local currency per unit of a foreign one (`USD: "7.1"`), for
    /// transactions not in `currency_code_local`; without a rate such a case is refused.
    #[serde(default, deserialize_with = "de_rates")]
    pub exchange_rates: BTreeMap<String, Rate>,
}

impl Default for GoamlCodes {
    fn default() -> Self {
        GoamlCodes {
            transmode_code: dash(),
            transmode_by_channel: BTreeMap::new(),
            transmode_by_type: BTreeMap::new(),
            funds_code: dash(),
            institution_codes: BTreeMap::new(),
            exchange_rates: BTreeMap::new(),
        }
    }
}

/// A positive decimal exchange rate: `mantissa / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub mantissa: i128,
    pub scale: u32,
}

impl Rate {
    /// Parses `7.1`, `0.1385`; at most 13 decimals (goAML `sql_decimal`) and 18 digits.
    pub fn parse(s: &str) -> Result<Rate, String> {
        let t = s.trim();
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (t.contains('.') && frac.is_empty()) {
            return Err(format!("exchange rate {s:?} is not a decimal number"));
        }
        if frac.len() > 13 || int.len() + frac.len() > 18 {
            return Err(format!(
                "exchange rate {s:?} has more than 13 decimals or 18 digits"
            ));
        }
        let mantissa: i128 = format!("{int}{frac}")
            .parse()
            .map_err(|_| format!("exchange rate {s:?} is not a decimal number"))?;
        if mantissa == 0 {
            return Err(format!("exchange rate {s:?} is not positive"));
        }
        Ok(Rate {
            mantissa,
            scale: frac.len() as u32,
        })
    }

    /// The rate as a decimal string without trailing zeros (`7.1`).
    pub fn to_decimal(self) -> String {
        let s = clearwatch_model::format_amount(self.mantissa, self.scale);
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }

    /// Converts `minor` units of a currency with exponent `from_exp` into minor units
    /// with exponent `to_exp`, rounding half to even; `None` on overflow.
    pub fn convert(self, minor: i64, from_exp: u32, to_exp: u32) -> Option<i64> {
        let num = i128::from(minor)
            .checked_mul(self.mantissa)?
            .checked_mul(10i128.checked_pow(to_exp)?)?;
        let den = 10i128.checked_pow(from_exp.checked_add(self.scale)?)?;
        let (q, r) = (num / den, num % den);
        let twice = r.checked_mul(2)?.abs();
        let q = if twice > den || (twice == den && q % 2 != 0) {
            q + num.signum()
        } else {
            q
        };
        i64::try_from(q).ok()
    }
}

impl ReportingEntity {
    /// Parses entity YAML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<ReportingEntity, ExportError> {
        serde_saphyr::from_str::<ReportingEntity>(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ExportError::Config {
                path: origin.to_path_buf(),
                line: line as u32,
                column: column as u32,
                message: e
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            }
        })
    }

    /// Reads and parses an entity file.
    pub fn load(path: impl AsRef<Path>) -> Result<ReportingEntity, ExportError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ExportError::Io {
            path: PathBuf::from(path),
            source,
        })?;
        ReportingEntity::parse(&text, path)
    }

    /// The goAML `transmode_code` of a transaction.
    pub fn transmode(&self, tx_type: TxType, channel: Option<&str>) -> &str {
        channel
            .and_then(|c| self.goaml.transmode_by_channel.get(c))
            .or_else(|| self.goaml.transmode_by_type.get(&tx_type))
            .unwrap_or(&self.goaml.transmode_code)
    }

    /// The goAML `institution_code` of an institution name (`-` when not configured).
    pub fn institution_code_of(&self, institution: Option<&str>) -> &str {
        institution
            .and_then(|i| self.goaml.institution_codes.get(i))
            .map_or("-", String::as_str)
    }
}

fn dash() -> String {
    "-".to_string()
}

fn default_submission_code() -> String {
    "E".to_string()
}

fn default_timezone() -> chrono_tz::Tz {
    chrono_tz::UTC
}

fn de_rentity_id<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let v = i64::deserialize(d)?;
    i32::try_from(v)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| serde::de::Error::custom(format!("rentity_id {v} is not in 1..=2147483647")))
}

fn check_text<E: serde::de::Error>(s: &str, min: usize, max: usize) -> Result<(), E> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(E::custom(format!(
            "{s:?} has {n} characters; the schema allows {min} to {max}"
        )));
    }
    if let Some(c) = s.chars().find(|c| !is_xml_char(*c)) {
        return Err(E::custom(format!(
            "{s:?} holds {c:?}, which XML 1.0 cannot carry"
        )));
    }
    Ok(())
}

fn de_text<'de, D: Deserializer<'de>, const MIN: usize, const MAX: usize>(
    d: D,
) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_text(&s, MIN, MAX)?;
    Ok(s)
}

fn de_opt_text<'de, D: Deserializer<'de>, const MIN: usize, const MAX: usize>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    if let Some(s) = &s {
        check_text(s, MIN, MAX)?;
    }
    Ok(s)
}

fn de_code<'de, D: Deserializer<'de>>(
    d: D,
    what: &str,
    valid: &[&str],
) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_code(&s, what, valid)?;
    Ok(s)
}

fn check_code<E: serde::de::Error>(s: &str, what: &str, valid: &[&str]) -> Result<(), E> {
    if valid.contains(&s) {
        Ok(())
    } else if valid.len() <= 40 {
        Err(E::custom(format!(
            "unknown goAML {what} {s:?} (valid: {})",
            valid.join(", ")
        )))
    } else {
        Err(E::custom(format!("unknown goAML {what} {s:?}")))
    }
}

fn de_submission<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_code(d, "submission_type", codes::SUBMISSIONS)
}

fn de_contact<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_code(d, "contact_type", codes::CONTACTS)
}

fn de_communication<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_code(d, "communication_type", codes::COMMUNICATIONS)
}

fn de_country<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_code(d, "country_type", codes::COUNTRIES)
}

fn de_conduction<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_code(d, "conduction_type", codes::CONDUCTIONS)
}

fn de_funds<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_code(d, "funds_type", codes::FUNDS)
}

fn check_currency<E: serde::de::Error>(s: &str) -> Result<(), E> {
    check_code(s, "currency_type", codes::CURRENCIES)?;
    if Currency::from_code(s).is_none() {
        return Err(E::custom(format!("{s:?} is not an ISO 4217 currency")));
    }
    Ok(())
}

fn de_currency<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_currency(&s)?;
    Ok(s)
}

fn de_timezone<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<chrono_tz::Tz>()
        .map_err(|_| serde::de::Error::custom(format!("unknown IANA time zone {s:?}")))
}

fn de_institution_code<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(serde::de::Error::custom(format!(
            "institution_code {s:?} is not 14 digits"
        )));
    }
    Ok(s)
}

fn de_conduction_map<'de, D, K>(d: D) -> Result<BTreeMap<K, String>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
{
    let m = BTreeMap::<K, String>::deserialize(d)?;
    for v in m.values() {
        check_code(v, "conduction_type", codes::CONDUCTIONS)?;
    }
    Ok(m)
}

fn de_institution_codes<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let m = BTreeMap::<String, String>::deserialize(d)?;
    for v in m.values() {
        check_text(v, 1, 50)?;
    }
    Ok(m)
}

fn de_rates<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Rate>, D::Error> {
    let m = BTreeMap::<String, String>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (k, v) in m {
        check_currency(&k)?;
        out.insert(k, Rate::parse(&v).map_err(serde::de::Error::custom)?);
    }
    Ok(out)
}

/// Enumerations of the generic goAML 5.0.1 schema (`../shared/schemas/goaml-5.0.1.xsd`).
pub mod codes {
    /// `currency_type` (262 values).
    pub const CURRENCIES: &[&str] = &[
        "-", "ADF", "ADP", "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "AOK", "AON", "ARA", "ARS",
        "ATS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BEC", "BEF", "BEL", "BGL", "BGN", "BHD",
        "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BUK", "BWP", "BYR", "BZD", "CAD", "CDF",
        "CDZ", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CSK", "CUP", "CVE",
        "CYP", "CZK", "DDM", "DEM", "DJF", "DKK", "DOP", "DZD", "ECS", "ECV", "EEK", "EGP", "ERN",
        "ESA", "ESB", "ESP", "ETB", "EUR", "FIM", "FJD", "FKP", "FRF", "GBP", "GEL", "GHC", "GHS",
        "GIP", "GMD", "GNF", "GNS", "GQE", "GRD", "GTQ", "GWP", "GYD", "HKD", "HNL", "HRK", "HTG",
        "HUF", "IDR", "IEP", "ILP", "ILR", "ILS", "INR", "IQD", "IRR", "ISJ", "ISK", "ITL", "JMD",
        "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAJ", "LAK",
        "LBP", "LKR", "LRD", "LSL", "LSM", "LTL", "LUF", "LVL", "LYD", "MAD", "MAF", "MCF", "MDL",
        "MGA", "MKD", "MKN", "MLF", "MMK", "MNT", "MOP", "MRO", "MTL", "MTP", "MUR", "MVQ", "MVR",
        "MWK", "MXN", "MYR", "MZM", "MZN", "NAD", "NFD", "NGN", "NIO", "NLG", "NOK", "NPR", "NZD",
        "OMR", "PAB", "PEH", "PEI", "PEN", "PES", "PGK", "PHP", "PKR", "PLN", "PLZ", "PTE", "PYG",
        "QAR", "ROL", "RON", "RSD", "RUB", "RUR", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
        "SHP", "SIT", "SKK", "SLL", "SML", "SOS", "SRD", "SSP", "STD", "STN", "SUR", "SVC", "SYP",
        "SZL", "THB", "TJR", "TJS", "TMM", "TMT", "TND", "TOP", "TPE", "TRL", "TRY", "TTD", "TWD",
        "TZS", "UAH", "UAK", "UGS", "UGX", "UKP", "USD", "USN", "USS", "UYN", "UYP", "UYU", "UZS",
        "VAL", "VEB", "VEF", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD",
        "XCD", "XDR", "XEU", "XFO", "XFU", "XOF", "XPD", "XPF", "XPT", "XTS", "XXX", "YDD", "YER",
        "YUD", "YUG", "YUM", "YUN", "YUO", "YUR", "ZAL", "ZAR", "ZMK", "ZMW", "ZRN", "ZRZ", "ZWC",
        "ZWD", "ZWN",
    ];
    /// `country_type` (282 values).
    pub const COUNTRIES: &[&str] = &[
        "-", "AC", "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AN", "AO", "AP", "AQ", "AR", "AS",
        "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL",
        "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BU", "BV", "BW", "BX", "BY", "BZ", "CA", "CC",
        "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CP", "CR", "CS", "CU", "CV",
        "CW", "CX", "CY", "CZ", "DE", "DG", "DJ", "DK", "DM", "DO", "DZ", "EA", "EC", "EE", "EF",
        "EG", "EH", "EM", "EP", "ER", "ES", "ET", "EU", "EV", "FI", "FJ", "FK", "FM", "FO", "FR",
        "FX", "GA", "GB", "GC", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ",
        "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "IB", "IC", "ID",
        "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG",
        "KH", "KI", "KM", "KN", "KP", "KR", "KS", "KW", "KY", "KZ", "LA", "LB", "LC", "LF", "LI",
        "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
        "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ",
        "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NT", "NU", "NZ", "OA", "OM",
        "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA",
        "RB", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ",
        "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SU", "SV", "SX", "SY", "SZ", "TA", "TC",
        "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TP", "TR", "TT", "TV", "TW",
        "TZ", "UA", "UG", "UM", "UN", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU",
        "WF", "WO", "WS", "WV", "XK", "YE", "YT", "YU", "ZA", "ZM", "ZR", "ZW",
    ];
    /// `funds_type` (28 values).
    pub const FUNDS: &[&str] = &[
        "-", "A", "B", "BB", "C", "CC", "D", "E", "EE", "F", "FF", "G", "H", "HH", "I", "J", "JJ",
        "K", "KK", "L", "LL", "M", "N", "NN", "O", "P", "QQ", "RR",
    ];
    /// `conduction_type` (27 values).
    pub const CONDUCTIONS: &[&str] = &[
        "-", "A", "AA", "AB", "AC", "AD", "AE", "AF", "AG", "AH", "AJ", "AK", "AL", "AM", "AN",
        "AO", "AP", "AQ", "AR", "AS", "AT", "AU", "B", "C", "D", "E", "F",
    ];
    /// `submission_type` (3 values).
    pub const SUBMISSIONS: &[&str] = &["-", "E", "M"];
    /// `contact_type` (5 values).
    pub const CONTACTS: &[&str] = &["-", "1", "2", "3", "4"];
    /// `communication_type` (6 values).
    pub const COMMUNICATIONS: &[&str] = &["-", "F", "L", "M", "P", "S"];
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "rentity_id: 7\nrentity_branch: HQ\ncurrency_code_local: CNY\n\
        reporting_person: { first_name: Wei, last_name: Zhang }\n\
        location: { address: 1 Road, city: Shanghai, country_code: CN }\n\
        institution_code: '12345678901234'\n";

    fn parse(text: &str) -> Result<ReportingEntity, ExportError> {
        ReportingEntity::parse(text, Path::new("entity.yaml"))
    }

    #[test]
    fn the_shipped_example_loads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/reporting-entity.example.yaml"
        );
        let e = ReportingEntity::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.rentity_id, 1024);
        assert_eq!(e.currency_code_local, "CNY");
        assert_eq!(e.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(e.institution_code, "12345678901234");
        assert_eq!(e.report_kind, ReportKind::Normal);
        assert_eq!(e.reporting_person.last_name, "Zhang");
        assert_eq!(e.location.country_code, "CN");
        assert_eq!(e.institution_code_of(Some("信宇银行")), "XYBKCNSH");
        assert_eq!(e.institution_code_of(Some("other")), "-");
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let e = parse(MINIMAL).unwrap();
        assert_eq!(e.submission_code, "E");
        assert_eq!(e.report_kind, ReportKind::Normal);
        assert_eq!(e.timezone, chrono_tz::UTC);
        assert_eq!(e.location.address_type, "-");
        assert_eq!(e.goaml, GoamlCodes::default());
        assert_eq!(e.transmode(TxType::Transfer, Some("qr")), "-");
    }

    #[test]
    fn transmode_prefers_channel_then_type() {
        let text = format!(
            "{MINIMAL}goaml:\n  transmode_code: A\n  transmode_by_channel: {{ qr: B }}\n  \
             transmode_by_type: {{ cash_in: C }}\n"
        );
        let e = parse(&text).unwrap();
        assert_eq!(e.transmode(TxType::CashIn, Some("qr")), "B");
        assert_eq!(e.transmode(TxType::CashIn, Some("card")), "C");
        assert_eq!(e.transmode(TxType::Transfer, None), "A");
    }

    fn error_at(text: &str) -> (u32, u32, String) {
        match parse(text) {
            Err(ExportError::Config {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn errors_point_at_the_offending_line() {
        let (line, _, msg) = error_at(&format!("{MINIMAL}colour: red\n"));
        assert_eq!(line, 7, "{msg}");
        assert!(msg.contains("colour"), "{msg}");

        let (line, _, msg) = error_at(&MINIMAL.replace("CNY", "RMB"));
        assert_eq!(line, 3, "{msg}");
        assert!(msg.contains("RMB"), "{msg}");

        let (line, _, msg) = error_at(&MINIMAL.replace("'12345678901234'", "'1234'"));
        assert_eq!(line, 6, "{msg}");
        assert!(msg.contains("14 digits"), "{msg}");

        let (line, _, msg) = error_at(&MINIMAL.replace("country_code: CN", "country_code: China"));
        assert_eq!(line, 5, "{msg}");

        let (_, _, msg) = error_at(&MINIMAL.replace("rentity_id: 7", "rentity_id: 0"));
        assert!(msg.contains("rentity_id 0"), "{msg}");

        let (_, _, msg) = error_at(&format!("{MINIMAL}report_kind: X\n"));
        assert!(msg.contains('X'), "{msg}");

        let (_, _, msg) = error_at(&format!("{MINIMAL}goaml: {{ funds_code: ZZ }}\n"));
        assert!(msg.contains("funds_type"), "{msg}");

        let long = "x".repeat(101);
        let (line, _, msg) =
            error_at(&MINIMAL.replace("last_name: Zhang", &format!("last_name: {long}")));
        assert_eq!(line, 4, "{msg}");
        assert!(msg.contains("1 to 100"), "{msg}");

        let err = ReportingEntity::load("/nonexistent/entity.yaml").unwrap_err();
        assert!(matches!(err, ExportError::Io { .. }), "{err}");
    }

    #[test]
    fn exchange_rates_parse_and_convert_half_even() {
        let e = parse(&format!(
            "{MINIMAL}goaml: {{ exchange_rates: {{ USD: 7.1, JPY: '0.05' }} }}\n"
        ))
        .unwrap();
        let usd = e.goaml.exchange_rates["USD"];
        assert_eq!(
            usd,
            Rate {
                mantissa: 71,
                scale: 1
            }
        );
        assert_eq!(usd.to_decimal(), "7.1");
        // 10.00 USD → 71.00 CNY; 0.01 USD → 0.071 → 0.07.
        assert_eq!(usd.convert(1000, 2, 2), Some(7100));
        assert_eq!(usd.convert(1, 2, 2), Some(7));
        // 5 JPY × 0.05 = 0.25 CNY; 1 JPY × 0.05 = 0.05.
        let jpy = e.goaml.exchange_rates["JPY"];
        assert_eq!(jpy.convert(5, 0, 2), Some(25));
        // Half to even: 0.5 → 0, 1.5 → 2.
        let half = Rate::parse("0.5").unwrap();
        assert_eq!(half.convert(1, 0, 0), Some(0));
        assert_eq!(half.convert(3, 0, 0), Some(2));
        assert_eq!(half.convert(i64::MAX, 0, 20), None);
        for bad in ["0", "-1", "1e3", "1.", "", "0.12345678901234"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
        let (_, _, msg) = error_at(&format!(
            "{MINIMAL}goaml: {{ exchange_rates: {{ USD: abc }} }}\n"
        ));
        assert!(msg.contains("abc"), "{msg}");
    }
}
