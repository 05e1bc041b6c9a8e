//! JSON text written straight into a `String`, byte for byte as `serde_json` writes it (the
//! lines a codec makes read the same whichever wrote them), without a writer or a check of the
//! result: what is pushed is UTF-8 already.

/// `s` as a JSON string: `"` and `\` escaped, `\b \t \n \f \r` by name, other control
/// characters as `\u00XX` (lower-case hex), everything else as it is.
pub fn push_str(buf: &mut String, s: &str) {
    buf.reserve(s.len() + 2);
    buf.push('"');
    let bytes = s.as_bytes();
    let mut run = 0; // start of the bytes not yet copied
    let mut i = 0;
    while i < bytes.len() {
        // eight bytes at a time while none needs escaping (most messages have no such byte)
        if let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            if !needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0x00..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // only ASCII bytes end a run: both cuts are on character boundaries
        buf.push_str(&s[run..i]);
        if escape.is_empty() {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            buf.push_str("\\u00");
            buf.push(DIGITS[(b >> 4) as usize] as char);
            buf.push(DIGITS[(b & 15) as usize] as char);
        } else {
            buf.push_str(escape);
        }
        i += 1;
        run = i;
    }
    buf.push_str(&s[run..]);
    buf.push('"');
}

/// Whether any byte of `w` is below 0x20, `"` or `\` (exact: no false "no").
#[inline]
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = (w ^ (ONES * b'"' as u64)).wrapping_sub(ONES) & !(w ^ (ONES * b'"' as u64));
    let backslash = (w ^ (ONES * b'\\' as u64)).wrapping_sub(ONES) & !(w ^ (ONES * b'\\' as u64));
    (below | quote | backslash) & HIGH != 0
}

/// An integer, as `serde_json` (itoa) writes it.
pub fn push_int(buf: &mut String, n: impl itoa::Integer) {
    buf.push_str(itoa::Buffer::new().format(n));
}

/// A double as `serde_json` writes it: `null` when not finite.
pub fn push_f64(buf: &mut String, d: f64) {
    use std::fmt::Write as _;
    match serde_json::Number::from_f64(d) {
        Some(n) => {
            let _ = write!(buf, "{n}");
        }
        None => buf.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut cases: Vec<String> = ["", "plain ascii text of some length", "a\"b\\c", "tab\there\nnew\r\u{8}\u{c}", "ünïcödé → ✓ 日本語", "\u{7f}\u{0}\u{1f}\u{1}x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // every byte value that can start or sit in a run, at every offset of an 8-byte word
        for b in 0u8..0x80 {
            for at in 0..17 {
                let mut s = "abcdefghijklmnopq".to_string();
                s.insert(at, b as char);
                cases.push(s);
            }
        }
        cases.push("é".repeat(40) + "\"" + &"日".repeat(9));
        for s in cases {
            let mut buf = String::from("x");
            push_str(&mut buf, &s);
            assert_eq!(buf[1..], serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        for d in [0.0, -0.0, 1.5, 1e300, 1e-7, 123456789.125, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.1 + 0.2] {
            let mut buf = String::new();
            push_f64(&mut buf, d);
            assert_eq!(buf, serde_json::to_string(&d).unwrap(), "{d}");
        }
        for i in [0i64, -1, i64::MIN, i64::MAX, 42] {
            let mut buf = String::new();
            push_int(&mut buf, i);
            assert_eq!(buf, serde_json::to_string(&i).unwrap());
        }
    }
}
