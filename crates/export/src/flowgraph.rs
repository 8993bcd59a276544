//! The fund-flow graph of a case, drawn the same way by the dashboard and by report.html:
//! one link per (payer, payee) pair, labelled with count and total, and a layered layout
//! in the direction of money (sources → subject → sinks), computed here once so that both
//! pictures agree.
//!
//! The layout is a small layered drawing written by hand rather than a layout crate: the
//! graphs are small (a few hundred links at most), the ranks follow the money from the
//! subject, which generic layered layouts do not know, and the positions must be the same
//! in the browser and in the static report.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use clearwatch_model::{Account, Millis, Role, Transaction, TxType, format_amount};

/// Most links drawn; the pairs with the most money are kept.
pub const MAX_LINKS: usize = 400;
/// Horizontal distance between ranks and vertical distance between nodes of a rank, in
/// drawing units (pixels at zoom 1). A label is at most [`LABEL_CHARS`] wide, which fits.
pub const RANK_GAP: f64 = 280.0;
pub const ROW_GAP: f64 = 64.0;
/// Longest holder name shown in a node label, in characters.
pub const LABEL_CHARS: usize = 14;

/// The colour of a role; the dashboard's legend (app.css `.legend`) uses the same.
pub fn role_colour(role: Role) -> &'static str {
    match role {
        Role::Merchant => "#edae49",
        Role::Acquirer => "#00798c",
        Role::Bank => "#2e4057",
        Role::Agent => "#8e44ad",
        Role::Individual => "#66a182",
        Role::Unknown => "#8d96a7",
    }
}

/// The colour of a link's main transaction type.
pub fn type_colour(t: TxType) -> &'static str {
    match t {
        TxType::Settlement => "#00798c",
        TxType::Payment => "#edae49",
        TxType::Transfer => "#d1495b",
        TxType::CashIn | TxType::CashOut => "#2e4057",
        TxType::Fee => "#8e44ad",
        TxType::Refund => "#66a182",
    }
}

/// The colour of the subject's node.
pub const SUBJECT_COLOUR: &str = "#d1495b";

#[derive(Debug, Clone, Serialize)]
pub struct FlowNode {
    pub id: String,
    /// Holder name (shortened) and shortened id: what is drawn.
    pub label: String,
    /// Full id and holder name: the tooltip.
    pub title: String,
    pub role: Role,
    pub colour: &'static str,
    pub licensed: bool,
    /// Its role is inferred from behaviour: the registry gives it none.
    pub inferred: bool,
    pub subject: bool,
    /// Rank in the direction of money: negative pays into the subject, positive is paid
    /// from it, 0 is the subject.
    pub rank: i32,
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowLink {
    pub id: String,
    pub source: String,
    pub target: String,
    pub count: u64,
    /// `count × total` per currency, e.g. `3 × 1200.00 CNY`.
    pub label: String,
    /// The type that carried most of the money, and its colour.
    pub kind: TxType,
    pub colour: &'static str,
    pub first: Millis,
    pub last: Millis,
    /// Each transaction's time and amount in major units, in time order, so a viewer can
    /// recount the link for a time range or an amount floor.
    pub times: Vec<Millis>,
    pub amounts: Vec<f64>,
    /// The currency codes of the link, joined with `+`.
    pub currency: String,
    /// The decimals of the link's currency (of the first, when it has several: a viewer
    /// recounts only a link of one currency).
    pub exponent: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FlowGraph {
    pub nodes: Vec<FlowNode>,
    pub links: Vec<FlowLink>,
    /// Pairs left out because there were more than [`MAX_LINKS`].
    pub links_left_out: usize,
}

/// A shortened account id: long bank account numbers keep their first and last four.
pub fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 12 {
        return id.to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// What a node shows: the holder name, cut to [`LABEL_CHARS`], and the shortened id.
pub fn node_label(id: &str, holder_name: Option<&str>) -> String {
    let id = short_id(id);
    match holder_name.map(str::trim).filter(|n| !n.is_empty()) {
        None => id,
        Some(name) if name.chars().count() > LABEL_CHARS => {
            let cut: String = name.chars().take(LABEL_CHARS - 1).collect();
            format!("{cut}… · {id}")
        }
        Some(name) => format!("{name} · {id}"),
    }
}

#[derive(Default)]
struct Pair {
    count: u64,
    /// Minor units per currency code, with the exponent.
    totals: BTreeMap<&'static str, (i128, u32)>,
    by_type: BTreeMap<TxType, i128>,
    times: Vec<Millis>,
    amounts: Vec<f64>,
    first: Millis,
    last: Millis,
    /// For ranking pairs when there are too many: major units summed over currencies.
    weight: f64,
}

/// Links of `transactions` (in the given order, which should be by time), at most
/// [`MAX_LINKS`], the heaviest kept; and how many pairs were left out.
pub fn links(transactions: &[Transaction]) -> (Vec<FlowLink>, usize) {
    let mut pairs: BTreeMap<(&str, &str), Pair> = BTreeMap::new();
    for t in transactions {
        let p = pairs.entry((&t.from, &t.to)).or_insert_with(|| Pair {
            first: t.ts,
            last: t.ts,
            ..Pair::default()
        });
        let exp = t.currency.exponent();
        let major = t.amount as f64 / 10f64.powi(exp as i32);
        p.count += 1;
        p.totals.entry(t.currency.code()).or_insert((0, exp)).0 += i128::from(t.amount);
        *p.by_type.entry(t.tx_type).or_insert(0) += i128::from(t.amount);
        p.times.push(t.ts);
        p.amounts.push(major);
        p.first = p.first.min(t.ts);
        p.last = p.last.max(t.ts);
        p.weight += major;
    }
    let total = pairs.len();
    let mut kept: Vec<((&str, &str), Pair)> = pairs.into_iter().collect();
    if kept.len() > MAX_LINKS {
        kept.sort_by(|a, b| b.1.weight.total_cmp(&a.1.weight).then(a.0.cmp(&b.0)));
        kept.truncate(MAX_LINKS);
        kept.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let links = kept
        .into_iter()
        .map(|((from, to), p)| {
            let kind = p
                .by_type
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map_or(TxType::Transfer, |(t, _)| *t);
            let amounts: Vec<String> = p
                .totals
                .iter()
                .map(|(c, (m, exp))| format!("{} {c}", format_amount(*m, *exp)))
                .collect();
            FlowLink {
                // The pair as JSON: unique whatever the ids contain.
                id: serde_json::to_string(&[from, to]).unwrap_or_default(),
                source: from.to_string(),
                target: to.to_string(),
                count: p.count,
                label: format!("{} × {}", p.count, amounts.join(" + ")),
                kind,
                colour: type_colour(kind),
                first: p.first,
                last: p.last,
                times: p.times,
                amounts: p.amounts,
                currency: p.totals.keys().copied().collect::<Vec<_>>().join("+"),
                exponent: p.totals.values().next().map_or(2, |(_, e)| *e),
            }
        })
        .collect();
    (links, total.saturating_sub(MAX_LINKS))
}

impl FlowGraph {
    /// Gives each node the registry has no role for the role `roles` infers for it
    /// ([`clearwatch_model::roles`]), marked as inferred.
    pub fn mark_inferred(&mut self, roles: &std::collections::HashMap<String, Role>) {
        for n in &mut self.nodes {
            if n.role != Role::Unknown {
                continue;
            }
            if let Some(&role) = roles.get(&n.id) {
                n.role = role;
                n.inferred = true;
                if !n.subject {
                    n.colour = role_colour(role);
                }
            }
        }
    }

    /// The ids of the nodes the registry gives no role.
    pub fn without_role(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.role == Role::Unknown)
            .map(|n| n.id.clone())
            .collect()
    }
}

/// The graph of `transactions` among `accounts` (unknown accounts are drawn as
/// unregistered), laid out around `subjects`.
pub fn flow_graph(
    transactions: &[Transaction],
    accounts: &[Account],
    subjects: &[&str],
) -> FlowGraph {
    let (links, links_left_out) = links(transactions);
    let registry: BTreeMap<&str, &Account> = accounts
        .iter()
        .map(|a| (a.account_id.as_str(), a))
        .collect();
    let mut ids: BTreeSet<&str> = BTreeSet::new();
    for l in &links {
        ids.insert(&l.source);
        ids.insert(&l.target);
    }
    let subject_set: BTreeSet<&str> = subjects
        .iter()
        .copied()
        .filter(|s| ids.contains(s))
        .collect();
    let ranks = ranks(&ids, &links, &subject_set);
    let order = order_within_ranks(&ranks, &links);
    let min_rank = ranks.values().copied().min().unwrap_or(0);
    let mut nodes: Vec<FlowNode> = Vec::with_capacity(ids.len());
    for (rank, column) in &order {
        let middle = (column.len() as f64 - 1.0) / 2.0;
        for (i, id) in column.iter().enumerate() {
            let acc = registry.get(id);
            let name = acc.and_then(|a| a.holder_name.as_deref());
            let role = acc.map_or(Role::Unknown, |a| a.role);
            let subject = subject_set.contains(id);
            nodes.push(FlowNode {
                id: id.to_string(),
                label: node_label(id, name),
                title: match name {
                    Some(n) if !n.trim().is_empty() => format!("{id} {n}"),
                    _ => id.to_string(),
                },
                role,
                colour: if subject {
                    SUBJECT_COLOUR
                } else {
                    role_colour(role)
                },
                licensed: acc.is_some_and(|a| a.licensed),
                inferred: false,
                subject,
                rank: *rank,
                x: f64::from(rank - min_rank) * RANK_GAP,
                y: (i as f64 - middle) * ROW_GAP,
            });
        }
    }
    FlowGraph {
        nodes,
        links,
        links_left_out,
    }
}

/// Rank of every node: the subjects at 0, accounts they pay (directly or further on) at
/// +1, +2, …, accounts paying them at −1, −2, …; an account on both sides goes to the
/// nearer one (payee side on a tie). Accounts not connected to a subject by a directed
/// path are placed next to a ranked neighbour, and a part of the graph with no subject
/// starts from its accounts that receive nothing.
fn ranks<'a>(
    ids: &BTreeSet<&'a str>,
    links: &'a [FlowLink],
    subjects: &BTreeSet<&'a str>,
) -> BTreeMap<&'a str, i32> {
    let mut out_adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut in_adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in links {
        out_adj.entry(&l.source).or_default().push(&l.target);
        in_adj.entry(&l.target).or_default().push(&l.source);
    }
    let bfs = |roots: &[&'a str], adj: &BTreeMap<&str, Vec<&'a str>>| {
        let mut dist: BTreeMap<&'a str, i32> = roots.iter().map(|r| (*r, 0)).collect();
        let mut queue: VecDeque<&'a str> = roots.iter().copied().collect();
        while let Some(u) = queue.pop_front() {
            let d = dist[u];
            for &v in adj.get(u).map(Vec::as_slice).unwrap_or(&[]) {
                if !dist.contains_key(v) {
                    dist.insert(v, d + 1);
                    queue.push_back(v);
                }
            }
        }
        dist
    };
    let mut rank: BTreeMap<&'a str, i32> = BTreeMap::new();
    let mut roots: Vec<&'a str> = subjects.iter().copied().collect();
    loop {
        if !roots.is_empty() {
            let forward = bfs(&roots, &out_adj);
            let backward = bfs(&roots, &in_adj);
            for &id in ids {
                if rank.contains_key(id) {
                    continue;
                }
                let r = match (forward.get(id), backward.get(id)) {
                    (Some(&f), Some(&b)) => Some(if f <= b { f } else { -b }),
                    (Some(&f), None) => Some(f),
                    (None, Some(&b)) => Some(-b),
                    (None, None) => None,
                };
                if let Some(r) = r {
                    rank.insert(id, r);
                }
            }
        }
        // Neighbours of ranked accounts, until nothing changes.
        let mut changed = true;
        while changed {
            changed = false;
            for l in links {
                match (rank.get(l.source.as_str()), rank.get(l.target.as_str())) {
                    (Some(&r), None) => {
                        rank.insert(&l.target, r + 1);
                        changed = true;
                    }
                    (None, Some(&r)) => {
                        rank.insert(&l.source, r - 1);
                        changed = true;
                    }
                    _ => {}
                }
            }
        }
        let rest: Vec<&'a str> = ids
            .iter()
            .copied()
            .filter(|i| !rank.contains_key(i))
            .collect();
        if rest.is_empty() {
            return rank;
        }
        // A part without a subject: start from its accounts that receive nothing, or
        // from its first account.
        let sources: Vec<&'a str> = rest
            .iter()
            .copied()
            .filter(|i| !in_adj.contains_key(i))
            .collect();
        roots = if sources.is_empty() {
            vec![rest[0]]
        } else {
            sources
        };
    }
}

/// The accounts of each rank, ordered to keep links short: a rank away from the subject
/// follows the mean position of its neighbours in the rank nearer the subject
/// (barycentre ordering), ties by id.
fn order_within_ranks<'a>(
    ranks: &BTreeMap<&'a str, i32>,
    links: &[FlowLink],
) -> BTreeMap<i32, Vec<&'a str>> {
    let mut columns: BTreeMap<i32, Vec<&'a str>> = BTreeMap::new();
    for (id, r) in ranks {
        columns.entry(*r).or_default().push(id);
    }
    let mut neighbours: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in links {
        neighbours.entry(&l.source).or_default().push(&l.target);
        neighbours.entry(&l.target).or_default().push(&l.source);
    }
    let mut by_distance: Vec<i32> = columns.keys().copied().collect();
    by_distance.sort_by_key(|r| (r.abs(), *r));
    let mut position: BTreeMap<&str, f64> = BTreeMap::new();
    for r in by_distance {
        let inner = r - r.signum();
        let column = columns.get_mut(&r).expect("a listed rank");
        if r != 0 {
            let key = |id: &str| {
                let ps: Vec<f64> = neighbours
                    .get(id)
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .filter(|n| ranks.get(*n) == Some(&inner))
                    .filter_map(|n| position.get(n).copied())
                    .collect();
                if ps.is_empty() {
                    f64::MAX
                } else {
                    ps.iter().sum::<f64>() / ps.len() as f64
                }
            };
            let mut keyed: Vec<(f64, &'a str)> = column.iter().map(|id| (key(id), *id)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
            *column = keyed.into_iter().map(|(_, id)| id).collect();
        }
        for (i, id) in column.iter().enumerate() {
            position.insert(id, i as f64);
        }
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;
    use clearwatch_model::Currency;

    fn tx(id: &str, from: &str, to: &str, amount: i64, t: TxType) -> Transaction {
        Transaction {
            tx_id: id.into(),
            ts: 1_000 * amount,
            from: from.into(),
            to: to.into(),
            amount,
            currency: Currency::from_code("CNY").unwrap(),
            tx_type: t,
            merchant_id: None,
            channel: None,
            region: None,
            memo: None,
        }
    }

    #[test]
    fn parallel_transactions_become_one_link_per_pair_and_direction() {
        let txs = vec![
            tx("1", "ACQ", "HUB", 10_000, TxType::Settlement),
            tx("2", "ACQ", "HUB", 20_000, TxType::Settlement),
            tx("3", "HUB", "ACQ", 500, TxType::Fee),
            tx("4", "HUB", "M1", 9_000, TxType::Transfer),
        ];
        let g = flow_graph(&txs, &[], &["HUB"]);
        assert_eq!(g.links.len(), 3);
        let acq_hub = g.links.iter().find(|l| l.source == "ACQ").unwrap();
        assert_eq!(acq_hub.count, 2);
        assert_eq!(acq_hub.label, "2 × 300.00 CNY");
        assert_eq!(acq_hub.kind, TxType::Settlement);
        assert_eq!(acq_hub.amounts, vec![100.0, 200.0]);
    }

    #[test]
    fn money_flows_left_to_right_through_the_subject() {
        let txs = vec![
            tx("1", "ACQ", "HUB", 100, TxType::Settlement),
            tx("2", "HUB", "M1", 90, TxType::Transfer),
            tx("3", "M1", "M2", 80, TxType::Transfer),
            tx("4", "X", "Y", 70, TxType::Transfer),
        ];
        let g = flow_graph(&txs, &[], &["HUB"]);
        let rank = |id: &str| g.nodes.iter().find(|n| n.id == id).unwrap().rank;
        assert_eq!(
            (rank("ACQ"), rank("HUB"), rank("M1"), rank("M2")),
            (-1, 0, 1, 2)
        );
        // A part without the subject starts from its source.
        assert_eq!(rank("Y") - rank("X"), 1);
        let x = |id: &str| g.nodes.iter().find(|n| n.id == id).unwrap().x;
        assert!(x("ACQ") < x("HUB") && x("HUB") < x("M1") && x("M1") < x("M2"));
    }

    #[test]
    fn nodes_of_a_rank_do_not_share_a_position() {
        let txs: Vec<Transaction> = (0..30)
            .map(|i| {
                tx(
                    &format!("{i}"),
                    "HUB",
                    &format!("M{i:02}"),
                    100 + i,
                    TxType::Transfer,
                )
            })
            .collect();
        let g = flow_graph(&txs, &[], &["HUB"]);
        let mut ys: Vec<f64> = g
            .nodes
            .iter()
            .filter(|n| n.rank == 1)
            .map(|n| n.y)
            .collect();
        ys.sort_by(f64::total_cmp);
        assert_eq!(ys.len(), 30);
        assert!(ys.windows(2).all(|w| w[1] - w[0] >= ROW_GAP));
    }

    #[test]
    fn labels_shorten_long_ids_and_names() {
        assert_eq!(short_id("6222021234567890123"), "6222…0123");
        assert_eq!(short_id("HUB-1"), "HUB-1");
        assert_eq!(
            node_label("6222021234567890123", Some("张三")),
            "张三 · 6222…0123"
        );
        assert_eq!(
            node_label("A1", Some("一二三四五六七八九十一二三四五")),
            "一二三四五六七八九十一二三… · A1"
        );
        assert_eq!(node_label("A1", Some("  ")), "A1");
    }

    #[test]
    fn too_many_pairs_keep_the_heaviest_and_say_how_many_were_left_out() {
        let txs: Vec<Transaction> = (0..(MAX_LINKS as i64 + 5))
            .map(|i| {
                tx(
                    &format!("{i}"),
                    "HUB",
                    &format!("M{i:04}"),
                    100 + i,
                    TxType::Transfer,
                )
            })
            .collect();
        let (links, left_out) = links(&txs);
        assert_eq!((links.len(), left_out), (MAX_LINKS, 5));
        assert!(links.iter().all(|l| l.target != "M0000"));
    }
}
