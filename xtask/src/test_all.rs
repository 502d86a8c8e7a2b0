//! `cargo xtask test-all`: every check CI runs, one step after another, then a summary.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use crate::workspace::{self, Package};
use crate::{USAGE, cargo};

struct Step {
    name: String,
    ok: bool,
    took: Duration,
}

/// The steps run so far.
#[derive(Default)]
struct Steps(Vec<Step>);

impl Steps {
    /// Runs `cmd` as the step `name`, passing its output through; its stdout if it could run.
    fn run(&mut self, name: &str, mut cmd: Command) -> Option<String> {
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
        self.record(name, ok, start.elapsed());
        output
    }

    fn record(&mut self, name: &str, ok: bool, took: Duration) {
        self.0.push(Step {
            name: name.to_string(),
            ok,
            took,
        });
    }

    fn last_ok(&self) -> bool {
        self.0.last().is_some_and(|step| step.ok)
    }
}

pub(crate) fn test_all(args: &[String]) -> ExitCode {
    let soak = args.iter().any(|a| a == "--soak");
    if let Some(unknown) = args.iter().find(|a| *a != "--soak") {
        eprintln!("unknown option {unknown}\n\n{USAGE}");
        return ExitCode::from(2);
    }
    let total = Instant::now();
    let mut steps = Steps::default();

    println!("\n==> cargo metadata");
    let packages = workspace::packages().unwrap_or_else(|err| {
        eprintln!("{err}");
        steps.record("cargo metadata", false, Duration::ZERO);
        Vec::new()
    });
    println!(
        "crates: {}",
        packages
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    steps.run("fmt", cargo(&["fmt", "--all", "--", "--check"]));
    steps.run(
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
    // Each crate on its own (`-p`), so each builds with only its own dependencies.
    for krate in &packages {
        let name = krate.name.as_str();
        let mut cmd = cargo(&["test", "-p", name, "--all-targets"]);
        if soak {
            cmd.env("FLUMEDB_SOAK", "1");
        }
        steps.run(&format!("test {name}"), cmd);
        if krate.lib {
            steps.run(
                &format!("doctest {name}"),
                cargo(&["test", "-p", name, "--doc"]),
            );
        }
    }
    // Feature-gated code (testkit, codecs) is tested too.
    for krate in packages.iter().filter(|p| p.lib && p.features) {
        let name = krate.name.as_str();
        steps.run(
            &format!("test {name} --all-features"),
            cargo(&["test", "-p", name, "--all-features", "--lib"]),
        );
        steps.run(
            &format!("doctest {name} --all-features"),
            cargo(&["test", "-p", name, "--all-features", "--doc"]),
        );
    }
    // The loom models (offset's seqlock; core's since watch, view read wait and live cursor),
    // in their own target dir: `--cfg loom` changes every crate's flags, so sharing the main
    // dir would rebuild everything twice.
    let mut loom = cargo(&[
        "test",
        "--release",
        "-p",
        "flumedb-core",
        "-p",
        "flumelog-offset",
        "--lib",
        "--",
        "loom_models",
        "seqlock",
    ]);
    loom.env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", "target/loom");
    steps.run("loom models", loom);
    // Each publishable crate packages (manifest, metadata, file list). `--no-verify`:
    // verifying compiles the packaged sources against each other through a temporary
    // registry, whose crates cargo treats as immutable per version, so in a shared target
    // directory it would reuse an earlier run's build of the same version. The code itself is
    // compiled and tested by the steps above.
    let mut package = vec!["package", "--allow-dirty", "--no-verify"];
    for krate in packages.iter().filter(|p| p.publish) {
        package.extend(["-p", krate.name.as_str()]);
    }
    steps.run("cargo package", cargo(&package));
    let mut doc = cargo(&["doc", "--workspace", "--no-deps", "--all-features"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    steps.run("rustdoc", doc);
    quickstart(&mut steps);
    // Every fuzz target builds and runs a few seconds from its committed corpus (the long runs
    // are `cargo xtask fuzz`).
    println!("\n==> fuzz smoke run");
    let start = Instant::now();
    let fuzzed = crate::fuzz::run(crate::fuzz::Budget::Secs(if soak { 300 } else { 5 }), None);
    steps.record("fuzz smoke run (cargo-fuzz)", fuzzed, start.elapsed());
    msrv(&mut steps, &packages);
    steps.run("cargo deny licenses", cargo(&["deny", "check", "licenses"]));
    if !steps.last_ok() {
        eprintln!(
            "(cargo-deny is installed by .ci/run, at the version pinned there; the advisory \
             database cannot be fetched here, so only licenses are checked)"
        );
    }

    println!("\n==> summary");
    for step in &steps.0 {
        let mark = if step.ok { "ok  " } else { "FAIL" };
        println!("{mark} {:<40} {:>7.1}s", step.name, step.took.as_secs_f64());
    }
    let failed = steps.0.iter().filter(|s| !s.ok).count();
    println!("total time {:.0}s", total.elapsed().as_secs_f64());
    println!("{} passed, {failed} failed", steps.0.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The README promises the seed's output: the sum is 1, then 6.
fn quickstart(steps: &mut Steps) {
    let printed = steps.run(
        "quickstart",
        cargo(&["run", "--quiet", "--example", "quickstart"]),
    );
    let expected = ["seq 0: sum = 1", "seq 1: sum = 6"];
    let printed: Vec<String> = printed
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let ok = printed == expected;
    if !ok {
        eprintln!("quickstart printed {printed:?}, expected {expected:?}");
    }
    steps.record("quickstart prints 1 then 6", ok, Duration::ZERO);
}

/// Builds every target of each crate, with all features, on the toolchain of the
/// `rust-version` it declares: the promise is that it compiles there (clippy's
/// `incompatible_msrv` only sees std APIs, not language features or dependencies' needs).
/// Doctests are not compiled by `check`.
fn msrv(steps: &mut Steps, packages: &[Package]) {
    let mut by_version: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for krate in packages {
        if let Some(version) = &krate.rust_version {
            by_version
                .entry(version.as_str())
                .or_default()
                .push(krate.name.as_str());
        }
    }
    for (version, crates) in by_version {
        let name = format!("msrv: check on Rust {version}");
        let installed = Command::new("rustup")
            .args(["run", version, "rustc", "--version"])
            .output()
            .is_ok_and(|out| out.status.success());
        if !installed {
            println!("\n==> {name}");
            eprintln!(
                "the Rust {version} toolchain is not installed: \
                 rustup toolchain install {version} --profile minimal (.ci/run does)"
            );
            steps.record(&name, false, Duration::ZERO);
            continue;
        }
        let mut cmd = Command::new("rustup");
        cmd.args([
            "run",
            version,
            "cargo",
            "check",
            "--all-targets",
            "--all-features",
        ]);
        for krate in crates {
            cmd.args(["-p", krate]);
        }
        steps.run(&name, cmd);
    }
}
