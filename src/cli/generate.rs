//! `clearwatch generate`: writes a simulated payment ecosystem with labelled schemes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use clearwatch_generate::{ScenarioConfig, Variant, demo_config, generate_two_clear};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scenario {
    /// Acquiring with compliant merchants, legitimate aggregators and two-clear operators.
    TwoClear,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[arg(long, value_enum, default_value = "two-clear")]
    pub scenario: Scenario,
    /// Background variant (datasets/README.md): default, payroll, marketplace, dense,
    /// sparse-registry, small-slow or realistic.
    #[arg(long, default_value = "default")]
    pub variant: Variant,
    /// About how many transactions to write: sets --scale for the variant and --days
    /// (cannot be combined with --scale).
    #[arg(long, conflicts_with = "scale")]
    pub transactions: Option<u64>,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Start from the demo set's configuration (datasets/demo).
    #[arg(long)]
    pub demo: bool,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub days: Option<u32>,
    #[arg(long)]
    pub merchants: Option<u32>,
    #[arg(long)]
    pub consumers: Option<u32>,
    /// Multiplies every population (scale 390 with 30 days gives about 10 million transactions).
    #[arg(long)]
    pub scale: Option<f64>,
    /// Output format of the data files (truth.csv stays CSV).
    #[arg(long, value_enum, default_value = "csv")]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Csv,
    Jsonl,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let Scenario::TwoClear = args.scenario;
    let mut cfg = if args.demo {
        demo_config()
    } else {
        ScenarioConfig::default()
    };
    cfg.seed = args.seed.unwrap_or(cfg.seed);
    cfg.days = args.days.unwrap_or(cfg.days);
    cfg.merchants = args.merchants.unwrap_or(cfg.merchants);
    cfg.consumers = args.consumers.unwrap_or(cfg.consumers);
    cfg.scale = args.scale.unwrap_or(cfg.scale);
    cfg.variant = args.variant;
    if let Some(n) = args.transactions {
        anyhow::ensure!(n > 0, "--transactions must be at least 1");
        cfg.scale = ScenarioConfig::scale_for_transactions(cfg.variant, cfg.days, n);
    }
    let s = generate_two_clear(&cfg, &args.out)?;
    if args.format == OutputFormat::Jsonl {
        for name in ["transactions.csv", "accounts.csv", "merchants.csv"] {
            clearwatch_generate::jsonl::csv_to_jsonl(&args.out.join(name))?;
        }
    }
    outln!(
        "wrote {} transactions, {} accounts, {} merchants, {} labelled schemes ({} variant) to {}",
        s.transactions,
        s.accounts,
        s.merchants,
        s.schemes,
        cfg.variant,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
