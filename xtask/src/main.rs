//! Project tasks. `cargo xtask test-all` runs every check CI runs.

#![forbid(unsafe_code)]

mod bench;
mod fuzz;
mod test_all;
mod workspace;

use std::process::{Command, ExitCode};

pub(crate) const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test-all [--soak]   fmt check, clippy -D warnings, each workspace crate's tests and doctests
                      on their own (and with all features, where it has any), cargo package
                      (each publishable crate), the loom models (offset's seqlock, core's
                      watches and live cursor; --cfg loom, in target/loom), rustdoc with
                      warnings denied, the README quickstart, a build with each crate's
                      rust-version toolchain (MSRV), a fuzz smoke run (every target 5 s;
                      300 s with --soak), and cargo deny's license check. The crates come
                      from cargo metadata.
                      --soak runs the randomised tests with many more cases (slow).
  fuzz [--secs N | --runs N] [--target T]
                      every cargo-fuzz target of fuzz/ (or only T) for N seconds each
                      (default 60), or for N executions each, on the pinned nightly, growing a work corpus under
                      fuzz/target/work/ from the committed fuzz/corpus/; then a table of
                      executions per target. Needs cargo-fuzz 0.13.2 (see fuzz/README.md).
  bench [--n N] [--only rust[,sqlite][,js]]
                      the SSB workload (N messages, default 100000) on this project, on
                      SQLite (rusqlite, bundled) and on JS flumedb 2.1.8 (bench/js, installed
                      with npm ci when missing), side by side; prints the tables and writes
                      them to bench/results/<date>-<N>.md. --only runs just those sides
                      (`rust`: no node; `rust,sqlite`) and writes no results file.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("test-all") => test_all::test_all(rest),
        Some("bench") => bench::bench(rest),
        Some("fuzz") => fuzz::fuzz(rest),
        _ => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `cargo` with `args`: the cargo that runs this task (`$CARGO`), so every step uses one
/// toolchain.
pub(crate) fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args);
    cmd
}
