//! The one record pipeline every host drives: `filter`, `serve`, `scan`, the Fluent Bit plugin
//! and the C API. It owns the engine and what goes with it — the state directory, windows and
//! seals, acknowledgements, sessions, explanations, deferred embedding, volume reduction
//! (`reduce.rs`) — and scores the
//! [`Record`](crate::codec::Record)s a codec reads, as the codec's [`Scorer`].
//!
//! May use `codec`, `store`, `session`, `explain`, `detect` and `embed`; never a host.

pub mod config;
mod hold;
pub mod join;
pub mod join_buffer;
pub mod join_streams;
mod lines;
pub mod log;
pub mod reduce;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::codec::{Record, Scorer};
use crate::detect::template::TemplateId;
use crate::detect::{Engine, Verdict};
use crate::embed::Embedder;
use crate::explain::worker::Answered;
use crate::explain::{Context, Explainer};
use crate::session::{ClosedSession, SessionKey, Tracker};
use crate::store::persist::{self, Acks, Opened, Persist};
use crate::store::{sessions_file, templates_file};

pub use config::Settings;
pub use lines::{Joining, LineOutput, LineStream};
pub use log::{Log, LogLevel};

/// Sessions in the record stream: a closed session's verdict goes out as a record of its own.
pub struct Sessions {
    pub key: SessionKey,
    pub tracker: Tracker,
    closed: Vec<ClosedSession>,
}

pub struct Pipeline {
    pub engine: Engine,
    /// The state directory, when there is one.
    persist: Option<Persist>,
    sessions: Option<Sessions>,
    explainer: Option<Arc<Explainer>>,
    learning: bool,
    window_secs: f64,
    /// `model_memory`: what the sentence model may take once embedding is off the record path.
    model_memory_mib: u64,
    last_seal: Instant,
    /// Records the engine had seen at the last seal: nothing to save when unchanged.
    sealed_records: u64,
    /// Saving fails (said once, and again when it works).
    store_failing: bool,
    limit_logged: bool,
    /// Volume reduction, when on.
    reducer: Option<reduce::Reducer>,
    /// `reduce_sessions keep`, where the host holds records for their sessions.
    keep_sessions: bool,
    /// With keep_sessions: the last record's session id (empty: none), and the record deferred
    /// for it, which the host holds until the session's verdict.
    session_id: String,
    deferred: Option<(TemplateId, crate::codec::summary::Shape)>,
    log: Log,
}

/// A state file that starts afresh when missing or corrupt (`load` says why, as a warning).
pub fn from_state<T: Default>(dir: Option<&Path>, load: fn(&Path) -> (T, Option<String>), log: Log) -> T {
    let Some(dir) = dir else { return T::default() };
    let (value, warning) = load(dir);
    if let Some(w) = warning {
        log(LogLevel::Warn, &w);
    }
    value
}

impl Pipeline {
    /// Opens the pipeline for `settings` with this embedder, restoring what the state directory
    /// holds (what was restored is in the [`Opened`] report: the host says it its own way).
    /// Without learning, the state is read and acknowledgements followed; nothing is written.
    pub fn open(settings: &Settings, embedder: Box<dyn Embedder>, log: Log) -> Result<(Pipeline, Option<Opened>), String> {
        let mut engine = Engine::with_embedder(settings.engine_config(), embedder);
        let dir = settings.state_dir.as_deref();
        let (persist, opened) = match dir {
            None => (None, None),
            Some(dir) => {
                let (p, opened) = Persist::open(dir, &mut engine, settings.store_options())?;
                (Some(p), Some(opened))
            }
        };
        let explainer = match &settings.explain {
            None => None,
            Some(config) => {
                let cached = from_state(dir, crate::explain::cache::load, log);
                let worker_log: crate::explain::worker::Log =
                    Arc::new(move |warning, msg| log(if warning { LogLevel::Warn } else { LogLevel::Info }, msg));
                Some(Arc::new(Explainer::start(config.clone(), cached, worker_log)?))
            }
        };
        let sessions = settings.sessions.as_ref().map(|(key, config)| {
            let profile = from_state(dir, sessions_file::load, log);
            let mut tracker = Tracker::new(config.clone(), profile);
            tracker.set_learning(settings.learning);
            Sessions { key: key.clone(), tracker, closed: Vec::new() }
        });
        engine.set_learning(settings.learning);
        engine.track_dirty(persist.is_some() && settings.learning);
        Ok((
            Pipeline {
                // templates replayed from a WAL are in no templates.tls yet: the first seal writes
                // one even before a record comes (it moves the WAL into a chunk, vectors only)
                sealed_records: if opened.as_ref().is_some_and(|o| o.report.from_wal > 0) { u64::MAX } else { engine.records() },
                engine,
                persist,
                sessions,
                explainer,
                learning: settings.learning,
                window_secs: settings.window_secs,
                model_memory_mib: settings.model_memory_mib,
                last_seal: Instant::now(),
                store_failing: false,
                limit_logged: false,
                reducer: settings.reduce.map(reduce::Reducer::new),
                keep_sessions: false,
                session_id: String::new(),
                deferred: None,
                log,
            },
            opened,
        ))
    }

    /// From here on no record waits for the model: new templates are embedded on a worker
    /// thread, within the `model_memory` bound.
    pub fn defer_embedding(&mut self) -> Result<(), String> {
        self.engine.defer_embedding(self.model_memory_mib).map(|_| ())
    }

    pub fn explainer(&self) -> Option<&Arc<Explainer>> {
        self.explainer.as_ref()
    }

    /// Volume reduction, when on: its counts since the start.
    pub fn reducer(&self) -> Option<&reduce::Reducer> {
        self.reducer.as_ref()
    }

    /// `reduce_sessions keep`: bytes the host may hold for open sessions, when set and there
    /// are sessions; from here on [`Scorer::pass`] defers such records (see [`Self::take_deferred`]).
    pub fn keep_sessions(&mut self) -> Option<usize> {
        let bytes = self.reducer.as_ref().and_then(|r| r.config().session_bytes).filter(|_| self.sessions.is_some())?;
        self.keep_sessions = true;
        Some(bytes)
    }

    /// The record just written waits for its session's verdict (that of
    /// [`Self::last_session_id`]): its template and shape. Taken once.
    pub fn take_deferred(&mut self) -> Option<(TemplateId, crate::codec::summary::Shape)> {
        self.deferred.take()
    }

    /// With `reduce_sessions keep`: the last record's session id (empty: none).
    pub fn last_session_id(&self) -> &str {
        &self.session_id
    }

    /// Whether session `id` is still open (its verdict is still to come).
    pub fn session_open(&self, id: &str) -> bool {
        self.sessions.as_ref().is_some_and(|s| s.tracker.is_open(id))
    }

    /// Counts a deferred record now its session's verdict came (see [`reduce::Reducer::settle`]).
    pub fn settle(&mut self, template: TemplateId, shape: crate::codec::summary::Shape, passed: bool) {
        if let Some(r) = &mut self.reducer {
            r.settle(template, shape, passed);
        }
    }

    /// Ends the reduce window now: the summaries of what it held back (each with its template's
    /// text), for the host to write in its own format. `None` when reduce is off.
    pub fn end_reduce_window(&mut self) -> Option<(reduce::ClosedWindow<'_>, &Engine)> {
        let r = self.reducer.as_mut()?;
        Some((r.end_window(reduce::now()), &self.engine))
    }

    /// After each record (or buffer of them): what was learned reaches the WAL before the
    /// record goes out. A failing disk is said once; the store retries at each seal.
    pub fn after_record(&mut self) {
        if !self.limit_logged && self.engine.template_limit_hits() > 0 {
            self.limit_logged = true;
            (self.log)(LogLevel::Warn, &crate::detect::template::limit_warning(self.engine.max_templates()));
        }
        if let (Some(p), true) = (&mut self.persist, self.learning) {
            if let Err(e) = p.record(&mut self.engine) {
                self.store_failing = true;
                (self.log)(LogLevel::Error, &format!("{e}; records keep being tagged from memory and the append is retried at the next seal"));
            }
        }
    }

    /// Whether a window is due (`window` seconds since the last seal; 0 = never).
    pub fn window_due(&self) -> bool {
        self.window_secs > 0.0 && self.last_seal.elapsed().as_secs_f64() >= self.window_secs
    }

    /// Whether windows end on time with something to do then (a state directory to save to, or
    /// reduce summaries to write): a host with a quiet input still ends them.
    pub fn window_timed(&self) -> bool {
        self.window_secs > 0.0 && (self.persist.is_some() || self.reducer.is_some())
    }

    /// Starts the next window now (a host that seals on another thread calls this first, so
    /// that one seal is started, not one per buffer).
    pub fn restart_window(&mut self) {
        self.last_seal = Instant::now();
    }

    /// End of input: open sessions are judged; their verdicts are in [`Scorer::closed`].
    pub fn close_sessions(&mut self) -> &[ClosedSession] {
        let Some(s) = &mut self.sessions else { return &[] };
        s.tracker.close_all(&self.engine);
        s.tracker.take_closed(&mut s.closed);
        &s.closed
    }

    /// The input is quiet: the sessions over by now on the host's clock close (see
    /// [`Tracker::tick_wall`]); their verdicts, as [`Scorer::closed`] gives them after a record.
    pub fn tick_sessions(&mut self) -> &[ClosedSession] {
        let Some(s) = &mut self.sessions else { return &[] };
        s.tracker.tick_wall(Instant::now(), &self.engine);
        s.tracker.take_closed(&mut s.closed);
        &s.closed
    }

    /// Whether sessions are tracked (a host with a quiet input then calls [`Self::tick_sessions`]).
    pub fn has_sessions(&self) -> bool {
        self.sessions.is_some()
    }

    /// The vectors still being computed are waited for (at most `timeout`), so the last seal
    /// holds them (a restart embeds any that did not make it).
    pub fn finish_embedding(&mut self, timeout: std::time::Duration) {
        self.engine.finish_embedding(timeout);
    }

    /// At the end: what the model cost, and how many records went past the template limit.
    pub fn report_end(&self) {
        if let Some(d) = self.engine.embedder_delays() {
            (self.log)(LogLevel::Info, &d);
        }
        let past = self.engine.template_limit_hits();
        if past > 0 {
            (self.log)(LogLevel::Warn, &format!("{past} lines in all went past the template limit ({})", self.engine.max_templates()));
        }
    }

    /// Seals the window now, on this thread. `Err` says what could not be saved.
    pub fn seal(&mut self) -> Result<(), String> {
        seal(&Exclusive(std::cell::RefCell::new(self)), false)
    }

    /// The last seal of a run: `Err` says that what was learned is not saved.
    pub fn seal_at_end(&mut self) -> Result<(), String> {
        self.seal().map_err(|e| format!("{e}; what was learned in this run is not saved"))
    }

    /// A periodic seal: a failure is said once (and when saving works again), the stream goes on.
    pub fn seal_quietly(&mut self) {
        let _ = seal(&Exclusive(std::cell::RefCell::new(self)), true);
    }

    /// Under the lock, first part of a seal: acknowledgements applied, the window's anomalies
    /// into the history, what was learned appended. The store and its directory, to seal.
    fn begin_seal(&mut self) -> Option<(Arc<crate::store::Store>, std::path::PathBuf, Result<(), String>)> {
        self.last_seal = Instant::now();
        let p = self.persist.as_mut()?;
        match p.sync_acks(&mut self.engine) {
            Acks::Unchanged => {}
            Acks::Applied { changed, total } => {
                if changed > 0 {
                    (self.log)(LogLevel::Info, &format!("acknowledgements applied: {changed} templates changed, {total} acknowledged in all"));
                    self.sealed_records = u64::MAX; // the acknowledged state is saved
                }
            }
            Acks::Unreadable(msg) => (self.log)(LogLevel::Warn, &msg),
        }
        if !self.learning {
            return None; // frozen: nothing is written
        }
        persist::append_history(p.dir(), &mut self.engine);
        let recorded = p.record(&mut self.engine).map_err(|e| e.to_string());
        Some((Arc::clone(p.store()), p.dir().to_path_buf(), recorded))
    }

    /// A snapshot for `templates.tls`, unless nothing changed since the last one saved.
    fn snapshot_if_changed(&mut self, dir: &Path) -> Option<crate::detect::snapshot::Snapshot> {
        if self.engine.records() == self.sealed_records && dir.join(templates_file::FILE_NAME).exists() {
            return None;
        }
        self.sealed_records = self.engine.records();
        Some(self.engine.snapshot())
    }

    /// Says when saving works again; a periodic seal also says a failure, once.
    fn sealed(&mut self, dir: &Path, result: &Result<(), String>, periodic: bool) {
        match result {
            Ok(()) => {
                if std::mem::take(&mut self.store_failing) {
                    (self.log)(LogLevel::Info, &format!("saving to {} works again", dir.display()));
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut self.store_failing, true) && periodic {
                    (self.log)(LogLevel::Error, &format!("{e}; scoring continues from memory and the next window retries"));
                }
            }
        }
    }
}

/// Who holds the pipeline while a window is sealed: the chunk is written without holding it.
pub trait Access {
    fn with<R>(&self, f: impl FnOnce(&mut Pipeline) -> R) -> R;
}

/// A pipeline only this thread uses.
struct Exclusive<'a>(std::cell::RefCell<&'a mut Pipeline>);

impl Access for Exclusive<'_> {
    fn with<R>(&self, f: impl FnOnce(&mut Pipeline) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

/// Seals the window: `templates.tls`, a chunk from the WAL shards, the session profiles and the
/// explanations. The pipeline is held only for the short parts, never while the chunk is built.
/// A `periodic` seal says a failure itself (once until saving works again).
pub fn seal(access: &impl Access, periodic: bool) -> Result<(), String> {
    let Some((store, dir, recorded)) = access.with(Pipeline::begin_seal) else { return Ok(()) };
    let sealed = store
        .seal(|| {
            // taken after the WALs are detached, so it covers every detached record
            let Some(snap) = access.with(|p| p.snapshot_if_changed(&dir)) else { return Ok(()) };
            templates_file::save(&dir, &snap).map_err(|e| {
                access.with(|p| p.sealed_records = u64::MAX); // unsaved: the next seal must write
                e.to_string()
            })
        })
        .map(|_| ())
        .map_err(|e| e.to_string());
    let (profile, explainer, log) = access.with(|p| (p.sessions.as_mut().map(|s| s.tracker.profile().clone()), p.explainer.clone(), p.log));
    if let Some(profile) = profile {
        if let Err(e) = sessions_file::save(&dir, &profile) {
            log(LogLevel::Warn, &format!("{e}; session profiles stay in memory and are saved at the next seal"));
        }
    }
    if let Some(x) = explainer {
        if let Err(e) = x.save(&dir) {
            log(LogLevel::Warn, &format!("{e}; explanations stay in memory and are saved at the next seal"));
        }
    }
    let result = recorded.and(sealed);
    access.with(|p| p.sealed(&dir, &result, periodic));
    result
}

impl Scorer for Pipeline {
    fn score(&mut self, r: &Record<'_>) -> Verdict {
        // a record of several lines (a trace its host joined) is scored as an event is
        let v = match join::scored_message(r.message) {
            None => self.engine.process_bytes_with(r.message, r.level),
            Some(scored) => self.engine.process_bytes_with(scored.as_bytes(), r.level),
        };
        if let Some(s) = &mut self.sessions {
            // the message's bytes are searched in place: no copy, nor a validation, per record
            let id: Option<std::borrow::Cow<'_, str>> = match s.key.field_name() {
                Some(_) => r.session_field.map(String::from_utf8_lossy),
                None => s.key.find_in_bytes(r.original),
            };
            let seq = r.seq.unwrap_or_else(|| self.engine.records());
            if self.keep_sessions {
                self.session_id.clear();
                self.session_id.push_str(id.as_deref().unwrap_or(""));
            }
            s.tracker.record(id.as_deref(), v.template_id, seq, r.time, &self.engine);
            s.tracker.take_closed(&mut s.closed);
        }
        v
    }

    fn template(&self, id: TemplateId) -> &str {
        self.engine.template_text(id)
    }

    fn explanation(&mut self, v: &Verdict, message: &[u8]) -> Option<Answered> {
        let x = self.explainer.as_ref()?;
        if let Some(a) = x.answered(v.template_id) {
            return Some(a);
        }
        // built only for the first anomaly of a template: the rest find it asked already
        let engine = &self.engine;
        x.request(v.template_id, || Context {
            line: String::from_utf8_lossy(message).into_owned(),
            template: engine.template_text(v.template_id).to_string(),
            reason: v.reason.to_string(),
            count: engine.template_stats(v.template_id).map_or(1, |s| s.count),
            neighbours: Vec::new(),
        });
        None
    }

    fn closed(&self) -> &[ClosedSession] {
        self.sessions.as_ref().map_or(&[], |s| &s.closed)
    }

    fn session_field(&self) -> Option<&str> {
        self.sessions.as_ref().and_then(|s| s.key.field_name())
    }

    fn wants_time(&self) -> bool {
        self.sessions.is_some()
    }

    #[inline]
    fn pass(&mut self, v: &Verdict, shape: crate::codec::summary::Shape) -> bool {
        let Some(r) = &mut self.reducer else { return true };
        if self.keep_sessions && self.sessions.as_ref().is_some_and(|s| s.tracker.last_said()) {
            // the record that got its session judged anomalous goes out before the verdict,
            // as the session's records before it do
            r.decide(v.template_id, true, shape, false);
            return true;
        }
        let deferrable = self.keep_sessions
            && !self.session_id.is_empty()
            // a session already judged anomalous: its records go on
            && !self.sessions.as_mut().is_some_and(|s| s.tracker.last_flagged());
        let pass = match r.decide(v.template_id, v.anomaly, shape, deferrable) {
            reduce::Decision::Pass => true,
            reduce::Decision::HoldBack => false,
            reduce::Decision::Defer => {
                // written as if it passed: the host moves it aside until the verdict
                self.deferred = Some((v.template_id, shape));
                return true;
            }
        };
        if !pass {
            if let Some(s) = &mut self.sessions {
                s.tracker.hold_back_last();
            }
        }
        pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(state: &Path) -> Pipeline {
        let settings = Settings { state_dir: Some(state.to_path_buf()), ..Settings::default() };
        Pipeline::open(&settings, Box::new(crate::embed::HashEmbedder::default()), |_, _| {}).unwrap().0
    }

    /// A run killed before its first seal leaves its templates in the WAL only; the next run
    /// (a `serve` whose input is quiet) seals on time before any record: that seal moves the WAL
    /// into a chunk, which keeps vectors only, so it must write the replayed texts first.
    #[test]
    fn a_seal_before_any_record_keeps_the_templates_replayed_from_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        {
            let mut first = open(&state);
            for l in ["Accepted password for root from 1.2.3.4 port 22 ssh2", "Invalid user admin from 5.6.7.8", "disk full on /var"] {
                first.engine.process_line(l);
                first.after_record();
            }
            first.seal().unwrap();
            for l in ["session opened for user root", "connection reset by peer 10.0.0.1"] {
                first.engine.process_line(l);
                first.after_record();
            }
            std::mem::forget(first); // killed: no seal, no drop
        }
        let mut second = open(&state);
        assert_eq!(second.engine.templates().count(), 5, "the WAL brings back what the seal had not saved");
        second.seal().unwrap();
        drop(second);
        let third = open(&state);
        let texts: Vec<String> = third.engine.templates().map(|t| t.template.text().to_string()).collect();
        assert_eq!(texts.len(), 5, "{texts:?}");
        assert!(texts.iter().any(|t| t.starts_with("connection reset by peer")), "{texts:?}");
    }
}
