//! Finding the user's LLM server and asking it: OpenAI-compatible `/v1/chat/completions`.

use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use serde_json::{json, Value};

use crate::explain::ExplainConfig;

/// Where the usual local servers listen, in the order they are tried.
pub const PROBES: &[(&str, &str)] = &[
    ("Ollama", "http://127.0.0.1:11434"),
    ("LM Studio", "http://127.0.0.1:1234"),
    ("llama.cpp", "http://127.0.0.1:8080"),
];

/// A server that answered, and the model to ask.
pub struct Server {
    /// `http://HOST:PORT/v1`
    base: String,
    pub model: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (model {})", self.base, self.model)
    }
}

/// One answer and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    pub finish_reason: String,
    pub completion_tokens: u64,
}

impl Server {
    /// The configured server, or the first usual one that answers `GET /v1/models`. The model is
    /// the configured one, or the first the server lists.
    pub fn find(config: &ExplainConfig) -> Result<Server, String> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout(config.answer_timeout)
            .build();
        let candidates: Vec<(String, String)> = match &config.url {
            Some(url) => vec![("configured".to_string(), url.clone())],
            None => PROBES.iter().map(|(n, u)| (n.to_string(), u.to_string())).collect(),
        };
        let mut tried = Vec::new();
        for (name, url) in candidates {
            let base = v1_base(&url)?;
            check_address(&base, config.allow_remote)?;
            match list_models(&agent, &base, config.connect_timeout) {
                Ok(models) => {
                    let model = match (&config.model, models.first()) {
                        (Some(m), _) => m.clone(),
                        (None, Some(m)) => m.clone(),
                        (None, None) => return Err(format!("{base}/models lists no model; set --explain-model / explain_model")),
                    };
                    return Ok(Server { base, model, agent });
                }
                Err(e) => tried.push(format!("{name} {base}: {e}")),
            }
        }
        Err(format!(
            "no LLM server answered ({}); start one (Ollama, LM Studio, llama.cpp's llama-server) or set --explain-url / TURBOLOG_LLM_URL / explain_url",
            tried.join("; ")
        ))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Asks for one answer. Errors say what went wrong (connect, time-out, HTTP status, garbage).
    pub fn chat(&self, system: &str, user: &str, max_tokens: u32) -> Result<Answer, String> {
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "max_tokens": max_tokens,
            "temperature": 0.2,
            "frequency_penalty": 0.5,
            "stream": false,
        });
        let url = format!("{}/chat/completions", self.base);
        let resp = match self.agent.post(&url).send_json(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                return Err(format!("{url} answered HTTP {code}: {}", text.chars().take(200).collect::<String>()));
            }
            Err(e) => return Err(format!("{url}: {e}")),
        };
        let v: Value = resp.into_json().map_err(|e| format!("{url} answered something that is not JSON: {e}"))?;
        let choice = &v["choices"][0];
        let text = choice["message"]["content"].as_str().map(str::trim).unwrap_or("");
        if text.is_empty() {
            return Err(format!("{url} answered without a message: {}", v.to_string().chars().take(200).collect::<String>()));
        }
        let finish_reason = choice["finish_reason"].as_str().unwrap_or("");
        // cut short by the token limit: end at the last whole sentence, if there is one
        let text = if finish_reason == "length" { whole_sentences(text) } else { text };
        Ok(Answer {
            text: text.to_string(),
            finish_reason: finish_reason.to_string(),
            completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        })
    }
}

/// An answer cut by the token limit, up to its last whole sentence (a `.` after a word, not the
/// `3.` of a list), or as it is when there is none.
fn whole_sentences(text: &str) -> &str {
    let b = text.as_bytes();
    (1..b.len())
        .rev()
        .find(|&i| matches!(b[i], b'.' | b'!' | b'?') && (b[i - 1].is_ascii_alphabetic() || matches!(b[i - 1], b')' | b'"' | b'\'')))
        .map_or(text, |i| &text[..=i])
}

/// `http://h:p`, `http://h:p/`, `http://h:p/v1` → `http://h:p/v1`.
fn v1_base(url: &str) -> Result<String, String> {
    let u = url.trim().trim_end_matches('/');
    if u.starts_with("https://") {
        return Err(format!("{url}: https is not supported here; use the server's http address on this machine or a local proxy"));
    }
    if !u.starts_with("http://") {
        return Err(format!("{url} is not an http:// address"));
    }
    Ok(if u.ends_with("/v1") { u.to_string() } else { format!("{u}/v1") })
}

/// Only loopback addresses, unless remote servers are allowed: prompts hold log lines.
fn check_address(base: &str, allow_remote: bool) -> Result<(), String> {
    if allow_remote {
        return Ok(());
    }
    let host_port = base.trim_start_matches("http://").split('/').next().unwrap_or("");
    let with_port = if host_port.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        host_port.to_string()
    } else {
        format!("{host_port}:80")
    };
    let addrs: Vec<IpAddr> = with_port.to_socket_addrs().map_err(|e| format!("{base}: cannot resolve {host_port}: {e}"))?.map(|a| a.ip()).collect();
    if addrs.is_empty() || addrs.iter().any(|ip| !ip.is_loopback()) {
        return Err(format!(
            "{base} is not on this machine: log lines would leave it; set --explain-allow-remote / explain_allow_remote to allow it"
        ));
    }
    Ok(())
}

fn list_models(agent: &ureq::Agent, base: &str, timeout: Duration) -> Result<Vec<String>, String> {
    let resp = agent.get(&format!("{base}/models")).timeout(timeout.max(Duration::from_secs(2))).call().map_err(|e| e.to_string())?;
    let v: Value = resp.into_json().map_err(|e| format!("not JSON: {e}"))?;
    Ok(v["data"].as_array().map(|a| a.iter().filter_map(|m| m["id"].as_str().map(String::from)).collect()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_answer_ends_at_its_last_whole_sentence() {
        assert_eq!(whole_sentences("It failed. Check the disk. 1. Run fsck 2."), "It failed. Check the disk.");
        assert_eq!(whole_sentences("no sentence at all"), "no sentence at all");
    }

    #[test]
    fn addresses_are_normalised_and_remote_ones_refused() {
        assert_eq!(v1_base("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080/v1");
        assert_eq!(v1_base("http://localhost:11434/v1/").unwrap(), "http://localhost:11434/v1");
        assert!(v1_base("https://x").unwrap_err().contains("https is not supported"));
        assert!(v1_base("ftp://x").unwrap_err().contains("not an http"));
        assert!(check_address("http://127.0.0.1:8080/v1", false).is_ok());
        assert!(check_address("http://localhost:8080/v1", false).is_ok());
        assert!(check_address("http://[::1]:8080/v1", false).is_ok());
        assert!(check_address("http://10.1.2.3:8080/v1", false).unwrap_err().contains("not on this machine"));
        assert!(check_address("http://10.1.2.3:8080/v1", true).is_ok());
    }
}
