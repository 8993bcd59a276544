//! The loaded records: transactions, accounts and merchants, and the closed vocabularies
//! of their fields.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Currency, Millis};

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[repr(u8)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The accepted spellings, for error messages.
            pub fn valid_values() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {:?} (valid: {})",
                        stringify!($name), other, Self::valid_values()
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use vocabulary;

vocabulary!(
    /// What a transaction is, in clearwatch's vocabulary.
    TxType {
        Payment => "payment",
        Settlement => "settlement",
        Transfer => "transfer",
        CashIn => "cash_in",
        CashOut => "cash_out",
        Fee => "fee",
        Refund => "refund",
    }
);

vocabulary!(
    /// Whether an account belongs to a natural person or a company.
    AccountKind {
        Personal => "personal",
        Corporate => "corporate",
    }
);

vocabulary!(
    /// The part an account plays in the payment chain.
    Role {
        Acquirer => "acquirer",
        Merchant => "merchant",
        Agent => "agent",
        Individual => "individual",
        Bank => "bank",
        Unknown => "unknown",
    }
);

/// One transaction, as loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub tx_id: String,
    pub ts: Millis,
    pub from: String,
    pub to: String,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
    pub tx_type: TxType,
    pub merchant_id: Option<String>,
    pub channel: Option<String>,
    pub region: Option<String>,
    pub memo: Option<String>,
}

/// One account of the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub holder_id: Option<String>,
    pub holder_name: Option<String>,
    pub kind: Option<AccountKind>,
    pub role: Role,
    pub licensed: bool,
    pub institution: Option<String>,
    pub region: Option<String>,
}

impl Account {
    /// An account known only from the transactions.
    pub fn unregistered(account_id: &str) -> Self {
        Account {
            account_id: account_id.to_string(),
            holder_id: None,
            holder_name: None,
            kind: None,
            role: Role::Unknown,
            licensed: false,
            institution: None,
            region: None,
        }
    }
}

/// One merchant of an acquirer's registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub merchant_id: String,
    pub legal_name: Option<String>,
    pub holder_id: Option<String>,
    pub settlement_account: Option<String>,
    pub acquirer: Option<String>,
    pub mcc: Option<String>,
    pub settlement_cycle_days: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_list_valid_values_in_errors() {
        let err = "wire".parse::<TxType>().unwrap_err();
        assert!(err.contains("payment, settlement, transfer"), "{err}");
        assert_eq!("cash_in".parse::<TxType>(), Ok(TxType::CashIn));
    }
}
