//! `star`: what flows into and out of one account within a sliding window.

use serde::Deserialize;

use super::{Detector, Exec, Finding, KindSpec, Reach, TypeGate, Windows, aggregate_masks_of};
use crate::aggregate::{self, Aggregate, Contacts, EdgeSet, Flows, Mask, Sliding, Unit};
use crate::compile::{Cx, Shift};
use crate::config::{Aggregates, Text, WindowConfig};
use crate::expr::{Program, Ty};
use crate::scope::{self, LazyMetrics, Scope};
use clearwatch_graph::{AccountId, EdgeId};
use clearwatch_model::{Subject, SubjectKind};

pub const SPEC: KindSpec = KindSpec {
    name: "star",
    doc: r#"### What it detects
The money that flows into and out of one account (the *hub*) within a sliding time
window: fan-in, fan-out, velocity, pass-through, pooled balances, structuring, and
personal accounts with business volume.

### Why it matters
A two-clear pool is a hub: settlement money concentrates in an unlicensed account and is
dispersed to many payees (集中转入、分散转出), with a holding time and a balance that a
licensed acquirer's direct settlement never has.

### Fields
- `subject` (CEL, optional): which accounts are hubs. Binds `hub`.
- `in` (CEL, optional): which incoming transactions count. Binds `tx`, `hub`, `peer` (the payer), `merchant`.
- `out` (CEL, optional): which outgoing transactions count. Binds `tx`, `hub`, `peer` (the payee), `merchant`.
- `window`: `length` and `step` (durations or duration parameters).
- `aggregates` over the sets `in` and `out`; `dwell`, `retention`, `balance_peak` and `balance_open` use both,
  and `dwell`, `balance_peak` and `balance_open` start from the pool's state one window length before
  the window (unmatched inflows, balance), so a steady pool's holding time is measured
  as it is, not from an empty pool at each window start.
- `condition` (CEL): binds the aggregates and `hub`.

### Example
```yaml
detect:
  kind: star
  subject: '!hub.licensed'
  in: 'tx.type == "settlement"'
  out: 'tx.type == "transfer"'
  window: { length: 7d, step: 1d }
  aggregates:
    payees: { fn: count_distinct, over: out, field: counterparty }
    retention: { fn: retention }
  condition: 'payees >= 10 && retention >= 0.9'
```
"#,
    compile,
};

/// `detect` of kind `star`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StarConfig {
    pub kind: Text,
    /// Which accounts are hubs (binds `hub`).
    #[serde(default)]
    pub subject: Option<Text>,
    /// Which incoming transactions count (binds `tx`, `hub`, `peer` the payer, `merchant`).
    #[serde(default, rename = "in")]
    pub in_filter: Option<Text>,
    /// Which outgoing transactions count (binds `tx`, `hub`, `peer` the payee, `merchant`).
    #[serde(default, rename = "out")]
    pub out_filter: Option<Text>,
    /// The sliding window: `length` and `step`.
    #[serde(default)]
    pub window: Option<WindowConfig>,
    /// Over the sets `in` and `out`.
    #[serde(default)]
    pub aggregates: Aggregates,
    /// Binds the aggregates and `hub`.
    pub condition: Text,
}

const SETS: &[&str] = &["in", "out"];

struct Star {
    subject: Option<Program>,
    in_filter: Option<Program>,
    out_filter: Option<Program>,
    windows: Windows,
    aggregates: Vec<Aggregate>,
    filters: Vec<Program>,
    condition: Program,
    evidence_sets: [bool; 2],
}

fn compile(cx: &mut Cx<'_>) -> Option<Box<dyn Detector>> {
    let cfg: StarConfig = cx.detect_config()?;
    let mut hub_schema = cx.base_schema();
    scope::add_account(&mut hub_schema, "hub", 0);
    let edges = cx.edge_schema("hub", "peer");
    let subject = cx.opt_expr(cfg.subject.as_ref(), &hub_schema, Ty::Bool);
    let in_filter = cx.opt_expr(cfg.in_filter.as_ref(), &edges, Ty::Bool);
    let out_filter = cx.opt_expr(cfg.out_filter.as_ref(), &edges, Ty::Bool);
    let windows = cx.windows(cfg.window.as_ref(), &cfg.kind);
    let (aggregates, filters) = cx.aggregates(&cfg.aggregates, SETS, Shift::Refused, &|cx, _| {
        cx.edge_schema("hub", "peer")
    });
    let metrics: Vec<(String, Unit)> = aggregates
        .iter()
        .map(|a| (a.name.clone(), a.unit))
        .collect();
    let condition = cx.condition(&cfg.condition, &metrics, &|s| {
        scope::add_account(s, "hub", 0)
    });
    let evidence = cx.evidence_sets(SETS);
    if let Some(windows) = windows {
        // Every history-reading function (novel, recurring, balance, dwell, retention)
        // reads before the window; none reads after it.
        let history = aggregates.iter().any(|a| a.func.reads_history());
        cx.reach = Some(Reach { windows, history });
    }
    // The hub's windows hold only its own transactions.
    cx.local = true;
    Some(Box::new(Star {
        subject: subject.ok()?,
        in_filter: in_filter.ok()?,
        out_filter: out_filter.ok()?,
        windows: windows?,
        aggregates,
        filters,
        condition: condition?,
        evidence_sets: [evidence[0], evidence[1]],
    }))
}

impl Detector for Star {
    fn metrics(&self) -> Vec<(String, Unit)> {
        self.aggregates
            .iter()
            .map(|a| (a.name.clone(), a.unit))
            .collect()
    }

    fn run(&self, exec: &Exec<'_>) -> Vec<Finding> {
        let g = exec.g;
        let n_edges = g.edge_count();
        // Which accounts are hubs, decided once: the filters and aggregate masks are only
        // ever read on the edges of hubs, so they are evaluated there only.
        let hub_ok: Vec<bool> = (0..g.account_count() as AccountId)
            .map(|h| {
                exec.subjects
                    .is_none_or(|s| s.contains(g.account_name(h)))
                    && self.subject.as_ref().is_none_or(|p| {
                    let mut hub_scope = Scope::new(g, exec.zone);
                    hub_scope.accounts[0] = h;
                    p.test(&hub_scope)
                })
            })
            .collect();
        let mut in_mask = Mask::new(n_edges);
        let mut out_mask = Mask::new(n_edges);
        let mut scope = Scope::new(g, exec.zone);
        let (in_gate, out_gate) = (
            TypeGate::of(self.in_filter.as_ref()),
            TypeGate::of(self.out_filter.as_ref()),
        );
        for e in 0..n_edges as EdgeId {
            let (may_in, may_out) = (in_gate.admits(g, e), out_gate.admits(g, e));
            if !(may_in || may_out) || !exec.in_currency(e) {
                continue;
            }
            let (s, d) = (g.src[e as usize], g.dst[e as usize]);
            scope.edge = e;
            if may_in && hub_ok[d as usize] {
                scope.accounts[0] = d;
                scope.accounts[1] = s;
                if self.in_filter.as_ref().is_none_or(|p| p.test(&scope)) {
                    in_mask.set(e as usize);
                }
            }
            if may_out && hub_ok[s as usize] {
                scope.accounts[0] = s;
                scope.accounts[1] = d;
                if self.out_filter.as_ref().is_none_or(|p| p.test(&scope)) {
                    out_mask.set(e as usize);
                }
            }
        }
        let masks = aggregate_masks_of(
            &self.aggregates,
            &self.filters,
            exec,
            &|scope, e, set| {
                let (s, d) = (g.src[e as usize], g.dst[e as usize]);
                scope.edge = e;
                scope.accounts[0] = if set == 0 { d } else { s };
                scope.accounts[1] = if set == 0 { s } else { d };
            },
            &|e| in_mask.get(e as usize) || out_mask.get(e as usize),
        );
        let mut findings = Vec::new();
        let (mut ins, mut outs): (Vec<EdgeId>, Vec<EdgeId>) = (Vec::new(), Vec::new());
        let (mut in_ts, mut out_ts): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
        let mut sliding = Sliding::new(&self.aggregates);
        let mut cache = Vec::new();
        let needs_contacts = self.aggregates.iter().any(|a| a.func.needs_contacts());
        let mut contacts = Contacts::default();
        for h in 0..g.account_count() as AccountId {
            if !hub_ok[h as usize] {
                continue;
            }
            ins.clear();
            outs.clear();
            ins.extend(
                g.in_edges(h)
                    .iter()
                    .copied()
                    .filter(|&e| in_mask.get(e as usize)),
            );
            outs.extend(g.out_edges(h).filter(|&e| out_mask.get(e as usize)));
            in_ts.clear();
            in_ts.extend(ins.iter().map(|&e| g.ts[e as usize]));
            out_ts.clear();
            out_ts.extend(outs.iter().map(|&e| g.ts[e as usize]));
            let whole = [
                EdgeSet {
                    edges: &ins,
                    subject_is_dst: true,
                },
                EdgeSet {
                    edges: &outs,
                    subject_is_dst: false,
                },
            ];
            sliding.reset(g, &whole, &masks);
            let first = [in_ts.first(), out_ts.first()].into_iter().flatten().min();
            let last = [in_ts.last(), out_ts.last()].into_iter().flatten().max();
            let (Some(&first), Some(&last)) = (first, last) else {
                continue;
            };
            if needs_contacts {
                contacts.rebuild(g, h);
            }
            // Windows move forward in time: each bound is a cursor that only advances
            // (the same positions a binary search per window would find).
            let mut cursors = [Cursor::default(); 6];
            for k in exec.windows(&self.windows, first, last) {
                if exec.stopped() {
                    return findings;
                }
                let (from, until) = self.windows.bounds(k, exec.zone);
                // Dwell and balance carry the pool's state from one window length back.
                let lookback = self.windows.back(from, exec.zone);
                let [i_from, i_until, i_back, o_from, o_until, o_back] = &mut cursors;
                let (il, ih) = (i_from.seek(&in_ts, from), i_until.seek(&in_ts, until));
                let (ol, oh) = (o_from.seek(&out_ts, from), o_until.seek(&out_ts, until));
                let iw = &ins[il..ih.max(il)];
                let ow = &outs[ol..oh.max(ol)];
                if iw.is_empty() && ow.is_empty() {
                    continue;
                }
                let (ib, ob) = (
                    i_back.seek(&in_ts, lookback),
                    o_back.seek(&out_ts, lookback),
                );
                let sets = [
                    EdgeSet {
                        edges: iw,
                        subject_is_dst: true,
                    },
                    EdgeSet {
                        edges: ow,
                        subject_is_dst: false,
                    },
                ];
                let flows = Flows {
                    ins: &ins[ib..ih.max(ib)],
                    outs: &outs[ob..oh.max(ob)],
                    from,
                    contacts: needs_contacts.then_some(&contacts),
                };
                let ranges = [il..ih.max(il), ol..oh.max(ol)];
                let mut metric = |i: usize| {
                    let a = &self.aggregates[i];
                    sliding
                        .get(i, g, &whole, &ranges, &masks, exec.exponent)
                        .unwrap_or_else(|| {
                            aggregate::compute(a, g, &sets, &masks, Some(flows), exec.exponent)
                        })
                };
                let mut cond_scope = Scope::new(g, exec.zone);
                cond_scope.accounts[0] = h;
                let lazy =
                    LazyMetrics::new(&cond_scope, &mut cache, self.aggregates.len(), &mut metric);
                if !self.condition.test(&lazy) {
                    continue;
                }
                let metrics = lazy.into_metrics();
                let mut edges = Vec::new();
                if self.evidence_sets[0] {
                    edges.extend_from_slice(iw);
                }
                if self.evidence_sets[1] {
                    edges.extend_from_slice(ow);
                }
                let mut accounts: Vec<AccountId> = edges
                    .iter()
                    .map(|&e| {
                        let (s, d) = (g.src[e as usize], g.dst[e as usize]);
                        if s == h { d } else { s }
                    })
                    .collect();
                accounts.push(h);
                findings.push(Finding {
                    subject: Subject {
                        kind: SubjectKind::Account,
                        id: g.account_name(h).to_string(),
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

/// A position in a time-ordered list that moves forward only.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor(usize);

impl Cursor {
    /// The first index at or after the cursor whose time is at least `t`; `t` must not
    /// decrease between calls.
    fn seek(&mut self, ts: &[i64], t: i64) -> usize {
        while self.0 < ts.len() && ts[self.0] < t {
            self.0 += 1;
        }
        self.0
    }
}
