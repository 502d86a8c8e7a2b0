//! Crash during indexing: a child process builds a level index over a prepared log and is
//! killed with SIGKILL at a random moment. The parent then opens the index store itself and
//! checks that it is consistent with its own `since` (the rows are exactly those of the
//! records up to it: the index never claims records it does not hold), and that reopening
//! through flumedb completes it. Each trial bumps the version, so each is a rebuild from
//! scratch. A custom harness; `FLUMEDB_SOAK=1` runs more trials.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use flumedb_core::{Flume, Json, Log, StreamOptions};
use flumelog_offset::OffsetLog;
use flumeview_level::{Key, Level, ReadOptions};
use serde_json::{Value, json};

const RECORDS: u64 = 40_000;

fn view(version: u32) -> Level<Value> {
    Level::new(version, |msg: &Value, _| {
        Ok(vec![Key::array([
            Key::try_from(&msg["author"])?,
            Key::try_from(&msg["n"])?,
        ])])
    })
}

fn child(dir: &Path, version: u32) -> ! {
    let log = OffsetLog::open(dir.join("log.offset")).expect("child log");
    let db = Flume::open(log, Json).expect("child db");
    let _h = db.add_view("idx", view(version)).expect("child view");
    println!("indexing");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// META (version, since) if present, and the seqs of all rows.
type Index = (Option<(u32, u64)>, BTreeSet<u64>);

/// Reads META and every row straight from the store.
fn inspect(dir: &Path) -> Result<Index, String> {
    let level = dir.join("log.offset.views").join("level");
    if !level.join("lock").exists() {
        return Err(format!("no index store at {}", level.display()));
    }
    let db = fjall::Database::builder(level)
        .open()
        .map_err(|e| format!("open store: {e}"))?;
    let ks = db
        .keyspace("view-idx", fjall::KeyspaceCreateOptions::default)
        .map_err(|e| e.to_string())?;
    // META: version (u32 LE), then the checkpoint: tag 1, seq (u64 LE), fingerprint.
    let meta = ks.get([0u8]).map_err(|e| e.to_string())?.map(|m| {
        assert_eq!(m.len(), 4 + 17, "META length");
        assert_eq!(m[4], 1, "META of rows must hold a checkpoint at a seq");
        let version = u32::from_le_bytes(m[..4].try_into().unwrap());
        let since = u64::from_le_bytes(m[5..13].try_into().unwrap());
        (version, since)
    });
    let mut seqs = BTreeSet::new();
    for guard in ks.range::<&[u8], _>(&[1u8][..]..) {
        let (key, value) = guard.into_inner().map_err(|e| e.to_string())?;
        Key::decode(&key).map_err(|e| format!("row key: {e}"))?;
        seqs.insert(u64::from_be_bytes(value[..8].try_into().unwrap()));
    }
    Ok((meta, seqs))
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn trial(dir: &Path, all: &[u64], version: u32, rng: &mut Rng) -> Result<String, String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--child", dir.to_str().unwrap(), &version.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Kill a random moment after the child starts indexing (its view is open and reset).
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .map_err(|e| e.to_string())?;
    if line.trim() != "indexing" {
        return Err(format!("the child said {line:?}"));
    }
    std::thread::sleep(Duration::from_millis(rng.below(400)));
    child.kill().map_err(|e| e.to_string())?;
    child.wait().map_err(|e| e.to_string())?;

    let (meta, rows) = inspect(dir)?;
    let indexed = match meta {
        None => {
            if !rows.is_empty() {
                return Err(format!("{} rows but no META", rows.len()));
            }
            0
        }
        Some((v, since)) => {
            // Killed before the new version's first batch, the old version's index remains
            // (the next open rebuilds it): it too must match its own since.
            let expected: BTreeSet<u64> = all.iter().copied().filter(|s| *s <= since).collect();
            if rows != expected {
                return Err(format!(
                    "META says since {since}: {} rows expected, {} found",
                    expected.len(),
                    rows.len()
                ));
            }
            if v != version {
                println!("  (killed before v{version} wrote: the old v{v} index is consistent)");
            }
            rows.len()
        }
    };

    // Reopening completes the index.
    let db = Flume::open(
        OffsetLog::open(dir.join("log.offset")).map_err(|e| e.to_string())?,
        Json,
    )
    .map_err(|e| e.to_string())?;
    let h = db
        .add_view("idx", view(version))
        .map_err(|e| e.to_string())?;
    let n = h
        .read(ReadOptions::new().values(false))
        .map_err(|e| e.to_string())?
        .count();
    db.close().map_err(|e| e.to_string())?;
    if n != all.len() {
        return Err(format!("after reopen {n} rows, {} records", all.len()));
    }
    Ok(format!(
        "killed with {indexed} of {} indexed; consistent; completed",
        all.len()
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(Path::new(&args[2]), args[3].parse().expect("version"));
    }
    let trials = if std::env::var_os("FLUMEDB_SOAK").is_some() {
        40
    } else {
        5
    };
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<u64> = {
        let log = OffsetLog::open(dir.path().join("log.offset")).unwrap();
        let values: Vec<Vec<u8>> = (0..RECORDS)
            .map(|i| {
                serde_json::to_vec(&json!({"author": format!("@{}", i % 97), "n": i, "text": "x".repeat((i % 50) as usize)}))
                    .unwrap()
            })
            .collect();
        let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        log.append_batch(&slices).unwrap();
        let seqs = log
            .stream(StreamOptions::new())
            .unwrap()
            .map(|e| e.unwrap().seq.get())
            .collect();
        log.close().unwrap();
        seqs
    };
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let (mut passed, mut failed) = (0, 0);
    for t in 0..trials {
        match trial(dir.path(), &all, t as u32 + 1, &mut rng) {
            Ok(what) => {
                passed += 1;
                println!("trial {t}: {what}");
            }
            Err(why) => {
                failed += 1;
                eprintln!("trial {t} FAILED: {why}");
            }
        }
    }
    println!("level crash trials: {trials} (SIGKILL during an index build)");
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
