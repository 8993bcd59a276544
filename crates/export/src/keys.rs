//! Ed25519 signing keys for evidence bundles: the key handling is
//! [`clearwatch_store::keys`] (shared with the audit log's signed head); this names the
//! installation's default export key.

pub use clearwatch_store::keys::*;

/// The installation's key when neither `--key` nor `CLEARWATCH_EXPORT_KEY` names one.
pub const DEFAULT_KEY: &str = "clearwatch-export.key";
