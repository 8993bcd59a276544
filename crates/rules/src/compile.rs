//! Compilation: a parsed [`RuleConfig`] becomes a runtime [`Rule`] (typed parameters,
//! compiled expressions, a detector from the kind registry, the summary template), or
//! every diagnostic found in it. [`Cx`] is what a kind's compile function works with: its
//! typed `detect` config, expressions, durations, windows and aggregates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use super::aggregate::{AggFn, Aggregate, FIELDS, Field, Unit};
use super::config::{AggregateConfig, Aggregates, RuleConfig, TestConfig, Text, WindowConfig};
use super::diag::{self, Diagnostic};
use super::expr::{self, Const, ListTable, Macro, Program, Schema, Ty};
use super::kinds::{self, Align, Detector, Reach, Windows};
use super::load::{Origin, yaml_error};
use super::params::{PARAM_TYPES, ParamValue, Params, parse_duration};
use super::scope;
use super::scope::Metric;
use super::template::{Template, Values};
use super::texts::{self, RuleText, Texts};
use clearwatch_model::Severity;
use clearwatch_model::{Alert, Currency, ExcessPrecision, Lang, Millis, Zone, parse_amount};

/// How far a rule is along its life: what a scan runs by default (all but `deprecated`),
/// and what a `stable` rule must carry (a positive and a negative test case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleStatus {
    Experimental,
    Test,
    Stable,
    Deprecated,
}

impl RuleStatus {
    pub const ALL: [RuleStatus; 4] = [
        RuleStatus::Experimental,
        RuleStatus::Test,
        RuleStatus::Stable,
        RuleStatus::Deprecated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Experimental => "experimental",
            RuleStatus::Test => "test",
            RuleStatus::Stable => "stable",
            RuleStatus::Deprecated => "deprecated",
        }
    }

    /// The accepted spellings, for error messages.
    pub fn valid_values() -> String {
        RuleStatus::ALL.map(RuleStatus::as_str).join(", ")
    }
}

impl std::fmt::Display for RuleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RuleStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RuleStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown rule status {s:?} (valid: {})",
                    RuleStatus::valid_values()
                )
            })
    }
}

/// Lists and macros of `rules/_shared/`.
#[derive(Debug, Default)]
pub struct Shared {
    pub consts: BTreeMap<String, Const>,
    pub macros: BTreeMap<String, Arc<Macro>>,
    /// The folder's default zone of local times.
    pub time_zone: Option<Zone>,
    /// Rule titles, summaries and figure names in other languages.
    pub texts: Texts,
    /// The watch and allow lists of the store, for `in_list`.
    pub lists: Arc<ListTable>,
}

/// A compiled rule.
pub struct Rule {
    pub id: String,
    pub title: String,
    pub status: RuleStatus,
    pub severity: Severity,
    pub kind: &'static str,
    pub path: PathBuf,
    /// Where the text came from.
    pub origin: Origin,
    /// The exact rule file text.
    pub text: String,
    /// SHA-256 of the rule text, the shared lists and macros it uses, and the parameter
    /// values.
    pub version: String,
    pub params: Params,
    pub requires_accounts: bool,
    pub requires_merchants: bool,
    pub detector: Box<dyn Detector>,
    pub metrics: Vec<(String, Unit)>,
    pub score_base: i64,
    pub score_mods: Vec<(Program, i64)>,
    pub summary: Template,
    /// Its title and summary in the other languages that have them.
    pub texts: BTreeMap<Lang, RuleText>,
    pub config: RuleConfig,
    /// What `rules lint` warns about (the rule runs regardless).
    pub warnings: Vec<Diagnostic>,
    /// The condition's tests of a metric against a constant, for showing each figure
    /// beside the threshold it passed.
    pub thresholds: Vec<Threshold>,
    pub balance: BalanceMetrics,
    /// Which windows an incremental scan re-evaluates after new data; `None`: all.
    pub reach: Option<Reach>,
    /// Its findings on an account depend only on that account's own transactions and the
    /// registries, so they can be evaluated from those alone: stream workers evaluate it
    /// for the accounts they own as their transactions arrive.
    pub local: bool,
    /// The zone of its local times and local-day windows: its own `time_zone`, else its
    /// folder's (`_shared`), else UTC.
    pub time_zone: Zone,
    /// The watch and allow lists its expressions read (`in_list`), sorted.
    pub lists: Vec<String>,
}

impl Rule {
    pub fn tests(&self) -> &[TestConfig] {
        &self.config.tests
    }

    /// Its summary of `values` on one line with single spaces (YAML block scalars leave
    /// line breaks and trailing newlines).
    pub fn summary_of(&self, values: &Values<'_>) -> String {
        self.summary.render_line(values)
    }

    /// Its title in `lang`, else in English.
    pub fn title_in(&self, lang: Lang) -> &str {
        self.texts
            .get(&lang)
            .and_then(|t| t.title.as_deref())
            .unwrap_or(&self.title)
    }

    /// The summary of a stored alert of this rule version again, in `lang` (English where
    /// the rule has no summary in it) with its times in `zone` (a reader's zone), from the
    /// metrics the alert stored. `None` when the alert is of another version, a metric is
    /// missing or of another type, or the stored metrics do not give back the stored
    /// summary in the rule's own zone (they are rounded to four places, so a percentage
    /// can print differently): the stored text then stands.
    pub fn summary_in(&self, alert: &Alert, zone: Zone, lang: Lang) -> Option<String> {
        if alert.rule_version != self.version {
            return None;
        }
        let exponent = alert
            .currency
            .as_deref()
            .and_then(Currency::from_code)
            .map(Currency::exponent);
        let metrics = self
            .metrics
            .iter()
            .map(|(name, _)| match alert.metrics.get(name)? {
                serde_json::Value::String(text) => {
                    let exp = exponent?;
                    parse_amount(text, exp, ExcessPrecision::Reject)
                        .ok()
                        .map(|minor| Metric::Money(minor, exp))
                }
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .map(Metric::Int)
                    .or_else(|| n.as_f64().map(Metric::Float)),
                serde_json::Value::Null => Some(Metric::Float(f64::NAN)),
                _ => None,
            })
            .collect::<Option<Vec<Metric>>>()?;
        let mut values = Values {
            metrics: &metrics,
            subject: &alert.subject.id,
            from: alert.window.from,
            until: alert.window.until,
            currency: alert.currency.as_deref().unwrap_or(""),
            params: &self.params,
            zone: self.time_zone,
        };
        if self.summary_of(&values) != alert.summary {
            return None;
        }
        values.zone = zone;
        let template = self
            .texts
            .get(&lang)
            .and_then(|t| t.summary.as_ref())
            .unwrap_or(&self.summary);
        Some(template.render_line(&values))
    }
}

/// The compile context of one rule file: its text, its detector kind, resolved
/// parameters, shared definitions and the diagnostics found so far.
pub struct Cx<'a> {
    pub path: &'a Path,
    pub source: &'a str,
    pub diags: Vec<Diagnostic>,
    /// Findings that do not stop the rule from compiling (`rules lint` prints them).
    pub warnings: Vec<Diagnostic>,
    pub params: Params,
    /// `detect.kind` as written.
    kind: &'a Text,
    shared: &'a Shared,
    evidence: Option<&'a Vec<Text>>,
    /// What the condition holds each metric against (see [`Rule::thresholds`]).
    thresholds: Vec<Threshold>,
    balance: BalanceMetrics,
    /// Set by kinds whose windows decide their results (see [`Reach`]).
    pub reach: Option<Reach>,
    /// Set by kinds whose subject is an account and that read only its transactions (see
    /// [`Rule::local`]).
    pub local: bool,
    /// Some expression reads an account field of the whole loaded period.
    whole_period: bool,
}

/// A metric tested against a constant in the rule's condition, parameters filled in:
/// `payees ≥ 10`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Threshold {
    pub metric: String,
    /// `≥`, `>`, `≤`, `<`, `=` or `≠`, with the metric on the left.
    pub op: &'static str,
    pub value: f64,
}

/// The metrics of a rule that replay a pool's balance: where a chart of the balance
/// starts (`balance_open`) and its peak (`balance_peak`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BalanceMetrics {
    pub open: Option<String>,
    pub peak: Option<String>,
}

/// Where the fields of each kind are documented.
const KINDS_DOC: &str = "docs/rule-reference.md";

/// A rule file read for its `detect` block only (serde skips the other keys). Read
/// directly, not through `flatten` or a tagged enum, so that every value keeps its span.
#[derive(Deserialize)]
struct DetectDoc<D> {
    detect: D,
}

/// Whether a kind reads the aggregate option `shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    Read,
    Refused,
}

impl<'a> Cx<'a> {
    /// The rule's `detect` block as the kind's own config type `D`: the rule text is read
    /// again, keeping spans. Unknown and ill-typed fields are reported here.
    pub fn detect_config<D: DeserializeOwned>(&mut self) -> Option<D> {
        match super::load::parse_yaml::<DetectDoc<D>>(self.source) {
            Ok(doc) => Some(doc.detect),
            Err(e) => {
                let mut d = yaml_error(self.path, self.source, &e, KINDS_DOC);
                d.message = format!("kind `{}`: {}", self.kind.value, d.message);
                self.diags.push(d);
                None
            }
        }
    }

    /// An optional expression: `Ok(None)` when absent, `Err(())` when it did not compile.
    #[allow(clippy::result_unit_err)]
    pub fn opt_expr(
        &mut self,
        text: Option<&Text>,
        schema: &Schema,
        want: Ty,
    ) -> Result<Option<Program>, ()> {
        match text {
            None => Ok(None),
            Some(t) => self.expr(t, schema, want).map(Some).ok_or(()),
        }
    }

    /// Which of the kind's sets go into the evidence (`evidence.transactions`; default all).
    pub fn evidence_sets(&mut self, sets: &[&str]) -> Vec<bool> {
        let Some(names) = self.evidence else {
            return vec![true; sets.len()];
        };
        let mut chosen = vec![false; sets.len()];
        for n in names {
            match sets.iter().position(|s| *s == n.value) {
                Some(i) => chosen[i] = true,
                None => {
                    let msg = format!("unknown set `{}` in evidence", n.value);
                    self.error(n, msg, Some(format!("valid sets: {}", sets.join(", "))));
                }
            }
        }
        chosen
    }

    pub fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>, help: Option<String>) {
        self.diags
            .push(diag::at(self.path, self.source, at, message).with_help(help));
    }

    /// The schema of a transaction filter: the base schema, `tx`, `merchant`, and the
    /// transaction's two accounts bound as `slot0` and `slot1` (say `hub` and `peer`).
    pub fn edge_schema(&self, slot0: &str, slot1: &str) -> Schema {
        let mut s = self.base_schema();
        scope::add_tx(&mut s);
        scope::add_account(&mut s, slot0, 0);
        scope::add_account(&mut s, slot1, 1);
        scope::add_merchant(&mut s);
        s
    }

    /// Parameters, shared lists and macros: what every expression may use.
    pub fn base_schema(&self) -> Schema {
        let mut s = Schema::new();
        for (name, v) in &self.params {
            s.constant(&format!("params.{name}"), v.to_const());
        }
        for (name, c) in &self.shared.consts {
            s.constant(name, c.clone());
        }
        for (name, m) in &self.shared.macros {
            s.add_macro(name, m.clone());
        }
        s.lists(self.shared.lists.clone());
        s
    }

    /// Compiles an expression, reporting its errors at their file positions.
    pub fn expr(&mut self, text: &Text, schema: &Schema, want: Ty) -> Option<Program> {
        match expr::compile(&text.value, schema, want) {
            Ok(p) => {
                self.warn_absent_evidence(text, schema, &p);
                self.whole_period |= p.reads(&scope::is_whole_period);
                Some(p)
            }
            Err(errors) => {
                for e in errors {
                    let (line, column) = match &e.in_macro {
                        None => diag::position_in_scalar(self.source, text, e.offset),
                        Some(_) => (
                            text.referenced.line() as usize,
                            text.referenced.column() as usize,
                        ),
                    };
                    let message = match &e.in_macro {
                        None => e.message,
                        Some(m) => format!("in shared macro `{m}`: {}", e.message),
                    };
                    self.diags.push(
                        Diagnostic::new(self.path, line, column, message)
                            .with_snippet(self.source)
                            .with_help(e.help),
                    );
                }
                None
            }
        }
    }

    /// Warns about each inequality that an absent text field satisfies on its own (see
    /// docs/rules.md, "Absent fields").
    fn warn_absent_evidence(&mut self, text: &Text, schema: &Schema, p: &Program) {
        for (var, with) in p.unguarded_inequalities(&scope::is_optional_text) {
            let name = schema.var_name(var).unwrap_or("?");
            let against = match with.and_then(|w| schema.var_name(w)) {
                Some(other) => format!("`{other}`"),
                None => "a literal".to_string(),
            };
            let message = format!(
                "`{name}` may be absent (\"\"), and an absent value differs from {against}: a missing field would count as evidence"
            );
            let help = format!(
                "guard it in the same conjunction: `{name} != \"\" && …` (docs/rules.md, Absent fields)"
            );
            self.warnings.push(
                diag::at(self.path, self.source, text, message)
                    .with_snippet(self.source)
                    .with_help(Some(help))
                    .as_warning(),
            );
        }
    }

    /// A duration literal (`7d`) or the name of a duration parameter.
    pub fn duration(&mut self, text: &Text) -> Option<Millis> {
        if let Some(p) = self.params.get(&text.value) {
            return match p {
                ParamValue::Duration(ms) => Some(*ms),
                other => {
                    let msg = format!("parameter `{}` is {other}, not a duration", text.value);
                    self.error(text, msg, None);
                    None
                }
            };
        }
        match parse_duration(&text.value) {
            Ok(ms) => Some(ms),
            Err(e) => {
                let names: Vec<&String> = self
                    .params
                    .iter()
                    .filter(|(_, v)| matches!(v, ParamValue::Duration(_)))
                    .map(|(k, _)| k)
                    .collect();
                let help = (!names.is_empty())
                    .then(|| format!("duration parameters: {}", join(names.iter())));
                self.error(text, e, help);
                None
            }
        }
    }

    pub fn windows(&mut self, w: Option<&WindowConfig>, kind_at: &Text) -> Option<Windows> {
        let Some(w) = w else {
            self.error(
                kind_at,
                format!("kind `{}` needs a `window` with a `length`", kind_at.value),
                None,
            );
            return None;
        };
        let length = self.duration(&w.length)?;
        let step = match &w.step {
            Some(s) => self.duration(s)?,
            None => length,
        };
        let align = match w.align.as_ref().map(|a| (a, a.value.as_str())) {
            None | Some((_, "epoch")) => Align::Epoch,
            Some((at, "local_day")) => {
                const DAY: Millis = 86_400_000;
                if length % DAY != 0 || step % DAY != 0 {
                    self.error(
                        at,
                        "`align: local_day` needs a window `length` and `step` of whole days",
                        Some("write them as `1d`, `3d`, `7d`…".into()),
                    );
                    return None;
                }
                Align::LocalDay
            }
            Some((at, other)) => {
                let msg = format!("unknown window alignment `{other}`");
                self.error(at, msg, Some("valid values: epoch, local_day".into()));
                return None;
            }
        };
        Some(Windows {
            length,
            step,
            align,
        })
    }

    /// Compiles the `aggregates` block against the sets a kind binds; `shift` says whether
    /// the kind reads that option. `filter_schema` gives the schema of a `where` filter for
    /// the set with that index.
    pub fn aggregates(
        &mut self,
        configs: &Aggregates,
        sets: &[&str],
        shift: Shift,
        filter_schema: &dyn Fn(&Cx<'_>, usize) -> Schema,
    ) -> (Vec<Aggregate>, Vec<Program>) {
        let mut out = Vec::new();
        let mut filters = Vec::new();
        let mut filter_keys: Vec<(&str, usize)> = Vec::new();
        for (name, agg) in configs {
            let a = &agg.value;
            let mut func = match AggFn::parse(
                &a.func.value,
                a.p,
                a.stat.as_ref().map(|s| s.value.as_str()),
            ) {
                Ok(f) => f,
                Err(e) => {
                    self.error(&a.func, e, None);
                    continue;
                }
            };
            match func {
                AggFn::BalanceOpen => self.balance.open = Some(name.clone()),
                AggFn::BalancePeak => self.balance.peak = Some(name.clone()),
                _ => {}
            }
            if !self.history_options(name, a, &mut func) {
                continue;
            }
            let set = match (&a.over, func.needs_set()) {
                (Some(over), true) => match sets.iter().position(|s| *s == over.value) {
                    Some(i) => i,
                    None => {
                        let msg = format!(
                            "unknown set `{}` for kind `{}`",
                            over.value, self.kind.value
                        );
                        self.error(over, msg, Some(format!("valid sets: {}", sets.join(", "))));
                        continue;
                    }
                },
                (None, true) => {
                    let msg = format!("aggregate `{name}` ({}) needs `over`", a.func.value);
                    self.error(agg, msg, Some(format!("valid sets: {}", sets.join(", "))));
                    continue;
                }
                (_, false) => {
                    if !(sets.contains(&"in") && sets.contains(&"out")) {
                        let msg = format!(
                            "`{}` needs the `in` and `out` sets, which kind `{}` does not bind",
                            a.func.value, self.kind.value
                        );
                        self.error(&a.func, msg, None);
                        continue;
                    }
                    0
                }
            };
            let field = match (&a.field, func.needs_field()) {
                (Some(f), _) => match Field::parse(&f.value) {
                    Some(x) => Some(x),
                    None => {
                        let msg = format!("unknown field `{}`", f.value);
                        self.error(f, msg, Some(format!("valid fields: {FIELDS}")));
                        continue;
                    }
                },
                (None, true) if matches!(func, AggFn::CountDistinct) => {
                    let msg = format!("aggregate `{name}` (count_distinct) needs `field`");
                    self.error(agg, msg, Some(format!("valid fields: {FIELDS}")));
                    continue;
                }
                (None, _) => None,
            };
            let filter = match &a.filter {
                // The same `where` over the same set is one mask, evaluated once.
                Some(text) => match filter_keys
                    .iter()
                    .position(|k| *k == (text.value.as_str(), set))
                {
                    Some(i) => Some(i),
                    None => {
                        let schema = filter_schema(self, set);
                        match self.expr(text, &schema, Ty::Bool) {
                            Some(p) => {
                                filters.push(p);
                                filter_keys.push((text.value.as_str(), set));
                                Some(filters.len() - 1)
                            }
                            None => continue,
                        }
                    }
                },
                None => None,
            };
            if let Some(text) = &a.shift
                && shift == Shift::Refused
            {
                let msg = format!("`shift` is not read by kind `{}`", self.kind.value);
                self.error(text, msg, None);
                continue;
            }
            out.push(Aggregate {
                name: name.clone(),
                func,
                set,
                field,
                filter,
                unit: func.unit(field),
            });
        }
        (out, filters)
    }

    /// Fills in `history` and `period` of `novel` and `recurring`, and refuses them where
    /// they do not apply; false after an error.
    fn history_options(&mut self, name: &str, a: &AggregateConfig, func: &mut AggFn) -> bool {
        fn misplaced(opt: &Option<Text>, wanted: bool) -> Option<&Text> {
            opt.as_ref().filter(|_| !wanted)
        }
        if let Some(t) = misplaced(&a.history, matches!(func, AggFn::Novel { .. })) {
            self.error(t, "`history` is read only by `novel`", None);
            return false;
        }
        if let Some(t) = misplaced(&a.period, matches!(func, AggFn::Recurring { .. })) {
            self.error(t, "`period` is read only by `recurring`", None);
            return false;
        }
        if func.needs_contacts() && self.kind.value != "star" {
            let msg = format!(
                "`{}` reads a subject's own history, which only kind `star` keeps",
                a.func.value
            );
            self.error(&a.func, msg, None);
            return false;
        }
        match func {
            AggFn::Novel { history } => {
                if let Some(t) = &a.history {
                    let Some(ms) = self.duration(t) else {
                        return false;
                    };
                    *history = ms;
                }
            }
            AggFn::Recurring { period } => match &a.period {
                Some(t) => match self.duration(t) {
                    Some(ms) if ms >= 4 => *period = ms,
                    Some(_) => {
                        self.error(t, "`period` must be positive", None);
                        return false;
                    }
                    None => return false,
                },
                None => {
                    let msg = format!("aggregate `{name}` (recurring) needs `period`");
                    self.error(&a.func, msg, Some("for example `period: 30d`".into()));
                    return false;
                }
            },
            _ => {}
        }
        true
    }

    /// Compiles the condition over the metrics, plus whatever `extra` binds.
    pub fn condition(
        &mut self,
        condition: &Text,
        metrics: &[(String, Unit)],
        extra: &dyn Fn(&mut Schema),
    ) -> Option<Program> {
        let mut schema = self.base_schema();
        let typed: Vec<(String, Ty)> = metrics.iter().map(|(n, u)| (n.clone(), u.ty())).collect();
        scope::add_metrics(&mut schema, &typed);
        extra(&mut schema);
        let program = self.expr(condition, &schema, Ty::Bool);
        if let Some(p) = &program {
            self.thresholds = p
                .thresholds()
                .into_iter()
                .filter_map(|(v, op, value)| {
                    let name = schema.name_of(v)?;
                    metrics.iter().any(|(m, _)| m == name).then(|| Threshold {
                        metric: name.to_string(),
                        op,
                        value,
                    })
                })
                .collect();
        }
        program
    }

    /// A string field that must be one of `valid`.
    pub fn choice(
        &mut self,
        text: Option<&Text>,
        what: &str,
        valid: &[&str],
        default: Option<&str>,
        kind_at: &Text,
    ) -> Option<String> {
        match text {
            Some(t) if valid.contains(&t.value.as_str()) => Some(t.value.clone()),
            Some(t) => {
                let msg = format!("unknown {what} `{}`", t.value);
                self.error(t, msg, Some(format!("valid values: {}", valid.join(", "))));
                None
            }
            None => match default {
                Some(d) => Some(d.to_string()),
                None => {
                    let msg = format!("kind `{}` needs `{what}`", kind_at.value);
                    self.error(
                        kind_at,
                        msg,
                        Some(format!("valid values: {}", valid.join(", "))),
                    );
                    None
                }
            },
        }
    }
}

fn join<'x>(items: impl Iterator<Item = &'x &'x String>) -> String {
    items.map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Resolves the parameters: defaults, then overrides, each typed and bounds-checked.
fn resolve_params(
    cx: &mut Cx<'_>,
    cfg: &RuleConfig,
    overrides: &BTreeMap<String, serde_json::Value>,
) -> Params {
    let mut params = Params::new();
    for (name, p) in &cfg.parameters {
        let spec = &p.value;
        let ty = spec.ty.value.as_str();
        let typed = |v: &serde_json::Value| ParamValue::from_json(ty, v);
        let default = match typed(&spec.default) {
            Ok(v) => v,
            Err(e) => {
                let help = Some(format!("parameter types: {PARAM_TYPES}"));
                cx.error(&spec.ty, format!("parameter `{name}`: {e}"), help);
                continue;
            }
        };
        let value = match overrides.get(name) {
            Some(v) => match typed(v) {
                Ok(v) => v,
                Err(e) => {
                    cx.error(p, format!("override of parameter `{name}`: {e}"), None);
                    continue;
                }
            },
            None => default,
        };
        let bound = |b: &Option<serde_json::Value>| b.as_ref().and_then(|v| typed(v).ok());
        if let Err(e) = value.check_bounds(bound(&spec.min).as_ref(), bound(&spec.max).as_ref()) {
            cx.error(p, format!("parameter `{name}`: {e}"), None);
            continue;
        }
        params.insert(name.clone(), value);
    }
    for name in overrides.keys() {
        if !cfg.parameters.contains_key(name) {
            let valid = cfg
                .parameters
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            cx.error(
                &cfg.id,
                format!("override of unknown parameter `{name}`"),
                Some(format!("parameters: {valid}")),
            );
        }
    }
    params
}

fn version_hash(text: &str, shared: &Shared, params: &Params, zone: Zone) -> String {
    let mut h = Sha256::new();
    h.update(text.as_bytes());
    // A zone from `_shared` changes what the rule finds; UTC, the default, adds nothing
    // so that versions from before zones existed stay the same.
    if zone != Zone::UTC {
        h.update(b"\x1fzone ");
        h.update(zone.to_string().as_bytes());
    }
    for (name, definition) in shared_used(text, shared) {
        h.update(b"\x1f");
        h.update(name.as_bytes());
        h.update(b"\x1f");
        h.update(definition.as_bytes());
    }
    let p: BTreeMap<&String, serde_json::Value> =
        params.iter().map(|(k, v)| (k, v.to_json())).collect();
    h.update(b"\x1f");
    h.update(serde_json::to_string(&p).unwrap_or_default().as_bytes());
    hex::encode(h.finalize())
}

/// The `_shared` lists and macros that `text` names, directly or through a macro, with
/// their definitions: a rule's version changes when one of them changes, not when an
/// unrelated shared entry is added or a shared file moves. A word that only looks like a
/// shared name (in a description, say) errs on the side of a new version.
fn shared_used<'s>(text: &str, shared: &'s Shared) -> BTreeMap<&'s str, String> {
    let mut used = BTreeMap::new();
    let mut todo = vec![text.to_string()];
    while let Some(t) = todo.pop() {
        for word in t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if used.contains_key(word) {
                continue;
            }
            if let Some((name, m)) = shared.macros.get_key_value(word) {
                used.insert(name.as_str(), format!("macro {}", m.source));
                todo.push(m.source.clone());
            } else if let Some((name, c)) = shared.consts.get_key_value(word) {
                used.insert(name.as_str(), format!("list {c:?}"));
            }
        }
    }
    used
}

/// Compiles one parsed rule; `overrides` replace parameter defaults (tests, runs).
pub fn compile_rule(
    cfg: &RuleConfig,
    path: &Path,
    source: &str,
    shared: &Shared,
    overrides: &BTreeMap<String, serde_json::Value>,
) -> Result<Rule, Vec<Diagnostic>> {
    // The lists this rule's expressions name are those noted while it compiles.
    shared.lists.take_noted();
    let mut cx = Cx {
        path,
        source,
        diags: Vec::new(),
        warnings: Vec::new(),
        params: Params::new(),
        kind: &cfg.detect.kind,
        shared,
        evidence: cfg.evidence.transactions.as_ref(),
        thresholds: Vec::new(),
        balance: BalanceMetrics::default(),
        reach: None,
        local: false,
        whole_period: false,
    };
    let id_ok = !cfg.id.value.is_empty()
        && cfg
            .id
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        cx.error(
            &cfg.id,
            "a rule id is letters, digits, `-` and `_` (e.g. TC-04)",
            None,
        );
    }
    // `/rules/new` is the dashboard's page for drafts.
    if cfg.id.value.eq_ignore_ascii_case("new") {
        cx.error(
            &cfg.id,
            "the rule id `new` is reserved (the dashboard's page for new rules)",
            None,
        );
    }
    let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    if id_ok && !file_name.starts_with(&format!("{}-", cfg.id.value)) {
        cx.error(
            &cfg.id,
            format!("the file name {file_name:?} must start with the rule id and a dash"),
            Some(format!("rename it to {}-<slug>.yaml", cfg.id.value)),
        );
    }
    let status = match cfg.status.value.parse::<RuleStatus>() {
        Ok(s) => Some(s),
        Err(_) => {
            let msg = format!("unknown status `{}`", cfg.status.value);
            cx.error(
                &cfg.status,
                msg,
                Some(format!("valid values: {}", RuleStatus::valid_values())),
            );
            None
        }
    };
    let severity = match cfg.severity.value.parse::<Severity>() {
        Ok(s) => Some(s),
        Err(e) => {
            cx.error(&cfg.severity, e, None);
            None
        }
    };
    let mut requires_accounts = false;
    let mut requires_merchants = false;
    for r in &cfg.requires {
        match r.value.as_str() {
            "accounts" => requires_accounts = true,
            "merchants" => requires_merchants = true,
            other => {
                let msg = format!("unknown input `{other}`");
                cx.error(r, msg, Some("valid values: accounts, merchants".into()));
            }
        }
    }
    cx.params = resolve_params(&mut cx, cfg, overrides);
    let time_zone = match &cfg.time_zone {
        Some(z) => Zone::parse(&z.value).unwrap_or_else(|e| {
            cx.error(z, e, None);
            Zone::UTC
        }),
        None => shared.time_zone.unwrap_or(Zone::UTC),
    };

    let kind = kinds::kind(&cfg.detect.kind.value);
    let detector = match kind {
        Some(k) => (k.compile)(&mut cx),
        None => {
            let msg = format!("unknown detector kind `{}`", cfg.detect.kind.value);
            cx.error(
                &cfg.detect.kind,
                msg,
                Some(format!("valid kinds: {}", kinds::kind_names())),
            );
            None
        }
    };
    let metrics = detector.as_ref().map(|d| d.metrics()).unwrap_or_default();
    let mut score_mods = Vec::new();
    if let Some(d) = &detector {
        let mut schema = cx.base_schema();
        let typed: Vec<(String, Ty)> = d
            .metrics()
            .iter()
            .map(|(n, u)| (n.clone(), u.ty()))
            .collect();
        scope::add_metrics(&mut schema, &typed);
        for m in &cfg.score.add {
            if let Some(p) = cx.expr(&m.when, &schema, Ty::Bool) {
                score_mods.push((p, m.points));
            }
        }
    }
    let summary = match Template::parse(&cfg.summary.value, &metrics, &cx.params) {
        Ok(t) => Some(t),
        // Without a detector the metric names are unknown: no cascade of errors.
        Err(_) if detector.is_none() => None,
        Err((offset, msg, help)) => {
            let (line, column) = diag::position_in_scalar(source, &cfg.summary, offset);
            cx.diags.push(
                Diagnostic::new(path, line, column, msg)
                    .with_snippet(source)
                    .with_help(Some(help)),
            );
            None
        }
    };
    if status == Some(RuleStatus::Stable) {
        let positive = cfg
            .tests
            .iter()
            .any(|t| t.expect.alerts.is_some_and(|n| n > 0) || !t.expect.subjects.is_empty());
        let negative = cfg
            .tests
            .iter()
            .any(|t| t.expect.alerts == Some(0) || !t.expect.not_subjects.is_empty());
        if !positive || !negative {
            cx.error(
                &cfg.status,
                "a stable rule needs at least one positive and one negative test case",
                Some(
                    "add `tests` with `expect: { subjects: [...] }` and `expect: { alerts: 0 }`"
                        .into(),
                ),
            );
        }
    }
    let texts = texts::compile(
        &shared.texts,
        &cfg.id,
        path,
        source,
        &metrics,
        &cx.params,
        status == Some(RuleStatus::Stable),
        &mut cx.warnings,
    );
    match (detector, status, severity, summary, cx.diags.is_empty()) {
        (Some(detector), Some(status), Some(severity), Some(summary), true) => Ok(Rule {
            id: cfg.id.value.clone(),
            title: cfg.title.clone(),
            status,
            severity,
            kind: kind.map_or("", |k| k.name),
            path: path.to_path_buf(),
            origin: Origin::File,
            text: source.to_string(),
            version: version_hash(source, shared, &cx.params, time_zone),
            params: cx.params,
            requires_accounts,
            requires_merchants,
            detector,
            metrics,
            score_base: cfg.score.base.unwrap_or_else(|| severity.base_score()),
            score_mods,
            summary,
            texts,
            config: cfg.clone(),
            warnings: cx.warnings,
            thresholds: cx.thresholds,
            balance: cx.balance,
            reach: cx.reach.filter(|_| !cx.whole_period),
            // A whole-period figure of a counterparty reads the counterparty's transactions.
            local: cx.local && !cx.whole_period,
            time_zone,
            lists: shared.lists.take_noted(),
        }),
        _ => Err(cx.diags),
    }
}
