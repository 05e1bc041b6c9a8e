//! An engine embedded in a host process (the C API, the Fluent Bit plugin).
//!
//! One engine per state directory per process: plugin instances (several Fluent Bit processors
//! on several worker threads, or a hot reload) that name the same `state_dir` share it, so they
//! learn together and never write the same files against each other. The engine sits behind a
//! mutex taken once per *buffer* (hundreds to thousands of records), not per record.
//!
//! What the engine learns goes to the durable store: a new or generalised template's text and
//! vector are appended to the calling thread's own WAL shard (outside the engine lock), and the
//! window is sealed on the timer (on a background thread: the pipeline never waits on the
//! disk), on an explicit flush and when the last handle goes away. A failing disk (full,
//! read-only) is logged once; scoring goes on from memory, failed appends are retried at each
//! seal, and recovery is logged when it works again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use once_cell::sync::Lazy;

use crate::host::config::Settings;
use crate::detect::engine::Engine;
use crate::store::persist;
use crate::host::msgpack::Reader;
use crate::host::panic_guard::guarded;
use crate::host::out_buf::MallocBuf;
use crate::host::records::{ChunkStats, Tagger};
use crate::store::acks_file::{AckWatch, Polled};
use crate::store::templates_file;
use crate::store::Store;
use crate::detect::template::TemplateId;

struct Inner {
    engine: Engine,
    tagger: Tagger,
    out: MallocBuf,
    dirty: Vec<TemplateId>,
    last_seal: Instant,
    /// Records the engine had seen at the last seal: nothing to save when unchanged.
    sealed_records: u64,
}

pub struct Embedded {
    settings: Settings,
    inner: Mutex<Inner>,
    store: Option<Store>,
    sealing: AtomicBool,
    save_failing: AtomicBool,
    /// Records handed back untouched because tagging their buffer failed internally.
    untouched_after_error: AtomicU64,
    limit_logged: AtomicBool,
    /// Buffers that were not valid msgpack, passed through untouched.
    invalid_buffers: AtomicU64,
    /// `acks.tls` as last applied: read again when it changes, at open and at each seal.
    acks: Mutex<AckWatch>,
    /// The local LLM worker, when `explain` is on.
    explainer: Option<Arc<crate::explain::Explainer>>,
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

/// A logger the host provides (Fluent Bit's `flb_log_print`, or stderr).
pub type Log = fn(level: LogLevel, msg: &str);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock was already caught at the ABI boundary; the state inside is
    // still a valid engine (every update is a plain counter or push), so carry on with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn log_stderr(level: LogLevel, msg: &str) {
    if level != LogLevel::Info {
        eprintln!("turbolog: {}: {msg}", if level == LogLevel::Error { "error" } else { "warning" });
    }
}

/// A state file that starts afresh when missing or corrupt (`load` says why), from `state_dir`.
fn from_state<T: Default>(settings: &Settings, load: fn(&std::path::Path) -> (T, Option<String>), log: Log) -> T {
    let Some(dir) = &settings.state_dir else { return T::default() };
    let (value, warning) = load(dir);
    if let Some(w) = warning {
        log(LogLevel::Warn, &w);
    }
    value
}

/// Applies `acks.tls` if it changed; says how many templates changed, or why it cannot be read.
fn apply_acks(watch: &mut AckWatch, dir: &std::path::Path, engine: &mut Engine, log: Log) {
    match watch.poll(dir) {
        Polled::Unchanged => {}
        Polled::Changed(ids) => {
            let changed = engine.set_acks(&ids);
            if changed > 0 {
                log(LogLevel::Info, &format!("acknowledgements applied: {changed} templates changed, {} acknowledged in all", ids.len()));
            }
        }
        Polled::Unreadable(msg) => log(LogLevel::Warn, &msg),
    }
}

impl Embedded {
    /// Opens (or joins) the engine for these settings, restoring what the state dir holds.
    pub fn open(settings: Settings, log: Log) -> Result<Arc<Embedded>, String> {
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
        let mut engine = match &settings.model_path {
            None => Engine::new(settings.engine_config()),
            Some(dir) => {
                let started = std::time::Instant::now();
                let m = crate::embed::model::load(dir).map_err(|e| format!("property model_path: {e}"))?;
                log(
                    LogLevel::Info,
                    &format!("embedder: all-MiniLM-L6-v2 int8 from {} (sha256 {}…), loaded in {:.2} s", dir.display(), &m.sha256()[..12], started.elapsed().as_secs_f64()),
                );
                Engine::with_embedder(settings.engine_config(), Box::new(crate::embed::ModelEmbedder::new(m)))
            }
        };
        let store = match &settings.state_dir {
            None => None,
            Some(dir) => {
                let (store, opened) = persist::open_store(dir, &mut engine, settings.store_options())?;
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
                Some(store)
            }
        };
        // restored vectors came synchronously; from here on no record waits for the model
        engine.defer_embedding()?;
        let explainer = match &settings.explain {
            None => None,
            Some(config) => {
                let cached = from_state(&settings, crate::explain::cache::load, log);
                let worker_log: crate::explain::worker::Log =
                    Arc::new(move |warning, msg| log(if warning { LogLevel::Warn } else { LogLevel::Info }, msg));
                Some(Arc::new(crate::explain::Explainer::start(config.clone(), cached, worker_log)?))
            }
        };
        let sessions = settings.sessions.as_ref().map(|(key, config)| {
            let profile = from_state(&settings, crate::store::sessions_file::load, log);
            let mut tracker = crate::session::Tracker::new(config.clone(), profile);
            tracker.set_learning(settings.learning);
            crate::host::records::SessionTracking::new(key.clone(), tracker)
        });
        let mut acks = AckWatch::default();
        if let Some(dir) = &settings.state_dir {
            apply_acks(&mut acks, dir, &mut engine, log);
        }
        engine.set_learning(settings.learning);
        engine.track_dirty(store.is_some() && settings.learning);
        Ok(Embedded {
            acks: Mutex::new(acks),
            explainer: explainer.clone(),
            settings,
            inner: Mutex::new(Inner {
                sealed_records: engine.records(),
                engine,
                tagger: {
                    let mut t = Tagger::default();
                    t.explainer = explainer.clone();
                    t.sessions = sessions;
                    t
                },
                out: MallocBuf::default(),
                dirty: Vec::new(),
                last_seal: Instant::now(),
            }),
            store,
            sealing: AtomicBool::new(false),
            save_failing: AtomicBool::new(false),
            untouched_after_error: AtomicU64::new(0),
            limit_logged: AtomicBool::new(false),
            invalid_buffers: AtomicU64::new(0),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Scores and tags a buffer of msgpack records. `emit` receives the result while the lock is
    /// held (copy it out). Then appends what was learned and runs the window timer.
    pub fn filter<R>(self: &Arc<Self>, data: &[u8], log: Log, emit: impl FnOnce(Filtered<'_>) -> R) -> R {
        let mut inner = lock(&self.inner);
        let Inner { engine, tagger, out, dirty, last_seal, .. } = &mut *inner;
        let what = "while tagging a buffer; its records were passed through untouched";
        let result = guarded(what, log, || tagger.tag_chunk(data, engine, &self.settings, out));
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
        if engine.template_limit_hits() > 0 && !self.limit_logged.swap(true, Ordering::Relaxed) {
            log(LogLevel::Warn, &crate::detect::template::limit_warning(engine.max_templates()));
        }
        // New templates are rare: copy them out and append outside the engine lock.
        let learned = self.take_learned(engine, dirty);
        let due = self.settings.window_secs > 0.0 && last_seal.elapsed().as_secs_f64() >= self.settings.window_secs;
        if due {
            *last_seal = Instant::now();
        }
        drop(inner);
        self.append(&learned, log);
        if due && self.store.is_some() && !self.sealing.swap(true, Ordering::AcqRel) {
            let me = Arc::clone(self);
            let spawned = std::thread::Builder::new().name("turbolog-seal".into()).spawn(move || {
                let _ = me.seal(log); // a failure is logged inside
                me.sealing.store(false, Ordering::Release);
            });
            if spawned.is_err() {
                self.sealing.store(false, Ordering::Release);
            }
        }
        r
    }

    fn take_learned(&self, engine: &mut Engine, dirty: &mut Vec<TemplateId>) -> Vec<(u64, String, Vec<f32>)> {
        if self.store.is_none() {
            return Vec::new();
        }
        engine.take_dirty(dirty);
        dirty.iter().map(|&id| (id as u64, engine.template_text(id).to_string(), engine.vector(id).to_vec())).collect()
    }

    fn append(&self, learned: &[(u64, String, Vec<f32>)], log: Log) {
        let Some(store) = &self.store else { return };
        for (id, text, v) in learned {
            if let Err(e) = store.append(*id, text, v) {
                log(LogLevel::Error, &format!("{e}; records keep being tagged from memory and the append is retried at the next seal"));
            }
        }
    }

    /// Seals the window now, synchronously: `templates.tls`, then a chunk from the WAL shards.
    pub fn flush(&self, log: Log) -> Result<(), String> {
        if self.store.is_none() {
            return Ok(());
        }
        let learned = {
            let mut inner = lock(&self.inner);
            let Inner { engine, dirty, .. } = &mut *inner;
            self.take_learned(engine, dirty)
        };
        self.append(&learned, log);
        self.seal(log)
    }

    /// At exit, before the last flush: the vectors still being computed are waited for (a few
    /// seconds at most), so that the last seal holds them (a restart embeds any that did not
    /// make it), and what the model cost is logged.
    pub fn finish_embedding(&self, log: Log) {
        let mut inner = lock(&self.inner);
        inner.engine.finish_embedding(std::time::Duration::from_secs(5));
        if let Some(d) = inner.engine.embedder_delays() {
            log(LogLevel::Info, &d);
        }
    }

    fn seal(&self, log: Log) -> Result<(), String> {
        let Some(store) = &self.store else { return Ok(()) };
        let dir = self.settings.state_dir.as_ref().expect("a store has a directory");
        {
            let mut watch = lock(&self.acks);
            let mut inner = lock(&self.inner);
            apply_acks(&mut watch, dir, &mut inner.engine, log);
            if self.settings.learning {
                persist::append_history(dir, &mut inner.engine);
            }
        }
        let result = store.seal(|| {
            // taken after the WALs are detached, so it covers every detached record
            let snap = {
                let mut inner = lock(&self.inner);
                if inner.engine.records() == inner.sealed_records && dir.join(templates_file::FILE_NAME).exists() {
                    return Ok(());
                }
                inner.sealed_records = inner.engine.records();
                inner.engine.snapshot()
            };
            templates_file::save(dir, &snap).map_err(|e| {
                lock(&self.inner).sealed_records = u64::MAX; // unsaved: the next seal must write
                e.to_string()
            })
        });
        if self.settings.sessions.is_some() && self.settings.learning {
            let profile = lock(&self.inner).tagger.sessions.as_mut().map(|s| s.tracker.profile().clone());
            if let Some(p) = profile {
                if let Err(e) = crate::store::sessions_file::save(dir, &p) {
                    log(LogLevel::Warn, &format!("{e}; session profiles stay in memory and are saved at the next seal"));
                }
            }
        }
        if let Some(x) = &self.explainer {
            if let Err(e) = x.save(dir) {
                log(LogLevel::Warn, &format!("{e}; explanations stay in memory and are saved at the next seal"));
            }
        }
        match result {
            Ok(_) => {
                if self.save_failing.swap(false, Ordering::AcqRel) {
                    log(LogLevel::Info, &format!("saving to {} works again", dir.display()));
                }
                Ok(())
            }
            Err(e) => {
                let msg = format!("{e}; scoring continues from memory and the next window retries");
                if !self.save_failing.swap(true, Ordering::AcqRel) {
                    log(LogLevel::Error, &msg);
                }
                Err(msg)
            }
        }
    }

    /// Records passed through untouched because of an internal error (each kind is logged once).
    pub fn untouched_after_error(&self) -> u64 {
        self.untouched_after_error.load(Ordering::Relaxed)
    }

    /// Buffers that were not valid msgpack (passed through untouched; the first one is logged).
    pub fn invalid_buffers(&self) -> u64 {
        self.invalid_buffers.load(Ordering::Relaxed)
    }

    /// Records that went past the template limit (`max_templates`).
    pub fn template_limit_hits(&self) -> u64 {
        lock(&self.inner).engine.template_limit_hits()
    }

    /// Explain counters, when explain is on.
    pub fn explain_stats(&self) -> Option<crate::explain::ExplainStats> {
        self.explainer.as_ref().map(|x| x.stats())
    }

    /// Counters for tests and diagnostics: (records scored, anomalies, templates).
    pub fn counts(&self) -> (u64, u64, usize) {
        let inner = lock(&self.inner);
        (inner.engine.records(), inner.engine.anomalies(), inner.engine.template_count())
    }
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
        lock(&self.inner).engine.finish_embedding(std::time::Duration::from_secs(5));
        let _ = self.flush(log_stderr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::out_buf::OutBuf;
    use crate::host::records::PANIC_NEXT;

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
