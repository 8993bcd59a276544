//! The streaming pipeline: transactions published to NATS JetStream, partitioned by
//! account, and workers that commit them to the store and scan it incrementally.
//!
//! - [`publish`] reads files through the same profiles, validation and quarantine rules as
//!   `ingest`, and publishes each transaction to the partition subject of each of its two
//!   accounts, with a message id (`TX_ID:PARTITION`) so that JetStream drops a republished
//!   transaction within its duplicate window; past it, the store skips the known id.
//! - [`work`] consumes a share of the partitions through one durable pull consumer per
//!   partition, commits each fetched batch to the store in one transaction (transactions
//!   already stored count as duplicates), acknowledges the messages only after that commit,
//!   and, if it is the scanning worker, runs the incremental store scan
//!   ([`clearwatch_scan::scan_store_marked`]) every `batch_every`. A worker killed at any
//!   point loses nothing: unacknowledged messages are delivered again after `ack_wait`,
//!   and storing them twice stores nothing new.
//! - [`status`] reports each partition's consumer lag.
//!
//! docs/streaming.md describes the topology and its guarantees.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use clearwatch_ingest::load::{CommitPolicy, LoadMsg, LoadRow, stream_files};
use clearwatch_ingest::{IngestError, Profile, ReadSummary, Rejection, TableKind};
use clearwatch_model::table::row_hash;
use clearwatch_model::{Table, Transaction};
use clearwatch_rules::Rule;
use clearwatch_scan::local::LocalScanner;
use clearwatch_scan::{Mode, ScanError, StoreScan, scan_store_marked};
use clearwatch_store::scans::{Batches, EVALUATED_SOURCE};
use clearwatch_store::{AnyStore, IngestStore, ScanStore, StoreError};

/// Why streaming failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error("stream {stream} has {found} partitions, not {expected}: use --partitions {found}")]
    Partitions {
        stream: String,
        found: u32,
        expected: u32,
    },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Scan(#[from] ScanError),
}

fn nats(e: impl std::fmt::Display) -> StreamError {
    StreamError::Nats(e.to_string())
}

/// Where transactions flow: the JetStream stream and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The stream's name; its subjects are `NAME.tx.PARTITION`.
    pub stream: String,
    pub partitions: u32,
}

impl Topology {
    pub fn new(stream: &str, partitions: u32) -> Result<Topology, StreamError> {
        let valid = !stream.is_empty()
            && stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(StreamError::Config(format!(
                "stream name {stream:?}: letters, digits, `_` and `-` only"
            )));
        }
        if !(1..=1024).contains(&partitions) {
            return Err(StreamError::Config(format!(
                "--partitions {partitions}: between 1 and 1024"
            )));
        }
        Ok(Topology {
            stream: stream.to_string(),
            partitions,
        })
    }

    pub fn subject(&self, partition: u32) -> String {
        format!("{}.tx.{partition}", self.stream)
    }

    /// The durable consumer of a partition.
    pub fn consumer(&self, partition: u32) -> String {
        format!("{}-p{partition}", self.stream)
    }

    /// The partition of an account: a stable hash of its id.
    pub fn partition(&self, account: &str) -> u32 {
        (row_hash(&[account]) as u64 % u64::from(self.partitions)) as u32
    }

    /// The partitions worker `worker` of `of` owns.
    pub fn owned(&self, worker: u32, of: u32) -> Vec<u32> {
        (0..self.partitions).filter(|p| p % of == worker).collect()
    }

    fn description(&self) -> String {
        format!("clearwatch transactions; partitions={}", self.partitions)
    }
}

/// Connects to NATS and returns its JetStream context.
pub async fn connect(url: &str) -> Result<jetstream::Context, StreamError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| StreamError::Nats(format!("cannot reach {url}: {e}")))?;
    Ok(jetstream::new(client))
}

/// The stream of `topo`, created if missing; refuses one made with another partition count.
pub async fn ensure_stream(
    js: &jetstream::Context,
    topo: &Topology,
) -> Result<stream::Stream, StreamError> {
    let mut s = js
        .get_or_create_stream(stream::Config {
            name: topo.stream.clone(),
            subjects: vec![format!("{}.tx.*", topo.stream)],
            description: Some(topo.description()),
            // A file republished within an hour is dropped by JetStream; later, the store
            // skips the transactions it has.
            duplicate_window: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .map_err(nats)?;
    let info = s.info().await.map_err(nats)?;
    match partitions_in(info.config.description.as_deref()) {
        Some(found) if found != topo.partitions => Err(StreamError::Partitions {
            stream: topo.stream.clone(),
            found,
            expected: topo.partitions,
        }),
        _ => Ok(s),
    }
}

/// Deletes the stream and its consumers (tests, and an operator starting over).
pub async fn delete_stream(js: &jetstream::Context, name: &str) -> Result<(), StreamError> {
    js.delete_stream(name).await.map_err(nats)?;
    Ok(())
}

/// What a publish did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    pub transactions: u64,
    /// Messages JetStream stored (a transaction between two partitions makes two).
    pub messages: u64,
    /// Messages JetStream dropped as already published.
    pub duplicates: u64,
    /// Rows refused by validation, and the first of them (`file:line: reason`).
    pub rejected: u64,
    pub first_rejection: Option<String>,
}

/// Publishes the transactions of `files`, read through `profile`, at most `rate` a second.
pub async fn publish(
    js: &jetstream::Context,
    topo: &Topology,
    files: Vec<PathBuf>,
    profile: Profile,
    rate: Option<u32>,
) -> Result<Published, StreamError> {
    let started = Instant::now();
    ensure_stream(js, topo).await?;
    let (tx, mut rx) = mpsc::channel(4);
    let plan: Vec<(TableKind, PathBuf)> = files
        .into_iter()
        .map(|f| (TableKind::Transactions, f))
        .collect();
    let reader = tokio::task::spawn_blocking(move || {
        stream_files(&plan, &profile, CommitPolicy::ANY, tx, &|_| {})
    });
    let mut out = Published::default();
    let mut pending = Vec::new();
    while let Some(msg) = rx.recv().await {
        match msg {
            LoadMsg::Transactions(rows) => {
                for row in rows {
                    out.transactions += 1;
                    if let Some(rate) = rate {
                        let due =
                            Duration::from_secs_f64(out.transactions as f64 / f64::from(rate));
                        if let Some(ahead) = due.checked_sub(started.elapsed()) {
                            tokio::time::sleep(ahead).await;
                        }
                    }
                    let t = &row.record;
                    let payload = serde_json::to_vec(t).map_err(nats)?;
                    let parts: BTreeSet<u32> =
                        [topo.partition(&t.from), topo.partition(&t.to)].into();
                    for p in parts {
                        let publish = PublishMessage::build()
                            .payload(payload.clone().into())
                            .message_id(format!("{}:{p}", t.tx_id));
                        let ack = js
                            .send_publish(topo.subject(p), publish)
                            .await
                            .map_err(nats)?;
                        pending.push(ack);
                        // Acknowledgements are awaited 256 at a time: publishing is
                        // pipelined, and the client bounds the acknowledgements in flight.
                        if pending.len() >= 256 {
                            settle(&mut pending, &mut out).await?;
                        }
                    }
                }
            }
            LoadMsg::Rejected(rows) => {
                out.rejected += rows.len() as u64;
                if out.first_rejection.is_none()
                    && let Some(r) = rows.first()
                {
                    out.first_rejection = Some(format!("{}:{}: {}", r.source, r.line, r.reason));
                }
            }
            _ => {}
        }
    }
    settle(&mut pending, &mut out).await?;
    reader
        .await
        .map_err(|e| StreamError::Config(format!("the file reader stopped: {e}")))??;
    Ok(out)
}

async fn settle(
    pending: &mut Vec<async_nats::jetstream::context::PublishAckFuture>,
    out: &mut Published,
) -> Result<(), StreamError> {
    for ack in pending.drain(..) {
        let ack = ack.await.map_err(nats)?;
        if ack.duplicate {
            out.duplicates += 1;
        } else {
            out.messages += 1;
        }
    }
    Ok(())
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkOptions {
    pub topology: Topology,
    /// This worker's number, `0..of`: it owns the partitions `p` with `p % of == worker`.
    pub worker: u32,
    pub of: u32,
    /// Whether this worker runs the incremental store scan.
    pub scans: bool,
    /// Whether it evaluates the local rules ([`Rule::local`]) for the accounts of each
    /// committed batch before acknowledging it; without, only the store scan runs them.
    pub evaluates: bool,
    /// How often the scan runs.
    pub batch_every: Duration,
    /// How long JetStream waits for an acknowledgement before delivering again.
    pub ack_wait: Duration,
    /// Messages fetched, and committed, at a time per partition.
    pub fetch: usize,
    /// Stop when every owned partition is drained (after a last scan).
    pub once: bool,
    /// Stop once no message arrived for this long (after a last scan).
    pub idle: Option<Duration>,
}

/// What a worker did.
#[derive(Debug, Clone, Default)]
pub struct WorkReport {
    pub messages: u64,
    pub stored: u64,
    /// Transactions already stored (the other partition's copy, or a redelivery).
    pub duplicates: u64,
    pub quarantined: u64,
    pub scans: u64,
    /// Evaluations of local rules for the accounts of a committed batch.
    pub evaluations: u64,
    pub alerts_stored: u64,
    /// From a message's publication to the end of the evaluation of its batch's local
    /// rules: by then the alerts it raises on those rules are stored.
    pub evaluated: Latency,
    /// From a message's publication to the end of the first store scan after its commit
    /// (the scanning worker's own messages): by then every rule has seen it.
    pub scanned: Latency,
}

/// A distribution of latencies in milliseconds, 1 ms to 1 hour at 3 significant digits, in
/// constant memory.
#[derive(Debug, Clone)]
pub struct Latency(hdrhistogram::Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(
            hdrhistogram::Histogram::new_with_bounds(1, 3_600_000, 3).expect("valid fixed bounds"),
        )
    }
}

impl Latency {
    /// Records how long ago (milliseconds since the Unix epoch) something was published.
    fn since(&mut self, published_ms: i64, now_ms: i64) {
        self.0
            .saturating_record(u64::try_from(now_ms - published_ms).unwrap_or(0).max(1));
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` (0.5: the median), if anything was recorded.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        (self.count() > 0).then(|| self.0.value_at_quantile(q))
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How many publication times a worker keeps for its next scan's latency (a scan that lags
/// longer records the first ones only).
const SCAN_LATENCY_SAMPLES: usize = 1_000_000;

/// The durable consumer of a partition, and how many messages one fetch may take: no more
/// than the consumer lets be unacknowledged at once, or a fetch waits for its expiry.
async fn consumer_of(
    stream: &stream::Stream,
    topo: &Topology,
    partition: u32,
    opts: &WorkOptions,
) -> Result<(PullConsumer, usize), StreamError> {
    let name = topo.consumer(partition);
    let c: PullConsumer = stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: topo.subject(partition),
                ack_policy: AckPolicy::Explicit,
                ack_wait: opts.ack_wait,
                max_ack_pending: i64::try_from(opts.fetch).unwrap_or(i64::MAX),
                ..Default::default()
            },
        )
        .await
        .map_err(nats)?;
    let limit = c.cached_info().config.max_ack_pending;
    let fetch = match usize::try_from(limit) {
        Ok(l) if l > 0 => opts.fetch.min(l),
        _ => opts.fetch,
    };
    Ok((c, fetch))
}

/// Consumes the owned partitions into `store` until stopped (or drained, with `once`).
pub async fn work(
    js: &jetstream::Context,
    store: &AnyStore,
    rules: &[&Rule],
    opts: &WorkOptions,
    mut on_scan: impl FnMut(&StoreScan),
) -> Result<WorkReport, StreamError> {
    if opts.of == 0 || opts.worker >= opts.of {
        return Err(StreamError::Config(format!(
            "--worker {} --of {}: the worker number must be below --of",
            opts.worker, opts.of
        )));
    }
    let topo = &opts.topology;
    let stream = ensure_stream(js, topo).await?;
    if opts.evaluates {
        // Evaluations read the touched accounts' transactions by account.
        store.ensure_account_indexes().await?;
    }
    let mut consumers = Vec::new();
    for p in topo.owned(opts.worker, opts.of) {
        let (c, fetch) = consumer_of(&stream, topo, p, opts).await?;
        consumers.push((p, c, fetch));
    }
    let mut st = State {
        scanner: LocalScanner::default(),
        local_rules: if opts.evaluates {
            rules.iter().copied().filter(|r| r.local).collect()
        } else {
            Vec::new()
        },
        report: WorkReport::default(),
        unscanned: Vec::new(),
    };
    let mode = if opts.evaluates {
        Mode::Stream
    } else {
        Mode::Incremental
    };
    let mut last_scan = Instant::now();
    let mut last_message = Instant::now();
    // The batches the last scan saw: a scan runs when any worker stored something since.
    let mut scanned: Option<Batches> = None;
    loop {
        let mut fetched = 0;
        for (p, consumer, fetch) in &mut consumers {
            fetched += drain_once(store, topo, *p, consumer, *fetch, &mut st).await?;
        }
        if fetched > 0 {
            last_message = Instant::now();
        }
        let drained = fetched == 0 && (!opts.once || pending(&mut consumers).await? == 0);
        let idle = fetched == 0 && opts.idle.is_some_and(|d| last_message.elapsed() >= d);
        let stopping = (opts.once && drained) || idle;
        let due = last_scan.elapsed() >= opts.batch_every || stopping;
        if opts.scans && due {
            let newest = store.newest_batches().await?;
            if scanned != Some(newest) {
                let done = scan_store_marked(store, rules, mode).await?;
                st.report.scans += 1;
                st.report.alerts_stored += done.saved.saved.inserted;
                let now = now_ms();
                for published in st.unscanned.drain(..) {
                    st.report.scanned.since(published, now);
                }
                on_scan(&done);
                scanned = Some(newest);
            }
            last_scan = Instant::now();
        }
        if !opts.scans {
            st.unscanned.clear();
        }
        if stopping {
            return Ok(st.report);
        }
        if fetched == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Messages of the owned partitions not yet acknowledged.
async fn pending(consumers: &mut [(u32, PullConsumer, usize)]) -> Result<u64, StreamError> {
    let mut n = 0;
    for (_, c, _) in consumers {
        let info = c.info().await.map_err(nats)?;
        n += info.num_pending + info.num_ack_pending as u64;
    }
    Ok(n)
}

/// What a worker keeps between batches.
struct State<'r> {
    /// Evaluates the local rules as batches are committed, and keeps their registries.
    scanner: LocalScanner,
    local_rules: Vec<&'r Rule>,
    report: WorkReport,
    /// Publication times (Unix milliseconds) of the messages committed since the last
    /// scan, at most [`SCAN_LATENCY_SAMPLES`].
    unscanned: Vec<i64>,
}

/// Fetches up to `max` messages of one partition, commits them in one load, evaluates the
/// local rules for the partition's accounts they touched, then acknowledges them; returns
/// how many.
async fn drain_once(
    store: &AnyStore,
    topo: &Topology,
    partition: u32,
    consumer: &PullConsumer,
    max: usize,
    st: &mut State<'_>,
) -> Result<u64, StreamError> {
    let mut batch = consumer
        .fetch()
        .max_messages(max)
        // An empty partition answers after this wait: short, so that one idle partition
        // does not hold up the others.
        .expires(Duration::from_millis(50))
        .messages()
        .await
        .map_err(nats)?;
    // A batch this worker evaluates is named so that the store scan leaves its local
    // rules to it (`streamed_since_mark`).
    let source = if st.local_rules.is_empty() {
        format!("nats:{}", topo.subject(partition))
    } else {
        format!("{EVALUATED_SOURCE}{}", topo.subject(partition))
    };
    let mut messages = Vec::new();
    let mut rows = Vec::new();
    let mut refused = Vec::new();
    // The partition's accounts this batch touches, stored before or not: a redelivered
    // batch is evaluated again, so a worker killed before evaluating loses nothing.
    let mut touched = BTreeSet::new();
    let mut published = Vec::new();
    while let Some(m) = batch.next().await {
        let m = m.map_err(nats)?;
        let info = m.info().map_err(nats)?;
        let sequence = info.stream_sequence;
        published.push((info.published.unix_timestamp_nanos() / 1_000_000) as i64);
        // Anyone allowed to publish on the subjects can send anything: a message that is
        // not a valid transaction is quarantined (and acknowledged), never trusted.
        match serde_json::from_slice::<Transaction>(&m.payload)
            .map_err(|e| (None, format!("not a transaction: {e}")))
            .and_then(|t| checked(t).map_err(|(f, r)| (Some(f), r)))
        {
            Ok(t) => {
                for a in [&t.from, &t.to] {
                    if topo.partition(a) == partition {
                        touched.insert(a.clone());
                    }
                }
                rows.push(LoadRow {
                    hash: t.content_hash(),
                    line: sequence,
                    record: t,
                })
            }
            Err((field, reason)) => refused.push(Rejection {
                source: source.clone(),
                line: sequence,
                field: field.map(str::to_string),
                reason,
                raw: String::from_utf8_lossy(&m.payload)
                    .chars()
                    .take(4096)
                    .collect(),
            }),
        }
        messages.push(m);
    }
    if messages.is_empty() {
        return Ok(0);
    }
    let n = messages.len() as u64;
    let rejected = refused.len() as u64;
    let (tx, rx) = mpsc::channel(4);
    let load = store.load(rx);
    let feed = async move {
        let msgs = [
            LoadMsg::Begin {
                kind: TableKind::Transactions,
                source,
                profile: "native".to_string(),
            },
            LoadMsg::Transactions(rows),
            LoadMsg::Rejected(refused),
            LoadMsg::End(ReadSummary {
                sha256: String::new(),
                rows_read: n,
                rejected,
                unknown_types: 0,
            }),
            LoadMsg::Commit(CommitPolicy::ANY),
        ];
        for m in msgs {
            if tx.send(m).await.is_err() {
                break;
            }
        }
    };
    let (loaded, ()) = tokio::join!(load, feed);
    let report = &mut st.report;
    for r in loaded? {
        report.stored += r.loaded;
        report.duplicates += r.duplicates;
        report.quarantined += r.quarantined;
    }
    if !st.local_rules.is_empty() {
        if !touched.is_empty() {
            let done = st.scanner.scan(store, &st.local_rules, &touched).await?;
            report.evaluations += 1;
            report.alerts_stored += done.saved.saved.inserted;
        }
        let now = now_ms();
        for &p in &published {
            report.evaluated.since(p, now);
        }
    }
    let room = SCAN_LATENCY_SAMPLES.saturating_sub(st.unscanned.len());
    st.unscanned.extend(published.into_iter().take(room));
    // Acknowledged only once the store has committed and the local rules were evaluated:
    // a crash before this point has the messages delivered again, and the store skips
    // what it already holds.
    for m in messages {
        m.ack().await.map_err(nats)?;
    }
    report.messages += n;
    Ok(n)
}

/// A decoded transaction, or the field and reason that refuse it: the checks a row read by
/// `ingest` has passed that decoding JSON does not make (currency and type are enums,
/// checked by decoding).
fn checked(t: Transaction) -> Result<Transaction, (&'static str, String)> {
    let empty = |v: &str| v.trim().is_empty();
    if empty(&t.tx_id) {
        return Err(("tx_id", "empty transaction id".into()));
    }
    if empty(&t.from) || empty(&t.to) {
        return Err(("from", "empty account id".into()));
    }
    if chrono::DateTime::from_timestamp_millis(t.ts).is_none() {
        return Err(("ts", format!("time {} ms is out of range", t.ts)));
    }
    if t.amount < 0 {
        return Err(("amount", "negative amount".into()));
    }
    Ok(t)
}

/// One partition's consumer, as `stream status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionLag {
    pub partition: u32,
    pub consumer: String,
    /// Messages not yet delivered to a worker.
    pub pending: u64,
    /// Messages delivered but not yet acknowledged (being stored, or lost with a worker).
    pub unacknowledged: u64,
    /// Whether a worker has ever consumed the partition.
    pub exists: bool,
}

/// The lag of every partition's consumer.
pub async fn status(
    js: &jetstream::Context,
    topo: &Topology,
) -> Result<Vec<PartitionLag>, StreamError> {
    let stream = ensure_stream(js, topo).await?;
    lags(&stream, topo).await
}

/// The stream `name`'s partitions (read from the stream, as its workers made it) and the
/// lag of each; `None` if there is no such stream yet. Creates nothing (the dashboard).
pub async fn status_by_name(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<(Topology, Vec<PartitionLag>)>, StreamError> {
    use async_nats::jetstream::ErrorCode;
    use async_nats::jetstream::context::GetStreamErrorKind;
    let mut stream = match js.get_stream(name).await {
        Ok(s) => s,
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                return Ok(None);
            }
            _ => return Err(nats(e)),
        },
    };
    let info = stream.info().await.map_err(nats)?;
    let partitions = partitions_in(info.config.description.as_deref())
        .ok_or_else(|| StreamError::Config(format!("stream {name} was not made by clearwatch")))?;
    let topo = Topology::new(name, partitions)?;
    let lags = lags(&stream, &topo).await?;
    Ok(Some((topo, lags)))
}

/// The partition count a stream's description records (see [`Topology::description`]).
fn partitions_in(description: Option<&str>) -> Option<u32> {
    description?
        .rsplit_once("partitions=")
        .and_then(|(_, n)| n.parse().ok())
}

async fn lags(stream: &stream::Stream, topo: &Topology) -> Result<Vec<PartitionLag>, StreamError> {
    let mut out = Vec::new();
    for p in 0..topo.partitions {
        let name = topo.consumer(p);
        let lag = match stream.get_consumer::<pull::Config>(&name).await {
            Ok(mut c) => {
                let info = c.info().await.map_err(nats)?;
                PartitionLag {
                    partition: p,
                    consumer: name,
                    pending: info.num_pending,
                    unacknowledged: info.num_ack_pending as u64,
                    exists: true,
                }
            }
            Err(_) => PartitionLag {
                partition: p,
                consumer: name,
                pending: 0,
                unacknowledged: 0,
                exists: false,
            },
        };
        out.push(lag);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_cover_every_worker() {
        let t = Topology::new("CW", 8).unwrap();
        assert_eq!(t.partition("A00000001"), t.partition("A00000001"));
        assert!((0..1000).all(|i| t.partition(&format!("A{i}")) < 8));
        let owned: Vec<u32> = (0..3).flat_map(|w| t.owned(w, 3)).collect();
        let mut sorted = owned.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>(), "each partition once");
        assert!(Topology::new("a.b", 8).is_err());
        assert!(Topology::new("CW", 0).is_err());
    }
}
