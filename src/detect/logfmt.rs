//! logfmt records (`level=warn status=500 msg="GET /api"`): the fields a template needs beyond
//! the `msg=` that [`crate::detect::message`] takes as the message. An HTTP status joins the
//! message as ` status=NNN`, as it does for JSON records (`host::record_fields::with_status`), so
//! that its class (`status=5xx`) is a constant of the template: an outage does not hide among
//! successes, whatever the level says.

use std::ops::Range;

/// Keys whose value is an HTTP status (as for JSON records).
const STATUS_KEYS: [&str; 4] = ["status", "status_code", "http_status", "statusCode"];

/// Keys whose values are not a field's values to learn: the message (the template), the level
/// and the clock (and a status: its class is in the template, see [`STATUS_KEYS`]).
const NOT_VALUES: [&str; 9] = ["msg", "message", "level", "lvl", "severity", "time", "ts", "timestamp", "t"];

/// One `key=value` pair of a logfmt line: where its key and its value are (a quoted value
/// without its quotes).
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub key: Range<usize>,
    pub value: Range<usize>,
    pub quoted: bool,
}

/// The pairs of a logfmt record, into `out` (cleared first): true when `line` is one — a
/// `msg=` (or `message=`) and at least one more pair, nothing but pairs after an optional
/// leading timestamp.
pub fn pairs(line: &str, out: &mut Vec<Pair>) -> bool {
    out.clear();
    let b = line.as_bytes();
    let (mut i, mut has_msg) = (0, false);
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let key_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
            i += 1;
        }
        if i == key_start || i >= b.len() || b[i] != b'=' {
            // a timestamp before the pairs (`2021-…Z level=info …`) is allowed, nothing else
            if out.is_empty() && key_start == 0 {
                while i < b.len() && b[i] != b' ' {
                    i += 1;
                }
                continue;
            }
            return false;
        }
        let key = key_start..i;
        i += 1;
        let v_start = i;
        let quoted = i < b.len() && b[i] == b'"';
        let value = if quoted {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(b.len());
            i = (i + 1).min(b.len());
            v_start + 1..end
        } else {
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            v_start..i
        };
        has_msg |= matches!(&line[key.clone()], "msg" | "message");
        out.push(Pair { key, value, quoted });
    }
    has_msg && out.len() >= 2
}

/// Whether a pair's values are a field's values to learn (see [`NOT_VALUES`]).
pub fn holds_values(line: &str, pair: &Pair) -> bool {
    let key = &line[pair.key.clone()];
    !NOT_VALUES.contains(&key) && !STATUS_KEYS.contains(&key)
}

/// The HTTP status of a logfmt record (`pairs`: its pairs, as [`pairs`] read them), when it
/// has one.
pub fn status(line: &str, pairs: &[Pair]) -> Option<u16> {
    let mut status = None;
    for p in pairs {
        let value = &line.as_bytes()[p.value.clone()];
        if !p.quoted && STATUS_KEYS.contains(&&line[p.key.clone()]) && value.len() == 3 && value.iter().all(u8::is_ascii_digit) && (b'1'..=b'5').contains(&value[0]) {
            status = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        }
    }
    status
}

/// `message` with ` status=NNN` after it, into `out` (cleared first).
pub fn with_status(message: &str, code: u16, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    let _ = write!(out, "{message} status={code}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(line: &str) -> Option<u16> {
        let mut found = Vec::new();
        pairs(line, &mut found).then(|| status(line, &found)).flatten()
    }

    #[test]
    fn pairs_are_read_with_their_quotes_taken_off() {
        let line = r#"ts=2024-01-01T00:00:00Z level=info msg="GET /api \"x\"" path=/a%20b user="a b" empty= n=3"#;
        let mut out = Vec::new();
        assert!(pairs(line, &mut out));
        let read: Vec<(&str, &str, bool)> = out.iter().map(|p| (&line[p.key.clone()], &line[p.value.clone()], p.quoted)).collect();
        assert_eq!(read, [("ts", "2024-01-01T00:00:00Z", false), ("level", "info", false), ("msg", r#"GET /api \"x\""#, true), ("path", "/a%20b", false), ("user", "a b", true), ("empty", "", false), ("n", "3", false)]);
        let held: Vec<&str> = out.iter().filter(|p| holds_values(line, p)).map(|p| &line[p.key.clone()]).collect();
        assert_eq!(held, ["path", "user", "empty", "n"]);
        // an unterminated quote ends the line; a timestamp first is allowed; prose is not logfmt
        assert!(pairs(r#"2021-11-15T09:21:29Z msg="open level=warn"#, &mut out) == false, "one pair only");
        assert!(pairs(r#"2021-11-15T09:21:29Z msg="x" a=1"#, &mut out));
        assert!(!pairs("GET /api status=500 took 3ms", &mut out));
        assert!(!pairs("level=info status=200", &mut out), "no message");
    }

    #[test]
    fn the_status_of_a_logfmt_line_with_a_message() {
        assert_eq!(status_of("level=warn status=500 msg=\"GET /api/orders\" duration=12ms"), Some(500));
        assert_eq!(status_of("ts=2024-01-01T00:00:00Z level=info msg=\"served\" status_code=204"), Some(204));
        assert_eq!(status_of("2021-11-15T09:21:29.542Z level=info msg=\"x y\" http_status=404"), Some(404));
        // no message key, no status, not logfmt, not an HTTP status
        assert_eq!(status_of("level=warn status=500 path=/api"), None);
        assert_eq!(status_of("level=info msg=\"ok\""), None);
        assert_eq!(status_of("GET /api status=500 took 3ms"), None);
        assert_eq!(status_of("level=info msg=ok status=Pending"), None);
        assert_eq!(status_of("level=info msg=ok status=700"), None);
        let mut out = String::new();
        with_status("GET /api/orders", 503, &mut out);
        assert_eq!(out, "GET /api/orders status=503");
    }

    #[test]
    fn a_5xx_burst_under_a_warn_level_is_its_own_template() {
        let mut e = crate::detect::Engine::new(crate::detect::EngineConfig::default());
        let ok = e.learn_line("level=info status=200 msg=\"GET /api/orders\" duration=3ms");
        let v = e.process_line("level=warn status=500 msg=\"GET /api/orders\" duration=30ms");
        assert_ne!(v.template_id, ok);
        assert_eq!(e.template_text(v.template_id), "GET <*> status=5xx");
        assert!(v.anomaly, "{v:?}");
        assert!(v.reason.to_string().contains("HTTP 5xx"), "{}", v.reason);
        // the same class again is the learned template, digits apart
        assert_eq!(e.process_line("level=info status=201 msg=\"GET /api/orders\" duration=4ms").template_id, ok);
    }

    /// A status joins the message, so the template was mined from another text than the
    /// line's message: the word cache must not read the line by that template's tokens (it
    /// sliced the message past its end and panicked).
    #[test]
    fn logfmt_records_with_a_status_read_through_and_cached_do_not_panic() {
        let mut e = crate::detect::Engine::new(crate::detect::EngineConfig::default());
        let agents = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/50.0", "curl/7.47.0", "Googlebot/2.1 (+http://www.google.com/bot.html)"];
        let mut seed = 7u64;
        for i in 0..600 {
            let r = crate::detect::xorshift(&mut seed);
            let line = format!(
                "time=2016-12-13T00:{:02}:{:02}Z level=info msg=\"request served\" client=10.{}.{}.{} method=GET path=/products/{} status={} bytes={} agent=\"{}\"",
                i / 60 % 60,
                i % 60,
                r % 4,
                r >> 8 & 255,
                r >> 16 & 255,
                r >> 24 & 4095,
                [200, 200, 304, 404][(r >> 40) as usize % 4],
                r >> 44 & 32767,
                agents[(r >> 60) as usize % 3]
            );
            // learned as a baseline, then read frozen (as `scan --state --frozen` does), then live
            if i == 300 {
                e.set_learning(false);
            }
            if i == 450 {
                e.set_learning(true);
            }
            let id = if i < 300 { e.learn_line(&line) } else { e.process_line(&line).template_id };
            assert!(e.template_text(id).starts_with("request served status="), "{line}: {}", e.template_text(id));
        }
    }
}
