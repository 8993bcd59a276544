//! One description of each loaded table: its columns (as the native files name them and
//! as the store names them), its key, the text fields that the store checks, its row in
//! the native CSV format, and the content hash that tells a repeated row from a
//! different row reusing an id. Ingest, both stores, export and the generator read it.

use sha2::{Digest, Sha256};

use crate::{Account, Merchant, Transaction, format_amount, format_ts};

/// One column: its header in the native files and its name in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub native: &'static str,
    pub stored: &'static str,
}

const fn col(native: &'static str, stored: &'static str) -> Column {
    Column { native, stored }
}

/// A record kind that is loaded into one table keyed by its first column.
pub trait Table: Clone + Send + Sync + 'static {
    /// The store's table name.
    const NAME: &'static str;
    /// Every column, in native-file order; the first is the key.
    const COLUMNS: &'static [Column];

    /// The key's value.
    fn key(&self) -> &str;

    /// The fields the content hash covers (every column but the key), in column order,
    /// as the hash reads them.
    fn hashed_fields(&self) -> Vec<String>;

    /// Every text field, by native column name: what the store checks before writing.
    fn text_fields(&self) -> Vec<(&'static str, Option<&str>)>;

    /// The row in the native CSV format, in column order (absent fields empty).
    fn native_row(&self) -> Vec<String>;

    /// The stored key column.
    fn key_column() -> &'static str {
        Self::COLUMNS[0].stored
    }

    /// The native header, in column order.
    fn native_header() -> Vec<&'static str> {
        Self::COLUMNS.iter().map(|c| c.native).collect()
    }

    /// The stored column names, in column order.
    fn stored_columns() -> Vec<&'static str> {
        Self::COLUMNS.iter().map(|c| c.stored).collect()
    }

    /// A 64-bit fingerprint of the row's content.
    fn content_hash(&self) -> i64 {
        let fields = self.hashed_fields();
        row_hash(&fields.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The first text field holding a NUL byte, which PostgreSQL text cannot store. Both
    /// backends quarantine such rows so that they agree.
    fn nul_field(&self) -> Option<&'static str> {
        self.text_fields()
            .into_iter()
            .find(|(_, v)| v.is_some_and(|v| v.contains('\0')))
            .map(|(name, _)| name)
    }
}

/// SHA-256 over the parts, each followed by a unit separator, folded to 64 bits.
pub fn row_hash(parts: &[&str]) -> i64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    let d = h.finalize();
    i64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

impl Table for Transaction {
    const NAME: &'static str = "transactions";
    const COLUMNS: &'static [Column] = &[
        col("tx_id", "tx_id"),
        col("ts", "ts"),
        col("from", "from_account"),
        col("to", "to_account"),
        col("amount", "amount"),
        col("currency", "currency"),
        col("type", "type"),
        col("merchant_id", "merchant_id"),
        col("channel", "channel"),
        col("region", "region"),
        col("memo", "memo"),
    ];

    fn key(&self) -> &str {
        &self.tx_id
    }

    fn hashed_fields(&self) -> Vec<String> {
        vec![
            self.ts.to_string(),
            self.from.clone(),
            self.to.clone(),
            self.amount.to_string(),
            self.currency.code().to_string(),
            self.tx_type.as_str().to_string(),
            text(&self.merchant_id),
            text(&self.channel),
            text(&self.region),
            text(&self.memo),
        ]
    }

    fn text_fields(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("tx_id", Some(&self.tx_id)),
            ("from", Some(&self.from)),
            ("to", Some(&self.to)),
            ("merchant_id", self.merchant_id.as_deref()),
            ("channel", self.channel.as_deref()),
            ("region", self.region.as_deref()),
            ("memo", self.memo.as_deref()),
        ]
    }

    fn native_row(&self) -> Vec<String> {
        vec![
            self.tx_id.clone(),
            format_ts(self.ts),
            self.from.clone(),
            self.to.clone(),
            format_amount(self.amount, self.currency.exponent()),
            self.currency.code().to_string(),
            self.tx_type.as_str().to_string(),
            text(&self.merchant_id),
            text(&self.channel),
            text(&self.region),
            text(&self.memo),
        ]
    }
}

impl Table for Account {
    const NAME: &'static str = "accounts";
    const COLUMNS: &'static [Column] = &[
        col("account_id", "account_id"),
        col("holder_id", "holder_id"),
        col("holder_name", "holder_name"),
        col("kind", "kind"),
        col("role", "role"),
        col("licensed", "licensed"),
        col("institution", "institution"),
        col("region", "region"),
    ];

    fn key(&self) -> &str {
        &self.account_id
    }

    fn hashed_fields(&self) -> Vec<String> {
        vec![
            text(&self.holder_id),
            text(&self.holder_name),
            self.kind.map_or("", |k| k.as_str()).to_string(),
            self.role.as_str().to_string(),
            if self.licensed { "1" } else { "0" }.to_string(),
            text(&self.institution),
            text(&self.region),
        ]
    }

    fn text_fields(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("account_id", Some(&self.account_id)),
            ("holder_id", self.holder_id.as_deref()),
            ("holder_name", self.holder_name.as_deref()),
            ("institution", self.institution.as_deref()),
            ("region", self.region.as_deref()),
        ]
    }

    fn native_row(&self) -> Vec<String> {
        vec![
            self.account_id.clone(),
            text(&self.holder_id),
            text(&self.holder_name),
            self.kind
                .map(|k| k.as_str().to_string())
                .unwrap_or_default(),
            self.role.as_str().to_string(),
            self.licensed.to_string(),
            text(&self.institution),
            text(&self.region),
        ]
    }
}

impl Table for Merchant {
    const NAME: &'static str = "merchants";
    const COLUMNS: &'static [Column] = &[
        col("merchant_id", "merchant_id"),
        col("legal_name", "legal_name"),
        col("holder_id", "holder_id"),
        col("settlement_account", "settlement_account"),
        col("acquirer", "acquirer"),
        col("mcc", "mcc"),
        col("settlement_cycle_days", "settlement_cycle_days"),
    ];

    fn key(&self) -> &str {
        &self.merchant_id
    }

    fn hashed_fields(&self) -> Vec<String> {
        vec![
            text(&self.legal_name),
            text(&self.holder_id),
            text(&self.settlement_account),
            text(&self.acquirer),
            text(&self.mcc),
            self.settlement_cycle_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
        ]
    }

    fn text_fields(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("merchant_id", Some(&self.merchant_id)),
            ("legal_name", self.legal_name.as_deref()),
            ("holder_id", self.holder_id.as_deref()),
            ("settlement_account", self.settlement_account.as_deref()),
            ("acquirer", self.acquirer.as_deref()),
            ("mcc", self.mcc.as_deref()),
        ]
    }

    fn native_row(&self) -> Vec<String> {
        let mut row = vec![self.merchant_id.clone()];
        row.extend(self.hashed_fields());
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccountKind, Currency, Role, TxType};

    fn tx() -> Transaction {
        Transaction {
            tx_id: "T1".into(),
            ts: 1_767_225_600_000,
            from: "A".into(),
            to: "B".into(),
            amount: 12_345,
            currency: Currency::from_code("CNY").unwrap(),
            tx_type: TxType::Payment,
            merchant_id: Some("M1".into()),
            channel: None,
            region: None,
            memo: Some("rent".into()),
        }
    }

    #[test]
    fn every_row_has_one_field_per_column() {
        assert_eq!(tx().native_row().len(), Transaction::COLUMNS.len());
        assert_eq!(tx().hashed_fields().len() + 1, Transaction::COLUMNS.len());
        let a = Account {
            account_id: "A".into(),
            holder_id: None,
            holder_name: Some("Ann".into()),
            kind: Some(AccountKind::Personal),
            role: Role::Individual,
            licensed: false,
            institution: None,
            region: None,
        };
        assert_eq!(a.native_row().len(), Account::COLUMNS.len());
        assert_eq!(a.hashed_fields().len() + 1, Account::COLUMNS.len());
        let m = Merchant {
            merchant_id: "M".into(),
            legal_name: None,
            holder_id: None,
            settlement_account: Some("A".into()),
            acquirer: None,
            mcc: Some("5411".into()),
            settlement_cycle_days: Some(1),
        };
        assert_eq!(m.native_row().len(), Merchant::COLUMNS.len());
    }

    #[test]
    fn content_hash_ignores_the_key_and_sees_every_other_field() {
        let a = tx();
        let mut b = a.clone();
        b.tx_id = "T2".into();
        assert_eq!(a.content_hash(), b.content_hash());
        b.memo = None;
        assert_ne!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn the_native_row_is_the_native_format() {
        assert_eq!(
            tx().native_row()[..5],
            ["T1", "2026-01-01T00:00:00Z", "A", "B", "123.45"]
        );
        assert_eq!(Transaction::native_header()[2], "from");
        assert_eq!(Transaction::stored_columns()[2], "from_account");
        assert_eq!(Transaction::key_column(), "tx_id");
    }
}
