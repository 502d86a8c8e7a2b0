//! Data safety at open: a frame counts as deleted only when its checksum proves it, a native
//! file with no valid record is refused unchanged (a cut-short first append is cut), a damaged
//! native header is named as such, and I/O errors carry the file's path.

use std::fs;
use std::path::Path;

use flumedb_core::{Error, Log, Seq, Since};
use flumelog_offset::{Format, OffsetError, OffsetLog};

fn records(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{{\"i\":{i},\"text\":\"record number {i}\"}}").into_bytes())
        .collect()
}

fn write(path: &Path, data: &[Vec<u8>]) -> Vec<Seq> {
    let log = OffsetLog::options()
        .format(Format::Native)
        .open(path)
        .unwrap();
    let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let seqs = log.append_batch(&slices).unwrap();
    log.close().unwrap();
    seqs
}

/// The 8 bytes `del` writes first at `seq` (the deleted word and its checksum), taken from a
/// real `del` on a copy of the log.
fn deleted_head(path: &Path, seq: Seq) -> [u8; 8] {
    let copy = path.with_extension("copy");
    fs::copy(path, &copy).unwrap();
    let log = OffsetLog::open(&copy).unwrap();
    log.del(seq).unwrap();
    log.close().unwrap();
    drop(log);
    let bytes = fs::read(&copy).unwrap();
    fs::remove_file(&copy).unwrap();
    let at = seq.get() as usize;
    bytes[at..at + 8].try_into().unwrap()
}

#[test]
fn a_flipped_deleted_bit_on_the_last_frame_is_cut_not_taken_for_a_delete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(4);
    let seqs = write(&path, &data);
    let mut bytes = fs::read(&path).unwrap();
    let last = seqs[3].get() as usize;
    bytes[last + 3] ^= 0x80; // bit 31 of the length word: the DELETED bit
    fs::write(&path, &bytes).unwrap();

    // The synced-end mark says the frame was synced: damage, kept and reported, never
    // rewritten as a delete (recovery rule 8).
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 0);
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert!(matches!(log.get(seqs[3]), Err(Error::Corrupt { .. })));
    log.close().unwrap();
    drop(log);
    fs::write(&path, &bytes).unwrap();
    // Without the mark (rule 2): the last frame failing its checks is cut.
    fs::remove_file(dir.path().join("log.offset.synced")).unwrap();

    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, (bytes.len() - last) as u64);
    // Nothing below the cut was rewritten (in particular no payload was zeroed).
    assert_eq!(fs::read(&path).unwrap(), bytes[..last]);
    assert!(matches!(log.get(seqs[3]), Err(Error::NotFound { .. })));
    assert_eq!(log.since(), Since::At(seqs[2]));
    for i in 0..3 {
        assert_eq!(log.get(seqs[i]).unwrap(), data[i]);
    }
    let report = log.verify().unwrap();
    assert_eq!((report.records, report.deleted), (3, 0));
    assert!(report.is_ok());
}

#[test]
fn a_delete_proven_by_its_checksum_is_still_completed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(4);
    let seqs = write(&path, &data);
    let good = fs::read(&path).unwrap();
    // A crash after `del` wrote the deleted head, before it zeroed the payload.
    let mut bytes = good.clone();
    let at = seqs[3].get() as usize;
    bytes[at..at + 8].copy_from_slice(&deleted_head(&path, seqs[3]));
    fs::write(&path, &bytes).unwrap();

    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 0);
    assert!(matches!(log.get(seqs[3]), Err(Error::Deleted { .. })));
    assert_eq!(log.since(), Since::At(seqs[3]));
    let report = log.verify().unwrap();
    assert_eq!(
        (report.records, report.deleted, report.is_ok()),
        (3, 1, true)
    );
    log.close().unwrap();
    let after = fs::read(&path).unwrap();
    assert_eq!(after.len(), good.len());
    let payload = at + 8..at + 8 + data[3].len();
    assert!(
        after[payload].iter().all(|b| *b == 0),
        "the delete was finished"
    );
    assert_eq!(after[..at], good[..at], "nothing before the frame changed");
}

#[test]
fn a_flipped_deleted_bit_in_the_middle_is_corrupt_and_open_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(4);
    let seqs = write(&path, &data);
    let mut bytes = fs::read(&path).unwrap();
    bytes[seqs[1].get() as usize + 3] ^= 0x80;
    fs::write(&path, &bytes).unwrap();

    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 0);
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert!(matches!(
        log.get(seqs[1]),
        Err(Error::Corrupt { seq: Some(s), .. }) if s == seqs[1]
    ));
    let report = log.verify().unwrap();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].seq, seqs[1]);
    assert_eq!((report.records, report.deleted), (3, 0));
    for i in [0, 2, 3] {
        assert_eq!(log.get(seqs[i]).unwrap(), data[i]);
    }
    log.close().unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn no_bit_flip_in_the_last_frame_reads_as_deleted_or_rewrites_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let data = records(4);
    let seqs = write(&path, &data);
    let good = fs::read(&path).unwrap();
    let last = seqs[3].get() as usize;
    for byte in last..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[byte] ^= 1 << bit;
            fs::write(&path, &bad).unwrap();
            let log = OffsetLog::open(&path).unwrap();
            let after = fs::read(&path).unwrap();
            let case = format!("flip of bit {bit} of byte {byte}");
            assert!(after.len() >= last, "{case}: cut below the last frame");
            assert_eq!(after, bad[..after.len()], "{case}: bytes were rewritten");
            assert_eq!(
                log.recovery().dropped_bytes,
                (bad.len() - after.len()) as u64,
                "{case}"
            );
            match log.get(seqs[3]) {
                Ok(got) => assert_eq!(got, data[3], "{case}"),
                Err(Error::Deleted { .. }) => panic!("{case}: reads as deleted"),
                Err(_) => {}
            }
            assert!(log.verify().unwrap().deleted == 0, "{case}");
            log.close().unwrap();
        }
    }
}

#[test]
fn a_native_file_with_a_header_but_no_valid_record_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    OffsetLog::open(&path).unwrap().close().unwrap();
    // Without its synced-end mark (a log of an older version, or copied without it), open
    // cannot know the bytes were never synced: they might be someone's data.
    fs::remove_file(dir.path().join("log.offset.synced")).unwrap();
    let header = fs::read(&path).unwrap();
    assert_eq!(header.len(), 16);
    let mut bytes = header.clone();
    bytes.extend((0..3000u32).map(|i| (i * 7 + 3) as u8));
    fs::write(&path, &bytes).unwrap();

    let refused = OffsetLog::open(&path).map(|_| ());
    let Err(err @ OffsetError::NoValidRecord { bytes: 3000, .. }) = refused else {
        panic!("expected NoValidRecord, got {refused:?}");
    };
    let msg = err.to_string();
    for part in [
        path.to_str().unwrap(),
        "3000 bytes",
        "no complete valid record",
        "nothing was changed",
        "can be removed",
    ] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
    // The core error keeps the path and the offset error, to downcast to.
    let core = flumedb_core::Error::from(err);
    let Error::DamagedFile { path: p, source } = &core else {
        panic!("expected DamagedFile, got {core:?}");
    };
    assert_eq!(*p, path);
    assert!(matches!(
        source.downcast_ref::<OffsetError>(),
        Some(OffsetError::NoValidRecord { bytes: 3000, .. })
    ));
    assert_eq!(fs::read(&path).unwrap(), bytes, "the file was changed");

    // A lone record damaged in place is damage too, not a torn append.
    let data = records(1);
    fs::remove_file(&path).unwrap();
    write(&path, &data);
    let mark = dir.path().join("log.offset.synced");
    let synced_mark = fs::read(&mark).unwrap();
    fs::remove_file(&mark).unwrap();
    let mut one = fs::read(&path).unwrap();
    one[16 + 8 + 3] ^= 0x01;
    fs::write(&path, &one).unwrap();
    assert!(matches!(
        OffsetLog::open(&path),
        Err(OffsetError::NoValidRecord { .. })
    ));
    assert_eq!(fs::read(&path).unwrap(), one);
    // So is a lone record with its deleted bit flipped (its checksum does not prove a delete).
    let mut flipped = fs::read(&path).unwrap();
    flipped[16 + 8 + 3] ^= 0x01;
    flipped[16 + 3] ^= 0x80;
    fs::write(&path, &flipped).unwrap();
    assert!(matches!(
        OffsetLog::open(&path),
        Err(OffsetError::NoValidRecord { .. })
    ));
    assert_eq!(fs::read(&path).unwrap(), flipped);
    // With its synced-end mark, the log knows the record was synced: it opens, unchanged, and
    // the record reads as damaged (recovery rule 8).
    fs::write(&mark, &synced_mark).unwrap();
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), flipped);
    assert!(matches!(log.get(Seq::new(16)), Err(Error::Corrupt { .. })));
}

#[test]
fn a_header_with_zeros_or_nothing_after_it_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    OffsetLog::open(&path).unwrap().close().unwrap();
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!((log.recovery().dropped_bytes, log.size()), (0, 16));
    log.close().unwrap();
    drop(log);

    let mut bytes = fs::read(&path).unwrap();
    bytes.extend([0u8; 3000]); // preallocated, never written
    fs::write(&path, &bytes).unwrap();
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.recovery().dropped_bytes, 3000);
    assert_eq!(fs::metadata(&path).unwrap().len(), 16);
    assert_eq!(log.append(b"first").unwrap().get(), 16);
}

#[test]
fn a_first_append_cut_short_is_cut_back_to_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let record: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let seqs = write(&path, std::slice::from_ref(&record));
    let full = fs::read(&path).unwrap();
    let refuse = |bytes: &[u8], case: &str| {
        fs::write(&path, bytes).unwrap();
        assert!(
            matches!(
                OffsetLog::open(&path),
                Err(OffsetError::NoValidRecord { .. })
            ),
            "{case}"
        );
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes,
            "{case}: the file was changed"
        );
    };
    // A killed `pwrite` stops at a page boundary: each such prefix is a torn first append.
    // So is the whole file with its later pages lost to a power cut (zeros).
    let mut lost_pages = full.clone();
    lost_pages[8192..].fill(0);
    let torn: Vec<Vec<u8>> = [4096, 8192, 12288, 16384]
        .iter()
        .map(|&n| full[..n].to_vec())
        .chain([lost_pages])
        .collect();
    for bytes in &torn {
        let case = format!(
            "{} bytes, {} non-zero",
            bytes.len(),
            bytes.iter().filter(|b| **b != 0).count()
        );
        fs::write(&path, bytes).unwrap();
        let log = OffsetLog::open(&path).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(
            log.recovery().dropped_bytes,
            bytes.len() as u64 - 16,
            "{case}"
        );
        assert_eq!(log.since(), Since::Empty, "{case}");
        assert_eq!(fs::metadata(&path).unwrap().len(), 16, "{case}");
        assert_eq!(log.append(&record).unwrap(), seqs[0], "{case}");
        log.close().unwrap();
    }
    // No kill or power cut stops a write mid-page: those are damage, refused unchanged.
    for n in [17, 20, 5000, full.len() - 1] {
        refuse(&full[..n], &format!("prefix of {n}"));
    }
    // A whole frame whose length word is damaged (it now runs past the end) is no torn append.
    let mut long_word = full.clone();
    long_word[16 + 2] ^= 0x01;
    refuse(&long_word, "length word");
}

#[test]
fn every_single_bit_flip_of_the_native_header_is_refused_as_a_damaged_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    write(&path, &records(3));
    let good = fs::read(&path).unwrap();
    for byte in 0..16 {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[byte] ^= 1 << bit;
            fs::write(&path, &bad).unwrap();
            let case = format!("flip of bit {bit} of header byte {byte}");
            match OffsetLog::open(&path) {
                Err(err @ OffsetError::BadHeader { .. }) => {
                    let msg = err.to_string();
                    assert!(msg.contains(path.to_str().unwrap()), "{case}: {msg}");
                    assert!(
                        msg.contains("looks like a native flumelog-offset log")
                            && msg.contains("damaged header")
                            && msg.contains("nothing was changed"),
                        "{case}: {msg}"
                    );
                }
                other => panic!("{case}: {:?}", other.map(|_| ())),
            }
            assert_eq!(
                fs::read(&path).unwrap(),
                bad,
                "{case}: the file was changed"
            );
        }
    }
}

#[test]
fn open_errors_carry_the_path_into_the_core_error() {
    let dir = tempfile::tempdir().unwrap();
    // A log whose parent "directory" is a regular file, and a directory given as the log.
    let not_a_dir = dir.path().join("plain");
    fs::write(&not_a_dir, b"x").unwrap();
    let is_a_dir = dir.path().join("adir");
    fs::create_dir(&is_a_dir).unwrap();
    for path in [not_a_dir.join("log.offset"), is_a_dir] {
        let err = match OffsetLog::open(&path) {
            Err(err @ OffsetError::Io { .. }) => err,
            other => panic!("{}: {:?}", path.display(), other.map(|_| ())),
        };
        let core = flumedb_core::Error::from(err);
        let shown = core.to_string();
        assert!(
            shown.contains(path.to_str().unwrap()),
            "{shown:?} lacks the path"
        );
        assert!(
            matches!(&core, Error::File { path: p, .. } if *p == path),
            "{core:?}"
        );
    }
}

/// `is_deleted` answers from the frame alone, and `deletes` counts this open log's deletes,
/// which views keeping counts compare over time.
#[test]
fn is_deleted_reads_the_frame_and_deletes_counts_this_opens_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.offset");
    let seqs = write(&path, &records(3));
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.deletes(), Some(0));
    assert!(!log.is_deleted(seqs[1]).unwrap());
    log.del(seqs[1]).unwrap();
    assert!(log.is_deleted(seqs[1]).unwrap());
    assert!(!log.is_deleted(seqs[2]).unwrap());
    assert_eq!(log.deletes(), Some(1));
    assert!(matches!(
        log.is_deleted(Seq::new(seqs[1].get() + 1)),
        Err(Error::InvalidSeq { .. })
    ));
    assert!(matches!(
        log.is_deleted(Seq::new(1 << 40)),
        Err(Error::NotFound { .. })
    ));
    log.close().unwrap();
    drop(log);
    // The counter is this open's; the delete itself stays.
    let log = OffsetLog::open(&path).unwrap();
    assert_eq!(log.deletes(), Some(0));
    assert!(log.is_deleted(seqs[1]).unwrap());
    log.close().unwrap();
}
