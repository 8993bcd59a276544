//! The columnar temporal graph. Accounts are interned to dense `u32` ids; transactions
//! are held column-wise, sorted by (source, time), with a second index sorted by
//! (destination, time), so every account's outgoing and incoming edges are time-ordered
//! slices and window queries are binary searches. petgraph serves whole-graph algorithms
//! (strongly connected components) and extracted evidence subgraphs.

mod arena;
pub mod load;

use std::collections::HashMap;
use std::ops::Range;

/// The interning maps of account, merchant and label ids: looked up two to three times per
/// transaction, where SipHash (std's default) was a tenth of the load. foldhash is fast on
/// short keys and seeded per process, so an input cannot be crafted ahead of time to make
/// ids collide. Keys of up to 24 bytes are stored inline in the table (`CompactString`),
/// so checking a hit reads the bucket's own cache line instead of following a pointer.
type IdMap<V> = HashMap<compact_str::CompactString, V, foldhash::fast::RandomState>;

use petgraph::graph::{DiGraph, NodeIndex};

pub use arena::StrArena;

use clearwatch_model::roles::{RoleEvidence, infer_role};
use clearwatch_model::{
    Account, AccountKind, Currency, Merchant, Millis, Role, Transaction, TxType,
};

/// Dense account id.
pub type AccountId = u32;
/// Index of an edge (transaction) in the graph's columns.
pub type EdgeId = u32;

/// Marks "no merchant" in [`TemporalGraph::merchant`].
pub const NO_MERCHANT: u32 = u32::MAX;

/// What the graph knows of an account beyond its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAttrs {
    pub role: Role,
    pub kind: Option<AccountKind>,
    pub licensed: bool,
    /// Registered in the account file (otherwise known only from transactions).
    pub registered: bool,
    pub holder: Option<String>,
    pub holder_name: Option<String>,
    pub region: Option<String>,
}

impl Default for AccountAttrs {
    fn default() -> Self {
        AccountAttrs {
            role: Role::Unknown,
            kind: None,
            licensed: false,
            registered: false,
            holder: None,
            holder_name: None,
            region: None,
        }
    }
}

/// Collects transactions, accounts and merchants in any order, then sorts them into a
/// [`TemporalGraph`].
#[derive(Default)]
pub struct GraphBuilder {
    ids: IdMap<AccountId>,
    names: StrArena,
    attrs: Vec<AccountAttrs>,
    src: Vec<u32>,
    dst: Vec<u32>,
    ts: Vec<Millis>,
    amount: Vec<i64>,
    tx_type: Vec<TxType>,
    currency: Vec<u8>,
    merchant: Vec<u32>,
    channel: Vec<u16>,
    region: Vec<u16>,
    tx_ids: StrArena,
    currencies: Vec<Currency>,
    merchant_ids: IdMap<u32>,
    merchants: Vec<Merchant>,
    merchant_registered: Vec<bool>,
    labels: Dictionary,
}

/// Small vocabularies (channels, regions) interned to `u16`; index 0 is "absent".
#[derive(Debug, Clone)]
pub struct Dictionary {
    ids: IdMap<u16>,
    values: Vec<String>,
}

impl Default for Dictionary {
    fn default() -> Self {
        Dictionary {
            ids: IdMap::default(),
            values: vec![String::new()],
        }
    }
}

impl Dictionary {
    /// Interns `v`; past 65,535 distinct values the rest share the absent slot.
    fn intern(&mut self, v: Option<&str>) -> u16 {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            return 0;
        };
        if let Some(&i) = self.ids.get(v) {
            return i;
        }
        let Ok(i) = u16::try_from(self.values.len()) else {
            return 0;
        };
        self.ids.insert(v.into(), i);
        self.values.push(v.to_string());
        i
    }

    pub fn get(&self, i: u16) -> &str {
        &self.values[i as usize]
    }
}

/// One transaction as the graph takes it.
#[derive(Debug, Clone, Copy)]
pub struct EdgeInput<'a> {
    pub tx_id: &'a str,
    pub ts: Millis,
    pub from: &'a str,
    pub to: &'a str,
    pub amount: i64,
    pub currency: Currency,
    pub tx_type: TxType,
    pub merchant_id: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub region: Option<&'a str>,
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn account(&mut self, id: &str) -> AccountId {
        if let Some(&a) = self.ids.get(id) {
            return a;
        }
        let a = self.attrs.len() as AccountId;
        self.ids.insert(id.into(), a);
        self.names.push(id);
        self.attrs.push(AccountAttrs::default());
        a
    }

    fn merchant_index(&mut self, id: &str) -> u32 {
        if let Some(&m) = self.merchant_ids.get(id) {
            return m;
        }
        let m = self.merchants.len() as u32;
        self.merchant_ids.insert(id.into(), m);
        self.merchants.push(Merchant {
            merchant_id: id.to_string(),
            legal_name: None,
            holder_id: None,
            settlement_account: None,
            acquirer: None,
            mcc: None,
            settlement_cycle_days: None,
        });
        self.merchant_registered.push(false);
        m
    }

    fn currency_index(&mut self, c: Currency) -> u8 {
        match self.currencies.iter().position(|&x| x == c) {
            Some(i) => i as u8,
            None => {
                self.currencies.push(c);
                (self.currencies.len() - 1) as u8
            }
        }
    }

    /// Adds one transaction edge.
    pub fn add_edge(&mut self, e: EdgeInput<'_>) {
        let s = self.account(e.from);
        let d = self.account(e.to);
        let c = self.currency_index(e.currency);
        let m = e
            .merchant_id
            .map_or(NO_MERCHANT, |m| self.merchant_index(m));
        self.src.push(s);
        self.dst.push(d);
        self.ts.push(e.ts);
        self.amount.push(e.amount);
        self.tx_type.push(e.tx_type);
        self.currency.push(c);
        self.merchant.push(m);
        let ch = self.labels.intern(e.channel);
        self.channel.push(ch);
        let r = self.labels.intern(e.region);
        self.region.push(r);
        self.tx_ids.push(e.tx_id);
    }

    pub fn add_transaction(&mut self, t: &Transaction) {
        self.add_edge(EdgeInput {
            tx_id: &t.tx_id,
            ts: t.ts,
            from: &t.from,
            to: &t.to,
            amount: t.amount,
            currency: t.currency,
            tx_type: t.tx_type,
            merchant_id: t.merchant_id.as_deref(),
            channel: t.channel.as_deref(),
            region: t.region.as_deref(),
        });
    }

    pub fn add_account(&mut self, a: &Account) {
        let id = self.account(&a.account_id);
        self.attrs[id as usize] = AccountAttrs {
            role: a.role,
            kind: a.kind,
            licensed: a.licensed,
            registered: true,
            holder: a.holder_id.clone(),
            holder_name: a.holder_name.clone(),
            region: a.region.clone(),
        };
    }

    pub fn add_merchant(&mut self, m: &Merchant) {
        let i = self.merchant_index(&m.merchant_id);
        self.merchants[i as usize] = m.clone();
        self.merchant_registered[i as usize] = true;
        if let Some(acct) = m.settlement_account.as_deref() {
            self.account(acct);
        }
    }

    /// Numbers accounts in name order (so results never depend on input order), sorts
    /// edges by (source, time, tx id) and builds both indexes.
    pub fn build(mut self) -> TemporalGraph {
        // Currencies in code order, as accounts in name order: which currency a scan
        // evaluates first must not depend on the order rows were read in.
        let mut by_code: Vec<usize> = (0..self.currencies.len()).collect();
        by_code.sort_unstable_by_key(|&c| self.currencies[c].code());
        let mut renumber = vec![0u8; by_code.len()];
        for (new, &old) in by_code.iter().enumerate() {
            renumber[old] = new as u8;
        }
        for c in self.currency.iter_mut() {
            *c = renumber[usize::from(*c)];
        }
        self.currencies = by_code.iter().map(|&c| self.currencies[c]).collect();
        let n = self.attrs.len();
        let mut by_name: Vec<u32> = (0..n as u32).collect();
        by_name
            .sort_unstable_by(|&a, &b| self.names.get(a as usize).cmp(self.names.get(b as usize)));
        let mut new_id = vec![0u32; n];
        for (new, &old) in by_name.iter().enumerate() {
            new_id[old as usize] = new as u32;
        }
        for v in self.src.iter_mut().chain(self.dst.iter_mut()) {
            *v = new_id[*v as usize];
        }
        let mut names = StrArena::with_capacity(n, self.names.byte_len());
        let mut attrs = Vec::with_capacity(n);
        for &old in &by_name {
            names.push(self.names.get(old as usize));
            attrs.push(std::mem::take(&mut self.attrs[old as usize]));
        }
        self.names = names;
        self.attrs = attrs;
        for v in self.ids.values_mut() {
            *v = new_id[*v as usize];
        }
        let order = edge_order(n, &self.src, &self.ts, &self.tx_ids);
        // Each input column is freed as soon as its permuted copy exists, so the build
        // never holds two full copies of the table.
        let (src, dst, ts) = (
            std::mem::take(&mut self.src),
            std::mem::take(&mut self.dst),
            std::mem::take(&mut self.ts),
        );
        let rest = (
            std::mem::take(&mut self.merchant),
            std::mem::take(&mut self.channel),
            std::mem::take(&mut self.region),
            std::mem::take(&mut self.amount),
            std::mem::take(&mut self.tx_type),
            std::mem::take(&mut self.currency),
        );
        // Two threads: the columns the indexes are built from, and the rest.
        let ((src, dst, ts, in_edges), (merchant, channel, region, amount, tx_type, currency)) =
            std::thread::scope(|scope| {
                let order = &order;
                let rest = scope.spawn(move || {
                    let (merchant, channel, region, amount, tx_type, currency) = rest;
                    (
                        permuted(order, merchant),
                        permuted(order, channel),
                        permuted(order, region),
                        permuted(order, amount),
                        permuted(order, tx_type),
                        permuted(order, currency),
                    )
                });
                let (src, dst, ts) = (
                    permuted(order, src),
                    permuted(order, dst),
                    permuted(order, ts),
                );
                // Edge ids break ties: (source, time, id) order among equal (destination,
                // time).
                let in_edges = account_time_order(n, &dst, |i| ts[i as usize]);
                let rest = rest.join().expect("column permutation does not panic");
                ((src, dst, ts, in_edges), rest)
            });
        let out_start = offsets(n, &src);
        let in_start = offsets(n, &dst);
        drop(self.ids);
        TemporalGraph {
            names: self.names,
            attrs: self.attrs,
            src,
            dst,
            ts,
            amount,
            tx_type,
            currency,
            merchant,
            channel,
            region,
            labels: self.labels,
            tx_ids: self.tx_ids,
            tx_row: order,
            out_start,
            in_edges,
            in_start,
            currencies: self.currencies,
            merchants: self.merchants,
            merchant_registered: self.merchant_registered,
            distinct_peers: std::sync::OnceLock::new(),
            typical_amounts: std::sync::OnceLock::new(),
            own_merchant_account: std::sync::OnceLock::new(),
            holds_merchant: std::sync::OnceLock::new(),
            inferred_roles: std::sync::OnceLock::new(),
        }
    }
}

/// `col` in `order`; the input column is dropped on return.
fn permuted<T: Copy>(order: &[u32], col: Vec<T>) -> Vec<T> {
    order.iter().map(|&i| col[i as usize]).collect()
}

/// Indices `0..keys.len()` in `(keys[i], times[i], i)` order, `accounts` the number of
/// distinct keys. A counting sort by account, then a sort of each account's run by time:
/// it needs 4 bytes per edge besides its output, where sorting packed 16-byte keys needed
/// 16 (at ten million edges, the difference is the build's peak memory).
fn account_time_order(accounts: usize, keys: &[u32], times: impl Fn(u32) -> Millis) -> Vec<u32> {
    let start = offsets(accounts, keys);
    let mut next = start.clone();
    let mut order = vec![0u32; keys.len()];
    // In increasing index, so each account's run is in index order.
    for (i, &k) in keys.iter().enumerate() {
        order[next[k as usize] as usize] = i as u32;
        next[k as usize] += 1;
    }
    let mut run: Vec<(Millis, u32)> = Vec::new();
    for a in 0..accounts {
        let r = start[a] as usize..start[a + 1] as usize;
        if r.len() > 1 {
            run.clear();
            run.extend(order[r.clone()].iter().map(|&i| (times(i), i)));
            run.sort_unstable();
            for (slot, &(_, i)) in order[r].iter_mut().zip(&run) {
                *slot = i;
            }
        }
    }
    order
}

/// Edge indices in (source, time, transaction id) order.
fn edge_order(accounts: usize, src: &[u32], ts: &[Millis], tx_ids: &StrArena) -> Vec<u32> {
    let mut order = account_time_order(accounts, src, |i| ts[i as usize]);
    // Edges of one source at one time are ordered by transaction id.
    let key = |i: u32| (src[i as usize], ts[i as usize]);
    let mut lo = 0;
    while lo < order.len() {
        let mut hi = lo + 1;
        while hi < order.len() && key(order[hi]) == key(order[lo]) {
            hi += 1;
        }
        if hi - lo > 1 {
            order[lo..hi].sort_by(|&a, &b| {
                tx_ids
                    .get(a as usize)
                    .cmp(tx_ids.get(b as usize))
                    .then(a.cmp(&b))
            });
        }
        lo = hi;
    }
    order
}

/// Where each of `n` accounts' runs starts when `keys` (accounts, in any order) are
/// grouped by account; the last entry is `keys.len()`.
fn offsets(n: usize, keys: &[u32]) -> Vec<u32> {
    let mut start = vec![0u32; n + 1];
    for &k in keys {
        start[k as usize + 1] += 1;
    }
    for a in 0..n {
        start[a + 1] += start[a];
    }
    start
}

/// The built graph. Columns are indexed by [`EdgeId`].
pub struct TemporalGraph {
    names: StrArena,
    attrs: Vec<AccountAttrs>,
    pub src: Vec<AccountId>,
    pub dst: Vec<AccountId>,
    pub ts: Vec<Millis>,
    pub amount: Vec<i64>,
    pub tx_type: Vec<TxType>,
    currency: Vec<u8>,
    merchant: Vec<u32>,
    channel: Vec<u16>,
    region: Vec<u16>,
    labels: Dictionary,
    /// Transaction ids in input order; `tx_row` maps an edge to its input position.
    tx_ids: StrArena,
    tx_row: Vec<u32>,
    out_start: Vec<u32>,
    in_edges: Vec<EdgeId>,
    in_start: Vec<u32>,
    currencies: Vec<Currency>,
    merchants: Vec<Merchant>,
    merchant_registered: Vec<bool>,
    /// Per account, distinct payers and distinct payees over the loaded period, computed
    /// on first use.
    distinct_peers: std::sync::OnceLock<Vec<[u32; 2]>>,
    /// Per account, the median amount received and sent over the loaded period, in major
    /// units, computed on first use.
    typical_amounts: std::sync::OnceLock<Vec<[f64; 2]>>,
    /// Per account, whether it is the registered settlement account of a merchant of its
    /// own holder, computed on first use.
    own_merchant_account: std::sync::OnceLock<Vec<bool>>,
    /// Per account, whether its holder holds a merchant of the registry, computed on first
    /// use.
    holds_merchant: std::sync::OnceLock<Vec<bool>>,
    /// Per account, the role its behaviour shows where the registry gives none, computed
    /// on first use.
    inferred_roles: std::sync::OnceLock<Vec<Role>>,
}

/// How many distinct accounts `ends` names, sorted and deduplicated in `buf` (reused
/// across accounts).
fn count_distinct(buf: &mut Vec<AccountId>, ends: &mut dyn Iterator<Item = AccountId>) -> u32 {
    buf.clear();
    buf.extend(ends);
    buf.sort_unstable();
    buf.dedup();
    buf.len() as u32
}

impl TemporalGraph {
    /// Whether `a` is the registered settlement account of a merchant whose holder is not
    /// known to differ from the account's holder: a sole trader's or a company's own
    /// business account. A holder unknown on either side is not a difference (an absent
    /// value is never evidence); a known different holder is TC-01's non-same-name case.
    pub fn own_merchant_account(&self, a: AccountId) -> bool {
        fn known(h: Option<&str>) -> Option<&str> {
            h.filter(|h| !h.is_empty())
        }
        let all = self.own_merchant_account.get_or_init(|| {
            // Per account: registered as some merchant's settlement account, and registered
            // for a merchant of a known different holder.
            let mut registered = vec![false; self.account_count()];
            let mut other_holder = vec![false; self.account_count()];
            for m in &self.merchants {
                let Some(acct) = &m.settlement_account else {
                    continue;
                };
                let Some(i) = self.find_account(acct) else {
                    continue;
                };
                let i = i as usize;
                registered[i] = true;
                if let (Some(merchant), Some(account)) = (
                    known(m.holder_id.as_deref()),
                    known(self.attrs[i].holder.as_deref()),
                ) && merchant != account
                {
                    other_holder[i] = true;
                }
            }
            registered
                .iter()
                .zip(&other_holder)
                .map(|(&r, &o)| r && !o)
                .collect::<Vec<bool>>()
        });
        all[a as usize]
    }

    /// Whether the holder of `a` is known and holds a merchant of the registry: a sole
    /// trader or a company the acquirer has vetted, whichever of its accounts it collects
    /// into. An unknown holder holds nothing (an absent value is never evidence).
    pub fn holds_merchant(&self, a: AccountId) -> bool {
        let all = self.holds_merchant.get_or_init(|| {
            let holders: std::collections::HashSet<&str> = self
                .merchants
                .iter()
                .filter_map(|m| m.holder_id.as_deref())
                .filter(|h| !h.is_empty())
                .collect();
            self.attrs
                .iter()
                .map(|at| at.holder.as_deref().is_some_and(|h| holders.contains(h)))
                .collect::<Vec<bool>>()
        });
        all[a as usize]
    }

    /// The role `a`'s behaviour shows where the registry gives it none
    /// ([`clearwatch_model::roles`]); [`Role::Unknown`] where the registry gives a role or
    /// the behaviour shows none.
    pub fn inferred_role(&self, a: AccountId) -> Role {
        let all = self.inferred_roles.get_or_init(|| {
            let mut buf = Vec::new();
            (0..self.account_count() as AccountId)
                .map(|a| {
                    let registered = self.attrs[a as usize].role;
                    if registered != Role::Unknown {
                        return Role::Unknown;
                    }
                    infer_role(registered, &self.role_evidence_with(a, &mut buf))
                        .unwrap_or(Role::Unknown)
                })
                .collect::<Vec<Role>>()
        });
        all[a as usize]
    }

    /// What `a` did over the whole loaded period, as the role inference reads it.
    pub fn role_evidence(&self, a: AccountId) -> RoleEvidence {
        self.role_evidence_with(a, &mut Vec::new())
    }

    fn role_evidence_with(&self, a: AccountId, buf: &mut Vec<AccountId>) -> RoleEvidence {
        let mut distinct = |ends: &mut dyn Iterator<Item = AccountId>| count_distinct(buf, ends);
        let ins = self.in_edges(a);
        let typed = |e: EdgeId, t: TxType| self.tx_type[e as usize] == t;
        let payment_payers = distinct(
            &mut ins
                .iter()
                .filter(|&&e| typed(e, TxType::Payment))
                .map(|&e| self.src[e as usize]),
        );
        let settlement_payees = distinct(
            &mut self
                .out_edges(a)
                .filter(|&e| typed(e, TxType::Settlement))
                .map(|e| self.dst[e as usize]),
        );
        RoleEvidence {
            payment_payers,
            settlement_payees,
            settlements_sent: self
                .out_edges(a)
                .filter(|&e| typed(e, TxType::Settlement))
                .count() as u32,
            sent: self.out_edges(a).len() as u32,
            settled_by_acquirer: ins.iter().any(|&e| {
                let payer = &self.attrs[self.src[e as usize] as usize];
                let settlement_money = typed(e, TxType::Settlement)
                    || (typed(e, TxType::Transfer) && self.merchant[e as usize] != NO_MERCHANT);
                settlement_money && (payer.role == Role::Acquirer || payer.licensed)
            }),
        }
    }

    /// Distinct accounts that paid `a`, and distinct accounts `a` paid, over the whole
    /// loaded period (every type and currency): how an account behaves, for registries
    /// that say nothing (many payers: a merchant or collector; many payees: a disburser).
    pub fn distinct_peers(&self, a: AccountId) -> [u32; 2] {
        let all = self.distinct_peers.get_or_init(|| {
            let mut buf = Vec::new();
            let mut distinct =
                |ends: &mut dyn Iterator<Item = AccountId>| count_distinct(&mut buf, ends);
            (0..self.account_count() as AccountId)
                .map(|a| {
                    let payers =
                        distinct(&mut self.in_edges(a).iter().map(|&e| self.src[e as usize]));
                    let payees = distinct(&mut self.out_edges(a).map(|e| self.dst[e as usize]));
                    [payers, payees]
                })
                .collect()
        });
        all[a as usize]
    }

    /// The median amount `a` received and the median amount it sent over the whole loaded
    /// period, in major units (the upper median of an even count; 0 without transactions):
    /// the account's own typical payment, against which one payment reads as ordinary or
    /// out of profile. The upper median keeps a single small earlier payment (a test
    /// transfer) from making the next one look unusual. Amounts of every currency are read
    /// in their major units.
    pub fn typical_amounts(&self, a: AccountId) -> [f64; 2] {
        let all = self.typical_amounts.get_or_init(|| {
            let mut buf: Vec<f64> = Vec::new();
            let mut median = |edges: &mut dyn Iterator<Item = EdgeId>| {
                buf.clear();
                buf.extend(edges.map(|e| self.amount_major(e)));
                if buf.is_empty() {
                    return 0.0;
                }
                let rank = buf.len() / 2;
                *buf.select_nth_unstable_by(rank, f64::total_cmp).1
            };
            (0..self.account_count() as AccountId)
                .map(|a| {
                    let received = median(&mut self.in_edges(a).iter().copied());
                    let sent = median(&mut self.out_edges(a));
                    [received, sent]
                })
                .collect()
        });
        all[a as usize]
    }

    pub fn account_count(&self) -> usize {
        self.attrs.len()
    }

    pub fn edge_count(&self) -> usize {
        self.src.len()
    }

    pub fn account_name(&self, a: AccountId) -> &str {
        self.names.get(a as usize)
    }

    pub fn attrs(&self, a: AccountId) -> &AccountAttrs {
        &self.attrs[a as usize]
    }

    /// The dense id of an account by its external id: a binary search, as accounts are
    /// numbered in name order.
    pub fn find_account(&self, name: &str) -> Option<AccountId> {
        let (mut lo, mut hi) = (0, self.attrs.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.names.get(mid).cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid as AccountId),
            }
        }
        None
    }

    pub fn tx_id(&self, e: EdgeId) -> &str {
        self.tx_ids.get(self.tx_row[e as usize] as usize)
    }

    pub fn currency(&self, e: EdgeId) -> Currency {
        self.currencies[self.currency[e as usize] as usize]
    }

    /// The amount of `e` in major units of its currency (yuan, not fen).
    pub fn amount_major(&self, e: EdgeId) -> f64 {
        self.amount[e as usize] as f64 / 10f64.powi(self.currency(e).exponent() as i32)
    }

    pub fn merchant(&self, e: EdgeId) -> Option<&Merchant> {
        match self.merchant[e as usize] {
            NO_MERCHANT => None,
            m => Some(&self.merchants[m as usize]),
        }
    }

    pub fn channel(&self, e: EdgeId) -> &str {
        self.labels.get(self.channel[e as usize])
    }

    pub fn region(&self, e: EdgeId) -> &str {
        self.labels.get(self.region[e as usize])
    }

    /// The merchant number of an edge, if it has one.
    pub fn merchant_index(&self, e: EdgeId) -> Option<usize> {
        match self.merchant[e as usize] {
            NO_MERCHANT => None,
            m => Some(m as usize),
        }
    }

    /// Whether the merchant came from a registry file (not only from transactions).
    pub fn merchant_registered(&self, m: usize) -> bool {
        self.merchant_registered[m]
    }

    pub fn currencies(&self) -> &[Currency] {
        &self.currencies
    }

    /// The currency index of an edge (into [`Self::currencies`]).
    pub fn currency_index(&self, e: EdgeId) -> u8 {
        self.currency[e as usize]
    }

    pub fn merchants(&self) -> &[Merchant] {
        &self.merchants
    }

    /// All outgoing edges of `a`, time-ordered.
    pub fn out_edges(&self, a: AccountId) -> Range<EdgeId> {
        self.out_start[a as usize]..self.out_start[a as usize + 1]
    }

    /// Outgoing edges of `a` with `from <= ts < until`.
    pub fn out_window(&self, a: AccountId, from: Millis, until: Millis) -> Range<EdgeId> {
        let r = self.out_edges(a);
        let ts = &self.ts[r.start as usize..r.end as usize];
        let lo = ts.partition_point(|&t| t < from);
        let hi = ts.partition_point(|&t| t < until).max(lo);
        r.start + lo as u32..r.start + hi as u32
    }

    /// All incoming edges of `a`, time-ordered.
    pub fn in_edges(&self, a: AccountId) -> &[EdgeId] {
        &self.in_edges[self.in_start[a as usize] as usize..self.in_start[a as usize + 1] as usize]
    }

    /// Incoming edges of `a` with `from <= ts < until`.
    pub fn in_window(&self, a: AccountId, from: Millis, until: Millis) -> &[EdgeId] {
        let edges = self.in_edges(a);
        let lo = edges.partition_point(|&e| self.ts[e as usize] < from);
        let hi = edges
            .partition_point(|&e| self.ts[e as usize] < until)
            .max(lo);
        &edges[lo..hi]
    }

    /// The earliest and latest transaction time.
    pub fn time_range(&self) -> Option<(Millis, Millis)> {
        let min = self.ts.iter().min()?;
        let max = self.ts.iter().max()?;
        Some((*min, *max))
    }

    /// The account graph (one edge per distinct source → destination pair) for petgraph.
    pub fn account_digraph(&self) -> DiGraph<AccountId, ()> {
        self.account_digraph_of(|_| true)
    }

    /// The account graph of the edges `keep` accepts.
    pub fn account_digraph_of(&self, keep: impl Fn(EdgeId) -> bool) -> DiGraph<AccountId, ()> {
        let mut g = DiGraph::with_capacity(self.account_count(), 0);
        for a in 0..self.account_count() as u32 {
            g.add_node(a);
        }
        for a in 0..self.account_count() as u32 {
            let mut targets: Vec<u32> = self
                .out_edges(a)
                .filter(|&e| keep(e))
                .map(|e| self.dst[e as usize])
                .collect();
            targets.sort_unstable();
            targets.dedup();
            for d in targets {
                g.add_edge(NodeIndex::new(a as usize), NodeIndex::new(d as usize), ());
            }
        }
        g
    }

    /// For each account, the number of its strongly connected component in the graph of
    /// the edges `keep` accepts, or `u32::MAX` when that component is a single account.
    pub fn component_ids(&self, keep: impl Fn(EdgeId) -> bool) -> Vec<u32> {
        let g = self.account_digraph_of(keep);
        let mut comp = vec![u32::MAX; self.account_count()];
        for (i, c) in petgraph::algo::kosaraju_scc(&g).into_iter().enumerate() {
            if c.len() > 1 {
                for n in c {
                    comp[g[n] as usize] = i as u32;
                }
            }
        }
        comp
    }

    /// Strongly connected components with more than one account (or a self-loop), each
    /// sorted, in a deterministic order.
    pub fn cyclic_components(&self) -> Vec<Vec<AccountId>> {
        let g = self.account_digraph();
        let mut comps: Vec<Vec<AccountId>> = petgraph::algo::kosaraju_scc(&g)
            .into_iter()
            .map(|c| {
                let mut v: Vec<AccountId> = c.into_iter().map(|n| g[n]).collect();
                v.sort_unstable();
                v
            })
            .filter(|c| {
                c.len() > 1
                    || g.contains_edge(NodeIndex::new(c[0] as usize), NodeIndex::new(c[0] as usize))
            })
            .collect();
        comps.sort();
        comps
    }

    /// The subgraph of the given edges, with account names as node weights and edge ids
    /// as edge weights (for evidence, the dashboard and exporters).
    pub fn subgraph(&self, edges: &[EdgeId]) -> DiGraph<String, EdgeId> {
        let mut g = DiGraph::new();
        let mut nodes: HashMap<AccountId, NodeIndex> = HashMap::new();
        let mut node = |g: &mut DiGraph<String, EdgeId>, a: AccountId| {
            *nodes
                .entry(a)
                .or_insert_with(|| g.add_node(self.account_name(a).to_string()))
        };
        let mut sorted = edges.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        for e in sorted {
            let s = node(&mut g, self.src[e as usize]);
            let d = node(&mut g, self.dst[e as usize]);
            g.add_edge(s, d, e);
        }
        g
    }
}

#[cfg(test)]
mod tests;
