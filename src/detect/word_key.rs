//! The key of a line with its *word* ids abstracted: request ids, pod names, session tokens,
//! user and host names that differ in their letters, which the digit key ([`super::line_key`])
//! cannot see.
//!
//! No shape rule can tell `req-kqzvbt` from `connection`; the miner can. When a line took the
//! full path, the template says which of its positions vary (`<*>`), so which of its words are
//! values *there*. A [`WordMask`] remembers those positions as whitespace-token ordinals of the
//! raw line: for a later line with the same number of tokens, the key of its bytes with those
//! tokens' letters and digits abstracted (case and length kept, punctuation kept) finds the
//! verdict of the line it was learned from. Everything else on the line is keyed byte for byte,
//! so the header, the other words and the punctuation that decides how a token is read are the
//! same; what is abstracted is confined to characters that only the miner's `<*>` looked at.
//!
//! What a masked word could still change is guarded per line: a word that a header or token
//! rule reads by its letters (a level, a month or weekday, `panic`, an exception class) is not
//! abstracted, and the line takes the longer way.

use crate::detect::level::Level;

/// Token positions abstracted by one mask (more stay keyed as they are: fewer hits, never wrong).
pub const MAX_MASKED: usize = 4;

/// Whitespace-token ordinals of a raw line and the bytes kept at each end of those tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WordMask {
    /// Tokens of the line (split on ASCII white space, as the tokeniser splits).
    tokens: u16,
    n: u8,
    /// (ordinal, bytes kept at the start, bytes kept at the end): `req=` of `req=kqzvbt`, the
    /// closing `]` of `[pod-x2x9z]`.
    at: [(u16, u8, u8); MAX_MASKED],
}

impl WordMask {
    pub fn new(tokens: usize) -> Option<WordMask> {
        (tokens <= u16::MAX as usize).then_some(WordMask { tokens: tokens as u16, n: 0, at: [(0, 0, 0); MAX_MASKED] })
    }

    /// Adds a position (in ordinal order); false when the mask is full.
    pub fn push(&mut self, ordinal: usize, keep_start: usize, keep_end: usize) -> bool {
        if self.n as usize == MAX_MASKED || ordinal >= self.tokens as usize || keep_start > 255 || keep_end > 255 {
            return false;
        }
        self.at[self.n as usize] = (ordinal as u16, keep_start as u8, keep_end as u8);
        self.n += 1;
        true
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn tokens(&self) -> usize {
        self.tokens as usize
    }

    /// The key of `line` under this mask; `line_tokens` are its whitespace tokens ([`tokens`]).
    /// `None` when the line has another token count or a masked word that must not be
    /// abstracted (see [`maskable`]). `scratch` is `line`'s bytes or, when the line has hex ids,
    /// the line with them abstracted already (same length).
    pub fn key(&self, scratch: &mut [u8], line_tokens: &[(u32, u32)]) -> Option<u64> {
        if !self.parts_maskable(scratch, line_tokens) {
            return None;
        }
        self.key_unchecked(scratch, line_tokens)
    }

    /// The byte ranges this mask abstracts in a line of `line_tokens`, `None` for one that is
    /// empty or past `len` (then the line is not keyed); nothing for another token count.
    fn parts<'a>(&'a self, line_tokens: &'a [(u32, u32)], len: usize) -> impl Iterator<Item = Option<(usize, usize)>> + 'a {
        let same = line_tokens.len() == self.tokens as usize;
        self.at[..if same { self.n as usize } else { 0 }].iter().map(move |&(ordinal, keep_start, keep_end)| {
            let (s, e) = line_tokens[ordinal as usize];
            let (s, e) = (s as usize + keep_start as usize, (e as usize).saturating_sub(keep_end as usize));
            (s < e && e <= len).then_some((s, e))
        })
    }

    /// Whether every part this mask abstracts in `line` may be abstracted (see [`maskable`]).
    pub fn parts_maskable(&self, line: &[u8], line_tokens: &[(u32, u32)]) -> bool {
        line_tokens.len() == self.tokens as usize && self.parts(line_tokens, line.len()).all(|p| p.is_some_and(|(s, e)| maskable(&line[s..e])))
    }

    /// Puts back the bytes [`WordMask::key`] abstracted in `scratch`, from `source` (the bytes
    /// `scratch` held before, as long), so the next mask starts from the same bytes.
    pub fn restore(&self, scratch: &mut [u8], source: &[u8], line_tokens: &[(u32, u32)]) {
        for (s, e) in self.parts(line_tokens, scratch.len().min(source.len())).flatten() {
            scratch[s..e].copy_from_slice(&source[s..e]);
        }
    }

    /// [`WordMask::key`] without the [`maskable`] check: a probe keys first and checks only a
    /// hit (a key learned from maskable parts found by unmaskable ones is then refused).
    pub fn key_unchecked(&self, scratch: &mut [u8], line_tokens: &[(u32, u32)]) -> Option<u64> {
        if line_tokens.len() != self.tokens as usize {
            return None;
        }
        let len = scratch.len();
        for part in self.parts(line_tokens, len) {
            let (s, e) = part?;
            for b in &mut scratch[s..e] {
                *b = match *b {
                    b'a'..=b'z' => b'a',
                    b'A'..=b'Z' => b'A',
                    b'0'..=b'9' => b'0',
                    other => other,
                };
            }
        }
        // the mask is part of the key: two masks never read each other's lines
        let salt = self.at[..self.n as usize]
            .iter()
            .fold(0x776f_7264_5f69_6473 ^ self.tokens as u64, |h, &(o, a, b)| (h.rotate_left(17) ^ ((o as u64) << 16 | (a as u64) << 8 | b as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Some(crate::detect::line_key::key(scratch) ^ salt)
    }
}

/// The whitespace tokens of `line` as byte ranges (split as [`crate::detect::token::tokenize`] splits).
pub fn tokens(line: &[u8], out: &mut Vec<(u32, u32)>) {
    out.clear();
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of every x86_64; the loads stay within `line`
        unsafe { split_sse2(line, out) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    split_bytewise(line, out);
}

/// The byte loop (the split's reference, and what other targets run).
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn split_bytewise(line: &[u8], out: &mut Vec<(u32, u32)>) {
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            break;
        }
        let start = i;
        while i < line.len() && !line[i].is_ascii_whitespace() {
            i += 1;
        }
        out.push((start as u32, i as u32));
    }
}

/// Sixteen bytes at a time into a bit per white-space byte (the five of `is_ascii_whitespace`),
/// 64 to a word; a token starts at a word byte after white space (or the line's start) and ends
/// at white space after a word byte, so both are read off the bits with a shift, and the tokens
/// come out pairing starts with ends (two bit scans a token, no branch per byte). The last bytes
/// are read from a copy padded with spaces: a token at the line's end ends there.
#[cfg(target_arch = "x86_64")]
unsafe fn split_sse2(line: &[u8], out: &mut Vec<(u32, u32)>) {
    use std::arch::x86_64::*;
    #[inline(always)]
    unsafe fn white(p: *const u8) -> u64 {
        let mut w = 0u64;
        for k in 0..4 {
            let x = _mm_loadu_si128(p.add(16 * k) as *const __m128i);
            let eq = |b: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(b as i8));
            let ws = _mm_or_si128(_mm_or_si128(eq(b' '), eq(b'\t')), _mm_or_si128(_mm_or_si128(eq(b'\n'), eq(0x0c)), eq(b'\r')));
            w |= (_mm_movemask_epi8(ws) as u32 as u64) << (16 * k);
        }
        w
    }
    let n = line.len();
    let mut open: Option<u32> = None;
    // 1 when the byte before the block is a word byte
    let mut word_before = 0u64;
    let mut base = 0;
    while base < n {
        let ws = if base + 64 <= n {
            white(line.as_ptr().add(base))
        } else {
            let mut tail = [b' '; 64];
            tail[..n - base].copy_from_slice(&line[base..]);
            white(tail.as_ptr())
        };
        let words = !ws;
        let after_word = (words << 1) | word_before;
        let (mut starts, mut ends) = (words & !after_word, ws & after_word);
        word_before = words >> 63;
        if let Some(start) = open {
            if ends == 0 {
                base += 64;
                continue; // the token goes on through the block
            }
            out.push((start, (base + ends.trailing_zeros() as usize) as u32));
            ends &= ends - 1;
            open = None;
        }
        while starts != 0 {
            let start = (base + starts.trailing_zeros() as usize) as u32;
            starts &= starts - 1;
            if ends == 0 {
                open = Some(start);
                break;
            }
            out.push((start, (base + ends.trailing_zeros() as usize) as u32));
            ends &= ends - 1;
        }
        base += 64;
    }
    if let Some(start) = open {
        out.push((start, n as u32));
    }
}

/// Whether a masked part may be abstracted: id characters only (letters, digits, `-`, `_`, `.`,
/// `/` of `namespace/pod`; no bracket, quote, `=` or colon a token rule could read), and not a
/// word that header and token rules read by its letters. Runs on every word-key hit: one pass
/// over the bytes, then the words compared lower-cased in a small buffer.
pub fn maskable(part: &[u8]) -> bool {
    // a class bit per byte, or'ed over the part: no branch per byte
    const LETTER: u8 = 1;
    const OTHER: u8 = 2;
    static CLASS: [u8; 256] = {
        let mut t = [OTHER; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            if c.is_ascii_alphabetic() {
                t[b] = LETTER;
            } else if c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.' | b'/') {
                t[b] = 0;
            }
            b += 1;
        }
        t
    };
    let seen = part.iter().fold(0u8, |acc, &b| acc | CLASS[b as usize]);
    if seen != LETTER {
        return false; // empty, or digits only: the digit key sees these already
    }
    // lower-cased into a small buffer (no word compared here is longer than 9 bytes)
    let lower = |w: &[u8]| -> ([u8; 12], usize) {
        let mut buf = [0u8; 12];
        let n = w.len().min(12);
        for (d, s) in buf.iter_mut().zip(&w[..n]) {
            *d = s.to_ascii_lowercase();
        }
        (buf, n)
    };
    let is = |w: &[u8], words: fn(&[u8]) -> bool| {
        let (buf, n) = lower(w);
        words(&buf[..n])
    };
    if part.split(|&b| b == b'/').any(|seg| seg.len() <= 5 && is(seg, |w| matches!(w, b"http" | b"https"))) {
        return false; // `HTTP/1.1` marks a status
    }
    let start = part.iter().position(u8::is_ascii_alphanumeric).unwrap_or(0);
    let end = part.iter().rposition(u8::is_ascii_alphanumeric).map_or(start, |e| e + 1);
    let w = &part[start..end];
    // a level letter (`E`, `W`) or word, as `Level::parse` reads `w` (which starts and ends
    // alphanumeric, so its trimming takes nothing), and the words read by their letters
    if w.len() <= 11 {
        let (buf, n) = lower(w);
        let level = match w.len() {
            1 => Level::of_letter(w[0]).is_some(),
            _ => w[0].is_ascii_alphabetic() && Level::of_lowercase(&buf[..n]).is_some(),
        };
        if level || (w.len() <= 9 && read_by_letters(&buf[..n])) {
            return false;
        }
    }
    let ends = |suffix: &[u8]| w.len() >= suffix.len() && w[w.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
    !(ends(b"exception") || ends(b"error") || ends(b"warning"))
}

/// Words (lower case) that header and token rules read by their letters: literals, months and
/// weekdays, the markers of a panic or a database error's parts.
fn read_by_letters(lower: &[u8]) -> bool {
    matches!(
        lower,
        b"true" | b"false" | b"null" | b"jan" | b"feb" | b"mar" | b"apr" | b"may" | b"jun" | b"jul" | b"aug" | b"sep" | b"oct" | b"nov" | b"dec"
            | b"mon" | b"tue" | b"wed" | b"thu" | b"fri" | b"sat" | b"sun" | b"panic" | b"log" | b"detail" | b"hint" | b"statement" | b"context"
            | b"location" | b"query" | b"http" | b"january" | b"february" | b"march" | b"april" | b"june" | b"july" | b"august" | b"september"
            | b"october" | b"november" | b"december" | b"monday" | b"tuesday" | b"wednesday" | b"thursday" | b"friday" | b"saturday" | b"sunday"
            | b"sept"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector split against the byte loop on every loghub and realworld line, and on
    /// random bytes rich in white space of every kind (`\x0b` is not white space here).
    #[test]
    fn the_vector_split_is_the_byte_loop() {
        let mut lines = crate::detect::sample_lines(3000);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..200 {
            for _ in 0..20 {
                let line: Vec<u8> = (0..len)
                    .map(|_| [b' ', b'\t', b'\n', 0x0b, 0x0c, b'\r', b'a', b'Z', 0x80, 0xff, 0][(crate::detect::xorshift(&mut seed) % 11) as usize])
                    .collect();
                lines.push(line);
            }
        }
        assert!(lines.len() > 10_000, "{} lines", lines.len());
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        for line in &lines {
            tokens(line, &mut fast);
            slow.clear();
            split_bytewise(line, &mut slow);
            assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(line));
        }
    }

    /// The one-pass `maskable` against the rules read one by one, on every token (and every
    /// `/`, `=` and `:` piece of one) of the sample lines, and on the words it must refuse.
    #[test]
    fn maskable_is_its_rules_read_one_by_one() {
        fn by_rules(part: &[u8]) -> bool {
            if part.is_empty() || !part.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/')) {
                return false;
            }
            if part.split(|&b| b == b'/').any(|seg| seg.eq_ignore_ascii_case(b"http") || seg.eq_ignore_ascii_case(b"https")) {
                return false;
            }
            if !part.iter().any(u8::is_ascii_alphabetic) {
                return false;
            }
            let w = std::str::from_utf8(part).unwrap().trim_matches(|c: char| !c.is_ascii_alphanumeric());
            const WORDS: [&str; 50] = [
                "true", "false", "null", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", "mon", "tue", "wed",
                "thu", "fri", "sat", "sun", "panic", "log", "detail", "hint", "statement", "context", "location", "query", "http", "january",
                "february", "march", "april", "june", "july", "august", "september", "october", "november", "december", "monday", "tuesday",
                "wednesday", "thursday", "friday", "saturday", "sunday", "sept",
            ];
            let lw = w.to_ascii_lowercase();
            !(Level::parse(w, true).is_some() || WORDS.contains(&lw.as_str()) || lw.ends_with("exception") || lw.ends_with("error") || lw.ends_with("warning"))
        }
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for line in crate::detect::sample_lines(500) {
            for tok in line.split(u8::is_ascii_whitespace) {
                parts.push(tok.to_vec());
                parts.extend(tok.split(|&b| matches!(b, b'=' | b':')).map(<[u8]>::to_vec));
            }
        }
        for w in ["E", "w", "Error", "IOException", "Sept", "HTTPS", "x/Http/y", "-true-", "a.b", "WARNING", "nov.", "abc_def-1", "12-34", "é", "I", "A", "a", "V.", "-D-", "1E", "TRC", "Notice", "emergency", "information", "informations", "2warn", "warn2", "crit-1", "x/err", "/fatal/"] {
            parts.push(w.as_bytes().to_vec());
        }
        let refused = parts.iter().filter(|p| !by_rules(p)).count();
        for p in &parts {
            assert_eq!(maskable(p), by_rules(p), "{:?}", String::from_utf8_lossy(p));
        }
        assert!(refused > 1000 && refused < parts.len() - 1000, "{refused} of {} refused", parts.len());
    }

    fn masked(mask: &WordMask, line: &str) -> Option<u64> {
        let mut t = Vec::new();
        tokens(line.as_bytes(), &mut t);
        mask.key(&mut line.as_bytes().to_vec(), &t)
    }

    #[test]
    fn masked_words_count_by_case_and_length_the_rest_byte_for_byte() {
        let mut m = WordMask::new(5).unwrap();
        assert!(m.push(4, 4, 0));
        let a = masked(&m, "INFO api request done req=kqzvbt");
        assert!(a.is_some());
        assert_eq!(a, masked(&m, "INFO api request done req=abcdef"));
        assert_eq!(masked(&m, "INFO api request done req=x1b2c3"), masked(&m, "INFO api request done req=q9z0y7"), "digits count as digits");
        assert_ne!(a, masked(&m, "INFO api request done req=x1b2c3"));
        assert_ne!(a, masked(&m, "INFO api request done req=ABCDEF"), "case is kept");
        assert_ne!(a, masked(&m, "INFO api request done req=abcdefg"), "length is kept");
        assert_ne!(a, masked(&m, "INFO api request done pid=abcdef"), "the kept prefix is keyed");
        assert_ne!(a, masked(&m, "INFO api request made req=abcdef"), "other words are keyed");
        assert_eq!(masked(&m, "INFO api request done now req=abcdef"), None, "another token count");
        assert_eq!(masked(&m, "INFO api request done req=ERROR"), None, "a level word is not abstracted");
        assert_eq!(masked(&m, "INFO api request done req=Nov"), None);
        assert_eq!(masked(&m, "INFO api request done req=a:b"), None, "a colon is read by the shape rules");
        assert_eq!(masked(&m, "INFO api request done req=HTTP/1.1"), None);
        assert_eq!(masked(&m, "INFO api request done req=abc/de"), masked(&m, "INFO api request done req=xyz/uv"), "slashes are kept");
        assert_ne!(masked(&m, "INFO api request done req=abc/de"), masked(&m, "INFO api request done req=abcdef"));
        assert_eq!(masked(&m, "INFO api request done req=12345"), None, "digits only: the digit key's");
    }

    #[test]
    fn a_mask_takes_at_most_its_positions_inside_the_line() {
        let mut m = WordMask::new(3).unwrap();
        assert!(!m.push(3, 0, 0));
        for i in 0..MAX_MASKED {
            assert!(m.push(i % 3, 0, 0));
        }
        assert!(!m.push(0, 0, 0));
        let mut t = Vec::new();
        tokens(b"  a\tbb  ccc ", &mut t);
        assert_eq!(t, [(2, 3), (4, 6), (8, 11)]);
    }
}
