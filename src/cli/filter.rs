//! `turbolog filter`: a streaming transform. NDJSON objects or text lines in, the same records
//! with anomaly fields added out, one per line, in order, flushed whenever input pauses.
//!
//! The per-line work is the library's [`LineStream`](turbolog::pipeline::LineStream), which
//! `turbolog serve` drives too: both tag a record the same way, with the same options.

use std::io::{self, BufWriter, Write};
use std::time::{Duration, Instant};
use std::path::PathBuf;

use clap::Args;

use super::input::Lines;
use crate::args::stream::StreamArgs;
use crate::args::CmdError;
use turbolog::pipeline::LineStream;

#[derive(Args)]
pub struct FilterArgs {
    /// Input files; none or `-` reads standard input.
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub stream: StreamArgs,
}

pub fn run(args: FilterArgs) -> Result<u8, CmdError> {
    let mut stream = args.stream.start()?;
    let mut lines = Lines::new(&args.files).max_line(args.stream.max_record_bytes.max(1024));
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut buf = String::new();
    loop {
        if lines.would_block() {
            out.flush()?;
            wait_quietly(&mut lines, &mut stream, &mut buf, &mut out)?;
        }
        let Some(line) = lines.next_line()? else { break };
        buf.clear();
        stream.line(line, &mut buf);
        out.write_all(buf.as_bytes())?;
        if stream.window_due() {
            buf.clear();
            stream.end_window(&mut buf);
            out.write_all(buf.as_bytes())?;
            out.flush()?;
            stream.seal_window();
        }
    }
    buf.clear();
    stream.close_sessions(&mut buf);
    stream.end_window(&mut buf);
    out.write_all(buf.as_bytes())?;
    out.flush()?;
    stream.finish()?;
    Ok(0)
}

/// How often a quiet input's clock is looked at: sessions over by then close, a window due is
/// sealed.
const TICK: Duration = Duration::from_millis(500);

/// Input would block: until a line comes, a pending event is released after the quiet time,
/// sessions over on the clock close and windows are sealed on time, each going out at once. A
/// stream with nothing to wait for just blocks on its next line.
fn wait_quietly(lines: &mut Lines, stream: &mut LineStream, buf: &mut String, out: &mut impl Write) -> io::Result<()> {
    let started = Instant::now();
    loop {
        let pending = stream.quiet().filter(|_| stream.has_pending());
        if pending.is_none() && !stream.has_sessions() && !stream.window_timed() {
            return Ok(());
        }
        let step = pending.map_or(TICK, |q| q.saturating_sub(started.elapsed()).clamp(Duration::from_millis(10), TICK));
        if lines.wait_input(step) {
            return Ok(());
        }
        buf.clear();
        if pending.is_some_and(|q| started.elapsed() >= q) {
            stream.release(buf);
        }
        stream.tick(buf);
        if stream.window_due() {
            stream.end_window(buf);
            stream.seal_window();
        }
        if !buf.is_empty() {
            out.write_all(buf.as_bytes())?;
            out.flush()?;
        }
    }
}
