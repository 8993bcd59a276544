//! Criterion micro-benchmarks of the hot paths: CSV parsing, graph build, and one shipped
//! rule per detector kind run through `detect::run`. The data is generated once into a
//! temporary folder by the `clearwatch` binary (`generate --scale 0.5`, ~13 k transactions;
//! the cycle rule gets `--scale 0.1`). The multi-hop kinds run again on a dense background
//! (`generate --variant realistic`, 40 k and 80 k transactions): their cost per
//! transaction must not grow with the data.
//! Run: `cargo bench --bench hot_paths` (about three minutes).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clearwatch_detect::{self as detect, Inputs};
use clearwatch_graph::{TemporalGraph, load::from_files};
use clearwatch_ingest::{self as ingest, Profile};
use clearwatch_rules::Rule;
use clearwatch_rules::load;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn generate(dir: &Path, scale: &str) -> PathBuf {
    generate_with(dir, &format!("scale-{scale}"), &["--scale", scale])
}

/// `clearwatch generate --seed 1 ARGS --out DIR/NAME`.
fn generate_with(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new(env!("CARGO_BIN_EXE_clearwatch"))
        .args(["generate", "--seed", "1"])
        .args(args)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("clearwatch generate runs");
    assert!(status.success(), "clearwatch generate failed");
    out
}

fn graph(dir: &Path) -> TemporalGraph {
    let (g, _) = from_files(
        &dir.join("transactions.csv"),
        Some(&dir.join("accounts.csv")),
        Some(&dir.join("merchants.csv")),
        &Profile::native(),
        None,
        None,
    )
    .expect("generated files load");
    g
}

fn rows(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("transactions.csv")).expect("readable");
    text.lines().count() as u64 - 1
}

fn hot_paths(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = generate(tmp.path(), "0.5");
    let small = generate(tmp.path(), "0.1");
    let n = rows(&data);
    let tx = data.join("transactions.csv");
    let profile = Profile::native();

    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(n));
    g.bench_function("read_transactions (CSV parse)", |b| {
        b.iter(|| {
            let mut count = 0u64;
            ingest::read_transactions(&tx, &profile, |_, _, _| count += 1, |_| {}).expect("parses");
            count
        })
    });
    g.bench_function("graph::load::from_files (parse + build)", |b| {
        b.iter(|| graph(&data).edge_count())
    });
    g.finish();

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let (set, diags) = load::load(&[root]);
    assert!(diags.is_empty(), "the shipped pack compiles");
    let inputs = Inputs {
        accounts: true,
        merchants: true,
    };
    let big = graph(&data);
    let little = graph(&small);
    // One shipped rule per detector kind.
    let mut g = c.benchmark_group("detect");
    for (kind, id) in [
        ("relation", "TC-01"),
        ("star", "TC-04"),
        ("flow", "ML-04"),
        ("cycle", "ML-03"),
        ("series", "TC-08"),
    ] {
        let rule: &Rule = set
            .rules
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("rule {id} is shipped"));
        let graph = if kind == "cycle" { &little } else { &big };
        g.throughput(Throughput::Elements(graph.edge_count() as u64));
        g.bench_function(format!("{kind} ({id})"), |b| {
            b.iter(|| detect::run(&[rule], graph, inputs).alerts.len())
        });
    }
    g.finish();

    // The multi-hop kinds on a dense background at two sizes: equal throughput means a
    // cost linear in the data.
    let mut g = c.benchmark_group("dense");
    for n in ["40000", "80000"] {
        let dense = graph(&generate_with(
            tmp.path(),
            &format!("realistic-{n}"),
            &["--variant", "realistic", "--transactions", n],
        ));
        for (kind, id) in [("cycle", "ML-03"), ("flow", "ML-04")] {
            let rule: &Rule = set.rules.iter().find(|r| r.id == id).expect("shipped");
            g.throughput(Throughput::Elements(dense.edge_count() as u64));
            g.bench_function(format!("{kind} ({id}), realistic {n} tx"), |b| {
                b.iter(|| detect::run(&[rule], &dense, inputs).alerts.len())
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = hot_paths
}
criterion_main!(benches);
