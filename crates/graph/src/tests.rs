use super::*;

fn cny() -> Currency {
    Currency::from_code("CNY").unwrap()
}

/// Edges given as (id, ts, from, to, amount), added in the given order.
fn graph(edges: &[(&str, Millis, &str, &str, i64)]) -> TemporalGraph {
    let mut b = GraphBuilder::new();
    for &(id, ts, from, to, amount) in edges {
        b.add_edge(EdgeInput {
            tx_id: id,
            ts,
            from,
            to,
            amount,
            currency: cny(),
            tx_type: TxType::Transfer,
            merchant_id: None,
            channel: None,
            region: None,
        });
    }
    b.build()
}

fn ids(g: &TemporalGraph, edges: impl IntoIterator<Item = EdgeId>) -> Vec<&str> {
    edges.into_iter().map(|e| g.tx_id(e)).collect()
}

#[test]
fn out_edges_are_time_ordered_whatever_the_input_order() {
    let g = graph(&[
        ("t3", 30, "a", "b", 1),
        ("t1", 10, "a", "c", 1),
        ("t2", 20, "a", "b", 1),
        ("x", 5, "b", "a", 1),
    ]);
    let a = g.find_account("a").unwrap();
    assert_eq!(ids(&g, g.out_edges(a)), ["t1", "t2", "t3"]);
}

#[test]
fn window_is_inclusive_at_from_and_exclusive_at_until() {
    let g = graph(&[
        ("t1", 10, "a", "b", 1),
        ("t2", 20, "a", "b", 1),
        ("t3", 30, "a", "b", 1),
    ]);
    let a = g.find_account("a").unwrap();
    assert_eq!(ids(&g, g.out_window(a, 10, 30)), ["t1", "t2"]);
    assert_eq!(ids(&g, g.out_window(a, 11, 31)), ["t2", "t3"]);
    assert!(g.out_window(a, 31, 100).is_empty());
    assert!(g.out_window(a, 0, 10).is_empty());
    // An inverted window is empty, not a panic.
    assert!(g.out_window(a, 30, 10).is_empty());
}

#[test]
fn equal_timestamps_are_all_inside_or_all_outside() {
    let g = graph(&[
        ("t2", 20, "a", "b", 1),
        ("t1", 20, "a", "c", 1),
        ("t0", 10, "a", "c", 1),
    ]);
    let a = g.find_account("a").unwrap();
    assert_eq!(ids(&g, g.out_window(a, 20, 21)), ["t1", "t2"]);
    assert_eq!(ids(&g, g.out_window(a, 10, 20)), ["t0"]);
    let c = g.find_account("c").unwrap();
    assert!(g.in_window(c, 20, 20).is_empty());
    assert_eq!(
        ids(&g, g.in_window(c, 10, 21).iter().copied()),
        ["t0", "t1"]
    );
}

#[test]
fn in_edges_are_time_ordered_per_destination() {
    let g = graph(&[
        ("t1", 30, "a", "hub", 1),
        ("t2", 10, "b", "hub", 1),
        ("t3", 20, "c", "hub", 1),
        ("t4", 15, "hub", "d", 1),
    ]);
    let hub = g.find_account("hub").unwrap();
    assert_eq!(ids(&g, g.in_edges(hub).iter().copied()), ["t2", "t3", "t1"]);
    assert_eq!(
        ids(&g, g.in_window(hub, 10, 21).iter().copied()),
        ["t2", "t3"]
    );
    assert_eq!(ids(&g, g.out_edges(hub)), ["t4"]);
}

#[test]
fn window_queries_agree_with_a_scan() {
    let mut edges = Vec::new();
    let names = ["a", "b", "c", "d"];
    let mut x: u64 = 7;
    for i in 0..200 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let ts = ((x >> 33) % 50) as Millis;
        let s = names[((x >> 20) % 4) as usize];
        let d = names[((x >> 10) % 4) as usize];
        edges.push((format!("t{i}"), ts, s, d));
    }
    let refs: Vec<(&str, Millis, &str, &str, i64)> = edges
        .iter()
        .map(|(id, ts, s, d)| (id.as_str(), *ts, *s, *d, 1))
        .collect();
    let g = graph(&refs);
    for name in names {
        let a = g.find_account(name).unwrap();
        for from in [0, 7, 25, 49, 50] {
            for until in [0, 8, 25, 50, 60] {
                let mut want_out: Vec<&str> = refs
                    .iter()
                    .filter(|e| e.2 == name && e.1 >= from && e.1 < until)
                    .map(|e| e.0)
                    .collect();
                let mut got_out = ids(&g, g.out_window(a, from, until));
                want_out.sort();
                got_out.sort();
                assert_eq!(got_out, want_out);
                let mut want_in: Vec<&str> = refs
                    .iter()
                    .filter(|e| e.3 == name && e.1 >= from && e.1 < until)
                    .map(|e| e.0)
                    .collect();
                let mut got_in = ids(&g, g.in_window(a, from, until).iter().copied());
                want_in.sort();
                got_in.sort();
                assert_eq!(got_in, want_in);
            }
        }
    }
}

#[test]
fn strongly_connected_components_find_cycles_only() {
    let g = graph(&[
        ("t1", 1, "a", "b", 1),
        ("t2", 2, "b", "c", 1),
        ("t3", 3, "c", "a", 1),
        ("t4", 4, "c", "d", 1),
        ("t5", 5, "e", "e", 1),
    ]);
    let comps: Vec<Vec<&str>> = g
        .cyclic_components()
        .into_iter()
        .map(|c| c.into_iter().map(|a| g.account_name(a)).collect())
        .collect();
    assert!(comps.contains(&vec!["a", "b", "c"]), "{comps:?}");
    assert!(comps.contains(&vec!["e"]), "{comps:?}");
    assert_eq!(comps.len(), 2);
}

/// A 10 M-transaction scan aborted when the recursive SCC search ran out of a worker
/// thread's stack; a long chain closed into one ring must not.
#[test]
fn components_of_a_long_chain_do_not_overflow_the_stack() {
    let n = 200_000;
    let names: Vec<String> = (0..n).map(|i| format!("a{i:06}")).collect();
    let ids: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let edges: Vec<(&str, Millis, &str, &str, i64)> = (0..n)
        .map(|i| {
            let to = &names[(i + 1) % n];
            (
                ids[i].as_str(),
                i as Millis,
                names[i].as_str(),
                to.as_str(),
                1,
            )
        })
        .collect();
    let g = graph(&edges);
    let comp = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || (g.component_ids(|_| true), g.cyclic_components().len()))
        .unwrap()
        .join()
        .unwrap();
    assert!(comp.0.iter().all(|&c| c == comp.0[0] && c != u32::MAX));
    assert_eq!(comp.1, 1);
}

#[test]
fn subgraph_holds_the_evidence_edges() {
    let g = graph(&[
        ("t1", 1, "a", "b", 5),
        ("t2", 2, "b", "c", 4),
        ("t3", 3, "x", "y", 1),
    ]);
    let sub = g.subgraph(&[0, 1]);
    assert_eq!(sub.node_count(), 3);
    assert_eq!(sub.edge_count(), 2);
}

#[test]
fn holds_merchant_needs_a_known_holder_of_a_registered_merchant() {
    let account = |id: &str, holder: Option<&str>| Account {
        holder_id: holder.map(str::to_string),
        ..Account::unregistered(id)
    };
    let merchant = Merchant {
        merchant_id: "M1".into(),
        legal_name: None,
        holder_id: Some("P9".into()),
        settlement_account: Some("PF".into()),
        acquirer: None,
        mcc: None,
        settlement_cycle_days: None,
    };
    let accounts = [
        account("OWN", Some("P9")),
        account("OTHER", Some("P8")),
        account("UNKNOWN", None),
        account("BLANK", Some("")),
    ];
    let g = GraphBuilder::with_records(&accounts, &[merchant]).build();
    let holds = |id: &str| g.holds_merchant(g.find_account(id).unwrap());
    assert!(
        holds("OWN"),
        "the merchant's holder, whatever account it settles into"
    );
    assert!(!holds("OTHER"));
    assert!(!holds("UNKNOWN"), "an unknown holder holds nothing");
    assert!(!holds("BLANK"));
}
