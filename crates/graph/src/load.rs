//! Building a graph straight from input files (no store). A store's rows stream into a
//! [`GraphBuilder`] through the scan service.

use std::path::Path;

use super::{EdgeInput, GraphBuilder, TemporalGraph};
use clearwatch_ingest::{self as ingest, IngestError, Profile, Rejection};
use clearwatch_model::{Account, Merchant, Millis};

/// What reading the inputs amounted to.
#[derive(Debug, Default)]
pub struct FileLoad {
    pub read: u64,
    pub loaded: u64,
    pub rejections: Vec<Rejection>,
}

/// Reads the files through `profile` into a graph; rows outside `[from, until)` are left
/// out, refused rows are returned for the caller to report.
pub fn from_files(
    transactions: &Path,
    accounts: Option<&Path>,
    merchants: Option<&Path>,
    profile: &Profile,
    from: Option<Millis>,
    until: Option<Millis>,
) -> Result<(TemporalGraph, FileLoad), IngestError> {
    let mut b = GraphBuilder::new();
    let mut load = FileLoad::default();
    if let Some(p) = accounts {
        let s = ingest::read_accounts(
            p,
            profile,
            |a, _| b.add_account(&a),
            |r| load.rejections.push(r),
        )?;
        load.read += s.rows_read;
    }
    if let Some(p) = merchants {
        let s = ingest::read_merchants(
            p,
            profile,
            |m, _| b.add_merchant(&m),
            |r| load.rejections.push(r),
        )?;
        load.read += s.rows_read;
    }
    let (lo, hi) = (from.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX));
    // Parsing and interning run on two threads: this one parses rows into batches, the
    // other adds them to the builder in file order, so the graph is the one a single
    // thread would build.
    let (send, receive) = std::sync::mpsc::sync_channel::<Batch>(4);
    let (b, s) = std::thread::scope(|scope| {
        let builder = scope.spawn(move || {
            for batch in receive {
                batch.add_to(&mut b);
            }
            b
        });
        let mut batch = Batch::default();
        let s = ingest::read_transactions(
            transactions,
            profile,
            |rec, id, _| {
                if rec.ts < lo || rec.ts >= hi {
                    return;
                }
                batch.push(EdgeInput {
                    tx_id: id,
                    ts: rec.ts,
                    from: &rec.from,
                    to: &rec.to,
                    amount: rec.amount,
                    currency: rec.currency,
                    tx_type: rec.tx_type,
                    merchant_id: rec.merchant_id.as_deref(),
                    channel: rec.channel.as_deref(),
                    region: rec.region.as_deref(),
                });
                if batch.len() == Batch::ROWS {
                    // The builder only stops early by panicking, which the join reports.
                    let _ = send.send(std::mem::take(&mut batch));
                }
            },
            |r| load.rejections.push(r),
        );
        let _ = send.send(batch);
        drop(send);
        let b = builder
            .join()
            .expect("the graph builder thread does not panic");
        (b, s)
    });
    let s = s?;
    load.read += s.rows_read;
    load.loaded = load.read - load.rejections.len() as u64;
    Ok((b.build(), load))
}

/// Parsed transactions on their way to the builder: numbers column-wise, the six text
/// fields of each row in one arena (absent ones as empty strings, flagged in `present`).
#[derive(Default)]
struct Batch {
    ts: Vec<Millis>,
    amount: Vec<i64>,
    currency: Vec<clearwatch_model::Currency>,
    tx_type: Vec<clearwatch_model::TxType>,
    present: Vec<u8>,
    text: super::StrArena,
}

impl Batch {
    const ROWS: usize = 16_384;
    const TEXTS: usize = 6;

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn push(&mut self, e: EdgeInput<'_>) {
        self.ts.push(e.ts);
        self.amount.push(e.amount);
        self.currency.push(e.currency);
        self.tx_type.push(e.tx_type);
        let optional = [e.merchant_id, e.channel, e.region];
        let mut present = 0u8;
        for (i, v) in optional.iter().enumerate() {
            present |= u8::from(v.is_some()) << i;
        }
        self.present.push(present);
        for t in [e.tx_id, e.from, e.to]
            .into_iter()
            .chain(optional.map(|v| v.unwrap_or("")))
        {
            self.text.push(t);
        }
    }

    fn add_to(&self, b: &mut GraphBuilder) {
        for i in 0..self.len() {
            let t = |k: usize| self.text.get(i * Self::TEXTS + k);
            let opt = |k: usize| (self.present[i] >> (k - 3) & 1 == 1).then(|| t(k));
            b.add_edge(EdgeInput {
                tx_id: t(0),
                ts: self.ts[i],
                from: t(1),
                to: t(2),
                amount: self.amount[i],
                currency: self.currency[i],
                tx_type: self.tx_type[i],
                merchant_id: opt(3),
                channel: opt(4),
                region: opt(5),
            });
        }
    }
}

impl GraphBuilder {
    /// A builder that knows `accounts` and `merchants`; transactions are added next.
    pub fn with_records(accounts: &[Account], merchants: &[Merchant]) -> GraphBuilder {
        let mut b = GraphBuilder::new();
        for a in accounts {
            b.add_account(a);
        }
        for m in merchants {
            b.add_merchant(m);
        }
        b
    }
}
