//! A JSON log record: finding its message.

use serde_json::{Map, Value};

/// The default message keys, tried in order.
pub const DEFAULT_KEYS: &[&str] = &["log", "message", "msg"];

/// The first string value among `keys`.
pub fn message<'a>(obj: &'a Map<String, Value>, keys: &[String]) -> Option<&'a str> {
    if keys.is_empty() {
        DEFAULT_KEYS.iter().find_map(|k| obj.get(*k).and_then(Value::as_str))
    } else {
        keys.iter().find_map(|k| obj.get(k).and_then(Value::as_str))
    }
}

/// Parses a line that looks like a JSON object. `None` when it does not start with `{`;
/// `Some(Err)` when it does but is malformed.
pub fn parse_object(line: &str) -> Option<Result<Map<String, Value>, serde_json::Error>> {
    let t = line.trim_start();
    if !t.starts_with('{') {
        return None;
    }
    Some(serde_json::from_str::<Map<String, Value>>(t))
}

/// Calls `f` with the message of a line: the message key's value for a JSON object that has one,
/// the whole line otherwise.
pub fn with_message<R>(line: &str, keys: &[String], f: impl FnOnce(&str) -> R) -> R {
    if let Some(Ok(obj)) = parse_object(line) {
        if let Some(m) = message(&obj, keys) {
            return f(m);
        }
    }
    f(line)
}
