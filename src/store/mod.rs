//! Durable memory: what the engine learned, kept in a state directory across restarts and crashes.
//!
//! May use `session` and `detect` for what it stores; the pipeline binds an engine to it
//! ([`persist`]), never the other way round.
//!
//! ```text
//! DIR/wal-<shard>.bin                    active write-ahead log of one worker thread (wal)
//! DIR/wal-<shard>-sealed-<nanos>.bin     a detached WAL waiting to become a chunk
//! DIR/chunk-<seq>.tvim                   sealed, immutable, memory-mapped chunk (chunk)
//! DIR/templates.tls                      template texts, counts, thresholds (templates_file)
//! DIR/sessions.tls                       what normal sessions contain (sessions_file)
//! DIR/history-<n>.tlh                   a bounded journal of anomalies (history)
//! DIR/values.tls                         what the values of template positions looked like (values_file)
//! DIR/acks.tls                           templates an operator acknowledged as normal (acks_file)
//! DIR/*.corrupt                          files found corrupt and moved aside
//! ```
//! [`directory`] ties shards and chunks together; [`persist`] binds an engine to a directory.

pub mod acks_file;
pub mod chunk;
pub mod directory;
pub mod framed;
pub mod history;
pub mod persist;
pub mod sessions_file;
pub mod templates_file;
pub mod values_file;
pub mod wal;

pub use directory::{Recovery, SealStats, Store, StoreError, StoreOptions, MAX_SHARDS, thread_shard};
pub use wal::FsyncPolicy;
