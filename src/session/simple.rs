//! The common shape of a session key — a literal, at most one optional character, then a run of
//! one character class (`blk_-?[0-9]+`, `req-[0-9a-f]+`, `trace-[0-9a-z-]+`) — matched without
//! the regular-expression engine: a substring search for the literal, then a scan of the run.
//! The `regex` crate costs about 130 ns per line here for such a pattern; this, about 10.
//!
//! Only patterns whose greedy reading is exactly the regular expression's leftmost-first match
//! are taken (the optional character is not in the class); anything else keeps the engine.

#[derive(Clone, Debug)]
pub struct Simple {
    prefix: Vec<u8>,
    finder: memchr::memmem::Finder<'static>,
    optional: Option<u8>,
    /// The class as inclusive ranges of ASCII bytes (`0-9`, `a-f`, `-`), as [`Range`] words.
    ranges: [Range; RANGES],
    n_ranges: usize,
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
        for (w, &(lo, hi)) in words.iter_mut().zip(&ranges) {
            *w = Range::new(lo, hi);
        }
        Some(Simple { prefix, finder, optional, ranges: words, n_ranges: ranges.len() })
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
    pub fn find<'a>(&self, text: &'a str) -> Option<&'a str> {
        let b = text.as_bytes();
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
                // the class is ASCII: `j` ends on a character boundary
                return text.get(start..j);
            }
            from = start + 1;
        }
        None
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
