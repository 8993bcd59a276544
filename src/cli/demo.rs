//! `clearwatch demo`: loads the shipped demo set into the store and summarises it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::ingest::{Profile, TableKind};
use crate::store::{self, Store};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder with the demo's transactions.csv, accounts.csv and merchants.csv.
    #[arg(long)]
    pub data: Option<PathBuf>,
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
    Ok(ExitCode::SUCCESS)
}
