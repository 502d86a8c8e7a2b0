//! flumeview-reduce behaviour: JS flumeview-reduce's tests re-expressed, and the JS bugs fixed.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use flumedb_core::{Error, Flume, Json, Seq, Since, Wait};
use flumelog_memory::MemoryLog;
use flumeview_reduce::{Reduce, Reduced};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, Default, PartialEq, Debug, Serialize, Deserialize)]
struct Stats {
    sum: i64,
    square_sum: i64,
}

fn stats(version: u32) -> Reduce<Value, Stats> {
    Reduce::with_map(
        version,
        Stats::default(),
        |v: &Value| v["value"].as_i64(),
        |s: &mut Stats, x| {
            s.sum += x;
            s.square_sum += x * x;
        },
    )
}

fn sum(version: u32) -> Reduce<Value, i64> {
    Reduce::with_map(version, 0, |v: &Value| v.as_i64(), |s: &mut i64, x| *s += x)
}

fn open(dir: &Path) -> Flume<MemoryLog, Value> {
    Flume::open(MemoryLog::open(dir).unwrap(), Json).unwrap()
}

/// Where a view of the memory log in `dir` keeps its state file.
fn state_path(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(flumelog_memory::VIEW_DIR_NAME)
        .join(format!("{name}.reduce"))
}

/// Reads the state file as JSON (after the 20-byte header).
fn stored(dir: &Path, name: &str) -> Value {
    let bytes = fs::read(state_path(dir, name)).unwrap();
    serde_json::from_slice(&bytes[20..]).unwrap()
}

#[test]
fn simple_get_meta_and_rebuild() {
    // JS test/index.js "simple".
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let h = db.add_view("stats", stats(1)).unwrap();
    assert_eq!(h.get().unwrap(), Stats::default());
    db.append_batch(&[json!({"value": 10}), json!({"value": 20})])
        .unwrap();
    assert_eq!(
        h.get().unwrap(),
        Stats {
            sum: 30,
            square_sum: 500
        }
    );
    assert_eq!(
        h.get_meta().unwrap(),
        Reduced {
            since: Since::At(Seq::new(1)),
            version: 1,
            value: Stats {
                sum: 30,
                square_sum: 500
            }
        }
    );
    db.rebuild().unwrap();
    assert_eq!(h.get().unwrap().sum, 30);
    assert_eq!(h.read(|s| s.square_sum).unwrap(), 500);
}

#[test]
fn map_skips_records_but_since_moves_on() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let h = db.add_view("sum", sum(1)).unwrap();
    db.append(&json!(1)).unwrap();
    db.append(&json!("not a number")).unwrap();
    let last = db.append(&json!(2)).unwrap();
    db.append(&json!(null)).unwrap();
    let meta = h.get_meta().unwrap();
    assert_eq!(meta.value, 3);
    assert!(meta.since >= Since::At(last));
    assert_eq!(h.progress().since, db.since());
}

#[test]
fn state_and_seq_survive_reopen() {
    // JS test/reload.js: 1..5 = 15, reopen restores 15 from the file, append 6 gives 21.
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let h = db.add_view("sum", sum(1)).unwrap();
        for i in 1..=5 {
            db.append(&json!(i)).unwrap();
        }
        assert_eq!(h.get().unwrap(), 15);
        db.close().unwrap();
    }
    let file = stored(dir.path(), "sum");
    let fingerprint = flumedb_core::Checkpoint::fingerprint(b"5");
    assert_eq!(
        file,
        json!({"version": 1, "checkpoint": {"since": 4, "fingerprint": fingerprint}, "value": 15})
    );
    let db = open(dir.path());
    let h = db.add_view("sum", sum(1)).unwrap();
    // Loaded from the file, not recomputed: already there without waiting.
    assert_eq!(
        h.get_meta_with(Wait::Now).unwrap(),
        Reduced {
            since: Since::At(Seq::new(4)),
            version: 1,
            value: 15
        }
    );
    db.append(&json!(6)).unwrap();
    assert_eq!(h.get().unwrap(), 21);
}

#[test]
fn a_state_behind_the_log_catches_up_from_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let h = db.add_view("sum", sum(1)).unwrap();
        db.append_batch(&[json!(1), json!(2)]).unwrap();
        assert_eq!(h.get().unwrap(), 3);
        db.close().unwrap();
    }
    {
        // The log grows while the view is not attached.
        let db = open(dir.path());
        db.append_batch(&[json!(10), json!(20)]).unwrap();
        db.close().unwrap();
    }
    let db = open(dir.path());
    let h = db.add_view("sum", sum(1)).unwrap();
    assert_eq!(h.get().unwrap(), 33);
}

#[test]
fn a_version_bump_rebuilds_from_scratch() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let h = db.add_view("sum", sum(1)).unwrap();
        for i in 1..=20 {
            db.append(&json!(i)).unwrap();
        }
        assert_eq!(h.get().unwrap(), 210);
        db.close().unwrap();
    }
    let db = open(dir.path());
    // Version 2 doubles: the stored 210 of version 1 must not be reused.
    let h = db
        .add_view(
            "sum",
            Reduce::with_map(2, 0, |v: &Value| v.as_i64(), |s: &mut i64, x| *s += 2 * x),
        )
        .unwrap();
    assert_eq!(h.get().unwrap(), 420);
    db.close().unwrap();
    assert_eq!(stored(dir.path(), "sum")["version"], 2);
    assert_eq!(stored(dir.path(), "sum")["value"], 420);
}

#[test]
fn a_corrupt_or_foreign_state_file_means_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let h = db.add_view("sum", sum(1)).unwrap();
        db.append_batch(&[json!(1), json!(2), json!(3)]).unwrap();
        assert_eq!(h.get().unwrap(), 6);
        db.close().unwrap();
    }
    let path = state_path(dir.path(), "sum");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01; // inside the JSON body
    fs::write(&path, &bytes).unwrap();
    {
        let db = open(dir.path());
        let h = db.add_view("sum", sum(1)).unwrap();
        assert_eq!(h.get().unwrap(), 6);
        db.close().unwrap();
    }
    fs::write(&path, b"{\"seq\":2,\"version\":1,\"value\":999}").unwrap(); // a JS-style file
    let db = open(dir.path());
    let h = db.add_view("sum", sum(1)).unwrap();
    assert_eq!(h.get().unwrap(), 6);
}

#[test]
fn the_file_never_pairs_a_state_with_another_seq() {
    // The JS bug: a state serialised later than its seq was captured. Here, at every write the
    // file's value must be exactly the sum of the records up to its since.
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let h = db
        .add_view("sum", sum(1).write_every(100, Duration::from_millis(1)))
        .unwrap();
    let mut checked = 0;
    for i in 0..3000i64 {
        db.append(&json!(i)).unwrap();
        if i % 97 == 0 {
            // Let the view catch up and its 1 ms write interval pass, then read the file.
            h.get().unwrap();
            thread::sleep(Duration::from_millis(5));
            if state_path(dir.path(), "sum").exists() {
                let file = stored(dir.path(), "sum");
                let since = file["checkpoint"]["since"].as_i64().unwrap();
                assert_eq!(file["value"].as_i64().unwrap(), since * (since + 1) / 2);
                checked += 1;
            }
        }
    }
    assert_eq!(h.get().unwrap(), 2999 * 3000 / 2);
    assert!(checked > 5, "only {checked} writes were checked");
}

#[test]
fn writes_are_not_starved_by_a_steady_stream_of_appends() {
    // JS flumeview-reduce's debounce wrote once in 4 s with an append every 50 ms.
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let _h = db
        .add_view(
            "sum",
            sum(1).write_every(1_000_000, Duration::from_millis(100)),
        )
        .unwrap();
    let mut sinces = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_millis(1200) {
        db.append(&json!(1)).unwrap();
        i += 1;
        thread::sleep(Duration::from_millis(20));
        if let Ok(bytes) = fs::read(state_path(dir.path(), "sum")) {
            let file: Value = serde_json::from_slice(&bytes[20..]).unwrap();
            if sinces.last() != Some(&file["checkpoint"]["since"]) {
                sinces.push(file["checkpoint"]["since"].clone());
            }
        }
    }
    assert!(i > 30);
    assert!(
        sinces.len() >= 4,
        "the state was written only {} times in 1.2 s of appends",
        sinces.len()
    );
}

#[test]
fn stream_yields_the_state_then_each_change() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let h = db.add_view("sum", sum(1)).unwrap();
    let mut stream = h.stream();
    assert_eq!(stream.next().unwrap().unwrap(), 0);
    db.append(&json!(10)).unwrap();
    assert_eq!(stream.next().unwrap().unwrap(), 10);
    db.append(&json!("skipped")).unwrap();
    db.append(&json!(20)).unwrap();
    // Skipped records do not produce a state (JS emitted nulls for them).
    assert_eq!(stream.next().unwrap().unwrap(), 30);
    let t = thread::spawn(move || stream.collect::<Vec<_>>());
    thread::sleep(Duration::from_millis(50));
    db.close().unwrap();
    let rest = t.join().unwrap();
    assert!(matches!(rest.as_slice(), [Err(Error::Closed)]), "{rest:?}");
}

#[test]
fn reset_removes_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let h = db.add_view("sum", sum(1)).unwrap();
    db.append_batch(&[json!(1), json!(2)]).unwrap();
    assert_eq!(h.get().unwrap(), 3);
    db.close().unwrap();
    assert!(state_path(dir.path(), "sum").exists());
    let db = open(dir.path());
    let h = db.add_view("sum", sum(1)).unwrap();
    db.rebuild().unwrap();
    assert_eq!(h.get().unwrap(), 3);
}

#[test]
fn reads_racing_rebuilds_and_appends_always_see_every_earlier_record() {
    let db = std::sync::Arc::new(
        flumedb_core::FlumeOptions::new()
            .batch_size(64)
            .open(MemoryLog::new(), Json)
            .unwrap(),
    );
    let h = db.add_view("sum", sum(1)).unwrap();
    let values: Vec<Value> = (1..=5000).map(|i| json!(i)).collect();
    db.append_batch(&values).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rebuilder = {
        let db = db.clone();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                db.rebuild().unwrap();
                n += 1;
            }
            n
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let db = db.clone();
            let h = h.clone();
            thread::spawn(move || {
                for i in 0..300i64 {
                    if r == 0 {
                        db.append(&json!(1)).unwrap();
                    }
                    // Never a partial sum from a view being rebuilt: at least everything
                    // appended before the read.
                    let got = h.get().unwrap();
                    let floor = 5000 * 5001 / 2 + if r == 0 { i + 1 } else { 0 };
                    assert!(got >= floor, "reader {r} read {got}, less than {floor}");
                    assert!(got <= 5000 * 5001 / 2 + 300);
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(rebuilder.join().unwrap() >= 1);
    assert_eq!(h.get().unwrap(), 5000 * 5001 / 2 + 300);
}

#[test]
fn a_state_ahead_of_a_log_that_lost_its_tail_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let full;
    {
        let db = open(dir.path());
        let h = db.add_view("sum", sum(1)).unwrap();
        for i in 1..=10 {
            db.append(&json!(i)).unwrap();
        }
        assert_eq!(h.get().unwrap(), 55);
        db.close().unwrap();
        full = fs::read(dir.path().join(flumelog_memory::FILE_NAME)).unwrap();
    }
    // The log loses its last 4 records (each record here is a 12-byte header + 1 or 2 bytes).
    let keep: usize = (1..=6).map(|i: i32| 12 + i.to_string().len()).sum();
    fs::write(dir.path().join(flumelog_memory::FILE_NAME), &full[..keep]).unwrap();
    let db = open(dir.path());
    assert_eq!(db.since(), Since::At(Seq::new(5)));
    let h = db.add_view("sum", sum(1)).unwrap();
    assert_eq!(
        h.get().unwrap(),
        21,
        "the stored 55 includes records the log lost"
    );
}

#[test]
fn huge_write_intervals_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let h = db
        .add_view("sum", sum(1).write_every(u64::MAX, Duration::MAX))
        .unwrap();
    db.append(&json!(2)).unwrap();
    assert_eq!(h.get().unwrap(), 2);
    db.close().unwrap();
    // Close always writes.
    assert_eq!(stored(dir.path(), "sum")["value"], 2);
}

#[test]
fn a_state_built_on_records_the_log_lost_and_replaced_is_rebuilt() {
    // First open: a sum over 10 records. The log then loses its last 2 (what Durability::Os
    // allows after a power loss); the second open appends 3 others without the view; the third
    // attaches the view. Its stored seq is below the log's end, but the record there changed.
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let h = db.add_view("sum", sum(1)).unwrap();
        for i in 1..=10 {
            db.append(&json!(i * 11)).unwrap();
        }
        assert_eq!(h.get().unwrap(), 605);
        db.close().unwrap();
    }
    let full = fs::read(dir.path().join(flumelog_memory::FILE_NAME)).unwrap();
    let keep: usize = (1..=8).map(|i: i32| 12 + (i * 11).to_string().len()).sum();
    fs::write(dir.path().join(flumelog_memory::FILE_NAME), &full[..keep]).unwrap();
    {
        let db = open(dir.path());
        assert_eq!(db.since(), Since::At(Seq::new(7)));
        for v in [1, 2, 3] {
            db.append(&json!(v)).unwrap();
        }
        db.close().unwrap();
    }
    let db = open(dir.path());
    let h = db.add_view("sum", sum(1)).unwrap();
    let expected: i64 = (1..=8).map(|i| i * 11).sum::<i64>() + 6;
    assert_eq!(
        h.get().unwrap(),
        expected,
        "the view must match the log it reads"
    );
}

#[test]
fn two_logs_in_one_directory_keep_their_views_apart() {
    use flumelog_offset::OffsetLog;
    let dir = tempfile::tempdir().unwrap();
    let count = || Reduce::new(1, 0i64, |n: &mut i64, _: &Value| *n += 1);
    for round in 0..2 {
        let a = Flume::open(OffsetLog::open(dir.path().join("a.offset")).unwrap(), Json).unwrap();
        let b = Flume::open(OffsetLog::open(dir.path().join("b.offset")).unwrap(), Json).unwrap();
        let ha = a.add_view("count", count()).unwrap();
        let hb = b.add_view("count", count()).unwrap();
        if round == 0 {
            // A has the longer log: B's state (written last) fits within it.
            for i in 0..30 {
                a.append(&json!({"i": i, "pad": "a longer record than b's"}))
                    .unwrap();
            }
            for i in 0..25 {
                b.append(&json!(i)).unwrap();
            }
        }
        assert_eq!(
            (ha.get().unwrap(), hb.get().unwrap()),
            (30, 25),
            "round {round}"
        );
        a.close().unwrap();
        b.close().unwrap();
    }
    assert!(
        dir.path()
            .join("a.offset.views")
            .join("count.reduce")
            .exists()
    );
    assert!(
        dir.path()
            .join("b.offset.views")
            .join("count.reduce")
            .exists()
    );
}

#[test]
fn every_name_the_driver_accepts_persists() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "a".to_string(),
        "x.y z".repeat(40), // 200 bytes with '.' and ' '
        "é".repeat(100),    // 200 bytes of UTF-8
        format!("{}.reduce", "n".repeat(193)),
    ];
    for round in 0..2 {
        let db = open(dir.path());
        for (i, name) in names.iter().enumerate() {
            let h = db.add_view(name, sum(1)).unwrap();
            if round == 0 && i == 0 {
                db.append(&json!(7)).unwrap();
            }
            assert_eq!(h.get().unwrap(), 7, "{name}");
        }
        db.close().unwrap();
    }
    for name in &names {
        assert!(state_path(dir.path(), name).exists(), "{name}");
    }
}

#[test]
fn a_state_that_would_load_as_another_state_is_not_written() {
    // Two 1e308s sum to infinity, which JSON stores as null: written, the state would load
    // as None and the view would go on from there.
    let dir = tempfile::tempdir().unwrap();
    let total = || {
        Reduce::new(1, None::<f64>, |sum: &mut Option<f64>, v: &Value| {
            *sum = Some(sum.unwrap_or(0.0) + v["x"].as_f64().unwrap_or(0.0));
        })
    };
    {
        let db = open(dir.path());
        let h = db.add_view("total", total()).unwrap();
        db.append(&json!({"x": 1.0})).unwrap();
        assert_eq!(h.get().unwrap(), Some(1.0));
        db.close().unwrap();
    }
    {
        let db = open(dir.path());
        let h = db.add_view("total", total()).unwrap();
        db.append_batch(&[json!({"x": 1e308}), json!({"x": 1e308})])
            .unwrap();
        assert_eq!(h.get().unwrap(), Some(f64::INFINITY));
        db.close().unwrap();
    }
    let db = open(dir.path());
    let h = db.add_view("total", total()).unwrap();
    assert_eq!(
        h.get().unwrap(),
        Some(f64::INFINITY),
        "reloaded as another state"
    );
    db.append(&json!({"x": 1.0})).unwrap();
    assert_eq!(h.get().unwrap(), Some(f64::INFINITY));
}
