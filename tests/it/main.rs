//! Integration tests: the `clearwatch` binary run on fixtures and on the external data
//! sets in `../shared/datasets/external/`, against real SQLite files.

mod cases;
mod cli;
mod demo;
mod eval;
mod export;
mod fuzz;
mod incremental;
mod ingest;
mod rules;
mod server;
mod store;
mod stream;
mod support;
