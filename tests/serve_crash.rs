//! `serve --state` killed with SIGKILL at random, again and again, while senders post numbered
//! records over HTTP and Forward (each retrying until acknowledged) and a Forward receiver
//! downstream (acknowledging what it has recorded) is itself restarted at random: every record
//! a sender was told was accepted must arrive at least once. Duplicates are counted and printed.
//!
//! Kills: TURBOLOG_SERVE_CRASH_KILLS (default 4 here; `scripts/crash-test-serve.sh N`).

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::serve::{free_port, Serve};

/// A small deterministic generator (xorshift), seeded per run and printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Just enough msgpack to read what serve sends: values as a tree.
#[derive(Debug)]
enum V {
    Str(String),
    Arr(Vec<V>),
    Map(Vec<(V, V)>),
    Other,
}

struct Reader<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }
    fn be(&mut self, n: usize) -> Option<usize> {
        Some(self.take(n)?.iter().fold(0usize, |a, &x| (a << 8) | x as usize))
    }
    fn many(&mut self, n: usize, map: bool) -> Option<V> {
        if map {
            let mut m = Vec::new();
            for _ in 0..n {
                m.push((self.value()?, self.value()?));
            }
            Some(V::Map(m))
        } else {
            (0..n).map(|_| self.value()).collect::<Option<Vec<_>>>().map(V::Arr)
        }
    }
    /// `None` when the bytes end first (read more) or are not msgpack.
    fn value(&mut self) -> Option<V> {
        let m = self.take(1)?[0];
        let skip = |r: &mut Reader, n: usize| r.take(n).map(|_| V::Other);
        match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some(V::Other),
            0x80..=0x8f => self.many((m & 0x0f) as usize, true),
            0x90..=0x9f => self.many((m & 0x0f) as usize, false),
            0xa0..=0xbf => self.take((m & 0x1f) as usize).map(|s| V::Str(String::from_utf8_lossy(s).into_owned())),
            0xd9..=0xdb => {
                let n = self.be(1 << (m - 0xd9))?;
                self.take(n).map(|s| V::Str(String::from_utf8_lossy(s).into_owned()))
            }
            0xc4..=0xc6 => {
                let n = self.be(1 << (m - 0xc4))?;
                skip(self, n)
            }
            0xc7..=0xc9 => {
                let n = self.be(1 << (m - 0xc7))?;
                skip(self, n + 1)
            }
            0xca => skip(self, 4),
            0xcb => skip(self, 8),
            0xcc..=0xcf => skip(self, 1 << (m - 0xcc)),
            0xd0..=0xd3 => skip(self, 1 << (m - 0xd0)),
            0xd4..=0xd8 => skip(self, 1 + (1 << (m - 0xd4))),
            0xdc | 0xdd => {
                let n = self.be(2 << (m - 0xdc))?;
                self.many(n, false)
            }
            0xde | 0xdf => {
                let n = self.be(2 << (m - 0xde))?;
                self.many(n, true)
            }
            0xc1 => None,
        }
    }
}

fn str_of(v: &V) -> Option<&str> {
    match v {
        V::Str(s) => Some(s),
        _ => None,
    }
}

fn get<'v>(map: &'v V, key: &str) -> Option<&'v V> {
    match map {
        V::Map(m) => m.iter().find(|(k, _)| str_of(k) == Some(key)).map(|(_, v)| v),
        _ => None,
    }
}

/// The record number in a message the senders wrote.
fn record_id(message: &str) -> Option<u64> {
    message.strip_prefix("crash record ")?.split(' ').next()?.parse().ok()
}

/// The downstream: a Forward receiver that records each record's number before acknowledging
/// its message, and is restarted (listener and connections dropped) at random.
struct Downstream {
    got: Arc<Mutex<HashMap<u64, u32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u32>>,
}

impl Downstream {
    fn start(addr: String, seed: u64, restarts: Arc<AtomicBool>) -> Downstream {
        let got = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut rng = Rng(seed);
            let mut restarted = 0;
            while !s.load(Ordering::Acquire) {
                let l = loop {
                    match TcpListener::bind(&addr) {
                        Ok(l) => break l,
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                };
                l.set_nonblocking(true).unwrap();
                let up_for = Duration::from_millis(rng.range(200, 1500));
                let until = Instant::now() + up_for;
                let mut conns: Vec<TcpStream> = Vec::new();
                while !s.load(Ordering::Acquire) && (!restarts.load(Ordering::Acquire) || Instant::now() < until) {
                    match l.accept() {
                        Ok((c, _)) => {
                            c.set_nonblocking(false).unwrap();
                            conns.push(c.try_clone().unwrap());
                            let g = g.clone();
                            std::thread::spawn(move || receive(c, g));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                if s.load(Ordering::Acquire) {
                    break;
                }
                // the receiver goes down: everything unacknowledged is the sender's to resend
                drop(l);
                for c in conns {
                    let _ = c.shutdown(Shutdown::Both);
                }
                restarted += 1;
                std::thread::sleep(Duration::from_millis(rng.range(50, 800)));
            }
            restarted
        });
        Downstream { got, stop, thread: Some(thread) }
    }

    fn stop(&mut self) -> u32 {
        self.stop.store(true, Ordering::Release);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn receive(mut c: TcpStream, got: Arc<Mutex<HashMap<u64, u32>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let mut r = Reader { b: &buf, p: 0 };
        if let Some(msg) = r.value() {
            let end = r.p;
            let V::Arr(parts) = &msg else { panic!("not a Forward message: {msg:?}") };
            let V::Arr(entries) = &parts[1] else { panic!("not Forward mode: {msg:?}") };
            {
                let mut g = got.lock().unwrap();
                for e in entries {
                    let V::Arr(pair) = e else { panic!("entry {e:?}") };
                    let m = get(&pair[1], "message").and_then(str_of).unwrap_or_else(|| panic!("no message in {:?}", pair[1]));
                    let id = record_id(m).unwrap_or_else(|| panic!("not a numbered record: {m}"));
                    *g.entry(id).or_insert(0) += 1;
                }
            }
            let chunk_id = parts.get(2).and_then(|o| get(o, "chunk")).and_then(str_of).expect("serve asks for an ack").to_string();
            let mut ack = Vec::new();
            rmp::encode::write_map_len(&mut ack, 1).unwrap();
            rmp::encode::write_str(&mut ack, "ack").unwrap();
            rmp::encode::write_str(&mut ack, &chunk_id).unwrap();
            if c.write_all(&ack).is_err() {
                return;
            }
            buf.drain(..end);
            continue;
        }
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One HTTP POST: the status, or `None` when the connection failed.
fn post(addr: &str, body: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!("POST / HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    std::str::from_utf8(&resp).ok()?.split(' ').nth(1)?.parse().ok()
}

/// A Forward message asking for an ack, and waits for it; `false` on any failure.
fn forward(s: &mut Option<TcpStream>, addr: &str, ids: &[u64], chunk: &str) -> bool {
    if s.is_none() {
        let Ok(c) = TcpStream::connect(addr) else { return false };
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        *s = Some(c);
    }
    let c = s.as_mut().unwrap();
    let mut msg = Vec::new();
    rmp::encode::write_array_len(&mut msg, 3).unwrap();
    rmp::encode::write_str(&mut msg, "crash.test").unwrap();
    rmp::encode::write_array_len(&mut msg, ids.len() as u32).unwrap();
    for id in ids {
        rmp::encode::write_array_len(&mut msg, 2).unwrap();
        rmp::encode::write_uint(&mut msg, 1_795_515_600).unwrap();
        rmp::encode::write_map_len(&mut msg, 1).unwrap();
        rmp::encode::write_str(&mut msg, "message").unwrap();
        rmp::encode::write_str(&mut msg, &format!("crash record {id} sent over forward by worker {}", id % 7)).unwrap();
    }
    rmp::encode::write_map_len(&mut msg, 1).unwrap();
    rmp::encode::write_str(&mut msg, "chunk").unwrap();
    rmp::encode::write_str(&mut msg, chunk).unwrap();
    let ok = (|| {
        c.write_all(&msg).ok()?;
        let mut reply = Vec::new();
        let mut b = [0u8; 256];
        loop {
            let mut r = Reader { b: &reply, p: 0 };
            if let Some(v) = r.value() {
                return (get(&v, "ack").and_then(str_of) == Some(chunk)).then_some(());
            }
            match c.read(&mut b) {
                Ok(0) | Err(_) => return None,
                Ok(n) => reply.extend_from_slice(&b[..n]),
            }
        }
    })()
    .is_some();
    if !ok {
        *s = None;
    }
    ok
}

/// A sender: numbered batches from `base`, each retried until acknowledged; the acknowledged
/// numbers. Stops starting new batches once `stop` is set.
fn sender(kind: &'static str, addr: String, base: u64, seed: u64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let mut rng = Rng(seed);
        let mut acked = Vec::new();
        let mut next = base;
        let mut conn = None;
        let mut batch_no = 0;
        while !stop.load(Ordering::Acquire) {
            let n = rng.range(1, 40);
            let ids: Vec<u64> = (next..next + n).collect();
            next += n;
            batch_no += 1;
            let chunk = format!("{kind}-{batch_no}");
            let body: String = ids.iter().map(|id| format!("{{\"message\":\"crash record {id} sent over http by worker {}\"}}\n", id % 7)).collect();
            let started = Instant::now();
            loop {
                let ok = match kind {
                    "http" => post(&addr, body.as_bytes()) == Some(200),
                    _ => forward(&mut conn, &addr, &ids, &chunk),
                };
                if ok {
                    acked.extend_from_slice(&ids);
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(120), "{kind}: batch {batch_no} not acknowledged for 120 s");
                std::thread::sleep(Duration::from_millis(30));
            }
            std::thread::sleep(Duration::from_millis(rng.range(0, 15)));
        }
        acked
    })
}

#[test]
fn every_acknowledged_record_arrives_through_sigkills_of_serve_and_downstream_restarts() {
    let kills: u32 = std::env::var("TURBOLOG_SERVE_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let seed: u64 = std::env::var("TURBOLOG_SERVE_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("crash-test-serve: {kills} SIGKILLs, seed {seed} (TURBOLOG_SERVE_CRASH_SEED={seed} repeats the timings)");
    let mut rng = Rng(seed);
    let state = tempfile::tempdir().unwrap();
    let (http, fwd, down) = (free_port(), free_port(), free_port());
    let restarts = Arc::new(AtomicBool::new(true));
    let mut downstream = Downstream::start(down.clone(), seed.wrapping_mul(3) | 1, restarts.clone());
    let args = ["--state", state.path().to_str().unwrap(), "--http", &http, "--forward", &fwd, "--to", &format!("forward://{down}")];
    let stop = Arc::new(AtomicBool::new(false));
    let senders = [
        sender("http", http.clone(), 1_000_000, seed.wrapping_mul(5) | 1, stop.clone()),
        sender("forward", fwd.clone(), 2_000_000, seed.wrapping_mul(7) | 1, stop.clone()),
    ];
    let mut serve = Serve::start(&args);
    let mut stderr_of_all = String::new();
    let (mut redelivered, mut replayed) = (0.0, 0.0);
    for _ in 0..kills {
        std::thread::sleep(Duration::from_millis(rng.range(300, 1500)));
        redelivered += serve.metric("turbolog_redelivered_records_total");
        replayed += serve.metric("turbolog_replayed_records_total");
        let err = serve.stderr.lock().unwrap().clone();
        stderr_of_all.push_str(&err);
        drop(serve); // SIGKILL, then reaped
        if rng.range(0, 3) == 0 {
            std::thread::sleep(Duration::from_millis(rng.range(0, 400)));
        }
        serve = Serve::start(&args);
    }
    // the last run: senders finish their batch, the downstream stays up, everything arrives
    stop.store(true, Ordering::Release);
    let acked: Vec<u64> = senders.into_iter().flat_map(|s| s.join().unwrap()).collect();
    restarts.store(false, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let got = downstream.got.lock().unwrap();
        let missing: Vec<u64> = acked.iter().copied().filter(|id| !got.contains_key(id)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        drop(got);
        std::thread::sleep(Duration::from_millis(100));
    };
    redelivered += serve.metric("turbolog_redelivered_records_total");
    replayed += serve.metric("turbolog_replayed_records_total");
    let err = serve.stderr.lock().unwrap().clone();
    stderr_of_all.push_str(&err);
    serve.sigterm();
    let (code, _, _) = serve.wait(30);
    let restarted = downstream.stop();
    let got = downstream.got.lock().unwrap().clone();
    let acked_set: HashSet<u64> = acked.iter().copied().collect();
    assert_eq!(acked_set.len(), acked.len(), "a number was acknowledged twice: the senders are broken");
    let duplicates: u64 = got.values().map(|&c| u64::from(c - 1)).sum();
    let (http_n, fwd_n) = (acked.iter().filter(|&&i| i < 2_000_000).count(), acked.iter().filter(|&&i| i >= 2_000_000).count());
    eprintln!(
        "crash-test-serve: {kills} SIGKILLs of serve, {restarted} downstream restarts; {} records acknowledged ({http_n} HTTP, {fwd_n} Forward); {} of them missing; {} distinct records arrived, {duplicates} duplicate deliveries (a sender's retry after a kill before its ack, a replay, a downstream restart before its ack); /metrics counted {replayed} records delivered from the disk queue after restarts, {redelivered} of them redeliveries (sent before the kill, not confirmed)",
        acked.len(),
        missing.len(),
        got.len(),
    );
    assert!(http_n > 0 && fwd_n > 0, "both senders got records through");
    assert!(missing.is_empty(), "{} acknowledged records never arrived, e.g. {:?}\n{stderr_of_all}", missing.len(), &missing[..missing.len().min(10)]);
    assert_eq!(code, 0, "{err}");
}
