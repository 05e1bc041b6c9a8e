//! `DIR/history-<n>.tlh`: a bounded journal of anomalies, written at every window seal by every
//! host (CLI, filter, plugin): when, which template, how many, the highest score. Read by
//! `turbolog history` and `turbolog inspect`.
//!
//! Each file: magic `TLHIST01`, then entries of 24 bytes — seconds since 1970 (i64 LE), template
//! id (u32), count (u32), score (f32), CRC32 of the 20 bytes before it (u32). A torn or damaged
//! entry is skipped and said; files rotate at [`FILE_BYTES`], at most [`FILES`] are kept.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"TLHIST01";
const ENTRY: usize = 24;
/// A file holds this many bytes before the next one is started…
pub const FILE_BYTES: u64 = 1 << 20;
/// …and this many files are kept (about 175 000 entries in all).
pub const FILES: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    pub time: i64,
    pub template: u32,
    pub count: u32,
    pub score: f32,
}

fn files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("history-")?.strip_suffix(".tlh")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Appends entries (one write), rotating and pruning as needed.
pub fn append(dir: &Path, entries: &[Entry]) -> io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let existing = files(dir);
    let (mut n, mut path) = existing.last().cloned().unwrap_or((0, dir.join("history-0.tlh")));
    if fs::metadata(&path).is_ok_and(|m| m.len() >= FILE_BYTES) {
        n += 1;
        path = dir.join(format!("history-{n}.tlh"));
    }
    let mut bytes = Vec::with_capacity(8 + entries.len() * ENTRY);
    if !path.exists() {
        bytes.extend_from_slice(MAGIC);
    }
    for e in entries {
        let mut body = [0u8; 20];
        body[..8].copy_from_slice(&e.time.to_le_bytes());
        body[8..12].copy_from_slice(&e.template.to_le_bytes());
        body[12..16].copy_from_slice(&e.count.to_le_bytes());
        body[16..20].copy_from_slice(&e.score.to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    }
    OpenOptions::new().create(true).append(true).open(&path)?.write_all(&bytes)?;
    let all = files(dir);
    for (_, old) in all.iter().take(all.len().saturating_sub(FILES)) {
        let _ = fs::remove_file(old);
    }
    Ok(())
}

/// Every readable entry, oldest first, and what was damaged.
pub fn read(dir: &Path) -> (Vec<Entry>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (_, path) in files(dir) {
        let Ok(bytes) = fs::read(&path) else { continue };
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            problems.push(format!("{}: not a history file (bad magic); skipped", path.display()));
            continue;
        }
        let body = &bytes[8..];
        let (mut bad, whole) = (0, body.len() / ENTRY);
        for chunk in body.chunks_exact(ENTRY) {
            let (data, crc) = chunk.split_at(20);
            if crc32fast::hash(data).to_le_bytes() != crc {
                bad += 1;
                continue;
            }
            out.push(Entry {
                time: i64::from_le_bytes(data[..8].try_into().unwrap()),
                template: u32::from_le_bytes(data[8..12].try_into().unwrap()),
                count: u32::from_le_bytes(data[12..16].try_into().unwrap()),
                score: f32::from_le_bytes(data[16..20].try_into().unwrap()),
            });
        }
        if bad > 0 || body.len() % ENTRY != 0 {
            problems.push(format!("{}: {bad} of {whole} entries damaged, {} trailing bytes; the rest is used", path.display(), body.len() % ENTRY));
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_rotate_and_survive_damage() {
        let dir = tempfile::tempdir().unwrap();
        let e = |i: u32| Entry { time: 1_795_515_600 + i as i64, template: i % 7, count: i + 1, score: 0.75 };
        append(dir.path(), &(0..10).map(e).collect::<Vec<_>>()).unwrap();
        let (all, problems) = read(dir.path());
        assert_eq!(all, (0..10).map(e).collect::<Vec<_>>());
        assert!(problems.is_empty());
        // damage one entry: it is skipped and said, the others stay
        let p = dir.path().join("history-0.tlh");
        let mut bytes = fs::read(&p).unwrap();
        bytes[8 + 24 * 3 + 2] ^= 0xff;
        fs::write(&p, &bytes).unwrap();
        let (all, problems) = read(dir.path());
        assert_eq!(all.len(), 9);
        assert!(problems[0].contains("1 of 10 entries damaged"));
        // rotation keeps at most FILES files
        let many: Vec<Entry> = (0..(FILE_BYTES as usize / ENTRY + 10) as u32).map(e).collect();
        for _ in 0..(FILES + 2) {
            append(dir.path(), &many).unwrap();
        }
        assert!(files(dir.path()).len() <= FILES);
    }
}
