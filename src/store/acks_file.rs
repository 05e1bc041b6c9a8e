//! `DIR/acks.tls`: the templates an operator acknowledged as normal (`turbolog ack`).
//!
//! Trouble is never learned as normal from the stream alone; an ack is how a person says
//! "this one is expected". It lives in its own file, written only by `turbolog ack`, so that a
//! host running on the same state never overwrites it: hosts read it when it changes, at each
//! window seal, and apply it without a restart.
//!
//! Format: magic `TLACKS01`, body length (u64 LE), JSON body, CRC32 of the body (u32 LE);
//! written atomically like `templates.tls`.

use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::store::framed;
use crate::store::templates_file::{write_atomically, StateError};

pub const FILE_NAME: &str = "acks.tls";
const MAGIC: &[u8; 8] = b"TLACKS01";

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Acks {
    pub acked: Vec<Ack>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Ack {
    pub id: u32,
    /// When it was acknowledged, seconds since the Unix epoch.
    pub at: u64,
    /// The template text then, for people reading `--list`.
    pub text: String,
}

impl Acks {
    pub fn ids(&self) -> Vec<u32> {
        self.acked.iter().map(|a| a.id).collect()
    }
}

/// Loads `DIR/acks.tls`; none yet is an empty list.
pub fn load(dir: &Path) -> Result<Acks, StateError> {
    let path = dir.join(FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Acks::default()),
        Err(source) => return Err(StateError::Io { path, action: "read", source }),
    };
    decode(&bytes).map_err(|what| StateError::Corrupt { path, what })
}

pub fn save(dir: &Path, acks: &Acks) -> Result<(), StateError> {
    write_atomically(&dir.join(FILE_NAME), &encode(acks))
}

pub fn encode(acks: &Acks) -> Vec<u8> {
    framed::encode(MAGIC, &serde_json::to_vec(acks).expect("acks always serialise"))
}

pub fn decode(bytes: &[u8]) -> Result<Acks, String> {
    let body = framed::decode(MAGIC, bytes, "acks")?;
    serde_json::from_slice(body).map_err(|e| format!("unreadable body: {e}"))
}

/// Notices when `acks.tls` changed since it was last read. Each save renames a new file into
/// place, so its inode changes even when size and time do not.
#[derive(Debug, Default)]
pub struct AckWatch {
    polled: bool,
    seen: Option<Stamp>,
    /// The last problem reported, so that it is said once, not at every seal.
    reported: Option<String>,
}

type Stamp = (u64, u64, Option<SystemTime>);

/// What [`AckWatch::poll`] found.
#[derive(Debug, PartialEq)]
pub enum Polled {
    Unchanged,
    /// The acknowledged template ids now (empty when the file was removed).
    Changed(Vec<u32>),
    /// The file is unreadable: the acks in force stay; the message says what to do.
    Unreadable(String),
}

impl AckWatch {
    pub fn poll(&mut self, dir: &Path) -> Polled {
        use std::os::unix::fs::MetadataExt;
        let stamp = fs::metadata(dir.join(FILE_NAME)).ok().map(|m| (m.ino(), m.len(), m.modified().ok()));
        if self.polled && stamp == self.seen {
            return Polled::Unchanged;
        }
        self.polled = true;
        if stamp.is_none() {
            let had = self.seen.take().is_some();
            return if had { Polled::Changed(Vec::new()) } else { Polled::Unchanged };
        }
        match load(dir) {
            Ok(acks) => {
                self.seen = stamp;
                self.reported = None;
                Polled::Changed(acks.ids())
            }
            Err(e) => {
                let msg = format!(
                    "{e}; the acknowledgements in force stay until it is fixed (rewrite it with `turbolog ack --state {} ID…`)",
                    dir.display()
                );
                if self.reported.as_deref() == Some(msg.as_str()) {
                    return Polled::Unchanged;
                }
                self.reported = Some(msg.clone());
                Polled::Unreadable(msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_corruption_is_named() {
        let acks = Acks { acked: vec![Ack { id: 17, at: 1_790_000_000, text: "Failed password for <*>".into() }] };
        let bytes = encode(&acks);
        assert_eq!(decode(&bytes).unwrap(), acks);
        assert!(decode(&bytes[..10]).unwrap_err().contains("bad magic"));
        assert!(decode(&bytes[..bytes.len() - 1]).unwrap_err().contains("length"));
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(decode(&flipped).unwrap_err().contains("checksum mismatch"));
    }

    #[test]
    fn the_watch_sees_changes_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = AckWatch::default();
        assert_eq!(w.poll(dir.path()), Polled::Unchanged);
        save(dir.path(), &Acks { acked: vec![Ack { id: 3, at: 0, text: String::new() }] }).unwrap();
        assert_eq!(w.poll(dir.path()), Polled::Changed(vec![3]));
        assert_eq!(w.poll(dir.path()), Polled::Unchanged);
        fs::write(dir.path().join(FILE_NAME), b"garbage that is long enough to be read").unwrap();
        assert!(matches!(w.poll(dir.path()), Polled::Unreadable(m) if m.contains("bad magic")));
        assert_eq!(w.poll(dir.path()), Polled::Unchanged, "said once");
        fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(w.poll(dir.path()), Polled::Changed(vec![]));
    }
}
