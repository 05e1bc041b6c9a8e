//! What value baselines cost per record on known templates, with value learning and judging off
//! and on side by side: the 13 loghub systems and the realworld access and logfmt logs learned
//! (`learn_line`), then scanned frozen. Three passes:
//! - steady state: the same lines again; the line cache takes a line that differs from an earlier
//!   one only in digits, and values are not read again (their shapes abstract digits too);
//! - full path: every record through header, tokens, template and values (`process_uncached`):
//!   what a line with a new shape costs;
//! - steady state again with both engines still learning (as `serve` and `filter --state` run);
//! - unlearned halves: each file's first half learned, its second half scanned by a fresh engine
//!   (a cold line cache, as after a restart): the mix a deployment sees.
//!
//! Times are the bench thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not the wall clock: on a
//! machine shared with other builds the wall clock counts their turns too.
//!
//! Run: `cargo bench --bench values`.

use std::time::Duration;

use turbolog::{Engine, EngineConfig};

fn lines() -> Option<Vec<String>> {
    Some(files()?.concat())
}

/// The lines of each file.
fn files() -> Option<Vec<Vec<String>>> {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    let mut lines = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(shared.join("loghub")).ok()?.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for dir in &dirs {
        let name = dir.file_name()?.to_string_lossy().to_string();
        let bytes = std::fs::read(dir.join(format!("{name}_2k.log"))).ok()?;
        lines.push(String::from_utf8_lossy(&bytes).lines().map(str::to_string).collect());
    }
    for d in ["apache-access", "nginx-access", "traefik-access", "haproxy", "logfmt"] {
        for e in std::fs::read_dir(shared.join("realworld").join(d)).ok()?.flatten() {
            if e.path().extension().is_some_and(|x| x != "json") {
                lines.push(std::fs::read_to_string(e.path()).unwrap_or_default().lines().map(str::to_string).collect());
            }
        }
    }
    Some(lines)
}

/// This thread's CPU time so far.
fn cpu() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// ns per record over `lines`, and the records flagged.
fn pass(lines: &[String], e: &mut Engine, full_path: bool) -> (f64, u64) {
    let mut flagged = 0u64;
    let t = cpu();
    for l in lines {
        let v = if full_path { e.process_uncached(l) } else { e.process_line(l) };
        flagged += v.anomaly as u64;
    }
    ((cpu() - t).as_nanos() as f64 / lines.len() as f64, flagged)
}

/// The best of seven passes each, off and on taking turns (the machine's load drifts).
fn compare(lines: &[String], off: &mut Engine, on: &mut Engine, full_path: bool) -> [(f64, u64); 2] {
    let mut best = [(f64::MAX, 0), (f64::MAX, 0)];
    for _ in 0..7 {
        for (k, e) in [&mut *off, &mut *on].into_iter().enumerate() {
            let (ns, flagged) = pass(lines, e, full_path);
            best[k] = (best[k].0.min(ns), flagged);
        }
    }
    best
}

/// Lines not learned, of systems that were: each file's first half learned, its second half
/// scanned once by a fresh frozen engine (the line cache starts empty, as after a restart). The
/// best of 25 (one pass is short: ~15 ms), off and on taking turns; and the share of records that
/// took the full path.
/// Also the median of the 25 paired differences (on minus off, measured one after the other):
/// steadier than the difference of the bests when the machine's load comes in bursts.
fn fresh(files: &[Vec<String>]) -> ([(f64, f64, u64); 2], f64) {
    let mut best = [(f64::MAX, 0.0, 0), (f64::MAX, 0.0, 0)];
    let scanned: usize = files.iter().map(|f| f.len() - f.len() / 2).sum();
    let mut diffs = Vec::new();
    for _ in 0..25 {
        let mut pair = [0.0; 2];
        for (k, no_values) in [true, false].into_iter().enumerate() {
            let mut e = Engine::new(EngineConfig { no_values, ..EngineConfig::default() });
            for f in files {
                for l in &f[..f.len() / 2] {
                    e.learn_line(l);
                }
            }
            e.set_learning(false);
            let mut flagged = 0;
            let t = cpu();
            for f in files {
                for l in &f[f.len() / 2..] {
                    flagged += std::hint::black_box(e.process_line(l)).anomaly as u64;
                }
            }
            let ns = (cpu() - t).as_nanos() as f64 / scanned as f64;
            let full = 1.0 - e.line_cache_hits() as f64 / scanned as f64;
            best[k] = (best[k].0.min(ns), full, flagged);
            pair[k] = ns;
        }
        diffs.push(pair[1] - pair[0]);
    }
    diffs.sort_by(f64::total_cmp);
    (best, diffs[diffs.len() / 2])
}

fn main() {
    let Some(base) = lines() else {
        eprintln!("SKIPPED: the benchmark needs ../shared/datasets beside the repo");
        return;
    };
    let target = std::env::var("TURBOLOG_BENCH_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(300_000usize);
    let lines: Vec<String> = base.iter().cycle().take(target.max(base.len())).cloned().collect();
    let engine = |no_values: bool| {
        let mut e = Engine::new(EngineConfig { no_values, ..EngineConfig::default() });
        for l in &base {
            e.learn_line(l);
        }
        e.set_learning(false);
        e
    };
    let (mut off, mut on) = (engine(true), engine(false));
    println!("{} records ({} distinct lines) on known templates; {} value positions learned", lines.len(), base.len(), on.value_positions());
    for (name, full) in [("steady state (line cache)", false), ("full path, every record", true)] {
        let [(a, flagged_off), (b, flagged_on)] = compare(&lines, &mut off, &mut on, full);
        println!("{name:28} values off {a:7.1} ns/record   on {b:7.1} ns/record   cost {:+6.1} ns/record", b - a);
        println!("{:28} records flagged: {flagged_off} off, {flagged_on} on", "");
    }
    // still learning after the baseline (`serve`, `filter --state`): values and shares are learned too
    off.set_learning(true);
    on.set_learning(true);
    let hits = [off.line_cache_hits(), on.line_cache_hits()];
    let [(a, flagged_off), (b, flagged_on)] = compare(&lines, &mut off, &mut on, false);
    println!("{:28} values off {a:7.1} ns/record   on {b:7.1} ns/record   cost {:+6.1} ns/record", "steady state, still learning", b - a);
    let full = |e: &Engine, before: u64| 100.0 - 100.0 * (e.line_cache_hits() - before) as f64 / (7 * lines.len()) as f64;
    println!("{:28} records flagged: {flagged_off} off, {flagged_on} on; {:.1}% off, {:.1}% on took the full path", "", full(&off, hits[0]), full(&on, hits[1]));
    let ([(a, full_off, flagged_off), (b, full_on, flagged_on)], median) = fresh(&files().unwrap_or_default());
    println!("{:28} values off {a:7.1} ns/record   on {b:7.1} ns/record   cost {:+6.1} ns/record", "unlearned halves, cold cache", b - a);
    println!("{:28} median of 25 paired differences {median:+6.1} ns/record", "");
    println!("{:28} records flagged: {flagged_off} off, {flagged_on} on", "");
    println!("{:28} {:.0}% (off), {:.0}% (on) of records took the full path", "", full_off * 100.0, full_on * 100.0);
}
