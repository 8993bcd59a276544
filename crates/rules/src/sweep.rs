//! Parameter sweeps for tuning: `RULE.PARAM=a..b[:step]` names one parameter of one rule
//! and the values to try, for `clearwatch eval --sweep`.

use super::params::{ParamValue, format_duration, parse_duration};

/// The most values one sweep may try.
pub const MAX_SWEEP_VALUES: usize = 200;

/// A parsed `RULE.PARAM=a..b[:step]`; the values are typed once the rule is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    pub rule: String,
    pub param: String,
    pub from: String,
    pub to: String,
    pub step: Option<String>,
}

impl std::str::FromStr for Sweep {
    type Err = String;

    fn from_str(s: &str) -> Result<Sweep, String> {
        let usage = || {
            format!(
                "sweep {s:?}: expected RULE.PARAM=FROM..TO[:STEP], e.g. ML-02.min_payees=4..12:2"
            )
        };
        let (name, range) = s.split_once('=').ok_or_else(usage)?;
        let (rule, param) = name.split_once('.').ok_or_else(usage)?;
        let (range, step) = match range.split_once(':') {
            Some((r, st)) => (r, Some(st.trim().to_string())),
            None => (range, None),
        };
        let (from, to) = range.split_once("..").ok_or_else(usage)?;
        let parts = [rule, param, from, to];
        if parts.iter().any(|p| p.trim().is_empty()) || step.as_deref() == Some("") {
            return Err(usage());
        }
        Ok(Sweep {
            rule: rule.trim().to_string(),
            param: param.trim().to_string(),
            from: from.trim().to_string(),
            to: to.trim().to_string(),
            step,
        })
    }
}

impl Sweep {
    /// The values to try, as parameter overrides, typed like `current` (the parameter's
    /// value in the rule): int and float step by `step` (default 1, and a tenth of the
    /// range), durations by a duration (default a tenth of the range).
    pub fn values(&self, current: &ParamValue) -> Result<Vec<serde_json::Value>, String> {
        let name = format!("{}.{}", self.rule, self.param);
        let bad =
            |what: &str, v: &str| format!("sweep of {name}: {what} {v:?} is not a valid value");
        let out: Vec<serde_json::Value> = match current {
            ParamValue::Int(_) => {
                let int = |v: &str, what: &str| v.parse::<i64>().map_err(|_| bad(what, v));
                let (a, b) = (int(&self.from, "from")?, int(&self.to, "to")?);
                let step = self.step.as_deref().map_or(Ok(1), |s| int(s, "step"))?;
                steps(a as f64, b as f64, step as f64, &name)?
                    .map(|x| serde_json::json!(x.round() as i64))
                    .collect()
            }
            ParamValue::Float(_) => {
                let num = |v: &str, what: &str| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| bad(what, v))
                };
                let (a, b) = (num(&self.from, "from")?, num(&self.to, "to")?);
                let step = match self.step.as_deref() {
                    Some(s) => num(s, "step")?,
                    None => (b - a) / 10.0,
                };
                // Rounded so that 0.1 + 0.2 prints as 0.3.
                steps(a, b, step, &name)?
                    .map(|x| serde_json::json!((x * 1e9).round() / 1e9))
                    .collect()
            }
            ParamValue::Duration(_) => {
                let dur = |v: &str, what: &str| parse_duration(v).map_err(|_| bad(what, v));
                let (a, b) = (dur(&self.from, "from")?, dur(&self.to, "to")?);
                let step = match self.step.as_deref() {
                    Some(s) => dur(s, "step")?,
                    None => ((b - a) / 10).max(1000),
                };
                steps(a as f64, b as f64, step as f64, &name)?
                    .map(|x| serde_json::json!(format_duration(x.round() as i64)))
                    .collect()
            }
            other => {
                return Err(format!(
                    "sweep of {name}: the parameter is {other}; only int, float and duration parameters can be swept"
                ));
            }
        };
        Ok(out)
    }
}

/// `a, a + step, …` up to `b` (computed from the index, so no error accumulates).
fn steps(a: f64, b: f64, step: f64, name: &str) -> Result<impl Iterator<Item = f64>, String> {
    if b < a || step <= 0.0 || !step.is_finite() {
        return Err(format!(
            "sweep of {name}: needs FROM <= TO and a positive step"
        ));
    }
    let n = ((b - a) / step + 1e-9).floor() as usize + 1;
    if n > MAX_SWEEP_VALUES {
        return Err(format!(
            "sweep of {name}: {n} values; at most {MAX_SWEEP_VALUES} (use a larger step)"
        ));
    }
    Ok((0..n).map(move |i| a + step * i as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(s: &str) -> Sweep {
        s.parse().unwrap()
    }

    #[test]
    fn parses_rule_param_and_range() {
        let s = sweep("ML-02.min_payees=4..12:2");
        assert_eq!((s.rule.as_str(), s.param.as_str()), ("ML-02", "min_payees"));
        assert_eq!((s.from.as_str(), s.to.as_str()), ("4", "12"));
        assert_eq!(s.step.as_deref(), Some("2"));
        for bad in [
            "ML-02=1..2",
            "ML-02.x",
            "ML-02.x=1",
            "ML-02.x=1..",
            "ML-02.x=1..2:",
        ] {
            let e = bad.parse::<Sweep>().unwrap_err();
            assert!(e.contains("RULE.PARAM=FROM..TO"), "{bad}: {e}");
        }
    }

    #[test]
    fn values_follow_the_parameter_type() {
        let ints = sweep("R.p=4..12:3").values(&ParamValue::Int(5)).unwrap();
        assert_eq!(
            ints,
            serde_json::json!([4, 7, 10]).as_array().unwrap().clone()
        );
        let floats = sweep("R.p=0.1..0.3:0.1")
            .values(&ParamValue::Float(0.2))
            .unwrap();
        assert_eq!(
            floats,
            serde_json::json!([0.1, 0.2, 0.3])
                .as_array()
                .unwrap()
                .clone()
        );
        let days = sweep("R.p=1d..3d:1d")
            .values(&ParamValue::Duration(86_400_000))
            .unwrap();
        assert_eq!(
            days,
            serde_json::json!(["1d", "2d", "3d"])
                .as_array()
                .unwrap()
                .clone()
        );
        let e = sweep("R.p=1..2")
            .values(&ParamValue::Bool(true))
            .unwrap_err();
        assert!(e.contains("only int, float and duration"), "{e}");
    }

    #[test]
    fn empty_or_huge_ranges_are_refused() {
        assert!(sweep("R.p=5..4").values(&ParamValue::Int(1)).is_err());
        assert!(sweep("R.p=1..2:0").values(&ParamValue::Int(1)).is_err());
        let e = sweep("R.p=1..100000")
            .values(&ParamValue::Int(1))
            .unwrap_err();
        assert!(e.contains("at most 200"), "{e}");
    }
}
