//! The registry of detector kinds. One file per kind; each owns its documentation, the
//! type of its `detect` block (so serde refuses fields it does not read), the sets it
//! binds for aggregates, how it compiles and the detector it runs. Validation,
//! `rules list` and `rules docs` all read this one table.

use super::aggregate::{Aggregate, Mask, Unit};
use super::compile::Cx;
use super::scope::Metric;
use clearwatch_graph::{AccountId, EdgeId, TemporalGraph};
use clearwatch_model::Subject;
use clearwatch_model::{Millis, Zone};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// One detector kind.
pub struct KindSpec {
    pub name: &'static str,
    /// The kind's reference documentation (Markdown): what it detects, why it matters,
    /// its fields, the variables it binds, an example.
    pub doc: &'static str,
    /// Reads the kind's config from the rule ([`Cx::detect_config`]) and compiles it, or
    /// reports why not on `cx`.
    pub compile: fn(&mut Cx) -> Option<Box<dyn Detector>>,
}

/// Declares each kind's module and lists its `SPEC` in [`KINDS`], in this order.
macro_rules! registry {
    ($($kind:ident),+ $(,)?) => {
        $(pub mod $kind;)+

        /// Every detector kind.
        pub const KINDS: &[KindSpec] = &[$($kind::SPEC),+];
    };
}

// To add a kind:
// 1. a new file in `kinds/` with its `SPEC`, its config type (`#[serde(deny_unknown_fields)]`,
//    spans on what compilation points at, and `kind`, `aggregates`, `condition`), its
//    `doc` (sections What it detects / Why it matters / Fields / Example), its `compile`
//    and its [`Detector`];
// 2. its name in the list below;
// 3. `clearwatch rules docs rules > docs/rule-reference.md`.
registry!(relation, star, flow, cycle, series);

pub fn kind(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.name == name)
}

pub fn kind_names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// Tells running detectors to stop early: set when the caller gives up (the client went
/// away, the server shuts down, a time budget ran out). Detectors check it between
/// windows, hubs and start edges; what they found until then is incomplete and is
/// reported as stopped, never as a result.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    own: Arc<AtomicBool>,
    parent: Option<Arc<AtomicBool>>,
}

impl Stop {
    /// A stop that is also set whenever `self` is.
    pub fn child(&self) -> Stop {
        Stop {
            own: Arc::default(),
            parent: Some(self.own.clone()),
        }
    }

    pub fn stop(&self) {
        self.own.store(true, Ordering::Relaxed);
    }

    pub fn is_set(&self) -> bool {
        self.own.load(Ordering::Relaxed)
            || self
                .parent
                .as_ref()
                .is_some_and(|p| p.load(Ordering::Relaxed))
    }
}

/// Searches a detector cut short at a work cap (cycle starts, flow subjects): what they
/// would have found may be missing, so the scan reports them beside the rule's alerts.
#[derive(Debug, Default)]
pub struct Caps {
    capped: AtomicUsize,
    searches: AtomicUsize,
}

impl Caps {
    /// `capped` of `searches` searches stopped at the cap.
    pub fn record(&self, capped: usize, searches: usize) {
        self.capped.fetch_add(capped, Ordering::Relaxed);
        self.searches.fetch_add(searches, Ordering::Relaxed);
    }

    /// (capped, searches) so far.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.capped.load(Ordering::Relaxed),
            self.searches.load(Ordering::Relaxed),
        )
    }
}

/// Where a detector runs: one currency of the graph at a time (amounts of different
/// currencies are never added up).
pub struct Exec<'g> {
    pub g: &'g TemporalGraph,
    pub currency: u8,
    pub exponent: u32,
    pub stop: &'g Stop,
    pub caps: &'g Caps,
    /// Only the windows that hold some time in `[first, last]` (an incremental scan);
    /// read by kinds that have a [`Reach`].
    pub span: Option<(Millis, Millis)>,
    /// Only these subjects (by id); kinds may check it early, the scan checks it again.
    pub subjects: Option<&'g HashSet<String>>,
    /// The zone of local times and local-day windows: the rule's [`crate::Rule::time_zone`].
    pub zone: Zone,
}

impl<'g> Exec<'g> {
    /// Every window and subject of one currency.
    pub fn new(g: &'g TemporalGraph, currency: u8, stop: &'g Stop, caps: &'g Caps) -> Self {
        Exec {
            g,
            currency,
            exponent: g.currencies()[usize::from(currency)].exponent(),
            stop,
            caps,
            span: None,
            subjects: None,
            zone: Zone::UTC,
        }
    }

    /// The window numbers of `w` to evaluate over data spanning `[first, last]`.
    pub fn windows(
        &self,
        w: &Windows,
        first: Millis,
        last: Millis,
    ) -> std::ops::RangeInclusive<i64> {
        match self.span {
            None => w.covering(first, last, self.zone),
            Some((lo, hi)) => {
                let (first, last) = (first.max(lo), last.min(hi));
                if first > last {
                    #[allow(clippy::reversed_empty_ranges)]
                    return 1..=0;
                }
                w.covering(first, last, self.zone)
            }
        }
    }
}

/// What decides a windowed rule's result in window `[from, until)`: the transactions in
/// it and, with `history`, every earlier one. A rule without a reach (it reads the whole
/// loaded period, or its kind does not say) is re-evaluated in full by an incremental scan.
#[derive(Debug, Clone, Copy)]
pub struct Reach {
    pub windows: Windows,
    pub history: bool,
}

impl Reach {
    /// The time span of the windows to re-evaluate when transactions in `[first, last]`
    /// were added: those windows, and with `history` every later one.
    pub fn span(&self, first: Millis, last: Millis) -> (Millis, Millis) {
        (first, if self.history { Millis::MAX / 4 } else { last })
    }
}

impl Exec<'_> {
    /// Whether the detector should give up (see [`Stop`]).
    pub fn stopped(&self) -> bool {
        self.stop.is_set()
    }

    pub fn in_currency(&self, e: EdgeId) -> bool {
        self.g.currency_index(e) == self.currency
    }
}

/// What a detector found for one subject in one window, before scoring.
#[derive(Debug, Clone)]
pub struct Finding {
    pub subject: Subject,
    pub from: Millis,
    pub until: Millis,
    /// Consecutive window numbers of one subject form an episode, reported once.
    pub window_index: i64,
    pub metrics: Vec<Metric>,
    pub edges: Vec<EdgeId>,
    pub accounts: Vec<AccountId>,
}

/// A compiled detector.
pub trait Detector: Send + Sync {
    fn run(&self, exec: &Exec<'_>) -> Vec<Finding>;
    /// The metric names and units, in the order of [`Finding::metrics`].
    fn metrics(&self) -> Vec<(String, Unit)>;
}

/// Where windows start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Window `k` covers `[k·step, k·step + length)` in UTC milliseconds.
    Epoch,
    /// Window `k` covers local days `[k·step, k·step + length)` (days since 1970-01-01 in
    /// the rule's zone), from local midnight to local midnight: 23 or 25 hours a day
    /// where daylight saving time begins or ends.
    LocalDay,
}

const DAY: Millis = 86_400_000;

/// Window placement: window `k` covers `[k·step, k·step + length)`, in milliseconds or,
/// with [`Align::LocalDay`], in local days of a zone.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub length: Millis,
    pub step: Millis,
    pub align: Align,
}

impl Windows {
    /// The window numbers whose windows contain some time in `[first, last]`.
    pub fn covering(
        &self,
        first: Millis,
        last: Millis,
        zone: Zone,
    ) -> std::ops::RangeInclusive<i64> {
        let (first, last, length, step) = match self.align {
            Align::Epoch => (first, last, self.length, self.step),
            Align::LocalDay => (
                zone.day_number(first),
                zone.day_number(last),
                self.length / DAY,
                self.step / DAY,
            ),
        };
        let lo = (first - length).div_euclid(step) + 1;
        let hi = last.div_euclid(step);
        lo..=hi
    }

    /// How many windows hold some time in `[first, last]`.
    pub fn count_covering(&self, first: Millis, last: Millis, zone: Zone) -> u64 {
        if first > last {
            return 0;
        }
        let r = self.covering(first, last, zone);
        u64::try_from(r.end() - r.start() + 1).unwrap_or(0)
    }

    pub fn bounds(&self, k: i64, zone: Zone) -> (Millis, Millis) {
        match self.align {
            Align::Epoch => {
                let from = k * self.step;
                (from, from + self.length)
            }
            Align::LocalDay => {
                let first_day = k * (self.step / DAY);
                (
                    zone.day_start(first_day),
                    zone.day_start(first_day + self.length / DAY),
                )
            }
        }
    }

    /// One window length before `from`: in local days, the local midnight that many days
    /// earlier.
    pub fn back(&self, from: Millis, zone: Zone) -> Millis {
        match self.align {
            Align::Epoch => from.saturating_sub(self.length),
            Align::LocalDay => zone.day_start(zone.day_number(from) - self.length / DAY),
        }
    }

    /// One window spanning all time, for kinds without a window.
    pub fn whole() -> Windows {
        Windows {
            length: i64::MAX / 4,
            step: i64::MAX / 4,
            align: Align::Epoch,
        }
    }
}

/// The slice of time-ordered edges in `[from, until)`.
pub fn time_slice<'a>(
    g: &TemporalGraph,
    edges: &'a [EdgeId],
    from: Millis,
    until: Millis,
) -> &'a [EdgeId] {
    let lo = edges.partition_point(|&e| g.ts[e as usize] < from);
    let hi = edges.partition_point(|&e| g.ts[e as usize] < until).max(lo);
    &edges[lo..hi]
}

/// The transaction types an edge filter can accept, from the `tx.type` tests it cannot
/// hold without ([`Program::required_codes`]). Mask loops test it first and skip the other
/// edges before binding anything: at ten million edges, evaluating a filter on an edge of
/// another type still read its two accounts' attributes at random.
///
/// [`Program::required_codes`]: super::expr::Program::required_codes
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypeGate(u64);

impl TypeGate {
    /// The gate of `filter`; every type passes where there is none.
    pub(crate) fn of(filter: Option<&super::expr::Program>) -> TypeGate {
        TypeGate(
            filter
                .and_then(|p| p.required_codes(super::scope::TX_TYPE))
                .unwrap_or(u64::MAX),
        )
    }

    /// Whether edge `e`'s type can pass the filter.
    pub(crate) fn admits(self, g: &TemporalGraph, e: EdgeId) -> bool {
        self.0 >> (g.tx_type[e as usize] as u32) & 1 == 1
    }
}

/// Per-edge masks of aggregate `where` filters, computed once per run.
pub fn aggregate_masks(
    aggregates: &[Aggregate],
    filters: &[super::expr::Program],
    exec: &Exec<'_>,
    bind: &dyn Fn(&mut super::scope::Scope<'_>, EdgeId, usize),
) -> Vec<Mask> {
    aggregate_masks_of(aggregates, filters, exec, bind, &|_| true)
}

/// [`aggregate_masks`] evaluated only on the edges `relevant` accepts (the others stay
/// unset): for detectors that know which edges can ever be members of a set.
pub fn aggregate_masks_of(
    aggregates: &[Aggregate],
    filters: &[super::expr::Program],
    exec: &Exec<'_>,
    bind: &dyn Fn(&mut super::scope::Scope<'_>, EdgeId, usize),
    relevant: &dyn Fn(EdgeId) -> bool,
) -> Vec<Mask> {
    let g = exec.g;
    filters
        .iter()
        .enumerate()
        .map(|(fi, p)| {
            let set = aggregates
                .iter()
                .find(|a| a.filter == Some(fi))
                .map_or(0, |a| a.set);
            let mut m = Mask::new(g.edge_count());
            let mut scope = super::scope::Scope::new(g, exec.zone);
            let gate = TypeGate::of(Some(p));
            for e in 0..g.edge_count() as EdgeId {
                if !gate.admits(g, e) || !relevant(e) {
                    continue;
                }
                bind(&mut scope, e, set);
                if p.test(&scope) {
                    m.set(e as usize);
                }
            }
            m
        })
        .collect()
}

/// Marks accounts as seen within one round; a new round forgets them all at once.
pub(crate) struct Stamps {
    round_of: Vec<u32>,
    round: u32,
}

impl Stamps {
    pub(crate) fn new(accounts: usize) -> Stamps {
        Stamps {
            round_of: vec![0; accounts],
            round: 0,
        }
    }

    pub(crate) fn next_round(&mut self) {
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            self.round_of.fill(0);
            self.round = 1;
        }
    }

    /// Whether `a` has been marked this round.
    pub(crate) fn seen(&self, a: AccountId) -> bool {
        self.round_of[a as usize] == self.round
    }

    /// Whether `a` is seen for the first time this round (and marks it).
    pub(crate) fn first_visit(&mut self, a: AccountId) -> bool {
        std::mem::replace(&mut self.round_of[a as usize], self.round) != self.round
    }
}

/// Each account's kept edges in one direction, in the graph's (time, id) order, with their
/// times and other ends alongside: a multi-hop search (cycle, flow) reads one contiguous
/// run per account instead of reaching into the graph's columns at random (which, at ten
/// million edges, is a cache miss each).
pub(crate) struct Adjacency {
    start: Vec<u32>,
    arcs: Vec<Link>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    pub(crate) ts: i64,
    pub(crate) edge: EdgeId,
    /// The other end: the receiver of an outgoing arc, the sender of an incoming one.
    pub(crate) dst: AccountId,
}

impl Adjacency {
    /// Outgoing arcs, or with `incoming` the incoming ones, each account's in time order:
    /// the edges `e` of account `a` with other end `other` for which `keep(e, a, other)`.
    pub(crate) fn new(
        g: &TemporalGraph,
        incoming: bool,
        keep: impl Fn(EdgeId, AccountId, AccountId) -> bool,
    ) -> Adjacency {
        let mut start = Vec::with_capacity(g.account_count() + 1);
        let mut arcs = Vec::new();
        start.push(0);
        for a in 0..g.account_count() as AccountId {
            let mut push = |e: EdgeId, other: AccountId| {
                if keep(e, a, other) {
                    arcs.push(Link {
                        ts: g.ts[e as usize],
                        edge: e,
                        dst: other,
                    });
                }
            };
            if incoming {
                for &e in g.in_edges(a) {
                    push(e, g.src[e as usize]);
                }
            } else {
                for e in g.out_edges(a) {
                    push(e, g.dst[e as usize]);
                }
            }
            start.push(arcs.len() as u32);
        }
        arcs.shrink_to_fit();
        Adjacency { start, arcs }
    }

    /// The kept arcs of `a` with `from <= ts < until`.
    pub(crate) fn window(&self, a: AccountId, from: i64, until: i64) -> &[Link] {
        let arcs = &self.arcs[self.start[a as usize] as usize..self.start[a as usize + 1] as usize];
        let l = arcs.partition_point(|x| x.ts < from);
        let h = arcs.partition_point(|x| x.ts < until).max(l);
        &arcs[l..h]
    }
}

/// Graphs for the multi-hop kinds' property tests.
#[cfg(test)]
pub(crate) mod test_graphs {
    use clearwatch_graph::{EdgeInput, GraphBuilder, TemporalGraph};
    use clearwatch_model::{Currency, TxType};

    const HOUR: i64 = 3_600_000;

    /// Transfers of 100 CNY given as (from, to, hour) between accounts `a0`, `a1`, ….
    pub(crate) fn graph(edges: &[(u8, u8, i64)]) -> TemporalGraph {
        let mut b = GraphBuilder::new();
        for (i, &(s, d, h)) in edges.iter().enumerate() {
            b.add_edge(EdgeInput {
                tx_id: &format!("t{i:03}"),
                ts: h * HOUR,
                from: &format!("a{s}"),
                to: &format!("a{d}"),
                amount: 100,
                currency: Currency::from_code("CNY").expect("known"),
                tx_type: TxType::Transfer,
                merchant_id: None,
                channel: None,
                region: None,
            });
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::KINDS;
    use crate::compile::{Shared, compile_rule};
    use crate::config::RuleConfig;
    use crate::diag::Diagnostic;

    /// Compiles a rule with this `detect` block (YAML lines from `detect:` on); the
    /// diagnostics if it does not compile.
    fn compile_detect(detect: &str) -> Result<(), Vec<Diagnostic>> {
        let text = format!("id: K-1\ntitle: t\nstatus: test\nseverity: low\n{detect}summary: s\n");
        let cfg: RuleConfig = serde_saphyr::from_str(&text).expect("the rule header parses");
        let path = Path::new("K-1-kind.yaml");
        compile_rule(&cfg, path, &text, &Shared::default(), &BTreeMap::new()).map(|_| ())
    }

    #[test]
    fn an_unknown_detect_field_lists_the_kinds_fields() {
        let diags = compile_detect(
            "detect:\n  kind: relation\n  group_by: payee\n  in: 'tx.amount > 1.0'\n  condition: 'true'\n",
        )
        .unwrap_err();
        assert_eq!(diags.len(), 1, "{diags:?}");
        let d = &diags[0];
        assert_eq!((d.line, d.column), (8, 3), "{d}");
        assert!(d.message.contains("kind `relation`"), "{d}");
        assert!(d.message.contains("unknown field `in`"), "{d}");
        assert!(
            d.message
                .contains("expected one of kind, edge, group_by, window, aggregates, condition"),
            "{d}"
        );
    }

    #[test]
    fn shift_is_refused_outside_relation() {
        let aggregates = "  aggregates:\n    n: { fn: count, over: edges, shift: '24.0' }\n  condition: 'true'\n";
        let relation = format!("detect:\n  kind: relation\n  group_by: payee\n{aggregates}");
        assert!(compile_detect(&relation).is_ok());
        let cycle = format!("detect:\n  kind: cycle\n  window: {{ length: 1d }}\n{aggregates}");
        let diags = compile_detect(&cycle).unwrap_err();
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].message, "`shift` is not read by kind `cycle`");
        assert_eq!((diags[0].line, diags[0].column), (9, 41));
    }

    #[test]
    fn every_kinds_documented_example_compiles() {
        for k in KINDS {
            let example = k
                .doc
                .split_once("```yaml\n")
                .and_then(|(_, rest)| rest.split_once("```"))
                .map(|(yaml, _)| yaml)
                .unwrap_or_else(|| panic!("kind `{}` documents no example", k.name));
            if let Err(diags) = compile_detect(example) {
                panic!(
                    "the example of kind `{}` does not compile: {diags:?}",
                    k.name
                );
            }
        }
    }
}
