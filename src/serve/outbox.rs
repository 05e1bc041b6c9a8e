//! `outbox.tls`: tagged records the downstream had not taken when `serve` shut down. Written
//! once at shutdown (framed and checksummed, replaced atomically), read and removed at the next
//! start, which delivers them before anything new.

use std::path::Path;

use turbolog::store::framed;

use super::pipeline::Pending;

pub const FILE_NAME: &str = "outbox.tls";
const MAGIC: &[u8; 8] = b"TLOUTBX1";

/// Keeps `pending` (added to whatever the file already holds, in order) and syncs it to disk.
pub fn keep(dir: &Path, pending: Vec<Pending>) -> Result<(), String> {
    let path = dir.join(FILE_NAME);
    let mut all: Vec<Pending> = match std::fs::read(&path) {
        Ok(b) => framed::decode(MAGIC, &b, "outbox")
            .ok()
            .and_then(|body| serde_json::from_slice(body).ok())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    all.extend(pending);
    let body = serde_json::to_vec(&all).map_err(|e| format!("cannot encode the outbox: {e}"))?;
    let bytes = framed::encode(MAGIC, &body);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| format!("cannot write {} ({e}); free space or fix permissions there", path.display()))
}

/// What the last shutdown kept, removed from the directory: the caller now holds it. A corrupt
/// file is moved aside with a warning that says so.
pub fn take(dir: &Path) -> (Vec<Pending>, Option<String>) {
    let path = dir.join(FILE_NAME);
    let (kept, warning) = framed::load_or_set_aside::<Vec<Pending>>(
        &path,
        MAGIC,
        "outbox",
        "the records it held cannot be delivered; read them from the file if they matter",
        |v| {
            let bad = v.iter().any(|p| !p.times.is_empty() && p.times.len() != p.text.matches('\n').count());
            if bad {
                Err("an entry's times do not match its records".into())
            } else {
                Ok(())
            }
        },
    );
    if !kept.is_empty() {
        if let Err(e) = std::fs::remove_file(&path) {
            return (kept, Some(format!("cannot remove {} after reading it ({e}); its records may be delivered twice", path.display())));
        }
    }
    (kept, warning)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::msgpack_json::EventTime;

    fn pending(text: &str) -> Pending {
        Pending { text: text.into(), times: vec![EventTime { secs: 1, nanos: 2 }], tag: Some("t".into()), records: 1 }
    }

    #[test]
    fn kept_records_come_back_once_in_order() {
        let d = tempfile::tempdir().unwrap();
        keep(d.path(), vec![pending("{\"a\":1}\n")]).unwrap();
        keep(d.path(), vec![pending("{\"a\":2}\n")]).unwrap();
        let (back, w) = take(d.path());
        assert!(w.is_none());
        assert_eq!(back.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(), ["{\"a\":1}\n", "{\"a\":2}\n"]);
        assert_eq!(back[0].times, vec![EventTime { secs: 1, nanos: 2 }]);
        assert!(take(d.path()).0.is_empty());
    }

    #[test]
    fn a_corrupt_outbox_is_set_aside_and_named() {
        let d = tempfile::tempdir().unwrap();
        keep(d.path(), vec![pending("{\"a\":1}\n")]).unwrap();
        let p = d.path().join(FILE_NAME);
        let mut b = std::fs::read(&p).unwrap();
        b[20] ^= 0x40;
        std::fs::write(&p, b).unwrap();
        let (back, w) = take(d.path());
        assert!(back.is_empty());
        let w = w.unwrap();
        assert!(w.contains("outbox.tls is corrupt") && w.contains("checksum") && w.contains("moved aside"), "{w}");
        assert!(d.path().join("outbox.tls.corrupt").exists());
    }
}
