//! In-place field reads: `cargo bench -p flumedb-core --bench doc` (release) reads fields of
//! 100,000 SSB-like messages (the workload of `cargo xtask bench`, 572 bytes each) and prints
//! the cost per record next to the anchor measured in the same run: a full decode into
//! `serde_json::Value` then the same field. Each pass folds what it read into a checksum that
//! must equal the anchor's, so no pass can skip its work. Under `cargo test` it runs once
//! on 2,000 messages as a smoke test.
//!
//! The floor, for comparison: one pass over the record's bytes (a byte sum, which the compiler
//! vectorises), what any reader of a field it must find by scanning pays at least.

use std::hint::black_box;
use std::time::Instant;

use flumedb_core::Doc;
use serde_json::Value;

/// One field, as a checksum contribution: its string's length or its number's low bits.
fn fold_str(s: Option<&str>) -> u64 {
    s.map_or(1, |s| s.len() as u64 + 7)
}

fn best_of(runs: usize, n: usize, mut pass: impl FnMut() -> u64) -> (f64, u64) {
    let mut best = f64::MAX;
    let mut sum = 0;
    for _ in 0..runs {
        let start = Instant::now();
        sum = black_box(pass());
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best * 1e9 / n as f64, sum)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (count, runs) = if full { (100_000, 7) } else { (2_000, 1) };
    let records: Vec<Vec<u8>> = flumedb_bench::messages(count, 1)
        .iter()
        .map(|m| serde_json::to_vec(m).expect("encode"))
        .collect();
    let docs: Vec<Doc> = records.iter().cloned().map(Doc::from_json).collect();
    let bytes: usize = records.iter().map(Vec::len).sum();
    println!(
        "flumedb-core Doc benchmark ({}): {count} SSB-like messages, {} bytes on average, best of {runs}",
        if full { "release" } else { "smoke run" },
        bytes / count
    );
    println!("{:<58} {:>10} {:>12}", "pass", "ns/record", "anchor/this");

    type Pass<'a> = (&'a str, Box<dyn Fn() -> u64 + 'a>);
    let cases: [(&str, &[&str]); 3] = [
        ("value.content.type", &["value", "content", "type"]),
        ("value.author", &["value", "author"]),
        ("timestamp", &["timestamp"]),
    ];
    for (name, path) in cases {
        let anchor: Pass = (
            "serde_json::Value full decode, then the field (anchor)",
            Box::new(|| {
                records
                    .iter()
                    .map(|r| {
                        let v: Value = serde_json::from_slice(r).expect("decode");
                        let f = path.iter().try_fold(&v, |at, key| at.get(key));
                        match f {
                            Some(Value::String(s)) => fold_str(Some(s)),
                            Some(Value::Number(n)) => n.as_f64().map_or(3, |x| x as u64 & 0xff),
                            _ => 1,
                        }
                    })
                    .sum()
            }),
        );
        let in_place: Pass = (
            "Doc::get, the field read in place",
            Box::new(|| {
                docs.iter()
                    .map(|d| match d.get(path).expect("get") {
                        Some(f) if f.as_str().is_some() => fold_str(f.as_str().as_deref()),
                        Some(f) => f.as_f64().map_or(3, |x| x as u64 & 0xff),
                        None => 1,
                    })
                    .sum()
            }),
        );
        println!("field {name}:");
        let (anchor_ns, anchor_sum) = best_of(runs, count, &anchor.1);
        println!("  {:<56} {anchor_ns:>10.1} {:>12}", anchor.0, "1.0×");
        let (ns, sum) = best_of(runs, count, &in_place.1);
        assert_eq!(
            sum, anchor_sum,
            "{name}: the in-place pass read something else"
        );
        println!("  {:<56} {ns:>10.1} {:>11.1}×", in_place.0, anchor_ns / ns);
    }
    // The three fields the query view of the SSB benchmark indexes, read from each record.
    let three: [&[&str]; 3] = [
        &["value", "content", "type"],
        &["value", "author"],
        &["timestamp"],
    ];
    let fold_field = |f: Option<flumedb_core::Field<'_>>| match f {
        Some(f) if f.as_str().is_some() => fold_str(f.as_str().as_deref()),
        Some(f) => f.as_f64().map_or(3, |x| x as u64 & 0xff),
        None => 1,
    };
    println!("three fields (value.content.type, value.author, timestamp):");
    let (anchor_ns, anchor_sum) = best_of(runs, count, || {
        records
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_slice(r).expect("decode");
                three
                    .iter()
                    .map(
                        |path| match path.iter().try_fold(&v, |at, key| at.get(key)) {
                            Some(Value::String(s)) => fold_str(Some(s)),
                            Some(Value::Number(n)) => n.as_f64().map_or(3, |x| x as u64 & 0xff),
                            _ => 1,
                        },
                    )
                    .sum::<u64>()
            })
            .sum()
    });
    println!(
        "  {:<56} {anchor_ns:>10.1} {:>12}",
        "serde_json::Value full decode (anchor)", "1.0×"
    );
    let (ns, sum) = best_of(runs, count, || {
        docs.iter()
            .map(|d| {
                three
                    .iter()
                    .map(|p| fold_field(d.get(p).expect("get")))
                    .sum::<u64>()
            })
            .sum()
    });
    assert_eq!(
        sum, anchor_sum,
        "three fields: Doc::get read something else"
    );
    println!(
        "  {:<56} {ns:>10.1} {:>11.1}×",
        "Doc::get of each",
        anchor_ns / ns
    );
    let set = flumedb_core::FieldSet::new(three);
    let (ns, sum) = best_of(runs, count, || {
        let mut out = [None; 3];
        docs.iter()
            .map(|d| {
                set.read_into(d.root(), &mut out).expect("read");
                out.iter().map(|f| fold_field(*f)).sum::<u64>()
            })
            .sum()
    });
    assert_eq!(
        sum, anchor_sum,
        "three fields: the FieldSet read something else"
    );
    println!(
        "  {:<56} {ns:>10.1} {:>11.1}×",
        "FieldSet, one pass",
        anchor_ns / ns
    );
    let (floor_ns, _) = best_of(runs, count, || {
        docs.iter()
            .map(|d| d.as_bytes().iter().map(|&b| u64::from(b)).sum::<u64>())
            .sum()
    });
    println!("floor: one pass over every byte (a byte sum) {floor_ns:>25.1}");
}
