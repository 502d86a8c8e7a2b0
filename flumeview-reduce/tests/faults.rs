//! I/O faults (libfiu) on a reduce view persisted next to a memory log: the log's and the
//! state file's calls (`persist::write_atomic`) failed in turn with EIO and with ENOSPC, then
//! at random (see `flumedb_faults::view`). The test re-runs this binary as a child with
//! libfiu's POSIX preload (skipped, with a message, when Debian's libfiu0 is not installed).
//! `FLUMEDB_SOAK=1` runs many more random trials.

use std::path::Path;

use flumedb_faults::log::OpenFn;
use flumedb_faults::view::check_reduce;
use flumedb_faults::{EIO, ENOSPC, in_child, soak};
use flumelog_memory::{MemoryLog, VIEW_DIR_NAME};

#[test]
fn reduce_view_on_memory_log() {
    let Some(fiu) = in_child("reduce_view_on_memory_log") else {
        return;
    };
    let open: OpenFn<MemoryLog> = Box::new(|path: &Path| MemoryLog::open(path));
    let view_dir = |path: &Path| path.join(VIEW_DIR_NAME);
    let random = if soak() { 1000 } else { 10 };
    for errno in [EIO, ENOSPC] {
        let figures = check_reduce(&fiu, "memory", &open, &view_dir, errno, random);
        println!(
            "faults: reduce view on memory log errno {errno}: {:?} calls, {} trials, {} faults",
            figures.calls, figures.trials, figures.faults
        );
    }
}
