//! `clearwatch audit verify|list`: checks the audit log's hash chain (exit 1 when broken,
//! naming the first broken entry) and prints entries.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use clearwatch_model::case::AuditCheck;
use clearwatch_store::AuditStore;
use clearwatch_store::{self as store};

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the whole chain; exit 1 and name the first broken entry if it is broken.
    Verify,
    /// Print the newest entries as JSON lines.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

pub async fn run(db: &str, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let store = store::open(db).await?;
    match args.command {
        AuditCommand::Verify => match store.audit_verify().await? {
            AuditCheck::Intact { entries, head } => {
                println!("audit chain intact: {entries} entries, head {head}");
                Ok(ExitCode::SUCCESS)
            }
            AuditCheck::Broken { seq, reason } => {
                println!("audit chain broken at entry {seq}: {reason}");
                Ok(ExitCode::from(1))
            }
        },
        AuditCommand::List { limit } => {
            for e in store.audit_log(None, limit, 0).await? {
                println!("{}", serde_json::to_string(&e)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
