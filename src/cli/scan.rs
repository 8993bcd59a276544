//! `clearwatch scan`: runs the rule pack over input files (in memory) or the store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::detect::{self, Alert, Inputs, ScanReport, Severity};
use crate::graph::TemporalGraph;
use crate::graph::load::{from_files, from_store};
use crate::ingest::Profile;
use crate::model::parse_rfc3339;
use crate::rules::Rule;
use crate::rules::load::{self, default_rules_dir};
use crate::store::{self, Store};

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
    /// Rule files or folders (default: the shipped pack in rules/).
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Rule statuses to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "stable,test,experimental"
    )]
    pub status: Vec<String>,
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

fn time_arg(name: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            parse_rfc3339(s)
                .ok_or_else(|| anyhow::anyhow!("--{name} {s:?} is not an RFC 3339 time"))
        })
        .transpose()
}

/// What a scan produced.
pub struct Scanned {
    pub report: ScanReport,
    pub graph: TemporalGraph,
    pub rules: usize,
    /// Time spent reading the input and building the graph.
    pub load: std::time::Duration,
}

/// Loads the rules, builds the graph from the input files or the store, runs the rules;
/// alerts of a store scan are stored.
pub async fn scan_source(db: &str, args: &SourceArgs) -> anyhow::Result<Scanned> {
    let from = time_arg("from", &args.from)?;
    let until = time_arg("until", &args.until)?;
    let paths = if args.rules.is_empty() {
        vec![default_rules_dir()]
    } else {
        args.rules.clone()
    };
    let (mut set, diags) = load::load(&paths);
    if !diags.is_empty() {
        for d in &diags {
            eprintln!("{d}\n");
        }
        anyhow::bail!(
            "{} error(s) in rules: fix them or run `clearwatch rules lint`",
            diags.len()
        );
    }
    let Some(input) = &args.input else {
        let store = store::open(db).await?;
        if !args.files_only {
            use_published(&store, &mut set).await?;
        }
        let rules: Vec<&Rule> = set
            .rules
            .iter()
            .filter(|r| args.status.contains(&r.status))
            .collect();
        let (report, graph, load) = scan_store(&store, &rules, from, until).await?;
        return Ok(Scanned {
            report,
            graph,
            rules: rules.len(),
            load,
        });
    };
    let rules: Vec<&Rule> = set
        .rules
        .iter()
        .filter(|r| args.status.contains(&r.status))
        .collect();
    let profile = Profile::load(&args.profile)?;
    let started = std::time::Instant::now();
    let (graph, load) = from_files(
        input,
        args.accounts.as_deref(),
        args.merchants.as_deref(),
        &profile,
        from,
        until,
    )?;
    if let Some(first) = load.rejections.first() {
        eprintln!(
            "note: {} input rows refused (first: {}:{}: {}); `clearwatch ingest` keeps them in quarantine",
            load.rejections.len(),
            first.source,
            first.line,
            first.reason
        );
    }
    let load_time = started.elapsed();
    let inputs = Inputs {
        accounts: args.accounts.is_some(),
        merchants: args.merchants.is_some(),
    };
    let report = detect::run(&rules, &graph, inputs);
    for s in &report.skipped {
        eprintln!("note: rule {} skipped: {}", s.rule_id, s.reason);
    }
    Ok(Scanned {
        report,
        graph,
        rules: rules.len(),
        load: load_time,
    })
}

/// Replaces the rules of `set` that have a version published from the dashboard by that
/// version (the newest publication of each rule id), and says on stderr which rules came
/// from the store. A published text that no longer compiles is an error.
pub async fn use_published(store: &store::AnyStore, set: &mut load::RuleSet) -> anyhow::Result<()> {
    let published = store.published_rules().await?;
    if published.is_empty() {
        return Ok(());
    }
    let texts: Vec<(String, String)> = published
        .iter()
        .map(|p| (p.rule_id.clone(), p.text.clone()))
        .collect();
    let (replaced, diags) = load::apply_published(set, &texts);
    if !diags.is_empty() {
        for d in &diags {
            eprintln!("{d}\n");
        }
        anyhow::bail!(
            "{} error(s) in rule versions published from the dashboard: publish a fixed version, or scan with --files-only",
            diags.len()
        );
    }
    for r in &replaced {
        let p = published.iter().find(|p| p.rule_id == r.rule_id);
        let by = p
            .and_then(|p| p.published_by.as_deref())
            .unwrap_or("unknown");
        let at = p.map_or("", |p| p.created_at.as_str());
        let note = if r.version == r.file_version {
            "same text as the file"
        } else {
            "overrides the file"
        };
        eprintln!(
            "rule {} from the store: version {} published by {by} at {at} ({note})",
            r.rule_id,
            short(&r.version),
        );
    }
    Ok(())
}

fn short(v: &str) -> &str {
    v.get(..12).unwrap_or(v)
}

pub async fn run(db: &str, args: ScanArgs) -> anyhow::Result<ExitCode> {
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

/// Scans what the store holds and stores the alerts (re-running adds nothing new; a
/// changed rule version makes new alerts).
pub async fn scan_store(
    store: &store::AnyStore,
    rules: &[&Rule],
    from: Option<i64>,
    until: Option<i64>,
) -> anyhow::Result<(ScanReport, TemporalGraph, std::time::Duration)> {
    let started = std::time::Instant::now();
    let (builder, inputs) = from_store(store, from, until).await?;
    let graph = builder.build();
    let load = started.elapsed();
    let report = detect::run(rules, &graph, inputs);
    for s in &report.skipped {
        eprintln!("note: rule {} skipped: {}", s.rule_id, s.reason);
    }
    let versions: Vec<store::RuleVersion> = rules
        .iter()
        .map(|r| store::RuleVersion {
            rule_id: r.id.clone(),
            version: r.version.clone(),
            title: r.title.clone(),
            text: r.text.clone(),
        })
        .collect();
    let saved = store.save_alerts(&report.alerts, &versions).await?;
    eprintln!(
        "stored {} new alerts ({} already stored)",
        saved.inserted, saved.existing
    );
    Ok((report, graph, load))
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
        eprintln!("{:>10.3} s  rule {id}", took.as_secs_f64());
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
        Format::Json => println!("{}", serde_json::to_string_pretty(&report.alerts)?),
        Format::Jsonl => {
            for a in &report.alerts {
                println!("{}", serde_json::to_string(a)?);
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
            println!(
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
    println!(
        "{:<7} {:<8} {:>3}  {:<14} {}",
        a.rule_id,
        a.severity.as_str(),
        a.score,
        a.subject.id,
        a.summary
    );
}
