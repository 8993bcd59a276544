//! `flow`: time-ordered paths of 2..=5 hops through intermediaries.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Adjacency, Detector, Exec, Finding, KindSpec, Stamps, TypeGate, Windows, aggregate_masks_of};
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

Paths are searched subject by subject (backwards from the subject to the origin, then
forwards to the end), on both cores. A subject keeps at most 20,000 paths, the first in
the order of their transactions; when it finds more, `scan` says for how many subjects
(`note: rule … stopped N of M searches at its work cap`).

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

/// The time-ordered simple paths of one subject, `hops` edges each, stored flat, with
/// each edge's time and each path's origin and end beside them: the windows then read
/// the paths in order instead of reaching into the graph's columns at random.
struct Paths {
    hops: usize,
    flat: Vec<EdgeId>,
    times: Vec<i64>,
    /// Per path, its first and last account.
    ends: Vec<(AccountId, AccountId)>,
    /// Paths found so far, kept or not.
    found: usize,
    /// More than [`MAX_PATHS_PER_SUBJECT`] were found: the kept ones are the first in the
    /// order of their edge ids, hop by hop.
    capped: bool,
}

impl Paths {
    fn new(hops: usize) -> Paths {
        Paths {
            hops,
            flat: Vec::new(),
            times: Vec::new(),
            ends: Vec::new(),
            found: 0,
            capped: false,
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &[EdgeId] {
        &self.flat[i * self.hops..(i + 1) * self.hops]
    }

    /// The time of path `i`'s first hop.
    fn first_time(&self, i: usize) -> i64 {
        self.times[i * self.hops]
    }

    fn clear(&mut self) {
        self.flat.clear();
        self.times.clear();
        self.ends.clear();
        self.found = 0;
        self.capped = false;
    }

    fn push(&mut self, walk: &Walk) {
        let hops = self.hops;
        self.found += 1;
        self.flat.extend_from_slice(&walk.edges[..hops]);
        self.times.extend_from_slice(&walk.times[..hops]);
        self.ends.push((walk.nodes[0], walk.nodes[hops]));
        // The buffer holds at most twice the cap: then the first half in edge-id order is kept.
        if self.len() == 2 * MAX_PATHS_PER_SUBJECT {
            self.keep_first(MAX_PATHS_PER_SUBJECT);
        }
    }

    /// Keeps the `n` paths that come first in edge-id order.
    fn keep_first(&mut self, n: usize) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_unstable_by(|&a, &b| self.get(a).cmp(self.get(b)));
        order.truncate(n);
        self.reorder(&order);
    }

    fn reorder(&mut self, order: &[usize]) {
        let hops = self.hops;
        let mut flat = Vec::with_capacity(order.len() * hops);
        let mut times = Vec::with_capacity(order.len() * hops);
        for &i in order {
            flat.extend_from_slice(self.get(i));
            times.extend_from_slice(&self.times[i * hops..(i + 1) * hops]);
        }
        self.ends = order.iter().map(|&i| self.ends[i]).collect();
        self.flat = flat;
        self.times = times;
    }

    /// Applies the cap and sorts by first-hop time, then by the edges.
    fn finish(&mut self) {
        if self.found > MAX_PATHS_PER_SUBJECT {
            self.capped = true;
            if self.len() > MAX_PATHS_PER_SUBJECT {
                self.keep_first(MAX_PATHS_PER_SUBJECT);
            }
        }
        if self.len() > 1 {
            let mut order: Vec<usize> = (0..self.len()).collect();
            order.sort_unstable_by(|&a, &b| {
                self.first_time(a)
                    .cmp(&self.first_time(b))
                    .then_with(|| self.get(a).cmp(self.get(b)))
            });
            self.reorder(&order);
        }
    }
}

/// A path being built, by position: `nodes[i]` is step `i`, `edges[i]` the hop into step
/// `i + 1`.
struct Walk {
    edges: [EdgeId; 5],
    times: [i64; 5],
    nodes: [AccountId; 6],
}

/// What the path search of one run reads.
struct Search<'g> {
    g: &'g TemporalGraph,
    /// Per hop, the edges that may take that place on a path.
    hop_masks: Vec<Mask>,
    /// The edges of the hop into the subject, by receiver.
    into_subject: Receivers,
    /// Per hop before the one into the subject, those edges by their receiver, with their
    /// times: the search walks them backwards from the subject, each within a time range.
    into: Vec<Adjacency>,
}

/// The edges of a mask grouped by receiver, as ids (4 bytes each): the subjects of a flow
/// rule are every account, and most receive no edge of its hop.
struct Receivers {
    start: Vec<u32>,
    edges: Vec<EdgeId>,
}

impl Receivers {
    fn new(g: &TemporalGraph, mask: &Mask) -> Receivers {
        let kept = || (0..g.edge_count()).filter(|&e| mask.get(e));
        let mut start = vec![0u32; g.account_count() + 1];
        for e in kept() {
            start[g.dst[e] as usize + 1] += 1;
        }
        for a in 0..g.account_count() {
            start[a + 1] += start[a];
        }
        let mut next = start.clone();
        let mut edges = vec![0; start[g.account_count()] as usize];
        for e in kept() {
            let slot = &mut next[g.dst[e] as usize];
            edges[*slot as usize] = e as EdgeId;
            *slot += 1;
        }
        Receivers { start, edges }
    }

    fn of(&self, a: AccountId) -> &[EdgeId] {
        &self.edges[self.start[a as usize] as usize..self.start[a as usize + 1] as usize]
    }
}

/// What one worker reuses from subject to subject.
struct Scratch {
    paths: Paths,
    walk: Walk,
    sets: [Vec<EdgeId>; 5],
    bits: [Vec<u64>; 5],
    stamps: Stamps,
    /// The subject's path edges as (time, edge, place in the paths), to be sorted.
    keyed: Vec<(i64, EdgeId, u32)>,
    cache: Vec<Option<Metric>>,
}

/// Subjects handed to a worker at a time, in increasing account order.
const CHUNK: usize = 512;

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
                let gate = TypeGate::of(self.edges[h].as_ref());
                for e in 0..g.edge_count() as EdgeId {
                    if !gate.admits(g, e) {
                        continue;
                    }
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

    /// The paths through `subject` at step `subject_at`, sorted by first-hop time. They
    /// are enumerated from the subject, backwards to the origin and then forwards to the
    /// end, so a subject's paths are found together and only one subject's are held.
    fn subject_paths(&self, search: &Search<'_>, subject: AccountId, walk: &mut Walk, out: &mut Paths) {
        out.clear();
        walk.nodes[self.subject_at] = subject;
        self.backward(search, self.subject_at, walk, out);
        out.finish();
    }

    /// Steps `i..=subject_at` are placed; places the ones before `i`.
    fn backward(&self, search: &Search<'_>, i: usize, walk: &mut Walk, out: &mut Paths) {
        if i == 0 {
            self.forward(search.g, &search.hop_masks, self.subject_at, walk, out);
            return;
        }
        let v = walk.nodes[i];
        if i == self.subject_at {
            // The hop into the subject: the hop after it is not chosen yet, so any time
            // will do; each edge is read here once in the whole run, as the hop into its
            // receiver.
            for &e in search.into_subject.of(v) {
                let u = search.g.src[e as usize];
                if u == v {
                    continue;
                }
                walk.edges[i - 1] = e;
                walk.times[i - 1] = search.g.ts[e as usize];
                walk.nodes[i - 1] = u;
                self.backward(search, i - 1, walk, out);
            }
            return;
        }
        let t = walk.times[i];
        let links = search.into[i - 1].window(v, t.saturating_sub(self.max_gap), t.saturating_add(1));
        for link in links {
            // The forward test: the next hop comes no earlier, and within `max_gap`.
            if t >= link.ts.saturating_add(self.max_gap).saturating_add(1) {
                continue;
            }
            if walk.nodes[i..=self.subject_at].contains(&link.dst) {
                continue;
            }
            walk.edges[i - 1] = link.edge;
            walk.times[i - 1] = link.ts;
            walk.nodes[i - 1] = link.dst;
            self.backward(search, i - 1, walk, out);
        }
    }

    /// Steps `0..=j` are placed; places the ones after `j`.
    fn forward(
        &self,
        g: &TemporalGraph,
        hop_masks: &[Mask],
        j: usize,
        walk: &mut Walk,
        out: &mut Paths,
    ) {
        let hops = self.hops();
        if j == hops {
            out.push(walk);
            return;
        }
        let v = walk.nodes[j];
        let from = if j == 0 {
            g.out_edges(v)
        } else {
            let t = walk.times[j - 1];
            g.out_window(v, t, t.saturating_add(self.max_gap).saturating_add(1))
        };
        for e in from {
            let d = g.dst[e as usize];
            if !hop_masks[j].get(e as usize) || walk.nodes[..=j].contains(&d) {
                continue;
            }
            walk.edges[j] = e;
            walk.times[j] = g.ts[e as usize];
            walk.nodes[j + 1] = d;
            self.forward(g, hop_masks, j + 1, walk, out);
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
        let into = (0..s_at.saturating_sub(1))
            .map(|h| Adjacency::new(g, true, |e, _, _| hop_masks[h].get(e as usize)))
            .collect();
        let into_subject = if s_at > 0 {
            Receivers::new(g, &hop_masks[s_at - 1])
        } else {
            Receivers {
                start: vec![0; g.account_count() + 1],
                edges: Vec::new(),
            }
        };
        let search = Search {
            g,
            hop_masks,
            into_subject,
            into,
        };
        // The path positions each set takes its edges from.
        let positions: [Vec<usize>; 5] = [
            if s_at > 0 { vec![s_at - 1] } else { vec![] },
            if s_at < hops { vec![s_at] } else { vec![] },
            vec![0],
            vec![hops - 1],
            (0..hops).collect(),
        ];
        // Workers take chunks of subjects in increasing order; each subject's paths are
        // enumerated and judged by one worker, so the result does not depend on the split.
        let next = AtomicUsize::new(0);
        let chunks = || {
            let lo = next.fetch_add(CHUNK, Ordering::Relaxed).min(g.account_count());
            let hi = (lo + CHUNK).min(g.account_count());
            (lo < hi).then_some(lo as AccountId..hi as AccountId)
        };
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        type Part = (Vec<(AccountId, Vec<Finding>)>, usize, usize);
        let parts: Vec<Part> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    sc.spawn(|| {
                        let mut scratch = Scratch {
                            paths: Paths::new(hops),
                            walk: Walk {
                                edges: [0; 5],
                                times: [0; 5],
                                nodes: [0; 6],
                            },
                            sets: Default::default(),
                            bits: Default::default(),
                            // Distinct sources and sinks are counted by stamping accounts,
                            // not by sorting: a sink's window can hold many thousand paths,
                            // and each path is in several windows.
                            stamps: Stamps::new(g.account_count()),
                            keyed: Vec::new(),
                            cache: Vec::new(),
                        };
                        let (mut found, mut searched, mut capped) = (Vec::new(), 0, 0);
                        while let Some(chunk) = chunks() {
                            let mut findings = Vec::new();
                            for subject in chunk.clone() {
                                if exec.stopped() {
                                    break;
                                }
                                if exec
                                    .subjects
                                    .is_some_and(|s| !s.contains(g.account_name(subject)))
                                {
                                    continue;
                                }
                                let (paths, walk) = (&mut scratch.paths, &mut scratch.walk);
                                self.subject_paths(&search, subject, walk, paths);
                                if paths.len() == 0 {
                                    continue;
                                }
                                searched += 1;
                                capped += usize::from(paths.capped);
                                self.judge(exec, subject, &masks, &positions, &mut scratch, &mut findings);
                            }
                            found.push((chunk.start, findings));
                        }
                        (found, searched, capped)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a flow worker does not panic"))
                .collect()
        });
        if exec.stopped() {
            return Vec::new();
        }
        let (mut searched, mut capped) = (0, 0);
        let mut chunks: Vec<(AccountId, Vec<Finding>)> = Vec::new();
        for (found, s, c) in parts {
            searched += s;
            capped += c;
            chunks.extend(found);
        }
        exec.caps.record(capped, searched);
        chunks.sort_unstable_by_key(|(start, _)| *start);
        chunks.into_iter().flat_map(|(_, f)| f).collect()
    }
}

impl Flow {
    /// Judges every window of one subject's paths (in `scratch.paths`), adding a finding
    /// per window whose condition holds.
    fn judge(
        &self,
        exec: &Exec<'_>,
        subject: AccountId,
        masks: &[Mask],
        positions: &[Vec<usize>; 5],
        scratch: &mut Scratch,
        findings: &mut Vec<Finding>,
    ) {
        let g = exec.g;
        let hops = self.hops();
        let Scratch {
            paths,
            sets,
            bits,
            stamps,
            keyed,
            cache,
            ..
        } = scratch;
        let paths = &*paths;
        let n = paths.len();
        if n == 0 {
            return;
        }
        // Every distinct edge of the subject's paths, in (time, id) order, and the rank of
        // each path edge in it: a window's sets are then marked in bitmaps over the ranks
        // and read back in order, sorted and without repeats, with no sort per window.
        keyed.clear();
        keyed.extend(
            (paths.times.iter().zip(&paths.flat))
                .enumerate()
                .map(|(k, (&t, &e))| (t, e, k as u32)),
        );
        keyed.sort_unstable();
        let mut universe: Vec<EdgeId> = Vec::new();
        let mut rank: Vec<u32> = vec![0; paths.flat.len()];
        for &(_, e, k) in keyed.iter() {
            if universe.last() != Some(&e) {
                universe.push(e);
            }
            rank[k as usize] = (universe.len() - 1) as u32;
        }
        let words = universe.len().div_ceil(64);
        for b in bits.iter_mut() {
            b.clear();
            b.resize(words, 0);
        }
        // Paths are sorted by first-hop time: each window's paths are a contiguous
        // run found by binary search.
        let firsts: Vec<i64> = (0..n).map(|i| paths.first_time(i)).collect();
        for k in self.windows.covering(firsts[0], firsts[n - 1], exec.zone) {
            if exec.stopped() {
                return;
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
                    let ends = paths.ends[lo..hi].iter();
                    let distinct = ends
                        .filter(|&&(origin, end)| stamps.first_visit(if b == 1 { origin } else { end }))
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
                gather(sets);
                let views = set_views(sets);
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
                    masks,
                    Some(flows),
                    exec.exponent,
                )
            };
            let mut sc = Scope::new(g, exec.zone);
            sc.accounts[0] = subject;
            let lazy = LazyMetrics::new(&sc, cache, n_aggs + BUILTINS.len(), &mut metric);
            if !self.condition.test(&lazy) {
                continue;
            }
            let metrics = lazy.into_metrics();
            gather(sets);
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

    /// A flow rule whose every hop takes transfers at an hour of the day divisible by
    /// `modulus`, reporting every subject with a path (one window holds all the data).
    fn detector(hops: usize, subject_at: usize, gap_hours: i64, modulus: i64) -> Box<dyn Detector> {
        let steps: String = (0..hops)
            .map(|_| format!("    - edge: 'tx.hour % {modulus} == 0'\n"))
            .collect();
        let text = format!(
            "id: K-1\ntitle: t\nstatus: test\nseverity: low\ndetect:\n  kind: flow\n  path:\n    \
             - node: 'true'\n{steps}  subject_at: {subject_at}\n  max_gap: {gap_hours}h\n  \
             window: {{ length: 30d, step: 30d }}\n  condition: 'paths >= 1'\nsummary: s\n"
        );
        let cfg: RuleConfig = serde_saphyr::from_str(&text).expect("parses");
        compile_rule(&cfg, Path::new("K-1-flow.yaml"), &text, &Shared::default(), &BTreeMap::new())
            .expect("compiles")
            .detector
    }

    /// Per subject: (paths, distinct origins, distinct ends), by enumerating every
    /// sequence of `hops` edges: chained, over distinct accounts, each hop no earlier than
    /// the one before and at most `gap` hours after it, each matching.
    fn brute_force(
        edges: &[(u8, u8, i64)],
        hops: usize,
        subject_at: usize,
        gap: i64,
        matches: &dyn Fn(&(u8, u8, i64)) -> bool,
    ) -> BTreeMap<u8, (i64, i64, i64)> {
        fn extend(
            edges: &[(u8, u8, i64)],
            hops: usize,
            gap: i64,
            matches: &dyn Fn(&(u8, u8, i64)) -> bool,
            path: &mut Vec<usize>,
            out: &mut Vec<Vec<usize>>,
        ) {
            if path.len() == hops {
                out.push(path.clone());
                return;
            }
            for (i, e) in edges.iter().enumerate() {
                if !matches(e) {
                    continue;
                }
                let fits = match path.last() {
                    None => true,
                    Some(&p) => {
                        let prev = edges[p];
                        prev.1 == e.0 && prev.2 <= e.2 && e.2 <= prev.2 + gap
                    }
                };
                let mut nodes: Vec<u8> = path.iter().map(|&p| edges[p].0).collect();
                nodes.push(e.0);
                if fits && !nodes.contains(&e.1) {
                    path.push(i);
                    extend(edges, hops, gap, matches, path, out);
                    path.pop();
                }
            }
        }
        let mut paths = Vec::new();
        extend(edges, hops, gap, matches, &mut Vec::new(), &mut paths);
        let mut by_subject: BTreeMap<u8, (i64, BTreeSet<u8>, BTreeSet<u8>)> = BTreeMap::new();
        for p in paths {
            let nodes: Vec<u8> = p
                .iter()
                .map(|&i| edges[i].0)
                .chain([edges[p[hops - 1]].1])
                .collect();
            let entry = by_subject.entry(nodes[subject_at]).or_default();
            entry.0 += 1;
            entry.1.insert(nodes[0]);
            entry.2.insert(nodes[hops]);
        }
        by_subject
            .into_iter()
            .map(|(s, (n, o, e))| (s, (n, o.len() as i64, e.len() as i64)))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// The search from each subject, backwards to the origin and forwards to the end,
        /// finds exactly the paths an enumeration of edge sequences finds.
        #[test]
        fn flow_paths_equal_brute_force(
            edges in prop::collection::vec((0u8..6, 0u8..6, 0i64..48), 1..18),
            hops in 2usize..5,
            subject_at in 0usize..5,
            gap in 0i64..30,
            modulus in 1i64..3,
        ) {
            let subject_at = subject_at.min(hops);
            let g = graph(&edges);
            let d = detector(hops, subject_at, gap.max(1), modulus);
            let (stop, caps) = (Stop::default(), Caps::default());
            let findings = d.run(&Exec::new(&g, 0, &stop, &caps));
            prop_assert_eq!(caps.counts().0, 0);
            let got: BTreeMap<u8, (i64, i64, i64)> = findings
                .iter()
                .map(|f| {
                    let count = |m: &Metric| match m {
                        Metric::Int(i) => *i,
                        other => panic!("a count, not {other:?}"),
                    };
                    let s: u8 = f.subject.id[1..].parse().expect("a<digit>");
                    (s, (count(&f.metrics[0]), count(&f.metrics[1]), count(&f.metrics[2])))
                })
                .collect();
            prop_assert_eq!(got.len(), findings.len(), "one finding per subject");
            let matches = |e: &(u8, u8, i64)| (e.2 % 24) % modulus == 0;
            prop_assert_eq!(got, brute_force(&edges, hops, subject_at, gap.max(1), &matches));
        }
    }

    /// A subject with more paths than the cap keeps the first in edge-id order, however
    /// they arrive, and says it was capped.
    #[test]
    fn a_capped_subject_keeps_its_first_paths_in_edge_order() {
        let mut paths = Paths::new(2);
        let mut walk = Walk {
            edges: [0; 5],
            times: [0; 5],
            nodes: [0; 6],
        };
        let total = 2 * MAX_PATHS_PER_SUBJECT + 1_234;
        // A fixed shuffle: a multiplier coprime with the count visits each index once.
        for k in 0..total {
            let i = (k * 7_919) % total;
            walk.edges[0] = (i / 100) as EdgeId;
            walk.edges[1] = (i % 100) as EdgeId;
            walk.times[..2].copy_from_slice(&[(total - i) as i64, (total - i) as i64]);
            paths.push(&walk);
        }
        paths.finish();
        assert!(paths.capped);
        assert_eq!(paths.found, total);
        assert_eq!(paths.len(), MAX_PATHS_PER_SUBJECT);
        let mut kept: Vec<Vec<EdgeId>> = (0..paths.len()).map(|i| paths.get(i).to_vec()).collect();
        // Sorted by first-hop time, which falls as the index grows.
        assert!((1..paths.len()).all(|i| paths.first_time(i - 1) <= paths.first_time(i)));
        kept.sort();
        let first: Vec<Vec<EdgeId>> = (0..MAX_PATHS_PER_SUBJECT)
            .map(|i| vec![(i / 100) as EdgeId, (i % 100) as EdgeId])
            .collect();
        assert_eq!(kept, first);
    }
}
