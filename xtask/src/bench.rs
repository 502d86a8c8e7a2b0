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
    js: bool,
    sqlite: bool,
}

impl Options {
    /// The options as given on the command line (for the results file).
    fn flags(&self) -> String {
        let mut sides = vec!["rust"];
        if self.sqlite {
            sides.push("sqlite");
        }
        if self.js {
            sides.push("js");
        }
        if self.js && self.sqlite {
            String::new()
        } else {
            format!(" --only {}", sides.join(","))
        }
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        n: 100_000,
        js: true,
        sqlite: true,
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
            "--only" => {
                let sides = args
                    .next()
                    .ok_or("--only takes sides: rust[,sqlite][,js]")?;
                options.js = false;
                options.sqlite = false;
                for side in sides.split(',') {
                    match side {
                        "rust" => {}
                        "sqlite" => options.sqlite = true,
                        "js" => options.js = true,
                        other => {
                            return Err(format!(
                                "--only takes rust, sqlite and js (comma-separated), not {other}"
                            ));
                        }
                    }
                }
            }
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

/// One row of a table: the figure, its key in each side's JSON line, and its targets.
struct Figure {
    name: String,
    key: &'static str,
    /// JS/Rust at least this.
    vs_js: Option<f64>,
    /// SQLite/Rust at least this (for peak RSS: Rust at most this times SQLite's).
    vs_sqlite: Option<f64>,
    /// Rust at most this (in the figure's unit).
    at_most: Option<f64>,
}

fn figure(name: impl Into<String>, key: &'static str) -> Figure {
    Figure {
        name: name.into(),
        key,
        vs_js: None,
        vs_sqlite: None,
        at_most: None,
    }
}

impl Figure {
    fn js(mut self, ratio: f64) -> Figure {
        self.vs_js = Some(ratio);
        self
    }
    fn sqlite(mut self, ratio: f64) -> Figure {
        self.vs_sqlite = Some(ratio);
        self
    }
    fn at_most(mut self, limit: f64) -> Figure {
        self.at_most = Some(limit);
        self
    }
}

/// Pass (b) and the figures that are not reads: every returned record decoded whole.
fn figures_b(rust: &Value) -> Vec<Figure> {
    let rows = |k: &str| rust[k].as_u64().unwrap_or(0);
    vec![
        figure(
            format!(
                "append + index, {} appends acknowledged one by one (ms)",
                rows("scan_count")
            ),
            "append_ms",
        )
        .js(50.0)
        .sqlite(1.5),
        figure("10,000 random get(seq) (ms)", "get_ms")
            .js(50.0)
            .sqlite(1.5),
        figure("10,000 level get([author, sequence]) (ms)", "level_get_ms")
            .js(50.0)
            .sqlite(1.5),
        figure("full scan of the log (ms)", "scan_ms")
            .js(20.0)
            .sqlite(1.5),
        figure(
            format!(
                "level range read of one author, {} rows (ms)",
                rows("level_range_rows")
            ),
            "level_range_ms",
        )
        .sqlite(1.5),
        figure(
            format!(
                "query all votes, {} rows (ms, min of 5)",
                rows("votes_rows")
            ),
            "votes_ms",
        )
        .js(15.0)
        .sqlite(1.5),
        figure(
            format!(
                "query one author after a time, {} rows (ms, min of 20)",
                rows("author_rows")
            ),
            "author_ms",
        )
        .js(15.0)
        .sqlite(1.5),
        figure(
            format!(
                "count all votes ($count, {} votes; ms, min of 20)",
                rows("votes_rows")
            ),
            "count_votes_ms",
        )
        .js(15.0)
        .sqlite(2.0)
        .at_most(1.0),
        figure(
            "counts by type ($reduce grouped by type; ms, min of 20)",
            "count_types_ms",
        )
        .js(15.0)
        .sqlite(2.0)
        .at_most(1.0),
        figure("reduce get (µs)", "reduce_get_us").sqlite(1.5),
        figure("close (ms)", "close_ms").sqlite(1.5).at_most(20.0),
        figure("reopen with views current (ms)", "reopen_ms")
            .sqlite(1.5)
            .at_most(1.0),
        figure("rebuild all views from the log (ms)", "rebuild_ms")
            .js(30.0)
            .sqlite(1.5),
        figure("peak RSS (MB)", "rss_kb").sqlite(2.0),
    ]
}

/// Pass (a): one field of every returned record read.
fn figures_a(rust: &Value) -> Vec<Figure> {
    let rows = |k: &str| rust[k].as_u64().unwrap_or(0);
    vec![
        figure("10,000 random get(seq) (ms)", "get_a_ms").sqlite(2.0),
        figure(
            "10,000 level get([author, sequence]) (ms)",
            "level_get_a_ms",
        )
        .sqlite(2.0),
        figure(
            "10,000 level get, `value.sequence` from the index key (ms)",
            "level_get_key_ms",
        )
        .sqlite(2.0),
        figure("full scan of the log (ms)", "scan_a_ms").sqlite(2.0),
        figure(
            format!(
                "level range read of one author, {} rows (ms)",
                rows("level_range_rows")
            ),
            "level_range_a_ms",
        )
        .sqlite(2.0),
        figure(
            "level range read, `value.sequence` from the index keys (ms)",
            "level_range_key_ms",
        )
        .sqlite(2.0),
        figure(
            format!(
                "query all votes, {} rows (ms, min of 5)",
                rows("votes_rows")
            ),
            "votes_a_ms",
        )
        .sqlite(2.0),
        figure(
            format!(
                "query one author after a time, {} rows (ms, min of 20)",
                rows("author_rows")
            ),
            "author_a_ms",
        )
        .sqlite(2.0),
    ]
}

fn show(x: Option<f64>) -> String {
    match x {
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 1.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.3}"),
        None => "-".into(),
    }
}

/// The table of `figures`: each side's figure, the ratios against Rust, and the targets.
fn table(figures: Vec<Figure>, rust: &Value, js: Option<&Value>, sqlite: Option<&Value>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| figure | JS | SQLite | Rust | JS/Rust | SQLite/Rust | target |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
    for f in figures {
        let scale = if f.key == "rss_kb" { 1.0 / 1024.0 } else { 1.0 };
        let value = |side: Option<&Value>| side.and_then(|s| s[f.key].as_f64()).map(|x| x * scale);
        let (r, j, q) = (value(Some(rust)), value(js), value(sqlite));
        let ratio = |other: Option<f64>| match (other, r) {
            (Some(o), Some(r)) if r > 0.0 => Some(o / r),
            _ => None,
        };
        let (vs_js, vs_sqlite) = (ratio(j), ratio(q));
        let verdict = |ok: Option<bool>| match ok {
            Some(true) => ": met",
            Some(false) => ": MISSED",
            None => "",
        };
        let mut targets = Vec::new();
        if let Some(t) = f.vs_js {
            targets.push(format!("JS ≥ {t}×{}", verdict(vs_js.map(|x| x >= t))));
        }
        if let Some(t) = f.vs_sqlite {
            if f.key == "rss_kb" {
                let ok = vs_sqlite.map(|x| x * t >= 1.0);
                targets.push(format!("≤ {t}× SQLite{}", verdict(ok)));
            } else {
                targets.push(format!(
                    "SQLite ≥ {t}×{}",
                    verdict(vs_sqlite.map(|x| x >= t))
                ));
            }
        }
        if let Some(t) = f.at_most {
            targets.push(format!("≤ {t}{}", verdict(r.map(|r| r <= t))));
        }
        let times = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.1}×"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            f.name,
            show(j),
            show(q),
            show(r),
            times(vs_js),
            times(vs_sqlite),
            targets.join("; ")
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
    sqlite: Option<&Value>,
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
         Rust, on JS flumedb and on SQLite, in the same run. One log (flumelog-offset) and three \
         views: a reduce counting messages by type, a level view keyed `[author, sequence]`, a \
         query view with indexes `[content.type, timestamp]` and `[author, timestamp]`; SQLite: \
         the JSON text in a table, generated columns and the same three indexes, WAL, \
         synchronous=NORMAL, one transaction per append (`bench/sqlite.rs`). Every side's \
         answers (counts, rows, and the sum of `value.sequence` over every record each read \
         returns) are checked against the input.\n",
        options.n,
        options.flags()
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
    if let Some(sqlite) = sqlite {
        let _ = writeln!(
            out,
            "- SQLite: {} (bundled, through rusqlite)",
            sqlite["sqlite_version"].as_str().unwrap_or("?")
        );
    }
    let _ = writeln!(
        out,
        "- answers: counts {}, {} votes, {} rows for the author query, {} for the level range\n",
        rust["counts"], rust["votes_rows"], rust["author_rows"], rust["level_range_rows"]
    );
    let _ = writeln!(
        out,
        "**Pass (b)**: every record a read returns is decoded whole (into a \
         `serde_json::Value` in Rust and SQLite, a JS object in JS), and the figures that are \
         not reads.\n"
    );
    out.push_str(&table(figures_b(rust), rust, js, sqlite));
    let _ = writeln!(
        out,
        "\n**Pass (a)**: one field (`value.sequence`) of every record a read returns is read: \
         in place from the stored bytes in Rust (`Doc`), with `json_extract` in SQLite. JS \
         flumedb decodes every record whatever is read, so it has no pass (a). SQLite reads \
         `value.sequence` of its level get and range from the index (`[author, sequence]` \
         holds it; `EXPLAIN` shows the table row is never read), so for those two the \
         SQLite column is the same figure in both rows, and the rows \"from the index key\" \
         are the Rust side reading the same way (`get_seq`, `values(false)`, the field from the key).\n"
    );
    out.push_str(&table(figures_a(rust), rust, None, sqlite));
    if let Some(floor) = rust["floor_ms"].as_f64() {
        let _ = writeln!(
            out,
            "\nFloor of the pass (a) scan: {} ms to check every frame of the log in place \
             (`OffsetLog::scan`) and read `value.sequence` from each, building no record.",
            show(Some(floor))
        );
    }
    if let Some(first) = rust["count_types_first_ms"].as_f64() {
        let _ = writeln!(
            out,
            "\nThe first counts by type after the open walk the type index's rows once to \
             count every type: {} ms.",
            show(Some(first))
        );
    }
    if let Some(first) = rust["count_votes_first_ms"].as_f64() {
        let _ = writeln!(
            out,
            "\nThe first count of the votes after the open walks the type index's row keys once \
             to build its counts: {} ms (later counts read them).",
            show(Some(first))
        );
    }
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
    let expected = {
        println!(
            "==> generating {} messages into {}",
            options.n,
            messages_path.display()
        );
        let messages = ssb::messages(options.n, 1);
        ssb::write_jsonl(&messages_path, &messages).map_err(|e| e.to_string())?;
        let params = ssb::params(&messages, 1);
        std::fs::write(&params_path, params.to_string()).map_err(|e| e.to_string())?;
        ssb::expected(&messages, &params)
    };
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
    ssb::check_answers("the Rust side", &rust, &expected)?;
    let sqlite = if options.sqlite {
        let mut cmd = cargo(&[
            "run",
            "--release",
            "-p",
            "flumedb-bench",
            "--bin",
            "ssb-sqlite",
            "--",
            &path(&messages_path),
            &path(&dir.join("sqlite")),
            &path(&params_path),
        ]);
        cmd.current_dir(&root);
        let sqlite = json_line("SQLite side (bench/sqlite.rs, rusqlite bundled)", cmd)?;
        ssb::check_answers("the SQLite side", &sqlite, &expected)?;
        Some(sqlite)
    } else {
        None
    };
    let (js, exact) = if !options.js {
        (None, None)
    } else {
        let js = js_side(&root, &messages_path, &dir.join("js"), &params_path)?;
        ssb::check_answers("the JS side", &js, &expected)?;
        let params: Value = std::fs::read_to_string(&params_path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null);
        let exact = js_default_exact(&root, &messages_path, &dir.join("js-exact"), &params)?;
        (Some(js), Some(exact))
    };
    let report = report(
        &root,
        options,
        &rust,
        js.as_ref(),
        sqlite.as_ref(),
        exact.as_ref(),
    );
    println!("\n{report}");
    if options.js && options.sqlite {
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
