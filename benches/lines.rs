//! The line stream `filter` and `serve` run, on plain lines (no event to join): its cost per
//! line with `--multiline auto` (the joiner looks at every line) against `--multiline off`, side
//! by side in one run, alternating, in CPU time of the measuring thread. Also a Java log with
//! stack traces, joined. Run: `cargo bench --bench lines`.

use turbolog::embed::HashEmbedder;
use turbolog::pipeline::log::log_stderr;
use turbolog::pipeline::{Joining, LineStream, Pipeline, Settings};

fn cpu_seconds() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec for the calling thread's clock
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// A warm stream (templates known), then CPU ns per line over `rounds` passes.
fn per_line(lines: &[String], joining: Option<Joining>, rounds: usize) -> f64 {
    let settings = Settings::default();
    let (pipeline, _) = Pipeline::open(&settings, Box::new(HashEmbedder::default()), log_stderr).expect("a pipeline without state");
    let mut stream = LineStream::new(pipeline, Vec::new(), &settings).expect("stream").join(joining);
    let mut out = String::with_capacity(1 << 16);
    for l in lines {
        out.clear();
        stream.line(l, &mut out);
    }
    let t = cpu_seconds();
    for _ in 0..rounds {
        for l in lines {
            out.clear();
            stream.line(l, &mut out);
        }
    }
    std::hint::black_box(&out);
    (cpu_seconds() - t) * 1e9 / (rounds * lines.len()) as f64
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    let mut lines: Vec<String> = Vec::new();
    for system in ["HDFS", "OpenSSH", "Apache", "Zookeeper", "Spark", "Hadoop"] {
        let p = root.join(format!("loghub/{system}/{system}_2k.log"));
        match std::fs::read_to_string(&p) {
            Ok(t) => lines.extend(t.lines().map(String::from)),
            Err(e) => {
                eprintln!("SKIPPED: {} ({e}); the benchmark needs ../shared beside the repo", p.display());
                return;
            }
        }
    }
    println!("line stream (filter/serve), 1 thread, warm, CPU time: {} plain loghub lines, 9 pairs alternating", lines.len());
    let (mut off, mut auto) = (f64::MAX, f64::MAX);
    let mut ratios = Vec::new();
    for _ in 0..9 {
        let o = per_line(&lines, None, 5);
        let a = per_line(&lines, Some(Joining::default()), 5);
        ratios.push(a / o);
        off = off.min(o);
        auto = auto.min(a);
    }
    ratios.sort_by(f64::total_cmp);
    println!("  --multiline off    {off:>7.1} ns/line (best)");
    println!("  --multiline auto   {auto:>7.1} ns/line (best, {:+.1}% against off)", (auto / off - 1.0) * 100.0);
    println!(
        "  auto against off, pair by pair: median {:+.1}% (range {:+.1}% .. {:+.1}%)",
        (ratios[4] - 1.0) * 100.0,
        (ratios[0] - 1.0) * 100.0,
        (ratios[8] - 1.0) * 100.0
    );
    let java = root.join("realworld/kafka/server-2.0.0.log");
    if let Ok(t) = std::fs::read_to_string(&java) {
        let lines: Vec<String> = t.lines().map(String::from).collect();
        let (mut off, mut auto) = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            off = off.min(per_line(&lines, None, 50));
            auto = auto.min(per_line(&lines, Some(Joining::default()), 50));
        }
        println!("  a Kafka broker log with traces ({} lines): off {off:.1} ns/line, auto {auto:.1} ns/line (events joined)", lines.len());
    }
}
