//! The disk queue's options, and the replay at start.

use std::path::{Path, PathBuf};

use super::super::pipeline::{Held, Shared};
use super::{DiskQueue, Fsync, Options, Queued};

#[derive(clap::Args, Clone, Debug)]
pub struct QueueArgs {
    /// Keep accepted records on disk here until the downstream takes them (default with
    /// --state: DIR/queue): senders are acknowledged only once their records are on disk, and a
    /// restart, even after kill -9, delivers them (at-least-once).
    #[arg(long, value_name = "DIR", env = "TURBOLOG_QUEUE_DIR")]
    pub queue_dir: Option<PathBuf>,
    /// The disk queue's bound; when it is reached senders are held back (HTTP 503, Forward and
    /// TCP reads paused), nothing is dropped.
    #[arg(long, value_name = "BYTES", env = "TURBOLOG_QUEUE_BYTES", default_value_t = 256 << 20, value_parser = clap::value_parser!(u64).range(4096..))]
    pub queue_bytes: u64,
    /// When the disk queue is synced: `batch` before each acknowledgement (requests that arrive
    /// together share one fsync), `off` leaves it to the kernel (survives kill -9, not a power cut).
    #[arg(long, value_name = "POLICY", env = "TURBOLOG_QUEUE_FSYNC", default_value = "batch")]
    pub queue_fsync: Fsync,
}

impl QueueArgs {
    /// The disk queue: in --queue-dir, else in the state directory (`None` when neither).
    pub fn open(&self, state: Option<&Path>) -> Result<Option<DiskQueue>, String> {
        let Some(dir) = self.queue_dir.clone().or_else(|| state.map(|s| s.join("queue"))) else { return Ok(None) };
        let (q, warnings) = DiskQueue::open(&dir, Options { max_bytes: self.queue_bytes, fsync: self.queue_fsync })?;
        for w in warnings {
            eprintln!("turbolog: warning: {w}");
        }
        Ok(Some(q))
    }
}

/// Hands what the disk queue held at start to the engine, in order, within `--queue`.
pub async fn deliver_first(shared: &Shared) {
    let Some(q) = &shared.disk_queue else { return };
    let segments = q.undelivered();
    if segments.is_empty() {
        return;
    }
    let mut records = 0;
    for seg in &segments {
        let batches = match q.read(seg) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("turbolog: warning: {e}");
                continue;
            }
        };
        for Queued { seq, mut batch } in batches {
            if records == 0 {
                eprintln!("turbolog: serve: delivering the records left in the disk queue in {} first", q.dir().display());
            }
            records += batch.records;
            let room = shared.gate.enter(batch.records).await;
            batch.permit = Some(Held::queued(seq).with_gate(room));
            if !shared.send(batch) {
                return;
            }
        }
    }
    if records > 0 {
        eprintln!("turbolog: serve: {records} records from the disk queue handed to the engine; new input is taken from now on");
    }
}
