//! Loom models of the wait/notify parts: the since watch (`wait_for`, `wait_change`,
//! subscriptions, `close`, `advance`), the read wait of a view (`ViewSync::read` against a
//! feeder that feeds, rebuilds and closes) and the live cursor. Loom runs each model under
//! every interleaving (up to its bounds) of the real code, with its own Mutex and Condvar
//! swapped in by `loom_sync`; a thread left waiting forever fails the model as a deadlock.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release
//! -p flumedb-core --lib loom_models`.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use loom::thread;

use crate::error::Error;
use crate::live::LiveCursor;
use crate::loom_sync::Mutex;
use crate::seq::{Seq, Since};
use crate::sync::{ViewSync, Wait};
use crate::views_watch::{ViewEntry, ViewsWatch};
use crate::watch::SinceWatch;

/// Runs `model` under loom and prints how many interleavings it explored.
fn explore(name: &str, model: impl Fn() + Send + Sync + 'static) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    // No preemption bound (unless LOOM_MAX_PREEMPTIONS sets one): the models are small enough
    // to explore exhaustively.
    let builder = loom::model::Builder::new();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    eprintln!(
        "loom model {name}: {} interleavings explored",
        runs.load(Ordering::Relaxed)
    );
}

fn at(seq: u64) -> Since {
    Since::At(Seq::new(seq))
}

/// An appender advances the since twice; a `wait_for` of the last value and a `wait_change`
/// from the start must both wake (a lost wakeup leaves them asleep: loom reports a deadlock).
#[test]
fn since_waiters_never_miss_a_change() {
    explore("since_waiters_never_miss_a_change", || {
        let watch = SinceWatch::new(Since::Empty);
        let appender = {
            let watch = watch.clone();
            thread::spawn(move || {
                watch.advance(at(0));
                watch.advance(at(1));
            })
        };
        let changer = {
            let watch = watch.clone();
            thread::spawn(move || watch.wait_change(Since::Empty, None))
        };
        assert_eq!(watch.wait_for(Seq::new(1), None).unwrap(), at(1));
        let changed = changer.join().unwrap().unwrap();
        assert!(changed == at(0) || changed == at(1), "{changed:?}");
        appender.join().unwrap();
    });
}

/// A close racing an append: the waiter ends with the record or with `Closed`, never sleeps.
#[test]
fn close_ends_every_since_waiter() {
    explore("close_ends_every_since_waiter", || {
        let watch = SinceWatch::new(Since::Empty);
        let appender = {
            let watch = watch.clone();
            thread::spawn(move || {
                watch.advance(at(0));
            })
        };
        let closer = {
            let watch = watch.clone();
            thread::spawn(move || watch.close())
        };
        match watch.wait_for(Seq::new(1), None) {
            Err(Error::Closed) => assert!(watch.is_closed()),
            other => panic!("wait_for(1) never reached: {other:?}"),
        }
        appender.join().unwrap();
        closer.join().unwrap();
    });
}

/// A subscriber sees strictly increasing values, the last one before `Closed`, and ends.
#[test]
fn a_subscription_sees_every_last_value_in_order_then_closed() {
    explore(
        "a_subscription_sees_every_last_value_in_order_then_closed",
        || {
            let watch = SinceWatch::new(Since::Empty);
            let mut sub = watch.subscribe();
            let appender = {
                let watch = watch.clone();
                thread::spawn(move || {
                    watch.advance(at(0));
                    watch.advance(at(1));
                    watch.close();
                })
            };
            let mut seen = Vec::new();
            let end = loop {
                match sub.recv() {
                    Ok(since) => seen.push(since),
                    Err(err) => break err,
                }
            };
            assert!(matches!(end, Error::Closed), "{end}");
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
            assert_eq!(seen.last(), Some(&at(1)), "{seen:?}");
            appender.join().unwrap();
        },
    );
}

/// Racing publishers: an observer never sees the since move back, and the end is the highest.
#[test]
fn since_is_monotonic_as_observed() {
    explore("since_is_monotonic_as_observed", || {
        let watch = SinceWatch::new(Since::Empty);
        let publishers: Vec<_> = [2, 1]
            .into_iter()
            .map(|seq| {
                let watch = watch.clone();
                thread::spawn(move || {
                    watch.advance(at(seq));
                })
            })
            .collect();
        let first = watch.get();
        let second = watch.get();
        assert!(
            first <= second,
            "since moved back: {first:?} then {second:?}"
        );
        for publisher in publishers {
            publisher.join().unwrap();
        }
        assert_eq!(watch.get(), at(2));
    });
}

/// A view read with `Wait::Latest` (record 0 is in the log when it starts) against a feeder
/// that feeds record 0, rebuilds the view (in `Feeder::reset_all`'s order: publish the reset
/// with a new epoch, clear the state, feed again) and a close: the read returns a state
/// holding record 0, or `Closed`; it never returns the half-rebuilt state and never hangs.
#[test]
fn a_view_read_sees_its_writes_across_a_rebuild_or_closes() {
    explore(
        "a_view_read_sees_its_writes_across_a_rebuild_or_closes",
        || {
            let views = Arc::new(ViewsWatch::new(true, None));
            views.update(|s| s.views.push(ViewEntry::new("v".into(), Since::Empty)));
            let log_since = SinceWatch::new(at(0));
            let state = Arc::new(Mutex::new(Vec::<u64>::new()));
            let sync = ViewSync::new(0, "v".into(), views.clone(), log_since);
            let feeder = {
                let (views, state) = (views.clone(), state.clone());
                thread::spawn(move || {
                    state.lock().push(0);
                    views.update(|s| s.entry_mut(0).since = at(0));
                    // rebuild
                    views.update(|s| {
                        let entry = s.entry_mut(0);
                        entry.since = Since::Empty;
                        entry.epoch += 1;
                    });
                    state.lock().clear();
                    state.lock().push(0);
                    views.update(|s| s.entry_mut(0).since = at(0));
                })
            };
            let closer = {
                let views = views.clone();
                thread::spawn(move || views.update(|s| s.closed = true))
            };
            match sync.read(Wait::Latest, || state.lock().clone()) {
                Ok(seen) => assert!(seen.contains(&0), "read missed record 0: {seen:?}"),
                Err(Error::Closed) => {}
                Err(err) => panic!("unexpected {err}"),
            }
            feeder.join().unwrap();
            closer.join().unwrap();
        },
    );
}

/// A live cursor over a log that appends 0, 1, 2 (each readable before the since moves) and
/// closes at any point: it yields a gapless, duplicate-free prefix of 0, 1, 2 and then ends
/// with `Closed`.
#[test]
fn a_live_cursor_yields_each_record_once_in_order_then_closed() {
    explore(
        "a_live_cursor_yields_each_record_once_in_order_then_closed",
        || {
            let since = SinceWatch::new(Since::Empty);
            let records = Arc::new(Mutex::new(Vec::<u64>::new()));
            let appender = {
                let (since, records) = (since.clone(), records.clone());
                thread::spawn(move || {
                    for seq in 0..3 {
                        records.lock().push(seq);
                        since.advance(at(seq));
                    }
                    since.close();
                })
            };
            let mut cursor = LiveCursor::new(Since::Empty, None);
            let mut got = Vec::new();
            let end = loop {
                let open = |after: Bound<Seq>, upto: Seq| {
                    let page: Vec<crate::error::Result<u64>> = records
                        .lock()
                        .iter()
                        .copied()
                        .filter(|s| {
                            crate::bounds::within_lower(&after, &Seq::new(*s)) && *s <= upto.get()
                        })
                        .map(Ok)
                        .collect();
                    Ok(page.into_iter())
                };
                match cursor.next(&since, |_| true, open) {
                    Some(Ok(seq)) => {
                        assert_eq!(seq, got.len() as u64, "duplicate or gap after {got:?}");
                        got.push(seq);
                    }
                    Some(Err(err)) => break err,
                    None => panic!("ended without an error after {got:?}"),
                }
            };
            assert!(matches!(end, Error::Closed), "{end}");
            assert!(
                got.iter().copied().eq(0..got.len() as u64),
                "not a gapless prefix in order: {got:?}"
            );
            assert!(
                cursor
                    .next(&since, |_| true, |_, _| Ok(Vec::new().into_iter()))
                    .is_none()
            );
            appender.join().unwrap();
        },
    );
}

/// A read behind the shut readiness gate wakes when the gate opens (or the database closes)
/// and then holds the view's records; a `Wait::Now` read does not wait for the gate.
#[test]
fn a_read_behind_the_readiness_gate_wakes_when_it_opens() {
    explore(
        "a_read_behind_the_readiness_gate_wakes_when_it_opens",
        || {
            let views = Arc::new(ViewsWatch::new(false, None));
            views.update(|s| s.views.push(ViewEntry::new("v".into(), at(0))));
            let sync = ViewSync::new(0, "v".into(), views.clone(), SinceWatch::new(at(0)));
            let opener = {
                let views = views.clone();
                thread::spawn(move || views.update(|s| s.ready = true))
            };
            let now = sync.wait(Wait::Now).unwrap();
            assert_eq!(now, at(0));
            assert_eq!(sync.wait(Wait::Latest).unwrap(), at(0));
            assert!(views.lock().ready, "a read passed the shut gate");
            opener.join().unwrap();
        },
    );
}
