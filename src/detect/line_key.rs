//! The key of a raw line with its digits abstracted: each run of digits counts only by its length.
//!
//! No decision of the header scan, the tokeniser or the miner depends on the *value* of a digit,
//! only on where digits are and how many (a token with a digit is a value; a 10-digit run is an
//! epoch timestamp). So two lines with the same key get the same message, level and template,
//! and the engine can skip all of that for a line whose key it has seen. On the loghub samples
//! 82% of lines, read once in order, repeat an earlier key.
//!
//! Computed as the hash of the line with every digit byte replaced by `0`, eight bytes at a
//! time with no branch per byte (SWAR): equal keys mean equal bytes except digit values.

use memchr::memmem::Finder;
use once_cell::sync::Lazy;

const K: u64 = 0x517c_c1b7_2722_0a95;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

#[inline]
fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(K)
}

/// `w` with every ASCII digit byte replaced by `0`.
#[inline]
fn zero_digits(w: u64) -> u64 {
    let x = w ^ (0x30 * ONES); // a digit byte becomes 0..=9
    // high bit of each byte set where (x & 0x7f) >= 10 or x >= 0x80: not a digit (no carries)
    let not_digit = (((x & !HIGHS).wrapping_add(0x76 * ONES)) | x) & HIGHS;
    let digit = (!not_digit & HIGHS) >> 7; // 0x01 in digit bytes
    let mask = digit * 0xFF;
    (w & !mask) | (0x30 * ONES & mask)
}

/// The key of `line` (no trailing line end expected). Four independent lanes of 8 bytes, so
/// the multiplications do not wait on each other; combined at the end.
pub fn key(line: &[u8]) -> u64 {
    let word = |b: &[u8], i: usize| zero_digits(u64::from_le_bytes(b[i..i + 8].try_into().unwrap()));
    let mut lanes = [line.len() as u64 ^ 0x9E37_79B9_7F4A_7C15, 0x243F_6A88_85A3_08D3, 0x1319_8A2E_0370_7344, 0xA409_3822_299F_31D0];
    let mut blocks = line.chunks_exact(32);
    for b in &mut blocks {
        lanes[0] = mix(lanes[0], word(b, 0));
        lanes[1] = mix(lanes[1], word(b, 8));
        lanes[2] = mix(lanes[2], word(b, 16));
        lanes[3] = mix(lanes[3], word(b, 24));
    }
    let mut h = lanes.iter().fold(0u64, |acc, &l| mix(acc, l));
    let mut chunks = blocks.remainder().chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, zero_digits(u64::from_le_bytes(c.try_into().unwrap())));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        h = mix(h, zero_digits(u64::from_le_bytes(tail)));
    }
    let mut x = h;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

/// Where a line's digit *values* matter: an HTTP status class (`200` vs `502`), a numbered
/// name (`eth0` vs `eth1`), a syslog priority (`<34>`). Lines with the same key have their
/// digit runs at the same offsets, so these offsets are the same for every line of a key: the
/// engine stores them with the key and tells such lines apart by the digits found there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Significant {
    n: u8,
    at: [u16; Significant::MAX],
}

impl Significant {
    const MAX: usize = 6;

    /// Scans `line` (the slow path only). `None`: too many such digits to key on; do not cache.
    pub fn of(line: &[u8]) -> Option<Significant> {
        let mut s = Significant { n: 0, at: [0; Self::MAX] };
        if line.len() > u16::MAX as usize {
            return None;
        }
        let mut push = |i: usize| -> bool {
            if s.n as usize == Self::MAX {
                return false;
            }
            s.at[s.n as usize] = i as u16;
            s.n += 1;
            true
        };
        // searchers built once: building one costs more than searching a line
        static HTTP: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"HTTP/"));
        static STATUS: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"tatus"));
        static STATUS_UPPER: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"TATUS"));
        let http = HTTP.find(line).is_some();
        let keyed_status = STATUS.find(line).is_some() || STATUS_UPPER.find(line).is_some();
        let mut i = 0;
        while i < line.len() {
            if !line[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < line.len() && line[i].is_ascii_digit() {
                i += 1;
            }
            let run = i - start;
            let priority = start == 1 && line[0] == b'<';
            let ends_word = i == line.len() || !line[i].is_ascii_alphanumeric();
            let numbered = run == 1
                && ends_word
                && start >= 2
                && line[start - 1].is_ascii_alphabetic()
                && line[start - 2].is_ascii_alphabetic();
            let status = run == 3 && {
                let keyed = |key: &[u8]| start >= key.len() && line[start - key.len()..start].eq_ignore_ascii_case(key);
                // a status is a token of its own in an access log (not an octet, not a fraction)
                let alone = start > 0 && line[start - 1] == b' ' && (i == line.len() || line[i] == b' ');
                (http && alone) || (keyed_status && (keyed(b"status=") || keyed(b"status_code=") || keyed(b"http_status=")))
            };
            if priority {
                for j in start..i {
                    if !push(j) {
                        return None;
                    }
                }
            } else if (numbered || status) && !push(start) {
                return None;
            }
        }
        Some(s)
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// `key` mixed with the digits of `line` at these offsets.
    pub fn salted(&self, key: u64, line: &[u8]) -> u64 {
        let mut h = key;
        for &at in &self.at[..self.n as usize] {
            h = mix(h, line.get(at as usize).copied().unwrap_or(0) as u64);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::{key, Significant};

    #[test]
    fn significant_digits_tell_apart_what_the_key_cannot() {
        let a = b"1.2.3.4 - - [x] \"GET / HTTP/1.1\" 200 512";
        let b = b"1.2.3.4 - - [x] \"GET / HTTP/1.1\" 502 512";
        assert_eq!(key(a), key(b));
        let s = Significant::of(a).unwrap();
        assert_eq!(s, Significant::of(b).unwrap(), "same offsets for the same key");
        assert_ne!(s.salted(key(a), a), s.salted(key(b), b));
        let (e0, e1) = (&b"link up on eth0 at 12:00"[..], &b"link up on eth1 at 13:00"[..]);
        let s = Significant::of(e0).unwrap();
        assert_ne!(s.salted(key(e0), e0), s.salted(key(e1), e1));
        assert_eq!(s.salted(key(e0), e0), s.salted(key(e0), b"link up on eth0 at 23:59"));
        assert!(Significant::of(b"user 12 logged in at 10:31:07").unwrap().is_empty());
        let (ok, bad) = (&b"request done status=200"[..], &b"request done status=503"[..]);
        let s = Significant::of(ok).unwrap();
        assert_ne!(s.salted(key(ok), ok), s.salted(key(bad), bad));
        assert!(!Significant::of(b"<34>1 2024-01-01T00:00:00Z h a - - - m").unwrap().is_empty());
    }

    #[test]
    fn digits_count_by_run_length_only() {
        assert_eq!(key(b"user 12 logged in at 10:31:07"), key(b"user 98 logged in at 23:59:59"));
        assert_ne!(key(b"user 12 logged in"), key(b"user 123 logged in"));
        assert_ne!(key(b"a1 b"), key(b"a b1"));
        assert_ne!(key(b"user 12 logged in"), key(b"user 12 logged on"));
        // the same text at every alignment, digits straddling word boundaries
        let a = b"x1234567890123456789y and some more words here 42";
        let b = b"x9876543210987654321y and some more words here 17";
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key(&a[1..]));
        assert_ne!(key(b""), key(b"0"));
    }

    #[test]
    fn swar_digit_replacement_is_exact_for_every_byte() {
        for b in 0u8..=255 {
            let w = u64::from_le_bytes([b, b'a', b, 0xff, b'9', b'/', b':', b]);
            let want: Vec<u8> = w.to_le_bytes().iter().map(|&c| if c.is_ascii_digit() { b'0' } else { c }).collect();
            assert_eq!(super::zero_digits(w).to_le_bytes().to_vec(), want, "byte {b:#x}");
        }
    }

    #[test]
    fn fast_and_slow_paths_agree() {
        // a word with no digit hashed whole must equal the same bytes seen after a digit run ends
        let base = b"abcdefgh12345678ijklmnop";
        let other = b"abcdefgh87654321ijklmnop";
        assert_eq!(key(base), key(other));
        for len in 0..base.len() {
            assert_eq!(key(&base[..len]), key(&other[..len]), "prefix {len}");
        }
    }
}
