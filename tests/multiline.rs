//! One event, one record: real logs with stack traces, tracebacks and panics through `filter`
//! as text, as Docker json-file lines (with partials) and as CRI lines (with `P` partials), and
//! through `serve`; bounded memory on a 100 MB line, an endless trace and a stream that stops
//! mid-event.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::{tcp_send, Serve, Sink};
use serde_json::Value;

/// Real files with multi-line events (Java, Go, Python, Kafka's broker).
const FILES: &[&str] = &[
    "multiline-stacktraces/fluent-bit-filter_multiline-test.log",
    "python-traceback/logfile_vdsm.0",
    "kafka/server-2.0.0.log",
    "java-spring-boot/logfile_java.0",
];

fn real(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/realworld").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e} (tests need ../shared beside the repo)", p.display()))
}

fn filter(args: &[&str], input: &str) -> Vec<Value> {
    let input = input.to_string();
    let (out, err, _) = filter_rss(args, move |w| w.write_all(input.as_bytes()).unwrap());
    out.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{err}"))).collect()
}

/// Each line as Docker's json-file driver writes it, lines longer than `split` cut into partials
/// (a `log` without its final `\n`) as the driver does at 16 KiB.
fn docker_form(text: &str, split: usize) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let parts = pieces(line, split);
        for (j, p) in parts.iter().enumerate() {
            let log = if j + 1 == parts.len() { format!("{p}\n") } else { p.to_string() };
            let time = format!("2024-05-01T10:00:{:02}.{:09}Z", i % 60, j);
            out.push_str(&serde_json::json!({"log": log, "stream": "stdout", "time": time}).to_string());
            out.push('\n');
        }
    }
    out
}

/// Each line as containerd / CRI-O write it: `TIME STREAM P|F text`.
fn cri_form(text: &str, split: usize) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let parts = pieces(line, split);
        for (j, p) in parts.iter().enumerate() {
            let tag = if j + 1 == parts.len() { "F" } else { "P" };
            out.push_str(&format!("2024-05-01T10:00:{:02}.{:09}Z stderr {tag} {p}\n", i % 60, j));
        }
    }
    out
}

fn pieces(line: &str, split: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = line;
    while rest.len() > split {
        let mut at = split;
        while !rest.is_char_boundary(at) {
            at -= 1;
        }
        parts.push(&rest[..at]);
        rest = &rest[at..];
    }
    parts.push(rest);
    parts
}

#[test]
fn one_record_per_event_as_text_docker_json_file_and_cri() {
    let mut joined_somewhere = 0;
    for name in FILES {
        let text = real(name);
        let events = filter(&[], &text);
        let plain = filter(&["--multiline", "off"], &text);
        assert_eq!(plain.len(), text.lines().count(), "{name}: off keeps a record per line");
        let multi: Vec<&Value> = events.iter().filter(|e| e["lines"].as_u64().unwrap_or(1) > 1).collect();
        joined_somewhere += multi.len();
        let spanned: u64 = events.iter().map(|e| e["lines"].as_u64().unwrap_or(1)).sum();
        assert_eq!(spanned, text.lines().count() as u64, "{name}: every line is in one event");

        let docker = filter(&[], &docker_form(&text, 40));
        assert_eq!(docker.len(), events.len(), "{name}: Docker json-file lines, partials put back together");
        let cri = filter(&[], &cri_form(&text, 40));
        assert_eq!(cri.len(), events.len(), "{name}: CRI lines, P partials put back together");
        for ((e, d), c) in events.iter().zip(&docker).zip(&cri) {
            let message = e["message"].as_str().unwrap();
            assert_eq!(d["log"].as_str().unwrap(), format!("{message}\n"), "{name}: the joined message");
            assert_eq!(d["stream"], "stdout", "{name}: the runtime's fields are kept");
            assert_eq!(c["message"].as_str().unwrap(), message, "{name}");
            assert_eq!((c["stream"].as_str(), c["time"].as_str().map(|t| t.starts_with("2024-05-01T10:00:"))), (Some("stderr"), Some(true)));
            assert_eq!(d["lines"], e["lines"], "{name}");
            assert_eq!(c["lines"], e["lines"], "{name}");
            // the same event is judged the same way whatever wrapped it
            assert_eq!((d["anomaly"].as_bool(), c["anomaly"].as_bool()), (e["anomaly"].as_bool(), e["anomaly"].as_bool()), "{name}: {message:.80}");
        }
    }
    assert!(joined_somewhere >= 4, "the files hold multi-line events: {joined_somewhere}");
}

#[test]
fn a_trace_is_one_template_whatever_its_frames_and_a_new_root_cause_is_another() {
    let trace = |thread: &str, frames: &[&str], cause: &str| {
        let mut t = format!("2026-11-24 10:00:00,001 ERROR [{thread}] c.e.Api - request failed\njava.lang.IllegalStateException: boom\n");
        for f in frames {
            t.push_str(&format!("\tat com.example.{f}\n"));
        }
        t.push_str(&format!("Caused by: {cause}\n\t... 12 more\n"));
        t
    };
    let mut input = String::new();
    for i in 0..30 {
        input.push_str(&format!("2026-11-24 10:00:{:02},000 INFO [main] c.e.Api - request {i} served in 12 ms\n", i % 60));
    }
    input.push_str(&trace("worker-1", &["Api.handle(Api.java:42)", "Server.run(Server.java:7)"], "java.io.IOException: disk full"));
    input.push_str(&trace("worker-7", &["Api.handle(Api.java:42)", "Pool.exec(Pool.java:99)", "Server.run(Server.java:7)"], "java.io.IOException: disk full"));
    input.push_str(&trace("worker-2", &["Api.handle(Api.java:42)"], "java.sql.SQLTimeoutException: query timed out"));
    input.push_str("2026-11-24 10:01:00,000 INFO [main] c.e.Api - request 99 served in 12 ms\n");
    let out = filter(&["--fields", "all"], &input);
    let traces: Vec<&Value> = out.iter().filter(|r| r["lines"].as_u64().unwrap_or(1) > 1).collect();
    assert_eq!(traces.len(), 3, "{out:?}");
    assert_eq!(traces[0]["template_id"], traces[1]["template_id"], "same crash, other thread and frames: {} / {}", traces[0]["template"], traces[1]["template"]);
    assert_ne!(traces[0]["template_id"], traces[2]["template_id"], "another root cause");
    assert!(traces[0]["template"].as_str().unwrap().contains("java.io.IOException"), "{}", traces[0]["template"]);
    assert!(traces.iter().all(|t| t["anomaly"] == true), "error-level traces are flagged");
}

#[test]
fn serve_joins_events_from_tcp_as_filter_does() {
    let text = real(FILES[0]);
    let cri = cri_form(&text, 40);
    let want = filter(&[], &cri);
    let sink = Sink::start(None);
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--to", &format!("tcp://{}", sink.addr)]);
    tcp_send(&serve.addr("tcp").to_string(), &cri.lines().map(String::from).collect::<Vec<_>>());
    // the last event goes out after the quiet time, with no more input
    let got = sink.wait_for(want.len(), 30);
    assert_eq!(got.len(), want.len(), "{}", serve.stderr.lock().unwrap());
    for (g, w) in got.iter().zip(&want) {
        let g: Value = serde_json::from_str(g).unwrap();
        assert_eq!((&g["message"], &g["lines"], &g["anomaly"]), (&w["message"], &w["lines"], &w["anomaly"]));
    }
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
}

/// Runs `turbolog filter` on what `feed` writes, and checks that it succeeded; (stdout lines,
/// stderr, peak RSS in KiB). The
/// child is waited for with `wait4`, for its resource usage.
#[allow(clippy::zombie_processes)]
fn filter_rss(args: &[&str], feed: impl FnOnce(&mut dyn Write) + Send + 'static) -> (Vec<String>, String, i64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_turbolog"))
        .arg("filter")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || feed(&mut stdin));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    feeder.join().unwrap();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child; `usage` is a valid rusage
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "filter failed: status {status}");
    let out = reader.join().unwrap();
    (out.lines().map(String::from).collect(), err_reader.join().unwrap(), usage.ru_maxrss)
}

#[test]
fn memory_stays_bounded_on_a_huge_line_an_endless_trace_and_a_stream_cut_mid_event() {
    // the floor: the same filter on a few normal lines
    let (_, _, floor) = filter_rss(&[], |w| {
        w.write_all(b"2026-11-24 10:00:00 INFO started\n").unwrap();
    });
    // a 100 MB line without a newline between two events
    let (out, err, rss) = filter_rss(&[], |w| {
        w.write_all(b"2026-11-24 10:00:00 INFO before the flood\n").unwrap();
        let block = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            w.write_all(&block).unwrap();
        }
        w.write_all(b"\n2026-11-24 10:00:01 ERROR after the flood\n").unwrap();
    });
    assert_eq!(out.len(), 3, "{err}");
    assert!(out[0].contains("before the flood") && out[2].contains("after the flood"), "the events around it are intact");
    assert!(err.contains("was cut there"), "the cut is said: {err}");
    assert!(rss - floor < 64 * 1024, "a 100 MB line: peak RSS {rss} KiB against {floor} KiB");

    // an endless trace: 2 million frames (≈ 90 MB)
    let (out, err, rss) = filter_rss(&[], |w| {
        w.write_all(b"2026-11-24 10:00:00 ERROR [main] request failed\njava.lang.IllegalStateException: boom\n").unwrap();
        let frames = "\tat com.example.Api.handle(Api.java:42)\n".repeat(10_000);
        for _ in 0..200 {
            w.write_all(frames.as_bytes()).unwrap();
        }
        w.write_all(b"2026-11-24 10:00:01 INFO next request\n").unwrap();
    });
    assert!(out.len() >= 2 && out.last().unwrap().contains("next request"), "{err}");
    assert!(err.contains("was cut"), "the cut is said: {err}");
    assert!(rss - floor < 64 * 1024, "an endless trace: peak RSS {rss} KiB against {floor} KiB");

}

#[test]
fn a_stream_that_stops_mid_event_gets_the_event_after_the_quiet_time() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_turbolog"))
        .arg("filter")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"2026-11-24 10:00:00 INFO fine\n2026-11-24 10:00:01 ERROR [main] failed\n\tat com.example.A.b(A.java:1)\n").unwrap();
    stdin.flush().unwrap();
    let sent = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send((l.unwrap(), Instant::now()));
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("the first event goes out when the second starts");
    let (second, at) = rx.recv_timeout(Duration::from_secs(10)).expect("the pending event goes out with the input still open");
    assert!(first.0.contains("fine"));
    assert!(second.contains("\"lines\":2"), "{second}");
    assert!(at - sent >= Duration::from_millis(900), "held for the quiet time: {:?}", at - sent);
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// The plugin's and the C API's path (`multiline auto` property): each real file as one buffer of
/// Fluent Bit records, one `log` line each, joined into the events `filter` makes of the text,
/// with the same messages; and cut into buffers of 7 records, no line is lost (the events a
/// boundary cuts go out as two records, counted).
#[test]
fn the_plugin_path_joins_each_buffer_into_the_events_filter_makes() {
    use turbolog::codec::fluent_bit::OutBuf;
    use turbolog::host::embedded::{Embedded, Filtered, LogLevel};
    use turbolog::pipeline::Settings;
    fn quiet(_: LogLevel, _: &str) {}
    fn buffer(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            rmp::encode::write_array_len(&mut out, 2).unwrap();
            rmp::encode::write_array_len(&mut out, 2).unwrap();
            rmp::encode::write_ext_meta(&mut out, 8, 0).unwrap();
            out.extend_from_slice(&(1_700_000_000u32 + i as u32).to_be_bytes());
            out.extend_from_slice(&[0; 4]);
            rmp::encode::write_map_len(&mut out, 0).unwrap();
            rmp::encode::write_map_len(&mut out, 2).unwrap();
            rmp::encode::write_str(&mut out, "log").unwrap();
            rmp::encode::write_str(&mut out, l).unwrap();
            rmp::encode::write_str(&mut out, "stream").unwrap();
            rmp::encode::write_str(&mut out, "stdout").unwrap();
        }
        out
    }
    fn bodies(buf: &[u8]) -> Vec<Value> {
        let mut r = turbolog::codec::msgpack::Reader::new(buf);
        let mut out = Vec::new();
        while !r.at_end() {
            let mut s = String::new();
            turbolog::codec::forward_json::to_json(&mut r, &mut s).unwrap();
            let record: Value = serde_json::from_str(&s).unwrap();
            out.push(record[1].clone()); // [[time, metadata], body]
        }
        out
    }
    let run = |e: &std::sync::Arc<Embedded>, data: &[u8]| -> Vec<Value> {
        e.filter(data, quiet, |f| match f {
            Filtered::Modified(out, _) => bodies(out.as_slice()),
            Filtered::Untouched => bodies(data),
        })
    };
    for name in FILES {
        let text = real(name);
        let lines: Vec<&str> = text.lines().collect();
        let events = filter(&[], &text);
        let settings = || Settings::from_pairs([("multiline", "auto"), ("fields", "all")]).unwrap();
        let e = Embedded::open(settings(), quiet).unwrap();
        let got = run(&e, &buffer(&lines));
        assert_eq!(got.len(), events.len(), "{name}: one record per event");
        for (g, want) in got.iter().zip(&events) {
            assert_eq!(g["log"].as_str(), want["message"].as_str(), "{name}: the joined message");
            assert_eq!(g["lines"], want["lines"], "{name}");
            assert_eq!(g["stream"], "stdout", "{name}: the first record's fields are kept");
        }
        let e = Embedded::open(settings(), quiet).unwrap();
        let mut spanned = 0;
        for chunk in lines.chunks(7) {
            spanned += run(&e, &buffer(chunk)).iter().map(|r| r["lines"].as_u64().unwrap_or(1)).sum::<u64>();
        }
        assert_eq!(spanned as usize, lines.len(), "{name}: every line in a record, buffers of 7");
    }
}

/// `scan` (report and `--multiline auto` rows) reads the Docker json-file and CRI forms of the
/// real files as the events of their text: the same rows, the same templates.
#[test]
fn scan_reads_container_forms_as_the_events_of_the_text() {
    let scan = |input: &str| -> Vec<Value> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_turbolog"))
            .args(["scan", "--format", "jsonl", "--multiline", "auto"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_string();
        let w = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().unwrap();
        w.join().unwrap().unwrap();
        // 1: anomalies found (scan is a CI gate)
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let mut joined = 0;
    for name in FILES {
        let text = real(name);
        let events = scan(&text);
        joined += text.lines().count() - events.len();
        for (form, input) in [("docker", docker_form(&text, 40)), ("cri", cri_form(&text, 40))] {
            let rows = scan(&input);
            assert_eq!(rows.len(), events.len(), "{name} as {form}: one row per event");
            for (r, e) in rows.iter().zip(&events) {
                assert_eq!((&r["template"], &r["lines"], &r["anomaly"]), (&e["template"], &e["lines"], &e["anomaly"]), "{name} as {form}");
            }
        }
    }
    assert!(joined > 20, "the files hold multi-line events: {joined} lines joined");
}

/// `watch` follows a CRI file whose trace came in partials: the anomaly it prints is the whole
/// event, at the line its first part is on.
#[test]
fn watch_puts_cri_partials_and_traces_back_together() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pod.log");
    let mut text: String = (0..300).map(|i| format!("2026-11-24T10:00:00.{i:09}Z stdout F 2026-11-24 10:00:00 INFO request {i} served\n")).collect();
    text.push_str("2026-11-24T10:00:01.0Z stderr F 2026-11-24 10:00:01 ERROR payment failed\n");
    text.push_str("2026-11-24T10:00:01.1Z stderr P java.lang.IllegalStateExc\n");
    text.push_str("2026-11-24T10:00:01.1Z stderr F eption: pool shut down\n");
    text.push_str("2026-11-24T10:00:01.2Z stderr F \tat com.example.Pool.get(Pool.java:12)\n");
    std::fs::write(&log, &text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_turbolog"))
        .args(["watch", "--interval", "50", "--from-start"])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while Instant::now() < deadline && !got.iter().any(|l: &String| l.contains("payment failed")) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(l);
        }
    }
    unsafe { libc::kill(pid, libc::SIGINT) };
    let _ = child.wait_with_output();
    let hit = got.iter().find(|l| l.contains("payment failed")).unwrap_or_else(|| panic!("watch printed {got:?}"));
    assert!(hit.contains("pod.log:301"), "at the first part's line: {hit}");
    assert!(!got.iter().any(|l| l.contains("stderr P") || l.contains("eption: pool") && !l.contains("payment failed")), "no part printed on its own: {got:?}");
}
