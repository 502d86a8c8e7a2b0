//! Repairs that need no restart of the process: damage met by a read is a typed error and
//! `rebuild` repairs it; a full disk does not hang close, and `rebuild` recovers once space is
//! freed; every view name flumedb allows names a keyspace.

use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flumedb_core::{Flume, Json, Log, StreamOptions};
use flumelog_offset::{Durability, OffsetLog};
use flumeview_level::{Key, Level, LevelHandle, ReadOptions};
use serde_json::{Value, json};

fn by_author() -> Level<Value> {
    Level::new(1, |msg: &Value, _| {
        Ok(vec![Key::array([
            Key::try_from(&msg["author"])?,
            Key::try_from(&msg["n"])?,
        ])])
    })
}

fn msg(n: u64) -> Value {
    json!({"author": format!("@{}", n % 5), "n": n, "text": "x".repeat(200)})
}

/// A larger record, so a full disk holds few of them (and their index rows take little space).
fn big_msg(n: u64) -> Value {
    json!({"author": format!("@{}", n % 5), "n": n, "text": "x".repeat(2_000)})
}

/// The seqs a view holds, in key order.
fn seqs(h: &LevelHandle<Value>) -> Result<Vec<u64>, flumedb_core::Error> {
    h.read(ReadOptions::new().values(false))?
        .map(|row| row.map(|r| r.seq.get()))
        .collect()
}

/// The seqs of every record of the log, in the order of `by_author`'s keys.
fn expected(log: &impl Log) -> Vec<u64> {
    let mut rows: Vec<(Vec<u8>, u64)> = log
        .stream(StreamOptions::new())
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let msg: Value = serde_json::from_slice(&entry.data).unwrap();
            let key = Key::array([
                Key::try_from(&msg["author"]).unwrap(),
                Key::try_from(&msg["n"]).unwrap(),
            ]);
            (key.encode().unwrap(), entry.seq.get())
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, seq)| seq).collect()
}

/// The level store of the log at `path` (the log is opened and closed again).
fn level_dir(path: &std::path::Path) -> PathBuf {
    let log = OffsetLog::open(path).unwrap();
    let dir = log.view_dir().unwrap().join("level");
    log.close().unwrap();
    dir
}

/// A read that meets damaged rows (no clean close, so nothing verified them at open) fails
/// with the typed error; `rebuild` clears the view and rebuilds it; the next open wipes the
/// store once more (other views may hold damage too) and reports it.
#[test]
fn damage_met_by_a_read_is_a_typed_error_and_rebuild_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let store = level_dir(&path);
    {
        let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
        let h = db.add_view("idx", by_author()).unwrap();
        let values: Vec<Value> = (0..2_000).map(msg).collect();
        db.append_batch(&values).unwrap();
        assert_eq!(seqs(&h).unwrap().len(), 2_000);
        db.close().unwrap();
    }
    // As if the process had crashed: no check file. Then a bit flips in the middle of the
    // view's table (its data blocks).
    std::fs::remove_file(store.join("flumeview-level.check")).unwrap();
    let table = std::fs::read_dir(store.join("keyspaces/1/tables"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&table).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&table, bytes).unwrap();

    let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
    let h = db.add_view("idx", by_author()).unwrap();
    let want = expected(db.log());
    match seqs(&h) {
        Err(err) => {
            let text = err.to_string();
            assert!(text.contains("damaged"), "{text}");
            assert!(h.repaired().is_none());
            db.rebuild().unwrap();
        }
        // Found when the view opened (its first rows): cleared and rebuilt then.
        Ok(rows) => {
            assert_eq!(rows, want);
            assert!(h.repaired().is_some());
        }
    }
    assert_eq!(seqs(&h).unwrap(), want, "rebuilt from the log");
    db.close().unwrap();

    let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
    let h = db.add_view("idx", by_author()).unwrap();
    assert_eq!(seqs(&h).unwrap(), want);
    let repaired = h
        .repaired()
        .expect("the damage seen while open is reported");
    assert!(repaired.whole_store, "{repaired:?}");
    db.close().unwrap();
    let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
    let h = db.add_view("idx", by_author()).unwrap();
    assert_eq!(seqs(&h).unwrap(), want);
    assert_eq!(h.repaired(), None, "trusted again after a clean close");
}

/// A small tmpfs, unmounted (lazily, so a hung thread cannot block it) when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with a message) where mounting is not possible: not root, no tmpfs.
    fn mount(bytes: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { path, _dir: dir }),
            Ok(out) => {
                println!(
                    "SKIPPED: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(err) => {
                println!("SKIPPED: cannot run mount: {err}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
    }
}

/// Opens a log with fsync'd appends and level views on `fs`, then appends until the file
/// system is full. Returns the database, the views, and a filler file to delete for space.
fn fill(fs: &Tmpfs, views: &[&str]) -> (Flume<OffsetLog, Value>, Vec<LevelHandle<Value>>, PathBuf) {
    let filler = fs.path.join("filler");
    std::fs::write(&filler, vec![1u8; 1024 * 1024]).unwrap();
    let log = OffsetLog::options()
        .durability(Durability::Fsync)
        .open(fs.path.join("log.offset"))
        .unwrap();
    let db = Flume::open(log, Json).unwrap();
    let handles = views
        .iter()
        .map(|name| db.add_view(name, by_author()).unwrap())
        .collect();
    let mut full = false;
    for n in 0..100_000 {
        if db.append(&big_msg(n)).is_err() {
            full = true;
            break;
        }
    }
    assert!(full, "the file system never filled up");
    (db, handles, filler)
}

/// Runs `f` on another thread and waits for it at most `limit`: a hang fails the test (the
/// thread is left behind) instead of hanging the test run.
fn within<R: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(_) => panic!("{what} did not return within {limit:?}"),
    }
}

/// Item 8: with the disk full, fjall cannot flush the view's memtable; close used to wait for
/// that flush for ever (also after space was freed). Now it gives up, closes anyway and
/// reports it; the index then reopens complete.
#[test]
fn close_returns_when_the_disk_is_full_and_the_index_reopens_complete() {
    let Some(fs) = Tmpfs::mount(6 * 1024 * 1024) else {
        return;
    };
    let (db, handles, filler) = fill(&fs, &["idx"]);
    drop(handles);
    let started = Instant::now();
    // The flush fails at once here (fjall refuses everything after a failed write); the
    // close deadline (30 s) bounds a flush that never ends.
    let closed = within(Duration::from_secs(60), "close on a full disk", move || {
        db.close()
    });
    println!(
        "close on a full disk: {closed:?} after {:?}",
        started.elapsed()
    );
    std::fs::remove_file(&filler).unwrap();

    let log = OffsetLog::open(fs.path.join("log.offset")).unwrap();
    let want = expected(&log);
    let db = Flume::open(log, Json).unwrap();
    let h = db.add_view("idx", by_author()).unwrap();
    assert_eq!(
        seqs(&h).unwrap(),
        want,
        "every record of the log is indexed"
    );
    within(
        Duration::from_secs(60),
        "close after space was freed",
        move || db.close(),
    )
    .unwrap();
}

/// While the disk is full, `rebuild` returns (a typed error, no hang): the views' store
/// refuses writes once one failed. Once space is freed, `rebuild` reopens the store and rebuilds the views
/// without restarting the process. The second view's rows were in the store that was
/// reopened under it: it is reset too, never left with rows the driver no longer counts.
#[test]
fn rebuild_recovers_views_after_the_disk_was_full() {
    let Some(fs) = Tmpfs::mount(6 * 1024 * 1024) else {
        return;
    };
    let (db, handles, filler) = fill(&fs, &["idx", "second"]);
    let db = std::sync::Arc::new(db);
    let rebuild = db.clone();
    // Fails (or, when a journal torn by the full disk was found damaged and wiped, frees
    // enough space to succeed): either way it returns.
    let full = within(
        Duration::from_secs(60),
        "rebuild on a full disk",
        move || rebuild.rebuild(),
    );
    println!("rebuild on a full disk: {full:?}");
    std::fs::remove_file(&filler).unwrap();
    let rebuild = db.clone();
    // The log refuses appends after a failed fsync until it is reopened; the views rebuild
    // from what it holds.
    within(Duration::from_secs(60), "rebuild", move || {
        rebuild.rebuild()
    })
    .unwrap();
    let want = expected(db.log());
    for h in &handles {
        assert_eq!(seqs(h).unwrap(), want);
    }
    let closing = db.clone();
    drop(handles);
    within(Duration::from_secs(60), "close", move || closing.close()).unwrap();
}

/// Without a check file (no clean close), a META row that does not decode still means a
/// rebuild, not a dead view (fjall's files themselves are intact here).
#[test]
fn an_unreadable_meta_row_without_a_check_file_means_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let store = level_dir(&path);
    {
        let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
        let h = db.add_view("idx", by_author()).unwrap();
        db.append_batch(&(0..10).map(msg).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(seqs(&h).unwrap().len(), 10);
        db.close().unwrap();
    }
    std::fs::remove_file(store.join("flumeview-level.check")).unwrap();
    {
        let fjall = fjall::Database::builder(&store).open().unwrap();
        let ks = fjall
            .keyspace("view-idx", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        ks.insert([0u8], [1u8, 2, 3]).unwrap(); // META of a wrong length
        ks.insert([0x40u8, b'z', 0], 99u64.to_be_bytes()).unwrap(); // a stray row
        fjall.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
    let h = db.add_view("idx", by_author()).unwrap();
    assert_eq!(
        seqs(&h).unwrap(),
        expected(db.log()),
        "the stray row is gone"
    );
    assert_eq!(
        h.repaired(),
        None,
        "the files were intact: a rebuild, not a repair"
    );
}

/// Item 7: names of 1 to 200 bytes with dots, spaces and non-ASCII characters (hex-encoded
/// past fjall's 255-byte limit for keyspace names) all open, index and reopen.
#[test]
fn every_view_name_flumedb_allows_opens_indexes_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let names: Vec<String> = (1..=200usize)
        .map(|len| {
            let fill = ["a.", " b", "é", "_x-"][len % 4];
            let mut name = String::from("v");
            while name.len() + fill.len() <= len {
                name.push_str(fill);
            }
            while name.len() < len {
                name.push('z');
            }
            name
        })
        .collect();
    for round in 0..2 {
        let db = Flume::open(OffsetLog::open(&path).unwrap(), Json).unwrap();
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                db.add_view(name, by_author())
                    .unwrap_or_else(|e| panic!("{name:?} ({} bytes): {e}", name.len()))
            })
            .collect();
        if round == 0 {
            db.append_batch(&(0..10).map(msg).collect::<Vec<_>>())
                .unwrap();
        }
        let want = expected(db.log());
        for (name, h) in names.iter().zip(&handles) {
            assert_eq!(seqs(h).unwrap(), want, "{name:?}");
            assert_eq!(h.repaired(), None);
        }
        drop(handles);
        db.close().unwrap();
    }
}
