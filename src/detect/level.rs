//! Log levels and severity words: the cheapest anomaly signal a line carries.

/// A normalised log level. Ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Notice,
    Warn,
    Error,
    Critical,
}

impl Level {
    /// Parses a level word as it appears in headers: `INFO`, `warning`, `[error]`, `E`, `<crit>`, `ERROR:`.
    /// Single letters (Android/glog style `V D I W E F`) are accepted only when `allow_letter` is set,
    /// because a lone `I` or `E` in running text is usually not a level.
    pub fn parse(word: &str, allow_letter: bool) -> Option<Level> {
        // fast rejection: levels are short and start with a letter or a bracket
        if word.is_empty() || word.len() > 13 || !matches!(word.as_bytes()[0], b'A'..=b'Z' | b'a'..=b'z' | b'[' | b'<' | b'(') {
            return None;
        }
        let w = word.trim_matches(|c: char| matches!(c, '[' | ']' | '<' | '>' | '(' | ')' | ':' | ',' | '|' | ' '));
        if w.len() == 1 {
            if !allow_letter {
                return None;
            }
            return Level::of_letter(w.as_bytes()[0]);
        }
        if w.len() > 11 {
            return None;
        }
        let mut buf = [0u8; 11];
        for (dst, src) in buf.iter_mut().zip(w.bytes()) {
            *dst = src.to_ascii_lowercase();
        }
        Level::of_lowercase(&buf[..w.len()])
    }

    /// The level a lower-cased word of two or more letters names (the words of [`Level::parse`]).
    pub fn of_lowercase(w: &[u8]) -> Option<Level> {
        match w {
            b"trace" | b"trc" | b"verbose" | b"finest" | b"finer" => Some(Level::Trace),
            b"debug" | b"dbg" | b"fine" => Some(Level::Debug),
            b"info" | b"inf" | b"information" => Some(Level::Info),
            b"notice" => Some(Level::Notice),
            b"warn" | b"warning" | b"wrn" => Some(Level::Warn),
            b"error" | b"err" | b"severe" | b"failure" => Some(Level::Error),
            b"fatal" | b"ftl" | b"crit" | b"critical" | b"alert" | b"emerg" | b"emergency" | b"panic" => {
                Some(Level::Critical)
            }
            _ => None,
        }
    }

    /// A single-letter level (Android/glog `V D I W E F`), upper case only.
    pub fn of_letter(b: u8) -> Option<Level> {
        match b {
            b'V' | b'T' => Some(Level::Trace),
            b'D' => Some(Level::Debug),
            b'I' => Some(Level::Info),
            b'W' => Some(Level::Warn),
            b'E' => Some(Level::Error),
            b'F' | b'A' => Some(Level::Critical),
            _ => None,
        }
    }

    /// Severity in [0, 1] used by the scorer.
    pub fn severity(self) -> f32 {
        match self {
            Level::Trace | Level::Debug | Level::Info | Level::Notice => 0.0,
            Level::Warn => 0.4,
            Level::Error => 0.8,
            Level::Critical => 1.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }
}

/// Words that mark trouble in a message whatever its level says.
const TROUBLE_WORDS: &[&str] = &[
    "error", "errors", "fail", "failed", "failure", "failures", "fatal", "exception", "panic",
    "denied", "refused", "timeout", "timed", "unable", "cannot", "corrupt", "corrupted",
    "severed", "abort", "aborted", "aborting", "killed", "unreachable", "lost",
    "crash", "crashed", "segfault", "overflow", "violation", "mismatch", "invalid", "illegal",
    "unavailable", "broken", "reset", "terminated", "rejected", "oom",
];

/// Fraction-like severity from the words of a template: 0 when none are troubling. Words inside
/// *names* are not evidence: a command-line flag (`--oom-score-adj=<*>`,
/// `--runtime-request-timeout=<*>`), the key of a `key=value` or `key: value` pair, a dotted
/// setting (`zookeeper.session.timeout.ms = <*>`); an exception class inside a dotted name
/// (`java.net.SocketTimeoutException`) still is.
pub fn trouble_score(template: &str) -> f32 {
    let mut hits = 0u32;
    let mut toks = template.split_ascii_whitespace().peekable();
    while let Some(tok) = toks.next() {
        let next_is_assignment = toks.peek().is_some_and(|n| matches!(*n, "=" | ":="));
        if (tok.starts_with('-') && tok.len() > 1 && tok.as_bytes()[1].is_ascii_alphabetic()) || tok.starts_with("--") {
            continue;
        }
        // `key=value`: the key is a name, the value may be trouble (`status=failed`)
        let value = match tok.find('=') {
            Some(eq) if eq > 0 => &tok[eq + 1..],
            _ => tok,
        };
        let name_like = |t: &str| {
            let t = t.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            t.contains('.') && !t.contains("..") && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-$".contains(&b))
                && t.split('.').all(|seg| !seg.is_empty())
        };
        if name_like(value) || (next_is_assignment && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))) {
            // a dotted name or a key before ` = `: only an exception class in it counts
            hits += value.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| is_camel_trouble(w)).count() as u32;
            continue;
        }
        for word in value.split(|c: char| !c.is_ascii_alphabetic()) {
            if is_camel_trouble(word) {
                // `NullPointerException`, `ValueError`: an exception class names trouble
                hits += 1;
                continue;
            }
            if word.len() < 3 || word.len() > 12 {
                continue;
            }
            let mut buf = [0u8; 12];
            for (dst, src) in buf.iter_mut().zip(word.bytes()) {
                *dst = src.to_ascii_lowercase();
            }
            let lower = std::str::from_utf8(&buf[..word.len()]).unwrap_or("");
            if TROUBLE_WORDS.contains(&lower) {
                hits += 1;
            }
        }
    }
    match hits {
        0 => 0.0,
        1 => 0.6,
        _ => 0.8,
    }
}

/// `IllegalStateException`, `OutOfMemoryError`: a capitalised name ending in a trouble word.
fn is_camel_trouble(word: &str) -> bool {
    ["Exception", "Error"].iter().any(|s| {
        word.len() > s.len()
            && word.ends_with(s)
            && word.as_bytes()[0].is_ascii_uppercase()
            && word.as_bytes()[word.len() - s.len() - 1].is_ascii_alphabetic()
    })
}

/// What a template's text says about trouble, beyond its words.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TextEvidence {
    /// Trouble words, in [0, 1] (see [`trouble_score`]).
    pub trouble: f32,
    /// An HTTP status class `5xx` (see [`crate::detect::token`]).
    pub server_error: bool,
    /// A line that only dumps a field or opens a dump: at most three words and then a value
    /// (`instruction address: <*>`, `RIP: <*>`), or a heading (`general purpose registers:`),
    /// or values alone. A crash prints many of them, each with the crash's level.
    pub field_dump: bool,
}

pub fn text_evidence(template: &str) -> TextEvidence {
    let trouble = trouble_score(template);
    let mut words = 0;
    let mut values = 0;
    let mut server_error = false;
    let mut last_is_value = false;
    for tok in template.split_ascii_whitespace() {
        server_error |= tok == "5xx" || tok.ends_with("=5xx");
        last_is_value = tok.contains("<*>");
        if last_is_value {
            values += 1;
        } else if tok.bytes().any(|b| b.is_ascii_alphabetic()) {
            words += 1;
        }
    }
    let field_dump = trouble == 0.0
        && !server_error
        && (words == 0 || (words <= 3 && (last_is_value || (values == 0 && template.ends_with(':')))));
    TextEvidence { trouble, server_error, field_dump }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        assert_eq!(Level::parse("INFO", false), Some(Level::Info));
        assert_eq!(Level::parse("[error]", false), Some(Level::Error));
        assert_eq!(Level::parse("Warning:", false), Some(Level::Warn));
        assert_eq!(Level::parse("FATAL", false), Some(Level::Critical));
        assert_eq!(Level::parse("E", true), Some(Level::Error));
        assert_eq!(Level::parse("E", false), None);
        assert_eq!(Level::parse("information", false), Some(Level::Info));
        assert_eq!(Level::parse("informational", false), None);
        assert_eq!(Level::parse("connection", false), None);
    }

    #[test]
    fn words_in_names_are_not_trouble() {
        // kubelet flags, a Kafka/ZooKeeper setting dump: names, not trouble
        assert_eq!(trouble_score("Flag: --oom-score-adj=\"<*>\""), 0.0);
        assert_eq!(trouble_score("FLAG: --runtime-request-timeout=\"<*>\""), 0.0);
        assert_eq!(trouble_score("zookeeper.session.timeout.ms = <*>"), 0.0);
        assert_eq!(trouble_score("max.block.ms : <*> error_count=<*>"), 0.0);
        // values and plain words still are; so is an exception class in a dotted name
        assert!(trouble_score("status=failed after <*> retries") > 0.0);
        assert!(trouble_score("session timeout for client <*>") > 0.0);
        assert!(trouble_score("java.lang.NullPointerException") > 0.0);
        assert!(trouble_score("caught java.io.IOException: Broken pipe") > 0.0);
        assert!(trouble_score("ValueError: invalid literal") > 0.0);
    }

    #[test]
    fn trouble_words_are_found_case_insensitively() {
        assert_eq!(trouble_score("instruction cache parity error corrected"), 0.6);
        assert_eq!(trouble_score("Lustre mount FAILED : <*> : point <*>"), 0.6);
        assert_eq!(trouble_score("Connection refused: timeout"), 0.8);
        assert_eq!(trouble_score("generating core.<*>"), 0.0);
    }

    #[test]
    fn field_dumps_and_server_errors_are_told_apart() {
        let dump = |t: &str| text_evidence(t).field_dump;
        assert!(dump("instruction address: <*>"));
        assert!(dump("core configuration register: <*>"));
        // trouble words win over the shape
        assert!(!dump("exception syndrome register: <*>"));
        assert!(dump("general purpose registers:"));
        assert!(dump("<*> <*> <*> <*>"));
        assert!(dump("RIP: <*>"));
        assert!(dump(""), "a level and nothing else");
        assert!(!dump("data storage interrupt"));
        assert!(!dump("Lustre mount FAILED : <*> : point <*>"));
        assert!(!dump("Accepted password for <*> from <*> port <*> ssh2"));
        assert!(text_evidence("<*> - - [<*> <*>] \"GET <*> <*> 5xx <*>").server_error);
        assert!(!text_evidence("<*> - - [<*> <*>] \"GET <*> <*> 2xx <*>").server_error);
    }
}
