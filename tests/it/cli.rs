//! The command line's failure paths: closed pipes, unreachable servers, error texts.

use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt as _;

use crate::support::Db;

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    // `clearwatch scan … --format json | head -c 16`: the JSON is far larger than a pipe
    // holds, so the reader closing early makes a later write fail.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo");
    let mut child = std::process::Command::cargo_bin("clearwatch")
        .unwrap()
        .args(["scan", "--format", "json", "--input"])
        .arg(demo.join("transactions.csv"))
        .arg("--accounts")
        .arg(demo.join("accounts.csv"))
        .arg("--merchants")
        .arg(demo.join("merchants.csv"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The read end is dropped here.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(&head[..1], b"[");
}

#[test]
fn an_unreachable_postgres_is_reported_with_its_host() {
    let out = Db::new()
        .cmd()
        .args(["--db", "postgres://postgres@127.0.0.1:9/nowhere", "stats"])
        // A guard against hanging, not a measurement: the connect timeout is 5 s.
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    assert!(stderr.contains("no connection within 5 s"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn an_error_says_its_cause_once() {
    let out = Db::new()
        .cmd()
        .args(["ingest", "--transactions", "no-such-file.csv"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no-such-file.csv"), "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}
