//! The background worker: one thread, a bounded queue, one request per template.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::explain::cache::{Explanation, Explanations};
use crate::explain::prompt;
use crate::explain::redact::Redactor;
use crate::explain::server::Server;
use crate::explain::ExplainConfig;

/// What the model is told about one anomalous template.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    pub line: String,
    pub template: String,
    pub reason: String,
    pub count: u64,
    /// A few lines just before it.
    pub neighbours: Vec<String>,
}

/// Counters, for reports and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExplainStats {
    /// Requests sent to the server.
    pub requested: u64,
    pub answered: u64,
    /// No server, time-out, HTTP error, garbage.
    pub failed: u64,
    /// The queue was full: not asked.
    pub skipped: u64,
    /// Answers that came from the cache of an earlier run.
    pub cached: u64,
}

/// How the worker reports: `(is_warning, message)`.
pub type Log = Arc<dyn Fn(bool, &str) + Send + Sync>;

/// An answer, and the same as a JSON string (quoted, escaped once, not per record).
#[derive(Clone)]
pub struct Answered {
    pub text: Arc<str>,
    pub json: Arc<str>,
}

impl Answered {
    fn new(text: &str) -> Answered {
        let json = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
        Answered { text: Arc::from(text), json: Arc::from(json.as_str()) }
    }
}

struct Shared {
    answers: Mutex<HashMap<u32, Answered>>,
    entries: Mutex<Explanations>,
    /// Templates asked about (queued, answered or failed): one request per template.
    asked: Mutex<HashSet<u32>>,
    /// Templates whose request ended, answered or not.
    done: Mutex<HashSet<u32>>,
    requested: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    cached: AtomicU64,
    warned: AtomicBool,
    dirty: AtomicBool,
    /// Requests in the queue, and how many it holds: a full queue is seen before a request is
    /// built, so the records of a busy stream pay one atomic load, not an allocation.
    queued: std::sync::atomic::AtomicUsize,
    capacity: usize,
    /// Templates skipped at least once (counted once each).
    skipped_ids: Mutex<HashSet<u32>>,
}

struct Job {
    id: u32,
    ctx: Context,
}

pub struct Explainer {
    shared: Arc<Shared>,
    tx: Mutex<Option<SyncSender<Job>>>,
}

/// After a server could not be found, how long failures are quick before it is looked for again.
const RETRY_FIND: Duration = Duration::from_secs(30);

impl Explainer {
    /// Starts the worker. `cached`: answers of earlier runs (never asked again).
    pub fn start(config: ExplainConfig, cached: Explanations, log: Log) -> Result<Explainer, String> {
        let redactor = Redactor::new(&config.redact)?;
        let answers = cached.by_template.iter().map(|(id, e)| (*id, Answered::new(&e.text))).collect::<HashMap<_, _>>();
        let asked: HashSet<u32> = answers.keys().copied().collect();
        let shared = Arc::new(Shared {
            answers: Mutex::new(answers),
            entries: Mutex::new(cached),
            done: Mutex::new(asked.clone()),
            asked: Mutex::new(asked),
            requested: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            queued: std::sync::atomic::AtomicUsize::new(0),
            capacity: config.queue.max(1),
            skipped_ids: Mutex::new(HashSet::new()),
        });
        let (tx, rx) = sync_channel(config.queue.max(1));
        let worker_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("turbolog-explain".into())
            .spawn(move || run(config, redactor, rx, worker_shared, log))
            .map_err(|e| format!("cannot start the explain worker: {e}"))?;
        Ok(Explainer { shared, tx: Mutex::new(Some(tx)) })
    }

    /// Requests waiting for the LLM now.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Asks about template `id` unless it was asked about already; never blocks. `ctx` is built
    /// only when a request is made.
    pub fn request(&self, id: u32, ctx: impl FnOnce() -> Context) {
        let shared = &self.shared;
        if lock(&shared.asked).contains(&id) {
            return;
        }
        if shared.queued.load(Ordering::Acquire) >= shared.capacity {
            self.skip(id);
            return;
        }
        lock(&shared.asked).insert(id);
        shared.queued.fetch_add(1, Ordering::AcqRel);
        let tx = lock(&self.tx);
        let sent = tx.as_ref().map(|tx| tx.try_send(Job { id, ctx: ctx() }));
        if !matches!(sent, Some(Ok(()))) {
            shared.queued.fetch_sub(1, Ordering::AcqRel);
            // asked again when the template is next flagged and there is room
            lock(&shared.asked).remove(&id);
            self.skip(id);
        }
    }

    fn skip(&self, id: u32) {
        if lock(&self.shared.skipped_ids).insert(id) {
            self.shared.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The answer for template `id`, if there is one yet.
    pub fn answer(&self, id: u32) -> Option<Arc<str>> {
        let a = lock(&self.shared.answers).get(&id).map(|a| Arc::clone(&a.text));
        a
    }

    /// The answer with its JSON form, for writers that add it to many records.
    pub fn answered(&self, id: u32) -> Option<Answered> {
        let a = lock(&self.shared.answers).get(&id).cloned();
        a
    }

    /// Whether this template's answer came from an earlier run.
    pub fn note_cached_use(&self) {
        self.shared.cached.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits until every one of `ids` that was asked about is answered or failed, or `deadline`.
    pub fn wait_for(&self, ids: &[u32], deadline: Instant) {
        loop {
            let pending = {
                let asked = lock(&self.shared.asked);
                let done = lock(&self.shared.done);
                ids.iter().any(|id| asked.contains(id) && !done.contains(id))
            };
            if !pending || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stats(&self) -> ExplainStats {
        let s = &self.shared;
        ExplainStats {
            requested: s.requested.load(Ordering::Relaxed),
            answered: s.answered.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            skipped: s.skipped.load(Ordering::Relaxed),
            cached: s.cached.load(Ordering::Relaxed),
        }
    }

    /// Writes `explanations.tls` when there are new answers.
    pub fn save(&self, dir: &std::path::Path) -> Result<(), String> {
        if !self.shared.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let snapshot = lock(&self.shared.entries).clone();
        crate::explain::cache::save(dir, &snapshot).map_err(|e| {
            self.shared.dirty.store(true, Ordering::Release);
            e.to_string()
        })
    }

    /// Stops taking requests; the worker ends after the one it is on (never waited for).
    pub fn stop(&self) {
        lock(&self.tx).take();
    }
}

impl Drop for Explainer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(config: ExplainConfig, redactor: Redactor, rx: Receiver<Job>, shared: Arc<Shared>, log: Log) {
    let mut server: Option<Server> = None;
    let mut last_find: Option<(Instant, String)> = None;
    let fail = |shared: &Shared, id: u32, why: &str| {
        shared.failed.fetch_add(1, Ordering::Relaxed);
        lock(&shared.done).insert(id);
        if !shared.warned.swap(true, Ordering::AcqRel) {
            log(true, &format!("explain: {why}; no explanation for now (further failures are counted, not logged)"));
        }
    };
    while let Ok(job) = rx.recv() {
        shared.queued.fetch_sub(1, Ordering::AcqRel);
        if server.is_none() {
            if let Some((at, why)) = &last_find {
                if at.elapsed() < RETRY_FIND {
                    let why = why.clone();
                    fail(&shared, job.id, &why);
                    continue;
                }
            }
            match Server::find(&config) {
                Ok(s) => {
                    log(false, &format!("explain: using {}, model {}", s.base(), s.model));
                    server = Some(s);
                    last_find = None;
                }
                Err(e) => {
                    last_find = Some((Instant::now(), e.clone()));
                    fail(&shared, job.id, &e);
                    continue;
                }
            }
        }
        let s = server.as_ref().expect("found above");
        shared.requested.fetch_add(1, Ordering::Relaxed);
        let user = prompt::user_message(&job.ctx, &redactor);
        match s.chat(prompt::SYSTEM, &user, config.max_tokens) {
            Ok(answer) => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                lock(&shared.entries).by_template.insert(
                    job.id,
                    Explanation { template: job.ctx.template.clone(), text: answer.text.clone(), model: s.model.clone(), at: now },
                );
                lock(&shared.answers).insert(job.id, Answered::new(&answer.text));
                shared.answered.fetch_add(1, Ordering::Relaxed);
                shared.dirty.store(true, Ordering::Release);
                lock(&shared.done).insert(job.id);
            }
            Err(e) => {
                fail(&shared, job.id, &e);
                // the server may have gone: look for it again at the next request
                server = None;
            }
        }
    }
}
