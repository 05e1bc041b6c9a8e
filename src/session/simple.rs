//! The common shape of a session key — a literal, at most one optional character, then a run of
//! one character class (`blk_-?[0-9]+`, `req-[0-9a-f]+`, `trace-[0-9a-z-]+`) — matched without
//! the regular-expression engine: a substring search for the literal, then a scan of the run.
//! The `regex` crate costs about 130 ns per line here for such a pattern (the sessions bench
//! prints what this costs). On x86_64 both halves are SSE2, sixteen places a step (the
//! literal's first and last bytes, then the class's ranges); elsewhere, and as the reference
//! in tests, `memmem` and eight bytes a step.
//!
//! Only patterns whose greedy reading is exactly the regular expression's leftmost-first match
//! are taken (the optional character is not in the class); anything else keeps the engine.

#[derive(Clone, Debug)]
pub struct Simple {
    prefix: Vec<u8>,
    finder: memchr::memmem::Finder<'static>,
    optional: Option<u8>,
    /// The class as inclusive ranges of ASCII bytes (`0-9`, `a-f`, `-`), as [`Range`] words
    /// and as the bytes themselves.
    ranges: [Range; RANGES],
    n_ranges: usize,
    /// What the SSE2 path compares with, each byte sixteen times (broadcast once here, not
    /// per line): the literal's first and last bytes, the literal padded with zeros, and each
    /// range's low and high end.
    wide: Wide,
}

#[derive(Clone, Debug)]
struct Wide {
    first: [u8; 16],
    last: [u8; 16],
    literal: [u8; 16],
    lo: [[u8; 16]; RANGES],
    hi: [[u8; 16]; RANGES],
}

/// Ranges a class may have (`[0-9a-zA-Z_-]` has four).
const RANGES: usize = 6;

/// One in each byte of a word.
const ONES: u64 = u64::from_le_bytes([1; 8]);

/// A range `lo..=hi` of bytes (1 ≤ lo ≤ hi ≤ 127), as the two words [`Range::inside`] adds.
#[derive(Clone, Copy, Debug, Default)]
struct Range {
    over_hi: u64,
    over_lo: u64,
}

impl Range {
    fn new(lo: u8, hi: u8) -> Range {
        let (below, above) = (lo as u64 - 1, hi as u64 + 1);
        Range { over_hi: ONES * (127 + above), over_lo: ONES * (127 - below) }
    }

    /// The high bit of each byte of `x` set where that byte is in the range; exact for every
    /// byte, those over 127 included (never in). Bit Twiddling Hacks' `hasbetween`: no byte
    /// carries into the next.
    fn inside(self, x: u64) -> u64 {
        let low7 = x & (ONES * 127);
        self.over_hi.wrapping_sub(low7) & !x & low7.wrapping_add(self.over_lo) & (ONES * 128)
    }
}

#[cfg(test)]
fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    Range::new(lo, hi).inside(x)
}

impl Simple {
    /// `None` when the pattern is not of the simple shape.
    pub fn compile(p: &str) -> Option<Simple> {
        let b = p.as_bytes();
        let mut i = 0;
        let literal = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'=' | b':' | b'/');
        while i < b.len() && literal(b[i]) && b.get(i + 1) != Some(&b'?') {
            i += 1;
        }
        let prefix = b[..i].to_vec();
        if prefix.len() < 2 {
            return None;
        }
        let mut optional = None;
        if i + 1 < b.len() && literal(b[i]) && b[i + 1] == b'?' {
            optional = Some(b[i]);
            i += 2;
        }
        // `[…]+` and the end of the pattern
        if b.get(i) != Some(&b'[') || !p.ends_with("]+") || i + 3 > b.len() {
            return None;
        }
        let set = &b[i + 1..b.len() - 2];
        if set.is_empty() || set[0] == b'^' || set.iter().any(|&c| matches!(c, b'[' | b']' | b'\\')) {
            return None;
        }
        let mut class = [false; 256];
        let mut k = 0;
        while k < set.len() {
            if k + 2 < set.len() && set[k + 1] == b'-' {
                if set[k] > set[k + 2] {
                    return None;
                }
                for c in set[k]..=set[k + 2] {
                    class[c as usize] = true;
                }
                k += 3;
            } else {
                class[set[k] as usize] = true;
                k += 1;
            }
        }
        if optional.is_some_and(|o| class[o as usize]) {
            return None; // greedy and leftmost-first could disagree
        }
        let mut ranges: Vec<(u8, u8)> = Vec::new();
        for c in 1..=127u8 {
            if class[c as usize] {
                match ranges.last_mut() {
                    Some(r) if r.1 + 1 == c => r.1 = c,
                    _ => ranges.push((c, c)),
                }
            }
        }
        if ranges.len() > RANGES || class[0] || class[128..].iter().any(|&x| x) {
            return None;
        }
        let finder = memchr::memmem::Finder::new(&prefix).into_owned();
        let mut words = [Range::default(); RANGES];
        let mut wide = Wide { first: [prefix[0]; 16], last: [prefix[prefix.len() - 1]; 16], literal: [0; 16], lo: [[1; 16]; RANGES], hi: [[0; 16]; RANGES] };
        let n = prefix.len().min(16);
        wide.literal[..n].copy_from_slice(&prefix[..n]);
        for (k, &(lo, hi)) in ranges.iter().enumerate() {
            words[k] = Range::new(lo, hi);
            wide.lo[k] = [lo; 16];
            wide.hi[k] = [hi; 16];
        }
        Some(Simple { prefix, finder, optional, ranges: words, n_ranges: ranges.len(), wide })
    }

    /// Where the run of class characters that begins at `j` ends: eight bytes at a time, the
    /// end read from a mask (an id's length varies from line to line: a branch per byte
    /// mispredicts at its end, and cost more than the rest of the search).
    fn run_end(&self, b: &[u8], mut j: usize) -> usize {
        let outside = |chunk: [u8; 8]| {
            let x = u64::from_le_bytes(chunk);
            let inside = self.ranges[..self.n_ranges].iter().fold(0, |m, r| m | r.inside(x));
            !inside & (ONES * 128)
        };
        while let Some(chunk) = b.get(j..j + 8) {
            let m = outside(chunk.try_into().expect("eight bytes"));
            if m != 0 {
                return j + m.trailing_zeros() as usize / 8;
            }
            j += 8;
        }
        // the last few: past the end 0, never in the class
        let mut last = [0u8; 8];
        for (k, &c) in b[j..].iter().enumerate() {
            last[k] = c; // a loop, not a copy of a variable length (a library call)
        }
        j + outside(last).trailing_zeros() as usize / 8
    }

    /// The leftmost match in `text`.
    #[inline]
    pub fn find<'a>(&self, text: &'a str) -> Option<&'a str> {
        self.find_bytes(text.as_bytes())
    }

    /// The leftmost match in `b`, whatever its other bytes: the literal and the class are
    /// ASCII, so a match is text, and the same as in `b` read with invalid bytes replaced
    /// (those are never ASCII, like U+FFFD's) — a host's record need not be validated first.
    #[inline]
    pub fn find_bytes<'a>(&self, b: &'a [u8]) -> Option<&'a str> {
        #[cfg(target_arch = "x86_64")]
        if b.len() >= self.prefix.len() + 15 {
            // SAFETY: SSE2 is part of every x86_64; `find_sse2` loads only within `b`
            let (start, end) = unsafe { self.find_sse2(b) }?;
            return Some(Self::ascii(&b[start..end]));
        }
        self.find_portable(b)
    }

    /// A match as text. Every byte of one is ASCII: the literal's are letters, digits and
    /// `_-=:/` ([`Simple::compile`] takes no other), and so is the optional one, and the class's
    /// ranges lie within 1..=127 (checked there too).
    #[inline]
    fn ascii(m: &[u8]) -> &str {
        debug_assert!(m.is_ascii());
        // SAFETY: ASCII bytes (above) are valid UTF-8
        unsafe { std::str::from_utf8_unchecked(m) }
    }

    /// [`Simple::find_bytes`] by `memmem` and [`Simple::run_end`] (other targets, short lines,
    /// and the reference the SSE2 path is tested against).
    fn find_portable<'a>(&self, b: &'a [u8]) -> Option<&'a str> {
        let mut from = 0;
        while let Some(i) = self.finder.find(&b[from..]) {
            let start = from + i;
            let mut j = start + self.prefix.len();
            if let Some(o) = self.optional {
                if b.get(j) == Some(&o) {
                    j += 1;
                }
            }
            let run = j;
            j = self.run_end(b, j);
            if j > run {
                return Some(Self::ascii(&b[start..j]));
            }
            from = start + 1;
        }
        None
    }

    /// The leftmost match as byte offsets. Places of the literal are found sixteen at a time:
    /// a byte equal to its first byte with, `len − 1` further, one equal to its last (the pair
    /// rules out most places where the first byte alone would match: `block` for `blk_`); the
    /// last sixteen places overlap the ones before and are masked to the new ones. Needs
    /// `b.len() ≥ prefix.len() + 15`.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    unsafe fn find_sse2(&self, b: &[u8]) -> Option<(usize, usize)> {
        use std::arch::x86_64::*;
        let n = self.prefix.len();
        let load = |w: &[u8; 16]| _mm_loadu_si128(w.as_ptr() as *const __m128i);
        let (first, last) = (load(&self.wide.first), load(&self.wide.last));
        let places = |at: usize| {
            let x = _mm_loadu_si128(b.as_ptr().add(at) as *const __m128i);
            let y = _mm_loadu_si128(b.as_ptr().add(at + n - 1) as *const __m128i);
            _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(x, first), _mm_cmpeq_epi8(y, last))) as u32
        };
        // the places a window of sixteen starts may have: 0 ..= `b.len() − n − 15`
        let last_window = b.len() - n - 15;
        let mut at = 0;
        while at < last_window {
            let found = places(at);
            if found != 0 {
                if let Some(m) = self.match_among_any(b, at, found) {
                    return Some(m);
                }
            }
            at += 16;
        }
        // the last sixteen, overlapping those seen: only the new places
        let found = places(last_window) & (0xffffu32 << (at - last_window));
        match found {
            0 => None,
            _ => self.match_among_any(b, last_window, found),
        }
    }

    /// [`Simple::match_among`] by the number of ranges, so that only those are compared.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn match_among_any(&self, b: &[u8], at: usize, found: u32) -> Option<(usize, usize)> {
        match self.n_ranges {
            1 => self.match_among::<1>(b, at, found),
            2 => self.match_among::<2>(b, at, found),
            // the ranges past the class's are empty
            _ => self.match_among::<RANGES>(b, at, found),
        }
    }

    /// The first match that starts at one of the places `found` (bits from `at`) holds, if
    /// any. Out of the search loop: it needs the class's ranges, the loop only the literal's.
    #[cfg(target_arch = "x86_64")]
    #[inline(never)]
    unsafe fn match_among<const N: usize>(&self, b: &[u8], at: usize, mut found: u32) -> Option<(usize, usize)> {
        let n = self.prefix.len();
        while found != 0 {
            let start = at + found.trailing_zeros() as usize;
            found &= found - 1;
            if !self.literal_at(b, start) {
                continue;
            }
            let mut j = start + n;
            if self.optional.is_some() && b.get(j) == self.optional.as_ref() {
                j += 1;
            }
            let end = self.run_end_ranges::<N>(b, j);
            if end > j {
                return Some((start, end));
            }
        }
        None
    }

    /// Whether the literal starts at `start` (its first and last bytes are known to match).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn literal_at(&self, b: &[u8], start: usize) -> bool {
        use std::arch::x86_64::*;
        let n = self.prefix.len();
        if n <= 16 && start + 16 <= b.len() {
            let literal = _mm_loadu_si128(self.wide.literal.as_ptr() as *const __m128i);
            let eq = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(b.as_ptr().add(start) as *const __m128i), literal)) as u32;
            let want = (1u32 << n) - 1;
            return eq & want == want;
        }
        b[start..start + n] == self.prefix[..]
    }

    /// [`Simple::run_end`] sixteen bytes a step, over the first `N` ranges: a byte is in a
    /// range when it is its own max with the range's low end and its own min with the high end
    /// (unsigned: bytes over 127 are in none). The last step reads the last sixteen bytes of
    /// `b` (needs `b.len() ≥ 16`).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn run_end_ranges<const N: usize>(&self, b: &[u8], mut j: usize) -> usize {
        use std::arch::x86_64::*;
        let outside = |x: __m128i| {
            let mut inside = _mm_setzero_si128();
            for k in 0..N {
                let lo = _mm_loadu_si128(self.wide.lo[k].as_ptr() as *const __m128i);
                let hi = _mm_loadu_si128(self.wide.hi[k].as_ptr() as *const __m128i);
                let ge = _mm_cmpeq_epi8(_mm_max_epu8(x, lo), x);
                let le = _mm_cmpeq_epi8(_mm_min_epu8(x, hi), x);
                inside = _mm_or_si128(inside, _mm_and_si128(ge, le));
            }
            !(_mm_movemask_epi8(inside) as u32) & 0xffff
        };
        while j + 16 <= b.len() {
            let out = outside(_mm_loadu_si128(b.as_ptr().add(j) as *const __m128i));
            if out != 0 {
                return j + out.trailing_zeros() as usize;
            }
            j += 16;
        }
        if j == b.len() {
            return j;
        }
        let from = b.len() - 16;
        let out = outside(_mm_loadu_si128(b.as_ptr().add(from) as *const __m128i)) >> (j - from);
        if out == 0 {
            b.len()
        } else {
            j + out.trailing_zeros() as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_are_exact_for_every_byte_in_every_lane() {
        for (lo, hi) in [(1u8, 1u8), (b'0', b'9'), (b'a', b'f'), (b'-', b'-'), (1, 127), (127, 127), (b'A', b'Z')] {
            for v in 0..=255u8 {
                for lane in 0..8 {
                    // the other lanes hold bytes that could carry or borrow: 0, 127, 128, 255
                    for fill in [0u8, 127, 128, 255, b'5'] {
                        let mut bytes = [fill; 8];
                        bytes[lane] = v;
                        let got = in_range(u64::from_le_bytes(bytes), lo, hi).to_le_bytes()[lane] & 0x80 != 0;
                        assert_eq!(got, (lo..=hi).contains(&v), "{v} in {lo}..={hi}, lane {lane}, fill {fill}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_sse2_search_is_the_regex_engine_at_every_place_and_length() {
        // a match, a near miss (literal without a run, first and last byte without the middle)
        // and noise, at every place of lines of every length to 80, and random lines
        let cases = ["blk_-?[0-9]+", "req-[0-9a-f]+", "trace-[0-9a-z-]+", "id=[0-9]+", "k:[0-9a-zA-Z_-]+", "ab[a-c]+", "trace_identifier_long_literal=[0-9]+"];
        let pieces = ["blk_-12345", "blk_x", "bxx_", "block", "blk_-", "req-0a1f", "req-", "trace-ab-9", "id=7", "k:Zz_-", "abcab", "ab", "ü", "\u{7f}", " ", "9", "trace_identifier_long_literal=42"];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || crate::detect::xorshift(&mut seed);
        for p in cases {
            let s = Simple::compile(p).unwrap_or_else(|| panic!("{p} is simple"));
            let re = regex::Regex::new(p).unwrap();
            for len in 0..80 {
                for piece in pieces {
                    for at in 0..=len {
                        let mut t = "x".repeat(at);
                        t.push_str(piece);
                        t.push_str(&"y".repeat(len - at));
                        assert_eq!(s.find(&t), re.find(&t).map(|m| m.as_str()), "{p} on {t:?}");
                        assert_eq!(s.find_portable(t.as_bytes()), re.find(&t).map(|m| m.as_str()), "{p} on {t:?}");
                    }
                }
            }
            for _ in 0..3000 {
                let mut t = String::new();
                let parts = next() % 12;
                for _ in 0..parts {
                    match next() % 3 {
                        0 => t.push_str(pieces[(next() % pieces.len() as u64) as usize]),
                        1 => t.push(b"0123456789abcdefxyz-_ :="[(next() % 24) as usize] as char),
                        _ => t.push_str(&(next() % 100_000).to_string()),
                    }
                }
                assert_eq!(s.find(&t), re.find(&t).map(|m| m.as_str()), "{p} on {t:?}");
            }
        }
    }

    #[test]
    fn same_matches_as_the_regex_engine() {
        let cases = ["blk_-?[0-9]+", "req-[0-9a-f]+", "trace-[0-9a-z-]+", "id=[0-9]+", "k:[0-9a-zA-Z_-]+"];
        let texts = [
            "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106",
            "PacketResponder 1 for block blk_38865049064139660 terminating",
            "blk_ then blk_- then blk_7x and req-zz req-00a1f done",
            "trace-abc-12 and trace-",
            "no id=x but id=42, id=7",
            "ünïcödé blk_-5 ü",
            "blk_12345678 blk_-1234567 blk_123456789012345678901234567890",
            "id=1234567\u{7f}8 id=12345678ü k:aZ_-09/ k:é",
            "req-0123456789abcdef0123456789abcdeg",
            "",
        ];
        for p in cases {
            let s = Simple::compile(p).unwrap_or_else(|| panic!("{p} is simple"));
            let re = regex::Regex::new(p).unwrap();
            for t in texts {
                assert_eq!(s.find(t), re.find(t).map(|m| m.as_str()), "{p} on {t:?}");
            }
        }
        for p in ["(?i)blk_[0-9]+", "a|b[0-9]+", "blk_[0-9]*", "x[^0-9]+", "ab-?[a-z-]+", "blk_[0-9]+x"] {
            assert!(Simple::compile(p).is_none(), "{p} is not simple");
        }
    }
}
