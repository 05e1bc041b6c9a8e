//! What the engine has learned, saved as one checksummed, atomically written file.
//!
//! `DIR/templates.tls`: magic `TLSTATE1`, body length (u64 LE), JSON body, CRC32 of the body
//! (u32 LE). The JSON holds templates (id, text, counts, first/last seen, whether established),
//! the record counter and the threshold. Vectors are not stored here: the built-in embedder
//! recomputes them from template text in microseconds.
//!
//! Writing goes to a temporary name, is fsynced, renamed over the old file, and the directory is
//! fsynced: a crash leaves either the old state or the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::detect::snapshot::Snapshot;

pub const FILE_NAME: &str = "templates.tls";
/// The copy `save` keeps of the file it replaces: what a corrupt `templates.tls` falls back to.
pub const PREVIOUS_NAME: &str = "templates.tls.prev";
const MAGIC: &[u8; 8] = b"TLSTATE1";

/// An error reading or writing state, with what to do about it.
#[derive(Debug)]
pub enum StateError {
    Io { path: PathBuf, action: &'static str, source: io::Error },
    Corrupt { path: PathBuf, what: String },
    Mismatch { path: PathBuf, what: String },
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Io { path, action, source } => {
                write!(f, "cannot {action} {}: {source}", path.display())?;
                match source.kind() {
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                        write!(f, " (make the state directory writable, or point --state elsewhere)")
                    }
                    io::ErrorKind::StorageFull => write!(f, " (free disk space; nothing already saved was lost)"),
                    _ => Ok(()),
                }
            }
            StateError::Corrupt { path, what } => write!(
                f,
                "{} is corrupt ({what}); move it aside to start learning afresh, or restore it from a backup",
                path.display()
            ),
            StateError::Mismatch { path, what } => write!(f, "{} does not fit this engine: {what}", path.display()),
        }
    }
}

impl std::error::Error for StateError {}

fn io_err<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io { path: path.to_path_buf(), action, source }
}

/// Loads `DIR/templates.tls`; `Ok(None)` when there is none yet.
pub fn load(dir: &Path) -> Result<Option<Snapshot>, StateError> {
    let path = dir.join(FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path, "read")(e)),
    };
    decode(&bytes).map(Some).map_err(|what| StateError::Corrupt { path, what })
}

/// Decodes the bytes of a state file; the error says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
    if bytes.len() < 20 || &bytes[..8] != MAGIC {
        return Err("not a turbolog state file: bad magic".into());
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    if len != bytes.len() as u64 - 20 {
        return Err(format!("length {} does not match the {} bytes of body and checksum present", len, bytes.len() - 16));
    }
    let len = len as usize;
    let body = &bytes[16..16 + len];
    let want = u32::from_le_bytes(bytes[16 + len..].try_into().unwrap());
    let got = crc32fast::hash(body);
    if want != got {
        return Err(format!("checksum mismatch: stored {want:08x}, computed {got:08x}"));
    }
    serde_json::from_slice(body).map_err(|e| format!("unreadable body: {e}"))
}

pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let body = serde_json::to_vec(snapshot).expect("a snapshot always serialises");
    let mut out = Vec::with_capacity(body.len() + 20);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out
}

/// Saves atomically: temp file, fsync, rename, fsync of the directory. The file it replaces is
/// kept as `templates.tls.prev` (a hard link, so a `templates.tls` exists at every moment).
pub fn save(dir: &Path, snapshot: &Snapshot) -> Result<(), StateError> {
    fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
    let path = dir.join(FILE_NAME);
    if path.exists() {
        let prev = dir.join(PREVIOUS_NAME);
        let link = dir.join(format!("{PREVIOUS_NAME}.tmp-{}", std::process::id()));
        let _ = fs::remove_file(&link);
        if fs::hard_link(&path, &link).is_ok() {
            let _ = fs::rename(&link, &prev);
        } else {
            let _ = fs::copy(&path, &prev); // a file system without hard links
        }
    }
    write_atomically(&path, &encode(snapshot))?;
    // value baselines in a file of their own, after the templates they refer to
    match &snapshot.values {
        Some(v) => crate::store::values_file::save(dir, v),
        None => Ok(()),
    }
}

/// What [`load_or_recover`] found.
#[derive(Debug)]
pub struct Loaded {
    pub snapshot: Option<Snapshot>,
    /// What was corrupt, where it was moved, and what is used instead.
    pub warnings: Vec<String>,
}

/// Loads `templates.tls`; a corrupt one (or one `usable` refuses) is moved aside to
/// `templates.tls.corrupt` and the previous copy is used, or none. Only an I/O error fails.
pub fn load_or_recover(dir: &Path, usable: impl Fn(&Snapshot) -> Result<(), String>) -> Result<Loaded, StateError> {
    let mut warnings = Vec::new();
    let checked = |path: &Path, r: Result<Option<Snapshot>, StateError>| -> Result<Result<Option<Snapshot>, String>, StateError> {
        match r {
            Ok(Some(s)) => Ok(usable(&s).map(|_| Some(s)).map_err(|e| format!("{} cannot be used: {e}", path.display()))),
            Ok(None) => Ok(Ok(None)),
            Err(StateError::Corrupt { path, what }) => Ok(Err(format!("{} is corrupt ({what})", path.display()))),
            Err(e) => Err(e),
        }
    };
    let path = dir.join(FILE_NAME);
    let why = match checked(&path, load(dir))? {
        Ok(snapshot) => return Ok(Loaded { snapshot, warnings }),
        Err(why) => why,
    };
    let aside = dir.join(format!("{FILE_NAME}.corrupt"));
    let moved = match fs::rename(&path, &aside) {
        Ok(()) => format!("moved aside to {}", aside.display()),
        Err(e) => format!("could not be moved aside ({e}); it will be overwritten at the next save"),
    };
    let prev = dir.join(PREVIOUS_NAME);
    let fallback = match fs::read(&prev) {
        Ok(bytes) => checked(&prev, decode(&bytes).map(Some).map_err(|what| StateError::Corrupt { path: prev.clone(), what }))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{} cannot be read ({e})", prev.display())),
    };
    let snapshot = match fallback {
        Ok(Some(s)) => {
            warnings.push(format!(
                "{why}; {moved}; carrying on from the previous copy {} ({} templates, {} records): what was learned after it is learned again",
                prev.display(),
                s.templates.len(),
                s.records
            ));
            Some(s)
        }
        Ok(None) => {
            warnings.push(format!("{why}; {moved}; no previous copy: template counts are learned afresh (stored vectors and WAL records are still used)"));
            None
        }
        Err(prev_why) => {
            warnings.push(format!("{why}; {moved}; the previous copy is unusable too ({prev_why}): template counts are learned afresh"));
            None
        }
    };
    Ok(Loaded { snapshot, warnings })
}

/// Writes `bytes` to `path` so that a crash leaves the old content or the new, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err(&tmp, "create"))?;
        f.write_all(bytes).map_err(io_err(&tmp, "write"))?;
        f.sync_all().map_err(io_err(&tmp, "fsync"))?;
        fs::rename(&tmp, path).map_err(io_err(path, "rename into"))?;
        if let Some(parent) = path.parent() {
            if let Ok(d) = File::open(parent) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::snapshot::SavedTemplate;

    fn sample() -> Snapshot {
        Snapshot {
            embedder: "hash-ngram-v1".into(),
            dim: 256,
            records: 10,
            epoch_records: 1000,
            threshold: 0.5,
            baseline: true,
            values: None,
            templates: vec![SavedTemplate {
                id: 0,
                text: "Invalid user <*> from <*>".into(),
                count: 10,
                epochs_seen: 1,
                first_seen: 1,
                last_seen: 10,
                established: true,
                distance: 0.0,
                level_severity: 0.0,
                has_level: false,
                acked: false,
                first_time: None,
            }],
        }
    }

    #[test]
    fn round_trip_through_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        save(dir.path(), &sample()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
        // no temp file left behind; the second save keeps the first as the previous copy
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut newer = sample();
        newer.records = 99;
        save(dir.path(), &newer).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(newer));
        assert_eq!(decode(&fs::read(dir.path().join(PREVIOUS_NAME)).unwrap()).unwrap(), sample());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_the_previous_copy_used() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &sample()).unwrap();
        let mut newer = sample();
        newer.records = 99;
        save(dir.path(), &newer).unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        bytes[30] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let loaded = load_or_recover(dir.path(), |_| Ok(())).unwrap();
        assert_eq!(loaded.snapshot, Some(sample()));
        let w = loaded.warnings.join("\n");
        assert!(w.contains("is corrupt (checksum mismatch") && w.contains("moved aside") && w.contains("previous copy"), "{w}");
        assert!(dir.path().join("templates.tls.corrupt").exists() && !path.exists());
        // a snapshot the engine refuses is treated the same way; with no usable copy, none
        save(dir.path(), &newer).unwrap();
        fs::remove_file(dir.path().join(PREVIOUS_NAME)).unwrap();
        let loaded = load_or_recover(dir.path(), |_| Err("ids not dense".into())).unwrap();
        assert_eq!(loaded.snapshot, None);
        assert!(loaded.warnings[0].contains("cannot be used: ids not dense") && loaded.warnings[0].contains("learned afresh"), "{:?}", loaded.warnings);
    }

    #[test]
    fn corrupt_inputs_are_named() {
        let good = encode(&sample());
        assert!(decode(b"hello world, not a state file").unwrap_err().contains("bad magic"));
        assert!(decode(&good[..good.len() - 3]).unwrap_err().contains("length"));
        let mut huge = good.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&huge).unwrap_err().contains("length"));
        let mut flipped = good.clone();
        flipped[30] ^= 0x01;
        assert!(decode(&flipped).unwrap_err().contains("checksum mismatch"));
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), &flipped).unwrap();
        let msg = load(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("is corrupt") && msg.contains("move it aside"), "{msg}");
    }
}
