//! The driver's contract: JS flumedb's own test suite re-expressed, plus the JS bugs we do not
//! reproduce. Uses `flumelog-memory` and a small recording view.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use flumedb_core::{
    Checkpoint, Codec, CodecError, Error, Flume, FlumeOptions, Json, Log, Record, Seq, Since,
    Stored, StreamOptions, View, ViewContext, ViewStatus, ViewSync, Wait,
};
use flumelog_memory::MemoryLog;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// What a [`Recorder`] saw, shared with its handle and the test.
#[derive(Default)]
struct Seen {
    records: Mutex<Vec<(Seq, Value)>>,
    applies: AtomicUsize,
    resets: AtomicUsize,
    /// Calls in order: "open", "reset", "apply", "flush", "close".
    calls: Mutex<Vec<&'static str>>,
    /// The checkpoint of the last apply.
    checkpoint: Mutex<Option<Checkpoint>>,
}

/// A view that records every record it is fed. When `fragile`, it fails (or panics) on values
/// with `"fail": true` (`"panic": true`). It can pretend to have stored state.
struct Recorder {
    seen: Arc<Seen>,
    version: u32,
    stored: Option<Stored>,
    fragile: bool,
}

impl Recorder {
    fn new() -> (Recorder, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        (
            Recorder {
                seen: seen.clone(),
                version: 1,
                stored: None,
                fragile: false,
            },
            seen,
        )
    }

    fn fragile() -> (Recorder, Arc<Seen>) {
        let (mut view, seen) = Recorder::new();
        view.fragile = true;
        (view, seen)
    }
}

#[derive(Clone)]
struct RecorderHandle {
    seen: Arc<Seen>,
    sync: ViewSync,
}

impl RecorderHandle {
    fn values(&self) -> flumedb_core::Result<Vec<Value>> {
        self.values_with(Wait::Latest)
    }
    fn values_with(&self, wait: Wait) -> flumedb_core::Result<Vec<Value>> {
        self.sync.wait(wait)?;
        Ok(self
            .seen
            .records
            .lock()
            .iter()
            .map(|(_, v)| v.clone())
            .collect())
    }
    fn seqs(&self) -> flumedb_core::Result<Vec<Seq>> {
        self.sync.wait(Wait::Latest)?;
        Ok(self.seen.records.lock().iter().map(|(s, _)| *s).collect())
    }
}

#[derive(Debug)]
struct Boom(Seq);
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "boom at {}", self.0)
    }
}
impl std::error::Error for Boom {}

impl View<Value> for Recorder {
    type Handle = RecorderHandle;
    type Error = Boom;

    fn version(&self) -> u32 {
        self.version
    }
    fn open(&mut self, _ctx: &ViewContext) -> Result<Option<Stored>, Boom> {
        self.seen.calls.lock().push("open");
        Ok(self.stored)
    }
    fn handle(&self, sync: ViewSync, _log: flumedb_core::LogReader<Value>) -> RecorderHandle {
        RecorderHandle {
            seen: self.seen.clone(),
            sync,
        }
    }
    fn apply(&mut self, records: &[Record<Value>], checkpoint: Checkpoint) -> Result<(), Boom> {
        self.seen.applies.fetch_add(1, Ordering::SeqCst);
        self.seen.calls.lock().push("apply");
        *self.seen.checkpoint.lock() = Some(checkpoint);
        for r in records {
            if self.fragile && r.value["fail"] == true {
                return Err(Boom(r.seq));
            }
            if self.fragile && r.value["panic"] == true {
                panic!("view bug at {}", r.seq);
            }
            self.seen.records.lock().push((r.seq, r.value.clone()));
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Boom> {
        self.seen.calls.lock().push("flush");
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Boom> {
        self.seen.resets.fetch_add(1, Ordering::SeqCst);
        self.seen.calls.lock().push("reset");
        self.seen.records.lock().clear();
        Ok(())
    }
    fn close(&mut self) -> Result<(), Boom> {
        self.seen.calls.lock().push("close");
        Ok(())
    }
}

fn db() -> Flume<MemoryLog, Value> {
    Flume::open(MemoryLog::new(), Json).unwrap()
}

/// A database opened on a log that already holds `values` (as after an earlier session).
fn db_on(values: &[Value]) -> Flume<MemoryLog, Value> {
    let log = MemoryLog::new();
    let encoded: Vec<Vec<u8>> = values
        .iter()
        .map(|v| serde_json::to_vec(v).unwrap())
        .collect();
    let slices: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
    log.append_batch(&slices).unwrap();
    Flume::open(log, Json).unwrap()
}

#[test]
fn empty_db_reads() {
    let db = db();
    let (view, _) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    assert_eq!(h.values().unwrap(), Vec::<Value>::new());
    assert_eq!(db.since(), Since::Empty);
    assert!(matches!(db.get(Seq::ZERO), Err(Error::NotFound { .. })));
    assert_eq!(db.stream(StreamOptions::new()).unwrap().count(), 0);
    assert!(db.progress()[0].is_current());
}

#[test]
fn read_after_append_sees_the_value() {
    let db = db();
    let (view, _) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    for i in 0..100 {
        db.append(&json!({"i": i})).unwrap();
        // No sleep: the read waits until the view has the record.
        assert_eq!(h.values().unwrap().len(), i + 1);
    }
    let seqs = db.append_batch(&[json!(1), json!(2), json!(3)]).unwrap();
    assert_eq!(seqs, vec![Seq::new(100), Seq::new(101), Seq::new(102)]);
    assert_eq!(h.seqs().unwrap().last(), Some(&Seq::new(102)));
    assert_eq!(db.get(Seq::new(101)).unwrap(), json!(2));
}

#[test]
fn views_get_and_streams_see_mapped_values_but_the_log_keeps_the_original() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let db = FlumeOptions::new()
        .mapper(move |mut v: Value| {
            c.fetch_add(1, Ordering::SeqCst);
            v["map"] = json!(true);
            Ok(v)
        })
        .open(MemoryLog::new(), Json)
        .unwrap();
    let (view, _) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    let seq = db.append(&json!({"foo": 1})).unwrap();
    db.append(&json!({"foo": 3})).unwrap();
    assert_eq!(
        h.values().unwrap(),
        vec![
            json!({"foo": 1, "map": true}),
            json!({"foo": 3, "map": true})
        ]
    );
    assert_eq!(db.get(seq).unwrap(), json!({"foo": 1, "map": true}));
    let streamed: Vec<Value> = db
        .stream(StreamOptions::new())
        .unwrap()
        .map(|r| r.unwrap().value)
        .collect();
    assert_eq!(streamed.len(), 2);
    assert!(streamed.iter().all(|v| v["map"] == true));
    // Stored bytes are not mapped.
    assert_eq!(db.log().get(seq).unwrap(), br#"{"foo":1}"#);
    // The view (2) + get (1) + stream (2): each value mapped once per consumer.
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[test]
fn readiness_gate_holds_view_reads_until_released() {
    let db = Arc::new(
        FlumeOptions::new()
            .ready(false)
            .open(MemoryLog::new(), Json)
            .unwrap(),
    );
    let (view, seen) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    db.append(&json!({"foo": 1})).unwrap();
    let reader = {
        let h = h.clone();
        thread::spawn(move || h.values())
    };
    thread::sleep(Duration::from_millis(150));
    assert!(!reader.is_finished(), "a read must wait while not ready");
    // The view still indexes while not ready, and Wait::Now reads answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.records.lock().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(h.values_with(Wait::Now).unwrap(), vec![json!({"foo": 1})]);
    assert!(!db.is_ready());
    db.set_ready(true);
    assert_eq!(reader.join().unwrap().unwrap(), vec![json!({"foo": 1})]);
}

#[test]
fn a_view_ahead_of_the_log_is_reset_before_it_is_fed() {
    let db = db();
    db.append_batch(&[json!(1), json!(2)]).unwrap();
    let (mut view, seen) = Recorder::new();
    view.stored = Some(Stored {
        version: 1,
        checkpoint: Checkpoint::of(Seq::new(10), b"1"),
    });
    let h = db.add_view("ahead", view).unwrap();
    assert_eq!(h.values().unwrap(), vec![json!(1), json!(2)]);
    let calls = seen.calls.lock().clone();
    assert_eq!(&calls[..3], &["open", "reset", "apply"], "{calls:?}");
}

#[test]
fn a_view_ahead_of_the_log_at_open_is_reset_even_after_new_appends() {
    // The log lost its tail (seqs 2..): the view's stored since 3 was ahead of the log when
    // the database opened. New appends reuse those seqs, but the view must still be reset.
    let db2 = db_on(&[json!("a"), json!("b")]);
    db2.append_batch(&[json!("new c"), json!("new d")]).unwrap();
    let (mut view, seen) = Recorder::new();
    view.stored = Some(Stored {
        version: 1,
        checkpoint: Checkpoint::of(Seq::new(3), b"\"new d\""),
    });
    let h = db2.add_view("ahead", view).unwrap();
    assert_eq!(seen.resets.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.values().unwrap(),
        vec![json!("a"), json!("b"), json!("new c"), json!("new d")]
    );
}

#[test]
fn a_view_of_another_version_is_reset_and_rebuilt() {
    // The records were there before this session: views may have stored state for them.
    let db = db_on(&[json!(1), json!(2), json!(3)]);
    let (mut view, seen) = Recorder::new();
    view.version = 2;
    view.stored = Some(Stored {
        version: 1,
        checkpoint: Checkpoint::of(Seq::new(1), b"2"),
    });
    let h = db.add_view("old", view).unwrap();
    assert_eq!(h.values().unwrap(), vec![json!(1), json!(2), json!(3)]);
    assert_eq!(seen.resets.load(Ordering::SeqCst), 1);

    // Same version, behind the log: fed from where it was, no reset.
    let (mut view, seen) = Recorder::new();
    view.stored = Some(Stored {
        version: 1,
        checkpoint: Checkpoint::of(Seq::new(1), b"2"),
    });
    let h = db.add_view("behind", view).unwrap();
    assert_eq!(h.values().unwrap(), vec![json!(3)]);
    assert_eq!(seen.resets.load(Ordering::SeqCst), 0);
}

#[test]
fn close_wakes_pending_reads_and_everything_after_errors() {
    let db = Arc::new(
        FlumeOptions::new()
            .ready(false)
            .open(MemoryLog::new(), Json)
            .unwrap(),
    );
    let (view, seen) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    db.append(&json!(1)).unwrap();
    let pending = {
        let h = h.clone();
        thread::spawn(move || h.values())
    };
    thread::sleep(Duration::from_millis(50));
    db.close().unwrap();
    assert!(matches!(pending.join().unwrap(), Err(Error::Closed)));
    assert!(matches!(db.append(&json!(2)), Err(Error::Closed)));
    assert!(matches!(db.append_batch(&[json!(2)]), Err(Error::Closed)));
    assert!(matches!(db.get(Seq::ZERO), Err(Error::Closed)));
    assert!(matches!(
        db.stream(StreamOptions::new()),
        Err(Error::Closed)
    ));
    assert!(matches!(db.rebuild(), Err(Error::Closed)));
    assert!(matches!(
        db.add_view("late", Recorder::new().0),
        Err(Error::Closed)
    ));
    assert!(matches!(h.values(), Err(Error::Closed)));
    assert!(matches!(h.values_with(Wait::Now), Err(Error::Closed)));
    assert!(db.close().is_ok(), "a second close is fine");
    assert!(db.is_closed());
    assert_eq!(seen.calls.lock().last(), Some(&"close"));
    assert!(matches!(db.progress()[0].status, ViewStatus::Closed));
}

#[test]
fn close_flushes_views_and_stops_live_streams() {
    let db = db();
    let (view, seen) = Recorder::new();
    let _h = db.add_view("rec", view).unwrap();
    db.append(&json!(1)).unwrap();
    let stream = db.stream(StreamOptions::new().live()).unwrap();
    let items = thread::scope(|scope| {
        let live = scope.spawn(move || stream.map(|r| r.map(|r| r.value)).collect::<Vec<_>>());
        thread::sleep(Duration::from_millis(50));
        db.close().unwrap();
        live.join().unwrap()
    });
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap(), &json!(1));
    assert!(matches!(items[1], Err(Error::Closed)));
    let calls = seen.calls.lock().clone();
    let n = calls.len();
    assert_eq!(&calls[n - 2..], &["flush", "close"], "{calls:?}");
}

#[test]
fn rebuild_reruns_the_view_over_every_record_exactly_once() {
    let db = db();
    let (view, seen) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    for i in 0..2000 {
        db.append(&json!(i)).unwrap();
    }
    assert_eq!(h.seqs().unwrap().len(), 2000);
    db.rebuild().unwrap();
    // rebuild() returns once caught up: no waiting needed.
    let seqs: Vec<Seq> = seen.records.lock().iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..2000).map(Seq::new).collect::<Vec<_>>());
    assert_eq!(seen.resets.load(Ordering::SeqCst), 1);
    db.append(&json!("after")).unwrap();
    assert_eq!(h.values().unwrap().len(), 2001);
}

#[test]
fn concurrent_rebuilds_do_not_double_count() {
    let db = Arc::new(
        FlumeOptions::new()
            .batch_size(16)
            .open(MemoryLog::new(), Json)
            .unwrap(),
    );
    let (view, seen) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    let values: Vec<Value> = (0..3000).map(|i| json!(i)).collect();
    db.append_batch(&values).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            thread::spawn(move || db.rebuild())
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let seqs = h.seqs().unwrap();
    assert_eq!(seqs, (0..3000).map(Seq::new).collect::<Vec<_>>());
    assert!(seen.resets.load(Ordering::SeqCst) >= 1);
}

#[test]
fn a_failing_view_stops_with_its_error_and_does_not_loop() {
    let db = db();
    let (bad, bad_seen) = Recorder::fragile();
    let (good, _) = Recorder::new();
    let bad = db.add_view("bad", bad).unwrap();
    let good = db.add_view("good", good).unwrap();
    db.append(&json!({"ok": 1})).unwrap();
    let boom = db.append(&json!({"fail": true})).unwrap();
    db.append(&json!({"ok": 2})).unwrap();

    match bad.values() {
        Err(Error::ViewFailed { view, cause, .. }) => {
            assert_eq!(view, "bad");
            assert!(
                cause.to_string().contains(&format!("boom at {boom}")),
                "{cause}"
            );
        }
        other => panic!("expected ViewFailed, got {other:?}"),
    }
    // The other view goes on: it records the value the first one failed on.
    assert_eq!(good.values().unwrap().len(), 3);
    // No rebuild loop: the failing view is not retried on its own.
    let applies = bad_seen.applies.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(200));
    db.append(&json!({"ok": 3})).unwrap();
    assert_eq!(good.values().unwrap().len(), 4);
    assert_eq!(bad_seen.applies.load(Ordering::SeqCst), applies);
    assert!(matches!(db.progress()[0].status, ViewStatus::Failed { .. }));
    // rebuild() restarts it, and reports that it failed again.
    assert!(matches!(db.rebuild(), Err(Error::ViewFailed { .. })));
    assert!(bad.values().is_err());
    db.close().unwrap();
}

#[test]
fn a_panicking_view_fails_without_taking_the_database_down() {
    let db = db();
    let (bad, _) = Recorder::fragile();
    let (good, _) = Recorder::new();
    let bad = db.add_view("bad", bad).unwrap();
    let good = db.add_view("good", good).unwrap();
    db.append(&json!({"panic": true})).unwrap();
    let err = bad.values().unwrap_err();
    assert!(err.to_string().contains("view bug"), "{err}");
    assert_eq!(good.values().unwrap().len(), 1);
    db.close().unwrap();
}

#[test]
fn a_failing_mapper_fails_the_views_it_feeds() {
    let db = FlumeOptions::new()
        .mapper(|v: Value| {
            if v == json!("bad") {
                Err("cannot map this".into())
            } else {
                Ok(v)
            }
        })
        .open(MemoryLog::new(), Json)
        .unwrap();
    let (view, seen) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    db.append(&json!("good")).unwrap();
    let bad = db.append(&json!("bad")).unwrap();
    match h.values() {
        Err(Error::ViewFailed { seq, cause, .. }) => {
            assert_eq!(seq, Some(bad));
            assert!(matches!(*cause, Error::Mapper { .. }), "{cause}");
        }
        other => panic!("expected ViewFailed, got {other:?}"),
    }
    assert!(matches!(db.get(bad), Err(Error::Mapper { .. })));
    // Reads without waiting report the failure too; the record before the bad one was applied.
    assert!(matches!(
        h.values_with(Wait::Now),
        Err(Error::ViewFailed { .. })
    ));
    assert_eq!(seen.records.lock().len(), 1);
    assert_eq!(seen.records.lock()[0].1, json!("good"));
}

#[test]
fn read_your_writes_with_four_writers_and_four_readers() {
    let db = Arc::new(db());
    let (view, _) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            let h = h.clone();
            thread::spawn(move || {
                for i in 0..300 {
                    let seq = db.append(&json!({"w": w, "i": i})).unwrap();
                    if i % 10 == 0 {
                        // Read-your-writes: the view must include our own append.
                        let seqs = h.seqs().unwrap();
                        assert!(seqs.contains(&seq), "writer {w} does not see {seq}");
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            let h = h.clone();
            thread::spawn(move || {
                let mut last = 0;
                for _ in 0..200 {
                    let since = db.since();
                    let seqs = h.seqs().unwrap();
                    // Everything appended before the read is there, in log order.
                    if let Since::At(s) = since {
                        assert!(seqs.len() as u64 > s.get());
                    }
                    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
                    assert!(seqs.len() >= last);
                    last = seqs.len();
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.join().unwrap();
    }
    assert_eq!(h.seqs().unwrap().len(), 1200);
}

#[test]
fn wait_for_a_seq_and_time_out() {
    let db = FlumeOptions::new()
        .read_timeout(Some(Duration::from_millis(100)))
        .ready(false)
        .open(MemoryLog::new(), Json)
        .unwrap();
    let (view, _) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    let seq = db.append(&json!(1)).unwrap();
    match h.values_with(Wait::For(seq)) {
        Err(Error::Timeout { view, .. }) => assert_eq!(view, "rec"),
        other => panic!("expected a timeout while not ready, got {other:?}"),
    }
    db.set_ready(true);
    assert_eq!(h.values_with(Wait::For(seq)).unwrap(), vec![json!(1)]);
    let p = &db.progress()[0];
    assert_eq!(p.view, "rec");
    assert_eq!((p.since, p.log_since), (Since::At(seq), Since::At(seq)));
    assert_eq!(p.ratio(), 1.0);
}

#[test]
fn duplicate_view_names_are_rejected() {
    let db = db();
    db.add_view("a", Recorder::new().0).unwrap();
    assert!(matches!(
        db.add_view("a", Recorder::new().0),
        Err(Error::DuplicateView { .. })
    ));
}

#[test]
fn a_view_added_after_data_catches_up_without_holding_back_others() {
    let db = FlumeOptions::new()
        .batch_size(64)
        .open(MemoryLog::new(), Json)
        .unwrap();
    let (first, _) = Recorder::new();
    let first = db.add_view("first", first).unwrap();
    let values: Vec<Value> = (0..20_000).map(|i| json!(i)).collect();
    db.append_batch(&values).unwrap();
    assert_eq!(first.seqs().unwrap().len(), 20_000);
    let (late, _) = Recorder::new();
    let late = db.add_view("late", late).unwrap();
    // While "late" catches up, "first" keeps answering reads of new appends.
    db.append(&json!("new")).unwrap();
    assert_eq!(first.values().unwrap().len(), 20_001);
    assert_eq!(late.values().unwrap().len(), 20_001);
}

/// A JSON codec that counts decodes.
struct Counting(Arc<AtomicUsize>);
impl Codec<Value> for Counting {
    fn encode(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), CodecError> {
        Json.encode(value, out)
    }
    fn decode(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Codec::<Value>::decode(&Json, bytes)
    }
    /// The append-time check is not the feeder's decoding, which is what this counts.
    fn check(&self, value: &Value, bytes: &[u8]) -> Result<(), CodecError> {
        Codec::<Value>::check(&Json, value, bytes)
    }
}

#[test]
fn each_record_is_decoded_once_for_views_at_the_same_position() {
    let decodes = Arc::new(AtomicUsize::new(0));
    let db = Flume::open(MemoryLog::new(), Counting(decodes.clone())).unwrap();
    let handles: Vec<_> = (0..3)
        .map(|i| db.add_view(&format!("v{i}"), Recorder::new().0).unwrap())
        .collect();
    let values: Vec<Value> = (0..500).map(|i| json!(i)).collect();
    db.append_batch(&values).unwrap();
    for h in &handles {
        assert_eq!(h.values().unwrap().len(), 500);
    }
    assert_eq!(decodes.load(Ordering::SeqCst), 500);
}

#[test]
fn appends_do_not_wait_for_slow_views() {
    struct Slow(Arc<AtomicUsize>);
    impl View<Value> for Slow {
        type Handle = ();
        type Error = Boom;
        fn version(&self) -> u32 {
            1
        }
        fn open(&mut self, _: &ViewContext) -> Result<Option<Stored>, Boom> {
            Ok(None)
        }
        fn handle(&self, _: ViewSync, _: flumedb_core::LogReader<Value>) {}
        fn apply(&mut self, records: &[Record<Value>], _: Checkpoint) -> Result<(), Boom> {
            thread::sleep(Duration::from_millis(50));
            self.0.fetch_add(records.len(), Ordering::SeqCst);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), Boom> {
            Ok(())
        }
        fn reset(&mut self) -> Result<(), Boom> {
            Ok(())
        }
        fn close(&mut self) -> Result<(), Boom> {
            Ok(())
        }
    }
    let db = FlumeOptions::new()
        .batch_size(1)
        .open(MemoryLog::new(), Json)
        .unwrap();
    let applied = Arc::new(AtomicUsize::new(0));
    db.add_view("slow", Slow(applied.clone())).unwrap();
    let start = Instant::now();
    for i in 0..20 {
        db.append(&json!(i)).unwrap();
    }
    // 20 records at 50 ms each would take a second if appends waited.
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(applied.load(Ordering::SeqCst) < 20);
}

#[test]
fn views_see_records_in_log_order_from_a_live_stream() {
    let db = Arc::new(db());
    let (view, _) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    let writer = {
        let db = db.clone();
        thread::spawn(move || {
            for i in 0..500 {
                db.append(&json!(i)).unwrap();
            }
        })
    };
    writer.join().unwrap();
    let got: BTreeMap<u64, Value> = h
        .seqs()
        .unwrap()
        .into_iter()
        .zip(h.values().unwrap())
        .map(|(s, v)| (s.get(), v))
        .collect();
    assert_eq!(got.len(), 500);
    assert!(got.iter().all(|(s, v)| json!(*s) == *v));
}

#[test]
fn flume_is_send_and_sync_and_handles_are_too() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Flume<MemoryLog, Value>>();
    assert_send_sync::<RecorderHandle>();
    assert_send_sync::<flumedb_core::SinceWatch>();
}

#[test]
fn closing_the_log_behind_the_databases_back_does_not_spin_or_fail_views() {
    let db = db();
    let (view, seen) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    db.append(&json!(1)).unwrap();
    assert_eq!(h.values().unwrap().len(), 1);
    db.log().close().unwrap();
    thread::sleep(Duration::from_millis(100));
    let applies = seen.applies.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(seen.applies.load(Ordering::SeqCst), applies);
    assert_eq!(h.values().unwrap().len(), 1);
    assert!(matches!(db.append(&json!(2)), Err(Error::Closed)));
    // Closing the database reports that its log was already closed.
    assert!(matches!(db.close(), Err(Error::Closed)));
}

#[test]
fn rebuild_on_a_closed_log_returns_closed() {
    let db = db();
    db.add_view("rec", Recorder::new().0).unwrap();
    db.append(&json!(1)).unwrap();
    db.log().close().unwrap();
    // A rebuild cannot finish without a log: it says so instead of waiting for ever.
    assert!(matches!(db.rebuild(), Err(Error::Closed)));
}

#[test]
fn huge_timeouts_mean_no_limit() {
    let db = FlumeOptions::new()
        .read_timeout(Some(Duration::MAX))
        .open(MemoryLog::new(), Json)
        .unwrap();
    let (view, _) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    db.append(&json!(1)).unwrap();
    assert_eq!(h.values().unwrap(), vec![json!(1)]);
    db.close().unwrap();
}

#[test]
fn a_panicking_mapper_is_an_error_for_get_and_stream() {
    let db = FlumeOptions::new()
        .mapper(|v: Value| {
            if v == json!("bad") {
                panic!("mapper bug");
            }
            Ok(v)
        })
        .open(MemoryLog::new(), Json)
        .unwrap();
    let (view, _) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    let bad = db.append(&json!("bad")).unwrap();
    assert!(matches!(db.get(bad), Err(Error::Mapper { .. })));
    let first = db.stream(StreamOptions::new()).unwrap().next().unwrap();
    assert!(matches!(first, Err(Error::Mapper { .. })));
    assert!(matches!(h.values(), Err(Error::ViewFailed { .. })));
}

#[test]
fn view_names_that_are_not_plain_file_names_are_rejected() {
    let db = db();
    for name in ["", "../up", "a/b", "a\\b", ".hidden", "nul\0", "c:d"] {
        assert!(
            matches!(
                db.add_view(name, Recorder::new().0),
                Err(Error::InvalidArgument(_))
            ),
            "{name:?} was accepted"
        );
    }
    db.add_view("posts-by_author.v2", Recorder::new().0)
        .unwrap();
}

/// A memory log that notes its flushes in the view's call list.
struct Noting {
    log: MemoryLog,
    seen: Arc<Seen>,
}

impl Log for Noting {
    fn append(&self, data: &[u8]) -> flumedb_core::Result<Seq> {
        self.log.append(data)
    }
    fn append_batch(&self, records: &[&[u8]]) -> flumedb_core::Result<Vec<Seq>> {
        self.log.append_batch(records)
    }
    fn get(&self, seq: Seq) -> flumedb_core::Result<Vec<u8>> {
        self.log.get(seq)
    }
    fn since_watch(&self) -> &flumedb_core::SinceWatch {
        self.log.since_watch()
    }
    fn range(
        &self,
        lower: std::ops::Bound<Seq>,
        upper: std::ops::Bound<Seq>,
        reverse: bool,
    ) -> flumedb_core::Result<flumedb_core::LogIter<'_>> {
        self.log.range(lower, upper, reverse)
    }
    fn flush(&self) -> flumedb_core::Result<()> {
        self.seen.calls.lock().push("log flush");
        self.log.flush()
    }
    fn close(&self) -> flumedb_core::Result<()> {
        self.log.close()
    }
}

#[test]
fn the_log_is_made_durable_before_a_view_persists_its_since() {
    let (view, seen) = Recorder::new();
    let log = Noting {
        log: MemoryLog::new(),
        seen: seen.clone(),
    };
    let db = FlumeOptions::new().batch_size(10).open(log, Json).unwrap();
    let h = db.add_view("rec", view).unwrap();
    for i in 0..50 {
        db.append(&json!(i)).unwrap();
    }
    assert_eq!(h.values().unwrap().len(), 50);
    db.close().unwrap();
    let calls = seen.calls.lock().clone();
    let mut log_durable = true;
    let mut flushes = 0;
    for call in calls {
        match call {
            "apply" => log_durable = false,
            "log flush" => log_durable = true,
            "flush" => {
                assert!(
                    log_durable,
                    "a view flushed before the log was made durable"
                );
                flushes += 1;
            }
            _ => {}
        }
    }
    assert!(flushes >= 1);
}

#[test]
fn views_are_given_the_checkpoint_of_the_last_record_they_passed() {
    let db = db();
    let (view, seen) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    db.append(&json!({"a": 1})).unwrap();
    let last = db.append(&json!({"b": 2})).unwrap();
    h.values().unwrap();
    let given = seen.checkpoint.lock().expect("applied");
    assert_eq!(given, Checkpoint::of(last, br#"{"b":2}"#));
}

#[test]
fn a_view_whose_checkpoint_record_is_not_in_the_log_is_rebuilt() {
    // The log lost its tail (seqs 2..) while this view was not attached, and was appended to
    // again: seq 2 exists, but holds another record than the one the view processed.
    let db = db_on(&[json!("a"), json!("b"), json!("c (new)"), json!("d (new)")]);
    let (mut view, seen) = Recorder::new();
    view.stored = Some(Stored {
        version: 1,
        checkpoint: Checkpoint::of(Seq::new(2), br#""c (lost)""#),
    });
    let h = db.add_view("stale", view).unwrap();
    assert_eq!(seen.resets.load(Ordering::SeqCst), 1, "must be reset");
    assert_eq!(h.values().unwrap().len(), 4);

    // The same checkpoint with the right fingerprint resumes where it was.
    let (mut view, seen) = Recorder::new();
    view.stored = Some(Stored {
        version: 1,
        checkpoint: Checkpoint::of(Seq::new(2), br#""c (new)""#),
    });
    let h = db.add_view("current", view).unwrap();
    assert_eq!(seen.resets.load(Ordering::SeqCst), 0);
    assert_eq!(h.values().unwrap(), vec![json!("d (new)")]);
}

/// `depth` nested arrays around 1.
fn nested(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

#[test]
fn appends_refuse_values_whose_encoding_would_not_decode() {
    let db = db();
    db.append(&json!("first")).unwrap();
    let err = db.append(&nested(200)).unwrap_err();
    assert!(matches!(err, Error::Codec(_)), "{err:?}");
    assert!(
        err.to_string().contains("refused, nothing written"),
        "{err}"
    );
    let err = db.append_batch(&[json!("ok"), nested(200)]).unwrap_err();
    assert!(matches!(err, Error::Codec(_)), "{err:?}");
    assert_eq!(db.since(), Since::At(Seq::new(0)), "nothing was written");
    // Just under the decoder's limit is fine.
    db.append(&nested(100)).unwrap();

    // A typed value whose NaN JSON stores as null, which f64 does not decode from.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Reading {
        celsius: f64,
    }
    let typed: Flume<MemoryLog, Reading> = Flume::open(MemoryLog::new(), Json).unwrap();
    typed.append(&Reading { celsius: 21.5 }).unwrap();
    let err = typed.append(&Reading { celsius: f64::NAN }).unwrap_err();
    assert!(matches!(err, Error::Codec(_)), "{err:?}");
    assert_eq!(typed.since(), Since::At(Seq::new(0)));
}

#[test]
fn undecodable_records_fail_views_by_default_and_can_be_skipped() {
    // A log written by another program holds a record the codec cannot decode.
    let log = MemoryLog::new();
    log.append_batch(&[b"1", b"{not json", b"3"]).unwrap();
    let db: Flume<MemoryLog, Value> = Flume::open(log, Json).unwrap();
    let (view, _) = Recorder::new();
    let h = db.add_view("strict", view).unwrap();
    match h.values() {
        Err(err @ Error::ViewFailed { .. }) => {
            assert!(matches!(err, Error::ViewFailed { seq: Some(s), .. } if s == Seq::new(1)));
            assert!(err.to_string().contains("Undecodable::Skip"), "{err}");
        }
        other => panic!("expected ViewFailed at seq 1, got {other:?}"),
    }
    drop(db);

    let log = MemoryLog::new();
    log.append_batch(&[b"1", b"{not json", b"3"]).unwrap();
    let db: Flume<MemoryLog, Value> = FlumeOptions::new()
        .undecodable(flumedb_core::Undecodable::Skip)
        .batch_size(1)
        .open(log, Json)
        .unwrap();
    let (view, _) = Recorder::new();
    let h = db.add_view("lenient", view).unwrap();
    assert_eq!(h.values().unwrap(), vec![json!(1), json!(3)]);
    db.rebuild().unwrap();
    assert_eq!(h.values().unwrap(), vec![json!(1), json!(3)]);
    let (count, skipped) = db.skipped();
    assert_eq!(count, 1, "met twice, reported once");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].seq, Seq::new(1));
    assert!(matches!(*skipped[0].error, Error::Codec(_)));
    // get still says what is wrong with it.
    assert!(matches!(db.get(Seq::new(1)), Err(Error::Codec(_))));
}

#[test]
fn a_view_whose_open_panics_is_an_error_and_its_name_is_released() {
    struct PanicsOnOpen;
    impl View<Value> for PanicsOnOpen {
        type Handle = ();
        type Error = Boom;
        fn version(&self) -> u32 {
            1
        }
        fn open(&mut self, _: &ViewContext) -> Result<Option<Stored>, Boom> {
            panic!("storage engine assertion");
        }
        fn handle(&self, _: ViewSync, _: flumedb_core::LogReader<Value>) {}
        fn apply(&mut self, _: &[Record<Value>], _: Checkpoint) -> Result<(), Boom> {
            Ok(())
        }
        fn flush(&mut self) -> Result<(), Boom> {
            Ok(())
        }
        fn reset(&mut self) -> Result<(), Boom> {
            Ok(())
        }
        fn close(&mut self) -> Result<(), Boom> {
            Ok(())
        }
    }
    let db = db();
    let err = db.add_view("idx", PanicsOnOpen).unwrap_err();
    assert!(err.to_string().contains("panicked while opening"), "{err}");
    let (view, _) = Recorder::new();
    db.add_view("idx", view).expect("the name is free again");
}

#[test]
fn appends_refuse_values_that_would_read_back_as_other_values() {
    use serde::{Deserialize, Serialize};
    // Infinity in an optional float: JSON writes null, which reads back as None.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Opt {
        x: Option<f64>,
    }
    let db: Flume<MemoryLog, Opt> = Flume::open(MemoryLog::new(), Json).unwrap();
    db.append(&Opt { x: Some(1.5) }).unwrap();
    db.append(&Opt { x: None }).unwrap();
    let err = db
        .append(&Opt {
            x: Some(f64::INFINITY),
        })
        .unwrap_err();
    assert!(matches!(err, Error::Codec(_)), "{err:?}");
    assert_eq!(db.since(), Since::At(Seq::new(1)));

    // An untagged enum whose variants read back as the first that fits.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    #[serde(untagged)]
    enum Num {
        F(f64),
        U(u64),
    }
    let db: Flume<MemoryLog, Num> = Flume::open(MemoryLog::new(), Json).unwrap();
    db.append(&Num::F(5.5)).unwrap();
    assert!(matches!(db.append(&Num::U(5)), Err(Error::Codec(_))));

    // Postcard with a skipped field: the next field's bytes are read in its place.
    fn is_zero(n: &u8) -> bool {
        *n == 0
    }
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Skips {
        #[serde(skip_serializing_if = "is_zero", default)]
        a: u8,
        b: Vec<u8>,
    }
    let db: Flume<MemoryLog, Skips, flumedb_core::Postcard> =
        Flume::open(MemoryLog::new(), flumedb_core::Postcard).unwrap();
    db.append(&Skips { a: 1, b: vec![2] }).unwrap();
    let err = db
        .append(&Skips {
            a: 0,
            b: vec![1, 7],
        })
        .unwrap_err();
    assert!(matches!(err, Error::Codec(_)), "{err:?}");
}

#[test]
fn floats_read_back_exactly() {
    let db = db();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = f64::from_bits(x);
        if !f.is_finite() {
            continue;
        }
        let seq = db.append(&json!({ "x": f })).unwrap();
        assert_eq!(db.get(seq).unwrap()["x"].as_f64(), Some(f), "{f:e}");
    }
}

/// A view that counts records and persists the count with its checkpoint in
/// `<its dir>/<name>.json`, and reports the directory it was given.
struct Tally {
    file: Option<std::path::PathBuf>,
    count: Arc<AtomicUsize>,
    applied: Arc<AtomicUsize>,
    checkpoint: Checkpoint,
    given_dir: Arc<Mutex<Option<Option<std::path::PathBuf>>>>,
    given_budget: Arc<Mutex<Option<u64>>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TallyState {
    count: usize,
    checkpoint: Checkpoint,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            file: None,
            count: Arc::default(),
            applied: Arc::default(),
            checkpoint: Checkpoint::EMPTY,
            given_dir: Arc::default(),
            given_budget: Arc::default(),
        }
    }
}

impl View<Value> for Tally {
    type Handle = (Arc<AtomicUsize>, ViewSync);
    type Error = std::io::Error;

    fn version(&self) -> u32 {
        1
    }
    fn open(&mut self, ctx: &ViewContext) -> Result<Option<Stored>, std::io::Error> {
        *self.given_dir.lock() = Some(ctx.dir().map(|dir| dir.to_path_buf()));
        *self.given_budget.lock() = Some(ctx.memory_budget());
        self.file = ctx
            .dir()
            .map(|dir| dir.join(format!("{}.json", ctx.name())));
        let Some(file) = &self.file else {
            return Ok(None);
        };
        match std::fs::read(file) {
            Ok(bytes) => {
                let state: TallyState = serde_json::from_slice(&bytes)?;
                self.count.store(state.count, Ordering::SeqCst);
                self.checkpoint = state.checkpoint;
                Ok(Some(Stored {
                    version: 1,
                    checkpoint: state.checkpoint,
                }))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }
    fn handle(&self, sync: ViewSync, _: flumedb_core::LogReader<Value>) -> Self::Handle {
        (self.count.clone(), sync)
    }
    fn apply(&mut self, records: &[Record<Value>], cp: Checkpoint) -> Result<(), std::io::Error> {
        self.count.fetch_add(records.len(), Ordering::SeqCst);
        self.applied.fetch_add(records.len(), Ordering::SeqCst);
        self.checkpoint = cp;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), std::io::Error> {
        if let Some(file) = &self.file {
            let state = TallyState {
                count: self.count.load(Ordering::SeqCst),
                checkpoint: self.checkpoint,
            };
            std::fs::write(file, serde_json::to_vec(&state)?)?;
        }
        Ok(())
    }
    fn reset(&mut self) -> Result<(), std::io::Error> {
        self.count.store(0, Ordering::SeqCst);
        self.checkpoint = Checkpoint::EMPTY;
        if let Some(file) = &self.file {
            let _ = std::fs::remove_file(file);
        }
        Ok(())
    }
    fn close(&mut self) -> Result<(), std::io::Error> {
        Ok(())
    }
}

fn tally(handle: &(Arc<AtomicUsize>, ViewSync)) -> usize {
    handle.1.wait(Wait::Latest).unwrap();
    handle.0.load(Ordering::SeqCst)
}

#[test]
fn views_get_the_view_dir_option_else_the_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let views = tmp.path().join("not/yet/there");

    // A log without a directory: views get the option's directory, created for them.
    let view = Tally::new();
    let given = view.given_dir.clone();
    let detached: Flume<MemoryLog, Value> = FlumeOptions::new()
        .view_dir(&views)
        .open(MemoryLog::new(), Json)
        .unwrap();
    assert_eq!(detached.view_dir(), Some(views.as_path()));
    detached.add_view("tally", view).unwrap();
    assert_eq!(*given.lock(), Some(Some(views.clone())));
    assert!(views.is_dir());
    detached.close().unwrap();

    // Without the option: the log's own, none for a log in memory.
    let view = Tally::new();
    let given = view.given_dir.clone();
    let db = db();
    assert_eq!(db.view_dir(), None);
    db.add_view("tally", view).unwrap();
    assert_eq!(*given.lock(), Some(None));
    db.close().unwrap();

    let log = MemoryLog::open(tmp.path().join("log")).unwrap();
    let own = log.view_dir().unwrap();
    let view = Tally::new();
    let given = view.given_dir.clone();
    let db = Flume::open(log, Json).unwrap();
    assert_eq!(db.view_dir(), Some(own.as_path()));
    db.add_view("tally", view).unwrap();
    assert_eq!(*given.lock(), Some(Some(own)));
    db.close().unwrap();
}

#[test]
fn views_get_the_memory_budget_option_else_the_default() {
    let view = Tally::new();
    let given = view.given_budget.clone();
    let db = db();
    db.add_view("tally", view).unwrap();
    assert_eq!(*given.lock(), Some(flumedb_core::DEFAULT_MEMORY_BUDGET));
    db.close().unwrap();

    let view = Tally::new();
    let given = view.given_budget.clone();
    let db: Flume<MemoryLog, Value> = FlumeOptions::new()
        .memory_budget(3 << 20)
        .open(MemoryLog::new(), Json)
        .unwrap();
    db.add_view("tally", view).unwrap();
    assert_eq!(*given.lock(), Some(3 << 20));
    db.close().unwrap();
}

#[test]
fn a_view_in_the_view_dir_option_persists_across_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let log_dir = tmp.path().join("log");
    let views = tmp.path().join("views");
    let open = || {
        FlumeOptions::new()
            .view_dir(&views)
            .open(MemoryLog::open(&log_dir).unwrap(), Json)
            .unwrap()
    };

    let db: Flume<MemoryLog, Value> = open();
    for i in 0..3 {
        db.append(&json!({ "i": i })).unwrap();
    }
    let h = db.add_view("tally", Tally::new()).unwrap();
    assert_eq!(tally(&h), 3);
    let log_view_dir = db.log().view_dir().unwrap();
    db.close().unwrap();
    assert!(views.join("tally.json").is_file());
    assert!(
        !log_view_dir.exists(),
        "the log's own view directory was used"
    );

    // Reopened: the view resumes from its stored state and is fed only the new record.
    let db: Flume<MemoryLog, Value> = open();
    db.append(&json!({ "i": 3 })).unwrap();
    let view = Tally::new();
    let applied = view.applied.clone();
    let h = db.add_view("tally", view).unwrap();
    assert_eq!(tally(&h), 4);
    assert_eq!(
        applied.load(Ordering::SeqCst),
        1,
        "rebuilt instead of resumed"
    );
    db.close().unwrap();
}

/// A memory log whose `range` panics once `armed`.
struct PanickyLog {
    inner: MemoryLog,
    armed: std::sync::atomic::AtomicBool,
}

impl Log for PanickyLog {
    fn append(&self, data: &[u8]) -> flumedb_core::Result<Seq> {
        self.inner.append(data)
    }
    fn append_batch(&self, records: &[&[u8]]) -> flumedb_core::Result<Vec<Seq>> {
        self.inner.append_batch(records)
    }
    fn get(&self, seq: Seq) -> flumedb_core::Result<Vec<u8>> {
        self.inner.get(seq)
    }
    fn since_watch(&self) -> &flumedb_core::SinceWatch {
        self.inner.since_watch()
    }
    fn range(
        &self,
        lower: std::ops::Bound<Seq>,
        upper: std::ops::Bound<Seq>,
        reverse: bool,
    ) -> flumedb_core::Result<flumedb_core::LogIter<'_>> {
        if self.armed.load(Ordering::SeqCst) {
            panic!("log bug");
        }
        self.inner.range(lower, upper, reverse)
    }
    fn flush(&self) -> flumedb_core::Result<()> {
        self.inner.flush()
    }
    fn close(&self) -> flumedb_core::Result<()> {
        self.inner.close()
    }
}

#[test]
fn a_log_that_panics_while_feeding_fails_the_views_with_a_typed_error() {
    let log = PanickyLog {
        inner: MemoryLog::new(),
        armed: std::sync::atomic::AtomicBool::new(false),
    };
    let db: Flume<PanickyLog, Value> = Flume::open(log, Json).unwrap();
    let (view, _) = Recorder::new();
    let h = db.add_view("rec", view).unwrap();
    db.append(&json!(1)).unwrap();
    assert_eq!(h.values().unwrap(), vec![json!(1)]);
    db.log().armed.store(true, Ordering::SeqCst);
    db.append(&json!(2)).unwrap();
    let err = h.values().unwrap_err();
    let Error::ViewFailed { cause, .. } = &err else {
        panic!("expected ViewFailed, got {err:?}");
    };
    assert!(
        matches!(&**cause, Error::Panicked { what, message }
            if what.contains("log") && message == "log bug"),
        "{cause:?}"
    );
    assert!(err.to_string().contains("panicked: log bug"), "{err}");
}

#[test]
fn sync_waits_until_every_view_has_everything_and_reports_failures_and_timeouts() {
    let db = FlumeOptions::new()
        .batch_size(1)
        .read_timeout(Some(Duration::from_secs(30)))
        .open(MemoryLog::new(), Json)
        .unwrap();
    assert_eq!(
        db.sync().unwrap(),
        Since::Empty,
        "no views, nothing appended"
    );
    let (a, a_seen) = Recorder::new();
    let (b, b_seen) = Recorder::new();
    db.add_view("a", a).unwrap();
    db.add_view("b", b).unwrap();
    let mut last = None;
    for i in 0..200 {
        last = Some(db.append(&json!({"i": i})).unwrap());
    }
    // Right after sync, both views hold every record, without any read on them.
    assert_eq!(db.sync().unwrap(), Since::At(last.unwrap()));
    assert_eq!(a_seen.records.lock().len(), 200);
    assert_eq!(b_seen.records.lock().len(), 200);

    // A failed view is the error.
    let (bad, _) = Recorder::fragile();
    db.add_view("bad", bad).unwrap();
    db.append(&json!({"fail": true})).unwrap();
    assert!(
        matches!(db.sync(), Err(Error::ViewFailed { ref view, .. }) if view == "bad"),
        "{:?}",
        db.sync()
    );
    db.close().unwrap();
    assert!(matches!(db.sync(), Err(Error::Closed)));

    // A view that cannot catch up in time is a timeout naming it.
    struct Stuck;
    impl View<Value> for Stuck {
        type Handle = ();
        type Error = Boom;
        fn version(&self) -> u32 {
            1
        }
        fn open(&mut self, _: &ViewContext) -> Result<Option<Stored>, Boom> {
            Ok(None)
        }
        fn handle(&self, _: ViewSync, _: flumedb_core::LogReader<Value>) {}
        fn apply(&mut self, _: &[Record<Value>], _: Checkpoint) -> Result<(), Boom> {
            thread::sleep(Duration::from_millis(400));
            Ok(())
        }
        fn flush(&mut self) -> Result<(), Boom> {
            Ok(())
        }
        fn reset(&mut self) -> Result<(), Boom> {
            Ok(())
        }
        fn close(&mut self) -> Result<(), Boom> {
            Ok(())
        }
    }
    let db = FlumeOptions::new()
        .read_timeout(Some(Duration::from_millis(50)))
        .open(MemoryLog::new(), Json)
        .unwrap();
    db.add_view("stuck", Stuck).unwrap();
    db.append(&json!(1)).unwrap();
    match db.sync() {
        Err(Error::Timeout { view, .. }) => assert_eq!(view, "stuck"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    db.close().unwrap();
}
