//! The load stream: files are read on a blocking thread and sent to a store as chunks of
//! records and rejections, framed per file, and finally committed. A stream that ends
//! without `Commit` (a file failed) must leave the store unchanged.

use std::path::PathBuf;

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
        let begin = LoadMsg::Begin {
            kind: *kind,
            source: path.display().to_string(),
            profile: profile.name.clone(),
        };
        if tx.blocking_send(begin).is_err() {
            return Ok(());
        }
        let mut rejected = Chunker::new(&tx, LoadMsg::Rejected, progress);
        let summary = match kind {
            TableKind::Transactions => {
                let mut rows = Chunker::new(&tx, LoadMsg::Transactions, progress);
                let s = super::read_transactions(
                    path,
                    profile,
                    |rec, id, line| {
                        let record = rec.to_transaction(id);
                        let hash = record.content_hash();
                        rows.push(LoadRow { record, line, hash });
                    },
                    |r| rejected.push(r),
                )?;
                rows.flush();
                s
            }
            TableKind::Accounts => {
                let mut rows = Chunker::new(&tx, LoadMsg::Accounts, progress);
                let s = super::read_accounts(
                    path,
                    profile,
                    |record, line| {
                        let hash = record.content_hash();
                        rows.push(LoadRow { record, line, hash });
                    },
                    |r| rejected.push(r),
                )?;
                rows.flush();
                s
            }
            TableKind::Merchants => {
                let mut rows = Chunker::new(&tx, LoadMsg::Merchants, progress);
                let s = super::read_merchants(
                    path,
                    profile,
                    |record, line| {
                        let hash = record.content_hash();
                        rows.push(LoadRow { record, line, hash });
                    },
                    |r| rejected.push(r),
                )?;
                rows.flush();
                s
            }
        };
        rejected.flush();
        if tx.blocking_send(LoadMsg::End(summary)).is_err() {
            return Ok(());
        }
    }
    let _ = tx.blocking_send(LoadMsg::Commit(policy));
    Ok(())
}
