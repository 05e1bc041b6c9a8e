//! The frame of the small state files: magic (8 bytes), body length (u64 LE), body, CRC32 of the
//! body (u32 LE). Decoding says what is wrong, in words a person can act on.

pub fn encode(magic: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 20);
    out.extend_from_slice(magic);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out
}

/// The body of a framed file; `what` names the kind of file in the error.
pub fn decode<'a>(magic: &[u8; 8], bytes: &'a [u8], what: &str) -> Result<&'a [u8], String> {
    if bytes.len() < 20 || &bytes[..8] != magic {
        return Err(format!("not a turbolog {what} file: bad magic"));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    if len != bytes.len() as u64 - 20 {
        return Err(format!("length {len} does not match the {} bytes of body and checksum present", bytes.len() - 16));
    }
    let body = &bytes[16..16 + len as usize];
    let want = u32::from_le_bytes(bytes[16 + len as usize..].try_into().unwrap());
    let got = crc32fast::hash(body);
    if want != got {
        return Err(format!("checksum mismatch: stored {want:08x}, computed {got:08x}"));
    }
    Ok(body)
}

/// Loads a framed JSON state file that can start afresh: none yet → `T::default()`; unreadable
/// → the default and a warning; corrupt (`check` may refuse a decoded value too) → moved aside to
/// `NAME.corrupt`, the default, and a warning saying what was wrong and where it went.
/// `afresh` ends the warnings: what starts over (`session profiles are learned afresh`).
pub fn load_or_set_aside<T: serde::de::DeserializeOwned + Default>(
    path: &std::path::Path,
    magic: &[u8; 8],
    what: &str,
    afresh: &str,
    check: impl Fn(&T) -> Result<(), String>,
) -> (T, Option<String>) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (T::default(), None),
        Err(e) => return (T::default(), Some(format!("cannot read {}: {e}; {afresh}", path.display()))),
    };
    let decoded = decode(magic, &bytes, what)
        .and_then(|b| serde_json::from_slice::<T>(b).map_err(|e| format!("unreadable body: {e}")))
        .and_then(|v| check(&v).map(|_| v));
    match decoded {
        Ok(v) => (v, None),
        Err(why) => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".corrupt");
            let aside = std::path::PathBuf::from(aside);
            let moved = std::fs::rename(path, &aside)
                .map_or_else(|e| format!("could not be moved aside ({e})"), |_| format!("moved aside to {}", aside.display()));
            (T::default(), Some(format!("{} is corrupt ({why}); {moved}; {afresh}", path.display())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_each_corruption_is_named() {
        let b = encode(b"TLTEST01", b"{\"a\":1}");
        assert_eq!(decode(b"TLTEST01", &b, "test").unwrap(), b"{\"a\":1}");
        assert!(decode(b"TLOTHER1", &b, "test").unwrap_err().contains("not a turbolog test file"));
        assert!(decode(b"TLTEST01", &b[..b.len() - 1], "test").unwrap_err().contains("length"));
        let mut x = b.clone();
        x[17] ^= 1;
        assert!(decode(b"TLTEST01", &x, "test").unwrap_err().contains("checksum mismatch"));
        // a length that overflows is an error, not a panic
        let mut y = b.clone();
        y[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(b"TLTEST01", &y, "test").is_err());
    }
}
