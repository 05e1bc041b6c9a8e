//! Explain: plain-language explanations of anomalous templates from a local LLM.
//!
//! The user's own server (Ollama, LM Studio, llama.cpp's `llama-server`, vLLM), spoken to through
//! the OpenAI-compatible `POST /v1/chat/completions` they all serve. Never in the way of the data
//! path: requests go to one background worker through a bounded queue (full → skipped and
//! counted), one per template, and answers are cached per template (in the state directory when
//! there is one) and attached to later records of that template. Before anything leaves the
//! process, secrets are redacted ([`redact`]); only loopback servers unless allowed.
//!
//! May use `store`'s framing for its cache; the pipeline owns an [`Explainer`].

pub mod cache;
pub mod prompt;
pub mod redact;
pub mod server;
pub mod worker;

pub use worker::{Context, Explainer, ExplainStats};

use std::time::Duration;

/// How to reach the LLM. Defaults: probe the usual loopback ports, 30 s per answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainConfig {
    /// `http://HOST:PORT` (with or without `/v1`); `None` = probe Ollama `:11434`, LM Studio
    /// `:1234`, llama.cpp `:8080` on 127.0.0.1.
    pub url: Option<String>,
    /// Model name; `None` = the first of `GET /v1/models`.
    pub model: Option<String>,
    /// Allow a server that is not on this machine (prompts are redacted either way).
    pub allow_remote: bool,
    pub connect_timeout: Duration,
    /// Longest wait for one whole answer.
    pub answer_timeout: Duration,
    /// Requests waiting for the worker, at most; more are skipped and counted.
    pub queue: usize,
    /// Extra redaction patterns (regular expressions), replaced by `<redacted>`.
    pub redact: Vec<String>,
    /// Tokens per answer, at most.
    pub max_tokens: u32,
}

impl Default for ExplainConfig {
    fn default() -> Self {
        ExplainConfig {
            url: None,
            model: None,
            allow_remote: false,
            connect_timeout: Duration::from_millis(500),
            answer_timeout: Duration::from_secs(30),
            queue: 64,
            redact: Vec::new(),
            max_tokens: 120,
        }
    }
}

/// `explain: 3 asked, 3 answered, 0 failed, 0 skipped (queue full), 1 from an earlier run`.
pub fn summary(e: &Explainer) -> String {
    let s = e.stats();
    format!(
        "explain: {} asked, {} answered, {} failed, {} skipped (queue full), {} from an earlier run",
        s.requested, s.answered, s.failed, s.skipped, s.cached
    )
}
