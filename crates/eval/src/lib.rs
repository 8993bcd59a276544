//! Evaluation: scores alerts against labelled truth, at three levels.
//!
//! - **Pattern**: a scheme is *detected* when some alert's subject is one of its key (hub)
//!   accounts, or one of its members when the truth names no key accounts, or when one
//!   alert's evidence accounts cover at least half of its members. Recall per typology;
//!   decoy schemes are reported apart.
//! - **Alert**: an alert is *on* a scheme when its subject is a member of it, its evidence
//!   covers at least half of the scheme's members, or one of its evidence transactions is
//!   one of the scheme's (merchant-level alerts are judged by their transactions). It is a
//!   true positive when it
//!   is on a true (non-decoy) scheme; on a decoy only, or on nothing (background), it is a
//!   false positive. Precision per rule and overall, and the share of alerts on any
//!   injected scheme (true or decoy).
//! - **Transaction**: where the truth labels transactions, precision, recall and F1 of the
//!   union of evidence transactions.
//! - **Entity**: the distinct alert subjects. A subject is *true* when it is a member of a
//!   true scheme (a merchant subject: when one of its alerts is on a true scheme), a
//!   *look-alike* when it is a member of decoy schemes only. Subjects are ranked by
//!   [`clearwatch_model::triage::entity_risk`]; precision@k is the share of true subjects
//!   among the first k, for k = the number of true schemes, 50 and 100.

pub mod truth;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use clearwatch_model::triage::entity_risk;
use clearwatch_model::{Alert, Subject, SubjectKind};
pub use truth::{Scheme, Truth, TruthError};

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TypologyScore {
    pub typology: String,
    pub schemes: usize,
    pub detected: usize,
    pub recall: f64,
    pub decoys: usize,
    pub decoys_flagged: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RuleScore {
    pub rule_id: String,
    pub alerts: usize,
    pub true_positives: usize,
    pub on_decoys_only: usize,
    pub background: usize,
    pub precision: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TransactionScore {
    pub flagged: usize,
    pub positives: usize,
    pub true_positives: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Precision among the `k` highest-ranked subjects.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PrecisionAtK {
    pub k: usize,
    pub true_subjects: usize,
    pub precision: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EntityScore {
    /// Distinct alert subjects.
    pub subjects: usize,
    pub true_subjects: usize,
    /// Subjects that are members of decoy (legitimate look-alike) schemes only.
    pub look_alikes: usize,
    pub precision: f64,
    pub at_k: Vec<PrecisionAtK>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Report {
    pub typologies: Vec<TypologyScore>,
    pub overall_recall: f64,
    pub rules: Vec<RuleScore>,
    pub alerts: usize,
    pub true_positives: usize,
    pub precision: f64,
    /// Alerts on any injected scheme (true or decoy), over all alerts.
    pub on_pattern_share: f64,
    pub transactions: Option<TransactionScore>,
    pub entities: EntityScore,
}

/// One value of a parameter sweep (`eval --sweep`) and the pack's scores with it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SweepRow {
    pub value: serde_json::Value,
    /// Alerts of the swept rule.
    pub rule_alerts: usize,
    pub rule_precision: f64,
    pub report: Report,
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

fn covers(alert: &Alert, s: &Scheme) -> bool {
    let hits = alert
        .evidence
        .accounts
        .iter()
        .filter(|a| s.members.contains(*a))
        .count();
    !s.members.is_empty() && hits * 2 >= s.members.len()
}

fn detects(alert: &Alert, s: &Scheme) -> bool {
    let keys = if s.key_accounts.is_empty() {
        &s.members
    } else {
        &s.key_accounts
    };
    keys.contains(&alert.subject.id) || covers(alert, s)
}

fn on(alert: &Alert, s: &Scheme) -> bool {
    s.members.contains(&alert.subject.id)
        || covers(alert, s)
        || alert
            .evidence
            .transactions
            .iter()
            .any(|t| s.transactions.contains(t))
}

/// Scores `alerts` against `truth`.
pub fn score(truth: &Truth, alerts: &[Alert]) -> Report {
    // Index schemes by member, so each alert is compared with the schemes it can touch.
    let mut by_member: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_tx: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in truth.schemes.iter().enumerate() {
        for m in &s.members {
            by_member.entry(m.as_str()).or_default().push(i);
        }
        for t in &s.transactions {
            by_tx.entry(t.as_str()).or_default().push(i);
        }
    }
    let candidates = |a: &Alert| -> BTreeSet<usize> {
        let by_accounts = std::iter::once(&a.subject.id)
            .chain(a.evidence.accounts.iter())
            .filter_map(|acct| by_member.get(acct.as_str()));
        let by_txs = a
            .evidence
            .transactions
            .iter()
            .filter_map(|t| by_tx.get(t.as_str()));
        by_accounts.chain(by_txs).flatten().copied().collect()
    };
    let mut detected = vec![false; truth.schemes.len()];
    let mut true_by_alert: BTreeSet<&Subject> = BTreeSet::new();
    let mut rules: BTreeMap<&str, RuleScore> = BTreeMap::new();
    let (mut tp_total, mut on_any) = (0, 0);
    for a in alerts {
        let cands = candidates(a);
        let mut on_true = false;
        let mut on_decoy = false;
        for &i in &cands {
            let s = &truth.schemes[i];
            if detects(a, s) {
                detected[i] = true;
            }
            if on(a, s) {
                if s.decoy {
                    on_decoy = true;
                } else {
                    on_true = true;
                }
            }
        }
        let r = rules
            .entry(a.rule_id.as_str())
            .or_insert_with(|| RuleScore {
                rule_id: a.rule_id.clone(),
                ..Default::default()
            });
        r.alerts += 1;
        if on_true {
            true_by_alert.insert(&a.subject);
            r.true_positives += 1;
            tp_total += 1;
        } else if on_decoy {
            r.on_decoys_only += 1;
        } else {
            r.background += 1;
        }
        if on_true || on_decoy {
            on_any += 1;
        }
    }
    let mut typologies: BTreeMap<&str, TypologyScore> = BTreeMap::new();
    for (i, s) in truth.schemes.iter().enumerate() {
        let t = typologies
            .entry(s.typology.as_str())
            .or_insert_with(|| TypologyScore {
                typology: s.typology.clone(),
                ..Default::default()
            });
        if s.decoy {
            t.decoys += 1;
            t.decoys_flagged += usize::from(detected[i]);
        } else {
            t.schemes += 1;
            t.detected += usize::from(detected[i]);
        }
    }
    let mut typologies: Vec<TypologyScore> = typologies.into_values().collect();
    for t in &mut typologies {
        t.recall = ratio(t.detected, t.schemes);
    }
    let (true_total, true_detected) = truth
        .schemes
        .iter()
        .zip(&detected)
        .filter(|(s, _)| !s.decoy)
        .fold((0, 0), |(n, d), (_, det)| (n + 1, d + usize::from(*det)));
    let mut rules: Vec<RuleScore> = rules.into_values().collect();
    for r in &mut rules {
        r.precision = ratio(r.true_positives, r.alerts);
    }
    let transactions = truth.positive_transactions.as_ref().map(|pos| {
        let flagged: BTreeSet<&str> = alerts
            .iter()
            .flat_map(|a| a.evidence.transactions.iter().map(String::as_str))
            .collect();
        let tp = flagged.iter().filter(|t| pos.contains(**t)).count();
        let precision = ratio(tp, flagged.len());
        let recall = ratio(tp, pos.len());
        TransactionScore {
            flagged: flagged.len(),
            positives: pos.len(),
            true_positives: tp,
            precision,
            recall,
            f1: if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            },
        }
    });
    let entities = entity_score(truth, alerts, &true_by_alert, true_total);
    Report {
        typologies,
        overall_recall: ratio(true_detected, true_total),
        rules,
        alerts: alerts.len(),
        true_positives: tp_total,
        precision: ratio(tp_total, alerts.len()),
        on_pattern_share: ratio(on_any, alerts.len()),
        transactions,
        entities,
    }
}

/// Scores the distinct subjects of `alerts`, ranked by entity risk; `true_by_alert` holds
/// the subjects with an alert on a true scheme.
fn entity_score(
    truth: &Truth,
    alerts: &[Alert],
    true_by_alert: &BTreeSet<&Subject>,
    true_schemes: usize,
) -> EntityScore {
    let members = |decoy: bool| -> BTreeSet<&str> {
        truth
            .schemes
            .iter()
            .filter(|s| s.decoy == decoy)
            .flat_map(|s| s.members.iter().map(String::as_str))
            .collect()
    };
    let (true_members, decoy_members) = (members(false), members(true));
    let ranked = entity_risk(alerts);
    let is_true: Vec<bool> = ranked
        .iter()
        .map(|r| match r.subject.kind {
            SubjectKind::Account => true_members.contains(r.subject.id.as_str()),
            SubjectKind::Merchant => true_by_alert.contains(&r.subject),
        })
        .collect();
    let look_alikes = ranked
        .iter()
        .zip(&is_true)
        .filter(|(r, t)| !**t && decoy_members.contains(r.subject.id.as_str()))
        .count();
    let mut ks: Vec<usize> = vec![true_schemes, 50, 100];
    ks.retain(|&k| k > 0);
    ks.dedup();
    let at_k = ks
        .into_iter()
        .map(|k| {
            let top = k.min(ranked.len());
            let hits = is_true[..top].iter().filter(|t| **t).count();
            PrecisionAtK {
                k,
                true_subjects: hits,
                precision: ratio(hits, top),
            }
        })
        .collect();
    let true_subjects = is_true.iter().filter(|t| **t).count();
    EntityScore {
        subjects: ranked.len(),
        true_subjects,
        look_alikes,
        precision: ratio(true_subjects, ranked.len()),
        at_k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clearwatch_model::{Evidence, Severity, Subject, Window};

    fn alert(rule: &str, subject: &str, evidence: &[&str]) -> Alert {
        Alert {
            id: format!("{rule}-{subject}"),
            rule_id: rule.into(),
            rule_version: "v".into(),
            title: "t".into(),
            subject: Subject {
                kind: clearwatch_model::SubjectKind::Account,
                id: subject.into(),
            },
            window: Window { from: 0, until: 1 },
            severity: Severity::High,
            score: 70,
            summary: String::new(),
            currency: None,
            metrics: Default::default(),
            evidence: Evidence {
                transactions: vec![format!("t-{subject}")],
                accounts: evidence.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    fn scheme(id: &str, typology: &str, decoy: bool, members: &[&str], keys: &[&str]) -> Scheme {
        Scheme {
            id: id.into(),
            typology: typology.into(),
            decoy,
            members: members.iter().map(|s| s.to_string()).collect(),
            key_accounts: keys.iter().map(|s| s.to_string()).collect(),
            transactions: BTreeSet::from(["t-H".to_string()]),
        }
    }

    #[test]
    fn scores_patterns_alerts_and_transactions() {
        let truth = Truth {
            schemes: vec![
                scheme("1", "fan_in", false, &["H", "a", "b"], &["H"]),
                scheme("2", "fan_in", false, &["G", "c", "d", "e"], &["G"]),
                scheme("3", "fan_in", true, &["D", "f"], &[]),
                scheme("4", "cycle", false, &["x", "y", "z", "w"], &[]),
            ],
            positive_transactions: Some(BTreeSet::from(["t-H".to_string(), "t-x".to_string()])),
        };
        let alerts = vec![
            alert("R1", "H", &["H", "a"]),      // detects 1 by key
            alert("R1", "a", &["a"]),           // on 1 (member), not a key
            alert("R1", "D", &["D"]),           // decoy only
            alert("R2", "q", &["q", "x", "y"]), // covers half of 4: detects 4
            alert("R2", "bg", &["bg"]),         // background
        ];
        let r = score(&truth, &alerts);
        let fan_in = &r
            .typologies
            .iter()
            .find(|t| t.typology == "fan_in")
            .unwrap();
        assert_eq!(
            (
                fan_in.schemes,
                fan_in.detected,
                fan_in.decoys,
                fan_in.decoys_flagged
            ),
            (2, 1, 1, 1)
        );
        let cycle = &r.typologies.iter().find(|t| t.typology == "cycle").unwrap();
        assert_eq!(cycle.detected, 1);
        assert!((r.overall_recall - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.true_positives, 3);
        assert!((r.on_pattern_share - 4.0 / 5.0).abs() < 1e-9);
        let r1 = &r.rules[0];
        assert_eq!(
            (
                r1.alerts,
                r1.true_positives,
                r1.on_decoys_only,
                r1.background
            ),
            (3, 2, 1, 0)
        );
        let tx = r.transactions.unwrap();
        assert_eq!((tx.flagged, tx.positives, tx.true_positives), (5, 2, 1));
        // Subjects H, a (members of scheme 1), D (decoy member), q, bg: two true.
        let e = &r.entities;
        assert_eq!((e.subjects, e.true_subjects, e.look_alikes), (5, 2, 1));
        assert_eq!(e.at_k[0].k, 3);
        assert_eq!(e.at_k.iter().map(|p| p.k).collect::<Vec<_>>(), [3, 50, 100]);
        // All five alerts score 70 with one rule each: ranked by subject, D, H, a, bg, q.
        assert_eq!(e.at_k[0].true_subjects, 2);
        assert!((e.at_k[1].precision - 2.0 / 5.0).abs() < 1e-9);
    }
}
