//! `clearwatch migrate`: applies the store's migrations explicitly and prints the schema
//! version.

use std::process::ExitCode;

use clap::Args;

use clearwatch_store::IngestStore;

#[derive(Args, Debug)]
pub struct MigrateArgs {}

pub async fn run(db: &super::Db, _args: MigrateArgs) -> anyhow::Result<ExitCode> {
    // Opening migrates, and refuses a schema newer than this binary.
    let store = db.open().await?;
    outln!(
        "{} schema version {} (this clearwatch knows up to {})",
        store.backend(),
        store.schema_version().await?,
        store.known_schema_version()
    );
    Ok(ExitCode::SUCCESS)
}
