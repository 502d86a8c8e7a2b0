//! The feeder: one background thread per database that streams the log into its views.
//!
//! Each round it groups the views that are behind by their `since`, reads one chunk of records
//! after each group's position, decodes (and maps) every record once, and hands the chunk to
//! every view of the group. Views that share a position share the decoding; a view that is
//! rebuilding from the start does not hold back views that are current, because each round
//! serves every group once. Commands (add a view, rebuild, close) are handled between chunks,
//! so a view is only ever touched by this one thread.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, select};

use crate::chunk::Chunk;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::panic::panic_message;
use crate::seq::Since;
use crate::slot::Slot;
use crate::typed_log::TypedLog;
use crate::views_watch::{Failure, ViewsWatch};
use crate::watch::Subscription;

/// What the database asks of its feeder.
enum Command<T> {
    Add(Box<Slot<T>>),
    Rebuild(Sender<Result<()>>),
    Close(Sender<Vec<Error>>),
}

/// The name panics of the feeder thread are reported under.
const FEEDER: &str = "the flumedb feeder thread";

/// The database's end of its feeder: the command channel and the thread.
pub(crate) struct FeederLink<T> {
    commands: Sender<Command<T>>,
    thread: JoinHandle<()>,
}

impl<T: Send + Sync + 'static> FeederLink<T> {
    /// Starts the feeder thread of a database, feeding views from `typed` in chunks of
    /// `batch_size` records and publishing their progress to `views_watch`.
    pub(crate) fn spawn<L: Log, C: Codec<T>>(
        typed: Arc<TypedLog<L, T, C>>,
        views_watch: Arc<ViewsWatch>,
        batch_size: usize,
    ) -> Result<FeederLink<T>> {
        let (commands, receiver) = crossbeam_channel::unbounded();
        let feeder = Feeder::new(typed, views_watch.clone(), receiver, batch_size);
        let thread = std::thread::Builder::new()
            .name("flumedb-feeder".into())
            .spawn(move || {
                // Views' and logs' panics are caught inside; this catches our own bugs, so
                // readers get an error instead of waiting for a feeder that is gone.
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| feeder.run())) {
                    let cause = Arc::new(Error::Panicked {
                        what: FEEDER.into(),
                        message: panic_message(&panic),
                    });
                    views_watch.update(|state| {
                        for entry in &mut state.views {
                            entry.failure.get_or_insert(Failure {
                                seq: None,
                                cause: cause.clone(),
                            });
                        }
                    });
                }
            })?;
        Ok(FeederLink { commands, thread })
    }

    /// Hands a view to the feeder. If the feeder is gone, the view is closed and
    /// [`Error::Closed`] returned.
    pub(crate) fn add(&self, slot: Slot<T>) -> Result<()> {
        match self.commands.send(Command::Add(Box::new(slot))) {
            Ok(()) => Ok(()),
            Err(failed) => {
                if let Command::Add(mut slot) = failed.0 {
                    let _ = slot.close();
                }
                Err(Error::Closed)
            }
        }
    }

    /// Asks for every view to be reset and rebuilt; the answer arrives on the returned channel
    /// once all have caught up with the log as it is now.
    pub(crate) fn rebuild(&self) -> Result<Receiver<Result<()>>> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.commands
            .send(Command::Rebuild(reply))
            .map_err(|_| Error::Closed)?;
        Ok(answer)
    }

    /// Stops the feeder: it flushes and closes every view. Returns the views' errors, and the
    /// thread's panic if it had one.
    pub(crate) fn close(self) -> Vec<Error> {
        let mut errors = Vec::new();
        let (reply, answer) = crossbeam_channel::bounded(1);
        if self.commands.send(Command::Close(reply)).is_ok()
            && let Ok(view_errors) = answer.recv()
        {
            errors.extend(view_errors);
        }
        drop(self.commands);
        if let Err(panic) = self.thread.join() {
            errors.push(Error::Panicked {
                what: FEEDER.into(),
                message: panic_message(&panic),
            });
        }
        errors
    }
}

struct PendingRebuild {
    target: Since,
    reply: Sender<Result<()>>,
}

/// The feeder thread's state: the views it feeds and the rebuilds it owes an answer.
struct Feeder<L: Log, T, C> {
    typed: Arc<TypedLog<L, T, C>>,
    views_watch: Arc<ViewsWatch>,
    commands: Receiver<Command<T>>,
    log_changes: Subscription,
    batch_size: usize,
    slots: Vec<Slot<T>>,
    rebuilds: Vec<PendingRebuild>,
}

impl<L: Log, T: Send + Sync + 'static, C: Codec<T>> Feeder<L, T, C> {
    fn new(
        typed: Arc<TypedLog<L, T, C>>,
        views_watch: Arc<ViewsWatch>,
        commands: Receiver<Command<T>>,
        batch_size: usize,
    ) -> Self {
        Feeder {
            log_changes: typed.log.since_watch().subscribe(),
            typed,
            views_watch,
            commands,
            batch_size,
            slots: Vec::new(),
            rebuilds: Vec::new(),
        }
    }

    /// The slot at `index`.
    #[allow(
        clippy::indexing_slicing,
        reason = "indexes come from enumerating `slots`, which only ever grows"
    )]
    fn slot_mut(&mut self, index: usize) -> &mut Slot<T> {
        &mut self.slots[index]
    }

    fn run(mut self) {
        loop {
            let mut rebuild_replies = Vec::new();
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Add(slot)) => self.slots.push(*slot),
                    Ok(Command::Rebuild(reply)) => rebuild_replies.push(reply),
                    Ok(Command::Close(reply)) => {
                        return self.shutdown(Some(reply), rebuild_replies);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.shutdown(None, rebuild_replies),
                }
            }
            if !rebuild_replies.is_empty() {
                self.reset_all(rebuild_replies);
            }
            let worked = self.feed_round();
            self.finish_rebuilds();
            self.flush_due(false);
            if worked {
                continue;
            }
            let timeout = self.next_flush_in().unwrap_or(Duration::from_secs(3600));
            // A log closed behind the database's back stops notifying: then wait for commands
            // only, rather than spin on the disconnected channel.
            let never = crossbeam_channel::never();
            let log_changes = if self.typed.log.since_watch().is_closed() {
                &never
            } else {
                self.log_changes.notifications()
            };
            select! {
                recv(self.commands) -> cmd => match cmd {
                    Ok(Command::Add(slot)) => self.slots.push(*slot),
                    Ok(Command::Rebuild(reply)) => self.reset_all(vec![reply]),
                    Ok(Command::Close(reply)) => return self.shutdown(Some(reply), Vec::new()),
                    Err(_) => return self.shutdown(None, Vec::new()),
                },
                recv(log_changes) -> _ => {},
                default(timeout) => {},
            }
        }
    }

    /// Resets every view (once, however many rebuilds asked) and remembers who to tell when
    /// the views have caught up with the log as it is now.
    fn reset_all(&mut self, replies: Vec<Sender<Result<()>>>) {
        // Publish the reset first: readers then wait for the rebuilt state, and a read that
        // already passed its wait sees the epoch change and reads again.
        self.views_watch.update(|state| {
            for slot in &self.slots {
                let entry = state.entry_mut(slot.id);
                entry.since = Since::Empty;
                entry.failure = None;
                entry.epoch += 1;
            }
        });
        let mut failures = Vec::new();
        for slot in &mut self.slots {
            slot.failed = false;
            slot.since = Since::Empty;
            slot.unflushed = 0;
            slot.first_unflushed = None;
            if let Err(failure) = slot.reset() {
                slot.failed = true;
                failures.push((slot.id, failure));
            }
        }
        if !failures.is_empty() {
            self.views_watch.update(|state| {
                for (id, failure) in failures {
                    state.entry_mut(id).failure = Some(failure);
                }
            });
        }
        let target = self.typed.log.since();
        self.rebuilds.extend(
            replies
                .into_iter()
                .map(|reply| PendingRebuild { target, reply }),
        );
    }

    /// Serves every group of views that are behind the log with one chunk. Returns whether
    /// anything was done.
    fn feed_round(&mut self) -> bool {
        if self.typed.log.since_watch().is_closed() {
            return false;
        }
        let target = self.typed.log.since();
        let Since::At(upto) = target else {
            return false;
        };
        let mut groups: BTreeMap<Since, Vec<usize>> = BTreeMap::new();
        for (index, slot) in self.slots.iter().enumerate() {
            if !slot.failed && slot.since < target {
                groups.entry(slot.since).or_default().push(index);
            }
        }
        if groups.is_empty() {
            return false;
        }
        for (since, members) in groups {
            let chunk = Chunk::read(&self.typed, since, upto, self.batch_size);
            let reached = chunk.reached(since, upto);
            self.apply_chunk(&members, &chunk, reached);
        }
        true
    }

    /// Applies a chunk to the views at `members` (indices into the slots, ascending), and
    /// publishes where each now stands.
    fn apply_chunk(&mut self, members: &[usize], chunk: &Chunk<T>, reached: Since) {
        let now = Instant::now();
        let records = &chunk.records[..];
        // Groups list their members in slot order, so the slots come out in `members` order.
        debug_assert!(members.windows(2).all(|w| matches!(w, [a, b] if a < b)));
        let chosen: Vec<&mut Slot<T>> = self
            .slots
            .iter_mut()
            .enumerate()
            .filter(|(index, _)| members.contains(index))
            .map(|(_, slot)| slot)
            .collect();
        let mut applied = chunk.apply_to(chosen).into_iter();
        let mut updates = Vec::with_capacity(members.len());
        for &index in members {
            let slot = self.slot_mut(index);
            let mut failure = None;
            if let Some(result) = applied.next() {
                match result {
                    Ok(()) => {
                        slot.since = reached;
                        slot.unflushed += records.len() as u64;
                        slot.first_unflushed.get_or_insert(now);
                    }
                    Err(failed) => failure = Some(failed),
                }
            } else if chunk.failure.is_none() {
                // Nothing read (the rest was deleted): the view has still passed it.
                slot.since = reached;
            }
            if failure.is_none() {
                failure.clone_from(&chunk.failure);
            }
            slot.failed = failure.is_some();
            updates.push((slot.id, slot.since, failure));
        }
        self.views_watch.update(|state| {
            for (id, since, failure) in updates {
                let entry = state.entry_mut(id);
                entry.since = since;
                if failure.is_some() {
                    entry.failure = failure;
                }
            }
        });
    }

    /// Answers the rebuilds whose views have all caught up (or failed).
    fn finish_rebuilds(&mut self) {
        if self.rebuilds.is_empty() {
            return;
        }
        if self.typed.log.since_watch().is_closed() {
            // The log was closed behind the database's back: the views cannot catch up.
            for pending in self.rebuilds.drain(..) {
                let _ = pending.reply.send(Err(Error::Closed));
            }
            return;
        }
        let slots = &self.slots;
        let views_watch = &self.views_watch;
        self.rebuilds.retain(|pending| {
            if !slots
                .iter()
                .all(|slot| slot.failed || slot.since >= pending.target)
            {
                return true;
            }
            let state = views_watch.lock();
            let failed = slots
                .iter()
                .find(|slot| slot.failed)
                .and_then(|slot| state.entry(slot.id).failed_error());
            let _ = pending.reply.send(failed.map_or(Ok(()), Err));
            false
        });
    }

    /// Flushes the views whose commit policy says so (all with unflushed records if `force`).
    ///
    /// The log is flushed first: a view must never persist a `since` the log has not made
    /// durable, or after a crash it could pair its state with records the log lost (and, once
    /// new records take their place, with the wrong records).
    fn flush_due(&mut self, force: bool) -> Vec<Error> {
        let now = Instant::now();
        let due: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| {
                slot.first_unflushed.is_some_and(|first| {
                    !slot.failed
                        && (force
                            || slot.unflushed >= slot.policy.records.max(1)
                            || now.duration_since(first) >= slot.policy.interval)
                })
            })
            .map(|(index, _)| index)
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        if let Err(err) = self.typed.log.flush() {
            // Views keep their unflushed records and try again one interval later.
            for index in due {
                self.slot_mut(index).first_unflushed = Some(now);
            }
            return vec![err];
        }
        let mut errors = Vec::new();
        let mut failures = Vec::new();
        for index in due {
            let slot = self.slot_mut(index);
            match slot.flush() {
                Ok(()) => {
                    slot.unflushed = 0;
                    slot.first_unflushed = None;
                }
                Err(failure) => {
                    slot.failed = true;
                    errors.push(Error::ViewFailed {
                        view: slot.name.to_string(),
                        seq: None,
                        cause: failure.cause.clone(),
                    });
                    failures.push((slot.id, failure));
                }
            }
        }
        if !failures.is_empty() {
            self.views_watch.update(|state| {
                for (id, failure) in failures {
                    state.entry_mut(id).failure = Some(failure);
                }
            });
        }
        errors
    }

    fn next_flush_in(&self) -> Option<Duration> {
        let now = Instant::now();
        self.slots
            .iter()
            .filter(|slot| !slot.failed)
            .filter_map(|slot| {
                let due = slot.first_unflushed?.checked_add(slot.policy.interval)?;
                Some(due.saturating_duration_since(now))
            })
            .min()
    }

    /// Flushes and closes every view, then answers the close (and any pending rebuild).
    fn shutdown(mut self, reply: Option<Sender<Vec<Error>>>, rebuilds: Vec<Sender<Result<()>>>) {
        let mut errors = self.flush_due(true);
        for slot in &mut self.slots {
            if let Err(failure) = slot.close() {
                errors.push(
                    Arc::try_unwrap(failure.cause).unwrap_or_else(|shared| Error::View {
                        view: slot.name.to_string(),
                        source: shared.to_string().into(),
                    }),
                );
            }
        }
        for pending in self.rebuilds.drain(..) {
            let _ = pending.reply.send(Err(Error::Closed));
        }
        for reply in rebuilds {
            let _ = reply.send(Err(Error::Closed));
        }
        if let Some(reply) = reply {
            let _ = reply.send(errors);
        }
    }
}
