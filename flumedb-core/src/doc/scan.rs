//! A JSON scanner that finds a field's bytes without building anything: it checks the
//! structure on the way (strings closed, brackets balanced, members well formed) and leaves a
//! field's own value to be checked when it is read.

use crate::error::CodecError;

/// Why bytes are not the JSON the scanner expected, and where.
pub(crate) fn malformed(at: usize, what: &str) -> CodecError {
    CodecError::decode("json", format!("malformed JSON at byte {at}: {what}"))
}

/// Whether a byte may follow a scalar token (a number, `true`, `false`, `null`).
fn ends_scalar(b: u8) -> bool {
    matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = b.get(i) {
        if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        i += 1;
    }
    i
}

/// A string that starts at `i` (its opening quote): the index just past its closing quote, and
/// whether it holds an escape.
pub(crate) fn skip_string(b: &[u8], i: usize) -> Result<(usize, bool), CodecError> {
    let mut at = i + 1;
    let mut escaped = false;
    loop {
        at =
            next_quote_or_backslash(b, at).ok_or_else(|| malformed(i, "a string is not closed"))?;
        if b.get(at) == Some(&b'"') {
            return Ok((at + 1, escaped));
        }
        escaped = true;
        // The escaped byte is skipped whatever it is; `\u` digits hold no quote.
        at += 2;
    }
}

/// The index of the first `"` or `\` at or after `at`. Eight bytes at a time for the first
/// few words (most strings of a record are short, where a call costs more than it saves),
/// then memchr's vectorised search.
fn next_quote_or_backslash(b: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of `x` is zero exactly where the word had the byte looked for.
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    for _ in 0..SHORT_WORDS {
        let Some(word) = b.get(at..at + 8) else {
            break;
        };
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let word = u64::from_le_bytes(eight);
        let hits = zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            // The lowest flagged byte is a real hit (borrows only run upwards).
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', b.get(at..)?).map(|found| at + found)
}

/// How many words [`next_quote_or_backslash`] reads before it calls memchr.
const SHORT_WORDS: usize = 4;

/// An array or object that starts at `i`: the index just past its closing bracket.
fn skip_container(b: &[u8], i: usize) -> Result<usize, CodecError> {
    let mut depth = 0usize;
    let mut at = i;
    while let Some(&c) = b.get(at) {
        match c {
            b'"' => at = skip_string(b, at)?.0,
            b'{' | b'[' => {
                depth += 1;
                at += 1;
            }
            b'}' | b']' => {
                depth -= 1;
                at += 1;
                if depth == 0 {
                    return Ok(at);
                }
            }
            _ => at += 1,
        }
    }
    Err(malformed(i, "an array or object is not closed"))
}

/// The value that starts at `i` (no whitespace before it): the index just past it.
pub(crate) fn skip_value(b: &[u8], i: usize) -> Result<usize, CodecError> {
    match b.get(i) {
        None => Err(malformed(i, "a value is missing")),
        Some(b'"') => Ok(skip_string(b, i)?.0),
        Some(b'{' | b'[') => skip_container(b, i),
        Some(b'}' | b']' | b',' | b':') => Err(malformed(i, "a value is missing")),
        Some(_) => {
            let mut at = i + 1;
            while b.get(at).is_some_and(|&c| !ends_scalar(c)) {
                at += 1;
            }
            Ok(at)
        }
    }
}

/// Walks the members of the object that starts at `i` (its `{`): `visit` gets each key's span
/// (with its quotes), whether the key holds an escape, and where the value starts, and returns
/// the index just past the value (it may skip it or read into it). Returns the index just
/// past the object.
pub(crate) fn walk_object(
    b: &[u8],
    i: usize,
    mut visit: impl FnMut((usize, usize), bool, usize) -> Result<usize, CodecError>,
) -> Result<usize, CodecError> {
    let mut at = skip_ws(b, i + 1);
    if b.get(at) == Some(&b'}') {
        return Ok(at + 1);
    }
    loop {
        if b.get(at) != Some(&b'"') {
            return Err(malformed(at, "an object key must be a string"));
        }
        let (key_end, escaped) = skip_string(b, at)?;
        let key = (at, key_end);
        at = skip_ws(b, key_end);
        if b.get(at) != Some(&b':') {
            return Err(malformed(at, "a ':' must follow an object key"));
        }
        let end = visit(key, escaped, skip_ws(b, at + 1))?;
        at = skip_ws(b, end);
        match b.get(at) {
            Some(b',') => at = skip_ws(b, at + 1),
            Some(b'}') => return Ok(at + 1),
            _ => return Err(malformed(at, "a ',' or '}' must follow an object member")),
        }
    }
}

/// Walks the elements of the array that starts at `i` (its `[`): `visit` gets each element's
/// span and returns whether to go on. Returns the index just past the array, or where the
/// walk stopped.
pub(crate) fn walk_array(
    b: &[u8],
    i: usize,
    mut visit: impl FnMut((usize, usize)) -> bool,
) -> Result<usize, CodecError> {
    let mut at = skip_ws(b, i + 1);
    if b.get(at) == Some(&b']') {
        return Ok(at + 1);
    }
    loop {
        let end = skip_value(b, at)?;
        if !visit((at, end)) {
            return Ok(end);
        }
        at = skip_ws(b, end);
        match b.get(at) {
            Some(b',') => at = skip_ws(b, at + 1),
            Some(b']') => return Ok(at + 1),
            _ => return Err(malformed(at, "a ',' or ']' must follow an array element")),
        }
    }
}

/// Whether the key at `span` (with its quotes) is `name`; keys with escapes are decoded first.
pub(crate) fn key_is(b: &[u8], (start, end): (usize, usize), escaped: bool, name: &[u8]) -> bool {
    if escaped {
        let quoted = b.get(start..end).unwrap_or_default();
        serde_json::from_slice::<String>(quoted).is_ok_and(|key| key.as_bytes() == name)
    } else {
        b.get(start + 1..end.saturating_sub(1)) == Some(name)
    }
}

/// The value at `path` below the object that starts at `i` (its `{`): its span, and the index
/// just past the object. One pass over the object: the path is followed into the values on
/// it, and the rest is skipped. When a key appears twice the last one counts, as `JSON.parse`
/// and a full decode have it, so the whole object is read.
pub(crate) fn lookup<S: AsRef<str>>(
    b: &[u8],
    i: usize,
    path: &[S],
) -> Result<(Option<(usize, usize)>, usize), CodecError> {
    let Some((key, below)) = path.split_first() else {
        let end = skip_value(b, i)?;
        return Ok((Some((i, end)), end));
    };
    let key = key.as_ref().as_bytes();
    let mut found = None;
    let end = walk_object(b, i, |span, escaped, start| {
        if !key_is(b, span, escaped, key) {
            return skip_value(b, start);
        }
        // A later key of the same name replaces an earlier find, even with nothing.
        if below.is_empty() {
            let end = skip_value(b, start)?;
            found = Some((start, end));
            Ok(end)
        } else if b.get(start) == Some(&b'{') {
            let (inner, end) = lookup(b, start, below)?;
            found = inner;
            Ok(end)
        } else {
            found = None;
            skip_value(b, start)
        }
    })?;
    Ok((found, end))
}

/// Element `n` of the array that starts at `i` (its `[`): the span of its value.
pub(crate) fn element(b: &[u8], i: usize, n: usize) -> Result<Option<(usize, usize)>, CodecError> {
    let mut index = 0usize;
    let mut found = None;
    walk_array(b, i, |span| {
        if index == n {
            found = Some(span);
            return false;
        }
        index += 1;
        true
    })?;
    Ok(found)
}

/// Whether `token` is a number as JSON writes them (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
pub(crate) fn is_number(token: &[u8]) -> bool {
    let digits = |s: &[u8], at: &mut usize| {
        let start = *at;
        while s.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at > start
    };
    let mut at = usize::from(token.first() == Some(&b'-'));
    match token.get(at) {
        Some(b'0') => at += 1,
        Some(b'1'..=b'9') => {
            digits(token, &mut at);
        }
        _ => return false,
    }
    if token.get(at) == Some(&b'.') {
        at += 1;
        if !digits(token, &mut at) {
            return false;
        }
    }
    if matches!(token.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(token.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        if !digits(token, &mut at) {
            return false;
        }
    }
    at == token.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(b: &[u8], s: Option<(usize, usize)>) -> Option<&str> {
        s.map(|(a, z)| std::str::from_utf8(&b[a..z]).unwrap())
    }

    #[test]
    fn members_are_found_past_nested_values_and_strings_with_brackets() {
        let b = br#"{"a":{"x":"}]\"{"},"b" : [1,{"c":"]"}] , "c":-1.5e3}"#;
        let member = |key: &str| span(b, lookup(b, 0, &[key]).unwrap().0);
        assert_eq!(member("c"), Some("-1.5e3"));
        assert_eq!(member("b"), Some(r#"[1,{"c":"]"}]"#));
        assert_eq!(member("x"), None);
        assert_eq!(
            span(b, lookup(b, 0, &["a", "x"]).unwrap().0),
            Some(r#""}]\"{""#)
        );
        assert_eq!(lookup(b, 0, &["a", "x"]).unwrap().1, b.len());
        let list = b.iter().position(|&c| c == b'[').unwrap();
        assert_eq!(span(b, element(b, list, 1).unwrap()), Some(r#"{"c":"]"}"#));
        assert_eq!(span(b, element(b, list, 2).unwrap()), None);
    }

    #[test]
    fn the_last_of_two_equal_keys_counts_as_in_a_full_decode() {
        let b = br#"{"a":1,"\u0061":2}"#;
        assert_eq!(span(b, lookup(b, 0, &["a"]).unwrap().0), Some("2"));
        let full: serde_json::Value = serde_json::from_slice(b).unwrap();
        assert_eq!(full["a"], 2);
        // Followed into the first, replaced by the second.
        let b = br#"{"a":{"b":1},"a":{"c":2}}"#;
        assert_eq!(lookup(b, 0, &["a", "b"]).unwrap().0, None);
        let b = br#"{"a":{"b":1},"a":3}"#;
        assert_eq!(lookup(b, 0, &["a", "b"]).unwrap().0, None);
        let b = br#"{"a":3,"a":{"b":1}}"#;
        assert_eq!(span(b, lookup(b, 0, &["a", "b"]).unwrap().0), Some("1"));
    }

    #[test]
    fn broken_structure_is_an_error_never_a_panic() {
        for bad in [
            &br#"{"a":1"#[..],
            br#"{"a":"1}"#,
            br#"{"a" 1}"#,
            br#"{a:1}"#,
            br#"{"a":1,}"#,
            br#"{"a":[1,2}"#,
            br#"{"a":"\"#,
            br#"{"a":}"#,
        ] {
            assert!(
                lookup(bad, 0, &["z"]).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for good in ["0", "-0", "12", "1.5", "-1e9", "2E+3", "0.25e-2"] {
            assert!(is_number(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "+1", "1e", "NaN", "inf", "0x10", "1_0",
        ] {
            assert!(!is_number(bad.as_bytes()), "{bad}");
        }
    }
}
