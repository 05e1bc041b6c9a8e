//! `turbolog serve` as a child process, an NDJSON receiver and a tiny HTTP client, for the tests
//! that drive it over real sockets.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `turbolog serve`; its stderr is collected, its ports read from the line it prints.
pub struct Serve {
    child: Child,
    pub stderr: Arc<Mutex<String>>,
    /// Read as it comes (a full pipe would stop the writer).
    stdout: Arc<Mutex<String>>,
    ports: HashMap<String, String>,
}

impl Serve {
    pub fn start(args: &[&str]) -> Serve {
        Serve::start_with(args, |_| {})
    }

    /// As [`Serve::start`], after `setup` has changed the command (limits, environment).
    pub fn start_with(args: &[&str], setup: impl FnOnce(&mut Command)) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_turbolog"));
        cmd.arg("serve").args(["--admin", "127.0.0.1:0"]).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        setup(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut out_pipe = child.stdout.take().unwrap();
        let out_buf = stdout.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = out_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out_buf.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(line.clone());
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start: {}", stderr.lock().unwrap());
            }
        };
        let listed = line.split("listening on ").nth(1).unwrap().split(" → ").next().unwrap();
        let ports = listed
            .split(", ")
            .map(|p| {
                let (k, v) = p.split_once(' ').unwrap();
                (k.to_string(), ["http://", "https://", "tls://"].iter().fold(v, |v, scheme| v.trim_start_matches(scheme)).to_string())
            })
            .collect();
        Serve { child, stderr, stdout, ports }
    }

    pub fn addr(&self, input: &str) -> &str {
        &self.ports[input]
    }

    pub fn try_addr(&self, input: &str) -> Option<&str> {
        self.ports.get(input).map(String::as_str)
    }

    pub fn sigterm(&self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }

    /// Waits for the process to end (at most `secs`): its exit code and stdout.
    pub fn wait(mut self, secs: u64) -> (i32, String, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                let out = self.stdout.lock().unwrap().clone();
                let err = self.stderr.lock().unwrap().clone();
                return (status.code().unwrap_or(-1), out, err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("serve did not stop within {secs} s: {}", self.stderr.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.addr("admin"), "GET", path, &[], b"")
    }

    pub fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client: (status, body).
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let (status, _, body) = http_full(addr, method, path, headers, body);
    (status, body)
}

pub fn http_full(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).to_string();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// An NDJSON receiver (Vector's `socket` source stand-in): every line from every connection.
pub struct Sink {
    pub addr: String,
    pub lines: Arc<Mutex<Vec<String>>>,
    /// While false, no connection is read (a downstream that stalled); see `Sink::gated`.
    pub open: Arc<std::sync::atomic::AtomicBool>,
}

impl Sink {
    /// `delay`: sleep before each read of at most 4 KiB (a slow downstream).
    pub fn start(delay: Option<Duration>) -> Sink {
        Sink::on(TcpListener::bind("127.0.0.1:0").unwrap(), delay)
    }

    /// A downstream that accepts connections but reads nothing until `open` is set.
    pub fn gated() -> Sink {
        Sink::with_gate(TcpListener::bind("127.0.0.1:0").unwrap(), None, false)
    }

    pub fn on(l: TcpListener, delay: Option<Duration>) -> Sink {
        Sink::with_gate(l, delay, true)
    }

    fn with_gate(l: TcpListener, delay: Option<Duration>, open: bool) -> Sink {
        use std::sync::atomic::{AtomicBool, Ordering};
        let addr = l.local_addr().unwrap().to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let got = lines.clone();
        let gate = Arc::new(AtomicBool::new(open));
        let open = gate.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { break };
                let got = got.clone();
                let gate = gate.clone();
                std::thread::spawn(move || {
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        while !gate.load(Ordering::Acquire) {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        if let Some(d) = delay {
                            std::thread::sleep(d);
                        }
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                        }
                        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=i).collect();
                            got.lock().unwrap().push(String::from_utf8_lossy(&line[..i]).to_string());
                        }
                    }
                });
            }
        });
        Sink { addr, lines, open }
    }

    pub fn wait_for(&self, n: usize, secs: u64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.lines.lock().unwrap().clone();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn tcp_send(addr: &str, lines: &[String]) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut all = String::new();
    for l in lines {
        all.push_str(l);
        all.push('\n');
    }
    s.write_all(all.as_bytes()).unwrap();
}

pub fn free_port() -> String {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

