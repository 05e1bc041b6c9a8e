//! `DIR/sessions.tls`: what normal sessions contain ([`Profile`]), kept with the same care as
//! the templates: framed (magic `TLSESS01`, length, JSON, CRC32), written atomically; a corrupt
//! one is moved aside and profiles are learned afresh.

use std::fs;
use std::io;
use std::path::Path;

use crate::session::Profile;
use crate::store::framed;
use crate::store::templates_file::{write_atomically, StateError};

pub const FILE_NAME: &str = "sessions.tls";
const MAGIC: &[u8; 8] = b"TLSESS01";

/// The profile; none yet is empty. The warning says what was corrupt and where it went.
pub fn load(dir: &Path) -> (Profile, Option<String>) {
    let path = dir.join(FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (Profile::default(), None),
        Err(e) => return (Profile::default(), Some(format!("cannot read {}: {e}; session profiles are learned afresh", path.display()))),
    };
    match framed::decode(MAGIC, &bytes, "sessions").and_then(|b| serde_json::from_slice::<Profile>(b).map_err(|e| format!("unreadable body: {e}"))) {
        Ok(p) if p.either.len() == p.equal.len() && (p.either.is_empty() || p.either.len() == crate::session::profile::TRACKED.pow(2)) => (p, None),
        Ok(_) => (Profile::default(), Some(format!("{} has pair tables of the wrong size; session profiles are learned afresh", path.display()))),
        Err(why) => {
            let aside = dir.join(format!("{FILE_NAME}.corrupt"));
            let moved = fs::rename(&path, &aside).map_or_else(|e| format!("could not be moved aside ({e})"), |_| format!("moved aside to {}", aside.display()));
            (Profile::default(), Some(format!("{} is corrupt ({why}); {moved}; session profiles are learned afresh", path.display())))
        }
    }
}

pub fn save(dir: &Path, p: &Profile) -> Result<(), StateError> {
    write_atomically(&dir.join(FILE_NAME), &framed::encode(MAGIC, &serde_json::to_vec(p).expect("a profile serialises")))
}

#[cfg(test)]
mod tests {
    use super::*;

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
