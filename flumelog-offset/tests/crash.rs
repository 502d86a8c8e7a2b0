//! Crash safety: a child process appends in a loop and reports each acknowledged append; the
//! parent kills it with SIGKILL at a random moment, reopens the log and checks that every
//! acknowledged record is there and intact, that nothing half-written is visible, and that
//! appending continues. Many trials, in both durability modes and both formats.
//!
//! A custom harness (`harness = false`) on `flumedb_core::testkit::crash`: the same binary is
//! the child. `FLUMEDB_SOAK=1` runs many more trials.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use flumedb_core::testkit::crash::{self, Kill, Rng, Trials};
use flumedb_core::{Log, StreamOptions};
use flumelog_offset::{Durability, Format, JsWidth, OffsetLog};

/// Record `i`: a marker byte, its number, then a body whose length and bytes depend on `i`.
fn record(i: u64) -> Vec<u8> {
    let len = 9 + (i.wrapping_mul(2_654_435_761) % 3000) as usize;
    let mut data = vec![0xa5];
    data.extend(i.to_le_bytes());
    data.extend((9..len).map(|j| (i as usize + j) as u8 | 1));
    data
}

fn parse(data: &[u8]) -> Option<u64> {
    let i = u64::from_le_bytes(data.get(1..9)?.try_into().ok()?);
    (data == record(i).as_slice()).then_some(i)
}

fn options(mode: &str) -> flumelog_offset::OffsetOptions {
    let (format, durability) = match mode {
        "native-fsync" => (Format::Native, Durability::Fsync),
        "native-os" => (Format::Native, Durability::Os),
        "js-fsync" => (Format::Js(JsWidth::W32), Durability::Fsync),
        _ => (Format::Js(JsWidth::W53), Durability::Os),
    };
    OffsetLog::options().format(format).durability(durability)
}

/// The child: append forever (singles and batches), printing `i seq` after each ack.
fn child(path: &Path, mode: &str, start: u64) -> ! {
    let log = options(mode).open(path).expect("child open");
    let mut out = std::io::stdout().lock();
    let mut i = start;
    loop {
        if i.is_multiple_of(5) {
            let batch: Vec<Vec<u8>> = (i..i + 3).map(record).collect();
            let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            let seqs = log.append_batch(&slices).expect("child append_batch");
            for (k, seq) in seqs.iter().enumerate() {
                writeln!(out, "{} {}", i + k as u64, seq).expect("child stdout");
            }
            i += 3;
        } else {
            let seq = log.append(&record(i)).expect("child append");
            writeln!(out, "{i} {seq}").expect("child stdout");
            i += 1;
        }
        out.flush().expect("child stdout");
    }
}

/// One trial: how many records were acknowledged, or a description of what went wrong.
fn trial(rng: &mut Rng, mode: &str, rounds: usize) -> Result<usize, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("log.offset");
    let mut acked: Vec<(u64, u64)> = Vec::new();
    for round in 0..rounds {
        let start = acked.last().map_or(0, |(i, _)| i + 1);
        let path_arg = path.to_str().ok_or("the temporary path is not UTF-8")?;
        // Killed 5–65 ms after it starts.
        let lines = Kill::new([path_arg, mode, &start.to_string()])
            .after_ms(5..65)
            .run(rng)?;
        // Each line is `i seq`, printed after the append of record `i` returned.
        for line in &lines {
            let mut parts = line.split(' ');
            let ack = match (parts.next(), parts.next(), parts.next()) {
                (Some(i), Some(seq), None) => i.parse::<u64>().ok().zip(seq.parse::<u64>().ok()),
                _ => None,
            };
            acked.push(ack.ok_or_else(|| format!("round {round}: the child printed {line:?}"))?);
        }

        // Reopen: everything acknowledged is there, in order, intact; nothing else but
        // whole records that were written just before the kill.
        let log = options(mode)
            .open(&path)
            .map_err(|e| format!("reopen: {e}"))?;
        let mut expected_i = 0u64;
        for entry in log
            .stream(StreamOptions::new())
            .map_err(|e| e.to_string())?
        {
            let entry = entry.map_err(|e| format!("round {round}: reading after crash: {e}"))?;
            let i = parse(&entry.data).ok_or_else(|| {
                format!(
                    "round {round}: a damaged record is visible at {}",
                    entry.seq
                )
            })?;
            if i != expected_i {
                return Err(format!(
                    "round {round}: record {expected_i} expected, {i} found"
                ));
            }
            expected_i += 1;
        }
        for (i, seq) in &acked {
            if *i >= expected_i {
                return Err(format!(
                    "round {round}: acknowledged record {i} (seq {seq}) lost; the log has {expected_i}"
                ));
            }
            let data = log
                .get(flumedb_core::Seq::new(*seq))
                .map_err(|e| format!("round {round}: acknowledged record {i} at {seq}: {e}"))?;
            if parse(&data) != Some(*i) {
                return Err(format!("round {round}: record {i} at {seq} is wrong"));
            }
        }
        // Records written but not acknowledged before the kill survive too: keep them, so
        // the next round continues after them (also when none was acknowledged yet).
        let next = acked.last().map_or(0, |(i, _)| i + 1);
        if expected_i > next {
            let extra: Vec<(u64, u64)> = log
                .stream(StreamOptions::new())
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok())
                .filter_map(|e| parse(&e.data).map(|i| (i, e.seq.get())))
                .filter(|(i, _)| *i >= next)
                .collect();
            acked.extend(extra);
        }
        log.close().map_err(|e| e.to_string())?;
    }
    // Appending continues after the last crash.
    let log = options(mode).open(&path).map_err(|e| e.to_string())?;
    let next = acked.last().map_or(0, |(i, _)| i + 1);
    let seq = log.append(&record(next)).map_err(|e| e.to_string())?;
    if parse(&log.get(seq).map_err(|e| e.to_string())?) != Some(next) {
        return Err("append after recovery reads back wrong".into());
    }
    Ok(acked.len())
}

fn main() -> ExitCode {
    if let Some(args) = crash::child_args() {
        let start = args[2].parse().expect("start index");
        child(Path::new(&args[0]), &args[1], start);
    }
    let modes = ["native-fsync", "native-os", "js-fsync", "js-os"];
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    Trials::new("offset crash (3 SIGKILLs per trial)", 12, 200).run(|t| {
        let mode = modes[t % modes.len()];
        trial(&mut rng, mode, 3)
            .map(|acked| format!("{mode}: {acked} records acknowledged, all intact"))
            .map_err(|why| format!("{mode}: {why}"))
    })
}
