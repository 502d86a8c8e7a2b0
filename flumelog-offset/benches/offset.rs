//! flumelog-offset speed: `cargo bench -p flumelog-offset` (release) prints each figure next to
//! its target from the issue. Under `cargo test` it runs once with tiny sizes as a smoke test.
//!
//! - batched append of 100-byte records, no fsync (target ≥ 5,000,000 records/s)
//! - `get` of raw bytes (target ≤ 100 ns)
//! - full forward scan of raw frames from the page cache (target ≥ 2 GB/s), and for
//!   information the same walk through `Log::range`, which copies each record out
//! - open of a 1 GB log (target ≤ 5 ms)
//! - and, for information: fsync'd appends, alone and with group commit.

use std::hint::black_box;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flumedb_core::{Log, Seq};
use flumelog_offset::{Durability, Format, JsWidth, OffsetLog};

struct Sizes {
    records: usize,
    batch: usize,
    gets: usize,
    big_log_bytes: u64,
    fsync_appends: usize,
}

fn payloads(n: usize) -> Vec<Vec<u8>> {
    // 100-byte JSON-ish records with varying content.
    (0..n)
        .map(|i| {
            let mut s = format!(
                "{{\"author\":\"@{:08x}\",\"seq\":{i},\"text\":\"",
                i * 2_654_435_761
            );
            while s.len() < 98 {
                s.push((b'a' + (s.len() + i) as u8 % 26) as char);
            }
            s.push_str("\"}");
            s.into_bytes()
        })
        .collect()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Whether this is a real run (`cargo bench`); under `cargo test` it is a smoke test.
static FULL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn report(figure: &str, value: String, target: &str, ok: bool) {
    if *FULL.get().unwrap_or(&false) {
        let mark = if ok { "meets" } else { "MISSES" };
        println!("{figure:<52} {value:>18}   target {target:<14} {mark}");
    } else {
        println!("{figure:<52} {value:>18}   (smoke run: no verdict)");
    }
}

fn append_batched(
    path: &Path,
    format: Format,
    data: &[Vec<u8>],
    batch: usize,
) -> (OffsetLog, Vec<Seq>, f64) {
    let log = OffsetLog::options().format(format).open(path).unwrap();
    let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut seqs = Vec::with_capacity(data.len());
    let start = Instant::now();
    for chunk in slices.chunks(batch) {
        seqs.extend(log.append_batch(chunk).unwrap());
    }
    let rate = data.len() as f64 / start.elapsed().as_secs_f64();
    (log, seqs, rate)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    FULL.set(full).expect("set once");
    let sizes = if full {
        Sizes {
            records: 5_000_000,
            batch: 10_000,
            gets: 2_000_000,
            big_log_bytes: 1 << 30,
            fsync_appends: 300,
        }
    } else {
        Sizes {
            records: 20_000,
            batch: 1_000,
            gets: 10_000,
            big_log_bytes: 4 << 20,
            fsync_appends: 10,
        }
    };
    // On the real disk (not a RAM /tmp), inside the target directory.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = payloads(sizes.records);
    println!(
        "flumelog-offset benchmark ({} mode): {} records of 100 bytes, batches of {}",
        if full {
            "full"
        } else {
            "smoke: a debug build with tiny sizes, figures mean nothing; use cargo bench for the real"
        },
        sizes.records,
        sizes.batch
    );

    // 1. Batched appends, no fsync, in both formats: the median of 7 runs of 1M records
    //    (112 MB each). Runs of several hundred MB measure the VM's dirty-page writeback
    //    more than this code: their rate swings by 5x from run to run here.
    let append_data = &data[..data.len().min(1_000_000)];
    for format in [Format::Native, Format::Js(JsWidth::W32)] {
        let mut rates: Vec<f64> = (0..7)
            .map(|run| {
                let path = dir.path().join(format!("append-{run}.offset"));
                let (log, _, rate) = append_batched(&path, format, append_data, sizes.batch);
                log.close().unwrap();
                std::fs::remove_file(&path).unwrap();
                rate
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        report(
            &format!("append, batched, no fsync ({format:?}), median of 7"),
            format!("{:.2} M records/s", median / 1e6),
            "≥ 5 M/s",
            median >= 5e6,
        );
        println!(
            "{:<52} {:>18}",
            "  (slowest, fastest run)",
            format!(
                "{:.2}, {:.2} M/s",
                rates[0] / 1e6,
                rates[rates.len() - 1] / 1e6
            )
        );
    }

    // 2. get of raw bytes, random order: within a hot set of 10,000 records (1 MB, in CPU
    //    caches), and across the whole log (bound by memory latency and page faults).
    let path = dir.path().join("get.offset");
    let (log, seqs, _) = append_batched(&path, Format::Native, &data, sizes.batch);
    for (label, span) in [
        ("hot set of 10,000 records", 10_000.min(seqs.len())),
        ("whole log", seqs.len()),
    ] {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let base = seqs.len() / 2 - span / 2;
        let order: Vec<Seq> = (0..sizes.gets)
            .map(|_| seqs[base + (rng.next() % span as u64) as usize])
            .collect();
        for seq in &order {
            black_box(log.get(*seq).unwrap());
        }
        let start = Instant::now();
        let mut bytes = 0usize;
        for seq in &order {
            bytes += black_box(log.get(*seq).unwrap()).len();
        }
        let per_get = start.elapsed().as_nanos() as f64 / order.len() as f64;
        black_box(bytes);
        report(
            &format!("get of raw bytes, random seqs, {label}"),
            format!("{per_get:.0} ns"),
            "≤ 100 ns",
            per_get <= 100.0,
        );
    }

    // The floor for the whole-log figure: a chain of dependent random 8-byte reads (each
    // address depends on the value read before, as a get's trailer depends on its length)
    // from a plain buffer of the log's size, in the same run. No log code at all.
    {
        let len = log.size() as usize / 8;
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let chain: Vec<u64> = (0..len).map(|_| rng.next() % len as u64).collect();
        let start = Instant::now();
        let mut at = 0usize;
        for _ in 0..sizes.gets {
            at = chain[at] as usize;
        }
        black_box(at);
        let per = start.elapsed().as_nanos() as f64 / sizes.gets as f64;
        println!(
            "{:<52} {:>18}",
            "  floor: one dependent random read, same-size buffer",
            format!("{per:.0} ns")
        );
    }

    // 3. Full forward scan of raw frames (checksums checked), warm page cache.
    let mut best_scan = 0.0f64;
    for _ in 0..5 {
        let start = Instant::now();
        let mut sum = 0u64;
        let n = log
            .scan(Bound::Unbounded, Bound::Unbounded, |_, d| {
                sum += d.len() as u64;
                true
            })
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(n as usize, data.len());
        black_box(sum);
        best_scan = best_scan.max(log.size() as f64 / secs);
    }
    report(
        "full forward scan of raw frames (native)",
        format!("{:.2} GB/s", best_scan / 1e9),
        "≥ 2 GB/s",
        best_scan >= 2e9,
    );
    // 3b. The same walk through `Log::range`, which copies each record out (what streams and
    //     view rebuilds read): its cost next to the in-place scan, measured in the same run.
    let mut best_range = 0.0f64;
    for _ in 0..5 {
        let start = Instant::now();
        let mut sum = 0u64;
        let mut n = 0usize;
        for entry in log
            .range(Bound::Unbounded, Bound::Unbounded, false)
            .unwrap()
        {
            sum += entry.unwrap().data.len() as u64;
            n += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(n, data.len());
        black_box(sum);
        best_range = best_range.max(log.size() as f64 / secs);
    }
    println!(
        "{:<52} {:>18}   {:.2}x the in-place scan",
        "  forward Log::range, records copied out (native)",
        format!("{:.2} GB/s", best_range / 1e9),
        best_range / best_scan
    );
    log.close().unwrap();
    drop(log);
    std::fs::remove_file(&path).unwrap();

    // 4. Open of a 1 GB log (no full scan at open).
    let path = dir.path().join("big.offset");
    {
        let log = OffsetLog::open(&path).unwrap();
        let chunk: Vec<&[u8]> = data.iter().take(sizes.batch).map(Vec::as_slice).collect();
        while log.size() < sizes.big_log_bytes {
            log.append_batch(&chunk).unwrap();
        }
        log.close().unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let mut opens: Vec<Duration> = (0..21)
        .map(|_| {
            let start = Instant::now();
            let log = OffsetLog::open(&path).unwrap();
            let took = start.elapsed();
            assert!(log.since() > flumedb_core::Since::Empty);
            drop(log);
            took
        })
        .collect();
    opens.sort();
    let median = opens[opens.len() / 2];
    report(
        &format!("open of a {:.2} GB log (median of 21)", size as f64 / 1e9),
        format!("{:.3} ms", median.as_secs_f64() * 1e3),
        "≤ 5 ms",
        median <= Duration::from_millis(5),
    );
    std::fs::remove_file(&path).unwrap();

    // 5. For information: fsync'd appends, one writer, then 8 writers sharing fsyncs.
    let path = dir.path().join("fsync.offset");
    let log = Arc::new(
        OffsetLog::options()
            .durability(Durability::Fsync)
            .open(&path)
            .unwrap(),
    );
    let start = Instant::now();
    for d in data.iter().take(sizes.fsync_appends) {
        log.append(d).unwrap();
    }
    let single = sizes.fsync_appends as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let log = log.clone();
            let mine: Vec<Vec<u8>> = data
                .iter()
                .skip(w)
                .step_by(8)
                .take(sizes.fsync_appends)
                .cloned()
                .collect();
            std::thread::spawn(move || {
                for d in &mine {
                    log.append(d).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let grouped = (8 * sizes.fsync_appends) as f64 / start.elapsed().as_secs_f64();
    println!(
        "{:<52} {:>18}",
        "append + fsync, 1 writer",
        format!("{single:.0} /s")
    );
    println!(
        "{:<52} {:>18}",
        "append + fsync, 8 writers (group commit)",
        format!("{grouped:.0} /s")
    );
}
