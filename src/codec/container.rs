//! Container runtime formats: Docker's json-file lines and CRI lines (containerd, CRI-O). Both
//! runtimes split a long line into partials; a reader puts them back together.

use serde_json::{Map, Value};

/// A CRI line: `2024-01-01T00:00:00.000000000Z stdout P text` (`P` a partial, `F` the end).
#[derive(Debug, PartialEq, Eq)]
pub struct Cri<'a> {
    pub time: &'a str,
    pub stream: &'a str,
    pub partial: bool,
    pub text: &'a str,
}

/// The CRI prefix of `line`, when it has one.
pub fn cri(line: &str) -> Option<Cri<'_>> {
    // most lines are told apart by two bytes, before anything is searched
    let b = line.as_bytes();
    if b.len() < 29 || b[4] != b'-' || b[10] != b'T' || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (time, rest) = line.split_once(' ')?;
    if time.len() < 20 {
        return None;
    }
    let (stream, rest) = rest.split_once(' ')?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let (tag, text) = rest.split_once(' ').unwrap_or((rest, ""));
    // the tag may carry more flags after `:` (`F:xyz`); the first says partial or full
    let partial = match tag.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => return None,
    };
    Some(Cri { time, stream, partial, text })
}

/// A Docker json-file record `{"log":"text\n","stream":"stdout","time":"…"}`: its `log` and its
/// stream. A `log` without its final `\n` is a partial: the next record of the stream goes on.
pub fn docker(obj: &Map<String, Value>) -> Option<(&str, &str)> {
    let log = super::ndjson::get(obj, "log")?.as_str()?;
    let stream = super::ndjson::get(obj, "stream")?.as_str()?;
    Some((log, stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_and_lookalikes() {
        let c = cri("2024-05-01T10:00:00.123456789Z stderr P Failed to connect to database at 10.0.0.5: conn").unwrap();
        assert_eq!((c.time, c.stream, c.partial, c.text), ("2024-05-01T10:00:00.123456789Z", "stderr", true, "Failed to connect to database at 10.0.0.5: conn"));
        assert!(!cri("2024-05-01T10:00:00.123456789Z stdout F ").unwrap().partial);
        assert_eq!(cri("2024-05-01T10:00:00.1Z stdout F").unwrap().text, "");
        assert!(cri("2024-05-01T10:00:00.123Z stdin F x").is_none());
        assert!(cri("2024-05-01 10:00:00.123 stdout F x").is_none());
        assert!(cri("2024-05-01T10:00:00.123456789Z stdout X x").is_none());
    }
}
