//! Rule parameters: typed, with defaults and bounds, overridable per run or per test.
//! Durations are written `90s`, `30m`, `36h`, `7d` or `2w`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::expr::Const;
use clearwatch_model::Millis;

#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Duration(Millis),
    Str(String),
    Bool(bool),
    List(Vec<String>),
}

pub const PARAM_TYPES: &str = "int, float, duration, string, bool, list";

const HOUR_MS: f64 = 3_600_000.0;

impl ParamValue {
    /// Reads a YAML/JSON value as a parameter of type `ty`.
    pub fn from_json(ty: &str, v: &serde_json::Value) -> Result<ParamValue, String> {
        use serde_json::Value as J;
        Ok(match (ty, v) {
            ("int", J::Number(n)) if n.is_i64() => ParamValue::Int(n.as_i64().unwrap_or(0)),
            ("float", J::Number(n)) => ParamValue::Float(n.as_f64().unwrap_or(0.0)),
            ("duration", J::String(s)) => ParamValue::Duration(parse_duration(s)?),
            ("string", J::String(s)) => ParamValue::Str(s.clone()),
            ("bool", J::Bool(b)) => ParamValue::Bool(*b),
            ("list", J::Array(items)) => ParamValue::List(
                items
                    .iter()
                    .map(|i| match i {
                        J::String(s) => Ok(s.clone()),
                        other => Err(format!("list items must be strings, found {other}")),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            ("int" | "float" | "duration" | "string" | "bool" | "list", other) => {
                return Err(format!("{other} is not a valid {ty}"));
            }
            (other, _) => {
                return Err(format!(
                    "unknown parameter type {other:?} (valid: {PARAM_TYPES})"
                ));
            }
        })
    }

    /// The value as rule expressions see it: durations in hours.
    pub fn to_const(&self) -> Const {
        match self {
            ParamValue::Int(i) => Const::Int(*i),
            ParamValue::Float(x) => Const::Float(*x),
            ParamValue::Duration(ms) => Const::Float(*ms as f64 / HOUR_MS),
            ParamValue::Str(s) => Const::Str(Arc::from(s.as_str())),
            ParamValue::Bool(b) => Const::Bool(*b),
            ParamValue::List(items) => Const::List(
                items
                    .iter()
                    .map(|s| Const::Str(Arc::from(s.as_str())))
                    .collect::<Vec<_>>()
                    .into(),
            ),
        }
    }

    fn rank(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(x) => Some(*x),
            ParamValue::Duration(ms) => Some(*ms as f64),
            _ => None,
        }
    }

    /// Checks `min <= self <= max` for ordered types.
    pub fn check_bounds(
        &self,
        min: Option<&ParamValue>,
        max: Option<&ParamValue>,
    ) -> Result<(), String> {
        let v = self.rank();
        if let (Some(v), Some(lo)) = (v, min.and_then(ParamValue::rank))
            && v < lo
        {
            return Err(format!("{self} is below the minimum {}", min.expect("set")));
        }
        if let (Some(v), Some(hi)) = (v, max.and_then(ParamValue::rank))
            && v > hi
        {
            return Err(format!("{self} is above the maximum {}", max.expect("set")));
        }
        Ok(())
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::Int(i) => serde_json::json!(i),
            ParamValue::Float(x) => serde_json::json!(x),
            ParamValue::Duration(ms) => serde_json::json!(format_duration(*ms)),
            ParamValue::Str(s) => serde_json::json!(s),
            ParamValue::Bool(b) => serde_json::json!(b),
            ParamValue::List(l) => serde_json::json!(l),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Duration(ms) => f.write_str(&format_duration(*ms)),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

/// Parses `90s`, `30m`, `36h`, `7d`, `2w` into milliseconds.
pub fn parse_duration(s: &str) -> Result<Millis, String> {
    let t = s.trim();
    let unit_at = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration {s:?} needs a unit (s, m, h, d, w)"))?;
    let (num, unit) = t.split_at(unit_at);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("duration {s:?} must start with a whole number"))?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => {
            return Err(format!(
                "unknown duration unit {unit:?} in {s:?} (valid: s, m, h, d, w)"
            ));
        }
    };
    n.checked_mul(ms)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("duration {s:?} must be positive"))
}

pub fn format_duration(ms: Millis) -> String {
    for (unit, size) in [
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
    ] {
        if ms % size == 0 && ms >= size {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{}s", ms / 1000)
}

/// Resolved parameter values of a rule, by name.
pub type Params = BTreeMap<String, ParamValue>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration("36h"), Ok(36 * 3_600_000));
        assert!(parse_duration("7").unwrap_err().contains("unit"));
        assert!(
            parse_duration("7y")
                .unwrap_err()
                .contains("valid: s, m, h, d, w")
        );
        assert!(parse_duration("0d").is_err());
        assert_eq!(format_duration(7 * 86_400_000), "1w");
        assert_eq!(format_duration(36 * 3_600_000), "36h");
    }

    #[test]
    fn bounds_are_checked() {
        let v = ParamValue::Int(1);
        assert!(v.check_bounds(Some(&ParamValue::Int(2)), None).is_err());
        assert!(
            v.check_bounds(Some(&ParamValue::Int(1)), Some(&ParamValue::Int(1)))
                .is_ok()
        );
    }

    #[test]
    fn values_are_typed() {
        let j = serde_json::json!(0.9);
        assert_eq!(
            ParamValue::from_json("float", &j),
            Ok(ParamValue::Float(0.9))
        );
        assert!(ParamValue::from_json("int", &j).is_err());
        assert!(
            ParamValue::from_json("money", &j)
                .unwrap_err()
                .contains("valid: int")
        );
    }
}
