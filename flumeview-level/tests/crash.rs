//! Crash during indexing: a child process builds a level index over a prepared log and is
//! killed with SIGKILL at a random moment. The parent then opens the index store itself and
//! checks that it is consistent with its own `since` (the rows are exactly those of the
//! records up to it: the index never claims records it does not hold), and that reopening
//! through flumedb completes it. Each trial bumps the version, so each is a rebuild from
//! scratch. A custom harness (`harness = false`) on `flumedb_core::testkit::crash`;
//! `FLUMEDB_SOAK=1` runs more trials.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use flumedb_core::testkit::crash::{self, Kill, Rng, Trials};
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

fn trial(dir: &Path, all: &[u64], version: u32, rng: &mut Rng) -> Result<String, String> {
    // Killed a random moment (0–400 ms) after the child starts indexing (its view is open and
    // reset).
    let dir_arg = dir.to_str().ok_or("the temporary path is not UTF-8")?;
    Kill::new([dir_arg, &version.to_string()])
        .when_ready("indexing")
        .after_ms(0..400)
        .run(rng)?;

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

fn main() -> ExitCode {
    if let Some(args) = crash::child_args() {
        child(Path::new(&args[0]), args[1].parse().expect("version"));
    }
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
    let mut rng = Rng::new(0x5eed_1234_abcd_9876);
    Trials::new("level crash (SIGKILL during an index build)", 5, 40)
        .run(|t| trial(dir.path(), &all, t as u32 + 1, &mut rng))
}
