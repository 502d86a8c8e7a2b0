//! A deterministic generator of SSB-like messages, shared by the benchmarks (the crate
//! `flumedb-bench`, a dev-dependency of the benchmarks and a dependency of `xtask`, never
//! published): the same seed gives the same bytes.
//!
//! Each message is `{key, value: {previous, author, sequence, timestamp, hash, content,
//! signature}, timestamp}`, about 550 bytes of JSON. 200 authors with a skewed distribution
//! (a few write most); content types post ≈45 % (3–60 words, some non-ASCII), vote ≈35 %
//! (linking an earlier message), contact ≈15 %, about ≈5 %; timestamps never decrease (the
//! top-level receive timestamp repeats now and then, as in real feeds).

#![forbid(unsafe_code)]

use serde_json::{Value, json};

/// The number of authors.
pub const AUTHORS: usize = 200;

/// A small deterministic random generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64().checked_rem(n as u64).unwrap_or(0)) as usize
    }
    /// An item of `items` chosen at random (`None` when it is empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            let digit = ABC.get((n >> (18 - 6 * i) & 63) as usize);
            match digit {
                Some(&digit) if i <= chunk.len() => out.push(char::from(digit)),
                _ => out.push('='),
            }
        }
    }
    out
}

const WORDS: &[&str] = &[
    "the",
    "scuttlebutt",
    "gossip",
    "offline",
    "first",
    "peer",
    "log",
    "append",
    "feed",
    "pub",
    "friends",
    "sailing",
    "boat",
    "island",
    "garden",
    "coffee",
    "bread",
    "music",
    "code",
    "rust",
    "javascript",
    "database",
    "index",
    "view",
    "replication",
    "protocol",
    "café",
    "naïve",
    "über",
    "日本",
    "мир",
    "🌊",
    "⛵",
    "señor",
    "façade",
    "and",
    "of",
    "to",
    "in",
    "is",
    "with",
    "for",
    "on",
    "this",
    "that",
    "today",
    "tomorrow",
    "community",
    "sync",
];

/// Messages `0..n` as JSON values.
pub fn messages(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    let authors: Vec<String> = (0..AUTHORS)
        .map(|_| format!("@{}.ed25519", base64(&rng.bytes(32))))
        .collect();
    let mut last_key: Vec<Option<String>> = vec![None; AUTHORS];
    let mut sequence = vec![0u64; AUTHORS];
    let mut keys: Vec<String> = Vec::with_capacity(n);
    let mut timestamp: u64 = 1_500_000_000_000;
    let mut received: u64 = 0;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        // Skewed: the cube of a uniform number favours the first authors.
        let a = ((rng.unit().powi(3)) * AUTHORS as f64) as usize;
        // `unit` is below 1, so `a` is below AUTHORS and this never skips.
        let (Some(author), Some(sequence), Some(previous)) =
            (authors.get(a), sequence.get_mut(a), last_key.get_mut(a))
        else {
            continue;
        };
        timestamp += 1 + rng.below(60_000) as u64;
        *sequence += 1;
        let roll = rng.below(100);
        let content = if roll < 45 {
            let words: Vec<&str> = (0..3 + rng.below(58))
                .map(|_| rng.pick(WORDS).copied().unwrap_or_default())
                .collect();
            json!({"type": "post", "text": words.join(" ")})
        } else if roll < 80 && !keys.is_empty() {
            let link = rng.pick(&keys).cloned().unwrap_or_default();
            json!({"type": "vote", "vote": {"link": link, "value": 1, "expression": "Like"}})
        } else if roll < 95 {
            let other = rng.pick(&authors);
            json!({"type": "contact", "contact": other, "following": rng.below(10) != 0})
        } else {
            json!({"type": "about", "about": author, "name": format!("user{}", rng.below(10_000))})
        };
        let key = format!("%{}.sha256", base64(&rng.bytes(32)));
        // Received a little after it was written, in order; messages received in the same
        // millisecond share a timestamp (as in real feeds).
        received = (timestamp + rng.below(2000) as u64).max(received);
        let message = json!({
            "key": key,
            "value": {
                "previous": previous,
                "author": author,
                "sequence": *sequence,
                "timestamp": timestamp,
                "hash": "sha256",
                "content": content,
                "signature": format!("{}.sig.ed25519", base64(&rng.bytes(64))),
            },
            "timestamp": received,
        });
        *previous = Some(key.clone());
        keys.push(key);
        out.push(message);
    }
    out
}

/// Writes messages `0..n` as JSON lines.
pub fn write_jsonl(path: &std::path::Path, messages: &[Value]) -> std::io::Result<()> {
    let mut text = String::new();
    for m in messages {
        text.push_str(&m.to_string());
        text.push('\n');
    }
    std::fs::write(path, text)
}

/// The benchmark's parameters for `messages`: which records to get, which level keys, which
/// authors to read, as `bench/js/bench.js` and the Rust side take them.
pub fn params(messages: &[Value], seed: u64) -> Value {
    let n = messages.len();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let gets: Vec<usize> = (0..10_000).map(|_| rng.below(n)).collect();
    let level_get: Vec<Value> = (0..10_000)
        .map(|_| {
            let m = rng.pick(messages).and_then(|m| m.get("value"));
            let field = |name: &str| m.and_then(|m| m.get(name)).cloned();
            json!([field("author"), field("sequence")])
        })
        .collect();
    // A typical feed: the median author by message count (a few authors write most).
    let mut counts = std::collections::BTreeMap::new();
    for m in messages {
        let author = m.pointer("/value/author").and_then(Value::as_str);
        *counts.entry(author.unwrap_or_default()).or_insert(0usize) += 1;
    }
    let mut by_count: Vec<(usize, &str)> = counts.iter().map(|(a, c)| (*c, *a)).collect();
    by_count.sort();
    let median = by_count.get(by_count.len() / 2).map_or("", |(_, a)| a);
    json!({
        "n": n,
        "get": gets,
        "level_get": level_get,
        "range_author": median,
        "query_author": median,
        "query_since": messages
            .get(n / 2)
            .map_or(json!(0), |m| m.get("timestamp").cloned().unwrap_or_default()),
    })
}

/// The value of `value.sequence` in a message: the field every read of the benchmark sums, in
/// both passes and on every side, so that no side can skip reading what it returns.
pub fn sequence_of(message: &Value) -> u64 {
    message
        .pointer("/value/sequence")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The answers every side must give on `messages` with `params`: counts by type, row counts
/// and the sums of `value.sequence` over what each read returns.
pub fn expected(messages: &[Value], params: &Value) -> Value {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for m in messages {
        let ty = m.pointer("/value/content/type").and_then(Value::as_str);
        *counts
            .entry(ty.unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let author = |m: &Value| m.pointer("/value/author").cloned().unwrap_or_default();
    let sum = |ms: &mut dyn Iterator<Item = &Value>| ms.map(sequence_of).sum::<u64>();
    let since = params["query_since"].as_u64().unwrap_or(0);
    let votes: Vec<&Value> = messages
        .iter()
        .filter(|m| m.pointer("/value/content/type") == Some(&json!("vote")))
        .collect();
    let range: Vec<&Value> = messages
        .iter()
        .filter(|m| author(m) == params["range_author"])
        .collect();
    let by_author: Vec<&Value> = messages
        .iter()
        .filter(|m| {
            author(m) == params["query_author"]
                && m.get("timestamp").and_then(Value::as_u64) > Some(since)
        })
        .collect();
    let gets = params["get"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let get_sum: u64 = gets
        .iter()
        .filter_map(|i| messages.get(i.as_u64()? as usize))
        .map(sequence_of)
        .sum();
    let level_gets = params["level_get"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let level_get_sum: u64 = level_gets.iter().filter_map(|k| k[1].as_u64()).sum();
    json!({
        "count_types": counts,
        "counts": counts,
        "scan_count": messages.len(),
        "votes_rows": votes.len(),
        "level_range_rows": range.len(),
        "author_rows": by_author.len(),
        "get_sum": get_sum,
        "level_get_sum": level_get_sum,
        "scan_sum": sum(&mut messages.iter()),
        "level_range_sum": sum(&mut range.into_iter()),
        "votes_sum": sum(&mut votes.into_iter()),
        "author_sum": sum(&mut by_author.into_iter()),
    })
}

/// Checks a side's answers against [`expected`]: every answer the side reports must match
/// (a side may leave out the sums of a pass it does not run).
pub fn check_answers(side: &str, out: &Value, expected: &Value) -> Result<(), String> {
    let Some(expected) = expected.as_object() else {
        return Err("expected answers are not an object".into());
    };
    let mut wrong = Vec::new();
    for (key, want) in expected {
        match out.get(key) {
            Some(got) if got == want => {}
            None if key.ends_with("_sum") => {}
            got => wrong.push(format!("{key}: {got:?}, expected {want}")),
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{side} gave wrong answers: {}", wrong.join("; ")))
    }
}

/// Milliseconds, rounded to microseconds.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The peak resident set of this process (`VmHWM`), in KiB.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The fastest of `runs` runs of `f`, and what it returned (every run must return the same).
pub fn min_of<R: PartialEq + std::fmt::Debug>(
    runs: usize,
    mut f: impl FnMut() -> R,
) -> (std::time::Duration, Option<R>) {
    let mut best = std::time::Duration::MAX;
    let mut out: Option<R> = None;
    for _ in 0..runs {
        let start = std::time::Instant::now();
        let got = f();
        best = best.min(start.elapsed());
        if let Some(previous) = &out {
            assert_eq!(previous, &got, "a run returned something else");
        }
        out = Some(got);
    }
    (best, out)
}
