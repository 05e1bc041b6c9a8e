//! The explain options every command shares, and starting an [`Explainer`] from them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use turbolog::explain::{cache, ExplainConfig, Explainer};

#[derive(Args, Clone, Debug, Default)]
pub struct ExplainArgs {
    /// Ask a local LLM (Ollama, LM Studio, llama.cpp server) to explain anomalous templates.
    #[arg(long)]
    pub explain: bool,
    /// The LLM server (`http://127.0.0.1:11434`); default: probe Ollama :11434, LM Studio :1234,
    /// llama.cpp :8080 on this machine.
    #[arg(long, value_name = "URL", env = "TURBOLOG_LLM_URL")]
    pub explain_url: Option<String>,
    /// Model name; default: the first the server lists.
    #[arg(long, value_name = "NAME", env = "TURBOLOG_LLM_MODEL")]
    pub explain_model: Option<String>,
    /// Allow a server that is not on this machine (prompts are redacted either way).
    #[arg(long)]
    pub explain_allow_remote: bool,
    /// Longest wait for one answer, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub explain_timeout: f64,
    /// Also redact what matches this regular expression before a prompt leaves (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub redact: Vec<String>,
}

impl ExplainArgs {
    pub fn config(&self) -> ExplainConfig {
        ExplainConfig {
            url: self.explain_url.clone(),
            model: self.explain_model.clone(),
            allow_remote: self.explain_allow_remote,
            answer_timeout: Duration::from_secs_f64(self.explain_timeout.clamp(0.1, 3600.0)),
            redact: self.redact.clone(),
            ..ExplainConfig::default()
        }
    }

    /// An explainer when `--explain` is on; answers of earlier runs come from `state`.
    pub fn start(&self, state: Option<&Path>) -> Result<Option<Explainer>, String> {
        if !self.explain {
            return Ok(None);
        }
        let cached = super::from_state(state, cache::load);
        let log: turbolog::explain::worker::Log = Arc::new(|warning, msg| {
            eprintln!("turbolog: {}{msg}", if warning { "warning: " } else { "" });
        });
        Explainer::start(self.config(), cached, log).map(Some)
    }
}

/// The explain summary on stderr.
pub fn summary(e: &Explainer) {
    eprintln!("turbolog: {}", turbolog::explain::summary(e));
}
