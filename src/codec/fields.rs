//! Fields, both ways. Read: what carries meaning beside a record's message (its level, its HTTP
//! status), one list for every format, so a record is read the same way wherever it arrives.
//! Written: which verdict fields a record gets ([`FieldPolicy`]) and under which names.

use crate::detect::level::Level;

/// Keys whose value is a record's level, in order of preference (`PRIORITY`: journald;
/// `log.level`: ECS, flat or nested in JSON records).
pub const LEVEL_KEYS: &[&str] = &["level", "severity", "lvl", "loglevel", "log.level", "levelname", "PRIORITY"];
/// Keys whose value is an HTTP status.
/// (`http.response.status_code`: ECS, read nested in JSON records.)
pub const STATUS_KEYS: &[&str] = &["status", "status_code", "http_status", "statusCode", "http.response.status_code"];

/// A level written as a word (`"error"`, `"WARN"`) or a number in a string (`"3"`).
pub fn level_of_text(s: &[u8]) -> Option<Level> {
    let s = std::str::from_utf8(s).ok()?;
    match s.parse::<u64>() {
        Ok(n) => level_of_number(n),
        Err(_) => Level::parse(s, true),
    }
}

/// syslog / journald / GELF severities (0–7), pino / bunyan levels (10–60) and Monolog's
/// (PHP, Laravel: 100 debug, 200 info, 250 notice, 300 warning, 400 error, 500–600 critical).
pub fn level_of_number(n: u64) -> Option<Level> {
    Some(match n {
        0..=2 => Level::Critical,
        3 => Level::Error,
        4 => Level::Warn,
        5 => Level::Notice,
        6 => Level::Info,
        7 => Level::Debug,
        10..=19 => Level::Trace,
        20..=29 => Level::Debug,
        30..=39 => Level::Info,
        40..=49 => Level::Warn,
        50..=59 => Level::Error,
        60..=69 => Level::Critical,
        100..=199 => Level::Debug,
        200..=249 => Level::Info,
        250..=299 => Level::Notice,
        300..=399 => Level::Warn,
        400..=499 => Level::Error,
        500..=600 => Level::Critical,
        _ => return None,
    })
}

/// An HTTP status, when `n` is one.
pub fn status(n: u64) -> Option<u16> {
    (100..=599).contains(&n).then_some(n as u16)
}

/// Appends ` status=NNN` to a copy of the message: the template then shows the class.
pub fn with_status(message: &[u8], code: u16, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(message);
    out.extend_from_slice(b" status=");
    out.extend_from_slice(code.to_string().as_bytes());
}

/// Which of the five fields a record gets (the `fields` property, `--fields`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FieldPolicy {
    /// Every field on every record (the reason is nil/null when normal).
    All,
    /// `anomaly`, `anomaly_score`, `template_id` on every record; the template text and the
    /// reason only on anomalies: normal records grow by a few bytes, not by their template.
    #[default]
    Lean,
    /// Only `anomaly` on normal records; everything on anomalies.
    Minimal,
}

impl FieldPolicy {
    pub fn parse(v: &str) -> Result<FieldPolicy, String> {
        match v.to_ascii_lowercase().as_str() {
            "all" => Ok(FieldPolicy::All),
            "lean" => Ok(FieldPolicy::Lean),
            "minimal" => Ok(FieldPolicy::Minimal),
            _ => Err(format!("`{v}` is not one of lean, minimal, all")),
        }
    }

    /// How many of the five fields, in their order (anomaly, score, template_id, template,
    /// reason), a record with this verdict gets.
    pub fn fields_for(self, anomaly: bool) -> usize {
        match (self, anomaly) {
            (_, true) | (FieldPolicy::All, false) => 5,
            (FieldPolicy::Lean, false) => 3,
            (FieldPolicy::Minimal, false) => 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Tag,
    OnlyAnomalies,
}

/// The names of the fields added to a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldNames {
    pub anomaly: String,
    pub score: String,
    pub template_id: String,
    pub template: String,
    pub reason: String,
}

impl FieldNames {
    pub fn all(&self) -> [&str; 5] {
        [&self.anomaly, &self.score, &self.template_id, &self.template, &self.reason]
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_as_words_and_numbers() {
        assert_eq!(level_of_text(b"error"), Some(Level::Error));
        assert_eq!(level_of_text(b"3"), Some(Level::Error));
        assert_eq!(level_of_text(b"6"), Some(Level::Info));
        assert_eq!(level_of_number(50), Some(Level::Error));
        assert_eq!(level_of_number(60), Some(Level::Critical));
        assert_eq!(level_of_number(99), None);
        // Monolog's JSON formatter: `"level":200,"level_name":"INFO"`
        assert_eq!(level_of_number(200), Some(Level::Info));
        assert_eq!(level_of_number(250), Some(Level::Notice));
        assert_eq!(level_of_number(300), Some(Level::Warn));
        assert_eq!(level_of_number(400), Some(Level::Error));
        assert_eq!(level_of_number(550), Some(Level::Critical));
        assert_eq!(level_of_number(601), None);
        assert_eq!(status(503), Some(503));
        assert_eq!(status(42), None);
    }
}
