//! `series`: statistics of an account's or merchant's transactions (statrs): Benford
//! first-digit conformity, modified z-scores against a peer group, Poisson bursts.

use std::collections::BTreeMap;

use serde::Deserialize;
use statrs::distribution::{DiscreteCDF, Poisson};

use super::{Detector, Exec, Finding, KindSpec, TypeGate, Windows, aggregate_masks, time_slice};
use crate::aggregate::{self, Aggregate, EdgeSet, Mask, Unit};
use crate::compile::{Cx, Shift};
use crate::config::{Aggregates, Text, WindowConfig};
use crate::expr::{Program, Ty};
use crate::scope::{Metric, Scope};
use clearwatch_graph::{AccountId, EdgeId, TemporalGraph};
use clearwatch_model::{Subject, SubjectKind};

pub const SPEC: KindSpec = KindSpec {
    name: "series",
    doc: r#"### What it detects
Statistical anomalies in a subject's transactions:
- `benford`: first digits of an account's amounts against Benford's law; metrics `n` and
  `mad` (mean absolute deviation; Nigrini: < 0.006 close, < 0.012 acceptable, < 0.015
  marginal, above: nonconformity).
- `peer_zscore`: a merchant's volume against the merchants of its MCC; metrics `value`,
  `peer_median`, `peers` and `z` = 0.6745 (value − median) / MAD (Iglewicz–Hoaglin).
- `poisson_burst`: an account's count of transactions in one bucket against its own daily
  rate λ; metrics `k`, `lambda`, `p_value` = P(X ≥ k) and `adjusted_p` (Bonferroni over
  every account × bucket tested).

### Why it matters
Fabricated or structured amounts break Benford's law; transaction laundering shows as a
merchant far out of line with its category (TC-08); bursts betray accounts rented out.

### Fields
- `test`: `benford`, `peer_zscore` or `poisson_burst`.
- `edge` (CEL, optional): which transactions count. Binds `tx`, `from`, `to`, `merchant`.
- `side`: `in` or `out` (benford, poisson_burst): the subject is the receiver or the sender.
- `metric`: `sum`, `count` or `mean` of amounts (peer_zscore; subject: the merchant of record).
- `group_by`: `mcc` (peer_zscore).
- `window` (benford optional, peer_zscore required); `bucket` (poisson_burst, default 1d).
- `aggregates` over the set `edges`; `condition` (CEL) binds the metrics.

### Example
```yaml
detect:
  kind: series
  test: peer_zscore
  edge: 'tx.type == "payment"'
  metric: sum
  group_by: mcc
  window: { length: 30d }
  condition: 'peers >= 5 && z > 3.5'
```
"#,
    compile,
};

/// `detect` of kind `series`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesConfig {
    pub kind: Text,
    /// `benford`, `peer_zscore` or `poisson_burst`.
    #[serde(default)]
    pub test: Option<Text>,
    /// Which transactions count (binds `tx`, `from`, `to`, `merchant`).
    #[serde(default)]
    pub edge: Option<Text>,
    /// `in` or `out` (benford, poisson_burst): the subject is the receiver or the sender.
    #[serde(default)]
    pub side: Option<Text>,
    /// `sum`, `count` or `mean` of amounts (peer_zscore).
    #[serde(default)]
    pub metric: Option<Text>,
    /// The peer groups of peer_zscore: `mcc`.
    #[serde(default)]
    pub group_by: Option<Text>,
    /// Optional for benford, required for peer_zscore.
    #[serde(default)]
    pub window: Option<WindowConfig>,
    /// The counting bucket of poisson_burst (default 1d).
    #[serde(default)]
    pub bucket: Option<Text>,
    /// Over the set `edges`.
    #[serde(default)]
    pub aggregates: Aggregates,
    /// Binds the metrics.
    pub condition: Text,
}

const SETS: &[&str] = &["edges"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Test {
    Benford,
    PeerZscore,
    PoissonBurst,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PeerMetric {
    Sum,
    Count,
    Mean,
}

struct Series {
    test: Test,
    edge: Option<Program>,
    incoming: bool,
    metric: PeerMetric,
    windows: Option<Windows>,
    bucket: i64,
    aggregates: Vec<Aggregate>,
    filters: Vec<Program>,
    condition: Program,
}

fn builtins(test: Test) -> &'static [(&'static str, Unit)] {
    match test {
        Test::Benford => &[("n", Unit::Count), ("mad", Unit::Real)],
        Test::PeerZscore => &[
            ("value", Unit::Real),
            ("peer_median", Unit::Real),
            ("peers", Unit::Count),
            ("z", Unit::Real),
        ],
        Test::PoissonBurst => &[
            ("k", Unit::Count),
            ("lambda", Unit::Real),
            ("p_value", Unit::Real),
            ("adjusted_p", Unit::Real),
        ],
    }
}

fn compile(cx: &mut Cx<'_>) -> Option<Box<dyn Detector>> {
    let cfg: SeriesConfig = cx.detect_config()?;
    let test = cx.choice(
        cfg.test.as_ref(),
        "test",
        &["benford", "peer_zscore", "poisson_burst"],
        None,
        &cfg.kind,
    );
    let schema = cx.edge_schema("from", "to");
    let edge = cx.opt_expr(cfg.edge.as_ref(), &schema, Ty::Bool);
    let side = cx.choice(
        cfg.side.as_ref(),
        "side",
        &["in", "out"],
        Some("in"),
        &cfg.kind,
    );
    let metric = cx.choice(
        cfg.metric.as_ref(),
        "metric",
        &["sum", "count", "mean"],
        Some("sum"),
        &cfg.kind,
    );
    cx.choice(
        cfg.group_by.as_ref(),
        "group_by",
        &["mcc"],
        Some("mcc"),
        &cfg.kind,
    );
    let test = match test?.as_str() {
        "benford" => Test::Benford,
        "peer_zscore" => Test::PeerZscore,
        _ => Test::PoissonBurst,
    };
    // A Benford test reads one account's transactions; a burst test corrects for the
    // number of accounts tested, and peer z-scores compare accounts with their peers.
    cx.local = test == Test::Benford;
    let windows = match (&cfg.window, test) {
        (Some(w), _) => Some(cx.windows(Some(w), &cfg.kind)?),
        (None, Test::PeerZscore) => Some(cx.windows(None, &cfg.kind)?),
        (None, _) => None,
    };
    let bucket = match &cfg.bucket {
        Some(b) => cx.duration(b)?,
        None => 86_400_000,
    };
    let (aggregates, filters) = cx.aggregates(&cfg.aggregates, SETS, Shift::Refused, &|cx, _| {
        cx.edge_schema("from", "to")
    });
    let metrics = metric_names(&aggregates, test);
    let condition = cx.condition(&cfg.condition, &metrics, &|_| {});
    Some(Box::new(Series {
        test,
        edge: edge.ok()?,
        incoming: side? == "in",
        metric: match metric?.as_str() {
            "count" => PeerMetric::Count,
            "mean" => PeerMetric::Mean,
            _ => PeerMetric::Sum,
        },
        windows,
        bucket,
        aggregates,
        filters,
        condition: condition?,
    }))
}

fn metric_names(aggregates: &[Aggregate], test: Test) -> Vec<(String, Unit)> {
    aggregates
        .iter()
        .map(|a| (a.name.clone(), a.unit))
        .chain(builtins(test).iter().map(|(n, u)| (n.to_string(), *u)))
        .collect()
}

/// Benford's mean absolute deviation of the first digits of `amounts` (minor units: the
/// first significant digit is the same as in major units).
pub fn benford_mad(amounts: impl Iterator<Item = i64>) -> (i64, f64) {
    let mut counts = [0u64; 10];
    let mut n = 0u64;
    for a in amounts {
        let mut x = a.unsigned_abs();
        if x == 0 {
            continue;
        }
        while x >= 10 {
            x /= 10;
        }
        counts[x as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return (0, f64::NAN);
    }
    let mad = (1..=9)
        .map(|d| {
            let expected = (1.0 + 1.0 / d as f64).log10();
            (counts[d] as f64 / n as f64 - expected).abs()
        })
        .sum::<f64>()
        / 9.0;
    (n as i64, mad)
}

/// The modified z-score of `x` in `peers` (sorted).
pub fn modified_z(x: f64, sorted_peers: &[f64]) -> (f64, f64) {
    let n = sorted_peers.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let median = median_of(sorted_peers);
    let mut dev: Vec<f64> = sorted_peers.iter().map(|v| (v - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = median_of(&dev);
    let z = if mad == 0.0 {
        f64::NAN
    } else {
        0.6745 * (x - median) / mad
    };
    (z, median)
}

fn median_of(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// An account's edges, its count per bucket and its rate λ.
type AccountCounts = (AccountId, Vec<EdgeId>, BTreeMap<i64, usize>, f64);

impl Series {
    fn edge_mask(&self, exec: &Exec<'_>) -> Mask {
        let g = exec.g;
        let mut m = Mask::new(g.edge_count());
        let mut sc = Scope::new(g, exec.zone);
        let gate = TypeGate::of(self.edge.as_ref());
        for e in 0..g.edge_count() as EdgeId {
            if !gate.admits(g, e) || !exec.in_currency(e) {
                continue;
            }
            sc.edge = e;
            sc.accounts[0] = g.src[e as usize];
            sc.accounts[1] = g.dst[e as usize];
            if self.edge.as_ref().is_none_or(|p| p.test(&sc)) {
                m.set(e as usize);
            }
        }
        m
    }

    fn subject_edges(&self, g: &TemporalGraph, mask: &Mask, a: AccountId) -> Vec<EdgeId> {
        if self.incoming {
            g.in_edges(a)
                .iter()
                .copied()
                .filter(|&e| mask.get(e as usize))
                .collect()
        } else {
            g.out_edges(a).filter(|&e| mask.get(e as usize)).collect()
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        exec: &Exec<'_>,
        masks: &[Mask],
        subject: Subject,
        edges: &[EdgeId],
        from: i64,
        until: i64,
        k: i64,
        stats: &[Metric],
        out: &mut Vec<Finding>,
    ) {
        let g = exec.g;
        let view = [EdgeSet {
            edges,
            subject_is_dst: self.incoming,
        }];
        let mut metrics: Vec<Metric> = self
            .aggregates
            .iter()
            .map(|a| aggregate::compute(a, g, &view, masks, None, exec.exponent))
            .collect();
        metrics.extend_from_slice(stats);
        let mut sc = Scope::new(g, exec.zone);
        sc.metrics = &metrics;
        if !self.condition.test(&sc) {
            return;
        }
        let accounts = edges
            .iter()
            .flat_map(|&e| [g.src[e as usize], g.dst[e as usize]])
            .collect();
        out.push(Finding {
            subject,
            from,
            until,
            window_index: k,
            metrics,
            edges: edges.to_vec(),
            accounts,
        });
    }
}

impl Detector for Series {
    fn metrics(&self) -> Vec<(String, Unit)> {
        metric_names(&self.aggregates, self.test)
    }

    fn run(&self, exec: &Exec<'_>) -> Vec<Finding> {
        let g = exec.g;
        let mask = self.edge_mask(exec);
        let masks = aggregate_masks(&self.aggregates, &self.filters, exec, &|scope, e, _| {
            scope.edge = e;
            scope.accounts[0] = g.src[e as usize];
            scope.accounts[1] = g.dst[e as usize];
        });
        let account = |a: AccountId| Subject {
            kind: SubjectKind::Account,
            id: g.account_name(a).to_string(),
        };
        let mut out = Vec::new();
        match self.test {
            Test::Benford => {
                for a in 0..g.account_count() as AccountId {
                    if exec.stopped() {
                        return out;
                    }
                    let edges = self.subject_edges(g, &mask, a);
                    if edges.is_empty() {
                        continue;
                    }
                    let (first, last) = (
                        g.ts[edges[0] as usize],
                        g.ts[edges[edges.len() - 1] as usize],
                    );
                    let w = self.windows;
                    let ks = match w {
                        Some(w) => w.covering(first, last, exec.zone),
                        None => 0..=0,
                    };
                    for k in ks {
                        if exec.stopped() {
                        return out;
                    }
                        let (from, until) = match w {
                            Some(w) => w.bounds(k, exec.zone),
                            None => (first, last + 1),
                        };
                        let slice = time_slice(g, &edges, from, until);
                        if slice.is_empty() {
                            continue;
                        }
                        let (n, mad) = benford_mad(slice.iter().map(|&e| g.amount[e as usize]));
                        let stats = [Metric::Int(n), Metric::Float(mad)];
                        self.finish(
                            exec,
                            &masks,
                            account(a),
                            slice,
                            from,
                            until,
                            k,
                            &stats,
                            &mut out,
                        );
                    }
                }
            }
            Test::PeerZscore => {
                let w = self.windows.expect("peer_zscore has a window");
                let mut by_merchant: BTreeMap<usize, Vec<EdgeId>> = BTreeMap::new();
                for e in 0..g.edge_count() as EdgeId {
                    if mask.get(e as usize)
                        && let Some(m) = g.merchant_index(e)
                    {
                        by_merchant.entry(m).or_default().push(e);
                    }
                }
                for v in by_merchant.values_mut() {
                    v.sort_unstable_by_key(|&e| (g.ts[e as usize], e));
                }
                let Some((lo, hi)) = g.time_range() else {
                    return out;
                };
                for k in w.covering(lo, hi, exec.zone) {
                    if exec.stopped() {
                        return out;
                    }
                    let (from, until) = w.bounds(k, exec.zone);
                    // Per merchant in this window: (mcc, value, edges).
                    let mut rows: Vec<(String, f64, usize, &[EdgeId])> = Vec::new();
                    for (&m, edges) in &by_merchant {
                        let slice = time_slice(g, edges, from, until);
                        if slice.is_empty() {
                            continue;
                        }
                        let sum: i128 = slice.iter().map(|&e| i128::from(g.amount[e as usize])).sum();
                        let major = sum as f64 / 10f64.powi(exec.exponent as i32);
                        let value = match self.metric {
                            PeerMetric::Sum => major,
                            PeerMetric::Count => slice.len() as f64,
                            PeerMetric::Mean => major / slice.len() as f64,
                        };
                        let mcc = g.merchants()[m].mcc.clone().unwrap_or_default();
                        rows.push((mcc, value, m, slice));
                    }
                    let mut groups: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
                    for (mcc, value, _, _) in &rows {
                        groups.entry(mcc.as_str()).or_default().push(*value);
                    }
                    for v in groups.values_mut() {
                        v.sort_by(f64::total_cmp);
                    }
                    for (mcc, value, m, slice) in &rows {
                        let peers = &groups[mcc.as_str()];
                        let (z, median) = modified_z(*value, peers);
                        let stats = [
                            Metric::Float(*value),
                            Metric::Float(median),
                            Metric::Int(peers.len() as i64),
                            Metric::Float(z),
                        ];
                        let subject = Subject {
                            kind: SubjectKind::Merchant,
                            id: g.merchants()[*m].merchant_id.clone(),
                        };
                        self.finish(
                            exec, &masks, subject, slice, from, until, k, &stats, &mut out,
                        );
                    }
                }
            }
            Test::PoissonBurst => {
                let bucket = self.bucket;
                let mut per_account: Vec<AccountCounts> = Vec::new();
                let mut tests = 0usize;
                for a in 0..g.account_count() as AccountId {
                    let edges = self.subject_edges(g, &mask, a);
                    if edges.is_empty() {
                        continue;
                    }
                    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
                    for &e in &edges {
                        *counts
                            .entry(g.ts[e as usize].div_euclid(bucket))
                            .or_default() += 1;
                    }
                    let (b0, b1) = (
                        *counts.keys().next().expect("non-empty"),
                        *counts.keys().last().expect("non-empty"),
                    );
                    let span = (b1 - b0 + 1) as f64;
                    let lambda = edges.len() as f64 / span;
                    tests += counts.len();
                    per_account.push((a, edges, counts, lambda));
                }
                for (a, edges, counts, lambda) in &per_account {
                    let Ok(dist) = Poisson::new(*lambda) else {
                        continue;
                    };
                    for (&b, &k) in counts {
                        let p = if k == 0 { 1.0 } else { dist.sf(k as u64 - 1) };
                        let adjusted = (p * tests as f64).min(1.0);
                        let (from, until) = (b * bucket, (b + 1) * bucket);
                        let slice = time_slice(g, edges, from, until);
                        let stats = [
                            Metric::Int(k as i64),
                            Metric::Float(*lambda),
                            Metric::Float(p),
                            Metric::Float(adjusted),
                        ];
                        self.finish(
                            exec,
                            &masks,
                            account(*a),
                            slice,
                            from,
                            until,
                            b,
                            &stats,
                            &mut out,
                        );
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benford_conforming_amounts_have_small_mad() {
        // Powers of 1.1 follow Benford's law closely.
        let amounts = (0..2000).map(|i| (100.0 * 1.1f64.powi(i % 200)) as i64);
        let (n, mad) = benford_mad(amounts);
        assert_eq!(n, 2000);
        assert!(mad < 0.012, "{mad}");
        let (_, bad) = benford_mad((0..500).map(|i| 4_500_000 + i));
        assert!(bad > 0.015, "{bad}");
    }

    #[test]
    fn modified_z_flags_outliers() {
        let mut peers = vec![10.0, 11.0, 9.0, 10.5, 9.5, 100.0];
        peers.sort_by(f64::total_cmp);
        let (z, median) = modified_z(100.0, &peers);
        assert!((median - 10.25).abs() < 1e-9);
        assert!(z > 3.5, "{z}");
        let (z_normal, _) = modified_z(10.0, &peers);
        assert!(z_normal.abs() < 1.0);
    }
}
