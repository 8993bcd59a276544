//! `clearwatch scan`: runs the rule pack over input files (in memory) or the store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use clearwatch_detect::ScanReport;
use clearwatch_graph::TemporalGraph;
use clearwatch_ingest::Profile;
use clearwatch_model::{Alert, Severity, format_ts, parse_rfc3339};
use clearwatch_rules::RuleStatus;
use clearwatch_rules::load::PackSource;
use clearwatch_scan::{
    self as scan, InputFiles, Mode, Pack, Plan, Published, Range, RulePlan, ScanError, Scanned,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
}

/// Where alerts come from: input files in memory, or the store; and which rules run.
#[derive(Args, Debug)]
pub struct SourceArgs {
    /// Scan this transactions file in memory instead of the store.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Accounts file (with --input).
    #[arg(long, requires = "input")]
    pub accounts: Option<PathBuf>,
    /// Merchants file (with --input).
    #[arg(long, requires = "input")]
    pub merchants: Option<PathBuf>,
    /// Mapping profile of the input files.
    #[arg(long, default_value = "native", requires = "input")]
    pub profile: String,
    /// Rule files or folders (default: rules/ in the working directory if there is one,
    /// else the pack shipped in the binary).
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Rule statuses to run (experimental, test, stable, deprecated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "stable,test,experimental",
        value_parser = parse_rule_status
    )]
    pub status: Vec<RuleStatus>,
    /// Only transactions at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Only transactions before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Run the rule files only: ignore the rule versions published from the dashboard
    /// (store scans otherwise run, for each rule id, its newest published version).
    #[arg(long)]
    pub files_only: bool,
    /// Evaluate every rule over the whole store (a store scan otherwise evaluates, for
    /// each rule version, only what the loads since its last scan touch).
    #[arg(long, conflicts_with = "input")]
    pub full: bool,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit with code 1 when an alert at or above this severity was found.
    #[arg(long)]
    pub fail_on: Option<Severity>,
    /// Print on stderr how long loading the graph and each rule took.
    #[arg(long)]
    pub timings: bool,
}

fn parse_rule_status(s: &str) -> Result<RuleStatus, String> {
    s.parse()
}

fn time_arg(name: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            parse_rfc3339(s)
                .ok_or_else(|| anyhow::anyhow!("--{name} {s:?} is not an RFC 3339 time"))
        })
        .transpose()
}

/// Scans the input files in memory, or the store (whose alerts are stored), with the
/// effective rule pack; notes on stderr what a user should know (refused input rows,
/// skipped rules, rules from the store, what was stored).
pub async fn scan_source(db: &super::Db, args: &SourceArgs) -> anyhow::Result<Scanned> {
    scan_source_in(db, args, args.full).await
}

/// [`scan_source`]; with `full`, every rule runs over the whole store, so the report
/// holds every alert (what `eval` needs).
pub async fn scan_source_in(
    db: &super::Db,
    args: &SourceArgs,
    full: bool,
) -> anyhow::Result<Scanned> {
    let range = Range {
        from: time_arg("from", &args.from)?,
        until: time_arg("until", &args.until)?,
    };
    let source = PackSource::resolve(&args.rules);
    let scanned = match &args.input {
        None => {
            let store = db.open().await?;
            let published = if args.files_only {
                Published::Ignore
            } else {
                Published::Use
            };
            let pack = Pack::load(source, &store, published)
                .await
                .map_err(report_rules)?;
            let pack = pack.runnable().map_err(report_rules)?;
            note_published(pack);
            let rules = pack.with_status(&args.status);
            if range != Range::default() {
                // Part of the time range: alerts are added, nothing is superseded.
                let scanned = scan::scan_store(&store, &rules, range).await?;
                note_skipped(&scanned);
                let saved = scan::save(&store, &rules, &scanned.report.alerts).await?;
                eprintln!(
                    "stored {} new alerts ({} already stored)",
                    saved.inserted, saved.existing
                );
                return Ok(scanned);
            }
            let mode = if full { Mode::Full } else { Mode::Incremental };
            let done = scan::scan_store_marked(&store, &rules, mode).await?;
            note_plans(&done.plans);
            note_skipped(&done.scanned);
            let s = &done.saved;
            eprintln!(
                "stored {} new alerts ({} already stored); {} superseded alerts removed, {} kept because they were worked on",
                s.saved.inserted, s.saved.existing, s.removed, s.kept
            );
            done.scanned
        }
        Some(input) => {
            let pack = Pack::files(source).map_err(report_rules)?;
            let rules = pack.with_status(&args.status);
            let files = InputFiles {
                transactions: input.clone(),
                accounts: args.accounts.clone(),
                merchants: args.merchants.clone(),
                profile: Profile::load(&args.profile)?,
            };
            let scanned = scan::scan_files(&files, &rules, range)?;
            if let Some(load) = &scanned.file_load
                && let Some(first) = load.rejections.first()
            {
                eprintln!(
                    "note: {} input rows refused (first: {}:{}: {}); `clearwatch ingest` keeps them in quarantine",
                    load.rejections.len(),
                    first.source,
                    first.line,
                    first.reason
                );
            }
            note_skipped(&scanned);
            scanned
        }
    };
    Ok(scanned)
}

/// Says on stderr what the scan evaluated for each rule, and why.
pub(crate) fn note_plans(plans: &[RulePlan]) {
    for p in plans {
        let what = match &p.plan {
            Plan::Unchanged => "unchanged: nothing loaded since its last scan".to_string(),
            Plan::Streamed => {
                "evaluated by the stream workers as its transactions arrived".to_string()
            }
            Plan::Whole(why) => format!("all windows ({why})"),
            Plan::Windows {
                from,
                windows,
                subjects,
                ..
            } => format!(
                "{windows} {} from {} (loaded since its last scan), then {subjects} {} over all their windows",
                if *windows == 1 { "window" } else { "windows" },
                format_ts(*from),
                if *subjects == 1 {
                    "subject"
                } else {
                    "subjects"
                },
            ),
        };
        eprintln!("rule {}: {what}", p.rule_id);
    }
}

/// Prints the diagnostics behind a rules error, then passes the error on.
fn report_rules(e: ScanError) -> anyhow::Error {
    for d in e.diagnostics() {
        eprintln!("{d}\n");
    }
    e.into()
}

/// Says on stderr which rules did not run, and which stopped searches at a work cap.
fn note_skipped(s: &Scanned) {
    for s in &s.report.skipped {
        eprintln!("note: rule {} skipped: {}", s.rule_id, s.reason);
    }
    for c in &s.report.capped {
        eprintln!("note: {c}");
    }
}

/// Says on stderr which rules run a version published from the dashboard.
fn note_published(pack: &Pack) {
    for w in pack.unknown_list_warnings() {
        eprintln!("warning: {w}");
    }
    for f in &pack.from_store {
        let r = &f.replaced;
        let by = f.published_by.as_deref().unwrap_or("unknown");
        let note = if r.version == r.file_version {
            "same text as the file"
        } else {
            "overrides the file"
        };
        eprintln!(
            "rule {} from the store: version {} published by {by} at {} ({note})",
            r.rule_id,
            short(&r.version),
            f.published_at,
        );
    }
}

fn short(v: &str) -> &str {
    v.get(..12).unwrap_or(v)
}

pub async fn run(db: &super::Db, args: ScanArgs) -> anyhow::Result<ExitCode> {
    let s = scan_source(db, &args.source).await?;
    if args.timings {
        print_timings(&s);
    }
    print_report(&s.report, &s.graph, s.rules, args.format)?;
    Ok(exit_code(&s.report, args.fail_on))
}

fn exit_code(report: &ScanReport, fail_on: Option<Severity>) -> ExitCode {
    let failing = fail_on.is_some_and(|min| report.alerts.iter().any(|a| a.severity >= min));
    if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The load and each rule's run time, slowest rule first, on stderr.
fn print_timings(s: &Scanned) {
    let mut rules = s.report.timings.clone();
    rules.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total: std::time::Duration = rules.iter().map(|r| r.1).sum();
    eprintln!(
        "{:>10.3} s  read input and build graph",
        s.load.as_secs_f64()
    );
    for (id, took) in &rules {
        let capped = s.report.capped.iter().find(|c| &c.rule_id == id);
        let note = capped.map_or(String::new(), |c| {
            format!(" (work cap: {} of {} searches)", c.capped, c.searches)
        });
        eprintln!("{:>10.3} s  rule {id}{note}", took.as_secs_f64());
    }
    eprintln!(
        "{:>10.3} s  all rules (sum over worker threads)",
        total.as_secs_f64()
    );
}

fn print_report(
    report: &ScanReport,
    g: &TemporalGraph,
    rules: usize,
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&report.alerts)?),
        Format::Jsonl => {
            for a in &report.alerts {
                outln!("{}", serde_json::to_string(a)?);
            }
        }
        Format::Table => {
            for a in &report.alerts {
                print_alert_line(a);
            }
            let count = |s: Severity| report.alerts.iter().filter(|a| a.severity == s).count();
            let by_sev: Vec<String> = Severity::ALL
                .iter()
                .rev()
                .filter(|s| count(**s) > 0)
                .map(|s| format!("{} {}", count(*s), s))
                .collect();
            outln!(
                "{} alerts ({}) from {} rules over {} transactions and {} accounts",
                report.alerts.len(),
                if by_sev.is_empty() {
                    "none".to_string()
                } else {
                    by_sev.join(", ")
                },
                rules,
                g.edge_count(),
                g.account_count()
            );
        }
    }
    Ok(())
}

pub fn print_alert_line(a: &Alert) {
    outln!(
        "{:<7} {:<8} {:>3}  {:<14} {}",
        a.rule_id,
        a.severity.as_str(),
        a.score,
        a.subject.id,
        a.summary
    );
}
