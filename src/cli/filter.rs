//! `turbolog filter`: a streaming transform. NDJSON objects or text lines in, the same records
//! with anomaly fields added out, one per line, in order, flushed whenever input pauses.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use serde_json::{Map, Value};
use turbolog::Verdict;

use super::input::Lines;
use super::CliError;
use super::record;
use super::EngineArgs;

#[derive(Args)]
pub struct FilterArgs {
    /// Input files; none or `-` reads standard input.
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The key holding the message (repeatable; default: first of log, message, msg).
    #[arg(long = "message-key", value_name = "KEY")]
    pub message_keys: Vec<String>,
    /// Output anomalous records only.
    #[arg(long)]
    pub only_anomalies: bool,
    /// With --state: seconds between window seals (templates.tls and a chunk); new templates
    /// reach the WAL at once. 0 = seal only at the end.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub window: f64,
}

/// The fields added to each record.
pub const FIELDS: [&str; 5] = ["anomaly", "anomaly_score", "template_id", "template", "anomaly_reason"];

#[derive(Default)]
struct Counters {
    malformed: u64,
    no_message: u64,
}

pub fn run(args: FilterArgs) -> Result<u8, CliError> {
    let mut session = args.engine.session()?;
    let mut last_seal = std::time::Instant::now();
    let mut lines = Lines::new(&args.files);
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut counters = Counters::default();
    let mut reason = String::new();
    let mut buf = String::new();
    let mut n = 0u64;
    loop {
        if lines.would_block() {
            out.flush()?;
        }
        let Some(line) = lines.next_line()? else { break };
        n += 1;
        buf.clear();
        let engine = &mut session.engine;
        match record::parse_object(line) {
            None => {
                let v = engine.process_line(line);
                if keep(&args, &v) {
                    let mut obj = Map::new();
                    obj.insert("message".into(), Value::String(line.to_string()));
                    tagged_object(&mut buf, obj, &v, engine.template_text(v.template_id), &mut reason);
                }
            }
            Some(Err(e)) => {
                counters.malformed += 1;
                if counters.malformed == 1 {
                    eprintln!("turbolog: warning: line {n} is not valid JSON ({e}); passed through untouched");
                }
                if !args.only_anomalies {
                    buf.push_str(line);
                }
            }
            Some(Ok(obj)) => match record::message(&obj, &args.message_keys) {
                None => {
                    counters.no_message += 1;
                    if !args.only_anomalies {
                        buf.push_str(line);
                    }
                }
                Some(m) => {
                    let v = engine.process_line(m);
                    if keep(&args, &v) {
                        let template = engine.template_text(v.template_id);
                        if FIELDS.iter().any(|f| obj.contains_key(*f)) {
                            tagged_object(&mut buf, obj, &v, template, &mut reason);
                        } else {
                            append_fields(&mut buf, line, obj.is_empty(), &v, template, &mut reason);
                        }
                    }
                }
            },
        }
        // what was learned reaches the WAL before the record is written out
        session.after_record();
        if !buf.is_empty() {
            buf.push('\n');
            out.write_all(buf.as_bytes())?;
        }
        if args.window > 0.0 && last_seal.elapsed().as_secs_f64() >= args.window {
            out.flush()?;
            session.seal_quietly();
            last_seal = std::time::Instant::now();
        }
    }
    out.flush()?;
    session.seal()?;
    if counters.malformed > 0 {
        eprintln!("turbolog: warning: {} malformed JSON lines were passed through untouched", counters.malformed);
    }
    if counters.no_message > 0 {
        let keys = if args.message_keys.is_empty() { record::DEFAULT_KEYS.join(", ") } else { args.message_keys.join(", ") };
        eprintln!(
            "turbolog: warning: {} records had no string message under {keys}; passed through untouched (set --message-key)",
            counters.no_message
        );
    }
    Ok(0)
}

fn keep(args: &FilterArgs, v: &Verdict) -> bool {
    !args.only_anomalies || v.anomaly
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
    (v.score as f64 * 1000.0).round() / 1000.0
}

/// Fast path: the input bytes stay as they were; the fields go before the closing brace.
fn append_fields(buf: &mut String, line: &str, empty: bool, v: &Verdict, template: &str, reason: &mut String) {
    let body = line.trim_end();
    let body = &body[..body.len() - 1]; // parse succeeded, so it ends with `}`
    buf.push_str(body);
    if !empty {
        buf.push(',');
    }
    let _ = write!(buf, "\"anomaly\":{},\"anomaly_score\":{},\"template_id\":{},\"template\":", v.anomaly, score(v), v.template_id);
    push_json_str(buf, template);
    buf.push_str(",\"anomaly_reason\":");
    match reason_of(v, reason) {
        Some(r) => push_json_str(buf, r),
        None => buf.push_str("null"),
    }
    buf.push('}');
}

/// Slow path, when the record already has fields of ours: replace them.
fn tagged_object(buf: &mut String, mut obj: Map<String, Value>, v: &Verdict, template: &str, reason: &mut String) {
    obj.insert("anomaly".into(), Value::Bool(v.anomaly));
    obj.insert("anomaly_score".into(), serde_json::json!(score(v)));
    obj.insert("template_id".into(), Value::from(v.template_id));
    obj.insert("template".into(), Value::String(template.to_string()));
    obj.insert("anomaly_reason".into(), reason_of(v, reason).map_or(Value::Null, |r| Value::String(r.to_string())));
    buf.push_str(&serde_json::to_string(&obj).expect("a JSON map always serialises"));
}

fn push_json_str(buf: &mut String, s: &str) {
    buf.push_str(&serde_json::to_string(s).expect("a string always serialises"));
}
