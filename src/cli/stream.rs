//! `clearwatch stream`: publish transactions to NATS JetStream, run workers that store and
//! scan them, and show each partition's lag (docs/streaming.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use clearwatch_ingest::Profile;
use clearwatch_rules::load::PackSource;
use clearwatch_rules::params::parse_duration;
use clearwatch_scan::{Pack, Published};
use clearwatch_store::AlertStore as _;
use clearwatch_stream::{self as stream, Topology, WorkOptions};

#[derive(Args, Debug)]
pub struct StreamArgs {
    #[command(subcommand)]
    pub command: StreamCommand,
}

/// Where the stream is.
#[derive(Args, Debug)]
pub struct StreamAt {
    /// The NATS server, with JetStream enabled.
    #[arg(long, default_value = "nats://127.0.0.1:4222", env = "CLEARWATCH_NATS")]
    pub nats: String,
    /// The JetStream stream; its subjects are NAME.tx.PARTITION.
    #[arg(long, default_value = "CLEARWATCH")]
    pub stream: String,
    /// Partitions (fixed when the stream is made; publishers and workers must agree).
    #[arg(long, default_value_t = 8)]
    pub partitions: u32,
}

impl StreamAt {
    fn topology(&self) -> anyhow::Result<Topology> {
        Ok(Topology::new(&self.stream, self.partitions)?)
    }
}

#[derive(Subcommand, Debug)]
pub enum StreamCommand {
    /// Publish the transactions of files (read as `ingest` reads them) to their accounts'
    /// partitions.
    Publish {
        #[command(flatten)]
        at: StreamAt,
        #[arg(long = "transactions", required = true)]
        transactions: Vec<PathBuf>,
        /// Mapping profile of the files.
        #[arg(long, default_value = "native")]
        profile: String,
        /// Publish at most this many transactions per second (a replay at a steady pace);
        /// without it, as fast as JetStream takes them.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        rate: Option<u32>,
    },
    /// Consume this worker's partitions into the store (--db), evaluate the rules that read
    /// one account's transactions as they arrive, and scan the store for the others.
    Work {
        #[command(flatten)]
        at: StreamAt,
        /// This worker's number, from 0.
        #[arg(long, default_value_t = 0)]
        worker: u32,
        /// How many workers share the partitions.
        #[arg(long, default_value_t = 1)]
        of: u32,
        /// How often the incremental store scan runs (by worker 0, unless --no-scan).
        #[arg(long, default_value = "10s", value_parser = duration)]
        batch_every: Duration,
        /// This worker does not scan.
        #[arg(long)]
        no_scan: bool,
        /// This worker does not evaluate the local rules (star, relation by account,
        /// series by account) as batches arrive; the store scan evaluates them instead.
        #[arg(long)]
        no_evaluate: bool,
        /// How long a delivered message may stay unacknowledged before it is delivered
        /// again (a worker that died).
        #[arg(long, default_value = "30s", value_parser = duration)]
        ack_wait: Duration,
        /// Messages fetched and committed at a time, per partition.
        #[arg(long, default_value_t = 2000)]
        fetch: usize,
        /// Stop once every owned partition is drained and scanned.
        #[arg(long)]
        once: bool,
        /// Stop once no message arrived for this long (after a last scan).
        #[arg(long, value_parser = duration)]
        idle: Option<Duration>,
        /// Rule files or folders (as for `scan`).
        #[arg(long = "rules")]
        rules: Vec<PathBuf>,
    },
    /// Delete the stream, its messages and its consumers.
    Delete {
        #[command(flatten)]
        at: StreamAt,
    },
    /// Each partition's consumer lag.
    Status {
        #[command(flatten)]
        at: StreamAt,
        #[arg(long)]
        json: bool,
    },
}

fn duration(s: &str) -> Result<Duration, String> {
    let ms = parse_duration(s)?;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| format!("{s:?} is negative"))
}

pub async fn run(db: &super::Db, args: StreamArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StreamCommand::Publish {
            at,
            transactions,
            profile,
            rate,
        } => {
            let topo = at.topology()?;
            let js = stream::connect(&at.nats).await?;
            let profile = Profile::load(&profile)?;
            let p = stream::publish(&js, &topo, transactions, profile, rate).await?;
            outln!(
                "published {} transactions as {} messages to {} ({} partitions); {} already published",
                p.transactions,
                p.messages,
                topo.stream,
                topo.partitions,
                p.duplicates
            );
            if let Some(first) = &p.first_rejection {
                eprintln!(
                    "note: {} rows refused (first: {first}); `clearwatch ingest` keeps them in quarantine",
                    p.rejected
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StreamCommand::Work {
            at,
            worker,
            of,
            batch_every,
            no_scan,
            no_evaluate,
            ack_wait,
            fetch,
            once,
            idle,
            rules,
        } => {
            let opts = WorkOptions {
                topology: at.topology()?,
                worker,
                of,
                scans: worker == 0 && !no_scan,
                evaluates: !no_evaluate,
                batch_every,
                ack_wait,
                fetch: fetch.clamp(1, 100_000),
                once,
                idle,
            };
            let store = db.open().await?;
            let pack = Pack::load(PackSource::resolve(&rules), &store, Published::Use).await?;
            for w in pack.unknown_list_warnings() {
                eprintln!("warning: {w}");
            }
            let pack = pack.runnable()?;
            let rules = pack.active();
            let js = stream::connect(&at.nats).await?;
            eprintln!(
                "worker {worker} of {of}: partitions {:?} of {}; evaluates {} local rules as batches arrive",
                opts.topology.owned(worker, of),
                opts.topology.stream,
                if opts.evaluates {
                    rules.iter().filter(|r| r.local).count()
                } else {
                    0
                }
            );
            let r = stream::work(&js, &store, &rules, &opts, |s| {
                super::scan::note_plans(&s.plans);
                eprintln!(
                    "scan: {} new alerts stored, {} superseded removed",
                    s.saved.saved.inserted, s.saved.removed
                );
            })
            .await?;
            // Evaluations write an alert again as its episode grows: say what the store
            // holds, beside how many writes there were.
            let held = store
                .count_alerts(&clearwatch_store::AlertFilter::default())
                .await?;
            outln!(
                "{} messages: {} transactions stored, {} already stored, {} quarantined; {} evaluations and {} scans wrote {} alerts; the store holds {held} alerts",
                r.messages,
                r.stored,
                r.duplicates,
                r.quarantined,
                r.evaluations,
                r.scans,
                r.alerts_stored
            );
            for (what, l) in [
                ("evaluated (local rules)", &r.evaluated),
                ("scanned (every rule)", &r.scanned),
            ] {
                if let (Some(p50), Some(p99)) = (l.quantile_ms(0.5), l.quantile_ms(0.99)) {
                    outln!(
                        "latency from publication to {what}: p50 {p50} ms, p99 {p99} ms over {} messages",
                        l.count()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StreamCommand::Delete { at } => {
            let topo = at.topology()?;
            let js = stream::connect(&at.nats).await?;
            stream::delete_stream(&js, &topo.stream).await?;
            outln!("deleted stream {}", at.stream);
            Ok(ExitCode::SUCCESS)
        }
        StreamCommand::Status { at, json } => {
            let topo = at.topology()?;
            let js = stream::connect(&at.nats).await?;
            let lags = stream::status(&js, &topo).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&lags)?);
            } else {
                outln!(
                    "{:>9}  {:<24} {:>10} {:>14}",
                    "partition",
                    "consumer",
                    "pending",
                    "unacknowledged"
                );
                for l in &lags {
                    let consumer = if l.exists {
                        l.consumer.as_str()
                    } else {
                        "(none yet)"
                    };
                    outln!(
                        "{:>9}  {:<24} {:>10} {:>14}",
                        l.partition,
                        consumer,
                        l.pending,
                        l.unacknowledged
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
