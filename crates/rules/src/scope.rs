//! The variables detectors bind for rule expressions (`tx.*`, account bindings such as
//! `hub.*`, `merchant.*`, aggregate results) and the evaluation scope that reads them from
//! the temporal graph.

use std::cell::RefCell;

use super::expr::{Env, Schema, Ty, Val, VarId};
use clearwatch_graph::{AccountId, EdgeId, TemporalGraph};
use clearwatch_model::Zone;

const TX: u16 = 0;
const MERCHANT: u16 = 10;
const METRIC: u16 = 11;
/// Account bindings use sources 1..=8.
pub const MAX_ACCOUNT_SLOTS: usize = 8;

pub const NONE: u32 = u32::MAX;

fn var(source: u16, field: u16) -> VarId {
    (source << 8) | field
}

/// Whether `id` is a text field that is `""` when the data lack it: an account's holder,
/// name or region; a merchant's registry fields; a transaction's channel, region or
/// merchant id. Identifiers of accounts and transactions are always present.
pub fn is_optional_text(id: VarId) -> bool {
    let (source, field) = (id >> 8, id & 0xff);
    match source {
        TX => matches!(field, 6..=8),
        MERCHANT => matches!(field, 0 | 2..=6),
        1..=8 => matches!(field, 5..=7),
        _ => false,
    }
}

/// Whether `id` is an account field computed over the whole loaded period (`out_count`,
/// `payers`, `in_median`…): data added at any time changes it, so a rule that reads one
/// is re-evaluated in full by an incremental scan.
pub fn is_whole_period(id: VarId) -> bool {
    let (source, field) = (id >> 8, usize::from(id & 0xff));
    (1..=MAX_ACCOUNT_SLOTS as u16).contains(&source)
        && ACCOUNT_FIELDS.get(field).is_some_and(|(name, _, _)| {
            matches!(
                *name,
                "out_count"
                    | "in_count"
                    | "first_ts"
                    | "last_ts"
                    | "payers"
                    | "payees"
                    | "in_median"
                    | "out_median"
                    | "inferred_role"
            )
        })
}

/// `tx.*`: the transaction under evaluation.
pub const TX_FIELDS: &[(&str, Ty, &str)] = &[
    ("id", Ty::Str, "transaction id"),
    ("amount", Ty::Float, "amount in major units of its currency"),
    (
        "type",
        Ty::Str,
        "payment, settlement, transfer, cash_in, cash_out, fee or refund",
    ),
    (
        "ts",
        Ty::Int,
        "time, milliseconds since the Unix epoch (UTC)",
    ),
    ("hour", Ty::Int, "hour of day, 0-23, UTC"),
    ("weekday", Ty::Int, "day of week, 0 = Monday, UTC"),
    ("channel", Ty::Str, "channel, or \"\""),
    ("region", Ty::Str, "region, or \"\""),
    ("merchant", Ty::Str, "merchant of record, or \"\""),
    ("currency", Ty::Str, "ISO 4217 code"),
    (
        "local_hour",
        Ty::Int,
        "hour of day, 0-23, in the rule's time zone (its `time_zone`, else its folder's `_shared`, else UTC)",
    ),
    (
        "local_weekday",
        Ty::Int,
        "day of week, 0 = Monday, in the rule's time zone",
    ),
    (
        "local_date",
        Ty::Int,
        "calendar date in the rule's time zone, as the number yyyymmdd (20260305)",
    ),
];

/// Fields of every account binding (`hub.*`, `peer.*`, `node.*`, …).
pub const ACCOUNT_FIELDS: &[(&str, Ty, &str)] = &[
    ("id", Ty::Str, "account id"),
    (
        "role",
        Ty::Str,
        "acquirer, merchant, agent, individual, bank or unknown",
    ),
    ("kind", Ty::Str, "personal, corporate, or \"\" when unknown"),
    ("licensed", Ty::Bool, "a licensed institution"),
    ("registered", Ty::Bool, "present in the account registry"),
    ("holder", Ty::Str, "holder id, or \"\""),
    ("name", Ty::Str, "holder name, or \"\""),
    ("region", Ty::Str, "region, or \"\""),
    (
        "out_count",
        Ty::Int,
        "transactions the account sent over the whole loaded period",
    ),
    (
        "in_count",
        Ty::Int,
        "transactions the account received over the whole loaded period",
    ),
    (
        "first_ts",
        Ty::Int,
        "time of its first transaction (ms since epoch)",
    ),
    (
        "last_ts",
        Ty::Int,
        "time of its last transaction (ms since epoch)",
    ),
    (
        "payers",
        Ty::Int,
        "distinct accounts that paid it over the whole loaded period",
    ),
    (
        "payees",
        Ty::Int,
        "distinct accounts it paid over the whole loaded period",
    ),
    (
        "own_merchant_account",
        Ty::Bool,
        "the registered settlement account of a merchant whose holder is not known to differ from its own",
    ),
    (
        "in_median",
        Ty::Float,
        "median amount it received over the whole loaded period, in major units (0 if none)",
    ),
    (
        "out_median",
        Ty::Float,
        "median amount it sent over the whole loaded period, in major units (0 if none)",
    ),
    (
        "holds_merchant",
        Ty::Bool,
        "its holder is known and holds a merchant of the registry, whatever account that merchant settles into",
    ),
    (
        "inferred_role",
        Ty::Str,
        "the role its behaviour over the loaded period shows where the registry's `role` is unknown: acquirer (collects payments from 20+ payers and settles 5+ accounts, settlements being at least half of what it sends) or merchant (paid by 20+ payers, or paid settlement money by an acquirer, and settling nobody); unknown otherwise (docs/rules.md, Inferred roles)",
    ),
];

/// `merchant.*`: the merchant of record of the transaction, from the registry.
pub const MERCHANT_FIELDS: &[(&str, Ty, &str)] = &[
    ("id", Ty::Str, "merchant id, or \"\""),
    ("registered", Ty::Bool, "present in the merchant registry"),
    ("holder", Ty::Str, "the merchant's legal entity (holder id)"),
    ("name", Ty::Str, "legal name"),
    (
        "settlement_account",
        Ty::Str,
        "registered settlement account",
    ),
    ("acquirer", Ty::Str, "acquirer account"),
    ("mcc", Ty::Str, "merchant category code"),
    (
        "cycle_days",
        Ty::Int,
        "contracted settlement cycle T+N, or -1",
    ),
];

/// Vocabularies, in the order of the model enums (their codes).
const TX_TYPES: &[&str] = &[
    "payment",
    "settlement",
    "transfer",
    "cash_in",
    "cash_out",
    "fee",
    "refund",
];
const ROLES: &[&str] = &[
    "acquirer",
    "merchant",
    "agent",
    "individual",
    "bank",
    "unknown",
];
const KINDS: &[&str] = &["personal", "corporate", ""];
const TX_TYPE_FIELD: u16 = 2;
/// `tx.type`, whose codes are [`clearwatch_model::TxType`]'s (see [`Program::required_codes`]).
///
/// [`Program::required_codes`]: super::expr::Program::required_codes
pub const TX_TYPE: VarId = (TX << 8) | TX_TYPE_FIELD;
const ROLE_FIELD: u16 = 1;
const KIND_FIELD: u16 = 2;
const INFERRED_ROLE_FIELD: u16 = 18;

pub fn add_tx(schema: &mut Schema) {
    for (i, (name, ty, _)) in TX_FIELDS.iter().enumerate() {
        let id = var(TX, i as u16);
        if i as u16 == TX_TYPE_FIELD {
            schema.var_enum(&format!("tx.{name}"), id, TX_TYPES);
        } else {
            schema.var(&format!("tx.{name}"), id, *ty);
        }
    }
}

pub fn add_account(schema: &mut Schema, binding: &str, slot: usize) {
    assert!(slot < MAX_ACCOUNT_SLOTS, "account slot out of range");
    for (i, (name, ty, _)) in ACCOUNT_FIELDS.iter().enumerate() {
        let id = var(1 + slot as u16, i as u16);
        let name = format!("{binding}.{name}");
        match i as u16 {
            ROLE_FIELD | INFERRED_ROLE_FIELD => schema.var_enum(&name, id, ROLES),
            KIND_FIELD => schema.var_enum(&name, id, KINDS),
            _ => schema.var(&name, id, *ty),
        };
    }
}

pub fn add_merchant(schema: &mut Schema) {
    for (i, (name, ty, _)) in MERCHANT_FIELDS.iter().enumerate() {
        schema.var(&format!("merchant.{name}"), var(MERCHANT, i as u16), *ty);
    }
}

/// Metric (aggregate) names, in order; their values come from [`Scope::metrics`].
pub fn add_metrics(schema: &mut Schema, names: &[(String, Ty)]) {
    for (i, (name, ty)) in names.iter().enumerate() {
        schema.var(name, var(METRIC, i as u16), *ty);
    }
}

/// A computed aggregate value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    Int(i64),
    Float(f64),
    /// Minor units, with the currency exponent.
    Money(i64, u32),
}

impl Metric {
    pub fn val(self) -> Val<'static> {
        match self {
            Metric::Int(i) => Val::Int(i),
            Metric::Float(x) if x.is_finite() => Val::Float(x),
            Metric::Float(_) => Val::Null,
            Metric::Money(m, exp) => Val::Float(m as f64 / 10f64.powi(exp as i32)),
        }
    }
}

/// What expressions see: the graph plus the bound edge, accounts, merchant and metrics.
pub struct Scope<'g> {
    pub g: &'g TemporalGraph,
    pub edge: EdgeId,
    pub accounts: [AccountId; MAX_ACCOUNT_SLOTS],
    pub metrics: &'g [Metric],
    /// The zone of `tx.local_*`.
    pub zone: Zone,
}

impl<'g> Scope<'g> {
    pub fn new(g: &'g TemporalGraph, zone: Zone) -> Self {
        Scope {
            g,
            edge: NONE,
            accounts: [NONE; MAX_ACCOUNT_SLOTS],
            metrics: &[],
            zone,
        }
    }

    fn account(&self, slot: usize, field: u16) -> Val<'_> {
        let a = self.accounts[slot];
        if a == NONE {
            return Val::Null;
        }
        let attrs = self.g.attrs(a);
        let s = |v: &'g Option<String>| Val::Str(v.as_deref().unwrap_or(""));
        match field {
            0 => Val::Str(self.g.account_name(a)),
            1 => Val::Str(attrs.role.as_str()),
            2 => Val::Str(attrs.kind.map_or("", |k| k.as_str())),
            3 => Val::Bool(attrs.licensed),
            4 => Val::Bool(attrs.registered),
            5 => s(&attrs.holder),
            6 => s(&attrs.holder_name),
            7 => s(&attrs.region),
            8 => Val::Int(self.g.out_edges(a).len() as i64),
            9 => Val::Int(self.g.in_edges(a).len() as i64),
            10 | 11 => {
                let outs = self.g.out_edges(a);
                let ins = self.g.in_edges(a);
                let ends = [
                    (!outs.is_empty()).then(|| {
                        (
                            self.g.ts[outs.start as usize],
                            self.g.ts[outs.end as usize - 1],
                        )
                    }),
                    ins.first()
                        .zip(ins.last())
                        .map(|(f, l)| (self.g.ts[*f as usize], self.g.ts[*l as usize])),
                ];
                let (lo, hi) = ends
                    .iter()
                    .flatten()
                    .fold((i64::MAX, i64::MIN), |(lo, hi), (f, l)| {
                        (lo.min(*f), hi.max(*l))
                    });
                if lo > hi {
                    Val::Null
                } else {
                    Val::Int(if field == 10 { lo } else { hi })
                }
            }
            12 => Val::Int(i64::from(self.g.distinct_peers(a)[0])),
            13 => Val::Int(i64::from(self.g.distinct_peers(a)[1])),
            14 => Val::Bool(self.g.own_merchant_account(a)),
            15 => Val::Float(self.g.typical_amounts(a)[0]),
            16 => Val::Float(self.g.typical_amounts(a)[1]),
            17 => Val::Bool(self.g.holds_merchant(a)),
            INFERRED_ROLE_FIELD => Val::Str(self.g.inferred_role(a).as_str()),
            _ => Val::Null,
        }
    }

    fn tx(&self, field: u16) -> Val<'_> {
        let e = self.edge;
        if e == NONE {
            return Val::Null;
        }
        let g = self.g;
        let i = e as usize;
        match field {
            0 => Val::Str(g.tx_id(e)),
            1 => Val::Float(g.amount_major(e)),
            2 => Val::Str(g.tx_type[i].as_str()),
            3 => Val::Int(g.ts[i]),
            4 => Val::Int(g.ts[i].rem_euclid(86_400_000) / 3_600_000),
            // 1970-01-01 was a Thursday (3 when Monday is 0).
            5 => Val::Int((g.ts[i].div_euclid(86_400_000) + 3).rem_euclid(7)),
            6 => Val::Str(g.channel(e)),
            7 => Val::Str(g.region(e)),
            8 => Val::Str(g.merchant(e).map_or("", |m| m.merchant_id.as_str())),
            9 => Val::Str(g.currency(e).code()),
            10 => Val::Int(self.zone.hour(g.ts[i])),
            11 => Val::Int(self.zone.weekday(g.ts[i])),
            12 => Val::Int(self.zone.date_number(g.ts[i])),
            _ => Val::Null,
        }
    }

    fn merchant(&self, field: u16) -> Val<'_> {
        if self.edge == NONE {
            return Val::Null;
        }
        let Some(m) = self.g.merchant_index(self.edge) else {
            return match field {
                1 => Val::Bool(false),
                7 => Val::Int(-1),
                _ => Val::Str(""),
            };
        };
        let rec = &self.g.merchants()[m];
        let s = |v: &'g Option<String>| Val::Str(v.as_deref().unwrap_or(""));
        match field {
            0 => Val::Str(&rec.merchant_id),
            1 => Val::Bool(self.g.merchant_registered(m)),
            2 => s(&rec.holder_id),
            3 => s(&rec.legal_name),
            4 => s(&rec.settlement_account),
            5 => s(&rec.acquirer),
            6 => s(&rec.mcc),
            7 => Val::Int(rec.settlement_cycle_days.map_or(-1, i64::from)),
            _ => Val::Null,
        }
    }
}

impl Env for Scope<'_> {
    fn code(&self, v: VarId) -> i64 {
        let (source, field) = (v >> 8, v & 0xff);
        match (source, field) {
            (TX, TX_TYPE_FIELD) if self.edge != NONE => self.g.tx_type[self.edge as usize] as i64,
            (1..=8, ROLE_FIELD | KIND_FIELD | INFERRED_ROLE_FIELD) => {
                let a = self.accounts[source as usize - 1];
                if a == NONE {
                    return -1;
                }
                let attrs = self.g.attrs(a);
                match field {
                    ROLE_FIELD => attrs.role as i64,
                    KIND_FIELD => attrs.kind.map_or(2, |k| k as i64),
                    _ => self.g.inferred_role(a) as i64,
                }
            }
            _ => -1,
        }
    }

    fn get(&self, v: VarId) -> Val<'_> {
        let (source, field) = (v >> 8, v & 0xff);
        match source {
            TX => self.tx(field),
            1..=8 => self.account(source as usize - 1, field),
            MERCHANT => self.merchant(field),
            METRIC => self
                .metrics
                .get(field as usize)
                .map_or(Val::Null, |m| m.val()),
            _ => Val::Null,
        }
    }
}

/// The scope of a condition whose metrics are computed when it first reads them: `&&`,
/// `||` and `?:` short-circuit, so a window that fails a cheap test never pays for an
/// expensive aggregate. The values are the same as with every metric computed up front.
pub struct LazyMetrics<'s, 'g> {
    scope: &'s Scope<'g>,
    values: RefCell<&'s mut Vec<Option<Metric>>>,
    compute: RefCell<&'s mut dyn FnMut(usize) -> Metric>,
}

impl<'s, 'g> LazyMetrics<'s, 'g> {
    /// `scope` binds everything but the metrics; `compute(i)` gives metric `i` of `n`;
    /// `cache` is a buffer reused from window to window.
    pub fn new(
        scope: &'s Scope<'g>,
        cache: &'s mut Vec<Option<Metric>>,
        n: usize,
        compute: &'s mut dyn FnMut(usize) -> Metric,
    ) -> Self {
        cache.clear();
        cache.resize(n, None);
        LazyMetrics {
            scope,
            values: RefCell::new(cache),
            compute: RefCell::new(compute),
        }
    }

    fn metric(&self, i: usize) -> Option<Metric> {
        let cached = *self.values.borrow().get(i)?;
        Some(cached.unwrap_or_else(|| {
            let m = (self.compute.borrow_mut())(i);
            self.values.borrow_mut()[i] = Some(m);
            m
        }))
    }

    /// Every metric, computing those the condition did not read.
    pub fn into_metrics(self) -> Vec<Metric> {
        let compute = self.compute.into_inner();
        self.values
            .into_inner()
            .iter()
            .enumerate()
            .map(|(i, m)| m.unwrap_or_else(|| compute(i)))
            .collect()
    }
}

impl Env for LazyMetrics<'_, '_> {
    fn code(&self, v: VarId) -> i64 {
        self.scope.code(v)
    }

    fn get(&self, v: VarId) -> Val<'_> {
        if v >> 8 == METRIC {
            return self
                .metric((v & 0xff) as usize)
                .map_or(Val::Null, Metric::val);
        }
        self.scope.get(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clearwatch_model::{AccountKind, Role, TxType};

    #[test]
    fn vocabularies_follow_the_model_enums() {
        for (i, t) in TxType::ALL.iter().enumerate() {
            assert_eq!(TX_TYPES[i], t.as_str());
            assert_eq!(*t as usize, i);
        }
        for (i, r) in Role::ALL.iter().enumerate() {
            assert_eq!(ROLES[i], r.as_str());
            assert_eq!(*r as usize, i);
        }
        for (i, k) in AccountKind::ALL.iter().enumerate() {
            assert_eq!(KINDS[i], k.as_str());
        }
        assert_eq!(TX_FIELDS[TX_TYPE_FIELD as usize].0, "type");
        assert_eq!(ACCOUNT_FIELDS[ROLE_FIELD as usize].0, "role");
        assert_eq!(ACCOUNT_FIELDS[KIND_FIELD as usize].0, "kind");
        assert_eq!(
            ACCOUNT_FIELDS[INFERRED_ROLE_FIELD as usize].0,
            "inferred_role"
        );
        // Data added anywhere can change an inferred role: an incremental scan re-reads
        // every window of a rule that reads one.
        assert!(is_whole_period(var(1, INFERRED_ROLE_FIELD)));
        assert!(!is_whole_period(var(1, ROLE_FIELD)));
    }
    #[test]
    fn lazy_metrics_compute_only_what_the_condition_reads() {
        use crate::expr::{Schema, compile};
        let g = clearwatch_graph::GraphBuilder::new().build();
        let mut schema = Schema::new();
        add_metrics(&mut schema, &[("a".into(), Ty::Int), ("b".into(), Ty::Int)]);
        let cond = compile("a > 1 && b > 1", &schema, Ty::Bool).unwrap();
        let scope = Scope::new(&g, clearwatch_model::Zone::UTC);
        for (a, want_calls, want) in [(0, vec![0], false), (5, vec![0, 1], true)] {
            let mut calls = Vec::new();
            let mut compute = |i: usize| {
                calls.push(i);
                Metric::Int(if i == 0 { a } else { 7 })
            };
            let mut cache = Vec::new();
            let lazy = LazyMetrics::new(&scope, &mut cache, 2, &mut compute);
            assert_eq!(cond.test(&lazy), want);
            assert_eq!(lazy.into_metrics(), vec![Metric::Int(a), Metric::Int(7)]);
            assert_eq!(calls[..want_calls.len()], want_calls[..]);
            assert_eq!(calls.len(), 2, "each metric is computed once: {calls:?}");
        }
    }
}
