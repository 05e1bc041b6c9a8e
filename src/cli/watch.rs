//! `turbolog watch FILE…`: follow files like `tail -F` — rotation, truncation, files that
//! appear later — print each anomaly as it comes, keep a one-line status on a terminal, learn
//! into `--state`, and stop cleanly on Ctrl-C or SIGTERM (the window is sealed).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use turbolog::pipeline::join::Event as Record;
use turbolog::pipeline::join_streams::StreamJoiner;
use super::{CmdError, EngineArgs};

#[derive(Args)]
pub struct WatchArgs {
    /// Files to follow (they may not exist yet).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Read what the files already hold first (default: only what is written from now on).
    #[arg(long)]
    pub from_start: bool,
    /// With --state: seconds between window seals.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub window: f64,
    /// Milliseconds between looks at the files when nothing new came.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub interval: u64,
    /// For JSON lines: the key holding the message (repeatable).
    #[arg(long = "message-key", value_name = "KEY")]
    pub message_keys: Vec<String>,
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Longest line kept; the rest of a longer one is dropped (its start is scored).
const MAX_LINE: usize = 1 << 20;

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

struct Followed {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    pos: u64,
    partial: Vec<u8>,
    line_no: u64,
    joiner: StreamJoiner,
    seen_before: bool,
}

impl Followed {
    /// New complete records since the last look.
    fn poll(&mut self, from_start: bool, out: &mut Vec<Record>) -> io::Result<()> {
        let meta = std::fs::metadata(&self.path);
        match (&self.file, meta) {
            (None, Err(_)) => {
                self.seen_before = true; // appears later: read it from its start
                return Ok(());
            }
            (None, Ok(m)) => {
                self.file = Some(File::open(&self.path)?);
                self.ino = m.ino();
                self.pos = if self.seen_before || from_start { 0 } else { m.len() };
            }
            (Some(_), Ok(m)) if m.ino() != self.ino => {
                // rotated: finish the old file, then follow the new one from its start
                self.read(out)?;
                self.end_line(out);
                self.file = Some(File::open(&self.path)?);
                self.ino = m.ino();
                self.pos = 0;
            }
            (Some(_), Ok(m)) if m.len() < self.pos => {
                // truncated: start over
                self.pos = 0;
                self.partial.clear();
            }
            (Some(_), Err(_)) => {
                // removed: what is left of it, then wait for it to come back
                self.read(out)?;
                self.end_line(out);
                self.file = None;
                self.seen_before = true;
                return Ok(());
            }
            _ => {}
        }
        self.read(out)
    }

    fn read(&mut self, out: &mut Vec<Record>) -> io::Result<()> {
        let Some(f) = &mut self.file else { return Ok(()) };
        f.seek(SeekFrom::Start(self.pos))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.pos += n as u64;
            for &b in &buf[..n] {
                if b == b'\n' {
                    let line = String::from_utf8_lossy(&self.partial).trim_end_matches('\r').to_string();
                    self.partial.clear();
                    self.line_no += 1;
                    self.joiner.push(&line, self.line_no, out);
                } else if self.partial.len() < MAX_LINE {
                    self.partial.push(b);
                }
                // past MAX_LINE the rest of a line is dropped: one endless line cannot exhaust memory
            }
            if self.pos > 1 << 26 {
                break; // at most 64 MiB per look: the status line keeps moving
            }
        }
        Ok(())
    }

    /// A last line without its newline, when the file it was in is gone.
    fn end_line(&mut self, out: &mut Vec<Record>) {
        if !self.partial.is_empty() {
            let line = String::from_utf8_lossy(&self.partial).to_string();
            self.partial.clear();
            self.line_no += 1;
            self.joiner.push(&line, self.line_no, out);
        }
        self.joiner.flush(out);
    }
}

pub fn run(args: WatchArgs) -> Result<u8, CmdError> {
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let mut session = args.engine.pipeline()?;
    let mut followed: Vec<Followed> = args
        .files
        .iter()
        .map(|p| Followed { path: p.clone(), file: None, ino: 0, pos: 0, partial: Vec::new(), line_no: 0, joiner: StreamJoiner::new(turbolog::pipeline::join::DEFAULT_MAX_EVENT_BYTES), seen_before: false })
        .collect();
    let status = super::is_terminal(2);
    let colour = super::use_colour(1);
    let (red, dim, reset) = if colour { ("\x1b[31m", "\x1b[2m", "\x1b[0m") } else { ("", "", "") };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let (mut records, mut anomalies) = (0u64, 0u64);
    let started = Instant::now();
    let (mut last_seal, mut last_status) = (Instant::now(), Instant::now());
    let mut ready = Vec::new();
    let mut rate = (Instant::now(), 0u64, 0.0f64);
    while !STOP.load(Ordering::SeqCst) {
        let mut got = false;
        for f in &mut followed {
            ready.clear();
            if let Err(e) = f.poll(args.from_start, &mut ready) {
                eprintln!("turbolog: warning: {}: {e}; trying again", f.path.display());
            }
            if ready.is_empty() {
                // input paused: a record being joined is as complete as it gets
                f.joiner.flush(&mut ready);
            }
            got |= !ready.is_empty();
            for r in ready.drain(..) {
                let v = turbolog::codec::ndjson::with_message(&r.scored(), &args.message_keys, |m, level| session.engine.process_bytes_with(m.as_bytes(), level));
                session.after_record();
                records += 1;
                if v.anomaly {
                    anomalies += 1;
                    if status {
                        eprint!("\r\x1b[K");
                    }
                    let more = if r.lines > 1 { format!(" (+{} lines)", r.lines - 1) } else { String::new() };
                    writeln!(
                        out,
                        "{red}{:.2}{reset} {}:{} #{} {}{more}\n      {dim}{}{reset}",
                        v.score,
                        f.path.display(),
                        r.line_no,
                        v.template_id,
                        r.first,
                        v.reason
                    )?;
                    out.flush()?;
                }
            }
        }
        if args.engine.state.is_some() && args.window > 0.0 && last_seal.elapsed().as_secs_f64() >= args.window {
            session.seal_quietly();
            last_seal = Instant::now();
        }
        if status && last_status.elapsed() >= Duration::from_millis(500) {
            if rate.0.elapsed() >= Duration::from_secs(1) {
                rate = (Instant::now(), records, (records - rate.1) as f64 / rate.0.elapsed().as_secs_f64());
            }
            eprint!(
                "\r\x1b[K{dim}watching {} file(s): {records} records ({:.0}/s), {} templates, {anomalies} anomalies, {}s{reset}",
                followed.len(),
                rate.2,
                session.engine.template_count(),
                started.elapsed().as_secs()
            );
            last_status = Instant::now();
        }
        if !got {
            std::thread::sleep(Duration::from_millis(args.interval.max(10)));
        }
    }
    if status {
        eprint!("\r\x1b[K");
    }
    session.seal_at_end()?;
    eprintln!("turbolog: watch stopped: {records} records, {anomalies} anomalies{}", if args.engine.state.is_some() { ", window sealed" } else { "" });
    Ok(0)
}
