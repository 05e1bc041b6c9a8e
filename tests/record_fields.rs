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

/// ECS-shaped Fluent Bit records: `message_key event.message` and the nested `log.level` are read
/// inside their maps, as NDJSON reads them.
#[test]
fn nested_message_and_level_of_a_plugin_record() {
    let settings = Settings::from_pairs([("fields", "all"), ("message_key", "event.message")]).unwrap();
    let mut engine = Engine::new(settings.engine_config());
    let mut chunk = Vec::new();
    let ecs = |b: &mut Vec<u8>, msg: &str, level: &str| {
        rmp::encode::write_array_len(b, 2).unwrap();
        rmp::encode::write_array_len(b, 2).unwrap();
        rmp::encode::write_uint(b, 1_795_515_600).unwrap();
        rmp::encode::write_map_len(b, 0).unwrap();
        rmp::encode::write_map_len(b, 3).unwrap();
        rmp::encode::write_str(b, "kubernetes").unwrap();
        rmp::encode::write_map_len(b, 1).unwrap();
        rmp::encode::write_str(b, "pod").unwrap();
        rmp::encode::write_str(b, "web-7d9f8c6b5-x2x9z").unwrap();
        rmp::encode::write_str(b, "log").unwrap();
        rmp::encode::write_map_len(b, 1).unwrap();
        rmp::encode::write_str(b, "level").unwrap();
        rmp::encode::write_str(b, level).unwrap();
        rmp::encode::write_str(b, "event").unwrap();
        rmp::encode::write_map_len(b, 1).unwrap();
        rmp::encode::write_str(b, "message").unwrap();
        rmp::encode::write_str(b, msg).unwrap();
    };
    for i in 0..300 {
        ecs(&mut chunk, &format!("request {i} served"), "info");
    }
    ecs(&mut chunk, "cache rebuilt", "error");
    let mut out = Vec::new();
    let stats = Tagger::default().tag_chunk(&chunk, &mut engine, &settings.event_options(), &mut out).unwrap();
    assert_eq!(stats.tagged, 301, "every record has its nested message");
    assert_eq!(engine.template_text(0), "request <*> served");
    assert_eq!(stats.anomalies, 1, "the nested error level counts");
    assert!(String::from_utf8_lossy(&out).contains("error level"));
}
