//! `clearwatch alerts list|show`: the alert queue as the store holds it.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use clearwatch_model::case::Status;
use clearwatch_model::format_ts;
use clearwatch_model::{Severity, StoredAlert};
use clearwatch_store::AlertStore;
use clearwatch_store::{AlertFilter, Suppressed};

#[derive(Args, Debug)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// List alerts, highest score first.
    List(ListArgs),
    /// Show one alert with its metrics and evidence.
    Show(ShowArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only alerts in this case status.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
    /// Only alerts of this severity or above (info, low, medium, high, critical).
    #[arg(long, value_parser = parse_severity)]
    pub severity: Option<Severity>,
    /// Only alerts of this rule id.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only alerts whose subject id contains this text.
    #[arg(long)]
    pub subject: Option<String>,
    /// Alerts an active suppression covers: hide, only or include.
    #[arg(long, default_value = "hide", value_parser = parse_suppressed)]
    pub suppressed: Suppressed,
    /// At most this many alerts.
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    /// Skip this many alerts first.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Print a JSON array of stored alerts instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The alert id.
    pub id: String,
    /// Print the stored alert as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

fn parse_status(s: &str) -> Result<Status, String> {
    s.parse()
}

fn parse_suppressed(s: &str) -> Result<Suppressed, String> {
    s.parse()
}

pub async fn run(db: &super::Db, args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let store = db.open().await?;
    match args.command {
        AlertsCommand::List(a) => {
            let filter = AlertFilter {
                status: a.status,
                min_severity: a.severity,
                rule_id: a.rule,
                subject: a.subject,
                suppressed: a.suppressed,
                limit: a.limit,
                offset: a.offset,
                ..AlertFilter::default()
            };
            let alerts = store.alerts(&filter).await?;
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&alerts)?);
            } else {
                print_table(&alerts);
            }
        }
        AlertsCommand::Show(a) => {
            let Some(alert) = store.alert(&a.id).await? else {
                anyhow::bail!("no alert with id {:?} in the store", a.id);
            };
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&alert)?);
            } else {
                print_one(&alert)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn window(a: &StoredAlert) -> String {
    format!(
        "{}..{}",
        format_ts(a.alert.window.from),
        format_ts(a.alert.window.until)
    )
}

fn print_table(alerts: &[StoredAlert]) {
    if alerts.is_empty() {
        outln!("no alerts");
        return;
    }
    outln!(
        "{:<26} {:<10} {:<8} {:>5} {:<20} {:<43} {:<10} summary",
        "id",
        "rule",
        "severity",
        "score",
        "subject",
        "window",
        "status"
    );
    for s in alerts {
        let a = &s.alert;
        outln!(
            "{:<26} {:<10} {:<8} {:>5} {:<20} {:<43} {:<10} {}",
            a.id,
            a.rule_id,
            a.severity.as_str(),
            a.score,
            format!("{}:{}", a.subject.kind, a.subject.id),
            window(s),
            s.status,
            a.summary
        );
    }
}

fn print_one(s: &StoredAlert) -> anyhow::Result<()> {
    let a = &s.alert;
    outln!("id        {}", a.id);
    outln!(
        "rule      {} ({}) version {}",
        a.rule_id,
        a.title,
        a.rule_version
    );
    outln!("subject   {} {}", a.subject.kind, a.subject.id);
    outln!("window    {}", window(s));
    outln!("severity  {} (score {})", a.severity, a.score);
    outln!(
        "status    {}{}",
        s.status,
        s.assignee
            .as_deref()
            .map(|x| format!(", assigned to {x}"))
            .unwrap_or_default()
    );
    outln!("created   {} (updated {})", s.created_at, s.updated_at);
    outln!("summary   {}", a.summary);
    if let Some(c) = &a.currency {
        outln!("currency  {c}");
    }
    outln!("metrics   {}", serde_json::to_string(&a.metrics)?);
    outln!(
        "evidence  {} transactions, {} accounts",
        a.evidence.transactions.len(),
        a.evidence.accounts.len()
    );
    for t in a.evidence.transactions.iter().take(20) {
        outln!("  tx      {t}");
    }
    if a.evidence.transactions.len() > 20 {
        outln!(
            "  …       {} more (use --json for all)",
            a.evidence.transactions.len() - 20
        );
    }
    for acc in &a.evidence.accounts {
        outln!("  account {acc}");
    }
    Ok(())
}
