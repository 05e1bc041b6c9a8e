//! Every input under `fuzz/regressions/` (what fuzzing found once fixed, and seeds), replayed on
//! stable through the same entry points the fuzz targets run (`turbolog::fuzz_harness`).

use std::path::PathBuf;

use turbolog::fuzz_harness;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no regression inputs under {}", dir.display());
    out
}

#[test]
fn line_path() {
    for (p, data) in inputs("line") {
        eprintln!("{}", p.display());
        fuzz_harness::line(&data);
    }
}

#[test]
fn ndjson_path() {
    for (p, data) in inputs("ndjson") {
        eprintln!("{}", p.display());
        fuzz_harness::ndjson(&data);
    }
}

#[test]
fn msgpack_record_path() {
    for (p, data) in inputs("records") {
        eprintln!("{}", p.display());
        fuzz_harness::records(&data);
    }
}

#[test]
fn state_files() {
    let scratch = tempfile::tempdir().unwrap();
    for (p, data) in inputs("wal") {
        eprintln!("{}", p.display());
        fuzz_harness::wal_file(&data);
    }
    for (p, data) in inputs("chunk") {
        eprintln!("{}", p.display());
        fuzz_harness::chunk_file(&data, scratch.path());
    }
    for (p, data) in inputs("templates_file") {
        eprintln!("{}", p.display());
        fuzz_harness::templates_file(&data);
    }
}
