//! The fuzz targets' bodies, in `harness.rs` so that the `it` tests replay the same code.

#[path = "harness.rs"]
mod harness;

pub use harness::*;
