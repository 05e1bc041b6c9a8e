//! turbolog: ultralight log anomaly detection that runs inside the log pipeline.
//!
//! Data flows record → message → template → vector → score → tag. The folders follow it:
//! [`detect`] is the data path (message, template mining, scoring, the engine), [`embed`] turns
//! templates into vectors, [`store`] keeps what was learned across restarts, and [`host`] is how
//! other processes drive the engine (C API, Fluent Bit plugin); [`explain`] asks a local LLM
//! about anomalies, off the data path. The CLI lives in `src/cli`.
//! [`session`] judges what a request or a block did as a whole.
//! Dependencies point one way: cli and host → explain → store → session → detect → embed.

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
