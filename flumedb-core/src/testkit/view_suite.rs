//! The conformance suite every [`View`] implementation runs.

use std::path::Path;
use std::time::Duration;

use crate::{
    Checkpoint, Codec, Error, Flume, FlumeOptions, Json, Log, Result, Since, View, ViewContext,
};

/// Opens a log in a directory.
pub type OpenLog<L> = Box<dyn Fn(&Path) -> Result<L>>;

/// Reads a view's whole observable state through its handle.
pub type Snapshot<H, S> = Box<dyn Fn(&H) -> Result<S>>;

/// What [`view_suite`] needs to exercise a view.
pub struct ViewSuite<L, V: View<T>, T, S> {
    /// Opens the log in a directory (a persisted log also checks view persistence).
    pub open_log: OpenLog<L>,
    /// Makes the view under test, with the given version.
    pub make_view: Box<dyn Fn(u32) -> V>,
    /// The `i`th record to append.
    pub record: Box<dyn Fn(u64) -> T>,
    /// Reads the view's whole observable state through its handle (waiting as reads do).
    pub snapshot: Snapshot<V::Handle, S>,
}

/// Runs the view checks: reads see every append at once (read-your-writes), a rebuild and a
/// view added late build the same state as one fed live, state survives close and reopen
/// (for a persisted log), a version bump rebuilds, and `reset` leaves nothing stored.
pub fn view_suite<L, V, T, S>(suite: ViewSuite<L, V, T, S>)
where
    L: Log,
    V: View<T>,
    T: Send + Sync + 'static,
    Json: Codec<T>,
    S: PartialEq + std::fmt::Debug,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let open_db = || -> Flume<L, T, Json> {
        let log = (suite.open_log)(dir.path()).expect("open log");
        FlumeOptions::new()
            .read_timeout(Some(Duration::from_secs(30)))
            .batch_size(7)
            .open(log, Json)
            .expect("open db")
    };
    let snap = |h: &V::Handle| (suite.snapshot)(h).expect("snapshot");

    // Fed live, read after every append.
    let db = open_db();
    let live = db.add_view("v", (suite.make_view)(1)).expect("add view");
    let empty = snap(&live);
    let mut i = 0;
    while i < 60 {
        if i % 3 == 0 {
            let batch: Vec<T> = (i..i + 4).map(|j| (suite.record)(j)).collect();
            db.append_batch(&batch).expect("append_batch");
            i += 4;
        } else {
            db.append(&(suite.record)(i)).expect("append");
            i += 1;
        }
        // Read-your-writes: a read right after an append must already include it. Compare
        // with a read made once the view is known (from the driver) to be current.
        let right_after = snap(&live);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while db.progress()[0].since < db.since() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            right_after,
            snap(&live),
            "a read right after an append did not include it: the handle must wait"
        );
    }
    let full = snap(&live);
    assert_ne!(
        full, empty,
        "the view's state should change when records arrive"
    );

    // Rebuild gives the same state.
    db.rebuild().expect("rebuild");
    assert_eq!(
        snap(&live),
        full,
        "state after rebuild() differs from state fed live"
    );

    // A view added after the data builds the same state.
    let late = db
        .add_view("late", (suite.make_view)(1))
        .expect("add late view");
    assert_eq!(
        snap(&late),
        full,
        "a view added late differs from one fed live"
    );
    let log_since = db.since();
    let last_checkpoint = match log_since {
        Since::At(seq) => Checkpoint::of(seq, &db.log().get(seq).expect("get the last record")),
        Since::Empty => Checkpoint::EMPTY,
    };
    db.close().expect("close");
    assert!(matches!((suite.snapshot)(&live), Err(Error::Closed)));
    drop(db);

    let view_dir = (suite.open_log)(dir.path()).expect("open log").view_dir();
    let ctx = ViewContext::new("v", view_dir.clone());
    if view_dir.is_some() {
        // Closing flushed: the stored checkpoint is the log's last record, as the driver gave it.
        let mut view = (suite.make_view)(1);
        let stored = view.open(&ctx).expect("open view").expect("stored state");
        // What the driver compares: the version the view reports (a view may derive it from
        // more than the number it was given, e.g. its index declarations).
        assert_eq!(
            stored.version,
            view.version(),
            "the view's version is stored"
        );
        assert_eq!(
            stored.checkpoint, last_checkpoint,
            "close must flush the view up to the log, with the checkpoint it was given"
        );
        // The view stores the checkpoint as given, fingerprint included, and nothing else
        // decides it: the driver compares it with the log at open.
        let odd = Checkpoint {
            since: last_checkpoint.since,
            fingerprint: last_checkpoint.fingerprint ^ 0x5a5a,
        };
        view.apply(&[], odd).expect("apply a checkpoint alone");
        view.flush().expect("flush with another checkpoint");
        view.close().expect("close view");
        let mut view = (suite.make_view)(1);
        let stored = view.open(&ctx).expect("open view").expect("stored state");
        assert_eq!(
            stored.checkpoint, odd,
            "open must return the flushed checkpoint"
        );
        view.apply(&[], last_checkpoint)
            .expect("apply a checkpoint alone");
        view.flush().expect("flush");
        view.close().expect("close view");

        // Reopen: the state is back, and new appends are seen.
        let db = open_db();
        let v = db.add_view("v", (suite.make_view)(1)).expect("add view");
        assert_eq!(snap(&v), full, "state differs after reopen");
        db.append(&(suite.record)(60)).expect("append");
        let more = snap(&v);
        db.rebuild().expect("rebuild");
        assert_eq!(snap(&v), more, "after reopen and append, a rebuild differs");
        db.close().expect("close");
        drop(db);

        // A version bump rebuilds the whole state.
        let db = open_db();
        let v = db.add_view("v", (suite.make_view)(2)).expect("add view v2");
        assert_eq!(
            snap(&v),
            more,
            "after a version bump the rebuilt state differs"
        );
        db.close().expect("close");
        drop(db);
        let mut view = (suite.make_view)(2);
        assert_ne!(
            view.version(),
            (suite.make_view)(1).version(),
            "a view made with another version must report another version"
        );
        let stored = view.open(&ctx).expect("open").expect("stored");
        assert_eq!(stored.version, view.version(), "the new version is stored");
        view.close().expect("close view");
    }

    // Reset leaves nothing stored.
    let mut view = (suite.make_view)(2);
    view.open(&ctx).expect("open view");
    view.reset().expect("reset");
    view.close().expect("close view");
    let mut view = (suite.make_view)(2);
    let stored = view.open(&ctx).expect("open view");
    assert!(
        stored.is_none() || stored.is_some_and(|s| s.checkpoint == Checkpoint::EMPTY),
        "after reset a view must report nothing stored, got {stored:?}"
    );
    view.close().expect("close view");
}
