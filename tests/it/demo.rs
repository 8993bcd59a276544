//! `clearwatch demo` and `clearwatch generate`.

use std::path::Path;

use predicates::str::contains;

use crate::support::Db;

#[test]
fn demo_loads_the_demo_set_into_a_fresh_database() {
    let db = Db::new();
    db.cmd()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--no-serve"])
        .assert()
        .success()
        .stdout(contains("quarantined 0"));
    let s = db.stats();
    assert_eq!(s["transactions"], 6535);
    assert_eq!(s["merchants"], 84);
    assert_eq!(s["quarantined"], 0);
}

#[test]
fn shipped_demo_set_is_what_generate_demo_writes() {
    let db = Db::new();
    let out = db.dir.path().join("demo");
    db.cmd()
        .args(["generate", "--demo", "--out"])
        .arg(&out)
        .assert()
        .success();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/demo");
    for f in [
        "transactions.csv",
        "accounts.csv",
        "merchants.csv",
        "truth.csv",
    ] {
        let a = std::fs::read(out.join(f)).unwrap();
        let b = std::fs::read(shipped.join(f)).unwrap();
        assert!(a == b, "{f} differs from `clearwatch generate --demo`");
    }
}
