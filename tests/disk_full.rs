//! A full disk, simulated with RLIMIT_FSIZE (writes past the limit fail with EFBIG; SIGXFSZ is
//! ignored as a daemon would): records keep being tagged, the failure is logged once, and what
//! was learned is written once space returns.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use turbolog::pipeline::config::Settings;
use turbolog::host::embedded::{Embedded, Filtered, LogLevel};

static LOG: Mutex<Vec<(LogLevel, String)>> = Mutex::new(Vec::new());

fn capture(level: LogLevel, msg: &str) {
    LOG.lock().unwrap().push((level, msg.to_string()));
}

fn set_fsize(soft: libc::rlim_t) {
    // SAFETY: plain syscalls on this process.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = soft.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

fn fixture() -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/fluent-bit/tail_openssh.msgpack")).unwrap()
}

/// In-process (the plugin's path): fail, keep tagging, log once, recover, lose nothing.
/// The only test in this binary that changes the process's limit.
#[test]
fn embedded_engine_keeps_tagging_on_a_full_disk_and_recovers() {
    // SAFETY: ignoring SIGXFSZ makes oversized writes fail with EFBIG instead of killing us.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::from_pairs([("state_dir", dir.path().to_str().unwrap()), ("window", "0")]).unwrap();
    let engine = Embedded::open(settings.clone(), capture).unwrap();
    let data = fixture();
    set_fsize(3000); // room for about two WAL records
    let tagged = engine.filter(&data, capture, |r| match r {
        Filtered::Modified(_, stats) => stats.tagged,
        Filtered::Untouched => 0,
    });
    assert_eq!(tagged, 1999, "every record is still tagged");
    assert!(engine.flush(capture).is_err(), "the seal cannot write either");
    let errors: Vec<String> = LOG.lock().unwrap().iter().filter(|(l, _)| *l == LogLevel::Error).map(|(_, m)| m.clone()).collect();
    assert!(!errors.is_empty() && errors.len() <= 3, "logged once per kind of failure, not per record: {errors:#?}");
    assert!(errors[0].contains("disk full") || errors[0].contains("File too large"), "{errors:#?}");
    set_fsize(libc::RLIM_INFINITY);
    engine.flush(capture).unwrap();
    assert!(LOG.lock().unwrap().iter().any(|(_, m)| m.contains("works again")));
    let (_, _, templates) = engine.counts();
    drop(engine);
    let (store, rec) = turbolog::store::Store::open(dir.path(), 256, Default::default()).unwrap();
    assert_eq!(rec.ids().len(), templates, "every template's vector reached the store after recovery");
    drop(store);
    let reopened = Embedded::open(settings, capture).unwrap();
    assert_eq!(reopened.counts().2, templates);
}

/// The CLI as a process with a small file-size limit: every line still comes out tagged, the
/// warning is printed once, and the exit status says that what was learned is not saved.
#[test]
fn cli_filter_on_a_full_disk_tags_every_line_and_says_what_was_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/loghub/Android/Android_2k.log")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_turbolog"));
    cmd.args(["filter", "--state"]).arg(dir.path()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: 20_000, rlim_max: libc::RLIM_INFINITY };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = log.clone();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.lines().count(), log.lines().count(), "every line tagged: {stderr}");
    assert!(stdout.lines().all(|l| l.contains("\"anomaly\":")));
    let warnings = stderr.lines().filter(|l| l.contains("File too large") || l.contains("disk full")).count();
    assert!((1..=3).contains(&warnings), "reported once, not per line:\n{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not saved"), "{stderr}");
}
