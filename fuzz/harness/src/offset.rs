//! `offset_log`: flumelog-offset's format detection, tail recovery and frame decoding, through
//! the public API (the bytes are written to a file and opened), in both formats and every JS
//! trailer width.
//!
//! Input: one control byte, then the file's bytes. Control bits 0-2 pick the format the options
//! ask for (0, 5-7: none; 1: native; 2, 3, 4: JS 32, 48, 53); bit 3 with no file bytes: no file
//! at all (open creates it) rather than an empty one. The file is opened without a synced-end
//! mark (`log.offset.synced`); with bit 5, a log that opened clean is then closed (which marks
//! its end synced) and the file's bytes appended after it as an unsynced tail: open must keep
//! everything below the mark and only whole frames of the tail (recovery rule 8).

use std::ops::Bound;
use std::path::Path;

use flumedb_core::{Log, Seq};
use flumelog_offset::{Format, JsWidth, OffsetError, OffsetLog};

use crate::scratch;

const NATIVE_HEADER_LEN: usize = 16;
const DELETED: u32 = 1 << 31;
/// The synced-end mark file beside `log.offset`.
const MARK: &str = "log.offset.synced";

/// The harness: see the module documentation for the input.
pub fn offset_log(data: &[u8]) {
    let Some((&control, file)) = data.split_first() else {
        return;
    };
    let wanted = match control & 7 {
        1 => Some(Format::Native),
        2 => Some(Format::Js(JsWidth::W32)),
        3 => Some(Format::Js(JsWidth::W48)),
        4 => Some(Format::Js(JsWidth::W53)),
        _ => None,
    };
    let missing = control & 8 != 0 && file.is_empty();
    let path = scratch::dir().join("log.offset");
    scratch::put(&path, (!missing).then_some(file));
    scratch::put(&scratch::dir().join(MARK), None);
    let opened = open(&path, wanted);
    match opened {
        Err(err) => {
            // A refusal is about the bytes (typed), never an I/O failure on a healthy disk.
            assert!(
                matches!(
                    err,
                    OffsetError::BadHeader { .. }
                        | OffsetError::UnsupportedVersion { .. }
                        | OffsetError::FormatMismatch { .. }
                        | OffsetError::NoValidRecord { .. }
                        | OffsetError::Unsupported { .. }
                ),
                "unexpected error kind: {err:?}"
            );
            assert!(!missing, "creating a log failed: {err}");
            assert_eq!(
                scratch::read(&path),
                file,
                "a refused file was changed ({err})"
            );
        }
        Ok(log) => check_opened(&log, &path, file, wanted, control),
    }
}

fn open(path: &Path, wanted: Option<Format>) -> Result<OffsetLog, OffsetError> {
    match wanted {
        Some(format) => OffsetLog::options().format(format).open(path),
        None => OffsetLog::open(path),
    }
}

/// Everything an opened log promises about the file it opened and the records it returns.
fn check_opened(log: &OffsetLog, path: &Path, file: &[u8], wanted: Option<Format>, control: u8) {
    let format = log.format();
    match wanted {
        Some(Format::Native) => assert_eq!(format, Format::Native),
        Some(Format::Js(_)) => assert!(matches!(format, Format::Js(_)), "{format:?}"),
        None => {}
    }
    let after = scratch::read(path);
    assert_eq!(
        log.size(),
        after.len() as u64,
        "size() is not the file's size"
    );
    let recovery = log.recovery();
    // At most a header's worth of zeros: a native header lost to a power loss, which opens as
    // a new log (recovery rule 7 in docs/file-formats.md), dropping those zeros.
    let lost_header = !file.is_empty()
        && file.len() as u64 <= NATIVE_HEADER_LEN as u64
        && file.iter().all(|b| *b == 0);
    if file.is_empty() || lost_header {
        // A new (or empty) file: a native header, or nothing for JS.
        let expected = if format == Format::Native {
            NATIVE_HEADER_LEN
        } else {
            0
        };
        assert_eq!(after.len(), expected, "{format:?}");
        assert_eq!(recovery.dropped_bytes, file.len() as u64);
        assert_eq!(recovery.file_size, file.len() as u64);
    } else {
        assert_eq!(recovery.file_size, file.len() as u64);
        assert_eq!(
            recovery.dropped_bytes,
            (file.len() - after.len()) as u64,
            "recovery() does not match the cut"
        );
        assert!(after.len() <= file.len(), "opening grew the file");
        check_only_cut(format, file, &after);
    }
    let forward = read_all(log, format, &after, false);
    let backward = read_all(log, format, &after, true);
    let report = match log.verify() {
        Ok(report) => report,
        Err(e) => panic!("verify failed: {e}"),
    };
    assert_eq!(report.bytes, after.len() as u64);
    if report.is_ok() {
        // An undamaged log reads whole, both ways, with as many records as verify counted.
        let (records, error) = forward;
        assert!(
            error.is_none(),
            "range failed on a log verify passes: {error:?}"
        );
        assert_eq!(
            records.len() as u64,
            report.records,
            "range and verify disagree"
        );
        let (mut back, error) = backward;
        assert!(
            error.is_none(),
            "reverse range failed on a clean log: {error:?}"
        );
        back.reverse();
        assert_eq!(back, records, "reverse range is not range reversed");
        // An empty record (bit 4) reads as deleted in the JS format: append one only where
        // it is a record.
        let appended: &[u8] = if control & 16 != 0 && format == Format::Native {
            b""
        } else {
            b"fuzz"
        };
        let expected = append_and_reopen(log, path, &after, wanted, &records, appended);
        if control & 32 != 0 {
            unsynced_tail(path, wanted, format, &expected, file);
        }
    }
}

/// The log at `path` was closed (its mark covers the whole file, holding `records`); `tail` is
/// appended as bytes that were never synced. Open keeps every synced byte and record, and of
/// the tail only frames that pass their checks (a delete cut short may be finished).
fn unsynced_tail(
    path: &Path,
    wanted: Option<Format>,
    format: Format,
    records: &[(u64, Vec<u8>)],
    tail: &[u8],
) {
    let synced = scratch::read(path);
    let mut bytes = synced.clone();
    bytes.extend_from_slice(tail);
    scratch::put(path, Some(&bytes));
    // The synced part holds at least the record `append_and_reopen` added, so its bytes (not
    // the tail's) decide the format.
    let log = match open(path, wanted) {
        Ok(log) => log,
        Err(err) => panic!("a tail past the synced end was refused: {err}"),
    };
    let after = scratch::read(path);
    assert!(
        after.len() >= synced.len() && after.len() <= bytes.len(),
        "open cut below the synced end ({} of {} synced bytes kept)",
        after.len(),
        synced.len()
    );
    assert_eq!(
        after.get(..synced.len()),
        Some(synced.as_slice()),
        "open changed synced bytes"
    );
    assert_eq!(
        log.recovery().dropped_bytes,
        (bytes.len() - after.len()) as u64
    );
    assert_eq!(log.format(), format, "the synced part's format changed");
    let report = match log.verify() {
        Ok(report) => report,
        Err(e) => panic!("verify failed: {e}"),
    };
    assert!(
        report.is_ok(),
        "open kept a bad frame past the synced end: {report:?}"
    );
    let (found, error) = read_all(&log, format, &after, false);
    assert!(error.is_none(), "reading failed: {error:?}");
    assert_eq!(
        found.get(..records.len()),
        Some(records),
        "the synced records changed"
    );
}

/// Opening changes the file only by cutting its tail, or by finishing a native delete that a
/// crash interrupted in the last frame (its payload zeroed, its head marked deleted).
fn check_only_cut(format: Format, file: &[u8], after: &[u8]) {
    let Some(kept) = file.get(..after.len()) else {
        panic!("opening grew the file");
    };
    let Some(first_diff) = kept.iter().zip(after).position(|(a, b)| a != b) else {
        return;
    };
    assert_eq!(
        format,
        Format::Native,
        "a JS file was rewritten at byte {first_diff}"
    );
    let end = after.len();
    let len = le32(after, end - 4).map_or(0, |l| l as usize);
    let start = end.checked_sub(len + 12);
    let start = match start {
        Some(start) if start >= NATIVE_HEADER_LEN && start <= first_diff => start,
        _ => panic!("byte {first_diff} changed outside the last frame (ends at {end})"),
    };
    let word = le32(after, start).unwrap_or(0);
    assert_eq!(
        word,
        len as u32 | DELETED,
        "a finished delete is marked deleted"
    );
    assert!(
        after
            .get(start + 8..end - 4)
            .is_some_and(|p| p.iter().all(|b| *b == 0)),
        "a finished delete zeroes its payload"
    );
    let crc = le32(after, start + 4).unwrap_or(0);
    let payload = after.get(start + 8..end - 4).unwrap_or_default();
    assert_eq!(
        crc,
        native_crc(start as u64, word, payload),
        "its checksum holds"
    );
}

/// The records of a range over the whole log (up to its first error), each checked against
/// the file's bytes by this harness's own decoder and against `get`.
fn read_all(
    log: &OffsetLog,
    format: Format,
    file: &[u8],
    reverse: bool,
) -> (Vec<(u64, Vec<u8>)>, Option<String>) {
    let iter = match log.range(Bound::Unbounded, Bound::Unbounded, reverse) {
        Ok(iter) => iter,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
    for item in iter {
        let entry = match item {
            Ok(entry) => entry,
            Err(e) => return (records, Some(e.to_string())),
        };
        let seq = entry.seq.get();
        if let Some(&(prev, _)) = records.last() {
            assert!(
                if reverse { seq < prev } else { seq > prev },
                "range out of order: {prev} then {seq} (reverse: {reverse})"
            );
        }
        assert_eq!(
            frame_payload(format, file, seq),
            Some(entry.data.as_slice()),
            "the record at {seq} does not pass its frame's checks"
        );
        match log.get(Seq::new(seq)) {
            Ok(data) => assert_eq!(data, entry.data, "get({seq}) differs from range"),
            Err(e) => panic!("get({seq}) of a record range returned failed: {e}"),
        }
        records.push((seq, entry.data));
    }
    (records, None)
}

/// A recovered log takes appends, and reopening it changes nothing and finds them.
fn append_and_reopen(
    log: &OffsetLog,
    path: &Path,
    before: &[u8],
    wanted: Option<Format>,
    records: &[(u64, Vec<u8>)],
    appended: &[u8],
) -> Vec<(u64, Vec<u8>)> {
    let format = log.format();
    let seq = match log.append(appended) {
        Ok(seq) => seq.get(),
        Err(e) => panic!("append to a recovered log failed: {e}"),
    };
    assert_eq!(
        seq,
        before.len() as u64,
        "an append does not start at the end"
    );
    let closed = log.close();
    assert!(closed.is_ok(), "close: {closed:?}");
    let with_append = scratch::read(path);
    assert_eq!(
        with_append.get(..before.len()),
        Some(before),
        "an append changed earlier bytes"
    );
    let again = match open(path, wanted) {
        Ok(log) => log,
        Err(e) => panic!("reopening a log this crate wrote failed: {e}"),
    };
    assert_eq!(again.format(), format, "reopening detected another format");
    assert_eq!(
        again.recovery().dropped_bytes,
        0,
        "reopening cut a clean log"
    );
    assert_eq!(
        scratch::read(path),
        with_append,
        "reopening changed the file"
    );
    let (found, error) = read_all(&again, format, &with_append, false);
    assert!(error.is_none(), "reading after reopen failed: {error:?}");
    let mut expected = records.to_vec();
    expected.push((seq, appended.to_vec()));
    assert_eq!(found, expected, "reopened log reads other records");
    let closed = again.close();
    assert!(closed.is_ok(), "close: {closed:?}");
    expected
}

/// This harness's own decoder: the payload of the valid (not deleted) frame at `seq`.
fn frame_payload(format: Format, file: &[u8], seq: u64) -> Option<&[u8]> {
    let at = usize::try_from(seq).ok()?;
    match format {
        Format::Native => {
            let word = le32(file, at)?;
            let crc = le32(file, at.checked_add(4)?)?;
            if word & DELETED != 0 || at < NATIVE_HEADER_LEN {
                return None;
            }
            let len = word as usize;
            let payload = file.get(at + 8..(at + 8).checked_add(len)?)?;
            (le32(file, at + 8 + len)? == word && native_crc(seq, word, payload) == crc)
                .then_some(payload)
        }
        Format::Js(width) => {
            let w = match width {
                JsWidth::W32 => 4,
                JsWidth::W48 => 6,
                JsWidth::W53 => 8,
            };
            let len = be(file, at, 4)? as usize;
            let payload = file.get(at + 4..(at + 4).checked_add(len)?)?;
            let end = (at + 8 + w + len) as u64;
            (be(file, at + 4 + len, 4)? == len as u64
                && be(file, at + 8 + len, w)? == end
                && payload.iter().any(|b| *b != 0))
            .then_some(payload)
        }
    }
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn be(bytes: &[u8], at: usize, width: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(width)?)?;
    Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// The native frame checksum as docs/file-formats.md defines it (written out again here, so
/// the harness does not trust the code it checks).
fn native_crc(seq: u64, word: u32, payload: &[u8]) -> u32 {
    let init =
        (seq as u32) ^ ((seq >> 32) as u32).rotate_left(16) ^ word.rotate_left(8) ^ 0x464c_4f47;
    let mut hasher = crc32fast::Hasher::new_with_initial(init);
    hasher.update(payload);
    hasher.finalize()
}
