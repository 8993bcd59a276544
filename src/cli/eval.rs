//! `clearwatch eval`: scores the rule pack's alerts against labelled truth.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::scan::{SourceArgs, scan_source};
use clearwatch_eval::{self as eval, Report};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Truth file or folder (truth.csv; AMLSim alert_accounts.csv; PaySim rawLog.csv;
    /// AMLGentex alert_models.csv; AMLworld *_Patterns.txt).
    #[arg(long)]
    pub truth: PathBuf,
    /// native, amlsim, amlsim-sample, paysim, amlgentex or amlworld.
    #[arg(long, default_value = "native")]
    pub truth_profile: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// table or json.
    #[arg(long, default_value = "table")]
    pub format: String,
}

pub async fn run(db: &super::Db, args: EvalArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        matches!(args.format.as_str(), "table" | "json"),
        "--format {:?}: valid values are table, json",
        args.format
    );
    let truth = eval::truth::load(
        &args.truth_profile,
        &args.truth,
        args.source.input.as_deref(),
    )?;
    let scanned = scan_source(db, &args.source).await?;
    let report = eval::score(&truth, &scanned.report.alerts);
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn print_table(r: &Report) {
    println!(
        "pattern recall (a scheme is detected when an alert's subject is one of its hub accounts,"
    );
    println!("or one alert's evidence covers at least half of its members)");
    println!(
        "{:<22} {:>8} {:>9} {:>8} {:>8} {:>14}",
        "typology", "schemes", "detected", "recall", "decoys", "decoys flagged"
    );
    for t in &r.typologies {
        println!(
            "{:<22} {:>8} {:>9} {:>8} {:>8} {:>14}",
            t.typology,
            t.schemes,
            t.detected,
            if t.schemes == 0 {
                "-".into()
            } else {
                pct(t.recall)
            },
            t.decoys,
            t.decoys_flagged
        );
    }
    println!("overall recall {}", pct(r.overall_recall));
    println!();
    println!(
        "{:<10} {:>7} {:>6} {:>12} {:>11} {:>10}",
        "rule", "alerts", "true", "decoy only", "background", "precision"
    );
    for s in &r.rules {
        println!(
            "{:<10} {:>7} {:>6} {:>12} {:>11} {:>10}",
            s.rule_id,
            s.alerts,
            s.true_positives,
            s.on_decoys_only,
            s.background,
            pct(s.precision)
        );
    }
    println!(
        "{} alerts, precision {}, on injected patterns (true or decoy) {}",
        r.alerts,
        pct(r.precision),
        pct(r.on_pattern_share)
    );
    if let Some(t) = &r.transactions {
        println!(
            "transactions: {} flagged, {} labelled, precision {}, recall {}, F1 {}",
            t.flagged,
            t.positives,
            pct(t.precision),
            pct(t.recall),
            pct(t.f1)
        );
    }
}
