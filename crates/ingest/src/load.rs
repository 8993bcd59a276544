//! The load stream: files are read on a blocking thread and sent to a store as chunks of
//! records and rejections, framed per file, and finally committed. A stream that ends
//! without `Commit` (a file failed) must leave the store unchanged.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc::Sender;

use super::{IngestError, Profile, ReadSummary, Rejection, TableKind};
use clearwatch_model::{Account, Merchant, Table, Transaction};

/// Records per chunk sent to the store.
pub const CHUNK: usize = 4096;

/// A record with where it came from and its content fingerprint.
#[derive(Debug, Clone)]
pub struct LoadRow<T> {
    pub record: T,
    pub line: u64,
    pub hash: i64,
}

#[derive(Debug)]
pub enum LoadMsg {
    Begin {
        kind: TableKind,
        source: String,
        profile: String,
    },
    Transactions(Vec<LoadRow<Transaction>>),
    Accounts(Vec<LoadRow<Account>>),
    Merchants(Vec<LoadRow<Merchant>>),
    Rejected(Vec<Rejection>),
    End(ReadSummary),
    /// The quarantined rows of `batch_id` on these lines were read again (by the batch
    /// this load made): they leave that batch's quarantine, audited as `quarantine.retry`.
    Retried {
        batch_id: i64,
        lines: Vec<u64>,
        actor: String,
    },
    Commit(CommitPolicy),
}

/// When a load may be committed: a file whose quarantined share passes the limit makes
/// the store keep nothing of the load (a half-read export is worse than none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommitPolicy {
    /// The largest share (0 to 1) of a file's rows that may be quarantined; `None`: any.
    pub max_quarantined: Option<f64>,
}

impl CommitPolicy {
    /// Commits whatever loaded.
    pub const ANY: CommitPolicy = CommitPolicy {
        max_quarantined: None,
    };

    /// Whether a file with `quarantined` of `read` rows quarantined may be committed.
    pub fn allows(&self, quarantined: u64, read: u64) -> bool {
        self.max_quarantined
            .is_none_or(|max| quarantined as f64 <= max * read as f64)
    }
}

impl Default for CommitPolicy {
    /// At most 1 % of a file's rows quarantined.
    fn default() -> Self {
        CommitPolicy {
            max_quarantined: Some(0.01),
        }
    }
}

/// Sends a chunk when it is full; a closed channel means the store gave up.
struct Chunker<'a, T> {
    buf: Vec<T>,
    tx: &'a Sender<LoadMsg>,
    wrap: fn(Vec<T>) -> LoadMsg,
    progress: &'a dyn Fn(u64),
    closed: bool,
}

impl<'a, T> Chunker<'a, T> {
    fn new(
        tx: &'a Sender<LoadMsg>,
        wrap: fn(Vec<T>) -> LoadMsg,
        progress: &'a dyn Fn(u64),
    ) -> Self {
        Chunker {
            buf: Vec::with_capacity(CHUNK),
            tx,
            wrap,
            progress,
            closed: false,
        }
    }

    fn push(&mut self, item: T) {
        self.buf.push(item);
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.closed {
            self.buf.clear();
            return;
        }
        (self.progress)(self.buf.len() as u64);
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.closed = self.tx.blocking_send((self.wrap)(chunk)).is_err();
    }
}

/// Reads every file of the plan and streams it to `tx`; ends with `Commit` only when
/// every file was readable. Runs on a blocking thread; `progress` is told of each chunk's
/// row count.
pub fn stream_files(
    plan: &[(TableKind, PathBuf)],
    profile: &Profile,
    policy: CommitPolicy,
    tx: Sender<LoadMsg>,
    progress: &dyn Fn(u64),
) -> Result<(), IngestError> {
    for (kind, path) in plan {
        let source = path.display().to_string();
        if send_file(*kind, path, source, profile, &|_| true, &tx, progress)?.is_none() {
            return Ok(());
        }
    }
    let _ = tx.blocking_send(LoadMsg::Commit(policy));
    Ok(())
}

/// What `quarantine retry` re-reads: the rows a batch quarantined, from its file.
#[derive(Debug, Clone)]
pub struct Retry {
    pub batch_id: i64,
    pub kind: TableKind,
    pub file: PathBuf,
    /// The file's SHA-256 when the batch loaded it: a file changed since is refused.
    pub sha256: String,
    /// The lines of the quarantined rows.
    pub lines: BTreeSet<u64>,
    /// Who retries, for the audit log.
    pub actor: String,
}

/// Reads the quarantined lines of `retry.file` again through `profile`, as a new batch:
/// rows that now load are stored, the others are quarantined again with today's reason,
/// and the old batch's quarantined rows of those lines are removed (`LoadMsg::Retried`).
/// Nothing is committed when the file is not the one the batch loaded.
pub fn stream_retry(
    retry: &Retry,
    profile: &Profile,
    tx: Sender<LoadMsg>,
    progress: &dyn Fn(u64),
) -> Result<(), IngestError> {
    let source = retry.file.display().to_string();
    // Only the lines the new read found a row on leave the old quarantine: a profile that
    // splits the file differently may find none at some of them.
    let seen = std::cell::RefCell::new(Vec::new());
    let keep = |line| {
        let kept = retry.lines.contains(&line);
        if kept {
            seen.borrow_mut().push(line);
        }
        kept
    };
    let Some(summary) = send_file(
        retry.kind,
        &retry.file,
        source,
        profile,
        &keep,
        &tx,
        progress,
    )?
    else {
        return Ok(());
    };
    if summary.sha256 != retry.sha256 {
        return Err(IngestError::Changed {
            path: retry.file.clone(),
            batch_id: retry.batch_id,
        });
    }
    let mut lines = seen.into_inner();
    lines.sort_unstable();
    lines.dedup();
    let retried = LoadMsg::Retried {
        batch_id: retry.batch_id,
        lines,
        actor: retry.actor.clone(),
    };
    if tx.blocking_send(retried).is_ok() {
        let _ = tx.blocking_send(LoadMsg::Commit(CommitPolicy::ANY));
    }
    Ok(())
}

/// Streams the rows of one file whose line `keep` accepts, framed by `Begin` and `End`;
/// `None` when the store stopped listening.
fn send_file(
    kind: TableKind,
    path: &Path,
    source: String,
    profile: &Profile,
    keep: &dyn Fn(u64) -> bool,
    tx: &Sender<LoadMsg>,
    progress: &dyn Fn(u64),
) -> Result<Option<ReadSummary>, IngestError> {
    let begin = LoadMsg::Begin {
        kind,
        source,
        profile: profile.name.clone(),
    };
    if tx.blocking_send(begin).is_err() {
        return Ok(None);
    }
    let mut kept = 0u64;
    let mut rejected = Chunker::new(tx, LoadMsg::Rejected, progress);
    let mut on_reject = |r: Rejection| {
        if keep(r.line) {
            kept += 1;
            rejected.push(r);
        }
    };
    let mut summary = match kind {
        TableKind::Transactions => {
            let mut rows = Chunker::new(tx, LoadMsg::Transactions, progress);
            let (mut kept_rows, mut unknown_types) = (0, 0);
            let s = super::read_transactions(
                path,
                profile,
                |rec, id, line| {
                    if keep(line) {
                        kept_rows += 1;
                        unknown_types += u64::from(rec.unknown_type);
                        let record = rec.to_transaction(id);
                        let hash = record.content_hash();
                        rows.push(LoadRow { record, line, hash });
                    }
                },
                &mut on_reject,
            )?;
            rows.flush();
            ReadSummary {
                rows_read: kept_rows,
                unknown_types,
                ..s
            }
        }
        TableKind::Accounts => registry(
            tx,
            LoadMsg::Accounts,
            progress,
            keep,
            |rec, rej| super::read_accounts(path, profile, rec, rej),
            &mut on_reject,
        )?,
        TableKind::Merchants => registry(
            tx,
            LoadMsg::Merchants,
            progress,
            keep,
            |rec, rej| super::read_merchants(path, profile, rec, rej),
            &mut on_reject,
        )?,
    };
    rejected.flush();
    summary.rows_read += kept;
    summary.rejected = kept;
    if tx.blocking_send(LoadMsg::End(summary.clone())).is_err() {
        return Ok(None);
    }
    Ok(Some(summary))
}

/// The registry rows of one file whose line `keep` accepts, in chunks.
fn registry<T: Table>(
    tx: &Sender<LoadMsg>,
    wrap: fn(Vec<LoadRow<T>>) -> LoadMsg,
    progress: &dyn Fn(u64),
    keep: &dyn Fn(u64) -> bool,
    read: impl FnOnce(
        &mut dyn FnMut(T, u64),
        &mut dyn FnMut(Rejection),
    ) -> Result<ReadSummary, IngestError>,
    on_reject: &mut dyn FnMut(Rejection),
) -> Result<ReadSummary, IngestError> {
    let mut rows = Chunker::new(tx, wrap, progress);
    let mut kept_rows = 0;
    let s = read(
        &mut |record, line| {
            if keep(line) {
                kept_rows += 1;
                let hash = record.content_hash();
                rows.push(LoadRow { record, line, hash });
            }
        },
        on_reject,
    )?;
    rows.flush();
    Ok(ReadSummary {
        rows_read: kept_rows,
        ..s
    })
}
