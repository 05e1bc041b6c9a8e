//! For scripts/eval_messages.py: the message and level the engine takes from each line of
//! standard input, as `scan` hands lines to it (a JSON record's message key and level field,
//! else the raw line; then header detection). One JSON object per input line:
//! `{"message": "...", "level": "error" | null}`.
//! usage: cargo run --release --example messages < FILE

use std::io::{BufRead, Write};
use turbolog::detect::message;
use turbolog::codec::ndjson;

fn main() {
    // no --message-key: the default keys, as `scan` reads them
    let keys: Vec<String> = Vec::new();
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for raw in stdin.lock().split(b'\n') {
        let raw = raw.expect("readable standard input");
        let line = String::from_utf8_lossy(&raw);
        let object = ndjson::parse_object(&line).and_then(Result::ok);
        let record = object.as_ref().and_then(|o| ndjson::record(o, &keys));
        let (text, field) = record.as_ref().map_or((line.as_ref(), None), |r| (r.message.as_ref(), r.level));
        let m = message::extract(text);
        let level = m.level.or(field).map(|l| l.as_str());
        let row = serde_json::json!({ "message": m.text, "level": level });
        writeln!(out, "{row}").expect("writable standard output");
    }
}
