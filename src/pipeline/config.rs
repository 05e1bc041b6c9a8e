//! The pipeline's settings: one table of properties (the Fluent Bit plugin's and the C API's; the
//! CLI's flags fill the same [`Settings`]).
//!
//! Every property is declared once, with its default and description, in [`PROPERTIES`]. The
//! same table validates the Fluent Bit configuration and the C API's JSON or key/value config,
//! prints `turbolog plugin-props`, and is what the README's property list is made from.

use std::path::PathBuf;

use crate::codec::fields::{FieldNames, FieldPolicy, Mode};
use crate::detect::engine::EngineConfig;

pub struct Property {
    pub name: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

pub const PROPERTIES: &[Property] = &[
    Property { name: "state_dir", default: "", description: "Directory where what the engine learns is kept across restarts; empty = learn in memory only" },
    Property { name: "message_key", default: "log,message,msg,MESSAGE,@message", description: "Record key(s) holding the message, comma-separated, first found wins" },
    Property { name: "mode", default: "tag", description: "tag: add fields to every record; only_anomalies: drop records that are not anomalous" },
    Property { name: "threshold", default: "", description: "Fixed anomaly threshold in [0, 1]; empty = self-calibrating (base 0.5)" },
    Property { name: "window", default: "10", description: "Seconds between window seals (templates.tls and a sealed chunk; new templates reach the WAL at once); 0 = seal only at flush and exit. With reduce on, also how long each window of counts lasts (its summaries go out at its end)" },
    Property { name: "epoch", default: "1000", description: "Records per epoch, the window in which bursts and novelty are measured" },
    Property { name: "establish", default: "3", description: "Epochs a template must appear in before it counts as normal (up to 4x as many for templates with error levels or words)" },
    Property { name: "fsync", default: "never", description: "never: appends survive a process crash, an OS crash may lose the last seconds; always: fsync every append" },
    Property { name: "max_store_mb", default: "256", description: "Cap on stored vectors (MiB); compaction keeps the newest templates' vectors within it; 0 = no cap" },
    Property { name: "max_templates", default: "20000", description: "Cap on templates (memory stays bounded whatever arrives); past it, lines that match no template share one overflow template `<template limit reached>`, counted and logged once; nothing is evicted, ids are never reused" },
    Property { name: "no_header", default: "false", description: "true: the message is already without timestamp/level header" },
    Property { name: "learning", default: "true", description: "false: score against the learned state without learning (frozen)" },
    Property { name: "fields", default: "lean", description: "Which fields each record gets. lean: anomaly, anomaly_score and template_id on every record, template and anomaly_reason only on anomalies; minimal: only anomaly on normal records, all five on anomalies; all: all five on every record (reason nil when normal)" },
    Property { name: "field_anomaly", default: "anomaly", description: "Name of the added boolean verdict field" },
    Property { name: "field_score", default: "anomaly_score", description: "Name of the added score field (0..1)" },
    Property { name: "field_template_id", default: "template_id", description: "Name of the added template id field" },
    Property { name: "field_template", default: "template", description: "Name of the added template text field" },
    Property { name: "field_reason", default: "anomaly_reason", description: "Name of the added reason field (nil when normal)" },
    Property { name: "field_explanation", default: "anomaly_explanation", description: "Name of the explanation field, added to anomalies once the LLM has answered for their template (with explain on)" },
    Property { name: "session_key", default: "", description: "Regular expression: records whose message matches it (first match) form a session with that id, e.g. blk_-?[0-9]+; a closed session's verdict is appended as a record of its own (turbolog_session, anomaly, anomaly_score, anomaly_reason) with the closing record's timestamp; only anomalous sessions" },
    Property { name: "session_field", default: "", description: "Record field holding the session id (instead of session_key), e.g. trace_id" },
    Property { name: "session_idle", default: "", description: "A session quiet this long closes and is judged whatever was learned: a duration of record time (30s, 5m, 2h, 1d; 10000 records for records without a time) or a number of records; empty: 1d (a cap) with session_close learned, 30s with idle" },
    Property { name: "session_close", default: "learned", description: "learned: a session closes when it is over as learned (its ending event, or quiet longer than nearly every session was after its last event; session_idle a cap), an event as good as never seen is flagged when it comes and a step missing past its learned wait while the session waits; idle: a session closes after session_idle of quiet" },
    Property { name: "session_max", default: "0", description: "A session open for this many records closes whatever comes; 0 = no limit" },
    Property { name: "max_sessions", default: "100000", description: "Open sessions at most (up to 100000000); past it the least recently seen are closed and judged (memory stays bounded)" },
    Property { name: "reduce", default: "off", description: "on: send on only what matters. Per template and window, the first reduce_keep records pass, then only anomalous ones (every anomaly passes, always), plus 1 in reduce_sample of the rest; at each window's end one summary record per template that had records held back (turbolog_summary, template_id, template, suppressed, seen, passed, window_start, window_end and the message: N more records like …)" },
    Property { name: "reduce_keep", default: "5", description: "With reduce on: records of each template that pass in each window before only anomalies do (at least 1)" },
    Property { name: "reduce_sample", default: "0", description: "With reduce on: 1 in this many of the records held back passes anyway; 0 = none" },
    Property { name: "reduce_sessions", default: "count", description: "With reduce on and sessions: count: a session's records are held back like any other (its verdict record says how many); keep: a record of an open session that would be held back waits for the session's verdict instead: an anomalous session's records all go out just before its verdict record, a normal session's are counted (in the window of its verdict). turbolog filter and serve only (the plugin and the C API cannot hold records across calls)" },
    Property { name: "reduce_session_mb", default: "64", description: "With reduce_sessions keep: MiB of records waiting for their sessions' verdicts at most; past it the session holding the oldest has its records counted as held back (said once)" },
    Property { name: "multiline", default: "off", description: "auto: in each buffer, records that continue the event of the record before them (stack trace frames, Caused by:, Python tracebacks, Go goroutine dumps, indented continuation lines) are joined into that record: its fields, the joined message, lines: N; scored as the first line plus its root cause. A record is never held for the next buffer: an event a buffer boundary cuts goes out as two records (counted at exit); Fluent Bit's multiline.parser before turbolog joins across buffers. off: a record is an event" },
    Property { name: "multiline_max_bytes", default: "1048576", description: "With multiline auto: longest joined message; a record that would make it longer stands alone (nothing is cut)" },
    Property { name: "model_path", default: "", description: "Sentence model directory (all-MiniLM-L6-v2 int8: model.onnx and vocab.txt, as scripts/fetch-model.sh lays them out); empty = the built-in embedder. New templates are embedded on a worker thread: no record waits for the model" },
    Property { name: "model_memory", default: "160", description: "With model_path: MiB the sentence model may take (embedding is off the record path here, so memory matters more than its speed). Below what a plan per input shape needs (about 460), one plan runs every shape (half the speed), with fixed ones beside it while they fit; 0 = no bound (a plan per shape, as scan and learn use)" },
    Property { name: "explain", default: "false", description: "true: ask a local LLM about anomalous templates, in the background, one request per template; answers ride on later anomalies of the template and are kept in state_dir. On as well when explain_url is set" },
    Property { name: "explain_url", default: "", description: "LLM server, e.g. http://127.0.0.1:11434; empty = probe Ollama :11434, LM Studio :1234, llama.cpp :8080 on this machine" },
    Property { name: "explain_model", default: "", description: "Model to ask; empty = the first the server lists" },
    Property { name: "explain_allow_remote", default: "false", description: "true: allow a server that is not on this machine (prompts are redacted either way)" },
    Property { name: "explain_timeout", default: "30", description: "Longest wait for one answer, in seconds (the data path never waits)" },
    Property { name: "explain_redact", default: "", description: "Extra redaction patterns (regular expressions), separated by ;; — matches are replaced by `<redacted>` before a prompt leaves" },
];

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub state_dir: Option<PathBuf>,
    /// The sentence model's directory, when one is used.
    pub model_path: Option<PathBuf>,
    /// What the model may take once embedding is off the record path (MiB; 0 = no bound).
    pub model_memory_mib: u64,
    pub message_keys: Vec<String>,
    pub mode: Mode,
    pub threshold: Option<f32>,
    pub window_secs: f64,
    pub epoch: u64,
    pub establish: u32,
    pub no_header: bool,
    pub learning: bool,
    pub fsync: crate::store::FsyncPolicy,
    pub max_store_mb: u64,
    pub max_templates: usize,
    pub field_policy: FieldPolicy,
    pub fields: FieldNames,
    /// The explanation field's name (added only when there is an answer).
    pub field_explanation: String,
    /// Explanations from a local LLM, when on.
    pub explain: Option<crate::explain::ExplainConfig>,
    /// Sessions, when a key or field is set.
    pub sessions: Option<(crate::session::SessionKey, crate::session::SessionConfig)>,
    /// Volume reduction, when on.
    pub reduce: Option<super::reduce::ReduceConfig>,
    /// `multiline auto` in the plugin and the C API: the longest joined message.
    pub multiline: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_pairs(std::iter::empty::<(&str, &str)>()).expect("defaults are valid")
    }
}

fn default_of(name: &str) -> &'static str {
    PROPERTIES.iter().find(|p| p.name == name).map(|p| p.default).unwrap_or("")
}

fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(format!("property {name}: `{v}` is not a boolean (use true or false)")),
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, v: &str, what: &str) -> Result<T, String> {
    v.trim().parse().map_err(|_| format!("property {name}: `{v}` is not {what}"))
}

impl Settings {
    /// Builds settings from (name, value) pairs. Names are case-insensitive; an unknown name or
    /// an invalid value is an error that says which and what is expected.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Settings, String> {
        let mut values: Vec<(&'static str, String)> = PROPERTIES.iter().map(|p| (p.name, p.default.to_string())).collect();
        for (k, v) in pairs {
            let k = k.as_ref().to_ascii_lowercase();
            match values.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v.as_ref().trim().to_string(),
                None => {
                    let names: Vec<&str> = PROPERTIES.iter().map(|p| p.name).collect();
                    return Err(format!("unknown property `{k}`; valid properties: {}", names.join(", ")));
                }
            }
        }
        let get = |name: &str| -> &str { &values.iter().find(|(n, _)| *n == name).expect("declared").1 };
        let field = |name: &str| -> Result<String, String> {
            let v = get(name);
            if v.is_empty() {
                Err(format!("property {name} must not be empty (default {})", default_of(name)))
            } else {
                Ok(v.to_string())
            }
        };
        let threshold = match get("threshold") {
            "" => None,
            v => {
                let t: f32 = parse_num("threshold", v, "a number")?;
                if !(0.0..=1.0).contains(&t) {
                    return Err(format!("property threshold: {t} is outside [0, 1]"));
                }
                Some(t)
            }
        };
        let window_secs: f64 = parse_num("window", get("window"), "a number of seconds")?;
        if !(0.0..=86_400.0).contains(&window_secs) {
            return Err(format!("property window: {window_secs} is outside 0..86400 seconds"));
        }
        let epoch: u64 = parse_num("epoch", get("epoch"), "a positive whole number")?;
        let establish: u32 = parse_num("establish", get("establish"), "a positive whole number")?;
        if epoch == 0 || establish == 0 {
            return Err("properties epoch and establish must be at least 1".into());
        }
        let mode = match get("mode").to_ascii_lowercase().as_str() {
            "tag" => Mode::Tag,
            "only_anomalies" => Mode::OnlyAnomalies,
            v => return Err(format!("property mode: `{v}` is not one of tag, only_anomalies")),
        };
        let message_keys: Vec<String> =
            get("message_key").split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from).collect();
        if message_keys.is_empty() {
            return Err("property message_key must name at least one key".into());
        }
        let fields = FieldNames {
            anomaly: field("field_anomaly")?,
            score: field("field_score")?,
            template_id: field("field_template_id")?,
            template: field("field_template")?,
            reason: field("field_reason")?,
        };
        let field_explanation = field("field_explanation")?;
        let all = fields.all();
        if (1..all.len()).any(|i| all[..i].contains(&all[i])) || all.contains(&field_explanation.as_str()) {
            return Err("the field_* properties must name six different fields".into());
        }
        let explain_timeout: f64 = parse_num("explain_timeout", get("explain_timeout"), "a number of seconds")?;
        if !(0.1..=3600.0).contains(&explain_timeout) {
            return Err(format!("property explain_timeout: {explain_timeout} is outside 0.1..3600 seconds"));
        }
        let redact: Vec<String> = get("explain_redact").split(";;").map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect();
        // a bad pattern is a configuration error now, not a silent worker failure later
        crate::explain::redact::Redactor::new(&redact).map_err(|e| format!("property explain_redact: {e}"))?;
        let explain_allow_remote = parse_bool("explain_allow_remote", get("explain_allow_remote"))?;
        let explain = if parse_bool("explain", get("explain"))? || !get("explain_url").is_empty() {
            let config = crate::explain::ExplainConfig {
                url: Some(get("explain_url").to_string()).filter(|u| !u.is_empty()),
                model: Some(get("explain_model").to_string()).filter(|m| !m.is_empty()),
                allow_remote: explain_allow_remote,
                answer_timeout: std::time::Duration::from_secs_f64(explain_timeout),
                redact,
                ..crate::explain::ExplainConfig::default()
            };
            Some(config)
        } else {
            None
        };
        let session_key = match (get("session_key"), get("session_field")) {
            ("", "") => None,
            (k, "") => Some(crate::session::SessionKey::pattern(k).map_err(|e| format!("property session_key: {e}"))?),
            ("", f) => Some(crate::session::SessionKey::field(f).map_err(|e| format!("property session_field: {e}"))?),
            _ => return Err("properties session_key and session_field exclude each other: set one".into()),
        };
        let learned_close = match get("session_close") {
            "idle" => false,
            "learned" => true,
            other => return Err(format!("property session_close: `{other}` is not learned or idle")),
        };
        let (idle_secs, idle_records) = match get("session_idle") {
            "" => crate::session::tracker::default_idle(learned_close),
            idle => crate::session::parse_idle(idle).map_err(|e| format!("property session_idle: {e}"))?,
        };
        let max_sessions: usize = parse_num("max_sessions", get("max_sessions"), "a positive whole number")?;
        if max_sessions == 0 || max_sessions > crate::session::open::MAX_OPEN {
            return Err(format!("property max_sessions: {max_sessions} is outside 1..{}", crate::session::open::MAX_OPEN));
        }
        let sessions = session_key.map(|k| {
            (k, crate::session::SessionConfig { idle_secs, idle_records, max_records: 0, max_sessions, ..Default::default() })
        });
        let sessions = match sessions {
            Some((k, mut c)) => {
                c.max_records = parse_num("session_max", get("session_max"), "a whole number of records")?;
                c.learned_close = learned_close;
                Some((k, c))
            }
            None => None,
        };
        let reduce_keep: u32 = parse_num("reduce_keep", get("reduce_keep"), "a whole number of records")?;
        if reduce_keep == 0 {
            return Err("property reduce_keep: 0 is below 1 (the first record of a template in each window always passes)".into());
        }
        let reduce_sample: u32 = parse_num("reduce_sample", get("reduce_sample"), "a whole number (0 = none)")?;
        let session_mb: u64 = parse_num("reduce_session_mb", get("reduce_session_mb"), "a whole number of MiB")?;
        let session_bytes = match get("reduce_sessions") {
            "count" => None,
            "keep" => Some((session_mb.max(1) as usize).saturating_mul(1 << 20)),
            other => return Err(format!("property reduce_sessions: `{other}` is not count or keep")),
        };
        let reduce = parse_bool("reduce", get("reduce"))?.then_some(super::reduce::ReduceConfig { keep: reduce_keep, sample: reduce_sample, session_bytes });
        let multiline_max: usize = parse_num("multiline_max_bytes", get("multiline_max_bytes"), "a whole number of bytes")?;
        let multiline = match get("multiline") {
            "off" => None,
            "auto" | "on" => Some(multiline_max.max(1)),
            other => return Err(format!("property multiline: `{other}` is not auto or off")),
        };
        Ok(Settings {
            multiline,
            reduce,
            sessions,
            model_path: match get("model_path") {
                "" => None,
                p => Some(PathBuf::from(p)),
            },
            model_memory_mib: parse_num("model_memory", get("model_memory"), "a whole number of MiB (0 = no bound)")?,
            state_dir: match get("state_dir") {
                "" => None,
                v => Some(PathBuf::from(v)),
            },
            message_keys,
            mode,
            threshold,
            window_secs,
            epoch,
            establish,
            no_header: parse_bool("no_header", get("no_header"))?,
            learning: parse_bool("learning", get("learning"))?,
            fsync: match get("fsync").to_ascii_lowercase().as_str() {
                "never" => crate::store::FsyncPolicy::Never,
                "always" => crate::store::FsyncPolicy::EveryAppend,
                v => return Err(format!("property fsync: `{v}` is not one of never, always")),
            },
            max_store_mb: parse_num("max_store_mb", get("max_store_mb"), "a whole number of MiB")?,
            max_templates: match parse_num::<usize>("max_templates", get("max_templates"), "a whole number")? {
                n if (1..=10_000_000).contains(&n) => n,
                n => return Err(format!("property max_templates: {n} is outside 1..10000000")),
            },
            field_policy: FieldPolicy::parse(get("fields")).map_err(|e| format!("property fields: {e}"))?,
            fields,
            field_explanation,
            explain,
        })
    }

    /// Settings from a JSON object of strings, numbers or booleans (the C API's config).
    pub fn from_json(json: &str) -> Result<Settings, String> {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(json).map_err(|e| format!("config is not a JSON object: {e}"))?;
        let mut pairs = Vec::new();
        for (k, v) in map {
            let s = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(String::from).ok_or_else(|| format!("property {k}: list items must be strings")))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                other => return Err(format!("property {k}: {other} is not a string, number or boolean")),
            };
            pairs.push((k, s));
        }
        Settings::from_pairs(pairs)
    }

    /// How the Fluent Bit codec reads and tags records under these settings.
    pub fn event_options(&self) -> crate::codec::fluent_bit::Options {
        crate::codec::fluent_bit::Options {
            message_keys: self.message_keys.clone(),
            mode: self.mode,
            field_policy: self.field_policy,
            fields: self.fields.clone(),
            field_explanation: self.field_explanation.clone(),
        }
    }

    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions { fsync: self.fsync, max_store_mb: self.max_store_mb, ..Default::default() }
    }

    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig::with(self.no_header, self.epoch, self.establish, self.threshold, self.max_templates)
    }
}

/// The property table as a Markdown table, as the README shows it.
pub fn describe_markdown() -> String {
    let mut out = String::from("| property | default | description |\n|---|---|---|\n");
    for p in PROPERTIES {
        let default = if p.default.is_empty() { "(empty)".to_string() } else { format!("`{}`", p.default) };
        out.push_str(&format!("| `{}` | {default} | {} |\n", p.name, p.description));
    }
    out
}

/// The property table as text, for `turbolog plugin-props`.
pub fn describe() -> String {
    let width = PROPERTIES.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for p in PROPERTIES {
        let default = if p.default.is_empty() { "(empty)" } else { p.default };
        out.push_str(&format!("{:<width$}  default {default}\n{:<width$}  {}\n", p.name, "", p.description));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_templates_default_is_the_miners() {
        assert_eq!(default_of("max_templates"), crate::detect::template::DEFAULT_MAX_TEMPLATES.to_string());
        assert_eq!(Settings::default().engine_config().miner.max_templates, crate::detect::template::DEFAULT_MAX_TEMPLATES);
        assert!(Settings::from_pairs([("max_templates", "0")]).unwrap_err().contains("max_templates"));
        assert_eq!(Settings::from_pairs([("max_templates", "500")]).unwrap().engine_config().miner.max_templates, 500);
    }

    #[test]
    fn defaults_come_from_the_table() {
        let s = Settings::default();
        assert_eq!(s.message_keys, ["log", "message", "msg", "MESSAGE", "@message"]);
        assert_eq!(s.mode, Mode::Tag);
        assert_eq!(s.window_secs, 10.0);
        assert_eq!(s.fields.reason, "anomaly_reason");
        assert!(s.learning && s.threshold.is_none() && s.state_dir.is_none());
    }

    #[test]
    fn values_are_validated_with_clear_messages() {
        let err = |pairs: &[(&str, &str)]| Settings::from_pairs(pairs.iter().copied()).unwrap_err();
        assert!(err(&[("colour", "red")]).contains("unknown property `colour`; valid properties: state_dir"));
        assert!(err(&[("mode", "drop")]).contains("not one of tag, only_anomalies"));
        assert!(err(&[("threshold", "1.5")]).contains("outside [0, 1]"));
        assert!(err(&[("window", "soon")]).contains("not a number of seconds"));
        assert!(err(&[("field_template", "anomaly")]).contains("six different fields"));
        assert!(err(&[("explain_redact", "ok;;(")]).contains("property explain_redact"));
        assert!(err(&[("explain_timeout", "0")]).contains("outside"));
        let on = Settings::from_pairs([("explain_url", "http://127.0.0.1:8080")]).unwrap();
        assert_eq!(on.explain.unwrap().url.as_deref(), Some("http://127.0.0.1:8080"));
        assert!(Settings::default().explain.is_none());
        assert!(err(&[("session_key", "(")]).contains("property session_key"));
        assert!(err(&[("session_key", "x*")]).contains("empty string"));
        assert!(err(&[("session_key", "blk_[0-9]+"), ("session_field", "id")]).contains("exclude each other"));
        assert!(err(&[("max_sessions", "0")]).contains("property max_sessions: 0 is outside 1..100000000"));
        assert!(err(&[("max_sessions", "200000000")]).contains("is outside 1..100000000"));
        assert!(err(&[("session_idle", "0")]).contains("at least 1"));
        assert!(err(&[("session_idle", "5x")]).contains("unit must be"));
        assert!(err(&[("session_key", "blk_[0-9]+"), ("session_close", "soon")]).contains("property session_close: `soon` is not learned or idle"));
        // learned by default, a day the cap; idle: 30 s unless said
        let learned = Settings::from_pairs([("session_key", "blk_[0-9]+")]).unwrap().sessions.unwrap().1;
        assert_eq!((learned.learned_close, learned.idle_secs), (true, Some(86_400)));
        let idle = Settings::from_pairs([("session_key", "blk_[0-9]+"), ("session_close", "idle")]).unwrap().sessions.unwrap().1;
        assert_eq!((idle.learned_close, idle.idle_secs), (false, Some(30)));
        let capped = Settings::from_pairs([("session_key", "blk_[0-9]+"), ("session_idle", "2h")]).unwrap().sessions.unwrap().1;
        assert_eq!((capped.learned_close, capped.idle_secs), (true, Some(7_200)));
        let s = Settings::from_pairs([("session_field", "trace_id")]).unwrap();
        assert_eq!(s.sessions.unwrap().0.field_name(), Some("trace_id"));
        assert!(err(&[("message_key", " , ")]).contains("at least one key"));
        let s = Settings::from_pairs([("Mode", "only_anomalies"), ("message_key", "body, text"), ("threshold", "0.7")]).unwrap();
        assert_eq!((s.mode, s.message_keys.clone(), s.threshold), (Mode::OnlyAnomalies, vec!["body".into(), "text".into()], Some(0.7)));
    }

    #[test]
    fn reduce_is_off_by_default_and_validated() {
        assert_eq!(Settings::default().reduce, None);
        let on = Settings::from_pairs([("reduce", "on")]).unwrap().reduce.unwrap();
        assert_eq!((on.keep, on.sample), (5, 0));
        let s = Settings::from_json(r#"{"reduce":true,"reduce_keep":2,"reduce_sample":100}"#).unwrap().reduce.unwrap();
        assert_eq!((s.keep, s.sample), (2, 100));
        let err = |pairs: &[(&str, &str)]| Settings::from_pairs(pairs.iter().copied()).unwrap_err();
        assert!(err(&[("reduce", "sometimes")]).contains("property reduce: `sometimes` is not a boolean"));
        assert!(err(&[("reduce", "on"), ("reduce_keep", "0")]).contains("property reduce_keep: 0 is below 1"));
        assert!(err(&[("reduce_sample", "-1")]).contains("property reduce_sample: `-1` is not a whole number"));
        assert!(err(&[("multiline", "java")]).contains("property multiline: `java` is not auto or off"));
        assert_eq!(Settings::default().multiline, None);
        assert_eq!(Settings::from_pairs([("multiline", "auto"), ("multiline_max_bytes", "4096")]).unwrap().multiline, Some(4096));
        assert!(err(&[("reduce_sessions", "all")]).contains("property reduce_sessions: `all` is not count or keep"));
        let keep = Settings::from_pairs([("reduce", "on"), ("reduce_sessions", "keep"), ("reduce_session_mb", "2")]).unwrap().reduce.unwrap();
        assert_eq!(keep.session_bytes, Some(2 << 20));
        assert_eq!(on.session_bytes, None);
    }

    #[test]
    fn json_config() {
        let s = Settings::from_json(r#"{"state_dir":"/tmp/x","window":5,"learning":false,"message_key":["a","b"]}"#).unwrap();
        assert_eq!(s.state_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!((s.window_secs, s.learning), (5.0, false));
        assert_eq!(s.message_keys, ["a", "b"]);
        assert!(Settings::from_json("[1]").unwrap_err().contains("not a JSON object"));
        assert!(Settings::from_json(r#"{"epoch":{"x":1}}"#).unwrap_err().contains("property epoch"));
    }

    #[test]
    fn describe_lists_every_property() {
        let d = describe();
        for p in PROPERTIES {
            assert!(d.contains(p.name) && d.contains(p.description));
        }
    }
}
