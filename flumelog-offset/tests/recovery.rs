//! Damage and repair: torn tails are cut back to the last good frame, damage in the middle is
//! reported and never truncated, every byte flip in a native log is detected; plus `del`,
//! bad seqs, and reads racing deletes.

use std::fs;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flumedb_core::{Error, Log, Seq, Since, StreamOptions};
use flumelog_offset::{Format, JsWidth, OffsetLog};

fn records(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}", "é".repeat(i % 13)).into_bytes())
        .collect()
}

fn write(path: &Path, format: Format, data: &[Vec<u8>]) -> Vec<Seq> {
    let log = OffsetLog::options().format(format).open(path).unwrap();
    let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let seqs = log.append_batch(&slices).unwrap();
    log.close().unwrap();
    seqs
}

fn all(log: &OffsetLog) -> Vec<(Seq, Vec<u8>)> {
    log.stream(StreamOptions::new())
        .unwrap()
        .map(|e| e.map(|e| (e.seq, e.data)).unwrap())
        .collect()
}

#[test]
fn torn_tails_are_cut_back_to_the_last_good_frame() {
    for format in [
        Format::Native,
        Format::Js(JsWidth::W32),
        Format::Js(JsWidth::W53),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        let data = records(5);
        let seqs = write(&path, format, &data);
        let full = fs::read(&path).unwrap();
        let last = seqs[4].get() as usize;
        // Every cut inside the last frame, and zero-filled tails after the whole log.
        let mut damaged: Vec<Vec<u8>> =
            (last + 1..full.len()).map(|n| full[..n].to_vec()).collect();
        let mut zeros = full.clone();
        zeros.extend([0u8; 4096]);
        damaged.push(zeros);
        for (case, bytes) in damaged.iter().enumerate() {
            fs::write(&path, bytes).unwrap();
            let log = OffsetLog::open(&path).unwrap();
            let keep = if bytes.len() > full.len() { 5 } else { 4 };
            let good_end = if keep == 5 { full.len() } else { last };
            assert_eq!(
                log.recovery().dropped_bytes,
                (bytes.len() - good_end) as u64,
                "{format:?} case {case}"
            );
            assert_eq!(fs::metadata(&path).unwrap().len(), good_end as u64);
            assert_eq!(log.since(), Since::At(seqs[keep - 1]));
            let got = all(&log);
            assert_eq!(got.len(), keep);
            for ((seq, d), (want_seq, want)) in got.iter().zip(seqs.iter().zip(&data)) {
                assert_eq!((seq, d), (want_seq, want));
            }
            // Appending continues where the good data ends.
            let next = log.append(b"next").unwrap();
            assert_eq!(next.get(), good_end as u64);
            log.close().unwrap();
        }
    }
}

#[test]
fn damage_in_the_middle_is_reported_never_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(10);
    let seqs = write(&path, Format::Native, &data);
    let mut bytes = fs::read(&path).unwrap();
    let victim = seqs[4].get() as usize + 10; // inside the payload of record 4
    bytes[victim] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 0);
    assert_eq!(fs::metadata(&path).unwrap().len(), bytes.len() as u64);
    assert!(matches!(log.get(seqs[4]), Err(Error::Corrupt { seq: Some(s), .. }) if s == seqs[4]));
    for i in [0, 3, 5, 9] {
        assert_eq!(log.get(seqs[i]).unwrap(), data[i]);
    }
    let items: Vec<_> = log.stream(StreamOptions::new()).unwrap().collect();
    assert_eq!(items.len(), 5, "four records, then the error");
    assert!(matches!(items[4], Err(Error::Corrupt { .. })));
    let report = log.verify().unwrap();
    assert_eq!(report.records, 9);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].seq, seqs[4]);
    // Reading backwards past it reports it too.
    let back: Vec<_> = log
        .stream(StreamOptions::new().reverse())
        .unwrap()
        .collect();
    assert!(back.iter().any(|r| r.is_err()));
}

/// A tiny deterministic generator (xorshift), so the flips are the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn every_byte_flip_in_a_native_log_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(40);
    let seqs = write(&path, Format::Native, &data);
    let good = fs::read(&path).unwrap();
    let original: std::collections::HashMap<Seq, &Vec<u8>> =
        seqs.iter().copied().zip(&data).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for pos in 0..good.len() {
        let mut bad = good.clone();
        bad[pos] ^= 1 << (rng.next() % 8);
        fs::write(&path, &bad).unwrap();
        let log = match OffsetLog::open(&path) {
            Ok(log) => log,
            Err(_) => continue, // a damaged header is refused at open: detected
        };
        let mut detected = log.recovery().dropped_bytes > 0 || !log.verify().unwrap().is_ok();
        for seq in &seqs {
            match log.get(*seq) {
                // Whatever is returned is exactly what was written: never wrong data.
                Ok(d) => assert_eq!(&&d, original.get(seq).unwrap(), "flip at {pos}"),
                Err(_) => detected = true,
            }
        }
        for item in log.stream(StreamOptions::new()).unwrap() {
            match item {
                Ok(e) => assert_eq!(&&e.data, original.get(&e.seq).unwrap()),
                Err(_) => detected = true,
            }
        }
        // A stream starting at any record's seq yields that record or an error: it never
        // silently skips ahead over damage. (Records recovery cut off are not there at all.)
        for seq in seqs.iter().filter(|s| s.get() < log.size()) {
            match log
                .stream(StreamOptions::new().gte(*seq))
                .map(|mut s| s.next())
            {
                Ok(Some(Ok(e))) => assert_eq!(e.seq, *seq, "flip at {pos}: skipped from {seq}"),
                Ok(None) => panic!("flip at {pos}: nothing from {seq}"),
                Ok(Some(Err(_))) | Err(_) => detected = true,
            }
        }
        assert!(detected, "the flip at byte {pos} went unnoticed");
    }
}

#[test]
fn del_zeroes_a_record_and_streams_skip_it() {
    for format in [Format::Native, Format::Js(JsWidth::W32)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        let data = records(6);
        let seqs = write(&path, format, &data);
        let log = OffsetLog::open(&path).unwrap();
        log.del(seqs[2]).unwrap();
        log.del(seqs[2]).unwrap(); // twice is fine
        assert!(matches!(log.get(seqs[2]), Err(Error::Deleted { .. })));
        assert!(matches!(
            log.del(Seq::new(seqs[2].get() + 1)),
            Err(Error::InvalidSeq { .. })
        ));
        assert!(matches!(
            log.del(Seq::new(1 << 40)),
            Err(Error::NotFound { .. })
        ));
        let got: Vec<Seq> = all(&log).into_iter().map(|(s, _)| s).collect();
        assert_eq!(got, [0, 1, 3, 4, 5].map(|i| seqs[i]));
        let back: Vec<Seq> = log
            .stream(StreamOptions::new().reverse())
            .unwrap()
            .map(|e| e.unwrap().seq)
            .collect();
        assert_eq!(back, [5, 4, 3, 1, 0].map(|i| seqs[i]));
        let report = log.verify().unwrap();
        assert_eq!(
            (report.records, report.deleted, report.problems.len()),
            (5, 1, 0)
        );
        log.close().unwrap();
        // The deletion is in the file: the payload bytes are zeros.
        let bytes = fs::read(&path).unwrap();
        let payload_at = seqs[2].get() as usize + if format == Format::Native { 8 } else { 4 };
        assert!(
            bytes[payload_at..payload_at + data[2].len()]
                .iter()
                .all(|b| *b == 0)
        );
        let log = OffsetLog::open(&path).unwrap();
        assert!(matches!(log.get(seqs[2]), Err(Error::Deleted { .. })));
        assert_eq!(log.get(seqs[3]).unwrap(), data[3]);
    }
}

#[test]
fn bad_seqs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(3);
    let seqs = write(&path, Format::Native, &data);
    let log = OffsetLog::open(&path).unwrap();
    assert!(
        matches!(log.get(Seq::new(3)), Err(Error::InvalidSeq { .. })),
        "inside the header"
    );
    assert!(matches!(
        log.get(Seq::new(seqs[1].get() + 5)),
        Err(Error::InvalidSeq { .. })
    ));
    assert!(matches!(
        log.get(Seq::new(log.size())),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        log.get(Seq::new(u64::MAX)),
        Err(Error::NotFound { .. })
    ));
    // Bounds inside frames are fine for streams: they select by position.
    let from_inside: Vec<Seq> = log
        .stream(
            StreamOptions::new()
                .gt(Seq::new(seqs[0].get() + 3))
                .lte(Seq::new(seqs[2].get() - 1)),
        )
        .unwrap()
        .map(|e| e.unwrap().seq)
        .collect();
    assert_eq!(from_inside, vec![seqs[1]]);
    let mut n = 0;
    log.scan(Bound::Excluded(seqs[0]), Bound::Unbounded, |_, _| {
        n += 1;
        true
    })
    .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn the_js_format_refuses_records_it_would_read_as_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let log = OffsetLog::options()
        .format(Format::Js(JsWidth::W32))
        .open(dir.path().join("log.offset"))
        .unwrap();
    assert!(matches!(log.append(b""), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        log.append(&[0, 0, 0]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(log.since(), Since::Empty);
    assert_eq!(log.size(), 0);
    // The native format stores them.
    let native = OffsetLog::open(dir.path().join("native.offset")).unwrap();
    let seq = native.append(b"").unwrap();
    assert_eq!(native.get(seq).unwrap(), b"");
    let zeros = native.append(&[0, 0, 0]).unwrap();
    assert_eq!(native.get(zeros).unwrap(), vec![0, 0, 0]);
}

#[test]
fn reads_racing_deletes_see_the_record_or_deleted_never_a_mix() {
    for format in [Format::Native, Format::Js(JsWidth::W32)] {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(
            OffsetLog::options()
                .format(format)
                .open(dir.path().join("log.offset"))
                .unwrap(),
        );
        let data: Vec<Vec<u8>> = (0..400)
            .map(|i| vec![b'a' + (i % 26) as u8; 2000])
            .collect();
        let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let seqs = log.append_batch(&slices).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (log, seqs, data, done) =
                    (log.clone(), seqs.clone(), data.clone(), done.clone());
                std::thread::spawn(move || {
                    while !done.load(Ordering::SeqCst) {
                        for (seq, d) in seqs.iter().zip(&data) {
                            match log.get(*seq) {
                                Ok(got) => assert_eq!(&got, d),
                                Err(Error::Deleted { .. }) => {}
                                Err(other) => panic!("{other}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for seq in &seqs {
            log.del(*seq).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        for r in readers {
            r.join().unwrap();
        }
    }
}

/// Binary records full of zero runs (which can mimic frame headers), some deleted.
fn zeroish(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut v = vec![0u8; 16 + (i % 5) * 20];
            v.push(1 + i as u8);
            v.extend((i as u64).to_le_bytes());
            v
        })
        .collect()
}

#[test]
fn bounds_after_deleted_and_zero_filled_records_follow_the_model() {
    for format in [
        Format::Native,
        Format::Js(JsWidth::W32),
        Format::Js(JsWidth::W48),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        let data = zeroish(12);
        let seqs = write(&path, format, &data);
        let log = OffsetLog::open(&path).unwrap();
        let deleted = [seqs[3], seqs[4], seqs[9]];
        for d in deleted {
            log.del(d).unwrap();
        }
        let live: Vec<(Seq, &Vec<u8>)> = seqs
            .iter()
            .copied()
            .zip(&data)
            .filter(|(s, _)| !deleted.contains(s))
            .collect();
        // Every bound at, just after and just before every frame start.
        let mut points: Vec<u64> = seqs
            .iter()
            .flat_map(|s| [s.get(), s.get() + 1, s.get().saturating_sub(1)])
            .collect();
        points.push(log.size() + 10);
        for &p in &points {
            let p = Seq::new(p);
            for (opts, keep) in [
                (
                    StreamOptions::new().gt(p),
                    Box::new(move |s: Seq| s > p) as Box<dyn Fn(Seq) -> bool>,
                ),
                (StreamOptions::new().gte(p), Box::new(move |s: Seq| s >= p)),
                (StreamOptions::new().lt(p), Box::new(move |s: Seq| s < p)),
                (StreamOptions::new().lte(p), Box::new(move |s: Seq| s <= p)),
            ] {
                let want: Vec<Seq> = live.iter().map(|(s, _)| *s).filter(|s| keep(*s)).collect();
                let got: Vec<Seq> = log
                    .stream(opts.clone())
                    .unwrap()
                    .map(|e| e.unwrap().seq)
                    .collect();
                assert_eq!(got, want, "{format:?} {opts:?}");
                let mut back: Vec<Seq> = log
                    .stream(opts.clone().reverse())
                    .unwrap()
                    .map(|e| e.unwrap().seq)
                    .collect();
                back.reverse();
                assert_eq!(back, want, "{format:?} {opts:?} reverse");
            }
        }
        // A live stream that starts after a deleted record keeps going.
        let mut stream = log.stream(StreamOptions::new().gt(seqs[4]).live()).unwrap();
        let next = log
            .append(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7])
            .unwrap();
        // Records 5..=11 except the deleted 9, then the new one.
        let got: Vec<Seq> = (0..7)
            .map(|_| stream.next().unwrap().unwrap().seq)
            .collect();
        let want: Vec<Seq> = [5, 6, 7, 8, 10, 11]
            .map(|i| seqs[i])
            .into_iter()
            .chain([next])
            .collect();
        assert_eq!(got, want, "{format:?}");
    }
}

#[test]
fn a_range_starting_at_a_damaged_frame_reports_it_instead_of_skipping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(6);
    let seqs = write(&path, Format::Native, &data);
    let mut bytes = fs::read(&path).unwrap();
    bytes[seqs[2].get() as usize] ^= 0x40; // record 2's length word
    fs::write(&path, &bytes).unwrap();
    let log = OffsetLog::open(&path).unwrap();
    for opts in [
        StreamOptions::new().gte(seqs[2]),
        StreamOptions::new().gt(seqs[1]),
        StreamOptions::new().gt(Seq::new(seqs[1].get() + 2)),
    ] {
        let first = log.stream(opts.clone()).map(|mut s| s.next());
        assert!(
            matches!(
                first,
                Err(Error::Corrupt { .. }) | Ok(Some(Err(Error::Corrupt { .. })))
            ),
            "{opts:?} gave {first:?}"
        );
    }
    assert!(
        log.stream(StreamOptions::new().gte(seqs[3]))
            .unwrap()
            .next()
            .unwrap()
            .is_ok()
    );
}

#[test]
fn since_never_moves_back_while_flushes_race_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(OffsetLog::open(dir.path().join("log.offset")).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                log.flush().unwrap();
            }
        })
    };
    let watcher = {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || {
            let mut last = Since::Empty;
            while !done.load(Ordering::SeqCst) {
                let now = log.since();
                assert!(now >= last, "since moved back from {last} to {now}");
                last = now;
            }
        })
    };
    let live = log.stream(StreamOptions::new().live().limit(3000)).unwrap();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || live.map(|e| e.unwrap().seq).collect::<Vec<_>>());
        let mut seqs = Vec::new();
        for i in 0..3000u32 {
            seqs.push(log.append(&(i + 1).to_le_bytes()).unwrap());
        }
        assert_eq!(
            reader.join().unwrap(),
            seqs,
            "a live stream saw duplicates or gaps"
        );
    });
    done.store(true, Ordering::SeqCst);
    flusher.join().unwrap();
    watcher.join().unwrap();
}

#[test]
fn reverse_streams_racing_deletes_never_report_false_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(OffsetLog::open(dir.path().join("log.offset")).unwrap());
    let data: Vec<Vec<u8>> = (0..300)
        .map(|i| vec![b'a' + (i % 26) as u8; 3000])
        .collect();
    let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let seqs = log.append_batch(&slices).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                for e in log.stream(StreamOptions::new().reverse()).unwrap() {
                    let e = e.unwrap();
                    assert!(e.data.iter().all(|b| *b == e.data[0]));
                }
            }
        })
    };
    for seq in seqs.iter().rev() {
        log.del(*seq).unwrap();
    }
    done.store(true, Ordering::SeqCst);
    reader.join().unwrap();
}

#[test]
fn a_delete_interrupted_by_a_crash_is_completed_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(4);
    let seqs = write(&path, Format::Native, &data);
    let good = fs::read(&path).unwrap();
    // A crash after the deleted header was written but before the payload was zeroed. `del`
    // writes the deleted word and its checksum together: take both from a real `del` on a
    // copy (a set deleted bit without that checksum is damage, not a delete).
    let interrupt = |victim: usize| {
        let copy = path.with_extension("copy");
        fs::write(&copy, &good).unwrap();
        let log = OffsetLog::open(&copy).unwrap();
        log.del(seqs[victim]).unwrap();
        log.close().unwrap();
        drop(log);
        let deleted = fs::read(&copy).unwrap();
        let mut bytes = good.clone();
        let at = seqs[victim].get() as usize;
        bytes[at..at + 8].copy_from_slice(&deleted[at..at + 8]);
        bytes
    };
    fs::write(&path, interrupt(3)).unwrap(); // the last frame
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 0);
    assert!(matches!(log.get(seqs[3]), Err(Error::Deleted { .. })));
    assert_eq!(log.since(), Since::At(seqs[3]));
    assert_eq!(log.append(b"next").unwrap().get(), good.len() as u64);
    log.close().unwrap();
    drop(log);

    fs::write(&path, interrupt(1)).unwrap(); // in the middle
    let log = OffsetLog::open(&path).unwrap();
    assert!(matches!(log.get(seqs[1]), Err(Error::Corrupt { .. })));
    log.del(seqs[1]).unwrap(); // deleting again completes it
    assert!(matches!(log.get(seqs[1]), Err(Error::Deleted { .. })));
    assert!(log.verify().unwrap().is_ok());
}

#[test]
fn a_garbage_tail_is_cut_and_a_second_open_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(3);
    let seqs = write(&path, Format::Native, &data);
    let mut bytes = fs::read(&path).unwrap();
    let good = bytes.len();
    bytes.extend((0..5000u32).map(|i| (i * 7 + 3) as u8));
    fs::write(&path, &bytes).unwrap();
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 5000);
    assert_eq!(log.since(), Since::At(seqs[2]));
    assert_eq!(log.size(), good as u64);
    match OffsetLog::open(&path) {
        Err(flumelog_offset::OffsetError::Locked { .. }) => {}
        other => panic!("a second open must be refused, got {:?}", other.map(|_| ())),
    }
    log.close().unwrap();
    OffsetLog::open(&path).unwrap();
}

#[test]
fn an_existing_empty_file_stays_a_js_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    fs::write(&path, b"").unwrap(); // as JS flumelog-offset leaves a new log
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.format(), Format::Js(JsWidth::W32));
    assert_eq!(log.size(), 0);
    let fresh = OffsetLog::open(dir.path().join("new.offset")).unwrap();
    assert_eq!(fresh.format(), Format::Native);
}

/// Found by the `offset_log` fuzzer: with a torn tail, recovery picked the width that keeps
/// the most data even when the options asked for another, so an open asking for 32-bit
/// trailers returned a 53-bit log, and the next open with the same options was refused.
#[test]
fn a_torn_js_log_of_another_width_than_asked_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(3);
    let seqs = write(&path, Format::Js(JsWidth::W53), &data);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend([0, 0, 0, 9, b'x']); // a torn next frame: the last frame hides the width
    fs::write(&path, &bytes).unwrap();
    for asked in [JsWidth::W32, JsWidth::W48] {
        let err = OffsetLog::options()
            .format(Format::Js(asked))
            .open(&path)
            .err()
            .expect("a 53-bit log opened as another width must fail");
        assert!(err.to_string().contains("53-bit"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "nothing was changed");
    }
    // Asking for its width, or for none, recovers it; the same options open it again.
    for asked in [Some(JsWidth::W53), None] {
        let options = match asked {
            Some(w) => OffsetLog::options().format(Format::Js(w)),
            None => OffsetLog::options(),
        };
        let log = options.open(&path).unwrap();
        assert_eq!(log.format(), Format::Js(JsWidth::W53));
        assert_eq!(log.get(seqs[2]).unwrap(), data[2]);
        drop(log);
        let again = options.open(&path).unwrap();
        assert_eq!(again.format(), Format::Js(JsWidth::W53));
        assert_eq!(again.recovery().dropped_bytes, 0);
    }
}
