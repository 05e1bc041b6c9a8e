//! The model embedder: load time, templates embedded per second (one at a time, as the engine
//! does, and in length-bucketed batches), and peak RSS with the model, on the 755 templates of
//! the 13 loghub systems. Needs the model (`scripts/fetch-model.sh`, or TURBOLOG_MODEL=DIR).
//! Run pinned to one core for per-core figures: `taskset -c 0 cargo bench --bench embed`.

use std::path::PathBuf;
use std::time::Instant;

use turbolog::embed::model::{self, DIM};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts the peak (VmHWM) again from the current RSS (Linux 4.0 and later).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Templates per second one at a time (with p50 and p99 ms each) and batched, plans warm.
fn rates(m: &model::Model, refs: &[&str], out: &mut [f32], mib: u64) -> (f64, f64, f64, f64) {
    // warm: every plan shape the texts need
    m.embed_within(refs, out, mib).unwrap();
    for t in refs {
        m.embed_within(&[t], &mut out[..DIM], mib).unwrap();
    }
    let rounds = 3;
    let t = Instant::now();
    let mut delays = Vec::new();
    for _ in 0..rounds {
        for x in refs {
            let s = Instant::now();
            m.embed_within(&[x], &mut out[..DIM], mib).unwrap();
            delays.push(s.elapsed().as_secs_f64() * 1e3);
        }
    }
    let single = (rounds * refs.len()) as f64 / t.elapsed().as_secs_f64();
    delays.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| delays[((delays.len() - 1) as f64 * p) as usize];
    let t = Instant::now();
    for _ in 0..rounds {
        m.embed_within(refs, out, mib).unwrap();
    }
    let batched = (rounds * refs.len()) as f64 / t.elapsed().as_secs_f64();
    (single, batched, q(0.5), q(0.99))
}

fn templates() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/loghub");
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    for d in dirs {
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        let Ok(csv) = std::fs::read_to_string(d.join(format!("{name}_2k.log_templates.csv"))) else { continue };
        for l in csv.lines().skip(1) {
            if let Some((_, t)) = l.split_once(',') {
                out.push(t.trim_matches('"').replace("\"\"", "\""));
            }
        }
    }
    out
}

fn main() {
    let dir = std::env::var_os("TURBOLOG_MODEL").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/model"));
    if !dir.join("model.onnx").exists() {
        println!("no model in {} (run scripts/fetch-model.sh): nothing measured", dir.display());
        return;
    }
    let texts = templates();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    println!("rss before the model: {:.0} MiB", peak_rss_mib());
    let t = Instant::now();
    let m = model::load(&dir).unwrap();
    println!("model load: {:.3} s (parse, type, fold; plans are built on first use)", t.elapsed().as_secs_f64());
    let mut out = vec![0f32; texts.len() * DIM];
    println!("{} templates (mean {:.1} tokens):", refs.len(), refs.iter().map(|t| { let mut ids = Vec::new(); m.token_ids(t, &mut ids); ids.len() }).sum::<usize>() as f64 / refs.len() as f64);
    // filter, serve and the plugin: embedding off the record path, within model_memory
    let budget = 160;
    let (single, batched, p50, p99) = rates(&m, &refs, &mut out, budget);
    let bounded = out.clone();
    println!("  model_memory {budget} MiB (filter, serve, the plugin): {} plan, for every shape: {}", m.plans(), m.has_plan_for_every_shape());
    println!("    one at a time: {single:.0} templates/s (p50 {p50:.1} ms, p99 {p99:.1} ms each)");
    println!("    batched:       {batched:.0} templates/s");
    println!("    peak RSS from the start (the model's load included): {:.0} MiB   (bound {budget})", peak_rss_mib());
    // scan and learn: a fixed plan per shape
    // the plan for every shape dropped: what scan and learn hold
    m.drop_idle_plans(std::time::Duration::ZERO);
    reset_peak_rss();
    let (single, batched, p50, p99) = rates(&m, &refs, &mut out, 0);
    println!("  no bound (scan, learn: a fixed plan per shape, {} plans):", m.plans());
    println!("    one at a time: {single:.0} templates/s (p50 {p50:.1} ms, p99 {p99:.1} ms each)");
    println!("    batched:       {batched:.0} templates/s   (target >= 400 per core)");
    let lowest = (0..refs.len()).map(|i| turbolog::embed::cosine(&bounded[i * DIM..(i + 1) * DIM], &out[i * DIM..(i + 1) * DIM])).fold(1.0f32, f32::min);
    println!("  lowest cosine between the two plans' vectors over the {} templates: {lowest:.7}", refs.len());
    // the ceiling: rows with no padding at all (each text exactly a bucket's length), eight at
    // a time — what the model costs per token on this core, whatever the batching around it
    let mean = refs.iter().map(|t| { let mut ids = Vec::new(); m.token_ids(t, &mut ids); ids.len() }).sum::<usize>() as f64 / refs.len() as f64;
    let mut best = 0f64;
    for seq in [16usize, 32, 64] {
        let text = vec!["disk"; seq - 2].join(" ");
        let full: Vec<&str> = vec![text.as_str(); 8];
        let mut out8 = vec![0f32; 8 * DIM];
        m.embed_batch(&full, &mut out8).unwrap();
        let runs = (2048 / seq).max(8);
        let t = Instant::now();
        for _ in 0..runs {
            m.embed_batch(&full, &mut out8).unwrap();
        }
        let tokens = (runs * 8 * seq) as f64 / t.elapsed().as_secs_f64();
        best = best.max(tokens);
        println!("  no padding, 8 rows of {seq:>2} tokens: {tokens:>6.0} tokens/s");
    }
    println!("  ceiling at the mean {mean:.1} tokens a template (no padding, nothing but the model): {:.0} templates/s", best / mean);
    println!("peak RSS with the model and its {} plans (since the bound was lifted): {:.0} MiB   (target <= 150)", m.plans(), peak_rss_mib());
    m.drop_idle_plans(std::time::Duration::ZERO);
    println!("RSS between bursts (plans dropped after 30 s idle in filter, serve and the plugin): {:.0} MiB", rss_mib());
}
