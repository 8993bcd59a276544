//! `star`: what flows into and out of one account within a sliding window.

use super::{Detector, Exec, Finding, KindSpec, Windows, aggregate_masks, time_slice};
use crate::detect::Subject;
use crate::graph::{AccountId, EdgeId};
use crate::rules::aggregate::{self, Aggregate, EdgeSet, Flows, Mask, Unit};
use crate::rules::compile::Cx;
use crate::rules::config::DetectConfig;
use crate::rules::expr::{Program, Schema, Ty};
use crate::rules::scope::{self, Scope};

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
- `aggregates` over the sets `in` and `out`; `dwell`, `retention` and `balance_peak` use both,
  and `dwell` and `balance_peak` start from the pool's state one window length before
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
    fields: &["subject", "in", "out", "window"],
    compile,
};

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

fn edge_schema(cx: &Cx<'_>) -> Schema {
    let mut s = cx.base_schema();
    scope::add_tx(&mut s);
    scope::add_account(&mut s, "hub", 0);
    scope::add_account(&mut s, "peer", 1);
    scope::add_merchant(&mut s);
    s
}

fn compile(cfg: &DetectConfig, cx: &mut Cx<'_>) -> Option<Box<dyn Detector>> {
    let mut hub_schema = cx.base_schema();
    scope::add_account(&mut hub_schema, "hub", 0);
    let edges = edge_schema(cx);
    let subject = cx.opt_expr(cfg.subject.as_ref(), &hub_schema, Ty::Bool);
    let in_filter = cx.opt_expr(cfg.in_filter.as_ref(), &edges, Ty::Bool);
    let out_filter = cx.opt_expr(cfg.out_filter.as_ref(), &edges, Ty::Bool);
    let windows = cx.windows(cfg.window.as_ref(), &cfg.kind);
    let (aggregates, filters) = cx.aggregates(cfg, SETS, &|cx, _| edge_schema(cx));
    let metrics: Vec<(String, Unit)> = aggregates
        .iter()
        .map(|a| (a.name.clone(), a.unit))
        .collect();
    let condition = cx.condition(cfg, &metrics, &|s| scope::add_account(s, "hub", 0));
    let evidence = cx.evidence_sets(SETS);
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
        let mut in_mask = Mask::new(n_edges);
        let mut out_mask = Mask::new(n_edges);
        let mut scope = Scope::new(g);
        for e in 0..n_edges as EdgeId {
            if !exec.in_currency(e) {
                continue;
            }
            let (s, d) = (g.src[e as usize], g.dst[e as usize]);
            scope.edge = e;
            scope.accounts[0] = d;
            scope.accounts[1] = s;
            if self.in_filter.as_ref().is_none_or(|p| p.test(&scope)) {
                in_mask.set(e as usize);
            }
            scope.accounts[0] = s;
            scope.accounts[1] = d;
            if self.out_filter.as_ref().is_none_or(|p| p.test(&scope)) {
                out_mask.set(e as usize);
            }
        }
        let masks = aggregate_masks(&self.aggregates, &self.filters, exec, &|scope, e, set| {
            let (s, d) = (g.src[e as usize], g.dst[e as usize]);
            scope.edge = e;
            scope.accounts[0] = if set == 0 { d } else { s };
            scope.accounts[1] = if set == 0 { s } else { d };
        });
        let mut findings = Vec::new();
        for h in 0..g.account_count() as AccountId {
            if let Some(p) = &self.subject {
                let mut hub_scope = Scope::new(g);
                hub_scope.accounts[0] = h;
                if !p.test(&hub_scope) {
                    continue;
                }
            }
            let ins: Vec<EdgeId> = g
                .in_edges(h)
                .iter()
                .copied()
                .filter(|&e| in_mask.get(e as usize))
                .collect();
            let outs: Vec<EdgeId> = g
                .out_edges(h)
                .filter(|&e| out_mask.get(e as usize))
                .collect();
            let ts = |v: &[EdgeId], i: usize| v.get(i).map(|&e| g.ts[e as usize]);
            let first = [ts(&ins, 0), ts(&outs, 0)].into_iter().flatten().min();
            let last = [
                ts(&ins, ins.len().wrapping_sub(1)),
                ts(&outs, outs.len().wrapping_sub(1)),
            ]
            .into_iter()
            .flatten()
            .max();
            let (Some(first), Some(last)) = (first, last) else {
                continue;
            };
            for k in self.windows.covering(first, last) {
                let (from, until) = self.windows.bounds(k);
                let iw = time_slice(g, &ins, from, until);
                let ow = time_slice(g, &outs, from, until);
                if iw.is_empty() && ow.is_empty() {
                    continue;
                }
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
                // Dwell and balance carry the pool's state from one window length back.
                let lookback = from.saturating_sub(self.windows.length);
                let flows = Flows {
                    ins: time_slice(g, &ins, lookback, until),
                    outs: time_slice(g, &outs, lookback, until),
                    from,
                };
                let metrics: Vec<_> = self
                    .aggregates
                    .iter()
                    .map(|a| aggregate::compute(a, g, &sets, &masks, Some(flows), exec.exponent))
                    .collect();
                let mut cond_scope = Scope::new(g);
                cond_scope.accounts[0] = h;
                cond_scope.metrics = &metrics;
                if !self.condition.test(&cond_scope) {
                    continue;
                }
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
                        kind: "account".into(),
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
