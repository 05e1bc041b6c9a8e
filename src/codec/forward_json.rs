//! Records cross between msgpack (Fluent Forward, Fluent Bit's HTTP output) and the NDJSON the
//! tagger reads: a msgpack map becomes one compact JSON object, a JSON object one msgpack map.

use serde_json::Value;
use crate::codec::msgpack::{Error, Reader};

use rmp::Marker;

const MAX_DEPTH: u32 = 128;

/// Writes the next msgpack value as JSON. Strings that are not UTF-8 and binary values become
/// strings (invalid bytes replaced); an event time (ext 0) becomes seconds as a float; other
/// ext values become `null`; map keys that are not strings are written as their JSON text.
pub fn to_json(r: &mut Reader<'_>, out: &mut String) -> Result<(), Error> {
    value(r, out, 0)
}

fn value(r: &mut Reader<'_>, out: &mut String, depth: u32) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Invalid { at: r.pos, what: "nesting deeper than 128 levels" });
    }
    if let Some(n) = r.map_len()? {
        out.push('{');
        for i in 0..n {
            if r.at_end() {
                return Err(Error::Truncated { at: r.pos });
            }
            if i > 0 {
                out.push(',');
            }
            if let Some(k) = r.str_bytes()? {
                push_str(out, &String::from_utf8_lossy(k));
            } else {
                let mut key = String::new();
                value(r, &mut key, depth + 1)?;
                push_str(out, &key);
            }
            out.push(':');
            value(r, out, depth + 1)?;
        }
        out.push('}');
        return Ok(());
    }
    if let Some(n) = r.array_len()? {
        out.push('[');
        for i in 0..n {
            if r.at_end() {
                return Err(Error::Truncated { at: r.pos });
            }
            if i > 0 {
                out.push(',');
            }
            value(r, out, depth + 1)?;
        }
        out.push(']');
        return Ok(());
    }
    if let Some(s) = r.str_bytes()? {
        push_str(out, &String::from_utf8_lossy(s));
        return Ok(());
    }
    if let Some((ty, data)) = r.ext()? {
        match event_time_ext(ty, data) {
            Some(t) => {
                use std::fmt::Write;
                let _ = write!(out, "{}", t.as_f64());
            }
            None => out.push_str("null"),
        }
        return Ok(());
    }
    let at = r.pos;
    let m = r.marker()?;
    let mut be = |n: usize| -> Result<u64, Error> {
        let b = r.buf.get(r.pos..r.pos + n).ok_or(Error::Truncated { at: r.pos })?;
        r.pos += n;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    };
    use std::fmt::Write;
    match m {
        Marker::Null => out.push_str("null"),
        Marker::True => out.push_str("true"),
        Marker::False => out.push_str("false"),
        Marker::FixPos(n) => {
            let _ = write!(out, "{n}");
        }
        Marker::FixNeg(n) => {
            let _ = write!(out, "{n}");
        }
        Marker::U8 => {
            let _ = write!(out, "{}", be(1)?);
        }
        Marker::U16 => {
            let _ = write!(out, "{}", be(2)?);
        }
        Marker::U32 => {
            let _ = write!(out, "{}", be(4)?);
        }
        Marker::U64 => {
            let _ = write!(out, "{}", be(8)?);
        }
        Marker::I8 => {
            let _ = write!(out, "{}", be(1)? as u8 as i8);
        }
        Marker::I16 => {
            let _ = write!(out, "{}", be(2)? as u16 as i16);
        }
        Marker::I32 => {
            let _ = write!(out, "{}", be(4)? as u32 as i32);
        }
        Marker::I64 => {
            let _ = write!(out, "{}", be(8)? as i64);
        }
        Marker::F32 => push_float(out, f32::from_bits(be(4)? as u32) as f64),
        Marker::F64 => push_float(out, f64::from_bits(be(8)?)),
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
            let len = be(match m {
                Marker::Bin8 => 1,
                Marker::Bin16 => 2,
                _ => 4,
            })? as usize;
            let b = r.buf.get(r.pos..r.pos.saturating_add(len)).ok_or(Error::Truncated { at: r.pos })?;
            r.pos += len;
            push_str(out, &String::from_utf8_lossy(b));
        }
        _ => return Err(Error::Invalid { at, what: "reserved marker 0xc1" }),
    }
    Ok(())
}

fn push_float(out: &mut String, f: f64) {
    use std::fmt::Write;
    if f.is_finite() {
        let _ = write!(out, "{f}");
        if f.fract() == 0.0 && f.abs() < 1e15 {
            out.push_str(".0");
        }
    } else {
        out.push_str("null");
    }
}

fn push_str(out: &mut String, s: &str) {
    // serialising a &str cannot fail
    if let Ok(j) = serde_json::to_string(s) {
        out.push_str(&j);
    }
}

/// A Fluent event time: seconds and nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventTime {
    pub secs: u32,
    pub nanos: u32,
}

impl EventTime {
    pub fn now() -> EventTime {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        EventTime { secs: d.as_secs() as u32, nanos: d.subsec_nanos() }
    }

    pub fn as_f64(self) -> f64 {
        self.secs as f64 + self.nanos as f64 / 1e9
    }

    fn from_f64(f: f64) -> Option<EventTime> {
        (f.is_finite() && f >= 0.0 && f < u32::MAX as f64).then(|| EventTime { secs: f as u32, nanos: ((f.fract()) * 1e9) as u32 })
    }
}

fn event_time_ext(ty: i8, data: &[u8]) -> Option<EventTime> {
    (ty == 0 && data.len() == 8).then(|| EventTime {
        secs: u32::from_be_bytes(data[..4].try_into().unwrap()),
        nanos: u32::from_be_bytes(data[4..].try_into().unwrap()),
    })
}

/// Reads an event time: the EventTime ext, whole seconds, or float seconds. `None` (and the
/// value skipped) for anything else.
pub fn event_time(r: &mut Reader<'_>) -> Result<Option<EventTime>, Error> {
    if let Some((ty, data)) = r.ext()? {
        return Ok(event_time_ext(ty, data));
    }
    if let Some(s) = r.uint()? {
        return Ok(u32::try_from(s).ok().map(|secs| EventTime { secs, nanos: 0 }));
    }
    let width = match r.peek_marker()? {
        Marker::F64 => 8,
        Marker::F32 => 4,
        _ => {
            r.skip()?;
            return Ok(None);
        }
    };
    let bytes = r.buf.get(r.pos + 1..r.pos + 1 + width).ok_or(Error::Truncated { at: r.pos })?;
    r.pos += 1 + width;
    let f = match width {
        8 => f64::from_be_bytes(bytes.try_into().unwrap_or_default()),
        _ => f32::from_be_bytes(bytes.try_into().unwrap_or_default()) as f64,
    };
    Ok(EventTime::from_f64(f))
}

/// Writes an event time as the EventTime ext (what Fluent Bit and Vector read at full precision).
pub fn write_event_time(out: &mut Vec<u8>, t: EventTime) {
    out.extend_from_slice(&[0xd7, 0x00]);
    out.extend_from_slice(&t.secs.to_be_bytes());
    out.extend_from_slice(&t.nanos.to_be_bytes());
}

/// Writes a JSON value as msgpack.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    use rmp::encode::*;
    // writing to a Vec cannot fail
    match v {
        Value::Null => {
            let _ = write_nil(out);
        }
        Value::Bool(b) => {
            let _ = write_bool(out, *b);
        }
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                let _ = write_uint(out, u);
            } else if let Some(i) = n.as_i64() {
                let _ = write_sint(out, i);
            } else {
                let _ = write_f64(out, n.as_f64().unwrap_or(0.0));
            }
        }
        Value::String(s) => {
            let _ = write_str(out, s);
        }
        Value::Array(a) => {
            let _ = write_array_len(out, a.len() as u32);
            for x in a {
                write_value(out, x);
            }
        }
        Value::Object(m) => {
            let _ = write_map_len(out, m.len() as u32);
            for (k, x) in m {
                let _ = write_str(out, k);
                write_value(out, x);
            }
        }
    }
}

/// Writes one output line as a msgpack map: the JSON object it holds, or `{"message": line}`
/// for a line that is not one (a malformed record passed through).
pub fn write_line_as_map(out: &mut Vec<u8>, line: &str) {
    match serde_json::from_str::<Value>(line) {
        Ok(v @ Value::Object(_)) => write_value(out, &v),
        _ => {
            let _ = rmp::encode::write_map_len(out, 1);
            let _ = rmp::encode::write_str(out, "message");
            let _ = rmp::encode::write_str(out, line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(bytes: &[u8]) -> String {
        let mut s = String::new();
        to_json(&mut Reader::new(bytes), &mut s).unwrap();
        s
    }

    #[test]
    fn msgpack_maps_become_the_json_they_hold() {
        let v: Value = serde_json::from_str(r#"{"log":"disk full","n":-3,"u":300,"f":2.5,"ok":true,"x":null,"a":[1,"b"],"m":{"k":"v"}}"#).unwrap();
        let mut b = Vec::new();
        write_value(&mut b, &v);
        let back: Value = serde_json::from_str(&json_of(&b)).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn binary_ext_and_odd_keys_are_written_not_refused() {
        let mut b = Vec::new();
        rmp::encode::write_map_len(&mut b, 3).unwrap();
        rmp::encode::write_uint(&mut b, 7).unwrap();
        rmp::encode::write_bin(&mut b, b"ab\xff").unwrap();
        rmp::encode::write_str(&mut b, "t").unwrap();
        write_event_time(&mut b, EventTime { secs: 1_795_515_600, nanos: 500_000_000 });
        rmp::encode::write_str(&mut b, "e").unwrap();
        rmp::encode::write_ext_meta(&mut b, 5, 1).unwrap();
        b.extend_from_slice(&[1, 2, 3, 4]);
        // the ext's data ends early: an error, not a panic
        assert!(to_json(&mut Reader::new(&b), &mut String::new()).is_err());
        b.push(5);
        assert_eq!(json_of(&b), "{\"7\":\"ab\u{fffd}\",\"t\":1795515600.5,\"e\":null}");
    }

    #[test]
    fn event_times_in_every_form() {
        let mut b = Vec::new();
        write_event_time(&mut b, EventTime { secs: 10, nanos: 20 });
        rmp::encode::write_uint(&mut b, 11).unwrap();
        rmp::encode::write_f64(&mut b, 12.25).unwrap();
        rmp::encode::write_str(&mut b, "soon").unwrap();
        let mut r = Reader::new(&b);
        assert_eq!(event_time(&mut r).unwrap(), Some(EventTime { secs: 10, nanos: 20 }));
        assert_eq!(event_time(&mut r).unwrap(), Some(EventTime { secs: 11, nanos: 0 }));
        assert_eq!(event_time(&mut r).unwrap(), Some(EventTime { secs: 12, nanos: 250_000_000 }));
        assert_eq!(event_time(&mut r).unwrap(), None);
        assert!(r.at_end());
    }

    #[test]
    fn a_line_that_is_not_an_object_is_kept_as_a_message() {
        let mut b = Vec::new();
        write_line_as_map(&mut b, "{not json");
        assert_eq!(json_of(&b), r#"{"message":"{not json"}"#);
    }
}
