//! File systems for the disk-full and permission tests: a small tmpfs (needs root; the tests
//! skip with a message otherwise), remounted read-only on demand, and the immutable attribute
//! (`chattr +i`), which stops even root, where mode bits do not.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs, unmounted (lazily) when dropped.
pub struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(err) => Err(err.to_string()),
    }
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes`; `None` (with a message naming `test`) where that is not
    /// possible (not root, no tmpfs).
    pub fn mount(test: &str, bytes: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).ok()?;
        let size = format!("size={bytes}");
        match run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(&path))
        {
            Ok(()) => Some(Tmpfs { path, _dir: dir }),
            Err(err) => {
                println!("SKIPPED {test}: cannot mount a tmpfs (needs root): {err}");
                None
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remounts it read-only (`true`) or read-write.
    pub fn set_read_only(&self, read_only: bool) -> Result<(), String> {
        let options = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        run(Command::new("mount").args(["-o", options]).arg(&self.path))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run(Command::new("umount").arg("-l").arg(&self.path));
    }
}

/// Sets (`true`) or clears the immutable attribute of `path` with `chattr`.
pub fn set_immutable(path: &Path, immutable: bool) -> Result<(), String> {
    run(Command::new("chattr")
        .arg(if immutable { "+i" } else { "-i" })
        .arg(path))
}
