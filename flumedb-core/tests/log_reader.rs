//! `LogReader`, as view handles get it: paged `records` and the live `follow`.

use std::ops::Bound;
use std::thread;
use std::time::Duration;

use flumedb_core::{
    Checkpoint, Error, Flume, Json, LogReader, Record, Seq, Since, Stored, View, ViewContext,
    ViewSync,
};
use flumelog_memory::MemoryLog;
use serde_json::{Value, json};

/// A view that keeps nothing; its handle is the log reader.
struct Tap;

impl View<Value> for Tap {
    type Handle = LogReader<Value>;
    type Error = std::io::Error;
    fn version(&self) -> u32 {
        1
    }
    fn open(&mut self, _: &ViewContext) -> Result<Option<Stored>, std::io::Error> {
        Ok(None)
    }
    fn handle(&self, _: ViewSync, log: LogReader<Value>) -> LogReader<Value> {
        log
    }
    fn apply(&mut self, _: &[Record<Value>], _: Checkpoint) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn reset(&mut self) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn close(&mut self) -> Result<(), std::io::Error> {
        Ok(())
    }
}

fn values(records: impl Iterator<Item = Result<Record<Value>, Error>>) -> Vec<i64> {
    records
        .map(|r| r.unwrap().value["i"].as_i64().unwrap())
        .collect()
}

#[test]
fn records_page_through_bounds_in_both_directions() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let log = db.add_view("tap", Tap).unwrap();
    let all: Vec<Value> = (0..700).map(|i| json!({ "i": i })).collect();
    let seqs = db.append_batch(&all).unwrap();
    let lower = Bound::Excluded(seqs[10]);
    let upper = Bound::Included(seqs[600]);
    assert_eq!(
        values(log.records(lower, upper, false)),
        (11..=600).collect::<Vec<_>>()
    );
    assert_eq!(
        values(log.records(lower, upper, true)),
        (11..=600).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        values(log.records(Bound::Unbounded, Bound::Unbounded, false)).len(),
        700
    );
}

#[test]
fn follow_gives_each_record_after_a_point_once_then_ends_on_close() {
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let log = db.add_view("tap", Tap).unwrap();
    let seqs: Vec<Seq> = (0..5)
        .map(|i| db.append(&json!({ "i": i })).unwrap())
        .collect();
    let mut follow = log.follow(Since::At(seqs[2]));
    thread::scope(|scope| {
        scope.spawn(|| {
            for i in 5..300 {
                db.append(&json!({ "i": i })).unwrap();
                if i % 100 == 0 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
        });
        assert_eq!(
            values(follow.by_ref().take(297)),
            (3..300).collect::<Vec<_>>()
        );
    });
    db.close().unwrap();
    let rest: Vec<_> = follow.collect();
    assert!(matches!(rest[..], [Err(Error::Closed)]), "{rest:?}");
    // From the start of an empty log.
    let db = Flume::open(MemoryLog::new(), Json).unwrap();
    let log = db.add_view("tap", Tap).unwrap();
    let mut follow = log.follow(Since::Empty);
    db.append(&json!({"i": 7})).unwrap();
    assert_eq!(values(follow.by_ref().take(1)), [7]);
}

#[test]
fn follow_moves_past_records_it_was_not_given_instead_of_spinning() {
    // The log's last records were skipped (undecodable, under `Undecodable::Skip`) or
    // deleted: pages come back empty though the log's since is ahead of the reader.
    let pages = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = pages.clone();
    let watch = flumedb_core::SinceWatch::new(Since::At(Seq::new(4)));
    let reader: LogReader<Value> = LogReader::new(
        |seq| Err(Error::Deleted { seq }),
        move |_, _, _, _| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Vec::new())
        },
        watch.clone(),
    );
    let follower = thread::spawn(move || reader.follow(Since::Empty).next());
    thread::sleep(Duration::from_millis(200));
    let read = pages.load(std::sync::atomic::Ordering::SeqCst);
    assert!(read <= 2, "{read} pages read in 200 ms: the follower spins");
    watch.close();
    assert!(matches!(follower.join().unwrap(), Some(Err(Error::Closed))));

    // Through the driver: a live query-like follow over a skipped record waits quietly.
    let db: Flume<MemoryLog, Value> = flumedb_core::FlumeOptions::new()
        .undecodable(flumedb_core::Undecodable::Skip)
        .open(MemoryLog::new(), Json)
        .unwrap();
    let log = db.add_view("tap", Tap).unwrap();
    let mut follow = log.follow(Since::Empty);
    flumedb_core::Log::append(db.log(), b"not json").unwrap();
    db.append(&json!({"i": 1})).unwrap();
    assert_eq!(values(follow.by_ref().take(1)), [1]);
}
