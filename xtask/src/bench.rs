//! `cargo xtask bench`: the SSB workload on this project and on JS flumedb 2.1.8, side by
//! side, in one run; prints the table and writes it to `bench/results/<date>-<n>.md`.

use flumedb_bench as ssb;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use serde_json::Value;

use crate::cargo;

struct Options {
    n: usize,
    only_rust: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        n: 100_000,
        only_rust: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--n" => {
                options.n = args
                    .next()
                    .and_then(|n| n.replace('_', "").parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--n takes a positive number")?;
            }
            "--only" => match args.next().map(String::as_str) {
                Some("rust") => options.only_rust = true,
                other => return Err(format!("--only takes `rust`, not {other:?}")),
            },
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs `cmd`, passing its stderr through, and parses the last line of its stdout as JSON.
fn json_line(what: &str, mut cmd: Command) -> Result<Value, String> {
    println!("==> {what}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed ({})", out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("{what} printed no JSON line"))?;
    serde_json::from_str(line).map_err(|e| format!("{what} printed bad JSON: {e}"))
}

fn js_side(root: &Path, messages: &Path, work: &Path, params: &Path) -> Result<Value, String> {
    let js = root.join("bench/js");
    Command::new("node")
        .arg("--version")
        .output()
        .map_err(|_| "node is not installed (use --only rust)".to_string())?;
    if !js.join("node_modules/flumedb").is_dir() {
        println!("==> npm ci in {}", js.display());
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&js)
            .status()
            .map_err(|e| format!("could not run npm: {e}"))?;
        if !status.success() {
            return Err(format!("npm ci in {} failed", js.display()));
        }
    }
    let mut cmd = Command::new("node");
    cmd.arg(js.join("bench.js"))
        .arg(messages)
        .arg(work)
        .arg(params);
    json_line("JS side (node bench/js/bench.js)", cmd)
}

/// JS flumeview-query with its default `exact: true` (`bench/js/query.js`): how many rows
/// its index reads return, against the true counts.
fn js_default_exact(
    root: &Path,
    messages: &Path,
    work: &Path,
    params: &Value,
) -> Result<Value, String> {
    let mut cmd = Command::new("node");
    cmd.arg(root.join("bench/js/query.js"))
        .arg(messages)
        .arg(work)
        .arg(params["query_author"].as_str().unwrap_or_default())
        .arg(params["query_since"].to_string())
        .env("JS_DEFAULT_EXACT", "1");
    json_line(
        "JS flumeview-query with its default exact:true (node bench/js/query.js)",
        cmd,
    )
}

/// Both sides must compute the same answers: a benchmark that computes something else is a bug.
fn same_answers(rust: &Value, js: &Value) -> Result<(), String> {
    for key in [
        "counts",
        "scan_count",
        "votes_rows",
        "author_rows",
        "level_range_rows",
    ] {
        if rust[key] != js[key] {
            return Err(format!(
                "the sides disagree on {key}: Rust {} vs JS {}",
                rust[key], js[key]
            ));
        }
    }
    Ok(())
}

/// One row of the table: figure, its key, unit scale, and the target.
struct Figure {
    name: String,
    key: &'static str,
    target: Target,
}

enum Target {
    /// JS/Rust at least this.
    Ratio(f64),
    /// Rust at most this many ms.
    AtMostMs(f64),
    /// Rust peak memory at most JS's divided by this.
    MemoryFraction(f64),
    None,
}

fn figures(rust: &Value) -> Vec<Figure> {
    let rows = |k: &str| rust[k].as_u64().unwrap_or(0);
    vec![
        Figure {
            name: format!(
                "append + index, {} appends acknowledged one by one (ms)",
                rows("scan_count")
            ),
            key: "append_ms",
            target: Target::Ratio(50.0),
        },
        Figure {
            name: "10,000 random get(seq) (ms)".into(),
            key: "get_ms",
            target: Target::Ratio(50.0),
        },
        Figure {
            name: "10,000 level get([author, sequence]) (ms)".into(),
            key: "level_get_ms",
            target: Target::Ratio(50.0),
        },
        Figure {
            name: "full scan of the log (ms)".into(),
            key: "scan_ms",
            target: Target::Ratio(10.0),
        },
        Figure {
            name: format!(
                "level range read of one author, {} rows (ms)",
                rows("level_range_rows")
            ),
            key: "level_range_ms",
            target: Target::None,
        },
        Figure {
            name: format!(
                "query all votes, {} rows (ms, min of 5)",
                rows("votes_rows")
            ),
            key: "votes_ms",
            target: Target::Ratio(10.0),
        },
        Figure {
            name: format!(
                "query one author after a time, {} rows (ms, min of 20)",
                rows("author_rows")
            ),
            key: "author_ms",
            target: Target::Ratio(10.0),
        },
        Figure {
            name: "reduce get (µs)".into(),
            key: "reduce_get_us",
            target: Target::None,
        },
        Figure {
            name: "reopen with views current (ms)".into(),
            key: "reopen_ms",
            target: Target::AtMostMs(5.0),
        },
        Figure {
            name: "rebuild all views from the log (ms)".into(),
            key: "rebuild_ms",
            target: Target::Ratio(20.0),
        },
        Figure {
            name: "peak RSS (MB)".into(),
            key: "rss_kb",
            target: Target::MemoryFraction(4.0),
        },
    ]
}

fn table(rust: &Value, js: Option<&Value>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| figure | JS | Rust | JS/Rust | target |");
    let _ = writeln!(out, "|---|---:|---:|---:|---|");
    for f in figures(rust) {
        let scale = if f.key == "rss_kb" { 1.0 / 1024.0 } else { 1.0 };
        let r = rust[f.key].as_f64().map(|x| x * scale);
        let j = js.and_then(|j| j[f.key].as_f64()).map(|x| x * scale);
        let show = |x: Option<f64>| match x {
            Some(x) if x >= 100.0 => format!("{x:.0}"),
            Some(x) if x >= 1.0 => format!("{x:.2}"),
            Some(x) => format!("{x:.3}"),
            None => "-".into(),
        };
        let ratio = match (j, r) {
            (Some(j), Some(r)) if r > 0.0 => Some(j / r),
            _ => None,
        };
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let target = match (&f.target, ratio, r) {
            (Target::Ratio(t), Some(x), _) => format!("≥ {t}×: {}", verdict(x >= *t)),
            (Target::Ratio(t), None, _) => format!("≥ {t}×"),
            (Target::AtMostMs(t), _, Some(r)) => format!("≤ {t} ms: {}", verdict(r <= *t)),
            (Target::MemoryFraction(t), Some(x), _) => format!("≤ JS/{t}: {}", verdict(x >= *t)),
            _ => String::new(),
        };
        let ratio = ratio.map_or("-".into(), |x| format!("{x:.1}×"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            f.name,
            show(j),
            show(r),
            ratio,
            target
        );
    }
    out
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or("unknown".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0)
        });
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown".into(), |s| s.trim().to_string());
    format!("{cores} cores ({cpu}), {memory} memory")
}

/// Today's date (UTC), from the system clock.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn report(
    root: &Path,
    options: &Options,
    rust: &Value,
    js: Option<&Value>,
    exact: Option<&Value>,
) -> String {
    let package: Value = std::fs::read_to_string(root.join("bench/js/package.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let js_versions = package
        .get("dependencies")
        .and_then(Value::as_object)
        .map(|deps| {
            deps.iter()
                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# flumedb benchmark, {} messages, {}\n",
        options.n,
        today()
    );
    let _ = writeln!(
        out,
        "`cargo xtask bench --n {}{}`: the SSB workload (`bench/ssb.rs`, seed 1) on flumedb for \
         Rust and on JS flumedb, in the same run. One log (flumelog-offset) and three views: a \
         reduce counting messages by type, a level view keyed `[author, sequence]`, a query view \
         with indexes `[content.type, timestamp]` and `[author, timestamp]`. Both sides check \
         their answers against the input and against each other.\n",
        options.n,
        if options.only_rust {
            " --only rust"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(
        out,
        "- Rust: {}, flumedb crates 0.1.0 (release profile)",
        command_output("rustc", &["-V"])
    );
    if js.is_some() {
        let _ = writeln!(
            out,
            "- JS: node {}, {js_versions}",
            command_output("node", &["--version"])
        );
    }
    let _ = writeln!(
        out,
        "- answers: counts {}, {} votes, {} rows for the author query, {} for the level range\n",
        rust["counts"], rust["votes_rows"], rust["author_rows"], rust["level_range_rows"]
    );
    out.push_str(&table(rust, js));
    if let Some(exact) = exact {
        let loss = |q: &str| {
            let field = |f: &str| exact.get(q).and_then(|q| q.get(f)).and_then(Value::as_i64);
            let rows = field("rows").unwrap_or(0);
            let expected = field("expected").unwrap_or(0);
            format!("{rows} of {expected} ({} lost)", expected - rows)
        };
        let _ = writeln!(
            out,
            "\nJS flumeview-query's default `exact: true` keys index rows by the fields alone, so \
             records with equal fields overwrite each other (the JS side above uses `exact: false`, \
             as this project always does). With the default, on the same data: all votes {}; one \
             author after a time {}.",
            loss("votes"),
            loss("author")
        );
    }
    out
}

pub fn bench(args: &[String]) -> ExitCode {
    let options = match parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}\n\n{}", crate::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    let root = root();
    let dir = root.join("target/bench").join(format!("n-{}", options.n));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let messages_path = dir.join("messages.jsonl");
    let params_path = dir.join("params.json");
    {
        println!(
            "==> generating {} messages into {}",
            options.n,
            messages_path.display()
        );
        let messages = ssb::messages(options.n, 1);
        ssb::write_jsonl(&messages_path, &messages).map_err(|e| e.to_string())?;
        let params = ssb::params(&messages, 1);
        std::fs::write(&params_path, params.to_string()).map_err(|e| e.to_string())?;
    }
    let path = |p: &Path| p.display().to_string();
    let mut cmd = cargo(&[
        "bench",
        "-p",
        "flumeview-query",
        "--bench",
        "ssb",
        "--",
        &path(&messages_path),
        &path(&dir.join("rust")),
        &path(&params_path),
    ]);
    cmd.current_dir(&root);
    let rust = json_line(
        "Rust side (cargo bench -p flumeview-query --bench ssb)",
        cmd,
    )?;
    let (js, exact) = if options.only_rust {
        (None, None)
    } else {
        let js = js_side(&root, &messages_path, &dir.join("js"), &params_path)?;
        same_answers(&rust, &js)?;
        let params: Value = std::fs::read_to_string(&params_path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null);
        let exact = js_default_exact(&root, &messages_path, &dir.join("js-exact"), &params)?;
        (Some(js), Some(exact))
    };
    let report = report(&root, options, &rust, js.as_ref(), exact.as_ref());
    println!("\n{report}");
    if !options.only_rust {
        let results = root.join("bench/results");
        std::fs::create_dir_all(&results).map_err(|e| e.to_string())?;
        let file = results.join(format!("{}-{}.md", today(), options.n));
        std::fs::write(&file, &report).map_err(|e| e.to_string())?;
        println!("written to {}", file.display());
    }
    // The generated messages and databases can be large (FLUMEDB_BENCH_KEEP=1 keeps them).
    if std::env::var_os("FLUMEDB_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
