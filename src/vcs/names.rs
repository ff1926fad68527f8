//! Repository paths as bytes: git allows any byte in a name but NUL and `/`, so paths are kept
//! as bytes end to end, and shown to people and JSON in forms that lose nothing.
//!
//! JSON: `path` is the path as UTF-8 (invalid bytes replaced by U+FFFD, for display), and
//! `path_b64` (standard base64 of the exact bytes) is present only when the path is not valid
//! UTF-8. Text for people (the CLI, diff headers) quotes a path the way git does: in double
//! quotes with C escapes (`\t`, `\"`, `\\`, octal `\351` for bytes that are not UTF-8).

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (with padding) of `bytes`.
pub fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of standard base64 `text` (padding optional); `None` when it is not base64.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .trim_end_matches('=')
        .bytes()
        .map(|c| B64.iter().position(|&d| d == c).map(|p| p as u8))
        .collect::<Option<_>>()?;
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

/// Whether git would quote `path` (with `core.quotePath` off: control characters, `"`, `\`
/// and bytes that are not UTF-8).
fn needs_quotes(path: &[u8]) -> bool {
    std::str::from_utf8(path).is_err()
        || path
            .iter()
            .any(|&b| b < 0x20 || b == 0x7f || b == b'"' || b == b'\\')
}

/// `path` as git prints it: as is when it needs no quoting, otherwise in double quotes with C
/// escapes, valid UTF-8 kept and every other byte as a 3-digit octal escape.
pub fn quote_path(path: &[u8]) -> String {
    if !needs_quotes(path) {
        return String::from_utf8_lossy(path).into_owned();
    }
    let mut out = String::from("\"");
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\x0b' => out.push_str("\\v"),
                '\x0c' => out.push_str("\\f"),
                '\r' => out.push_str("\\r"),
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    out.push_str(&format!("\\{:03o}", c as u32));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out.push('"');
    out
}

/// `prefix` followed by `path`, quoted as git does as a whole (`"a/caf\351"`).
pub fn quote_prefixed(prefix: &str, path: &[u8]) -> String {
    let mut full = prefix.as_bytes().to_vec();
    full.extend_from_slice(path);
    quote_path(&full)
}

/// The exact bytes of a path in a JSON object that follows this module's scheme (`path_b64`
/// when present, else `path`).
pub fn path_from_json(v: &serde_json::Value) -> Option<Vec<u8>> {
    if let Some(b) = v.get("path_b64").and_then(serde_json::Value::as_str) {
        return b64_decode(b);
    }
    v.get("path")
        .and_then(serde_json::Value::as_str)
        .map(|s| s.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_the_standard() {
        assert_eq!(b64_encode(b"caf\xe9.txt"), "Y2Fm6S50eHQ=");
        assert_eq!(b64_encode(b""), "");
        assert_eq!(b64_encode(b"ab"), "YWI=");
        for len in 0..20u8 {
            let v: Vec<u8> = (0..len).map(|i| i.wrapping_mul(97) ^ 0xa5).collect();
            assert_eq!(b64_decode(&b64_encode(&v)).as_deref(), Some(&v[..]));
        }
        assert_eq!(b64_decode("not base64!"), None);
    }

    #[test]
    fn quoting_is_gits() {
        assert_eq!(quote_path(b"plain/name.txt"), "plain/name.txt");
        assert_eq!(quote_path("ünïcødé".as_bytes()), "ünïcødé");
        assert_eq!(quote_path(b"caf\xe9.txt"), "\"caf\\351.txt\"");
        assert_eq!(quote_path(b"a\"b\\c\td"), "\"a\\\"b\\\\c\\td\"");
        assert_eq!(quote_prefixed("a/", b"caf\xe9"), "\"a/caf\\351\"");
    }
}
