//! logfmt records (`level=warn status=500 msg="GET /api"`): the fields a template needs beyond
//! the `msg=` that [`crate::detect::message`] takes as the message. An HTTP status joins the
//! message as ` status=NNN`, as it does for JSON records (`host::record_fields::with_status`), so
//! that its class (`status=5xx`) is a constant of the template: an outage does not hide among
//! successes, whatever the level says.

/// Keys whose value is an HTTP status (as for JSON records).
const STATUS_KEYS: [&str; 4] = ["status", "status_code", "http_status", "statusCode"];

/// The HTTP status of a logfmt line that has a `msg=` (or `message=`), when it has one.
pub fn status(line: &str) -> Option<u16> {
    let b = line.as_bytes();
    let (mut i, mut status, mut has_msg, mut pairs) = (0, None, false, 0);
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
            if pairs == 0 && key_start == 0 {
                while i < b.len() && b[i] != b' ' {
                    i += 1;
                }
                continue;
            }
            return None;
        }
        let key = &line[key_start..i];
        i += 1;
        let v_start = i;
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
        } else {
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
        }
        pairs += 1;
        let value = &b[v_start..i.min(b.len())];
        has_msg |= key == "msg" || key == "message";
        if STATUS_KEYS.contains(&key) && value.len() == 3 && value.iter().all(u8::is_ascii_digit) && (b'1'..=b'5').contains(&value[0]) {
            status = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        }
    }
    if has_msg && pairs >= 2 {
        status
    } else {
        None
    }
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

    #[test]
    fn the_status_of_a_logfmt_line_with_a_message() {
        assert_eq!(status("level=warn status=500 msg=\"GET /api/orders\" duration=12ms"), Some(500));
        assert_eq!(status("ts=2024-01-01T00:00:00Z level=info msg=\"served\" status_code=204"), Some(204));
        assert_eq!(status("2021-11-15T09:21:29.542Z level=info msg=\"x y\" http_status=404"), Some(404));
        // no message key, no status, not logfmt, not an HTTP status
        assert_eq!(status("level=warn status=500 path=/api"), None);
        assert_eq!(status("level=info msg=\"ok\""), None);
        assert_eq!(status("GET /api status=500 took 3ms"), None);
        assert_eq!(status("level=info msg=ok status=Pending"), None);
        assert_eq!(status("level=info msg=ok status=700"), None);
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
}
