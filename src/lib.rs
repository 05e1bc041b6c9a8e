//! turbolog: ultralight log anomaly detection that runs inside the log pipeline.
//!
//! The path a record takes, every host alike:
//!
//! ```text
//! host        cli/filter.rs · serve/process.rs · host/fluent_bit.rs · host/c_api.rs
//!   │           (one shared pipeline per state dir in the plugin: host/embedded.rs)
//! codec       codec/ndjson.rs · codec/fluent_bit.rs · codec/forward_json.rs → a Record view
//!   │           (message, level, session field, time); fields read and written: codec/fields.rs
//! pipeline    pipeline/mod.rs scores it (codec::Scorer), pipeline/lines.rs for line streams
//!   ├── detect   message.rs → template.rs (miner, line_key.rs cache) → embed/ → score.rs: Verdict
//!   ├── session  tracker.rs: the record's session; closed sessions judged (profile.rs)
//!   ├── explain  worker.rs: an LLM asked about the anomaly's template, off the path
//!   ├── store    persist.rs: learned templates to the WAL; seals: templates.tls + a chunk
//!   └── reduce   reduce.rs (reduce on): passes it or holds it back, counted per template and window
//! codec       writes the record back tagged (anomaly, score, template, reason) + session verdicts
//!               (+ at a window's end with reduce on, one summary per template: codec/summary.rs)
//! ```
//!
//! Dependencies point one way: hosts (`cli`, `serve`, [`host`]) → [`pipeline`] → [`codec`] and
//! [`store`] → [`session`] → [`detect`] → [`embed`]; [`explain`] is used by codec and pipeline.

pub mod codec;
pub mod detect;
pub mod embed;
pub mod explain;
pub mod host;
pub mod pipeline;
pub mod session;
pub mod store;

#[doc(hidden)]
pub mod fuzz_harness;

pub use detect::{Engine, EngineConfig, Verdict};
