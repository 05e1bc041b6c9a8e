//! An engine embedded in a host process (the C API, the Fluent Bit plugin).
//!
//! One engine per state directory per process: plugin instances (several Fluent Bit processors
//! on several worker threads, or a hot reload) that name the same `state_dir` share it, so they
//! learn together and never write the same files against each other. The engine sits behind a
//! mutex taken once per *buffer* (hundreds to thousands of records), not per record.
//!
//! Saving what was learned (the "window seal") happens on the window timer, on an explicit flush
//! and when the last handle goes away. The snapshot is taken under the lock; the file is written
//! outside it, on a background thread for the timer, so the pipeline never waits on the disk.
//! A failed save (full disk, read-only directory) is logged once; scoring goes on from memory
//! and the next window tries again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use once_cell::sync::Lazy;

use crate::config::Settings;
use crate::engine::Engine;
use crate::records::{ChunkStats, Tagger};
use crate::state;

struct Inner {
    engine: Engine,
    tagger: Tagger,
    out: Vec<u8>,
    last_save: Instant,
    /// Records the engine had seen at the last snapshot: nothing to save when unchanged.
    saved_records: u64,
}

pub struct Embedded {
    settings: Settings,
    inner: Mutex<Inner>,
    saving: AtomicBool,
    save_failing: AtomicBool,
}

/// What a filter call produced.
pub enum Filtered<'a> {
    /// Nothing changed: the host keeps its buffer.
    Untouched,
    /// The new buffer (possibly empty: every record dropped).
    Modified(&'a [u8], ChunkStats),
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

impl Embedded {
    /// Opens (or joins) the engine for these settings, loading saved state if there is any.
    pub fn open(settings: Settings) -> Result<Arc<Embedded>, String> {
        let Some(dir) = settings.state_dir.clone() else {
            return Ok(Arc::new(Self::create(settings)?));
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
        let e = Arc::new(Self::create(settings)?);
        registry.insert(key, Arc::downgrade(&e));
        registry.retain(|_, w| w.strong_count() > 0);
        Ok(e)
    }

    fn create(settings: Settings) -> Result<Embedded, String> {
        let mut engine = Engine::new(settings.engine_config());
        if let Some(dir) = &settings.state_dir {
            if let Some(snap) = state::load(dir).map_err(|e| e.to_string())? {
                engine.restore(&snap).map_err(|e| format!("{}: {e}", dir.join(state::FILE_NAME).display()))?;
            }
        }
        engine.set_learning(settings.learning);
        Ok(Embedded {
            settings,
            inner: Mutex::new(Inner { saved_records: engine.records(), engine, tagger: Tagger::default(), out: Vec::new(), last_save: Instant::now() }),
            saving: AtomicBool::new(false),
            save_failing: AtomicBool::new(false),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Scores and tags a buffer of msgpack records. `emit` receives the result while the lock is
    /// held (copy it out). Also runs the window timer.
    pub fn filter<R>(self: &Arc<Self>, data: &[u8], log: Log, emit: impl FnOnce(Filtered<'_>) -> R) -> R {
        let mut inner = lock(&self.inner);
        let Inner { engine, tagger, out, last_save, saved_records } = &mut *inner;
        let result = tagger.tag_chunk(data, engine, &self.settings, out);
        let due = self.settings.window_secs > 0.0 && last_save.elapsed().as_secs_f64() >= self.settings.window_secs;
        let snapshot = if due && self.wants_save() && !self.saving.swap(true, Ordering::AcqRel) {
            *last_save = Instant::now();
            *saved_records = engine.records();
            Some(engine.snapshot())
        } else {
            None
        };
        let r = match result {
            Ok(stats) if stats.modified() => emit(Filtered::Modified(out, stats)),
            Ok(_) => emit(Filtered::Untouched),
            Err(e) => {
                log(LogLevel::Warn, &format!("buffer of {} bytes is not valid msgpack ({e}); passed through untouched", data.len()));
                emit(Filtered::Untouched)
            }
        };
        drop(inner);
        if let Some(snap) = snapshot {
            let me = Arc::clone(self);
            let spawned = std::thread::Builder::new().name("turbolog-save".into()).spawn(move || {
                let _ = me.write(&snap, log); // a failure is logged inside
                me.saving.store(false, Ordering::Release);
            });
            if spawned.is_err() {
                self.saving.store(false, Ordering::Release);
            }
        }
        r
    }

    fn wants_save(&self) -> bool {
        self.settings.state_dir.is_some() && self.settings.learning
    }

    /// Saves what was learned now, synchronously. Ok when there is nothing to save.
    pub fn flush(&self, log: Log) -> Result<(), String> {
        if !self.wants_save() {
            return Ok(());
        }
        let snap = {
            let mut inner = lock(&self.inner);
            if inner.engine.records() == inner.saved_records && inner.engine.records() > 0 {
                return Ok(());
            }
            inner.last_save = Instant::now();
            inner.saved_records = inner.engine.records();
            inner.engine.snapshot()
        };
        self.write(&snap, log)
    }

    fn write(&self, snap: &state::Snapshot, log: Log) -> Result<(), String> {
        let dir = self.settings.state_dir.as_ref().expect("checked by wants_save");
        match state::save(dir, snap) {
            Ok(()) => {
                if self.save_failing.swap(false, Ordering::AcqRel) {
                    log(LogLevel::Info, &format!("saving to {} works again", dir.display()));
                }
                Ok(())
            }
            Err(e) => {
                lock(&self.inner).saved_records = u64::MAX; // unsaved: the next flush must write
                let msg = format!("{e}; scoring continues from memory and the next window retries");
                if !self.save_failing.swap(true, Ordering::AcqRel) {
                    log(LogLevel::Error, &msg);
                }
                Err(msg)
            }
        }
    }

    /// Counters for tests and diagnostics: (records scored, anomalies, templates).
    pub fn counts(&self) -> (u64, u64, usize) {
        let inner = lock(&self.inner);
        (inner.engine.records(), inner.engine.anomalies(), inner.engine.template_count())
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.flush(|level, msg| eprintln!("turbolog: {level:?}: {msg}"));
    }
}
