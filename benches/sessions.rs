//! Sessions: what tracking costs per record, and memory with many sessions open.
//! `cargo bench --bench sessions`. Figures, not assertions: machines are noisy.
//!
//! 1. The HDFS lines (session key `blk_-?[0-9]+`) through the engine alone and through the
//!    engine plus session tracking, interleaved, 15 pairs: the difference per record of the
//!    best of each, and the median of the 15 paired differences — as a
//!    user runs it (the default: closed when over as learned), by idleness alone as before
//!    issue 26 (`--session-close idle`: 1 d, 30 s) and with every session open to the end; and, in a run of its own, the peak of open
//!    sessions and of the bytes they hold.
//! 2. 1 000 000 sessions opened and left open (one record each): resident memory before and
//!    after, from /proc/self/status.

use std::time::Duration;

use turbolog::session::{SessionConfig, SessionKey, Tracker};
use turbolog::{Engine, EngineConfig};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// This thread's CPU time so far (other processes on a shared machine do not count their turns,
/// as they do on the wall clock).
fn cpu() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/hdfs/HDFS_dev.log");
    let text = std::fs::read_to_string(&path).expect("../shared/datasets/hdfs beside the repository");
    let lines: Vec<&str> = text.lines().collect();
    let key = SessionKey::pattern(r"blk_-?[0-9]+").unwrap();
    // as a user runs it (the default: closed when over as learned, a day of quiet the cap), by
    // idleness alone as before issue 26 (`--session-close idle`: a day, and 30 s, the old
    // default), and with every session open to the end (one batch, the most open)
    let configs = [
        ("default (closed when over as learned, cap 1 d)", SessionConfig::default()),
        ("--session-close idle --session-idle 1d", SessionConfig { idle_secs: Some(86_400), ..SessionConfig::idle() }),
        ("--session-close idle (30 s)", SessionConfig::idle()),
        ("all open to the end", SessionConfig { idle_secs: None, idle_records: 1 << 40, learned_close: false, ..SessionConfig::default() }),
    ];
    println!("sessions, {} HDFS lines, key blk_-?[0-9]+ (15 pairs, interleaved; the bench thread's CPU time)", lines.len());
    for (name, config) in configs {
        let (mut plain, mut tracked) = (f64::MAX, f64::MAX);
        let mut paired = Vec::new();
        for _ in 0..15 {
            let mut e = Engine::new(EngineConfig::default());
            let t = cpu();
            for l in &lines {
                std::hint::black_box(e.process_line(l));
            }
            let alone = (cpu() - t).as_secs_f64();
            plain = plain.min(alone);

            let mut e = Engine::new(EngineConfig::default());
            let mut tr = Tracker::new(config.clone(), Default::default());
            let mut closed = Vec::new();
            let t = cpu();
            for (i, l) in lines.iter().enumerate() {
                let v = e.process_line(l);
                tr.record(key.find(l), v.template_id, i as u64 + 1, turbolog::detect::time::of_line(l), &e);
                tr.take_closed(&mut closed);
            }
            tr.close_all(&e);
            let with = (cpu() - t).as_secs_f64();
            tracked = tracked.min(with);
            paired.push(with - alone);
        }
        paired.sort_by(f64::total_cmp);
        let median = paired[paired.len() / 2];
        // memory, in a run of its own (not timed): the most sessions held at once, open and
        // remembered for a continuation, and the bytes they held (read every 256 records)
        let mut e = Engine::new(EngineConfig::default());
        let mut tr = Tracker::new(config.clone(), Default::default());
        let mut closed = Vec::new();
        let (mut peak_open, mut peak_held, mut peak_bytes, mut anomalous) = (0, 0, 0, 0);
        for (i, l) in lines.iter().enumerate() {
            let v = e.process_line(l);
            tr.record(key.find(l), v.template_id, i as u64 + 1, turbolog::detect::time::of_line(l), &e);
            tr.take_closed(&mut closed);
            anomalous += closed.len();
            peak_open = peak_open.max(tr.open_sessions());
            peak_held = peak_held.max(tr.open_sessions() + tr.remembered_sessions());
            if i % 256 == 0 {
                peak_bytes = peak_bytes.max(tr.session_bytes());
            }
        }
        let open_at_end = tr.open_sessions();
        tr.close_all(&e);
        let n = lines.len() as f64;
        println!("  {name}:");
        println!("    engine alone:            {:>6.0} ns/record", plain / n * 1e9);
        println!("    engine + sessions:       {:>6.0} ns/record", tracked / n * 1e9);
        println!("    sessions cost:           {:>6.0} ns/record (finding the key, the record time, counters, judging at close)", (tracked - plain) / n * 1e9);
        println!("      median of 15 paired differences {:>4.0} ns/record", median / n * 1e9);
        println!("    peak open sessions:      {peak_open:>6} ({peak_held} with those remembered for a continuation; {open_at_end} open when the input ends)");
        println!("    peak session bytes:      {:>6.0} KiB (slots, index and spilled ids and counts; open and remembered)", peak_bytes as f64 / 1024.0);
        println!("    anomalous before the end: {anomalous:>5} of {} flagged", tr.total_anomalous);
    }
    let n = lines.len() as f64;
    let config = SessionConfig { idle_secs: None, idle_records: 1 << 40, learned_close: false, ..SessionConfig::default() };

    // the parts (all open to the end)
    let t = cpu();
    let mut found = 0;
    for l in &lines {
        found += key.find(l).is_some() as usize;
    }
    println!("    of which finding the key: {:>6.0} ns/record ({found} found)", (cpu() - t).as_secs_f64() / n * 1e9);
    let t = cpu();
    let mut timed = 0;
    for l in &lines {
        timed += turbolog::detect::time::of_line(l).is_some() as usize;
    }
    println!("    of which the record time: {:>6.0} ns/record ({timed} read)", (cpu() - t).as_secs_f64() / n * 1e9);
    let ids: Vec<Option<&str>> = lines.iter().map(|l| key.find(l)).collect();
    let e = Engine::new(EngineConfig::default());
    let mut tr = Tracker::new(config.clone(), Default::default());
    let t = cpu();
    for (i, id) in ids.iter().enumerate() {
        tr.record(*id, (i % 7) as u32, i as u64 + 1, None, &e);
    }
    let counting = (cpu() - t).as_secs_f64();
    let t = cpu();
    tr.close_all(&e);
    println!("    counting: {:>6.0} ns/record; judging {} sessions at the end: {:.1} ms", counting / n * 1e9, tr.total_closed, (cpu() - t).as_secs_f64() * 1e3);
    if std::env::var_os("TURBOLOG_BENCH_NO_RSS").is_some() {
        return;
    }
    let e = Engine::new(EngineConfig::default());
    let mut tr = Tracker::new(SessionConfig { idle_secs: None, idle_records: 1 << 40, learned_close: false, max_sessions: 2_000_000, ..SessionConfig::default() }, Default::default());
    let before = rss_kib();
    let mut id = String::new();
    for i in 0..1_000_000u64 {
        id.clear();
        use std::fmt::Write;
        let _ = write!(id, "req-{i:016x}");
        tr.record(Some(&id), 0, i + 1, None, &e);
    }
    let after = rss_kib();
    println!("  1 000 000 open sessions: {} open, resident memory +{} MiB ({} bytes per session)", tr.open_sessions(), (after - before) / 1024, (after - before) * 1024 / 1_000_000);
}
