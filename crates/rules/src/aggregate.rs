//! Aggregates: declared in YAML, computed by the engine over the transaction sets a
//! detector binds (`in`, `out`, `edges`, …) in one window. Sums are integer minor units;
//! only ratios and hours are floating point.

use super::expr::Ty;
use super::scope::Metric;
use clearwatch_graph::{AccountId, EdgeId, TemporalGraph};
use clearwatch_model::Millis;

pub const FUNCTIONS: &str = "count, count_distinct, sum, min, max, median, percentile, dwell, retention, balance_peak, balance_open, novel, recurring";
pub const FIELDS: &str =
    "amount, counterparty, hour, day, region, merchant, merchant_holder, peer_region, peer_holder";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggFn {
    Count,
    CountDistinct,
    Sum,
    Min,
    Max,
    Percentile(f64),
    Dwell(DwellStat),
    Retention,
    BalancePeak,
    /// The pooled balance at the window start, replayed as for `balance_peak`: where a
    /// chart of the pool starts.
    BalanceOpen,
    /// Distinct counterparties of the set with no transaction with the subject, in either
    /// direction, within `history` before the window (`i64::MAX`: the whole loaded past).
    Novel {
        history: Millis,
    },
    /// Distinct counterparties of the set that the subject also dealt with, in the same
    /// direction, about one `period` before a member (within a quarter period either way).
    Recurring {
        period: Millis,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DwellStat {
    Median,
    Mean,
    Max,
}

/// What a member of a set contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Amount,
    Counterparty,
    Hour,
    Day,
    Region,
    Merchant,
    MerchantHolder,
    PeerRegion,
    PeerHolder,
}

impl Field {
    pub fn parse(s: &str) -> Option<Field> {
        Some(match s {
            "amount" => Field::Amount,
            "counterparty" => Field::Counterparty,
            "hour" => Field::Hour,
            "day" => Field::Day,
            "region" => Field::Region,
            "merchant" => Field::Merchant,
            "merchant_holder" => Field::MerchantHolder,
            "peer_region" => Field::PeerRegion,
            "peer_holder" => Field::PeerHolder,
            _ => return None,
        })
    }
}

/// How a value is shown in summaries and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Money,
    Ratio,
    Hours,
    /// An integer that is not a count (an hour, a day number).
    Number,
    /// A floating-point statistic (z-score, p-value, deviation).
    Real,
}

impl AggFn {
    pub fn parse(s: &str, p: Option<f64>, stat: Option<&str>) -> Result<AggFn, String> {
        Ok(match s {
            "count" => AggFn::Count,
            "count_distinct" => AggFn::CountDistinct,
            "sum" => AggFn::Sum,
            "min" => AggFn::Min,
            "max" => AggFn::Max,
            "median" => AggFn::Percentile(0.5),
            "percentile" => match p {
                Some(p) if (0.0..=1.0).contains(&p) => AggFn::Percentile(p),
                _ => return Err("percentile needs `p` between 0 and 1".into()),
            },
            "dwell" => AggFn::Dwell(match stat.unwrap_or("median") {
                "median" => DwellStat::Median,
                "mean" => DwellStat::Mean,
                "max" => DwellStat::Max,
                other => {
                    return Err(format!(
                        "unknown dwell stat {other:?} (valid: median, mean, max)"
                    ));
                }
            }),
            "retention" => AggFn::Retention,
            "balance_peak" => AggFn::BalancePeak,
            "balance_open" => AggFn::BalanceOpen,
            // The durations are filled in by the compiler from `history` and `period`.
            "novel" => AggFn::Novel { history: i64::MAX },
            "recurring" => AggFn::Recurring { period: 0 },
            other => return Err(format!("unknown aggregate `{other}` (valid: {FUNCTIONS})")),
        })
    }

    /// Whether the function reads a set and a field (dwell, retention and balance_peak
    /// read the `in` and `out` sets together).
    pub fn needs_set(self) -> bool {
        !matches!(
            self,
            AggFn::Dwell(_) | AggFn::Retention | AggFn::BalancePeak | AggFn::BalanceOpen
        )
    }

    pub fn needs_field(self) -> bool {
        !matches!(
            self,
            AggFn::Count
                | AggFn::Dwell(_)
                | AggFn::Retention
                | AggFn::BalancePeak
                | AggFn::BalanceOpen
                | AggFn::Novel { .. }
                | AggFn::Recurring { .. }
        )
    }

    /// Whether the function reads transactions before the window (the flows a pool
    /// carries in, or the subject's contacts).
    pub fn reads_history(self) -> bool {
        matches!(
            self,
            AggFn::Dwell(_)
                | AggFn::Retention
                | AggFn::BalancePeak
                | AggFn::BalanceOpen
                | AggFn::Novel { .. }
                | AggFn::Recurring { .. }
        )
    }

    /// Whether the function reads the subject's whole history ([`Contacts`]).
    pub fn needs_contacts(self) -> bool {
        matches!(self, AggFn::Novel { .. } | AggFn::Recurring { .. })
    }

    pub fn unit(self, field: Option<Field>) -> Unit {
        match self {
            AggFn::Count | AggFn::CountDistinct | AggFn::Novel { .. } | AggFn::Recurring { .. } => {
                Unit::Count
            }
            AggFn::Dwell(_) => Unit::Hours,
            AggFn::Retention => Unit::Ratio,
            AggFn::BalancePeak | AggFn::BalanceOpen => Unit::Money,
            _ if field == Some(Field::Amount) => Unit::Money,
            _ => Unit::Number,
        }
    }
}

impl Unit {
    pub fn ty(self) -> Ty {
        match self {
            Unit::Count | Unit::Number => Ty::Int,
            Unit::Money | Unit::Ratio | Unit::Hours | Unit::Real => Ty::Float,
        }
    }
}

/// A compiled aggregate: which set, which field, optional member filter (by index into
/// the detector's filter masks).
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub name: String,
    pub func: AggFn,
    pub set: usize,
    pub field: Option<Field>,
    pub filter: Option<usize>,
    pub unit: Unit,
}

/// A set of edges bound in one window, and which endpoint is the subject.
#[derive(Debug, Clone, Copy)]
pub struct EdgeSet<'a> {
    pub edges: &'a [EdgeId],
    /// The subject is the destination (incoming set) rather than the source.
    pub subject_is_dst: bool,
}

/// A bit per edge.
#[derive(Debug, Clone, Default)]
pub struct Mask(Vec<u64>);

impl Mask {
    pub fn new(len: usize) -> Self {
        Mask(vec![0; len.div_ceil(64)])
    }

    pub fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn get(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }
}

fn field_value(g: &TemporalGraph, e: EdgeId, subject_is_dst: bool, f: Field) -> i64 {
    let i = e as usize;
    let peer = if subject_is_dst { g.src[i] } else { g.dst[i] };
    let text_key = |s: &str| -> i64 {
        // Distinct-counting key for short text: a stable 64-bit hash.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in s.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        h as i64
    };
    match f {
        Field::Amount => g.amount[i],
        Field::Counterparty => i64::from(peer),
        Field::Hour => g.ts[i].rem_euclid(86_400_000) / 3_600_000,
        Field::Day => g.ts[i].div_euclid(86_400_000),
        Field::Region => text_key(g.region(e)),
        Field::Merchant => g.merchant_index(e).map_or(-1, |m| m as i64),
        Field::MerchantHolder => text_key(
            g.merchant(e)
                .and_then(|m| m.holder_id.as_deref())
                .unwrap_or(""),
        ),
        Field::PeerRegion => text_key(g.attrs(peer).region.as_deref().unwrap_or("")),
        Field::PeerHolder => text_key(g.attrs(peer).holder.as_deref().unwrap_or("")),
    }
}

/// The money into and out of a subject, for dwell, retention and balance_peak. Edges
/// before `from` are history: they set the pool's state (unmatched inflows, balance) at
/// the window start but are not themselves measured. `contacts` is the subject's whole
/// history, for `novel` and `recurring`.
#[derive(Debug, Clone, Copy)]
pub struct Flows<'a> {
    pub ins: &'a [EdgeId],
    pub outs: &'a [EdgeId],
    pub from: Millis,
    pub contacts: Option<&'a Contacts>,
}

/// Every transaction of one subject as (counterparty, outgoing, time), sorted, so that
/// "did the subject deal with this counterparty between two times" is a binary search:
/// the engine's own-history baseline behind `novel` and `recurring`.
#[derive(Debug, Clone, Default)]
pub struct Contacts(Vec<(AccountId, bool, Millis)>);

impl Contacts {
    /// Rebuilds the index for `subject` from all of its transactions (every type and
    /// currency: any earlier dealing makes a counterparty known).
    pub fn rebuild(&mut self, g: &TemporalGraph, subject: AccountId) {
        self.0.clear();
        let ts = |e: EdgeId| g.ts[e as usize];
        self.0.extend(
            g.in_edges(subject)
                .iter()
                .map(|&e| (g.src[e as usize], false, ts(e))),
        );
        self.0.extend(
            g.out_edges(subject)
                .map(|e| (g.dst[e as usize], true, ts(e))),
        );
        self.0.sort_unstable();
    }

    /// Whether the subject dealt with `peer` in direction `outgoing` at a time in `lo..hi`.
    pub fn any(&self, peer: AccountId, outgoing: bool, lo: Millis, hi: Millis) -> bool {
        let i = self.0.partition_point(|c| *c < (peer, outgoing, lo));
        self.0
            .get(i)
            .is_some_and(|&(p, o, t)| p == peer && o == outgoing && t < hi)
    }
}

/// Computes one aggregate over the kind's sets; `flows` serves dwell, retention and
/// balance_peak; `exponent` is the currency's.
pub fn compute(
    agg: &Aggregate,
    g: &TemporalGraph,
    sets: &[EdgeSet<'_>],
    masks: &[Mask],
    flows: Option<Flows<'_>>,
    exponent: u32,
) -> Metric {
    let keep = |e: EdgeId| agg.filter.is_none_or(|m| masks[m].get(e as usize));
    if !agg.func.needs_set() {
        let Some(f) = flows else {
            return Metric::Float(f64::NAN);
        };
        let from = f.from;
        return match agg.func {
            AggFn::Retention => {
                // Integer sums: the order of addition does not matter.
                let sum = |v: &[EdgeId]| {
                    v.iter()
                        .copied()
                        .filter(|&e| keep(e) && g.ts[e as usize] >= from)
                        .map(|e| g.amount[e as usize] as i128)
                        .sum::<i128>()
                };
                let (si, so) = (sum(f.ins), sum(f.outs));
                if si == 0 {
                    Metric::Float(f64::NAN)
                } else {
                    Metric::Float(so as f64 / si as f64)
                }
            }
            AggFn::BalancePeak => {
                let (_, peak) =
                    with_events(g, f.ins, f.outs, keep, |ev| balance_replay(g, ev, from));
                Metric::Money(peak, exponent)
            }
            AggFn::BalanceOpen => {
                let (open, _) =
                    with_events(g, f.ins, f.outs, keep, |ev| balance_replay(g, ev, from));
                Metric::Money(open, exponent)
            }
            AggFn::Dwell(stat) => Metric::Float(with_events(g, f.ins, f.outs, keep, |ev| {
                dwell_hours_of(g, ev, from, stat)
            })),
            _ => unreachable!("set-free aggregates are listed above"),
        };
    }
    let set = sets[agg.set];
    let members = set.edges.iter().copied().filter(|&e| keep(e));
    let field = agg.field.unwrap_or(Field::Amount);
    let money = |v: i64| {
        if field == Field::Amount {
            Metric::Money(v, exponent)
        } else {
            Metric::Int(v)
        }
    };
    match agg.func {
        AggFn::Count => Metric::Int(members.count() as i64),
        AggFn::CountDistinct => SCRATCH.with_borrow_mut(|v| {
            v.clear();
            v.extend(members.map(|e| field_value(g, e, set.subject_is_dst, field)));
            v.sort_unstable();
            v.dedup();
            Metric::Int(v.len() as i64)
        }),
        AggFn::Sum => {
            let total: i128 = members
                .map(|e| field_value(g, e, set.subject_is_dst, field) as i128)
                .sum();
            money(i64::try_from(total).unwrap_or(i64::MAX))
        }
        AggFn::Min | AggFn::Max => {
            let values = members.map(|e| field_value(g, e, set.subject_is_dst, field));
            let x = if agg.func == AggFn::Min {
                values.min()
            } else {
                values.max()
            };
            x.map_or(Metric::Float(f64::NAN), money)
        }
        AggFn::Novel { .. } | AggFn::Recurring { .. } => {
            let Some(contacts) = flows.and_then(|f| f.contacts) else {
                return Metric::Float(f64::NAN);
            };
            let from = flows.map_or(i64::MIN, |f| f.from);
            let subject_out = !set.subject_is_dst;
            let peer = |e: EdgeId| {
                let i = e as usize;
                if set.subject_is_dst {
                    g.src[i]
                } else {
                    g.dst[i]
                }
            };
            SCRATCH.with_borrow_mut(|v| {
                v.clear();
                match agg.func {
                    AggFn::Novel { history } => {
                        let lo = from.saturating_sub(history);
                        v.extend(
                            members
                                .map(peer)
                                .filter(|&p| {
                                    !contacts.any(p, false, lo, from)
                                        && !contacts.any(p, true, lo, from)
                                })
                                .map(i64::from),
                        );
                    }
                    AggFn::Recurring { period } => {
                        let slack = period / 4;
                        v.extend(
                            members
                                .filter(|&e| {
                                    let t = g.ts[e as usize] - period;
                                    contacts.any(peer(e), subject_out, t - slack, t + slack)
                                })
                                .map(|e| i64::from(peer(e))),
                        );
                    }
                    _ => unreachable!(),
                }
                v.sort_unstable();
                v.dedup();
                Metric::Int(v.len() as i64)
            })
        }
        AggFn::Percentile(p) => SCRATCH.with_borrow_mut(|v| {
            v.clear();
            v.extend(members.map(|e| field_value(g, e, set.subject_is_dst, field)));
            if v.is_empty() {
                return Metric::Float(f64::NAN);
            }
            // The value at a rank is the same whether the rest is sorted or only
            // partitioned around it.
            let rank = nearest_rank(p, v.len());
            money(*v.select_nth_unstable(rank).1)
        }),
        _ => unreachable!("set aggregates are listed above"),
    }
}

/// Aggregates of one subject over windows whose bounds only move forward (a star's
/// windows over its hub's time-ordered `in` and `out` sets): counts, sums and retention
/// come from prefix sums, distinct counts from a multiset that is slid rather than
/// rebuilt, so an edge costs the same whether it lies in one window or thirty. Other
/// functions return `None` and are computed with [`compute`]. Results equal
/// [`compute`]'s exactly (integer arithmetic throughout).
#[derive(Debug, Default)]
pub struct Sliding {
    aggs: Vec<Aggregate>,
    slots: Vec<Slot>,
}

#[derive(Debug)]
enum Slot {
    /// Prefix sums over the kept members of `set`: `prefix[i]` covers members before `i`.
    Prefix {
        set: usize,
        prefix: Vec<i128>,
    },
    /// Prefix sums of kept amounts of set 0 (`in`) and set 1 (`out`).
    Retention {
        ins: Vec<i128>,
        outs: Vec<i128>,
    },
    /// Value counts of the kept members of `set` in `lo..hi`.
    Distinct {
        set: usize,
        counts: std::collections::HashMap<i64, u32, foldhash::fast::RandomState>,
        lo: usize,
        hi: usize,
    },
    Direct,
}

impl Sliding {
    pub fn new(aggs: &[Aggregate]) -> Self {
        let slots = aggs
            .iter()
            .map(|a| match a.func {
                AggFn::Count | AggFn::Sum => Slot::Prefix {
                    set: a.set,
                    prefix: Vec::new(),
                },
                AggFn::Retention => Slot::Retention {
                    ins: Vec::new(),
                    outs: Vec::new(),
                },
                AggFn::CountDistinct => Slot::Distinct {
                    set: a.set,
                    counts: Default::default(),
                    lo: 0,
                    hi: 0,
                },
                _ => Slot::Direct,
            })
            .collect();
        Sliding {
            aggs: aggs.to_vec(),
            slots,
        }
    }

    /// Starts a subject whose whole time-ordered sets are `sets`.
    pub fn reset(&mut self, g: &TemporalGraph, sets: &[EdgeSet<'_>], masks: &[Mask]) {
        for (slot, agg) in self.slots.iter_mut().zip(&self.aggs) {
            let keep = |e: EdgeId| agg.filter.is_none_or(|m| masks[m].get(e as usize));
            let prefix_of =
                |out: &mut Vec<i128>, set: EdgeSet<'_>, value: &dyn Fn(EdgeId) -> i128| {
                    out.clear();
                    out.push(0);
                    let mut acc: i128 = 0;
                    for &e in set.edges {
                        if keep(e) {
                            acc += value(e);
                        }
                        out.push(acc);
                    }
                };
            match slot {
                Slot::Prefix { set, prefix } => {
                    let set = sets[*set];
                    let field = agg.field.unwrap_or(Field::Amount);
                    if agg.func == AggFn::Count {
                        prefix_of(prefix, set, &|_| 1);
                    } else {
                        prefix_of(prefix, set, &|e| {
                            field_value(g, e, set.subject_is_dst, field) as i128
                        });
                    }
                }
                Slot::Retention { ins, outs } => {
                    let amount = |e: EdgeId| g.amount[e as usize] as i128;
                    prefix_of(ins, sets[0], &amount);
                    prefix_of(outs, sets[1], &amount);
                }
                Slot::Distinct { counts, lo, hi, .. } => {
                    counts.clear();
                    (*lo, *hi) = (0, 0);
                }
                Slot::Direct => {}
            }
        }
    }

    /// Aggregate `i` over the window whose members are `sets[s].edges[ranges[s]]`, or
    /// `None` when it is to be computed directly. Window bounds must not move backwards
    /// between calls for one subject.
    pub fn get(
        &mut self,
        i: usize,
        g: &TemporalGraph,
        sets: &[EdgeSet<'_>],
        ranges: &[std::ops::Range<usize>],
        masks: &[Mask],
        exponent: u32,
    ) -> Option<Metric> {
        let agg = &self.aggs[i];
        let field = agg.field.unwrap_or(Field::Amount);
        Some(match &mut self.slots[i] {
            Slot::Prefix { set, prefix } => {
                let r = &ranges[*set];
                let total = prefix[r.end] - prefix[r.start];
                if agg.func == AggFn::Count {
                    Metric::Int(total as i64)
                } else {
                    let v = i64::try_from(total).unwrap_or(i64::MAX);
                    if field == Field::Amount {
                        Metric::Money(v, exponent)
                    } else {
                        Metric::Int(v)
                    }
                }
            }
            Slot::Retention { ins, outs } => {
                let (ri, ro) = (&ranges[0], &ranges[1]);
                let si = ins[ri.end] - ins[ri.start];
                let so = outs[ro.end] - outs[ro.start];
                if si == 0 {
                    Metric::Float(f64::NAN)
                } else {
                    Metric::Float(so as f64 / si as f64)
                }
            }
            Slot::Distinct {
                set,
                counts,
                lo,
                hi,
            } => {
                let set = sets[*set];
                let r = &ranges[agg.set];
                let keep = |e: EdgeId| agg.filter.is_none_or(|m| masks[m].get(e as usize));
                let value = |e: EdgeId| field_value(g, e, set.subject_is_dst, field);
                if r.start >= *hi {
                    // Disjoint from the last window: start over.
                    counts.clear();
                    *lo = r.start;
                    *hi = r.start;
                }
                for &e in &set.edges[*lo..r.start] {
                    if keep(e) {
                        let v = value(e);
                        let c = counts.get_mut(&v).expect("a member that entered leaves");
                        *c -= 1;
                        if *c == 0 {
                            counts.remove(&v);
                        }
                    }
                }
                for &e in &set.edges[*hi..r.end.max(*hi)] {
                    if keep(e) {
                        *counts.entry(value(e)).or_insert(0) += 1;
                    }
                }
                (*lo, *hi) = (r.start, r.end.max(*hi));
                Metric::Int(counts.len() as i64)
            }
            Slot::Direct => return None,
        })
    }
}

thread_local! {
    /// Reused buffer of field values (one per thread: rules run on worker threads).
    static SCRATCH: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Reused buffers of merged events, the dwell FIFO queue and the matched pieces.
    static EVENTS: std::cell::RefCell<Vec<(bool, EdgeId)>> = const { std::cell::RefCell::new(Vec::new()) };
    static QUEUE: std::cell::RefCell<std::collections::VecDeque<(i64, i64)>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
    static PIECES: std::cell::RefCell<Vec<(i64, i64)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Calls `f` with the members of `ins` and `outs` that `keep` accepts as time-ordered
/// events (incoming first on equal timestamps), in a reused buffer.
fn with_events<R>(
    g: &TemporalGraph,
    ins: &[EdgeId],
    outs: &[EdgeId],
    keep: impl Fn(EdgeId) -> bool,
    f: impl FnOnce(&[(bool, EdgeId)]) -> R,
) -> R {
    EVENTS.with_borrow_mut(|ev| {
        ev.clear();
        merge_events(g, ins, outs, &keep, ev);
        f(ev)
    })
}

/// Appends the events of `ins` and `outs` to `out` in (time, outgoing, id) order. The
/// detectors pass sets sorted by (time, id), which a linear merge keeps; anything else is
/// sorted.
fn merge_events(
    g: &TemporalGraph,
    ins: &[EdgeId],
    outs: &[EdgeId],
    keep: &dyn Fn(EdgeId) -> bool,
    out: &mut Vec<(bool, EdgeId)>,
) {
    let key = |e: &EdgeId| (g.ts[*e as usize], *e);
    if !(ins.is_sorted_by_key(key) && outs.is_sorted_by_key(key)) {
        out.extend(merged(g, ins, outs).filter(|&(_, e)| keep(e)));
        return;
    }
    let (mut i, mut o) = (0, 0);
    while i < ins.len() || o < outs.len() {
        // Incoming first on equal timestamps: (ts, false, e) < (ts, true, e').
        let take_in =
            o == outs.len() || (i < ins.len() && g.ts[ins[i] as usize] <= g.ts[outs[o] as usize]);
        let (is_out, e) = if take_in {
            i += 1;
            (false, ins[i - 1])
        } else {
            o += 1;
            (true, outs[o - 1])
        };
        if keep(e) {
            out.push((is_out, e));
        }
    }
}

/// Index of the nearest-rank percentile `p` of `n` sorted values.
pub fn nearest_rank(p: f64, n: usize) -> usize {
    let rank = (p * n as f64).ceil() as usize;
    rank.clamp(1, n) - 1
}

/// Time-ordered events: incoming first on equal timestamps.
fn merged<'a>(
    g: &'a TemporalGraph,
    ins: &'a [EdgeId],
    outs: &'a [EdgeId],
) -> impl Iterator<Item = (bool, EdgeId)> + 'a {
    let mut all: Vec<(i64, bool, EdgeId)> = ins
        .iter()
        .map(|&e| (g.ts[e as usize], false, e))
        .chain(outs.iter().map(|&e| (g.ts[e as usize], true, e)))
        .collect();
    all.sort_unstable();
    all.into_iter().map(|(_, is_out, e)| (is_out, e))
}

/// The highest pooled balance in the window: the balance replayed from the history
/// (never below zero: money from elsewhere is not pooled money), then the window's flows.
pub fn balance_peak(g: &TemporalGraph, ins: &[EdgeId], outs: &[EdgeId], from: Millis) -> i64 {
    with_events(g, ins, outs, |_| true, |ev| balance_replay(g, ev, from)).1
}

/// The pooled balance at `from` and its peak from then on: replayed over the history
/// (never below zero: money from elsewhere is not pooled money), then the window's flows.
fn balance_replay(g: &TemporalGraph, events: &[(bool, EdgeId)], from: Millis) -> (i64, i64) {
    let mut balance: i128 = 0;
    let mut open: Option<i128> = None;
    let mut peak: i128 = 0;
    for &(is_out, e) in events {
        if g.ts[e as usize] >= from && open.is_none() {
            open = Some(balance);
            peak = balance;
        }
        let a = g.amount[e as usize] as i128;
        balance = (balance + if is_out { -a } else { a }).max(0);
        if open.is_some() {
            peak = peak.max(balance);
        }
    }
    // No flow in the window: the balance at its start is where the history left it,
    // and nothing peaked in it.
    let open = open.unwrap_or(balance);
    let fit = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    (fit(open), fit(peak))
}

/// Holding time of money paid out from `from` on, matching outflows to the oldest
/// unmatched inflows (FIFO, history included), weighted by amount; NaN when nothing matched.
pub fn dwell_hours(
    g: &TemporalGraph,
    ins: &[EdgeId],
    outs: &[EdgeId],
    from: Millis,
    stat: DwellStat,
) -> f64 {
    with_events(
        g,
        ins,
        outs,
        |_| true,
        |ev| dwell_hours_of(g, ev, from, stat),
    )
}

fn dwell_hours_of(
    g: &TemporalGraph,
    events: &[(bool, EdgeId)],
    from: Millis,
    stat: DwellStat,
) -> f64 {
    QUEUE.with_borrow_mut(|queue| {
        PIECES.with_borrow_mut(|pieces| {
            queue.clear();
            pieces.clear();
            dwell_pieces(g, events, from, queue, pieces);
            dwell_stat(pieces, stat)
        })
    })
}

fn dwell_pieces(
    g: &TemporalGraph,
    events: &[(bool, EdgeId)],
    from: Millis,
    queue: &mut std::collections::VecDeque<(i64, i64)>,
    pieces: &mut Vec<(i64, i64)>,
) {
    for &(is_out, e) in events {
        let (ts, amount) = (g.ts[e as usize], g.amount[e as usize]);
        if !is_out {
            queue.push_back((ts, amount));
            continue;
        }
        let mut need = amount;
        while need > 0 {
            let Some(front) = queue.front_mut() else {
                break;
            };
            let take = need.min(front.1);
            if ts >= from {
                pieces.push((ts - front.0, take));
            }
            front.1 -= take;
            need -= take;
            if front.1 == 0 {
                queue.pop_front();
            }
        }
    }
}

fn dwell_stat(pieces: &mut [(i64, i64)], stat: DwellStat) -> f64 {
    let total: i128 = pieces.iter().map(|p| p.1 as i128).sum();
    if total == 0 {
        return f64::NAN;
    }
    let hours = |ms: i64| ms as f64 / 3_600_000.0;
    match stat {
        DwellStat::Max => pieces.iter().map(|p| hours(p.0)).fold(0.0, f64::max),
        DwellStat::Mean => {
            let weighted: i128 = pieces.iter().map(|p| p.0 as i128 * p.1 as i128).sum();
            hours(0) + (weighted as f64 / total as f64) / 3_600_000.0
        }
        DwellStat::Median => {
            pieces.sort_unstable();
            let half = (total + 1) / 2;
            let mut acc: i128 = 0;
            for (d, a) in pieces.iter() {
                acc += *a as i128;
                if acc >= half {
                    return hours(*d);
                }
            }
            hours(pieces[pieces.len() - 1].0)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use clearwatch_graph::{EdgeInput, GraphBuilder};
    use clearwatch_model::{Currency, TxType};

    const QUARTER_HOUR: i64 = 900_000;

    /// Edges as (from, to, quarter hours, amount) over accounts 0..5.
    fn graph(edges: &[(u8, u8, i64, i64)]) -> TemporalGraph {
        let cny = Currency::from_code("CNY").unwrap();
        let mut b = GraphBuilder::new();
        for (i, &(s, d, ts, amount)) in edges.iter().enumerate() {
            b.add_edge(EdgeInput {
                tx_id: &format!("t{i:03}"),
                ts: ts * QUARTER_HOUR,
                from: &format!("a{s}"),
                to: &format!("a{d}"),
                amount,
                currency: cny,
                tx_type: TxType::Transfer,
                merchant_id: None,
                channel: None,
                region: None,
            });
        }
        b.build()
    }

    fn agg(func: AggFn, set: usize, field: Option<Field>) -> Aggregate {
        Aggregate {
            name: "x".into(),
            func,
            set,
            field,
            filter: None,
            unit: func.unit(field),
        }
    }

    /// Dwell by expanding every amount into single units queued first-in first-out: a
    /// different algorithm from the engine's, for small amounts. Units paid out before
    /// `from` are history.
    fn unit_fifo_dwell(ins: &[(i64, i64)], outs: &[(i64, i64)], from: i64, stat: DwellStat) -> f64 {
        let mut events: Vec<(i64, bool, i64)> = ins
            .iter()
            .map(|&(t, a)| (t, false, a))
            .chain(outs.iter().map(|&(t, a)| (t, true, a)))
            .collect();
        events.sort();
        let mut queue = std::collections::VecDeque::new();
        let mut held: Vec<i64> = Vec::new();
        for (t, is_out, a) in events {
            for _ in 0..a {
                if is_out {
                    if let Some(t_in) = queue.pop_front()
                        && t >= from
                    {
                        held.push(t - t_in);
                    }
                } else {
                    queue.push_back(t);
                }
            }
        }
        if held.is_empty() {
            return f64::NAN;
        }
        held.sort();
        let h = |ms: i64| ms as f64 / 3_600_000.0;
        match stat {
            DwellStat::Max => h(*held.last().unwrap()),
            DwellStat::Mean => {
                held.iter().map(|&d| d as f64).sum::<f64>() / held.len() as f64 / 3_600_000.0
            }
            DwellStat::Median => h(held[held.len().div_ceil(2) - 1]),
        }
    }

    fn same(a: Metric, b: Metric) -> bool {
        match (a, b) {
            (Metric::Float(x), Metric::Float(y)) => {
                (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-9
            }
            _ => a == b,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// `novel`, `recurring` and the graph's distinct payers, payees and median amounts, against a
        /// direct reading of the edge list.
        #[test]
        fn history_baselines_equal_brute_force(
            edges in prop::collection::vec((0u8..5, 0u8..5, 0i64..60, 1i64..30), 1..50),
            hub in 0u8..5,
            from in 0i64..50,
            len in 1i64..20,
            history in 1i64..40,
            period in 4i64..30,
        ) {
            let g = graph(&edges);
            let q = QUARTER_HOUR;
            let (from, until, history, period) = (from * q, (from + len) * q, history * q, period * q);
            // Median received and sent (upper median), in yuan (amounts are fen).
            let median = |incoming: bool| {
                let mut v: Vec<i64> = edges
                    .iter()
                    .filter(|&&(s, d, _, _)| if incoming { d == hub } else { s == hub })
                    .map(|&(_, _, _, amount)| amount)
                    .collect();
                v.sort();
                v.get(v.len() / 2).map_or(0.0, |&m| m as f64 / 100.0)
            };
            let typical = [median(true), median(false)];
            let edges: Vec<(u8, u8, i64)> = edges.iter().map(|&(s, d, t, _)| (s, d, t * q)).collect();
            let Some(h) = g.find_account(&format!("a{hub}")) else { return Ok(()) };
            let mut contacts = Contacts::default();
            contacts.rebuild(&g, h);
            let flows = Flows { ins: &[], outs: &[], from, contacts: Some(&contacts) };
            let ins: Vec<EdgeId> = g.in_window(h, from, until).to_vec();
            let outs: Vec<EdgeId> = g.out_window(h, from, until).collect();
            let sets = [
                EdgeSet { edges: &ins, subject_is_dst: true },
                EdgeSet { edges: &outs, subject_is_dst: false },
            ];
            for (set, outgoing) in [(0, false), (1, true)] {
                // The window's counterparties in this direction, with the times paid.
                let window: Vec<(u8, i64)> = edges.iter()
                    .filter(|&&(s, d, t)| (if outgoing { s } else { d }) == hub && t >= from && t < until)
                    .map(|&(s, d, t)| (if outgoing { d } else { s }, t))
                    .collect();
                let dealt = |p: u8, lo: i64, hi: i64, dir: Option<bool>| edges.iter().any(|&(s, d, t)| {
                    t >= lo && t < hi && (
                        (dir != Some(false) && s == hub && d == p) || (dir != Some(true) && d == hub && s == p)
                    )
                });
                let mut novel: Vec<u8> = window.iter().map(|w| w.0)
                    .filter(|&p| !dealt(p, from - history, from, None)).collect();
                novel.sort();
                novel.dedup();
                let mut recurring: Vec<u8> = window.iter()
                    .filter(|&&(p, t)| dealt(p, t - period - period / 4, t - period + period / 4, Some(outgoing)))
                    .map(|w| w.0).collect();
                recurring.sort();
                recurring.dedup();
                let got = compute(&agg(AggFn::Novel { history }, set, None), &g, &sets, &[], Some(flows), 2);
                prop_assert_eq!(got, Metric::Int(novel.len() as i64), "novel over set {}", set);
                let got = compute(&agg(AggFn::Recurring { period }, set, None), &g, &sets, &[], Some(flows), 2);
                prop_assert_eq!(got, Metric::Int(recurring.len() as i64), "recurring over set {}", set);
            }
            let distinct = |incoming: bool| {
                let mut v: Vec<u8> = edges
                    .iter()
                    .filter(|&&(s, d, _)| if incoming { d == hub } else { s == hub })
                    .map(|&(s, d, _)| if incoming { s } else { d })
                    .collect();
                v.sort();
                v.dedup();
                v.len() as u32
            };
            prop_assert_eq!(g.distinct_peers(h), [distinct(true), distinct(false)]);
            prop_assert_eq!(g.typical_amounts(h), typical);
        }

        #[test]
        fn window_aggregates_equal_brute_force(
            edges in prop::collection::vec((0u8..5, 0u8..5, 0i64..40, 1i64..30), 1..40),
            hub in 0u8..5,
            from in 0i64..30,
            len in 1i64..30,
        ) {
            let g = graph(&edges);
            let until = (from + len) * QUARTER_HOUR;
            let from = from * QUARTER_HOUR;
            let edges: Vec<(u8, u8, i64, i64)> =
                edges.iter().map(|&(s, d, t, a)| (s, d, t * QUARTER_HOUR, a)).collect();
            let name = format!("a{hub}");
            let Some(h) = g.find_account(&name) else { return Ok(()) };
            let ins: Vec<EdgeId> = g.in_window(h, from, until).to_vec();
            let outs: Vec<EdgeId> = g.out_window(h, from, until).collect();
            // History: one window length before the window.
            let lookback = from - (until - from);
            let hist_ins: Vec<EdgeId> = g.in_window(h, lookback, until).to_vec();
            let hist_outs: Vec<EdgeId> = g.out_window(h, lookback, until).collect();
            let flows = Flows { ins: &hist_ins, outs: &hist_outs, from, contacts: None };
            let sets = [
                EdgeSet { edges: &ins, subject_is_dst: true },
                EdgeSet { edges: &outs, subject_is_dst: false },
            ];
            // Brute force straight from the edge list.
            let raw_in: Vec<(u8, i64, i64)> = edges.iter()
                .filter(|e| e.1 == hub && e.2 >= from && e.2 < until)
                .map(|e| (e.0, e.2, e.3)).collect();
            let raw_out: Vec<(u8, i64, i64)> = edges.iter()
                .filter(|e| e.0 == hub && e.2 >= from && e.2 < until)
                .map(|e| (e.1, e.2, e.3)).collect();
            for (set, raw) in [(0usize, &raw_in), (1usize, &raw_out)] {
                let mut amounts: Vec<i64> = raw.iter().map(|r| r.2).collect();
                amounts.sort();
                let mut peers: Vec<u8> = raw.iter().map(|r| r.0).collect();
                peers.sort();
                peers.dedup();
                let mut hours: Vec<i64> = raw.iter().map(|r| r.1.rem_euclid(86_400_000) / 3_600_000).collect();
                hours.sort();
                hours.dedup();
                let money = |v: i64| Metric::Money(v, 2);
                let nan = Metric::Float(f64::NAN);
                let cases = [
                    (agg(AggFn::Count, set, None), Metric::Int(raw.len() as i64)),
                    (agg(AggFn::CountDistinct, set, Some(Field::Counterparty)), Metric::Int(peers.len() as i64)),
                    (agg(AggFn::CountDistinct, set, Some(Field::Hour)), Metric::Int(hours.len() as i64)),
                    (agg(AggFn::Sum, set, Some(Field::Amount)), money(amounts.iter().sum())),
                    (agg(AggFn::Min, set, Some(Field::Amount)), amounts.first().map_or(nan, |&v| money(v))),
                    (agg(AggFn::Max, set, Some(Field::Amount)), amounts.last().map_or(nan, |&v| money(v))),
                    (agg(AggFn::Percentile(0.5), set, Some(Field::Amount)),
                        if amounts.is_empty() { nan } else { money(amounts[amounts.len().div_ceil(2) - 1]) }),
                    (agg(AggFn::Percentile(0.9), set, Some(Field::Amount)),
                        if amounts.is_empty() { nan } else {
                            let k = ((0.9 * amounts.len() as f64).ceil() as usize).max(1);
                            money(amounts[k - 1])
                        }),
                ];
                for (a, want) in cases {
                    let got = compute(&a, &g, &sets, &[], Some(flows), 2);
                    prop_assert!(same(got, want), "{:?} on set {}: got {:?}, want {:?}", a.func, set, got, want);
                }
            }
            let total_in: i64 = raw_in.iter().map(|r| r.2).sum();
            let total_out: i64 = raw_out.iter().map(|r| r.2).sum();
            let retention = if total_in == 0 { f64::NAN } else { total_out as f64 / total_in as f64 };
            let got = compute(&agg(AggFn::Retention, 0, None), &g, &sets, &[], Some(flows), 2);
            prop_assert!(same(got, Metric::Float(retention)), "retention {:?} vs {}", got, retention);
            // History and window events, inflows first at equal times.
            let hist = |inbound: bool| -> Vec<(i64, i64)> {
                edges.iter()
                    .filter(|e| (if inbound { e.1 } else { e.0 }) == hub && e.2 >= lookback && e.2 < until)
                    .map(|e| (e.2, e.3))
                    .collect()
            };
            let (ins_t, outs_t) = (hist(true), hist(false));
            let mut events: Vec<(i64, bool, i64)> = ins_t.iter().map(|r| (r.0, false, r.1))
                .chain(outs_t.iter().map(|r| (r.0, true, r.1))).collect();
            events.sort();
            // Balance: replayed over the history (never below zero), peak within the window.
            let (mut bal, mut peak) = (0i64, None::<i64>);
            let mut open = None::<i64>;
            for (t, out, a) in &events {
                if *t >= from && peak.is_none() {
                    peak = Some(bal);
                    open = Some(bal);
                }
                bal = (bal + if *out { -a } else { *a }).max(0);
                if let Some(p) = peak.as_mut() {
                    *p = (*p).max(bal);
                }
            }
            let got = compute(&agg(AggFn::BalancePeak, 0, None), &g, &sets, &[], Some(flows), 2);
            prop_assert_eq!(got, Metric::Money(peak.unwrap_or(0), 2));
            let got = compute(&agg(AggFn::BalanceOpen, 0, None), &g, &sets, &[], Some(flows), 2);
            prop_assert_eq!(got, Metric::Money(open.unwrap_or(bal), 2));
            for stat in [DwellStat::Median, DwellStat::Mean, DwellStat::Max] {
                let got = compute(&agg(AggFn::Dwell(stat), 0, None), &g, &sets, &[], Some(flows), 2);
                let want = unit_fifo_dwell(&ins_t, &outs_t, from, stat);
                prop_assert!(same(got, Metric::Float(want)), "dwell {:?}: {:?} vs {}", stat, got, want);
            }
        }
            #[test]
        fn sliding_aggregates_equal_direct_computation(
            edges in prop::collection::vec((0u8..5, 0u8..5, 0i64..60, 1i64..30), 1..60),
            hub in 0u8..5,
            len in 1i64..20,
            step in 1i64..8,
            kept in prop::collection::vec(any::<bool>(), 60),
        ) {
            let g = graph(&edges);
            let Some(h) = g.find_account(&format!("a{hub}")) else { return Ok(()) };
            let ins: Vec<EdgeId> = g.in_edges(h).to_vec();
            let outs: Vec<EdgeId> = g.out_edges(h).collect();
            let mut mask = Mask::new(g.edge_count());
            for (e, _) in kept.iter().enumerate().take(g.edge_count()).filter(|(_, k)| **k) {
                mask.set(e);
            }
            let masks = [mask];
            let mut aggs = Vec::new();
            for set in [0usize, 1] {
                for filter in [None, Some(0)] {
                    for (func, field) in [
                        (AggFn::Count, None),
                        (AggFn::Sum, Some(Field::Amount)),
                        (AggFn::Sum, Some(Field::Hour)),
                        (AggFn::CountDistinct, Some(Field::Counterparty)),
                        (AggFn::CountDistinct, Some(Field::Day)),
                        (AggFn::Retention, None),
                    ] {
                        aggs.push(Aggregate { filter, ..agg(func, set, field) });
                    }
                }
            }
            let whole = [
                EdgeSet { edges: &ins, subject_is_dst: true },
                EdgeSet { edges: &outs, subject_is_dst: false },
            ];
            let mut sliding = Sliding::new(&aggs);
            sliding.reset(&g, &whole, &masks);
            let (len, step) = (len * QUARTER_HOUR, step * QUARTER_HOUR);
            let slice = |v: &[EdgeId], from: i64, until: i64| {
                let lo = v.partition_point(|&e| g.ts[e as usize] < from);
                let hi = v.partition_point(|&e| g.ts[e as usize] < until).max(lo);
                lo..hi
            };
            // Windows forward in time; some are skipped, as a condition that reads a
            // metric in some windows only would skip them.
            for k in 0..(70 * QUARTER_HOUR / step) {
                let (from, until) = (k * step, k * step + len);
                let ranges = [slice(&ins, from, until), slice(&outs, from, until)];
                let sets = [
                    EdgeSet { edges: &ins[ranges[0].clone()], subject_is_dst: true },
                    EdgeSet { edges: &outs[ranges[1].clone()], subject_is_dst: false },
                ];
                let flows = Flows { ins: &ins[..ranges[0].end], outs: &outs[..ranges[1].end], from, contacts: None };
                for (i, a) in aggs.iter().enumerate() {
                    if (k + i as i64) % 3 == 0 {
                        continue;
                    }
                    let got = sliding.get(i, &g, &whole, &ranges, &masks, 2);
                    let want = compute(a, &g, &sets, &masks, Some(flows), 2);
                    prop_assert!(got.is_some_and(|m| same(m, want)),
                        "{:?} set {} filter {:?} window {}: {:?} vs {:?}", a.func, a.set, a.filter, k, got, want);
                }
            }
        }
    }
}
