//! The plugin's record path alone (no Fluent Bit): a real Fluent Bit buffer of 1,999 OpenSSH
//! records tagged again and again by a warm engine (known templates), into the malloc-backed
//! buffer a host takes. Prints ns per record for each field policy.
//! Run: `cargo bench --bench records`.

use std::time::Instant;

use turbolog::pipeline::config::Settings;
use turbolog::host::out_buf::MallocBuf;
use turbolog::codec::fluent_bit::Tagger;
use turbolog::Engine;

fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/fluent-bit/tail_openssh.msgpack");
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("SKIPPED: {} ({e}); the benchmark needs ../shared beside the repo", path.display());
            return;
        }
    };
    println!("record path, 1 thread, warm engine: tail_openssh.msgpack ({} bytes) tagged 2000 times", data.len());
    for policy in ["lean", "minimal", "all"] {
        let settings = Settings::from_pairs([("fields", policy)]).unwrap();
        let options = settings.event_options();
        let mut engine = Engine::new(settings.engine_config());
        let mut tagger = Tagger::default();
        let mut out = MallocBuf::default();
        let mut records = 0u64;
        let mut bytes = 0usize;
        for _ in 0..20 {
            tagger.tag_chunk(&data, &mut engine, &options, &mut out).unwrap(); // warm-up: templates known
        }
        let (hits_before, records_before) = (engine.line_cache_hits(), engine.records());
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..400 {
                let stats = tagger.tag_chunk(&data, &mut engine, &options, &mut out).unwrap();
                records += stats.records;
                bytes = out.len();
            }
            best = best.min(t.elapsed().as_secs_f64() / (400.0 * 1999.0));
        }
        std::hint::black_box(records);
        let hits = (engine.line_cache_hits() - hits_before) as f64 / (engine.records() - records_before).max(1) as f64;
        println!(
            "  fields {policy:<8} {:>6.1} ns/record  output {:>4.0} bytes/record (input {:.0})  line cache hits {:.1}%",
            best * 1e9,
            bytes as f64 / 1999.0,
            data.len() as f64 / 1999.0,
            hits * 100.0
        );
    }
}
