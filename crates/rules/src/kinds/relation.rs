//! `relation`: checks of who pays whom against the registries, grouped by merchant,
//! payee or payer, over the whole period or a sliding window.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Detector, Exec, Finding, KindSpec, TypeGate, Windows, aggregate_masks, time_slice};
use crate::aggregate::{self, Aggregate, EdgeSet, Unit};
use crate::compile::{Cx, Shift};
use crate::config::{Aggregates, Text, WindowConfig};
use crate::expr::{Program, Ty};
use crate::scope::{self, Scope};
use clearwatch_graph::{AccountId, EdgeId};
use clearwatch_model::{Subject, SubjectKind};

pub const SPEC: KindSpec = KindSpec {
    name: "relation",
    doc: r#"### What it detects
Transactions whose parties do not fit the registries: a merchant's settlement landing in an
account of another holder (TC-01), one account receiving the settlements of several
merchants (TC-02), merchants paid by unlicensed payers (TC-03), sales that do not match
what a merchant receives (TC-11).

### Why it matters
Same-name settlement is the licensed acquirer's duty. When the registry and the fund flow
disagree, someone between the acquirer and the merchant is touching the money.

### Fields
- `edge` (CEL, optional): which transactions count. Binds `tx`, `payer`, `payee`, `merchant`
  (the merchant of record, from the registry).
- `group_by`: `merchant` (the subject is the merchant), `payee` or `payer` (the subject is
  that account).
- `window` (optional): a sliding window; without one, the whole period is one group.
- `aggregates` over the set `edges` (counterparty: the payee for `merchant` and `payer`
  groups, the payer for `payee` groups). An aggregate's `shift` (CEL, hours; binds
  `merchant` and `account`) moves its window later: `shift: 'merchant.cycle_days * 24.0'`
  compares a day's sales with the settlement due T+N days later.
- `condition` (CEL): binds the metrics, `account` (payee or payer groups) and `merchant`.

### Example
```yaml
detect:
  kind: relation
  edge: 'tx.type == "settlement" && merchant.registered && payee.holder != merchant.holder'
  group_by: merchant
  aggregates:
    settlements: { fn: count, over: edges }
  condition: 'settlements >= 1'
```
"#,
    compile,
};

/// `detect` of kind `relation`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationConfig {
    pub kind: Text,
    /// Which transactions count (binds `tx`, `payer`, `payee`, `merchant`).
    #[serde(default)]
    pub edge: Option<Text>,
    /// `merchant`, `payee` or `payer`: what the transactions are grouped by.
    #[serde(default)]
    pub group_by: Option<Text>,
    /// A sliding window; without one, the whole period is one group.
    #[serde(default)]
    pub window: Option<WindowConfig>,
    /// Over the set `edges`; the only kind whose aggregates read `shift`.
    #[serde(default)]
    pub aggregates: Aggregates,
    /// Binds the metrics, `account` (payee or payer groups) and `merchant`.
    pub condition: Text,
}

const SETS: &[&str] = &["edges"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Merchant,
    Payee,
    Payer,
}

struct Relation {
    edge: Option<Program>,
    /// Per aggregate: the window shift in hours, if any.
    shifts: Vec<Option<Program>>,
    group: Group,
    windows: Option<Windows>,
    aggregates: Vec<Aggregate>,
    filters: Vec<Program>,
    condition: Program,
}

fn compile(cx: &mut Cx<'_>) -> Option<Box<dyn Detector>> {
    let cfg: RelationConfig = cx.detect_config()?;
    let schema = cx.edge_schema("payer", "payee");
    let edge = cx.opt_expr(cfg.edge.as_ref(), &schema, Ty::Bool);
    let group = cx.choice(
        cfg.group_by.as_ref(),
        "group_by",
        &["merchant", "payee", "payer"],
        None,
        &cfg.kind,
    );
    let windows = cfg.window.as_ref().map(|w| cx.windows(Some(w), &cfg.kind));
    let (aggregates, filters) = cx.aggregates(&cfg.aggregates, SETS, Shift::Read, &|cx, _| {
        cx.edge_schema("payer", "payee")
    });
    let mut group_schema = cx.base_schema();
    scope::add_account(&mut group_schema, "account", 0);
    scope::add_merchant(&mut group_schema);
    let mut shifts = Vec::new();
    let mut shifts_ok = true;
    for a in &aggregates {
        let text = cfg
            .aggregates
            .get(&a.name)
            .and_then(|c| c.value.shift.as_ref());
        match cx.opt_expr(text, &group_schema, Ty::Float) {
            Ok(p) => shifts.push(p),
            Err(()) => shifts_ok = false,
        }
    }
    let metrics: Vec<(String, Unit)> = aggregates
        .iter()
        .map(|a| (a.name.clone(), a.unit))
        .collect();
    let condition = cx.condition(&cfg.condition, &metrics, &|s| {
        scope::add_account(s, "account", 0);
        scope::add_merchant(s);
    });
    if !shifts_ok {
        return None;
    }
    let group = match group?.as_str() {
        "merchant" => Group::Merchant,
        "payee" => Group::Payee,
        _ => Group::Payer,
    };
    // A payee or payer group holds that account's transactions only; a merchant's
    // transactions reach several accounts.
    cx.local = group != Group::Merchant;
    Some(Box::new(Relation {
        edge: edge.ok()?,
        shifts,
        group,
        windows: match windows {
            Some(w) => Some(w?),
            None => None,
        },
        aggregates,
        filters,
        condition: condition?,
    }))
}

impl Detector for Relation {
    fn metrics(&self) -> Vec<(String, Unit)> {
        self.aggregates
            .iter()
            .map(|a| (a.name.clone(), a.unit))
            .collect()
    }

    fn run(&self, exec: &Exec<'_>) -> Vec<Finding> {
        let g = exec.g;
        let mut sc = Scope::new(g, exec.zone);
        // Group key: merchant number, or account id.
        let mut groups: BTreeMap<u64, Vec<EdgeId>> = BTreeMap::new();
        let gate = TypeGate::of(self.edge.as_ref());
        for e in 0..g.edge_count() as EdgeId {
            if !gate.admits(g, e) || !exec.in_currency(e) {
                continue;
            }
            let (s, d) = (g.src[e as usize], g.dst[e as usize]);
            sc.edge = e;
            sc.accounts[0] = s;
            sc.accounts[1] = d;
            if !self.edge.as_ref().is_none_or(|p| p.test(&sc)) {
                continue;
            }
            let key = match self.group {
                Group::Merchant => match g.merchant_index(e) {
                    Some(m) => m as u64,
                    None => continue,
                },
                Group::Payee => u64::from(d),
                Group::Payer => u64::from(s),
            };
            groups.entry(key).or_default().push(e);
        }
        let masks = aggregate_masks(&self.aggregates, &self.filters, exec, &|scope, e, _| {
            scope.edge = e;
            scope.accounts[0] = g.src[e as usize];
            scope.accounts[1] = g.dst[e as usize];
        });
        let subject_is_dst = self.group == Group::Payee;
        let mut findings = Vec::new();
        for (key, mut edges) in groups {
            edges.sort_unstable_by_key(|&e| (g.ts[e as usize], e));
            let first = g.ts[edges[0] as usize];
            let last = g.ts[edges[edges.len() - 1] as usize];
            let windows = self.windows.unwrap_or(Windows::whole());
            let whole = self.windows.is_none();
            let range = if whole {
                0..=0
            } else {
                windows.covering(first, last, exec.zone)
            };
            // Shifts are fixed per group: evaluated with its merchant and account.
            let mut gs = Scope::new(g, exec.zone);
            gs.edge = edges[0];
            if self.group != Group::Merchant {
                gs.accounts[0] = key as AccountId;
            }
            let shift_ms: Vec<i64> = self
                .shifts
                .iter()
                .map(|p| {
                    p.as_ref().map_or(0, |p| {
                        let hours = p.eval(&gs).as_f64();
                        if hours.is_finite() {
                            (hours * 3_600_000.0) as i64
                        } else {
                            0
                        }
                    })
                })
                .collect();
            for k in range {
    if exec.stopped() {
                    return findings;
                }
                let (from, until) = if whole {
                    (first, last + 1)
                } else {
                    windows.bounds(k, exec.zone)
                };
                let slice = time_slice(g, &edges, from, until);
                if slice.is_empty() {
                    continue;
                }
                let metrics: Vec<_> = self
                    .aggregates
                    .iter()
                    .zip(&shift_ms)
                    .map(|(a, &shift)| {
                        let edges = if shift == 0 {
                            slice
                        } else {
                            time_slice(g, &edges, from + shift, until + shift)
                        };
                        let view = [EdgeSet {
                            edges,
                            subject_is_dst,
                        }];
                        aggregate::compute(a, g, &view, &masks, None, exec.exponent)
                    })
                    .collect();
                let mut cs = Scope::new(g, exec.zone);
                cs.metrics = &metrics;
                cs.edge = slice[0];
                if self.group != Group::Merchant {
                    cs.accounts[0] = key as AccountId;
                }
                if !self.condition.test(&cs) {
                    continue;
                }
                let subject = match self.group {
                    Group::Merchant => Subject {
                        kind: SubjectKind::Merchant,
                        id: g.merchants()[key as usize].merchant_id.clone(),
                    },
                    _ => Subject {
                        kind: SubjectKind::Account,
                        id: g.account_name(key as AccountId).to_string(),
                    },
                };
                // Evidence: the window's transactions and those of shifted windows.
                let mut evidence = slice.to_vec();
                let mut shifted: Vec<i64> = shift_ms.iter().copied().filter(|&s| s != 0).collect();
                shifted.sort_unstable();
                shifted.dedup();
                for s in shifted {
                    evidence.extend_from_slice(time_slice(g, &edges, from + s, until + s));
                }
                evidence.sort_unstable();
                evidence.dedup();
                let accounts = evidence
                    .iter()
                    .flat_map(|&e| [g.src[e as usize], g.dst[e as usize]])
                    .collect();
                findings.push(Finding {
                    subject,
                    from,
                    until,
                    window_index: k,
                    metrics,
                    edges: evidence,
                    accounts,
                });
            }
        }
        findings
    }
}
