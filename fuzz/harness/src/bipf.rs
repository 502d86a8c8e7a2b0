//! `bipf`: flumecodec-bipf's decoder, validator and in-place reader on arbitrary bytes.
//!
//! Input: up to four paths (split at `,`) of up to three keys (split at `.`) up to the first
//! newline, then the BIPF bytes. Promises: no panic and no unbounded allocation on any bytes;
//! whatever decodes also validates; what validates decodes unless it holds a BUFFER (JSON has
//! none); a decoded value encodes to bytes that decode to the same value, and encode again to
//! the same bytes; `get` of each path finds exactly what the full decode has there.

use flumecodec_bipf::{BipfField, from_slice, to_vec, validate};
use serde_json::Value;

/// The harness: see the module documentation for the input.
pub fn bipf(data: &[u8]) {
    let (header, bytes) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b""[..], data),
    };
    let header = String::from_utf8_lossy(header);
    let paths: Vec<Vec<String>> = header
        .split(',')
        .take(4)
        .map(|path| {
            path.split('.')
                .filter(|key| !key.is_empty())
                .take(3)
                .map(str::to_string)
                .collect()
        })
        .collect();
    let checked = validate(bytes);
    let root = BipfField::from_bytes(bytes);
    let got: Vec<_> = match &root {
        Ok(root) => paths.iter().map(|path| root.get(path)).collect(),
        Err(_) => Vec::new(),
    };
    let decoded = from_slice::<Value>(bytes);
    let full = match (decoded, &checked) {
        (Ok(full), Ok(())) => full,
        (Ok(full), Err(e)) => panic!("decodes to {full} but does not validate: {e}"),
        (Err(_), Err(_)) => return,
        (Err(e), Ok(())) => {
            assert!(
                e.to_string().contains("byte array"),
                "validates but does not decode: {e}"
            );
            return;
        }
    };
    let again = to_vec(&full).unwrap_or_else(|e| panic!("{full} decoded but does not encode: {e}"));
    let twice: Value =
        from_slice(&again).unwrap_or_else(|e| panic!("re-encoding of {full} does not decode: {e}"));
    assert_eq!(twice, full, "re-encoding changed the value");
    assert_eq!(to_vec(&twice).ok(), Some(again), "encoding is not stable");
    for (path, got) in paths.iter().zip(got) {
        let got = got.unwrap_or_else(|e| panic!("decodes in full but get({path:?}) fails: {e}"));
        let mut want = Some(&full);
        for key in path {
            want = want.and_then(Value::as_object).and_then(|o| o.get(key));
        }
        let got = got.map(|field| {
            field
                .to_value()
                .unwrap_or_else(|e| panic!("get({path:?}) found a field that does not decode: {e}"))
        });
        assert_eq!(
            got.as_ref(),
            want,
            "get({path:?}) and the full decode differ"
        );
    }
}
