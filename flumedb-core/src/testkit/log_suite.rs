//! The conformance suite every [`Log`] implementation runs.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::Path;
use std::time::Duration;

use crate::{Entry, Error, Log, Result, Seq, Since, StreamOptions};

/// Runs every log check against logs opened by `open` in fresh temporary directories.
///
/// A log whose [`Log::view_dir`] is `Some` is also checked for persistence across close and reopen.
pub fn log_suite<L: Log>(open: impl Fn(&Path) -> Result<L> + Sync) {
    log_suite_with(LogLimits::default(), open);
}

/// What a log cannot store, for logs whose format caps a record's size.
#[derive(Clone, Copy, Debug)]
pub struct LogLimits {
    /// The longest record the log stores (the suite's largest records are cut to it; the
    /// default, `usize::MAX`, keeps them at 70,000 bytes and more).
    pub max_record: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_record: usize::MAX,
        }
    }
}

/// [`log_suite`] for a log whose records are at most `limits.max_record` bytes; the suite
/// also checks that a longer record is refused with [`Error::InvalidArgument`] and nothing
/// is appended.
pub fn log_suite_with<L: Log>(limits: LogLimits, open: impl Fn(&Path) -> Result<L> + Sync) {
    check_empty(&open);
    append_get(&open, limits);
    batch(&open, limits);
    check_ranges(&open);
    check_live(&open);
    check_live_ends_on_close(&open);
    check_concurrent_readers(&open);
    check_closed(&open);
    reopen(&open, limits);
    if limits.max_record < usize::MAX {
        check_too_long(&open, limits);
    }
}

/// A record longer than the log stores is refused, and nothing is appended.
fn check_too_long<L: Log>(open: &impl Fn(&Path) -> Result<L>, limits: LogLimits) {
    let (_dir, log) = fresh(open);
    let first = log.append(b"first").expect("append");
    let long = vec![1u8; limits.max_record + 1];
    assert!(
        matches!(log.append(&long), Err(Error::InvalidArgument(_))),
        "a record longer than the limit must be refused"
    );
    assert!(matches!(
        log.append_batch(&[b"ok", &long]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(log.since(), Since::At(first), "nothing appended");
    let fits = vec![2u8; limits.max_record];
    let seq = log.append(&fits).expect("a record of the limit fits");
    assert_eq!(log.get(seq).expect("get"), fits);
}

fn fresh<L: Log>(open: &impl Fn(&Path) -> Result<L>) -> (tempfile::TempDir, L) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let log = open(dir.path()).expect("open a fresh log");
    (dir, log)
}

fn collect<L: Log>(log: &L, options: StreamOptions) -> Vec<Entry> {
    log.stream(options)
        .expect("stream")
        .collect::<Result<Vec<_>>>()
        .expect("stream items")
}

/// An empty log: `since` is empty, streams yield nothing, `get` is an error.
pub fn check_empty<L: Log>(open: &impl Fn(&Path) -> Result<L>) {
    let (_dir, log) = fresh(open);
    assert_eq!(log.since(), Since::Empty, "a new log's since must be Empty");
    assert!(collect(&log, StreamOptions::new()).is_empty());
    assert!(collect(&log, StreamOptions::new().reverse()).is_empty());
    assert!(
        matches!(
            log.get(Seq::ZERO),
            Err(Error::NotFound { .. } | Error::InvalidSeq { .. })
        ),
        "get(0) on an empty log must be NotFound (or InvalidSeq where 0 is no record's place)"
    );
    assert!(
        matches!(log.get(Seq::new(1 << 40)), Err(Error::NotFound { .. })),
        "get past the end of an empty log must be NotFound"
    );
}

/// Records of many sizes and kinds. None is empty or all zeros: JS-compatible logs cannot
/// store those (they read as deleted), and may reject them.
fn sample(i: usize, limits: LogLimits) -> Vec<u8> {
    match i % 5 {
        0 => vec![b'x'],
        1 => format!("{{\"i\":{i}}}").into_bytes(),
        2 => vec![7u8; 300 + i],
        3 => (0..=255u8)
            .cycle()
            .skip(i)
            .take((70_000 + i).min(limits.max_record - i % 7))
            .collect(),
        _ => format!("héllo 🌊 {i}").into_bytes(),
    }
}

/// Single appends return growing seqs, update `since`, and read back byte for byte; seqs past
/// the end are `NotFound`, other non-record seqs an error (never garbage or a panic).
pub fn check_append_get<L: Log>(open: &impl Fn(&Path) -> Result<L>) {
    append_get(open, LogLimits::default());
}

fn append_get<L: Log>(open: &impl Fn(&Path) -> Result<L>, limits: LogLimits) {
    let sample = |i| sample(i, limits);
    let (_dir, log) = fresh(open);
    let mut seqs = Vec::new();
    for i in 0..20 {
        let seq = log.append(&sample(i)).expect("append");
        if let Some(&prev) = seqs.last() {
            assert!(seq > prev, "seqs must grow: {prev} then {seq}");
        }
        assert_eq!(log.since(), Since::At(seq), "since must be the last seq");
        seqs.push(seq);
    }
    for (i, seq) in seqs.iter().enumerate() {
        assert_eq!(log.get(*seq).expect("get"), sample(i), "get({seq})");
    }
    let last = *seqs.last().unwrap();
    let far = Seq::new(last.get() + 1_000_000);
    assert!(
        matches!(log.get(far), Err(Error::NotFound { .. })),
        "get past the end must be NotFound"
    );
    let known: BTreeSet<Seq> = seqs.iter().copied().collect();
    for probe in (0..last.get() + 64)
        .map(Seq::new)
        .filter(|s| !known.contains(s))
    {
        assert!(
            log.get(probe).is_err(),
            "get({probe}) is not a record's seq and must be an error"
        );
    }
}

/// Batches return each record's own seq (not the batch's max), in order.
pub fn check_batch<L: Log>(open: &impl Fn(&Path) -> Result<L>) {
    batch(open, LogLimits::default());
}

fn batch<L: Log>(open: &impl Fn(&Path) -> Result<L>, limits: LogLimits) {
    let (_dir, log) = fresh(open);
    let first = log.append(b"first").expect("append");
    let data: Vec<Vec<u8>> = (0..10).map(|i| sample(i, limits)).collect();
    let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let seqs = log.append_batch(&slices).expect("append_batch");
    assert_eq!(seqs.len(), 10, "one seq per record");
    assert!(seqs[0] > first);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "batch seqs must grow");
    assert_eq!(log.since(), Since::At(seqs[9]));
    for (seq, bytes) in seqs.iter().zip(&data) {
        assert_eq!(&log.get(*seq).expect("get"), bytes);
    }
    assert!(log.append_batch(&[]).expect("empty batch").is_empty());
    assert_eq!(
        log.since(),
        Since::At(seqs[9]),
        "an empty batch changes nothing"
    );
}

/// Every combination of `gt/gte/lt/lte` (at, between and beyond records), `reverse` and
/// `limit` yields exactly the records a model gives.
pub fn check_ranges<L: Log>(open: &impl Fn(&Path) -> Result<L>) {
    let (_dir, log) = fresh(open);
    let data: Vec<Vec<u8>> = (0..12)
        .map(|i| format!("record {i}").into_bytes())
        .collect();
    let mut seqs = Vec::new();
    for chunk in data.chunks(4) {
        let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        seqs.extend(log.append_batch(&slices).expect("append_batch"));
    }
    let mut points: BTreeSet<u64> = BTreeSet::new();
    for s in &seqs {
        points.insert(s.get());
        points.insert(s.get() + 1);
        points.insert(s.get().saturating_sub(1));
    }
    points.insert(seqs[11].get() + 1000);
    let points: Vec<Seq> = points.into_iter().map(Seq::new).collect();
    let mut lowers = vec![Bound::Unbounded];
    let mut uppers = vec![Bound::Unbounded];
    for &p in &points {
        lowers.extend([Bound::Included(p), Bound::Excluded(p)]);
        uppers.extend([Bound::Included(p), Bound::Excluded(p)]);
    }
    for &lower in &lowers {
        for &upper in &uppers {
            for reverse in [false, true] {
                let mut options = StreamOptions::new();
                options = match lower {
                    Bound::Included(s) => options.gte(s),
                    Bound::Excluded(s) => options.gt(s),
                    Bound::Unbounded => options,
                };
                options = match upper {
                    Bound::Included(s) => options.lte(s),
                    Bound::Excluded(s) => options.lt(s),
                    Bound::Unbounded => options,
                };
                if reverse {
                    options = options.reverse();
                }
                let mut expected: Vec<Entry> = seqs
                    .iter()
                    .zip(&data)
                    .filter(|(s, _)| options.contains(**s))
                    .map(|(s, d)| Entry {
                        seq: *s,
                        data: d.clone(),
                    })
                    .collect();
                if reverse {
                    expected.reverse();
                }
                assert_eq!(
                    collect(&log, options.clone()),
                    expected,
                    "stream {lower:?}..{upper:?} reverse={reverse}"
                );
                expected.truncate(3);
                assert_eq!(
                    collect(&log, options.clone().limit(3)),
                    expected,
                    "stream {lower:?}..{upper:?} reverse={reverse} limit=3"
                );
            }
        }
    }
    assert!(collect(&log, StreamOptions::new().limit(0)).is_empty());
    assert!(
        matches!(
            log.stream(StreamOptions::new().live().reverse()),
            Err(Error::InvalidArgument(_))
        ),
        "live + reverse must be rejected"
    );
}

/// Live streams yield old records then new ones, each exactly once and in order;
/// `old(false)` yields only new ones.
pub fn check_live<L: Log>(open: &impl Fn(&Path) -> Result<L>) {
    let (_dir, log) = fresh(open);
    let live = |i: u32| format!("live {i}").into_bytes();
    for i in 0..5u32 {
        log.append(&live(i)).expect("append");
    }
    // Both streams start before the writer, so they must see every later append.
    let all = log
        .stream(StreamOptions::new().live().limit(205))
        .expect("live stream");
    let new_only = log
        .stream(StreamOptions::new().live().old(false).limit(200))
        .expect("live stream");
    std::thread::scope(|scope| {
        let all = scope.spawn(move || all.map(|e| e.expect("live item").data).collect::<Vec<_>>());
        let new_only = scope.spawn(move || {
            new_only
                .map(|e| e.expect("live item").data)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(20));
        for i in 5..205u32 {
            if i % 7 == 0 {
                log.append_batch(&[&live(i)]).expect("append_batch");
            } else {
                log.append(&live(i)).expect("append");
            }
        }
        let expected: Vec<Vec<u8>> = (0..205u32).map(live).collect();
        assert_eq!(
            all.join().expect("live reader"),
            expected,
            "old then live, no gaps or duplicates"
        );
        assert_eq!(
            new_only.join().expect("live reader"),
            expected[5..],
            "old(false) yields only records appended after the stream started"
        );
    });
}

/// A live stream blocked waiting for appends ends with `Closed` when the log closes.
pub fn check_live_ends_on_close<L: Log>(open: &impl Fn(&Path) -> Result<L>) {
    let (_dir, log) = fresh(open);
    log.append(b"one").expect("append");
    let mut stream = log.stream(StreamOptions::new().live()).expect("stream");
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let first = stream.next();
            let end = stream.next();
            let after = stream.next();
            (first.map(|r| r.map(|e| e.data)), end, after)
        });
        std::thread::sleep(Duration::from_millis(50));
        log.close().expect("close");
        let (first, end, after) = reader.join().expect("reader");
        assert_eq!(first.expect("first item").expect("ok"), b"one");
        assert!(
            matches!(end, Some(Err(Error::Closed))),
            "a live stream must end with Closed when the log closes"
        );
        assert!(after.is_none(), "and then end");
    });
}

fn pattern(i: u32) -> Vec<u8> {
    let len = (i as usize * 37) % 900 + 4;
    let mut data = i.to_le_bytes().to_vec();
    data.extend((0..len - 4).map(|j| (i as usize + j) as u8));
    data
}

fn check_pattern(data: &[u8]) -> u32 {
    assert!(data.len() >= 4, "torn record: {} bytes", data.len());
    let i = u32::from_le_bytes(data[..4].try_into().unwrap());
    assert_eq!(data, pattern(i), "torn or wrong record {i}");
    i
}

/// Readers streaming and getting while a writer appends never see a torn record.
pub fn check_concurrent_readers<L: Log>(open: &impl Fn(&Path) -> Result<L>) {
    let (_dir, log) = fresh(open);
    const N: u32 = 3000;
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut seqs = Vec::new();
            for i in 0..N {
                if i % 10 == 0 && i + 3 <= N {
                    continue;
                }
                seqs.push(log.append(&pattern(i)).expect("append"));
            }
            seqs
        });
        let streamer = scope.spawn(|| {
            let mut seen = 0;
            for _ in 0..20 {
                let mut last = None;
                for entry in log.stream(StreamOptions::new()).expect("stream") {
                    let i = check_pattern(&entry.expect("stream item").data);
                    assert!(last < Some(i), "stream out of order");
                    last = Some(i);
                    seen += 1;
                }
            }
            seen
        });
        let getter = scope.spawn(|| {
            for _ in 0..2000 {
                if let Since::At(seq) = log.since() {
                    check_pattern(&log.get(seq).expect("get since"));
                }
            }
        });
        let seqs = writer.join().expect("writer");
        streamer.join().expect("streamer");
        getter.join().expect("getter");
        for seq in seqs {
            check_pattern(&log.get(seq).expect("get"));
        }
    });
}

/// After close, appends, gets and streams return `Closed`.
pub fn check_closed<L: Log>(open: &impl Fn(&Path) -> Result<L>) {
    let (_dir, log) = fresh(open);
    let seq = log.append(b"x").expect("append");
    log.close().expect("close");
    assert!(matches!(log.append(b"y"), Err(Error::Closed)));
    assert!(matches!(log.append_batch(&[b"y"]), Err(Error::Closed)));
    assert!(matches!(log.get(seq), Err(Error::Closed)));
    assert!(matches!(
        log.stream(StreamOptions::new()).map(|s| s.count()),
        Err(Error::Closed)
    ));
}

/// A log with a directory keeps its records across close and reopen, and appends continue.
pub fn check_reopen<L: Log>(open: &impl Fn(&Path) -> Result<L>) {
    reopen(open, LogLimits::default());
}

fn reopen<L: Log>(open: &impl Fn(&Path) -> Result<L>, limits: LogLimits) {
    let (dir, log) = fresh(open);
    if log.view_dir().is_none() {
        return;
    }
    let data: Vec<Vec<u8>> = (0..30).map(|i| sample(i, limits)).collect();
    let mut seqs = Vec::new();
    for d in &data {
        seqs.push(log.append(d).expect("append"));
    }
    let since = log.since();
    log.close().expect("close");
    drop(log);
    let log = open(dir.path()).expect("reopen");
    assert_eq!(log.since(), since, "since survives reopen");
    for (seq, d) in seqs.iter().zip(&data) {
        assert_eq!(&log.get(*seq).expect("get after reopen"), d);
    }
    let next = log.append(b"after").expect("append after reopen");
    assert!(Since::At(next) > since);
    assert_eq!(log.get(next).expect("get"), b"after");
    log.close().expect("close");
}
