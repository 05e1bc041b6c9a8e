//! Reading lines from files or standard input without buffering the whole input.
//!
//! Lines are read as bytes: invalid UTF-8 is replaced (and counted) rather than fatal, CRLF and a
//! missing final newline are fine. The reader reports when its buffer is empty, so writers can
//! flush exactly when the next read might block (interactive pipes stay line by line, files
//! stay fast). Gzip is read through; inputs that are not text are refused (`sniff`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use super::sniff;

pub struct Lines {
    sources: Vec<Option<PathBuf>>,
    current: Option<(String, BufReader<Box<dyn Read>>)>,
    buf: Vec<u8>,
    text: String,
    pub invalid_utf8: u64,
}

impl Lines {
    /// `files` empty or `-` means standard input.
    pub fn new(files: &[PathBuf]) -> Self {
        let sources = if files.is_empty() {
            vec![None]
        } else {
            files.iter().map(|f| if f.as_os_str() == "-" { None } else { Some(f.clone()) }).collect()
        };
        Lines { sources: sources.into_iter().rev().collect(), current: None, buf: Vec::new(), text: String::new(), invalid_utf8: 0 }
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
                        let name = "standard input".to_string();
                        let reader = sniff::open_text(&name, stdin)?;
                        self.current = Some((name, reader));
                    }
                    Some(Some(path)) => {
                        let f = File::open(&path).map_err(|e| {
                            io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
                        })?;
                        let name = path.display().to_string();
                        let reader = sniff::open_text(&name, Box::new(f))?;
                        self.current = Some((name, reader));
                    }
                }
            }
            let (name, reader) = self.current.as_mut().unwrap();
            self.buf.clear();
            let n = reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot read {name}: {e}")))?;
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
