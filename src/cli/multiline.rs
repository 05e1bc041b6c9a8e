//! Multi-line records: continuation lines join the record they belong to, so that a Java stack
//! trace is one anomaly, not one per frame. Recognised: indented lines (`\tat …`, Python's
//! `  File …`, Go's `\t/src/x.go:12 +0x1d`), Java's `Caused by: …` and `... 12 more`, Python's
//! `Traceback (most recent call last):` and the exception line that ends a traceback, Go's
//! `goroutine 1 [running]:` and the function lines under it. A line that starts with a
//! timestamp always starts a record.

/// One record: its first line (what is scored), where it started, how many lines it spans.
#[derive(Debug, PartialEq)]
pub struct Record {
    pub first: String,
    pub line_no: u64,
    pub lines: u64,
}

#[derive(Default)]
pub struct Joiner {
    pending: Option<Record>,
    /// The record is in a Python traceback / a Go goroutine dump.
    traceback: bool,
    goroutine: bool,
}

impl Joiner {
    /// Takes line `line_no`; returns the record it completes, if it starts a new one.
    pub fn push(&mut self, line: &str, line_no: u64) -> Option<Record> {
        if self.pending.is_some() && self.continues(line) {
            let r = self.pending.as_mut().expect("checked");
            r.lines += 1;
            return None;
        }
        self.traceback = line.starts_with("Traceback (most recent call last)");
        // a Go panic: a blank line, then the goroutine dump
        self.goroutine = line.starts_with("panic: ") || line.starts_with("fatal error: ");
        self.pending.replace(Record { first: line.to_string(), line_no, lines: 1 })
    }

    /// The record still being joined (at the end of input, or when input pauses).
    pub fn flush(&mut self) -> Option<Record> {
        self.traceback = false;
        self.goroutine = false;
        self.pending.take()
    }

    fn continues(&mut self, line: &str) -> bool {
        if line.trim().is_empty() {
            // a blank line inside a Go dump separates goroutines; elsewhere it ends nothing either
            return self.goroutine;
        }
        let first = line.as_bytes()[0];
        if first == b' ' || first == b'\t' {
            return true;
        }
        // most lines start a record: the checks below are cheap for them, and only a line that
        // could continue one pays for reading its timestamp
        let could = self.traceback
            || self.goroutine
            || line.starts_with("Caused by: ")
            || line.starts_with("Suppressed: ")
            || line.starts_with("... ")
            || line.starts_with("Traceback (most recent call last)")
            || line.starts_with("During handling of the above exception")
            || line.starts_with("goroutine ")
            || is_java_exception(line);
        if !could || turbolog::detect::time::of_line(line).is_some() {
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

/// `java.lang.IllegalStateException: boom`, `com.x.MyError`: a qualified class name ending in
/// Exception, Error or Throwable, at the start of the line.
fn is_java_exception(line: &str) -> bool {
    let name = line.split([':', ' ']).next().unwrap_or("");
    name.contains('.')
        && (name.ends_with("Exception") || name.ends_with("Error") || name.ends_with("Throwable"))
        && name.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$'))
}

#[cfg(test)]
mod tests {
    use super::*;

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
