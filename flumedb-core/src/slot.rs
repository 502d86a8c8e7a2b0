//! [`Slot`]: a view as the feeder holds it, with its types erased, its feeding bookkeeping,
//! and every call into it guarded so that its errors and panics stop only that view.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{BoxError, Error};
use crate::panic::panic_message;
use crate::record::Record;
use crate::seq::{Seq, Since};
use crate::view::{Checkpoint, CommitPolicy, View};
use crate::views_watch::Failure;

/// A [`View`] with its types erased, so the feeder can hold views of different kinds.
trait DynView<T>: Send {
    fn apply(&mut self, records: &[Record<T>], checkpoint: Checkpoint) -> Result<(), BoxError>;
    fn flush(&mut self) -> Result<(), BoxError>;
    fn reset(&mut self) -> Result<(), BoxError>;
    fn close(&mut self) -> Result<(), BoxError>;
}

impl<T, V: View<T>> DynView<T> for V {
    fn apply(&mut self, records: &[Record<T>], checkpoint: Checkpoint) -> Result<(), BoxError> {
        View::apply(self, records, checkpoint).map_err(|e| Box::new(e) as BoxError)
    }
    fn flush(&mut self) -> Result<(), BoxError> {
        View::flush(self).map_err(|e| Box::new(e) as BoxError)
    }
    fn reset(&mut self) -> Result<(), BoxError> {
        View::reset(self).map_err(|e| Box::new(e) as BoxError)
    }
    fn close(&mut self) -> Result<(), BoxError> {
        View::close(self).map_err(|e| Box::new(e) as BoxError)
    }
}

/// A view as the feeder holds it.
pub(crate) struct Slot<T> {
    /// The view's index in the views watch.
    pub(crate) id: usize,
    pub(crate) name: Arc<str>,
    view: Box<dyn DynView<T>>,
    /// The last record the view has passed.
    pub(crate) since: Since,
    pub(crate) policy: CommitPolicy,
    pub(crate) failed: bool,
    /// Records applied since the last flush, and when the first of them was.
    pub(crate) unflushed: u64,
    pub(crate) first_unflushed: Option<Instant>,
}

impl<T> Slot<T> {
    /// View `id` of the views watch, called `name`, whose state reaches `since`.
    pub(crate) fn new<V: View<T>>(id: usize, name: Arc<str>, view: V, since: Since) -> Slot<T> {
        Slot {
            id,
            name,
            policy: view.commit_policy(),
            view: Box::new(view),
            since,
            failed: false,
            unflushed: 0,
            first_unflushed: None,
        }
    }

    /// [`View::apply`], guarded.
    pub(crate) fn apply(
        &mut self,
        records: &[Record<T>],
        checkpoint: Checkpoint,
    ) -> Result<(), Failure> {
        let range = records
            .first()
            .zip(records.last())
            .map(|(f, l)| (f.seq, l.seq));
        guarded(&self.name, range, || self.view.apply(records, checkpoint))
    }

    /// [`View::flush`], guarded.
    pub(crate) fn flush(&mut self) -> Result<(), Failure> {
        guarded(&self.name, None, || self.view.flush())
    }

    /// [`View::reset`], guarded.
    pub(crate) fn reset(&mut self) -> Result<(), Failure> {
        guarded(&self.name, None, || self.view.reset())
    }

    /// [`View::close`], guarded.
    pub(crate) fn close(&mut self) -> Result<(), Failure> {
        guarded(&self.name, None, || self.view.close())
    }
}

/// Runs view code, turning its errors and panics into a [`Failure`] for the view `name`.
/// `range` is the first and last seq of the records being applied, if any.
fn guarded(
    name: &str,
    range: Option<(Seq, Seq)>,
    f: impl FnOnce() -> Result<(), BoxError>,
) -> Result<(), Failure> {
    let seq = range.and_then(|(first, last)| (first == last).then_some(first));
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(Failure {
            seq,
            cause: Arc::new(Error::View {
                view: name.to_string(),
                source,
            }),
        }),
        Err(panic) => {
            let message = panic_message(&panic);
            let source: BoxError = match range {
                Some((first, last)) => {
                    format!("panicked applying records {first}..={last}: {message}").into()
                }
                None => format!("panicked: {message}").into(),
            };
            Err(Failure {
                seq,
                cause: Arc::new(Error::View {
                    view: name.to_string(),
                    source,
                }),
            })
        }
    }
}
