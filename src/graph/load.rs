//! Building a graph straight from input files (no store), or streamed from a store.

use std::path::Path;

use super::{EdgeInput, GraphBuilder, TemporalGraph};
use crate::ingest::{self, IngestError, Profile, Rejection};
use crate::model::{Account, Merchant, Millis};

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
    let s = ingest::read_transactions(
        transactions,
        profile,
        |rec, id, _| {
            if rec.ts < lo || rec.ts >= hi {
                return;
            }
            b.add_edge(EdgeInput {
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
        },
        |r| load.rejections.push(r),
    )?;
    load.read += s.rows_read;
    load.loaded = load.read - load.rejections.len() as u64;
    Ok((b.build(), load))
}

/// A builder holding what `store` has (transactions with `ts` in `[from, until)` streamed
/// in one row at a time) and whether accounts and merchants were registered. `build()`
/// is left to the caller, which may run it off the async runtime.
pub async fn from_store(
    store: &crate::store::AnyStore,
    from: Option<Millis>,
    until: Option<Millis>,
) -> Result<(GraphBuilder, crate::detect::Inputs), crate::store::StoreError> {
    use crate::store::Store;
    let accounts = store.accounts().await?;
    let merchants = store.merchants().await?;
    let inputs = crate::detect::Inputs {
        accounts: !accounts.is_empty(),
        merchants: !merchants.is_empty(),
    };
    let mut builder = GraphBuilder::with_records(&accounts, &merchants);
    drop((accounts, merchants));
    store
        .each_transaction(from, until, |t| builder.add_transaction(&t))
        .await?;
    Ok((builder, inputs))
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
