//! NDJSON records: finding the message of a JSON log line, and tagging the line.
//!
//! Shared by `turbolog filter`, `serve` and every other host that speaks newline-delimited JSON. A line
//! that is not a JSON object becomes `{"message": …}`; a malformed one or one without a string
//! message is passed through untouched and reported, never dropped.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::codec::fields::{self as record_fields, FieldPolicy};
use crate::codec::skim::Wanted;
use crate::codec::summary::{Shape, Summary, TEXT};
use crate::codec::{Record, Scorer};
use crate::detect::level::Level;
use crate::detect::Verdict;
use crate::explain::worker::Answered;

/// The default message keys, tried in order (`MESSAGE`: journald's JSON).
pub const DEFAULT_KEYS: &[&str] = &["log", "message", "msg", "MESSAGE", "@message"];

/// The value under `key`: a key of the record as written (`"log.level": …`), else a path into
/// nested objects (`log.level` → `{"log": {"level": …}}`, as ECS writes it).
pub fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(v) = get(obj, key) {
        return Some(v);
    }
    if !key.contains('.') {
        return None;
    }
    let mut parts = key.split('.');
    let mut v = get(obj, parts.next()?)?;
    for p in parts {
        v = get(v.as_object()?, p)?;
    }
    Some(v)
}

/// `obj.get(key)`, by comparing keys when there are few: a record read for tagging holds a
/// handful, and each is looked up under some thirty names (cheaper than hashing each name).
#[inline]
pub fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if obj.len() <= 8 {
        obj.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        obj.get(key)
    }
}

/// The message keys a record is read for, as a message names them (`[]` = the defaults).
pub fn keys_text(keys: &[String]) -> String {
    if keys.is_empty() { DEFAULT_KEYS.join(", ") } else { keys.join(", ") }
}

/// What to say, once, about a JSON record without a string message under `keys`.
pub fn no_message_warning(line_no: u64, keys: &[String]) -> String {
    let keys = keys_text(keys);
    format!("line {line_no} is a JSON object with no string message under {keys}: scored as text (set --message-key KEY; a.b reaches nested objects)")
}

/// The first string value among `keys`.
pub fn message<'a>(obj: &'a Map<String, Value>, keys: &[String]) -> Option<&'a str> {
    message_at(obj, keys).map(|(_, m)| m)
}

/// The first string value among `keys`, with the index of its key (its summary's [`Shape`]).
fn message_at<'a>(obj: &'a Map<String, Value>, keys: &[String]) -> Option<(Shape, &'a str)> {
    let at = |(i, v): (usize, Option<&'a Value>)| v.and_then(Value::as_str).map(|m| (i.min(TEXT as usize - 1) as Shape, m));
    if keys.is_empty() {
        DEFAULT_KEYS.iter().map(|k| get(obj, k)).enumerate().find_map(at).or_else(|| {
            // one level down, as Logstash's own `{"logEvent":{"message":…}}` writes it
            obj.values().filter_map(Value::as_object).find_map(|inner| DEFAULT_KEYS.iter().map(|k| get(inner, k)).enumerate().find_map(at))
        })
    } else {
        keys.iter().map(|k| field(obj, k)).enumerate().find_map(at)
    }
}

/// When a record happened: a JSON record's time field (`time`, `timestamp`, `@timestamp`, `ts`:
/// ISO 8601 or epoch seconds/milliseconds; journald's `__REALTIME_TIMESTAMP` in microseconds),
/// or a text line's header.
pub fn record_time(line: &str, record: Option<&Map<String, Value>>) -> Option<i64> {
    let Some(obj) = record else { return crate::detect::time::of_line(line) };
    if let Some(us) = get(obj, "__REALTIME_TIMESTAMP").and_then(Value::as_str).and_then(|v| v.parse::<i64>().ok()) {
        return Some(us / 1_000_000);
    }
    for k in ["time", "timestamp", "@timestamp", "ts"] {
        match get(obj, k) {
            Some(Value::String(v)) => {
                if let Some(t) = crate::detect::time::of_value(v) {
                    return Some(t);
                }
            }
            Some(Value::Number(n)) => {
                if let Some(t) = n.as_f64() {
                    return Some(if t > 1e12 { (t / 1000.0) as i64 } else { t as i64 });
                }
            }
            _ => {}
        }
    }
    None
}

/// What a JSON record says besides its message text.
pub struct Message<'a> {
    /// The message, with ` status=NNN` added when the status is a field of its own: the
    /// template then shows its class (`status=5xx`).
    pub message: std::borrow::Cow<'a, str>,
    /// The level field, when there is one.
    pub level: Option<Level>,
    /// Which of the keys held the message.
    pub key: Shape,
}

/// The message and the fields that carry meaning beside it.
pub fn record<'a>(obj: &'a Map<String, Value>, keys: &[String]) -> Option<Message<'a>> {
    record_scored(obj, keys, None)
}

/// [`record`], with `scored` in place of the message's text when given (a joined event is
/// scored as its first line and its root cause).
pub fn record_scored<'a>(obj: &'a Map<String, Value>, keys: &[String], scored: Option<&'a str>) -> Option<Message<'a>> {
    let (key, text) = message_at(obj, keys)?;
    let text = scored.unwrap_or(text);
    let level = record_fields::LEVEL_KEYS.iter().find_map(|k| field(obj, k)).and_then(level_of);
    let status = record_fields::STATUS_KEYS.iter().find_map(|k| field(obj, k)).and_then(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    let message = match status {
        Some(code @ 100..=599) => std::borrow::Cow::Owned(format!("{text} status={code}")),
        _ => std::borrow::Cow::Borrowed(text),
    };
    Some(Message { message, level, key })
}

fn level_of(v: &Value) -> Option<Level> {
    match v {
        Value::String(s) => record_fields::level_of_text(s.as_bytes()),
        Value::Number(n) => record_fields::level_of_number(n.as_u64()?),
        _ => None,
    }
}

/// Parses a line that looks like a JSON object. `None` when it does not start with `{`;
/// `Some(Err)` when it does but is malformed.
pub fn parse_object(line: &str) -> Option<Result<Map<String, Value>, serde_json::Error>> {
    // JSON's own whitespace only: `\u{b}{…}` is text, not an object with a prefix JSON refuses
    let t = line.trim_start_matches(JSON_WS);
    if !t.starts_with('{') {
        return None;
    }
    Some(serde_json::from_str::<Map<String, Value>>(t))
}

/// What JSON counts as whitespace (RFC 8259), unlike `str::trim`.
const JSON_WS: [char; 4] = [' ', '\t', '\n', '\r'];

/// Calls `f` with the message of a line: the message key's value for a JSON object that has one,
/// the whole line otherwise.
pub fn with_message<R>(line: &str, keys: &[String], f: impl FnOnce(&str, Option<Level>) -> R) -> R {
    if let Some(Ok(obj)) = parse_object(line) {
        if let Some(r) = record(&obj, keys) {
            return f(&r.message, r.level);
        }
    }
    f(line, None)
}

/// The fields added to each record.
pub const FIELDS: [&str; 6] = ["anomaly", "anomaly_score", "template_id", "template", "anomaly_reason", "anomaly_explanation"];

/// What became of one input line.
#[derive(Debug)]
pub enum Outcome {
    /// Scored; `out` holds the tagged record unless it was dropped as normal.
    Tagged(Verdict),
    /// Not a valid JSON object although it starts with `{`: passed through untouched.
    Malformed(serde_json::Error),
    /// A JSON object without a string message under the keys: passed through untouched.
    NoMessage,
}

/// Tags NDJSON or text lines with a [`Scorer`]'s verdicts. Holds its buffers: one per stream.
#[derive(Default)]
pub struct LineTagger {
    /// Message keys, tried in order; empty = [`DEFAULT_KEYS`].
    pub keys: Vec<String>,
    /// Records that are not anomalous produce no output.
    pub only_anomalies: bool,
    /// Which fields a record gets.
    pub policy: FieldPolicy,
    /// The session id of a record whose session field is a number (the buffer is reused).
    number: String,
    reason: String,
    /// The keys a record is read for, made at its first record.
    wanted: Option<Wanted>,
}

impl LineTagger {
    pub fn new(keys: Vec<String>, only_anomalies: bool, policy: FieldPolicy) -> Self {
        LineTagger { keys, only_anomalies, policy, number: String::new(), reason: String::new(), wanted: None }
    }

    /// The keys [`Self::parse`] reads a record for (`session_field`: the scorer's).
    pub fn wanted(&mut self, session_field: Option<&str>) -> &Wanted {
        let keys = &self.keys;
        self.wanted.get_or_insert_with(|| match keys.is_empty() {
            true => Wanted::new(DEFAULT_KEYS.iter().copied(), session_field),
            false => Wanted::new(keys.iter().map(String::as_str), session_field),
        })
    }

    /// [`parse_object`], reading only the fields tagging needs ([`crate::codec::skim`]): what
    /// [`Self::tag_object`] takes. `session_field` is the scorer's.
    pub fn parse(&mut self, line: &str, session_field: Option<&str>) -> Option<Result<Map<String, Value>, serde_json::Error>> {
        let t = line.trim_start_matches(JSON_WS);
        if !t.starts_with('{') {
            return None;
        }
        Some(crate::codec::skim::parse(t, self.wanted(session_field)))
    }

    /// Scores `line` (the `seq`th of its stream) and appends what is to be written out (without
    /// a newline) to `out`; appends nothing for a record that is dropped.
    pub fn tag_line(&mut self, line: &str, seq: u64, scorer: &mut impl Scorer, out: &mut String) -> Outcome {
        self.tag_line_scored(line, None, seq, scorer, out)
    }

    /// [`Self::tag_line`] for a JSON record scored as `scored` rather than its message's text.
    pub fn tag_line_scored(&mut self, line: &str, scored: Option<&str>, seq: u64, scorer: &mut impl Scorer, out: &mut String) -> Outcome {
        match self.parse(line, scorer.session_field()) {
            None => {
                let time = if scorer.wants_time() { record_time(line, None) } else { None };
                let r = Record { message: line.as_bytes(), original: line.as_bytes(), level: None, session_field: None, time, seq: Some(seq) };
                let v = scorer.score(&r);
                if self.keep(&v) && scorer.pass(&v, TEXT) {
                    let explanation = self.explanation(&v, line, scorer);
                    let mut obj = Map::new();
                    obj.insert("message".into(), Value::String(line.to_string()));
                    tagged_object(out, obj, &v, scorer.template(v.template_id), self.policy, &mut self.reason, explanation.as_ref());
                }
                Outcome::Tagged(v)
            }
            Some(Err(e)) => {
                if !self.only_anomalies {
                    out.push_str(line);
                }
                Outcome::Malformed(e)
            }
            Some(Ok(obj)) => self.tag_object(line, obj, scored, seq, scorer, out),
        }
    }

    /// Tags a line already parsed as the JSON object `obj` (by [`Self::parse`], or whole; see
    /// [`Self::tag_line_scored`]).
    pub fn tag_object(&mut self, line: &str, obj: Map<String, Value>, scored: Option<&str>, seq: u64, scorer: &mut impl Scorer, out: &mut String) -> Outcome {
        self.tag_parsed(line, obj, false, scored, seq, scorer, out)
    }

    /// [`Self::tag_object`]; `whole` when `obj` holds every field of the line.
    #[allow(clippy::too_many_arguments)]
    fn tag_parsed(&mut self, line: &str, obj: Map<String, Value>, whole: bool, scored: Option<&str>, seq: u64, scorer: &mut impl Scorer, out: &mut String) -> Outcome {
        match record_scored(&obj, &self.keys, scored) {
            None if !whole && self.keys.is_empty() => {
                // the message may sit one level down, under a key the reading skipped
                let whole = parse_object(line).and_then(Result::ok).unwrap_or(obj);
                self.tag_parsed(line, whole, true, scored, seq, scorer, out)
            }
            None => {
                if !self.only_anomalies {
                    out.push_str(line);
                }
                Outcome::NoMessage
            }
            Some(m) => {
                let original = message(&obj, &self.keys).unwrap_or(line);
                let session_field = scorer.session_field().and_then(|f| match get(&obj, f) {
                    Some(Value::String(s)) => Some(s.as_bytes()),
                    Some(Value::Number(n)) => {
                        self.number.clear();
                        let _ = write!(self.number, "{n}");
                        Some(self.number.as_bytes())
                    }
                    _ => None,
                });
                let time = if scorer.wants_time() { record_time(line, Some(&obj)) } else { None };
                let r = Record { message: m.message.as_bytes(), original: original.as_bytes(), level: m.level, session_field, time, seq: Some(seq) };
                let v = scorer.score(&r);
                let key = m.key;
                drop(m);
                if self.keep(&v) && scorer.pass(&v, key) {
                    let explanation = self.explanation(&v, original, scorer);
                    let template = scorer.template(v.template_id);
                    if FIELDS.iter().any(|f| get(&obj, f).is_some()) {
                        // fields of ours already there are replaced: the record is written anew, whole
                        let whole = parse_object(line).and_then(Result::ok).unwrap_or(obj);
                        tagged_object(out, whole, &v, template, self.policy, &mut self.reason, explanation.as_ref());
                    } else {
                        append_fields(out, line, obj.is_empty(), &v, template, self.policy, &mut self.reason, explanation.as_ref());
                    }
                }
                Outcome::Tagged(v)
            }
        }
    }

    fn keep(&self, v: &Verdict) -> bool {
        !self.only_anomalies || v.anomaly
    }

    fn explanation(&self, v: &Verdict, message: &str, scorer: &mut impl Scorer) -> Option<Answered> {
        if v.anomaly {
            scorer.explanation(v, message.as_bytes())
        } else {
            None
        }
    }
}

fn reason_of<'a>(v: &Verdict, reason: &'a mut String) -> Option<&'a str> {
    reason.clear();
    if v.anomaly {
        let _ = write!(reason, "{}", v.reason);
        Some(reason.as_str())
    } else {
        None
    }
}

fn score(v: &Verdict) -> f64 {
    crate::detect::score::thousandths(v.score)
}

/// A closed session's verdict as one NDJSON record of its own (what `filter` appends), saying
/// `held_back` of its records were held back by volume reduction.
pub fn session_record(out: &mut String, c: &crate::session::ClosedSession, held_back: u64) {
    let mut v = serde_json::json!({
        "turbolog_session": c.id,
        "anomaly": c.verdict.anomaly,
        "anomaly_score": crate::detect::score::thousandths(c.verdict.score),
        "anomaly_reason": c.verdict.reason,
        "first_line": c.first_line,
        "last_line": c.last_line,
        "lines": c.lines,
    });
    if held_back > 0 {
        v["held_back"] = serde_json::json!(held_back);
    }
    out.push_str(&v.to_string());
}

/// What a reducing pipeline held back of one template in a window, as one NDJSON record: the
/// counts, the window (RFC 3339) and `N more records like …` under the message key the input
/// used (`keys` empty = [`DEFAULT_KEYS`]).
pub fn summary_record(out: &mut String, s: &Summary, template: &str, window: (f64, f64), keys: &[String]) {
    let key = match keys.is_empty() {
        true => crate::codec::summary::message_key(DEFAULT_KEYS, s.shape),
        false => keys.get(s.shape as usize).map_or("message", String::as_str),
    };
    let mut text = String::new();
    crate::codec::summary::summary_message(&mut text, s, template);
    let (mut start, mut end) = (String::new(), String::new());
    crate::codec::summary::rfc3339(&mut start, window.0);
    crate::codec::summary::rfc3339(&mut end, window.1);
    let mut obj = Map::new();
    obj.insert("turbolog_summary".into(), Value::Bool(true));
    obj.insert("template_id".into(), Value::from(s.template_id));
    obj.insert("template".into(), Value::String(template.to_string()));
    obj.insert("suppressed".into(), Value::from(s.suppressed));
    obj.insert("seen".into(), Value::from(s.seen));
    obj.insert("passed".into(), Value::from(s.passed));
    obj.insert("window_start".into(), Value::String(start));
    obj.insert("window_end".into(), Value::String(end));
    // a key of ours named as the message key: the message wins (it is what lands readable)
    obj.insert(key.to_string(), Value::String(text));
    out.push_str(&Value::Object(obj).to_string());
}

/// Fast path: the input bytes stay as they were; the fields go before the closing brace.
#[allow(clippy::too_many_arguments)]
fn append_fields(buf: &mut String, line: &str, empty: bool, v: &Verdict, template: &str, policy: FieldPolicy, reason: &mut String, explanation: Option<&Answered>) {
    // the parse succeeded, so without JSON whitespace around it the line is `{…}`
    let body = line.trim_matches(JSON_WS);
    let body = body.strip_suffix('}').unwrap_or(body);
    buf.push_str(body);
    if !empty {
        buf.push(',');
    }
    let n = policy.fields_for(v.anomaly);
    let _ = write!(buf, "\"anomaly\":{}", v.anomaly);
    if n >= 3 {
        let _ = write!(buf, ",\"anomaly_score\":{},\"template_id\":{}", score(v), v.template_id);
    }
    if n == 5 {
        buf.push_str(",\"template\":");
        push_json_str(buf, template);
        buf.push_str(",\"anomaly_reason\":");
        match reason_of(v, reason) {
            Some(r) => push_json_str(buf, r),
            None => buf.push_str("null"),
        }
    }
    if let Some(e) = explanation {
        buf.push_str(",\"anomaly_explanation\":");
        buf.push_str(&e.json);
    }
    buf.push('}');
}

/// Slow path, when the record already has fields of ours: replace them.
fn tagged_object(buf: &mut String, mut obj: Map<String, Value>, v: &Verdict, template: &str, policy: FieldPolicy, reason: &mut String, explanation: Option<&Answered>) {
    for f in FIELDS {
        obj.shift_remove(f);
    }
    let n = policy.fields_for(v.anomaly);
    obj.insert("anomaly".into(), Value::Bool(v.anomaly));
    if n >= 3 {
        obj.insert("anomaly_score".into(), serde_json::json!(score(v)));
        obj.insert("template_id".into(), Value::from(v.template_id));
    }
    if n == 5 {
        obj.insert("template".into(), Value::String(template.to_string()));
        obj.insert("anomaly_reason".into(), reason_of(v, reason).map_or(Value::Null, |r| Value::String(r.to_string())));
    }
    if let Some(e) = explanation {
        obj.insert("anomaly_explanation".into(), Value::String(e.text.to_string()));
    }
    // serialising a map of JSON values cannot fail
    if let Ok(s) = serde_json::to_string(&obj) {
        buf.push_str(&s);
    }
}

fn push_json_str(buf: &mut String, s: &str) {
    if let Ok(s) = serde_json::to_string(s) {
        buf.push_str(&s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_one_level_down_is_found_under_the_default_keys_only() {
        // Logstash's own JSON log (realworld/logstash)
        let line = r#"{"level":"WARN","loggerName":"logstash.outputs.elasticsearch","timeMillis":1612827484046,"thread":"[foo]>worker1","logEvent":{"message":"Could not index event to Elasticsearch."}}"#;
        let obj = parse_object(line).unwrap().unwrap();
        let m = record(&obj, &[]).unwrap();
        assert_eq!((m.message.as_ref(), m.level), ("Could not index event to Elasticsearch.", Some(Level::Warn)));
        // a top-level message wins; named keys are not searched below their own path
        let obj = parse_object(r#"{"ctx":{"msg":"inner"},"msg":"outer"}"#).unwrap().unwrap();
        assert_eq!(record(&obj, &[]).unwrap().message, "outer");
        assert!(record(&obj, &["text".to_string()]).is_none());
        let mut tagger = LineTagger::default();
        let mut out = String::new();
        assert!(matches!(tagger.tag_line(line, 1, &mut crate::detect::Engine::new(Default::default()), &mut out), Outcome::Tagged(_)), "{out}");
        assert!(out.starts_with(&line[..line.len() - 1]) && out.contains("\"anomaly\":"), "{out}");
    }

    #[test]
    fn record_times_from_fields_and_headers() {
        let obj = |j: &str| parse_object(j).unwrap().unwrap();
        // journald: microseconds in a string (neither epoch seconds nor milliseconds)
        assert_eq!(record_time("", Some(&obj(r#"{"__REALTIME_TIMESTAMP":"1795515600123456","MESSAGE":"x"}"#))), Some(1_795_515_600));
        assert_eq!(record_time("", Some(&obj(r#"{"time":"2026-11-24T10:20:00Z"}"#))), Some(1_795_515_600));
        assert_eq!(record_time("", Some(&obj(r#"{"ts":1795515600123}"#))), Some(1_795_515_600));
        assert_eq!(record_time("", Some(&obj(r#"{"msg":"no time"}"#))), None);
        assert_eq!(record_time("2026-11-24T10:20:00Z INFO x", None), Some(1_795_515_600));
    }
}
