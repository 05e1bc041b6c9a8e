//! Level and status fields of a Fluent Bit record count as they do in NDJSON: the same record
//! gets the same verdict whichever host it reaches.

use turbolog::pipeline::config::Settings;
use turbolog::codec::fluent_bit::Tagger;
use turbolog::Engine;

mod common;

fn record(b: &mut Vec<u8>, msg: &str, extra: &[(&str, serde_json::Value)]) {
    common::record(b, 1_795_515_600, msg, extra)
}

#[test]
fn level_and_status_fields_of_a_plugin_record_count() {
    let settings = Settings::from_pairs([("fields", "all")]).unwrap();
    let mut engine = Engine::new(settings.engine_config());
    let mut chunk = Vec::new();
    for i in 0..300 {
        record(&mut chunk, &format!("request {i} done"), &[("status", 200.into()), ("level", "info".into())]);
    }
    record(&mut chunk, "request 7 done", &[("status", 503.into()), ("level", "info".into())]);
    record(&mut chunk, "cache rebuilt", &[("PRIORITY", "3".into())]);
    let mut out = Vec::new();
    let stats = Tagger::default().tag_chunk(&chunk, &mut engine, &settings.event_options(), &mut out).unwrap();
    assert_eq!(stats.tagged, 302);
    assert_eq!(engine.template_text(0), "request <*> done status=2xx");
    assert_eq!(engine.template_text(1), "request <*> done status=5xx");
    assert_eq!(stats.anomalies, 2, "the 5xx and the error-level record");
    // the record keeps its own fields, byte for byte, and gets ours
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("request <*> done status=5xx") && text.contains("HTTP 5xx"), "{text}");
    assert!(text.contains("error level"), "{text}");
}
