//! `turbolog filter`: a streaming transform. NDJSON objects or text lines in, the same records
//! with anomaly fields added out, one per line, in order, flushed whenever input pauses.
//!
//! The per-line work is the library's [`LineStream`](turbolog::pipeline::LineStream), which
//! `turbolog serve` drives too: both tag a record the same way, with the same options.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;

use super::input::Lines;
use crate::args::stream::StreamArgs;
use crate::args::CmdError;

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
            // a pending event waits for its next line at most the quiet time
            if let Some(quiet) = stream.quiet().filter(|_| stream.has_pending()) {
                if !lines.wait_input(quiet) {
                    buf.clear();
                    stream.release(&mut buf);
                    out.write_all(buf.as_bytes())?;
                    out.flush()?;
                }
            }
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
