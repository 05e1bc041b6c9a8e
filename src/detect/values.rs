//! Value baselines: what the values at each template position looked like when normal traffic
//! was learned.
//!
//! A template says which words vary; this module says what they varied *between*, in the spirit
//! of logdata-anomaly-miner's value detectors. Per template position it keeps a bounded sketch:
//! the value shapes seen (digits abstracted, as the line cache sees lines) with their counts, the
//! character classes met (quotes, `../`, `()`, `;`, `$(`, `%27`, …), the longest value and, for
//! URL paths, their first segments. After a baseline, a value unlike all of it is a finding.
//!
//! "New value" is judged only where the baseline's values were stable: a position that kept
//! meeting new values (an id, a counter, a size) stays silent. Good–Turing says how stable: the
//! share of observations whose value was seen once estimates how often the next value is new.
//! Memory is bounded per position (a fixed number of fingerprints) and in all (`MAX_POSITIONS`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::detect::template::{Miner, Template, TemplateId};
use crate::detect::token::Token;

/// Distinct value shapes kept per position; a position meeting more is an id: no "new value".
const MAX_VALUES: usize = 64;
/// Distinct first path segments kept per position.
const MAX_SEGMENTS: usize = 64;
/// Values a position must have met before anything about its values is judged.
const MIN_SEEN: u64 = 100;
/// "New" is judged where at most one observation in this many had a value seen only once.
const STABLE: u64 = 5000;
/// Positions kept in all: the memory bound (a position is under a kilobyte).
const MAX_POSITIONS: usize = 1 << 15;
/// A position's values are counted in windows of this many; a share is judged over the last two.
const WINDOW: u16 = 100;
/// Fields of one template's structured records with a baseline, at most.
const MAX_FIELDS: usize = 32;
/// Positions of one template whose shares are watched (the first ones of its line).
const MAX_WATCHED: usize = 2;

/// Character classes a value can contain, as bits.
pub mod class {
    pub const QUOTE: u16 = 1;
    pub const DOT_DOT: u16 = 2;
    pub const PARENS: u16 = 4;
    pub const SEMICOLON: u16 = 8;
    pub const SUBSTITUTION: u16 = 16;
    pub const ENCODED_META: u16 = 32;
    pub const ANGLE: u16 = 64;
    pub const PIPE: u16 = 128;
    pub const BRACES: u16 = 256;
    pub const BACKSLASH: u16 = 512;
    pub const CONTROL: u16 = 1024;

    pub const NAMES: [(u16, &str); 11] = [
        (QUOTE, "quote"),
        (DOT_DOT, "../"),
        (PARENS, "()"),
        (SEMICOLON, ";"),
        (SUBSTITUTION, "$( or `"),
        (ENCODED_META, "encoded quote or bracket (%27, %22, %3C)"),
        (ANGLE, "<>"),
        (PIPE, "|"),
        (BRACES, "{}"),
        (BACKSLASH, "backslash"),
        (CONTROL, "control characters"),
    ];
}

/// What one position's values looked like. Fields a file lacks (an older version) start empty.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct Position {
    /// How a reason names the position (`path`, `user`, `token 4`).
    pub name: String,
    /// Values met.
    pub seen: u64,
    /// (fingerprint, count) of each distinct value shape…
    values: Vec<(u32, u32)>,
    /// …how many of them were met once…
    singles: u32,
    /// …and whether more came than fit (an id or a counter: no "new value").
    wide: bool,
    /// The same for the values as written (digits and all): a position whose digits keep
    /// changing (`u1`, `u2`, …) is an id even when its shape is one.
    raw: Vec<(u32, u32)>,
    raw_singles: u32,
    raw_wide: bool,
    classes: u16,
    longest: u16,
    /// Values that were URL paths, and their first segments (like `values`).
    paths: u64,
    segments: Vec<(u32, u32)>,
    segment_singles: u32,
    segments_wide: bool,
    /// How much of its values one value took.
    share: Share,
}

/// How much of a position's values one value took (a client making most requests): over two
/// windows of [`WINDOW`] values, counted by a bounded heavy-hitter sketch. The value is read as
/// the whitespace field of the raw line that holds it, so that a line the engine's line cache
/// takes (no tokens) counts the same as one that was read through.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct Share {
    /// Which field of the line the value is (`None`: not yet seen)…
    field: Option<u8>,
    /// …or that it is not followed: not a whole field, or not always the same one, a clock or a
    /// count, or a field where one value took more than a quarter (it can never be watched).
    ignored: bool,
    /// The most values one value took in two windows of the baseline, and the windows counted.
    most: u16,
    windows: u32,
    /// Made when the first value is counted (most positions never are: a position stays small).
    #[serde(skip)]
    live: Option<Box<Heavy>>,
}

/// Values kept per window (Misra–Gries: a value that took more than 1/9 of a window is kept).
const HEAVY: usize = 8;

/// The live windows, the previous one and the current one: per value kept, its count in each.
#[derive(Clone, Debug, Default, PartialEq)]
struct Heavy {
    slots: [Slot; HEAVY],
    counted: u16,
    /// A share jump was found in the current window (it is not learned).
    jumped: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Slot {
    key: u32,
    previous: u16,
    current: u16,
}

impl Heavy {
    /// Counts `key`; returns its count over both windows.
    fn add(&mut self, key: u32) -> u16 {
        self.counted += 1;
        // room: a slot not counted in this window, the one that took least of the previous
        let (mut free, mut least) = (None, u16::MAX);
        for (i, e) in self.slots.iter_mut().enumerate() {
            if e.key == key && (e.current > 0 || e.previous > 0) {
                e.current += 1;
                return e.current + e.previous;
            }
            if e.current == 0 && e.previous < least {
                (free, least) = (Some(i), e.previous);
            }
        }
        match free {
            Some(i) => {
                self.slots[i] = Slot { key, previous: 0, current: 1 };
                1
            }
            None => {
                // Misra–Gries: a value that finds no room takes one off every current count
                for e in self.slots.iter_mut() {
                    e.current = e.current.saturating_sub(1);
                }
                0
            }
        }
    }

    /// The most any value took over both windows.
    fn top(&self) -> u16 {
        self.slots.iter().map(|e| e.current + e.previous).max().unwrap_or(0)
    }

    fn turn(&mut self) {
        for e in self.slots.iter_mut() {
            e.previous = e.current;
            e.current = 0;
        }
        self.counted = 0;
        self.jumped = false;
    }
}

impl Share {
    /// Watched: always one whole field, and no value ever took more than a quarter of two
    /// windows of the baseline (a position with a usual value, a method or a status, is not).
    fn watched(&self) -> bool {
        self.windows >= 3 && !self.ignored && self.field.is_some() && self.below_a_quarter()
    }

    fn below_a_quarter(&self) -> bool {
        self.most as u32 * 4 <= 2 * WINDOW as u32
    }

    /// The count over two windows that is a jump: double the baseline's most, and a half window more.
    fn bar(&self) -> u16 {
        (2 * self.most).max(self.most + WINDOW / 2)
    }

    /// The share of field `f` before a message: watched only while every value learned was
    /// [`who_like`].
    fn header(f: u8) -> Share {
        Share { field: Some(f), ..Share::default() }
    }

    /// Notes the field the value was found in (`None`: not a whole field).
    fn place(&mut self, field: Option<u8>) {
        match (field, self.field) {
            (None, _) => self.ignored = true,
            (Some(f), None) => self.field = Some(f),
            (Some(f), Some(g)) if f != g => self.ignored = true,
            _ => {}
        }
    }

    /// Counts one value (`key`, its field's fingerprint): judged when `judge`, learned when
    /// `learn`. Returns its count over both windows and how many values those hold, when that is
    /// a jump.
    fn observe(&mut self, key: u32, judge: bool, learn: bool) -> Option<(u16, u16)> {
        let watched = self.watched();
        let bar = self.bar();
        let live = self.live.get_or_insert_with(Box::default);
        let count = live.add(key);
        let span = WINDOW + live.counted;
        let jump = judge && watched && count >= bar;
        live.jumped |= jump;
        if live.counted >= WINDOW {
            if learn && !live.jumped {
                self.most = self.most.max(live.top());
                self.windows = self.windows.saturating_add(1);
            }
            live.turn();
        }
        jump.then_some((count, span))
    }
}

/// Fields before a message that have a share: the first few.
const MAX_HEADER_FIELDS: u8 = 8;

/// Whether a field before a message names who or where (an address, a host, a node, a user)
/// rather than when or how much: an IP address, or a word with a letter and no clock (`10:00:01`).
fn who_like(b: &[u8]) -> bool {
    let b = trim_wrappers(b);
    let clock = b.windows(3).any(|w| w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit());
    if clock {
        return false;
    }
    let parts = b.split(|&c| c == b'.').count();
    let ipv4 = parts == 4 && b.iter().all(|c| c.is_ascii_digit() || *c == b'.');
    let ipv6 = b.iter().filter(|&&c| c == b':').count() >= 2 && b.iter().all(|c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.'));
    ipv4 || ipv6 || b.iter().any(u8::is_ascii_alphabetic)
}

fn trim_wrappers(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !matches!(c, b'"' | b'\'' | b'[' | b'(')).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !matches!(c, b'"' | b'\'' | b']' | b')' | b',' | b':')).map_or(s, |e| e + 1);
    &b[s..e.max(s)]
}

/// The fingerprint of a field's bytes, as written.
fn field_key(b: &[u8]) -> u32 {
    let mut h = 0x4646_4646u64;
    for chunk in b.chunks(8) {
        let mut w = 0u64;
        for &c in chunk {
            w = (w << 8) | c as u64;
        }
        h = fold(h, w);
    }
    h = fold(h, b.len() as u64);
    (h ^ (h >> 32)) as u32
}

/// Walks the whitespace fields of a raw line forwards: which field starts where.
struct Fields<'a> {
    line: &'a [u8],
    /// Where the fields not yet walked begin (the end of the last one walked).
    at: usize,
    /// Fields walked.
    begun: usize,
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl<'a> Fields<'a> {
    fn new(line: &'a [u8]) -> Self {
        Fields { line, at: 0, begun: 0 }
    }

    /// Where the next field starts.
    fn next_start(&self) -> Option<usize> {
        let skip = self.line[self.at..].iter().position(|&b| !is_space(b))?;
        Some(self.at + skip)
    }

    /// The next field, walked.
    fn next(&mut self) -> Option<&'a [u8]> {
        let line = self.line;
        let start = self.next_start()?;
        let end = memchr::memchr2(b' ', b'\t', &line[start..]).map_or(line.len(), |e| start + e);
        self.at = end;
        self.begun += 1;
        Some(&line[start..end])
    }

    /// The field index and bytes of a value starting at `o` (or just inside a quote or bracket
    /// that starts a field), when that is where a field starts; `o` must not go backwards.
    fn at_value(&mut self, o: usize) -> Option<(u8, &'a [u8])> {
        let line = self.line;
        let start = if o > 0 && o <= line.len() && matches!(line[o - 1], b'"' | b'\'' | b'[' | b'(') { o - 1 } else { o };
        loop {
            let next = self.next_start()?;
            if next > start {
                return None;
            }
            let index = self.begun;
            let field = self.next()?;
            if next == start {
                return (index < u8::MAX as usize).then_some((index as u8, field));
            }
            if self.at > start {
                return None;
            }
        }
    }

    /// The bytes of field `f` (at or after the fields walked so far).
    fn field(&mut self, f: u8) -> Option<&'a [u8]> {
        while self.begun < f as usize {
            self.next()?;
        }
        if self.begun > f as usize {
            return None;
        }
        self.next()
    }
}

/// What was found unlike the baseline in one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    NewValue,
    NewClasses(u16),
    NewSegment,
    TooLong { len: u16, longest: u16 },
    /// One value took `count` of the last `span` values (the baseline: at most `most`).
    ShareJump { count: u16, span: u16, most: u16 },
}

/// A value finding: what, where, which value, against how many learned values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finding {
    pub what: What,
    pub position: Snippet<16>,
    pub value: Snippet<56>,
    pub seen: u64,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (pos, value, seen) = (&self.position, &self.value, crate::detect::score::Thousands(self.seen));
        match self.what {
            What::NewValue => write!(f, "new value in {pos}: {value} (never seen in {seen} values of this template)"),
            What::NewClasses(bits) => {
                write!(f, "new characters in {pos}: ")?;
                let mut first = true;
                for (bit, name) in class::NAMES {
                    if bits & bit != 0 {
                        f.write_str(if first { "" } else { ", " })?;
                        f.write_str(name)?;
                        first = false;
                    }
                }
                write!(f, " in {value} (never there in {seen} values of this template)")
            }
            What::NewSegment => write!(f, "new first path segment in {pos}: {value} (never seen in {seen} paths of this template)"),
            What::TooLong { len, longest } => {
                write!(f, "value far longer than learned in {pos}: {len} characters, at most {longest} in {seen} values: {value}")
            }
            What::ShareJump { count, span, most } => {
                write!(f, "share jump in {pos}: {value} took {count} of the last {span} values (no value took more than {most} of {} in {seen} values of this template)", 2 * WINDOW)
            }
        }
    }
}

/// A short piece of text held inline (a verdict is `Copy`): cut at a character boundary, with
/// control characters shown as `?`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Snippet<const N: usize> {
    bytes: [u8; N],
    len: u8,
    cut: bool,
}

impl<const N: usize> Snippet<N> {
    pub fn new(s: &str) -> Self {
        let mut bytes = [0u8; N];
        let mut len = 0;
        for (i, c) in s.char_indices() {
            let c = if c.is_control() { '?' } else { c };
            if i >= N || len + c.len_utf8() > N {
                return Snippet { bytes, len: len as u8, cut: true };
            }
            len += c.encode_utf8(&mut bytes[len..]).len();
        }
        Snippet { bytes, len: len as u8, cut: false }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl<const N: usize> fmt::Display for Snippet<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for Snippet<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// One pass over a value: its shape's fingerprint and length, classes, first path segment.
struct Look {
    fingerprint: u32,
    raw: u32,
    len: u16,
    classes: u16,
    segment: Option<u32>,
}

/// Byte kinds for the one pass: 0 plain, 1 digit, 2 worth a closer look.
static KIND: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            1
        } else if c < 0x20 || c == 0x7f || matches!(c, b'\'' | b'"' | b'.' | b'(' | b')' | b';' | b'$' | b'`' | b'%' | b'<' | b'>' | b'|' | b'{' | b'}' | b'\\' | b'/' | b'?') {
            2
        } else {
            0
        };
        b += 1;
    }
    t
};

fn fold(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `SHAPE`: the fingerprint of the value's shape (judging needs it only where the baseline's
/// values were stable); `RAW`: also that of the value as written (only learning needs it).
fn look<const SHAPE: bool, const RAW: bool>(v: &[u8]) -> Look {
    let (mut h, mut word, mut in_word) = (0x5151_5151u64, 0u64, 0u32);
    let (mut raw, mut raw_word) = (0x7272_7272u64, 0u64);
    let (mut len, mut classes) = (0u16, 0u16);
    let mut segment_end = None;
    let is_path = v.first() == Some(&b'/');
    let mut prev_digit = false;
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        let kind = KIND[b as usize];
        if RAW {
            raw_word = (raw_word << 8) | b as u64;
            if i % 8 == 7 {
                raw = fold(raw, raw_word);
            }
        }
        let emit = if kind == 1 {
            if prev_digit {
                i += 1;
                continue;
            }
            prev_digit = true;
            b'0'
        } else {
            prev_digit = false;
            if kind == 2 {
                classes |= class_of(v, i);
                if is_path && i > 0 && segment_end.is_none() && (b == b'/' || b == b'?') {
                    segment_end = Some(i);
                }
            }
            b
        };
        len = len.saturating_add(1);
        if SHAPE {
            word = (word << 8) | emit as u64;
            in_word += 1;
            if in_word == 8 {
                h = fold(h, word);
                word = 0;
                in_word = 0;
            }
        }
        i += 1;
    }
    let fingerprint = if SHAPE {
        h = fold(fold(h, word), len as u64);
        (h ^ (h >> 32)) as u32
    } else {
        0
    };
    let segment = is_path.then(|| {
        let end = segment_end.unwrap_or(v.len());
        segment_fingerprint(&v[..end])
    });
    let raw = if RAW {
        let raw = fold(fold(raw, raw_word), v.len() as u64);
        (raw ^ (raw >> 32)) as u32
    } else {
        0
    };
    Look { fingerprint, raw, len, classes, segment }
}

fn segment_fingerprint(s: &[u8]) -> u32 {
    let mut h = 0x2f2f_2f2fu64;
    for chunk in s.chunks(8) {
        let mut w = 0u64;
        for &b in chunk {
            w = (w << 8) | b.to_ascii_lowercase() as u64;
        }
        h = fold(h, w);
    }
    (h ^ (h >> 32)) as u32
}

/// The class of the byte at `i` (one of the bytes `KIND` marks 2).
fn class_of(v: &[u8], i: usize) -> u16 {
    use class::*;
    let next = |k: usize| v.get(i + k).copied().unwrap_or(0);
    match v[i] {
        b'\'' | b'"' => QUOTE,
        b'(' | b')' => PARENS,
        b';' => SEMICOLON,
        b'`' => SUBSTITUTION,
        b'$' if matches!(next(1), b'(' | b'{') => SUBSTITUTION,
        b'<' | b'>' => ANGLE,
        b'|' => PIPE,
        b'{' | b'}' => BRACES,
        b'\\' => BACKSLASH,
        b'.' if next(1) == b'.' && matches!(next(2), b'/' | b'\\') => DOT_DOT,
        b'%' => match (hex(next(1)), hex(next(2))) {
            // %22 " %27 ' %3C < %3E > %60 ` %00, and an encoded dot pair (%2e%2e)
            (Some(2), Some(2 | 7)) | (Some(3), Some(12 | 14)) | (Some(6), Some(0)) | (Some(0), Some(0)) => ENCODED_META,
            (Some(2), Some(14)) if next(3) == b'%' && next(4) == b'2' && matches!(next(5), b'e' | b'E') => DOT_DOT,
            _ => 0,
        },
        b if b < 0x20 || b == 0x7f => CONTROL,
        _ => 0,
    }
}

/// Adds one sighting of `fp` to a bounded (fingerprint, count) list; false when it is full.
fn count_in(list: &mut Vec<(u32, u32)>, singles: &mut u32, fp: u32, cap: usize) -> bool {
    if let Some(e) = list.iter_mut().find(|e| e.0 == fp) {
        if e.1 == 1 {
            *singles -= 1;
        }
        e.1 = e.1.saturating_add(1);
        return true;
    }
    if list.len() >= cap {
        return false;
    }
    list.push((fp, 1));
    *singles += 1;
    true
}

fn known(list: &[(u32, u32)], fp: u32) -> bool {
    list.iter().any(|e| e.0 == fp)
}

/// The list of template `id` in a per-template table, the table grown to hold it.
fn grown<T>(lists: &mut Vec<Vec<T>>, id: usize) -> &mut Vec<T> {
    if lists.len() <= id {
        lists.resize_with(id + 1, Vec::new);
    }
    &mut lists[id]
}

/// Good–Turing: the chance that the next value is new is small enough to call one new.
fn stable(seen: u64, singles: u32) -> bool {
    seen >= MIN_SEEN && singles as u64 * STABLE <= seen
}

impl Position {
    /// Whether a saved position keeps to the sketches' bounds (a file past them is not ours).
    fn within_bounds(&self) -> bool {
        self.values.len() <= MAX_VALUES && self.raw.len() <= MAX_VALUES && self.segments.len() <= MAX_SEGMENTS
    }

    /// Whether the baseline's values were stable enough here that a new one means something.
    fn steady(&self) -> bool {
        !self.wide && !self.raw_wide && stable(self.seen, self.singles) && stable(self.seen, self.raw_singles)
    }

    fn judge(&self, l: &Look) -> Option<What> {
        if self.seen < MIN_SEEN {
            return None;
        }
        let new_classes = l.classes & !self.classes;
        if new_classes != 0 {
            return Some(What::NewClasses(new_classes));
        }
        if let Some(seg) = l.segment {
            if !self.segments_wide && stable(self.paths, self.segment_singles) && !known(&self.segments, seg) {
                return Some(What::NewSegment);
            }
        }
        if self.steady() && !known(&self.values, l.fingerprint) {
            return Some(What::NewValue);
        }
        let longest = self.longest as u32;
        if l.len as u32 > (2 * longest).max(longest + 32) {
            return Some(What::TooLong { len: l.len, longest: self.longest });
        }
        None
    }

    fn learn(&mut self, l: &Look) {
        self.seen += 1;
        if !self.wide && !count_in(&mut self.values, &mut self.singles, l.fingerprint, MAX_VALUES) {
            self.wide = true;
            self.values = Vec::new();
        }
        if !self.raw_wide && !count_in(&mut self.raw, &mut self.raw_singles, l.raw, MAX_VALUES) {
            self.raw_wide = true;
            self.raw = Vec::new();
        }
        self.classes |= l.classes;
        self.longest = self.longest.max(l.len);
        if let Some(seg) = l.segment {
            self.paths += 1;
            if !self.segments_wide && !count_in(&mut self.segments, &mut self.segment_singles, seg, MAX_SEGMENTS) {
                self.segments_wide = true;
                self.segments = Vec::new();
            }
        }
    }
}

/// What [`Values::visit`] does with a message's values.
#[derive(Clone, Copy, Debug)]
pub struct Visit {
    /// Judge them against the baseline.
    pub judge: bool,
    /// Learn them.
    pub learn: bool,
    /// The message just widened its template, which had this many records (see `visit`).
    pub generalised: Option<u64>,
}

/// The value baselines of all templates.
#[derive(Default)]
pub struct Values {
    /// Per template id, its positions with a baseline, sorted by token position.
    by_template: Vec<Vec<(u16, Position)>>,
    positions: usize,
    /// Per template id, the shares of the fields of the line before its message (a client
    /// address, a host), sorted by field.
    headers: Vec<Vec<Share>>,
    /// Per template id, whether a frozen engine watches any of its shares: 0 not known yet
    /// (learning clears it), 1 none, 2 some.
    watching: Vec<u8>,
    /// Per template id, the fields of its structured records (logfmt `path=`, `user=`), by
    /// name, in the order first met: each judged as a template position is.
    fields: Vec<Vec<Position>>,
}

/// The saved form: (template, token position, what its values looked like), and the shares of
/// the fields before each template's message (a version without them reads with none).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct Saved {
    pub positions: Vec<(TemplateId, u16, Position)>,
    pub headers: Vec<(TemplateId, Share)>,
    /// The fields of structured records (the position's name is the field's).
    pub fields: Vec<(TemplateId, Position)>,
}


const METHODS: [&str; 9] = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "PROPFIND"];

/// How a reason names position `pos` of `t`, holding `tok` of `msg`.
fn name_of(t: &Template, pos: usize, msg: &str, tok: &Token) -> String {
    let pre = if tok.is_var() { &msg[tok.start as usize..tok.var_start as usize] } else { "" };
    let key = pre.trim_start_matches(['"', '\'', '[', '(', '{', ',']);
    if let Some(k) = key.strip_suffix('=').or_else(|| key.strip_suffix(':')) {
        if !k.is_empty() && k.len() <= 15 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
            return k.to_string();
        }
    }
    if let Some(prev) = pos.checked_sub(1).and_then(|p| t.slot_text(p)) {
        if METHODS.contains(&prev.trim_start_matches(['"', '\''])) {
            return "path".into();
        }
        if let Some(k) = prev.strip_suffix('=').or_else(|| prev.strip_suffix(':')) {
            if !k.is_empty() && k.len() <= 15 && !k.contains("<*>") && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
                return k.to_string();
            }
        }
    }
    format!("token {}", pos + 1)
}

/// The raw line a message came from, and where the message starts in it.
pub type Line<'a> = (&'a [u8], usize);

/// The share counting of one message's positions: the first [`MAX_WATCHED`] that are always one
/// whole field of the line (the same ones [`Values::count_shares`] counts on a cached line).
struct Shares<'a> {
    fields: Option<(Fields<'a>, usize)>,
    tracked: usize,
}

impl<'a> Shares<'a> {
    fn new(line: Option<Line<'a>>) -> Self {
        Shares { fields: line.map(|(l, off)| (Fields::new(l), off)), tracked: 0 }
    }

    fn done(&self) -> bool {
        self.tracked >= MAX_WATCHED
    }

    /// Counts the fields of the line before the message; `create` makes their
    /// shares (the template's first learned line).
    /// `all`: every share not ignored, not only the watched ones (a line read through, learning).
    fn headers(&mut self, shares: &mut Vec<Share>, judge: bool, learn: bool, create: bool, all: bool) -> Option<Finding> {
        let (fields, off) = self.fields.as_mut()?;
        let off = *off;
        if create && learn && shares.is_empty() {
            let mut walk = Fields::new(fields.line);
            let mut f = 0u8;
            while f < MAX_HEADER_FIELDS && walk.next_start().is_some_and(|at| at < off) {
                shares.push(Share::header(f));
                let _ = walk.field(f);
                f += 1;
            }
        }
        let mut found = None;
        for share in shares.iter_mut() {
            if share.ignored || self.tracked >= MAX_WATCHED || !all && !share.watched() {
                continue;
            }
            let f = share.field.unwrap_or(u8::MAX);
            let Some(value) = fields.field(f).filter(|_| fields.at <= off) else { break };
            // looked at once a window: a field that is a clock or a count is one from its first value
            if learn && share.live.as_ref().is_none_or(|l| l.counted == 0) && !who_like(value) {
                share.ignored = true;
                continue;
            }
            self.tracked += 1;
            if let Some((count, span)) = share.observe(field_key(value), judge, learn) {
                found = found.or(Some(header_finding(share, count, span, value)));
            }
        }
        found
    }

    /// Counts the value at `s` of the message (in position `p`); a share jump when judged.
    fn count(&mut self, p: &mut Position, s: usize, judge: bool, learn: bool) -> Option<What> {
        // a frozen engine counts only what it judges
        if self.done() || p.share.ignored || !learn && !p.share.watched() {
            return None;
        }
        let Some((fields, off)) = self.fields.as_mut() else {
            // a message rewritten from its line: its values are not fields of the line
            p.share.ignored |= learn;
            return None;
        };
        let found = fields.at_value(*off + s);
        if learn {
            p.share.place(found.map(|f| f.0));
        }
        let (f, value) = found?;
        if p.seen < MIN_SEEN || p.share.ignored || p.share.field != Some(f) {
            return None;
        }
        self.tracked += 1;
        let (count, span) = p.share.observe(field_key(value), judge, learn)?;
        Some(What::ShareJump { count, span, most: p.share.most })
    }
}

fn header_finding(share: &Share, count: u16, span: u16, value: &[u8]) -> Finding {
    let name = format!("field {}", share.field.map_or(0, |f| f as u32 + 1));
    let text = String::from_utf8_lossy(trim_wrappers(value));
    Finding { what: What::ShareJump { count, span, most: share.most }, position: Snippet::new(&name), value: Snippet::new(&text), seen: share.windows as u64 * WINDOW as u64 }
}

/// Where the value at position `pos` of a message of `t` is: a variable's value, or a whole word
/// where the template has `<*>` (without the quotes around it, `"-"`, as a value's are).
fn span(t: &Template, pos: usize, tok: &Token, msg: &str) -> Option<(usize, usize)> {
    if tok.is_var() {
        return Some((tok.var_start as usize, tok.var_end as usize));
    }
    if !t.is_wild(pos) {
        return None;
    }
    let (s, e) = (tok.start as usize, tok.end as usize);
    let b = &msg.as_bytes()[s..e];
    if b.len() >= 2 && b[0] == b[b.len() - 1] && matches!(b[0], b'"' | b'\'') {
        Some((s + 1, e - 1))
    } else {
        Some((s, e))
    }
}

impl Values {
    /// Positions with a baseline.
    pub fn len(&self) -> usize {
        self.positions
    }

    pub fn is_empty(&self) -> bool {
        self.positions == 0
    }

    /// Whether position `pos` of template `id` is an id by its baseline: it met too many values
    /// to keep (so "new value" is never said there) and no path. A line cached with its word at
    /// such a position abstracted (see [`crate::detect::word_key`]) is judged the same as read
    /// through: length and characters stay as they were.
    pub fn is_id(&self, id: TemplateId, pos: usize) -> bool {
        self.get(id, pos).is_some_and(|p| p.seen >= MIN_SEEN && p.wide && p.raw_wide && p.paths == 0)
    }

    /// Whether any share of template `id` is watched (see [`Share::watched`]), remembered until
    /// the template is learned again.
    fn watching(&mut self, id: TemplateId) -> bool {
        let id = id as usize;
        if self.watching.len() <= id {
            self.watching.resize(id + 1, 0);
        }
        if self.watching[id] == 0 {
            let heads = self.headers.get(id).is_some_and(|hs| hs.iter().any(Share::watched));
            let positions = self.by_template.get(id).is_some_and(|ps| ps.iter().any(|(_, p)| p.seen >= MIN_SEEN && p.share.watched()));
            self.watching[id] = if heads || positions { 2 } else { 1 };
        }
        self.watching[id] == 2
    }

    fn get(&self, id: TemplateId, pos: usize) -> Option<&Position> {
        let list = self.by_template.get(id as usize)?;
        list.binary_search_by_key(&(pos as u16), |e| e.0).ok().map(|i| &list[i].1)
    }

    /// Reads the values of a message of template `t` (its tokens as the miner read them): judges
    /// them against what was learned when `judge`, learns them when `learn`. Returns the first
    /// finding. A value found unlike the baseline is not learned, except that its shape counts as
    /// seen (a new value is said once; new characters, a new segment or a far longer value are
    /// said each time, until the template is learned again or acknowledged).
    ///
    /// A finding stands only if no other template the message fits (see [`Miner::siblings`])
    /// learned that value at that position.
    ///
    /// `how.generalised`: the message just widened its template (a constant became `<*>`), which had
    /// this many records: the word it brought is a new value where the baseline had one.
    pub fn visit(&mut self, miner: &Miner, id: TemplateId, tokens: &[Token], msg: &str, line: Option<Line>, how: Visit) -> Option<Finding> {
        let t = miner.get(id)?;
        if tokens.len() != t.len() || !(how.judge || how.learn) {
            return None;
        }
        if !how.learn && how.generalised.is_none() {
            return self.judge_only(miner, id, tokens, msg, line);
        }
        let Visit { judge, learn, generalised } = how;
        if let Some(w) = self.watching.get_mut(id as usize) {
            *w = 0;
        }
        grown(&mut self.by_template, id as usize);
        let mut shares = Shares::new(line);
        let mut found = shares.headers(grown(&mut self.headers, id as usize), judge, learn, true, learn);
        // the template's positions are sorted as its tokens are: one cursor walks both
        let mut at = 0;
        for (pos, tok) in tokens.iter().enumerate() {
            let Some((s, e)) = span(t, pos, tok, msg) else { continue };
            let list = &mut self.by_template[id as usize];
            while at < list.len() && (list[at].0 as usize) < pos {
                at += 1;
            }
            if at == list.len() || list[at].0 as usize != pos {
                let widened = generalised.filter(|&seen| seen >= MIN_SEEN);
                if let (Some(seen), true, None) = (widened, judge, &found) {
                    // a word where the baseline had one constant: the template just widened
                    let name = name_of(t, pos, msg, tok);
                    found = Some(Finding { what: What::NewValue, position: Snippet::new(&name), value: Snippet::new(&msg[s..e]), seen });
                }
                if !learn || self.positions >= MAX_POSITIONS {
                    continue;
                }
                list.insert(at, (pos as u16, Position { name: name_of(t, pos, msg, tok), ..Position::default() }));
                self.positions += 1;
            }
            let value = &msg.as_bytes()[s..e];
            let l = if learn { look::<true, true>(value) } else { look::<true, false>(value) };
            let judged = if judge && found.is_none() { self.judge_at(miner, id, at, pos, tokens, msg, &l) } else { None };
            let p = &mut self.by_template[id as usize][at].1;
            let jump = shares.count(p, s, judge, learn);
            if let Some(what) = judged {
                found = Some(Self::finding(p, what, &msg[s..e]));
                if learn && what == What::NewValue {
                    p.learn(&l);
                }
            } else if learn {
                p.learn(&l);
            }
            if let (None, Some(what)) = (&found, jump) {
                found = Some(Self::finding(p, what, &msg[s..e]));
            }
        }
        found
    }

    /// [`Values::visit`] of a frozen engine: only the positions with a baseline are read, and a
    /// value's shape only where the baseline's values were stable.
    fn judge_only(&mut self, miner: &Miner, id: TemplateId, tokens: &[Token], msg: &str, line: Option<Line>) -> Option<Finding> {
        let t = miner.get(id)?;
        let mut shares = Shares::new(if self.watching(id) { line } else { None });
        let mut found = match self.headers.get_mut(id as usize) {
            Some(hs) => shares.headers(hs, true, false, false, false),
            None => None,
        };
        let n = self.by_template.get(id as usize)?.len();
        for at in 0..n {
            let (pos, p) = &self.by_template[id as usize][at];
            let pos = *pos as usize;
            if p.seen < MIN_SEEN {
                continue;
            }
            let Some(tok) = tokens.get(pos) else { continue };
            let Some((s, e)) = span(t, pos, tok, msg) else { continue };
            let p = &mut self.by_template[id as usize][at].1;
            if let (Some(what), None) = (shares.count(p, s, true, false), &found) {
                found = Some(Self::finding(p, what, &msg[s..e]));
            }
            if found.is_some() {
                if shares.done() {
                    break;
                }
                continue;
            }
            let p = &self.by_template[id as usize][at].1;
            let value = &msg.as_bytes()[s..e];
            let l = if p.steady() { look::<true, false>(value) } else { look::<false, false>(value) };
            if p.judge(&l).is_none() {
                continue;
            }
            // rare: the siblings' positions may need the shape
            let l = look::<true, false>(value);
            if let Some(what) = self.judge_at(miner, id, at, pos, tokens, msg, &l) {
                found = Some(Self::finding(&self.by_template[id as usize][at].1, what, &msg[s..e]));
            }
        }
        found
    }

    /// Reads the fields of a structured record of template `id` (name, value as written):
    /// judges each against what its field's values were when `judge`, learns them when
    /// `learn`, as [`Values::visit`] does a message's positions (a finding's value is not
    /// learned, but a new value's shape counts as seen). Returns the first finding.
    pub fn visit_fields<'a>(&mut self, id: TemplateId, fields: impl Iterator<Item = (&'a str, &'a [u8])>, judge: bool, learn: bool) -> Option<Finding> {
        if !(judge || learn) {
            return None;
        }
        let id = id as usize;
        if self.fields.len() <= id && !learn {
            return None;
        }
        grown(&mut self.fields, id);
        let mut found = None;
        for (name, value) in fields {
            let list = &mut self.fields[id];
            let at = match list.iter().position(|p| p.name == name) {
                Some(at) => at,
                None => {
                    if !learn || list.len() >= MAX_FIELDS || self.positions >= MAX_POSITIONS {
                        continue;
                    }
                    list.push(Position { name: name.to_string(), ..Position::default() });
                    self.positions += 1;
                    list.len() - 1
                }
            };
            let p = &mut list[at];
            let l = if learn { look::<true, true>(value) } else { look::<true, false>(value) };
            match (judge && found.is_none()).then(|| p.judge(&l)).flatten() {
                Some(what) => {
                    found = Some(Self::finding(p, what, &String::from_utf8_lossy(value)));
                    if learn && what == What::NewValue {
                        p.learn(&l);
                    }
                }
                None if learn => p.learn(&l),
                None => {}
            }
        }
        found
    }

    /// Counts the shares of a line the engine's line cache took (no tokens: its watched values
    /// are read as the fields of the line they were found in); judged when `judge`, learned when
    /// `learn`.
    pub fn count_shares(&mut self, id: TemplateId, line: &[u8], judge: bool, learn: bool) -> Option<Finding> {
        // only what is watched: a share becomes watched from lines read through (all of them
        // in `learn`); once it is, every line counts it, learning or not
        if !self.watching(id) {
            return None;
        }
        let mut shares = Shares::new(Some((line, usize::MAX)));
        let mut found = match self.headers.get_mut(id as usize) {
            Some(hs) => shares.headers(hs, judge, learn, false, false),
            None => None,
        };
        let list = self.by_template.get_mut(id as usize)?;
        let Some((fields, _)) = shares.fields.as_mut() else { return found };
        for (_, p) in list.iter_mut() {
            if shares.tracked >= MAX_WATCHED {
                break;
            }
            let Some(f) = p.share.field.filter(|_| p.seen >= MIN_SEEN && p.share.watched()) else { continue };
            shares.tracked += 1;
            let Some(value) = fields.field(f) else { break };
            if let Some((count, span)) = p.share.observe(field_key(value), judge, learn) {
                let text = String::from_utf8_lossy(trim_wrappers(value));
                found = found.or(Some(Self::finding(p, What::ShareJump { count, span, most: p.share.most }, &text)));
            }
        }
        found
    }

    /// What position `pos` (entry `at` of template `id`) finds in a value: a finding stands
    /// only if no other template the message fits (see [`Miner::siblings`]) learned that value.
    #[allow(clippy::too_many_arguments)]
    fn judge_at(&self, miner: &Miner, id: TemplateId, at: usize, pos: usize, tokens: &[Token], msg: &str, l: &Look) -> Option<What> {
        let what = self.by_template[id as usize][at].1.judge(l)?;
        let mut siblings = Vec::new();
        miner.siblings(id, msg, tokens, &mut siblings);
        let known_elsewhere = siblings.iter().any(|&u| {
            // a constant there: it fits, so it is this very word
            if miner.get(u).and_then(|o| o.slot_text(pos)).is_some_and(|c| !c.contains(crate::detect::token::WILDCARD)) {
                return true;
            }
            self.get(u, pos).is_some_and(|o| o.seen >= MIN_SEEN && o.judge(l).is_none())
        });
        (!known_elsewhere).then_some(what)
    }

    fn finding(p: &Position, what: What, value: &str) -> Finding {
        let seen = if what == What::NewSegment { p.paths } else { p.seen };
        Finding { what, position: Snippet::new(&p.name), value: Snippet::new(value), seen }
    }

    pub fn save(&self) -> Saved {
        let mut positions = Vec::with_capacity(self.positions);
        for (id, list) in self.by_template.iter().enumerate() {
            positions.extend(list.iter().map(|(pos, p)| (id as TemplateId, *pos, p.clone())));
        }
        let headers = self.headers.iter().enumerate().flat_map(|(id, hs)| hs.iter().map(move |h| (id as TemplateId, h.clone()))).collect();
        let fields = self.fields.iter().enumerate().flat_map(|(id, fs)| fs.iter().map(move |p| (id as TemplateId, p.clone()))).collect();
        Saved { positions, headers, fields }
    }

    /// Continues from a saved form; positions of templates the engine does not know (`known`
    /// false) are dropped, and so is what is past the bounds.
    pub fn restore(&mut self, saved: &Saved, known: impl Fn(TemplateId) -> bool) {
        self.by_template.clear();
        self.positions = 0;
        self.headers.clear();
        self.watching.clear();
        self.fields.clear();
        for (id, share) in &saved.headers {
            let id = *id as usize;
            if !known(id as TemplateId) || share.field.is_none() {
                continue;
            }
            let hs = grown(&mut self.headers, id);
            if hs.len() < MAX_HEADER_FIELDS as usize && hs.last().is_none_or(|l| l.field < share.field) {
                hs.push(share.clone());
            }
        }
        for (id, pos, p) in &saved.positions {
            if self.positions >= MAX_POSITIONS || !known(*id) || !p.within_bounds() {
                continue;
            }
            let list = grown(&mut self.by_template, *id as usize);
            if let Err(at) = list.binary_search_by_key(pos, |e| e.0) {
                list.insert(at, (*pos, p.clone()));
                self.positions += 1;
            }
        }
        // record fields after the template positions: under the bound, positions come first
        for (id, p) in &saved.fields {
            if self.positions >= MAX_POSITIONS || !known(*id) || !p.within_bounds() {
                continue;
            }
            let fs = grown(&mut self.fields, *id as usize);
            if fs.len() < MAX_FIELDS && fs.iter().all(|f| f.name != p.name) {
                fs.push(p.clone());
                self.positions += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_abstract_digits_and_classes_are_found() {
        let a = look::<true, true>(b"/item/123?page=2");
        let b = look::<true, true>(b"/item/98765?page=10");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.segment, look::<true, true>(b"/item").segment);
        assert_ne!(a.fingerprint, look::<true, true>(b"/items/1?page=2").fingerprint);
        assert_eq!(a.classes, 0);
        let c = |v: &str| look::<true, true>(v.as_bytes()).classes;
        assert_eq!(c("/a.php?id=1'"), class::QUOTE);
        assert_eq!(c("/../../etc/passwd"), class::DOT_DOT);
        assert_eq!(c("/x?q=%27%20OR%201=1"), class::ENCODED_META);
        assert_eq!(c("/cgi-bin/%2e%2e/%2e%2e/bin/sh"), class::DOT_DOT);
        assert_eq!(c("$(id)"), class::SUBSTITUTION | class::PARENS);
        assert_eq!(c("/a;b"), class::SEMICOLON);
        assert_eq!(c("/search?q=hello%20world"), 0);
        assert_eq!(look::<true, true>(b"/.git/config").segment, look::<true, true>(b"/.GIT").segment);
    }

    #[test]
    fn a_value_is_found_as_the_same_field_of_its_line_as_a_cached_line_reads_it() {
        let line = b"10.0.0.1 - -  [10/Dec/2016:10:00:01 +0000] \"GET /x?a=1 HTTP/1.1\" 200 5 \"-\"";
        let at = |needle: &[u8]| line.windows(needle.len()).position(|w| w == needle).unwrap();
        let mut walk = Fields::new(line);
        assert_eq!(walk.at_value(0), Some((0, &b"10.0.0.1"[..])));
        assert_eq!(walk.at_value(at(b"GET")), Some((5, &b"\"GET"[..])));
        assert_eq!(walk.at_value(at(b"a=1")), None, "not where a field starts");
        assert_eq!(walk.at_value(at(b"200")), Some((8, &b"200"[..])));
        assert_eq!(walk.at_value(at(b"-\"")), Some((10, &b"\"-\""[..])));
        let mut cached = Fields::new(line);
        assert_eq!(cached.field(0), Some(&b"10.0.0.1"[..]));
        assert_eq!(cached.field(5), Some(&b"\"GET"[..]));
        assert_eq!(cached.field(8), Some(&b"200"[..]));
        assert_eq!(cached.field(8), None, "fields are walked forwards");
        assert_eq!(cached.field(11), None);
        for (field, who) in [
            ("10.0.0.1", true),
            ("2001:db8::1", true),
            ("R02-M1-N0-C:J12-U11", true),
            ("sshd[4242]:", true),
            ("[10/Dec/2016:10:00:01", false),
            ("+0000]", false),
            ("-", false),
            ("2005.06.03", false),
            ("1117838570", false),
        ] {
            assert_eq!(who_like(field.as_bytes()), who, "{field}");
        }
    }

    #[test]
    fn a_share_jump_is_double_the_baselines_most_and_half_a_window_more() {
        let mut s = Share::header(0);
        // a baseline where no value took more than 10 of 200
        for i in 0..2_000u32 {
            assert_eq!(s.observe(i % 20, false, true), None);
        }
        // (the sketch counts from below: a value it keeps may have lost up to 1/9 of a window)
        assert!(s.most <= 10, "{}", s.most);
        assert!(s.watched());
        // one value then takes every other slot
        let jumps: Vec<u16> = (0..400u32).filter_map(|i| s.observe(if i % 2 == 0 { 7 } else { 1_000 + i }, true, false).map(|j| j.0)).collect();
        assert!(!jumps.is_empty());
        assert!(jumps[0] >= s.bar() && s.bar() == s.most + WINDOW / 2, "{jumps:?}");
        assert!(jumps.len() >= 120, "{} of 200", jumps.len());
        // a position with a usual value is not watched
        let mut usual = Share::header(1);
        for i in 0..1_000u32 {
            usual.observe(if i % 3 == 0 { i } else { 0 }, false, true);
        }
        assert!(!usual.watched());
        assert_eq!(usual.observe(0, true, false), None);
    }

    #[test]
    fn snippets_cut_at_characters_and_hide_control_bytes() {
        assert_eq!(Snippet::<8>::new("ab\ncd").to_string(), "ab?cd");
        assert_eq!(Snippet::<4>::new("abcdef").to_string(), "abcd…");
        assert_eq!(Snippet::<4>::new("aé€").to_string(), "aé…");
    }

    fn position(values: &[&str], times: usize) -> Position {
        let mut p = Position::default();
        for _ in 0..times {
            for v in values {
                p.learn(&look::<true, true>(v.as_bytes()));
            }
        }
        p
    }

    #[test]
    fn stable_positions_judge_new_values_and_ids_stay_silent() {
        let p = position(&["/", "/index.html", "/static/app.js", "/img/1.png"], 50);
        let j = |v: &str| p.judge(&look::<true, true>(v.as_bytes()));
        assert_eq!(j("/index.html"), None);
        assert_eq!(j("/img/42.png"), None);
        assert_eq!(j("/.git/config"), Some(What::NewSegment));
        assert_eq!(j("/static/other.js"), Some(What::NewValue));
        assert_eq!(j("/index.html?id=1'--"), Some(What::NewClasses(class::QUOTE)));
        // an id position: a new value on every line
        let mut ids = Position::default();
        for i in 0..500 {
            ids.learn(&look::<true, true>(format!("sess-{}", ["a", "b", "c", "d", "e", "f", "g"][i % 7].repeat(i % 13 + 1)).as_bytes()));
        }
        for i in 0..500u32 {
            ids.learn(&look::<true, true>(format!("k{:x}", i.wrapping_mul(2_654_435_761)).as_bytes()));
        }
        assert!(ids.wide);
        assert_eq!(ids.judge(&look::<true, true>(b"sess-zzz")), None);
        // too few values to say anything
        assert_eq!(position(&["a"], 5).judge(&look::<true, true>(b"b'")), None);
        // far longer than anything learned
        let long = format!("/static/{}", "A".repeat(100));
        assert!(matches!(p.judge(&look::<true, true>(long.as_bytes())), Some(What::TooLong { .. }) | Some(What::NewValue)));
    }

    #[test]
    fn findings_read_well() {
        let f = Finding { what: What::NewSegment, position: Snippet::new("path"), value: Snippet::new("/.git/config"), seen: 41_230 };
        assert_eq!(f.to_string(), "new first path segment in path: /.git/config (never seen in 41 230 paths of this template)");
        let f = Finding { what: What::NewClasses(class::QUOTE | class::SEMICOLON), ..f };
        assert_eq!(f.to_string(), "new characters in path: quote, ; in /.git/config (never there in 41 230 values of this template)");
    }
}
