//! I/O faults (libfiu) on the persisted memory log: the log workload of `flumedb_faults::log`
//! with every I/O call failed in turn with EIO and with ENOSPC, then random calls. The test
//! re-runs this binary as a child with libfiu's POSIX preload (skipped, with a message, when
//! Debian's libfiu0 is not installed). `FLUMEDB_SOAK=1` runs many more random trials.

use std::io::Write;
use std::path::Path;

use flumedb_faults::log::{Subject, check_log};
use flumedb_faults::{EIO, ENOSPC, in_child, soak};
use flumelog_memory::{FILE_NAME, MemoryLog};

#[test]
fn persisted() {
    let Some(fiu) = in_child("persisted") else {
        return;
    };
    let subject = Subject {
        name: "memory persisted".into(),
        open: Box::new(|path: &Path| MemoryLog::open(path)),
        file: Box::new(|path: &Path| path.join(FILE_NAME)),
        del: None,
        tear: Box::new(|path: &Path| {
            let file = path.join(FILE_NAME);
            let mut file = std::fs::OpenOptions::new().append(true).open(file).unwrap();
            // A frame header cut short.
            file.write_all(&[40, 0, 0]).unwrap();
        }),
    };
    let random = if soak() { 2000 } else { 20 };
    for errno in [EIO, ENOSPC] {
        let figures = check_log(&fiu, &subject, errno, random);
        println!(
            "faults: memory persisted errno {errno}: {:?} calls (create, reopen), {} trials, {} \
             faults, {} poisoned",
            figures.calls, figures.trials, figures.faults, figures.poisoned
        );
    }
}
