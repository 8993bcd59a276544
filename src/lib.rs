//! clearwatch: compliance risk monitoring and fund-flow analysis for payment flows.
//!
//! Data flows one way: [`ingest`] → [`graph`] → rules → alerts → [`store`] → server and
//! export. [`model`] holds the types every stage shares; [`cli`] is the command line.

pub mod cli;
pub mod detect;
pub mod eval;
pub mod export;
pub mod generate;
pub mod graph;
pub mod ingest;
pub mod model;
pub mod rules;
pub mod server;
pub mod store;
