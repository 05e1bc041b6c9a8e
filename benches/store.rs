//! Reopening a store of 1 M vectors: chunks are memory-mapped, never copied.
//! Prints the time to open (headers, footers, id index) and, separately, to verify every CRC.
//! Run: `cargo bench --bench store` (writes ~1 GiB to a temporary directory; set
//! TURBOLOG_BENCH_VECTORS and TURBOLOG_BENCH_DIM to change the size).

use std::time::Instant;

use turbolog::store::{chunk, Store, StoreOptions};

fn main() {
    let n: usize = std::env::var("TURBOLOG_BENCH_VECTORS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dim: usize = std::env::var("TURBOLOG_BENCH_DIM").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let dir = tempfile::tempdir().expect("temporary directory");
    let per_chunk = 250_000;
    let t = Instant::now();
    let mut seq = 1;
    let mut v = vec![0f32; dim];
    for start in (0..n).step_by(per_chunk) {
        let end = (start + per_chunk).min(n);
        let vectors: Vec<Vec<f32>> = (start..end)
            .map(|i| {
                for (j, x) in v.iter_mut().enumerate() {
                    *x = ((i * 31 + j) % 97) as f32 / 97.0;
                }
                v.clone()
            })
            .collect();
        let entries: Vec<(u64, &[f32])> = (start..end).zip(&vectors).map(|(i, v)| (i as u64, v.as_slice())).collect();
        chunk::write(&dir.path().join(format!("chunk-{seq:016}.tvim")), dim as u32, &entries, &[]).expect("write chunk");
        seq += 1;
    }
    let bytes: u64 = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum();
    println!("store benchmark: {n} vectors × {dim} dims in {} chunks, {:.0} MiB, written in {:.1} s", seq - 1, bytes as f64 / 1048576.0, t.elapsed().as_secs_f64());
    for (label, verify) in [("open (mmap, headers, id index), no CRC", false), ("open and verify every CRC", true)] {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let (store, rec) = Store::open(dir.path(), dim as u32, StoreOptions { verify, compact_at_chunks: usize::MAX, ..Default::default() }).expect("open");
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(rec.len(), n);
            let probe = store.with_vector(&rec, (n / 2) as u64, |v| v.map(|v| v[3]));
            assert!(probe.is_some());
            best = best.min(ms);
        }
        println!("  {label:<42} {best:>8.1} ms (best of 3; target < 100 ms without CRC)");
    }
}
