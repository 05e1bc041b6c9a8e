//! Crash safety with real processes: `turbolog filter --state DIR` ingests real logs and is
//! killed with SIGKILL at random moments, again and again on the same state directory.
//! After every kill the store must open cleanly, every template id the process had written out
//! (its WAL record is appended before the record is written) must be recovered, no chunk may
//! hold an id twice, and no WAL file may be both sealed into a chunk and still on disk.
//!
//! `TURBOLOG_CRASH_ITERATIONS` sets the number of kills (default 20; scripts/crash-test.sh runs 100+).

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use turbolog::store::{chunk::Chunk, Store, StoreOptions};

fn real_lines() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/loghub");
    let mut names: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().map(|e| e.file_name().into_string().unwrap()).collect();
    names.sort();
    let mut lines = Vec::new();
    for n in names {
        if let Ok(bytes) = std::fs::read(root.join(&n).join(format!("{n}_2k.log"))) {
            lines.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_string));
        }
    }
    assert!(lines.len() > 20_000);
    lines
}

/// A small deterministic generator, so a failing run can be repeated.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

fn check_store(dir: &Path, emitted: &BTreeSet<u64>, round: usize) {
    let (store, rec) = Store::open(dir, 256, StoreOptions::default()).unwrap_or_else(|e| panic!("round {round}: store does not open: {e}"));
    for w in &rec.warnings {
        assert!(!w.contains("corrupt"), "round {round}: {w}");
    }
    let recovered: HashSet<u64> = rec.ids().into_iter().collect();
    let missing: Vec<_> = emitted.iter().filter(|id| !recovered.contains(id)).collect();
    assert!(missing.is_empty(), "round {round}: template ids written out before the kill but not recovered: {missing:?}");
    let mut sources = HashSet::new();
    for (path, _, _) in store.chunk_summary() {
        let c = Chunk::open(&path, 256).unwrap();
        c.verify().unwrap();
        let ids: Vec<u64> = (0..c.len()).map(|i| c.id(i)).collect();
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "round {round}: {} holds an id twice", path.display());
        sources.extend(c.sources().iter().cloned());
    }
    for s in sources {
        assert!(!dir.join(&s).exists(), "round {round}: {s} is in a chunk and still on disk (would replay twice)");
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_written_out() {
    let iterations: usize = std::env::var("TURBOLOG_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let lines = real_lines();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut rng = Lcg(0x7475_7262_6f6c_6f67);
    let mut emitted_all = BTreeSet::new();
    let mut offset = 0usize;
    for round in 0..iterations {
        let mut child = Command::new(env!("CARGO_BIN_EXE_turbolog"))
            .args(["filter", "--window", "0.05", "--state"])
            .arg(&state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed: Vec<String> = (0..3000).map(|i| lines[(offset + i) % lines.len()].clone()).collect();
        offset += 1700; // overlapping slices: known and new templates in every round
        let feeder = std::thread::spawn(move || {
            for chunk in feed.chunks(50) {
                let mut s = chunk.join("\n");
                s.push('\n');
                if stdin.write_all(s.as_bytes()).is_err() {
                    return; // killed
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let kill_after = 1 + rng.next(2500) as usize;
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let mut seen = 0usize;
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen < kill_after && Instant::now() < deadline {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
            emitted_all.insert(v["template_id"].as_u64().unwrap());
            seen += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let _ = feeder.join();
        check_store(&state, &emitted_all, round);
        let inspect = Command::new(env!("CARGO_BIN_EXE_turbolog")).args(["inspect", "--state"]).arg(&state).output().unwrap();
        assert_eq!(inspect.status.code(), Some(0), "round {round}: {}", String::from_utf8_lossy(&inspect.stdout));
    }
    // a clean restart seals the leftovers and still knows every template
    let scan = Command::new(env!("CARGO_BIN_EXE_turbolog"))
        .args(["scan", "--format", "jsonl", "--state"])
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = scan.wait_with_output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    check_store(&state, &emitted_all, iterations);
    let snap = turbolog::store::templates_file::load(&state).unwrap().expect("templates.tls after a clean exit");
    let saved: HashSet<u64> = snap.templates.iter().map(|t| t.id as u64).collect();
    let lost: Vec<_> = emitted_all.iter().filter(|id| !saved.contains(id)).collect();
    let max = *emitted_all.iter().max().unwrap();
    assert!(lost.is_empty(), "{} templates restored, ids up to {max} were issued; written out but not restored: {lost:?}; stderr: {}", snap.templates.len(), String::from_utf8_lossy(&out.stderr));
}

/// Templates a killed run left only in its WAL come back at the next start; if that run seals
/// a window before any record is counted, they must reach `templates.tls` then, since the seal
/// moves the WAL into a chunk, which keeps vectors only.
#[test]
fn templates_replayed_from_the_wal_survive_a_seal_with_no_record() {
    let lines = real_lines();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let filter = |window: &str| {
        Command::new(env!("CARGO_BIN_EXE_turbolog"))
            .args(["filter", "--window", window, "--state"])
            .arg(&state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // 0: a clean run, so templates.tls exists
    let mut first = filter("0");
    let text: String = lines[..500].iter().map(|l| format!("{l}\n")).collect();
    first.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    assert!(first.wait_with_output().unwrap().status.success());
    // 1: learn, never seal, killed once every record is out (its templates are in the WAL only)
    let mut child = filter("0");
    let mut emitted = BTreeSet::new();
    {
        let mut stdin = child.stdin.take().unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let text: String = lines[500..3000].iter().map(|l| format!("{l}\n")).collect();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
            stdin // kept open: the process must not reach its end-of-input seal
        });
        let mut line = String::new();
        for _ in 500..3000 {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0);
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            emitted.insert(v["template_id"].as_u64().unwrap());
        }
        child.kill().unwrap();
        child.wait().unwrap();
        drop(feeder.join());
    }
    // 2: the window (50 ms) is over when the first line comes, and that line is no record (an
    // empty one): the seal runs with no record counted since the start, then a kill
    let mut child = filter("0.05");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"\n").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    // 3: every template written out in 1 is known
    let out = Command::new(env!("CARGO_BIN_EXE_turbolog")).args(["scan", "--format", "jsonl", "--state"]).arg(&state).stdin(Stdio::null()).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    let snap = turbolog::store::templates_file::load(&state).unwrap().expect("templates.tls after a clean exit");
    let saved: HashSet<u64> = snap.templates.iter().map(|t| t.id as u64).collect();
    let lost: Vec<_> = emitted.iter().filter(|id| !saved.contains(id)).collect();
    assert!(lost.is_empty(), "{} of {} templates written out were lost: {lost:?}", lost.len(), emitted.len());
}
