//! Range-bound algebra shared by every log and view: one definition of "tighter" and "empty"
//! for seqs, encoded keys and structured keys alike.
//!
//! ```
//! use std::ops::Bound::{Excluded, Included, Unbounded};
//! use flumedb_core::bounds;
//!
//! assert_eq!(bounds::tighter_lower(&Included(3), &Excluded(3)), Excluded(3));
//! assert_eq!(bounds::tighter_upper(&Unbounded, &Included(9)), Included(9));
//! assert!(bounds::is_empty(&Excluded(4), &Included(4)));
//! assert!(bounds::within_upper(&Excluded(5), &4));
//! assert!(bounds::within_lower(&Included(b"ab".to_vec()), &b"b"[..]));
//! ```

use std::borrow::Borrow;
use std::ops::Bound;

/// The higher (more restrictive) of two lower bounds; at equal values `Excluded` wins.
pub fn tighter_lower<T: Ord + Clone>(a: &Bound<T>, b: &Bound<T>) -> Bound<T> {
    if lower_is_tighter(b, a) {
        b.clone()
    } else {
        a.clone()
    }
}

/// The lower (more restrictive) of two upper bounds; at equal values `Excluded` wins.
pub fn tighter_upper<T: Ord + Clone>(a: &Bound<T>, b: &Bound<T>) -> Bound<T> {
    if upper_is_tighter(b, a) {
        b.clone()
    } else {
        a.clone()
    }
}

/// Whether lower bound `a` admits strictly fewer values than lower bound `b`.
pub fn lower_is_tighter<T: Ord>(a: &Bound<T>, b: &Bound<T>) -> bool {
    match (a, b) {
        (Bound::Unbounded, _) => false,
        (_, Bound::Unbounded) => true,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            x > y || (x == y && matches!(a, Bound::Excluded(_)) && matches!(b, Bound::Included(_)))
        }
    }
}

/// Whether upper bound `a` admits strictly fewer values than upper bound `b`.
pub fn upper_is_tighter<T: Ord>(a: &Bound<T>, b: &Bound<T>) -> bool {
    match (a, b) {
        (Bound::Unbounded, _) => false,
        (_, Bound::Unbounded) => true,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            x < y || (x == y && matches!(a, Bound::Excluded(_)) && matches!(b, Bound::Included(_)))
        }
    }
}

/// Whether no value lies between `lower` and `upper` (`BTreeMap::range` panics on such bounds).
pub fn is_empty<T: Ord>(lower: &Bound<T>, upper: &Bound<T>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u)) => l >= u,
        _ => false,
    }
}

/// Whether `value` satisfies the lower bound.
pub fn within_lower<T: Borrow<Q>, Q: Ord + ?Sized>(lower: &Bound<T>, value: &Q) -> bool {
    match lower {
        Bound::Unbounded => true,
        Bound::Included(l) => value >= l.borrow(),
        Bound::Excluded(l) => value > l.borrow(),
    }
}

/// Whether `value` satisfies the upper bound.
pub fn within_upper<T: Borrow<Q>, Q: Ord + ?Sized>(upper: &Bound<T>, value: &Q) -> bool {
    match upper {
        Bound::Unbounded => true,
        Bound::Included(u) => value <= u.borrow(),
        Bound::Excluded(u) => value < u.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Bound::{Excluded, Included, Unbounded};

    fn all() -> Vec<Bound<u8>> {
        let mut out = vec![Unbounded];
        // Even bounds and every value in 0..10 between them: dense enough that "empty" means
        // the same for integers as for keys.
        for v in [2, 4, 6] {
            out.push(Included(v));
            out.push(Excluded(v));
        }
        out
    }

    fn admits_lower(b: &Bound<u8>, v: u8) -> bool {
        within_lower(b, &v)
    }

    fn admits_upper(b: &Bound<u8>, v: u8) -> bool {
        within_upper(b, &v)
    }

    /// Every operation agrees with brute force over a small domain.
    #[test]
    fn agrees_with_enumeration() {
        for a in all() {
            for b in all() {
                let lower = tighter_lower(&a, &b);
                let upper = tighter_upper(&a, &b);
                let mut some = false;
                for v in 0..10 {
                    assert_eq!(
                        admits_lower(&lower, v),
                        admits_lower(&a, v) && admits_lower(&b, v)
                    );
                    assert_eq!(
                        admits_upper(&upper, v),
                        admits_upper(&a, v) && admits_upper(&b, v)
                    );
                    some |= admits_lower(&a, v) && admits_upper(&b, v);
                }
                assert_eq!(is_empty(&a, &b), !some, "{a:?} {b:?}");
                let fewer_lower = (0..10).filter(|&v| admits_lower(&a, v)).count()
                    < (0..10).filter(|&v| admits_lower(&b, v)).count();
                assert_eq!(lower_is_tighter(&a, &b), fewer_lower, "{a:?} {b:?}");
                let fewer_upper = (0..10).filter(|&v| admits_upper(&a, v)).count()
                    < (0..10).filter(|&v| admits_upper(&b, v)).count();
                assert_eq!(upper_is_tighter(&a, &b), fewer_upper, "{a:?} {b:?}");
            }
        }
    }
}
