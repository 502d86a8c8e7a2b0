//! Opening a log file: creating it, detecting its format, and repairing a torn tail.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};

use flumedb_core::persist::{Mark, SyncedEnd};
use flumedb_core::{Seq, Since, SinceWatch};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::OffsetError;
use crate::format::{self, Check, Format, JsWidth};
use crate::log::{DurableState, OffsetLog, Recovery, Writer};
use crate::map::GrowingMap;
use crate::seqlock::SeqLock;
use crate::write::write_deletion;
use flumedb_core::Durability;

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> OffsetError + '_ {
    move |source| OffsetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A failure of the synced-end mark file beside the log, with its own path
/// (other errors, which these calls do not make, are put on the log's path).
fn core_err(log: &Path) -> impl Fn(flumedb_core::Error) -> OffsetError + '_ {
    move |e| match e {
        flumedb_core::Error::File { path, source } => OffsetError::Io { path, source },
        other => OffsetError::Io {
            path: log.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Opens (or creates) the log file at `path`: `wanted` is the format asked for (checked against
/// an existing file), `durability` what appends promise.
pub(crate) fn open(
    path: &Path,
    wanted: Option<Format>,
    durability: Durability,
) -> Result<OffsetLog, OffsetError> {
    let err = io_err(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // New directories durable in their parents, or a power loss could take the log away.
        flumedb_core::persist::create_dir_durably(dir).map_err(|e| match e {
            flumedb_core::Error::File { source, .. } => err(source),
            other => err(std::io::Error::other(other.to_string())),
        })?;
    }
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(&err)?;
    // One process at a time: another writer would interleave frames, and its recovery could
    // cut the file under our memory map.
    if let Err(locked) = file.try_lock() {
        return Err(match locked {
            std::fs::TryLockError::WouldBlock => OffsetError::Locked {
                path: path.to_path_buf(),
            },
            std::fs::TryLockError::Error(source) => err(source),
        });
    }
    let mut size = file.metadata().map_err(&err)?.len();
    let file_size = size;
    // Bytes thrown away before the recovery below (a header lost to zeros).
    let mut zeros_dropped = 0;
    if size > 0 && size <= format::HEADER_LEN && only_zeros(&file, size).map_err(&err)? {
        // A power loss after the native header's size reached the disk but not its bytes:
        // nothing was ever stored (the header is synced before any append). Start afresh.
        file.set_len(0).map_err(&err)?;
        zeros_dropped = size;
        size = 0;
    }
    let format = if size == 0 {
        // An empty file that already existed is what JS flumelog-offset creates: keep it
        // JS unless told otherwise, so the JS package can still open it.
        let default = if existed {
            Format::Js(JsWidth::W32)
        } else {
            Format::Native
        };
        let format = wanted.unwrap_or(default);
        if format == Format::Native {
            let header = file
                .write_all_at(&format::native_header(), 0)
                .and_then(|()| file.sync_all());
            if let Err(source) = header {
                if !existed {
                    // An empty file left behind would open as a JS log next time (that is
                    // what JS creates): remove it, so the next open creates a native log again.
                    let _ = std::fs::remove_file(path);
                }
                return Err(err(source));
            }
            size = format::HEADER_LEN;
        }
        if !existed {
            flumedb_core::persist::sync_parent(path).map_err(&err)?;
        }
        format
    } else {
        detect(&file, size, wanted, path)?
    };
    let map = GrowingMap::new(file.try_clone().map_err(&err)?, size).map_err(&err)?;
    let map_bytes = map.covering(size).map_err(&err)?;
    let bytes = usize::try_from(size)
        .ok()
        .and_then(|size| map_bytes.get(..size))
        .ok_or_else(|| {
            err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the memory map is shorter than the file",
            ))
        })?;
    let (mut synced_end, mark) = SyncedEnd::open(path).map_err(core_err(path))?;
    let wanted_js = wanted.filter(|w| matches!(w, Format::Js(_)));
    let (format, end, last, deletes) = match recover_marked(format, wanted_js, mark, bytes, size) {
        // The synced end is known: what lies beyond it was never fsync'd, and is kept only
        // up to its first bad frame (a hole of lost pages, a torn write).
        Some(marked) => {
            if let Some(asked) = wanted_js
                && asked != marked.format
            {
                return Err(OffsetError::FormatMismatch {
                    path: path.to_path_buf(),
                    found: marked.format.name(),
                    requested: asked.name(),
                });
            }
            (marked.format, marked.end, marked.last, marked.deletes)
        }
        None => {
            let (format, end, deletes) = recover_unmarked(format, wanted, bytes, size, path)?;
            let last = if end <= format.first() {
                None
            } else {
                format.frame_ending_at(bytes, end)
            };
            (format, end, last, deletes)
        }
    };
    for (start, len) in deletes {
        write_deletion(&file, format, start, len).map_err(&err)?;
    }
    if end < size {
        file.set_len(end).map_err(&err)?;
    }
    let now = Mark {
        end,
        check: last.unwrap_or(NO_FRAME),
    };
    if mark != Some(now) || end < size {
        // What recovery kept is durable before the mark says so.
        file.sync_all().map_err(&err)?;
        synced_end.record_durably(now).map_err(core_err(path))?;
    }
    let since = last.map_or(Since::Empty, |s| Since::At(Seq::new(s)));
    let dir = path
        .parent()
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .map(Path::to_path_buf);
    Ok(OffsetLog {
        path: path.to_path_buf(),
        dir,
        format,
        durability,
        map,
        end: AtomicU64::new(end),
        since: SinceWatch::new(since),
        writer: Mutex::new(Writer {
            file,
            written: end,
            last,
            buf: Vec::new(),
        }),
        poisoned: Mutex::new(None),
        durable: Mutex::new(DurableState {
            syncing: false,
            synced: end,
        }),
        durable_changed: Condvar::new(),
        synced_end: Mutex::new(synced_end),
        deletes: SeqLock::new(),
        scan_lock: RwLock::new(()),
        closed: AtomicBool::new(false),
        recovery: Recovery {
            dropped_bytes: zeros_dropped + (size - end),
            file_size,
        },
    })
}

/// Deletes a crash interrupted, to finish at open: (frame start, payload length).
type Interrupted = Vec<(u64, u32)>;

/// The seq recorded in a mark at the start of the log (no frame ends there).
pub(crate) const NO_FRAME: u64 = u64::MAX;

/// What recovery from a synced-end mark found.
struct Marked {
    format: Format,
    /// The end to keep.
    end: u64,
    /// The seq of the last frame kept.
    last: Option<u64>,
    /// Deletes a crash interrupted past the mark, to finish.
    deletes: Interrupted,
}

/// Recovery from the synced-end mark, when it fits the file: the frame it names ends at it
/// (whole, deleted, half-deleted, or damaged with its lengths intact: it was synced, so it
/// stays and reads as `Corrupt`), or it is the start with nothing synced after it. Then the
/// frames past it are walked (`forward_from`). `None` sends open to the scan from the end.
///
/// A JS file's width is the one whose frame fits the mark; at the start, where no frame shows
/// it, the one whose walk keeps the most (the one asked for, then the one detected, on a tie).
fn recover_marked(
    detected: Format,
    wanted_js: Option<Format>,
    mark: Option<Mark>,
    bytes: &[u8],
    size: u64,
) -> Option<Marked> {
    let mark = mark.filter(|m| m.end <= size)?;
    let candidates = match detected {
        Format::Native => vec![Format::Native],
        Format::Js(_) => {
            let mut all: Vec<Format> = wanted_js.into_iter().collect();
            all.push(detected);
            all.extend([JsWidth::W32, JsWidth::W53, JsWidth::W48].map(Format::Js));
            all
        }
    };
    if mark.end == detected.first() {
        if mark.check != NO_FRAME {
            return None;
        }
        let mut best: Option<Marked> = None;
        for format in candidates {
            let walked = forward_from(format, bytes, mark, size);
            if best.as_ref().is_none_or(|b| walked.end > b.end) {
                best = Some(walked);
            }
        }
        return best;
    }
    candidates
        .into_iter()
        .find_map(|format| match format.check(bytes, mark.check, mark.end) {
            Check::Valid { next, .. } | Check::Deleted { next } | Check::Corrupt { next }
                if next == mark.end =>
            {
                Some(forward_from(format, bytes, mark, size))
            }
            _ => None,
        })
}

/// Walks the frames from the mark to the first position where no valid frame starts: the end
/// to keep, the last frame kept, and the deletes a crash interrupted on the way.
fn forward_from(format: Format, bytes: &[u8], mark: Mark, size: u64) -> Marked {
    let at_start = mark.end <= format.first();
    let mut last = (!at_start).then_some(mark.check);
    // The frame ending at the mark may itself be a delete cut short.
    let mut deletes: Interrupted = format
        .interrupted_delete_ending_at(bytes, mark.end)
        .filter(|(start, _)| !at_start && *start == mark.check)
        .into_iter()
        .collect();
    let mut at = mark.end.max(format.first());
    while at < size {
        let next = match format.check(bytes, at, size) {
            Check::Valid { next, .. } | Check::Deleted { next } => next,
            Check::Corrupt { next } => match format.interrupted_delete_ending_at(bytes, next) {
                Some((start, len)) if start == at => {
                    deletes.push((start, len));
                    next
                }
                _ => break,
            },
            Check::NotAFrame => break,
        };
        last = Some(at);
        at = next;
    }
    Marked {
        format,
        end: at,
        last,
        deletes,
    }
}

/// Recovery without a synced-end mark (a log written before marks, by JS, or whose mark was
/// lost): the end is found by a scan back from the end of the file (recovery rules 2 to 5).
fn recover_unmarked(
    format: Format,
    wanted: Option<Format>,
    bytes: &[u8],
    size: u64,
    path: &Path,
) -> Result<(Format, u64, Interrupted), OffsetError> {
    let (format, end, interrupted_delete) = match format {
        Format::Native => {
            let (end, interrupted) = recover_tail(format, bytes, size);
            (format, end, interrupted)
        }
        Format::Js(_) => {
            let (format, end) = js_width_by_recovery(format, wanted, bytes, size, path)?;
            (format, end, None)
        }
    };
    if end == format.first() && matches!(format, Format::Js(_)) && bytes.iter().any(|b| *b != 0) {
        // Not one valid frame: this is no JS log of this width.
        // Cutting it to nothing could destroy someone's data, so refuse.
        return Err(OffsetError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "no valid {} frame anywhere in {size} bytes; not a flumelog-offset log (or not \
                 of this trailer width); nothing was changed",
                format.name()
            ),
        });
    }
    if end == format.first()
        && format == Format::Native
        && bytes
            .get(end as usize..)
            .is_some_and(|tail| tail.iter().any(|b| *b != 0))
        && !format::native_torn_first_append(bytes)
    {
        // Cutting back to the header would destroy whatever is there; only a first append
        // cut short (or zeros) holds nothing that was ever a complete record.
        return Err(OffsetError::NoValidRecord {
            path: path.to_path_buf(),
            bytes: size - end,
        });
    }
    Ok((format, end, interrupted_delete.into_iter().collect()))
}

/// Finds the format of an existing file.
fn detect(
    file: &File,
    size: u64,
    wanted: Option<Format>,
    path: &Path,
) -> Result<Format, OffsetError> {
    let err = io_err(path);
    let mut head = [0u8; format::HEADER_LEN as usize];
    let native = size >= format::HEADER_LEN && {
        file.read_exact_at(&mut head, 0).map_err(&err)?;
        &head[..8] == format::MAGIC
    };
    let found = if native {
        if crc32fast::hash(&head[..12]).to_le_bytes() != head[12..16] {
            return Err(OffsetError::BadHeader {
                path: path.to_path_buf(),
            });
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version != format::VERSION {
            return Err(OffsetError::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
            });
        }
        Format::Native
    } else if size >= format::HEADER_LEN && format::looks_like_damaged_native_header(&head) {
        // Falling through to the JS format would call it "not a log": say what it is.
        return Err(OffsetError::BadHeader {
            path: path.to_path_buf(),
        });
    } else {
        match (wanted, detect_width(file, size).map_err(&err)?) {
            (Some(Format::Js(asked)), Some(found)) if asked != found => {
                return Err(OffsetError::FormatMismatch {
                    path: path.to_path_buf(),
                    found: Format::Js(found).name(),
                    requested: Format::Js(asked).name(),
                });
            }
            (_, Some(found)) => Format::Js(found),
            // A torn tail hides the width: `js_width_by_recovery` decides.
            (_, None) => Format::Js(JsWidth::W32),
        }
    };
    match wanted {
        Some(wanted) if std::mem::discriminant(&wanted) != std::mem::discriminant(&found) => {
            Err(OffsetError::FormatMismatch {
                path: path.to_path_buf(),
                found: found.name(),
                requested: wanted.name(),
            })
        }
        _ => Ok(found),
    }
}

/// A JS file does not record its trailer width: the one whose last frame checks out
/// (`None` when none does, e.g. with a torn tail).
fn detect_width(file: &File, size: u64) -> std::io::Result<Option<JsWidth>> {
    let tail_len = size.min(64 << 10);
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact_at(&mut tail, size - tail_len)?;
    // Check frames in a buffer that holds the file's tail at its real offsets' end.
    for width in [JsWidth::W32, JsWidth::W53, JsWidth::W48] {
        if js_last_frame_ok(file, size, &tail, width)? {
            return Ok(Some(width));
        }
    }
    Ok(None)
}

fn js_last_frame_ok(file: &File, size: u64, tail: &[u8], width: JsWidth) -> std::io::Result<bool> {
    let w = width.bytes();
    if size < 8 + w {
        return Ok(false);
    }
    let t = tail.len() as u64;
    let at = |pos: u64, n: u64| -> Option<u64> {
        let off = pos.checked_sub(size - t)?;
        let b = tail.get(off as usize..(off + n) as usize)?;
        Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let (Some(end), Some(len)) = (at(size - w, w), at(size - w - 4, 4)) else {
        return Ok(false);
    };
    if end != size {
        return Ok(false);
    }
    let Some(start) = size.checked_sub(len + 8 + w) else {
        return Ok(false);
    };
    let mut head = [0u8; 4];
    file.read_exact_at(&mut head, start)?;
    Ok(u64::from(u32::from_be_bytes(head)) == len)
}

/// For a JS file: the width and the recovered end. When the last frame checked out (`format`
/// came from it), that is it; when the tail is torn, the width whose recovery keeps the most
/// data wins, preferring the width the options asked for on a tie. A width the options asked
/// for that keeps less is a mismatch, as when the last frame shows another width: opening
/// must not hand back a log of another width than asked (the same options would then refuse
/// it at the next open), nor cut data that another width reads.
fn js_width_by_recovery(
    format: Format,
    asked: Option<Format>,
    bytes: &[u8],
    size: u64,
    path: &Path,
) -> Result<(Format, u64), OffsetError> {
    let end = recover_end(format, bytes, size);
    if end == size {
        return Ok((format, end));
    }
    let asked = asked.filter(|a| matches!(a, Format::Js(_)));
    let mut best = match asked {
        Some(asked) => (asked, recover_end(asked, bytes, size)),
        None => (format, end),
    };
    for width in [JsWidth::W32, JsWidth::W53, JsWidth::W48] {
        let candidate = Format::Js(width);
        let end = recover_end(candidate, bytes, size);
        if end > best.1 {
            best = (candidate, end);
        }
    }
    match asked {
        Some(asked) if asked != best.0 => Err(OffsetError::FormatMismatch {
            path: path.to_path_buf(),
            found: best.0.name(),
            requested: asked.name(),
        }),
        _ => Ok(best),
    }
}

/// Like [`recover_end`], and a delete interrupted in the last frame (start, length) to finish:
/// only one its checksum proves (see [`Format::interrupted_delete_ending_at`]), else it is cut.
fn recover_tail(format: Format, bytes: &[u8], size: u64) -> (u64, Option<(u64, u32)>) {
    let end = recover_end(format, bytes, size);
    if end < size
        && let Some(interrupted) = format.interrupted_delete_ending_at(bytes, size)
    {
        // The last frame is whole, only its delete was cut short: finish the delete rather
        // than drop the frame (which would give its seq to the next append).
        return (size, Some(interrupted));
    }
    (end, None)
}

/// The end of the last good frame: where a torn, zero-filled or damaged tail starts.
///
/// Scans back from the end of the file for the last position where a complete, valid frame
/// ends (for the JS format this follows flumelog-offset's own recovery, with the frame's
/// lengths checked too). Nothing before that position is touched: damage in the middle of the
/// log is left for reads and `verify()` to report.
fn recover_end(format: Format, bytes: &[u8], size: u64) -> u64 {
    let mut end = size;
    while end > format.first() {
        if format.frame_ending_at(bytes, end).is_some() {
            return end;
        }
        end -= 1;
    }
    format.first().min(size)
}

/// Whether the first `size` bytes of `file` (a few, at most a header) are all zeros.
fn only_zeros(file: &File, size: u64) -> std::io::Result<bool> {
    let mut head = [0u8; format::HEADER_LEN as usize];
    let part = head.get_mut(..size as usize).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "more than a header")
    })?;
    file.read_exact_at(part, 0)?;
    Ok(part.iter().all(|b| *b == 0))
}
