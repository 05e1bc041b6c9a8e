//! `DIR/explanations.tls`: answers kept per template, so a restart never asks again.
//! Framed like the other state files (magic `TLEXPL01`, length, JSON body, CRC32) and written
//! atomically; a corrupt one is moved aside and the cache starts empty.

use std::collections::BTreeMap;
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
    framed::load_or_set_aside(&dir.join(FILE_NAME), MAGIC, "explanations", "explanations start empty", |_: &Explanations| Ok(()))
}

pub fn save(dir: &Path, e: &Explanations) -> Result<(), StateError> {
    write_atomically(&dir.join(FILE_NAME), &framed::encode(MAGIC, &serde_json::to_vec(e).expect("explanations serialise")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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
