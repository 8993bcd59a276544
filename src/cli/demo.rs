//! `clearwatch demo`: loads the shipped demo set into the store and summarises it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use include_dir::{Dir, include_dir};

use clearwatch_ingest::load::CommitPolicy;
use clearwatch_ingest::{Profile, TableKind};
use clearwatch_model::Alert;
use clearwatch_rules::load::PackSource;
use clearwatch_scan::{self as scan, Mode, Pack, Published};
use clearwatch_store::IngestStore;

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

/// The demo set of the sources (`datasets/demo`), embedded so that a binary copied
/// anywhere can run the demo.
static DEMO: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/datasets/demo");

/// Where the demo set is read from: `--data`, else `datasets/demo` under the working
/// directory, else the embedded copy, written to a temporary folder (kept alive by the
/// returned guard).
fn demo_dir(arg: Option<PathBuf>) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(d) = arg {
        return Ok((d, None));
    }
    let local = Path::new("datasets/demo");
    if local.is_dir() {
        return Ok((local.to_path_buf(), None));
    }
    let tmp = tempfile::Builder::new()
        .prefix("clearwatch-demo")
        .tempdir()?;
    DEMO.extract(tmp.path())?;
    Ok((tmp.path().to_path_buf(), Some(tmp)))
}

pub async fn run(db: &super::Db, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let (dir, _extracted) = demo_dir(args.data)?;
    let plan = vec![
        (TableKind::Accounts, dir.join("accounts.csv")),
        (TableKind::Merchants, dir.join("merchants.csv")),
        (TableKind::Transactions, dir.join("transactions.csv")),
    ];
    let store = db.open().await?;
    outln!(
        "loading the demo set from {} into {}",
        dir.display(),
        db.url
    );
    let reports =
        super::ingest::load_files(&store, plan, Profile::native(), CommitPolicy::default()).await?;
    super::ingest::print_reports(&reports);
    outln!();
    super::stats::print_table(&store.stats(5).await?);
    outln!();
    let pack = Pack::load(PackSource::resolve(&[]), &store, Published::Use).await?;
    let pack = pack.runnable()?;
    let rules = pack.active();
    outln!("scanning with {} rules", rules.len());
    let done = scan::scan_store_marked(&store, &rules, Mode::Full).await?;
    let report = done.scanned.report;
    for s in &report.skipped {
        eprintln!("note: rule {} skipped: {}", s.rule_id, s.reason);
    }
    eprintln!(
        "stored {} new alerts ({} already stored)",
        done.saved.saved.inserted, done.saved.saved.existing
    );
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
    outln!("{} alerts ({})", report.alerts.len(), counts.join(", "));
    outln!(
        "one case per subject: `clearwatch cases list`; the alerts: `clearwatch alerts list`, one of them: `clearwatch alerts show ID`"
    );
    if !args.no_serve {
        outln!();
        super::serve::serve_store(store, args.bind, super::serve::Serving::default()).await?;
    }
    Ok(ExitCode::SUCCESS)
}
