//! `serve`'s disk queue when the disk refuses writes: a full disk (RLIMIT_FSIZE on the serve
//! process: writes past it fail with EFBIG, SIGXFSZ ignored as a daemon would) and a read-only
//! queue directory (a read-only bind mount; root ignores file modes). In both, acknowledgements
//! stop (HTTP 503, Forward gets no ack and its reads pause), `/readyz` and stderr say why, and
//! once writes work again everything acknowledged arrives.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::serve::{free_port, http, http_full, Serve, Sink};

fn body(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("{{\"seq\":{i},\"message\":\"payment {i} settled for account {} after {} ms\"}}\n", i % 13, i % 97)).collect()
}

/// A Forward message of `lines` asking for an ack of `chunk`.
fn forward_message(lines: &[String], chunk: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    rmp::encode::write_array_len(&mut msg, 3).unwrap();
    rmp::encode::write_str(&mut msg, "pay.logs").unwrap();
    rmp::encode::write_bin(&mut msg, &common::chunk(lines, 1_795_515_600)).unwrap();
    rmp::encode::write_map_len(&mut msg, 1).unwrap();
    rmp::encode::write_str(&mut msg, "chunk").unwrap();
    rmp::encode::write_str(&mut msg, chunk).unwrap();
    msg
}

/// Posts 20-record batches until one is refused: the records acknowledged and the refusal.
fn post_until_refused(addr: &str, next: &mut usize) -> (u16, String, String) {
    for _ in 0..10_000 {
        let (s, head, b) = http_full(addr, "POST", "/", &[("content-type", "application/x-ndjson")], body(*next, 20).as_bytes());
        if s != 200 {
            return (s, head, b);
        }
        *next += 20;
    }
    panic!("the disk never refused");
}

/// The records of `seqs` all arrived at `sink` (at least once).
fn all_arrived(sink: &Sink, n: usize, secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got: std::collections::HashSet<u64> =
            sink.lines.lock().unwrap().iter().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["seq"].as_u64()).collect();
        let missing: Vec<usize> = (0..n).filter(|i| !got.contains(&(*i as u64))).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{} of {n} acknowledged records missing, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Forward client that sends one message and then waits; `ack` tells whether it came in time.
struct ForwardClient(TcpStream);

impl ForwardClient {
    fn send(addr: &str, msg: &[u8]) -> ForwardClient {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(msg).unwrap();
        ForwardClient(s)
    }

    fn ack(&mut self, within: Duration) -> Option<Vec<u8>> {
        self.0.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 128];
        match self.0.read(&mut b) {
            Ok(n) if n > 0 => Some(b[..n].to_vec()),
            _ => None,
        }
    }
}

fn ack_of(chunk: &str) -> Vec<u8> {
    let mut want = Vec::new();
    rmp::encode::write_map_len(&mut want, 1).unwrap();
    rmp::encode::write_str(&mut want, "ack").unwrap();
    rmp::encode::write_str(&mut want, chunk).unwrap();
    want
}

#[test]
fn a_full_disk_stops_acknowledgements_says_why_and_loses_nothing_acknowledged() {
    let q = tempfile::tempdir().unwrap();
    // the downstream is down at first: nothing is delivered, so nothing can be freed
    let down = free_port();
    let serve = Serve::start_with(
        &["--http", "127.0.0.1:0", "--forward", "127.0.0.1:0", "--queue-dir", q.path().to_str().unwrap(), "--queue-bytes", "1048576", "--to", &format!("tcp://{down}")],
        |cmd| {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let lim = libc::rlimit { rlim_cur: 64 << 10, rlim_max: libc::RLIM_INFINITY };
                    libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                    Ok(())
                });
            }
        },
    );
    let addr = serve.addr("http").to_string();
    let mut next = 0;
    let (status, head, why) = post_until_refused(&addr, &mut next);
    assert_eq!(status, 503, "{why}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    assert!(why.contains("disk queue cannot be written") && why.contains("File too large") && why.contains("free space"), "{why}");
    assert!(next >= 200, "the limit leaves room for a few hundred records: {next}");
    let (s, ready) = serve.get("/readyz");
    assert_eq!(s, 503);
    assert!(ready.contains("disk queue cannot be written"), "{ready}");
    // a Forward sender gets no ack while the disk refuses
    // larger than the refused batch, so it cannot fit in what the limit leaves
    let lines: Vec<String> = (0..200).map(|i| format!("forwarded record {i} while the disk is full")).collect();
    let mut fwd = ForwardClient::send(serve.addr("forward"), &forward_message(&lines, "ZnVsbA=="));
    assert_eq!(fwd.ack(Duration::from_millis(800)), None, "acknowledged while the disk refuses writes");
    // the downstream comes back: delivered segments go, the disk takes writes, acks resume
    let sink = Sink::on(TcpListener::bind(&down).unwrap(), None);
    assert_eq!(fwd.ack(Duration::from_secs(20)), Some(ack_of("ZnVsbA==")), "{}", serve.stderr.lock().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, _) = http(&addr, "POST", "/", &[("content-type", "application/x-ndjson")], body(next, 20).as_bytes());
        if s == 200 {
            next += 20;
            break;
        }
        assert!(Instant::now() < deadline, "acknowledgements did not resume: {}", serve.stderr.lock().unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    all_arrived(&sink, next, 20).unwrap_or_else(|e| panic!("{e}\n{}", serve.stderr.lock().unwrap()));
    assert_eq!(serve.get("/readyz").0, 200);
    let err = serve.stderr.lock().unwrap().clone();
    let said = err.lines().filter(|l| l.contains("disk queue cannot be written")).count();
    assert_eq!(said, 1, "said once on stderr, not per request:\n{err}");
    assert!(err.contains("works again"), "{err}");
    assert!(serve.metric("turbolog_requests_rejected_total{reason=\"disk_queue_failing\"}") >= 1.0);
}

#[test]
fn the_queue_bound_is_backpressure_not_loss() {
    let q = tempfile::tempdir().unwrap();
    let down = free_port();
    let serve = Serve::start(&["--http", "127.0.0.1:0", "--queue-dir", q.path().to_str().unwrap(), "--queue-bytes", "262144", "--to", &format!("tcp://{down}")]);
    let addr = serve.addr("http").to_string();
    let mut next = 0;
    let (status, _, why) = post_until_refused(&addr, &mut next);
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("disk queue is full") && why.contains("--queue-bytes 262144"), "{why}");
    assert!(serve.metric("turbolog_disk_queue_bytes") <= 262144.0);
    assert_eq!(serve.metric("turbolog_disk_queue_capacity_bytes"), 262144.0);
    let sink = Sink::on(TcpListener::bind(&down).unwrap(), None);
    all_arrived(&sink, next, 20).unwrap();
    let (s, _) = http(&addr, "POST", "/", &[("content-type", "application/x-ndjson")], body(next, 20).as_bytes());
    assert_eq!(s, 200);
}

/// A read-only bind mount of `dir` onto itself, undone on drop.
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn new(dir: &Path) -> Option<ReadOnly> {
        let ok = |args: &[&str]| Command::new("mount").args(args).arg(dir).arg(dir).status().map(|s| s.success()).unwrap_or(false);
        if !ok(&["--bind"]) {
            return None;
        }
        let guard = ReadOnly(dir.to_path_buf());
        let ro = Command::new("mount").args(["-o", "remount,bind,ro"]).arg(dir).status().map(|s| s.success()).unwrap_or(false);
        ro.then_some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_queue_dir_stops_acknowledgements_says_why_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("queue");
    std::fs::create_dir(&dir).unwrap();
    let Some(ro) = ReadOnly::new(&dir) else {
        eprintln!("\n*** SKIPPED: mount --bind is not permitted here: the read-only disk queue test did not run ***\n");
        return;
    };
    if std::fs::write(dir.join("probe"), b"x").is_ok() {
        drop(ro);
        eprintln!("\n*** SKIPPED: the bind mount did not become read-only: the read-only disk queue test did not run ***\n");
        return;
    }
    let sink = Sink::start(None);
    let serve = Serve::start(&["--http", "127.0.0.1:0", "--forward", "127.0.0.1:0", "--queue-dir", dir.to_str().unwrap(), "--to", &format!("tcp://{}", sink.addr)]);
    let addr = serve.addr("http").to_string();
    let (s, b) = http(&addr, "POST", "/", &[("content-type", "application/x-ndjson")], body(0, 20).as_bytes());
    assert_eq!(s, 503, "{b}");
    assert!(b.contains("Read-only file system") && b.contains("writable"), "{b}");
    let (s, ready) = serve.get("/readyz");
    assert_eq!(s, 503);
    assert!(ready.contains("Read-only file system"), "{ready}");
    let lines: Vec<String> = (0..3).map(|i| format!("forwarded record {i} while read-only")).collect();
    let mut fwd = ForwardClient::send(serve.addr("forward"), &forward_message(&lines, "cm8="));
    assert_eq!(fwd.ack(Duration::from_millis(800)), None, "acknowledged while the queue is read-only");
    assert!(sink.lines.lock().unwrap().is_empty(), "nothing was accepted, so nothing is delivered");
    drop(ro); // writable again
    assert_eq!(fwd.ack(Duration::from_secs(20)), Some(ack_of("cm8=")), "{}", serve.stderr.lock().unwrap());
    let (s, b) = http(&addr, "POST", "/", &[("content-type", "application/x-ndjson")], body(0, 20).as_bytes());
    assert_eq!(s, 200, "{b}");
    all_arrived(&sink, 20, 20).unwrap();
    assert_eq!(sink.wait_for(23, 20).len(), 23);
    assert_eq!(serve.get("/readyz").0, 200);
    let err = serve.stderr.lock().unwrap().clone();
    assert_eq!(err.lines().filter(|l| l.contains("disk queue cannot be written")).count(), 1, "{err}");
    assert!(err.contains("works again"), "{err}");
}

#[test]
fn tcp_records_once_read_survive_a_sigkill_and_come_first_in_order_after_the_restart() {
    let q = tempfile::tempdir().unwrap();
    let qd = q.path().to_str().unwrap();
    let down = free_port();
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--queue-dir", qd, "--to", &format!("tcp://{down}")]);
    let lines: Vec<String> = body(0, 500).lines().map(String::from).collect();
    common::serve::tcp_send(serve.addr("tcp"), &lines);
    let deadline = Instant::now() + Duration::from_secs(20);
    while serve.metric("turbolog_records_in_total{input=\"tcp\"}") < 500.0 {
        assert!(Instant::now() < deadline, "serve did not read the records: {}", serve.stderr.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(serve); // SIGKILL with the downstream down: all 500 only in the disk queue
    let sink = Sink::on(TcpListener::bind(&down).unwrap(), None);
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--queue-dir", qd, "--to", &format!("tcp://{down}")]);
    common::serve::tcp_send(serve.addr("tcp"), &body(500, 1).lines().map(String::from).collect::<Vec<_>>());
    let got = sink.wait_for(501, 20);
    let seqs: Vec<u64> = got.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..501).collect::<Vec<u64>>(), "the queued records first, in order, then the new one");
    assert_eq!(serve.metric("turbolog_replayed_records_total"), 500.0);
    // the downstream was down: none of them had been sent, so none is a redelivery
    assert_eq!(serve.metric("turbolog_redelivered_records_total"), 0.0);
    assert!(serve.stderr.lock().unwrap().contains("disk queue"), "{}", serve.stderr.lock().unwrap());
}
