//! One log workload under injected I/O faults: every call failed in turn, then random calls.
//!
//! The workload opens the log (new, or existing with a torn tail its open must repair),
//! appends, appends a batch, deletes (if the log can), flushes, appends again and closes. The
//! first error ends it; then one more append probes the state. After each trial, without
//! faults:
//! - the error was typed and named the log's file (`Error::File` with the injected errno, or
//!   `Error::Poisoned` with the path), and every injected fault surfaced as an error;
//! - after a failed fsync the log refused the next append with `Error::Poisoned`;
//! - the log reopens, every record reads back, and it holds exactly: every acknowledged record
//!   at its seq, no record a successful `del` removed, and of the failed operation's records
//!   all or none (no torn, foreign or reordered record);
//! - `since` is the last record, and appending works again.
//!
//! The faults fail the call before it reaches the kernel, and the process lives on, so the
//! page cache keeps every write that returned: an append acknowledged under either durability
//! mode must be there after reopen. (Losing unsynced writes is the power-loss tests' part.)

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use flumedb_core::{Error, Log, Result, Seq, Since};

use crate::fiu::{Fail, Fiu, Window};

/// Opens (or creates) a log at a path.
pub type OpenFn<L> = Box<dyn Fn(&Path) -> Result<L>>;
/// Deletes a record.
pub type DelFn<L> = Box<dyn Fn(&L, Seq) -> Result<()>>;

/// A log under test.
pub struct Subject<L: Log> {
    /// Its name in messages.
    pub name: String,
    /// Opens (or creates) the log at `path`.
    pub open: OpenFn<L>,
    /// The file the log's errors must name, for the `path` given to `open`.
    pub file: Box<dyn Fn(&Path) -> PathBuf>,
    /// Deletes a record, for logs that can.
    pub del: Option<DelFn<L>>,
    /// Leaves a torn tail (bytes of an append cut short) that the next open must cut off.
    pub tear: Box<dyn Fn(&Path)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Open,
    Append(usize),
    Batch(usize, usize),
    Del(usize),
    Flush,
    Close,
}

const STEPS: &[Step] = &[
    Step::Open,
    Step::Append(2),
    Step::Batch(3, 3),
    Step::Del(3),
    Step::Append(6),
    Step::Flush,
    Step::Batch(7, 2),
    Step::Del(6),
    Step::Append(9),
    Step::Close,
];

/// The record appended by the probe after an error.
const PROBE: usize = 10;

#[derive(Clone, Debug, PartialEq)]
enum State {
    NotYet,
    Acked(Seq),
    /// Its append failed: it may be there (all of its operation's records) or not.
    InDoubt(usize),
    Deleted(Seq),
    MaybeDeleted(Seq),
}

fn record(trial: u64, i: usize) -> Vec<u8> {
    let mut data = format!("rec {i} of trial {trial} ").into_bytes();
    data.extend((0..(i * 37 % 300)).map(|k| (k % 250) as u8 + 1));
    data
}

/// How the workload starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The log does not exist yet.
    Create,
    /// The log holds two records and a torn tail.
    Reopen,
}

/// What [`check_log`] did.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Calls in the workload (per start: create, reopen).
    pub calls: Vec<u64>,
    /// The failure point of each call of the workload (per start), in order.
    pub traces: Vec<Vec<String>>,
    /// Trials run (each a fresh log).
    pub trials: u64,
    /// Faults injected.
    pub faults: u64,
    /// Trials where the log poisoned itself.
    pub poisoned: u64,
}

/// Runs the workload on `subject` failing each call in turn (for both starts), then `random`
/// trials failing random calls, all with `errno`. Panics on the first broken promise.
pub fn check_log<L: Log>(fiu: &Fiu, subject: &Subject<L>, errno: i32, random: u64) -> Figures {
    let mut figures = Figures::default();
    let mut trial = 0;
    for start in [Start::Create, Start::Reopen] {
        let (_, counted) = run_trial(fiu, subject, start, Fail::Never, errno, trial);
        trial += 1;
        assert!(counted.calls > 0, "{}: no I/O call was seen", subject.name);
        figures.calls.push(counted.calls);
        figures.traces.push(counted.trace.clone());
        for n in 0..counted.calls {
            let (poisoned, window) = run_trial(fiu, subject, start, Fail::Nth(n), errno, trial);
            trial += 1;
            assert_eq!(
                window.failed.len(),
                1,
                "{}: call {n} not failed",
                subject.name
            );
            figures.faults += 1;
            figures.trials += 1;
            figures.poisoned += u64::from(poisoned);
        }
        for r in 0..random {
            let fail = Fail::Random {
                seed: 0x9e37_79b9_7f4a_7c15 ^ (r + 1).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ trial,
                per_million: 1_000_000 / counted.calls.max(1),
            };
            let (poisoned, window) = run_trial(fiu, subject, start, fail, errno, trial);
            trial += 1;
            figures.faults += window.failed.len() as u64;
            figures.trials += 1;
            figures.poisoned += u64::from(poisoned);
        }
    }
    figures
}

fn is_injected(err: &Error, file: &Path, errno: i32) -> bool {
    match err {
        Error::File { path, source } => {
            source.raw_os_error() == Some(errno)
                // The file, a directory on its way (fsync'd when created), or a file the log
                // keeps beside it (`<file>.synced`).
                && (file.ancestors().any(|a| a == path) || is_side_file(path, file))
        }
        _ => false,
    }
}

/// Whether `path` is a file the log keeps beside `file`: same directory, named `<file>.<ext>`.
fn is_side_file(path: &Path, file: &Path) -> bool {
    let (Some(name), Some(side)) = (file.file_name(), path.file_name()) else {
        return false;
    };
    let mut prefix = name.to_os_string();
    prefix.push(".");
    path.parent() == file.parent()
        && side
            .as_encoded_bytes()
            .starts_with(prefix.as_encoded_bytes())
}

fn is_poisoned(err: &Error, file: &Path) -> bool {
    matches!(err, Error::Poisoned { path: Some(p), .. } if p == file)
        && err.to_string().contains(&file.display().to_string())
}

/// One trial on a fresh log; returns whether the log poisoned itself, and the fault window.
fn run_trial<L: Log>(
    fiu: &Fiu,
    s: &Subject<L>,
    start: Start,
    fail: Fail,
    errno: i32,
    trial: u64,
) -> (bool, Window) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("log");
    let file = (s.file)(&path);
    let rec = |i: usize| record(trial, i);
    let mut states = vec![State::NotYet; PROBE + 1];
    let ctx = format!("{} {start:?} {fail:?} errno {errno}", s.name);
    if start == Start::Reopen {
        let log = (s.open)(&path).unwrap_or_else(|e| panic!("{ctx}: setup open: {e}"));
        for (i, state) in states.iter_mut().enumerate().take(2) {
            let seq = log
                .append(&rec(i))
                .unwrap_or_else(|e| panic!("{ctx}: setup: {e}"));
            *state = State::Acked(seq);
        }
        log.close()
            .unwrap_or_else(|e| panic!("{ctx}: setup close: {e}"));
        drop(log);
        (s.tear)(&path);
    }

    // The workload, in the fault window.
    let ((failed_step, error, probe), window) = fiu.window(fail, errno, || {
        let mut log: Option<L> = None;
        for (op, step) in STEPS.iter().enumerate() {
            let result = match (*step, log.as_ref()) {
                (Step::Open, _) => (s.open)(&path).map(|l| log = Some(l)),
                (Step::Append(i), Some(l)) => l.append(&rec(i)).map(|seq| {
                    states[i] = State::Acked(seq);
                }),
                (Step::Batch(i, n), Some(l)) => {
                    let batch: Vec<Vec<u8>> = (i..i + n).map(rec).collect();
                    let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                    l.append_batch(&slices).map(|seqs| {
                        for (k, seq) in seqs.into_iter().enumerate() {
                            states[i + k] = State::Acked(seq);
                        }
                    })
                }
                (Step::Del(i), Some(l)) => match (&s.del, states[i].clone()) {
                    (Some(del), State::Acked(seq)) => {
                        let done = del(l, seq);
                        states[i] = match done {
                            Ok(()) => State::Deleted(seq),
                            Err(_) => State::MaybeDeleted(seq),
                        };
                        done
                    }
                    _ => Ok(()),
                },
                (Step::Flush, Some(l)) => l.flush(),
                (Step::Close, Some(l)) => l.close(),
                (_, None) => Ok(()),
            };
            if let Err(err) = result {
                match *step {
                    Step::Append(i) => states[i] = State::InDoubt(op),
                    Step::Batch(i, n) => {
                        for state in states.iter_mut().skip(i).take(n) {
                            *state = State::InDoubt(op);
                        }
                    }
                    _ => {}
                }
                let probe = match (*step, log.as_ref()) {
                    (Step::Open | Step::Close, _) | (_, None) => None,
                    (_, Some(l)) => {
                        let probed = l.append(&rec(PROBE));
                        states[PROBE] = match &probed {
                            Ok(seq) => State::Acked(*seq),
                            Err(_) => State::InDoubt(usize::MAX),
                        };
                        Some(probed)
                    }
                };
                return (Some(*step), Some(err), probe);
            }
        }
        (None, None, None)
    });

    // The errors.
    let mut poisoned = false;
    if !window.failed.is_empty() {
        let first_fault = window
            .failed
            .first()
            .map(|f| f.1.clone())
            .unwrap_or_default();
        let err = error.as_ref().unwrap_or_else(|| {
            panic!("{ctx}: the fault ({first_fault}) was swallowed: every step returned Ok")
        });
        let nth = matches!(fail, Fail::Nth(_));
        assert!(
            is_injected(err, &file, errno) || (!nth && is_poisoned(err, &file)),
            "{ctx}: {failed_step:?} failed ({first_fault}) with an error that does not say \
             what failed: {err:?}"
        );
        assert!(
            err.to_string().contains(
                &file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ) || matches!(err, Error::File { path, .. }
                if (file.ancestors().any(|a| a == path) || is_side_file(path, &file))
                    && err.to_string().contains(&path.display().to_string())),
            "{ctx}: the message does not name the file: {err}"
        );
        match &probe {
            Some(Err(e)) if is_poisoned(e, &file) => poisoned = true,
            Some(Err(e)) => assert!(
                !nth && is_injected(e, &file, errno),
                "{ctx}: after {failed_step:?} failed ({first_fault}), the next append: {e:?}"
            ),
            Some(Ok(_)) => assert!(
                !window.failed_a_sync(),
                "{ctx}: after a failed fsync ({first_fault}) the log acknowledged an append"
            ),
            None => {}
        }
        if matches!(err, Error::Poisoned { .. }) {
            poisoned = true;
        }
    } else {
        assert!(
            error.is_none(),
            "{ctx}: an error without a fault: {error:?}"
        );
    }

    // Reopen without faults: nothing acknowledged lost, everything readable.
    let log = (s.open)(&path).unwrap_or_else(|e| {
        panic!("{ctx}: after {failed_step:?} failed ({error:?}), the log does not reopen: {e}")
    });
    let entries: Vec<(Seq, Vec<u8>)> = log
        .range(Bound::Unbounded, Bound::Unbounded, false)
        .unwrap_or_else(|e| panic!("{ctx}: range after reopen: {e}"))
        .map(|entry| {
            let entry = entry.unwrap_or_else(|e| panic!("{ctx}: a record after reopen: {e}"));
            (entry.seq, entry.data)
        })
        .collect();
    let found: HashMap<&[u8], Seq> = entries.iter().map(|(s, d)| (d.as_slice(), *s)).collect();
    assert_eq!(found.len(), entries.len(), "{ctx}: a record twice");
    let wanted: Vec<Vec<u8>> = (0..=PROBE).map(rec).collect();
    for (seq, data) in &entries {
        assert!(
            wanted.contains(data),
            "{ctx}: a record nobody appended at {seq}: {data:?}"
        );
    }
    let mut in_doubt: HashMap<usize, bool> = HashMap::new();
    for (i, state) in states.iter().enumerate() {
        let here = found.get(wanted[i].as_slice()).copied();
        match state {
            State::NotYet => assert_eq!(here, None, "{ctx}: record {i} never appended is there"),
            State::Acked(seq) => {
                assert_eq!(
                    here,
                    Some(*seq),
                    "{ctx}: acknowledged record {i} lost or moved"
                );
                assert_eq!(
                    log.get(*seq).ok().as_ref(),
                    Some(&wanted[i]),
                    "{ctx}: get {i}"
                );
            }
            State::Deleted(seq) => {
                assert_eq!(here, None, "{ctx}: deleted record {i} is back");
                assert!(
                    matches!(log.get(*seq), Err(Error::Deleted { .. })),
                    "{ctx}: get of deleted record {i}: {:?}",
                    log.get(*seq)
                );
            }
            State::MaybeDeleted(seq) => match here {
                Some(at) => assert_eq!(at, *seq, "{ctx}: record {i} moved"),
                None => assert!(
                    matches!(log.get(*seq), Err(Error::Deleted { .. })),
                    "{ctx}: after a failed del, record {i} reads {:?}",
                    log.get(*seq)
                ),
            },
            State::InDoubt(op) => {
                let all = in_doubt.entry(*op).or_insert(here.is_some());
                assert_eq!(
                    *all,
                    here.is_some(),
                    "{ctx}: part of a failed batch is there"
                );
            }
        }
    }
    let seqs: Vec<Seq> = entries.iter().map(|e| e.0).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "{ctx}: seqs out of order: {seqs:?}"
    );
    // Acknowledged records keep their append order.
    let acked: Vec<Seq> = states
        .iter()
        .filter_map(|s| match s {
            State::Acked(seq) => Some(*seq),
            _ => None,
        })
        .collect();
    assert!(
        acked.windows(2).all(|w| w[0] < w[1]),
        "{ctx}: acked out of order: {acked:?}"
    );
    // `since` is the last record (deleted ones count: they keep their seq).
    let since = log.since();
    if let Some((last, _)) = entries.last() {
        assert!(
            since >= Since::At(*last),
            "{ctx}: since {since:?} behind {last:?}"
        );
    }
    let again = log
        .append(b"after reopen")
        .unwrap_or_else(|e| panic!("{ctx}: append after reopen: {e}"));
    assert_eq!(log.since(), Since::At(again), "{ctx}: since after append");
    assert_eq!(
        log.get(again).ok().as_deref(),
        Some(&b"after reopen"[..]),
        "{ctx}"
    );
    log.close()
        .unwrap_or_else(|e| panic!("{ctx}: close after reopen: {e}"));
    (poisoned, window)
}
