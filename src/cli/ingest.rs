//! `clearwatch ingest`: loads files into the store through a mapping profile.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use clearwatch_ingest::load::{CommitPolicy, LoadMsg, stream_files};
use clearwatch_ingest::{IngestError, Profile, TableKind};
use clearwatch_store::IngestStore;
use clearwatch_store::{self as store, BatchReport};
use tokio::sync::mpsc::Sender;

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Transactions file (CSV or JSON Lines).
    #[arg(long)]
    pub transactions: Option<PathBuf>,
    /// Accounts file.
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// Merchants file.
    #[arg(long)]
    pub merchants: Option<PathBuf>,
    /// Mapping profile: a built-in name (native, amlsim, amlsim-sample, paysim,
    /// amlgentex, amlworld) or a YAML file.
    #[arg(long, default_value = "native")]
    pub profile: String,
    /// Longest physical line read, in bytes (default: the profile's `limits`, else 1 MiB).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_line_bytes: Option<u64>,
    /// Longest field value read, in bytes (default: the profile's, else 64 KiB).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_field_bytes: Option<u64>,
    /// Longest row read, in bytes, across quoted line breaks (default: the profile's, else 4 MiB).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_record_bytes: Option<u64>,
    /// Largest share of a file's rows, in percent, that may be quarantined; above it the
    /// load stores nothing and exits with code 2.
    #[arg(long, default_value_t = 1.0, value_parser = percent)]
    pub max_quarantine: f64,
    /// Store what loaded whatever share of rows was quarantined.
    #[arg(long)]
    pub accept_partial: bool,
}

fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage from 0 to 100")),
    }
}

pub async fn run(db: &super::Db, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let mut profile = Profile::load(&args.profile)?;
    let limits = &mut profile.limits;
    for (flag, limit) in [
        (args.max_line_bytes, &mut limits.max_line_bytes),
        (args.max_field_bytes, &mut limits.max_field_bytes),
        (args.max_record_bytes, &mut limits.max_record_bytes),
    ] {
        if let Some(bytes) = flag {
            *limit = usize::try_from(bytes).unwrap_or(usize::MAX);
        }
    }
    let mut plan = Vec::new();
    // Registries first, so a reader of the batches sees them before the flows.
    if let Some(p) = args.accounts {
        plan.push((TableKind::Accounts, p));
    }
    if let Some(p) = args.merchants {
        plan.push((TableKind::Merchants, p));
    }
    if let Some(p) = args.transactions {
        plan.push((TableKind::Transactions, p));
    }
    anyhow::ensure!(
        !plan.is_empty(),
        "nothing to load: give --transactions, --accounts or --merchants"
    );
    let policy = if args.accept_partial {
        CommitPolicy::ANY
    } else {
        CommitPolicy {
            max_quarantined: Some(args.max_quarantine / 100.0),
        }
    };
    let store = db.open().await?;
    let reports = load_files(&store, plan, profile, policy)
        .await
        .map_err(|e| match e.downcast_ref::<store::StoreError>() {
            Some(store::StoreError::TooManyQuarantined { .. }) => anyhow::anyhow!(
                "{e}; fix the profile and load again, or give --max-quarantine or --accept-partial"
            ),
            _ => e,
        })?;
    print_reports(&reports);
    Ok(ExitCode::SUCCESS)
}

/// Loads the plan into the store in one transaction, with a progress spinner on a terminal.
pub async fn load_files(
    store: &store::AnyStore,
    plan: Vec<(TableKind, PathBuf)>,
    profile: Profile,
    policy: CommitPolicy,
) -> anyhow::Result<Vec<BatchReport>> {
    load_stream(store, move |tx, progress| {
        stream_files(&plan, &profile, policy, tx, progress)
    })
    .await
}

/// Loads what `produce` reads (on a blocking thread) into the store in one transaction.
pub async fn load_stream(
    store: &store::AnyStore,
    produce: impl FnOnce(Sender<LoadMsg>, &dyn Fn(u64)) -> Result<(), IngestError> + Send + 'static,
) -> anyhow::Result<Vec<BatchReport>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} rows read ({per_sec})")
            .expect("valid progress template"),
    );
    let progress_bar = bar.clone();
    let producer = tokio::task::spawn_blocking(move || produce(tx, &|n| progress_bar.inc(n)));
    let loaded = store.load(rx).await;
    let produced = producer.await.context("the file reader panicked")?;
    bar.finish_and_clear();
    // A file error explains an aborted load better than the abort itself.
    produced?;
    Ok(loaded?)
}

pub fn print_reports(reports: &[BatchReport]) {
    let mut total = BatchReport::default();
    for r in reports {
        outln!(
            "{} {}: read {}, loaded {}, quarantined {}, duplicates skipped {} (batch {}, sha256 {})",
            r.kind,
            r.source,
            r.read,
            r.loaded,
            r.quarantined,
            r.duplicates,
            r.batch_id,
            &r.sha256[..r.sha256.len().min(12)]
        );
        if r.unknown_types > 0 {
            outln!(
                "  warning: {} rows had a type outside the profile's vocabulary and were loaded as `transfer`",
                r.unknown_types
            );
        }
        total.read += r.read;
        total.loaded += r.loaded;
        total.quarantined += r.quarantined;
        total.duplicates += r.duplicates;
    }
    let ids: Vec<String> = reports.iter().map(|r| r.batch_id.to_string()).collect();
    outln!(
        "read {}, loaded {}, quarantined {}, duplicates skipped {} (batch {})",
        total.read,
        total.loaded,
        total.quarantined,
        total.duplicates,
        ids.join(", ")
    );
    if total.quarantined > 0 {
        outln!(
            "  quarantined rows are kept with file, line, field and reason: see `clearwatch quarantine list`"
        );
    }
}
