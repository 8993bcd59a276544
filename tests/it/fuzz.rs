//! Replays every input the fuzzers kept (their corpus, and each input that once crashed a
//! target) through the same code the fuzz targets run, so `cargo test` guards the fixes.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

#[test]
fn every_kept_fuzz_input_is_read_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let mut replayed = 0;
    for (name, target) in harness::TARGETS {
        let mut inputs = 0;
        for folder in ["corpus", "regressions"] {
            let Ok(dir) = std::fs::read_dir(root.join(folder).join(name)) else {
                continue;
            };
            let mut files: Vec<_> = dir.flatten().map(|e| e.path()).collect();
            files.sort();
            for file in files {
                let data = std::fs::read(&file).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{} panicked", file.display());
                inputs += 1;
            }
        }
        assert!(inputs > 0, "no kept inputs for fuzz target {name}");
        replayed += inputs;
    }
    assert!(replayed >= harness::TARGETS.len());
}
