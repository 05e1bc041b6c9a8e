//! The reduce step's own cost: `Reducer::pass` over the verdicts of HDFS_dev (111 349 records,
//! scored once by a fresh engine), replayed many times with a window end every 100 000 records,
//! under an allocation counter. Then the plugin's record path (a real Fluent Bit buffer through
//! the pipeline) with `reduce on` against off. Prints ns per record; the target is ≤ 20 ns for
//! the step and no allocation per record.
//! Run: `cargo bench --bench reduce`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use turbolog::codec::fluent_bit::Tagger;
use turbolog::host::out_buf::MallocBuf;
use turbolog::pipeline::reduce::{ReduceConfig, Reducer};
use turbolog::pipeline::{Pipeline, Settings};
use turbolog::Engine;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn quiet(_: turbolog::pipeline::LogLevel, _: &str) {}

fn main() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let Ok(text) = std::fs::read_to_string(shared.join("datasets/hdfs/HDFS_dev.log")) else {
        eprintln!("SKIPPED: ../shared/datasets/hdfs/HDFS_dev.log is missing; the benchmark needs ../shared beside the repo");
        return;
    };
    let mut engine = Engine::new(Settings::default().engine_config());
    let verdicts: Vec<(u32, bool)> = text
        .lines()
        .map(|l| {
            let v = engine.process_bytes_with(l.as_bytes(), None);
            (v.template_id, v.anomaly)
        })
        .collect();
    let n = verdicts.len();
    let mut reducer = Reducer::new(ReduceConfig::default());
    let mut passed = 0u64;
    let mut since_window = 0usize;
    let mut replay = |reducer: &mut Reducer, passed: &mut u64| {
        for &(id, anomaly) in &verdicts {
            *passed += reducer.pass(std::hint::black_box(id), std::hint::black_box(anomaly), 0) as u64;
            since_window += 1;
            if since_window == 100_000 {
                since_window = 0;
                std::hint::black_box(reducer.end_window(0.0).summaries.len());
            }
        }
    };
    replay(&mut reducer, &mut passed); // warm: the table holds every template
    let rounds = 40;
    let mut best = f64::MAX;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..rounds {
            replay(&mut reducer, &mut passed);
        }
        best = best.min(t.elapsed().as_secs_f64() / (rounds * n) as f64);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    std::hint::black_box(passed);
    println!("reduce step (Reducer::pass), HDFS_dev verdicts ({n} records, {} templates) replayed {} times, window end every 100 000:", engine.template_count(), 5 * rounds);
    println!("  {:>6.2} ns/record, {allocations} allocations in {} records (target: <= 20 ns, none per record)", best * 1e9, 5 * rounds * n);

    // the plugin's record path with reduce on and off
    let Ok(data) = std::fs::read(shared.join("fixtures/fluent-bit/tail_openssh.msgpack")) else { return };
    println!("record path, 1 thread, warm pipeline: tail_openssh.msgpack ({} bytes, 1999 records) tagged 2000 times", data.len());
    for reduce in ["off", "on"] {
        let settings = Settings::from_pairs([("reduce", reduce), ("window", "0")]).unwrap();
        let options = settings.event_options();
        let (mut pipeline, _) = Pipeline::open(&settings, Box::new(turbolog::embed::HashEmbedder::default()), quiet).unwrap();
        let mut tagger = Tagger::default();
        let mut out = MallocBuf::default();
        for _ in 0..20 {
            tagger.tag_chunk(&data, &mut pipeline, &options, &mut out).unwrap();
        }
        let mut best = f64::MAX;
        let mut bytes = 0;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..400 {
                tagger.tag_chunk(&data, &mut pipeline, &options, &mut out).unwrap();
                bytes = out.len();
                if reduce == "on" {
                    std::hint::black_box(pipeline.end_reduce_window().map(|(w, _)| w.summaries.len()));
                }
            }
            best = best.min(t.elapsed().as_secs_f64() / (400.0 * 1999.0));
        }
        println!("  reduce {reduce:<3} {:>6.1} ns/record  output {:>6} bytes per buffer (input {})", best * 1e9, bytes, data.len());
    }
}
