//! Shared helpers: running the binary against a fresh database.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A data set of `../shared/datasets/external/`; these tests need it, as CI has it.
pub fn external(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/external")
        .join(rel);
    assert!(p.exists(), "external data set missing: {}", p.display());
    p
}

/// A temporary folder holding one SQLite database.
pub struct Db {
    pub dir: TempDir,
}

impl Db {
    pub fn new() -> Db {
        Db {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn url(&self) -> String {
        format!("sqlite:{}", self.dir.path().join("cw.db").display())
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("clearwatch").unwrap();
        c.env("CLEARWATCH_DB", self.url())
            .current_dir(self.dir.path());
        c
    }

    pub fn stats(&self) -> serde_json::Value {
        self.json(&["stats", "--json", "--quarantine", "1000"])
    }

    /// Runs a command that must succeed and parses its standard output as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.stdout(args)).unwrap()
    }

    /// Runs a command that must succeed and returns its standard output.
    pub fn stdout(&self, args: &[&str]) -> String {
        stdout_of(self.cmd(), args)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// Runs `cmd` with `args`, which must succeed, and returns its standard output.
pub fn stdout_of(mut cmd: Command, args: &[&str]) -> String {
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The numbers of the summary line `read N, loaded N, quarantined N, duplicates skipped N`.
pub fn summary_counts(stdout: &[u8]) -> [u64; 4] {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("read "))
        .unwrap_or_else(|| panic!("no summary line in:\n{text}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(4)
        .map(|s| s.parse().unwrap())
        .collect();
    [nums[0], nums[1], nums[2], nums[3]]
}

/// Loads the demo set's transactions, accounts and merchants with `cmd` (a store's
/// `clearwatch` command).
pub fn ingest_demo(mut cmd: Command) {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo");
    cmd.args(["ingest", "--transactions"])
        .arg(demo.join("transactions.csv"))
        .arg("--accounts")
        .arg(demo.join("accounts.csv"))
        .arg("--merchants")
        .arg(demo.join("merchants.csv"))
        .assert()
        .success();
}
