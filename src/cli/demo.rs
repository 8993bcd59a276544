//! `clearwatch demo`: loads the shipped demo set into the store and summarises it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::detect::Alert;
use crate::ingest::{Profile, TableKind};
use crate::rules::Rule;
use crate::rules::load::{self, default_rules_dir};
use crate::store::{self, Store};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder with the demo's transactions.csv, accounts.csv and merchants.csv.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Stop after the scan instead of serving the dashboard.
    #[arg(long)]
    pub no_serve: bool,
    /// Where the dashboard listens.
    #[arg(long, default_value = super::serve::DEFAULT_BIND)]
    pub bind: std::net::SocketAddr,
}

/// `datasets/demo` under the working directory, else the one beside the sources.
fn demo_dir(arg: Option<PathBuf>) -> PathBuf {
    if let Some(d) = arg {
        return d;
    }
    let local = Path::new("datasets/demo");
    if local.is_dir() {
        return local.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo")
}

pub async fn run(db: &str, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = demo_dir(args.data);
    let plan = vec![
        (TableKind::Accounts, dir.join("accounts.csv")),
        (TableKind::Merchants, dir.join("merchants.csv")),
        (TableKind::Transactions, dir.join("transactions.csv")),
    ];
    let store = store::open(db).await?;
    println!("loading the demo set from {} into {db}", dir.display());
    let reports = super::ingest::load_files(&store, plan, Profile::native()).await?;
    super::ingest::print_reports(&reports);
    println!();
    super::stats::print_table(&store.stats(5).await?);
    println!();
    let (set, diags) = load::load(&[default_rules_dir()]);
    anyhow::ensure!(
        diags.is_empty(),
        "the shipped rules do not lint: run `clearwatch rules lint`"
    );
    let rules: Vec<&Rule> = set
        .rules
        .iter()
        .filter(|r| r.status != "deprecated")
        .collect();
    println!("scanning with {} rules", rules.len());
    let (report, _, _) = super::scan::scan_store(&store, &rules, None, None).await?;
    let mut top: Vec<&Alert> = report.alerts.iter().collect();
    top.sort_by(|a, b| b.score.cmp(&a.score).then(a.id.cmp(&b.id)));
    for a in top.iter().take(15) {
        super::scan::print_alert_line(a);
    }
    let mut per_rule: std::collections::BTreeMap<&str, usize> = Default::default();
    for a in &report.alerts {
        *per_rule.entry(a.rule_id.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = per_rule.iter().map(|(r, n)| format!("{r}: {n}")).collect();
    println!("{} alerts ({})", report.alerts.len(), counts.join(", "));
    println!(
        "list them with `clearwatch alerts list`, inspect one with `clearwatch alerts show ID`"
    );
    if !args.no_serve {
        println!();
        super::serve::serve_store(store, args.bind, None).await?;
    }
    Ok(ExitCode::SUCCESS)
}
