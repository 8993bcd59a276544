//! Ingest: reads transaction, account and merchant files through a mapping profile and
//! yields model records plus the rows it refused (for quarantine). It owns the rules of
//! what a valid row is, derived transaction ids, and row content hashes; where records go
//! (a store, a graph) is the caller's business.

pub mod load;
pub mod mapping;
pub mod profile;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use mapping::{FieldError, MappingError, TxRecord};
pub use profile::{FileFormat, Limits, Profile, ProfileError, RepeatedColumns};
pub use source::{Rejection, SourceError};

use clearwatch_model::{Account, Merchant, Transaction};
use mapping::{AccountMapper, MerchantMapper, TxMapper};
use source::{RawRow, TableReader};

/// A file-level failure: nothing of that file can be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("{path}: profile {profile:?} does not fit this file: {error}{hint}")]
    Mapping {
        path: PathBuf,
        profile: String,
        error: Box<MappingError>,
        /// What may explain it, such as a header in another encoding; may be empty.
        hint: String,
    },
    #[error(
        "{path}: not the file batch {batch_id} loaded (its SHA-256 differs): give the original with --file"
    )]
    Changed { path: PathBuf, batch_id: i64 },
    #[error("{path}: profile {profile:?} has no `{table}` table")]
    NoTable {
        path: PathBuf,
        profile: String,
        table: &'static str,
    },
}

/// Which table a file feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    Transactions,
    Accounts,
    Merchants,
}

impl TableKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Transactions => "transactions",
            TableKind::Accounts => "accounts",
            TableKind::Merchants => "merchants",
        }
    }
}

/// What reading one file amounted to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub sha256: String,
    pub rows_read: u64,
    pub rejected: u64,
    /// Rows whose type was not in the profile's vocabulary and loaded as `transfer`.
    pub unknown_types: u64,
}

fn open(path: &Path, profile: &Profile) -> Result<TableReader, IngestError> {
    let format = profile.format.unwrap_or_else(|| FileFormat::for_path(path));
    let options = source::ReadOptions {
        format,
        delimiter: profile.delimiter.map_or(b',', |c| c as u8),
        repeated_columns: profile.repeated_columns,
        limits: profile.limits,
        encoding: profile.encoding.map(|e| e.0),
    };
    Ok(TableReader::open(path, options)?)
}

/// The header to compile a mapper against: the CSV header, or the profile's keys for JSON.
fn header_of(reader: &TableReader, keys: &[String]) -> Vec<String> {
    reader
        .header()
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| keys.to_vec())
}

fn mapping_error(
    path: &Path,
    profile: &Profile,
    reader: &TableReader,
    error: MappingError,
) -> IngestError {
    IngestError::Mapping {
        path: path.to_path_buf(),
        profile: profile.name.clone(),
        error: Box::new(error),
        hint: reader.encoding_hint().to_string(),
    }
}

fn rejection(
    path: &Path,
    line: u64,
    field: Option<String>,
    reason: String,
    raw: String,
) -> Rejection {
    Rejection {
        source: path.display().to_string(),
        line,
        field,
        reason,
        raw,
    }
}

/// Derives stable ids for sources without one: the hash of the row's content, plus the
/// number of identical rows before it in the same file, so identical rows stay distinct
/// while reloading the same file yields the same ids.
#[derive(Default)]
struct ContentIds {
    seen: HashMap<[u8; 16], u32>,
}

impl ContentIds {
    fn id_for(&mut self, rec: &TxRecord<'_>) -> String {
        let digest = content_digest(rec);
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        let n = self.seen.entry(key).or_insert(0);
        let id = if *n == 0 {
            format!("h{}", hex::encode(&digest[..12]))
        } else {
            format!("h{}-{}", hex::encode(&digest[..12]), n)
        };
        *n += 1;
        id
    }
}

fn content_digest(rec: &TxRecord<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    let opt = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().unwrap_or("").to_string();
    for part in [
        rec.ts.to_string(),
        rec.from.to_string(),
        rec.to.to_string(),
        rec.amount.to_string(),
        rec.currency.code().to_string(),
        rec.tx_type.as_str().to_string(),
        opt(&rec.merchant_id),
        opt(&rec.channel),
        opt(&rec.region),
        opt(&rec.memo),
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    h.finalize().into()
}

/// Reads a transactions file. `on_record` gets each valid record with its final id and
/// line; `on_reject` each refused row.
pub fn read_transactions(
    path: &Path,
    profile: &Profile,
    mut on_record: impl FnMut(&TxRecord<'_>, &str, u64),
    mut on_reject: impl FnMut(Rejection),
) -> Result<ReadSummary, IngestError> {
    let reader = open(path, profile)?;
    let keys = profile.transactions.columns();
    let header = header_of(&reader, &keys);
    let mapper = TxMapper::compile(&profile.transactions, &header)
        .map_err(|e| mapping_error(path, profile, &reader, e))?;
    let mut ids = (!mapper.has_ids()).then(ContentIds::default);
    let mut summary = ReadSummary::default();
    summary.sha256 = reader.for_each(&keys, |line, row, raw| {
        summary.rows_read += 1;
        let outcome = match row {
            RawRow::Rejected { field, reason } => Err((field, reason)),
            RawRow::Fields(fields) => mapper
                .map(fields)
                .map(|rec| {
                    summary.unknown_types += u64::from(rec.unknown_type);
                    match (&rec.tx_id, ids.as_mut()) {
                        (Some(id), _) => on_record(&rec, id, line),
                        (None, Some(ids)) => {
                            let id = ids.id_for(&rec);
                            on_record(&rec, &id, line)
                        }
                        (None, None) => unreachable!("mapper without ids has a ContentIds"),
                    }
                })
                .map_err(|FieldError { field, reason }| (Some(field), reason)),
        };
        if let Err((field, reason)) = outcome {
            summary.rejected += 1;
            on_reject(rejection(path, line, field, reason, raw()));
        }
    })?;
    Ok(summary)
}

/// Reads an accounts file.
pub fn read_accounts(
    path: &Path,
    profile: &Profile,
    mut on_record: impl FnMut(Account, u64),
    mut on_reject: impl FnMut(Rejection),
) -> Result<ReadSummary, IngestError> {
    let table = profile
        .accounts
        .as_ref()
        .ok_or_else(|| IngestError::NoTable {
            path: path.to_path_buf(),
            profile: profile.name.clone(),
            table: "accounts",
        })?;
    let reader = open(path, profile)?;
    let keys = table.columns();
    let mapper = AccountMapper::compile(table, &header_of(&reader, &keys))
        .map_err(|e| mapping_error(path, profile, &reader, e))?;
    read_registry(
        path,
        reader,
        &keys,
        |f| mapper.map(f),
        &mut on_record,
        &mut on_reject,
    )
}

/// Reads a merchants file.
pub fn read_merchants(
    path: &Path,
    profile: &Profile,
    mut on_record: impl FnMut(Merchant, u64),
    mut on_reject: impl FnMut(Rejection),
) -> Result<ReadSummary, IngestError> {
    let table = profile
        .merchants
        .as_ref()
        .ok_or_else(|| IngestError::NoTable {
            path: path.to_path_buf(),
            profile: profile.name.clone(),
            table: "merchants",
        })?;
    let reader = open(path, profile)?;
    let keys = table.columns();
    let mapper = MerchantMapper::compile(table, &header_of(&reader, &keys))
        .map_err(|e| mapping_error(path, profile, &reader, e))?;
    read_registry(
        path,
        reader,
        &keys,
        |f| mapper.map(f),
        &mut on_record,
        &mut on_reject,
    )
}

fn read_registry<T>(
    path: &Path,
    reader: TableReader,
    keys: &[String],
    map: impl Fn(&dyn mapping::Fields) -> Result<T, FieldError>,
    on_record: &mut impl FnMut(T, u64),
    on_reject: &mut impl FnMut(Rejection),
) -> Result<ReadSummary, IngestError> {
    let mut summary = ReadSummary::default();
    summary.sha256 = reader.for_each(keys, |line, row, raw| {
        summary.rows_read += 1;
        let outcome = match row {
            RawRow::Rejected { field, reason } => Err((field, reason)),
            RawRow::Fields(fields) => map(fields)
                .map(|rec| on_record(rec, line))
                .map_err(|FieldError { field, reason }| (Some(field), reason)),
        };
        if let Err((field, reason)) = outcome {
            summary.rejected += 1;
            on_reject(rejection(path, line, field, reason, raw()));
        }
    })?;
    Ok(summary)
}

impl TxRecord<'_> {
    pub fn to_transaction(&self, tx_id: &str) -> Transaction {
        let o = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
        Transaction {
            tx_id: tx_id.to_string(),
            ts: self.ts,
            from: self.from.to_string(),
            to: self.to.to_string(),
            amount: self.amount,
            currency: self.currency,
            tx_type: self.tx_type,
            merchant_id: o(&self.merchant_id),
            channel: o(&self.channel),
            region: o(&self.region),
            memo: o(&self.memo),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn read(text: &str, profile: &Profile) -> (Vec<(String, u64)>, Vec<Rejection>, ReadSummary) {
        let f = file(text);
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        let s = read_transactions(
            f.path(),
            profile,
            |_, id, line| ok.push((id.to_string(), line)),
            |r| bad.push(r),
        )
        .unwrap();
        (ok, bad, s)
    }

    #[test]
    fn content_ids_are_stable_and_keep_identical_rows_apart() {
        let p = Profile::load("amlsim-sample").unwrap();
        let text = "sourceNodeId,targetNodeId,value,time\n1,2,3.5,1\n1,2,3.5,1\n1,2,4,1\n";
        let (a, _, _) = read(text, &p);
        let (b, _, _) = read(text, &p);
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
        assert_ne!(a[0].0, a[1].0);
        assert!(a[1].0.ends_with("-1"));
    }

    #[test]
    fn unknown_types_load_as_transfer_and_are_counted() {
        let p = Profile::native();
        let text =
            "tx_id,ts,from,to,amount,currency,type\nt1,2026-01-01T00:00:00Z,a,b,1.00,CNY,wire\n";
        let (ok, bad, s) = read(text, &p);
        assert_eq!((ok.len(), bad.len(), s.unknown_types), (1, 0, 1));
    }

    #[test]
    fn counts_add_up() {
        let p = Profile::native();
        let text = "tx_id,ts,from,to,amount,currency,type\nt1,2026-01-01T00:00:00Z,a,b,1.00,CNY,payment\nt2,yesterday,a,b,1.00,CNY,payment\n";
        let (ok, bad, s) = read(text, &p);
        assert_eq!(s.rows_read, (ok.len() + bad.len()) as u64);
        assert_eq!(bad[0].field.as_deref(), Some("ts"));
        assert_eq!(bad[0].line, 3);
    }

    #[test]
    fn an_amount_beyond_the_currency_maximum_is_quarantined() {
        let p = Profile::native();
        let text = "tx_id,ts,from,to,amount,currency,type\n\
            t1,2026-01-01T00:00:00Z,a,b,1000000000000000.00,CNY,payment\n\
            t2,2026-01-01T00:00:00Z,a,b,1000000000000000.01,CNY,payment\n\
            t3,2026-01-01T00:00:00Z,a,b,1000000000000001,JPY,payment\n";
        let (ok, bad, _) = read(text, &p);
        assert_eq!(ok, [("t1".to_string(), 2)]);
        assert_eq!((bad[0].line, bad[0].field.as_deref()), (3, Some("amount")));
        assert!(
            bad[0]
                .reason
                .ends_with("maximum (10^15 major units): 1000000000000000.00 CNY"),
            "{}",
            bad[0].reason
        );
        assert!(
            bad[1].reason.ends_with(": 1000000000000000 JPY"),
            "{}",
            bad[1].reason
        );
    }
}
