//! What flows between the stages: inputs → (batches) → the engine thread → (tagged output) →
//! the writer. One bound covers both queues: a batch takes one permit per record from the
//! [`Gate`] when it is accepted and gives them back when its output is delivered, so a slow
//! downstream holds the inputs back (TCP reads stop, HTTP answers 503) instead of growing memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use turbolog::codec::known::Known;

use super::disk_queue::{DiskQueue, Refused};
use super::metrics::Metrics;
use super::security::Secret;
use super::msgpack_json::EventTime;

/// Records accepted from one read, request or Forward message, in arrival order.
#[derive(Debug)]
pub struct Batch {
    /// One record per line, each ending in `\n`: JSON objects or plain text.
    pub text: String,
    pub records: usize,
    /// One time per record (Forward and msgpack inputs), or empty.
    pub times: Vec<EventTime>,
    /// The Forward tag the records came with.
    pub tag: Option<Arc<str>>,
    pub permit: Option<Held>,
    /// One per record when its decoder knows the line's top-level fields (OTLP), or empty:
    /// the engine reads those lines from it. Not kept in the disk queue: a replayed line is read.
    pub known: Vec<Known>,
}

/// What a batch holds until its output is delivered: its room in the [`Gate`], and its place
/// in the disk queue.
#[derive(Debug, Default)]
pub struct Held {
    #[allow(dead_code)]
    gate: Option<OwnedSemaphorePermit>,
    /// The batch's sequence number in the disk queue.
    pub seq: Option<u64>,
}

impl Held {
    pub fn queued(seq: u64) -> Held {
        Held { gate: None, seq: Some(seq) }
    }

    pub fn with_gate(mut self, gate: Held) -> Held {
        self.gate = gate.gate;
        self
    }
}

/// Tagged records on their way out.
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub struct Pending {
    /// NDJSON, one record per line, each ending in `\n`.
    pub text: String,
    /// One time per line when known (else `now` at delivery, for Forward).
    pub times: Vec<EventTime>,
    pub tag: Option<String>,
    pub records: usize,
}

pub struct Out {
    pub pending: Pending,
    /// Held until the records are delivered: dropping it makes room for more input.
    pub permit: Option<Held>,
}

/// What the engine thread is sent: batches, then the end.
pub enum ToEngine {
    Batch(Batch),
    End,
}

/// The bound on records accepted but not yet delivered.
pub struct Gate {
    semaphore: Arc<Semaphore>,
    pub capacity: usize,
}

impl Gate {
    pub fn new(capacity: usize) -> Gate {
        Gate { semaphore: Arc::new(Semaphore::new(capacity)), capacity }
    }

    fn permits(&self, records: usize) -> u32 {
        records.clamp(1, self.capacity) as u32
    }

    /// Waits for room for `records` (a batch larger than the whole queue waits for all of it).
    pub async fn enter(&self, records: usize) -> Held {
        // the semaphore is never closed
        let p = self.semaphore.clone().acquire_many_owned(self.permits(records)).await.expect("gate semaphore is never closed");
        Held { gate: Some(p), seq: None }
    }

    /// Room for `records` now, or `None` when the queue is full.
    pub fn try_enter(&self, records: usize) -> Option<Held> {
        let p = self.semaphore.clone().try_acquire_many_owned(self.permits(records)).ok()?;
        Some(Held { gate: Some(p), seq: None })
    }

    /// Records accepted and not yet delivered.
    pub fn depth(&self) -> usize {
        self.capacity.saturating_sub(self.semaphore.available_permits())
    }
}

/// What every stage can see.
pub struct Shared {
    pub gate: Gate,
    pub to_engine: Mutex<Option<std::sync::mpsc::Sender<ToEngine>>>,
    pub metrics: Metrics,
    /// Set once the state is loaded and the engine takes records.
    pub engine_ready: AtomicBool,
    /// Set while the downstream takes what is written (always for stdout).
    pub downstream_up: AtomicBool,
    /// Why the downstream is not up, for `/readyz`.
    pub downstream_error: Mutex<String>,
    /// Set when shutdown begins: inputs stop taking new connections and requests.
    pub stopping: AtomicBool,
    /// When undelivered output must be given up on and kept in the state's outbox.
    pub deadline: Mutex<Option<Instant>>,
    pub limits: Limits,
    /// Told when the output is gone for good (standard output closed): serve stops as on SIGTERM.
    pub output_gone: tokio::sync::Notify,
    /// Accepted batches on disk until delivered (`--state` or `--queue-dir`).
    pub disk_queue: Option<DiskQueue>,
    /// HTTP and OTLP senders must present it as `Authorization: Bearer` (--auth-token-file).
    pub token: Option<Arc<Secret>>,
    /// Forward senders must prove it in the HELO/PING/PONG handshake (--shared-key-file).
    pub shared_key: Option<Arc<Secret>>,
}

/// What became of a batch handed to [`Shared::admit`].
pub enum Admitted {
    /// Taken (and, with a disk queue, on disk): the sender may be acknowledged. With
    /// `sync: false`, the sequence number still to sync.
    Yes(Option<u64>),
    /// The engine has stopped.
    Stopped,
    /// The disk queue refused it; the batch comes back to retry or refuse.
    Refused(Refused, Batch),
    /// Taken, but the disk did not confirm it: do not acknowledge (the sender resends).
    NotSynced(String),
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_line: usize,
    pub max_body: usize,
}

impl Shared {
    /// Hands an accepted batch to the engine; `false` once the engine has stopped.
    pub fn send(&self, batch: Batch) -> bool {
        let guard = self.to_engine.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(tx) => tx.send(ToEngine::Batch(batch)).is_ok(),
            None => false,
        }
    }

    /// Takes an accepted batch: with a disk queue appended (in the order batches reach the
    /// engine) and, with `sync`, synced before this returns [`Admitted::Yes`].
    pub async fn admit(&self, mut batch: Batch, sync: bool) -> Admitted {
        let Some(q) = &self.disk_queue else {
            return if self.send(batch) { Admitted::Yes(None) } else { Admitted::Stopped };
        };
        let seq = {
            let mut w = q.writer();
            let seq = match q.append(&mut w, &batch) {
                Ok(s) => s,
                Err(why) => return Admitted::Refused(why, batch),
            };
            batch.permit = Some(Held::queued(seq).with_gate(batch.permit.take().unwrap_or_default()));
            // on disk already: if the engine is gone it is delivered at the next start
            if !self.send(batch) {
                return Admitted::Stopped;
            }
            seq
        };
        if !sync {
            return Admitted::Yes(Some(seq));
        }
        match q.sync(seq).await {
            Ok(()) => Admitted::Yes(None),
            Err(e) => Admitted::NotSynced(e),
        }
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub fn ready(&self) -> Result<(), String> {
        if self.stopping() {
            return Err("shutting down".into());
        }
        if let Some(why) = self.disk_queue.as_ref().and_then(DiskQueue::failing) {
            return Err(why);
        }
        if !self.engine_ready.load(Ordering::Acquire) {
            return Err("the state is loading".into());
        }
        if !self.downstream_up.load(Ordering::Acquire) {
            let why = self.downstream_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
            return Err(format!("the downstream is unreachable: {why}"));
        }
        Ok(())
    }

    pub fn past_deadline(&self) -> bool {
        self.deadline.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|d| Instant::now() >= d)
    }
}

/// Splits NDJSON bytes into the batch text: complete lines only, `\r\n` accepted, blank lines
/// skipped, invalid UTF-8 replaced. Returns the number of records added.
pub fn push_lines(text: &mut String, bytes: &[u8]) -> usize {
    // one validation for the whole read; the lossy path only for the rare invalid one
    let owned;
    let all = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => {
            owned = String::from_utf8_lossy(bytes);
            &owned
        }
    };
    let mut n = 0;
    for line in all.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let blank = match line.as_bytes().first() {
            None => true,
            Some(b) if b.is_ascii_whitespace() => line.bytes().all(|b| b.is_ascii_whitespace()),
            Some(_) => false,
        };
        if blank {
            continue;
        }
        text.push_str(line);
        text.push('\n');
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_cleaned_and_counted() {
        let mut t = String::new();
        assert_eq!(push_lines(&mut t, b"{\"a\":1}\r\n\n  \nplain \xff text\n{\"b\":2}"), 3);
        assert_eq!(t, "{\"a\":1}\nplain \u{fffd} text\n{\"b\":2}\n");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_gate_bounds_records_and_admits_an_oversized_batch_alone() {
        let g = Gate::new(10);
        let a = g.enter(6).await;
        assert_eq!(g.depth(), 6);
        assert!(g.try_enter(5).is_none());
        let b = g.try_enter(4).unwrap();
        drop(a);
        drop(b);
        assert_eq!(g.depth(), 0);
        let big = g.enter(1000).await;
        assert_eq!(g.depth(), 10);
        drop(big);
    }
}
