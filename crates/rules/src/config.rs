//! The rule file as written: configuration types deserialized from YAML, with source
//! positions on every value that compilation may need to point at. Unknown fields are
//! errors. Nothing here is evaluated; [`super::compile`] turns it into runtime rules.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A string with the place it was written.
pub type Text = Spanned<String>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Stable id, e.g. `TC-04`; maps to regulator rule codes.
    pub id: Text,
    pub title: String,
    /// experimental | test | stable | deprecated
    pub status: Text,
    /// info | low | medium | high | critical
    pub severity: Text,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub falsepositives: Vec<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    /// Regulator rule codes by scheme, e.g. `stcr: "CW0004"` for CAMLMAC reports.
    #[serde(default)]
    pub codes: BTreeMap<String, String>,
    /// Inputs the rule needs beyond transactions: `accounts`, `merchants`.
    #[serde(default)]
    pub requires: Vec<Text>,
    #[serde(default)]
    pub parameters: BTreeMap<String, Spanned<ParamConfig>>,
    pub detect: DetectConfig,
    #[serde(default)]
    pub score: ScoreConfig,
    pub summary: Text,
    #[serde(default)]
    pub evidence: EvidenceConfig,
    #[serde(default)]
    pub tests: Vec<TestConfig>,
}

/// A typed, named threshold with a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamConfig {
    /// int | float | duration | string | bool | list
    #[serde(rename = "type")]
    pub ty: Text,
    pub default: serde_json::Value,
    #[serde(default)]
    pub min: Option<serde_json::Value>,
    #[serde(default)]
    pub max: Option<serde_json::Value>,
    #[serde(default)]
    pub description: String,
}

/// Detection: a detector kind and its configuration. One struct for every kind; each
/// kind says which fields it uses, and others are reported as errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    pub kind: Text,
    /// A predicate on the subject account (`star`: `hub`).
    #[serde(default)]
    pub subject: Option<Text>,
    /// `star`: filter of incoming transactions.
    #[serde(default, rename = "in")]
    pub in_filter: Option<Text>,
    /// `star`: filter of outgoing transactions.
    #[serde(default, rename = "out")]
    pub out_filter: Option<Text>,
    /// `cycle`, `relation`, `series`: filter of transactions.
    #[serde(default)]
    pub edge: Option<Text>,
    /// `flow`: the path, node and edge predicates by position.
    #[serde(default)]
    pub path: Option<Spanned<Vec<PathStepConfig>>>,
    /// `flow`: which node of the path is the alert's subject (0 = origin).
    #[serde(default)]
    pub subject_at: Option<Spanned<usize>>,
    /// `flow`: longest time between consecutive hops.
    #[serde(default)]
    pub max_gap: Option<Text>,
    /// `cycle`: shortest and longest cycle, in transactions.
    #[serde(default)]
    pub min_length: Option<Spanned<usize>>,
    #[serde(default)]
    pub max_length: Option<Spanned<usize>>,
    /// `cycle`: hops in time order (default) or in any order within the window.
    #[serde(default)]
    pub ordered: Option<Spanned<bool>>,
    #[serde(default)]
    pub window: Option<WindowConfig>,
    /// `relation`: `merchant`, `payee` or `payer`; `series` peer groups: `mcc`.
    #[serde(default)]
    pub group_by: Option<Text>,
    /// `series`: `benford`, `peer_zscore` or `poisson_burst`.
    #[serde(default)]
    pub test: Option<Text>,
    /// `series`: `in` or `out`.
    #[serde(default)]
    pub side: Option<Text>,
    /// `series` peer_zscore: `sum`, `count` or `mean` of amounts.
    #[serde(default)]
    pub metric: Option<Text>,
    /// `series` poisson_burst: the counting bucket.
    #[serde(default)]
    pub bucket: Option<Text>,
    #[serde(default)]
    pub aggregates: BTreeMap<String, Spanned<AggregateConfig>>,
    pub condition: Text,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathStepConfig {
    /// Predicate on the transaction into this node (absent for the origin).
    #[serde(default)]
    pub edge: Option<Text>,
    /// Predicate on this node's account.
    #[serde(default)]
    pub node: Option<Text>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// A duration (`7d`, `36h`, `30m`) or the name of a duration parameter.
    pub length: Text,
    /// How far consecutive windows start apart; default: the length.
    #[serde(default)]
    pub step: Option<Text>,
}

/// An aggregate computed by the engine over a set the detector binds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// count | count_distinct | sum | min | max | median | percentile | dwell | retention | balance_peak
    #[serde(rename = "fn")]
    pub func: Text,
    /// The set: `in`, `out`, `edges`, `paths`, … (what the kind binds).
    #[serde(default)]
    pub over: Option<Text>,
    /// The field: `amount`, `counterparty`, `hour`, `day`, `region`, `merchant`, …
    #[serde(default)]
    pub field: Option<Text>,
    /// Only members of the set for which this holds.
    #[serde(default, rename = "where")]
    pub filter: Option<Text>,
    /// percentile: the fraction, 0..1.
    #[serde(default)]
    pub p: Option<f64>,
    /// dwell: `median`, `mean` or `max`.
    #[serde(default)]
    pub stat: Option<Text>,
    /// `relation` only: a CEL expression in hours (binds `merchant`, `account`) that moves
    /// this aggregate's window later, e.g. to compare a day's sales with the settlement
    /// that arrives `merchant.cycle_days` later.
    #[serde(default)]
    pub shift: Option<Text>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// Starting score; default from the severity.
    #[serde(default)]
    pub base: Option<i64>,
    #[serde(default)]
    pub add: Vec<ScoreModifier>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreModifier {
    pub when: Text,
    pub points: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Which bound sets' transactions go into the evidence; default: all the detector used.
    #[serde(default)]
    pub transactions: Option<Vec<Text>>,
}

/// A test case: data (inline native CSV or a folder) and the expected alerts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestConfig {
    pub name: String,
    /// Parameter overrides for this case.
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// A folder (relative to the rule file) with transactions.csv and optional
    /// accounts.csv, merchants.csv in the native format.
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub transactions: Option<String>,
    #[serde(default)]
    pub accounts: Option<String>,
    #[serde(default)]
    pub merchants: Option<String>,
    pub expect: ExpectConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectConfig {
    /// Exact number of alerts.
    #[serde(default)]
    pub alerts: Option<usize>,
    /// These subjects must be alerted on.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// These subjects must not be.
    #[serde(default)]
    pub not_subjects: Vec<String>,
    /// These accounts must appear in some alert's evidence.
    #[serde(default)]
    pub evidence_accounts: Vec<String>,
}

/// `rules/_shared/*.yaml`: lists and macros every rule may use by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedConfig {
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<serde_json::Value>>,
    #[serde(default)]
    pub macros: BTreeMap<String, Text>,
}
