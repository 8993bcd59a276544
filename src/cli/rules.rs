//! `clearwatch rules lint|test|list|docs`: tools for rule authors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use clearwatch_detect::testing;
use clearwatch_rules::docs;
use clearwatch_rules::load::{self, PackSource, RuleSet};

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

pub fn run(args: RulesArgs) -> anyhow::Result<ExitCode> {
    Ok(match args.command {
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
                outln!(
                    "{:<8} {:<12} {:<9} {:<9} {:<8} title",
                    "id",
                    "status",
                    "severity",
                    "kind",
                    "source"
                );
                for r in &set.rules {
                    outln!(
                        "{:<8} {:<12} {:<9} {:<9} {:<8} {}",
                        r.id,
                        r.status,
                        r.severity.as_str(),
                        r.kind,
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
