//! `DIR/sessions.tls`: what normal sessions contain ([`Profile`]), kept with the same care as
//! the templates: framed (magic `TLSESS01`, length, JSON, CRC32), written atomically; a corrupt
//! one is moved aside and profiles are learned afresh.

use std::path::Path;

use crate::session::Profile;
use crate::store::framed;
use crate::store::templates_file::{write_atomically, StateError};

pub const FILE_NAME: &str = "sessions.tls";
const MAGIC: &[u8; 8] = b"TLSESS01";

/// The profile; none yet is empty. The warning says what was corrupt and where it went.
pub fn load(dir: &Path) -> (Profile, Option<String>) {
    framed::load_or_set_aside(&dir.join(FILE_NAME), MAGIC, "sessions", "session profiles are learned afresh", |p: &Profile| {
        let tables = crate::session::profile::TRACKED.pow(2);
        if p.either.len() == p.equal.len() && (p.either.is_empty() || p.either.len() == tables) {
            Ok(())
        } else {
            Err("pair tables of the wrong size".into())
        }
    })
}

pub fn save(dir: &Path, p: &Profile) -> Result<(), StateError> {
    write_atomically(&dir.join(FILE_NAME), &framed::encode(MAGIC, &serde_json::to_vec(p).expect("a profile serialises")))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Profile::default();
        for _ in 0..60 {
            p.add(&[(0, 3), (1, 1)]);
        }
        save(dir.path(), &p).unwrap();
        assert_eq!(load(dir.path()), (p, None));
        let mut bytes = fs::read(dir.path().join(FILE_NAME)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(dir.path().join(FILE_NAME), bytes).unwrap();
        let (fresh, warning) = load(dir.path());
        assert_eq!(fresh, Profile::default());
        assert!(warning.unwrap().contains("checksum mismatch"));
        assert!(dir.path().join("sessions.tls.corrupt").exists());
    }
}
