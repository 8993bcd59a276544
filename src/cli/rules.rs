//! `clearwatch rules lint|test|list|docs|backtest`: tools for rule authors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Db;
use clearwatch_detect::{Stop, testing};
use clearwatch_rules::docs;
use clearwatch_rules::load::{self, PackSource, RuleSet};
use clearwatch_scan as scan;

#[derive(Args, Debug)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Check rules; every error is reported at file:line:column.
    Lint(Paths),
    /// Run every rule's test cases; the last line is `N passed, N failed`.
    Test(Paths),
    /// List rules: id, status, severity, kind, source (shipped in the binary, or a file)
    /// and title.
    List(Paths),
    /// Print the rule reference in Markdown.
    Docs(Paths),
    /// Run one rule file (new or edited, parameters overridden) over the store and compare
    /// its alerts with the stored alerts of its id, subject by subject; nothing is written.
    Backtest(BacktestArgs),
}

#[derive(Args, Debug)]
pub struct BacktestArgs {
    /// The rule file. It may be a rule that is not in the pack yet; it uses the shipped
    /// `_shared` lists and macros, and those of a `_shared` folder beside it.
    pub rule: PathBuf,
    /// Override a parameter: NAME=VALUE (numbers as numbers, durations as `7d`); repeat
    /// for several.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, serde_json::Value)>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `NAME=VALUE`: the value as JSON when it parses (numbers, booleans, lists), else as text.
fn parse_param(s: &str) -> Result<(String, serde_json::Value), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, found {s:?}"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("no parameter name in {s:?}"));
    }
    let value = serde_json::from_str(value.trim())
        .unwrap_or_else(|_| serde_json::Value::String(value.trim().to_string()));
    Ok((name.to_string(), value))
}

#[derive(Args, Debug)]
pub struct Paths {
    /// Rule files or folders (default: rules/ in the working directory if there is one,
    /// else the pack shipped in the binary).
    pub paths: Vec<PathBuf>,
}

fn load_or_report(paths: Vec<PathBuf>) -> Result<RuleSet, ExitCode> {
    let (set, diags) = load::load_pack(&PackSource::resolve(&paths));
    if diags.is_empty() {
        return Ok(set);
    }
    for d in &diags {
        eprintln!("{d}\n");
    }
    eprintln!("{} error(s) in rules", diags.len());
    Err(ExitCode::from(2))
}

pub async fn run(db: &Db, args: RulesArgs) -> anyhow::Result<ExitCode> {
    Ok(match args.command {
        RulesCommand::Backtest(b) => backtest(db, b).await?,
        RulesCommand::Lint(p) => match load_or_report(p.paths) {
            Ok(set) => {
                let warnings: Vec<_> = set.rules.iter().flat_map(|r| &r.warnings).collect();
                for w in &warnings {
                    eprintln!("{w}\n");
                }
                if warnings.is_empty() {
                    outln!("{} rules OK", set.rules.len());
                } else {
                    outln!(
                        "{} rules OK, {} warning(s)",
                        set.rules.len(),
                        warnings.len()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        RulesCommand::Test(p) => match load_or_report(p.paths) {
            Ok(set) => {
                let outcomes = testing::run_all(&set);
                let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
                for o in &outcomes {
                    match &o.failure {
                        None => outln!("ok     {} {}", o.rule_id, o.name),
                        Some(why) => outln!(
                            "FAILED {} {} ({})\n{why}",
                            o.rule_id,
                            o.name,
                            o.path.display()
                        ),
                    }
                }
                outln!("{} passed, {} failed", outcomes.len() - failed, failed);
                if failed > 0 {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(code) => code,
        },
        RulesCommand::List(p) => match load_or_report(p.paths) {
            Ok(set) => {
                // `reads`: `account` for rules whose findings on an account rest on its own
                // transactions (stream workers evaluate them as they arrive), else `graph`.
                outln!(
                    "{:<8} {:<12} {:<9} {:<9} {:<8} {:<8} title",
                    "id",
                    "status",
                    "severity",
                    "kind",
                    "reads",
                    "source"
                );
                for r in &set.rules {
                    outln!(
                        "{:<8} {:<12} {:<9} {:<9} {:<8} {:<8} {}",
                        r.id,
                        r.status.to_string(),
                        r.severity.as_str(),
                        r.kind,
                        if r.local { "account" } else { "graph" },
                        r.origin.as_str(),
                        r.title
                    );
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        RulesCommand::Docs(p) => match load_or_report(p.paths) {
            Ok(set) => {
                out!("{}", docs::markdown(&set));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    })
}

/// How long a command-line backtest may run: as long as it takes, within reason.
const CLI_BACKTEST_BUDGET: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

async fn backtest(db: &Db, args: BacktestArgs) -> anyhow::Result<ExitCode> {
    let set = match load_or_report(vec![args.rule.clone()]) {
        Ok(set) => set,
        Err(code) => return Ok(code),
    };
    let [rule] = set.rules.as_slice() else {
        anyhow::bail!(
            "{} holds {} rules; backtest takes one rule file",
            args.rule.display(),
            set.rules.len()
        );
    };
    let overrides: std::collections::BTreeMap<String, serde_json::Value> =
        args.params.into_iter().collect();
    let rule = match load::with_params(&set, rule, &overrides) {
        Ok(rule) => rule,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}\n");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let store = db.open().await?;
    let rule_id = rule.id.clone();
    let b = scan::backtest(&store, rule, Stop::default(), CLI_BACKTEST_BUDGET).await?;
    let counts = (
        b.count(scan::Change::Appears),
        b.count(scan::Change::Disappears),
        b.count(scan::Change::Changed),
        b.unchanged,
    );
    if args.json {
        let subjects: Vec<serde_json::Value> = b
            .subjects
            .iter()
            .map(|s| {
                let (old, new) = s.scores();
                serde_json::json!({
                    "subject": s.subject,
                    "change": s.change,
                    "score_before": old,
                    "score_after": new,
                    "alerts_before": s.old_alerts,
                    "alerts_after": s.new_alerts,
                    "summary": s.new.as_ref().map(|a| &a.summary)
                        .or_else(|| s.old.as_ref().map(|a| &a.alert.summary)),
                    "stored_alert": s.old.as_ref().map(|a| &a.alert.id),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::json!({
                "rule_id": rule_id,
                "appears": counts.0,
                "disappears": counts.1,
                "changed": counts.2,
                "unchanged": counts.3,
                "capped": b.capped.as_ref().map(|c| c.capped),
                "subjects": subjects,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let dash = |s: Option<u32>| s.map_or_else(|| "—".to_string(), |s| s.to_string());
    outln!(
        "{:<11} {:<28} {:>9} {:>9}  summary",
        "change",
        "subject",
        "score",
        "alerts"
    );
    for s in &b.subjects {
        let (old, new) = s.scores();
        let summary = s
            .new
            .as_ref()
            .map(|a| a.summary.as_str())
            .or_else(|| s.old.as_ref().map(|a| a.alert.summary.as_str()))
            .unwrap_or("");
        outln!(
            "{:<11} {:<28} {:>9} {:>9}  {}",
            s.change.as_str(),
            format!("{} {}", s.subject.kind, s.subject.id),
            format!("{}→{}", dash(old), dash(new)),
            format!("{}→{}", s.old_alerts, s.new_alerts),
            summary.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    if let Some(c) = &b.capped {
        eprintln!(
            "warning: {} of {} searches of {rule_id} stopped at the work cap",
            c.capped, c.searches
        );
    }
    outln!(
        "{rule_id}: {} subjects appear, {} disappear, {} change, {} unchanged",
        counts.0,
        counts.1,
        counts.2,
        counts.3
    );
    Ok(ExitCode::SUCCESS)
}
