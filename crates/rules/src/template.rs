//! Summary templates: `"{hub} received {inflow} from {payers:payer|payers}"`. Placeholders
//! are metric names, `subject`, `window`, `from`, `until`, `currency` and `params.NAME`,
//! with an optional format: `{retention:pct}`, `{dwell_hours:.1}`, or a count with its
//! noun in the singular and the plural, `{payers:payer|payers}` (`1 payer`, `3 payers`).
//! `{{` and `}}` are braces.

use super::aggregate::Unit;
use super::params::Params;
use super::scope::Metric;
use clearwatch_model::{Zone, format_amount, format_ts};

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Metric(usize, Format),
    Subject,
    Window,
    From,
    Until,
    Currency,
    Param(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Format {
    Default,
    Percent,
    Decimals(usize),
    /// The number, then the noun for one or for any other count.
    Plural(String, String),
}

#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    units: Vec<Unit>,
}

/// What a summary is rendered with.
pub struct Values<'a> {
    pub metrics: &'a [Metric],
    pub subject: &'a str,
    pub from: i64,
    pub until: i64,
    pub currency: &'a str,
    pub params: &'a Params,
    /// Times print in this zone with its offset (`2026-03-05T00:00:00+08:00`); in UTC as
    /// `2026-03-04T16:00:00Z`.
    pub zone: Zone,
}

fn time_in(zone: Zone, ts: i64) -> String {
    if zone == Zone::UTC {
        format_ts(ts)
    } else {
        zone.format(ts)
    }
}

impl Template {
    /// Parses `text`; an error is (character offset, message, help).
    pub fn parse(
        text: &str,
        metrics: &[(String, Unit)],
        params: &Params,
    ) -> Result<Template, (usize, String, String)> {
        let chars: Vec<char> = text.chars().collect();
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        let valid = || {
            let mut names: Vec<String> = metrics.iter().map(|(n, _)| n.clone()).collect();
            names.extend(["subject", "window", "from", "until", "currency"].map(String::from));
            names.extend(params.keys().map(|k| format!("params.{k}")));
            format!("valid names: {}", names.join(", "))
        };
        while i < chars.len() {
            match chars[i] {
                '{' if chars.get(i + 1) == Some(&'{') => {
                    lit.push('{');
                    i += 2;
                }
                '}' if chars.get(i + 1) == Some(&'}') => {
                    lit.push('}');
                    i += 2;
                }
                '{' => {
                    let start = i;
                    let Some(len) = chars[i + 1..].iter().position(|&c| c == '}') else {
                        return Err((
                            start,
                            "unclosed `{` in summary".into(),
                            "write `{{` for a brace".into(),
                        ));
                    };
                    let inner: String = chars[i + 1..i + 1 + len].iter().collect();
                    let (name, fmt) = match inner.split_once(':') {
                        Some((n, f)) => (n.trim(), f.trim()),
                        None => (inner.trim(), ""),
                    };
                    let format = match fmt {
                        "" => Format::Default,
                        "pct" => Format::Percent,
                        f if f.starts_with('.') && f[1..].parse::<usize>().is_ok() => {
                            Format::Decimals(f[1..].parse().unwrap_or(0))
                        }
                        f if f.split('|').count() == 2
                            && f.split('|').all(|w| !w.trim().is_empty()) =>
                        {
                            let (one, many) = f.split_once('|').unwrap_or((f, f));
                            Format::Plural(one.trim().to_string(), many.trim().to_string())
                        }
                        other => {
                            return Err((
                                start,
                                format!("unknown format `{other}`"),
                                "valid formats: pct, .N (N decimals), ONE|MANY (a count and its noun: `payer|payers`)".into(),
                            ));
                        }
                    };
                    let is_plural = matches!(format, Format::Plural(..));
                    let piece = match name {
                        "subject" => Piece::Subject,
                        "window" => Piece::Window,
                        "from" => Piece::From,
                        "until" => Piece::Until,
                        "currency" => Piece::Currency,
                        p if p.starts_with("params.") && params.contains_key(&p[7..]) => {
                            Piece::Param(p[7..].to_string())
                        }
                        m => match metrics.iter().position(|(n, _)| n == m) {
                            Some(idx) => Piece::Metric(idx, format),
                            None => {
                                return Err((
                                    start,
                                    format!("unknown name `{m}` in summary"),
                                    valid(),
                                ));
                            }
                        },
                    };
                    let counts = |p: &Piece| match p {
                        Piece::Metric(idx, _) => metrics[*idx].1 == Unit::Count,
                        _ => false,
                    };
                    if is_plural && !counts(&piece) {
                        return Err((
                            start,
                            format!("`{name}` is not a count: `ONE|MANY` takes a count"),
                            "use it on count, count_distinct, novel or recurring metrics".into(),
                        ));
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(piece);
                    i += len + 2;
                }
                c => {
                    lit.push(c);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template {
            pieces,
            units: metrics.iter().map(|(_, u)| *u).collect(),
        })
    }

    /// [`Template::render`] on one line with single spaces (YAML block scalars leave line
    /// breaks and trailing newlines).
    pub fn render_line(&self, v: &Values<'_>) -> String {
        let rendered = self.render(v);
        rendered.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    pub fn render(&self, v: &Values<'_>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Subject => out.push_str(v.subject),
                Piece::Window => out.push_str(&format!(
                    "{} .. {}",
                    time_in(v.zone, v.from),
                    time_in(v.zone, v.until)
                )),
                Piece::From => out.push_str(&time_in(v.zone, v.from)),
                Piece::Until => out.push_str(&time_in(v.zone, v.until)),
                Piece::Currency => out.push_str(v.currency),
                Piece::Param(name) => {
                    if let Some(p) = v.params.get(name) {
                        out.push_str(&p.to_string());
                    }
                }
                Piece::Metric(i, Format::Plural(one, many)) => {
                    let m = v.metrics[*i];
                    let number = format_metric(m, self.units[*i], &Format::Default, v.currency);
                    let is_one = matches!(m, Metric::Int(1));
                    out.push_str(&format!("{number} {}", if is_one { one } else { many }));
                }
                Piece::Metric(i, fmt) => out.push_str(&format_metric(
                    v.metrics[*i],
                    self.units[*i],
                    fmt,
                    v.currency,
                )),
            }
        }
        out
    }
}

fn format_metric(m: Metric, unit: Unit, fmt: &Format, currency: &str) -> String {
    let x = match m {
        Metric::Money(minor, exp) => {
            return match fmt {
                Format::Default => format!("{} {currency}", format_amount(minor, exp)),
                _ => format_float(m.val().as_f64(), fmt),
            };
        }
        Metric::Int(i) if *fmt == Format::Default => return i.to_string(),
        Metric::Int(i) => i as f64,
        Metric::Float(x) => x,
    };
    if !x.is_finite() {
        return "n/a".into();
    }
    match (unit, fmt) {
        (Unit::Ratio, Format::Default) | (_, Format::Percent) => format!("{:.1}%", x * 100.0),
        (Unit::Hours, Format::Default) => format!("{x:.1} h"),
        (Unit::Real, Format::Default) => format!("{x:.4}"),
        (_, f) => format_float(x, f),
    }
}

fn format_float(x: f64, fmt: &Format) -> String {
    match fmt {
        Format::Decimals(n) => format!("{x:.n$}"),
        Format::Percent => format!("{:.1}%", x * 100.0),
        Format::Default | Format::Plural(..) => format!("{x:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Vec<(String, Unit)> {
        vec![
            ("inflow".into(), Unit::Money),
            ("retention".into(), Unit::Ratio),
            ("payees".into(), Unit::Count),
            ("dwell".into(), Unit::Hours),
        ]
    }

    #[test]
    fn renders_figures_with_their_units() {
        let t = Template::parse(
            "{subject}: {inflow}, {retention} kept {retention:.3}, {payees} payees, {dwell}, {{x}}",
            &metrics(),
            &Params::new(),
        )
        .unwrap();
        let vals = [
            Metric::Money(1234567, 2),
            Metric::Float(0.975),
            Metric::Int(12),
            Metric::Float(49.25),
        ];
        let s = t.render(&Values {
            metrics: &vals,
            subject: "H1",
            from: 0,
            until: 1,
            currency: "CNY",
            params: &Params::new(),
            zone: Zone::UTC,
        });
        assert_eq!(
            s,
            "H1: 12345.67 CNY, 97.5% kept 0.975, 12 payees, 49.2 h, {x}"
        );
    }

    #[test]
    fn counts_take_the_singular_or_the_plural_noun() {
        let t = Template::parse(
            "{payees:payee|payees}; {payees:distinct payer|distinct payers}",
            &metrics(),
            &Params::new(),
        )
        .unwrap();
        let render = |n: i64| {
            let vals = [
                Metric::Money(0, 2),
                Metric::Float(0.0),
                Metric::Int(n),
                Metric::Float(0.0),
            ];
            t.render(&Values {
                metrics: &vals,
                subject: "H",
                from: 0,
                until: 0,
                currency: "CNY",
                params: &Params::new(),
                zone: Zone::UTC,
            })
        };
        assert_eq!(render(1), "1 payee; 1 distinct payer");
        assert_eq!(render(0), "0 payees; 0 distinct payers");
        assert_eq!(render(12), "12 payees; 12 distinct payers");
        let err = Template::parse("{payees:payee|}", &metrics(), &Params::new()).unwrap_err();
        assert!(err.2.contains("ONE|MANY"), "{err:?}");
        let err = Template::parse("{inflow:yuan|yuan}", &metrics(), &Params::new()).unwrap_err();
        assert!(err.1.contains("not a count"), "{err:?}");
    }

    #[test]
    fn unknown_names_are_errors_at_their_offset_listing_valid_names() {
        let err = Template::parse("ok {payes}", &metrics(), &Params::new()).unwrap_err();
        assert_eq!(err.0, 3);
        assert!(err.1.contains("payes"));
        assert!(err.2.contains("payees"));
    }
}
