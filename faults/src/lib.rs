//! I/O fault injection for flumedb's tests (test-only, not published).
//!
//! Each fault test re-runs its own test binary as a child with libfiu's POSIX preload
//! ([`in_child`]); in the child, [`fiu::Fiu::window`] fails chosen libc calls (`open64`,
//! `write`, `pwrite64`, `fsync`, `fdatasync`, `rename`, `ftruncate64`, reads) with EIO or
//! ENOSPC, so the error comes from the real syscall wrapper the code calls.
//! [`log::check_log`] runs one log workload failing each of its calls in turn, then random
//! ones, and checks what the log promises after each fault. Adding a log: one
//! [`log::Subject`].

pub mod disk;
pub mod fiu;
pub mod fs;
pub mod log;
pub mod view;

use std::process::Command;

/// When set, a missing libfiu fails the fault tests instead of skipping them.
pub const REQUIRE_ENV: &str = "FLUMEDB_REQUIRE_FIU";

/// Set in the child's environment.
pub const CHILD_ENV: &str = "FLUMEDB_FIU_CHILD";

/// EIO.
pub const EIO: i32 = 5;
/// ENOSPC.
pub const ENOSPC: i32 = 28;

/// Whether `FLUMEDB_SOAK=1` asks for the long runs.
pub fn soak() -> bool {
    std::env::var("FLUMEDB_SOAK").is_ok_and(|v| v == "1")
}

/// Call first in a fault test named `test` (its path in the test binary, as `--exact` takes
/// it). In the parent it re-runs the binary with only this test, libfiu preloaded, asserts
/// that the child passed and returns `None`; in the child it returns libfiu. Skips (with a
/// message, returning `None`) when libfiu's preload is not installed, unless
/// [`REQUIRE_ENV`] is set.
pub fn in_child(test: &str) -> Option<fiu::Fiu> {
    if std::env::var_os(CHILD_ENV).is_some() {
        let fiu = fiu::Fiu::get();
        assert!(
            fiu.is_some(),
            "libfiu is not loaded in the child: LD_PRELOAD failed"
        );
        return fiu;
    }
    if !std::path::Path::new(fiu::PRELOAD).exists() {
        let message = format!(
            "{test}: {} is missing; install Debian's libfiu0 (1.1-3+b2) to run the I/O fault \
             tests",
            fiu::PRELOAD
        );
        // CI sets this, so a missing library fails rather than skips.
        assert!(
            std::env::var_os(REQUIRE_ENV).is_none(),
            "{message} ({REQUIRE_ENV} is set)"
        );
        println!("SKIPPED {message}");
        return None;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let out = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("LD_PRELOAD", fiu::PRELOAD)
        .output()
        .unwrap_or_else(|e| panic!("starting the child: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} failed in its child ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The child's figures, for the report.
    for line in stdout
        .lines()
        .filter_map(|l| l.find("faults:").and_then(|at| l.get(at..)))
    {
        println!("{line}");
    }
    None
}
