//! turbolog: ultralight log anomaly detection that runs inside the log pipeline.
//!
//! Data flows record → message → template → vector → score → tag; each stage is a module:
//! [`message`] sets the header aside, [`token`] and [`template`] mine templates, [`embed`] turns
//! templates into vectors, [`score`] scores, and [`engine`] runs them in order. The CLI lives in
//! `src/cli`, the state that survives restarts in [`state`].

pub mod config;
pub mod embed;
pub mod embedded;
pub mod ffi;
pub mod fluentbit;
pub mod engine;
pub mod level;
pub mod line_key;
pub mod message;
pub mod msgpack;
pub mod records;
pub mod score;
pub mod persist;
pub mod state;
pub mod store;
pub mod template;
pub mod token;

pub use engine::{Engine, EngineConfig, Verdict};
