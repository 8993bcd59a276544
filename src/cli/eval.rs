//! `clearwatch eval`: scores the rule pack's alerts against labelled truth.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::scan::{SourceArgs, scan_source_in};
use clearwatch_eval::{self as eval, Report, SweepRow, Truth};
use clearwatch_rules::load::{self, PackSource};
use clearwatch_rules::sweep::Sweep;
use clearwatch_scan::{Pack, Scanned};

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
    /// Tune one parameter: score the pack once per value of RULE.PARAM in FROM..TO (by
    /// STEP), e.g. `ML-02.min_payees=4..12:2`. The graph is built once; the rule is the
    /// one of the rule files.
    #[arg(long, value_name = "RULE.PARAM=FROM..TO[:STEP]")]
    pub sweep: Option<Sweep>,
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
    // Every alert, not only what an incremental scan would re-evaluate.
    let scanned = scan_source_in(db, &args.source, true).await?;
    if let Some(sweep) = &args.sweep {
        return run_sweep(&args, sweep, &truth, &scanned);
    }
    let report = eval::score(&truth, &scanned.report.alerts);
    if args.format == "json" {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_sweep(
    args: &EvalArgs,
    sweep: &Sweep,
    truth: &Truth,
    scanned: &Scanned,
) -> anyhow::Result<ExitCode> {
    let pack = Pack::files(PackSource::resolve(&args.source.rules))?;
    let rule = pack.rule(&sweep.rule).ok_or_else(|| {
        let ids: Vec<&str> = pack.set.rules.iter().map(|r| r.id.as_str()).collect();
        anyhow::anyhow!("sweep: no rule {} (rules: {})", sweep.rule, ids.join(", "))
    })?;
    let current = rule.params.get(&sweep.param).ok_or_else(|| {
        let names: Vec<&str> = rule.params.keys().map(String::as_str).collect();
        anyhow::anyhow!(
            "sweep: rule {} has no parameter {} (parameters: {})",
            rule.id,
            sweep.param,
            names.join(", ")
        )
    })?;
    let others: Vec<_> = scanned
        .report
        .alerts
        .iter()
        .filter(|a| a.rule_id != rule.id)
        .cloned()
        .collect();
    let mut rows = Vec::new();
    for value in sweep.values(current).map_err(anyhow::Error::msg)? {
        let overrides = std::collections::BTreeMap::from([(sweep.param.clone(), value.clone())]);
        let tuned = load::with_params(&pack.set, rule, &overrides).map_err(|diags| {
            for d in &diags {
                eprintln!("{d}\n");
            }
            anyhow::anyhow!(
                "sweep: {}.{} = {value} does not compile",
                rule.id,
                sweep.param
            )
        })?;
        let mut alerts = scanned.rerun(&tuned).alerts;
        let rule_alerts = alerts.len();
        alerts.extend(others.iter().cloned());
        alerts.sort_by(|a, b| a.id.cmp(&b.id));
        let report = eval::score(truth, &alerts);
        let rule_precision = report
            .rules
            .iter()
            .find(|r| r.rule_id == rule.id)
            .map_or(0.0, |r| r.precision);
        rows.push(SweepRow {
            value,
            rule_alerts,
            rule_precision,
            report,
        });
    }
    if args.format == "json" {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<12} {:>11} {:>10} {:>11} {:>10} {:>8} {:>10} {:>14}",
        sweep.param,
        "rule alerts",
        "rule prec",
        "pack alerts",
        "pack prec",
        "recall",
        "subj prec",
        "precision@k"
    );
    for r in &rows {
        let at_k = r.report.entities.at_k.first();
        outln!(
            "{:<12} {:>11} {:>10} {:>11} {:>10} {:>8} {:>10} {:>14}",
            r.value.to_string().trim_matches('"'),
            r.rule_alerts,
            pct(r.rule_precision),
            r.report.alerts,
            pct(r.report.precision),
            pct(r.report.overall_recall),
            pct(r.report.entities.precision),
            at_k.map_or("-".into(), |p| format!("@{} {}", p.k, pct(p.precision)))
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn print_table(r: &Report) {
    outln!(
        "pattern recall (a scheme is detected when an alert's subject is one of its hub accounts,"
    );
    outln!("or one alert's evidence covers at least half of its members)");
    outln!(
        "{:<22} {:>8} {:>9} {:>8} {:>8} {:>14}",
        "typology",
        "schemes",
        "detected",
        "recall",
        "decoys",
        "decoys flagged"
    );
    for t in &r.typologies {
        outln!(
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
    outln!("overall recall {}", pct(r.overall_recall));
    outln!();
    outln!(
        "{:<10} {:>7} {:>6} {:>12} {:>11} {:>10}",
        "rule",
        "alerts",
        "true",
        "decoy only",
        "background",
        "precision"
    );
    for s in &r.rules {
        outln!(
            "{:<10} {:>7} {:>6} {:>12} {:>11} {:>10}",
            s.rule_id,
            s.alerts,
            s.true_positives,
            s.on_decoys_only,
            s.background,
            pct(s.precision)
        );
    }
    outln!(
        "{} alerts, precision {}, on injected patterns (true or decoy) {}",
        r.alerts,
        pct(r.precision),
        pct(r.on_pattern_share)
    );
    let e = &r.entities;
    outln!(
        "{} subjects, {} true ({}), {} legitimate look-alikes; ranked by entity risk: {}",
        e.subjects,
        e.true_subjects,
        pct(e.precision),
        e.look_alikes,
        e.at_k
            .iter()
            .map(|p| format!("precision@{} {}", p.k, pct(p.precision)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(t) = &r.transactions {
        outln!(
            "transactions: {} flagged, {} labelled, precision {}, recall {}, F1 {}",
            t.flagged,
            t.positives,
            pct(t.precision),
            pct(t.recall),
            pct(t.f1)
        );
    }
}
