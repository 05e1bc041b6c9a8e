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
    (w & !mask) | ((0x30 * ONES) & mask)
}

/// The key of `line` (no trailing line end expected).
#[inline]
pub fn key(line: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SSE2 is part of every x86_64
        // SAFETY: the loads stay within `line` (see `wide::key`)
        unsafe { wide::key(line) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        key_swar(line)
    }
}

/// Sixteen bytes at a time: digits zeroed with four vector instructions, each half-block then
/// folded into one of two lanes by a 64×64→128 multiply (wyhash's mix), so a line of 120 bytes
/// costs eight multiplies on two independent chains. The last block overlaps the one before
/// (its bytes are hashed twice, the same way for every line of that length); a line shorter
/// than 16 bytes is copied into a zeroed block. Equal keys mean equal length and equal bytes
/// except digit values, as with [`key_swar`] (whose keys differ: never mix the two).
#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::*;

    const S0: u64 = 0xa076_1d64_78bd_642f;
    const S1: u64 = 0xe703_7ed1_a0b4_28db;
    const S2: u64 = 0x8ebc_6af0_9c88_c6e3;
    const S3: u64 = 0x5899_65cc_7537_4cc3;

    #[inline(always)]
    fn fold(a: u64, b: u64) -> u64 {
        let m = (a as u128).wrapping_mul(b as u128);
        (m as u64) ^ ((m >> 64) as u64)
    }

    /// `a - '0'` (a digit becomes 0..=9) and 0xFF in each byte of `a` that is an ASCII digit.
    #[inline(always)]
    unsafe fn digits(a: __m128i) -> (__m128i, __m128i) {
        let t = _mm_sub_epi8(a, _mm_set1_epi8(b'0' as i8));
        (t, _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t))
    }

    /// The 16 bytes at `p` with every ASCII digit replaced by `0`, as two words.
    #[inline(always)]
    unsafe fn block(p: *const u8) -> (u64, u64) {
        let a = _mm_loadu_si128(p as *const __m128i);
        let (t, digit) = digits(a);
        let z = _mm_sub_epi8(a, _mm_and_si128(t, digit)); // a digit minus its value: '0'
        (_mm_cvtsi128_si64(z) as u64, _mm_cvtsi128_si64(_mm_unpackhi_epi64(z, z)) as u64)
    }

    /// The first ASCII digit of `line` at or after `from`, sixteen bytes at a time; the last
    /// bytes are left to the caller's byte loop (`from` then points at them).
    #[inline]
    pub fn skip_to_digit(line: &[u8], mut from: usize) -> usize {
        while from + 16 <= line.len() {
            // SAFETY: SSE2 is part of every x86_64; the load is inside `line`
            let bits = unsafe { _mm_movemask_epi8(digits(_mm_loadu_si128(line.as_ptr().add(from) as *const __m128i)).1) as u32 };
            if bits != 0 {
                return from + bits.trailing_zeros() as usize;
            }
            from += 16;
        }
        from
    }

    /// # Safety
    /// Always safe on x86_64 (SSE2); `unsafe` for the intrinsics. Every load reads 16 bytes
    /// inside `line` or inside a local copy.
    #[inline]
    pub unsafe fn key(line: &[u8]) -> u64 {
        let n = line.len();
        let mut h0 = (n as u64) ^ S0;
        let mut h1 = S1;
        if n < 16 {
            let mut b = [0u8; 16];
            b[..n].copy_from_slice(line);
            let (lo, hi) = block(b.as_ptr());
            h0 = fold(lo ^ h0, hi ^ S2);
        } else {
            let p = line.as_ptr();
            let mut i = 0;
            while i + 32 <= n {
                let (a, b) = block(p.add(i));
                let (c, d) = block(p.add(i + 16));
                h0 = fold(a ^ h0, b ^ S2);
                h1 = fold(c ^ h1, d ^ S3);
                i += 32;
            }
            if i + 16 <= n {
                let (a, b) = block(p.add(i));
                h0 = fold(a ^ h0, b ^ S2);
                i += 16;
            }
            if i < n {
                let (a, b) = block(p.add(n - 16)); // overlaps what came before
                h1 = fold(a ^ h1, b ^ S3);
            }
        }
        fold(h0 ^ S3, h1 ^ S0)
    }

    /// Bit k of each word: byte `p[k]` is an ASCII hex character; an ASCII digit.
    ///
    /// # Safety
    /// `p` points at 64 readable bytes.
    #[inline(always)]
    pub unsafe fn hex_digit_bits(p: *const u8) -> (u64, u64) {
        let (mut h, mut d) = (0u64, 0u64);
        for k in 0..4 {
            let a = _mm_loadu_si128(p.add(16 * k) as *const __m128i);
            let digit = digits(a).1;
            let l = _mm_sub_epi8(_mm_or_si128(a, _mm_set1_epi8(0x20)), _mm_set1_epi8(b'a' as i8));
            let letter = _mm_cmpeq_epi8(_mm_min_epu8(l, _mm_set1_epi8(5)), l);
            h |= (_mm_movemask_epi8(_mm_or_si128(digit, letter)) as u32 as u64) << (16 * k);
            d |= (_mm_movemask_epi8(digit) as u32 as u64) << (16 * k);
        }
        (h, d)
    }
}

/// The portable key: eight bytes at a time with no branch per byte (SWAR), four independent
/// lanes so the multiplications do not wait on each other; combined at the end.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub fn key_swar(line: &[u8]) -> u64 {
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

/// Hex ids (`3fa85f64-5717-…`, trace ids, container ids) differ in their letters too, so lines
/// that carry one never repeat a [`key`]. An *id run* — at least [`HEX_RUN`] hex characters
/// with two or more digits and a letter — decides nothing by the characters after its first:
/// the token holding it has two digits, so it is a value (never a numbered name like `eth0`,
/// never a `key=`, which is letters only), and the header and time rules that look inside a
/// token look at its first character (`is_tag`, `is_logger`: a letter first) or need it all
/// digits, all upper case or a word — none of which an id run's other characters can change.
/// So an id run counts by its length and the class of its first character (digit, lower- or
/// upper-case letter); digits inside it are never significant (see [`Significant::of`]).
/// `None` when the line has no id run (its [`key`] is its key).
/// The id runs found are left in `runs` (for [`Significant::of`]).
pub fn hex_id_key(line: &[u8], scratch: &mut Vec<u8>, runs: &mut Vec<(usize, usize)>) -> Option<u64> {
    let mut found = false;
    runs.clear();
    id_runs(line, |start, end| {
        runs.push((start, end));
        if !found {
            scratch.clear();
            scratch.extend_from_slice(line);
            found = true;
        }
        scratch[start] = match line[start] {
            b'0'..=b'9' => b'0',
            b'a'..=b'f' => b'a',
            _ => b'A',
        };
        scratch[start + 1..end].fill(b'x');
    });
    found.then(|| key(scratch) ^ 0x6865_785f_6964_735f)
}

/// The shortest run of hex characters that counts as an id run (see [`hex_id_key`]).
pub const HEX_RUN: usize = 8;

/// Calls `f(start, end)` for every id run of `line` (see [`hex_id_key`]), in order.
///
/// On x86_64 a line of up to [`MASKED_MAX`] bytes is read once into bit masks, a bit per byte
/// (hex character, digit); and'ing the hex mask with itself shifted by 1, 2 and 4 marks where
/// eight in a row start, and spreading those marks over their eight bytes gives exactly the
/// bytes of the hex runs of eight or more. Most lines have none with a letter and are done
/// there; the runs that are left are measured on the masks (their ends and digit counts), not
/// byte by byte.
pub fn id_runs(line: &[u8], f: impl FnMut(usize, usize)) {
    #[cfg(target_arch = "x86_64")]
    if line.len() <= MASKED_MAX {
        return masked_id_runs(line, f);
    }
    id_runs_bytewise(line, f)
}

/// The longest line [`id_runs`] reads through bit masks (on the stack); longer ones byte by byte.
pub const MASKED_MAX: usize = 1024;
#[cfg(target_arch = "x86_64")]
const MASK_WORDS: usize = MASKED_MAX / 64;

/// The hex and digit bits of the `i`th 64 bytes of `line` (clear past its end).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn hex_digit_words(line: &[u8], i: usize) -> (u64, u64) {
    let n = line.len();
    if (i + 1) * 64 <= n {
        // SAFETY: the 64 bytes are inside `line`
        unsafe { wide::hex_digit_bits(line.as_ptr().add(i * 64)) }
    } else if i * 64 < n && n >= 64 {
        // the last 64 bytes, shifted down to the ones this word holds
        // SAFETY: the 64 bytes are inside `line`
        let (h, d) = unsafe { wide::hex_digit_bits(line.as_ptr().add(n - 64)) };
        let before = (i + 1) * 64 - n;
        (h >> before, d >> before)
    } else if i * 64 < n {
        let mut tail = [0u8; 64];
        tail[..n - i * 64].copy_from_slice(&line[i * 64..]);
        // SAFETY: a local block of 64 bytes
        unsafe { wide::hex_digit_bits(tail.as_ptr()) }
    } else {
        (0, 0)
    }
}

#[cfg(target_arch = "x86_64")]
fn masked_id_runs(line: &[u8], mut f: impl FnMut(usize, usize)) {
    const _: () = assert!(HEX_RUN == 8);
    let n = line.len();
    let words = n.div_ceil(64);
    // `runs`: the bytes of hex runs of eight or more; one spare word, clear, past the last
    let mut runs = [0u64; MASK_WORDS + 1];
    let mut digit = [0u64; MASK_WORDS + 1];
    // the letters in those runs: an id run holds one
    let mut letters = [0u64; MASK_WORDS + 1];
    let (mut hex, mut dig) = hex_digit_words(line, 0);
    let (mut starts_before, mut any) = (0u64, 0u64);
    for i in 0..words {
        let (next_hex, next_dig) = hex_digit_words(line, i + 1);
        // where eight hex bytes in a row start (reading on into the next word)
        let x = hex as u128 | (next_hex as u128) << 64;
        let x = x & (x >> 1);
        let x = x & (x >> 2);
        let starts = (x & (x >> 4)) as u64;
        // each start spread over its eight bytes (starts late in the word before reach in)
        let y = starts_before as u128 | (starts as u128) << 64;
        let y = y | (y << 1);
        let y = y | (y << 2);
        let y = ((y | (y << 4)) >> 64) as u64;
        runs[i] = y;
        digit[i] = dig;
        letters[i] = y & hex & !dig;
        any |= letters[i];
        (starts_before, hex, dig) = (starts, next_hex, next_dig);
    }
    // most lines: no hex run of eight holds a letter
    if any == 0 {
        return;
    }
    let mut at = 0;
    while at < n {
        // the next run with a letter: from that letter back to its first byte and on past its last
        let (w, b) = (at / 64, at % 64);
        let rest = letters[w] >> b;
        if rest == 0 {
            at = (w + 1) * 64;
            continue;
        }
        let letter = at + rest.trailing_zeros() as usize;
        let mut start = letter;
        loop {
            let (w, b) = (start / 64, start % 64);
            // the run's bytes just below `start`: the top bits of this word under it, or of the
            // word before when `start` begins a word
            let ones = match (w, b) {
                (0, 0) => break,
                (w, 0) => runs[w - 1].leading_ones(),
                (w, b) => (runs[w] << (64 - b)).leading_ones(),
            } as usize;
            start -= ones;
            if ones == 0 || !start.is_multiple_of(64) {
                break;
            }
        }
        let mut end = letter;
        loop {
            let (w, b) = (end / 64, end % 64);
            end += (!(runs[w] >> b)).trailing_zeros().min(64 - b as u32) as usize;
            if !end.is_multiple_of(64) || runs[end / 64] & 1 == 0 {
                break;
            }
        }
        let mut digits = 0;
        let mut i = start;
        while i < end {
            let (w, b) = (i / 64, i % 64);
            let take = (64 - b).min(end - i);
            let mask = if take == 64 { u64::MAX } else { ((1u64 << take) - 1) << b };
            digits += (digit[w] & mask).count_ones() as usize;
            i += take;
        }
        if digits >= 2 {
            f(start, end);
        }
        at = end;
    }
}

/// [`id_runs`] byte by byte: only a hex byte at every [`HEX_RUN`]th place can lie in a run long
/// enough, so only then is the run around it measured.
fn id_runs_bytewise(line: &[u8], mut f: impl FnMut(usize, usize)) {
    let hex = |b: u8| b.is_ascii_hexdigit();
    let n = line.len();
    // no run of interest starts before `i`: `i` is 0 or follows a byte that is not hex
    let mut i = 0;
    while i + HEX_RUN <= n {
        let probe = i + HEX_RUN - 1;
        if !hex(line[probe]) {
            i = probe + 1;
            continue;
        }
        let mut start = probe;
        while start > i && hex(line[start - 1]) {
            start -= 1;
        }
        let mut end = probe + 1;
        while end < n && hex(line[end]) {
            end += 1;
        }
        if end - start >= HEX_RUN {
            let digits = line[start..end].iter().filter(|b| b.is_ascii_digit()).count();
            if digits >= 2 && digits < end - start {
                f(start, end);
            }
        }
        i = end;
    }
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

    /// Scans `line`, whose id runs are `id_runs` ([`hex_id_key`] finds them). `None`: too many
    /// such digits to key on; do not cache. Runs on every word-key hit with digits, so only the
    /// digit runs are visited (sixteen bytes at a time past the others) and `HTTP/` is looked
    /// for only when a lone three-digit run asks.
    pub fn of(line: &[u8], id_runs: &[(usize, usize)]) -> Option<Significant> {
        let mut s = Significant { n: 0, at: [0; Self::MAX] };
        if line.len() > u16::MAX as usize {
            return None;
        }
        let mut http = None;
        // id runs in line order, the next one not yet passed
        let mut ids = id_runs.iter().peekable();
        let mut i = next_digit(line, 0);
        while i < line.len() {
            while ids.next_if(|&&(_, e)| e <= i).is_some() {}
            if let Some(&&(s, e)) = ids.peek() {
                if s <= i {
                    // digits inside an id run belong to a value: never significant, and skipping
                    // them keeps the offsets the same for every line of a hex-id key (a run is a
                    // maximal hex run: no digit run goes past its end)
                    i = next_digit(line, e);
                    continue;
                }
            }
            let start = i;
            while i < line.len() && line[i].is_ascii_digit() {
                i += 1;
            }
            if !s.note(line, start, i, &mut http) {
                return None;
            }
            i = next_digit(line, i);
        }
        Some(s)
    }

    /// The digit run `line[start..end]`: its significant places noted; false when full.
    #[inline]
    fn note(&mut self, line: &[u8], start: usize, end: usize, http: &mut Option<bool>) -> bool {
        let run = end - start;
        let mut push = |i: usize| -> bool {
            if self.n as usize == Self::MAX {
                return false;
            }
            self.at[self.n as usize] = i as u16;
            self.n += 1;
            true
        };
        if start == 1 && line[0] == b'<' {
            // a syslog priority: every digit
            return (start..end).all(&mut push);
        }
        let ends_word = end == line.len() || !line[end].is_ascii_alphanumeric();
        let numbered = run == 1 && ends_word && start >= 2 && line[start - 1].is_ascii_alphabetic() && line[start - 2].is_ascii_alphabetic();
        let status = run == 3 && {
            let keyed = |key: &[u8]| start >= key.len() && line[start - key.len()..start].eq_ignore_ascii_case(key);
            // a status is a token of its own in an access log (not an octet, not a fraction)
            let alone = start > 0 && line[start - 1] == b' ' && (end == line.len() || line[end] == b' ');
            // a searcher built once: building one costs more than searching a line
            static HTTP: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"HTTP/"));
            (alone && *http.get_or_insert_with(|| HTTP.find(line).is_some()))
                || (start > 0 && line[start - 1] == b'=' && (keyed(b"status=") || keyed(b"status_code=") || keyed(b"http_status=")))
        };
        !(numbered || status) || push(start)
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

/// The first ASCII digit of `line` at or after `from` (at most `line.len()`; `line.len()` when none).
#[inline]
fn next_digit(line: &[u8], from: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    let from = wide::skip_to_digit(line, from);
    line[from..].iter().position(u8::is_ascii_digit).map_or(line.len(), |k| from + k)
}

#[cfg(test)]
mod tests {
    use super::{key, Significant};

    #[test]
    fn significant_digits_tell_apart_what_the_key_cannot() {
        let a = b"1.2.3.4 - - [x] \"GET / HTTP/1.1\" 200 512";
        let b = b"1.2.3.4 - - [x] \"GET / HTTP/1.1\" 502 512";
        assert_eq!(key(a), key(b));
        let s = Significant::of(a, &[]).unwrap();
        assert_eq!(s, Significant::of(b, &[]).unwrap(), "same offsets for the same key");
        assert_ne!(s.salted(key(a), a), s.salted(key(b), b));
        let (e0, e1) = (&b"link up on eth0 at 12:00"[..], &b"link up on eth1 at 13:00"[..]);
        let s = Significant::of(e0, &[]).unwrap();
        assert_ne!(s.salted(key(e0), e0), s.salted(key(e1), e1));
        assert_eq!(s.salted(key(e0), e0), s.salted(key(e0), b"link up on eth0 at 23:59"));
        assert!(Significant::of(b"user 12 logged in at 10:31:07", &[]).unwrap().is_empty());
        let (ok, bad) = (&b"request done status=200"[..], &b"request done status=503"[..]);
        let s = Significant::of(ok, &[]).unwrap();
        assert_ne!(s.salted(key(ok), ok), s.salted(key(bad), bad));
        assert!(!Significant::of(b"<34>1 2024-01-01T00:00:00Z h a - - - m", &[]).unwrap().is_empty());
    }

    /// The maximal hex runs of eight or more with two digits and a letter, read byte by byte.
    fn plain_id_runs(line: &[u8]) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        let mut i = 0;
        while i < line.len() {
            let start = i;
            while i < line.len() && line[i].is_ascii_hexdigit() {
                i += 1;
            }
            let d = line[start..i].iter().filter(|b| b.is_ascii_digit()).count();
            if i - start >= super::HEX_RUN && d >= 2 && d < i - start {
                runs.push((start, i));
            }
            i = i.max(start + 1);
        }
        runs
    }

    fn runs_of(line: &[u8]) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        super::id_runs(line, |s, e| runs.push((s, e)));
        runs
    }

    /// Runs of 7, 8 and 9 at every place of lines to 200 bytes (across every word boundary of
    /// the masks), long runs of digits with one letter anywhere, every byte value, and lines
    /// past the masked length: the same runs as the byte loop.
    #[test]
    fn id_runs_at_every_place_and_of_every_byte() {
        for len in 0..200usize {
            for run in [7usize, 8, 9].into_iter().filter(|&r| r <= len) {
                for at in 0..=len - run {
                    let mut line = vec![b'x'; len];
                    for (k, b) in line.iter_mut().skip(at).take(run).enumerate() {
                        *b = b"0aF9c4E7d"[k % 9];
                    }
                    let runs = runs_of(&line);
                    assert_eq!(runs, plain_id_runs(&line), "len {len}, run {run} at {at}");
                    assert_eq!(runs.is_empty(), run < 8);
                }
            }
        }
        for run in [8usize, 20, 64, 70, 130] {
            for at in [0usize, 1, 50, 57, 63, 64, 100] {
                let mut line = vec![b' '; at + run + 3];
                line[at..at + run].fill(b'7');
                assert!(runs_of(&line).is_empty(), "digits only: run {run} at {at}");
                for k in 0..run {
                    let mut with = line.clone();
                    with[at + k] = b'e';
                    assert_eq!(runs_of(&with), [(at, at + run)], "run {run} at {at}, letter at {k}");
                }
            }
        }
        for b in 0u8..=255 {
            let mut line = [b; 8];
            line[0] = b'c';
            assert_eq!(runs_of(&line), plain_id_runs(&line), "byte {b:#x}");
            assert_eq!(runs_of(&line).len(), b.is_ascii_digit() as usize, "byte {b:#x}");
            assert!(runs_of(&line[..7]).is_empty());
        }
        for len in [super::MASKED_MAX - 1, super::MASKED_MAX, super::MASKED_MAX + 1, 3000] {
            let mut line = vec![b'-'; len];
            for at in (0..len.saturating_sub(40)).step_by(97) {
                line[at..at + 36].copy_from_slice(b"3fa85f64-5717-4562-b3fc-2c963f66afa6");
            }
            line[len - 9..].copy_from_slice(b" 0a1b2c3d");
            assert_eq!(runs_of(&line), plain_id_runs(&line), "len {len}");
        }
    }

    #[test]
    fn id_runs_are_the_maximal_hex_runs_of_eight_with_two_digits_and_a_letter() {
        let plain = plain_id_runs;
        let mut x = 0x853c_49e6_748f_ea9bu64;
        let alphabet = b"0123456789abcdefABCDEFxyz -:=/";
        for len in (0..160).chain([255, 256, 257, 700, 1023, 1024, 1025, 1500]) {
            for _ in 0..100 {
                let line: Vec<u8> = (0..len)
                    .map(|_| {
                        let x = crate::detect::xorshift(&mut x);
                        // mostly hex, so that long runs are common
                        alphabet[(x % if x % 4 == 0 { alphabet.len() as u64 } else { 22 }) as usize]
                    })
                    .collect();
                let mut runs = Vec::new();
                super::id_runs(&line, |s, e| runs.push((s, e)));
                assert_eq!(runs, plain(&line), "{}", String::from_utf8_lossy(&line));
                runs.clear();
                super::id_runs_bytewise(&line, |s, e| runs.push((s, e)));
                assert_eq!(runs, plain(&line), "bytewise: {}", String::from_utf8_lossy(&line));
            }
        }
        // and every sample line (UUIDs, trace ids and epoch times at every place of a line)
        let mut with_runs = 0;
        for line in crate::detect::sample_lines(2000) {
            let mut runs = Vec::new();
            super::id_runs(&line, |s, e| runs.push((s, e)));
            with_runs += !runs.is_empty() as usize;
            assert_eq!(runs, plain(&line), "{}", String::from_utf8_lossy(&line));
        }
        assert!(with_runs > 500, "{with_runs} sample lines with id runs");
        let mut runs = Vec::new();
        super::id_runs(b"id 3fa85f64-5717-4562-b3fc-2c963f66afa6 deadbeef cafe1234 00112233", |s, e| runs.push((s, e)));
        assert_eq!(runs, [(3, 11), (27, 39), (49, 57)]);
    }

    #[test]
    fn digits_count_by_run_length_only() {
        digits_count_by_run_length_only_for(key);
        digits_count_by_run_length_only_for(super::key_swar);
    }

    fn digits_count_by_run_length_only_for(key: fn(&[u8]) -> u64) {
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
        fast_and_slow_paths_agree_for(key);
        fast_and_slow_paths_agree_for(super::key_swar);
    }

    /// Every length from 0 to 80 (the short copy, whole blocks, the overlapping last block),
    /// every byte value at every position: a digit's value never moves the key, anything else
    /// always does (the wide key zeroes digits with vector compares: each byte class is checked).
    #[test]
    fn every_byte_at_every_position_of_every_length() {
        for key in [key as fn(&[u8]) -> u64, super::key_swar] {
            for len in 1..=80usize {
                let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                let k = key(&base);
                for at in 0..len {
                    let mut digit = base.clone();
                    digit[at] = b'0';
                    let zero = key(&digit);
                    assert_ne!(zero, k, "len {len} at {at}: a digit for a letter must change the key");
                    for b in 0u8..=255 {
                        let mut v = base.clone();
                        v[at] = b;
                        let same = if b.is_ascii_digit() { zero } else if b == base[at] { k } else { continue };
                        assert_eq!(key(&v), same, "len {len} at {at} byte {b:#x}");
                    }
                    for b in [b'/', b':', b'@', b'A', 0x80, 0xff, 0x00, b' '] {
                        if b != base[at] {
                            let mut v = base.clone();
                            v[at] = b;
                            assert_ne!(key(&v), k, "len {len} at {at} byte {b:#x}");
                        }
                    }
                }
            }
        }
    }

    /// The significant places as the rules read them, every byte and every rule in turn (`HTTP/`
    /// looked for first, each status key compared, a syslog priority's digits), against the
    /// digit-skipping scan: every loghub and realworld line, and random lines made of digits,
    /// statuses, priorities and hex runs at every alignment.
    #[test]
    fn significant_places_are_the_byte_loops() {
        fn byte_loop(line: &[u8], id_runs: &[(usize, usize)]) -> Option<Significant> {
            if line.len() > u16::MAX as usize {
                return None;
            }
            let http = line.windows(5).any(|w| w == b"HTTP/");
            let mut at = Vec::new();
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
                if id_runs.iter().any(|&(a, b)| (a..b).contains(&start)) {
                    continue;
                }
                let before = |k: usize| start.checked_sub(k).map(|b| line[b]);
                let keyed = ["status=", "status_code=", "http_status="].iter().any(|k| line[..start].to_ascii_lowercase().ends_with(k.as_bytes()));
                let after = line.get(i).copied();
                let numbered = i - start == 1 && !after.is_some_and(|b| b.is_ascii_alphanumeric()) && before(1).is_some_and(|b| b.is_ascii_alphabetic()) && before(2).is_some_and(|b| b.is_ascii_alphabetic());
                let alone = before(1) == Some(b' ') && after.is_none_or(|b| b == b' ');
                if start == 1 && line[0] == b'<' {
                    at.extend(start..i);
                } else if numbered || (i - start == 3 && ((alone && http) || keyed)) {
                    at.push(start);
                }
            }
            if at.len() > Significant::MAX {
                return None;
            }
            let mut s = Significant { n: at.len() as u8, at: [0; Significant::MAX] };
            for (d, &a) in s.at.iter_mut().zip(&at) {
                *d = a as u16;
            }
            Some(s)
        }
        let mut lines = crate::detect::sample_lines(2000);
        let parts: [&[u8]; 12] = [b" ", b"200", b"7", b"HTTP/1.1 ", b"status=", b"Status_Code=", b"<34>", b"eth", b"deadbeef12", b"x", b"-", b"\t"];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let n = crate::detect::xorshift(&mut seed) % 24;
            let line: Vec<u8> = (0..n).flat_map(|_| parts[(crate::detect::xorshift(&mut seed) % 12) as usize].iter().copied()).collect();
            lines.push(line);
        }
        assert!(lines.len() > 30_000, "{} lines", lines.len());
        let (mut scratch, mut runs) = (Vec::new(), Vec::new());
        let mut noted = 0;
        for line in &lines {
            super::hex_id_key(line, &mut scratch, &mut runs);
            let fast = Significant::of(line, &runs);
            assert_eq!(fast, byte_loop(line, &runs), "{:?}", String::from_utf8_lossy(line));
            noted += fast.is_some_and(|s| !s.is_empty()) as usize;
        }
        assert!(noted > 1000, "only {noted} lines with significant places: the test reads too little");
    }

    fn fast_and_slow_paths_agree_for(key: fn(&[u8]) -> u64) {
        // a word with no digit hashed whole must equal the same bytes seen after a digit run ends
        let base = b"abcdefgh12345678ijklmnop";
        let other = b"abcdefgh87654321ijklmnop";
        assert_eq!(key(base), key(other));
        for len in 0..base.len() {
            assert_eq!(key(&base[..len]), key(&other[..len]), "prefix {len}");
        }
    }
}
