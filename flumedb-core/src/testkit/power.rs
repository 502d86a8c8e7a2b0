//! Simulated power loss, ALICE-style: record the write/fsync trace of a run, then build every
//! crash state the disk could show and let the test open each one.
//!
//! Recording: the test binary starts itself again as a child ([`record`]) with an
//! `LD_PRELOAD` shim (`power_shim.c`, built with `gcc` next to the test binary) that logs every
//! write, truncate, fsync/fdatasync, create, mkdir, rename and unlink under the run's
//! directory, with the data written, in the order the calls took effect. What the library
//! really does reaches the trace: `pwrite64`, `write`, `ftruncate`, `fdatasync`, `rename`…
//! The child runs a workload in [`Child::data`] and reports what was acknowledged with
//! [`Child::note`], which lands in the same trace, after the calls that made it true.
//!
//! Crash states ([`Trace::crash_states`]): at every point of the trace, each file holds what
//! its last fsync made durable plus any subset of the 4 KiB pages written since (lost pages
//! keep the old bytes, or read as zeros when the file size persisted but the data did not);
//! the namespace holds what the last fsync of each directory made durable plus a prefix of
//! the directory operations since (a file created or renamed without a directory fsync may
//! vanish or be undone). Small sets of unsynced pages are enumerated exhaustively; larger
//! ones by prefixes (in-order persistence, a write torn at a page), single losses, single
//! survivals and seeded random subsets.
//!
//! ```no_run
//! use flumedb_core::testkit::power::{self, Limits};
//!
//! #[test]
//! fn child() {
//!     // Started by `record`: the workload. Does nothing in a normal test run.
//!     if let Some(mut child) = power::child() {
//!         std::fs::write(child.data().join("x"), b"hello").unwrap();
//!         child.note("written");
//!     }
//! }
//!
//! #[test]
//! fn power_loss() {
//!     let trace = power::record("child", "any workload name").unwrap();
//!     let stats = trace.crash_states(&Limits::from_env(64, 512), |state| {
//!         let dir = power::scratch_dir();
//!         state.create_in(dir.path()).unwrap();
//!         // Open what is in `dir` and check it against `state.notes`.
//!         Ok(())
//!     });
//!     stats.unwrap();
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::crash::Rng;

/// The page size at which writes persist or are lost independently.
pub const PAGE: u64 = 4096;

/// Set in the child's environment: the workload's name.
const CHILD_ENV: &str = "FLUMEDB_POWER_CHILD";
/// Set in the child's environment: the traced directory.
const ROOT_ENV: &str = "FLUMEDB_POWER_DIR";
const TRACE_ENV: &str = "FLUMEDB_POWER_TRACE";
/// The file in the traced directory that carries the child's notes.
const NOTES: &str = "notes";
/// The directory the workload writes in (exists, durably, before the run).
const DATA: &str = "data";

const SHIM_SOURCE: &str = include_str!("power_shim.c");

/// A child started by [`record`]: where to write, and how to report what was acknowledged.
#[derive(Debug)]
pub struct Child {
    /// The workload [`record`] was asked to run.
    pub workload: String,
    root: PathBuf,
    notes: File,
}

/// `Some` in a child started by [`record`] (its workload and directories), `None` otherwise.
pub fn child() -> Option<Child> {
    let workload = std::env::var(CHILD_ENV).ok()?;
    let root = PathBuf::from(std::env::var_os(ROOT_ENV)?);
    let notes = OpenOptions::new()
        .append(true)
        .create(true)
        .open(root.join(NOTES))
        .ok()?;
    Some(Child {
        workload,
        root,
        notes,
    })
}

impl Child {
    /// The directory the workload writes in.
    pub fn data(&self) -> PathBuf {
        self.root.join(DATA)
    }

    /// Records `line` (no newline) in the trace, after every call that completed before it:
    /// a crash state after it has the note in [`CrashState::notes`].
    ///
    /// # Panics
    /// If the note cannot be written (the run is then useless).
    #[allow(clippy::expect_used)]
    pub fn note(&mut self, line: &str) {
        self.notes
            .write_all(format!("{line}\n").as_bytes())
            .expect("writing a power-loss note");
    }
}

/// One call of the trace, paths relative to the traced directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A file was created.
    Create(PathBuf),
    /// A directory was created.
    Mkdir(PathBuf),
    /// Bytes were written at an offset.
    Write {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What.
        data: Vec<u8>,
    },
    /// A file's length was set.
    Truncate {
        /// The file.
        path: PathBuf,
        /// The new length.
        len: u64,
    },
    /// A file was fsync'd or fdatasync'd.
    Sync(PathBuf),
    /// A directory was fsync'd.
    SyncDir(PathBuf),
    /// A rename.
    Rename {
        /// Old name.
        from: PathBuf,
        /// New name.
        to: PathBuf,
    },
    /// A file or directory was removed.
    Unlink(PathBuf),
    /// A line the child noted with [`Child::note`].
    Note(String),
}

/// The recorded calls of one run.
#[derive(Debug)]
pub struct Trace {
    /// The calls, in the order they took effect.
    pub ops: Vec<Op>,
}

impl Trace {
    /// How many calls of each kind the trace holds, e.g. `write 120, fsync 40, rename 3`.
    pub fn summary(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for op in &self.ops {
            let kind = match op {
                Op::Create(_) => "create",
                Op::Mkdir(_) => "mkdir",
                Op::Write { .. } => "write",
                Op::Truncate { .. } => "truncate",
                Op::Sync(_) => "fsync",
                Op::SyncDir(_) => "dir fsync",
                Op::Rename { .. } => "rename",
                Op::Unlink(_) => "unlink",
                Op::Note(_) => "note",
            };
            *counts.entry(kind).or_default() += 1;
        }
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        parts.join(", ")
    }
}

/// Builds the shim (once per source version) next to the running test binary.
fn shim() -> Result<PathBuf, String> {
    // One build at a time in this process (tests run on threads); other processes build
    // under their own names and rename, so the shim appears whole or not at all.
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut h = DefaultHasher::new();
    SHIM_SOURCE.hash(&mut h);
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe.parent().ok_or("the test binary has no directory")?;
    let so = dir.join(format!("flumedb-power-shim-{:016x}.so", h.finish()));
    if so.exists() {
        return Ok(so);
    }
    let src = dir.join(format!("flumedb-power-shim-{:016x}.c", h.finish()));
    fs::write(&src, SHIM_SOURCE).map_err(|e| format!("writing {}: {e}", src.display()))?;
    // Build under a private name, then rename: concurrent test binaries may race here.
    let tmp = dir.join(format!("flumedb-power-shim-{}.so.tmp", std::process::id()));
    let out = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&tmp)
        .arg(&src)
        .arg("-ldl")
        .output()
        .map_err(|e| format!("running gcc (needed by the power-loss tests): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "gcc failed on the power-loss shim: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    match fs::rename(&tmp, &so) {
        Ok(()) => Ok(so),
        Err(_) if so.exists() => Ok(so),
        Err(e) => Err(format!("renaming the shim: {e}")),
    }
}

/// Runs the test `child_test` of this binary (which calls [`child`] and runs `workload`) in a
/// child process under the shim, and returns its trace. The child must exit successfully.
///
/// # Errors
/// The shim cannot be built, the child fails, or the trace cannot be read.
pub fn record(child_test: &str, workload: &str) -> Result<Trace, String> {
    let so = shim()?;
    let tmp = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let base = fs::canonicalize(tmp.path()).map_err(|e| format!("canonicalize: {e}"))?;
    let root = base.join("run");
    fs::create_dir_all(root.join(DATA)).map_err(|e| format!("mkdir: {e}"))?;
    let trace_path = base.join("trace");
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = Command::new(exe)
        .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, workload)
        .env(ROOT_ENV, &root)
        .env(TRACE_ENV, &trace_path)
        .env("LD_PRELOAD", &so)
        .output()
        .map_err(|e| format!("starting the child: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the power-loss child for {workload:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let bytes = fs::read(&trace_path).map_err(|e| format!("reading the trace: {e}"))?;
    let ops = parse(&bytes, &root)?;
    if !ops.iter().any(|op| matches!(op, Op::Note(_))) {
        return Err(format!(
            "the child for {workload:?} noted nothing (did the test {child_test:?} call \
             power::child()?)\n{}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(Trace { ops })
}

fn parse(bytes: &[u8], root: &Path) -> Result<Vec<Op>, String> {
    let mut ops = Vec::new();
    let mut at = 0;
    let rel = |p: &str| -> Result<PathBuf, String> {
        Path::new(p)
            .strip_prefix(root)
            .map(Path::to_path_buf)
            .map_err(|_| format!("a traced path outside the run: {p}"))
    };
    while at < bytes.len() {
        let nl = bytes
            .get(at..)
            .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
            .ok_or("a trace record without its header line")?;
        let line = String::from_utf8_lossy(bytes.get(at..at + nl).ok_or("trace")?).into_owned();
        at += nl + 1;
        let f: Vec<&str> = line.split('\t').collect();
        let [op, off, len, p1, p2] = f.as_slice() else {
            return Err(format!("a bad trace line: {line:?}"));
        };
        let num = |s: &str| s.parse::<u64>().map_err(|e| format!("{line:?}: {e}"));
        let (off, len) = (num(off)?, num(len)? as usize);
        let op = match *op {
            "C" => Op::Create(rel(p1)?),
            "M" => Op::Mkdir(rel(p1)?),
            "T" => Op::Truncate {
                path: rel(p1)?,
                len: off,
            },
            "S" => Op::Sync(rel(p1)?),
            "Y" => Op::SyncDir(rel(p1)?),
            "R" => Op::Rename {
                from: rel(p1)?,
                to: rel(p2)?,
            },
            "U" => Op::Unlink(rel(p1)?),
            "W" => {
                let data = bytes.get(at..at + len).ok_or("a truncated trace")?.to_vec();
                at += len;
                let path = rel(p1)?;
                if path == Path::new(NOTES) {
                    for line in String::from_utf8_lossy(&data).lines() {
                        ops.push(Op::Note(line.to_string()));
                    }
                    continue;
                }
                Op::Write {
                    path,
                    offset: off,
                    data,
                }
            }
            _ => return Err(format!("an unknown trace op: {line:?}")),
        };
        // The notes file's own creation is no part of the workload.
        if !matches!(&op, Op::Create(p) if p == Path::new(NOTES)) {
            ops.push(op);
        }
    }
    Ok(ops)
}

/// A fresh directory to open a crash state in: in memory (`/dev/shm`) where there is one, so
/// the fsyncs of thousands of opens cost nothing.
///
/// # Panics
/// If no temporary directory can be created.
#[allow(clippy::expect_used)]
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir())
    } else {
        tempfile::tempdir()
    };
    dir.expect("a temporary directory for a crash state")
}

/// How many crash states to build.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// At most this many distinct states per crash point.
    pub per_point: usize,
    /// Files with at most this many unsynced pages get every subset of them.
    pub exhaustive_pages: usize,
    /// Seed of the random subsets.
    pub seed: u64,
}

impl Limits {
    /// `per_point` states per point, or `soak` of them with `FLUMEDB_SOAK=1`.
    pub fn from_env(normal: usize, soak: usize) -> Limits {
        let soaking = std::env::var("FLUMEDB_SOAK").is_ok_and(|v| v == "1");
        Limits {
            per_point: if soaking { soak } else { normal },
            exhaustive_pages: if soaking { 10 } else { 6 },
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

/// What the disk shows after a crash at one point of the trace.
#[derive(Clone, Debug)]
pub struct CrashState {
    /// The index in the trace: the calls before it completed, the rest never started.
    pub point: usize,
    /// The notes made before the crash.
    pub notes: Vec<String>,
    /// The directories (relative to the workload's data directory).
    pub dirs: BTreeSet<PathBuf>,
    /// The files and their bytes (relative to the workload's data directory).
    pub files: BTreeMap<PathBuf, FileBytes>,
    /// How this state came about, for failure messages.
    pub how: String,
}

/// A file's bytes in a crash state: `data`, then zeros up to `len`. Files that are extended
/// or preallocated (fjall's 64 MiB journal) are mostly zeros, which are not stored or copied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileBytes {
    /// The bytes up to the last one that is not zero.
    pub data: Vec<u8>,
    /// The file's length.
    pub len: u64,
}

impl FileBytes {
    /// All the bytes, zeros included.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut all = self.data.clone();
        all.resize(self.len as usize, 0);
        all
    }

    /// Writes `data` at `offset`, growing the file if needed.
    fn write(&mut self, offset: u64, data: &[u8]) {
        let (start, end) = (offset as usize, offset as usize + data.len());
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        if let Some(dst) = self.data.get_mut(start..end) {
            dst.copy_from_slice(data);
        }
        self.len = self.len.max(end as u64);
    }

    fn set_len(&mut self, len: u64) {
        self.data.truncate(len as usize);
        self.len = len;
    }

    /// One representation per content: no trailing zeros in `data`.
    fn normalize(&mut self) {
        let keep = self.data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        self.data.truncate(keep);
    }
}

impl CrashState {
    /// Creates the state's directories and files in `dir` (which stands for [`Child::data`]).
    ///
    /// # Errors
    /// Creating them failed.
    pub fn create_in(&self, dir: &Path) -> io::Result<()> {
        for d in &self.dirs {
            fs::create_dir_all(dir.join(d))?;
        }
        for (path, bytes) in &self.files {
            let path = dir.join(path);
            fs::write(&path, &bytes.data)?;
            // The zeros after the data as a hole: fast, and what a preallocated file holds.
            OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(bytes.len)?;
        }
        Ok(())
    }

    fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.dirs.hash(&mut h);
        self.files.hash(&mut h);
        h.finish()
    }
}

/// What [`Trace::crash_states`] built and checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Crash points (calls in the trace + 1).
    pub points: usize,
    /// States checked (distinct disk contents or notes).
    pub states: usize,
    /// Distinct states over the whole trace.
    pub distinct: usize,
}

#[derive(Clone, Debug)]
enum Chunk {
    Write { offset: u64, data: Vec<u8> },
    Truncate(u64),
}

#[derive(Clone, Debug, Default)]
struct Inode {
    durable: FileBytes,
    pending: Vec<Chunk>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    File(usize),
    Dir,
}

#[derive(Clone, Debug)]
enum NsOp {
    Create(PathBuf, usize),
    Mkdir(PathBuf),
    Rename(PathBuf, PathBuf),
    Unlink(PathBuf),
}

type Ns = BTreeMap<PathBuf, Entry>;

fn apply_ns(ns: &mut Ns, op: &NsOp) {
    match op {
        NsOp::Create(p, i) => {
            ns.insert(p.clone(), Entry::File(*i));
        }
        NsOp::Mkdir(p) => {
            ns.insert(p.clone(), Entry::Dir);
        }
        NsOp::Rename(from, to) => {
            if let Some(e) = ns.remove(from) {
                ns.insert(to.clone(), e);
            }
        }
        NsOp::Unlink(p) => {
            ns.remove(p);
        }
    }
}

fn parent_of(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn apply_chunk(bytes: &mut FileBytes, chunk: &Chunk) {
    match chunk {
        Chunk::Write { offset, data } => bytes.write(*offset, data),
        Chunk::Truncate(len) => bytes.set_len(*len),
    }
}

impl Inode {
    fn current(&self) -> FileBytes {
        self.with(&vec![true; self.pending.len()], false)
    }

    /// The durable bytes with the pending chunks `keep` says; a lost write extends the file
    /// with zeros when `zeros` (its size persisted, its data did not).
    fn with(&self, keep: &[bool], zeros: bool) -> FileBytes {
        let mut bytes = self.durable.clone();
        for (chunk, kept) in self.pending.iter().zip(keep) {
            if *kept {
                apply_chunk(&mut bytes, chunk);
            } else if zeros && let Chunk::Write { offset, data } = chunk {
                // Only the growth reads as zeros: lost pages inside the file keep old bytes.
                bytes.len = bytes.len.max(*offset + data.len() as u64);
            }
        }
        bytes.normalize();
        bytes
    }

    /// The variants of this file after a crash, most telling first.
    fn variants(&self, limits: &Limits, rng: &mut Rng) -> Vec<(FileBytes, String)> {
        let m = self.pending.len();
        // In-order persistence first (each prefix: a write torn at a page), then each page
        // lost alone and kept alone, then every subset (small sets) or random ones.
        let mut masks: Vec<Vec<bool>> = Vec::new();
        for k in (0..=m).rev() {
            masks.push((0..m).map(|i| i < k).collect());
        }
        for k in 0..m {
            masks.push((0..m).map(|i| i != k).collect());
            masks.push((0..m).map(|i| i == k).collect());
        }
        if m <= limits.exhaustive_pages {
            for bits in 0..(1u64 << m) {
                masks.push((0..m).map(|i| bits >> i & 1 == 1).collect());
            }
        } else {
            for _ in 0..limits.per_point {
                masks.push((0..m).map(|_| rng.below(2) == 1).collect());
            }
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for mask in masks {
            if out.len() >= limits.per_point {
                break;
            }
            for zeros in [false, true] {
                let bytes = self.with(&mask, zeros);
                if seen.insert(bytes.clone()) {
                    let how: String = mask.iter().map(|k| if *k { '1' } else { '0' }).collect();
                    out.push((
                        bytes,
                        format!("pages {how}{}", if zeros { " z" } else { "" }),
                    ));
                }
            }
        }
        out
    }
}

#[derive(Default)]
struct Model {
    inodes: Vec<Inode>,
    durable_ns: Ns,
    current_ns: Ns,
    pending_ns: Vec<NsOp>,
}

impl Model {
    fn file(&mut self, path: &Path) -> Option<&mut Inode> {
        match self.current_ns.get(path) {
            Some(Entry::File(i)) => self.inodes.get_mut(*i),
            _ => None,
        }
    }

    fn ns_op(&mut self, op: NsOp) {
        apply_ns(&mut self.current_ns, &op);
        self.pending_ns.push(op);
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Create(p) => {
                self.inodes.push(Inode::default());
                let i = self.inodes.len() - 1;
                self.ns_op(NsOp::Create(p.clone(), i));
            }
            Op::Mkdir(p) => self.ns_op(NsOp::Mkdir(p.clone())),
            Op::Rename { from, to } => self.ns_op(NsOp::Rename(from.clone(), to.clone())),
            Op::Unlink(p) => self.ns_op(NsOp::Unlink(p.clone())),
            Op::Write { path, offset, data } => {
                if let Some(inode) = self.file(path) {
                    // One chunk per page the write touches.
                    let mut at = *offset;
                    let mut rest = data.as_slice();
                    while !rest.is_empty() {
                        let n = ((PAGE - at % PAGE) as usize).min(rest.len());
                        let (head, tail) = rest.split_at(n);
                        inode.pending.push(Chunk::Write {
                            offset: at,
                            data: head.to_vec(),
                        });
                        at += n as u64;
                        rest = tail;
                    }
                }
            }
            Op::Truncate { path, len } => {
                if let Some(inode) = self.file(path) {
                    inode.pending.push(Chunk::Truncate(*len));
                }
            }
            Op::Sync(path) => {
                if let Some(inode) = self.file(path) {
                    inode.durable = inode.current();
                    inode.pending.clear();
                }
            }
            Op::SyncDir(dir) => {
                let (now, later): (Vec<NsOp>, Vec<NsOp>) =
                    self.pending_ns.drain(..).partition(|op| match op {
                        NsOp::Create(p, _) | NsOp::Mkdir(p) | NsOp::Unlink(p) => {
                            parent_of(p) == *dir
                        }
                        NsOp::Rename(a, b) => parent_of(a) == *dir || parent_of(b) == *dir,
                    });
                for op in &now {
                    apply_ns(&mut self.durable_ns, op);
                }
                self.pending_ns = later;
            }
            Op::Note(_) => {}
        }
    }

    /// The states at this point, deduplicated, at most `limits.per_point`.
    fn states(
        &self,
        point: usize,
        notes: &[String],
        limits: &Limits,
        rng: &mut Rng,
    ) -> Vec<CrashState> {
        let data = Path::new(DATA);
        // Namespaces: the durable one plus each prefix of the pending operations.
        let mut namespaces = Vec::new();
        let mut ns = self.durable_ns.clone();
        namespaces.push((ns.clone(), 0));
        for (j, op) in self.pending_ns.iter().enumerate() {
            apply_ns(&mut ns, op);
            namespaces.push((ns.clone(), j + 1));
        }
        namespaces.reverse(); // the complete one first
        let variants: BTreeMap<usize, Vec<(FileBytes, String)>> = self
            .inodes
            .iter()
            .enumerate()
            .filter(|(_, inode)| !inode.pending.is_empty())
            .map(|(i, inode)| (i, inode.variants(limits, rng)))
            .collect();
        let full = |i: usize| -> (FileBytes, String) {
            self.inodes
                .get(i)
                .map_or((FileBytes::default(), String::new()), |n| {
                    (n.current(), String::new())
                })
        };
        let none = |i: usize| -> (FileBytes, String) {
            self.inodes
                .get(i)
                .map_or((FileBytes::default(), String::new()), |n| {
                    (n.durable.clone(), String::new())
                })
        };
        // Content choices: (inode -> variant index), as closures over the inode.
        let mut choices: Vec<BTreeMap<usize, (FileBytes, String)>> = Vec::new();
        let all: BTreeMap<_, _> = variants.keys().map(|i| (*i, full(*i))).collect();
        let nothing: BTreeMap<_, _> = variants.keys().map(|i| (*i, none(*i))).collect();
        choices.push(all.clone());
        choices.push(nothing.clone());
        for (i, vs) in &variants {
            for v in vs {
                let bases = if variants.len() > 1 { 2 } else { 1 };
                for base in [&all, &nothing].into_iter().take(bases) {
                    let mut c = base.clone();
                    c.insert(*i, v.clone());
                    choices.push(c);
                }
            }
        }
        if variants.len() > 1 {
            for _ in 0..limits.per_point {
                let c = variants
                    .iter()
                    .filter_map(|(i, vs)| {
                        let k = rng.below(vs.len() as u64) as usize;
                        vs.get(k).map(|v| (*i, v.clone()))
                    })
                    .collect();
                choices.push(c);
            }
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        // Every content choice with the complete namespace, then each namespace with the
        // content all kept and all lost; then the rest, until the budget is spent.
        let mut plan: Vec<(usize, usize)> = (0..choices.len()).map(|c| (0, c)).collect();
        for n in 1..namespaces.len() {
            plan.push((n, 0));
            plan.push((n, 1));
        }
        for (n, c) in plan {
            if out.len() >= limits.per_point {
                break;
            }
            let (Some((ns, j)), Some(choice)) = (namespaces.get(n), choices.get(c)) else {
                continue;
            };
            let mut state = CrashState {
                point,
                notes: notes.to_vec(),
                dirs: BTreeSet::new(),
                files: BTreeMap::new(),
                how: format!("point {point}, {j}/{} dir ops", self.pending_ns.len()),
            };
            for (path, entry) in ns {
                // Only what lies in the data directory, and whose directories all survived.
                let Ok(rel) = path.strip_prefix(data) else {
                    continue;
                };
                let reachable = path
                    .ancestors()
                    .skip(1)
                    .filter(|a| !a.as_os_str().is_empty())
                    .all(|a| ns.get(a) == Some(&Entry::Dir) || a == data);
                if !reachable || rel.as_os_str().is_empty() {
                    continue;
                }
                match entry {
                    Entry::Dir => {
                        state.dirs.insert(rel.to_path_buf());
                    }
                    Entry::File(i) => {
                        let (bytes, how) = choice.get(i).cloned().unwrap_or_else(|| full(*i));
                        if !how.is_empty() {
                            state.how.push_str(&format!(", {}: {how}", rel.display()));
                        }
                        state.files.insert(rel.to_path_buf(), bytes);
                    }
                }
            }
            if seen.insert(state.fingerprint()) {
                out.push(state);
            }
        }
        out
    }
}

impl Trace {
    /// Builds the crash states at every point of the trace and calls `check` on each; stops
    /// at the first error, which names the state.
    ///
    /// # Errors
    /// The first `check` failure, with the state's point and how it was built.
    pub fn crash_states(
        &self,
        limits: &Limits,
        mut check: impl FnMut(&CrashState) -> Result<(), String>,
    ) -> Result<Stats, String> {
        let mut model = Model::default();
        model.durable_ns.insert(PathBuf::from(DATA), Entry::Dir);
        model.current_ns.insert(PathBuf::from(DATA), Entry::Dir);
        let mut rng = Rng::new(limits.seed);
        let mut stats = Stats::default();
        let mut distinct = HashSet::new();
        let mut checked = HashSet::new();
        let mut notes = Vec::new();
        for point in 0..=self.ops.len() {
            if point > 0
                && let Some(op) = self.ops.get(point - 1)
            {
                model.apply(op);
                if let Op::Note(n) = op {
                    notes.push(n.clone());
                }
            }
            stats.points += 1;
            for state in model.states(point, &notes, limits, &mut rng) {
                // The same disk after the same notes was checked at an earlier point.
                if !checked.insert((state.fingerprint(), notes.len())) {
                    continue;
                }
                stats.states += 1;
                distinct.insert(state.fingerprint());
                check(&state).map_err(|e| {
                    format!(
                        "crash state {} ({}), after {} notes (last {:?}): {e}",
                        stats.states,
                        state.how,
                        state.notes.len(),
                        state.notes.last()
                    )
                })?;
            }
        }
        stats.distinct = distinct.len();
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn write(path: &str, offset: u64, data: &[u8]) -> Op {
        Op::Write {
            path: p(path),
            offset,
            data: data.to_vec(),
        }
    }

    /// Every state after the last of `ops` (without the harness's deduplication across
    /// points).
    fn final_states(ops: Vec<Op>) -> Vec<CrashState> {
        let mut model = Model::default();
        model.durable_ns.insert(p(DATA), Entry::Dir);
        model.current_ns.insert(p(DATA), Entry::Dir);
        for op in &ops {
            model.apply(op);
        }
        let limits = Limits {
            per_point: 1000,
            exhaustive_pages: 8,
            seed: 1,
        };
        model.states(ops.len(), &[], &limits, &mut Rng::new(1))
    }

    /// fjall preallocates its journal (64 MiB): states keep the length, not the zeros.
    #[test]
    fn a_preallocated_file_is_its_data_and_a_length() {
        let len = 64 << 20;
        let states = final_states(vec![
            Op::Create(p("data/j")),
            Op::SyncDir(p("data")),
            Op::Truncate {
                path: p("data/j"),
                len,
            },
            Op::Sync(p("data/j")),
            write("data/j", 0, b"entry"),
        ]);
        let files: HashSet<FileBytes> = states
            .iter()
            .map(|s| s.files.get(&p("j")).unwrap().clone())
            .collect();
        let expected: HashSet<FileBytes> = [
            FileBytes {
                data: b"entry".to_vec(),
                len,
            },
            FileBytes {
                data: Vec::new(),
                len,
            },
        ]
        .into();
        assert_eq!(files, expected);
        let dir = tempfile::tempdir().unwrap();
        let with_entry = states
            .iter()
            .find(|s| !s.files.get(&p("j")).unwrap().data.is_empty())
            .unwrap();
        with_entry.create_in(dir.path()).unwrap();
        let on_disk = fs::read(dir.path().join("j")).unwrap();
        assert_eq!(on_disk.len() as u64, len);
        assert_eq!(&on_disk[..5], b"entry");
        assert!(on_disk[5..].iter().all(|b| *b == 0));
    }

    #[test]
    fn synced_bytes_stay_and_unsynced_pages_come_and_go_independently() {
        let page = PAGE as usize;
        let states = final_states(vec![
            Op::Create(p("data/f")),
            Op::SyncDir(p("data")),
            write("data/f", 0, b"synced"),
            Op::Sync(p("data/f")),
            // Three pages, unsynced: 2^3 subsets, plus zero-filled growth.
            write("data/f", PAGE, &vec![1u8; 3 * page]),
        ]);
        let contents: HashSet<Vec<u8>> = states
            .iter()
            .map(|s| s.files.get(&p("f")).unwrap().to_vec())
            .collect();
        assert!(
            contents.iter().all(|c| c.starts_with(b"synced")),
            "the synced prefix stays"
        );
        // Only the middle page kept: old bytes (none: zeros) around it.
        let mut middle = b"synced".to_vec();
        middle.resize(2 * page, 0);
        middle.extend(vec![1u8; page]);
        assert!(contents.contains(&middle), "a page kept alone");
        let mut first = b"synced".to_vec();
        first.resize(page, 0);
        first.extend(vec![1u8; page]);
        assert!(contents.contains(&first), "a write torn at a page");
        let mut grown = b"synced".to_vec();
        grown.resize(4 * page, 0);
        assert!(contents.contains(&grown), "the size persisted, no data");
        assert!(contents.contains(b"synced".as_slice()), "all lost");
        // 8 subsets; the 4 that lose the last page also with the size grown (zeros).
        assert_eq!(contents.len(), 8 + 4);
    }

    #[test]
    fn entries_without_a_directory_fsync_may_vanish_or_be_undone() {
        let states = final_states(vec![
            Op::Create(p("data/a.tmp")),
            write("data/a.tmp", 0, b"new"),
            Op::Sync(p("data/a.tmp")),
            Op::Rename {
                from: p("data/a.tmp"),
                to: p("data/a"),
            },
        ]);
        let names: HashSet<Vec<PathBuf>> = states
            .iter()
            .map(|s| s.files.keys().cloned().collect())
            .collect();
        assert!(names.contains(&vec![]), "the creation undone");
        assert!(names.contains(&vec![p("a.tmp")]), "the rename undone");
        assert!(names.contains(&vec![p("a")]), "both persisted");
        // After the directory fsync only the renamed file remains.
        let synced = final_states(vec![
            Op::Create(p("data/a.tmp")),
            write("data/a.tmp", 0, b"new"),
            Op::Sync(p("data/a.tmp")),
            Op::Rename {
                from: p("data/a.tmp"),
                to: p("data/a"),
            },
            Op::SyncDir(p("data")),
        ]);
        assert_eq!(synced.len(), 1);
        assert_eq!(synced[0].files.get(&p("a")).unwrap().to_vec(), b"new");
    }

    #[test]
    fn a_file_in_a_directory_that_vanished_vanishes_with_it() {
        let states = final_states(vec![
            Op::Mkdir(p("data/sub")),
            Op::Create(p("data/sub/f")),
            Op::SyncDir(p("data/sub")),
            write("data/sub/f", 0, b"x"),
            Op::Sync(p("data/sub/f")),
        ]);
        assert!(
            states
                .iter()
                .any(|s| s.files.is_empty() && s.dirs.is_empty()),
            "sub was never made durable in data"
        );
        assert!(
            states
                .iter()
                .all(|s| s.files.is_empty() || s.dirs.contains(&p("sub")))
        );
    }

    #[test]
    fn notes_are_those_before_the_point() {
        let trace = Trace {
            ops: vec![Op::Note("one".into()), Op::Note("two".into())],
        };
        let mut seen = Vec::new();
        trace
            .crash_states(&Limits::from_env(4, 4), |s| {
                seen.push(s.notes.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(
            seen,
            vec![
                vec![],
                vec!["one".to_string()],
                vec!["one".into(), "two".into()]
            ]
        );
    }
}
