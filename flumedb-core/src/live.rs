//! The live-follow loop shared by [`LogStream`](crate::LogStream) and
//! [`LiveRecords`](crate::LiveRecords): yield the current page, then wait until the log's
//! since moves past what was covered and read the next page up to it.

use std::ops::Bound;

use crate::error::Result;
use crate::seq::{Seq, Since};
use crate::watch::SinceWatch;

/// Where a live read stands: the page being read, and how far the log has been covered.
pub(crate) struct LiveCursor<I> {
    /// Everything up to here has been asked of the log. A page covers its whole range, also
    /// records it does not yield (deleted or skipped ones), so an empty page is never reread.
    covered: Since,
    page: Option<I>,
    done: bool,
}

impl<I, R> LiveCursor<I>
where
    I: Iterator<Item = Result<R>>,
{
    /// A cursor that has covered the log up to `covered` and reads `page` first, if any.
    pub(crate) fn new(covered: Since, page: Option<I>) -> LiveCursor<I> {
        LiveCursor {
            covered,
            page,
            done: false,
        }
    }

    /// The next item: from the current page; once it is exhausted, and if `go_on(covered)`,
    /// from the page `open(after, upto)` over the records after `covered` up to the log's
    /// since, read once the since has moved past `covered` (this blocks). Ends after the
    /// first error (a closed log gives [`Error::Closed`](crate::Error::Closed)).
    pub(crate) fn next(
        &mut self,
        since: &SinceWatch,
        go_on: impl Fn(Since) -> bool,
        mut open: impl FnMut(Bound<Seq>, Seq) -> Result<I>,
    ) -> Option<Result<R>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(page) = &mut self.page {
                match page.next() {
                    Some(Ok(item)) => return Some(Ok(item)),
                    Some(Err(err)) => return self.fail(err),
                    None => self.page = None,
                }
            }
            if !go_on(self.covered) {
                self.done = true;
                return None;
            }
            let upto = match wait_past(since, self.covered) {
                Ok(upto) => upto,
                Err(err) => return self.fail(err),
            };
            let after = match self.covered {
                Since::Empty => Bound::Unbounded,
                Since::At(seq) => Bound::Excluded(seq),
            };
            self.covered = Since::At(upto);
            match open(after, upto) {
                Ok(page) => self.page = Some(page),
                Err(err) => return self.fail(err),
            }
        }
    }

    fn fail(&mut self, err: crate::error::Error) -> Option<Result<R>> {
        self.done = true;
        Some(Err(err))
    }
}

/// Blocks until `since` is past `covered` and returns it. Waits change by change, so a since
/// still behind `covered` (a live read asked to start after the log's end) does not spin.
fn wait_past(since: &SinceWatch, covered: Since) -> Result<Seq> {
    let mut now = since.get();
    loop {
        match now {
            Since::At(seq) if now > covered => return Ok(seq),
            _ => now = since.wait_change(now, None)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// Pages of the seqs within the bounds, out of `0..=9`.
    fn pages(after: Bound<Seq>, upto: Seq) -> Result<std::vec::IntoIter<Result<u64>>> {
        let seqs: Vec<Result<u64>> = (0..=upto.get().min(9))
            .filter(|s| bounds_contain(after, *s))
            .map(Ok)
            .collect();
        Ok(seqs.into_iter())
    }

    fn bounds_contain(after: Bound<Seq>, seq: u64) -> bool {
        crate::bounds::within_lower(&after, &Seq::new(seq))
    }

    #[test]
    fn reads_each_new_page_once_then_ends_on_close() {
        let since = SinceWatch::new(Since::At(Seq::new(2)));
        let mut cursor = LiveCursor::new(Since::Empty, None);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(cursor.next(&since, |_| true, pages).unwrap().unwrap());
        }
        assert_eq!(got, [0, 1, 2]);
        since.set(Since::At(Seq::new(4)));
        assert_eq!(cursor.next(&since, |_| true, pages).unwrap().unwrap(), 3);
        assert_eq!(cursor.next(&since, |_| true, pages).unwrap().unwrap(), 4);
        since.close();
        assert!(matches!(
            cursor.next(&since, |_| true, pages),
            Some(Err(Error::Closed))
        ));
        assert!(cursor.next(&since, |_| true, pages).is_none());
    }

    #[test]
    fn a_since_behind_the_start_waits_instead_of_spinning() {
        let since = SinceWatch::new(Since::At(Seq::new(1)));
        let opened = std::sync::atomic::AtomicUsize::new(0);
        let follower = since.clone();
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut cursor = LiveCursor::new(Since::At(Seq::new(5)), None);
                cursor.next(
                    &follower,
                    |_| true,
                    |after, upto| {
                        opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        pages(after, upto)
                    },
                )
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            since.set(Since::At(Seq::new(6)));
            assert_eq!(reader.join().unwrap().unwrap().unwrap(), 6);
        });
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn go_on_decides_whether_to_wait_for_more() {
        let since = SinceWatch::new(Since::At(Seq::new(0)));
        let mut cursor = LiveCursor::new(
            Since::At(Seq::new(0)),
            pages(Bound::Unbounded, Seq::new(0)).ok(),
        );
        assert_eq!(cursor.next(&since, |_| false, pages).unwrap().unwrap(), 0);
        assert!(cursor.next(&since, |_| false, pages).is_none());
    }
}
