//! What the fuzz targets (`fuzz/`, nightly, `cargo fuzz`) run, shared with the regression tests
//! that replay their findings on stable (`tests/fuzz_regressions.rs`). Each entry point takes
//! arbitrary bytes and panics only on a real defect: a crash, or output that breaks a contract
//! (a tagged NDJSON line that is not JSON, a tagged msgpack buffer that does not parse back).

use std::path::Path;

use crate::detect::message;
use crate::detect::token::{tokenize, Token};
use crate::codec::fluent_bit::Tagger;
use crate::codec::msgpack::Reader;
use crate::codec::ndjson::{LineTagger, Outcome};
use crate::pipeline::{Pipeline, Settings};
use crate::store::{chunk, templates_file, wal};
use crate::{Engine, EngineConfig};

/// The line path: header, tokens, mining, scoring, on every line of `data` (lossy UTF-8).
pub fn line(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut engine = Engine::new(EngineConfig::default());
    let mut tokens: Vec<Token> = Vec::new();
    // sessions and key suggestions read the same lines
    let key = crate::session::SessionKey::pattern(r"req-[0-9a-f]+").expect("a valid key");
    let config = crate::session::SessionConfig { idle_records: 3, max_sessions: 4, ..Default::default() };
    let mut sessions = crate::session::Tracker::new(config, Default::default());
    let mut suggester = crate::session::suggest::Suggester::default();
    let mut closed = Vec::new();
    for (n, l) in text.split('\n').enumerate() {
        let m = message::extract(l);
        tokenize(m.text, &mut tokens, 96);
        let v = engine.process_line(l);
        assert!((0.0..=1.0).contains(&v.score), "score {} out of range", v.score);
        let _ = v.reason.to_string();
        let _ = engine.template_text(v.template_id);
        sessions.record(key.find(l), v.template_id, n as u64 + 1, crate::detect::time::of_line(l), &engine);
        sessions.take_closed(&mut closed);
        suggester.observe(l, v.template_id);
    }
    sessions.close_all(&engine);
    let _ = suggester.candidates();
}

/// The NDJSON filter path: every tagged line must be one JSON object.
pub fn ndjson(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut engine = Engine::new(EngineConfig::default());
    let mut tagger = LineTagger::default();
    let mut out = String::new();
    for (n, l) in text.split('\n').enumerate() {
        out.clear();
        if let Outcome::Tagged(_) = tagger.tag_line(l, n as u64 + 1, &mut engine, &mut out) {
            let parsed: Result<serde_json::Map<String, serde_json::Value>, _> = serde_json::from_str(&out);
            assert!(parsed.is_ok(), "tagged output is not a JSON object: {out:?} ({:?})", parsed.err());
        } else {
            assert!(out == l, "an untagged line must pass through untouched");
        }
    }
}

/// The msgpack record path of the C API and the plugin: a buffer the host hands over. When
/// tagging succeeds, the output must walk as msgpack to its end.
pub fn records(data: &[u8]) {
    // with sessions keyed by a field: verdict records are appended to the output
    let settings = Settings::from_pairs([("session_field", "log"), ("session_idle", "2"), ("max_sessions", "3")]).expect("valid settings");
    let embedder = Box::new(crate::embed::HashEmbedder::default());
    let (mut pipeline, _) = Pipeline::open(&settings, embedder, |_, _| {}).expect("a pipeline without state opens");
    let mut out = Vec::new();
    let mut tagger = Tagger::default();
    if let Ok(stats) = tagger.tag_chunk(data, &mut pipeline, &settings.event_options(), &mut out) {
        if stats.modified() {
            let mut r = Reader::new(&out);
            let mut values = 0u64;
            while !r.at_end() {
                assert!(r.skip().is_ok(), "tagged buffer does not parse back as msgpack");
                values += 1;
            }
            assert_eq!(values, stats.records - stats.dropped, "one output value per record kept");
        }
    }
}

/// A WAL file's bytes, at the engine's dimension.
pub fn wal_file(data: &[u8]) {
    if let Ok(r) = wal::replay_file_bytes(Path::new("wal-0.bin"), data, crate::embed::DEFAULT_DIM as u32) {
        for rec in &r.records {
            assert_eq!(rec.vector.len(), crate::embed::DEFAULT_DIM);
        }
    }
}

/// A chunk file's bytes, opened through a real memory map from a file in `scratch`.
pub fn chunk_file(data: &[u8], scratch: &Path) {
    let path = scratch.join(format!("fuzz-{}.tvim", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(c) = chunk::Chunk::open(&path, crate::embed::DEFAULT_DIM as u32) {
        let _ = c.verify();
        for i in 0..c.len() {
            let _ = c.id(i);
            assert_eq!(c.vector(i).len(), crate::embed::DEFAULT_DIM);
        }
        let _ = c.sources();
    }
    let _ = std::fs::remove_file(&path);
}

/// A `templates.tls` file's bytes: decoded, checked, restored into a fresh engine, used.
pub fn templates_file(data: &[u8]) {
    let Ok(snap) = templates_file::decode(data) else { return };
    let mut engine = Engine::new(EngineConfig::default());
    if engine.check_snapshot(&snap).is_ok() {
        let restored = engine.restore_with(Some(&snap), &[], &mut |_, _| false);
        assert!(restored.is_ok(), "a snapshot that passed the check failed to restore: {restored:?}");
        engine.process_line("2026-11-24 10:00:00 ERROR disk full on /var");
    }
}

/// Writes one valid file of each on-disk kind into `dir`: seeds for the fuzzers.
pub fn write_seeds(dir: &Path) -> std::io::Result<()> {
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let settings = Settings { state_dir: Some(state.clone()), ..Settings::default() };
    let embedder = Box::new(crate::embed::HashEmbedder::default());
    let (mut pipeline, _) = Pipeline::open(&settings, embedder, |_, _| {}).map_err(std::io::Error::other)?;
    for l in ["Accepted password for root from 1.2.3.4 port 22 ssh2", "Invalid user admin from 5.6.7.8", "disk full on /var"] {
        pipeline.engine.process_line(l);
        pipeline.after_record();
    }
    let wal = std::fs::read_dir(&state)?.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "bin"));
    if let Some(w) = wal {
        std::fs::copy(w, dir.join("seed.wal"))?;
    }
    pipeline.seal().map_err(std::io::Error::other)?;
    for e in std::fs::read_dir(&state)?.flatten() {
        let p = e.path();
        let name = p.file_name().unwrap_or_default().to_string_lossy().to_string();
        if name.ends_with(".tvim") {
            std::fs::copy(&p, dir.join("seed.tvim"))?;
        } else if name == templates_file::FILE_NAME {
            std::fs::copy(&p, dir.join("seed.tls"))?;
        }
    }
    std::fs::remove_dir_all(&state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_valid_files_of_each_kind() {
        let dir = tempfile::tempdir().unwrap();
        write_seeds(dir.path()).unwrap();
        let wal = std::fs::read(dir.path().join("seed.wal")).unwrap();
        assert_eq!(wal::replay_file_bytes(Path::new("w"), &wal, 256).unwrap().records.len(), 3);
        let tls = std::fs::read(dir.path().join("seed.tls")).unwrap();
        assert_eq!(templates_file::decode(&tls).unwrap().templates.len(), 3);
        let c = chunk::Chunk::open(&dir.path().join("seed.tvim"), 256).unwrap();
        assert_eq!(c.len(), 3);
        // and the harness accepts each of them
        wal_file(&wal);
        templates_file(&tls);
        chunk_file(&std::fs::read(dir.path().join("seed.tvim")).unwrap(), dir.path());
    }
}
