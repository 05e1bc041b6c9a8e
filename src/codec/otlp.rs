//! OTLP logs (OpenTelemetry's `ExportLogsServiceRequest`) both ways, through the generated
//! messages of `opentelemetry-proto` (protobuf with prost, OTLP JSON with its serde mapping).
//!
//! In, each log record becomes one NDJSON object the pipeline reads like any other:
//! `message` (the body string, or the `message`/`msg`/`log` key of a map body, which is kept
//! whole under `body`), `level` (`severity_text`, else named from `severity_number`), then
//! `severity_number`, `time_unix_nano`, `observed_time_unix_nano` (decimal strings, as OTLP JSON
//! writes int64), `trace_id`, `span_id` (hex), `attributes`, `resource` (the resource's
//! attributes: `service.name` …) and `scope` (`name`, `version`). The keys are nested, so a
//! record's attributes never overwrite the message or the level.
//!
//! Out, a tagged NDJSON object goes back the same way, and any other key (the verdict, the keys
//! of records that came in as NDJSON or Forward) becomes an attribute; the verdict under the
//! OpenTelemetry names: `turbolog.anomaly`, `turbolog.score`, `turbolog.template_id`,
//! `log.record.template` (the Collector's Drain processor's name) and `turbolog.reason`.
//! Consecutive records with the same resource and scope stay grouped under them.

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::borrow::Cow;

use prost::Message;
use serde_json::{Map, Value};

use super::json_text;
use super::known::{self, Known};

/// How an OTLP body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// By the `Content-Type` OTLP/HTTP sends (`application/x-protobuf` or `application/json`).
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match ct.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// What [`decode`] made of a request: records appended, and records refused (with why).
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    pub records: usize,
    /// Records whose line would be longer than `max_line`: not appended, reported back to the
    /// sender as an OTLP partial success.
    pub rejected: usize,
    pub why: String,
}

/// Appends one NDJSON line per log record of an OTLP request to `out`, each at most `max_line`
/// bytes (longer ones are left out and counted in `rejected`).
/// Written straight from the decoded messages (no JSON tree per record); the resource and the
/// scope are written once per group and copied into each of its records.
pub fn decode(body: &[u8], encoding: Encoding, out: &mut String, max_line: usize) -> Result<Decoded, String> {
    decode_known(body, encoding, out, None, max_line)
}

/// [`decode`], and with `known` one [`Known`] per line appended (its top-level fields, moved
/// out of the request: tagging need not read the line again).
pub fn decode_known(body: &[u8], encoding: Encoding, out: &mut String, known: Option<&mut Vec<Known>>, max_line: usize) -> Result<Decoded, String> {
    let request = match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body).map_err(|e| format!("the body is not an OTLP ExportLogsServiceRequest in protobuf: {e}"))?,
        Encoding::Json => serde_json::from_slice(body).map_err(|e| format!("the body is not an OTLP ExportLogsServiceRequest in OTLP JSON: {e}"))?,
    };
    Ok(decode_request(request, out, known, max_line))
}

/// [`decode_known`] for a request already decoded (OTLP/gRPC).
pub fn decode_request(request: ExportLogsServiceRequest, out: &mut String, mut known: Option<&mut Vec<Known>>, max_line: usize) -> Decoded {
    let mut decoded = Decoded::default();
    let mut resource = String::new();
    let mut scope = String::new();
    if let Some(k) = known.as_deref_mut() {
        k.reserve(request.resource_logs.iter().flat_map(|rl| &rl.scope_logs).map(|sl| sl.log_records.len()).sum());
    }
    // walked in place: a record's strings are taken, the record itself (large) is not moved
    for mut rl in request.resource_logs {
        resource.clear();
        if let Some(r) = rl.resource.as_ref().filter(|r| !r.attributes.is_empty()) {
            write_key_values(&mut resource, &r.attributes);
        }
        for sl in &mut rl.scope_logs {
            scope.clear();
            if let Some(sc) = &sl.scope {
                write_scope(&mut scope, sc);
            }
            out.reserve(lines_len(&sl.log_records, resource.len() + scope.len()));
            for record in &mut sl.log_records {
                let start = out.len();
                let written = write_record(out, record, &resource, &scope);
                if out.len() - start > max_line {
                    out.truncate(start);
                    decoded.rejected += 1;
                    continue;
                }
                decoded.records += 1;
                if let Some(k) = known.as_deref_mut() {
                    k.push(known_of(record, written));
                }
            }
        }
    }
    if decoded.rejected > 0 {
        decoded.why = format!("{} log records are longer than --max-line {max_line} bytes as JSON lines: send smaller records, or raise --max-line", decoded.rejected);
    }
    decoded
}

/// About how long the lines of `records` will be (each with `group` bytes of resource and
/// scope), so the text grows once; never much more than what their messages hold, whatever
/// a request of many empty records makes of the fixed part.
fn lines_len(records: &[LogRecord], group: usize) -> usize {
    let messages: usize = records.iter().map(|r| match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.len(),
        _ => 0,
    }).sum();
    (messages + records.len() * (group + 112)).min(4 * messages + (1 << 20))
}

/// What [`write_record`] wrote: the top-level keys (bits of [`known::KEYS`]), and which entry
/// of a map body gave the message.
#[derive(Clone, Copy)]
struct Written {
    present: u16,
    map_message: Option<usize>,
}

/// A written record's [`Known`], its strings taken out of it.
fn known_of(r: &mut LogRecord, w: Written) -> Known {
    let message = match r.body.take().and_then(|b| b.value) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        Some(any_value::Value::KvlistValue(mut kv)) => w.map_message.and_then(|i| match kv.values.swap_remove(i).value?.value? {
            any_value::Value::StringValue(s) => Some(s),
            _ => None,
        }),
        _ => None,
    };
    let level = match r.severity_text.is_empty() {
        false => Some(Cow::Owned(std::mem::take(&mut r.severity_text))),
        true => severity_name(r.severity_number).map(Cow::Borrowed),
    };
    Known {
        present: w.present,
        message,
        level,
        severity_number: r.severity_number,
        time_unix_nano: r.time_unix_nano,
        observed_time_unix_nano: r.observed_time_unix_nano,
        trace_id: std::mem::take(&mut r.trace_id),
        span_id: std::mem::take(&mut r.span_id),
    }
}

/// The entry of a map body whose string is the message: the first `message`, else `msg`, else `log`.
fn message_entry(kv: &KeyValueList) -> Option<usize> {
    ["message", "msg", "log"].iter().find_map(|k| {
        let i = kv.values.iter().position(|e| e.key == *k)?;
        matches!(kv.values[i].value.as_ref()?.value.as_ref()?, any_value::Value::StringValue(_)).then_some(i)
    })
}

fn write_record(buf: &mut String, r: &LogRecord, resource: &str, scope: &str) -> Written {
    let (mut present, mut map_message) = (0u16, None);
    buf.push('{');
    // the keys are plain: written as they are
    let mut key = |buf: &mut String, i: usize| {
        if present != 0 {
            buf.push(',');
        }
        present |= known::bit(i);
        buf.push('"');
        buf.push_str(known::KEYS[i]);
        buf.push_str("\":");
    };
    let mut map_body = None;
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => {
            key(buf, known::MESSAGE);
            json_text::push_str(buf, s);
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            map_message = message_entry(kv);
            if let Some(any_value::Value::StringValue(m)) = map_message.and_then(|i| kv.values[i].value.as_ref()?.value.as_ref()) {
                key(buf, known::MESSAGE);
                json_text::push_str(buf, m);
            }
            map_body = Some(kv);
        }
        Some(other) => {
            key(buf, known::MESSAGE);
            match other {
                any_value::Value::BoolValue(b) => json_text::push_str(buf, if *b { "true" } else { "false" }),
                any_value::Value::IntValue(i) => json_text::push_str(buf, &i.to_string()),
                any_value::Value::DoubleValue(d) => json_text::push_str(buf, &d.to_string()),
                any_value::Value::BytesValue(b) => json_text::push_str(buf, &hex(b)),
                v => {
                    let mut inner = String::new();
                    write_any(&mut inner, v);
                    json_text::push_str(buf, &inner);
                }
            }
        }
        None => {}
    }
    let level = if !r.severity_text.is_empty() { Some(r.severity_text.as_str()) } else { severity_name(r.severity_number) };
    if let Some(l) = level {
        key(buf, known::LEVEL);
        json_text::push_str(buf, l);
    }
    if r.severity_number != 0 {
        key(buf, known::SEVERITY_NUMBER);
        json_text::push_int(buf, r.severity_number);
    }
    for (k, t) in [(known::TIME, r.time_unix_nano), (known::OBSERVED_TIME, r.observed_time_unix_nano)] {
        if t != 0 {
            key(buf, k);
            // int64 as a string, as OTLP JSON writes it
            buf.push('"');
            json_text::push_int(buf, t);
            buf.push('"');
        }
    }
    for (k, id) in [(known::TRACE_ID, &r.trace_id), (known::SPAN_ID, &r.span_id)] {
        if !id.is_empty() {
            key(buf, k);
            buf.push('"');
            known::push_hex(buf, id);
            buf.push('"');
        }
    }
    if let Some(kv) = map_body {
        key(buf, known::BODY);
        write_key_values(buf, &kv.values);
    }
    if !r.attributes.is_empty() {
        key(buf, known::ATTRIBUTES);
        write_key_values(buf, &r.attributes);
    }
    if !resource.is_empty() {
        key(buf, known::RESOURCE);
        buf.push_str(resource);
    }
    if !scope.is_empty() {
        key(buf, known::SCOPE);
        buf.push_str(scope);
    }
    buf.push_str("}\n");
    Written { present, map_message }
}

fn write_scope(buf: &mut String, s: &InstrumentationScope) {
    buf.push('{');
    let mut sep = "";
    for (k, v) in [("name", &s.name), ("version", &s.version)] {
        if !v.is_empty() {
            buf.push_str(sep);
            json_text::push_str(buf, k);
            buf.push(':');
            json_text::push_str(buf, v);
            sep = ",";
        }
    }
    if !s.attributes.is_empty() {
        buf.push_str(sep);
        json_text::push_str(buf, "attributes");
        buf.push(':');
        write_key_values(buf, &s.attributes);
    }
    buf.push('}');
}

/// A JSON object of key/values; a repeated key keeps its last value, as a JSON map would.
fn write_key_values(buf: &mut String, kvs: &[KeyValue]) {
    buf.push('{');
    let mut sep = false;
    // long lists (a hostile body) find repeated keys by a map, not by pairs
    let last: Option<std::collections::HashMap<&str, usize>> = (kvs.len() > 16).then(|| kvs.iter().enumerate().map(|(i, kv)| (kv.key.as_str(), i)).collect());
    for (i, kv) in kvs.iter().enumerate() {
        let repeated = match &last {
            Some(m) => m.get(kv.key.as_str()) != Some(&i),
            None => kvs[i + 1..].iter().any(|later| later.key == kv.key),
        };
        if repeated {
            continue;
        }
        if sep {
            buf.push(',');
        }
        sep = true;
        json_text::push_str(buf, &kv.key);
        buf.push(':');
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(v) => write_any(buf, v),
            None => buf.push_str("null"),
        }
    }
    buf.push('}');
}

fn write_any(buf: &mut String, v: &any_value::Value) {
    use any_value::Value as V;
    match v {
        V::StringValue(s) => json_text::push_str(buf, s),
        V::BoolValue(b) => buf.push_str(if *b { "true" } else { "false" }),
        V::IntValue(i) => json_text::push_int(buf, *i),
        V::DoubleValue(d) => json_text::push_f64(buf, *d),
        V::ArrayValue(a) => {
            buf.push('[');
            for (i, x) in a.values.iter().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                match &x.value {
                    Some(v) => write_any(buf, v),
                    None => buf.push_str("null"),
                }
            }
            buf.push(']');
        }
        V::KvlistValue(kv) => write_key_values(buf, &kv.values),
        V::BytesValue(b) => {
            buf.push('"');
            known::push_hex(buf, b);
            buf.push('"');
        }
        _ => buf.push_str("null"),
    }
}

/// The reply to a request fully accepted.
pub fn accepted_response(encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => ExportLogsServiceResponse::default().encode_to_vec(),
        // the serde mapping writes `"partialSuccess":null`; OTLP JSON omits an absent message
        Encoding::Json => b"{}".to_vec(),
    }
}

/// The reply to a request of which `rejected` records were refused (`why`) and the rest
/// accepted: an OTLP partial success.
pub fn partial_response(rejected: usize, why: &str, encoding: Encoding) -> Vec<u8> {
    let response = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess { rejected_log_records: rejected as i64, error_message: why.to_string() }),
    };
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&response).unwrap_or_default(),
    }
}

/// `google.rpc.Status`, the body OTLP/HTTP answers a refused request with (its `details` left
/// empty); `code` is a gRPC status code (see [`grpc_code`]).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The gRPC status code of an HTTP status, as the OTLP and gRPC specifications map them.
pub fn grpc_code(http: u16) -> i32 {
    match http {
        400 | 413 => 3,   // INVALID_ARGUMENT
        401 => 16,        // UNAUTHENTICATED
        403 => 7,         // PERMISSION_DENIED
        404 => 5,         // NOT_FOUND
        405 | 415 => 12,  // UNIMPLEMENTED
        429 => 8,         // RESOURCE_EXHAUSTED
        502..=504 => 14,  // UNAVAILABLE
        _ => 2,           // UNKNOWN
    }
}

/// A refusal's body: a `google.rpc.Status` in the request's encoding.
pub fn status_body(http: u16, message: &str, encoding: Encoding) -> Vec<u8> {
    let status = Status { code: grpc_code(http), message: message.trim_end().to_string() };
    match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&status).unwrap_or_default(),
    }
}

/// The message of a refusal's body, when it is a `google.rpc.Status` (else the body as text).
pub fn status_message(body: &[u8], content_type: &str) -> String {
    let status = match Encoding::from_content_type(content_type) {
        Some(Encoding::Protobuf) => Status::decode(body).ok(),
        Some(Encoding::Json) => serde_json::from_slice::<Status>(body).ok(),
        None => None,
    };
    match status {
        Some(s) if !s.message.is_empty() => s.message,
        _ => String::from_utf8_lossy(&body[..body.len().min(300)]).trim().to_string(),
    }
}

/// How many records a downstream's reply says it rejected, and why (OTLP partial success).
pub fn rejected_by(reply: &[u8], encoding: Encoding) -> Option<(i64, String)> {
    let response: ExportLogsServiceResponse = match encoding {
        Encoding::Protobuf => ExportLogsServiceResponse::decode(reply).ok()?,
        Encoding::Json => serde_json::from_slice(reply).ok()?,
    };
    let partial = response.partial_success?;
    (partial.rejected_log_records > 0 || !partial.error_message.is_empty()).then_some((partial.rejected_log_records, partial.error_message))
}

/// The level names of the OpenTelemetry log data model's severity ranges.
fn severity_name(n: i32) -> Option<&'static str> {
    Some(match n {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => return None,
    })
}

/// The severity number of a level name (the lowest of its range), for records that have none.
fn severity_number(level: &str) -> i32 {
    match level.to_ascii_uppercase().as_str() {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" | "NOTICE" => 9,
        "WARN" | "WARNING" => 13,
        "ERROR" | "ERR" => 17,
        "FATAL" | "CRITICAL" | "CRIT" | "EMERG" | "ALERT" | "PANIC" => 21,
        _ => 0,
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    known::push_hex(&mut s, bytes);
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The verdict fields the pipeline adds, and their OpenTelemetry attribute names.
const VERDICT_NAMES: [(&str, &str); 5] = [
    ("anomaly", "turbolog.anomaly"),
    ("anomaly_score", "turbolog.score"),
    ("template_id", "turbolog.template_id"),
    ("template", "log.record.template"),
    ("anomaly_reason", "turbolog.reason"),
];

/// Tagged NDJSON (one object, or a plain text line, per line) as an OTLP request.
pub fn encode(ndjson: &str, encoding: Encoding) -> Vec<u8> {
    let request = to_request(ndjson);
    match encoding {
        Encoding::Protobuf => request.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&request).unwrap_or_default(),
    }
}

/// Tagged NDJSON as an OTLP request message (for OTLP/gRPC, which frames it itself).
pub fn to_request(ndjson: &str) -> ExportLogsServiceRequest {
    let mut request = ExportLogsServiceRequest::default();
    let mut last_group: Option<(Option<Value>, Option<Value>)> = None;
    for line in ndjson.lines().filter(|l| !l.trim().is_empty()) {
        let (record, resource, scope) = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => record_from(o),
            _ => (LogRecord { body: Some(string_value(line.to_string())), ..Default::default() }, None, None),
        };
        let group = (resource, scope);
        if last_group.as_ref() != Some(&group) || request.resource_logs.is_empty() {
            request.resource_logs.push(ResourceLogs {
                resource: group.0.clone().map(|r| Resource { attributes: key_values(r), ..Default::default() }),
                scope_logs: vec![ScopeLogs { scope: group.1.clone().map(scope_from), ..Default::default() }],
                ..Default::default()
            });
            last_group = Some(group);
        }
        if let Some(sl) = request.resource_logs.last_mut().and_then(|rl| rl.scope_logs.last_mut()) {
            sl.log_records.push(record);
        }
    }
    request
}

fn record_from(mut o: Map<String, Value>) -> (LogRecord, Option<Value>, Option<Value>) {
    let mut r = LogRecord::default();
    let resource = o.remove("resource").filter(Value::is_object);
    let scope = o.remove("scope").filter(Value::is_object);
    let message = o.remove("message");
    r.body = match (o.remove("body"), message) {
        (Some(b @ Value::Object(_)), _) => Some(any(b)),
        (b, Some(m)) => {
            if let Some(b) = b {
                o.insert("body".into(), b);
            }
            Some(match m {
                Value::String(s) => string_value(s),
                other => any(other),
            })
        }
        (b, None) => b.map(any),
    };
    if let Some(Value::String(l)) = o.remove("level") {
        r.severity_number = severity_number(&l);
        r.severity_text = l;
    }
    if let Some(n) = o.remove("severity_number").and_then(|v| v.as_i64()) {
        r.severity_number = n as i32;
    }
    let nanos = |v: Option<Value>| v.and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_u64())).unwrap_or(0);
    r.time_unix_nano = nanos(o.remove("time_unix_nano"));
    r.observed_time_unix_nano = nanos(o.remove("observed_time_unix_nano"));
    for (key, field) in [("trace_id", &mut r.trace_id), ("span_id", &mut r.span_id)] {
        if let Some(bytes) = o.get(key).and_then(Value::as_str).and_then(unhex) {
            *field = bytes;
            o.remove(key);
        }
    }
    if let Some(Value::Object(a)) = o.remove("attributes") {
        r.attributes = key_values(Value::Object(a));
    }
    for (key, v) in o {
        if v.is_null() {
            continue;
        }
        let name = VERDICT_NAMES.iter().find(|(k, _)| *k == key).map_or(key.as_str(), |(_, otel)| otel).to_string();
        let v = match (name.as_str(), &v) {
            // a whole score is still a double, so receivers see one type per attribute
            ("turbolog.score", Value::Number(n)) => AnyValue { value: Some(any_value::Value::DoubleValue(n.as_f64().unwrap_or(0.0))) },
            _ => any(v),
        };
        r.attributes.push(KeyValue { key: name, value: Some(v), ..Default::default() });
    }
    (r, resource, scope)
}

fn scope_from(v: Value) -> InstrumentationScope {
    let Value::Object(mut o) = v else { return InstrumentationScope::default() };
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    InstrumentationScope {
        name: text(o.remove("name")),
        version: text(o.remove("version")),
        attributes: o.remove("attributes").map(key_values).unwrap_or_default(),
        ..Default::default()
    }
}

fn key_values(v: Value) -> Vec<KeyValue> {
    let Value::Object(o) = v else { return Vec::new() };
    o.into_iter().filter(|(_, v)| !v.is_null()).map(|(key, v)| KeyValue { key, value: Some(any(v)), ..Default::default() }).collect()
}

fn string_value(s: String) -> AnyValue {
    AnyValue { value: Some(any_value::Value::StringValue(s)) }
}

fn any(v: Value) -> AnyValue {
    use any_value::Value as V;
    let value = match v {
        Value::Null => None,
        Value::Bool(b) => Some(V::BoolValue(b)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => V::IntValue(i),
            None => V::DoubleValue(n.as_f64().unwrap_or(0.0)),
        }),
        Value::String(s) => Some(V::StringValue(s)),
        Value::Array(a) => Some(V::ArrayValue(ArrayValue { values: a.into_iter().map(any).collect() })),
        Value::Object(o) => Some(V::KvlistValue(KeyValueList { values: key_values(Value::Object(o)) })),
    };
    AnyValue { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = usize::MAX;

    fn kv(key: &str, s: &str) -> KeyValue {
        KeyValue { key: key.into(), value: Some(string_value(s.into())), ..Default::default() }
    }

    fn request() -> ExportLogsServiceRequest {
        let record = |body: AnyValue, sev: i32, text: &str| LogRecord {
            time_unix_nano: 1_700_000_000_123_456_789,
            severity_number: sev,
            severity_text: text.into(),
            body: Some(body),
            attributes: vec![kv("user", "alice"), KeyValue { key: "n".into(), value: Some(any(Value::from(7))), ..Default::default() }],
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            ..Default::default()
        };
        let map_body = any(serde_json::json!({"msg": "disk full on /dev/sda1", "code": 28}));
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource { attributes: vec![kv("service.name", "checkout")], ..Default::default() }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope { name: "app".into(), version: "1.2".into(), ..Default::default() }),
                    log_records: vec![record(string_value("user alice logged in".into()), 9, ""), record(map_body, 17, "Error")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn protobuf_and_json_requests_become_the_same_lines() {
        let req = request();
        let mut from_pb = String::new();
        assert_eq!(decode(&req.encode_to_vec(), Encoding::Protobuf, &mut from_pb, MAX).unwrap().records, 2);
        let json = serde_json::to_vec(&req).unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        // the OTLP JSON encoding: hex ids, 64-bit integers as strings
        assert!(text.contains(&"ab".repeat(16)) && text.contains("\"1700000000123456789\""), "{text}");
        let mut from_json = String::new();
        assert_eq!(decode(&json, Encoding::Json, &mut from_json, MAX).unwrap().records, 2);
        assert_eq!(from_pb, from_json);
        let lines: Vec<Value> = from_pb.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["message"], "user alice logged in");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["resource"]["service.name"], "checkout");
        assert_eq!(lines[0]["attributes"]["n"], 7);
        assert_eq!(lines[0]["trace_id"], "ab".repeat(16));
        assert_eq!(lines[0]["time_unix_nano"], "1700000000123456789");
        assert_eq!(lines[1]["message"], "disk full on /dev/sda1");
        assert_eq!(lines[1]["level"], "Error");
        assert_eq!(lines[1]["body"]["code"], 28);
    }

    #[test]
    fn known_fields_are_what_reading_the_line_finds_for_every_reader() {
        use crate::codec::skim::{self, Wanted};
        let mut req = request();
        let records = &mut req.resource_logs[0].scope_logs[0].log_records;
        let base = records[0].clone();
        let body = |v: any_value::Value| Some(AnyValue { value: Some(v) });
        let kvs = |pairs: &[(&str, any_value::Value)]| KeyValueList { values: pairs.iter().map(|(k, v)| KeyValue { key: k.to_string(), value: Some(AnyValue { value: Some(v.clone()) }), ..Default::default() }).collect() };
        use any_value::Value as V;
        let variants = [
            LogRecord { body: body(V::StringValue("quote \" tab \t ü \u{1}".into())), severity_text: "Warning".into(), ..base.clone() },
            LogRecord { body: body(V::IntValue(42)), severity_number: 0, ..base.clone() },
            LogRecord { body: body(V::KvlistValue(kvs(&[("msg", V::IntValue(1)), ("log", V::StringValue("from log".into())), ("msg", V::StringValue("later".into()))]))), ..base.clone() },
            LogRecord { body: body(V::KvlistValue(kvs(&[("message", V::StringValue("first".into())), ("message", V::StringValue("second".into()))]))), ..base.clone() },
            LogRecord { body: None, attributes: vec![kv("message", "in attributes")], trace_id: vec![], span_id: vec![], time_unix_nano: 0, ..base.clone() },
            LogRecord { severity_number: -3, observed_time_unix_nano: 17, ..base.clone() },
        ];
        records.extend(variants);
        let mut lines = String::new();
        let mut known = Vec::new();
        let d = decode_known(&req.encode_to_vec(), Encoding::Protobuf, &mut lines, Some(&mut known), MAX).unwrap();
        assert_eq!((d.records, known.len(), lines.lines().count()), (8, 8, 8));
        let readers = [
            Wanted::new(crate::codec::ndjson::DEFAULT_KEYS.iter().copied(), None),
            Wanted::new(crate::codec::ndjson::DEFAULT_KEYS.iter().copied(), Some("trace_id")),
            Wanted::new(["message", "severity_number", "time_unix_nano", "observed_time_unix_nano", "span_id"], None),
            Wanted::new(["body.msg"], Some("attributes.user")),
            Wanted::new(["resource.service.name"], None),
        ];
        let mut carried = 0;
        for w in &readers {
            for (line, k) in lines.lines().zip(&known) {
                let read = skim::parse(line, w).unwrap();
                match k.clone().object(|key| w.keeps(key)) {
                    Some(m) => {
                        carried += 1;
                        assert_eq!(m, read, "{line}");
                        assert_eq!(m.keys().collect::<Vec<_>>(), read.keys().collect::<Vec<_>>(), "{line}");
                    }
                    // not carried: the line is read, so anything is right; but only for an object or a non-string message
                    None => assert!(read.keys().any(|key| ["body", "attributes", "resource", "scope"].contains(&key.as_str())) || !read["message"].is_string() || line.contains("\"message\":\"42\""), "{line}"),
                }
            }
        }
        assert!(carried >= 20, "most records are carried for the default readers: {carried}");
        // a record left out for its length has no known fields either
        let mut out = String::new();
        let mut known = Vec::new();
        let d = decode_known(&req.encode_to_vec(), Encoding::Protobuf, &mut out, Some(&mut known), 200).unwrap();
        assert_eq!(known.len(), d.records);
        for (line, k) in out.lines().zip(known) {
            assert_eq!(k.object(|key| readers[0].keeps(key)), Some(skim::parse(line, &readers[0]).unwrap()));
        }
    }

    #[test]
    fn json_with_integers_as_numbers_is_taken_too() {
        let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":1700000000000000000,"severityNumber":13,"body":{"stringValue":"slow"},"attributes":[{"key":"k","value":{"intValue":5}}]}]}]}]}"#;
        let mut out = String::new();
        assert_eq!(decode(body, Encoding::Json, &mut out, MAX).unwrap().records, 1);
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!((v["level"].as_str(), v["attributes"]["k"].as_i64()), (Some("WARN"), Some(5)));
    }

    #[test]
    fn a_repeated_attribute_keeps_its_last_value_in_short_and_long_lists() {
        for filler in [0, 40] {
            let mut attrs: Vec<KeyValue> = (0..filler).map(|i| kv(&format!("k{i}"), "v")).collect();
            attrs.push(kv("dup", "first"));
            attrs.push(kv("dup", "last"));
            let req = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs { log_records: vec![LogRecord { attributes: attrs, ..Default::default() }], ..Default::default() }],
                    ..Default::default()
                }],
            };
            let mut out = String::new();
            decode(&req.encode_to_vec(), Encoding::Protobuf, &mut out, MAX).unwrap();
            assert_eq!(out.matches("\"dup\"").count(), 1, "{out}");
            let v: Value = serde_json::from_str(out.trim()).unwrap();
            assert_eq!(v["attributes"]["dup"], "last");
            assert_eq!(v["attributes"].as_object().unwrap().len(), filler + 1);
        }
    }

    #[test]
    fn records_longer_than_max_line_are_left_out_and_counted_for_a_partial_success() {
        let mut req = request();
        let long = "x".repeat(500);
        req.resource_logs[0].scope_logs[0].log_records[1].body = Some(string_value(long));
        let mut out = String::new();
        let d = decode(&req.encode_to_vec(), Encoding::Protobuf, &mut out, 400).unwrap();
        assert_eq!((d.records, d.rejected), (1, 1), "{out}");
        assert!(d.why.contains("--max-line 400"), "{}", d.why);
        assert_eq!(out.lines().count(), 1);
        assert!(!out.contains("xxxx"));
        for enc in [Encoding::Protobuf, Encoding::Json] {
            let reply = partial_response(d.rejected, &d.why, enc);
            assert_eq!(rejected_by(&reply, enc), Some((1, d.why.clone())), "{enc:?}");
        }
    }

    #[test]
    fn refusals_are_google_rpc_status_bodies_in_the_request_encoding() {
        let pb = status_body(400, "the body is not protobuf\n", Encoding::Protobuf);
        assert_eq!(Status::decode(&pb[..]).unwrap(), Status { code: 3, message: "the body is not protobuf".into() });
        let json = status_body(503, "the queue is full", Encoding::Json);
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!((v["code"].as_i64(), v["message"].as_str()), (Some(14), Some("the queue is full")));
        assert_eq!(status_message(&pb, "application/x-protobuf"), "the body is not protobuf");
        assert_eq!(status_message(&json, "application/json"), "the queue is full");
        assert_eq!(status_message(b"nope", "text/plain"), "nope");
        assert_eq!(grpc_code(401), 16);
    }

    #[test]
    fn bad_bodies_say_what_was_expected() {
        let mut out = String::new();
        assert!(decode(b"\xff\xff\xff", Encoding::Protobuf, &mut out, MAX).unwrap_err().contains("protobuf"));
        assert!(decode(b"[1,2]", Encoding::Json, &mut out, MAX).unwrap_err().contains("OTLP JSON"));
        assert!(out.is_empty());
        assert_eq!(Encoding::from_content_type("application/json; charset=utf-8"), Some(Encoding::Json));
        assert_eq!(Encoding::from_content_type("text/plain"), None);
    }

    #[test]
    fn tagged_lines_go_back_grouped_with_the_verdict_as_attributes() {
        let mut lines = String::new();
        decode(&request().encode_to_vec(), Encoding::Protobuf, &mut lines, MAX).unwrap();
        let tagged: String = lines
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let mut o: Map<String, Value> = serde_json::from_str(l).unwrap();
                o.insert("anomaly".into(), Value::Bool(i == 1));
                o.insert("anomaly_score".into(), Value::from(if i == 1 { 1 } else { 0 }));
                o.insert("template_id".into(), Value::from(i));
                o.insert("template".into(), Value::from("disk full on <*>"));
                o.insert("anomaly_reason".into(), if i == 1 { Value::from("new template") } else { Value::Null });
                serde_json::to_string(&o).unwrap() + "\n"
            })
            .collect::<String>()
            + "{\"message\":\"from tcp\",\"anomaly\":false}\nplain text line\n";
        let back = ExportLogsServiceRequest::decode(&encode(&tagged, Encoding::Protobuf)[..]).unwrap();
        assert_eq!(back.resource_logs.len(), 2, "the two OTLP records share their resource; the NDJSON ones have none");
        let rl = &back.resource_logs[0];
        assert_eq!(rl.resource.as_ref().unwrap().attributes, vec![kv("service.name", "checkout")]);
        assert_eq!(rl.scope_logs[0].scope.as_ref().unwrap().name, "app");
        let recs = &rl.scope_logs[0].log_records;
        let orig = &request().resource_logs[0].scope_logs[0].log_records;
        for (r, o) in recs.iter().zip(orig) {
            assert_eq!((&r.body, r.time_unix_nano, &r.trace_id, &r.span_id, r.severity_number), (&o.body, o.time_unix_nano, &o.trace_id, &o.span_id, o.severity_number));
        }
        let attr = |r: &LogRecord, k: &str| r.attributes.iter().find(|a| a.key == k).and_then(|a| a.value.clone()).and_then(|v| v.value);
        assert_eq!(attr(&recs[1], "turbolog.anomaly"), Some(any_value::Value::BoolValue(true)));
        assert_eq!(attr(&recs[1], "turbolog.score"), Some(any_value::Value::DoubleValue(1.0)));
        assert_eq!(attr(&recs[1], "turbolog.template_id"), Some(any_value::Value::IntValue(1)));
        assert_eq!(attr(&recs[1], "turbolog.reason"), Some(any_value::Value::StringValue("new template".into())));
        assert_eq!(attr(&recs[0], "turbolog.reason"), None, "a null reason is no attribute");
        assert_eq!(attr(&recs[0], "user"), Some(any_value::Value::StringValue("alice".into())));
        let other = &back.resource_logs[1].scope_logs[0].log_records;
        assert_eq!(other.len(), 2);
        assert_eq!(other[1].body, Some(string_value("plain text line".into())));
        // and as OTLP JSON, which our own decoder reads back
        let mut again = String::new();
        assert_eq!(decode(&encode(&tagged, Encoding::Json), Encoding::Json, &mut again, MAX).unwrap().records, 4);
    }
}
