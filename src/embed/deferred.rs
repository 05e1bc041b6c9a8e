//! Embedding off the record path, for hosts that must not hold a record up while the model runs
//! (the Fluent Bit plugin, `serve`, `filter`): the engine hands a new template's text to a worker
//! thread and scores the record with what it knows now; the vector comes back a few milliseconds
//! later and is in place for the template's next record. The worker embeds whatever has queued
//! up in one call, grouped by length (see [`super::model::Model::embed_batch`]).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::model::{Model, DIM};

/// A template's text, and the vector the model gave it.
pub struct Embedded {
    pub id: u32,
    pub text: String,
    pub vector: Vec<f32>,
    /// From the request to the vector being ready.
    pub waited: Duration,
}

pub struct Deferred {
    requests: Option<Sender<(u32, String, Instant)>>,
    results: Receiver<Embedded>,
    /// Requested and not yet taken back.
    pub pending: usize,
    waits: Vec<u32>,
}

/// Requests embedded in one call at most.
const MAX_BATCH: usize = 64;
/// Plans unused this long are dropped (see [`Model::drop_idle_plans`]).
const IDLE: Duration = Duration::from_secs(30);

impl Deferred {
    /// The worker for `model`, which embeds within `memory_mib` (0 = no bound, see
    /// [`Model::embed_within`]).
    pub fn start(model: Arc<Model>, memory_mib: u64) -> Result<Deferred, String> {
        model.trim_to(memory_mib);
        let (req_tx, req_rx) = channel::<(u32, String, Instant)>();
        let (res_tx, res_rx) = channel::<Embedded>();
        std::thread::Builder::new()
            .name("turbolog-embed".into())
            .spawn(move || {
                loop {
                    let first = match req_rx.recv_timeout(IDLE) {
                        Ok(r) => r,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            // between bursts of new templates the plans' memory goes back
                            model.drop_idle_plans(IDLE);
                            continue;
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    };
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match req_rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    let texts: Vec<&str> = batch.iter().map(|(_, t, _)| t.as_str()).collect();
                    let mut out = vec![0f32; texts.len() * DIM];
                    if let Err(e) = model.embed_within(&texts, &mut out, memory_mib) {
                        eprintln!("turbolog: warning: the model could not embed {} templates ({e}); they are compared by their text only", texts.len());
                    }
                    for (i, (id, text, asked)) in batch.into_iter().enumerate() {
                        let vector = out[i * DIM..(i + 1) * DIM].to_vec();
                        if res_tx.send(Embedded { id, text, vector, waited: asked.elapsed() }).is_err() {
                            return;
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the embedding thread: {e}"))?;
        Ok(Deferred { requests: Some(req_tx), results: res_rx, pending: 0, waits: Vec::new() })
    }

    /// Queues a template's text; never blocks.
    pub fn request(&mut self, id: u32, text: &str) {
        if let Some(tx) = &self.requests {
            if tx.send((id, text.to_string(), Instant::now())).is_ok() {
                self.pending += 1;
            }
        }
    }

    /// The vectors ready now.
    pub fn ready(&mut self, mut apply: impl FnMut(Embedded)) {
        while let Ok(e) = self.results.try_recv() {
            self.taken(&e);
            apply(e);
        }
    }

    /// Waits (at most `timeout`) until every requested vector is back.
    pub fn wait(&mut self, timeout: Duration, mut apply: impl FnMut(Embedded)) {
        let deadline = Instant::now() + timeout;
        while self.pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(left) {
                Ok(e) => {
                    self.taken(&e);
                    apply(e);
                }
                Err(_) => break,
            }
        }
    }

    fn taken(&mut self, e: &Embedded) {
        self.pending = self.pending.saturating_sub(1);
        if self.waits.len() < 1_000_000 {
            self.waits.push(e.waited.as_micros().min(u32::MAX as u128) as u32);
        }
    }

    /// How long new templates waited for their vector (count, p50, p99), in words.
    pub fn summary(&self) -> Option<String> {
        let mut d = self.waits.clone();
        if d.is_empty() {
            return None;
        }
        d.sort_unstable();
        let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Some(format!(
            "{} templates embedded by the model off the record path (records wait for nothing); vector ready after p50 {:.1} ms, p99 {:.1} ms",
            d.len(),
            at(0.5),
            at(0.99)
        ))
    }
}
