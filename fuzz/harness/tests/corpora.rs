//! Every committed corpus file of every fuzz target, run through the target's harness on
//! stable: what the fuzzers found interesting stays covered in CI without libFuzzer.

use std::path::{Path, PathBuf};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(name)
}

#[test]
fn every_corpus_file_passes_its_harness() {
    let mut failed = Vec::new();
    for target in flumedb_fuzz::TARGETS {
        let dir = corpus(target.name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no corpus", target.name);
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            if std::panic::catch_unwind(|| (target.run)(&bytes)).is_err() {
                failed.push(format!("{} fails on {}", target.name, file.display()));
            }
        }
        eprintln!("{}: {} corpus files run", target.name, files.len());
    }
    assert!(
        failed.is_empty(),
        "{} failures:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Regression inputs (crashes the fuzzers found, kept after the fix) run the same way.
#[test]
fn every_regression_input_passes_its_harness() {
    for target in flumedb_fuzz::TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../regressions")
            .join(target.name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let file = entry.unwrap().path();
            let bytes = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| (target.run)(&bytes));
            assert!(
                outcome.is_ok(),
                "{} fails on {}",
                target.name,
                file.display()
            );
        }
    }
}
