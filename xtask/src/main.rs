//! Project tasks. `cargo xtask test-all` runs every check CI runs.

mod bench;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// The library crates, each tested on its own (`-p`), so each builds with only its own
/// dependencies.
const CRATES: &[&str] = &[
    "flumedb-core",
    "flumelog-memory",
    "flumelog-offset",
    "flumeview-level",
    "flumeview-query",
    "flumeview-reduce",
];

pub(crate) const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test-all [--soak]   fmt check, clippy -D warnings, each crate's tests and doctests on their own,
                      cargo package (each crate is publishable), rustdoc with warnings denied,
                      and the README quickstart.
                      --soak runs the randomised tests with many more cases (slow).
  bench [--n N] [--only rust]
                      the SSB workload (N messages, default 100000) on this project and on JS
                      flumedb 2.1.8 (bench/js, installed with npm ci when missing), side by
                      side; prints the table and writes it to bench/results/<date>-<N>.md.
                      --only rust skips the JS side (and writes no results file).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test-all") => test_all(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        _ => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

struct Step {
    name: String,
    ok: bool,
    took: Duration,
}

pub(crate) fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args);
    cmd
}

fn run(steps: &mut Vec<Step>, name: &str, mut cmd: Command) -> Option<String> {
    println!("\n==> {name}");
    let start = Instant::now();
    let (ok, output) = match cmd.output() {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            print!("{stdout}");
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            (out.status.success(), Some(stdout))
        }
        Err(err) => {
            eprintln!("could not run {cmd:?}: {err}");
            (false, None)
        }
    };
    steps.push(Step {
        name: name.to_string(),
        ok,
        took: start.elapsed(),
    });
    output
}

fn test_all(args: &[String]) -> ExitCode {
    let soak = args.iter().any(|a| a == "--soak");
    if let Some(unknown) = args.iter().find(|a| *a != "--soak") {
        eprintln!("unknown option {unknown}\n\n{USAGE}");
        return ExitCode::from(2);
    }
    let total = Instant::now();
    let mut steps = Vec::new();

    // The loom model of flumelog-offset's seqlock, in its own target dir: `--cfg loom` changes
    // every crate's flags, so sharing the main dir would rebuild everything twice.
    let mut loom = cargo(&[
        "test",
        "--release",
        "-p",
        "flumelog-offset",
        "--lib",
        "seqlock",
    ]);
    loom.env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", "target/loom");
    run(&mut steps, "loom model flumelog-offset seqlock", loom);
    run(&mut steps, "fmt", cargo(&["fmt", "--all", "--", "--check"]));
    run(
        &mut steps,
        "clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    );
    for krate in CRATES {
        let mut cmd = cargo(&["test", "-p", krate, "--all-targets"]);
        if soak {
            cmd.env("FLUMEDB_SOAK", "1");
        }
        run(&mut steps, &format!("test {krate}"), cmd);
        run(
            &mut steps,
            &format!("doctest {krate}"),
            cargo(&["test", "-p", krate, "--doc"]),
        );
    }
    run(
        &mut steps,
        "test flumedb-core --all-features",
        cargo(&["test", "-p", "flumedb-core", "--all-features", "--lib"]),
    );
    // Each crate packages (manifest, metadata, file list). `--no-verify`: verifying compiles
    // the packaged sources against each other through a temporary registry, whose crates
    // cargo treats as immutable per version, so in a shared target directory it would reuse
    // an earlier run's build of the same version. The code itself is compiled and tested by
    // the steps above.
    let mut package = vec!["package", "--allow-dirty", "--no-verify"];
    for krate in CRATES {
        package.extend(["-p", krate]);
    }
    run(&mut steps, "cargo package", cargo(&package));
    let mut doc = cargo(&["doc", "--workspace", "--no-deps", "--all-features"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    run(&mut steps, "rustdoc", doc);
    let quickstart = run(
        &mut steps,
        "quickstart",
        cargo(&["run", "--quiet", "--example", "quickstart"]),
    );
    // The README promises the seed's output: the sum is 1, then 6.
    let expected = ["seq 0: sum = 1", "seq 1: sum = 6"];
    let printed: Vec<String> = quickstart
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let quickstart_ok = printed == expected;
    if !quickstart_ok {
        eprintln!("quickstart printed {printed:?}, expected {expected:?}");
    }
    steps.push(Step {
        name: "quickstart prints 1 then 6".into(),
        ok: quickstart_ok,
        took: Duration::ZERO,
    });

    println!("\n==> summary");
    for step in &steps {
        let mark = if step.ok { "ok  " } else { "FAIL" };
        println!("{mark} {:<40} {:>7.1}s", step.name, step.took.as_secs_f64());
    }
    let failed = steps.iter().filter(|s| !s.ok).count();
    println!("total time {:.0}s", total.elapsed().as_secs_f64());
    println!("{} passed, {failed} failed", steps.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
