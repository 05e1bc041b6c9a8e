//! `turbolog inspect --state DIR`: what a state directory holds, every checksum verified.
//! Exit 0 = healthy, 1 = problems found (listed), 2 = not readable as a state directory.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::CmdError;
use turbolog::store::templates_file;
use turbolog::store::{chunk, wal};

#[derive(Args)]
pub struct InspectArgs {
    /// The state directory.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Templates listed (most frequent first).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
}

fn header_dim(path: &Path, at: usize) -> Option<u32> {
    let mut buf = [0u8; 12];
    let mut f = std::fs::File::open(path).ok()?;
    std::io::Read::read_exact(&mut f, &mut buf).ok()?;
    Some(u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()))
}

pub fn run(args: InspectArgs) -> Result<u8, CmdError> {
    let dir = &args.state;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .collect();
    names.sort();
    let mut out = std::io::stdout().lock();
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let w = |out: &mut std::io::StdoutLock<'_>, s: String| writeln!(out, "{s}").map_err(|e| e.to_string());

    w(&mut out, format!("state directory {}", dir.display()))?;
    let snap = match templates_file::load(dir) {
        Ok(Some(s)) => {
            w(&mut out, format!(
                "templates.tls: ok (checksum verified): {} templates, {} records seen, embedder {} ({} dims), threshold {:.2}",
                s.templates.len(), s.records, s.embedder, s.dim, s.threshold
            ))?;
            Some(s)
        }
        Ok(None) => {
            w(&mut out, "templates.tls: none yet".into())?;
            None
        }
        Err(e) => {
            problems.push(e.to_string());
            w(&mut out, format!("templates.tls: CORRUPT: {e}"))?;
            None
        }
    };
    match turbolog::store::values_file::check(dir) {
        Ok(Some((n, fields))) => w(&mut out, format!("values.tls: ok (checksum verified): {n} template positions and {fields} record fields with a value baseline"))?,
        Ok(None) => {}
        Err(e) => {
            problems.push(format!("values.tls: {e}"));
            w(&mut out, format!("values.tls: CORRUPT: {e}"))?;
        }
    }
    let dim = snap.as_ref().map(|s| s.dim);

    w(&mut out, "\nWAL shards and sealed WAL files:".into())?;
    let mut any = false;
    for n in names.iter().filter(|n| n.starts_with("wal-") && n.ends_with(".bin")) {
        any = true;
        let path = dir.join(n);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let file_dim = dim.or_else(|| header_dim(&path, 6)).unwrap_or(0);
        match wal::replay(&path, file_dim) {
            Ok(r) => {
                ids.extend(r.records.iter().map(|r| r.id));
                let kind = if n.contains("-sealed-") { "sealed, awaiting a chunk" } else { "active" };
                let mut line = format!("  {n}: {kind}, {} records, {size} bytes", r.records.len());
                if let Some(why) = r.stopped {
                    line.push_str(&format!(", {why}: {} bytes after the last good record", r.skipped_bytes));
                    if why.contains("corrupt") {
                        problems.push(format!("{n}: {why}"));
                    }
                }
                w(&mut out, line)?;
            }
            Err(e) => {
                problems.push(e.to_string());
                w(&mut out, format!("  {n}: UNREADABLE: {e}"))?;
            }
        }
    }
    if !any {
        w(&mut out, "  none".into())?;
    }

    w(&mut out, "\nchunks:".into())?;
    any = false;
    for n in names.iter().filter(|n| n.starts_with("chunk-") && n.ends_with(".tvim")) {
        any = true;
        let path = dir.join(n);
        let file_dim = dim.or_else(|| header_dim(&path, 8)).unwrap_or(0);
        match chunk::Chunk::open(&path, file_dim).and_then(|c| c.verify().map(|_| c)) {
            Ok(c) => {
                ids.extend((0..c.len()).map(|i| c.id(i)));
                w(&mut out, format!(
                    "  {n}: ok (CRC verified), {} vectors, {} bytes, made from {} sealed files",
                    c.len(), c.bytes(), c.sources().len()
                ))?;
            }
            Err(e) => {
                problems.push(e.to_string());
                w(&mut out, format!("  {n}: CORRUPT: {e}"))?;
            }
        }
    }
    if !any {
        w(&mut out, "  none".into())?;
    }
    for n in names.iter().filter(|n| n.ends_with(".corrupt")) {
        w(&mut out, format!("  {n}: moved aside earlier as corrupt (safe to delete once inspected)"))?;
    }

    if let Some(s) = &snap {
        let missing = s.templates.iter().filter(|t| !ids.contains(&(t.id as u64))).count();
        w(&mut out, format!(
            "\n{} distinct template vectors stored; {} templates have no stored vector (they are embedded again at start)",
            ids.len(), missing
        ))?;
        let mut top: Vec<_> = s.templates.iter().collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
        w(&mut out, format!("\ntemplates (top {} by count): id, count, normal?, first..last record, text", args.top.min(top.len())))?;
        for t in top.iter().take(args.top) {
            w(&mut out, format!(
                "  #{:<5} {:>9}  {:<6} {}..{}  {}",
                t.id, t.count, if t.established { "normal" } else { "new" }, t.first_seen, t.last_seen, t.text
            ))?;
        }
    }
    // the newest anomalous templates, from the history every host writes
    let (entries, history_problems) = turbolog::store::history::read(dir);
    problems.extend(history_problems);
    if !entries.is_empty() {
        let mut newest: Vec<&turbolog::store::history::Entry> = Vec::new();
        for e in entries.iter().rev() {
            if !newest.iter().any(|n| n.template == e.template) {
                newest.push(e);
            }
            if newest.len() == args.top {
                break;
            }
        }
        w(&mut out, format!("
newest anomalous templates (of {} history entries; `turbolog history` shows them all):", entries.len()))?;
        for e in newest {
            let text = snap.as_ref().and_then(|s| s.templates.get(e.template as usize)).map_or("(unknown template)", |t| t.text.as_str());
            w(&mut out, format!("  {}  #{:<5} ×{:<6} {}", super::report::clock(e.time), e.template, e.count, text))?;
        }
    }
    if problems.is_empty() {
        w(&mut out, "\nhealthy".into())?;
        Ok(0)
    } else {
        w(&mut out, format!("\n{} problem(s):", problems.len()))?;
        for p in &problems {
            w(&mut out, format!("  - {p}"))?;
        }
        Ok(1)
    }
}
