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

/// Runs `f` on every regression input of `target`, naming each one first (a panic then says which).
fn replay(target: &str, mut f: impl FnMut(&[u8])) {
    for (p, data) in inputs(target) {
        eprintln!("{}", p.display());
        f(&data);
    }
}

#[test]
fn line_path() {
    replay("line", fuzz_harness::line);
}

#[test]
fn ndjson_path() {
    replay("ndjson", fuzz_harness::ndjson);
}

#[test]
fn msgpack_record_path() {
    replay("records", fuzz_harness::records);
}

#[test]
fn state_files() {
    let scratch = tempfile::tempdir().unwrap();
    replay("wal", fuzz_harness::wal_file);
    replay("chunk", |data| fuzz_harness::chunk_file(data, scratch.path()));
    replay("templates_file", fuzz_harness::templates_file);
}
