//! `clearwatch rules lint|test|list|docs`: tools for rule authors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::rules::load::{self, RuleSet, default_rules_dir};
use crate::rules::{docs, testing};

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
    /// List rules: id, title, status, severity, kind.
    List(Paths),
    /// Print the rule reference in Markdown.
    Docs(Paths),
}

#[derive(Args, Debug)]
pub struct Paths {
    /// Rule files or folders (default: the shipped pack in rules/).
    pub paths: Vec<PathBuf>,
}

fn load_or_report(paths: Vec<PathBuf>) -> Result<RuleSet, ExitCode> {
    let paths = if paths.is_empty() {
        vec![default_rules_dir()]
    } else {
        paths
    };
    let (set, diags) = load::load(&paths);
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
                println!("{} rules OK", set.rules.len());
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
                        None => println!("ok     {} {}", o.rule_id, o.name),
                        Some(why) => println!(
                            "FAILED {} {} ({})\n{why}",
                            o.rule_id,
                            o.name,
                            o.path.display()
                        ),
                    }
                }
                println!("{} passed, {} failed", outcomes.len() - failed, failed);
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
                println!(
                    "{:<8} {:<12} {:<9} {:<9} title",
                    "id", "status", "severity", "kind"
                );
                for r in &set.rules {
                    println!(
                        "{:<8} {:<12} {:<9} {:<9} {}",
                        r.id,
                        r.status,
                        r.severity.as_str(),
                        r.kind,
                        r.title
                    );
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        RulesCommand::Docs(p) => match load_or_report(p.paths) {
            Ok(set) => {
                print!("{}", docs::markdown(&set));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    })
}
