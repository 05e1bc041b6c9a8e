//! Engine throughput on real lines: the 13 loghub systems repeated to ≥ 1 M lines.
//! Prints lines/s for a cold pass (templates being discovered) and a warm pass (known
//! templates, the steady state of a pipeline). Run: `cargo bench --bench engine`.

use std::time::Instant;

use turbolog::{Engine, EngineConfig};

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/loghub");
    let mut lines: Vec<String> = Vec::new();
    let mut dirs: Vec<_> = match std::fs::read_dir(&root) {
        Ok(d) => d.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()).collect(),
        Err(e) => {
            eprintln!("SKIPPED: cannot read {} ({e}); the benchmark needs ../shared/datasets beside the repo", root.display());
            return;
        }
    };
    dirs.sort();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(dir.join(format!("{name}_2k.log"))).expect("loghub file");
        let text = String::from_utf8_lossy(&bytes);
        lines.extend(text.lines().map(str::to_string));
    }
    let target = std::env::var("TURBOLOG_BENCH_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000usize);
    let base = lines.len();
    // Unique lines, each seen for the first time by a fresh engine: the line cache only helps
    // where a line repeats an earlier one up to its digits (82% of these).
    let mut unique_best = f64::MAX;
    let mut hits = 0;
    for _ in 0..5 {
        let mut e = Engine::new(EngineConfig::default());
        let t = Instant::now();
        for l in &lines {
            e.process_line(l);
        }
        unique_best = unique_best.min(t.elapsed().as_secs_f64());
        hits = e.line_cache_hits();
    }
    let mut i = 0;
    while lines.len() < target {
        lines.push(lines[i % base].clone());
        i += 1;
    }
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut engine = Engine::new(EngineConfig::default());
    let t = Instant::now();
    let mut anomalies = 0u64;
    for l in &lines {
        anomalies += engine.process_line(l).anomaly as u64;
    }
    let cold = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for l in &lines {
        anomalies += engine.process_line(l).anomaly as u64;
    }
    let warm = t.elapsed().as_secs_f64();
    let n = lines.len() as f64;
    println!("engine benchmark, 1 thread");
    println!(
        "  {base} unique loghub lines, first sight (fresh engine, best of 5): {:>10.0} lines/s  {:>6.0} ns/line",
        base as f64 / unique_best,
        unique_best * 1e9 / base as f64
    );
    println!(
        "  line cache on those unique lines: {:.1}% of lines differed from an earlier one only in digits",
        100.0 * hits as f64 / base as f64
    );
    println!("  {} lines ({:.1} MB): the {} systems repeated", lines.len(), bytes as f64 / 1e6, dirs.len());
    println!("  repeated, first pass ({} templates):    {:>10.0} lines/s  {:>6.0} ns/line", engine.template_count(), n / cold, cold * 1e9 / n);
    println!("  repeated, second pass:                 {:>10.0} lines/s  {:>6.0} ns/line", n / warm, warm * 1e9 / n);
    println!("  ({anomalies} anomalies flagged over both passes)");
}
