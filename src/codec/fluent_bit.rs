//! Fluent Bit's msgpack events: score the records of a buffer and tag them.
//!
//! A buffer is a concatenation of records `[[EventTime, metadata], body]` (or the legacy
//! `[time, body]`). Records are copied through byte for byte; only a record whose body is a map
//! with a string message gets a rewritten body: the same entries (minus any stale fields of ours)
//! followed by the five verdict fields. Group markers, non-map bodies and records without the
//! message key pass through untouched; so does the whole buffer if it turns out to be corrupt.

use std::fmt::Write as _;

use crate::codec::fields::{self as record_fields, FieldNames, FieldPolicy, Mode};
use crate::codec::msgpack::{Error, Reader};
use crate::codec::{Record, Scorer};
use crate::detect::level::Level;

/// Where tagged records are written: a `Vec<u8>` (CLI, tests) or `malloc` memory a C host frees
/// (`host::out_buf::MallocBuf`).
pub trait OutBuf {
    fn clear(&mut self);
    fn reserve(&mut self, additional: usize);
    fn extend_from_slice(&mut self, bytes: &[u8]);
    fn as_slice(&self) -> &[u8];
}

impl OutBuf for Vec<u8> {
    fn clear(&mut self) {
        Vec::clear(self)
    }
    fn reserve(&mut self, additional: usize) {
        Vec::reserve(self, additional)
    }
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        Vec::extend_from_slice(self, bytes)
    }
    fn as_slice(&self) -> &[u8] {
        self
    }
}

/// How records are read and tagged (from the pipeline's settings).
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Record keys holding the message, first found wins.
    pub message_keys: Vec<String>,
    pub mode: Mode,
    pub field_policy: FieldPolicy,
    pub fields: FieldNames,
    /// The explanation field's name (added only when there is an answer).
    pub field_explanation: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkStats {
    pub records: u64,
    pub tagged: u64,
    pub anomalies: u64,
    pub dropped: u64,
    pub untouched: u64,
    /// Session verdict records appended (see [`SessionTracking`]).
    pub sessions: u64,
    /// Records held back by volume reduction (counted in a summary).
    pub suppressed: u64,
    /// Summary records appended at a window's end.
    pub summaries: u64,
    /// Records passed through untouched because no message key held a string.
    pub no_message: u64,
    /// The records came joined (`multiline auto`): fewer than the host gave.
    pub joined: bool,
}

impl ChunkStats {
    /// Whether the output differs from the input.
    pub fn modified(&self) -> bool {
        self.tagged > 0 || self.dropped > 0 || self.sessions > 0 || self.suppressed > 0 || self.summaries > 0 || self.joined
    }
}

#[cfg(test)]
thread_local! {
    /// Tests set this to make the next [`Tagger::tag_chunk`] on this thread panic.
    pub static PANIC_NEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Reusable buffers for tagging chunks: nothing is allocated per record once warm.
#[derive(Default)]
pub struct Tagger {
    entries: Vec<(usize, usize)>,
    /// A message with its status field added (see [`record_fields::with_status`]).
    scratch: Vec<u8>,
    reason: String,
    /// The field names as msgpack strings, encoded once: (for these names, the five keys).
    keys: Option<(FieldNames, Keys)>,
}

/// The added fields' names, msgpack-encoded once per chunk's settings, and the bytes every
/// record starts its fields with (by verdict: `[false, true]`), so that a record's fields are a
/// few copies, not one per piece.
struct Keys {
    names: [Vec<u8>; 5],
    /// `anomaly: <bool>`
    verdict: [Vec<u8>; 2],
    /// `anomaly: <bool>, anomaly_score:` and the float64 marker its 8 bytes follow
    scored: [Vec<u8>; 2],
}

fn encoded_keys(fields: &FieldNames) -> Keys {
    let names = fields.all().map(|name| {
        let mut key = Vec::with_capacity(name.len() + 5);
        let _ = rmp::encode::write_str(&mut key, name);
        key
    });
    let verdict = [0xc2u8, 0xc3].map(|b| [&names[0][..], &[b]].concat());
    let scored = [0, 1].map(|i: usize| [&verdict[i][..], &names[1], &[0xcb]].concat());
    Keys { names, verdict, scored }
}

/// `[header, {"turbolog_session": id, "anomaly": …, "anomaly_score": …, "anomaly_reason": …,
/// "first_line": …, "last_line": …, "lines": …}]` with the closing record's header bytes.
fn session_record<O: OutBuf + std::io::Write>(out: &mut O, header: &[u8], c: &crate::session::ClosedSession) {
    let _ = rmp::encode::write_array_len(out, 2);
    out.extend_from_slice(header);
    let _ = rmp::encode::write_map_len(out, 7 + (c.held_back > 0) as u32);
    let _ = rmp::encode::write_str(out, "turbolog_session");
    let _ = rmp::encode::write_str(out, &c.id);
    let _ = rmp::encode::write_str(out, "anomaly");
    let _ = rmp::encode::write_bool(out, c.verdict.anomaly);
    let _ = rmp::encode::write_str(out, "anomaly_score");
    let _ = rmp::encode::write_f64(out, crate::detect::score::thousandths(c.verdict.score));
    let _ = rmp::encode::write_str(out, "anomaly_reason");
    match &c.verdict.reason {
        Some(r) => {
            let _ = rmp::encode::write_str(out, r);
        }
        None => {
            let _ = rmp::encode::write_nil(out);
        }
    }
    for (k, v) in [("first_line", c.first_line), ("last_line", c.last_line), ("lines", c.lines)] {
        let _ = rmp::encode::write_str(out, k);
        let _ = rmp::encode::write_uint(out, v);
    }
    if c.held_back > 0 {
        let _ = rmp::encode::write_str(out, "held_back");
        let _ = rmp::encode::write_uint(out, c.held_back);
    }
}

/// The seconds of a record's event time: `[time, meta]` or a bare time, where time is Fluent
/// Bit's EventTime (ext 0: seconds and nanoseconds, big-endian), an integer or a float.
fn event_time(header: &[u8]) -> Option<i64> {
    let mut r = Reader::new(header);
    if r.array_len().ok()?.is_some() {
        // [time, metadata]: the time comes first
    }
    if let Some((0, d)) = r.ext().ok()? {
        return (d.len() >= 4).then(|| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as i64);
    }
    if let Some(n) = r.uint().ok()? {
        return Some(n as i64);
    }
    let mut rest = &header[r.pos..];
    rmp::decode::read_f64(&mut rest).ok().map(|f| f as i64)
}

const GROUP_START: u32 = 0xFFFF_FFFF;
const GROUP_END: u32 = 0xFFFF_FFFE;

impl Tagger {
    /// Scores every record of `data`, appending the output buffer to `out` (cleared first).
    /// On `Err` the caller must pass `data` through unchanged.
    pub fn tag_chunk<O: OutBuf + std::io::Write>(&mut self, data: &[u8], scorer: &mut impl Scorer, settings: &Options, out: &mut O) -> Result<ChunkStats, Error> {
        if self.keys.as_ref().is_none_or(|(names, _)| *names != settings.fields) {
            self.keys = Some((settings.fields.clone(), encoded_keys(&settings.fields)));
        }
        #[cfg(test)]
        if PANIC_NEXT.with(|p| p.replace(false)) {
            // a template is created but the engine never sees the rest: the worst place to stop
            let line = b"a line cut short by an internal error";
            scorer.score(&Record { message: line, original: line, level: None, session_field: None, time: None, seq: None });
            panic!("injected by a test");
        }
        out.clear();
        // room for what the fields add, so that the chunk is not copied again half-way (short
        // records with a template and reason each can still pass it: then it grows)
        out.reserve(data.len() * 2 + 4096);
        let mut stats = ChunkStats::default();
        let mut r = Reader::new(data);
        while !r.at_end() {
            let record_start = r.pos;
            stats.records += 1;
            match self.tag_record(&mut r, data, scorer, settings, out, &mut stats)? {
                Outcome::Written => {}
                Outcome::Dropped => stats.dropped += 1,
                Outcome::Suppressed => stats.suppressed += 1,
                Outcome::Untouched => {
                    out.extend_from_slice(&data[record_start..r.pos]);
                    stats.untouched += 1;
                }
            }
        }
        Ok(stats)
    }

    fn tag_record<O: OutBuf + std::io::Write, S: Scorer>(
        &mut self,
        r: &mut Reader<'_>,
        data: &[u8],
        scorer: &mut S,
        settings: &Options,
        out: &mut O,
        stats: &mut ChunkStats,
    ) -> Result<Outcome, Error> {
        let record_start = r.pos;
        if r.array_len()? != Some(2) {
            r.pos = record_start;
            r.skip()?;
            return Ok(Outcome::Untouched);
        }
        let header_start = r.pos;
        let group = match r.array_len()? {
            Some(n) if n >= 1 => {
                let group = is_group_marker(r)?;
                for _ in 1..n {
                    r.skip()?;
                }
                group
            }
            Some(_) => false,
            None => is_group_marker(r)?, // legacy `[time, body]`
        };
        let header_end = r.pos;
        let body_start = r.pos;
        let Some(n) = (if group { None } else { r.map_len()? }) else {
            r.pos = body_start;
            r.skip()?;
            return Ok(Outcome::Untouched);
        };
        // Walk the entries: where each starts and ends, which are ours, where the message is.
        self.entries.clear();
        let fields = settings.fields.all();
        let mut message: Option<(usize, &[u8])> = None; // (priority, bytes)
        let mut level: Option<(usize, Level)> = None; // (priority, level)
        let mut status: Option<u16> = None;
        // borrowed from the settings: nothing allocated per record
        let session_field = scorer.session_field().map(str::as_bytes);
        let mut session_value: Option<std::borrow::Cow<'_, [u8]>> = None;
        for _ in 0..n {
            let entry_start = r.pos;
            let key = r.str_bytes()?;
            if key.is_none() {
                r.skip()?;
            }
            let value_start = r.pos;
            if let Some(key) = key {
                if fields.iter().any(|f| f.as_bytes() == key) || settings.field_explanation.as_bytes() == key {
                    r.skip()?; // a stale field of ours: dropped, written afresh below
                    continue;
                }
                if let Some(prio) = settings.message_keys.iter().position(|k| k.as_bytes() == key) {
                    if message.is_none_or(|(p, _)| prio < p) {
                        if let Some(v) = r.str_bytes()? {
                            message = Some((prio, v));
                        }
                        r.pos = value_start;
                    }
                } else if let Some(prio) = record_fields::LEVEL_KEYS.iter().position(|k| k.as_bytes() == key) {
                    if level.is_none_or(|(p, _)| prio < p) {
                        let found = match r.str_bytes()? {
                            Some(text) => record_fields::level_of_text(text),
                            None => r.uint()?.and_then(record_fields::level_of_number),
                        };
                        level = found.map(|l| (prio, l)).or(level);
                        r.pos = value_start;
                    }
                }
                // `a.b` keys reach into a nested map (ECS's `log.level`, `--message-key event.message`)
                let heads = |k: &String| k.as_bytes().strip_prefix(key).is_some_and(|rest| rest.first() == Some(&b'.'));
                if (key == b"log" || settings.message_keys.iter().any(heads))
                    && matches!(r.peek_marker()?, rmp::Marker::FixMap(_) | rmp::Marker::Map16 | rmp::Marker::Map32)
                {
                    self.nested(r, key, settings, &mut message, &mut level)?;
                    r.pos = value_start;
                }
                if session_field == Some(key) {
                    session_value = match r.str_bytes()? {
                        Some(text) if !text.is_empty() => Some(std::borrow::Cow::Borrowed(text)),
                        Some(_) => None,
                        None => r.uint()?.map(|n| std::borrow::Cow::Owned(n.to_string().into_bytes())),
                    };
                    r.pos = value_start;
                }
                if record_fields::STATUS_KEYS.iter().any(|k| k.as_bytes() == key) {
                    let code = match r.str_bytes()? {
                        Some(text) => std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()),
                        None => r.uint()?,
                    };
                    status = status.or(code.and_then(record_fields::status));
                    r.pos = value_start;
                }
            }
            r.skip()?;
            self.entries.push((entry_start, r.pos));
        }
        let Some((key_index, msg)) = message else {
            stats.no_message += 1;
            return Ok(Outcome::Untouched);
        };
        // invalid UTF-8 is replaced for scoring only; the record keeps its bytes
        let level = level.map(|(_, l)| l);
        let time = if scorer.wants_time() { event_time(&data[header_start..header_end]) } else { None };
        let session_field = session_value.as_deref();
        let message = match status {
            None => msg,
            Some(code) => {
                record_fields::with_status(msg, code, &mut self.scratch);
                &self.scratch
            }
        };
        let v = scorer.score(&Record { message, original: msg, level, session_field, time, seq: None });
        let header = &data[header_start..header_end];
        let verdicts = |scorer: &S, out: &mut O, stats: &mut ChunkStats| {
            for c in scorer.closed() {
                session_record(out, header, c);
                stats.sessions += 1;
            }
        };
        if settings.mode == Mode::OnlyAnomalies && !v.anomaly {
            verdicts(scorer, out, stats);
            return Ok(Outcome::Dropped);
        }
        if !scorer.pass(&v, key_index.min(crate::codec::summary::TEXT as usize - 1) as crate::codec::summary::Shape) {
            verdicts(scorer, out, stats);
            return Ok(Outcome::Suppressed);
        }
        stats.tagged += 1;
        stats.anomalies += v.anomaly as u64;
        let explanation = if v.anomaly { scorer.explanation(&v, msg).map(|a| a.text) } else { None };
        // Writing into a Vec cannot fail.
        let n_fields = settings.field_policy.fields_for(v.anomaly);
        let _ = rmp::encode::write_array_len(out, 2);
        out.extend_from_slice(&data[header_start..header_end]);
        write_map_len(out, self.entries.len() + n_fields + explanation.is_some() as usize);
        copy_entries(&self.entries, data, out);
        let keys = match &self.keys {
            Some((_, keys)) => keys,
            None => unreachable!("encoded at the start of the chunk"),
        };
        if n_fields >= 3 {
            out.extend_from_slice(&keys.scored[v.anomaly as usize]);
            let score = crate::detect::score::thousandths(v.score);
            out.extend_from_slice(&score.to_bits().to_be_bytes());
            out.extend_from_slice(&keys.names[2]);
            let mut id = [0u8; 9];
            let n = encode_uint(v.template_id as u64, &mut id);
            out.extend_from_slice(&id[..n]);
        } else {
            out.extend_from_slice(&keys.verdict[v.anomaly as usize]);
        }
        if n_fields == 5 {
            out.extend_from_slice(&keys.names[3]);
            let _ = rmp::encode::write_str(out, scorer.template(v.template_id));
            out.extend_from_slice(&keys.names[4]);
            if v.anomaly {
                self.reason.clear();
                let _ = write!(self.reason, "{}", v.reason);
                let _ = rmp::encode::write_str(out, &self.reason);
            } else {
                let _ = rmp::encode::write_nil(out);
            }
        }
        if let Some(text) = explanation {
            let _ = rmp::encode::write_str(out, &settings.field_explanation);
            let _ = rmp::encode::write_str(out, &text);
        }
        verdicts(scorer, out, stats);
        Ok(Outcome::Written)
    }
}

impl Tagger {
    /// The message and level under `key.…` paths of the map value at the cursor, when they rank
    /// above what was found so far.
    fn nested<'a>(&self, r: &Reader<'a>, key: &[u8], settings: &Options, message: &mut Option<(usize, &'a [u8])>, level: &mut Option<(usize, Level)>) -> Result<(), Error> {
        for (prio, k) in settings.message_keys.iter().enumerate() {
            let Some((head, rest)) = k.split_once('.') else { continue };
            if head.as_bytes() == key && message.is_none_or(|(p, _)| prio < p) {
                if let Some(pos) = r.find_path(rest)? {
                    if let Some(v) = (Reader { buf: r.buf, pos }).str_bytes()? {
                        *message = Some((prio, v));
                    }
                }
            }
        }
        for (prio, k) in record_fields::LEVEL_KEYS.iter().enumerate() {
            let Some((head, rest)) = k.split_once('.') else { continue };
            if head.as_bytes() == key && level.is_none_or(|(p, _)| prio < p) {
                if let Some(pos) = r.find_path(rest)? {
                    let mut v = Reader { buf: r.buf, pos };
                    let found = match v.str_bytes()? {
                        Some(text) => record_fields::level_of_text(text),
                        None => v.uint()?.and_then(record_fields::level_of_number),
                    };
                    *level = found.map(|l| (prio, l)).or(*level);
                }
            }
        }
        Ok(())
    }
}

/// A map header of `n` entries, as `rmp::encode::write_map_len` writes it.
#[inline]
fn write_map_len(out: &mut impl OutBuf, n: usize) {
    match n {
        0..=15 => out.extend_from_slice(&[0x80 | n as u8]),
        16..=0xffff => out.extend_from_slice(&[0xde, (n >> 8) as u8, n as u8]),
        _ => {
            let n = n as u32;
            out.extend_from_slice(&[0xdf, (n >> 24) as u8, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
        }
    }
}

/// msgpack's smallest encoding of an unsigned integer, as `rmp::encode::write_uint` writes it.
fn encode_uint(n: u64, out: &mut [u8; 9]) -> usize {
    if n < 128 {
        out[0] = n as u8;
        1
    } else if n <= u8::MAX as u64 {
        out[..2].copy_from_slice(&[0xcc, n as u8]);
        2
    } else if n <= u16::MAX as u64 {
        out[0] = 0xcd;
        out[1..3].copy_from_slice(&(n as u16).to_be_bytes());
        3
    } else if n <= u32::MAX as u64 {
        out[0] = 0xce;
        out[1..5].copy_from_slice(&(n as u32).to_be_bytes());
        5
    } else {
        out[0] = 0xcf;
        out[1..9].copy_from_slice(&n.to_be_bytes());
        9
    }
}

/// Copies the kept entries; runs of adjacent entries (all of them, unless a stale field of ours
/// was dropped) in one copy.
fn copy_entries(entries: &[(usize, usize)], data: &[u8], out: &mut impl OutBuf) {
    let mut i = 0;
    while i < entries.len() {
        let (start, mut end) = entries[i];
        i += 1;
        while i < entries.len() && entries[i].0 == end {
            end = entries[i].1;
            i += 1;
        }
        out.extend_from_slice(&data[start..end]);
    }
}

enum Outcome {
    Written,
    Dropped,
    /// Held back by volume reduction.
    Suppressed,
    Untouched,
}

/// What a reducing pipeline held back of one template in a window, as one event:
/// The verdict records of sessions closed while no record came (the host's clock, on an empty
/// buffer), timed `now` (seconds since the epoch); how many.
pub fn quiet_session_records<O: OutBuf + std::io::Write>(out: &mut O, closed: &[crate::session::ClosedSession], now: f64) -> u64 {
    let secs = now.max(0.0);
    let mut header = Vec::with_capacity(16);
    let _ = rmp::encode::write_array_len(&mut header, 2);
    crate::codec::forward_json::write_event_time(&mut header, crate::codec::forward_json::EventTime { secs: secs as u32, nanos: (secs.fract() * 1e9) as u32 });
    let _ = rmp::encode::write_map_len(&mut header, 0);
    for c in closed {
        session_record(out, &header, c);
    }
    closed.len() as u64
}

/// `[[end, {}], {"turbolog_summary": true, "template_id", "template", "suppressed", "seen",
/// "passed", "window_start", "window_end", KEY: "N more records like …"}]`, timed at the
/// window's end; the message under the key the input used (`keys[shape]`).
pub fn summary_record<O: OutBuf + std::io::Write>(out: &mut O, s: &crate::codec::summary::Summary, template: &str, window: (f64, f64), keys: &[String]) {
    use crate::codec::summary as summary;
    let key = keys.get(s.shape as usize).map_or("message", String::as_str);
    let mut text = String::new();
    summary::summary_message(&mut text, s, template);
    let (mut start, mut end) = (String::new(), String::new());
    summary::rfc3339(&mut start, window.0);
    summary::rfc3339(&mut end, window.1);
    let secs = window.1.max(0.0);
    let mut header = Vec::with_capacity(16);
    let _ = rmp::encode::write_array_len(&mut header, 2);
    crate::codec::forward_json::write_event_time(
        &mut header,
        crate::codec::forward_json::EventTime { secs: secs as u32, nanos: ((secs.fract()) * 1e9) as u32 },
    );
    let _ = rmp::encode::write_map_len(&mut header, 0);
    let _ = rmp::encode::write_array_len(out, 2);
    out.extend_from_slice(&header);
    let _ = rmp::encode::write_map_len(out, 9);
    let _ = rmp::encode::write_str(out, "turbolog_summary");
    let _ = rmp::encode::write_bool(out, true);
    let _ = rmp::encode::write_str(out, "template_id");
    let _ = rmp::encode::write_uint(out, s.template_id as u64);
    let _ = rmp::encode::write_str(out, "template");
    let _ = rmp::encode::write_str(out, template);
    for (k, v) in [("suppressed", s.suppressed), ("seen", s.seen), ("passed", s.passed)] {
        let _ = rmp::encode::write_str(out, k);
        let _ = rmp::encode::write_uint(out, v);
    }
    for (k, v) in [("window_start", &start), ("window_end", &end)] {
        let _ = rmp::encode::write_str(out, k);
        let _ = rmp::encode::write_str(out, v);
    }
    let _ = rmp::encode::write_str(out, key);
    let _ = rmp::encode::write_str(out, &text);
}

/// Reads the time of a record; true for a group start/end marker.
fn is_group_marker(r: &mut Reader<'_>) -> Result<bool, Error> {
    let start = r.pos;
    if let Some((0, d)) = r.ext()? {
        if d.len() == 8 {
            let secs = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            return Ok(secs == GROUP_START || secs == GROUP_END);
        }
        return Ok(false);
    }
    r.pos = start;
    let group = matches!(r.peek_marker()?, rmp::Marker::FixNeg(-1) | rmp::Marker::FixNeg(-2));
    r.skip()?;
    Ok(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_headers_are_written_as_rmp_writes_them() {
        for n in [0usize, 1, 15, 16, 17, 255, 256, 0xffff, 0x1_0000, 0x12_3456] {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            write_map_len(&mut ours, n);
            rmp::encode::write_map_len(&mut theirs, n as u32).unwrap();
            assert_eq!(ours, theirs, "{n}");
        }
    }

    #[test]
    fn uints_are_encoded_as_rmp_does() {
        for n in [0u64, 1, 127, 128, 255, 256, 65535, 65536, u32::MAX as u64, u32::MAX as u64 + 1, u64::MAX] {
            let mut want = Vec::new();
            rmp::encode::write_uint(&mut want, n).unwrap();
            let mut got = [0u8; 9];
            let len = encode_uint(n, &mut got);
            assert_eq!(&got[..len], &want[..], "{n}");
        }
    }
    use crate::detect::Engine;
    use crate::EngineConfig;

    /// The property table's defaults, with `(name, value)` changes.
    fn options(pairs: &[(&str, &str)]) -> Options {
        let mut o = Options {
            message_keys: ["log", "message", "msg", "MESSAGE", "@message"].map(String::from).to_vec(),
            mode: Mode::Tag,
            field_policy: FieldPolicy::Lean,
            fields: FieldNames {
                anomaly: "anomaly".into(),
                score: "anomaly_score".into(),
                template_id: "template_id".into(),
                template: "template".into(),
                reason: "anomaly_reason".into(),
            },
            field_explanation: "anomaly_explanation".into(),
        };
        for (k, v) in pairs {
            match *k {
                "fields" => o.field_policy = FieldPolicy::parse(v).unwrap(),
                "mode" => o.mode = if *v == "only_anomalies" { Mode::OnlyAnomalies } else { Mode::Tag },
                _ => panic!("{k}"),
            }
        }
        o
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/fluent-bit").join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (tests need ../shared beside the repo)", p.display()))
    }

    /// The body of every record of a buffer, as JSON, decoded with the reader under test.
    fn bodies(buf: &[u8]) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let mut out = Vec::new();
        let mut r = Reader::new(buf);
        while !r.at_end() {
            assert_eq!(r.array_len().unwrap(), Some(2));
            r.skip().unwrap();
            out.push(value(&mut r).as_object().cloned().unwrap_or_default());
        }
        out
    }

    fn value(r: &mut Reader<'_>) -> serde_json::Value {
        use serde_json::Value;
        if let Some(n) = r.map_len().unwrap() {
            let mut m = serde_json::Map::new();
            for _ in 0..n {
                let k = String::from_utf8(r.str_bytes().unwrap().unwrap().to_vec()).unwrap();
                m.insert(k, value(r));
            }
            return Value::Object(m);
        }
        if let Some(n) = r.array_len().unwrap() {
            return Value::Array((0..n).map(|_| value(r)).collect());
        }
        if let Some(s) = r.str_bytes().unwrap() {
            return Value::String(String::from_utf8_lossy(s).into_owned());
        }
        let start = r.pos;
        let mut slice = &r.buf[start..];
        let v = match rmp::decode::read_marker(&mut slice).unwrap() {
            rmp::Marker::True => Value::Bool(true),
            rmp::Marker::False => Value::Bool(false),
            rmp::Marker::Null => Value::Null,
            rmp::Marker::F64 => {
                let mut s = &r.buf[start..];
                Value::from(rmp::decode::read_f64(&mut s).unwrap())
            }
            _ => {
                let mut s = &r.buf[start..];
                rmp::decode::read_int::<i64, _>(&mut s).map(Value::from).unwrap_or(Value::Null)
            }
        };
        r.skip().unwrap();
        v
    }

    #[test]
    fn tags_every_record_of_a_real_tail_chunk() {
        let data = fixture("tail_openssh.msgpack");
        let mut engine = Engine::new(EngineConfig::default());
        let settings = options(&[("fields", "all")]);
        let mut out = Vec::new();
        let stats = Tagger::default().tag_chunk(&data, &mut engine, &settings, &mut out).unwrap();
        // 1,999 records: the log's last line has no newline, so in_tail never emitted it
        assert_eq!(stats.records, 1999);
        assert_eq!(stats.tagged, 1999);
        let bodies = bodies(&out);
        assert_eq!(bodies.len(), 1999);
        let first = &bodies[0];
        assert!(first["log"].as_str().unwrap().starts_with("Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping"));
        assert!(first["anomaly"].is_boolean());
        assert!(first["template_id"].is_i64());
        assert!(first["anomaly_score"].is_number());
        assert!(bodies.iter().all(|b| b["anomaly_reason"].is_null() != b["anomaly"].as_bool().unwrap()));
        // headers (time + metadata) are copied byte for byte: the input's first record header
        // the header (time + metadata map32) is copied byte for byte; the body gets a new map header
        assert_eq!(&out[..17], &data[..17]);
        assert_eq!(out[17], 0x86, "fixmap of 1 + 5 entries");
    }

    #[test]
    fn keeps_metadata_nested_values_and_replaces_stale_fields() {
        let data = fixture("dummy_meta.msgpack");
        let mut engine = Engine::new(EngineConfig::default());
        let mut out = Vec::new();
        let all = options(&[("fields", "all")]);
        let stats = Tagger::default().tag_chunk(&data, &mut engine, &all, &mut out).unwrap();
        assert_eq!((stats.records, stats.tagged), (3, 3));
        let b = &bodies(&out)[0];
        assert_eq!(b["level"], "info");
        assert_eq!(b["nested"]["k"], serde_json::json!([1, 2.5, null, true]));
        assert_eq!(b["template"], "user alice logged in from <*>");
        // a second pass over tagged output replaces our fields instead of duplicating them
        let mut again = Vec::new();
        Tagger::default().tag_chunk(&out, &mut engine, &all, &mut again).unwrap();
        let mut r = Reader::new(&again);
        r.array_len().unwrap();
        r.skip().unwrap();
        assert_eq!(r.map_len().unwrap(), Some(3 + 5));
        // and the lean default drops the stale template of a normal record, not keeps it
        let mut lean = Vec::new();
        Tagger::default().tag_chunk(&out, &mut engine, &options(&[]), &mut lean).unwrap();
        let b = &bodies(&lean)[0];
        assert_eq!(b["anomaly"], false);
        assert!(b.get("template").is_none() && b.get("anomaly_reason").is_none(), "{b:?}");
    }

    #[test]
    fn group_markers_non_maps_and_keyless_records_pass_through_byte_for_byte() {
        let mut data = Vec::new();
        // group start: [[EventTime(0xFFFFFFFF, 0), {}], {}]
        data.extend_from_slice(&[0x92, 0x92, 0xd7, 0x00, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0x81, 0xa1, b'g', 0x01]);
        let group_len = data.len();
        // legacy [1700000000, {"other": "x"}]
        data.extend_from_slice(&[0x92, 0xce, 0x65, 0x53, 0xf1, 0x00, 0x81, 0xa5, b'o', b't', b'h', b'e', b'r', 0xa1, b'x']);
        // body is not a map: [[t, {}], "str"]
        data.extend_from_slice(&[0x92, 0x92, 0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0xa3, b'a', b'b', b'c']);
        // legacy with message, float time
        data.extend_from_slice(&[0x92, 0xcb, 0x41, 0xd9, 0, 0, 0, 0, 0, 0, 0x81, 0xa3, b'm', b's', b'g', 0xa2, b'h', b'i']);
        let mut engine = Engine::new(EngineConfig::default());
        let mut out = Vec::new();
        let stats = Tagger::default().tag_chunk(&data, &mut engine, &options(&[]), &mut out).unwrap();
        assert_eq!((stats.records, stats.tagged, stats.untouched), (4, 1, 3));
        assert_eq!(&out[..group_len], &data[..group_len]);
        assert_eq!(&out[..data.len() - 18], &data[..data.len() - 18]);
        let last = bodies(&out).pop().unwrap();
        assert_eq!(last["msg"], "hi");
        assert!(last.contains_key("anomaly"));
    }

    #[test]
    fn only_anomalies_drops_the_rest_and_corrupt_buffers_are_errors() {
        let data = fixture("tail_openssh.msgpack");
        let mut engine = Engine::new(EngineConfig::default());
        let settings = options(&[("mode", "only_anomalies")]);
        let mut out = Vec::new();
        let stats = Tagger::default().tag_chunk(&data, &mut engine, &settings, &mut out).unwrap();
        assert_eq!(stats.tagged + stats.dropped, 1999);
        assert!(stats.dropped > 0);
        assert!(bodies(&out).iter().all(|b| b["anomaly"] == true));
        for cut in [1, 100, data.len() - 1] {
            assert!(Tagger::default().tag_chunk(&data[..cut], &mut engine, &settings, &mut out).is_err());
        }
    }
}
