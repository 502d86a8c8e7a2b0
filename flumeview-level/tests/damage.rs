//! Damaged index files never take the process down, and the index rebuilds from the log.
//!
//! The parent builds two level views (sharing one fjall store) over an offset log, closes
//! cleanly, and keeps a copy of the store. A child process then runs trials, one after the
//! other: restore the store, damage it (flip one bit of one file at a sampled position,
//! truncate a file, delete a file), open the database, add both views and read every row.
//! Every trial must give exactly the rows the log implies and report the repair; a child
//! that aborts or crashes fails that trial (the parent restarts it after that trial). A
//! custom harness; `FLUMEDB_SOAK=1` samples many more positions per file.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flumedb_core::{Flume, Json, Log, StreamOptions};
use flumelog_offset::OffsetLog;
use flumeview_level::{Key, Level, LevelHandle, ReadOptions};
use serde_json::{Value, json};

const RECORDS: u64 = 500;
const KINDS: [&str; 3] = ["post", "vote", "about"];
/// The second view's name holds a space and a dot: its keyspace is hex-encoded.
const VIEW_B: &str = "by kind.x";
/// The check file a clean close leaves in the store.
const CHECK_FILE: &str = "flumeview-level.check";

fn view_a() -> Level<Value> {
    Level::new(1, |msg: &Value, _| {
        Ok(vec![Key::array([
            Key::try_from(&msg["author"])?,
            Key::try_from(&msg["n"])?,
        ])])
    })
}

fn view_b() -> Level<Value> {
    Level::new(1, |msg: &Value, _| {
        Ok(vec![Key::array([
            Key::try_from(&msg["kind"])?,
            Key::try_from(&msg["n"])?,
        ])])
    })
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("log.offset")
}

/// The fjall store of the log's views.
fn store_dir(dir: &Path) -> PathBuf {
    let log = OffsetLog::open(log_path(dir)).expect("log");
    let views = log.view_dir().expect("an offset log has a view directory");
    log.close().expect("close log");
    views.join("level")
}

/// What a trial does to the store.
#[derive(Clone, Debug)]
enum Damage {
    None,
    Flip { file: String, pos: u64, bit: u8 },
    Truncate { file: String, len: u64 },
    Remove { file: String },
}

impl Damage {
    fn encode(&self) -> String {
        match self {
            Damage::None => "none".into(),
            Damage::Flip { file, pos, bit } => format!("flip {pos} {bit} {file}"),
            Damage::Truncate { file, len } => format!("truncate {len} 0 {file}"),
            Damage::Remove { file } => format!("remove 0 0 {file}"),
        }
    }

    fn decode(line: &str) -> Damage {
        if line == "none" {
            return Damage::None;
        }
        let mut parts = line.splitn(4, ' ');
        let (kind, a, b, file) = (
            parts.next().unwrap(),
            parts.next().unwrap().parse::<u64>().unwrap(),
            parts.next().unwrap().parse::<u8>().unwrap(),
            parts.next().unwrap().to_string(),
        );
        match kind {
            "flip" => Damage::Flip {
                file,
                pos: a,
                bit: b,
            },
            "truncate" => Damage::Truncate { file, len: a },
            _ => Damage::Remove { file },
        }
    }

    fn apply(&self, store: &Path) {
        match self {
            Damage::None => {}
            Damage::Flip { file, pos, bit } => {
                let path = store.join(file);
                let mut bytes = std::fs::read(&path).unwrap();
                bytes[*pos as usize] ^= 1 << bit;
                std::fs::write(&path, bytes).unwrap();
            }
            Damage::Truncate { file, len } => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(store.join(file))
                    .unwrap();
                f.set_len(*len).unwrap();
            }
            Damage::Remove { file } => std::fs::remove_file(store.join(file)).unwrap(),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every file of the store: relative path and size.
fn files(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.file_type().unwrap().is_dir() {
                pending.push((entry.path(), rel));
            } else {
                out.push((rel, entry.metadata().unwrap().len()));
            }
        }
    }
    out.sort();
    out
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Rows as (key, seq), in key order.
type Rows = Vec<(Key, u64)>;

/// What each view must read: every record's key and seq, in key order.
fn expected(dir: &Path) -> (Rows, Rows) {
    let log = OffsetLog::open(log_path(dir)).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for entry in log.stream(StreamOptions::new()).unwrap() {
        let entry = entry.unwrap();
        let msg: Value = serde_json::from_slice(&entry.data).unwrap();
        let n = Key::try_from(&msg["n"]).unwrap();
        let seq = entry.seq.get();
        a.push((
            Key::array([Key::try_from(&msg["author"]).unwrap(), n.clone()]),
            seq,
        ));
        b.push((Key::array([Key::try_from(&msg["kind"]).unwrap(), n]), seq));
    }
    log.close().unwrap();
    // Key order is byte order of the encoded keys.
    a.sort_by_key(|(k, _)| k.encode().unwrap());
    b.sort_by_key(|(k, _)| k.encode().unwrap());
    (a, b)
}

/// Keys and seqs only: no log reads (a debug build decodes JSON slowly).
fn read_all(h: &LevelHandle<Value>) -> Result<Rows, String> {
    h.read(ReadOptions::new().values(false))
        .map_err(|e| format!("read: {e}"))?
        .map(|row| {
            let row = row.map_err(|e| format!("row: {e}"))?;
            Ok((row.key.ok_or("no key")?, row.seq.get()))
        })
        .collect()
}

/// Opens the database and both views, and checks what they read. Returns whether the store
/// was reported repaired.
fn open_and_check(dir: &Path, want: &(Rows, Rows)) -> Result<bool, String> {
    let log = OffsetLog::open(log_path(dir)).map_err(|e| format!("log: {e}"))?;
    let db = Flume::open(log, Json).map_err(|e| format!("open: {e}"))?;
    let a = db
        .add_view("by_author", view_a())
        .map_err(|e| format!("add_view a: {e}"))?;
    let b = db
        .add_view(VIEW_B, view_b())
        .map_err(|e| format!("add_view b: {e}"))?;
    let got_a = read_all(&a)?;
    let got_b = read_all(&b)?;
    if got_a != want.0 {
        return Err(format!(
            "view a: {} rows, {} expected",
            got_a.len(),
            want.0.len()
        ));
    }
    if got_b != want.1 {
        return Err(format!(
            "view b: {} rows, {} expected",
            got_b.len(),
            want.1.len()
        ));
    }
    let (ra, rb) = (a.repaired(), b.repaired());
    if ra.is_some() != rb.is_some() {
        return Err(format!("one store, two answers: {ra:?} / {rb:?}"));
    }
    db.close().map_err(|e| format!("close: {e}"))?;
    Ok(ra.is_some())
}

/// Runs the trials listed in `trials` from `start` on, printing `start <i>` before each and
/// `ok <i>` or `FAIL <i> <why>` after it.
fn child(dir: &Path, pristine: &Path, trials: &Path, start: usize) {
    let store = store_dir(dir);
    let want = expected(dir);
    let trials: Vec<Damage> = std::fs::read_to_string(trials)
        .unwrap()
        .lines()
        .map(Damage::decode)
        .collect();
    let soak = std::env::var_os("FLUMEDB_SOAK").is_some();
    let mut out = std::io::stdout();
    for (i, damage) in trials.iter().enumerate().skip(start) {
        writeln!(out, "start {i}").unwrap();
        out.flush().unwrap();
        let _ = std::fs::remove_dir_all(&store);
        copy_dir(pristine, &store);
        damage.apply(&store);
        let result = std::panic::catch_unwind(|| {
            let repaired = open_and_check(dir, &want)?;
            match (damage, repaired) {
                (Damage::None, true) => return Err("repaired an intact store".into()),
                // Without the check file the store counts as not closed cleanly: fjall's
                // recovery opens it as it is (its files are intact here).
                (Damage::Remove { file }, false) if file == CHECK_FILE => {}
                (Damage::None, false) => {}
                (_, false) => return Err("damage not reported by repaired()".into()),
                (_, true) => {}
            }
            // Rebuilt and closed cleanly: trusted again at the next open (checked in every
            // fourth trial, to keep the run short).
            if !soak && i % 4 != 0 {
                return Ok(());
            }
            match open_and_check(dir, &want)? {
                false => Ok(()),
                true => Err("repaired again at the second open".to_string()),
            }
        });
        match result {
            Ok(Ok(())) => writeln!(out, "ok {i}").unwrap(),
            Ok(Err(why)) => writeln!(out, "FAIL {i} {why}").unwrap(),
            Err(_) => writeln!(out, "FAIL {i} panicked").unwrap(),
        }
        out.flush().unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(
            Path::new(&args[2]),
            Path::new(&args[3]),
            Path::new(&args[4]),
            args[5].parse().unwrap(),
        );
        return;
    }
    let soak = std::env::var_os("FLUMEDB_SOAK").is_some();
    let flips_per_file = if soak { 64 } else { 2 };

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    std::fs::create_dir_all(&dir).unwrap();
    {
        let db = Flume::open(OffsetLog::open(log_path(&dir)).unwrap(), Json).unwrap();
        let a = db.add_view("by_author", view_a()).unwrap();
        let b = db.add_view(VIEW_B, view_b()).unwrap();
        let values: Vec<Value> = (0..RECORDS)
            .map(|i| {
                json!({
                    "author": format!("@{}", i % 7),
                    "kind": KINDS[(i % 3) as usize],
                    "n": i,
                    "text": "x".repeat((i % 40) as usize),
                })
            })
            .collect();
        for chunk in values.chunks(500) {
            db.append_batch(chunk).unwrap();
        }
        assert_eq!(read_all(&a).unwrap().len(), RECORDS as usize);
        assert_eq!(read_all(&b).unwrap().len(), RECORDS as usize);
        db.close().unwrap();
    }
    let store = store_dir(&dir);
    let pristine = tmp.path().join("pristine");
    copy_dir(&store, &pristine);

    let mut rng = Rng(0x0dd_ba11_5eed_f00d);
    let mut trials = vec![Damage::None];
    let all = files(&pristine);
    for (index, (file, len)) in all.iter().enumerate() {
        if *len > 0 {
            // The ends hold headers, trailers and lengths; the rest is sampled.
            let mut positions = if soak {
                vec![0, len - 1, len / 2]
            } else {
                vec![[0, len - 1][index % 2]]
            };
            while positions.len() < flips_per_file {
                positions.push(rng.below(*len));
            }
            for pos in positions {
                let bit = rng.below(8) as u8;
                trials.push(Damage::Flip {
                    file: file.clone(),
                    pos,
                    bit,
                });
            }
        }
        if *len > 0 && (soak || index % 2 == 0) {
            trials.push(Damage::Truncate {
                file: file.clone(),
                len: len / 2,
            });
        }
        if *len == 0 || soak || index % 2 == 1 {
            trials.push(Damage::Remove { file: file.clone() });
        }
    }
    let list = tmp.path().join("trials");
    std::fs::write(
        &list,
        trials.iter().map(|t| t.encode() + "\n").collect::<String>(),
    )
    .unwrap();

    let started = std::time::Instant::now();
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut next = 0;
    while next < trials.len() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--child",
                dir.to_str().unwrap(),
                pristine.to_str().unwrap(),
                list.to_str().unwrap(),
                &next.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut running = None;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let mut parts = line.splitn(3, ' ');
            let (word, i) = (
                parts.next().unwrap(),
                parts.next().unwrap().parse::<usize>().unwrap(),
            );
            match word {
                "start" => running = Some(i),
                "ok" => {
                    passed += 1;
                    running = None;
                }
                _ => {
                    failed += 1;
                    running = None;
                    eprintln!(
                        "trial {i} ({:?}) FAILED: {}",
                        trials[i],
                        parts.next().unwrap_or("")
                    );
                }
            }
            next = i + 1;
        }
        let status = child.wait().unwrap();
        if let Some(i) = running {
            failed += 1;
            eprintln!(
                "trial {i} ({:?}) FAILED: the process died: {status}",
                trials[i]
            );
            next = i + 1;
        } else if !status.success() {
            panic!("the child failed outside a trial: {status}");
        }
    }
    println!(
        "level damage trials: {} ({} files; {flips_per_file} bit flips per file, and truncations \
         and removals) in {:.1} s",
        trials.len(),
        all.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
