//! Stress: a database on an offset log with a reduce view, hammered by 8 appenders and 8
//! readers (gets, view reads with `Wait::Latest` and `Wait::For`, live streams of the log and
//! of the view) while views are rebuilt, then closed at a random time.
//!
//! Checked: no panic; no deadlock (view reads time out after `READ_TIMEOUT`, and every thread
//! must end within `CLOSE_DEADLINE` of the close, or the test fails naming it); a view read
//! includes every record whose append returned before the read began; a live stream yields
//! each record once, in order, without gaps; close ends every reader with `Error::Closed`;
//! after reopening, every acknowledged append reads back.
//!
//! Short run in `cargo test` (three rounds, about 10 s); `FLUMEDB_SOAK=1` runs rounds until
//! a million appends (or `FLUMEDB_SOAK_APPENDS`). `FLUMEDB_STRESS_SEED` replays a seed's close times and picks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flumedb_core::{Error, Flume, FlumeOptions, Postcard, Seq, StreamOptions, Wait};
use flumelog_offset::OffsetLog;
use flumeview_reduce::{Reduce, ReduceHandle};

const APPENDERS: usize = 8;
const READERS: usize = 8;
/// The longest a view read may wait: a read stuck longer fails the test as a deadlock.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// How long every thread has to finish after `close` returns.
const CLOSE_DEADLINE: Duration = Duration::from_secs(20);

/// A record: (appender, its n-th append).
type Value = (u64, u64);
/// Per appender, how many of its records the view folded in order; the last slot counts
/// records that came out of order (a duplicate or a gap).
type State = Vec<u64>;
const BAD: usize = APPENDERS;

type Db = Flume<OffsetLog, Value, Postcard>;

struct Shared {
    db: Db,
    view: ReduceHandle<State>,
    /// Per appender: how many of its appends have returned.
    acked: Vec<AtomicU64>,
    /// Every acknowledged record, for gets and `Wait::For` reads.
    published: Mutex<Vec<(Seq, Value)>>,
    closing: AtomicBool,
    ops: Counters,
}

#[derive(Default)]
struct Counters {
    appends: AtomicU64,
    gets: AtomicU64,
    view_reads: AtomicU64,
    log_live: AtomicU64,
    view_live: AtomicU64,
    rebuilds: AtomicU64,
}

impl Counters {
    fn total(&self) -> u64 {
        [
            &self.appends,
            &self.gets,
            &self.view_reads,
            &self.log_live,
            &self.view_live,
            &self.rebuilds,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    fn describe(&self) -> String {
        format!(
            "appends {}, gets {}, view reads {}, live log items {}, live view states {}, rebuilds {}",
            self.appends.load(Ordering::Relaxed),
            self.gets.load(Ordering::Relaxed),
            self.view_reads.load(Ordering::Relaxed),
            self.log_live.load(Ordering::Relaxed),
            self.view_live.load(Ordering::Relaxed),
            self.rebuilds.load(Ordering::Relaxed),
        )
    }
}

/// xorshift64*: reproducible picks from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// The end of a thread's work: `Closed` is the only acceptable error once the close began.
fn closed_or_fail(shared: &Shared, what: &str, err: Error) {
    assert!(
        matches!(err, Error::Closed),
        "{what}: {err} (closing: {})",
        shared.closing.load(Ordering::SeqCst)
    );
    assert!(
        shared.closing.load(Ordering::SeqCst),
        "{what}: Closed before the close began"
    );
}

/// Every record acknowledged before `acked` was sampled is in `state`, and none out of order.
fn check_includes(what: &str, state: &State, acked: &[u64]) {
    assert_eq!(
        state[BAD], 0,
        "{what}: view folded records out of order: {state:?}"
    );
    for (a, &n) in acked.iter().enumerate() {
        assert!(
            state[a] >= n,
            "{what}: appender {a} had {n} appends acknowledged before the read, view has {}: {state:?}",
            state[a]
        );
    }
}

fn appender(shared: &Shared, a: usize, mut rng: Rng) {
    let mut i = 0u64;
    loop {
        match shared.db.append(&(a as u64, i)) {
            Ok(seq) => {
                shared.published.lock().unwrap().push((seq, (a as u64, i)));
                i += 1;
                shared.acked[a].store(i, Ordering::SeqCst);
                shared.ops.appends.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => return closed_or_fail(shared, "append", err),
        }
        // Now and then read our own write back through the view.
        if rng.below(16) == 0 {
            match shared.view.get() {
                Ok(state) => {
                    assert!(
                        state[a] >= i,
                        "read-your-writes: appended {i}, view has {state:?}"
                    );
                    shared.ops.view_reads.fetch_add(1, Ordering::Relaxed);
                }
                Err(err) => return closed_or_fail(shared, "view read after append", err),
            }
        }
    }
}

fn pick(shared: &Shared, rng: &mut Rng) -> Option<(Seq, Value)> {
    let published = shared.published.lock().unwrap();
    let n = published.len() as u64;
    // Half the time among the newest, where appends and reads meet.
    let back = if rng.below(2) == 0 {
        rng.below(n.min(64))
    } else {
        rng.below(n)
    };
    n.checked_sub(1 + back)
        .and_then(|i| published.get(i as usize).copied())
}

/// Gets and view reads (`Wait::Latest` and `Wait::For`).
fn point_reader(shared: &Shared, mut rng: Rng) {
    loop {
        match rng.below(3) {
            0 => {
                let Some((seq, value)) = pick(shared, &mut rng) else {
                    if shared.closing.load(Ordering::SeqCst) {
                        // Nothing was ever appended; still prove reads end with Closed.
                        match shared.view.get() {
                            Err(err) => return closed_or_fail(shared, "view read", err),
                            Ok(_) => continue,
                        }
                    }
                    std::thread::yield_now();
                    continue;
                };
                match shared.db.get(seq) {
                    Ok(got) => {
                        assert_eq!(got, value, "get({seq:?})");
                        shared.ops.gets.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => return closed_or_fail(shared, "get", err),
                }
            }
            1 => {
                let acked: Vec<u64> = shared
                    .acked
                    .iter()
                    .map(|n| n.load(Ordering::SeqCst))
                    .collect();
                match shared.view.get() {
                    Ok(state) => {
                        check_includes("view read (Wait::Latest)", &state, &acked);
                        shared.ops.view_reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => return closed_or_fail(shared, "view read", err),
                }
            }
            _ => {
                let Some((seq, (a, i))) = pick(shared, &mut rng) else {
                    std::thread::yield_now();
                    if shared.closing.load(Ordering::SeqCst) {
                        match shared.view.get() {
                            Err(err) => return closed_or_fail(shared, "view read", err),
                            Ok(_) => continue,
                        }
                    }
                    continue;
                };
                match shared.view.get_with(Wait::For(seq)) {
                    Ok(state) => {
                        assert!(
                            state[a as usize] > i,
                            "view read (Wait::For({seq:?})) misses ({a}, {i}): {state:?}"
                        );
                        shared.ops.view_reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => return closed_or_fail(shared, "view read (Wait::For)", err),
                }
            }
        }
    }
}

/// A live stream of the log from the start: each record once, in seq order, each appender's
/// records without gaps; ends with `Closed`.
fn log_follower(shared: &Shared) {
    let stream = match shared.db.stream(StreamOptions::new().live()) {
        Ok(stream) => stream,
        Err(err) => return closed_or_fail(shared, "stream", err),
    };
    let mut last: Option<Seq> = None;
    let mut next = [0u64; APPENDERS];
    for item in stream {
        match item {
            Ok(record) => {
                assert!(
                    last.is_none_or(|last| record.seq > last),
                    "live log stream: {:?} after {last:?}",
                    record.seq
                );
                last = Some(record.seq);
                let (a, i) = record.value;
                assert_eq!(
                    i, next[a as usize],
                    "live log stream: appender {a}'s record {i} at {:?}, expected {}",
                    record.seq, next[a as usize]
                );
                next[a as usize] += 1;
                shared.ops.log_live.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => return closed_or_fail(shared, "live log stream", err),
        }
    }
    panic!("live log stream ended without an error");
}

/// A live stream of the view's states: never goes back, never holds a record out of order;
/// ends with `Closed`.
fn view_follower(shared: &Shared) {
    let mut last: Option<State> = None;
    for item in shared.view.stream() {
        match item {
            Ok(state) => {
                assert_eq!(state[BAD], 0, "live view stream: out of order: {state:?}");
                if let Some(last) = &last {
                    assert!(
                        state
                            .iter()
                            .zip(last)
                            .take(APPENDERS)
                            .all(|(now, was)| now >= was),
                        "live view stream went back: {last:?} then {state:?}"
                    );
                }
                last = Some(state);
                shared.ops.view_live.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => return closed_or_fail(shared, "live view stream", err),
        }
    }
    panic!("live view stream ended without an error");
}

fn rebuilder(shared: &Shared, mut rng: Rng) {
    loop {
        std::thread::sleep(Duration::from_millis(5 + rng.below(40)));
        match shared.db.rebuild() {
            Ok(()) => {
                shared.ops.rebuilds.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => return closed_or_fail(shared, "rebuild", err),
        }
    }
}

/// One round: open, hammer, close at a random time within `run`, check everything ends.
/// Returns the operations and the appends done.
fn round(seed: u64, run: Duration) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let log = OffsetLog::options()
        .open(dir.path().join("log.offset"))
        .unwrap();
    let db: Db = FlumeOptions::new()
        .read_timeout(Some(READ_TIMEOUT))
        .batch_size(64)
        .open(log, Postcard)
        .unwrap();
    let fold = |state: &mut State, &(a, i): &Value| {
        if state[a as usize] == i {
            state[a as usize] += 1;
        } else {
            state[BAD] += 1;
        }
    };
    let view = db
        .add_view("order", Reduce::new(1, vec![0u64; APPENDERS + 1], fold))
        .unwrap();
    let shared = Arc::new(Shared {
        db,
        view,
        acked: (0..APPENDERS).map(|_| AtomicU64::new(0)).collect(),
        published: Mutex::new(Vec::new()),
        closing: AtomicBool::new(false),
        ops: Counters::default(),
    });
    let mut rng = Rng(seed | 1);
    let mut threads: Vec<(String, JoinHandle<()>)> = Vec::new();
    let mut spawn = |name: String, f: Box<dyn FnOnce(&Shared) + Send>| {
        let shared = shared.clone();
        threads.push((name, std::thread::spawn(move || f(&shared))));
    };
    for a in 0..APPENDERS {
        let thread_rng = Rng(rng.next() | 1);
        spawn(
            format!("appender {a}"),
            Box::new(move |s| appender(s, a, thread_rng)),
        );
    }
    for r in 0..READERS {
        let thread_rng = Rng(rng.next() | 1);
        match r % 4 {
            0 | 1 => spawn(
                format!("reader {r} (point)"),
                Box::new(move |s| point_reader(s, thread_rng)),
            ),
            2 => spawn(format!("reader {r} (live log)"), Box::new(log_follower)),
            _ => spawn(format!("reader {r} (live view)"), Box::new(view_follower)),
        }
    }
    let thread_rng = Rng(rng.next() | 1);
    spawn(
        "rebuilder".into(),
        Box::new(move |s| rebuilder(s, thread_rng)),
    );

    let start = Instant::now();
    let half = run.as_millis() as u64 / 2;
    std::thread::sleep(Duration::from_millis(half + rng.below(half.max(1))));
    shared.closing.store(true, Ordering::SeqCst);
    shared.db.close().unwrap();
    let closed = Instant::now();
    loop {
        let stuck: Vec<&str> = threads
            .iter()
            .filter(|(_, t)| !t.is_finished())
            .map(|(name, _)| name.as_str())
            .collect();
        if stuck.is_empty() {
            break;
        }
        assert!(
            closed.elapsed() < CLOSE_DEADLINE,
            "seed {seed}: deadlock: {stuck:?} still running {CLOSE_DEADLINE:?} after close ({})",
            shared.ops.describe()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut failures = Vec::new();
    for (name, thread) in threads {
        if let Err(panic) = thread.join() {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{name}: {message}"));
        }
    }
    assert!(failures.is_empty(), "seed {seed}: {failures:#?}");
    // Every acknowledged append survives the close: reopen and read each one back.
    let published = std::mem::take(&mut *shared.published.lock().unwrap());
    let reopened: Db = FlumeOptions::new()
        .open(
            OffsetLog::options()
                .open(dir.path().join("log.offset"))
                .unwrap(),
            Postcard,
        )
        .unwrap();
    for (seq, value) in &published {
        match reopened.get(*seq) {
            Ok(got) => assert_eq!(
                got, *value,
                "seed {seed}: acknowledged {seq:?} after reopen"
            ),
            Err(err) => panic!("seed {seed}: acknowledged {seq:?} lost after reopen: {err}"),
        }
    }
    reopened.close().unwrap();
    let ops = shared.ops.total();
    eprintln!(
        "stress round seed {seed}: {ops} ops in {:?} (close after {:?}): {}",
        start.elapsed(),
        closed - start,
        shared.ops.describe()
    );
    (ops, shared.ops.appends.load(Ordering::Relaxed))
}

fn seed() -> u64 {
    std::env::var("FLUMEDB_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

#[test]
fn appenders_readers_rebuilds_and_a_close() {
    // Soak: rounds of 10 s until a million appends (the contended operation; reads are far
    // more numerous), each round closing at a random time. Short: three rounds of up to 4 s.
    let soak = std::env::var_os("FLUMEDB_SOAK").is_some();
    let target_appends: u64 = if soak {
        std::env::var("FLUMEDB_SOAK_APPENDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000)
    } else {
        0
    };
    let run = Duration::from_secs(if soak { 10 } else { 4 });
    let mut seed = seed();
    let start = Instant::now();
    let (mut ops, mut appends, mut rounds) = (0, 0, 0);
    while rounds < 3 || appends < target_appends {
        let (round_ops, round_appends) = round(seed, run);
        ops += round_ops;
        appends += round_appends;
        rounds += 1;
        seed = Rng(seed | 1).next();
    }
    eprintln!(
        "stress: {ops} operations ({appends} appends) in {rounds} rounds, {:?}",
        start.elapsed()
    );
}
