//! `flow`: time-ordered paths of 2..=5 hops through intermediaries.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Stamps, Detector, Exec, Finding, KindSpec, Windows, aggregate_masks_of};
use crate::aggregate::{self, Aggregate, EdgeSet, Flows, Mask, Unit};
use crate::compile::{Cx, Shift};
use crate::config::{Aggregates, Text, WindowConfig};
use crate::expr::{Program, Ty};
use crate::scope::{self, LazyMetrics, Metric, Scope};
use clearwatch_graph::{AccountId, EdgeId, TemporalGraph};
use clearwatch_model::{Subject, SubjectKind};

pub const SPEC: KindSpec = KindSpec {
    name: "flow",
    doc: r#"### What it detects
Money that moves along a time-ordered path of accounts: each hop happens after the one
before it, within `max_gap`. Paths are grouped by the account at position `subject_at`.

### Why it matters
The difference between a technical aggregator and a two-clear operator is whether money
passes *through* it: acquirer → operator → merchant. Nested operators (TC-09) add hops;
scatter-gather and layering are longer paths.

### Fields
- `path`: a list of steps; step 0 is the origin (`node` only), every later step has an
  `edge` predicate (the hop into it; binds `tx`, `from`, `to`, `merchant`) and a `node`
  predicate (binds `node`). 2 to 5 hops.
- `subject_at`: the index of the node the alert is about (default 1).
- `max_gap`: the longest time between consecutive hops.
- `window`: groups paths by the time of their first hop.
- `aggregates` over the sets `in` (hops into the subject), `out` (hops out of it),
  `first`, `last` and `edges`; `dwell`, `retention`, `balance_peak` and `balance_open` use `in` and `out`.
- Built-in metrics: `paths`, `sources` (distinct origins), `sinks` (distinct ends).
  `sources` and `sinks` cost one pass over the window's paths, `paths` nothing; an
  aggregate first gathers its edge set. The condition reads metrics from left to right
  as it needs them, so a test of a built-in placed first spares the aggregates of every
  window it rejects.
- `condition` (CEL): binds the metrics and `node` (the subject).

A subject keeps at most 20,000 paths; when it finds more, `scan` says for how many
subjects (`note: rule … stopped N of M searches at its work cap`).

### Example
```yaml
detect:
  kind: flow
  path:
    - node: 'node.licensed'
    - edge: 'tx.type == "settlement"'
      node: '!node.licensed'
    - edge: 'tx.type == "transfer"'
  subject_at: 1
  max_gap: 7d
  window: { length: 14d, step: 7d }
  condition: 'sinks >= 5'
```
"#,
    compile,
};

/// `detect` of kind `flow`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    pub kind: Text,
    /// The path: node and edge predicates by position, 3 to 6 steps.
    #[serde(default)]
    pub path: Option<Spanned<Vec<PathStepConfig>>>,
    /// Which node of the path is the alert's subject (0 = origin; default 1).
    #[serde(default)]
    pub subject_at: Option<Spanned<usize>>,
    /// The longest time between consecutive hops.
    #[serde(default)]
    pub max_gap: Option<Text>,
    /// Groups paths by the time of their first hop.
    #[serde(default)]
    pub window: Option<WindowConfig>,
    /// Over the sets `in`, `out`, `first`, `last` and `edges`.
    #[serde(default)]
    pub aggregates: Aggregates,
    /// Binds the metrics and `node` (the subject).
    pub condition: Text,
}

/// One step of a flow path.
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

const SETS: &[&str] = &["in", "out", "first", "last", "edges"];
const BUILTINS: &[&str] = &["paths", "sources", "sinks"];
/// Paths kept per subject; later ones are dropped (the metric `paths` is then the cap, and
/// the subject counts as a capped search in [`super::Caps`]).
const MAX_PATHS_PER_SUBJECT: usize = 20_000;

struct Flow {
    nodes: Vec<Option<Program>>,
    edges: Vec<Option<Program>>,
    subject_at: usize,
    max_gap: i64,
    windows: Windows,
    aggregates: Vec<Aggregate>,
    filters: Vec<Program>,
    condition: Program,
    evidence_sets: Vec<bool>,
}

fn compile(cx: &mut Cx<'_>) -> Option<Box<dyn Detector>> {
    let cfg: FlowConfig = cx.detect_config()?;
    let Some(path) = &cfg.path else {
        cx.error(
            &cfg.kind,
            "kind `flow` needs a `path` of 3 to 6 steps",
            None,
        );
        return None;
    };
    let steps = &path.value;
    if !(3..=6).contains(&steps.len()) {
        let msg = format!(
            "a flow path has 3 to 6 steps (2 to 5 hops), found {}",
            steps.len()
        );
        cx.error(path, msg, None);
        return None;
    }
    let mut node_schema = cx.base_schema();
    scope::add_account(&mut node_schema, "node", 0);
    let edge_vars = cx.edge_schema("from", "to");
    let mut ok = true;
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if i == 0 {
            if let Some(e) = &step.edge {
                cx.error(e, "the origin (step 0) has no incoming edge", None);
                ok = false;
            }
        } else {
            match cx.opt_expr(step.edge.as_ref(), &edge_vars, Ty::Bool) {
                Ok(p) => edges.push(p),
                Err(()) => ok = false,
            }
        }
        match cx.opt_expr(step.node.as_ref(), &node_schema, Ty::Bool) {
            Ok(p) => nodes.push(p),
            Err(()) => ok = false,
        }
    }
    let subject_at = match &cfg.subject_at {
        Some(s) if s.value < steps.len() => s.value,
        Some(s) => {
            let msg = format!("subject_at must be a step index below {}", steps.len());
            cx.error(s, msg, None);
            ok = false;
            1
        }
        None => 1,
    };
    let max_gap = match &cfg.max_gap {
        Some(t) => cx.duration(t),
        None => {
            cx.error(&cfg.kind, "kind `flow` needs `max_gap`", None);
            None
        }
    };
    let windows = cx.windows(cfg.window.as_ref(), &cfg.kind);
    let (aggregates, filters) = cx.aggregates(&cfg.aggregates, SETS, Shift::Refused, &|cx, _| {
        cx.edge_schema("from", "to")
    });
    for a in &aggregates {
        if BUILTINS.contains(&a.name.as_str()) {
            let (name, agg) = cfg
                .aggregates
                .iter()
                .find(|(n, _)| **n == a.name)
                .expect("compiled from the config");
            cx.error(
                agg,
                format!("`{name}` is a built-in metric of kind `flow`"),
                None,
            );
            ok = false;
        }
    }
    let metrics = metric_names(&aggregates);
    let condition = cx.condition(&cfg.condition, &metrics, &|s| {
        scope::add_account(s, "node", 0)
    });
    let evidence_sets = cx.evidence_sets(SETS);
    if !ok {
        return None;
    }
    Some(Box::new(Flow {
        nodes,
        edges,
        subject_at,
        max_gap: max_gap?,
        windows: windows?,
        aggregates,
        filters,
        condition: condition?,
        evidence_sets,
    }))
}

fn metric_names(aggregates: &[Aggregate]) -> Vec<(String, Unit)> {
    aggregates
        .iter()
        .map(|a| (a.name.clone(), a.unit))
        .chain(BUILTINS.iter().map(|b| (b.to_string(), Unit::Count)))
        .collect()
}

/// Time-ordered simple paths, `hops` edges each, stored flat.
struct Paths {
    hops: usize,
    flat: Vec<EdgeId>,
    /// Paths beyond [`MAX_PATHS_PER_SUBJECT`] were found and dropped.
    capped: bool,
}

impl Paths {
    fn len(&self) -> usize {
        self.flat.len() / self.hops
    }
    fn get(&self, i: usize) -> &[EdgeId] {
        &self.flat[i * self.hops..(i + 1) * self.hops]
    }
}

impl Flow {
    fn hops(&self) -> usize {
        self.edges.len()
    }

    fn masks(&self, exec: &Exec<'_>) -> Vec<Mask> {
        let g = exec.g;
        let node_ok: Vec<Vec<bool>> = self
            .nodes
            .iter()
            .map(|p| {
                (0..g.account_count() as AccountId)
                    .map(|a| {
                        let mut s = Scope::new(g, exec.zone);
                        s.accounts[0] = a;
                        p.as_ref().is_none_or(|p| p.test(&s))
                    })
                    .collect()
            })
            .collect();
        (0..self.hops())
            .map(|h| {
                let mut m = Mask::new(g.edge_count());
                let mut s = Scope::new(g, exec.zone);
                for e in 0..g.edge_count() as EdgeId {
                    let (src, dst) = (g.src[e as usize], g.dst[e as usize]);
                    if !exec.in_currency(e)
                        || !node_ok[h][src as usize]
                        || !node_ok[h + 1][dst as usize]
                    {
                        continue;
                    }
                    s.edge = e;
                    s.accounts[0] = src;
                    s.accounts[1] = dst;
                    if self.edges[h].as_ref().is_none_or(|p| p.test(&s)) {
                        m.set(e as usize);
                    }
                }
                m
            })
            .collect()
    }

    /// Enumerates paths, grouped by the subject node (indexed by account id), each group
    /// sorted by first-hop time.
    fn paths(&self, g: &TemporalGraph, hop_masks: &[Mask]) -> Vec<Paths> {
        let hops = self.hops();
        let mut groups: Vec<Paths> = (0..g.account_count())
            .map(|_| Paths {
                hops,
                flat: Vec::new(),
                capped: false,
            })
            .collect();
        let mut stack: Vec<EdgeId> = Vec::with_capacity(hops);
        let mut nodes: Vec<AccountId> = Vec::with_capacity(hops + 1);
        for e0 in 0..g.edge_count() as EdgeId {
            if !hop_masks[0].get(e0 as usize) {
                continue;
            }
            stack.clear();
            nodes.clear();
            stack.push(e0);
            nodes.push(g.src[e0 as usize]);
            nodes.push(g.dst[e0 as usize]);
            if nodes[0] == nodes[1] {
                continue;
            }
            self.extend(g, hop_masks, &mut stack, &mut nodes, &mut groups);
        }
        for p in groups.iter_mut().filter(|p| p.len() > 1) {
            // By first-hop time, then by the edges; the time is read once per path.
            let mut order: Vec<(i64, usize)> = (0..p.len())
                .map(|i| (g.ts[p.get(i)[0] as usize], i))
                .collect();
            order.sort_unstable_by(|&(ta, a), &(tb, b)| {
                ta.cmp(&tb).then_with(|| p.get(a).cmp(p.get(b)))
            });
            let mut flat = Vec::with_capacity(p.flat.len());
            for &(_, i) in &order {
                flat.extend_from_slice(p.get(i));
            }
            p.flat = flat;
        }
        groups
    }

    fn extend(
        &self,
        g: &TemporalGraph,
        hop_masks: &[Mask],
        stack: &mut Vec<EdgeId>,
        nodes: &mut Vec<AccountId>,
        groups: &mut [Paths],
    ) {
        let hops = self.hops();
        if stack.len() == hops {
            let p = &mut groups[nodes[self.subject_at] as usize];
            if p.len() < MAX_PATHS_PER_SUBJECT {
                p.flat.extend_from_slice(stack);
            } else {
                p.capped = true;
            }
            return;
        }
        let last = *stack.last().expect("non-empty path");
        let (v, t) = (g.dst[last as usize], g.ts[last as usize]);
        let until = t.saturating_add(self.max_gap).saturating_add(1);
        for e in g.out_window(v, t, until) {
            let d = g.dst[e as usize];
            if !hop_masks[stack.len()].get(e as usize) || nodes.contains(&d) {
                continue;
            }
            stack.push(e);
            nodes.push(d);
            self.extend(g, hop_masks, stack, nodes, groups);
            stack.pop();
            nodes.pop();
        }
    }
}

/// The five sets as aggregates see them (`in` and `last` are read from their destination).
fn set_views(sets: &[Vec<EdgeId>; 5]) -> [EdgeSet<'_>; 5] {
    std::array::from_fn(|i| EdgeSet {
        edges: &sets[i],
        subject_is_dst: i == 0 || i == 3,
    })
}

fn sorted_set(g: &TemporalGraph, mut v: Vec<EdgeId>) -> Vec<EdgeId> {
    sort_set(g, &mut v);
    v
}

/// Sorts by (time, id) and drops repeats, in place. Each time is read once into a key:
/// the edges lie anywhere in the graph's columns, and a comparison sort reading them
/// would miss the caches log n times per edge.
fn sort_set(g: &TemporalGraph, v: &mut Vec<EdgeId>) {
    let mut keys: Vec<(i64, EdgeId)> = v.iter().map(|&e| (g.ts[e as usize], e)).collect();
    keys.sort_unstable();
    keys.dedup();
    v.clear();
    v.extend(keys.into_iter().map(|(_, e)| e));
}

impl Detector for Flow {
    fn metrics(&self) -> Vec<(String, Unit)> {
        metric_names(&self.aggregates)
    }

    fn run(&self, exec: &Exec<'_>) -> Vec<Finding> {
        let g = exec.g;
        let hop_masks = self.masks(exec);
        // Sets only ever hold path edges, and every path edge passes a hop mask.
        let masks = aggregate_masks_of(
            &self.aggregates,
            &self.filters,
            exec,
            &|scope, e, _| {
                scope.edge = e;
                scope.accounts[0] = g.src[e as usize];
                scope.accounts[1] = g.dst[e as usize];
            },
            &|e| hop_masks.iter().any(|m| m.get(e as usize)),
        );
        let hops = self.hops();
        let s_at = self.subject_at;
        let mut findings = Vec::new();
        // Per-window buffers, reused from window to window.
        let mut sets: [Vec<EdgeId>; 5] = Default::default();
        // Distinct sources and sinks are counted by stamping accounts, not by sorting: a
        // sink's window can hold many thousand paths, and each path is in several windows.
        let mut stamps = Stamps::new(g.account_count());
        // The path positions each set takes its edges from.
        let positions: [Vec<usize>; 5] = [
            if s_at > 0 { vec![s_at - 1] } else { vec![] },
            if s_at < hops { vec![s_at] } else { vec![] },
            vec![0],
            vec![hops - 1],
            (0..hops).collect(),
        ];
        let mut bits: [Vec<u64>; 5] = Default::default();
        let mut rank_of: Vec<u32> = vec![0; g.edge_count()];
        let mut cache = Vec::new();
        let all_paths = self.paths(g, &hop_masks);
        exec.caps.record(
            all_paths.iter().filter(|p| p.capped).count(),
            all_paths.iter().filter(|p| !p.flat.is_empty()).count(),
        );
        for (subject, paths) in all_paths.iter().enumerate() {
            let subject = subject as AccountId;
            let n = paths.len();
            if n == 0 {
                continue;
            }
            // Every distinct edge of the subject's paths, in (time, id) order, and the
            // rank of each path edge in it: a window's sets are then marked in bitmaps
            // over the ranks and read back in order, sorted and without repeats, with no
            // sort per window.
            let mut universe = paths.flat.clone();
            sort_set(g, &mut universe);
            // Ranks by edge id in a table over all edges, written for this subject's
            // edges before they are read (no clearing between subjects).
            for (r, &e) in universe.iter().enumerate() {
                rank_of[e as usize] = r as u32;
            }
            let rank: Vec<u32> = paths.flat.iter().map(|&e| rank_of[e as usize]).collect();
            let words = universe.len().div_ceil(64);
            for b in bits.iter_mut() {
                b.clear();
                b.resize(words, 0);
            }
            let first_ts = |i: usize| g.ts[paths.get(i)[0] as usize];
            // Paths are sorted by first-hop time: each window's paths are a contiguous
            // run found by binary search.
            let firsts: Vec<i64> = (0..n).map(first_ts).collect();
            for k in self.windows.covering(firsts[0], firsts[n - 1], exec.zone) {
                if exec.stopped() {
                    return findings;
                }
                let (from, until) = self.windows.bounds(k, exec.zone);
                let lo = firsts.partition_point(|&t| t < from);
                let hi = lo + firsts[lo..].partition_point(|&t| t < until);
                if lo == hi {
                    continue;
                }
                // `paths`, `sources`, `sinks`, counted when the condition first reads them.
                let mut builtin = |b: usize| match b {
                    0 => Metric::Int((hi - lo) as i64),
                    _ => {
                        stamps.next_round();
                        let distinct = (lo..hi)
                            .filter(|&i| {
                                let p = paths.get(i);
                                stamps.first_visit(if b == 1 {
                                    g.src[p[0] as usize]
                                } else {
                                    g.dst[p[hops - 1] as usize]
                                })
                            })
                            .count();
                        Metric::Int(distinct as i64)
                    }
                };
                // The sets are gathered when the condition first reads an aggregate.
                let mut built = false;
                let mut gather = |sets: &mut [Vec<EdgeId>; 5]| {
                    if std::mem::replace(&mut built, true) {
                        return;
                    }
                    let mut span = (usize::MAX, 0);
                    for i in lo..hi {
                        let r = &rank[i * hops..(i + 1) * hops];
                        for (j, pos) in positions.iter().enumerate() {
                            for &q in pos {
                                let x = r[q] as usize;
                                bits[j][x / 64] |= 1 << (x % 64);
                                span = (span.0.min(x / 64), span.1.max(x / 64 + 1));
                            }
                        }
                    }
                    for (set, b) in sets.iter_mut().zip(bits.iter_mut()) {
                        set.clear();
                        for w in span.0..span.1 {
                            let mut word = std::mem::take(&mut b[w]);
                            while word != 0 {
                                set.push(universe[w * 64 + word.trailing_zeros() as usize]);
                                word &= word - 1;
                            }
                        }
                    }
                };
                let n_aggs = self.aggregates.len();
                let mut metric = |i: usize| {
                    if i >= n_aggs {
                        return builtin(i - n_aggs);
                    }
                    gather(&mut sets);
                    let views = set_views(&sets);
                    let flows = Flows {
                        ins: &sets[0],
                        outs: &sets[1],
                        from: i64::MIN,
                        contacts: None,
                    };
                    aggregate::compute(
                        &self.aggregates[i],
                        g,
                        &views,
                        &masks,
                        Some(flows),
                        exec.exponent,
                    )
                };
                let mut sc = Scope::new(g, exec.zone);
                sc.accounts[0] = subject;
                let lazy = LazyMetrics::new(&sc, &mut cache, n_aggs + BUILTINS.len(), &mut metric);
                if !self.condition.test(&lazy) {
                    continue;
                }
                let metrics = lazy.into_metrics();
                gather(&mut sets);
                let mut edges: Vec<EdgeId> = Vec::new();
                for (i, set) in sets.iter().enumerate() {
                    if self.evidence_sets[i] {
                        edges.extend_from_slice(set);
                    }
                }
                let edges = sorted_set(g, edges);
                let mut accounts: Vec<AccountId> = edges
                    .iter()
                    .flat_map(|&e| [g.src[e as usize], g.dst[e as usize]])
                    .collect();
                accounts.push(subject);
                findings.push(Finding {
                    subject: Subject {
                        kind: SubjectKind::Account,
                        id: g.account_name(subject).to_string(),
                    },
                    from,
                    until,
                    window_index: k,
                    metrics,
                    edges,
                    accounts,
                });
            }
        }
        findings
    }
}
