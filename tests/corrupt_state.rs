//! A corrupt state file of any kind is detected, moved aside with a clear line, and the rest of
//! the state is used: every file kind (templates.tls, chunk, WAL) × every corruption (truncated,
//! bit-flipped, wrong kind, zero-filled, huge length fields), through the real CLI. The files
//! under `fuzz/regressions/` (what fuzzing found, and its seeds) are opened the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

use turbolog::store::{Store, StoreOptions};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_turbolog"))
}

fn loghub(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/datasets/loghub/{name}/{name}_2k.log"));
    assert!(p.exists(), "{} is missing: tests need ../shared beside the repository", p.display());
    p
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Templates,
    Chunk,
    Wal,
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Truncated,
    BitFlipped,
    WrongKind,
    ZeroFilled,
    HugeLength,
}

/// A state directory as a crash leaves it: learned twice (templates.tls, its previous copy,
/// chunks), then a WAL shard with templates that never reached a seal.
fn make_state(dir: &Path) {
    for _ in 0..2 {
        let out = bin().args(["learn", "--state"]).arg(dir).arg(loghub("OpenSSH")).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (store, _) = Store::open(dir, 256, StoreOptions::default()).unwrap();
    for id in 1000..1010u64 {
        store.append(id, &format!("template recovered from the WAL number {id}"), &[0.0625; 256]).unwrap();
    }
}

fn file_of(dir: &Path, kind: Kind) -> PathBuf {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let want = |p: &PathBuf| {
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        match kind {
            Kind::Templates => n == "templates.tls",
            Kind::Chunk => n.starts_with("chunk-") && n.ends_with(".tvim"),
            Kind::Wal => n.starts_with("wal-") && n.ends_with(".bin"),
        }
    };
    names.into_iter().find(want).unwrap_or_else(|| panic!("no {kind:?} file in {}", dir.display()))
}

fn damage(path: &Path, how: Damage, other: &[u8]) {
    let mut b = std::fs::read(path).unwrap();
    match how {
        Damage::Truncated => b.truncate(b.len() / 2),
        Damage::BitFlipped => {
            let at = b.len() / 2;
            b[at] ^= 0x08;
        }
        Damage::WrongKind => b = other.to_vec(),
        Damage::ZeroFilled => b.iter_mut().for_each(|x| *x = 0),
        Damage::HugeLength => {
            // the first length field of each format: body length, record count, text length
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let (at, width) = if name == "templates.tls" {
                (8, 8)
            } else if name.ends_with(".tvim") {
                (16, 8)
            } else {
                (10 + 8, 4)
            };
            b[at..at + width].iter_mut().for_each(|x| *x = 0xff);
        }
    }
    std::fs::write(path, b).unwrap();
}

/// Templates a learned scan of OpenSSH knows: few anomalies when the state was used.
fn anomalies_on_openssh(dir: &Path) -> (usize, String) {
    let out = bin().args(["scan", "--format", "jsonl", "--state"]).arg(dir).arg(loghub("OpenSSH")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(matches!(out.status.code(), Some(0 | 1)), "exit {:?}: {stderr}", out.status.code());
    let rows = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("\"anomaly\":true")).count();
    (rows, stderr)
}

#[test]
fn every_kind_of_corruption_is_moved_aside_and_the_rest_used() {
    let fresh = {
        let dir = tempfile::tempdir().unwrap();
        anomalies_on_openssh(&dir.path().join("empty")).0
    };
    let reference = tempfile::tempdir().unwrap();
    make_state(reference.path());
    let bytes_of = |k| std::fs::read(file_of(reference.path(), k)).unwrap();
    let (templates, chunk, wal) = (bytes_of(Kind::Templates), bytes_of(Kind::Chunk), bytes_of(Kind::Wal));
    for kind in [Kind::Templates, Kind::Chunk, Kind::Wal] {
        for how in [Damage::Truncated, Damage::BitFlipped, Damage::WrongKind, Damage::ZeroFilled, Damage::HugeLength] {
            let dir = tempfile::tempdir().unwrap();
            make_state(dir.path());
            let victim = file_of(dir.path(), kind);
            let name = victim.file_name().unwrap().to_string_lossy().to_string();
            let other: &[u8] = match kind {
                Kind::Templates => &wal,
                Kind::Chunk => &templates,
                Kind::Wal => &chunk,
            };
            damage(&victim, how, other);
            let case = format!("{kind:?} {how:?} ({name})");
            let (anomalies, stderr) = anomalies_on_openssh(dir.path());
            assert!(stderr.contains(&name), "{case}: the warning names the file: {stderr}");
            assert!(
                stderr.contains("corrupt") || stderr.contains("damaged") || stderr.contains("skipped"),
                "{case}: the warning says what is wrong: {stderr}"
            );
            // what was learned is still used: far fewer anomalies than a fresh engine
            assert!(anomalies * 3 < fresh, "{case}: {anomalies} anomalies with the state, {fresh} without: {stderr}");
            let aside: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".corrupt"))
                .collect();
            let torn_tail = kind == Kind::Wal && matches!(how, Damage::Truncated);
            assert!(torn_tail || !aside.is_empty(), "{case}: the damaged file is moved aside (or copied), found {aside:?}");
            // the next start is clean: nothing corrupt is left in place
            let (_, again) = anomalies_on_openssh(dir.path());
            assert!(!again.contains("corrupt") && !again.contains("damaged"), "{case}: second start: {again}");
            let inspect = bin().args(["inspect", "--state"]).arg(dir.path()).output().unwrap();
            assert!(matches!(inspect.status.code(), Some(0 | 1)), "{case}: inspect: {inspect:?}");
        }
    }
}

/// What fuzzing found and its seeds: each file is put in place as the file kind its folder
/// names, and a state directory holding it must open (used or moved aside), never crash.
#[test]
fn fuzz_regressions_open_cleanly() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut seen = 0;
    for (folder, name) in [("templates_file", "templates.tls"), ("chunk", "chunk-0000000000000001.tvim"), ("wal", "wal-0.bin")] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else { continue };
        for e in entries {
            let path = e.unwrap().path();
            let dir = tempfile::tempdir().unwrap();
            std::fs::copy(&path, dir.path().join(name)).unwrap();
            let out = bin().args(["scan", "--format", "jsonl", "--state"]).arg(dir.path()).arg(loghub("Apache")).output().unwrap();
            let code = out.status.code();
            let stderr = String::from_utf8_lossy(&out.stderr);
            // 2 only for a clear refusal (another embedder's file), never a crash
            assert!(matches!(code, Some(0 | 1)) || (code == Some(2) && stderr.contains("embedder")), "{}: {code:?} {stderr}", path.display());
            seen += 1;
        }
    }
    eprintln!("{seen} fuzz regression files opened");
}
