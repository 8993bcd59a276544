//! The rule file as written: configuration types deserialized from YAML, with source
//! positions on every value that compilation may need to point at. Unknown fields are
//! errors. The `detect` block is only read for its `kind` here; each kind in
//! [`super::kinds`] owns the type of the rest. Nothing here is evaluated;
//! [`super::compile`] turns it into runtime rules.

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
    /// The zone of `tx.local_*` and of `align: local_day` windows (`Asia/Shanghai`,
    /// `+08:00`); default: the `time_zone` of the folder's `_shared`, else UTC.
    #[serde(default)]
    pub time_zone: Option<Text>,
    #[serde(default)]
    pub parameters: BTreeMap<String, Spanned<ParamConfig>>,
    pub detect: DetectHeader,
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

/// `detect` as the rule is first read: only its `kind`. Unknown fields are not refused
/// here; the kind reads the whole block again into its own config type, which refuses
/// them (see [`crate::kinds`]).
#[derive(Debug, Clone, Deserialize)]
pub struct DetectHeader {
    pub kind: Text,
}

/// The `aggregates` block of a kind's config: name to aggregate.
pub type Aggregates = BTreeMap<String, Spanned<AggregateConfig>>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// A duration (`7d`, `36h`, `30m`) or the name of a duration parameter.
    pub length: Text,
    /// How far consecutive windows start apart; default: the length.
    #[serde(default)]
    pub step: Option<Text>,
    /// `epoch` (default: windows start at multiples of the step since 1970-01-01 UTC) or
    /// `local_day` (they start at local midnight, in whole local days).
    #[serde(default)]
    pub align: Option<Text>,
}

/// An aggregate computed by the engine over a set the detector binds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// count | count_distinct | sum | min | max | median | percentile | dwell | retention |
    /// balance_peak | balance_open | novel | recurring
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
    /// novel: how far back a dealing makes a counterparty known (a duration or a duration
    /// parameter); the whole loaded past when absent.
    #[serde(default)]
    pub history: Option<Text>,
    /// recurring: the cadence (a duration or a duration parameter), e.g. `30d` for monthly.
    #[serde(default)]
    pub period: Option<Text>,
    /// A CEL expression in hours (binds `merchant`, `account`) that moves this aggregate's
    /// window later, e.g. to compare a day's sales with the settlement that arrives
    /// `merchant.cycle_days` later. Read only by kinds that compile their aggregates with
    /// [`crate::compile::Shift::Read`] (`relation`).
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
    /// Subjects that an exclusion reading one kind of data spares: without that data they
    /// alert, and must (`rules test` reruns each case without it).
    #[serde(default)]
    pub spared_by: BTreeMap<Absent, Vec<String>>,
}

/// A kind of data that may be missing from real input, for the absent-data reruns of
/// `rules test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Absent {
    /// Merchant ids on transactions and the merchant registry.
    MerchantIds,
    /// Channels and regions on transactions.
    Channels,
    /// Holders (and merchant legal names) in the registries.
    Holders,
}

/// `rules/_shared/*.yaml`: lists and macros every rule may use by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedConfig {
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<serde_json::Value>>,
    #[serde(default)]
    pub macros: BTreeMap<String, Text>,
    /// The zone of local times for every rule of the folder that names none itself.
    #[serde(default)]
    pub time_zone: Option<Text>,
    /// Rule titles, summaries and figure names in other languages, by language tag
    /// (`zh-CN`); English ones are the rules' own (figure names excepted).
    #[serde(default)]
    pub translations: BTreeMap<String, Spanned<TranslationConfig>>,
}

/// One language's texts of a pack.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslationConfig {
    /// What the dashboard calls each figure (aggregate or detector metric), by its name.
    #[serde(default)]
    pub metrics: BTreeMap<String, String>,
    /// Each rule's title and summary, by rule id.
    #[serde(default)]
    pub rules: BTreeMap<String, Spanned<RuleTextConfig>>,
}

/// A rule's title and summary template in one language.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTextConfig {
    #[serde(default)]
    pub title: Option<String>,
    /// A template with the placeholders of the rule's own `summary`.
    #[serde(default)]
    pub summary: Option<Text>,
}
