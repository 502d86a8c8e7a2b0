//! A level view's rows belong to one log: two logs in one directory keep their indexes apart,
//! and an index built on records the log has since lost (and replaced) is rebuilt.

use std::path::Path;

use flumedb_core::{Flume, Json, Log};
use flumelog_offset::OffsetLog;
use flumeview_level::{Key, Level, LevelHandle, ReadOptions};
use serde_json::{Value, json};

/// Records keyed by their `n`; the later record wins an equal key.
fn by_n() -> Level<Value> {
    Level::new(1, |msg: &Value, _seq| Ok(vec![Key::try_from(&msg["n"])?]))
}

fn open(path: &Path) -> Flume<OffsetLog, Value> {
    Flume::open(OffsetLog::open(path).unwrap(), Json).unwrap()
}

/// Every row as (n, the record's text).
fn rows(h: &LevelHandle<Value>) -> Vec<(i64, String)> {
    h.read(ReadOptions::new())
        .unwrap()
        .map(|row| {
            let value = row.unwrap().value.unwrap();
            (
                value["n"].as_i64().unwrap(),
                value["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn two_logs_in_one_directory_keep_their_indexes_apart() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let a = open(&dir.path().join("a.offset"));
        let b = open(&dir.path().join("b.offset"));
        let ha = a.add_view("idx", by_n()).unwrap();
        let hb = b.add_view("idx", by_n()).unwrap();
        if round == 0 {
            for n in 0..5 {
                a.append(&json!({"n": n, "text": "a"})).unwrap();
            }
            for n in 3..6 {
                b.append(&json!({"n": n, "text": "b"})).unwrap();
            }
        }
        let want_a: Vec<_> = (0..5).map(|n| (n, "a".to_string())).collect();
        let want_b: Vec<_> = (3..6).map(|n| (n, "b".to_string())).collect();
        assert_eq!(rows(&ha), want_a, "round {round}");
        assert_eq!(rows(&hb), want_b, "round {round}");
        a.close().unwrap();
        b.close().unwrap();
    }
}

#[test]
fn an_index_of_records_the_log_lost_and_replaced_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let cut;
    {
        let db = open(&path);
        let h = db.add_view("idx", by_n()).unwrap();
        let mut seqs = Vec::new();
        for n in 0..10 {
            seqs.push(db.append(&json!({"n": n, "text": "first"})).unwrap());
        }
        assert_eq!(rows(&h).len(), 10);
        cut = seqs[8].get();
        db.close().unwrap();
    }
    // The log loses its last 2 records; a session without the view appends 3 others, with
    // the same sizes, so they take the lost records' seqs.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(cut).unwrap();
    drop(file);
    {
        let db = open(&path);
        for n in 20..23 {
            db.append(&json!({"n": n, "text": "again"})).unwrap();
        }
        db.log().flush().unwrap();
        db.close().unwrap();
    }
    let db = open(&path);
    let h = db.add_view("idx", by_n()).unwrap();
    let mut want: Vec<_> = (0..8).map(|n| (n, "first".to_string())).collect();
    want.extend((20..23).map(|n| (n, "again".to_string())));
    assert_eq!(
        rows(&h),
        want,
        "rows of lost records, or missing rows of new ones"
    );
}
