//! The record formats: NDJSON lines, Fluent Bit msgpack events, Forward entries. Each decodes a
//! record into the pipeline's view ([`Record`]) and writes the tagged record back in its own
//! format, with the field policy ([`fields`]) applied in one place.
//!
//! May use `detect` (levels, verdicts), `session` (closed sessions) and `explain` (answers); the
//! pipeline above scores through the [`Scorer`] it implements, so no codec knows who scores.

pub mod container;
pub mod fields;
pub mod fluent_bit;
pub mod forward_json;
pub mod json_text;
pub mod known;
pub mod msgpack;
pub mod ndjson;
pub mod otlp;
pub mod skim;
pub mod summary;

use crate::detect::level::Level;
use crate::detect::template::TemplateId;
use crate::detect::Verdict;
use crate::explain::worker::Answered;
use crate::session::ClosedSession;

/// One record as a codec read it, borrowed from the input: nothing is copied per record.
pub struct Record<'a> {
    /// What is scored: the message, with ` status=NNN` added when the status is a field of its
    /// own (the template then shows its class). Bytes: a host's records may not be UTF-8.
    pub message: &'a [u8],
    /// The message as the record has it (what a session pattern searches, what an LLM is shown).
    pub original: &'a [u8],
    /// The level field, when there is one.
    pub level: Option<Level>,
    /// The value of the session field, when [`Scorer::session_field`] names one the record has.
    pub session_field: Option<&'a [u8]>,
    /// When the record happened (seconds), read only when [`Scorer::wants_time`].
    pub time: Option<i64>,
    /// Where the record is in its stream (the input line), when the host counts lines.
    pub seq: Option<u64>,
}

/// What a codec needs from whoever scores its records (the pipeline).
pub trait Scorer {
    /// Scores a record and follows its session.
    fn score(&mut self, record: &Record<'_>) -> Verdict;
    /// A template's text.
    fn template(&self, id: TemplateId) -> &str;
    /// For an anomaly that goes out: the LLM's answer for its template, when there is one (the
    /// question is asked otherwise, once per template).
    fn explanation(&mut self, v: &Verdict, message: &[u8]) -> Option<Answered>;
    /// The sessions the last scored record closed; their verdicts go out after it.
    fn closed(&self) -> &[ClosedSession];
    /// The record field holding the session id, when sessions are keyed by a field.
    fn session_field(&self) -> Option<&str>;
    /// Whether records' times are wanted (sessions are on).
    fn wants_time(&self) -> bool;
    /// Whether a scored record that would be written goes on (volume reduction may hold it
    /// back and count it); `shape` is how its message was keyed.
    fn pass(&mut self, _v: &Verdict, _shape: summary::Shape) -> bool {
        true
    }
}

/// An engine alone scores: no sessions, no explanations (tests, benchmarks, `scan`).
impl Scorer for crate::detect::Engine {
    fn score(&mut self, record: &Record<'_>) -> Verdict {
        self.process_bytes_with(record.message, record.level)
    }
    fn template(&self, id: TemplateId) -> &str {
        self.template_text(id)
    }
    fn explanation(&mut self, _: &Verdict, _: &[u8]) -> Option<Answered> {
        None
    }
    fn closed(&self) -> &[ClosedSession] {
        &[]
    }
    fn session_field(&self) -> Option<&str> {
        None
    }
    fn wants_time(&self) -> bool {
        false
    }
}
