//! Engine throughput on real lines: the 13 loghub systems repeated to ≥ 1 M lines.
//! Prints lines/s for a cold pass (templates being discovered) and a warm pass (known
//! templates, the steady state of a pipeline), then on two inputs made to defeat a template
//! miner: 1 M lines whose only difference is generated names (no digits), and 1 M lines of
//! random words. Run: `cargo bench --bench engine`.

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
    // No line repeats, every template known: a letters-only id on each line defeats the line
    // cache (it abstracts digits only), so each record takes the full path (header, tokens,
    // template match) — what a stream of unique lines costs once the templates are learned.
    let suffixed: Vec<String> = lines.iter().take(400_000).enumerate().map(|(i, l)| format!("{l} req={}", letters(i))).collect();
    // The same with a hex id (a trace id, 16 hex characters) on each line instead: no line
    // repeats either, but the line cache keys long hex runs by their shape.
    let hexed: Vec<String> = lines.iter().take(400_000).enumerate().map(|(i, l)| format!("{l} trace={:016x}", (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))).collect();
    let best_of_3 = |input: &[String]| {
        let mut best = f64::MAX;
        let mut hit_share = 0.0;
        for _ in 0..3 {
            let mut e = Engine::new(EngineConfig::default());
            for l in input.iter().take(base) {
                e.process_line(l);
            }
            let before = e.line_cache_hits();
            let t = Instant::now();
            for l in input {
                std::hint::black_box(e.process_line(l));
            }
            best = best.min(t.elapsed().as_secs_f64());
            hit_share = (e.line_cache_hits() - before) as f64 / input.len() as f64;
        }
        (best, hit_share)
    };
    let (full_path, letters_hits) = best_of_3(&suffixed);
    let (hex_path, hex_hits) = best_of_3(&hexed);
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
    println!(
        "  {} lines, none repeated (a letters id appended), templates known (best of 3): {:>10.0} lines/s  {:>6.0} ns/line  ({:.1}% line cache hits)",
        suffixed.len(),
        suffixed.len() as f64 / full_path,
        full_path * 1e9 / suffixed.len() as f64,
        letters_hits * 100.0
    );
    println!(
        "  {} lines, none repeated (a hex trace id appended), templates known (best of 3): {:>10.0} lines/s  {:>6.0} ns/line  ({:.1}% line cache hits)",
        hexed.len(),
        hexed.len() as f64 / hex_path,
        hex_path * 1e9 / hexed.len() as f64,
        hex_hits * 100.0
    );
    adversarial(target);
}

/// A small deterministic generator (xorshift64*): the inputs are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn word(&mut self, len: usize) -> String {
        (0..len).map(|_| (b'a' + self.below(26) as u8) as char).collect()
    }
}

/// Lines of the shape reported in the hardening issue, and lines of random words.
pub fn generated(kind: &str, n: usize) -> Vec<String> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    match kind {
        "names" => (0..n)
            .map(|_| format!("2026-11-24T10:00:00Z INFO session {} opened for client {}", r.word(10), r.word(10)))
            .collect(),
        _ => {
            let vocab: Vec<String> = (0..5000).map(|_| { let l = 3 + r.below(7) as usize; r.word(l) }).collect();
            (0..n)
                .map(|_| {
                    let k = 3 + r.below(10) as usize;
                    (0..k).map(|_| vocab[r.below(vocab.len() as u64) as usize].as_str()).collect::<Vec<_>>().join(" ")
                })
                .collect()
        }
    }
}

fn adversarial(n: usize) {
    println!("adversarial inputs, 1 thread, fresh engine each (max_templates {})", turbolog::detect::template::DEFAULT_MAX_TEMPLATES);
    for (kind, what) in [("names", "generated names, one shape"), ("words", "random words, no two alike")] {
        let lines = generated(kind, n);
        let mut e = Engine::new(EngineConfig::default());
        let t = Instant::now();
        for l in &lines {
            e.process_line(l);
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  {n} lines of {what:<28} {:>10.0} lines/s  {:>6.0} ns/line  {} templates, {} lines past the template limit",
            n as f64 / secs,
            secs * 1e9 / n as f64,
            e.template_count(),
            e.template_limit_hits()
        );
    }
}

/// `a`, `b`, … `z`, `ba`, …: an id without digits.
fn letters(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (i % 26) as u8);
        i /= 26;
        if i == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}
