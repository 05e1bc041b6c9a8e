//! Reading lines from files or standard input without buffering the whole input.
//!
//! Lines are read as bytes: invalid UTF-8 is replaced (and counted) rather than fatal, CRLF and a
//! missing final newline are fine. The reader reports when its buffer is empty, so writers can
//! flush exactly when the next read might block (interactive pipes stay line by line, files
//! stay fast).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

pub struct Lines {
    sources: Vec<Option<PathBuf>>,
    current: Option<(String, BufReader<Box<dyn Read>>)>,
    buf: Vec<u8>,
    text: String,
    pub invalid_utf8: u64,
    /// Longest line kept; the rest of a longer one is skipped (counted in `cut_lines`).
    max_line: usize,
    pub cut_lines: u64,
}

/// Lines longer than this are cut unless a command says otherwise.
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

impl Lines {
    /// `files` empty or `-` means standard input.
    pub fn new(files: &[PathBuf]) -> Self {
        let sources = if files.is_empty() {
            vec![None]
        } else {
            files.iter().map(|f| if f.as_os_str() == "-" { None } else { Some(f.clone()) }).collect()
        };
        Lines { sources: sources.into_iter().rev().collect(), current: None, buf: Vec::new(), text: String::new(), invalid_utf8: 0, max_line: DEFAULT_MAX_LINE, cut_lines: 0 }
    }

    /// Lines longer than `bytes` are cut there (memory stays bounded whatever arrives).
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1);
        self
    }

    /// Waits up to `timeout` for input; false when standard input stayed quiet that long (a
    /// file always has its next bytes).
    pub fn wait_input(&mut self, timeout: std::time::Duration) -> bool {
        match &self.current {
            Some((name, r)) if r.buffer().is_empty() && name == "standard input" => {
                let mut fd = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
                let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
                // SAFETY: one valid pollfd
                unsafe { libc::poll(&mut fd, 1, ms) != 0 }
            }
            _ => true,
        }
    }

    /// Whether the next read may block (nothing buffered). Looks at the buffer only: asking the
    /// reader (`fill_buf`) would itself block on a quiet pipe, before the writer could flush.
    pub fn would_block(&mut self) -> bool {
        match &self.current {
            Some((_, r)) => r.buffer().is_empty(),
            None => true,
        }
    }

    /// Whether input has paused: nothing buffered and, on standard input, nothing to read right
    /// now (a file is never paused: its next bytes are always there).
    pub fn paused(&mut self) -> bool {
        match &self.current {
            Some((name, r)) if r.buffer().is_empty() && name == "standard input" => {
                let mut fd = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd, zero timeout
                unsafe { libc::poll(&mut fd, 1, 0) == 0 }
            }
            _ => false,
        }
    }

    /// The next line (without its line end), or `None` at the end of all inputs.
    pub fn next_line(&mut self) -> io::Result<Option<&str>> {
        loop {
            if self.current.is_none() {
                match self.sources.pop() {
                    None => return Ok(None),
                    Some(None) => {
                        let stdin: Box<dyn Read> = Box::new(io::stdin());
                        self.current = Some(("standard input".into(), BufReader::with_capacity(1 << 16, stdin)));
                    }
                    Some(Some(path)) => {
                        let f = File::open(&path).map_err(|e| {
                            io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
                        })?;
                        let reader: Box<dyn Read> = Box::new(f);
                        self.current = Some((path.display().to_string(), BufReader::with_capacity(1 << 16, reader)));
                    }
                }
            }
            let (name, reader) = self.current.as_mut().unwrap();
            self.buf.clear();
            let (n, cut) = read_line(reader, &mut self.buf, self.max_line).map_err(|e| io::Error::new(e.kind(), format!("cannot read {name}: {e}")))?;
            if cut {
                self.cut_lines += 1;
                if self.cut_lines == 1 {
                    eprintln!("turbolog: warning: a line of {name} is longer than {} bytes: it was cut there (further cut lines are counted)", self.max_line);
                }
            }
            if n == 0 {
                self.current = None;
                continue;
            }
            while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                self.buf.pop();
            }
            self.text.clear();
            match std::str::from_utf8(&self.buf) {
                Ok(s) => self.text.push_str(s),
                Err(_) => {
                    self.invalid_utf8 += 1;
                    self.text.push_str(&String::from_utf8_lossy(&self.buf));
                }
            }
            return Ok(Some(&self.text));
        }
    }
}

/// Reads one line into `buf` (cleared by the caller), keeping at most `max` bytes of it and
/// skipping the rest: (bytes read, whether the line was cut).
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<(usize, bool)> {
    let (mut read, mut cut) = (0, false);
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((read, cut));
        }
        let (end, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        if end > room {
            cut = true;
        }
        buf.extend_from_slice(&available[..end.min(room)]);
        reader.consume(end);
        read += end;
        if done {
            return Ok((read, cut));
        }
    }
}
