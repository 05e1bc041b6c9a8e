//! A state directory that turns read-only under a running engine (a read-only bind mount:
//! root ignores file modes, so chmod would prove nothing). Needs permission to mount; where
//! `mount` is refused the test says so loudly and skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use turbolog::pipeline::config::Settings;
use turbolog::host::embedded::{Embedded, Filtered, LogLevel};

static LOG: Mutex<Vec<(LogLevel, String)>> = Mutex::new(Vec::new());

fn capture(level: LogLevel, msg: &str) {
    LOG.lock().unwrap().push((level, msg.to_string()));
}

/// A read-only bind mount of `dir` onto itself, undone on drop.
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn new(dir: &Path) -> Option<ReadOnly> {
        let ok = |args: &[&str]| Command::new("mount").args(args).arg(dir).arg(dir).status().map(|s| s.success()).unwrap_or(false);
        if !ok(&["--bind"]) {
            return None;
        }
        let guard = ReadOnly(dir.to_path_buf());
        let ro = Command::new("mount").args(["-o", "remount,bind,ro"]).arg(dir).status().map(|s| s.success()).unwrap_or(false);
        ro.then_some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn skip(why: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("\n*** SKIPPED: {why}: the read-only state directory test did not run ***\n").as_bytes());
}

#[test]
fn read_only_state_dir_keeps_tagging_logs_once_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    std::fs::create_dir(&dir).unwrap();
    let data = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/fluent-bit/tail_openssh.msgpack")).unwrap();
    let settings = Settings::from_pairs([("state_dir", dir.to_str().unwrap()), ("window", "0")]).unwrap();
    let engine = Embedded::open(settings.clone(), capture).unwrap();
    let Some(ro) = ReadOnly::new(&dir) else {
        skip("mount --bind is not permitted here");
        return;
    };
    if std::fs::write(dir.join("probe"), b"x").is_ok() {
        drop(ro);
        skip("the bind mount did not become read-only");
        return;
    }
    for _ in 0..3 {
        let tagged = engine.filter(&data, capture, |r| match r {
            Filtered::Modified(_, s) => s.tagged,
            Filtered::Untouched => 0,
        });
        assert_eq!(tagged, 1999, "records are tagged from memory");
    }
    assert!(engine.flush(capture).is_err());
    {
        let log = LOG.lock().unwrap();
        let errors: Vec<&String> = log.iter().filter(|(l, _)| *l == LogLevel::Error).map(|(_, m)| m).collect();
        assert!(!errors.is_empty() && errors.len() <= 3, "logged once per kind of failure: {errors:#?}");
        assert!(errors.iter().any(|m| m.contains("Read-only file system") && m.contains("writable")), "{errors:#?}");
    }
    drop(ro); // space (write access) returns
    engine.flush(capture).unwrap();
    assert!(LOG.lock().unwrap().iter().any(|(_, m)| m.contains("works again")));
    let templates = engine.counts().2;
    drop(engine);
    let (_, rec) = turbolog::store::Store::open(&dir, 256, Default::default()).unwrap();
    assert_eq!(rec.ids().len(), templates, "nothing learned while read-only was lost");
}
