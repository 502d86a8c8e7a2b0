//! Property test: random interleavings of append, read, rebuild, reopen and version bumps,
//! checked against a plain `Vec` of everything appended.
//!
//! `FLUMEDB_SOAK=1` (`cargo xtask test-all --soak`) runs many more cases.

use std::path::Path;

use flumedb_core::{Flume, FlumeOptions, Json, Since, Wait};
use flumelog_memory::MemoryLog;
use flumeview_reduce::{Reduce, ReduceHandle};
use proptest::prelude::*;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
enum Op {
    Append(i64),
    AppendBatch(Vec<i64>),
    Read,
    ReadNow,
    Rebuild,
    Reopen,
    BumpVersion,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (-1000i64..1000).prop_map(Op::Append),
        3 => prop::collection::vec(-1000i64..1000, 0..40).prop_map(Op::AppendBatch),
        4 => Just(Op::Read),
        2 => Just(Op::ReadNow),
        1 => Just(Op::Rebuild),
        1 => Just(Op::Reopen),
        1 => Just(Op::BumpVersion),
    ]
}

type SumCount = (i64, u64);

/// Sum and count of every value.
fn all(version: u32) -> Reduce<Value, SumCount> {
    Reduce::with_map(
        version,
        (0, 0),
        |v: &Value| v.as_i64(),
        |(s, c): &mut SumCount, x| {
            *s += x;
            *c += 1;
        },
    )
}

/// Sum of the even values; the version changes what "weight" they get, so a version bump
/// that reused old state would be caught.
fn evens(version: u32) -> Reduce<Value, i64> {
    let weight = i64::from(version);
    Reduce::with_map(
        version,
        0,
        |v: &Value| v.as_i64().filter(|x| x % 2 == 0),
        move |s: &mut i64, x| *s += weight * x,
    )
}

struct Db {
    db: Flume<MemoryLog, Value>,
    all: ReduceHandle<SumCount>,
    evens: ReduceHandle<i64>,
}

fn open(dir: &Path, evens_version: u32, batch_size: usize) -> Db {
    let db = FlumeOptions::new()
        .batch_size(batch_size)
        .open(MemoryLog::open(dir).unwrap(), Json)
        .unwrap();
    let all = db.add_view("all", all(1)).unwrap();
    let evens = db.add_view("evens", evens(evens_version)).unwrap();
    Db { db, all, evens }
}

fn expect_all(model: &[i64]) -> SumCount {
    (model.iter().sum(), model.len() as u64)
}

fn expect_evens(model: &[i64], version: u32) -> i64 {
    model.iter().filter(|x| *x % 2 == 0).sum::<i64>() * i64::from(version)
}

fn cases() -> u32 {
    if std::env::var_os("FLUMEDB_SOAK").is_some() {
        2000
    } else {
        48
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn views_agree_with_the_model(ops in prop::collection::vec(op(), 1..40), batch in 1usize..64) {
        let dir = tempfile::tempdir().unwrap();
        let mut version = 1;
        let mut db = open(dir.path(), version, batch);
        let mut model: Vec<i64> = Vec::new();
        for op in ops {
            match op {
                Op::Append(x) => {
                    db.db.append(&json!(x)).unwrap();
                    model.push(x);
                }
                Op::AppendBatch(xs) => {
                    let values: Vec<Value> = xs.iter().map(|x| json!(x)).collect();
                    let seqs = db.db.append_batch(&values).unwrap();
                    prop_assert_eq!(seqs.len(), xs.len());
                    model.extend(xs);
                }
                Op::Read => {
                    prop_assert_eq!(db.all.get().unwrap(), expect_all(&model));
                    prop_assert_eq!(db.evens.get().unwrap(), expect_evens(&model, version));
                }
                Op::ReadNow => {
                    // Without waiting, the state is that of some prefix of the log, and its
                    // since says which.
                    let meta = db.all.get_meta_with(Wait::Now).unwrap();
                    let upto = match meta.since {
                        Since::Empty => 0,
                        Since::At(seq) => seq.get() as usize + 1,
                    };
                    prop_assert!(upto <= model.len());
                    prop_assert_eq!(meta.value, expect_all(&model[..upto]));
                }
                Op::Rebuild => {
                    db.db.rebuild().unwrap();
                    // rebuild() returns caught up: no waiting needed.
                    prop_assert_eq!(db.all.get_with(Wait::Now).unwrap(), expect_all(&model));
                    prop_assert_eq!(db.evens.get_with(Wait::Now).unwrap(), expect_evens(&model, version));
                }
                Op::Reopen => {
                    db.db.close().unwrap();
                    drop(db);
                    db = open(dir.path(), version, batch);
                    prop_assert_eq!(db.all.get().unwrap(), expect_all(&model));
                }
                Op::BumpVersion => {
                    db.db.close().unwrap();
                    drop(db);
                    version += 1;
                    db = open(dir.path(), version, batch);
                    prop_assert_eq!(db.evens.get().unwrap(), expect_evens(&model, version));
                }
            }
        }
        prop_assert_eq!(db.all.get().unwrap(), expect_all(&model));
        prop_assert_eq!(db.evens.get().unwrap(), expect_evens(&model, version));
        db.db.close().unwrap();
    }
}
