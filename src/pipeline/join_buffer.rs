//! `multiline auto` in the Fluent Bit plugin and the C API: in one buffer of msgpack records,
//! records that continue the event of the record before them (a stack trace's frames, a
//! traceback, a goroutine dump — the joiner's rules) are joined into that record: its time,
//! metadata and other fields, the joined message, and `lines: N`.
//!
//! A filter callback returns what it was given, so a record is never held for the next buffer:
//! an event that a buffer boundary cuts goes out as two records, and such cuts are counted (said
//! at exit). Fluent Bit's own `multiline.parser` before turbolog joins across buffers.

use crate::codec::msgpack::{Error, Reader};

use super::join::Joiner;

/// One record of the buffer: where it is, and where its message value is (when it has one).
#[derive(Clone, Copy)]
struct Rec {
    start: usize,
    end: usize,
    /// Where the body map starts (after the `[header, ` part).
    body: usize,
    /// The message value's start and end, and its text's start and end.
    message: Option<(usize, usize, usize, usize)>,
    /// Continues the event of the record before it.
    continues: bool,
}

pub struct BufferJoiner {
    joiner: Joiner,
    max_bytes: usize,
    recs: Vec<Rec>,
    joined: String,
    out: Vec<u8>,
    /// Records joined into the record before them, since the start.
    pub joined_records: u64,
    /// Buffers whose first record continued the last event of the buffer before.
    pub cut_at_buffer_start: u64,
}

impl BufferJoiner {
    pub fn new(max_bytes: usize) -> BufferJoiner {
        BufferJoiner { joiner: Joiner::default(), max_bytes: max_bytes.max(1), recs: Vec::new(), joined: String::new(), out: Vec::new(), joined_records: 0, cut_at_buffer_start: 0 }
    }

    /// The buffer with its continuation records joined, or `None` when none continues (use
    /// `data` as it is: nothing copied). `keys`: the message keys, first found wins.
    pub fn join(&mut self, data: &[u8], keys: &[String]) -> Result<Option<&[u8]>, Error> {
        self.recs.clear();
        let mut any = false;
        let mut r = Reader::new(data);
        let mut first = true;
        let mut group_bytes = 0usize;
        while !r.at_end() {
            let mut rec = read(&mut r, keys)?;
            match rec.message {
                Some((_, _, ts, te)) => {
                    let text = std::str::from_utf8(&data[ts..te]).unwrap_or("");
                    let started = self.joiner.push_with(text, 0, |_| {});
                    let len = te - ts;
                    if started {
                        group_bytes = len;
                    } else if first {
                        // the event began in the buffer before: it cannot be joined any more
                        self.cut_at_buffer_start += 1;
                        group_bytes = len;
                    } else if group_bytes + 1 + len > self.max_bytes {
                        // past the bound: this record stands alone (nothing accepted is cut)
                        self.joiner.flush_with(|_| {});
                        self.joiner.push_with(text, 0, |_| {});
                        group_bytes = len;
                    } else {
                        rec.continues = true;
                        group_bytes += 1 + len;
                        any = true;
                    }
                }
                None => self.joiner.flush_with(|_| {}), // no message: the event before is over
            }
            first = false;
            self.recs.push(rec);
        }
        if !any {
            return Ok(None);
        }
        self.out.clear();
        self.out.reserve(data.len() + 16 * self.recs.len());
        let mut i = 0;
        while i < self.recs.len() {
            let head = self.recs[i];
            let mut j = i + 1;
            while j < self.recs.len() && self.recs[j].continues {
                j += 1;
            }
            let Some((vs, ve, ts, te)) = head.message.filter(|_| j > i + 1) else {
                self.out.extend_from_slice(&data[head.start..head.end]);
                i += 1;
                continue;
            };
            self.joined.clear();
            self.joined.push_str(&String::from_utf8_lossy(&data[ts..te]));
            for rec in &self.recs[i + 1..j] {
                let (_, _, s, e) = rec.message.expect("a continuation has a message");
                self.joined.push('\n');
                self.joined.push_str(&String::from_utf8_lossy(&data[s..e]));
            }
            self.joined_records += (j - i - 1) as u64;
            write_joined(&mut self.out, data, head.start, head.body, (vs, ve), head.end, &self.joined, (j - i) as u64)?;
            i = j;
        }
        Ok(Some(&self.out))
    }
}

/// Reads one record's bounds and message; anything that is not `[header, map]` has none.
fn read(r: &mut Reader<'_>, keys: &[String]) -> Result<Rec, Error> {
    let start = r.pos;
    let mut rec = Rec { start, end: start, body: start, message: None, continues: false };
    if r.array_len()? != Some(2) {
        r.pos = start;
        r.skip()?;
        rec.end = r.pos;
        return Ok(rec);
    }
    r.skip()?; // the header: [time, metadata] or a legacy time
    rec.body = r.pos;
    let Some(n) = r.map_len()? else {
        r.pos = rec.body;
        r.skip()?;
        rec.end = r.pos;
        return Ok(rec);
    };
    let mut best = usize::MAX;
    for _ in 0..n {
        let key = r.str_bytes()?;
        if key.is_none() {
            r.skip()?;
        }
        let value_start = r.pos;
        let prio = key.and_then(|k| keys.iter().position(|m| m.as_bytes() == k));
        match prio {
            Some(p) if p < best => {
                if let Some(text) = r.str_bytes()? {
                    let text_start = r.pos - text.len();
                    rec.message = Some((value_start, r.pos, text_start, r.pos));
                    best = p;
                } else {
                    r.pos = value_start;
                    r.skip()?;
                }
            }
            _ => r.skip()?,
        }
    }
    rec.end = r.pos;
    Ok(rec)
}

/// The record at `start..end` with its message value (`value`) replaced by `joined` and
/// `lines: N` added to its body map.
#[allow(clippy::too_many_arguments)]
fn write_joined(out: &mut Vec<u8>, data: &[u8], start: usize, body: usize, value: (usize, usize), end: usize, joined: &str, lines: u64) -> Result<(), Error> {
    out.extend_from_slice(&data[start..body]);
    let mut r = Reader::new(data);
    r.pos = body;
    let n = r.map_len()?.expect("read() found a map here");
    let _ = rmp::encode::write_map_len(out, n as u32 + 1);
    out.extend_from_slice(&data[r.pos..value.0]);
    let _ = rmp::encode::write_str(out, joined);
    out.extend_from_slice(&data[value.1..end]);
    let _ = rmp::encode::write_str(out, "lines");
    let _ = rmp::encode::write_uint(out, lines);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(out: &mut Vec<u8>, secs: u32, pairs: &[(&str, &str)]) {
        rmp::encode::write_array_len(out, 2).unwrap();
        rmp::encode::write_array_len(out, 2).unwrap();
        let mut t = secs.to_be_bytes().to_vec();
        t.extend_from_slice(&[0, 0, 0, 0]);
        rmp::encode::write_ext_meta(out, 8, 0).unwrap();
        out.extend_from_slice(&t);
        rmp::encode::write_map_len(out, 0).unwrap();
        rmp::encode::write_map_len(out, pairs.len() as u32).unwrap();
        for (k, v) in pairs {
            rmp::encode::write_str(out, k).unwrap();
            rmp::encode::write_str(out, v).unwrap();
        }
    }

    fn bodies(buf: &[u8]) -> Vec<String> {
        let mut r = Reader::new(buf);
        let mut out = Vec::new();
        while !r.at_end() {
            let mut s = String::new();
            crate::codec::forward_json::to_json(&mut r, &mut s).unwrap();
            out.push(s);
        }
        out
    }

    #[test]
    fn a_trace_in_one_buffer_becomes_one_record_with_its_first_fields() {
        let keys = vec!["log".to_string()];
        let mut buf = Vec::new();
        record(&mut buf, 1, &[("log", "2024-01-01 10:00:00 INFO started"), ("pod", "a")]);
        record(&mut buf, 2, &[("log", "2024-01-01 10:00:01 ERROR request failed"), ("pod", "a")]);
        record(&mut buf, 3, &[("log", "java.lang.IllegalStateException: pool shut down"), ("pod", "a")]);
        record(&mut buf, 3, &[("log", "\tat com.example.Pool.get(Pool.java:12)"), ("pod", "a")]);
        record(&mut buf, 3, &[("log", "Caused by: java.net.ConnectException: refused"), ("pod", "a")]);
        record(&mut buf, 4, &[("log", "2024-01-01 10:00:02 INFO done"), ("pod", "a")]);
        let mut j = BufferJoiner::new(1 << 20);
        let joined = j.join(&buf, &keys).unwrap().expect("joined").to_vec();
        let b = bodies(&joined);
        assert_eq!(b.len(), 3, "{b:?}");
        assert!(b[1].contains(r#""log":"2024-01-01 10:00:01 ERROR request failed\njava.lang.IllegalStateException: pool shut down\n\tat com.example.Pool.get(Pool.java:12)\nCaused by: java.net.ConnectException: refused""#), "{}", b[1]);
        assert!(b[1].contains(r#""pod":"a""#) && b[1].contains(r#""lines":4"#), "{}", b[1]);
        assert_eq!(j.joined_records, 3);
        // plain lines: nothing to join, nothing copied
        let mut plain = Vec::new();
        record(&mut plain, 1, &[("log", "2024-01-01 10:00:00 INFO a")]);
        record(&mut plain, 2, &[("log", "2024-01-01 10:00:01 INFO b")]);
        assert!(j.join(&plain, &keys).unwrap().is_none());
    }

    #[test]
    fn an_event_cut_by_the_buffer_boundary_is_counted_not_held_and_the_bound_keeps_every_record() {
        let keys = vec!["log".to_string()];
        let mut a = Vec::new();
        record(&mut a, 1, &[("log", "ERROR failed")]);
        record(&mut a, 1, &[("log", "\tat a.B.c(B.java:1)")]);
        let mut b = Vec::new();
        record(&mut b, 1, &[("log", "\tat a.B.d(B.java:2)")]);
        let mut j = BufferJoiner::new(1 << 20);
        assert_eq!(bodies(j.join(&a, &keys).unwrap().unwrap()).len(), 1);
        assert!(j.join(&b, &keys).unwrap().is_none(), "the frame goes out as it came");
        assert_eq!(j.cut_at_buffer_start, 1);
        // a bound of 40 bytes: the second frame does not fit, it stands alone (not cut, not lost)
        let mut j = BufferJoiner::new(40);
        let mut c = a.clone();
        record(&mut c, 1, &[("log", "\tat a.B.e(B.java:3)")]);
        let out = bodies(j.join(&c, &keys).unwrap().unwrap());
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[1].contains("B.java:3"));
    }
}
