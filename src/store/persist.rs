//! An engine bound to a state directory: restore at start, WAL appends as it learns, seals.
//!
//! The pipeline binds its engine through this. The engine reports which templates were created
//! or generalised; their text and vector go to the calling thread's WAL shard, so what was
//! learned survives a crash without being embedded again. A seal (the pipeline's) writes
//! `templates.tls` (texts, counts, thresholds) and turns the WAL into a chunk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::detect::engine::{Engine, RestoreReport};
use crate::store::acks_file::{AckWatch, Polled};
use crate::store::templates_file;
use crate::store::{Store, StoreError, StoreOptions};
use crate::detect::template::TemplateId;

pub struct Persist {
    /// Shared with a seal that runs without the engine (see [`Persist::store`]).
    store: Arc<Store>,
    dir: PathBuf,
    dirty: Vec<TemplateId>,
    acks: AckWatch,
}

/// What opening a state directory found.
pub struct Opened {
    pub report: RestoreReport,
    pub warnings: Vec<String>,
}

/// What looking at `acks.tls` again found.
pub enum Acks {
    Unchanged,
    /// Applied: templates whose state changed, and how many are acknowledged in all.
    Applied { changed: usize, total: usize },
    /// Unreadable: the acks in force stay; the message says what to do.
    Unreadable(String),
}

impl Persist {
    /// Restores `engine` (fresh) from `dir` and starts tracking what it learns.
    pub fn open(dir: &Path, engine: &mut Engine, opts: StoreOptions) -> Result<(Persist, Opened), String> {
        let (store, mut opened) = open_store(dir, engine, opts)?;
        let mut p = Persist { store: Arc::new(store), dir: dir.to_path_buf(), dirty: Vec::new(), acks: AckWatch::default() };
        if let Acks::Unreadable(w) = p.sync_acks(engine) {
            opened.warnings.push(w);
        }
        Ok((p, opened))
    }

    /// Applies `acks.tls` when it changed since the last look (at open and at each seal).
    pub fn sync_acks(&mut self, engine: &mut Engine) -> Acks {
        match self.acks.poll(&self.dir) {
            Polled::Unchanged => Acks::Unchanged,
            Polled::Changed(ids) => Acks::Applied { changed: engine.set_acks(&ids), total: ids.len() },
            Polled::Unreadable(msg) => Acks::Unreadable(msg),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store, for a seal that runs while the engine goes on ([`Store::seal`] takes `&self`).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Appends the templates the engine created or generalised since the last call. A failure
    /// is returned once (then the store keeps the records in memory and retries at each seal).
    pub fn record(&mut self, engine: &mut Engine) -> Result<(), StoreError> {
        engine.take_dirty(&mut self.dirty);
        let mut first_err = None;
        for &id in &self.dirty {
            if let Err(e) = self.store.append(id as u64, engine.template_text(id), engine.vector(id)) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The window's anomalies into `DIR/history-*.tlh` (a failure only loses history, never state).
pub fn append_history(dir: &Path, engine: &mut Engine) {
    let mut window = Vec::new();
    engine.take_window_anomalies(&mut window);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let entries: Vec<crate::store::history::Entry> =
        window.iter().map(|&(template, count, score)| crate::store::history::Entry { time: now, template, count, score }).collect();
    let _ = crate::store::history::append(dir, &entries);
}

/// Opens the store in `dir` and restores a fresh `engine` from it and from `templates.tls`:
/// stored vectors are reused, never embedded again; templates newer than `templates.tls` come
/// back from their WAL records. The engine then tracks what it learns.
pub fn open_store(dir: &Path, engine: &mut Engine, opts: StoreOptions) -> Result<(Store, Opened), String> {
    // A state file of another embedder is a configuration error, said as such; any other reason
    // the engine cannot take it is corruption, moved aside.
    let other_embedder = std::cell::Cell::new(None);
    let loaded = templates_file::load_or_recover(dir, |s| {
        engine.check_snapshot(s).inspect_err(|e| {
            if s.embedder != engine.embedder_name() || s.dim as usize != engine.dim() {
                other_embedder.set(Some(e.clone()));
            }
        })
    })
    .map_err(|e| e.to_string())?;
    if let Some(e) = other_embedder.take() {
        return Err(format!(
            "{}: {e}; use a state directory made with the same embedder (the same --model, or none), or a new one",
            dir.join(templates_file::FILE_NAME).display()
        ));
    }
    let snap = loaded.snapshot;
    let (store, mut rec) = Store::open(dir, engine.dim() as u32, opts).map_err(|e| e.to_string())?;
    rec.warnings.splice(0..0, loaded.warnings);
    let texts: Vec<(u64, String)> = rec.wal_texts().map(|(id, t)| (id, t.to_string())).collect();
    let report = engine
        .restore_with(snap.as_ref(), &texts, &mut |id, out| {
            store.with_vector(&rec, id, |v| match v {
                Some(v) if v.len() == out.len() => {
                    out.copy_from_slice(v);
                    true
                }
                _ => false,
            })
        })
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut warnings = rec.warnings.clone();
    let (values, warning) = crate::store::values_file::load(dir);
    warnings.extend(warning);
    engine.restore_values(&values);
    engine.track_dirty(true);
    Ok((store, Opened { report, warnings }))
}
