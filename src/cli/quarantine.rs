//! `clearwatch quarantine list|show|export|retry|purge`: the rows a load refused, kept
//! with file, line, field, reason and the raw row, to read, hand back to whoever sent the
//! file, load again through a fixed profile, and clear once dealt with.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use clearwatch_ingest::load::{Retry, stream_retry};
use clearwatch_ingest::{Profile, TableKind};
use clearwatch_store::{AnyStore, IngestStore, QuarantineRow};

use super::ingest::{load_stream, print_reports};

#[derive(Args, Debug)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    pub command: QuarantineCommand,
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCommand {
    /// List quarantined rows by batch and line: id, batch, file:line, field, reason, raw row.
    List(ListArgs),
    /// Show one quarantined row in full: where it came from, why it was refused, the row.
    Show(ShowArgs),
    /// Write quarantined rows as CSV (id, batch_id, source, line, field, reason, raw).
    Export(ExportArgs),
    /// Read a batch's quarantined rows again from its file through a (fixed) profile: the
    /// rows that now load are stored as a new batch and leave the quarantine.
    Retry(RetryArgs),
    /// Delete the quarantined rows of one batch (or all), recorded in the audit log.
    Purge(PurgeArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only the rows of this batch (see `clearwatch stats`).
    #[arg(long)]
    pub batch: Option<i64>,
    /// At most this many rows.
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    /// Print JSON Lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Only the rows of this batch.
    #[arg(long)]
    pub batch: Option<i64>,
    /// The CSV file to write (`-` for standard output).
    #[arg(long)]
    pub out: String,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The row's id (the first column of `quarantine list`).
    pub id: i64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RetryArgs {
    /// The batch whose quarantined rows to read again (see `quarantine list`).
    #[arg(long)]
    pub batch: i64,
    /// The mapping profile to read them with: a built-in name or a YAML file (default:
    /// the batch's, when it was a built-in one).
    #[arg(long)]
    pub profile: Option<String>,
    /// The batch's file, when it is no longer where it was loaded from; it must be the same
    /// file (same SHA-256).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Who retries, for the audit log (default: $USER).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub user: String,
}

#[derive(Args, Debug)]
pub struct PurgeArgs {
    /// Who purges, for the audit log (default: $USER).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub user: String,
    /// Delete the rows of this batch.
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    pub batch: Option<i64>,
    /// Delete every quarantined row.
    #[arg(long)]
    pub all: bool,
}

/// The most rows `export` writes; a quarantine larger than this is exported per batch.
const EXPORT_LIMIT: u64 = 1_000_000;

pub async fn run(db: &super::Db, args: QuarantineArgs) -> anyhow::Result<ExitCode> {
    let store = db.open().await?;
    match args.command {
        QuarantineCommand::List(a) => {
            let mut rows = store.quarantine(a.batch, a.limit.saturating_add(1)).await?;
            let more = rows.len() as u64 > a.limit;
            rows.truncate(a.limit as usize);
            for q in &rows {
                if a.json {
                    outln!("{}", serde_json::to_string(q)?);
                } else {
                    outln!("{}", line_of(q));
                }
            }
            if more {
                eprintln!(
                    "note: more than {} rows; give --limit or --batch to see the rest",
                    a.limit
                );
            }
        }
        QuarantineCommand::Export(a) => {
            let rows = store.quarantine(a.batch, EXPORT_LIMIT + 1).await?;
            if rows.len() as u64 > EXPORT_LIMIT {
                bail!(
                    "more than {EXPORT_LIMIT} quarantined rows: export them batch by batch (--batch)"
                );
            }
            let mut out = csv::Writer::from_writer(Vec::new());
            out.write_record(["id", "batch_id", "source", "line", "field", "reason", "raw"])?;
            for q in &rows {
                out.write_record([
                    q.id.to_string(),
                    q.batch_id.to_string(),
                    q.source.clone(),
                    q.line.to_string(),
                    q.field.clone().unwrap_or_default(),
                    q.reason.clone(),
                    q.raw.clone(),
                ])?;
            }
            let bytes = out.into_inner().context("writing the CSV")?;
            if a.out == "-" {
                out!("{}", String::from_utf8_lossy(&bytes));
            } else {
                std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out))?;
                eprintln!("wrote {} quarantined rows to {}", rows.len(), a.out);
            }
        }
        QuarantineCommand::Show(a) => {
            let Some(q) = store.quarantine_entry(a.id).await? else {
                bail!(
                    "no quarantined row {} (see `clearwatch quarantine list`)",
                    a.id
                );
            };
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&q)?);
            } else {
                outln!("row {} of batch {}", q.id, q.batch_id);
                outln!("file:   {}:{}", printable(&q.source), q.line);
                let field = q.field.as_deref().unwrap_or("(the whole row)");
                outln!("field:  {}", printable(field));
                outln!("reason: {}", printable(&q.reason));
                outln!("raw:    {}", printable(&q.raw));
            }
        }
        QuarantineCommand::Retry(a) => return retry(&store, a).await,
        QuarantineCommand::Purge(a) => {
            let batch = if a.all { None } else { a.batch };
            let purged = store.purge_quarantine(batch, &a.user).await?;
            let which =
                batch.map_or_else(|| "the quarantine".to_string(), |b| format!("batch {b}"));
            outln!("purged {purged} quarantined rows of {which}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `quarantine retry`: the batch's file read again, only at its quarantined lines.
async fn retry(store: &AnyStore, a: RetryArgs) -> anyhow::Result<ExitCode> {
    let Some(batch) = store
        .batches()
        .await?
        .into_iter()
        .find(|b| b.batch_id == a.batch)
    else {
        bail!("no batch {} (see `clearwatch quarantine list`)", a.batch);
    };
    let builtin = clearwatch_ingest::profile::BUILTIN
        .iter()
        .any(|(name, _)| *name == batch.profile);
    let profile = match &a.profile {
        Some(p) => Profile::load(p)?,
        None if builtin => Profile::load(&batch.profile)?,
        None => bail!(
            "batch {} was loaded with the profile named {:?}, which is not a built-in one: give its file with --profile",
            a.batch,
            batch.profile
        ),
    };
    let kind = match batch.kind.as_str() {
        "transactions" => TableKind::Transactions,
        "accounts" => TableKind::Accounts,
        "merchants" => TableKind::Merchants,
        other => bail!(
            "batch {} holds {other}, which is not read from a file",
            a.batch
        ),
    };
    let Some(sha256) = batch.sha256.clone().filter(|h| !h.is_empty()) else {
        bail!(
            "batch {} did not come from a file (it came from {}): there is nothing to read again",
            a.batch,
            batch.source
        );
    };
    let lines: BTreeSet<u64> = store
        .quarantine(Some(a.batch), u64::MAX / 2)
        .await?
        .iter()
        .map(|q| q.line)
        .collect();
    if lines.is_empty() {
        outln!("batch {} has no quarantined rows", a.batch);
        return Ok(ExitCode::SUCCESS);
    }
    let file = match a.file {
        Some(f) => f,
        None if Path::new(&batch.source).exists() => PathBuf::from(&batch.source),
        None => bail!(
            "batch {}'s file {} is not there any more: give it with --file",
            a.batch,
            batch.source
        ),
    };
    let retry = Retry {
        batch_id: a.batch,
        kind,
        file,
        sha256,
        lines,
        actor: a.user,
    };
    let reports = load_stream(store, move |tx, progress| {
        stream_retry(&retry, &profile, tx, progress)
    })
    .await?;
    outln!("read again the quarantined rows of batch {}:", a.batch);
    print_reports(&reports);
    Ok(ExitCode::SUCCESS)
}

/// One quarantined row on one line, as `quarantine list` and `stats --quarantine` print it.
pub fn line_of(q: &QuarantineRow) -> String {
    format!(
        "{:>6}  batch {}  {}:{}: {}{} | {}",
        q.id,
        q.batch_id,
        q.source,
        q.line,
        q.field
            .as_deref()
            .map(|f| format!("[{f}] "))
            .unwrap_or_default(),
        printable(&q.reason),
        printable(&q.raw)
    )
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`): a file's bytes never
/// reach the terminal as line breaks or escape sequences.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
