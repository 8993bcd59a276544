//! The command line: argument parsing, one file per subcommand, and the mapping of
//! errors to exit codes (0 ran, 1 a `--fail-on` threshold was met, 2 an error).

/// `println!` and `print!` for the CLI's results: when standard output is a closed pipe
/// (`clearwatch stats | head`) the process ends quietly with exit code 0 instead of
/// panicking; any other write error ends it with exit code 2.
macro_rules! outln {
    () => { $crate::cli::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!($($arg)*)) };
}

mod alerts;
mod audit;
mod cases;
mod demo;
mod eval;
mod export;
mod generate;
mod ingest;
mod migrate;
mod quarantine;
mod rules;
mod scan;
mod serve;
mod stats;
mod stream;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use clearwatch_store::DEFAULT_DB;

#[derive(Parser, Debug)]
#[command(
    name = "clearwatch",
    version,
    about = "Compliance risk monitoring and fund-flow analysis: finds two-clear fund pooling and laundering shapes in payment flows"
)]
pub struct Cli {
    /// Database URL: a file path, sqlite:PATH, or postgres://…
    #[arg(long, global = true, env = "CLEARWATCH_DB", default_value = DEFAULT_DB)]
    pub db: String,

    /// The audit log's key file (32 bytes, made on first use; the signed head, its key and
    /// checkpoints go beside it). Default: PATH.audit-key beside a SQLite database,
    /// clearwatch.audit-key in the working directory for PostgreSQL.
    #[arg(long, global = true, env = "CLEARWATCH_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load transaction, account and merchant files into the store.
    Ingest(ingest::IngestArgs),
    /// Summarise what the store holds.
    Stats(stats::StatsArgs),
    /// List, show, export, retry or purge the rows that loads refused.
    Quarantine(quarantine::QuarantineArgs),
    /// Load the demo data set into the store and summarise it.
    Demo(demo::DemoArgs),
    /// Run the rule pack over input files or the store and report alerts.
    Scan(scan::ScanArgs),
    /// Rule authors' tools: lint, test, list, docs, backtest.
    Rules(rules::RulesArgs),
    /// Score the rule pack's alerts against labelled truth.
    Eval(eval::EvalArgs),
    /// Write a simulated data set with labelled schemes (native format plus truth.csv).
    Generate(generate::GenerateArgs),
    /// Apply the database migrations and print the schema version.
    Migrate(migrate::MigrateArgs),
    /// List and show stored alerts.
    Alerts(alerts::AlertsArgs),
    /// List cases: one per account or merchant over all of its alerts.
    Cases(cases::CasesArgs),
    /// Serve the analyst dashboard and JSON API (loopback by default).
    Serve(serve::ServeArgs),
    /// Publish transactions to NATS JetStream and run the workers that store and scan them.
    Stream(stream::StreamArgs),
    /// Manage dashboard users.
    Users(users::UsersArgs),
    /// Check or print the audit log.
    Audit(audit::AuditArgs),
    /// Export alerts as a signed evidence bundle, a goAML report or CAMLMAC packages.
    Export(export::ExportArgs),
    /// Manage the Ed25519 keys that sign evidence bundles.
    Keys(export::KeysArgs),
    /// Check an evidence bundle: every hash and the signature.
    Evidence(export::EvidenceArgs),
}

/// The database the command works on, and where its audit key is.
#[derive(Debug)]
pub struct Db {
    pub url: String,
    pub audit_key: Option<PathBuf>,
}

impl Db {
    pub async fn open(&self) -> Result<clearwatch_store::AnyStore, clearwatch_store::StoreError> {
        clearwatch_store::open_with(&self.url, self.audit_key.as_deref()).await
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let db = Db {
        url: cli.db,
        audit_key: cli.audit_key,
    };
    let db = &db;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Ingest(args) => ingest::run(db, args).await,
            Command::Stats(args) => stats::run(db, args).await,
            Command::Quarantine(args) => quarantine::run(db, args).await,
            Command::Demo(args) => demo::run(db, args).await,
            Command::Generate(args) => generate::run(args),
            Command::Scan(args) => scan::run(db, args).await,
            Command::Rules(args) => rules::run(db, args).await,
            Command::Eval(args) => eval::run(db, args).await,
            Command::Migrate(args) => migrate::run(db, args).await,
            Command::Alerts(args) => alerts::run(db, args).await,
            Command::Cases(args) => cases::run(db, args).await,
            Command::Serve(args) => serve::run(db, args).await,
            Command::Stream(args) => stream::run(db, args).await,
            Command::Users(args) => users::run(db, args).await,
            Command::Audit(args) => audit::run(db, args).await,
            Command::Export(args) => export::run_export(db, args).await,
            Command::Keys(args) => export::run_keys(args),
            Command::Evidence(args) => export::run_evidence(args),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// Writes to standard output (see [`outln!`]).
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(2);
    }
}

/// The error and its causes, joined by ": ", leaving out a cause whose text the message
/// already holds (errors that print their source would otherwise say it twice).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn an_error_chain_says_each_cause_once() {
        let io = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        );
        let e = anyhow::Error::new(io)
            .context("reading rules/x.yaml: No such file or directory (os error 2)");
        assert_eq!(
            error_text(&e),
            "reading rules/x.yaml: No such file or directory (os error 2)"
        );
        let e = anyhow::anyhow!("disk full").context("writing the report");
        assert_eq!(error_text(&e), "writing the report: disk full");
    }
}
