//! clearwatch's domain types, shared by every layer above: money and time ([`money`],
//! [`time`]), the loaded records ([`records`]), alerts ([`alert`]) and the case workflow
//! with the audit log ([`case`]; its keyed chain, signed head and verification in
//! [`audit`]), remembered dismissals ([`suppression`]), entity-level risk ([`triage`]),
//! watch and allow lists ([`lists`]), roles inferred from behaviour ([`roles`]), one description of each loaded table ([`table`])
//! and the languages ([`lang`]).
//! Nothing here does I/O.

pub mod alert;
pub mod audit;
pub mod calendar;
pub mod case;
pub mod cases;
pub mod lang;
pub mod lists;
pub mod money;
pub mod records;
pub mod roles;
pub mod suppression;
pub mod table;
pub mod time;
pub mod triage;

pub use alert::{Alert, Evidence, Severity, StoredAlert, Subject, SubjectKind, Window};
pub use lang::Lang;
pub use money::{
    AmountError, Currency, ExcessPrecision, MAX_MAJOR_UNITS, format_amount, group_thousands,
    max_minor_units, parse_amount,
};
pub use records::{Account, AccountKind, Merchant, Role, Transaction, TxType};
pub use table::Table;
pub use time::{LocalTimeError, Millis, Zone, format_ts, parse_rfc3339};
