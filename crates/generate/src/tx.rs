//! One simulated transaction, as the simulation makes it and the writer streams it out.

use std::fmt::Write as _;

/// The `merchant` of a transaction that has none.
pub(crate) const NO_MERCHANT: u32 = u32::MAX;

/// Appends the id of the `number`-th transaction written (counted from 1).
pub(crate) fn push_tx_id(out: &mut String, number: u64) {
    let _ = write!(out, "T{number:09}");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxType {
    Payment,
    Settlement,
    Transfer,
    CashIn,
    CashOut,
    Fee,
    Refund,
}

impl TxType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TxType::Payment => "payment",
            TxType::Settlement => "settlement",
            TxType::Transfer => "transfer",
            TxType::CashIn => "cash_in",
            TxType::CashOut => "cash_out",
            TxType::Fee => "fee",
            TxType::Refund => "refund",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Channel {
    Card,
    Qr,
    Aggregator,
    BankTransfer,
    Cash,
}

impl Channel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Channel::Card => "card",
            Channel::Qr => "qr",
            Channel::Aggregator => "aggregator",
            Channel::BankTransfer => "bank_transfer",
            Channel::Cash => "cash",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Memo {
    Empty,
    Text(&'static str),
    /// The name of a holder (e.g. the aggregator that routed a payment).
    Holder(u32),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Tx {
    pub ts: i64,
    pub seq: u64,
    pub from: u32,
    pub to: u32,
    pub amount: i64,
    pub kind: TxType,
    pub merchant: u32,
    pub channel: Channel,
    pub region: u8,
    pub memo: Memo,
    /// Index into `Population::tag_sets`; 0 = background.
    pub tag: u32,
}
