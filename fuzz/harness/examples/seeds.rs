//! Writes the seed corpora (valid files written by the real code, and the JS fixtures) into
//! `fuzz/corpus/<target>/seed-*`: `cargo run -p flumedb-fuzz --example seeds`.

use std::path::{Path, PathBuf};

use flumedb_core::persist::StateFile;
use flumedb_core::{Checkpoint, Log, Seq, Since, Stored};
use flumelog_memory::{FILE_NAME, MemoryLog};
use flumelog_offset::{Format, JsWidth, OffsetLog};
use flumeview_level::Key;
use serde_json::json;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = root.join("corpus");
    let tmp = std::env::temp_dir().join(format!("flumedb-fuzz-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    offset(&corpus.join("offset_log"), &tmp, &root);
    memory(&corpus.join("memory_log"), &tmp);
    keys(&corpus.join("level_key"));
    queries(&corpus.join("query"));
    reduce(&corpus.join("reduce_state"));
    std::fs::remove_dir_all(&tmp).unwrap();
}

struct Out {
    dir: PathBuf,
    n: usize,
}

impl Out {
    fn new(dir: &Path) -> Out {
        std::fs::create_dir_all(dir).unwrap();
        Out {
            dir: dir.to_path_buf(),
            n: 0,
        }
    }
    fn put(&mut self, bytes: &[u8]) {
        std::fs::write(self.dir.join(format!("seed-{:03}", self.n)), bytes).unwrap();
        self.n += 1;
    }
    fn control(&mut self, control: u8, bytes: &[u8]) {
        let mut all = vec![control];
        all.extend_from_slice(bytes);
        self.put(&all);
    }
}

const RECORDS: [&[u8]; 4] = [b"one", b"{\"type\":\"post\",\"n\":2}", b"", b"three"];

fn offset(dir: &Path, tmp: &Path, root: &Path) {
    let mut out = Out::new(dir);
    let formats = [
        (1, Format::Native),
        (2, Format::Js(JsWidth::W32)),
        (3, Format::Js(JsWidth::W48)),
        (4, Format::Js(JsWidth::W53)),
    ];
    for (i, (control, format)) in formats.into_iter().enumerate() {
        let path = tmp.join(format!("log-{i}"));
        let log = OffsetLog::options().format(format).open(&path).unwrap();
        let mut seqs = Vec::new();
        for record in RECORDS
            .iter()
            .filter(|r| !r.is_empty() || format == Format::Native)
        {
            seqs.push(log.append(record).unwrap());
        }
        log.close().unwrap();
        drop(log);
        let bytes = std::fs::read(&path).unwrap();
        out.control(0, &bytes);
        out.control(control, &bytes);
        // Torn tails: a frame cut short, a trailer cut, zeros after the end.
        out.control(0, &bytes[..bytes.len() - 3]);
        out.control(control, &bytes[..bytes.len() - 9]);
        let mut zeros = bytes.clone();
        zeros.extend([0u8; 32]);
        out.control(0, &zeros);
        // A deleted record.
        let log = OffsetLog::options().format(format).open(&path).unwrap();
        log.del(seqs[1]).unwrap();
        drop(log);
        out.control(0, &std::fs::read(&path).unwrap());
    }
    // Empty and missing files.
    out.control(0, b"");
    out.control(8, b"");
    out.control(1, b"");
    out.control(3, b"");
    // The logs JS flumelog-offset wrote, and the start of the 1000-record one (cut mid-frame).
    let fixtures = root.join("../flumelog-offset/tests/fixtures");
    for name in ["offset-53bit.log", "offset-deleted.log"] {
        out.control(0, &std::fs::read(fixtures.join(name)).unwrap());
    }
    let big = std::fs::read(fixtures.join("offset.log")).unwrap();
    out.control(0, &big[..3000]);
}

fn memory(dir: &Path, tmp: &Path) {
    let mut out = Out::new(dir);
    let logdir = tmp.join("memory");
    let log = MemoryLog::open(&logdir).unwrap();
    for record in RECORDS {
        log.append(record).unwrap();
    }
    log.close().unwrap();
    drop(log);
    let bytes = std::fs::read(logdir.join(FILE_NAME)).unwrap();
    out.put(&bytes);
    out.put(&bytes[..bytes.len() - 2]);
    out.put(&bytes[..bytes.len() - 7]);
    let mut zeros = bytes.clone();
    zeros.extend([0u8; 20]);
    out.put(&zeros);
    out.put(b"");
}

fn keys(dir: &Path) {
    let mut out = Out::new(dir);
    let keys = [
        Key::Null,
        Key::Bool(false),
        Key::Bool(true),
        Key::Number(0.0),
        Key::Number(-1.5),
        Key::Number(1e300),
        Key::Number(f64::NEG_INFINITY),
        Key::from("a\0b\u{1}c"),
        Key::from("é😀"),
        Key::array([Key::from("ab"), Key::Number(7.0)]),
        Key::Array(vec![Key::Array(vec![Key::Null]), Key::Max]),
        Key::Max,
        Key::from("a").with_seq(Seq::new(42)),
    ];
    let encoded: Vec<Vec<u8>> = keys.iter().map(|k| k.encode().unwrap()).collect();
    for (i, a) in encoded.iter().enumerate() {
        // One key alone, and a pair: the split byte is the first key's length.
        out.control(0, a);
        let b = &encoded[(i + 1) % encoded.len()];
        let mut pair = a.clone();
        pair.extend_from_slice(b);
        out.control(a.len() as u8, &pair);
    }
}

fn queries(dir: &Path) {
    let mut out = Out::new(dir);
    let queries = [
        json!({"a": 1}),
        json!({"a": "a", "b": {"$gt": 0}}),
        json!({"b": {"$gte": 0, "$lt": "b"}, "a": null}),
        json!({"c": {"$prefix": "a"}, "d": ["a", {"$prefix": ""}]}),
        json!({"d": {"$in": [1, "a", null, ["a"]]}}),
        json!({"n": {"y": {"$is": "string"}}, "a": {"$ne": 2}}),
        json!({"a": {"$int": true}}),
        json!([{"$filter": {"a": {"$gte": 0}}}, {"$sort": ["a", "b"]}]),
        json!([{"$filter": {"d": {"$lt": 10}}}, {"$map": {"x": "a", "y": ["n", "y"]}}]),
        json!([{"$reduce": {"a": "a", "count": {"$count": true}, "s": {"$sum": "b"}}}]),
        json!([{"$filter": {"b": {"$prefix": ["a"]}}}, {"$reduce": {"$collect": "id"}}]),
        json!([{"$reduce": {"lo": {"$min": "c"}, "hi": {"$max": "c"}, "p": {"$product": "d"}}}]),
        json!([{"$sort": [{"$reverse": "c"}, "d"]}, {"$map": "id"}]),
        json!([{"$map": ["a", {"$mod": 7}]}]),
        json!([{"$map": {"t": {"$type": true}}}, {"$filter": {"t": "number"}}]),
        json!([{"$filter": {"a": {"$eq": ["a", 1]}}}]),
    ];
    for q in queries {
        out.put(q.to_string().as_bytes());
    }
}

fn reduce(dir: &Path) {
    let mut out = Out::new(dir);
    let file = StateFile::new("x.reduce", *b"FLRD", 2);
    let at = |since: Since, version: u32| Stored {
        version,
        checkpoint: Checkpoint {
            since,
            fingerprint: 0x2d_89ab_cdef,
        },
    };
    let states = [
        file.encode(
            at(Since::At(Seq::new(371)), 1),
            &json!({"n": 6, "a": [1.5, "x"]}),
        ),
        file.encode(at(Since::Empty, 1), &json!(null)),
        file.encode(at(Since::At(Seq::new(0)), 2), &7u64),
        file.encode(at(Since::At(Seq::new(9)), 1), &12u64),
    ];
    for (i, state) in states.into_iter().enumerate() {
        let bytes = state.unwrap();
        let u64_state = if i >= 2 { 2 } else { 0 };
        out.control(u64_state, &bytes);
        out.control(u64_state | 4, &bytes);
        // The body alone, for the mode that wraps it in a valid envelope.
        out.control(u64_state | 1, &bytes[20..]);
    }
}
