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

/// The evidence the role inference reads agrees with a count over the edge list, and an
/// acquirer of the registry settles its merchants into an inferred role while registered
/// roles stay as they are.
#[test]
fn role_evidence_agrees_with_a_scan_and_infers_only_where_the_registry_is_silent() {
    let types = [TxType::Payment, TxType::Settlement, TxType::Transfer];
    let names: Vec<String> = (0..30).map(|i| format!("a{i}")).collect();
    let mut edges = Vec::new();
    let mut x: u64 = 11;
    for i in 0..3000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let s = (x >> 20) as usize % names.len();
        // a0..a2 and a29 send only settlements; a3, a4 and a28 never do; payments go to
        // a0..a4.
        let t = match s {
            0..3 | 29 => 1,
            3 | 4 | 28 => 2 * ((x >> 40) as usize % 2),
            _ => (x >> 40) as usize % 3,
        };
        let d = if t == 0 {
            (x >> 10) as usize % 5
        } else {
            (x >> 10) as usize % names.len()
        };
        edges.push((format!("t{i}"), i as Millis, s, d, types[t]));
    }
    let acquirer = Account {
        role: Role::Acquirer,
        ..Account::unregistered("a29")
    };
    let mut b = GraphBuilder::with_records(&[acquirer], &[]);
    for (id, ts, s, d, t) in &edges {
        b.add_edge(EdgeInput {
            tx_id: id,
            ts: *ts,
            from: &names[*s],
            to: &names[*d],
            amount: 100,
            currency: cny(),
            tx_type: *t,
            merchant_id: None,
            channel: None,
            region: None,
        });
    }
    let g = b.build();
    let mut inferred = std::collections::BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let a = g.find_account(name).unwrap();
        let distinct = |it: &mut dyn Iterator<Item = usize>| {
            it.collect::<std::collections::BTreeSet<_>>().len() as u32
        };
        let want = RoleEvidence {
            payment_payers: distinct(
                &mut edges
                    .iter()
                    .filter(|e| e.3 == i && e.4 == TxType::Payment)
                    .map(|e| e.2),
            ),
            settlement_payees: distinct(
                &mut edges
                    .iter()
                    .filter(|e| e.2 == i && e.4 == TxType::Settlement)
                    .map(|e| e.3),
            ),
            settlements_sent: edges
                .iter()
                .filter(|e| e.2 == i && e.4 == TxType::Settlement)
                .count() as u32,
            sent: edges.iter().filter(|e| e.2 == i).count() as u32,
            settled_by_acquirer: edges
                .iter()
                .any(|e| e.3 == i && e.2 == 29 && e.4 == TxType::Settlement),
        };
        assert_eq!(g.role_evidence(a), want, "{name}");
        inferred.insert(name.as_str(), g.inferred_role(a));
    }
    // a0..a4 collect payments from many payers; a0..a2 settle others: acquirers. a3 and
    // a4 collect and settle nobody: shops. a29 is an acquirer of the registry, so nothing
    // is inferred for it; those it settles are merchants unless they settle others (a28
    // never does).
    for n in ["a0", "a1", "a2"] {
        assert_eq!(inferred[n], Role::Acquirer, "{n}");
    }
    for n in ["a3", "a4"] {
        assert_eq!(inferred[n], Role::Merchant, "{n}");
    }
    assert_eq!(inferred["a29"], Role::Unknown);
    assert_eq!(inferred["a28"], Role::Merchant);
    let settled_by_a29: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            edges
                .iter()
                .any(|e| e.2 == 29 && e.3 == *i && e.4 == TxType::Settlement)
        })
        .map(|(_, n)| n.as_str())
        .filter(|n| !["a0", "a1", "a2", "a29"].contains(n))
        .collect();
    assert!(!settled_by_a29.is_empty());
    for n in settled_by_a29 {
        let a = g.find_account(n).unwrap();
        let want = if g.role_evidence(a).settlements_sent == 0 {
            Role::Merchant
        } else {
            Role::Unknown
        };
        assert_eq!(inferred[n], want, "{n}");
    }
}

/// Settlements typed as plain transfers still settle a merchant: a transfer from a
/// registered acquirer that carries a merchant id counts, one without does not.
#[test]
fn a_transfer_with_a_merchant_id_from_an_acquirer_settles_a_merchant() {
    let acquirer = Account {
        role: Role::Acquirer,
        ..Account::unregistered("ACQ")
    };
    let mut b = GraphBuilder::with_records(&[acquirer], &[]);
    for (id, to, merchant) in [("t1", "SHOP", Some("M1")), ("t2", "PERSON", None)] {
        b.add_edge(EdgeInput {
            tx_id: id,
            ts: 1,
            from: "ACQ",
            to,
            amount: 100,
            currency: cny(),
            tx_type: TxType::Transfer,
            merchant_id: merchant,
            channel: None,
            region: None,
        });
    }
    let g = b.build();
    let role = |id: &str| g.inferred_role(g.find_account(id).unwrap());
    assert_eq!(role("SHOP"), Role::Merchant);
    assert_eq!(role("PERSON"), Role::Unknown);
    assert_eq!(role("ACQ"), Role::Unknown, "the registry's role stands");
}
