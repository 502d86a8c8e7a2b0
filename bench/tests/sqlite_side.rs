//! The SQLite side of the benchmark runs on 2,000 generated messages and gives the answers
//! the messages hold (it checks them itself and exits 2 when one is wrong).

use std::process::Command;

#[test]
fn the_sqlite_side_gives_the_expected_answers() {
    let out = Command::new(env!("CARGO_BIN_EXE_ssb-sqlite"))
        .output()
        .expect("run ssb-sqlite");
    assert!(
        out.status.success(),
        "ssb-sqlite failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("a JSON line");
    assert_eq!(line["scan_count"], 2000);
    assert!(line["scan_a_ms"].as_f64().is_some_and(|ms| ms > 0.0));
}
