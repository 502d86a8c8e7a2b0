//! `cargo xtask fuzz`: every cargo-fuzz target in `fuzz/` for a while, then a table of what ran.
//!
//! The targets are the `[[bin]]`s of `fuzz/Cargo.toml`, so a new one needs no change here; its
//! extra libFuzzer options, if any, go in `fuzz/args/<target>` (whitespace-separated).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::USAGE;

/// The nightly toolchain the fuzz targets build with (cargo-fuzz needs nightly); `.ci/run`
/// installs this one.
pub(crate) const TOOLCHAIN: &str = "nightly-2026-05-19";

/// When a target's run stops: after a time, or after a number of executions.
#[derive(Clone, Copy)]
pub(crate) enum Budget {
    /// `-max_total_time`: seconds per target.
    Secs(u64),
    /// `-runs`: executions per target (no time limit).
    Runs(u64),
}

/// What one target's run did.
struct Run {
    target: String,
    runs: Option<u64>,
    secs: f64,
    ok: bool,
}

pub(crate) fn fuzz(args: &[String]) -> ExitCode {
    let mut budget = Budget::Secs(60);
    let mut only: Option<String> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--secs", Some(v)) => match v.parse() {
                Ok(n) if n > 0 => budget = Budget::Secs(n),
                _ => return usage("--secs takes a positive number of seconds"),
            },
            ("--runs", Some(v)) => match v.parse() {
                Ok(n) if n > 0 => budget = Budget::Runs(n),
                _ => return usage("--runs takes a positive number of executions"),
            },
            ("--target", Some(v)) => only = Some(v.clone()),
            _ => return usage(&format!("unknown option {arg}")),
        }
    }
    if run(budget, only.as_deref()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs every fuzz target (or only `only`) until `budget` is spent and prints a table of
/// executions; whether all ran without a failure.
pub(crate) fn run(budget: Budget, only: Option<&str>) -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = match std::fs::read_to_string(root.join("fuzz/Cargo.toml")) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("fuzz/Cargo.toml: {err}");
            return false;
        }
    };
    let targets: Vec<String> = targets(&manifest)
        .into_iter()
        .filter(|t| only.is_none_or(|o| o == t))
        .collect();
    if targets.is_empty() {
        eprintln!("no fuzz target {}", only.unwrap_or_default());
        return false;
    }
    let mut results = Vec::new();
    for target in targets {
        let stop = match budget {
            Budget::Secs(secs) => {
                println!("\n==> fuzz {target} for {secs} s");
                format!("-max_total_time={secs}")
            }
            Budget::Runs(runs) => {
                println!("\n==> fuzz {target} for {runs} executions");
                format!("-runs={runs}")
            }
        };
        let extra =
            std::fs::read_to_string(root.join("fuzz/args").join(&target)).unwrap_or_default();
        let work = format!("fuzz/target/work/{target}");
        if let Err(err) = std::fs::create_dir_all(root.join(&work)) {
            eprintln!("{work}: {err}");
            return false;
        }
        let corpus = format!("fuzz/corpus/{target}");
        // Through rustup's cargo, so `+toolchain` selects the nightly cargo-fuzz needs.
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&root)
            .arg(format!("+{TOOLCHAIN}"))
            .args(["fuzz", "run", &target, &work, &corpus, "--"])
            .args([
                stop.as_str(),
                "-rss_limit_mb=2048",
                "-malloc_limit_mb=512",
                "-timeout=10",
                "-print_final_stats=1",
            ])
            .args(extra.split_whitespace());
        let start = Instant::now();
        let (ok, runs) = match cmd.output() {
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                eprint!("{stderr}");
                (out.status.success(), executions(&stderr))
            }
            Err(err) => {
                eprintln!("could not run {cmd:?}: {err}");
                (false, None)
            }
        };
        results.push(Run {
            target,
            runs,
            secs: start.elapsed().as_secs_f64(),
            ok,
        });
    }
    println!(
        "\n| target | executions | seconds | executions/s | result |\n|---|---:|---:|---:|---|"
    );
    for run in &results {
        let (runs, rate) = match run.runs {
            Some(n) => (n.to_string(), format!("{:.0}", n as f64 / run.secs)),
            None => ("?".into(), "?".into()),
        };
        let result = if run.ok { "no failure" } else { "FAILED" };
        println!(
            "| {} | {runs} | {:.0} | {rate} | {result} |",
            run.target, run.secs
        );
    }
    results.iter().all(|r| r.ok)
}

fn usage(why: &str) -> ExitCode {
    eprintln!("{why}\n\n{USAGE}");
    ExitCode::from(2)
}

/// The names of the `[[bin]]` sections of the fuzz manifest.
fn targets(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(name) = line.strip_prefix("name") {
            let name = name
                .trim_start()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            out.push(name.to_string());
        }
    }
    out
}

/// How many inputs libFuzzer ran: its final stats line `stat::number_of_executed_units: N`.
fn executions(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .next_back()
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_the_bins_of_the_manifest() {
        let manifest = "[package]\nname = \"x\"\n\n[[bin]]\nname = \"a\"\npath = \"a.rs\"\n\n\
                        [[bin]]\nname=\"b\"\n[dependencies]\nname = \"no\"\n";
        assert_eq!(targets(manifest), ["a", "b"]);
    }

    #[test]
    fn executions_come_from_the_final_stats() {
        let out = "#1024 pulse\nstat::number_of_executed_units: 12345\nstat::peak_rss_mb: 40\n";
        assert_eq!(executions(out), Some(12345));
        assert_eq!(executions("nothing"), None);
    }
}
