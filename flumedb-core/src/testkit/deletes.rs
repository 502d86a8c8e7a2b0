//! A load check for logs that can delete: appends, deletes and reads from several threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::{Error, Log, Result, Seq, StreamOptions};

/// Record `i`: a marker, its number, then bytes that depend on it (never all zeros).
fn record(i: u32) -> Vec<u8> {
    let len = 5 + (i as usize * 7919) % 900;
    let mut data = vec![0xa5];
    data.extend(i.to_le_bytes());
    data.extend((5..len).map(|j| (i as usize + j) as u8 | 1));
    data
}

fn check(data: &[u8]) {
    let i = u32::from_le_bytes(data[1..5].try_into().unwrap());
    assert_eq!(data, record(i).as_slice(), "record {i} read damaged");
}

/// Three appenders (singles and batches of two), a deleter (`del`, every third seq appended
/// so far) and two readers (full streams, and `get` of the newest seqs) at once on `log`
/// (empty, with room for records of 904 bytes): every record a reader sees is whole and the
/// one appended at that seq, or reported deleted; afterwards every record is whole or
/// deleted, the log's [`deletes`](Log::deletes) count matches, and a stream yields exactly
/// the live ones. A read racing a delete's zeroing is a narrow window this check hits only by
/// chance.
pub fn check_deletes_under_load<L: Log>(log: Arc<L>, del: fn(&L, Seq) -> Result<()>) {
    let seqs = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let appenders: Vec<_> = (0..3u32)
        .map(|t| {
            let (log, seqs) = (log.clone(), seqs.clone());
            thread::spawn(move || {
                for n in 0..400u32 {
                    let i = t * 1000 + n;
                    let seq = if n % 5 == 0 {
                        let (a, b) = (record(i), record(i + 100_000));
                        let s = log.append_batch(&[&a, &b]).unwrap();
                        seqs.lock().unwrap().push(s[1]);
                        s[0]
                    } else {
                        log.append(&record(i)).unwrap()
                    };
                    seqs.lock().unwrap().push(seq);
                }
            })
        })
        .collect();
    let deleter = {
        let (log, seqs, done) = (log.clone(), seqs.clone(), done.clone());
        thread::spawn(move || {
            let mut k = 0;
            while !done.load(Ordering::Acquire) {
                let victim = seqs.lock().unwrap().get(k * 3).copied();
                if let Some(seq) = victim {
                    match del(&log, seq) {
                        Ok(()) | Err(Error::Deleted { .. }) => {}
                        Err(e) => panic!("del({seq}): {e}"),
                    }
                    k += 1;
                }
                thread::yield_now();
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (log, seqs, done) = (log.clone(), seqs.clone(), done.clone());
            thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    for entry in log.stream(StreamOptions::new()).unwrap() {
                        check(&entry.unwrap().data);
                    }
                    let known: Vec<Seq> = seqs.lock().unwrap().clone();
                    for seq in known.iter().rev().take(50) {
                        match log.get(*seq) {
                            Ok(data) => check(&data),
                            Err(Error::Deleted { .. }) => {}
                            Err(e) => panic!("get({seq}): {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for a in appenders {
        a.join().unwrap();
    }
    done.store(true, Ordering::Release);
    deleter.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    // Afterwards: every record is whole or deleted, and the count adds up.
    let all = seqs.lock().unwrap().clone();
    assert_eq!(all.len(), 3 * (400 + 80));
    let mut deleted = 0;
    for seq in &all {
        match log.get(*seq) {
            Ok(data) => check(&data),
            Err(Error::Deleted { .. }) => deleted += 1,
            Err(e) => panic!("get({seq}): {e}"),
        }
    }
    assert_eq!(Some(deleted), log.deletes());
    let streamed = log.stream(StreamOptions::new()).unwrap().count();
    assert_eq!(streamed as u64 + deleted, all.len() as u64);
}
