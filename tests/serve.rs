//! `turbolog serve` as a real process over real loopback sockets: concurrent senders, a slow and
//! a dead downstream, malformed input, HTTP errors, SIGTERM mid-stream, restart on the same state,
//! Forward in and out. Real Vector and Fluent Bit round trips are in `tests/serve_hosts.rs`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::{free_port, http, http_full, tcp_send, Serve, Sink};

use serde_json::Value;

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}



#[test]
fn sixteen_concurrent_connections_each_arrive_complete_in_order_and_tagged() {
    let sink = Sink::start(None);
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--to", &format!("tcp://{}", sink.addr)]);
    let per = 500;
    let senders: Vec<_> = (0..16)
        .map(|c| {
            let addr = serve.addr("tcp").to_string();
            std::thread::spawn(move || {
                let lines: Vec<String> = (0..per).map(|i| format!(r#"{{"conn":{c},"seq":{i},"message":"worker {c} finished job {i} in 12 ms"}}"#)).collect();
                // several writes per connection, split inside lines
                let mut s = TcpStream::connect(&addr).unwrap();
                let all = lines.join("\n") + "\n";
                for piece in all.as_bytes().chunks(777) {
                    s.write_all(piece).unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let got = sink.wait_for(16 * per, 60);
    assert_eq!(got.len(), 16 * per, "records lost: {}", serve.stderr.lock().unwrap());
    let mut next = [0u64; 16];
    for line in &got {
        let v = parse(line);
        let (c, seq) = (v["conn"].as_u64().unwrap() as usize, v["seq"].as_u64().unwrap());
        assert_eq!(seq, next[c], "connection {c} out of order");
        next[c] += 1;
        assert!(v["anomaly"].is_boolean() && v["anomaly_score"].is_number() && v["template_id"].is_number(), "{line}");
    }
    assert_eq!(serve.metric("turbolog_records_in_total{input=\"tcp\"}"), (16 * per) as f64);
    assert_eq!(serve.metric("turbolog_records_out_total"), (16 * per) as f64);
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn tagged_exactly_as_filter_tags_them() {
    let input: Vec<String> = (0..300)
        .map(|i| match i % 50 {
            49 => format!(r#"{{"log":"ERROR disk /dev/sda{} is full","pod":"a"}}"#, i % 3),
            7 => "plain text line, not JSON".to_string(),
            13 => "{broken json".to_string(),
            _ => format!(r#"{{"log":"GET /api/items/{i} 200 {} ms","pod":"a"}}"#, i % 17),
        })
        .collect();
    let mut filter = Command::new(env!("CARGO_BIN_EXE_turbolog")).arg("filter").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    filter.stdin.take().unwrap().write_all((input.join("\n") + "\n").as_bytes()).unwrap();
    let want = String::from_utf8(filter.wait_with_output().unwrap().stdout).unwrap();

    let serve = Serve::start(&["--tcp", "127.0.0.1:0"]);
    tcp_send(serve.addr("tcp"), &input);
    std::thread::sleep(Duration::from_millis(300));
    serve.sigterm();
    let (code, out, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, want);
    assert!(err.contains("malformed JSON"), "{err}");
}

#[test]
fn a_slow_downstream_holds_senders_back_and_loses_nothing() {
    // A downstream that stalls (reads nothing) until the queue has filled, then drains: the
    // stall is a gate, not a timing guess, so a fast machine cannot outrun it. The input is
    // larger than every socket buffer on the way (≈ 8 MB against 4 MB of autotuned send buffer).
    let sink = Sink::gated();
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--queue", "200", "--to", &format!("tcp://{}", sink.addr)]);
    let n = 30_000;
    let pad = "x".repeat(160);
    let lines: Vec<String> = (0..n).map(|i| format!(r#"{{"seq":{i},"message":"request {i} served from cache in {} us {pad}"}}"#, i % 100)).collect();
    let addr = serve.addr("tcp").to_string();
    let sender = std::thread::spawn(move || tcp_send(&addr, &lines));
    let mut deepest = 0.0f64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while deepest < 1.0 && Instant::now() < deadline {
        deepest = deepest.max(serve.metric("turbolog_queue_records"));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(deepest > 0.0, "the queue never filled while the downstream read nothing for 60 s");
    sink.open.store(true, std::sync::atomic::Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(90);
    while sink.lines.lock().unwrap().len() < n && Instant::now() < deadline {
        deepest = deepest.max(serve.metric("turbolog_queue_records"));
        std::thread::sleep(Duration::from_millis(10));
    }
    sender.join().unwrap();
    let got = sink.wait_for(n, 5);
    assert_eq!(got.len(), n, "{}", serve.stderr.lock().unwrap());
    assert!(got.iter().enumerate().all(|(i, l)| parse(l)["seq"] == i as u64), "order");
    // the bound held: one read's batch may exceed it only when it is the whole queue
    assert!(deepest <= 200.0, "queue went to {deepest} records");
}

#[test]
fn http_answers_say_what_was_wrong_and_a_full_queue_says_retry() {
    // a downstream that is down: what is accepted waits, and the queue fills
    let dead = free_port();
    let serve = Serve::start(&["--http", "127.0.0.1:0", "--queue", "5", "--max-body", "2048", "--to", &format!("tcp://{dead}")]);
    let a = serve.addr("http").to_string();
    let (s, body) = http(&a, "GET", "/", &[], b"");
    assert_eq!(s, 405, "{body}");
    let (s, body) = http(&a, "POST", "/", &[("content-type", "application/json")], b"[{\"message\":");
    assert_eq!(s, 400);
    assert!(body.contains("not valid JSON"), "{body}");
    let (s, body) = http(&a, "POST", "/", &[("content-type", "application/json")], &vec![b' '; 4096]);
    assert_eq!(s, 413, "{body}");
    assert!(body.contains("--max-body"), "{body}");
    let (s, body) = http(&a, "POST", "/", &[("content-encoding", "br")], b"x");
    assert_eq!(s, 415, "{body}");
    let (s, body) = http(&a, "POST", "/", &[("content-encoding", "gzip")], b"not gzip");
    assert_eq!(s, 400, "{body}");
    // gzip works
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"message\":\"one\"}\n{\"message\":\"two\"}\n").unwrap();
    let (s, body) = http(&a, "POST", "/ingest", &[("content-type", "application/x-ndjson"), ("content-encoding", "gzip")], &gz.finish().unwrap());
    assert_eq!((s, body.trim()), (200, "{\"accepted\":2}"));
    let (s, body) = http(&a, "POST", "/", &[("content-type", "application/json")], br#"[{"message":"3"},{"message":"4"},{"message":"5"}]"#);
    assert_eq!((s, body.trim()), (200, "{\"accepted\":3}"));
    let (s, head, body) = http_full(&a, "POST", "/", &[("content-type", "application/json")], br#"[{"message":"6"}]"#);
    assert_eq!(s, 503, "{body}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    assert!(body.contains("queue is full"), "{body}");
    let (s, body) = serve.get("/readyz");
    assert_eq!(s, 503);
    assert!(body.contains("downstream is unreachable"), "{body}");
    assert_eq!(serve.get("/healthz").0, 200);
    assert!(serve.metric("turbolog_requests_rejected_total{reason=\"queue_full\"}") >= 1.0);
    assert!(serve.metric("turbolog_downstream_errors_total") >= 1.0);
}

#[test]
fn sigterm_keeps_what_a_dead_downstream_did_not_take_and_the_next_start_delivers_it_first() {
    let state = tempfile::tempdir().unwrap();
    let st = state.path().to_str().unwrap();
    let port = free_port();
    let serve = Serve::start(&["--http", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--state", st, "--drain-timeout", "1", "--to", &format!("tcp://{port}")]);
    let body: String = (0..40).map(|i| format!("{{\"seq\":{i},\"message\":\"session {i} opened for user alice\"}}\n")).collect();
    let (s, _) = http(serve.addr("http"), "POST", "/", &[("content-type", "application/x-ndjson")], body.as_bytes());
    assert_eq!(s, 200);
    // and some over TCP, still in flight when the signal comes
    tcp_send(serve.addr("tcp"), &(40..60).map(|i| format!("{{\"seq\":{i},\"message\":\"session {i} opened for user bob\"}}")).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(200));
    serve.sigterm();
    let (code, _, err) = serve.wait(20);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("did not take 60 records") && err.contains("outbox.tls"), "{err}");
    assert!(state.path().join("outbox.tls").exists());

    // the downstream is back: the kept records go first, then new ones, and what was learned stays
    let sink = Sink::on(TcpListener::bind(&port).unwrap(), None);
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--state", st, "--to", &format!("tcp://{port}")]);
    let got = sink.wait_for(60, 20);
    assert_eq!(got.len(), 60, "{}", serve.stderr.lock().unwrap());
    let seqs: Vec<u64> = got.iter().map(|l| parse(l)["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..60).collect::<Vec<_>>());
    assert!(!state.path().join("outbox.tls").exists());
    tcp_send(serve.addr("tcp"), &["{\"seq\":60,\"message\":\"session 60 opened for user carol\"}".to_string()]);
    let got = sink.wait_for(61, 20);
    let last = parse(&got[60]);
    assert_eq!(last["anomaly"], false, "{last}");
    assert_eq!(last["template_id"], parse(&got[0])["template_id"], "the template learned before the restart was not kept");
    serve.sigterm();
    assert_eq!(serve.wait(20).0, 0);
}

#[test]
fn sigterm_mid_stream_delivers_every_record_read() {
    let sink = Sink::start(None);
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--to", &format!("tcp://{}", sink.addr)]);
    let addr = serve.addr("tcp").to_string();
    let n = 20_000;
    // the sender keeps its connection open, as Vector does
    let mut s = TcpStream::connect(&addr).unwrap();
    let all: String = (0..n).map(|i| format!("{{\"seq\":{i},\"message\":\"tick {i}\"}}\n")).collect();
    s.write_all(all.as_bytes()).unwrap();
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    let got = sink.wait_for(n, 5);
    assert_eq!(got.len(), n, "{err}");
    assert!(err.contains(&format!("{n} records out")), "{err}");
}

#[test]
fn forward_in_acks_and_forward_out_round_trips_through_a_second_serve() {
    let sink = Sink::start(None);
    let b = Serve::start(&["--forward", "127.0.0.1:0", "--to", &format!("tcp://{}", sink.addr)]);
    let a = Serve::start(&["--forward", "127.0.0.1:0", "--to", &format!("forward://{}", b.addr("forward"))]);
    // a Fluent Bit-like sender: PackedForward with [[time, {}], record] entries and a chunk
    let lines: Vec<String> = (0..50).map(|i| format!("user {i} logged in from 10.0.0.{i}")).collect();
    let entries = common::chunk(&lines, 1_795_515_600);
    let mut msg = Vec::new();
    rmp::encode::write_array_len(&mut msg, 3).unwrap();
    rmp::encode::write_str(&mut msg, "app.logs").unwrap();
    rmp::encode::write_bin(&mut msg, &entries).unwrap();
    rmp::encode::write_map_len(&mut msg, 1).unwrap();
    rmp::encode::write_str(&mut msg, "chunk").unwrap();
    rmp::encode::write_str(&mut msg, "Y2h1bmsx").unwrap();
    let mut s = TcpStream::connect(a.addr("forward")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&msg).unwrap();
    let mut ack = [0u8; 64];
    let n = s.read(&mut ack).unwrap();
    let mut want = Vec::new();
    rmp::encode::write_map_len(&mut want, 1).unwrap();
    rmp::encode::write_str(&mut want, "ack").unwrap();
    rmp::encode::write_str(&mut want, "Y2h1bmsx").unwrap();
    assert_eq!(&ack[..n], &want[..]);
    let got = sink.wait_for(50, 20);
    assert_eq!(got.len(), 50, "{}\n{}", a.stderr.lock().unwrap(), b.stderr.lock().unwrap());
    for (i, l) in got.iter().enumerate() {
        let v = parse(l);
        assert_eq!(v["log"], lines[i]);
        assert!(v["anomaly"].is_boolean());
    }
    // garbage on a Forward port closes that connection, says why, and the server goes on
    let mut bad = TcpStream::connect(a.addr("forward")).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    bad.write_all(&[0xc1, 0, 0]).unwrap();
    assert_eq!(bad.read(&mut ack).unwrap_or(0), 0);
    let mut s2 = TcpStream::connect(a.addr("forward")).unwrap();
    s2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s2.write_all(&msg).unwrap();
    assert!(s2.read(&mut ack).unwrap() > 0);
    assert_eq!(sink.wait_for(100, 20).len(), 100);
    assert!(a.stderr.lock().unwrap().contains("closing the Forward connection"), "{}", a.stderr.lock().unwrap());
    assert_eq!(a.metric("turbolog_requests_rejected_total{reason=\"bad_frame\"}"), 1.0);
}

#[test]
fn over_long_lines_are_dropped_counted_and_the_stream_goes_on() {
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--max-line", "2048"]);
    let long = format!("{{\"message\":\"{}\"}}", "x".repeat(100_000));
    tcp_send(serve.addr("tcp"), &["{\"message\":\"before\"}".to_string(), long, "{\"message\":\"after\"}".to_string()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while serve.metric("turbolog_records_dropped_total{reason=\"line_too_long\"}") < 1.0 {
        assert!(Instant::now() < deadline, "the long line was never counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(serve.metric("turbolog_records_dropped_total{reason=\"line_too_long\"}"), 1.0);
    serve.sigterm();
    let (code, out, err) = serve.wait(20);
    assert_eq!(code, 0);
    let msgs: Vec<String> = out.lines().map(|l| parse(l)["message"].as_str().unwrap().to_string()).collect();
    assert_eq!(msgs, ["before", "after"]);
    assert!(err.contains("longer than --max-line 2048"), "{err}");
}

#[test]
fn bad_configuration_is_refused_with_what_to_do() {
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_turbolog")).arg("serve").args(args).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    let (code, err) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("serve needs an input"), "{err}");
    let (code, err) = run(&["--tcp", "0.0.0.0:0"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("pass --listen 0.0.0.0"), "{err}");
    let (code, err) = run(&["--tcp", "127.0.0.1:0", "--to", "udp://x:1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("tcp://HOST:PORT"), "{err}");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let (code, err) = run(&["--tcp", &taken.local_addr().unwrap().to_string(), "--admin", "off"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot listen on"), "{err}");
    let state = tempfile::tempdir().unwrap();
    let (code, err) = run(&["--tcp", "127.0.0.1:0", "--admin", "off", "--frozen", "--state", state.path().to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--frozen needs learned state"), "{err}");
    // environment variables configure it too
    let o = Command::new(env!("CARGO_BIN_EXE_turbolog")).args(["serve", "--admin", "off"]).env("TURBOLOG_TCP", "0.0.0.0:0").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("--tcp 0.0.0.0:0 is not a loopback address"));
}

#[test]
fn readyz_follows_the_downstream() {
    let port = free_port();
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--to", &format!("tcp://{port}")]);
    assert_eq!(serve.get("/readyz").0, 503);
    let sink = Sink::on(TcpListener::bind(&port).unwrap(), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while serve.get("/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "never ready: {}", serve.get("/readyz").1);
        std::thread::sleep(Duration::from_millis(50));
    }
    tcp_send(serve.addr("tcp"), &["{\"message\":\"hello\"}".to_string()]);
    assert_eq!(sink.wait_for(1, 10).len(), 1);
    let (s, body) = serve.get("/nope");
    assert_eq!(s, 404, "{body}");
}

#[test]
fn a_closed_standard_output_stops_serve_with_a_clear_error() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_turbolog"))
        .args(["serve", "--tcp", "127.0.0.1:0", "--admin", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // nobody reads what serve writes
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "serve ended before listening");
    }
    let addr = line.split("tcp ").nth(1).unwrap().split(' ').next().unwrap().trim_end_matches(',').to_string();
    tcp_send(&addr, &["{\"message\":\"hello\"}".to_string()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve kept running with its output gone");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(2), "{rest}");
    assert!(rest.contains("standard output is closed") && rest.contains("cannot write to standard output"), "{rest}");
    assert!(rest.contains("did not take 1 records and there is no --state"), "{rest}");
}

/// A live stream over TCP: requests up to now, the last stuck before its last step, then the
/// input goes quiet (the connection stays open). serve says the stuck one on its own clock.
#[test]
fn a_quiet_input_gets_a_stuck_session_said_without_waiting_for_more_records() {
    let sink = Sink::start(None);
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--to", &format!("tcp://{}", sink.addr), "--session-key", "req-[0-9a-f]+"]);
    let n = 3000;
    let lines = common::live_requests(n);
    let mut s = TcpStream::connect(serve.addr("tcp")).unwrap();
    s.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
    let stuck = format!("req-{:05x}", n - 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let verdict = loop {
        let got = sink.wait_for(lines.len() + 1, 1);
        if let Some(v) = got.iter().map(|l| parse(l)).find(|v| v["turbolog_session"] == stuck.as_str()) {
            break v;
        }
        assert!(Instant::now() < deadline, "no verdict on {stuck} within 60 s of a quiet input ({} lines out): {}", got.len(), serve.stderr.lock().unwrap());
    };
    assert_eq!(verdict["anomaly"], true, "{verdict}");
    assert!(verdict["anomaly_reason"].as_str().unwrap().starts_with("missing"), "{verdict}");
    assert_eq!(serve.metric("turbolog_session_anomalies_total"), 1.0);
    drop(s);
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    let said = sink.wait_for(0, 0).iter().filter(|l| l.contains(&format!("\"turbolog_session\":\"{stuck}\""))).count();
    assert_eq!(said, 1, "said once");
}
