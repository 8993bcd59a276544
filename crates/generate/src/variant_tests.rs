//! Tests of the generator variants: the default output is frozen byte for byte, and each
//! variant has the background, look-alikes, patterns and defects it promises.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use sha2::{Digest, Sha256};

use super::tests::{generated, rows, small};
use super::*;

use super::extras::AMLSIM_TYPOLOGIES as AMLSIM;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn variant(v: Variant) -> ScenarioConfig {
    ScenarioConfig {
        variant: v,
        ..small()
    }
}

/// The typology of every scheme id in truth.csv.
fn schemes(truth: &[Vec<String>]) -> BTreeMap<String, String> {
    truth[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

#[test]
fn default_variant_output_is_byte_identical_to_before_variants() {
    // sha256 of `clearwatch generate --out DIR` (seed 42) as written before variants existed.
    let expected = [
        (
            "transactions.csv",
            "9713003a15e5b6552c2a185b137f707e6d4feb6ba2f9f54f9a9fac96ab0bd1d0",
        ),
        (
            "accounts.csv",
            "a17602f9003913efe42ff06b6b400f1b199bffdbf396c6692205a34c45041944",
        ),
        (
            "merchants.csv",
            "335c6f25b729c5be34ec0211400f25076aba7a03fc325d7d7a062937c7fc8224",
        ),
        (
            "truth.csv",
            "08871646ff193a353dfd5477cd45d96c70431d8100ef1e27e58c01a4b8c5cf2a",
        ),
    ];
    let (dir, _) = generated(&ScenarioConfig::default());
    for (name, hash) in expected {
        let bytes = fs::read(dir.path().join(name)).expect("read");
        assert_eq!(
            sha256_hex(&bytes),
            hash,
            "{name} changed for the default variant"
        );
    }
}

#[test]
fn every_variant_injects_two_clear_and_amlsim_patterns_and_is_deterministic() {
    for v in Variant::ALL.into_iter().skip(1) {
        let (a, summary) = generated(&variant(v));
        let (b, _) = generated(&variant(v));
        for name in [
            "transactions.csv",
            "accounts.csv",
            "merchants.csv",
            "truth.csv",
        ] {
            let left = fs::read(a.path().join(name)).expect("read");
            let right = fs::read(b.path().join(name)).expect("read");
            assert!(left == right, "{v}: {name} differs between runs");
        }
        let truth = rows(&a.path().join("truth.csv"));
        let txs = rows(&a.path().join("transactions.csv"));
        let accounts: BTreeSet<String> = rows(&a.path().join("accounts.csv"))[1..]
            .iter()
            .map(|r| r[0].clone())
            .collect();
        let tx_ids: BTreeSet<&str> = txs[1..].iter().map(|t| t[0].as_str()).collect();
        assert_eq!(tx_ids.len(), txs.len() - 1, "{v}: duplicate tx ids");
        assert_eq!(summary.transactions as usize, txs.len() - 1);
        for t in &txs[1..] {
            assert!(accounts.contains(&t[2]) && accounts.contains(&t[3]), "{v}");
            assert_ne!(t[2], t[3], "{v}: self transfer {}", t[0]);
        }
        let typologies: BTreeSet<String> = schemes(&truth).into_values().collect();
        for code in ["TC-01", "TC-04", "TC-05", "TC-09", "TC-12"]
            .into_iter()
            .chain(AMLSIM)
        {
            assert!(typologies.contains(code), "{v}: {code} missing");
        }
        for row in &truth[1..] {
            match row[2].as_str() {
                "account" => assert!(accounts.contains(&row[3]), "{v}: {}", row[3]),
                _ => assert!(tx_ids.contains(row[3].as_str()), "{v}: {}", row[3]),
            }
        }
        // Each AMLSim pattern moved money: it has labelled transactions.
        for code in AMLSIM {
            assert!(
                truth[1..]
                    .iter()
                    .any(|r| r[1] == code && r[2] == "transaction" && r[0].starts_with('S')),
                "{v}: {code} has no transactions"
            );
        }
    }
}

#[test]
fn lookalikes_are_decoys_with_d_ids() {
    let decoy_typologies = [
        "payroll",
        "supplier_run",
        "group_treasury",
        "marketplace",
        "payment_facilitator",
        "bill_collector",
        "refund_batch",
        "family",
        "rent",
    ];
    let (dir, summary) = generated(&variant(Variant::Realistic));
    let truth = rows(&dir.path().join("truth.csv"));
    let all = schemes(&truth);
    for t in decoy_typologies {
        let ids: Vec<&String> = all
            .iter()
            .filter(|(_, ty)| *ty == t)
            .map(|(id, _)| id)
            .collect();
        assert!(!ids.is_empty(), "{t} missing");
        assert!(ids.iter().all(|id| id.starts_with('D')), "{t}: {ids:?}");
        assert!(
            truth[1..]
                .iter()
                .any(|r| r[1] == t && r[2] == "transaction"),
            "{t} has no transactions"
        );
        assert!(
            truth[1..]
                .iter()
                .any(|r| r[1] == t && r[2] == "account" && r[4] == "hub"),
            "{t} has no hub"
        );
    }
    let labelled = all.keys().filter(|id| id.starts_with('S')).count() as u64;
    assert_eq!(summary.schemes, labelled, "decoys are not labelled schemes");
}

#[test]
fn sparse_registry_hides_roles_settlements_merchant_ids_and_meaning_of_ids() {
    let (dir, _) = generated(&variant(Variant::SparseRegistry));
    let accounts = rows(&dir.path().join("accounts.csv"));
    let txs = rows(&dir.path().join("transactions.csv"));
    for a in &accounts[1..] {
        assert_eq!(a[0].len(), 16, "opaque account id {}", a[0]);
        assert!(a[0].bytes().all(|b| b.is_ascii_hexdigit()));
        if a[4] != "acquirer" {
            assert_eq!((a[4].as_str(), a[5].as_str()), ("", ""), "{a:?}");
        } else {
            assert_eq!(a[5], "true");
        }
    }
    assert!(txs[1..].iter().all(|t| t[6] != "settlement"));
    let payments: Vec<_> = txs[1..].iter().filter(|t| t[6] == "payment").collect();
    let missing = payments.iter().filter(|t| t[7].is_empty()).count();
    let share = missing as f64 / payments.len() as f64;
    assert!(
        (0.2..0.4).contains(&share),
        "{share} of payments lack merchant ids"
    );
}

#[test]
fn small_slow_operators_pool_few_shops_for_over_a_week() {
    let (dir, _) = generated(&ScenarioConfig {
        days: 30,
        ..variant(Variant::SmallSlow)
    });
    let truth = rows(&dir.path().join("truth.csv"));
    let txs = rows(&dir.path().join("transactions.csv"));
    let mut merchants_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut hub_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut shops = BTreeSet::new();
    for r in &truth[1..] {
        if r[1] == "TC-04" && r[2] == "account" && r[4] == "merchant" {
            *merchants_of.entry(r[0].as_str()).or_default() += 1;
            shops.insert(r[3].as_str());
        }
        if r[1] == "TC-04" && r[4] == "hub" {
            hub_of.insert(r[0].as_str(), r[3].as_str());
        }
    }
    let small_hubs: BTreeSet<&str> = merchants_of
        .iter()
        .filter(|(_, n)| **n <= 4)
        .map(|(s, _)| hub_of[s])
        .collect();
    assert!(small_hubs.len() >= 2, "{merchants_of:?}");
    for hub in small_hubs {
        let first_in = txs[1..]
            .iter()
            .find(|t| t[3] == hub && t[6] == "settlement");
        let first_out = txs[1..]
            .iter()
            .find(|t| t[2] == hub && shops.contains(t[3].as_str()));
        let (Some(i), Some(o)) = (first_in, first_out) else {
            panic!("hub {hub} has no settlement or payout");
        };
        let day = |ts: &str| DateTime::parse_from_rfc3339(ts).expect("ts").timestamp() / 86_400;
        assert!(day(&o[1]) - day(&i[1]) >= 8, "hub {hub} pays too soon");
    }
}

#[test]
fn dense_background_circulates_money_through_consumers_merchants_and_staff() {
    let (_base, base_summary) = generated(&small());
    let (dense, dense_summary) = generated(&variant(Variant::Dense));
    assert!(dense_summary.transactions > base_summary.transactions * 3 / 2);
    let merchants = rows(&dense.path().join("merchants.csv"));
    let shops: BTreeSet<&str> = merchants[1..].iter().map(|m| m[3].as_str()).collect();
    let txs = rows(&dense.path().join("transactions.csv"));
    let direct = txs[1..]
        .iter()
        .filter(|t| t[6] == "transfer" && t[8] == "qr" && shops.contains(t[3].as_str()))
        .count();
    let wages = txs[1..]
        .iter()
        .filter(|t| shops.contains(t[2].as_str()) && t[10] == "工资")
        .count();
    assert!(
        direct > 1_000 && wages > 100,
        "direct {direct}, wages {wages}"
    );
}

#[test]
fn scale_for_transactions_is_close_to_the_wanted_volume() {
    let cfg = ScenarioConfig {
        days: 10,
        ..ScenarioConfig::default()
    };
    for v in [Variant::Default, Variant::Dense, Variant::Realistic] {
        let scale = ScenarioConfig::scale_for_transactions(v, cfg.days, 20_000);
        let (_dir, s) = generated(&ScenarioConfig {
            variant: v,
            scale,
            ..cfg.clone()
        });
        assert!(
            (12_000..=30_000).contains(&s.transactions),
            "{v}: {} transactions at scale {scale}",
            s.transactions
        );
    }
}
