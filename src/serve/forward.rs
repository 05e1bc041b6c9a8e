//! The Fluent Forward protocol (v1), as Fluent Bit's and Fluentd's `forward` outputs speak it
//! and Vector's `fluent` source reads it: one msgpack array per message, in one of four modes.
//!
//! - Message: `[tag, time, record]` or `[tag, time, record, option]`
//! - Forward: `[tag, [[time, record], …], option?]`
//! - PackedForward: `[tag, bin, option?]`, the bin holding `[time, record]` entries back to back
//!   (gzip-compressed when `option.compressed` is `"gzip"`: CompressedPackedForward)
//!
//! A time is the EventTime ext (type 0) or seconds; Fluent Bit 2+ may send `[time, metadata]`
//! in its place. When `option.chunk` is set the sender waits for `{"ack": chunk}`.

use std::io::Read;

use turbolog::codec::msgpack::{Error, Reader};

use super::msgpack_json::{event_time, to_json, write_event_time, write_line_as_map, EventTime};

/// One decoded message: its records as NDJSON lines, their times, and the chunk to acknowledge.
#[derive(Debug, Default, PartialEq)]
pub struct Message {
    pub tag: String,
    /// Each record as a JSON object on its own line, ending in `\n`.
    pub text: String,
    pub times: Vec<EventTime>,
    pub chunk: Option<String>,
}

/// Where the next complete message ends in `buf`, `None` if more bytes are needed.
pub fn message_end(buf: &[u8]) -> Result<Option<usize>, Error> {
    let mut r = Reader::new(buf);
    match r.skip() {
        Ok(()) => Ok(Some(r.pos)),
        Err(Error::Truncated { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Decodes one complete message (as delimited by [`message_end`]). `max_unpacked` bounds what a
/// compressed message may inflate to.
pub fn decode(bytes: &[u8], max_unpacked: usize) -> Result<Message, String> {
    let mut r = Reader::new(bytes);
    let n = r.array_len().map_err(|e| e.to_string())?.ok_or("a Forward message is a msgpack array; this is not one")?;
    if !(2..=4).contains(&n) {
        return Err(format!("a Forward message has 2 to 4 elements, this one {n}"));
    }
    let tag = r.str_bytes().map_err(|e| e.to_string())?.ok_or("the first element of a Forward message, its tag, is not a string")?;
    let mut m = Message { tag: String::from_utf8_lossy(tag).into_owned(), ..Message::default() };
    let second = r.peek_marker().map_err(|e| e.to_string())?;
    use rmp::Marker::*;
    match second {
        FixArray(_) | Array16 | Array32 => {
            // Forward mode
            let entries = r.array_len().map_err(|e| e.to_string())?.unwrap_or(0);
            for _ in 0..entries {
                entry(&mut r, &mut m).map_err(|e| format!("in a Forward-mode entry: {e}"))?;
            }
            option(&mut r, n - 2, &mut m)?;
        }
        Bin8 | Bin16 | Bin32 | FixStr(_) | Str8 | Str16 | Str32 => {
            // PackedForward (a str is what old Fluentd versions send)
            let packed = bin_or_str(&mut r).map_err(|e| e.to_string())?;
            let mut compressed = false;
            option_with(&mut r, n - 2, &mut m, &mut compressed)?;
            let inflated;
            let entries: &[u8] = if compressed {
                inflated = gunzip(packed, max_unpacked)?;
                &inflated
            } else {
                packed
            };
            self::entries(entries, &mut m).map_err(|e| format!("PackedForward: {e}"))?;
        }
        _ => {
            // Message mode
            if n < 3 {
                return Err("a Message-mode Forward message needs a time and a record".into());
            }
            let time = time(&mut r).map_err(|e| e.to_string())?;
            record(&mut r, &mut m, time).map_err(|e| e.to_string())?;
            option(&mut r, n - 3, &mut m)?;
        }
    }
    Ok(m)
}

pub fn bin_or_str<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], Error> {
    if let Some(s) = r.str_bytes()? {
        return Ok(s);
    }
    let at = r.pos;
    let len = match r.marker()? {
        rmp::Marker::Bin8 => 1,
        rmp::Marker::Bin16 => 2,
        rmp::Marker::Bin32 => 4,
        _ => return Err(Error::Invalid { at, what: "expected binary entries" }),
    };
    let hdr = r.buf.get(r.pos..r.pos + len).ok_or(Error::Truncated { at: r.pos })?;
    let n = hdr.iter().fold(0usize, |a, &b| (a << 8) | b as usize);
    r.pos += len;
    let data = r.buf.get(r.pos..r.pos.saturating_add(n)).ok_or(Error::Truncated { at: r.pos })?;
    r.pos += n;
    Ok(data)
}

fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the compressed entries are not valid gzip: {e}"))?;
    if out.len() > max {
        return Err(format!("the compressed entries inflate past {max} bytes (raise --max-body)"));
    }
    Ok(out)
}

/// Reads `[time, record]` entries back to back (PackedForward, and the body Fluent Bit's `http`
/// output sends with `format msgpack`) into `m`.
pub fn entries(bytes: &[u8], m: &mut Message) -> Result<(), String> {
    let mut e = Reader::new(bytes);
    while !e.at_end() {
        entry(&mut e, m).map_err(|err| format!("in entry {}: {err}", m.times.len() + 1))?;
    }
    Ok(())
}

/// A time, or `[time, metadata]` (Fluent Bit's own event format).
fn time(r: &mut Reader<'_>) -> Result<Option<EventTime>, Error> {
    if r.array_len()? == Some(2) {
        let t = event_time(r)?;
        r.skip()?;
        return Ok(t);
    }
    event_time(r)
}

fn entry(r: &mut Reader<'_>, m: &mut Message) -> Result<(), Error> {
    let at = r.pos;
    if r.array_len()? != Some(2) {
        return Err(Error::Invalid { at, what: "an entry is [time, record]" });
    }
    let t = time(r)?;
    record(r, m, t)
}

fn record(r: &mut Reader<'_>, m: &mut Message, time: Option<EventTime>) -> Result<(), Error> {
    if !matches!(r.peek_marker()?, rmp::Marker::FixMap(_) | rmp::Marker::Map16 | rmp::Marker::Map32) {
        return Err(Error::Invalid { at: r.pos, what: "a record is a map" });
    }
    to_json(r, &mut m.text)?;
    m.text.push('\n');
    m.times.push(time.unwrap_or_else(EventTime::now));
    Ok(())
}

fn option(r: &mut Reader<'_>, present: usize, m: &mut Message) -> Result<(), String> {
    let mut compressed = false;
    option_with(r, present, m, &mut compressed)?;
    if compressed {
        return Err("`compressed` is only valid with PackedForward entries".into());
    }
    Ok(())
}

fn option_with(r: &mut Reader<'_>, present: usize, m: &mut Message, compressed: &mut bool) -> Result<(), String> {
    if present == 0 {
        return Ok(());
    }
    let e = |e: Error| e.to_string();
    if r.peek_marker().map_err(e)? == rmp::Marker::Null {
        r.skip().map_err(e)?;
        return Ok(());
    }
    let n = r.map_len().map_err(e)?.ok_or("the option of a Forward message is not a map")?;
    for _ in 0..n {
        let key = r.str_bytes().map_err(e)?;
        match key {
            Some(b"chunk") => m.chunk = r.str_bytes().map_err(e)?.map(|c| String::from_utf8_lossy(c).into_owned()),
            Some(b"compressed") => match r.str_bytes().map_err(e)? {
                Some(b"gzip") => *compressed = true,
                Some(b"text") => {}
                Some(other) => return Err(format!("unknown compression `{}` (gzip is supported)", String::from_utf8_lossy(other))),
                None => r.skip().map_err(e)?,
            },
            Some(_) => r.skip().map_err(e)?,
            None => {
                r.skip().map_err(e)?;
                r.skip().map_err(e)?;
                continue;
            }
        }
    }
    Ok(())
}

/// The reply to a message that asked for one: `{"ack": chunk}`.
pub fn ack(chunk: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(chunk.len() + 8);
    let _ = rmp::encode::write_map_len(&mut b, 1);
    let _ = rmp::encode::write_str(&mut b, "ack");
    let _ = rmp::encode::write_str(&mut b, chunk);
    b
}

/// A Forward-mode message `[tag, [[time, record], …], {"chunk": chunk}]` for NDJSON lines and
/// their times (a line without a time gets `now`).
pub fn encode(tag: &str, lines: &str, times: &[EventTime], chunk: &str) -> Vec<u8> {
    let n = lines.split_terminator('\n').count();
    let mut b = Vec::with_capacity(lines.len() + 16 * n + 64);
    let _ = rmp::encode::write_array_len(&mut b, 3);
    let _ = rmp::encode::write_str(&mut b, tag);
    let _ = rmp::encode::write_array_len(&mut b, n as u32);
    let now = EventTime::now();
    for (i, line) in lines.split_terminator('\n').enumerate() {
        let _ = rmp::encode::write_array_len(&mut b, 2);
        write_event_time(&mut b, times.get(i).copied().unwrap_or(now));
        write_line_as_map(&mut b, line);
    }
    let _ = rmp::encode::write_map_len(&mut b, 1);
    let _ = rmp::encode::write_str(&mut b, "chunk");
    let _ = rmp::encode::write_str(&mut b, chunk);
    b
}

/// Reads the `ack` of a reply map; `None` until the reply is complete.
pub fn read_ack(buf: &[u8]) -> Result<Option<(usize, Option<String>)>, String> {
    let Some(end) = message_end(buf).map_err(|e| e.to_string())? else { return Ok(None) };
    let mut r = Reader::new(&buf[..end]);
    let e = |e: Error| e.to_string();
    let n = r.map_len().map_err(e)?.ok_or("the receiver's reply is not a map")?;
    let mut ack = None;
    for _ in 0..n {
        match r.str_bytes().map_err(e)? {
            Some(b"ack") => ack = r.str_bytes().map_err(e)?.map(|a| String::from_utf8_lossy(a).into_owned()),
            Some(_) => r.skip().map_err(e)?,
            None => {
                r.skip().map_err(e)?;
                r.skip().map_err(e)?;
            }
        }
    }
    Ok(Some((end, ack)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmp::encode::*;

    fn record_map(b: &mut Vec<u8>, log: &str) {
        write_map_len(b, 1).unwrap();
        write_str(b, "log").unwrap();
        write_str(b, log).unwrap();
    }

    const T: EventTime = EventTime { secs: 1_795_515_600, nanos: 7 };

    #[test]
    fn message_mode_with_and_without_option() {
        let mut b = Vec::new();
        write_array_len(&mut b, 4).unwrap();
        write_str(&mut b, "app").unwrap();
        write_event_time(&mut b, T);
        record_map(&mut b, "hello");
        write_map_len(&mut b, 1).unwrap();
        write_str(&mut b, "chunk").unwrap();
        write_str(&mut b, "c1").unwrap();
        assert_eq!(message_end(&b).unwrap(), Some(b.len()));
        assert_eq!(message_end(&b[..b.len() - 1]).unwrap(), None);
        let m = decode(&b, 1 << 20).unwrap();
        assert_eq!(m, Message { tag: "app".into(), text: "{\"log\":\"hello\"}\n".into(), times: vec![T], chunk: Some("c1".into()) });
    }

    #[test]
    fn forward_mode_with_fluent_bit_metadata_times() {
        let mut b = Vec::new();
        write_array_len(&mut b, 2).unwrap();
        write_str(&mut b, "app").unwrap();
        write_array_len(&mut b, 2).unwrap();
        for log in ["a", "b"] {
            write_array_len(&mut b, 2).unwrap();
            // [[time, {}], record]
            write_array_len(&mut b, 2).unwrap();
            write_event_time(&mut b, T);
            write_map_len(&mut b, 0).unwrap();
            record_map(&mut b, log);
        }
        let m = decode(&b, 1 << 20).unwrap();
        assert_eq!(m.text, "{\"log\":\"a\"}\n{\"log\":\"b\"}\n");
        assert_eq!(m.times, vec![T, T]);
        assert_eq!(m.chunk, None);
    }

    #[test]
    fn packed_and_compressed_packed_forward() {
        let mut entries = Vec::new();
        for log in ["x", "y", "z"] {
            write_array_len(&mut entries, 2).unwrap();
            write_uint(&mut entries, 1_795_515_600).unwrap();
            record_map(&mut entries, log);
        }
        let mut plain = Vec::new();
        write_array_len(&mut plain, 2).unwrap();
        write_str(&mut plain, "t").unwrap();
        write_bin(&mut plain, &entries).unwrap();
        assert_eq!(decode(&plain, 1 << 20).unwrap().text.lines().count(), 3);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &entries).unwrap();
        let gz = gz.finish().unwrap();
        let mut c = Vec::new();
        write_array_len(&mut c, 3).unwrap();
        write_str(&mut c, "t").unwrap();
        write_bin(&mut c, &gz).unwrap();
        write_map_len(&mut c, 2).unwrap();
        write_str(&mut c, "compressed").unwrap();
        write_str(&mut c, "gzip").unwrap();
        write_str(&mut c, "chunk").unwrap();
        write_str(&mut c, "k").unwrap();
        let m = decode(&c, 1 << 20).unwrap();
        assert_eq!(m.text, "{\"log\":\"x\"}\n{\"log\":\"y\"}\n{\"log\":\"z\"}\n");
        assert_eq!(m.chunk.as_deref(), Some("k"));
        // a bomb is refused by its inflated size
        assert!(decode(&c, 10).unwrap_err().contains("inflate past 10 bytes"));
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        let mut not_array = Vec::new();
        write_map_len(&mut not_array, 0).unwrap();
        assert!(decode(&not_array, 100).unwrap_err().contains("not one"));
        let mut no_tag = Vec::new();
        write_array_len(&mut no_tag, 2).unwrap();
        write_uint(&mut no_tag, 1).unwrap();
        write_uint(&mut no_tag, 1).unwrap();
        assert!(decode(&no_tag, 100).unwrap_err().contains("tag"));
        let mut not_record = Vec::new();
        write_array_len(&mut not_record, 3).unwrap();
        write_str(&mut not_record, "t").unwrap();
        write_uint(&mut not_record, 1).unwrap();
        write_str(&mut not_record, "a string, not a map").unwrap();
        assert!(decode(&not_record, 100).unwrap_err().contains("a record is a map"));
        assert!(message_end(&[0xc1]).is_err());
    }

    #[test]
    fn encoded_messages_decode_back_with_their_times() {
        let lines = "{\"log\":\"a\",\"anomaly\":false}\nnot json\n";
        let b = encode("turbolog", lines, &[T], "c9");
        let m = decode(&b, 1 << 20).unwrap();
        assert_eq!(m.text, "{\"log\":\"a\",\"anomaly\":false}\n{\"message\":\"not json\"}\n");
        assert_eq!(m.times[0], T);
        assert_eq!(m.chunk.as_deref(), Some("c9"));
        let reply = ack("c9");
        assert_eq!(read_ack(&reply).unwrap(), Some((reply.len(), Some("c9".into()))));
        assert_eq!(read_ack(&reply[..3]).unwrap(), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A valid PackedForward message with a chunk, to mutate.
    fn valid() -> Vec<u8> {
        let mut entries = Vec::new();
        for log in ["a", "bb"] {
            rmp::encode::write_array_len(&mut entries, 2).unwrap();
            write_event_time(&mut entries, EventTime { secs: 1, nanos: 2 });
            rmp::encode::write_map_len(&mut entries, 1).unwrap();
            rmp::encode::write_str(&mut entries, "log").unwrap();
            rmp::encode::write_str(&mut entries, log).unwrap();
        }
        let mut m = Vec::new();
        rmp::encode::write_array_len(&mut m, 3).unwrap();
        rmp::encode::write_str(&mut m, "t").unwrap();
        rmp::encode::write_bin(&mut m, &entries).unwrap();
        rmp::encode::write_map_len(&mut m, 1).unwrap();
        rmp::encode::write_str(&mut m, "chunk").unwrap();
        rmp::encode::write_str(&mut m, "c").unwrap();
        m
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        // what a peer sends is never trusted: any bytes give a message or an error, never a panic
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(Some(end)) = message_end(&bytes) {
                let _ = decode(&bytes[..end], 1 << 16);
            }
            let _ = read_ack(&bytes);
        }

        #[test]
        fn mutated_messages_decode_or_fail_cleanly(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
            let mut m = valid();
            for (at, b) in flips {
                let i = at.index(m.len());
                m[i] = b;
            }
            let m = &m[..cut.index(m.len() + 1)];
            if let Ok(Some(end)) = message_end(m) {
                if let Ok(msg) = decode(&m[..end], 1 << 16) {
                    // every record decoded is one JSON object on its own line
                    prop_assert_eq!(msg.text.lines().count(), msg.times.len());
                    for line in msg.text.lines() {
                        prop_assert!(serde_json::from_str::<serde_json::Value>(line).map(|v| v.is_object()).unwrap_or(false), "{}", line);
                    }
                }
            }
        }
    }
}
