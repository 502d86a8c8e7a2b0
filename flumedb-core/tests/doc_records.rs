//! A database of `Doc` records: appended bytes are checked and kept exactly, and what `get`,
//! `stream` and views see are the stored bytes, read in place.

use flumedb_core::{Doc, Error, FieldSet, Flume, Json, Log, StreamOptions};
use flumelog_memory::MemoryLog;

#[test]
fn doc_records_are_stored_and_read_as_their_bytes() {
    let db: Flume<MemoryLog, Doc> = Flume::open(MemoryLog::new(), Json).unwrap();
    let text =
        r#"{"value":{"author":"@a","sequence":1,"content":{"type":"post"}},"timestamp":1.50}"#;
    let seq = db.append(&Doc::from_json(text)).unwrap();
    let doc = db.get(seq).unwrap();
    assert_eq!(doc.as_bytes(), text.as_bytes());
    assert_eq!(db.log().get(seq).unwrap(), text.as_bytes());
    let set = FieldSet::new([&["value", "author"][..], &["timestamp"]]);
    let fields = set.read(&doc).unwrap();
    assert_eq!(fields[0].and_then(|f| f.as_str()).as_deref(), Some("@a"));
    assert_eq!(fields[1].map(|f| f.raw()), Some(&b"1.50"[..]));
    let streamed: Vec<Doc> = db
        .stream(StreamOptions::new())
        .unwrap()
        .map(|r| r.unwrap().value)
        .collect();
    assert_eq!(streamed, [doc]);
}

#[test]
fn bytes_that_are_not_one_json_value_are_refused_and_nothing_is_written() {
    let db: Flume<MemoryLog, Doc> = Flume::open(MemoryLog::new(), Json).unwrap();
    for bad in [
        &b"{\"a\":1"[..],
        b"{\"a\":1} {}",
        b"",
        b"nul",
        b"{\"a\":\"\x01\"}",
        b"\xff",
    ] {
        let err = db.append(&Doc::from_json(bad.to_vec())).unwrap_err();
        assert!(matches!(err, Error::Codec(_)), "{err}");
        let err = db
            .append_batch(&[Doc::from_json("1"), Doc::from_json(bad.to_vec())])
            .unwrap_err();
        assert!(matches!(err, Error::Codec(_)), "{err}");
    }
    assert_eq!(db.since(), flumedb_core::Since::Empty);
    // Whitespace around one value is JSON; it is kept as written.
    let seq = db.append(&Doc::from_json(" [1, 2] ")).unwrap();
    assert_eq!(db.get(seq).unwrap().as_bytes(), b" [1, 2] ");
}
