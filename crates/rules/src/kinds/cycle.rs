//! `cycle`: time-ordered cycles that bring money back to where it started.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Detector, Exec, Finding, KindSpec, aggregate_masks};
use crate::aggregate::{self, Aggregate, EdgeSet, Mask, Unit};
use crate::compile::{Cx, Shift};
use crate::config::{Aggregates, Text, WindowConfig};
use crate::expr::{Program, Ty};
use crate::scope::{self, Metric, Scope};
use clearwatch_graph::{AccountId, EdgeId, TemporalGraph};
use clearwatch_model::{Subject, SubjectKind};

pub const SPEC: KindSpec = KindSpec {
    name: "cycle",
    doc: r#"### What it detects
Round trips: a chain of transactions, each no earlier than the one before, that starts and
ends at the same account within the window length.

### Why it matters
Round-tripping inflates volume and disguises the origin of funds: money leaves an account
and comes back through intermediaries, usually a little less each hop.

### Fields
- `edge` (CEL, optional): which transactions may form cycles. Binds `tx`, `from`, `to`, `merchant`.
- `min_length`, `max_length`: cycle length in transactions (default 2 and 6, at most 12).
- `ordered` (default true): each hop no earlier than the one before; with `false`, the
  hops may happen in any order as long as all fall within the window length.
- `window`: `length` is the longest time from the first to the last transaction.
- `aggregates` over the set `edges` (the cycle's transactions).
- Built-in metrics: `length`, `duration_hours`, `first_amount`, `last_amount`, `retention`
  (last amount / first amount).
- `condition` (CEL): binds the metrics and `origin` (the cycle's lowest account id, the
  alert's subject).

Each distinct cycle (sequence of accounts) is reported once, whichever account sends
first; `first_amount` is the cycle's earliest transaction and `last_amount` the one that
closes it.
Candidate accounts are restricted to strongly connected components (petgraph).

### Example
```yaml
detect:
  kind: cycle
  edge: 'tx.type == "transfer"'
  max_length: 5
  window: { length: 30d }
  condition: 'length >= 3 && retention >= 0.5'
```
"#,
    compile,
};

/// `detect` of kind `cycle`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleConfig {
    pub kind: Text,
    /// Which transactions may form cycles (binds `tx`, `from`, `to`, `merchant`).
    #[serde(default)]
    pub edge: Option<Text>,
    /// Shortest and longest cycle, in transactions (default 2 and 6).
    #[serde(default)]
    pub min_length: Option<Spanned<usize>>,
    #[serde(default)]
    pub max_length: Option<Spanned<usize>>,
    /// Hops in time order (default) or in any order within the window.
    #[serde(default)]
    pub ordered: Option<Spanned<bool>>,
    /// Its `length` is the longest time from the first to the last transaction.
    #[serde(default)]
    pub window: Option<WindowConfig>,
    /// Over the set `edges`.
    #[serde(default)]
    pub aggregates: Aggregates,
    /// Binds the metrics and `origin`.
    pub condition: Text,
}

const SETS: &[&str] = &["edges"];
const MAX_LENGTH: usize = 12;
const BUILTINS: &[(&str, Unit)] = &[
    ("length", Unit::Count),
    ("duration_hours", Unit::Hours),
    ("first_amount", Unit::Money),
    ("last_amount", Unit::Money),
    ("retention", Unit::Ratio),
];
/// Search steps per starting edge, so dense components stay bounded.
const MAX_STEPS_PER_START: usize = 20_000;

struct Cycle {
    edge: Option<Program>,
    ordered: bool,
    min_len: usize,
    max_len: usize,
    length: i64,
    aggregates: Vec<Aggregate>,
    filters: Vec<Program>,
    condition: Program,
}

fn compile(cx: &mut Cx<'_>) -> Option<Box<dyn Detector>> {
    let cfg: CycleConfig = cx.detect_config()?;
    let schema = cx.edge_schema("from", "to");
    let edge = cx.opt_expr(cfg.edge.as_ref(), &schema, Ty::Bool);
    let min_len = cfg.min_length.as_ref().map_or(2, |m| m.value);
    let max_len = cfg.max_length.as_ref().map_or(6, |m| m.value);
    let mut ok = true;
    if min_len < 2 || max_len > MAX_LENGTH || min_len > max_len {
        let at = cfg.min_length.as_ref().or(cfg.max_length.as_ref());
        let msg = format!(
            "cycle lengths must satisfy 2 <= min_length <= max_length <= {MAX_LENGTH} (got {min_len}..{max_len})"
        );
        match at {
            Some(a) => cx.error(a, msg, None),
            None => cx.error(&cfg.kind, msg, None),
        }
        ok = false;
    }
    let windows = cx.windows(cfg.window.as_ref(), &cfg.kind);
    let (aggregates, filters) = cx.aggregates(&cfg.aggregates, SETS, Shift::Refused, &|cx, _| {
        cx.edge_schema("from", "to")
    });
    let metrics = metric_names(&aggregates);
    let condition = cx.condition(&cfg.condition, &metrics, &|s| {
        scope::add_account(s, "origin", 0)
    });
    if !ok {
        return None;
    }
    Some(Box::new(Cycle {
        edge: edge.ok()?,
        ordered: cfg.ordered.as_ref().is_none_or(|o| o.value),
        min_len,
        max_len,
        length: windows?.length,
        aggregates,
        filters,
        condition: condition?,
    }))
}

fn metric_names(aggregates: &[Aggregate]) -> Vec<(String, Unit)> {
    aggregates
        .iter()
        .map(|a| (a.name.clone(), a.unit))
        .chain(BUILTINS.iter().map(|(n, u)| (n.to_string(), *u)))
        .collect()
}

/// Each account's searchable outgoing edges (masked, not self-loops, inside the account's
/// component), in the graph's (time, id) order, with their times and destinations
/// alongside: the search reads one contiguous run per account instead of reaching into
/// the graph's columns at random (which, at ten million edges, is a cache miss each).
struct Adjacency {
    start: Vec<u32>,
    arcs: Vec<Arc>,
}

#[derive(Debug, Clone, Copy)]
struct Arc {
    ts: i64,
    edge: EdgeId,
    dst: AccountId,
}

impl Adjacency {
    fn new(g: &TemporalGraph, mask: &Mask, comp: &[u32]) -> Adjacency {
        let mut start = Vec::with_capacity(g.account_count() + 1);
        let mut arcs = Vec::new();
        start.push(0);
        for a in 0..g.account_count() as AccountId {
            if comp[a as usize] != u32::MAX {
                for e in g.out_edges(a) {
                    let d = g.dst[e as usize];
                    if mask.get(e as usize) && comp[d as usize] == comp[a as usize] {
                        arcs.push(Arc {
                            ts: g.ts[e as usize],
                            edge: e,
                            dst: d,
                        });
                    }
                }
            }
            start.push(arcs.len() as u32);
        }
        Adjacency { start, arcs }
    }

    /// The searchable edges of `a` with `from <= ts < until`.
    fn window(&self, a: AccountId, from: i64, until: i64) -> &[Arc] {
        let arcs = &self.arcs[self.start[a as usize] as usize..self.start[a as usize + 1] as usize];
        let l = arcs.partition_point(|x| x.ts < from);
        let h = arcs.partition_point(|x| x.ts < until).max(l);
        &arcs[l..h]
    }
}

struct Search<'a> {
    g: &'a TemporalGraph,
    adj: &'a Adjacency,
    comp: &'a [u32],
    origin: AccountId,
    /// The cycle's first edge: every other edge comes after it in (time, id) order.
    start: (i64, EdgeId),
    deadline: i64,
    steps: usize,
    path: Vec<EdgeId>,
    nodes: Vec<AccountId>,
}

/// A cycle's accounts rotated to start at the lowest id: one key per cycle.
fn canonical(nodes: &[AccountId]) -> Vec<AccountId> {
    let i = nodes
        .iter()
        .enumerate()
        .min_by_key(|(_, a)| **a)
        .map_or(0, |(i, _)| i);
    nodes[i..].iter().chain(&nodes[..i]).copied().collect()
}

impl Cycle {
    fn search(&self, s: &mut Search<'_>, found: &mut BTreeMap<Vec<AccountId>, Vec<EdgeId>>) {
        if s.steps >= MAX_STEPS_PER_START {
            return;
        }
        s.steps += 1;
        let v = *s.nodes.last().expect("the path's end");
        // Ordered cycles move forward in time; unordered ones only stay in the window.
        let from = if self.ordered {
            s.g.ts[*s.path.last().expect("non-empty") as usize]
        } else {
            s.start.0
        };
        // Every account on the path is in the origin's component, so the adjacency's
        // edges are exactly those the mask and component tests below used to let through,
        // in the same order.
        for &Arc {
            ts,
            edge: e,
            dst: d,
        } in s.adj.window(v, from, s.deadline)
        {
            // Unordered cycles are searched from their first edge in (time, id) order only;
            // ordered ones from any edge (equal timestamps allow several starts), and the
            // canonical key keeps one copy.
            if !self.ordered && (ts, e) <= s.start {
                continue;
            }
            if d == s.origin {
                if s.path.len() + 1 >= self.min_len {
                    let mut edges = s.path.clone();
                    edges.push(e);
                    found.entry(canonical(&s.nodes)).or_insert(edges);
                }
                continue;
            }
            if s.comp[d as usize] != s.comp[s.origin as usize]
                || s.path.len() + 1 >= self.max_len
                || s.nodes.contains(&d)
            {
                continue;
            }
            s.path.push(e);
            s.nodes.push(d);
            self.search(s, found);
            s.path.pop();
            s.nodes.pop();
        }
    }
}

impl Detector for Cycle {
    fn metrics(&self) -> Vec<(String, Unit)> {
        metric_names(&self.aggregates)
    }

    fn run(&self, exec: &Exec<'_>) -> Vec<Finding> {
        let g = exec.g;
        let mut mask = Mask::new(g.edge_count());
        let mut sc = Scope::new(g);
        for e in 0..g.edge_count() as EdgeId {
            let (s, d) = (g.src[e as usize], g.dst[e as usize]);
            if !exec.in_currency(e) || s == d {
                continue;
            }
            sc.edge = e;
            sc.accounts[0] = s;
            sc.accounts[1] = d;
            if self.edge.as_ref().is_none_or(|p| p.test(&sc)) {
                mask.set(e as usize);
            }
        }
        // Strongly connected components of the filtered account graph.
        let comp = g.component_ids(|e| mask.get(e as usize));
        let adj = Adjacency::new(g, &mask, &comp);
        let masks = aggregate_masks(&self.aggregates, &self.filters, exec, &|scope, e, _| {
            scope.edge = e;
            scope.accounts[0] = g.src[e as usize];
            scope.accounts[1] = g.dst[e as usize];
        });
        // Every cycle is searched from its first edge in (time, id) order, so each is found
        // once whatever account it starts at; the map keeps one copy per account sequence.
        let mut found: BTreeMap<Vec<AccountId>, Vec<EdgeId>> = BTreeMap::new();
        for e0 in 0..g.edge_count() as EdgeId {
            if exec.stopped() {
                return Vec::new();
            }
            let (origin, d) = (g.src[e0 as usize], g.dst[e0 as usize]);
            if !mask.get(e0 as usize)
                || comp[origin as usize] == u32::MAX
                || comp[d as usize] != comp[origin as usize]
            {
                continue;
            }
            let t0 = g.ts[e0 as usize];
            let mut s = Search {
                g,
                adj: &adj,
                comp: &comp,
                origin,
                start: (t0, e0),
                deadline: t0.saturating_add(self.length),
                steps: 0,
                path: vec![e0],
                nodes: vec![origin, d],
            };
            self.search(&mut s, &mut found);
        }
        let mut findings = Vec::new();
        {
            for (nodes, edges) in found {
                let origin = nodes[0];
                let first = edges[0] as usize;
                let last = edges[edges.len() - 1] as usize;
                let (t_min, t_max) = edges
                    .iter()
                    .map(|&e| g.ts[e as usize])
                    .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
                let view = [EdgeSet {
                    edges: &edges,
                    subject_is_dst: false,
                }];
                let mut metrics: Vec<Metric> = self
                    .aggregates
                    .iter()
                    .map(|a| aggregate::compute(a, g, &view, &masks, None, exec.exponent))
                    .collect();
                metrics.push(Metric::Int(edges.len() as i64));
                metrics.push(Metric::Float((t_max - t_min) as f64 / 3_600_000.0));
                metrics.push(Metric::Money(g.amount[first], exec.exponent));
                metrics.push(Metric::Money(g.amount[last], exec.exponent));
                metrics.push(Metric::Float(if g.amount[first] == 0 {
                    f64::NAN
                } else {
                    g.amount[last] as f64 / g.amount[first] as f64
                }));
                let mut sc = Scope::new(g);
                sc.accounts[0] = origin;
                sc.metrics = &metrics;
                if !self.condition.test(&sc) {
                    continue;
                }
                let accounts: Vec<AccountId> = edges.iter().map(|&e| g.src[e as usize]).collect();
                let (from, until) = (t_min, t_max + 1);
                findings.push(Finding {
                    subject: Subject {
                        kind: SubjectKind::Account,
                        id: g.account_name(origin).to_string(),
                    },
                    from,
                    until,
                    // Cycles are reported one by one, never merged into episodes.
                    window_index: findings.len() as i64 * 2,
                    metrics,
                    edges,
                    accounts,
                });
            }
        }
        findings
    }
}
