//! Entity-level triage: one risk score per alert subject, from all of its alerts across
//! rules and windows, so that analysts and `eval` can rank entities instead of alerts.
//!
//! The formula (documented in docs/evaluation.md):
//! - each rule that alerted on the subject contributes `p = s / 100`, where `s` is the
//!   highest score of that rule's alerts on the subject; every further window of the same
//!   rule (up to five) removes a tenth of what is left: `p' = 1 - (1 - p) · 0.9^(w - 1)`;
//! - rules corroborate one another as independent evidence (a noisy-or):
//!   `risk = 1 - Π (1 - p')` over the distinct rules;
//! - the score is `round(100 · risk)`, 0..=100.
//!
//! Ties are broken by the number of distinct rules, then by the subject, so the ranking
//! is deterministic.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::alert::{Alert, Subject};

/// Windows of one rule beyond the first that still raise the score.
const MAX_EXTRA_WINDOWS: u32 = 5;
/// The share of the remaining doubt that each further window of one rule removes.
const WINDOW_DECAY: f64 = 0.9;

/// One subject's risk over all of its alerts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityRisk {
    pub subject: Subject,
    /// 0..=100.
    pub score: u32,
    pub alerts: usize,
    /// The distinct rules that alerted on the subject, sorted.
    pub rules: Vec<String>,
}

/// What entity risk reads of one alert: its subject, rule and score. The store reads
/// these alone, without evidence, to rank a whole queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertHit {
    pub subject: Subject,
    pub rule_id: String,
    pub score: u32,
}

/// The risk of every subject of `alerts`, highest first.
pub fn entity_risk(alerts: &[Alert]) -> Vec<EntityRisk> {
    rank(
        alerts
            .iter()
            .map(|a| (&a.subject, a.rule_id.as_str(), a.score)),
    )
}

/// The risk of every subject of `hits`, highest first; equal to [`entity_risk`] of the
/// alerts the hits were read from.
pub fn entity_risk_of_hits(hits: &[AlertHit]) -> Vec<EntityRisk> {
    rank(
        hits.iter()
            .map(|h| (&h.subject, h.rule_id.as_str(), h.score)),
    )
}

/// The entity risk of one subject whose alerts are `(rule, score)`: the formula above.
pub fn entity_score<'a>(hits: impl Iterator<Item = (&'a str, u32)>) -> u32 {
    let mut rules: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for (rule_id, score) in hits {
        let e = rules.entry(rule_id).or_insert((0, 0));
        e.0 = e.0.max(score.min(100));
        e.1 += 1;
    }
    score_of_rules(rules.into_values())
}

/// The score from each rule's `(highest score, windows)`.
fn score_of_rules(rules: impl Iterator<Item = (u32, u32)>) -> u32 {
    let doubt: f64 = rules
        .map(|(score, windows)| {
            let extra = windows.saturating_sub(1).min(MAX_EXTRA_WINDOWS);
            (1.0 - f64::from(score) / 100.0) * WINDOW_DECAY.powi(extra as i32)
        })
        .product();
    (100.0 * (1.0 - doubt)).round() as u32
}

fn rank<'a>(hits: impl Iterator<Item = (&'a Subject, &'a str, u32)>) -> Vec<EntityRisk> {
    // subject -> rule -> (highest score, windows)
    let mut by_subject: BTreeMap<&Subject, BTreeMap<&str, (u32, u32)>> = BTreeMap::new();
    for (subject, rule_id, score) in hits {
        let e = by_subject
            .entry(subject)
            .or_default()
            .entry(rule_id)
            .or_insert((0, 0));
        e.0 = e.0.max(score.min(100));
        e.1 += 1;
    }
    let mut out: Vec<EntityRisk> = by_subject
        .into_iter()
        .map(|(subject, rules)| EntityRisk {
            subject: subject.clone(),
            score: score_of_rules(rules.values().copied()),
            alerts: rules.values().map(|&(_, w)| w as usize).sum(),
            rules: rules.keys().map(|r| r.to_string()).collect(),
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.rules.len().cmp(&a.rules.len()))
            .then_with(|| a.subject.cmp(&b.subject))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Evidence, Severity, Window};

    fn alert(rule: &str, subject: &str, score: u32, from: i64) -> Alert {
        Alert {
            id: format!("{rule}-{subject}-{from}"),
            rule_id: rule.into(),
            rule_version: "v".into(),
            title: String::new(),
            subject: Subject::account(subject),
            window: Window {
                from,
                until: from + 1,
            },
            severity: Severity::Medium,
            score,
            summary: String::new(),
            currency: None,
            metrics: BTreeMap::new(),
            evidence: Evidence::default(),
        }
    }

    #[test]
    fn hits_rank_as_the_alerts_they_were_read_from() {
        let alerts = [
            alert("R1", "a", 60, 0),
            alert("R2", "a", 30, 0),
            alert("R1", "b", 90, 0),
            alert("R1", "b", 20, 1),
        ];
        let hits: Vec<AlertHit> = alerts
            .iter()
            .map(|a| AlertHit {
                subject: a.subject.clone(),
                rule_id: a.rule_id.clone(),
                score: a.score,
            })
            .collect();
        assert_eq!(entity_risk_of_hits(&hits), entity_risk(&alerts));
        assert_eq!(entity_risk(&alerts)[0].subject.id, "b");
    }

    #[test]
    fn independent_rules_corroborate_more_than_repeated_windows() {
        let alerts = [
            alert("R1", "two-rules", 60, 0),
            alert("R2", "two-rules", 60, 0),
            alert("R1", "one-rule", 60, 0),
            alert("R1", "one-rule", 60, 1),
            alert("R1", "single", 60, 0),
        ];
        let risk = entity_risk(&alerts);
        let score = |id: &str| risk.iter().find(|r| r.subject.id == id).unwrap().score;
        assert_eq!(score("single"), 60);
        assert_eq!(score("one-rule"), 64); // 1 - 0.4 * 0.9
        assert_eq!(score("two-rules"), 84); // 1 - 0.4 * 0.4
        let order: Vec<&str> = risk.iter().map(|r| r.subject.id.as_str()).collect();
        assert_eq!(order, ["two-rules", "one-rule", "single"]);
        assert_eq!(risk[0].rules, ["R1", "R2"]);
        assert_eq!(risk[1].alerts, 2);
    }

    #[test]
    fn repeated_windows_stop_adding_after_five() {
        let many: Vec<Alert> = (0..50).map(|i| alert("R1", "s", 50, i)).collect();
        let six: Vec<Alert> = (0..6).map(|i| alert("R1", "s", 50, i)).collect();
        assert_eq!(entity_risk(&many)[0].score, entity_risk(&six)[0].score);
        assert!(entity_risk(&six)[0].score < 100);
    }

    #[test]
    fn ties_rank_by_rule_count_then_subject() {
        let alerts = [
            alert("R1", "b", 100, 0),
            alert("R1", "a", 100, 0),
            alert("R1", "c", 100, 0),
            alert("R2", "c", 10, 0),
        ];
        let order: Vec<String> = entity_risk(&alerts)
            .into_iter()
            .map(|r| r.subject.id)
            .collect();
        assert_eq!(order, ["c", "a", "b"]);
    }
}
