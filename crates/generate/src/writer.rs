//! CSV output in clearwatch's native format: transactions (streamed), accounts, merchants.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::DateTime;
use clearwatch_model::{self as model, Table};

use super::GenerateError;
use super::csvio::{CsvOut, create_csv, csv_error, finish_csv};
use super::population::Role;
use super::population::{MCCS, Population, REGIONS};
use super::truth::TruthSpill;
use super::tx::{Memo, NO_MERCHANT, Tx, TxType, push_tx_id};

/// Sparse registry: the share of rows (in percent) whose merchant id is left out.
const MISSING_MERCHANT_PCT: u64 = 30;

/// Whether the sparse registry leaves out the merchant id of the `number`-th row: a fixed
/// hash of the row number, so the random stream is not touched.
fn drops_merchant_id(number: u64) -> bool {
    (number.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 100 < MISSING_MERCHANT_PCT
}

/// Fen as a decimal string with exactly two decimals.
fn push_amount(out: &mut String, fen: i64) {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let _ = write!(out, "{sign}{}.{:02}", abs / 100, abs % 100);
}

pub(crate) struct TxWriter {
    path: PathBuf,
    out: CsvOut,
    written: u64,
    cached_day: Option<i64>,
    date_prefix: String,
    field: String,
    truth: TruthSpill,
}

impl TxWriter {
    pub(crate) fn create(path: PathBuf, truth: TruthSpill) -> Result<TxWriter, GenerateError> {
        let mut out = create_csv(&path)?;
        out.write_record(model::Transaction::native_header())
            .map_err(csv_error(&path))?;
        Ok(TxWriter {
            path,
            out,
            written: 0,
            cached_day: None,
            date_prefix: String::new(),
            field: String::new(),
            truth,
        })
    }

    pub(crate) fn write(&mut self, pop: &Population, tx: &Tx) -> Result<(), GenerateError> {
        self.written += 1;
        let number = self.written;
        let day = tx.ts.div_euclid(86_400);
        if self.cached_day != Some(day) {
            self.cached_day = Some(day);
            self.date_prefix = DateTime::from_timestamp(day * 86_400, 0)
                .map(|d| d.format("%Y-%m-%dT").to_string())
                .unwrap_or_default();
        }
        let seconds = tx.ts.rem_euclid(86_400);

        let out = &mut self.out;
        let field = &mut self.field;
        let path = &self.path;
        let mut put = |value: &str| out.write_field(value).map_err(csv_error(path));

        field.clear();
        push_tx_id(field, number);
        put(field)?;
        field.clear();
        let _ = write!(
            field,
            "{}{:02}:{:02}:{:02}Z",
            self.date_prefix,
            seconds / 3_600,
            seconds / 60 % 60,
            seconds % 60
        );
        put(field)?;
        put(&pop.account_ids[tx.from as usize])?;
        put(&pop.account_ids[tx.to as usize])?;
        field.clear();
        push_amount(field, tx.amount);
        put(field)?;
        put("CNY")?;
        let sparse = pop.extras.sparse;
        put(if sparse && tx.kind == TxType::Settlement {
            TxType::Transfer.as_str()
        } else {
            tx.kind.as_str()
        })?;
        put(
            if tx.merchant == NO_MERCHANT || (sparse && drops_merchant_id(number)) {
                ""
            } else {
                &pop.merchant_ids[tx.merchant as usize]
            },
        )?;
        put(tx.channel.as_str())?;
        put(REGIONS[usize::from(tx.region)].code)?;
        put(match tx.memo {
            Memo::Empty => "",
            Memo::Text(text) => text,
            Memo::Holder(holder) => &pop.holders[holder as usize].name,
        })?;
        out.write_record(None::<&[u8]>).map_err(csv_error(path))?;

        for &scheme in &pop.tag_sets[tx.tag as usize] {
            self.truth.push(scheme, number)?;
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<(u64, TruthSpill), GenerateError> {
        finish_csv(self.out, &self.path)?;
        Ok((self.written, self.truth))
    }
}

pub(crate) fn write_accounts(pop: &Population, path: &Path) -> Result<(), GenerateError> {
    let mut out = create_csv(path)?;
    out.write_record(model::Account::native_header())
        .map_err(csv_error(path))?;
    let mut order: Vec<usize> = (0..pop.accounts.len()).collect();
    order.sort_by(|&a, &b| pop.account_ids[a].cmp(&pop.account_ids[b]));
    for i in order {
        let account = &pop.accounts[i];
        let holder = &pop.holders[account.holder as usize];
        // The sparse registry knows roles and licences of acquirers only.
        let known = !pop.extras.sparse || account.role == Role::Acquirer;
        out.write_record([
            pop.account_ids[i].as_str(),
            pop.holder_ids[account.holder as usize].as_str(),
            holder.name.as_str(),
            holder.kind.as_str(),
            if known { account.role.as_str() } else { "" },
            match (known, account.licensed) {
                (false, _) => "",
                (true, true) => "true",
                (true, false) => "false",
            },
            pop.holders[account.institution as usize].name.as_str(),
            REGIONS[usize::from(account.region)].code,
        ])
        .map_err(csv_error(path))?;
    }
    finish_csv(out, path)
}

pub(crate) fn write_merchants(pop: &Population, path: &Path) -> Result<(), GenerateError> {
    let mut out = create_csv(path)?;
    out.write_record(model::Merchant::native_header())
        .map_err(csv_error(path))?;
    let mut order: Vec<usize> = (0..pop.merchants.len()).collect();
    order.sort_by(|&a, &b| pop.merchant_ids[a].cmp(&pop.merchant_ids[b]));
    for i in order {
        let merchant = &pop.merchants[i];
        let mcc = MCCS[merchant.mcc].code.to_string();
        let cycle = merchant.cycle.to_string();
        out.write_record([
            pop.merchant_ids[i].as_str(),
            pop.holders[merchant.holder as usize].name.as_str(),
            pop.holder_ids[merchant.holder as usize].as_str(),
            pop.account_ids[merchant.settlement_account as usize].as_str(),
            pop.account_ids[pop.acquirers[merchant.acquirer as usize] as usize].as_str(),
            mcc.as_str(),
            cycle.as_str(),
        ])
        .map_err(csv_error(path))?;
    }
    finish_csv(out, path)
}
