//! What never leaves the process: secrets and personal data, replaced before a prompt is sent.
//!
//! One table, applied in order (specific before general: a bearer token before a long base64
//! string). Users add patterns with `--redact REGEX` / property `explain_redact`.

use regex::Regex;

/// (name, pattern, replacement). `$k` keeps the key of a `key=value` pair.
pub const RULES: &[(&str, &str, &str)] = &[
    ("bearer token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}", "Bearer <token>"),
    ("basic auth", r"(?i)\bbasic\s+[A-Za-z0-9+/=]{8,}", "Basic <token>"),
    ("url credentials", r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", "${1}<user>:<secret>@"),
    ("JSON secret", r#"(?i)"([a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credential|auth)[a-z0-9_.-]*)"\s*:\s*"(?:[^"\\]|\\.)*""#, r#""$1": "<redacted>""#),
    ("key=value secret", r#"(?i)\b([a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credential)[a-z0-9_.-]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&]+)"#, "$1$2<redacted>"),
    ("API key", r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b", "<key>"),
    ("JWT", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", "<jwt>"),
    ("e-mail", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b", "<email>"),
    ("IPv4", r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b", "<ip>"),
    ("IPv6", r"(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|(?i)\b(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}:?){0,6}[0-9a-f]{1,4}\b", "<ip>"),
    ("user name", r"(?i)\b(user|username|login|for invalid user|for user|for)\s+([A-Za-z0-9._@-]+)(\s+from\b)", "$1 <user>$3"),
    ("user=", r"(?i)\b(user|username|login|uid|ruser)=([^\s,;&]+)", "$1=<user>"),
    ("long hex", r"\b[0-9a-fA-F]{24,}\b", "<hex>"),
    ("base64", r"\b[A-Za-z0-9+/]{32,}={0,2}", "<base64>"),
];

pub struct Redactor {
    rules: Vec<(String, Regex, String)>,
}

impl Redactor {
    /// The built-in table and `extra` patterns (each replaced by `<redacted>`). A bad pattern is
    /// an error naming it.
    pub fn new(extra: &[String]) -> Result<Redactor, String> {
        let mut rules: Vec<(String, Regex, String)> = RULES
            .iter()
            .map(|(name, re, with)| (name.to_string(), Regex::new(re).expect("built-in redaction rules compile"), with.to_string()))
            .collect();
        for p in extra {
            let re = Regex::new(p).map_err(|e| format!("redaction pattern {p:?} is not a valid regular expression: {e}"))?;
            rules.insert(0, (format!("custom {p}"), re, "<redacted>".to_string()));
        }
        Ok(Redactor { rules })
    }

    pub fn redact(&self, text: &str) -> String {
        let mut s = text.to_string();
        for (_, re, with) in &self.rules {
            if re.is_match(&s) {
                s = re.replace_all(&s, with.as_str()).into_owned();
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_fires_on_a_real_shape() {
        let r = Redactor::new(&[]).unwrap();
        let cases = [
            ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig_abcdefgh", "Authorization: Bearer <token>"),
            ("GET https://bob:hunter2@example.com/x", "GET https://<user>:<secret>@example.com/x"),
            (r#"{"user":"x","password":"hunter2","api_key":"abc"}"#, r#"{"user":"x","password": "<redacted>","api_key": "<redacted>"}"#),
            ("login ok password=hunter2 retries=3", "login ok password=<redacted> retries=3"),
            ("db_secret: s3cr3t; next", "db_secret: <redacted>; next"),
            ("using key sk-proj-ABCDEFGHIJKLMNOPQRSTUV", "using key <key>"),
            ("token ghp_abcdefghijklmnopqrstuvwxyz0123", "token <key>"),
            ("aws AKIAIOSFODNN7EXAMPLE used", "aws <key> used"),
            ("mail to alice.smith@example.org failed", "mail to <email> failed"),
            ("connection from 173.234.31.186 port 22", "connection from <ip> port 22"),
            ("peer fe80::1ff:fe23:4567:890a dropped", "peer <ip> dropped"),
            ("Failed password for invalid user admin from <ip> port 22 ssh2", "Failed password for invalid user <user> from <ip> port 22 ssh2"),
            ("Accepted password for root from <ip>", "Accepted password for <user> from <ip>"),
            ("logname= uid=0 euid=0 ruser= rhost=x user=bob", "logname= uid=<user> euid=0 ruser= rhost=x user=<user>"),
            ("session 3f2a9c0d12e4b5679a8b7c6d5e4f3a2b closed", "session <hex> closed"),
            ("blob dGhpcyBpcyBhIHNlY3JldCBrZXkgZm9yIHRlc3Rpbmc= seen", "blob <base64> seen"),
        ];
        for (input, want) in cases {
            assert_eq!(r.redact(input), want, "input: {input}");
        }
        // ordinary words and numbers stay
        assert_eq!(r.redact("waiting for connection on port 8080"), "waiting for connection on port 8080");
    }

    #[test]
    fn extra_patterns_come_first_and_bad_ones_are_named() {
        let r = Redactor::new(&["tenant-[0-9]+".to_string()]).unwrap();
        assert_eq!(r.redact("quota for tenant-42 exceeded"), "quota for <redacted> exceeded");
        assert!(Redactor::new(&["(".to_string()]).err().unwrap().contains("\"(\" is not a valid regular expression"));
    }
}
