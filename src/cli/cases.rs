//! `clearwatch cases list`: the case queue as the dashboard shows it, one case per subject
//! over all of its alerts, read through the same query as `/api/v1/cases`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use clearwatch_model::calendar::china_today;
use clearwatch_model::group_thousands;
use clearwatch_server::cases::{CASES_PER_PAGE, CaseList, CaseParams, CaseSummary, query_of};
use clearwatch_store::queue::case_page;

#[derive(Args, Debug)]
pub struct CasesArgs {
    #[command(subcommand)]
    pub command: CasesCommand,
}

#[derive(Subcommand, Debug)]
pub enum CasesCommand {
    /// List cases, highest entity risk first: each account or merchant once, with its
    /// rules, alerts, amount, status and deadline.
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// `open` (new, in review or escalated), `any`, or one case status.
    #[arg(long, default_value = "open")]
    pub status: String,
    /// Only alerts of this rule id.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only alerts assigned to this user; `-` for unassigned.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Only subjects whose id contains this text.
    #[arg(long)]
    pub subject: Option<String>,
    /// Only cases in this deadline band: on_time, due_soon, overdue, done.
    #[arg(long)]
    pub sla: Option<String>,
    /// risk, due, oldest or alerts.
    #[arg(long, default_value = "risk")]
    pub sort: String,
    /// Alerts an active suppression covers: hide, only or include.
    #[arg(long, default_value = "hide")]
    pub suppressed: String,
    /// The page, 50 cases each.
    #[arg(long, default_value_t = 1)]
    pub page: usize,
    /// Working days from detection to a decision (as `serve --review-days`).
    #[arg(long, default_value_t = clearwatch_model::case::REVIEW_WORKING_DAYS)]
    pub review_days: u32,
    /// Print the JSON of `/api/v1/cases` instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(db: &super::Db, args: CasesArgs) -> anyhow::Result<ExitCode> {
    let CasesCommand::List(a) = args.command;
    let params = CaseParams {
        status: a.status,
        rule: a.rule.unwrap_or_default(),
        assignee: a.assignee.unwrap_or_default(),
        subject: a.subject.unwrap_or_default(),
        sla: a.sla.unwrap_or_default(),
        sort: a.sort,
        suppressed: a.suppressed,
        page: Some(a.page.max(1)),
    };
    let q = query_of(&params).map_err(anyhow::Error::msg)?;
    let store = db.open().await?;
    let page = case_page(&store, &q, china_today(), a.review_days).await?;
    if page.truncated {
        eprintln!(
            "note: folded the {} highest-scored alerts only; narrow with --status, --rule or --subject",
            page.alerts_read
        );
    }
    let list = CaseList {
        cases: page.cases.iter().map(CaseSummary::from).collect(),
        total: page.total,
        page: a.page.max(1),
        pages: page.total.div_ceil(CASES_PER_PAGE).max(1),
        alerts_read: page.alerts_read,
        truncated: page.truncated,
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print_table(&list);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(list: &CaseList) {
    if list.cases.is_empty() {
        outln!("no cases");
        return;
    }
    outln!(
        "{:>4} {:<28} {:<20} {:<10} {:>6} {:<22} {:<10} {:<10} {:<19} {:<12} rules",
        "risk",
        "case",
        "holder",
        "role",
        "alerts",
        "amount",
        "status",
        "opened",
        "due",
        "assignees"
    );
    for c in &list.cases {
        let amount = c
            .amounts
            .iter()
            .map(|a| format!("{} {}", group_thousands(&a.amount), a.currency))
            .collect::<Vec<_>>()
            .join(" + ");
        outln!(
            "{:>4} {:<28} {:<20} {:<10} {:>6} {:<22} {:<10} {:<10} {:<19} {:<12} {}",
            c.score,
            c.id,
            c.holder_name.as_deref().unwrap_or("-"),
            c.role.as_deref().unwrap_or("-"),
            c.alert_ids.len(),
            amount,
            c.status,
            c.opened,
            format!("{} {}", c.due, c.sla),
            if c.assignees.is_empty() {
                "-".to_string()
            } else {
                c.assignees.join(",")
            },
            c.rules.join(", ")
        );
    }
    outln!(
        "{} {} (page {} of {})",
        list.total,
        if list.total == 1 { "case" } else { "cases" },
        list.page,
        list.pages
    );
}
