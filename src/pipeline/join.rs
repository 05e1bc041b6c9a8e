//! Multi-line events: continuation lines join the event they belong to, so that a Java stack
//! trace is one anomaly, not one per frame. Recognised: indented lines (`\tat …`, Python's
//! `  File …`, Go's `\t/src/x.go:12 +0x1d`, Node's and .NET's `   at …`, Ruby's `\tfrom …`),
//! Java's `Caused by: …`, `Suppressed: …` and `... 12 more`, an exception line right under the
//! line that logged it, Python's `Traceback (most recent call last):` and the exception line that
//! ends a traceback, Go's `goroutine 1 [running]:` and the function lines under it, PHP's
//! `Stack trace:` and `#0 …` frames. A line that starts with a timestamp always starts an event.
//!
//! An event is scored as its first line plus its root cause (the deepest `Caused by:`, the
//! exception a traceback ends with): the frames are values, not template text, so the same crash
//! from another thread is the same template and another root cause is a new one.

use std::borrow::Cow;

/// How long a joined event may grow by default; past it the event is cut (and said).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// One event: its first line, its lines joined with `\n` (bounded), where it started, how many
/// lines it spans.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub first: String,
    /// Every line, joined with `\n`, up to the byte bound, once there is more than one.
    joined: String,
    pub line_no: u64,
    pub lines: u64,
    /// Lines were left out of `text` (the bound).
    pub cut: bool,
    /// The root cause's line (a range of `text`), when the event has one.
    cause: Option<(usize, usize)>,
}

impl Event {
    /// Starts the event anew at `line`, its buffers reused.
    fn reset(&mut self, line: &str, line_no: u64) {
        self.first.clear();
        self.first.push_str(line);
        self.line_no = line_no;
        self.lines = 1;
        self.cut = false;
        self.cause = None;
    }

    /// Every line, joined with `\n` (up to the byte bound).
    pub fn text(&self) -> &str {
        if self.lines > 1 {
            &self.joined
        } else {
            &self.first
        }
    }

    /// The root cause's line: the deepest `Caused by:` (without the words), the exception a
    /// traceback ends with.
    pub fn cause(&self) -> Option<&str> {
        self.cause.map(|(a, b)| &self.joined[a..b])
    }

    /// What is scored: the first line, plus the root cause when there is one.
    pub fn scored(&self) -> Cow<'_, str> {
        match self.cause() {
            Some(c) if self.lines > 1 => Cow::Owned(format!("{} {c}", self.first)),
            _ => Cow::Borrowed(&self.first),
        }
    }

    fn append(&mut self, line: &str, max_bytes: usize) -> bool {
        if self.lines == 1 {
            self.joined.clear();
            self.joined.push_str(&self.first);
        }
        self.lines += 1;
        if self.cut || self.joined.len() + 1 + line.len() > max_bytes {
            self.cut = true;
            return false;
        }
        self.joined.push('\n');
        let start = self.joined.len();
        self.joined.push_str(line);
        if let Some(at) = cause_in(line) {
            self.cause = Some((start + at, self.joined.len()));
        }
        true
    }
}

/// Where the root cause starts in a continuation line, when the line names one.
fn cause_in(line: &str) -> Option<usize> {
    let t = line.trim_start();
    let indent = line.len() - t.len();
    if let Some(rest) = t.strip_prefix("Caused by: ") {
        return Some(indent + t.len() - rest.len());
    }
    // .NET's inner exception: ` ---> System.IO.IOException: disk`
    if let Some(rest) = t.strip_prefix("---> ") {
        return is_java_exception(rest).then_some(indent + 5);
    }
    (indent == 0 && (is_java_exception(t) || is_python_exception(t))).then_some(0)
}

/// A message of several lines (a trace that a host such as Fluent Bit's `multiline.parser` joined
/// into one record): what it is scored as, the first line plus the root cause, as an event is.
/// `None` for a message of one line (a final line end does not count).
pub fn scored_message(message: &[u8]) -> Option<String> {
    let body = message.strip_suffix(b"\n").unwrap_or(message);
    if !has_line_end(body) {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or("").trim_end_matches('\r');
    let cause = lines.filter_map(|l| cause_in(l.trim_end_matches('\r')).map(|i| l[i..].trim_end_matches('\r'))).next_back();
    Some(match cause {
        Some(c) => format!("{first} {c}"),
        None => first.to_string(),
    })
}

/// Whether `bytes` holds a `\n`: asked of every record, most of them one line of ~100 bytes,
/// where `memchr::memchr`'s runtime dispatch and set-up cost more than the search; SSE2 is part
/// of every x86_64, so its SSE2 searcher is called directly.
#[inline]
fn has_line_end(bytes: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let Some(one) = memchr::arch::x86_64::sse2::memchr::One::new(b'\n') {
        return one.find(bytes).is_some();
    }
    memchr::memchr(b'\n', bytes).is_some()
}

/// Joins the lines of one stream into events. Once warm it allocates nothing per line: the
/// pending event's buffers are reused.
pub struct Joiner {
    pending: Event,
    /// Whether `pending` holds an event.
    has: bool,
    /// The event is in a Python traceback / a Go goroutine dump.
    traceback: bool,
    goroutine: bool,
    max_bytes: usize,
    /// Events cut at the bound.
    pub cut_events: u64,
}

impl Default for Joiner {
    fn default() -> Self {
        Joiner::with_max_bytes(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl Joiner {
    pub fn with_max_bytes(max_bytes: usize) -> Joiner {
        let pending = Event { first: String::new(), joined: String::new(), line_no: 0, lines: 0, cut: false, cause: None };
        Joiner { pending, has: false, traceback: false, goroutine: false, max_bytes: max_bytes.max(1), cut_events: 0 }
    }

    /// Takes line `line_no`; `emit` gets the event it completes, if it starts a new one (then
    /// true). An event that reached the bound is complete: what continues it starts an event of
    /// its own.
    pub fn push_with(&mut self, line: &str, line_no: u64, emit: impl FnOnce(&Event)) -> bool {
        if self.has && !self.pending.cut && self.continues(line) {
            if !self.pending.append(line, self.max_bytes) {
                self.cut_events += 1;
                self.has = false;
                emit(&self.pending);
            }
            return false;
        }
        if self.has {
            emit(&self.pending);
        }
        self.traceback = line.starts_with("Traceback (most recent call last)");
        // a Go panic: a blank line, then the goroutine dump
        self.goroutine = line.starts_with("panic: ") || line.starts_with("fatal error: ");
        self.pending.reset(line, line_no);
        self.has = true;
        true
    }

    /// [`Self::push_with`], the completed event returned.
    pub fn push(&mut self, line: &str, line_no: u64) -> Option<Event> {
        let mut done = None;
        self.push_with(line, line_no, |e| done = Some(e.clone()));
        done
    }

    /// Whether an event is being joined.
    pub fn has_pending(&self) -> bool {
        self.has
    }

    /// The event still being joined (at the end of input, or when input pauses), to `emit`.
    pub fn flush_with(&mut self, emit: impl FnOnce(&Event)) {
        self.traceback = false;
        self.goroutine = false;
        if std::mem::take(&mut self.has) {
            emit(&self.pending);
        }
    }

    /// [`Self::flush_with`], the event returned.
    pub fn flush(&mut self) -> Option<Event> {
        let mut done = None;
        self.flush_with(|e| done = Some(e.clone()));
        done
    }

    fn continues(&mut self, line: &str) -> bool {
        let Some(&first) = line.as_bytes().first() else { return self.goroutine };
        if first == b' ' || first == b'\t' {
            // a blank line inside a Go dump separates goroutines; elsewhere it ends nothing either
            return !line.trim().is_empty() || self.goroutine;
        }
        // most lines start an event: their first byte rules out all but the exception check,
        // and only a line that could continue one pays for reading its timestamp
        let could = self.traceback
            || self.goroutine
            || match first {
                b'C' => line.starts_with("Caused by: "),
                b'S' => line.starts_with("Suppressed: ") || line.starts_with("Stack trace:"),
                b'.' => line.starts_with("... "),
                b'T' => line.starts_with("Traceback (most recent call last)"),
                b'D' => line.starts_with("During handling of the above exception"),
                b'g' => line.starts_with("goroutine "),
                b'#' => is_php_frame(line),
                _ => false,
            }
            || (first.is_ascii_alphabetic() && is_java_exception(line));
        if !could || crate::detect::time::of_line(line).is_some() {
            self.traceback = false;
            return false;
        }
        if is_java_exception(line) {
            // `java.lang.IllegalStateException: boom` right under the line that logged it
            return true;
        }
        if line.starts_with("Caused by: ") || line.starts_with("Suppressed: ") || (line.starts_with("... ") && line.ends_with(" more")) {
            return true;
        }
        if line.starts_with("Stack trace:") || is_php_frame(line) {
            return true;
        }
        if line.starts_with("Traceback (most recent call last)") || line.starts_with("During handling of the above exception") {
            self.traceback = true;
            return true;
        }
        if self.traceback {
            // `ValueError: bad input` ends the traceback it belongs to
            self.traceback = false;
            return line.split_once(':').is_some_and(|(name, _)| !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'));
        }
        if line.starts_with("goroutine ") && line.ends_with("]:") {
            self.goroutine = true;
            return true;
        }
        if self.goroutine {
            // `main.main()`, `created by main.start in goroutine 1`
            return line.ends_with(')') || line.starts_with("created by ") || line.starts_with("exit status");
        }
        false
    }
}

/// `ValueError: bad input`, `requests.exceptions.ConnectionError: …`: a name, then `:`.
fn is_python_exception(line: &str) -> bool {
    line.split_once(':').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
            && (name.ends_with("Error") || name.ends_with("Exception") || name.ends_with("Warning") || name.ends_with("Interrupt") || name.ends_with("Exit"))
    })
}

/// PHP's `#0 /var/www/app.php(12): run()` and `#1 {main}`.
fn is_php_frame(line: &str) -> bool {
    let b = line.as_bytes();
    b.first() == Some(&b'#') && b.get(1).is_some_and(u8::is_ascii_digit) && line.contains(' ')
}

/// `java.lang.IllegalStateException: boom`, `com.x.MyError`: a qualified class name ending in
/// Exception, Error or Throwable, at the start of the line.
fn is_java_exception(line: &str) -> bool {
    let end = line.bytes().position(|b| b == b':' || b == b' ').unwrap_or(line.len());
    let name = &line[..end];
    name.contains('.')
        && (name.ends_with("Exception") || name.ends_with("Error") || name.ends_with("Throwable"))
        && name.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_end_is_found_at_every_place_of_every_length() {
        for len in 0..80 {
            let mut bytes = vec![b'a'; len];
            assert!(!has_line_end(&bytes));
            for at in 0..len {
                bytes[at] = b'\n';
                assert!(has_line_end(&bytes), "len {len}, at {at}");
                bytes[at] = if at % 2 == 0 { b'\r' } else { 0x8a }; // neighbours of `\n`, not it
                assert!(!has_line_end(&bytes), "len {len}, at {at}");
                bytes[at] = b'a';
            }
        }
    }

    fn join(text: &str) -> Vec<(String, u64, u64)> {
        let mut j = Joiner::default();
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            out.extend(j.push(l, i as u64 + 1));
        }
        out.extend(j.flush());
        out.into_iter().map(|r| (r.first, r.line_no, r.lines)).collect()
    }

    #[test]
    fn a_joined_message_is_scored_as_its_first_line_and_root_cause() {
        let m = b"2026-11-24 ERROR [main] request failed\njava.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\nCaused by: java.io.IOException: disk\n\t... 3 more\n";
        assert_eq!(scored_message(m).as_deref(), Some("2026-11-24 ERROR [main] request failed java.io.IOException: disk"));
        assert_eq!(scored_message(b"one line\n"), None);
        assert_eq!(scored_message(b"ERROR x\n\tat a.B.c(B.java:1)").as_deref(), Some("ERROR x"));
        let p = b"ERROR:root:job failed\nTraceback (most recent call last):\n  File \"job.py\", line 3, in <module>\nValueError: bad input";
        assert_eq!(scored_message(p).as_deref(), Some("ERROR:root:job failed ValueError: bad input"));
    }

    #[test]
    fn java_python_and_go_traces_are_one_record_each() {
        let java = "2026-11-24 10:00:00,001 ERROR [main] c.e.Api - request failed\n\
java.lang.IllegalStateException: boom\n\
\tat com.example.Api.handle(Api.java:42)\n\
\tat com.example.Server.run(Server.java:7)\n\
Caused by: java.io.IOException: disk\n\
\t... 12 more\n\
2026-11-24 10:00:01,000 INFO [main] c.e.Api - next request";
        let j = join(java);
        assert_eq!(j.len(), 2, "{j:?}");
        assert_eq!((j[0].1, j[0].2), (1, 6));
        assert_eq!(j[1].0, "2026-11-24 10:00:01,000 INFO [main] c.e.Api - next request");

        let python = "ERROR:root:job failed\nTraceback (most recent call last):\n  File \"job.py\", line 3, in <module>\n    run()\nValueError: bad input\nINFO:root:next";
        assert_eq!(join(python), vec![("ERROR:root:job failed".to_string(), 1, 5), ("INFO:root:next".to_string(), 6, 1)]);

        let go = "panic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n\t/tmp/x.go:8 +0x1d\nexit status 2\nnext line";
        assert_eq!(join(go), vec![("panic: runtime error: index out of range [3] with length 3".to_string(), 1, 6), ("next line".to_string(), 7, 1)]);
    }
}
