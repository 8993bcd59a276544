//! The registry of detector kinds. One file per kind; each declares its documentation,
//! the `detect` fields it reads, the sets it binds for aggregates, and how it compiles.
//! Validation, `rules list` and `rules docs` all read this one table.

pub mod cycle;
pub mod flow;
pub mod relation;
pub mod series;
pub mod star;

use super::aggregate::{Aggregate, Mask, Unit};
use super::compile::Cx;
use super::config::DetectConfig;
use super::scope::Metric;
use clearwatch_graph::{AccountId, EdgeId, TemporalGraph};
use clearwatch_model::Millis;
use clearwatch_model::Subject;

/// One detector kind.
pub struct KindSpec {
    pub name: &'static str,
    /// The kind's reference documentation (Markdown): what it detects, why it matters,
    /// its fields, the variables it binds, an example.
    pub doc: &'static str,
    /// `detect` fields the kind reads, besides `kind`, `aggregates` and `condition`.
    pub fields: &'static [&'static str],
    pub compile: fn(&DetectConfig, &mut Cx) -> Option<Box<dyn Detector>>,
}

pub const KINDS: &[KindSpec] = &[
    relation::SPEC,
    star::SPEC,
    flow::SPEC,
    cycle::SPEC,
    series::SPEC,
];

pub fn kind(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.name == name)
}

pub fn kind_names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// Where a detector runs: one currency of the graph at a time (amounts of different
/// currencies are never added up).
pub struct Exec<'g> {
    pub g: &'g TemporalGraph,
    pub currency: u8,
    pub exponent: u32,
}

impl Exec<'_> {
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

/// Window placement: window `k` covers `[k·step, k·step + length)`.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub length: Millis,
    pub step: Millis,
}

impl Windows {
    /// The window numbers whose windows contain some time in `[first, last]`.
    pub fn covering(&self, first: Millis, last: Millis) -> std::ops::RangeInclusive<i64> {
        let lo = (first - self.length).div_euclid(self.step) + 1;
        let hi = last.div_euclid(self.step);
        lo..=hi
    }

    pub fn bounds(&self, k: i64) -> (Millis, Millis) {
        let from = k * self.step;
        (from, from + self.length)
    }

    /// One window spanning all time, for kinds without a window.
    pub fn whole() -> Windows {
        Windows {
            length: i64::MAX / 4,
            step: i64::MAX / 4,
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
            let mut scope = super::scope::Scope::new(g);
            for e in 0..g.edge_count() as EdgeId {
                if !relevant(e) {
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
