//! `reduce_state`: flumeview-reduce's state file (`<name>.reduce`, the checksummed envelope of
//! `flumedb_core::persist`), loaded by the view's real `open` from a directory.
//!
//! Input: one control byte, then bytes. Control bit 0 clear: the bytes are the whole file;
//! set: they are the JSON body, wrapped in a valid envelope (magic, format, CRC32, length) so
//! the fuzzer reaches the body's decoding past the checksum. Bit 1 picks the state type (a
//! JSON value or a `u64`), bit 2 the view's version (1 or 2).

use flumedb_core::persist::StateFile;
use flumedb_core::{View, ViewContext};
use flumeview_reduce::Reduce;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::scratch;

const MAGIC: [u8; 4] = *b"FLRD";
const FORMAT: u32 = 2;

/// The harness: see the module documentation for the input.
pub fn reduce_state(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let file = if control & 1 == 0 {
        rest.to_vec()
    } else {
        envelope(rest)
    };
    let version = if control & 4 == 0 { 1 } else { 2 };
    if control & 2 == 0 {
        check::<Value>(&file, version, Value::Null);
    } else {
        check::<u64>(&file, version, 0);
    }
}

/// The file bytes around `body`, as `persist` lays them out.
fn envelope(body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn check<S>(file: &[u8], version: u32, initial: S)
where
    S: Clone + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + Send + Sync + 'static,
{
    let dir = scratch::dir().join("reduce");
    if !dir.is_dir() {
        let made = std::fs::create_dir_all(&dir);
        assert!(made.is_ok(), "{made:?}");
    }
    let path = dir.join("state.reduce");
    scratch::put(&path, Some(file));
    let state = StateFile::new(&path, MAGIC, FORMAT);
    let decoded = state.decode::<S>(file);
    let mut view = Reduce::<Value, S>::new(version, initial, |_, _| {});
    let opened = View::<Value>::open(&mut view, &ViewContext::new("state", Some(dir)));
    let stored = match opened {
        Ok(stored) => stored,
        Err(e) => panic!("opening a reduce view over a bad state file failed: {e}"),
    };
    // The view resumes from exactly what the file decodes to, and from nothing otherwise.
    assert_eq!(stored, decoded.as_ref().map(|saved| saved.stored));
    assert_eq!(scratch::read(&path), file, "opening changed the state file");
    if let Some(saved) = decoded {
        // What decodes, encodes to a file that decodes to the same state.
        let encoded = match state.encode(saved.stored, &saved.value) {
            Ok(bytes) => bytes,
            Err(e) => panic!("a decoded state does not encode: {e}"),
        };
        assert_eq!(
            state.decode::<S>(&encoded).as_ref(),
            Some(&saved),
            "a decoded state does not round-trip"
        );
    }
}
