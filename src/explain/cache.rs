//! `DIR/explanations.tls`: answers kept per template, so a restart never asks again.
//! Framed like the other state files (magic `TLEXPL01`, length, JSON body, CRC32) and written
//! atomically; a corrupt one is moved aside and the cache starts empty.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::store::framed;
use crate::store::templates_file::{write_atomically, StateError};

pub const FILE_NAME: &str = "explanations.tls";
const MAGIC: &[u8; 8] = b"TLEXPL01";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The template as it was explained.
    pub template: String,
    pub text: String,
    /// Which model answered.
    pub model: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Explanations {
    pub by_template: BTreeMap<u32, Explanation>,
}

/// Loads the cache; none yet is empty. A corrupt file is moved aside (the warning says where).
pub fn load(dir: &Path) -> (Explanations, Option<String>) {
    let path = dir.join(FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (Explanations::default(), None),
        Err(e) => return (Explanations::default(), Some(format!("cannot read {}: {e}; explanations start empty", path.display()))),
    };
    match framed::decode(MAGIC, &bytes, "explanations").and_then(|b| serde_json::from_slice(b).map_err(|e| format!("unreadable body: {e}"))) {
        Ok(e) => (e, None),
        Err(why) => {
            let aside = dir.join(format!("{FILE_NAME}.corrupt"));
            let moved = fs::rename(&path, &aside).map_or_else(|e| format!("could not be moved aside ({e})"), |_| format!("moved aside to {}", aside.display()));
            (Explanations::default(), Some(format!("{} is corrupt ({why}); {moved}; explanations start empty", path.display())))
        }
    }
}

pub fn save(dir: &Path, e: &Explanations) -> Result<(), StateError> {
    write_atomically(&dir.join(FILE_NAME), &framed::encode(MAGIC, &serde_json::to_vec(e).expect("explanations serialise")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_a_corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Explanations::default();
        e.by_template.insert(7, Explanation { template: "disk <*> failed".into(), text: "The disk is failing.".into(), model: "m".into(), at: 1 });
        save(dir.path(), &e).unwrap();
        assert_eq!(load(dir.path()), (e, None));
        fs::write(dir.path().join(FILE_NAME), b"garbage garbage garbage").unwrap();
        let (empty, warning) = load(dir.path());
        assert!(empty.by_template.is_empty());
        assert!(warning.unwrap().contains("moved aside"));
        assert!(dir.path().join("explanations.tls.corrupt").exists());
    }
}
