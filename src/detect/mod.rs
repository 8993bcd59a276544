//! Detection: runs a compiled rule pack over a temporal graph and produces alerts.

pub mod alert;

pub use alert::{Alert, Evidence, Severity, StoredAlert, Subject, Window};
