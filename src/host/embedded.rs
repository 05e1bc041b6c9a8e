//! An engine embedded in a host process (the C API, the Fluent Bit plugin).
//!
//! One pipeline per state directory per process: plugin instances (several Fluent Bit
//! processors on several worker threads, or a hot reload) that name the same `state_dir` share
//! it, so they learn together and never write the same files against each other. The pipeline
//! sits behind a mutex taken once per *buffer* (hundreds to thousands of records), not per record.
//!
//! What the pipeline learns goes to the durable store: a new or generalised template's text and
//! vector are appended to the calling thread's own WAL shard, and the window is sealed on the
//! timer (on a background thread, holding the lock only for the short parts: the pipeline never
//! waits on the disk), on an explicit flush and when the last handle goes away. A failing disk
//! (full, read-only) is logged once; scoring goes on from memory, failed appends are retried at
//! each seal, and recovery is logged when it works again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use once_cell::sync::Lazy;

use crate::codec::fluent_bit::{ChunkStats, Options, Tagger};
use crate::codec::msgpack::Reader;
use crate::host::out_buf::MallocBuf;
use crate::host::panic_guard::guarded;
use crate::pipeline::{self, Access, Pipeline, Settings};

pub use crate::pipeline::log::log_stderr;
pub use crate::pipeline::{Log, LogLevel};

struct Inner {
    pipeline: Pipeline,
    tagger: Tagger,
    out: MallocBuf,
    /// `multiline auto`: joins continuation records within each buffer.
    joiner: Option<crate::pipeline::join_buffer::BufferJoiner>,
}

pub struct Embedded {
    settings: Settings,
    /// How records are read and tagged (from the settings, once).
    options: Options,
    inner: Mutex<Inner>,
    sealing: AtomicBool,
    /// Records handed back untouched because tagging their buffer failed internally.
    untouched_after_error: AtomicU64,
    /// Buffers that were not valid msgpack, passed through untouched.
    invalid_buffers: AtomicU64,
    /// Records with no string message under the message keys (passed through untouched).
    no_message: AtomicU64,
}

/// What a filter call produced.
pub enum Filtered<'a> {
    /// Nothing changed: the host keeps its buffer.
    Untouched,
    /// The new buffer (possibly empty: every record dropped), in `malloc` memory: a host takes
    /// it with [`MallocBuf::take`] (or reads it with `as_slice`).
    Modified(&'a mut MallocBuf, ChunkStats),
}

static REGISTRY: Lazy<Mutex<HashMap<PathBuf, Weak<Embedded>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock was already caught at the ABI boundary; the state inside is
    // still a valid engine (every update is a plain counter or push), so carry on with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Access for Embedded {
    fn with<R>(&self, f: impl FnOnce(&mut Pipeline) -> R) -> R {
        f(&mut lock(&self.inner).pipeline)
    }
}

/// The embedder the settings name, said in the host's log when it is the model.
fn embedder(settings: &Settings, log: Log) -> Result<Box<dyn crate::embed::Embedder>, String> {
    let Some(dir) = &settings.model_path else { return Ok(Box::new(crate::embed::HashEmbedder::default())) };
    let started = std::time::Instant::now();
    let m = crate::embed::model::load(dir).map_err(|e| format!("property model_path: {e}"))?;
    log(
        LogLevel::Info,
        &format!("embedder: all-MiniLM-L6-v2 int8 from {} (sha256 {}…), loaded in {:.2} s", dir.display(), &m.sha256()[..12], started.elapsed().as_secs_f64()),
    );
    Ok(Box::new(crate::embed::ModelEmbedder::new(m)))
}

impl Embedded {
    /// Opens (or joins) the pipeline for these settings, restoring what the state dir holds.
    pub fn open(settings: Settings, log: Log) -> Result<Arc<Embedded>, String> {
        if settings.reduce.is_some_and(|r| r.session_bytes.is_some()) {
            return Err("property reduce_sessions: keep is for turbolog filter and serve (a filter here cannot hold records across calls); use count, or run turbolog serve behind Fluent Bit's forward output".into());
        }
        let Some(dir) = settings.state_dir.clone() else {
            return Ok(Arc::new(Self::create(settings, log)?));
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create state_dir {}: {e} (make it writable or choose another)", dir.display()))?;
        let key = dir.canonicalize().unwrap_or(dir);
        let mut registry = lock(&REGISTRY);
        if let Some(existing) = registry.get(&key).and_then(Weak::upgrade) {
            if existing.settings != settings {
                return Err(format!(
                    "state_dir {} is already used in this process with different settings; give each configuration its own state_dir",
                    key.display()
                ));
            }
            return Ok(existing);
        }
        let e = Arc::new(Self::create(settings, log)?);
        registry.insert(key, Arc::downgrade(&e));
        registry.retain(|_, w| w.strong_count() > 0);
        Ok(e)
    }

    fn create(settings: Settings, log: Log) -> Result<Embedded, String> {
        let (mut pipeline, opened) = Pipeline::open(&settings, embedder(&settings, log)?, log)?;
        if let Some(opened) = opened {
            for w in &opened.warnings {
                log(LogLevel::Warn, w);
            }
            let r = opened.report;
            if r.templates > 0 {
                log(
                    LogLevel::Info,
                    &format!(
                        "restored {} templates ({} vectors from the store, {} embedded again, {} recovered from the WAL)",
                        r.templates, r.vectors_reused, r.reembedded, r.from_wal
                    ),
                );
            }
        }
        // restored vectors came synchronously; from here on no record waits for the model
        pipeline.defer_embedding()?;
        let joiner = settings.multiline.map(crate::pipeline::join_buffer::BufferJoiner::new);
        Ok(Embedded {
            options: settings.event_options(),
            settings,
            inner: Mutex::new(Inner { pipeline, tagger: Tagger::default(), out: MallocBuf::default(), joiner }),
            sealing: AtomicBool::new(false),
            untouched_after_error: AtomicU64::new(0),
            invalid_buffers: AtomicU64::new(0),
            no_message: AtomicU64::new(0),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Scores and tags a buffer of msgpack records. `emit` receives the result while the lock is
    /// held (copy it out). Then what was learned is appended and the window timer runs.
    pub fn filter<R>(self: &Arc<Self>, data: &[u8], log: Log, emit: impl FnOnce(Filtered<'_>) -> R) -> R {
        let mut inner = lock(&self.inner);
        let Inner { pipeline, tagger, out, joiner } = &mut *inner;
        let what = "while tagging a buffer; its records were passed through untouched";
        let options = &self.options;
        let result = guarded(what, log, || {
            let joined = match joiner {
                Some(j) => j.join(data, &options.message_keys)?,
                None => None,
            };
            let mut stats = match joined {
                Some(joined) => {
                    let mut stats = tagger.tag_chunk(joined, pipeline, options, out)?;
                    stats.joined = true; // fewer records than came: the buffer changed
                    stats
                }
                None => tagger.tag_chunk(data, pipeline, options, out)?,
            };
            // an empty buffer: the host's clock moves with no record; sessions over by now close
            if data.is_empty() {
                let closed = pipeline.tick_sessions();
                stats.sessions += crate::codec::fluent_bit::quiet_session_records(out, closed, crate::pipeline::reduce::now());
            }
            // a window's end (or an empty buffer: a host asking for them now): its summaries follow
            if pipeline.reducer().is_some() && (data.is_empty() || pipeline.window_due()) {
                stats.summaries = append_summaries(pipeline, out, &options.message_keys);
            }
            Ok::<ChunkStats, crate::codec::msgpack::Error>(stats)
        });
        if let Ok(Ok(stats)) = &result {
            if stats.no_message > 0 && self.no_message.fetch_add(stats.no_message, Ordering::Relaxed) == 0 {
                log(
                    LogLevel::Warn,
                    &format!(
                        "a record has no string message under {}: passed through untouched, not scored (set message_key to the key that holds it; a.b reaches nested maps; further ones are counted at exit)",
                        options.message_keys.join(", ")
                    ),
                );
            }
        }
        let r = match result {
            Ok(Ok(stats)) if stats.modified() => emit(Filtered::Modified(out, stats)),
            Ok(Ok(_)) => emit(Filtered::Untouched),
            Ok(Err(e)) => {
                // said once; a host that keeps sending such buffers must not flood its own log
                if self.invalid_buffers.fetch_add(1, Ordering::Relaxed) == 0 {
                    log(
                        LogLevel::Warn,
                        &format!(
                            "buffer of {} bytes is not valid msgpack ({e}); passed through untouched (further ones are counted, not logged)",
                            data.len()
                        ),
                    );
                }
                emit(Filtered::Untouched)
            }
            Err(_) => {
                // The engine heals itself on the next record (its tables catch up with the miner).
                self.untouched_after_error.fetch_add(count_records(data), Ordering::Relaxed);
                emit(Filtered::Untouched)
            }
        };
        pipeline.after_record();
        let due = pipeline.window_due();
        if due {
            pipeline.restart_window();
        }
        drop(inner);
        if due && self.settings.state_dir.is_some() && !self.sealing.swap(true, Ordering::AcqRel) {
            let me = Arc::clone(self);
            let spawned = std::thread::Builder::new().name("turbolog-seal".into()).spawn(move || {
                let _ = pipeline::seal(&*me, true); // a failure is logged inside
                me.sealing.store(false, Ordering::Release);
            });
            if spawned.is_err() {
                self.sealing.store(false, Ordering::Release);
            }
        }
        r
    }

    /// Seals the window now, synchronously: `templates.tls`, then a chunk from the WAL shards.
    pub fn flush(&self, _log: Log) -> Result<(), String> {
        pipeline::seal(self, true).map_err(|e| format!("{e}; scoring continues from memory and the next window retries"))
    }

    /// At exit, before the last flush: the vectors still being computed are waited for (a few
    /// seconds at most), so that the last seal holds them (a restart embeds any that did not
    /// make it), and what the model cost is logged.
    pub fn finish_embedding(&self, log: Log) {
        let mut inner = lock(&self.inner);
        inner.pipeline.finish_embedding(std::time::Duration::from_secs(5));
        if let Some(d) = inner.pipeline.engine.embedder_delays() {
            log(LogLevel::Info, &d);
        }
    }

    /// Records passed through untouched because of an internal error (each kind is logged once).
    pub fn untouched_after_error(&self) -> u64 {
        self.untouched_after_error.load(Ordering::Relaxed)
    }

    /// Records with no string message under the message keys (the first one is logged).
    pub fn no_message(&self) -> u64 {
        self.no_message.load(Ordering::Relaxed)
    }

    /// Buffers that were not valid msgpack (passed through untouched; the first one is logged).
    pub fn invalid_buffers(&self) -> u64 {
        self.invalid_buffers.load(Ordering::Relaxed)
    }

    /// At exit, with reduce on: the last window's summaries, which no buffer will carry, go to
    /// the log (one line each), then the totals. Nothing when reduce is off.
    /// At exit, with multiline auto: what was joined, and the events buffer boundaries cut.
    pub fn finish_multiline(&self, log: Log) {
        let inner = lock(&self.inner);
        let Some(j) = &inner.joiner else { return };
        let cut = if j.cut_at_buffer_start > 0 {
            format!("; {} events continued past the end of a buffer and went out in two records (put Fluent Bit's multiline.parser before turbolog to join across buffers)", j.cut_at_buffer_start)
        } else {
            String::new()
        };
        log(LogLevel::Info, &format!("multiline: {} continuation records joined into the record before them{cut}", j.joined_records));
    }

    pub fn finish_reduce(&self, log: Log) {
        let mut inner = lock(&self.inner);
        let Some((window, engine)) = inner.pipeline.end_reduce_window() else { return };
        for s in window.summaries {
            let mut text = String::new();
            crate::codec::summary::summary_message(&mut text, s, engine.template_text(s.template_id));
            log(LogLevel::Info, &format!("last window: {text} (template {}: {} seen, {} passed)", s.template_id, s.seen, s.passed));
        }
        if let Some(r) = inner.pipeline.reducer() {
            log(LogLevel::Info, &format!("reduce: {} records held back in all, {} summaries", r.suppressed_total(), r.summaries_total()));
        }
    }

    /// Volume reduction's counts since the start (records held back, summaries), when on.
    pub fn reduced(&self) -> Option<(u64, u64)> {
        lock(&self.inner).pipeline.reducer().map(|r| (r.suppressed_total(), r.summaries_total()))
    }

    /// Records that went past the template limit (`max_templates`).
    pub fn template_limit_hits(&self) -> u64 {
        lock(&self.inner).pipeline.engine.template_limit_hits()
    }

    /// Explain counters, when explain is on.
    pub fn explain_stats(&self) -> Option<crate::explain::ExplainStats> {
        lock(&self.inner).pipeline.explainer().map(|x| x.stats())
    }

    /// Counters for tests and diagnostics: (records scored, anomalies, templates).
    pub fn counts(&self) -> (u64, u64, usize) {
        let inner = lock(&self.inner);
        let e = &inner.pipeline.engine;
        (e.records(), e.anomalies(), e.template_count())
    }
}

/// Ends the reduce window: one summary event per template that had records held back,
/// appended to `out`; how many.
fn append_summaries(pipeline: &mut Pipeline, out: &mut MallocBuf, keys: &[String]) -> u64 {
    let Some((window, engine)) = pipeline.end_reduce_window() else { return 0 };
    for s in window.summaries {
        crate::codec::fluent_bit::summary_record(out, s, engine.template_text(s.template_id), (window.start, window.end), keys);
    }
    window.summaries.len() as u64
}

/// Top-level msgpack values in `data` (records and group markers), up to the first bad byte.
fn count_records(data: &[u8]) -> u64 {
    let mut r = Reader::new(data);
    let mut n = 0;
    while !r.at_end() && r.skip().is_ok() {
        n += 1;
    }
    n
}

impl Drop for Embedded {
    fn drop(&mut self) {
        lock(&self.inner).pipeline.finish_embedding(std::time::Duration::from_secs(5));
        let _ = self.flush(log_stderr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::out_buf::OutBuf;
    use crate::codec::fluent_bit::PANIC_NEXT;

    fn fixture() -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/fluent-bit/tail_openssh.msgpack");
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn quiet(_: LogLevel, _: &str) {}

    #[test]
    fn a_panic_while_tagging_passes_records_through_and_the_engine_keeps_working() {
        let data = fixture();
        let e = Embedded::open(Settings::default(), quiet).unwrap();
        let records = count_records(&data);
        assert!(records > 10);
        for round in 1..=3u64 {
            PANIC_NEXT.with(|p| p.set(true));
            let untouched = e.filter(&data, quiet, |f| matches!(f, Filtered::Untouched));
            assert!(untouched, "a failed buffer comes back untouched");
            assert_eq!(e.untouched_after_error(), records * round);
            // the next call tags as usual: no poisoned lock, no broken tables
            let tagged = e.filter(&data, quiet, |f| match f {
                Filtered::Modified(out, stats) => stats.records == records && out.as_slice().len() > data.len(),
                Filtered::Untouched => false,
            });
            assert!(tagged, "round {round}: the engine must keep tagging after a caught panic");
        }
    }

    /// Records `[[time, {}], {"log": message}]`.
    fn records(lines: &[(u32, String)]) -> Vec<u8> {
        let mut buf = Vec::new();
        for (secs, line) in lines {
            rmp::encode::write_array_len(&mut buf, 2).unwrap();
            rmp::encode::write_array_len(&mut buf, 2).unwrap();
            crate::codec::forward_json::write_event_time(&mut buf, crate::codec::forward_json::EventTime { secs: *secs, nanos: 0 });
            rmp::encode::write_map_len(&mut buf, 0).unwrap();
            rmp::encode::write_map_len(&mut buf, 1).unwrap();
            rmp::encode::write_str(&mut buf, "log").unwrap();
            rmp::encode::write_str(&mut buf, line).unwrap();
        }
        buf
    }

    /// The sessions' verdict records in a buffer: (id, anomaly).
    fn session_verdicts(buf: &[u8]) -> Vec<(String, bool)> {
        let mut data = buf;
        let mut found = Vec::new();
        while !data.is_empty() {
            let v = rmpv::decode::read_value(&mut data).unwrap();
            let body = &v.as_array().unwrap()[1];
            let get = |k: &str| body.as_map().unwrap().iter().find(|(key, _)| key.as_str() == Some(k)).map(|(_, v)| v.clone());
            if let Some(id) = get("turbolog_session") {
                found.push((id.as_str().unwrap().to_string(), get("anomaly").unwrap().as_bool().unwrap()));
            }
        }
        found
    }

    /// No record comes after a session's first step: an empty buffer (the host's clock) closes
    /// it once it has been quiet past `session_idle`, and its verdict comes back then.
    #[test]
    fn an_empty_buffer_closes_a_quiet_session_on_the_hosts_clock() {
        let settings = Settings::from_pairs([("session_key", "job-[0-9]+"), ("session_close", "idle"), ("session_idle", "1s")]).unwrap();
        let e = Embedded::open(settings, quiet).unwrap();
        let now = crate::pipeline::reduce::now() as u32;
        // 60 jobs of three steps each, long done; then one that started and never went on
        let mut lines = Vec::new();
        for i in 0..60u32 {
            let t = now - 10_000 + i * 100;
            lines.push((t, format!("job-{i} accepted from queue default")));
            lines.push((t, format!("job-{i} running on worker {}", i % 4)));
            lines.push((t + 1, format!("job-{i} finished in {} ms", 100 + i)));
        }
        lines.push((now, "job-999 accepted from queue default".to_string()));
        let tagged = e.filter(&records(&lines), quiet, |f| match f {
            Filtered::Modified(out, _) => session_verdicts(out.as_slice()),
            Filtered::Untouched => panic!("tagged"),
        });
        assert!(tagged.is_empty(), "no session closed by the records alone: {tagged:?}");
        let tick = || {
            e.filter(&[], quiet, |f| match f {
                Filtered::Modified(out, _) => session_verdicts(out.as_slice()),
                Filtered::Untouched => Vec::new(),
            })
        };
        let mut said = tick();
        let started = std::time::Instant::now();
        while !said.iter().any(|(id, _)| id == "job-999") && started.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(200));
            said.extend(tick());
        }
        assert!(said.contains(&("job-999".to_string(), true)), "stuck after its first step: said once quiet, anomalous: {said:?}");
        assert!(started.elapsed() >= std::time::Duration::from_secs(1), "not before it was quiet past session_idle");
        assert!(said.iter().all(|(id, anomaly)| id == "job-999" || !anomaly), "the 60 finished jobs are normal (and not reported): {said:?}");
        assert_eq!(tick(), Vec::new(), "said once");
    }

    /// A record whose message is under a key nobody named is passed through; the first is said
    /// (with the keys and what to set), the rest are counted.
    #[test]
    fn records_without_a_message_are_said_once_and_counted() {
        use std::sync::Mutex;
        static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
        fn keep(_: LogLevel, text: &str) {
            SAID.lock().unwrap().push(text.to_string());
        }
        let mut chunk = Vec::new();
        for i in 0..3 {
            rmp::encode::write_array_len(&mut chunk, 2).unwrap();
            rmp::encode::write_array_len(&mut chunk, 2).unwrap();
            rmp::encode::write_uint(&mut chunk, 1_795_515_600 + i).unwrap();
            rmp::encode::write_map_len(&mut chunk, 0).unwrap();
            rmp::encode::write_map_len(&mut chunk, 1).unwrap();
            rmp::encode::write_str(&mut chunk, "text").unwrap();
            rmp::encode::write_str(&mut chunk, "request served").unwrap();
        }
        let e = Embedded::open(Settings::default(), quiet).unwrap();
        for _ in 0..2 {
            assert!(e.filter(&chunk, keep, |f| matches!(f, Filtered::Untouched)), "nothing to tag: the buffer is the host's own");
        }
        assert_eq!(e.no_message(), 6);
        let said = SAID.lock().unwrap();
        let warned: Vec<_> = said.iter().filter(|t| t.contains("no string message")).collect();
        assert_eq!(warned.len(), 1, "{said:?}");
        assert!(warned[0].contains("log, message") && warned[0].contains("set message_key"), "{}", warned[0]);
    }

    #[test]
    fn a_poisoned_lock_does_not_fail_later_calls() {
        let data = fixture();
        let e = Embedded::open(Settings::default(), quiet).unwrap();
        let e2 = Arc::clone(&e);
        let _ = std::thread::spawn(move || {
            let _guard = e2.inner.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(e.inner.is_poisoned());
        assert!(e.filter(&data, quiet, |f| matches!(f, Filtered::Modified(..))));
        assert!(e.flush(quiet).is_ok());
    }
}
