//! `DIR/values.tls`: what the values of each template position looked like (see
//! [`crate::detect::values`]), kept beside `templates.tls` with the same care: framed (magic
//! `TLVALUE1`, length, JSON, CRC32), written atomically; a corrupt one is moved aside and value
//! baselines are learned afresh (the templates are not touched).

use std::path::Path;

use crate::detect::values::Saved;
use crate::store::framed;
use crate::store::templates_file::{write_atomically, StateError};

pub const FILE_NAME: &str = "values.tls";
const MAGIC: &[u8; 8] = b"TLVALUE1";

/// The saved value baselines; none yet is empty. The warning says what was corrupt and where it went.
pub fn load(dir: &Path) -> (Saved, Option<String>) {
    framed::load_or_set_aside(&dir.join(FILE_NAME), MAGIC, "values", "value baselines are learned afresh", |_: &Saved| Ok(()))
}

/// Reads `values.tls` without changing anything (for `inspect`): how many template positions
/// and record fields it holds, none when there is no file, or what is wrong with it.
pub fn check(dir: &Path) -> Result<Option<(usize, usize)>, String> {
    let path = dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let body = framed::decode(MAGIC, &bytes, "values")?;
    let saved: Saved = serde_json::from_slice(body).map_err(|e| format!("unreadable body: {e}"))?;
    Ok(Some((saved.positions.len(), saved.fields.len())))
}

pub fn save(dir: &Path, saved: &Saved) -> Result<(), StateError> {
    write_atomically(&dir.join(FILE_NAME), &framed::encode(MAGIC, &serde_json::to_vec(saved).expect("value baselines serialise")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = crate::detect::Engine::new(crate::detect::EngineConfig::default());
        for i in 0..60 {
            e.learn_line(&format!("GET /page/{} {}", ["a", "b", "c"][i % 3], i));
        }
        let saved = e.values_saved();
        assert!(!saved.positions.is_empty());
        assert_eq!(check(dir.path()), Ok(None));
        save(dir.path(), &saved).unwrap();
        assert_eq!(check(dir.path()), Ok(Some((saved.positions.len(), 0))));
        assert_eq!(load(dir.path()), (saved, None));
        let mut bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(dir.path().join(FILE_NAME), bytes).unwrap();
        assert!(check(dir.path()).unwrap_err().contains("checksum mismatch"));
        let (fresh, warning) = load(dir.path());
        assert_eq!(fresh, Saved::default());
        assert!(warning.unwrap().contains("checksum mismatch"));
        assert!(dir.path().join("values.tls.corrupt").exists());
    }

    #[test]
    fn the_fields_of_logfmt_records_are_saved_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = crate::detect::Engine::new(crate::detect::EngineConfig::default());
        for i in 0..60 {
            e.learn_line(&format!("msg=\"served\" method=GET path=/page/{}", ["a", "b", "c"][i % 3]));
        }
        let saved = e.values_saved();
        assert_eq!(saved.fields.iter().map(|(_, p)| (p.name.as_str(), p.seen)).collect::<Vec<_>>(), [("method", 60), ("path", 60)]);
        save(dir.path(), &saved).unwrap();
        assert_eq!(check(dir.path()), Ok(Some((saved.positions.len(), 2))));
        assert_eq!(load(dir.path()).0.fields, saved.fields);
    }
}
