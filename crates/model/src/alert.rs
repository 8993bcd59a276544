//! The alert: what a rule found, with the figures behind it and the evidence, in the
//! shape that `scan --format json`, `alerts list --json`, the store and exporters share.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::case::Status;
use crate::{Millis, format_ts, parse_rfc3339};

/// Alert severity, ordered from `info` to `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The score an alert of this severity starts from, before modifiers.
    pub fn base_score(self) -> i64 {
        match self {
            Severity::Info => 10,
            Severity::Low => 30,
            Severity::Medium => 50,
            Severity::High => 70,
            Severity::Critical => 90,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("unknown severity {s:?} (valid: info, low, medium, high, critical)")
            })
    }
}

/// What kind of entity an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    Account,
    Merchant,
}

impl SubjectKind {
    pub const ALL: [SubjectKind; 2] = [SubjectKind::Account, SubjectKind::Merchant];

    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Account => "account",
            SubjectKind::Merchant => "merchant",
        }
    }
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubjectKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SubjectKind::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown subject kind {s:?} (valid: account, merchant)"))
    }
}

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: String,
}

impl Subject {
    pub fn account(id: impl Into<String>) -> Subject {
        Subject {
            kind: SubjectKind::Account,
            id: id.into(),
        }
    }

    pub fn merchant(id: impl Into<String>) -> Subject {
        Subject {
            kind: SubjectKind::Merchant,
            id: id.into(),
        }
    }
}

/// The half-open time window `[from, until)` the alert's figures cover, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub from: Millis,
    pub until: Millis,
}

#[derive(Serialize, Deserialize)]
struct WindowText {
    from: String,
    until: String,
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WindowText {
            from: format_ts(self.from),
            until: format_ts(self.until),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WindowText::deserialize(d)?;
        let parse = |s: &str| {
            parse_rfc3339(s)
                .ok_or_else(|| serde::de::Error::custom(format!("bad RFC 3339 time {s:?}")))
        };
        Ok(Window {
            from: parse(&w.from)?,
            until: parse(&w.until)?,
        })
    }
}

/// The transactions and accounts an alert rests on, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub transactions: Vec<String>,
    pub accounts: Vec<String>,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic: rule id, rule version, subject and window.
    pub id: String,
    pub rule_id: String,
    /// SHA-256 of the exact rule text and parameter values that produced the alert.
    pub rule_version: String,
    pub title: String,
    pub subject: Subject,
    pub window: Window,
    pub severity: Severity,
    /// 0..=100.
    pub score: u32,
    /// A sentence stating the figures behind the alert.
    pub summary: String,
    /// The currency the amounts of the metrics are in, when they involve money.
    pub currency: Option<String>,
    /// Every aggregate value the rule computed, by name.
    pub metrics: BTreeMap<String, serde_json::Value>,
    pub evidence: Evidence,
}

impl Alert {
    /// The deterministic id of an alert of `rule_id` at `rule_version` on `subject` in `window`.
    pub fn make_id(rule_id: &str, rule_version: &str, subject: &Subject, window: Window) -> String {
        let mut h = Sha256::new();
        for part in [
            rule_id,
            rule_version,
            subject.kind.as_str(),
            &subject.id,
            &window.from.to_string(),
            &window.until.to_string(),
        ] {
            h.update(part.as_bytes());
            h.update([0x1f]);
        }
        format!("{}-{}", rule_id, &hex::encode(h.finalize())[..16])
    }

    /// The order alerts are printed and stored in: rule, subject, window.
    pub fn sort_key(&self) -> (&str, &Subject, Window) {
        (&self.rule_id, &self.subject, self.window)
    }
}

/// An alert as the store holds it, with its case fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    #[serde(flatten)]
    pub alert: Alert,
    pub status: Status,
    pub assignee: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped by every case change; a change names the version it was made on.
    #[serde(default)]
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        let subject = Subject::account("H1");
        let window = Window {
            from: 1_767_225_600_000,
            until: 1_767_830_400_000,
        };
        Alert {
            id: Alert::make_id("TC-04", "abc", &subject, window),
            rule_id: "TC-04".into(),
            rule_version: "abc".into(),
            title: "pool".into(),
            subject,
            window,
            severity: Severity::High,
            score: 80,
            summary: "s".into(),
            currency: Some("CNY".into()),
            metrics: BTreeMap::from([("payees".to_string(), serde_json::json!(12))]),
            evidence: Evidence::default(),
        }
    }

    #[test]
    fn json_shape_has_the_documented_fields() {
        let v = serde_json::to_value(alert()).unwrap();
        for key in [
            "id",
            "rule_id",
            "rule_version",
            "subject",
            "window",
            "severity",
            "score",
            "summary",
            "metrics",
            "evidence",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["window"]["from"], "2026-01-01T00:00:00Z");
        assert_eq!(v["severity"], "high");
        let back: Alert = serde_json::from_value(v).unwrap();
        assert_eq!(back, alert());
    }

    #[test]
    fn ids_change_with_rule_version_subject_and_window() {
        let a = alert();
        let same = Alert::make_id("TC-04", "abc", &a.subject, a.window);
        assert_eq!(a.id, same);
        assert_ne!(a.id, Alert::make_id("TC-04", "abd", &a.subject, a.window));
        let w = Window {
            from: a.window.from + 1,
            ..a.window
        };
        assert_ne!(a.id, Alert::make_id("TC-04", "abc", &a.subject, w));
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High);
        assert_eq!("medium".parse::<Severity>(), Ok(Severity::Medium));
        assert!(
            "urgent"
                .parse::<Severity>()
                .unwrap_err()
                .contains("critical")
        );
    }
}
