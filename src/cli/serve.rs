//! `clearwatch serve`: the analyst dashboard and JSON API on the store, loopback by
//! default; creates a first admin with a one-time password when there is no user.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use clearwatch_rules::load::PackSource;
use clearwatch_server::{self as server, AppState};
use clearwatch_store::AnyStore;

/// The default address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback exposes the dashboard to the network.
    #[arg(long, default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// The rule pack the rules pages show (default: rules/ in the working directory if
    /// there is one, else the pack shipped in the binary).
    #[arg(long)]
    pub rules: Vec<PathBuf>,
    /// The longest a dashboard backtest may run, in seconds, before it is stopped.
    #[arg(long, default_value_t = server::DEFAULT_BACKTEST_BUDGET.as_secs())]
    pub backtest_seconds: u64,
    /// Hours between the audit checkpoints the server writes into the checkpoints folder
    /// beside the audit key (one at start-up, then every N hours); 0 turns them off.
    #[arg(long, default_value_t = server::DEFAULT_CHECKPOINT_EVERY.as_secs() / 3600)]
    pub checkpoint_hours: u64,

    /// Working days from detection to a decision, the review deadline every case gets
    /// (mainland China's working-day calendar; the report deadline after an approved
    /// escalation is 5 working days).
    #[arg(long, default_value_t = clearwatch_model::case::REVIEW_WORKING_DAYS, value_parser = clap::value_parser!(u32).range(1..=250))]
    pub review_days: u32,

    /// Minutes between automatic assignments: the server deals the unassigned open cases
    /// to the analysts who are not away, as a supervisor's "Assign in turn" does; 0 (the
    /// default) leaves assignment to people; at most 10080 (a week).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10080))]
    pub auto_assign_minutes: u64,

    /// The dashboard is reached through a TLS-terminating proxy: cookies carry `Secure`
    /// even on loopback (they always do on any other address).
    #[arg(long)]
    pub behind_tls: bool,

    /// A NATS server whose stream the admin page "Stream" shows the lag of (see `clearwatch
    /// stream`); without it, the page says no stream is watched.
    #[arg(long, env = "CLEARWATCH_NATS")]
    pub nats: Option<String>,
    /// The JetStream stream to watch.
    #[arg(long, default_value = "CLEARWATCH")]
    pub stream: String,
}

/// How the dashboard runs, beside its store and address.
pub struct Serving {
    pub rules: Vec<PathBuf>,
    pub backtest_budget: std::time::Duration,
    pub checkpoint_every: Option<std::time::Duration>,
    pub behind_tls: bool,
    pub review_days: u32,
    pub auto_assign_every: Option<std::time::Duration>,
    pub stream: Option<server::streaming::StreamWatch>,
}

impl Default for Serving {
    fn default() -> Self {
        Serving {
            rules: Vec::new(),
            backtest_budget: server::DEFAULT_BACKTEST_BUDGET,
            checkpoint_every: Some(server::DEFAULT_CHECKPOINT_EVERY),
            behind_tls: false,
            review_days: clearwatch_model::case::REVIEW_WORKING_DAYS,
            auto_assign_every: None,
            stream: None,
        }
    }
}

pub async fn run(db: &super::Db, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = db.open().await?;
    let budget = std::time::Duration::from_secs(args.backtest_seconds);
    let checkpoints = (args.checkpoint_hours > 0)
        .then(|| std::time::Duration::from_secs(args.checkpoint_hours * 3600));
    let stream = args.nats.map(|nats| server::streaming::StreamWatch {
        nats,
        stream: args.stream,
    });
    serve_store(
        store,
        args.bind,
        Serving {
            rules: args.rules,
            backtest_budget: budget,
            checkpoint_every: checkpoints,
            behind_tls: args.behind_tls,
            review_days: args.review_days,
            auto_assign_every: (args.auto_assign_minutes > 0)
                .then(|| std::time::Duration::from_secs(args.auto_assign_minutes * 60)),
            stream,
        },
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Bootstraps the first admin if needed, then serves until Ctrl-C.
pub async fn serve_store(store: AnyStore, bind: SocketAddr, how: Serving) -> anyhow::Result<()> {
    if !bind.ip().is_loopback() {
        eprintln!("warning: listening on {bind}, which is not a loopback address");
    }
    warn_uncovered_calendar_years();
    let admin = server::bootstrap_admin(&store).await?;
    let mut state = AppState::new(store, PackSource::resolve(&how.rules));
    if let Some(s) = std::sync::Arc::get_mut(&mut state) {
        s.backtest_budget = how.backtest_budget;
        s.checkpoint_every = how.checkpoint_every;
        s.review_days = how.review_days;
        s.auto_assign_every = how.auto_assign_every;
        s.secure_cookies = server::secure_cookies(bind, how.behind_tls);
        s.stream = how.stream;
    }
    server::serve(state, bind, |addr| {
        outln!("dashboard: http://{addr}/  (Ctrl-C to stop)");
        if let Some((user, password)) = &admin {
            outln!("first sign-in: user {user}, one-time password {password}");
            outln!("(it must be changed at that sign-in and works only until then)");
            outln!("(shown once; add users with `clearwatch users add NAME --role ROLE`)");
        }
    })
    .await
    .context("serving the dashboard")?;
    Ok(())
}

/// Says on stderr when the working-day calendar does not cover this year, or next year
/// from November on: deadlines then count weekends only and may be off.
fn warn_uncovered_calendar_years() {
    use chrono::Datelike as _;
    let today = chrono::Utc::now().date_naive();
    let calendar = clearwatch_model::calendar::WorkingCalendar::china();
    let mut years = vec![today.year()];
    if today.month() >= 11 {
        years.push(today.year() + 1);
    }
    for y in years.into_iter().filter(|y| !calendar.covers(*y)) {
        eprintln!(
            "warning: the working-day calendar has no holidays for {y}: deadlines falling in it \
             count weekends only (add crates/model/calendars/CN-{y}.txt)"
        );
    }
}
