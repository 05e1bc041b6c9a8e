//! The top-level fields of a JSON line as the code that wrote it knows them (an OTLP record
//! written by [`crate::codec::otlp`]). They travel beside the line, so tagging has what
//! [`crate::codec::skim::parse`] would read from the line without reading the line again. A
//! field tagging wants that is not carried (an object: `body`, `attributes`, `resource`,
//! `scope`) sends the line to be read as any other; the line itself is what goes out, always.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// The top-level keys of an OTLP line, in the order [`crate::codec::otlp`] writes them.
pub const KEYS: [&str; 11] = ["message", "level", "severity_number", "time_unix_nano", "observed_time_unix_nano", "trace_id", "span_id", "body", "attributes", "resource", "scope"];

/// Bit of [`KEYS`]`[i]` in [`Known::present`].
pub const fn bit(i: usize) -> u16 {
    1 << i
}

pub const MESSAGE: usize = 0;
pub const LEVEL: usize = 1;
pub const SEVERITY_NUMBER: usize = 2;
pub const TIME: usize = 3;
pub const OBSERVED_TIME: usize = 4;
pub const TRACE_ID: usize = 5;
pub const SPAN_ID: usize = 6;
pub const BODY: usize = 7;
pub const ATTRIBUTES: usize = 8;
pub const RESOURCE: usize = 9;
pub const SCOPE: usize = 10;

/// One line's top-level fields: the values of its scalar keys, and which keys it has.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Known {
    /// Which of [`KEYS`] the line has (bit [`bit`]`(i)`).
    pub present: u16,
    /// `message` when the line's is this string (`None` with the key present: a body of
    /// another kind, written as text; not carried).
    pub message: Option<String>,
    pub level: Option<Cow<'static, str>>,
    pub severity_number: i32,
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    /// Raw bytes; the line has them in hex.
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
}

impl Known {
    /// What [`crate::codec::skim::parse`] reads from the line for a reader that `keeps` these
    /// keys: the kept keys in the line's order, with the values the line has. `None` when a
    /// kept key's value is not carried: read the line instead.
    pub fn object(mut self, keeps: impl Fn(&str) -> bool) -> Option<Map<String, Value>> {
        let mut map = Map::new();
        for (i, key) in KEYS.iter().enumerate() {
            if self.present & bit(i) == 0 || !keeps(key) {
                continue;
            }
            let value = match i {
                MESSAGE => Value::String(self.message.take()?),
                LEVEL => Value::String(self.level.take()?.into_owned()),
                SEVERITY_NUMBER => Value::from(self.severity_number),
                // int64 as a string, as the line (OTLP JSON) writes it
                TIME => Value::String(self.time_unix_nano.to_string()),
                OBSERVED_TIME => Value::String(self.observed_time_unix_nano.to_string()),
                TRACE_ID => Value::String(hex(&self.trace_id)),
                SPAN_ID => Value::String(hex(&self.span_id)),
                _ => return None,
            };
            map.insert((*key).to_string(), value);
        }
        Some(map)
    }
}

/// Lower-case hex, as the line writes ids.
pub fn push_hex(buf: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        buf.push(DIGITS[(b >> 4) as usize] as char);
        buf.push(DIGITS[(b & 15) as usize] as char);
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}
