//! The synced-end mark (`<log>.synced`, recovery rule 8): what lies past the end the log last
//! fsync'd is cut at its first bad frame, so a power loss that lost an earlier unsynced page
//! and kept a later one leaves no hole (issue 13, findings A and D); without a mark that
//! belongs to the file, open falls back to the scan from the end.

use std::fs;
use std::path::{Path, PathBuf};

use flumedb_core::{Error, Log, Seq, Since, StreamOptions};
use flumelog_offset::{Format, JsWidth, OffsetError, OffsetLog};

/// Records of `len` bytes that are never all zeros (the JS format would read those as deleted).
fn record(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j) as u8 | 1).collect()
}

fn all(log: &OffsetLog) -> Vec<(Seq, Vec<u8>)> {
    log.stream(StreamOptions::new())
        .unwrap()
        .map(|e| e.map(|e| (e.seq, e.data)).unwrap())
        .collect()
}

fn mark_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".synced");
    PathBuf::from(name)
}

/// A log of `format` whose durable part is `synced` records (closed, so its mark is there)
/// followed by `tail` records appended later whose mark is lost: the state a power loss leaves
/// when the tail was never fsync'd. Returns the seqs of both parts.
fn synced_then_tail(
    path: &Path,
    format: Format,
    synced: u32,
    tail: u32,
    len: usize,
) -> (Vec<Seq>, Vec<Seq>) {
    let log = OffsetLog::options().format(format).open(path).unwrap();
    let durable: Vec<Seq> = (0..synced)
        .map(|i| log.append(&record(i, len)).unwrap())
        .collect();
    log.close().unwrap();
    let mark = fs::read(mark_of(path)).unwrap();
    let log = OffsetLog::open(path).unwrap();
    let unsynced: Vec<Seq> = (synced..synced + tail)
        .map(|i| log.append(&record(i, len)).unwrap())
        .collect();
    log.close().unwrap();
    // The mark of the second close never reached the disk.
    fs::write(mark_of(path), mark).unwrap();
    (durable, unsynced)
}

/// Finding A: a page of the unsynced tail lost (zeros) with a later frame kept. Open cuts at
/// the first frame of the hole; nothing before the synced end is touched; appends continue
/// where the cut is, and a second open changes nothing.
#[test]
fn a_hole_in_the_unsynced_tail_is_cut_at_its_first_bad_frame() {
    for format in [
        Format::Native,
        Format::Js(JsWidth::W32),
        Format::Js(JsWidth::W48),
        Format::Js(JsWidth::W53),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        let (durable, tail) = synced_then_tail(&path, format, 3, 6, 3000);
        let mut bytes = fs::read(&path).unwrap();
        let size = bytes.len() as u64;
        // Lose the first page that starts inside the second tail frame; later frames stay
        // whole.
        let hole = tail[1].get().next_multiple_of(4096);
        for b in bytes.iter_mut().skip(hole as usize).take(4096) {
            *b = 0;
        }
        assert!(
            tail[4].get() > hole + 4096,
            "{format:?}: a frame after the hole"
        );
        fs::write(&path, &bytes).unwrap();

        let log = OffsetLog::open(&path).unwrap();
        assert_eq!(log.format(), format);
        let kept = 1;
        let cut = tail[kept].get();
        assert_eq!(log.size(), cut, "{format:?}");
        assert_eq!(log.recovery().dropped_bytes, size - cut, "{format:?}");
        let expected: Vec<(Seq, Vec<u8>)> = durable
            .iter()
            .chain(tail.iter().take(kept))
            .enumerate()
            .map(|(i, seq)| (*seq, record(i as u32, 3000)))
            .collect();
        assert_eq!(all(&log), expected, "{format:?}");
        assert!(log.verify().unwrap().is_ok(), "{format:?}");
        let next = log.append(&record(99, 10)).unwrap();
        assert_eq!(next.get(), cut);
        log.close().unwrap();
        let log = OffsetLog::open(&path).unwrap();
        assert_eq!(log.recovery().dropped_bytes, 0);
        assert_eq!(log.get(next).unwrap(), record(99, 10));
        assert_eq!(log.since(), Since::At(next));
    }
}

/// Finding D: a power loss before the first flush of a new log leaves bytes that hold no valid
/// frame. The mark (the log's start, fsync'd when the log was created) says none of it was
/// synced: it is cut, where a log without a mark must refuse it.
#[test]
fn a_new_log_with_only_unsynced_garbage_opens_empty() {
    for format in [Format::Native, Format::Js(JsWidth::W32)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        OffsetLog::options()
            .format(format)
            .open(&path)
            .unwrap()
            .close()
            .unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let first = bytes.len() as u64;
        bytes.extend((0..5000u32).map(|i| (i * 7 + 3) as u8));
        fs::write(&path, &bytes).unwrap();
        let log = OffsetLog::options().format(format).open(&path).unwrap();
        assert_eq!(log.size(), first, "{format:?}");
        assert_eq!(log.recovery().dropped_bytes, 5000, "{format:?}");
        assert_eq!(log.since(), Since::Empty);
        log.close().unwrap();

        // The same bytes without the mark: refused, unchanged.
        fs::write(&path, &bytes).unwrap();
        fs::remove_file(mark_of(&path)).unwrap();
        match OffsetLog::options().format(format).open(&path) {
            Err(OffsetError::NoValidRecord { .. } | OffsetError::Unsupported { .. }) => {}
            other => panic!(
                "{format:?}: expected a refusal, got {:?}",
                other.map(|_| ())
            ),
        }
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
}

/// A mark behind the real synced end (its last writes lost) only means more is checked: the
/// valid frames past it are all kept.
#[test]
fn a_stale_mark_keeps_every_valid_frame_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let (durable, tail) = synced_then_tail(&path, Format::Js(JsWidth::W48), 2, 4, 700);
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 0);
    assert_eq!(log.format(), Format::Js(JsWidth::W48));
    let seqs: Vec<Seq> = all(&log).into_iter().map(|(seq, _)| seq).collect();
    assert_eq!(seqs, [durable, tail].concat());
}

/// A mark that points where no frame of its seq ends (the file cut shorter, or rewritten by
/// another program) is not trusted either.
#[test]
fn a_mark_that_does_not_match_the_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let (durable, _) = synced_then_tail(&path, Format::Native, 3, 0, 100);
    // Cut the last frame off and append garbage: the mark now points past a frame that is
    // not there. The scan from the end finds the second frame and cuts what follows it.
    let bytes = fs::read(&path).unwrap();
    let mut cut = bytes[..durable[2].get() as usize].to_vec();
    cut.extend([7u8; 50]);
    fs::write(&path, &cut).unwrap();
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.since(), Since::At(durable[1]));
    assert_eq!(log.recovery().dropped_bytes, 50);
}

/// Deletes that reached the disk only in part, past the mark: each finished (its checksum
/// proves it), and the frames after it kept.
#[test]
fn deletes_cut_short_past_the_mark_are_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let (_, tail) = synced_then_tail(&path, Format::Native, 1, 4, 200);
    let mark = fs::read(mark_of(&path)).unwrap();
    let log = OffsetLog::open(&path).unwrap();
    log.del(tail[1]).unwrap();
    log.close().unwrap();
    fs::write(mark_of(&path), mark).unwrap();
    let deleted = fs::read(&path).unwrap();
    // The word and CRC of the delete reached the disk, its zeros did not.
    let mut bytes = deleted.clone();
    let payload = tail[1].get() as usize + 8;
    bytes[payload..payload + 200].copy_from_slice(&record(2, 200));
    fs::write(&path, &bytes).unwrap();
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 0);
    assert_eq!(fs::read(&path).unwrap(), deleted);
    assert!(matches!(log.get(tail[1]), Err(Error::Deleted { .. })));
    assert_eq!(all(&log).len(), 4);
    assert_eq!(log.since(), Since::At(tail[3]));
}

/// Review finding: a new JS log of another width than the default, appended to but never
/// flushed, then torn: its mark (the start, nothing synced) shows no width, and the width
/// detected from the torn tail was the default, so the walk cut every record. Now the width
/// whose walk keeps the most wins.
#[test]
fn a_torn_unflushed_js_log_keeps_its_width_and_records() {
    for width in [JsWidth::W48, JsWidth::W53] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        let log = OffsetLog::options()
            .format(Format::Js(width))
            .open(&path)
            .unwrap();
        let seqs: Vec<Seq> = (0..3)
            .map(|i| log.append(&record(i, 50)).unwrap())
            .collect();
        drop(log); // a crash: no flush, no close
        let mut bytes = fs::read(&path).unwrap();
        let whole = bytes.len() as u64;
        bytes.extend([0, 0, 0, 40, 7, 7]); // a torn fourth frame
        fs::write(&path, &bytes).unwrap();
        let log = OffsetLog::open(&path).unwrap();
        assert_eq!(log.format(), Format::Js(width));
        assert_eq!(log.size(), whole);
        assert_eq!(log.since(), Since::At(seqs[2]));
        assert_eq!(all(&log).len(), 3);
    }
}

/// Review finding: the frame the mark names was damaged after it was synced (a delete torn at
/// a page: the old head kept, zeros after it), so it no longer ends the mark as a valid frame.
/// It was synced: it stays, reads as `Corrupt`, and nothing is cut or its seq reused.
#[test]
fn a_damaged_frame_at_the_mark_is_kept_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let (durable, _) = synced_then_tail(&path, Format::Native, 3, 0, 6000);
    let mut bytes = fs::read(&path).unwrap();
    let size = bytes.len();
    let payload = durable[2].get() as usize + 8;
    let page = payload.next_multiple_of(4096);
    bytes[page..(page + 4096).min(size - 4)].fill(0);
    fs::write(&path, &bytes).unwrap();
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 0);
    assert_eq!(log.size(), size as u64);
    assert_eq!(log.since(), Since::At(durable[2]));
    assert!(matches!(log.get(durable[2]), Err(Error::Corrupt { .. })));
    let next = log.append(b"next").unwrap();
    assert_eq!(next.get(), size as u64);
}

/// Review finding: a group-commit leader still in its fsync when `close` ran recorded its
/// (older) mark after close's, as the newest. Close now waits for it and no leader starts
/// after close: the newest mark is the end close saw.
#[test]
fn close_racing_group_commits_leaves_the_newest_mark_at_the_end() {
    use flumedb_core::persist::SyncedEnd;
    use flumelog_offset::Durability;
    for round in 0..20u32 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.offset");
        let log = OffsetLog::options()
            .durability(Durability::Fsync)
            .open(&path)
            .unwrap();
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..50 {
                        if log.append(&record(t * 100 + i, 64)).is_err() {
                            break; // closed
                        }
                    }
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(u64::from(round % 5) * 3));
            log.close().unwrap();
        });
        drop(log);
        let size = fs::metadata(&path).unwrap().len();
        let (_, mark) = SyncedEnd::open(&path).unwrap();
        assert_eq!(mark.map(|m| m.end), Some(size), "round {round}");
    }
}
