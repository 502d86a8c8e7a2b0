//! flumeview-level behaviour: JS flumeview-level's tests re-expressed (get, live vs read),
//! reads with bounds/reverse/limit, reopen, version bumps that rebuild a complete index (the
//! JS bug left it empty), duplicate keys, rejected keys, and the core view suite.

use std::path::Path;
use std::thread;
use std::time::Duration;

use flumedb_core::testkit::{ViewSuite, view_suite};
use flumedb_core::{Doc, Error, Flume, Json, Seq};
use flumelog_memory::MemoryLog;
use flumelog_offset::OffsetLog;
use flumeview_level::{Key, KeyError, Level, LevelHandle, LiveItem, ReadOptions, Row};
use serde_json::{Value, json};

/// Messages keyed by `[author, n]`.
fn by_author(version: u32) -> Level<Value> {
    Level::new(version, |msg: &Value, _seq| {
        Ok(vec![Key::array([
            Key::try_from(&msg["author"])?,
            Key::try_from(&msg["n"])?,
        ])])
    })
}

fn msg(author: &str, n: i64) -> Value {
    json!({"author": author, "n": n, "text": format!("{author} says {n}")})
}

fn open(dir: &Path) -> Flume<OffsetLog, Value> {
    Flume::open(OffsetLog::open(dir.join("log.offset")).unwrap(), Json).unwrap()
}

fn keys(rows: impl Iterator<Item = Result<Row<Value>, Error>>) -> Vec<Key> {
    rows.map(|r| r.unwrap().key.unwrap()).collect()
}

#[test]
fn level_passes_the_view_suite_on_an_offset_log_and_in_memory() {
    view_suite(ViewSuite {
        open_log: Box::new(|dir| Ok(OffsetLog::open(dir.join("log.offset"))?)),
        make_view: Box::new(by_author),
        record: Box::new(|i| msg(["@a", "@b", "@c"][i as usize % 3], i as i64)),
        snapshot: Box::new(|h: &LevelHandle<Value>| {
            h.read(ReadOptions::new()).map(|rows| {
                rows.map(|r| {
                    let r = r.unwrap();
                    (r.key.unwrap(), r.seq, r.value)
                })
                .collect::<Vec<_>>()
            })
        }),
    });
    view_suite(ViewSuite {
        open_log: Box::new(|_| Ok(MemoryLog::new())),
        make_view: Box::new(by_author),
        record: Box::new(|i| msg("@a", i as i64)),
        snapshot: Box::new(|h: &LevelHandle<Value>| {
            h.read(ReadOptions::new().values(false))
                .map(|rows| rows.map(|r| r.unwrap().seq).collect::<Vec<_>>())
        }),
    });
}

#[test]
fn get_returns_each_record_and_survives_reopen() {
    // JS test/index.js: append 3 records, get each by key; again after close and reload.
    let dir = tempfile::tempdir().unwrap();
    let mut seqs = Vec::new();
    {
        let db = open(dir.path());
        let h = db.add_view("idx", by_author(1)).unwrap();
        for (a, n) in [("@a", 1), ("@b", 2), ("@a", 3)] {
            let seq = db.append(&msg(a, n)).unwrap();
            seqs.push(seq);
            let got = h
                .get(&Key::array([Key::from(a), Key::from(n)]))
                .unwrap()
                .unwrap();
            assert_eq!((got.seq, got.value), (seq, msg(a, n)));
        }
        assert_eq!(h.get(&Key::array(["@z"])).unwrap(), None);
        db.close().unwrap();
    }
    let db = open(dir.path());
    let h = db.add_view("idx", by_author(1)).unwrap();
    assert_eq!(
        h.get_seq(&Key::array([Key::from("@b"), Key::from(2)]))
            .unwrap(),
        Some(seqs[1])
    );
    assert_eq!(h.read(ReadOptions::new()).unwrap().count(), 3);
}

#[test]
fn reads_follow_bounds_reverse_and_limit() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let h = db.add_view("idx", by_author(1)).unwrap();
    let values: Vec<Value> = ["@b", "@a", "@c", "@a", "@b"]
        .iter()
        .enumerate()
        .map(|(i, a)| msg(a, i as i64))
        .collect();
    db.append_batch(&values).unwrap();
    let k = |a: &str, n: i64| Key::array([Key::from(a), Key::from(n)]);
    assert_eq!(
        keys(h.read(ReadOptions::new()).unwrap()),
        vec![k("@a", 1), k("@a", 3), k("@b", 0), k("@b", 4), k("@c", 2)]
    );
    // Everything of one author: [a] ..< [a, Max].
    let of_a = ReadOptions::new()
        .gte(Key::array(["@a"]))
        .lt(Key::Array(vec![Key::from("@a"), Key::Max]));
    assert_eq!(
        keys(h.read(of_a.clone()).unwrap()),
        vec![k("@a", 1), k("@a", 3)]
    );
    assert_eq!(
        keys(h.read(of_a.clone().reverse()).unwrap()),
        vec![k("@a", 3), k("@a", 1)]
    );
    assert_eq!(keys(h.read(of_a.limit(1)).unwrap()), vec![k("@a", 1)]);
    assert_eq!(
        keys(
            h.read(ReadOptions::new().gt(k("@a", 3)).lte(k("@b", 4)))
                .unwrap()
        ),
        vec![k("@b", 0), k("@b", 4)]
    );
    assert_eq!(
        keys(h.read(ReadOptions::new().reverse().limit(2)).unwrap()),
        vec![k("@c", 2), k("@b", 4)]
    );
    let no_values: Vec<Row<Value>> = h
        .read(ReadOptions::new().values(false).limit(1))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(no_values[0].value, None);
    let bare: Vec<Row<Value>> = h
        .read(ReadOptions::new().keys(false).values(false))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(bare.len(), 5);
    assert!(bare.iter().all(|r| r.key.is_none() && r.value.is_none()));
    assert_eq!(no_values[0].seq, Seq::new(1));
    assert!(matches!(
        h.read(ReadOptions::new().gt(Key::Number(f64::NAN))),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn live_reads_give_old_rows_a_sync_marker_then_each_new_row_once() {
    // JS test/live.js: what a live read collects equals a later plain read.
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let h = db.add_view("idx", by_author(1)).unwrap();
    db.append_batch(&[msg("@a", 1), msg("@b", 2)]).unwrap();
    let mut live = h.live(ReadOptions::new()).unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        match live.next().unwrap().unwrap() {
            LiveItem::Row(r) => seen.push(r.key.unwrap()),
            LiveItem::Sync => panic!("sync before the old rows"),
        }
    }
    assert_eq!(live.next().unwrap().unwrap(), LiveItem::Sync);
    let writer = {
        thread::spawn(move || {
            let mut items = Vec::new();
            for _ in 0..50 {
                match live.next().unwrap().unwrap() {
                    LiveItem::Row(r) => items.push(r.key.unwrap()),
                    LiveItem::Sync => panic!("a second sync"),
                }
            }
            items
        })
    };
    for i in 0..50 {
        db.append(&msg(if i % 2 == 0 { "@c" } else { "@a" }, 100 + i))
            .unwrap();
    }
    seen.extend(writer.join().unwrap());
    seen.sort();
    assert_eq!(seen, keys(h.read(ReadOptions::new()).unwrap()));

    // Live only, no marker, within bounds.
    let mut only_new = h
        .live(ReadOptions::new().old(false).gte(Key::array(["@c"])))
        .unwrap();
    db.append(&msg("@a", 999)).unwrap();
    db.append(&msg("@c", 1000)).unwrap();
    match only_new.next().unwrap().unwrap() {
        LiveItem::Row(r) => assert_eq!(r.key, Some(Key::array([Key::from("@c"), Key::from(1000)]))),
        other => panic!("{other:?}"),
    }
    let closer = thread::spawn(move || only_new.next());
    thread::sleep(Duration::from_millis(50));
    db.close().unwrap();
    assert!(matches!(closer.join().unwrap(), Some(Err(Error::Closed))));
}

#[test]
fn a_version_bump_rebuilds_a_complete_index() {
    // The JS bug: after a version bump only 0, 0, 0 and 17 of N = 1, 5, 100, 3000 rows were
    // readable, for good.
    for n in [1usize, 5, 100, 3000] {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open(dir.path());
            let h = db.add_view("idx", by_author(1)).unwrap();
            let values: Vec<Value> = (0..n).map(|i| msg("@a", i as i64)).collect();
            db.append_batch(&values).unwrap();
            assert_eq!(h.read(ReadOptions::new().values(false)).unwrap().count(), n);
            db.close().unwrap();
        }
        for version in [2, 3] {
            let db = open(dir.path());
            let h = db.add_view("idx", by_author(version)).unwrap();
            assert_eq!(
                h.read(ReadOptions::new().values(false)).unwrap().count(),
                n,
                "version {version}, {n} records"
            );
            db.close().unwrap();
        }
    }
}

#[test]
fn duplicate_keys_last_write_wins_unless_made_unique() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let plain = db
        .add_view(
            "plain",
            Level::new(1, |v: &Value, _| Ok(vec![Key::try_from(&v["type"])?])),
        )
        .unwrap();
    let unique = db
        .add_view(
            "unique",
            Level::new(1, |v: &Value, seq| {
                Ok(vec![Key::try_from(&v["type"])?.with_seq(seq)])
            }),
        )
        .unwrap();
    let seqs = db
        .append_batch(&[
            json!({"type": "post"}),
            json!({"type": "post"}),
            json!({"type": "vote"}),
        ])
        .unwrap();
    let rows: Vec<Row<Value>> = plain
        .read(ReadOptions::new())
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].seq, seqs[1], "the later post wins");
    let posts = unique
        .read(
            ReadOptions::new()
                .gte(Key::array(["post"]))
                .lt(Key::Array(vec![Key::from("post"), Key::Max])),
        )
        .unwrap()
        .count();
    assert_eq!(posts, 2);
}

#[test]
fn keys_that_cannot_be_encoded_are_reported_and_indexing_goes_on() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let h = db
        .add_view(
            "idx",
            Level::new(1, |v: &Value, _| {
                if v["nan"] == true {
                    return Ok(vec![Key::Number(f64::NAN)]);
                }
                Ok(vec![Key::try_from(&v["k"])?])
            }),
        )
        .unwrap();
    let seqs = db
        .append_batch(&[
            json!({"k": "a"}),
            json!({"k": {"an": "object"}}),
            json!({"nan": true}),
            json!({"k": "b"}),
        ])
        .unwrap();
    assert_eq!(h.read(ReadOptions::new()).unwrap().count(), 2);
    let (count, rejected) = h.rejected();
    assert_eq!(count, 2);
    assert_eq!(rejected[0].seq, seqs[1]);
    assert_eq!(rejected[0].error, KeyError::Object);
    assert_eq!(rejected[1].error, KeyError::NotANumber);
}

#[test]
fn rows_of_deleted_records_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let h = db.add_view("idx", by_author(1)).unwrap();
    let seqs = db.append_batch(&[msg("@a", 1), msg("@a", 2)]).unwrap();
    db.log().del(seqs[0]).unwrap();
    let rows: Vec<Row<Value>> = h
        .read(ReadOptions::new())
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].seq, seqs[1]);
}

#[test]
fn views_in_one_directory_share_a_database_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let a = db.add_view("a", by_author(1)).unwrap();
        let b = db
            .add_view(
                "b.v2 (ünïcode)",
                Level::new(1, |v: &Value, _| Ok(vec![Key::try_from(&v["n"])?])),
            )
            .unwrap();
        db.append_batch(&[msg("@a", 1), msg("@b", 2)]).unwrap();
        assert_eq!(a.read(ReadOptions::new()).unwrap().count(), 2);
        assert_eq!(b.read(ReadOptions::new()).unwrap().count(), 2);
        db.close().unwrap();
    }
    let db = open(dir.path());
    let b = db
        .add_view(
            "b.v2 (ünïcode)",
            Level::new(1, |v: &Value, _| Ok(vec![Key::try_from(&v["n"])?])),
        )
        .unwrap();
    assert_eq!(
        b.progress().since,
        db.since(),
        "reopened at its stored since, no rebuild"
    );
    assert_eq!(b.read(ReadOptions::new()).unwrap().count(), 2);
}

#[test]
fn a_live_read_on_fjall_gives_each_row_once_while_appends_land_inside_its_old_range() {
    // Rows appended after the read starts sort among the old ones: the old part must not
    // show them (it is a snapshot), the live part must show each once.
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let h = db.add_view("idx", by_author(1)).unwrap();
    let authors = ["@a", "@c", "@e", "@g"];
    let first: Vec<Value> = (0..2000).map(|i| msg(authors[i % 4], i as i64)).collect();
    db.append_batch(&first).unwrap();
    let mut live = h.live(ReadOptions::new().values(false)).unwrap();
    let later: Vec<Value> = (0..400)
        .map(|i| msg(["@b", "@d", "@f"][i % 3], 5000 + i as i64))
        .collect();
    for chunk in later.chunks(50) {
        db.append_batch(chunk).unwrap();
    }
    let mut old = Vec::new();
    while let LiveItem::Row(r) = live.next().unwrap().unwrap() {
        old.push(r.key.unwrap());
    }
    assert_eq!(
        old.len(),
        2000,
        "the old part is the rows at the start, nothing later"
    );
    let new: Vec<Key> = (0..400)
        .map(|_| match live.next().unwrap().unwrap() {
            LiveItem::Row(r) => r.key.unwrap(),
            LiveItem::Sync => panic!("a second sync"),
        })
        .collect();
    let mut all: Vec<Key> = old.into_iter().chain(new).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "a row came twice");
    assert_eq!(all, keys(h.read(ReadOptions::new().values(false)).unwrap()));
}

#[test]
fn inverted_bounds_read_nothing_on_either_store() {
    let dir = tempfile::tempdir().unwrap();
    let on_disk = open(dir.path());
    let in_memory = Flume::open(MemoryLog::new(), Json).unwrap();
    for db_view in [
        on_disk.add_view("idx", by_author(1)).unwrap(),
        in_memory.add_view("idx", by_author(1)).unwrap(),
    ] {
        let k = |n: i64| Key::array([Key::from("@a"), Key::from(n)]);
        for opts in [
            ReadOptions::new().gt(k(5)).lt(k(3)),
            ReadOptions::new().gt(k(3)).lt(k(3)),
            ReadOptions::new().gte(k(3)).lt(k(3)),
            ReadOptions::new().gt(k(3)).lte(k(3)),
        ] {
            assert_eq!(db_view.read(opts.clone()).unwrap().count(), 0, "{opts:?}");
            let mut live = db_view.live(opts.old(true)).unwrap();
            assert_eq!(live.next().unwrap().unwrap(), LiveItem::Sync);
        }
    }
}

#[test]
fn a_damaged_meta_row_means_a_rebuild_not_a_dead_view() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let h = db.add_view("idx", by_author(1)).unwrap();
        db.append_batch(&[msg("@a", 1), msg("@b", 2)]).unwrap();
        assert_eq!(h.read(ReadOptions::new()).unwrap().count(), 2);
        db.close().unwrap();
    }
    {
        let store = fjall::Database::builder(dir.path().join("log.offset.views").join("level"))
            .open()
            .unwrap();
        let ks = store
            .keyspace("view-idx", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        ks.insert([0u8], [1u8, 2, 3]).unwrap(); // META of a wrong length
        ks.insert([0x40u8, b'z', 0], 99u64.to_be_bytes()).unwrap(); // a stray row
        store.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let db = open(dir.path());
    let h = db.add_view("idx", by_author(1)).unwrap();
    let rows: Vec<Key> = keys(h.read(ReadOptions::new()).unwrap());
    assert_eq!(
        rows,
        vec![
            Key::array([Key::from("@a"), Key::from(1)]),
            Key::array([Key::from("@b"), Key::from(2)])
        ],
        "rebuilt from the log, the stray row gone"
    );
}

#[test]
fn two_databases_on_one_log_directory_cannot_share_a_view_keyspace() {
    // Views of two logs have separate stores (tests/identity.rs); two views of one name on
    // one store, here through two databases whose logs share a view directory, are refused.
    struct SharedViews(MemoryLog, std::path::PathBuf);
    impl flumedb_core::Log for SharedViews {
        fn append(&self, data: &[u8]) -> flumedb_core::Result<Seq> {
            self.0.append(data)
        }
        fn append_batch(&self, records: &[&[u8]]) -> flumedb_core::Result<Vec<Seq>> {
            self.0.append_batch(records)
        }
        fn get(&self, seq: Seq) -> flumedb_core::Result<Vec<u8>> {
            self.0.get(seq)
        }
        fn since_watch(&self) -> &flumedb_core::SinceWatch {
            self.0.since_watch()
        }
        fn range(
            &self,
            lower: std::ops::Bound<Seq>,
            upper: std::ops::Bound<Seq>,
            reverse: bool,
        ) -> flumedb_core::Result<flumedb_core::LogIter<'_>> {
            self.0.range(lower, upper, reverse)
        }
        fn flush(&self) -> flumedb_core::Result<()> {
            self.0.flush()
        }
        fn close(&self) -> flumedb_core::Result<()> {
            self.0.close()
        }
        fn view_dir(&self) -> Option<std::path::PathBuf> {
            Some(self.1.clone())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let log = SharedViews(MemoryLog::new(), dir.path().join("views"));
        Flume::open(log, Json).unwrap()
    };
    let (one, two) = (open(), open());
    one.add_view("idx", by_author(1)).unwrap();
    let err = two
        .add_view("idx", by_author(1))
        .err()
        .expect("the second must be refused");
    assert!(err.to_string().contains("already open"), "{err}");
    two.add_view("idx2", by_author(1)).unwrap();
    one.close().unwrap();
    // Once the first closed, the name is free again.
    two.add_view("idx", by_author(1)).unwrap();
}

/// A clean close empties fjall's journal (the next open reads no journal); writes after the
/// reopen must still win over older rows of the same key (fjall recovers its sequence numbers
/// from the tables), and everything survives more close/reopen rounds.
#[test]
fn a_clean_close_empties_the_journal_and_later_writes_still_win() {
    let dir = tempfile::tempdir().unwrap();
    let by_n = || Level::new(1, |msg: &Value, _| Ok(vec![Key::try_from(&msg["author"])?]));
    let journal_len = |dir: &Path| -> u64 {
        std::fs::read_dir(dir.join("log.offset.views").join("level"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "jnl"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    for round in 0..3i64 {
        let db = open(dir.path());
        let view = db.add_view("last", by_n()).unwrap();
        if round > 0 {
            // The previous round's rows were read back from tables alone.
            let m = view.get(&Key::from("@a")).unwrap().unwrap().value;
            assert_eq!(m["n"], json!(round * 100 - 1));
        }
        let batch: Vec<Value> = (round * 100..round * 100 + 100)
            .map(|n| msg("@a", n))
            .collect();
        db.append_batch(&batch).unwrap();
        let m = view.get(&Key::from("@a")).unwrap().unwrap().value;
        assert_eq!(
            m["n"],
            json!(round * 100 + 99),
            "round {round}: the newest row wins"
        );
        assert!(journal_len(dir.path()) > 0);
        drop(view);
        db.close().unwrap();
        assert_eq!(
            journal_len(dir.path()),
            0,
            "round {round}: the journal was emptied"
        );
    }
    // An open handle (an unfinished read) keeps the database open: the journal stays.
    let db = open(dir.path());
    let view = db.add_view("last", by_n()).unwrap();
    db.append(&msg("@a", 1000)).unwrap();
    let mut rows = view.read(ReadOptions::new()).unwrap();
    let row = rows.next().unwrap().unwrap();
    assert_eq!(row.value.unwrap()["n"], json!(1000));
    drop(view);
    db.close().unwrap();
    drop(rows);
    let db = open(dir.path());
    let view = db.add_view("last", by_n()).unwrap();
    let m = view.get(&Key::from("@a")).unwrap().unwrap().value;
    assert_eq!(m["n"], json!(1000));
}

/// Messages keyed by `[author, n]`, read in place from `Doc` records. A missing field is told
/// from a `null` one: records without an author are not indexed, a `null` author is.
fn docs_by_author(version: u32) -> Level<Doc> {
    Level::new(version, |msg: &Doc, _seq| {
        let Some(author) = msg
            .get(&["author"])
            .map_err(|e| KeyError::NotJson(e.to_string()))?
        else {
            return Ok(vec![]);
        };
        let n = msg
            .get(&["n"])
            .map_err(|e| KeyError::NotJson(e.to_string()))?;
        Ok(vec![Key::array([
            Key::try_from(author)?,
            n.map_or(Ok(Key::Null), Key::try_from)?,
        ])])
    })
}

#[test]
fn a_level_view_of_docs_reads_its_keys_in_place_and_returns_the_stored_bytes() {
    view_suite(ViewSuite {
        open_log: Box::new(|dir| Ok(OffsetLog::open(dir.join("log.offset"))?)),
        make_view: Box::new(docs_by_author),
        record: Box::new(|i| {
            Doc::encode(&msg(["@a", "@b", "@c"][i as usize % 3], i as i64)).unwrap()
        }),
        snapshot: Box::new(|h: &LevelHandle<Doc>| {
            h.read(ReadOptions::new()).map(|rows| {
                rows.map(|r| {
                    let r = r.unwrap();
                    (r.key.unwrap(), r.seq, r.value)
                })
                .collect::<Vec<_>>()
            })
        }),
    });

    let db: Flume<MemoryLog, Doc> = Flume::open(MemoryLog::new(), Json).unwrap();
    let level = db.add_view("level", docs_by_author(1)).unwrap();
    let with_null = r#"{"author":null,"n":1}"#;
    db.append(&Doc::from_json(r#"{"n":0}"#)).unwrap();
    let seq = db.append(&Doc::from_json(with_null)).unwrap();
    db.append(&Doc::from_json(r#"{"author":"@a","n":2.50}"#))
        .unwrap();
    let rows: Vec<Row<Doc>> = level
        .read(ReadOptions::new())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2, "the record without an author is not indexed");
    assert_eq!(rows[0].seq, seq);
    assert_eq!(rows[0].key, Some(Key::array([Key::Null, Key::from(1)])));
    assert_eq!(
        rows[0].value.as_ref().map(Doc::as_bytes),
        Some(with_null.as_bytes())
    );
    assert_eq!(
        rows[1].value.as_ref().map(Doc::as_bytes),
        Some(&br#"{"author":"@a","n":2.50}"#[..]),
        "the stored bytes, exactly"
    );
}
