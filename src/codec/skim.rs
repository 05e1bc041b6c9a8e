//! A JSON record read for tagging: the whole line is checked, but only the fields tagging reads
//! (message, level, status, time, session, our own tags, a container's `log`/`stream`) are built
//! as values. The rest (an OTLP record's resource, scope and attributes, an app's context) is
//! skipped without allocating: the line itself is what goes out.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The top-level keys whose values tagging reads.
#[derive(Debug, Clone)]
pub struct Wanted {
    keys: Vec<String>,
    /// Per first byte, the lengths (bit `min(len, 63)`) of the keys starting with it: most keys
    /// of a record are told apart by one lookup, without comparing any string.
    lengths: Vec<u64>,
}

impl Wanted {
    /// For message keys `message_keys` (dotted keys reach nested objects: their first part is
    /// kept whole), the session field, and every key tagging and containers read.
    pub fn new<'a>(message_keys: impl IntoIterator<Item = &'a str>, session_field: Option<&'a str>) -> Wanted {
        let mut w = Wanted { keys: Vec::new(), lengths: vec![0; 256] };
        let fixed = crate::codec::fields::LEVEL_KEYS.iter().chain(crate::codec::fields::STATUS_KEYS).chain(TIME_KEYS).chain(crate::codec::ndjson::FIELDS.iter()).chain(CONTAINER_KEYS);
        for k in message_keys.into_iter().chain(fixed.copied()).chain(session_field) {
            w.add(k);
            if let Some((head, _)) = k.split_once('.') {
                w.add(head);
            }
        }
        w
    }

    fn add(&mut self, k: &str) {
        if k.is_empty() || self.keys.iter().any(|x| x == k) {
            return;
        }
        self.lengths[k.as_bytes()[0] as usize] |= 1 << k.len().min(63);
        self.keys.push(k.to_string());
    }

    /// Whether a record is read for `k`'s value.
    #[inline]
    pub fn keeps(&self, k: &str) -> bool {
        let Some(&first) = k.as_bytes().first() else { return false };
        self.lengths[first as usize] & (1 << k.len().min(63)) != 0 && self.keys.iter().any(|x| x == k)
    }
}

/// The keys [`crate::codec::ndjson::record_time`] reads.
const TIME_KEYS: &[&str] = &["time", "timestamp", "@timestamp", "ts", "__REALTIME_TIMESTAMP"];
/// Docker's json-file records (see [`crate::codec::container::docker`]).
const CONTAINER_KEYS: &[&str] = &["log", "stream"];

/// Parses `t` (which starts with `{`) as a JSON object, keeping the values of the `wanted` keys
/// only. Malformed JSON is an error exactly as a full parse would make it; of a key written
/// twice the last value is kept, as [`serde_json::from_str`] keeps it.
pub fn parse(t: &str, wanted: &Wanted) -> Result<Map<String, Value>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(t);
    let map = Skim(wanted).deserialize(&mut de)?;
    de.end()?;
    Ok(map)
}

struct Skim<'w>(&'w Wanted);

impl<'de> DeserializeSeed<'de> for Skim<'_> {
    type Value = Map<String, Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Skim<'_> {
    type Value = Map<String, Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(Key(k)) = a.next_key::<Key<'de>>()? {
            if self.0.keeps(&k) {
                let v: Value = a.next_value()?;
                map.insert(k.into_owned(), v);
            } else {
                a.next_value::<IgnoredAny>()?;
            }
        }
        Ok(map)
    }
}

/// A key borrowed from the line when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Wanted {
        Wanted::new(crate::codec::ndjson::DEFAULT_KEYS.iter().copied().chain(["log.message"]), Some("req"))
    }

    #[test]
    fn keeps_what_tagging_reads_and_skips_the_rest() {
        let line = r#"{"message":"disk full","level":"error","resource":{"service.name":"a","n":[1,2,{"x":null}]},"req":7,"log":{"message":"m"},"time":"2026-11-24T10:20:00Z","anomaly":true}"#;
        let m = parse(line, &wanted()).unwrap();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["message", "level", "req", "log", "time", "anomaly"]);
        assert_eq!(m["log"]["message"], "m");
        assert_eq!(m["req"], 7);
    }

    #[test]
    fn keys_are_told_apart_by_first_byte_and_length_then_compared() {
        let w = Wanted::new(["log.message", "a_very_long_message_key_of_more_than_sixty_four_bytes_written_by_someone"], Some("req"));
        for k in ["log", "log.message", "level", "req", "a_very_long_message_key_of_more_than_sixty_four_bytes_written_by_someone", "anomaly"] {
            assert!(w.keeps(k), "{k}");
        }
        for k in ["", "lag", "logs", "req_id", "resource", "severity_number", "a_very_long_message_key_of_more_than_sixty_four_bytes_written_by_someonf", "x"] {
            assert!(!w.keeps(k), "{k}");
        }
    }

    #[test]
    fn malformed_json_is_refused_as_a_full_parse_refuses_it() {
        let w = wanted();
        for bad in [r#"{"message":"x","other":[1,}"#, r#"{"message":"x"} trailing"#, r#"{"other":"\x"}"#, r#"{"message":"x","other":tru}"#, r#"["message"]"#, r#"{"a":1"#] {
            assert!(parse(bad, &w).is_err(), "{bad}");
            assert!(serde_json::from_str::<Map<String, Value>>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaped_keys_and_repeated_keys_read_as_serde_json_reads_them() {
        let line = r#"{"mess\u0061ge":"first","message":"second","lev\u0065l":"warn"}"#;
        let m = parse(line, &wanted()).unwrap();
        let full: Map<String, Value> = serde_json::from_str(line).unwrap();
        assert_eq!(m["message"], full["message"]);
        assert_eq!(m["level"], "warn");
    }

    #[test]
    fn every_kept_value_is_the_full_parse_s_on_real_records() {
        let w = wanted();
        let lines = [
            r#"{"log":"I1202 10:00:00.000000 1 main.go:42] started\n","stream":"stderr","time":"2026-12-02T10:00:00.1Z"}"#,
            r#"{"@timestamp":"2026-12-02T10:00:00Z","log.level":"warn","message":"slow","http":{"response":{"status_code":503}},"ecs":{"version":"8"}}"#,
            r#"{"msg":"done","lvl":"info","ts":1795515600.5,"caller":"x.go:1","user":{"id":"u\"1"}}"#,
        ];
        for line in lines {
            let m = parse(line, &w).unwrap();
            let full: Map<String, Value> = serde_json::from_str(line).unwrap();
            for (k, v) in &m {
                assert_eq!(Some(v), full.get(k), "{k} in {line}");
            }
            for k in full.keys().filter(|k| w.keeps(k)) {
                assert!(m.contains_key(k), "{k} of {line} was skipped");
            }
        }
    }
}
