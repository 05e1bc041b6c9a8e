//! The write-ahead log: one append-only file per worker thread.
//!
//! Format `TLWAL1` (the original turbolog's, read for compatibility): magic `TLWAL1`, dim (u32
//! LE), then records of id (u64 LE) and `dim` f32 LE values.
//!
//! Format `TLWAL2` (written by default): magic `TLWAL2`, dim (u32 LE), then records of
//! id (u64 LE), text length (u32 LE), template text (UTF-8), `dim` f32 LE values, and a CRC32
//! (u32 LE) of everything before it in the record. The text lets a crash that happens between
//! two saves of `templates.tls` still recover the template, not just its vector; the CRC finds a
//! record corrupted in the middle of a file, not just a torn tail.
//!
//! Every append is written with one `write` call and no userspace buffering, so a process crash
//! never loses an appended record; an OS crash may lose the last seconds unless the fsync policy
//! says otherwise.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const MAGIC_V1: &[u8; 6] = b"TLWAL1";
pub const MAGIC_V2: &[u8; 6] = b"TLWAL2";
pub const HEADER_LEN: usize = 10;
/// Longest template text a record carries; longer texts are cut at a character boundary.
pub const MAX_TEXT: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One replayed record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: u64,
    /// Empty for TLWAL1 records.
    pub text: String,
    pub vector: Vec<f32>,
}

/// What replaying a file found.
#[derive(Debug, Default, PartialEq)]
pub struct Replay {
    pub records: Vec<Record>,
    /// Bytes after the last good record that were not replayed (torn tail or corruption).
    pub skipped_bytes: u64,
    /// Why replay stopped early, if it did: torn tail or a bad record.
    pub stopped: Option<String>,
}

#[derive(Debug)]
pub enum WalError {
    Io(PathBuf, io::Error),
    NotAWal(PathBuf),
    DimMismatch { path: PathBuf, file: u32, engine: u32 },
}

impl std::fmt::Display for WalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            WalError::NotAWal(p) => write!(
                f,
                "{} is not a turbolog WAL or its header is damaged; move it out of the state directory",
                p.display()
            ),
            WalError::DimMismatch { path, file, engine } => write!(
                f,
                "{} holds {file}-dimensional vectors but the engine uses {engine} dimensions; use a state directory made with the same embedder",
                path.display()
            ),
        }
    }
}

impl std::error::Error for WalError {}

fn read_header(path: &Path, bytes: &[u8], dim: u32) -> Result<Version, WalError> {
    if bytes.len() < HEADER_LEN {
        return Err(WalError::NotAWal(path.to_path_buf()));
    }
    let version = match &bytes[..6] {
        m if m == MAGIC_V1 => Version::V1,
        m if m == MAGIC_V2 => Version::V2,
        _ => return Err(WalError::NotAWal(path.to_path_buf())),
    };
    let file_dim = u32::from_le_bytes(bytes[6..10].try_into().unwrap());
    if file_dim != dim {
        return Err(WalError::DimMismatch { path: path.to_path_buf(), file: file_dim, engine: dim });
    }
    Ok(version)
}

/// Replays every complete, valid record of a WAL file. An empty file (a header never written)
/// replays as nothing.
pub fn replay(path: &Path, dim: u32) -> Result<Replay, WalError> {
    let bytes = std::fs::read(path).map_err(|e| WalError::Io(path.to_path_buf(), e))?;
    replay_file_bytes(path, &bytes, dim)
}

/// [`replay`] of bytes already read; `path` only names the file in errors.
pub fn replay_file_bytes(path: &Path, bytes: &[u8], dim: u32) -> Result<Replay, WalError> {
    if bytes.is_empty() {
        return Ok(Replay::default());
    }
    let version = match read_header(path, bytes, dim) {
        Err(WalError::DimMismatch { path, file, engine }) => {
            // Another embedder's WAL holds records whose checksums hold with its dimension; a
            // damaged dimension field leaves none that do.
            let theirs = replay_bytes(&bytes[HEADER_LEN..], Version::V2, file as usize);
            if &bytes[..6] == MAGIC_V2 && !theirs.records.is_empty() {
                return Err(WalError::DimMismatch { path, file, engine });
            }
            if &bytes[..6] == MAGIC_V1 && file > 0 && file <= 65_536 && (bytes.len() - HEADER_LEN).is_multiple_of(8 + 4 * file as usize) {
                return Err(WalError::DimMismatch { path, file, engine });
            }
            return Err(WalError::NotAWal(path));
        }
        r => r?,
    };
    Ok(replay_bytes(&bytes[HEADER_LEN..], version, dim as usize))
}

fn replay_bytes(mut body: &[u8], version: Version, dim: usize) -> Replay {
    let mut out = Replay::default();
    let vec_bytes = dim * 4;
    while !body.is_empty() {
        let (record, used) = match version {
            Version::V1 => {
                if body.len() < 8 + vec_bytes {
                    out.stopped = Some(format!("torn record at the end ({} bytes)", body.len()));
                    break;
                }
                let id = u64::from_le_bytes(body[..8].try_into().unwrap());
                (Record { id, text: String::new(), vector: floats(&body[8..8 + vec_bytes]) }, 8 + vec_bytes)
            }
            Version::V2 => {
                if body.len() < 12 {
                    out.stopped = Some(format!("torn record at the end ({} bytes)", body.len()));
                    break;
                }
                let text_len = u32::from_le_bytes(body[8..12].try_into().unwrap()) as usize;
                if text_len > MAX_TEXT {
                    out.stopped = Some(format!("corrupt record (text length {text_len})"));
                    break;
                }
                let total = 12 + text_len + vec_bytes + 4;
                if body.len() < total {
                    out.stopped = Some(format!("torn record at the end ({} of {total} bytes)", body.len()));
                    break;
                }
                let want = u32::from_le_bytes(body[total - 4..total].try_into().unwrap());
                if crc32fast::hash(&body[..total - 4]) != want {
                    out.stopped = Some("corrupt record (CRC mismatch)".into());
                    break;
                }
                let Ok(text) = std::str::from_utf8(&body[12..12 + text_len]) else {
                    out.stopped = Some("corrupt record (text is not UTF-8)".into());
                    break;
                };
                let id = u64::from_le_bytes(body[..8].try_into().unwrap());
                let vector = floats(&body[12 + text_len..12 + text_len + vec_bytes]);
                (Record { id, text: text.to_string(), vector }, total)
            }
        };
        out.records.push(record);
        body = &body[used..];
    }
    out.skipped_bytes = body.len() as u64;
    out
}

fn floats(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// When appends reach the disk, not just the page cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Process-crash safe; an OS crash may lose the last seconds (default).
    Never,
    /// fsync after every append: OS-crash safe, slower.
    EveryAppend,
}

/// An open WAL, appending.
pub struct Writer {
    path: PathBuf,
    file: File,
    dim: usize,
    version: Version,
    fsync: FsyncPolicy,
    buf: Vec<u8>,
}

impl Writer {
    /// Opens `path` for appending, writing a `TLWAL2` header if it is new or empty. An existing
    /// file is appended after its last good record: a torn or corrupt tail is cut off first.
    pub fn open(path: &Path, dim: u32, fsync: FsyncPolicy) -> Result<Writer, WalError> {
        let err = |e| WalError::Io(path.to_path_buf(), e);
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(err)?;
        let version = if bytes.is_empty() {
            let mut header = Vec::with_capacity(HEADER_LEN);
            header.extend_from_slice(MAGIC_V2);
            header.extend_from_slice(&dim.to_le_bytes());
            file.write_all(&header).map_err(err)?;
            Version::V2
        } else {
            let version = read_header(path, &bytes, dim)?;
            let r = replay_bytes(&bytes[HEADER_LEN..], version, dim as usize);
            if r.skipped_bytes > 0 {
                let good = bytes.len() as u64 - r.skipped_bytes;
                file.set_len(good).map_err(err)?;
                file.seek(SeekFrom::End(0)).map_err(err)?;
            }
            version
        };
        Ok(Writer { path: path.to_path_buf(), file, dim: dim as usize, version, fsync, buf: Vec::new() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record with a single write.
    pub fn append(&mut self, id: u64, text: &str, vector: &[f32]) -> io::Result<()> {
        assert_eq!(vector.len(), self.dim, "vector dimension");
        self.buf.clear();
        self.buf.extend_from_slice(&id.to_le_bytes());
        if self.version == Version::V2 {
            let mut end = text.len().min(MAX_TEXT);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            self.buf.extend_from_slice(&(end as u32).to_le_bytes());
            self.buf.extend_from_slice(&text.as_bytes()[..end]);
        }
        for x in vector {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        if self.version == Version::V2 {
            let crc = crc32fast::hash(&self.buf);
            self.buf.extend_from_slice(&crc.to_le_bytes());
        }
        let result = self.file.write_all(&self.buf);
        if result.is_err() {
            // never leave half a record in front of the next one
            let _ = self.truncate_partial();
            return result;
        }
        if self.fsync == FsyncPolicy::EveryAppend {
            self.file.sync_data()?;
        }
        Ok(())
    }

    fn truncate_partial(&mut self) -> io::Result<()> {
        let bytes = std::fs::read(&self.path)?;
        if bytes.len() >= HEADER_LEN {
            let r = replay_bytes(&bytes[HEADER_LEN..], self.version, self.dim);
            self.file.set_len(bytes.len() as u64 - r.skipped_bytes)?;
        }
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(seed: f32, dim: usize) -> Vec<f32> {
        (0..dim).map(|i| seed + i as f32 * 0.25).collect()
    }

    #[test]
    fn round_trip_and_reopen_appends_after_existing_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wal-0.bin");
        let mut w = Writer::open(&p, 4, FsyncPolicy::Never).unwrap();
        w.append(1, "Invalid user <*> from <*>", &v(1.0, 4)).unwrap();
        w.append(2, "", &v(2.0, 4)).unwrap();
        drop(w);
        let mut w = Writer::open(&p, 4, FsyncPolicy::EveryAppend).unwrap();
        w.append(3, "héllo", &v(3.0, 4)).unwrap();
        let r = replay(&p, 4).unwrap();
        assert_eq!(r.records.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(r.records[0].text, "Invalid user <*> from <*>");
        assert_eq!(r.records[2].text, "héllo");
        assert_eq!(r.records[1].vector, v(2.0, 4));
        assert_eq!((r.skipped_bytes, r.stopped), (0, None));
    }

    #[test]
    fn truncated_tail_is_ignored_and_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wal-0.bin");
        let mut w = Writer::open(&p, 4, FsyncPolicy::Never).unwrap();
        w.append(1, "a", &v(1.0, 4)).unwrap();
        w.append(2, "b", &v(2.0, 4)).unwrap();
        drop(w);
        let len = std::fs::metadata(&p).unwrap().len();
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 5).unwrap();
        let r = replay(&p, 4).unwrap();
        assert_eq!(r.records.len(), 1);
        assert!(r.skipped_bytes > 0 && r.stopped.as_deref().unwrap().contains("torn"));
        let mut w = Writer::open(&p, 4, FsyncPolicy::Never).unwrap();
        w.append(3, "c", &v(3.0, 4)).unwrap();
        let r = replay(&p, 4).unwrap();
        assert_eq!(r.records.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(r.skipped_bytes, 0);
    }

    #[test]
    fn a_bit_flip_in_the_middle_ends_replay_at_the_last_good_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wal-0.bin");
        let mut w = Writer::open(&p, 4, FsyncPolicy::Never).unwrap();
        for id in 0..5 {
            w.append(id, "same text", &v(id as f32, 4)).unwrap();
        }
        drop(w);
        let mut bytes = std::fs::read(&p).unwrap();
        let rec = (bytes.len() - HEADER_LEN) / 5;
        bytes[HEADER_LEN + 2 * rec + 30] ^= 0x10; // inside the vector of record 2
        std::fs::write(&p, &bytes).unwrap();
        let r = replay(&p, 4).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.skipped_bytes, 3 * rec as u64);
        assert!(r.stopped.unwrap().contains("CRC mismatch"));
    }

    #[test]
    fn reads_the_original_v1_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wal-0.bin");
        let mut bytes = MAGIC_V1.to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        for (id, x) in [(7u64, 1.5f32), (8, -2.0)] {
            bytes.extend_from_slice(&id.to_le_bytes());
            bytes.extend_from_slice(&x.to_le_bytes());
            bytes.extend_from_slice(&(x * 2.0).to_le_bytes());
        }
        bytes.extend_from_slice(&[9, 0, 0]); // torn third record
        std::fs::write(&p, &bytes).unwrap();
        let r = replay(&p, 2).unwrap();
        assert_eq!(r.records, vec![
            Record { id: 7, text: String::new(), vector: vec![1.5, 3.0] },
            Record { id: 8, text: String::new(), vector: vec![-2.0, -4.0] },
        ]);
        assert_eq!(r.skipped_bytes, 3);
        // appending to a V1 file keeps writing V1 records
        let mut w = Writer::open(&p, 2, FsyncPolicy::Never).unwrap();
        w.append(9, "ignored in v1", &[0.5, 0.5]).unwrap();
        assert_eq!(replay(&p, 2).unwrap().records.len(), 3);
    }

    #[test]
    fn bad_magic_and_dimension_mismatch_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wal-0.bin");
        std::fs::write(&p, b"NOTAWAL!\x04\x00\x00\x00").unwrap();
        let e = replay(&p, 4).unwrap_err().to_string();
        assert!(e.contains("not a turbolog WAL") && e.contains("header is damaged"), "{e}");
        assert!(Writer::open(&p, 4, FsyncPolicy::Never).is_err());
        let mut w = Writer::open(&dir.path().join("wal-1.bin"), 4, FsyncPolicy::Never).unwrap();
        w.append(1, "x", &v(0.0, 4)).unwrap();
        let e = replay(&dir.path().join("wal-1.bin"), 8).unwrap_err().to_string();
        assert!(e.contains("4-dimensional") && e.contains("8 dimensions"), "{e}");
        // a damaged dimension field is not another embedder: no record checks out with it
        let mut bytes = std::fs::read(dir.path().join("wal-1.bin")).unwrap();
        bytes[6] ^= 0x10;
        std::fs::write(dir.path().join("wal-2.bin"), &bytes).unwrap();
        let e = replay(&dir.path().join("wal-2.bin"), 4).unwrap_err();
        assert!(matches!(e, WalError::NotAWal(_)), "{e}");
    }
}
