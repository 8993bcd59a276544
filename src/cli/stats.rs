//! `clearwatch stats`: counts, time range, totals and top accounts of the store.

use std::process::ExitCode;

use clap::Args;

use clearwatch_store::IngestStore;
use clearwatch_store::Stats;

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How many top accounts by degree to list.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Also list up to N quarantined rows with file, line, field and reason.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "50")]
    pub quarantine: Option<u64>,
}

pub async fn run(db: &super::Db, args: StatsArgs) -> anyhow::Result<ExitCode> {
    let store = db.open().await?;
    let stats = store.stats(args.top).await?;
    let quarantine = match args.quarantine {
        Some(n) => store.quarantine(None, n).await?,
        None => Vec::new(),
    };
    if args.json {
        let mut v = serde_json::to_value(&stats)?;
        if args.quarantine.is_some() {
            v["quarantine_rows"] = serde_json::to_value(&quarantine)?;
        }
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_table(&stats);
    for q in &quarantine {
        outln!("{}", super::quarantine::line_of(q));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_table(s: &Stats) {
    outln!("transactions         {}", s.transactions);
    outln!("quarantined rows     {}", s.quarantined);
    outln!("batches              {}", s.batches);
    outln!("merchants            {}", s.merchants);
    outln!(
        "accounts             {} registered, {} seen only in transactions",
        s.accounts_registered,
        s.accounts_unregistered
    );
    for (role, n) in &s.accounts_by_role {
        outln!("  {role:<18} {n}");
    }
    if let (Some(a), Some(b)) = (&s.first_ts, &s.last_ts) {
        outln!("time range           {a} .. {b}");
    }
    for t in &s.totals {
        outln!(
            "total {:<14} {} in {} transactions",
            t.currency,
            t.amount_text,
            t.transactions
        );
    }
    for (title, rows) in [
        ("top out-degree", &s.top_out_degree),
        ("top in-degree", &s.top_in_degree),
    ] {
        outln!("{title} (distinct counterparties, transactions)");
        for d in rows.iter() {
            outln!("  {:<24} {:>6} {:>8}", d.account, d.degree, d.transactions);
        }
    }
}
