//! Rules: the YAML rule format ([`config`]), its compilation into runtime rules
//! ([`compile`]) with CEL expressions ([`expr`]) and engine-computed aggregates
//! ([`aggregate`]), the registry of detector kinds ([`kinds`]), loading of rule folders
//! with their shared lists and macros ([`load`]), their texts in other languages
//! ([`texts`]), rule test cases ([`testing`]) and parameter sweeps for tuning ([`sweep`]).

pub mod aggregate;
pub mod compile;
pub mod config;
pub mod diag;
pub mod docs;
pub mod expr;
pub mod kinds;
pub mod load;
pub mod params;
pub mod scope;
pub mod sweep;
pub mod template;
pub mod texts;

pub use compile::{Rule, RuleStatus, Shared};
pub use diag::Diagnostic;
