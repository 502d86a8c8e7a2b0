//! The sequence lock between `del`, which rewrites a frame's bytes in place, and readers that
//! copy bytes out of the memory map: a reader that overlapped a delete retries, so it never
//! returns a half-deleted record.
//!
//! One implementation for `get`, the iterators and the seek helpers. The tests below are a loom
//! model check of exactly this code, run by `cargo xtask test-all` (alone:
//! `RUSTFLAGS="--cfg loom" cargo test --release -p flumelog-offset --lib seqlock`).

#[cfg(loom)]
use loom::sync::atomic::{AtomicU64, Ordering, fence};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU64, Ordering, fence};

/// A version counter: odd while a write is in progress.
#[derive(Debug, Default)]
pub(crate) struct SeqLock {
    version: AtomicU64,
}

impl SeqLock {
    /// A lock with no write in progress.
    pub(crate) fn new() -> SeqLock {
        SeqLock::default()
    }

    /// Runs `read` until no write overlapped it, and returns that run's result.
    ///
    /// `read` may observe torn bytes in a run that is then thrown away, so it must not act on
    /// them beyond returning a value (no panics on bad bytes: it returns an error instead).
    #[inline]
    pub(crate) fn read<R>(&self, mut read: impl FnMut() -> R) -> R {
        loop {
            let before = self.version.load(Ordering::Acquire);
            if before % 2 == 1 {
                yield_now();
                continue;
            }
            let result = read();
            // Orders the reads inside `read` before the re-check: without it a reader on a
            // weakly ordered CPU could see a delete's bytes yet the old, even version.
            fence(Ordering::Acquire);
            if self.version.load(Ordering::Relaxed) == before {
                return result;
            }
        }
    }

    /// Runs `write` while readers are kept from returning what they read meanwhile. Writers
    /// must be serialised by the caller (the log's writer lock).
    /// How many writes have begun (each `del`, whether it succeeded or not): a counter that
    /// only grows, so a change says a delete may have happened.
    pub(crate) fn writes(&self) -> u64 {
        self.version.load(Ordering::Acquire).div_ceil(2)
    }

    pub(crate) fn write<R>(&self, write: impl FnOnce() -> R) -> R {
        self.version.fetch_add(1, Ordering::Relaxed);
        // Pairs with the reader's fence: a reader that sees any byte written below also sees
        // the odd version.
        fence(Ordering::Release);
        let result = write();
        self.version.fetch_add(1, Ordering::Release);
        result
    }
}

#[cfg(loom)]
fn yield_now() {
    loom::thread::yield_now();
}

#[cfg(not(loom))]
fn yield_now() {
    std::thread::yield_now();
}

#[cfg(all(test, loom))]
mod tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicU64;

    /// Two words of a frame: a reader must see both old or both zeroed, never one of each.
    struct Frame {
        lock: SeqLock,
        words: [AtomicU64; 2],
    }

    const OLD: u64 = 7;

    fn frame() -> Arc<Frame> {
        Arc::new(Frame {
            lock: SeqLock::new(),
            words: [AtomicU64::new(OLD), AtomicU64::new(OLD)],
        })
    }

    fn delete(frame: &Frame) {
        frame.lock.write(|| {
            for word in &frame.words {
                word.store(0, Ordering::Relaxed);
            }
        });
    }

    fn copy(frame: &Frame) -> (u64, u64) {
        (
            frame.words[0].load(Ordering::Relaxed),
            frame.words[1].load(Ordering::Relaxed),
        )
    }

    fn untorn(pair: (u64, u64)) -> bool {
        pair == (OLD, OLD) || pair == (0, 0)
    }

    #[test]
    fn a_read_never_returns_a_half_deleted_frame() {
        loom::model(|| {
            let frame = frame();
            let writer = {
                let frame = frame.clone();
                loom::thread::spawn(move || delete(&frame))
            };
            let seen = frame.lock.read(|| copy(&frame));
            assert!(untorn(seen), "torn read {seen:?}");
            writer.join().expect("the writer thread");
        });
    }

    /// A reader with no fence between the copy and the re-check, against a writer that bumps
    /// the version with `AcqRel`: the model must catch it, or the test above proves nothing.
    #[test]
    #[should_panic(expected = "torn read")]
    fn the_unfenced_reader_is_caught() {
        loom::model(|| {
            let frame = frame();
            let writer = {
                let frame = frame.clone();
                loom::thread::spawn(move || {
                    frame.lock.version.fetch_add(1, Ordering::AcqRel);
                    for word in &frame.words {
                        word.store(0, Ordering::Relaxed);
                    }
                    frame.lock.version.fetch_add(1, Ordering::AcqRel);
                })
            };
            let seen = loop {
                let before = frame.lock.version.load(Ordering::Acquire);
                if before % 2 == 1 {
                    loom::thread::yield_now();
                    continue;
                }
                let seen = copy(&frame);
                if frame.lock.version.load(Ordering::Acquire) == before {
                    break seen;
                }
            };
            assert!(untorn(seen), "torn read {seen:?}");
            writer.join().expect("the writer thread");
        });
    }
}
