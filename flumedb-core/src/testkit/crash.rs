//! A crash harness: kill a writing process with SIGKILL at random moments, then check what it
//! left on disk.
//!
//! A crash test is an integration test with `harness = false` whose binary plays both parts.
//! Started by `cargo test` it is the parent and runs [`Trials`]; each trial starts the same
//! binary again as a child ([`Kill::run`], which passes [`CHILD_ARG`] and the trial's
//! arguments), lets it write, kills it with SIGKILL after a random delay, and then reopens
//! what the child wrote and checks its invariants. The child reports what it has
//! acknowledged on stdout, one line per fact; the parent gets the whole lines printed before
//! the kill.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use flumedb_core::testkit::crash::{self, Kill, Rng, Trials};
//!
//! fn main() -> ExitCode {
//!     if let Some(args) = crash::child_args() {
//!         // The child: write in a loop, print one line per acknowledged write.
//!         # let _ = args;
//!         loop { std::thread::park(); }
//!     }
//!     let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
//!     Trials::new("example crash", 12, 200).run(|_trial| {
//!         let acked = Kill::new(["/tmp/x"]).after_ms(5..65).run(&mut rng)?;
//!         // Reopen /tmp/x and check that everything in `acked` is there.
//!         Ok(format!("{} writes acknowledged", acked.len()))
//!     })
//! }
//! ```

use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The first argument of a child started by [`Kill::run`].
pub const CHILD_ARG: &str = "--crash-child";

/// How long [`Kill::when_ready`] waits for the child's ready line before it fails the trial.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The child's arguments (those given to [`Kill::new`]) if this process is a child started by
/// [`Kill::run`]; `None` in the parent.
pub fn child_args() -> Option<Vec<String>> {
    let mut args = std::env::args().skip(1);
    (args.next().as_deref() == Some(CHILD_ARG)).then(|| args.collect())
}

/// A small deterministic random generator (xorshift64) for kill delays and trial choices: a
/// seed gives the same trials on every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0, which xorshift cannot leave, is replaced by a constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x2545_f491_4f6c_dd1d
        } else {
            seed
        })
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.checked_rem(n).unwrap_or(0)
    }
}

/// One run of the child, killed with SIGKILL after a random delay.
#[derive(Clone, Debug)]
#[must_use = "a Kill does nothing until `run`"]
pub struct Kill {
    args: Vec<String>,
    ready: Option<String>,
    after_ms: Range<u64>,
}

impl Kill {
    /// A child run with these arguments (what [`child_args`] returns in the child), killed
    /// 5–65 ms after it starts unless [`after_ms`](Self::after_ms) says otherwise.
    pub fn new<I>(args: I) -> Kill
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Kill {
            args: args.into_iter().map(Into::into).collect(),
            ready: None,
            after_ms: 5..65,
        }
    }

    /// Start the delay only once the child has printed `line` as its first line (say, once it
    /// has opened its files); any other first line fails the trial. The ready line is not
    /// among the lines [`run`](Self::run) returns.
    pub fn when_ready(mut self, line: &str) -> Kill {
        self.ready = Some(line.to_string());
        self
    }

    /// Kill the child a random number of milliseconds in `range` after it starts (or after it
    /// is ready).
    pub fn after_ms(mut self, range: Range<u64>) -> Kill {
        self.after_ms = range;
        self
    }

    /// Starts the child, kills it with SIGKILL after the delay (drawn from `rng`), waits for
    /// it, and returns the whole lines it printed on stdout before it died (a line cut off by
    /// the kill is dropped: it was not acknowledged).
    ///
    /// # Errors
    ///
    /// A description: the child could not be started, was not ready as asked, or exited by
    /// itself (it must write until killed, so an exit is a failure in it).
    pub fn run(&self, rng: &mut Rng) -> Result<Vec<String>, String> {
        let exe = std::env::current_exe().map_err(|e| format!("the test binary: {e}"))?;
        let mut child = Command::new(exe)
            .arg(CHILD_ARG)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the child: {e}"))?;
        let stdout = child.stdout.take().ok_or("the child has no stdout")?;
        // Read on a thread of its own, so the child never blocks on a full pipe.
        let (first_tx, first_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut lines = Vec::new();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match stdout.read_until(b'\n', &mut buf) {
                    Ok(_) if buf.pop() == Some(b'\n') => {}
                    _ => break,
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                if lines.is_empty() {
                    let _ = first_tx.send(line.clone());
                }
                lines.push(line);
            }
            lines
        });
        if let Some(ready) = &self.ready {
            let said = first_rx.recv_timeout(READY_TIMEOUT);
            if said.as_ref() != Ok(ready) {
                kill(&mut child)?;
                let _ = reader.join();
                return Err(match said {
                    Ok(line) => format!("the child said {line:?}, not {ready:?}"),
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        "the child ended before it was ready".to_string()
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        format!("the child was not ready within {READY_TIMEOUT:?}")
                    }
                });
            }
        }
        let span = self.after_ms.end.saturating_sub(self.after_ms.start);
        let delay = self.after_ms.start + rng.below(span);
        std::thread::sleep(Duration::from_millis(delay));
        let killed = kill(&mut child)?;
        let mut lines = reader.join().map_err(|_| "the reader thread panicked")?;
        if !killed {
            return Err(format!(
                "the child exited by itself before the kill ({} lines printed)",
                lines.len()
            ));
        }
        if self.ready.is_some() && !lines.is_empty() {
            lines.remove(0);
        }
        Ok(lines)
    }
}

/// Sends SIGKILL and reaps the child; whether the kill is what ended it.
fn kill(child: &mut Child) -> Result<bool, String> {
    // Before `wait` the process is not reaped, so `kill` reaches it even if it has exited.
    child
        .kill()
        .map_err(|e| format!("killing the child: {e}"))?;
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the child: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        Ok(status.signal() == Some(9))
    }
    #[cfg(not(unix))]
    {
        Ok(!status.success())
    }
}

/// A series of crash trials, reported one line each and summed up as `N passed, N failed`.
#[derive(Clone, Debug)]
#[must_use = "Trials do nothing until `run`"]
pub struct Trials {
    name: String,
    count: usize,
}

impl Trials {
    /// `normal` trials named `name`, or `soak` when the environment sets `FLUMEDB_SOAK`
    /// (`cargo xtask test-all --soak`).
    pub fn new(name: &str, normal: usize, soak: usize) -> Trials {
        let count = if std::env::var_os("FLUMEDB_SOAK").is_some() {
            soak
        } else {
            normal
        };
        Trials {
            name: name.to_string(),
            count,
        }
    }

    /// How many trials [`run`](Self::run) runs.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Runs `trial(0..count)`: each returns a note on success or what went wrong. Every trial
    /// runs even after a failure; the exit code fails if any did.
    pub fn run(self, mut trial: impl FnMut(usize) -> Result<String, String>) -> ExitCode {
        let (mut passed, mut failed) = (0usize, 0usize);
        for t in 0..self.count {
            match trial(t) {
                Ok(note) => {
                    passed += 1;
                    println!("{} trial {t}: {note}", self.name);
                }
                Err(why) => {
                    failed += 1;
                    eprintln!("{} trial {t} FAILED: {why}", self.name);
                }
            }
        }
        println!("{}: {} trials", self.name, self.count);
        println!("{passed} passed, {failed} failed");
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // This test binary is libtest: started as a child it refuses `--crash-child` and exits
    // with an error at once, printing nothing on stdout.

    #[test]
    fn a_child_that_exits_by_itself_fails_the_trial() {
        let err = Kill::new(["x"])
            .after_ms(2000..2001)
            .run(&mut Rng::new(1))
            .unwrap_err();
        assert!(err.contains("exited by itself"), "{err}");
    }

    #[test]
    fn a_child_that_never_gets_ready_fails_the_trial() {
        let err = Kill::new(["x"])
            .when_ready("ready")
            .run(&mut Rng::new(1))
            .unwrap_err();
        assert!(err.contains("before it was ready"), "{err}");
    }

    #[test]
    fn rng_is_the_xorshift_the_crash_tests_were_tuned_with() {
        let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for n in [60, 400, 1, 7] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            assert_eq!(rng.below(n), x % n);
        }
        assert_eq!(Rng::new(5).below(0), 0);
    }
}
