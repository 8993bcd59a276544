//! `clearwatch audit verify|checkpoint|list`: checks the audit log against its keyed chain,
//! its signed head and any checkpoints given (exit 1 naming every finding), copies the
//! signed head out as a checkpoint, and prints entries.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use clearwatch_store::AuditStore;
use clearwatch_store::seal::read_signed;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check every entry's HMAC, the signed head and the checkpoints given; exit 1 and
    /// name every finding (deleted, altered, truncated or emptied log, bad signature).
    Verify {
        /// A checkpoint file (from `audit checkpoint` or the server's checkpoints folder)
        /// whose entry must still be in the log with the same hash; repeatable.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a copy of the signed head (sequence, hash, time, signature, key fingerprint)
    /// to hand to someone outside: to --out, else into the checkpoints folder beside the
    /// audit key.
    Checkpoint {
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print the newest entries as JSON lines.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

pub async fn run(db: &super::Db, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let store = db.open().await?;
    match args.command {
        AuditCommand::Verify { checkpoints, json } => {
            let mut given = Vec::new();
            for path in &checkpoints {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("reading checkpoint {}", path.display()))?;
                given.push((path.display().to_string(), read_signed(path, &bytes)?));
            }
            let report = store.audit_report(&given).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else if report.intact() {
                outln!(
                    "audit log intact: {} entries, head {} (signed head at {}, {} checkpoints checked)",
                    report.entries,
                    report.last_hash,
                    report
                        .head_seq
                        .map_or_else(|| "none kept".to_string(), |s| s.to_string()),
                    report.checkpoints
                );
            } else {
                outln!(
                    "audit log NOT intact: {} entries, {} findings:",
                    report.entries,
                    report.findings.len()
                );
                for f in &report.findings {
                    outln!("  {f}");
                }
            }
            Ok(if report.intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCommand::Checkpoint { out } => {
            match store.write_audit_checkpoint(out.as_deref()).await? {
                Some((path, head)) => {
                    outln!(
                        "checkpoint of entry {} (hash {}, key {}) written to {}",
                        head.seq,
                        head.hash,
                        head.public_key_sha256,
                        path.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                None => anyhow::bail!("this store keeps no signed head (an in-memory database)"),
            }
        }
        AuditCommand::List { limit } => {
            for e in store.audit_log(None, limit, 0).await? {
                outln!("{}", serde_json::to_string(&e)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
