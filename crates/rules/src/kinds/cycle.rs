//! `cycle`: time-ordered cycles that bring money back to where it started.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Adjacency, Detector, Exec, Finding, KindSpec, Link, Stamps, TypeGate, aggregate_masks};
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
- `start` (CEL, optional, only with `ordered: false`): a cycle is reported only when at
  least one of its transactions matches, and the search begins at those alone. Binds
  `tx`, `from`, `to`, `merchant`. When the condition cannot hold without such a
  transaction (for example "half the hops sent by one-off accounts"), saying so here
  gives the same cycles (account sequences) for a fraction of the work on a busy
  background, where most transactions would otherwise each start a search. Where
  parallel transactions make one cycle in several ways, the one reported is found from
  its earliest matching transaction.
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
closes it (the transaction before it round the cycle).
Candidate accounts are restricted to strongly connected components (petgraph), and a path
is extended only to accounts that can still reach the start within the hops left. Each
start transaction examines at most 10,000 transactions: on dense backgrounds a search can
stop there, and `scan` says for how many starts (`note: rule … stopped N of M searches at
its work cap`, also in `--timings` and the dashboard's backtest).

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
    /// Unordered cycles only: a cycle needs one transaction that matches, and searches
    /// begin there (binds `tx`, `from`, `to`, `merchant`).
    #[serde(default)]
    pub start: Option<Text>,
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
/// Arcs examined per start edge: one start in a dense component costs no more, so the
/// search is linear in the start edges. A start that reaches it is counted and reported
/// (see [`super::Caps`]). On the labelled sets of docs/evaluation.md and the `realistic`
/// background ML-03's alerts equal those of the earlier cap (20,000 expanded path ends);
/// on that background it bounds ML-03 at about 7.5 s per million transactions
/// (docs/performance.md).
const MAX_WORK_PER_START: usize = 10_000;
/// The search knows, for each start, which accounts reach the origin in 1, 2 or 3 hops
/// inside the window ([`Layers`]); building them reads at most this many arcs.
const MAX_LAYER_DEPTH: u8 = 3;
const MAX_LAYER_WORK: usize = 4_096;
/// Start edges a worker takes at a time.
const CHUNK: usize = 256;

struct Cycle {
    edge: Option<Program>,
    start: Option<Program>,
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
    let start = cx.opt_expr(cfg.start.as_ref(), &schema, Ty::Bool);
    let ordered = cfg.ordered.as_ref().is_none_or(|o| o.value);
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
    if let Some(at) = cfg.window.as_ref().and_then(|w| w.align.as_ref())
        && windows.is_some_and(|w| w.align != super::Align::Epoch)
    {
        cx.error(
            at,
            "a cycle's window is how long the cycle may take, not a calendar span: `align` does not apply",
            None,
        );
    }
    let (aggregates, filters) = cx.aggregates(&cfg.aggregates, SETS, Shift::Refused, &|cx, _| {
        cx.edge_schema("from", "to")
    });
    let metrics = metric_names(&aggregates);
    let condition = cx.condition(&cfg.condition, &metrics, &|s| {
        scope::add_account(s, "origin", 0)
    });
    if let (Some(at), true) = (cfg.start.as_ref(), ordered) {
        // An ordered cycle is a chain from its earliest hop, so "begins at a matching
        // transaction" would mean something else than "contains one".
        cx.error(
            at,
            "`start` applies to unordered cycles only",
            Some("add `ordered: false`, or move the test into `condition`".into()),
        );
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(Box::new(Cycle {
        edge: edge.ok()?,
        start: start.ok()?,
        ordered,
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

/// For one start: the accounts that reach the origin in at most 1, 2, … hops over arcs
/// inside the start's window (a breadth-first search backwards from the origin). A path
/// end that cannot reach the origin in the hops left is not expanded: this prunes only
/// branches that close no cycle, so the search finds what it found without them.
struct Layers {
    /// The accounts reached for this start, and their hop counts.
    reached: Stamps,
    hops: Vec<u8>,
    /// Hop counts up to this are exact; beyond it, nothing is known.
    depth: u8,
    frontier: Vec<AccountId>,
    next: Vec<AccountId>,
}

impl Layers {
    fn new(accounts: usize) -> Layers {
        Layers {
            reached: Stamps::new(accounts),
            hops: vec![0; accounts],
            depth: 0,
            frontier: Vec::new(),
            next: Vec::new(),
        }
    }

    /// Builds the layers of `origin` over incoming arcs in `[from, until)`.
    fn build(&mut self, incoming: &Adjacency, origin: AccountId, from: i64, until: i64) {
        self.reached.next_round();
        self.depth = 0;
        self.frontier.clear();
        self.frontier.push(origin);
        let mut work = 0;
        for level in 1..=MAX_LAYER_DEPTH {
            self.next.clear();
            for &v in &self.frontier {
                let arcs = incoming.window(v, from, until);
                work += arcs.len();
                if work > MAX_LAYER_WORK {
                    // This level is incomplete: its marks (all `level`) never let an
                    // account through with fewer hops left than `level`.
                    return;
                }
                for arc in arcs {
                    let a = arc.dst as usize;
                    if arc.dst != origin && self.reached.first_visit(arc.dst) {
                        self.hops[a] = level;
                        self.next.push(arc.dst);
                    }
                }
            }
            self.depth = level;
            if self.next.is_empty() {
                // Nothing further reaches the origin: every hop count is known.
                self.depth = u8::MAX;
                return;
            }
            std::mem::swap(&mut self.frontier, &mut self.next);
        }
    }

    /// Whether `a` may reach the origin in at most `left` hops.
    fn may_close(&self, a: AccountId, left: usize) -> bool {
        left > usize::from(self.depth)
            || (self.reached.seen(a) && usize::from(self.hops[a as usize]) <= left)
    }
}

struct Search<'a> {
    g: &'a TemporalGraph,
    adj: &'a Adjacency,
    layers: &'a Layers,
    comp: &'a [u32],
    origin: AccountId,
    /// The edge the search began at: every other edge that may start a search comes
    /// after it in (time, id) order.
    start: (i64, EdgeId),
    deadline: i64,
    /// Edges that may start a search, when not all may (`start`).
    eligible: Option<&'a Mask>,
    /// Earliest and latest time on the path.
    span: (i64, i64),
    /// Arcs examined so far, and the cap.
    work: usize,
    cap: usize,
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

/// Each cycle (canonical account sequence) with the start edge it was found from and its
/// edges.
type Found = BTreeMap<Vec<AccountId>, (EdgeId, Vec<EdgeId>)>;

impl Cycle {
    /// Searches the start edges `starts` takes in increasing order; each cycle keeps the
    /// first copy found, so a worker's map holds, per cycle, its copy from the lowest start.
    /// Returns the starts searched and those cut short at the work cap.
    fn search_starts(
        &self,
        exec: &Exec<'_>,
        graph: (&Mask, Option<&Mask>, &[u32], &Adjacency, &Adjacency),
        starts: &dyn Fn() -> Option<std::ops::Range<EdgeId>>,
        found: &mut Found,
    ) -> (usize, usize) {
        let g = exec.g;
        let (mask, eligible, comp, adj, incoming) = graph;
        let mut layers = Layers::new(g.account_count());
        let cap = MAX_WORK_PER_START;
        let (mut searched, mut capped) = (0, 0);
        while let Some(range) = starts() {
            for e0 in range {
                if exec.stopped() {
                    return (searched, capped);
                }
                let (origin, d) = (g.src[e0 as usize], g.dst[e0 as usize]);
                if !mask.get(e0 as usize)
                    || eligible.is_some_and(|m| !m.get(e0 as usize))
                    || comp[origin as usize] == u32::MAX
                    || comp[d as usize] != comp[origin as usize]
                {
                    continue;
                }
                let t0 = g.ts[e0 as usize];
                let deadline = t0.saturating_add(self.length);
                // From a start that need not be the cycle's earliest edge, the cycle lies
                // within one window length either side of it.
                let earliest = match eligible {
                    Some(_) => t0.saturating_sub(self.length - 1),
                    None => t0,
                };
                layers.build(incoming, origin, earliest, deadline);
                searched += 1;
                if !layers.may_close(d, self.max_len - 1) {
                    continue;
                }
                let mut s = Search {
                    g,
                    adj,
                    layers: &layers,
                    comp,
                    origin,
                    start: (t0, e0),
                    deadline,
                    eligible,
                    span: (t0, t0),
                    work: 0,
                    cap,
                    path: vec![e0],
                    nodes: vec![origin, d],
                };
                self.search(&mut s, found);
                if s.work >= cap {
                    capped += 1;
                }
            }
        }
        (searched, capped)
    }

    /// Extends the path from its end; every call starts below the work cap (the loop
    /// below returns as soon as it is reached).
    fn search(&self, s: &mut Search<'_>, found: &mut Found) {
        let v = *s.nodes.last().expect("the path's end");
        // Ordered cycles move forward in time; unordered ones only stay in the window:
        // after their first edge, or with `start` within one length of every edge so far.
        let (from, until) = if self.ordered {
            (s.g.ts[*s.path.last().expect("non-empty") as usize], s.deadline)
        } else if s.eligible.is_some() {
            (
                s.span.1.saturating_sub(self.length - 1),
                s.span.0.saturating_add(self.length),
            )
        } else {
            (s.start.0, s.deadline)
        };
        // Every account on the path is in the origin's component, so the adjacency's
        // edges are exactly those the mask and component tests below used to let through,
        // in the same order.
        for &Link {
            ts,
            edge: e,
            dst: d,
        } in s.adj.window(v, from, until)
        {
            s.work += 1;
            if s.work >= s.cap {
                return;
            }
            // Unordered cycles are searched from their first edge in (time, id) order only
            // (with `start`, their first matching edge); ordered ones from any edge (equal
            // timestamps allow several starts), and the canonical key keeps one copy.
            if !self.ordered
                && (ts, e) <= s.start
                && s.eligible.is_none_or(|m| m.get(e as usize))
            {
                continue;
            }
            if d == s.origin {
                if s.path.len() + 1 >= self.min_len {
                    let mut edges = s.path.clone();
                    edges.push(e);
                    if s.eligible.is_some() {
                        // Listed from the earliest edge, as a search from it lists them.
                        let first = (0..edges.len())
                            .min_by_key(|&i| (s.g.ts[edges[i] as usize], edges[i]))
                            .unwrap_or(0);
                        edges.rotate_left(first);
                    }
                    found
                        .entry(canonical(&s.nodes))
                        .or_insert((s.start.1, edges));
                }
                continue;
            }
            if s.comp[d as usize] != s.comp[s.origin as usize]
                || s.path.len() + 1 >= self.max_len
                || !s.layers.may_close(d, self.max_len - s.path.len() - 1)
                || s.nodes.contains(&d)
            {
                continue;
            }
            let span = s.span;
            s.span = (span.0.min(ts), span.1.max(ts));
            s.path.push(e);
            s.nodes.push(d);
            self.search(s, found);
            s.path.pop();
            s.nodes.pop();
            s.span = span;
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
        let mut starts = self.start.as_ref().map(|_| Mask::new(g.edge_count()));
        // Whether some searchable transaction fails `start`: one every transaction matches
        // (ML-03 with a zero share) is no `start`.
        let mut restricts = false;
        let mut sc = Scope::new(g, exec.zone);
        let gate = TypeGate::of(self.edge.as_ref());
        for e in 0..g.edge_count() as EdgeId {
            if !gate.admits(g, e) {
                continue;
            }
            let (s, d) = (g.src[e as usize], g.dst[e as usize]);
            if !exec.in_currency(e) || s == d {
                continue;
            }
            sc.edge = e;
            sc.accounts[0] = s;
            sc.accounts[1] = d;
            if self.edge.as_ref().is_none_or(|p| p.test(&sc)) {
                mask.set(e as usize);
                if let (Some(p), Some(m)) = (&self.start, starts.as_mut()) {
                    if p.test(&sc) {
                        m.set(e as usize);
                    } else {
                        restricts = true;
                    }
                }
            }
        }
        let eligible = starts.filter(|_| restricts);
        // Strongly connected components of the filtered account graph.
        let comp = g.component_ids(|e| mask.get(e as usize));
        // Searchable arcs: masked, inside one component (which holds no self-loop).
        let keep = |e: EdgeId, a: AccountId, other: AccountId| {
            mask.get(e as usize) && comp[a as usize] != u32::MAX && comp[other as usize] == comp[a as usize]
        };
        let adj = Adjacency::new(g, false, keep);
        let incoming = Adjacency::new(g, true, keep);
        let masks = aggregate_masks(&self.aggregates, &self.filters, exec, &|scope, e, _| {
            scope.edge = e;
            scope.accounts[0] = g.src[e as usize];
            scope.accounts[1] = g.dst[e as usize];
        });
        // Every cycle is searched from its first edge in (time, id) order (with `start`,
        // its first matching edge), so each is found once whatever account it starts at;
        // one copy is kept per account sequence, the one from the lowest start edge (so
        // the result does not depend on how the starts were shared out). Workers take
        // chunks of start edges in increasing order; plain scoped threads suffice for one
        // split of independent chunks.
        let next = AtomicUsize::new(0);
        let starts = || {
            let lo = next.fetch_add(CHUNK, Ordering::Relaxed).min(g.edge_count());
            let hi = (lo + CHUNK).min(g.edge_count());
            (lo < hi).then_some(lo as EdgeId..hi as EdgeId)
        };
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parts: Vec<(Found, (usize, usize))> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    sc.spawn(|| {
                        let mut found = Found::new();
                        let counts =
                            self.search_starts(
                                exec,
                                (&mask, eligible.as_ref(), &comp, &adj, &incoming),
                                &starts,
                                &mut found,
                            );
                        (found, counts)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a cycle search worker does not panic"))
                .collect()
        });
        if exec.stopped() {
            return Vec::new();
        }
        let mut found = Found::new();
        let (mut searched, mut capped) = (0, 0);
        for (part, (s, c)) in parts {
            searched += s;
            capped += c;
            for (nodes, copy) in part {
                match found.entry(nodes) {
                    Entry::Vacant(v) => {
                        v.insert(copy);
                    }
                    Entry::Occupied(mut o) => {
                        if copy.0 < o.get().0 {
                            o.insert(copy);
                        }
                    }
                }
            }
        }
        exec.caps.record(capped, searched);
        let mut findings = Vec::new();
        {
            for (nodes, (_, edges)) in found {
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
                let mut sc = Scope::new(g, exec.zone);
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;
    use crate::compile::{Shared, compile_rule};
    use crate::config::RuleConfig;
    use crate::kinds::test_graphs::graph;
    use crate::kinds::{Caps, Stop};

    fn detector(ordered: bool, max_length: usize, hours: i64) -> Box<dyn Detector> {
        detector_from(ordered, max_length, hours, "")
    }

    fn detector_from(ordered: bool, max_length: usize, hours: i64, extra: &str) -> Box<dyn Detector> {
        let text = format!(
            "id: K-1\ntitle: t\nstatus: test\nseverity: low\ndetect:\n  kind: cycle\n  \
             ordered: {ordered}\n  max_length: {max_length}\n  window: {{ length: {hours}h }}\n  \
             {extra}condition: 'true'\nsummary: s\n"
        );
        let cfg: RuleConfig = serde_saphyr::from_str(&text).expect("parses");
        compile_rule(&cfg, Path::new("K-1-cycle.yaml"), &text, &Shared::default(), &BTreeMap::new())
            .expect("compiles")
            .detector
    }

    fn run(d: &dyn Detector, g: &TemporalGraph) -> (Vec<Finding>, (usize, usize)) {
        let (stop, caps) = (Stop::default(), Caps::default());
        let exec = Exec::new(g, 0, &stop, &caps);
        (d.run(&exec), caps.counts())
    }

    fn canonical_names(nodes: &[u8]) -> Vec<u8> {
        let i = (0..nodes.len()).min_by_key(|&i| nodes[i]).unwrap_or(0);
        nodes[i..].iter().chain(&nodes[..i]).copied().collect()
    }

    /// Every cycle of at most `max` edges by enumeration of edge sequences: distinct
    /// accounts, all times within `hours` of the earliest and, when `ordered`, not
    /// decreasing from some edge on.
    fn brute_force(edges: &[(u8, u8, i64)], ordered: bool, max: usize, hours: i64) -> BTreeSet<Vec<u8>> {
        brute_force_with(edges, ordered, max, hours, &|_| true)
    }

    /// As [`brute_force`], keeping only edge sequences with an edge `starts` accepts.
    fn brute_force_with(
        edges: &[(u8, u8, i64)],
        ordered: bool,
        max: usize,
        hours: i64,
        starts: &dyn Fn(&(u8, u8, i64)) -> bool,
    ) -> BTreeSet<Vec<u8>> {
        fn extend(
            edges: &[(u8, u8, i64)],
            path: &mut Vec<usize>,
            max: usize,
            out: &mut Vec<Vec<usize>>,
        ) {
            let first = edges[path[0]].0;
            let end = edges[*path.last().expect("non-empty")].1;
            if end == first {
                out.push(path.clone());
                return;
            }
            if path.len() == max {
                return;
            }
            for (i, e) in edges.iter().enumerate() {
                let on_path = path.iter().any(|&p| edges[p].0 == e.1 && e.1 != first);
                if e.0 == end && e.0 != e.1 && !on_path {
                    path.push(i);
                    extend(edges, path, max, out);
                    path.pop();
                }
            }
        }
        let mut cycles = Vec::new();
        for i in 0..edges.len() {
            if edges[i].0 != edges[i].1 {
                extend(edges, &mut vec![i], max, &mut cycles);
            }
        }
        cycles
            .into_iter()
            .filter(|c| c.len() >= 2)
            .filter(|c| {
                let ts: Vec<i64> = c.iter().map(|&i| edges[i].2).collect();
                let span = ts.iter().max().expect("non-empty") - ts.iter().min().expect("non-empty");
                span < hours && (!ordered || ts.windows(2).all(|w| w[0] <= w[1]))
            })
            .filter(|c| c.iter().any(|&i| starts(&edges[i])))
            .map(|c| canonical_names(&c.iter().map(|&i| edges[i].0).collect::<Vec<_>>()))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// The pruned, parallel search finds exactly the cycles an enumeration of edge
        /// sequences finds, in both modes.
        #[test]
        fn cycle_search_equals_brute_force(
            edges in prop::collection::vec((0u8..6, 0u8..6, 0i64..48), 1..28),
            ordered in any::<bool>(),
            max in 2usize..6,
            hours in 1i64..30,
        ) {
            let g = graph(&edges);
            let (findings, (capped, _)) = run(detector(ordered, max, hours).as_ref(), &g);
            prop_assert_eq!(capped, 0);
            let got: BTreeSet<Vec<u8>> = findings
                .iter()
                .map(|f| {
                    let names: Vec<u8> = f.accounts.iter()
                        .map(|&a| g.account_name(a)[1..].parse().expect("a<digit>"))
                        .collect();
                    canonical_names(&names)
                })
                .collect();
            prop_assert_eq!(got.len(), findings.len(), "one finding per cycle");
            prop_assert_eq!(got, brute_force(&edges, ordered, max, hours));
        }

        /// With `start`, an unordered search finds exactly the cycles that have a matching
        /// edge, and lists each from its earliest edge.
        #[test]
        fn cycle_search_from_matching_starts_equals_brute_force(
            edges in prop::collection::vec((0u8..6, 0u8..6, 0i64..48), 1..28),
            modulus in 1i64..4,
            max in 2usize..6,
            hours in 1i64..30,
        ) {
            let g = graph(&edges);
            let start = format!("start: 'tx.hour % {modulus} == 0'\n  ");
            let (findings, (capped, _)) = run(detector_from(false, max, hours, &start).as_ref(), &g);
            prop_assert_eq!(capped, 0);
            let mut got = BTreeSet::new();
            for f in &findings {
                let ts: Vec<(i64, EdgeId)> = f.edges.iter().map(|&e| (g.ts[e as usize], e)).collect();
                prop_assert_eq!(ts.iter().min(), ts.first(), "listed from the earliest edge");
                let names: Vec<u8> = f.accounts.iter()
                    .map(|&a| g.account_name(a)[1..].parse().expect("a<digit>"))
                    .collect();
                got.insert(canonical_names(&names));
            }
            prop_assert_eq!(got.len(), findings.len(), "one finding per cycle");
            let matches = |e: &(u8, u8, i64)| (e.2 % 24) % modulus == 0;
            prop_assert_eq!(got, brute_force_with(&edges, false, max, hours, &matches));
        }
    }

    #[test]
    fn only_cycles_with_a_matching_transaction_are_reported() {
        // a0 ⇄ a1 at hours 1 and 2 (no match), a2 ⇄ a3 at hours 3 and 4 (hour 3 matches).
        let g = graph(&[(0, 1, 1), (1, 0, 2), (2, 3, 3), (3, 2, 4)]);
        let (all, _) = run(detector(false, 4, 24).as_ref(), &g);
        assert_eq!(all.len(), 2);
        let start = "start: 'tx.hour % 3 == 0'\n  ";
        let (found, (_, searched)) = run(detector_from(false, 4, 24, start).as_ref(), &g);
        let names: Vec<&str> = found[0].accounts.iter().map(|&a| g.account_name(a)).collect();
        assert_eq!((found.len(), names), (1, vec!["a2", "a3"]));
        assert_eq!(searched, 1, "one search, from the one matching transaction");
    }

    #[test]
    fn start_is_refused_on_ordered_cycles() {
        let text = "id: K-1\ntitle: t\nstatus: test\nseverity: low\ndetect:\n  kind: cycle\n  \
                    start: 'tx.amount > 1.0'\n  window: { length: 1d }\n  condition: 'true'\nsummary: s\n";
        let cfg: RuleConfig = serde_saphyr::from_str(text).expect("parses");
        let err = compile_rule(&cfg, Path::new("K-1-cycle.yaml"), text, &Shared::default(), &BTreeMap::new())
            .err()
            .expect("refused");
        assert!(format!("{err:?}").contains("unordered cycles only"), "{err:?}");
    }

    #[test]
    fn a_dense_search_stops_at_its_work_cap_and_counts_it() {
        // A complete graph on 14 accounts, every pair both ways within one hour: far more
        // paths of up to 10 hops than one start may examine.
        let mut edges = Vec::new();
        for s in 0..14u8 {
            for d in 0..14u8 {
                if s != d {
                    edges.push((s, d, i64::from(s + d) % 2));
                }
            }
        }
        let g = graph(&edges);
        let (findings, (capped, searches)) = run(detector(false, 10, 24).as_ref(), &g);
        assert_eq!(searches, edges.len(), "every edge is a start");
        assert!(capped > 0 && capped <= searches, "{capped} of {searches}");
        assert!(!findings.is_empty(), "what was found before the cap is kept");
    }
}
