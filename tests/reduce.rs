//! `--reduce` and `reduce on` end to end: through `filter` on real logs, through `serve` over
//! real sockets, and through the plugin's codec path (the embedded pipeline the Fluent Bit
//! plugin and the C API drive). What must hold everywhere: every record plain tagging flags is
//! present, byte for byte; for every template and window passed + suppressed = seen; summaries
//! are records of the input's shape (the message under the key the input used).

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_turbolog"))
}

fn shared(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets").join(rel);
    assert!(p.exists(), "{} is missing: tests need ../shared beside the repository", p.display());
    p
}

fn filter(args: &[&str], input: &[u8]) -> String {
    filter_with_stderr(args, input).0
}

/// `turbolog filter ARGS < input`, which must succeed: (stdout, stderr).
fn filter_with_stderr(args: &[&str], input: &[u8]) -> (String, String) {
    let mut child = bin().arg("filter").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// What a reduced output says, checked against the plain output of the same input: every
/// record that passed is a plain record (in order), every plain anomaly passed, and per template
/// the passed records plus the summaries' `suppressed` are the plain count. Returns
/// (records passed, summaries, windows seen).
fn check_against_plain(plain: &str, reduced: &str, message_key: &str) -> (usize, usize, usize) {
    let plain: Vec<&str> = plain.lines().collect();
    let mut passed = Vec::new();
    let mut summaries = Vec::new();
    for line in reduced.lines() {
        let v = parse(line);
        if v.get("turbolog_summary").is_some() {
            summaries.push(v);
        } else {
            passed.push(line);
        }
    }
    // the records that pass are plain's, byte for byte, in order
    let mut i = 0;
    for p in &passed {
        while i < plain.len() && plain[i] != *p {
            i += 1;
        }
        assert!(i < plain.len(), "a record that passed is not what plain filter writes: {p}");
        i += 1;
    }
    let anomalies = |lines: &[&str]| lines.iter().filter(|l| parse(l)["anomaly"] == true).map(|l| l.to_string()).collect::<Vec<_>>();
    assert_eq!(anomalies(&passed), anomalies(&plain), "every anomaly passes, in order");
    let per_template = |lines: &[&str]| {
        let mut m: HashMap<u64, u64> = HashMap::new();
        for l in lines {
            if let Some(id) = parse(l)["template_id"].as_u64() {
                *m.entry(id).or_default() += 1;
            }
        }
        m
    };
    let seen = per_template(&plain);
    let mut counted = per_template(&passed);
    let mut windows = std::collections::HashSet::new();
    for s in &summaries {
        let id = s["template_id"].as_u64().unwrap();
        let (sup, sn, ps) = (s["suppressed"].as_u64().unwrap(), s["seen"].as_u64().unwrap(), s["passed"].as_u64().unwrap());
        assert!(sup > 0 && ps + sup == sn, "{s}");
        *counted.entry(id).or_default() += sup;
        assert_eq!(s[message_key].as_str().unwrap(), format!("{sup} more records like {}", s["template"].as_str().unwrap()), "{s}");
        assert!(s["window_start"].as_str().unwrap() <= s["window_end"].as_str().unwrap(), "{s}");
        windows.insert(s["window_end"].as_str().unwrap().to_string());
    }
    assert_eq!(counted, seen, "per template: passed + suppressed = seen");
    (passed.len(), summaries.len(), windows.len())
}

#[test]
fn filter_keeps_every_anomaly_and_counts_the_rest_exactly_on_real_logs() {
    for name in ["HDFS", "BGL", "OpenSSH", "Apache", "HealthApp"] {
        let input = std::fs::read(shared(&format!("loghub/{name}/{name}_2k.log"))).unwrap();
        let plain = filter(&["--window", "0"], &input);
        let reduced = filter(&["--window", "0", "--reduce", "--reduce-keep", "3"], &input);
        let (passed, summaries, _) = check_against_plain(&plain, &reduced, "message");
        assert!(summaries > 0 && passed < plain.lines().count() / 2, "{name}: {passed} of {} passed", plain.lines().count());
        assert!(reduced.len() < plain.len() / 2, "{name}: {} of {} bytes", reduced.len(), plain.len());
    }
}

#[test]
fn ndjson_summaries_use_the_inputs_message_key_and_sampling_lets_one_in_n_through() {
    let lines: String = (0..1000)
        .map(|i| match i % 100 {
            99 => format!("{{\"msg\":\"FATAL controller {} lost its lease\",\"pod\":\"p\"}}\n", i / 100),
            _ => format!("{{\"msg\":\"GET /api/items/{i} 200 in {} ms\",\"pod\":\"p\"}}\n", i % 13),
        })
        .collect();
    let plain = filter(&["--window", "0", "--message-key", "msg"], lines.as_bytes());
    let reduced = filter(&["--window", "0", "--message-key", "msg", "--reduce", "--reduce-sample", "10"], lines.as_bytes());
    let (passed, summaries, _) = check_against_plain(&plain, &reduced, "msg");
    let gets = reduced.lines().filter(|l| l.contains("GET /api") && !l.contains("turbolog_summary")).count();
    // 990 GET lines: 5 kept, then 1 in 10 of the other 985 (98), unless flagged
    assert_eq!(gets, 5 + 98, "GET records passed");
    assert!(summaries >= 1 && passed < 300, "{passed} passed");
    // a summary parses as a record of the input's shape: a JSON object, the message under msg
    let s = reduced.lines().map(parse).find(|v| v.get("turbolog_summary").is_some()).unwrap();
    assert!(s["msg"].as_str().unwrap().contains(" more records like GET "), "{s}");
    assert!(s.get("message").is_none(), "{s}");
}

#[test]
fn windows_end_with_their_own_exact_summaries() {
    // HDFS_dev in windows of 50 ms, written in four parts 200 ms apart (40 000 lines take less
    // than a window to tag): four windows at least, each template counted per window
    let input = std::fs::read(shared("hdfs/HDFS_dev.log")).unwrap();
    let input: Vec<u8> = input.split(|&b| b == b'\n').take(40_000).flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
    let plain = filter(&["--window", "0"], &input);
    let mut child = bin().args(["filter", "--window", "0.05", "--reduce"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let parts: Vec<Vec<u8>> = input.split_inclusive(|&b| b == b'\n').collect::<Vec<_>>().chunks(10_000).map(|c| c.concat()).collect();
    let writer = std::thread::spawn(move || {
        for p in parts {
            stdin.write_all(&p).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    let reduced = String::from_utf8(out.stdout).unwrap();
    let (passed, _, windows) = check_against_plain(&plain, &reduced, "message");
    assert!(windows >= 4, "{windows} windows");
    assert!(reduced.len() * 5 < plain.len(), "{} of {} bytes ({passed} records passed)", reduced.len(), plain.len());
}

#[test]
fn reduce_flags_need_reduce_and_say_so() {
    let out = bin().args(["filter", "--reduce-keep", "3"]).stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reduce"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin().args(["filter", "--reduce", "--reduce-keep", "0"]).stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn serve_reduces_like_filter_and_counts_in_metrics() {
    use common::serve::{tcp_send, Serve};
    let input: Vec<String> = (0..600)
        .map(|i| match i % 60 {
            59 => format!(r#"{{"log":"ERROR disk /dev/sda{} is full","pod":"a"}}"#, i % 3),
            _ => format!(r#"{{"log":"GET /api/items/{i} 200 {} ms","pod":"a"}}"#, i % 17),
        })
        .collect();
    let text = input.join("\n") + "\n";
    let plain = filter(&["--window", "0"], text.as_bytes());
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--reduce", "--window", "1"]);
    tcp_send(serve.addr("tcp"), &input);
    std::thread::sleep(Duration::from_millis(2500)); // a window ends: its summaries go out
    let suppressed = serve.metric("turbolog_records_suppressed_total");
    let summaries = serve.metric("turbolog_summaries_total");
    assert!(suppressed > 400.0 && summaries >= 1.0, "suppressed {suppressed}, summaries {summaries}: {}", serve.stderr.lock().unwrap());
    serve.sigterm();
    let (code, out, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    let (passed, n, _) = check_against_plain(&plain, &out, "log");
    assert_eq!((passed + suppressed as usize, n as f64), (input.len(), summaries), "metrics count what went out");
}

#[test]
fn the_plugin_codec_path_returns_fewer_records_plus_summaries() {
    use turbolog::host::embedded::{Embedded, Filtered, LogLevel};
    use turbolog::pipeline::Settings;
    fn quiet(_: LogLevel, _: &str) {}
    let to_json = |buf: &[u8]| -> Vec<Value> {
        let mut r = turbolog::codec::msgpack::Reader::new(buf);
        let mut out = Vec::new();
        while !r.at_end() {
            let mut s = String::new();
            turbolog::codec::forward_json::to_json(&mut r, &mut s).unwrap();
            out.push(parse(&s));
        }
        out
    };
    let text = std::fs::read_to_string(shared("loghub/OpenSSH/OpenSSH_2k.log")).unwrap();
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let run = |settings: &[(&str, &str)]| {
        let e = Embedded::open(Settings::from_pairs(settings.iter().copied()).unwrap(), quiet).unwrap();
        let mut events = Vec::new();
        let mut in_bytes = 0;
        for part in lines.chunks(250).map(|c| common::chunk(c, 1_795_515_600)).chain([Vec::new()]) {
            in_bytes += part.len();
            e.filter(&part, quiet, |f| match f {
                Filtered::Modified(buf, _) => events.extend(to_json(turbolog::codec::fluent_bit::OutBuf::as_slice(&*buf))),
                Filtered::Untouched => events.extend(to_json(&part)),
            });
        }
        (events, in_bytes, e.reduced())
    };
    let (plain, _, none) = run(&[("window", "0")]);
    assert_eq!((plain.len(), none), (lines.len(), None));
    let (reduced, _, totals) = run(&[("window", "0"), ("reduce", "on"), ("reduce_keep", "2")]);
    let (suppressed, summaries) = totals.unwrap();
    let body = |e: &Value| e[1].clone();
    let passed: Vec<Value> = reduced.iter().map(body).filter(|b| b.get("turbolog_summary").is_none()).collect();
    let sums: Vec<Value> = reduced.iter().filter(|e| e[1].get("turbolog_summary").is_some()).cloned().collect();
    assert!(passed.len() < plain.len() / 2 && sums.len() as u64 == summaries, "{} passed, {} summaries", passed.len(), sums.len());
    let anomalies = |v: &[Value]| v.iter().filter(|b| b["anomaly"] == true).cloned().collect::<Vec<_>>();
    assert_eq!(anomalies(&passed), anomalies(&plain.iter().map(body).collect::<Vec<_>>()), "every anomaly passes");
    let mut seen: HashMap<u64, u64> = HashMap::new();
    for b in plain.iter().map(body) {
        *seen.entry(b["template_id"].as_u64().unwrap()).or_default() += 1;
    }
    let mut counted: HashMap<u64, u64> = HashMap::new();
    for b in &passed {
        *counted.entry(b["template_id"].as_u64().unwrap()).or_default() += 1;
    }
    let mut total = 0;
    for e in &sums {
        // an event of the input's shape: [[time, {}], body], the message under `log`
        assert!(e[0][0].is_number() || e[0][0].is_string() || e[0][0].is_object(), "{e}");
        let b = &e[1];
        let sup = b["suppressed"].as_u64().unwrap();
        total += sup;
        *counted.entry(b["template_id"].as_u64().unwrap()).or_default() += sup;
        assert!(b["log"].as_str().unwrap().starts_with(&format!("{sup} more records like ")), "{b}");
    }
    assert_eq!(counted, seen, "per template: passed + suppressed = seen");
    assert_eq!(total, suppressed);
}

#[test]
fn session_verdicts_go_out_as_without_reduce_and_say_how_many_records_were_held_back() {
    let input = (hdfs_lines(30_000).join("\n") + "\n").into_bytes();
    let args = ["--window", "0", "--session-key", "blk_-?[0-9]+", "--session-idle", "5000"];
    let plain = filter(&args, &input);
    let reduced = filter(&[&args[..], &["--reduce"]].concat(), &input);
    let sessions = |out: &str| -> Vec<Value> { out.lines().map(parse).filter(|v| v.get("turbolog_session").is_some()).collect() };
    let (mut want, got) = (sessions(&plain), sessions(&reduced));
    assert!(!want.is_empty(), "HDFS blocks judged anomalous");
    let held: u64 = got.iter().map(|s| s.get("held_back").and_then(Value::as_u64).unwrap_or(0)).sum();
    let mut got_without: Vec<Value> = got.clone();
    for s in &mut got_without {
        s.as_object_mut().unwrap().remove("held_back");
    }
    want.sort_by_key(|s| s["turbolog_session"].as_str().unwrap().to_string());
    got_without.sort_by_key(|s| s["turbolog_session"].as_str().unwrap().to_string());
    assert_eq!(got_without, want, "the same verdicts, with or without reduce");
    assert!(held > 0, "anomalous blocks had records held back, and their verdicts say how many");
    for s in &got {
        let h = s.get("held_back").and_then(Value::as_u64).unwrap_or(0);
        assert!(h <= s["lines"].as_u64().unwrap(), "{s}");
    }
    // the line records still add up (session verdict lines carry no template)
    let strip = |out: &str| out.lines().filter(|l| !l.contains("\"turbolog_session\"")).map(|l| format!("{l}\n")).collect::<String>();
    check_against_plain(&strip(&plain), &strip(&reduced), "message");
}

/// A Forward receiver (Fluent Bit's `forward` input stand-in): acks each message and keeps its
/// entries as (tag, seconds, record).
fn forward_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, u64, Value)>>>) {
    use std::io::Read;
    use turbolog::codec::msgpack::Reader;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { break };
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    let complete = {
                        let mut r = Reader::new(&buf);
                        r.skip().is_ok().then_some(r.pos)
                    };
                    let Some(end) = complete else {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let msg: Vec<u8> = buf.drain(..end).collect();
                    let mut r = Reader::new(&msg);
                    assert_eq!(r.array_len().unwrap(), Some(3));
                    let tag = String::from_utf8(r.str_bytes().unwrap().unwrap().to_vec()).unwrap();
                    let n = r.array_len().unwrap().unwrap();
                    for _ in 0..n {
                        assert_eq!(r.array_len().unwrap(), Some(2));
                        let (_, t) = r.ext().unwrap().expect("EventTime");
                        let secs = u32::from_be_bytes([t[0], t[1], t[2], t[3]]) as u64;
                        let mut s = String::new();
                        turbolog::codec::forward_json::to_json(&mut r, &mut s).unwrap();
                        keep.lock().unwrap().push((tag.clone(), secs, parse(&s)));
                    }
                    let mut chunk_id = None;
                    for _ in 0..r.map_len().unwrap().unwrap() {
                        let k = r.str_bytes().unwrap().unwrap().to_vec();
                        let v = r.str_bytes().unwrap().map(|v| v.to_vec());
                        if k == b"chunk" {
                            chunk_id = v;
                        }
                    }
                    let mut ack = Vec::new();
                    rmp::encode::write_map_len(&mut ack, 1).unwrap();
                    rmp::encode::write_str(&mut ack, "ack").unwrap();
                    rmp::encode::write_str(&mut ack, std::str::from_utf8(&chunk_id.unwrap()).unwrap()).unwrap();
                    conn.write_all(&ack).unwrap();
                }
            });
        }
    });
    (addr, got)
}

#[test]
fn serve_forward_out_sends_summaries_with_the_tag_and_the_windows_end() {
    use common::serve::Serve;
    let (addr, got) = forward_receiver();
    let serve = Serve::start(&["--forward", "127.0.0.1:0", "--to", &format!("forward://{addr}"), "--reduce", "--window", "1"]);
    let lines: Vec<String> = (0..200).map(|i| format!("user {} logged in from 10.0.0.{}", i % 7, i % 250)).collect();
    let mut msg = Vec::new();
    rmp::encode::write_array_len(&mut msg, 3).unwrap();
    rmp::encode::write_str(&mut msg, "app.logs").unwrap();
    rmp::encode::write_bin(&mut msg, &common::chunk(&lines, 1_795_515_600)).unwrap();
    rmp::encode::write_map_len(&mut msg, 0).unwrap();
    std::net::TcpStream::connect(serve.addr("forward")).unwrap().write_all(&msg).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let summaries = loop {
        let s: Vec<_> = got.lock().unwrap().iter().filter(|(_, _, v)| v.get("turbolog_summary").is_some()).cloned().collect();
        if !s.is_empty() || std::time::Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(!summaries.is_empty(), "{}", serve.stderr.lock().unwrap());
    for (tag, secs, v) in &summaries {
        assert_eq!(tag, "app.logs", "summaries go out under the tag the records came with");
        assert!(now - 10 <= *secs && *secs <= now, "timed at the window's end, not the records' time: {secs}");
        assert!(v["log"].as_str().unwrap().contains(" more records like "), "{v}");
    }
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    let all = got.lock().unwrap().clone();
    let passed = all.iter().filter(|(_, _, v)| v.get("turbolog_summary").is_none()).count() as u64;
    let suppressed: u64 = all.iter().filter_map(|(_, _, v)| v.get("suppressed").and_then(Value::as_u64)).sum();
    assert_eq!(passed + suppressed, lines.len() as u64, "every record passed or counted");
    assert!(all.iter().filter(|(_, _, v)| v.get("turbolog_summary").is_none()).all(|(t, s, _)| t == "app.logs" && *s == 1_795_515_600), "records keep their tag and time");
}

/// The block id a HDFS line's session key (`blk_-?[0-9]+`) finds, first match.
fn block_of(line: &str) -> Option<&str> {
    let at = line.find("blk_")?;
    let rest = &line[at + 4..];
    let len = rest.char_indices().find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-'))).map_or(rest.len(), |(i, _)| i);
    (len > 0 && rest[..len] != *"-").then(|| &line[at..at + 4 + len])
}

/// `--reduce-sessions keep` checked against plain: every record of every anomalous session is
/// out, before its verdict record; records that pass are plain's (as a multiset); per template
/// passed + suppressed = seen. Returns (anomalous sessions, records released for them).
fn check_kept_sessions(plain: &str, kept: &str) -> (usize, usize) {
    let verdicts = |out: &str| -> Vec<Value> { out.lines().map(parse).filter(|v| v.get("turbolog_session").is_some()).collect() };
    let key = |v: &Value| v["turbolog_session"].as_str().unwrap().to_string();
    let mut want = verdicts(plain);
    let mut got = verdicts(kept);
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got.iter().map(key).collect::<Vec<_>>(), want.iter().map(key).collect::<Vec<_>>(), "the same sessions judged anomalous");
    let mut released = 0;
    for v in &want {
        let id = key(v);
        // its records up to its verdict (a record after it opens a new session of that id)
        let of = |out: &str| -> Vec<String> {
            let at = out.lines().position(|l| l.contains(&format!("\"turbolog_session\":\"{id}\""))).unwrap();
            let mut lines: Vec<String> = out
                .lines()
                .take(at)
                .filter(|l| !l.contains("\"turbolog_session\"") && !l.contains("\"turbolog_summary\""))
                .filter(|l| block_of(parse(l)["message"].as_str().unwrap_or("")) == Some(id.as_str()))
                .map(String::from)
                .collect();
            lines.sort();
            lines
        };
        let (p, k) = (of(plain), of(kept));
        assert_eq!(k, p, "every record of anomalous session {id} goes out before its verdict");
        released += k.len();
    }
    check_counts_as_multiset(plain, kept);
    (want.len(), released)
}

/// The records out are plain's (as a multiset: records released for a session come later);
/// per template passed + suppressed = seen.
fn check_counts_as_multiset(plain: &str, kept: &str) {
    let mut plain_lines: HashMap<&str, i64> = HashMap::new();
    for l in plain.lines().filter(|l| !l.contains("\"turbolog_session\"")) {
        *plain_lines.entry(l).or_default() += 1;
    }
    let mut per_template: HashMap<u64, i64> = HashMap::new();
    for l in plain.lines().filter(|l| !l.contains("\"turbolog_session\"")) {
        *per_template.entry(parse(l)["template_id"].as_u64().unwrap()).or_default() += 1;
    }
    for l in kept.lines().filter(|l| !l.contains("\"turbolog_session\"")) {
        let v = parse(l);
        let id = v["template_id"].as_u64().unwrap();
        if v.get("turbolog_summary").is_some() {
            let (sup, sn, ps) = (v["suppressed"].as_u64().unwrap(), v["seen"].as_u64().unwrap(), v["passed"].as_u64().unwrap());
            assert_eq!(ps + sup, sn, "{v}");
            *per_template.get_mut(&id).unwrap() -= sup as i64;
        } else {
            let n = plain_lines.get_mut(l).unwrap_or_else(|| panic!("a record that passed is not what plain filter writes: {l}"));
            *n -= 1;
            assert!(*n >= 0, "a record went out twice: {l}");
            *per_template.get_mut(&id).unwrap() -= 1;
        }
    }
    assert!(per_template.values().all(|&n| n == 0), "per template: passed + suppressed = seen: {per_template:?}");
}

#[test]
fn reduce_sessions_keep_sends_every_record_of_an_anomalous_session_and_counts_the_rest() {
    let input = (hdfs_lines(30_000).join("\n") + "\n").into_bytes();
    let args = ["--window", "0", "--session-key", "blk_-?[0-9]+", "--session-idle", "5000"];
    let plain = filter(&args, &input);
    let counted = filter(&[&args[..], &["--reduce"]].concat(), &input);
    let kept = filter(&[&args[..], &["--reduce", "--reduce-sessions", "keep"]].concat(), &input);
    let (sessions, released) = check_kept_sessions(&plain, &kept);
    assert!(sessions > 0 && released > sessions, "{sessions} anomalous sessions, {released} of their records out");
    // what keep adds over count is the records of anomalous sessions: far less than plain
    assert!(kept.len() > counted.len() && kept.len() * 3 < plain.len(), "kept {} counted {} plain {}", kept.len(), counted.len(), plain.len());
    assert!(!kept.contains("\"held_back\""), "nothing of an anomalous session was held back under the cap");
}

#[test]
fn reduce_sessions_keep_past_its_cap_counts_the_oldest_and_says_so() {
    let input = (hdfs_lines(30_000).join("\n") + "\n").into_bytes();
    let args = ["--window", "0", "--session-key", "blk_-?[0-9]+", "--session-idle", "5000", "--reduce", "--reduce-sessions", "keep", "--reduce-session-mb", "1"];
    let (kept, stderr) = filter_with_stderr(&args, &input);
    assert!(stderr.contains("reached --reduce-session-mb (1 MiB)") && stderr.contains("raise it"), "{stderr}");
    // every anomaly still out, and the counts exact
    let plain = filter(&args[..6], &input);
    let anomalies = |o: &str| o.lines().filter(|l| !l.contains("\"turbolog_s") && parse(l)["anomaly"] == true).count();
    assert_eq!(anomalies(&kept), anomalies(&plain));
    let verdicts = |o: &str| o.lines().filter(|l| l.contains("\"turbolog_session\"")).count();
    assert_eq!(verdicts(&kept), verdicts(&plain));
    check_counts_as_multiset(&plain, &kept);
    assert!(kept.contains("\"held_back\""), "a verdict says its records were counted at the cap");
}

#[test]
fn the_plugin_and_c_api_refuse_reduce_sessions_keep_and_say_where_it_works() {
    use turbolog::host::embedded::{Embedded, LogLevel};
    use turbolog::pipeline::Settings;
    fn quiet(_: LogLevel, _: &str) {}
    let settings = Settings::from_pairs([("reduce", "on"), ("session_key", "blk_-?[0-9]+"), ("reduce_sessions", "keep")]).unwrap();
    let err = Embedded::open(settings, quiet).err().expect("keep is refused where records cannot wait");
    assert!(err.contains("reduce_sessions") && err.contains("turbolog filter and serve") && err.contains("use count"), "{err}");
}

/// HDFS lines with block sessions: the input of the `--reduce-sessions keep` tests through serve.
fn hdfs_lines(n: usize) -> Vec<String> {
    std::fs::read_to_string(shared("hdfs/HDFS_dev.log")).unwrap().lines().take(n).map(String::from).collect()
}

#[test]
fn serve_reduce_sessions_keep_sends_what_filter_does_and_confirms_its_queue_at_the_end() {
    use common::serve::{tcp_send, Serve};
    let lines = hdfs_lines(10_000);
    let text = lines.join("\n") + "\n";
    let sessions = ["--window", "0", "--session-key", "blk_-?[0-9]+", "--session-idle", "3000"];
    let plain = filter(&sessions, text.as_bytes());
    let q = tempfile::tempdir().unwrap();
    let qd = q.path().to_str().unwrap();
    let args = [&["--tcp", "127.0.0.1:0", "--queue-dir", qd, "--reduce", "--reduce-sessions", "keep"][..], &sessions[..]].concat();
    let serve = Serve::start(&args);
    tcp_send(serve.addr("tcp"), &lines);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while serve.metric("turbolog_records_in_total{input=\"tcp\"}") < lines.len() as f64 {
        assert!(std::time::Instant::now() < deadline, "serve did not read the records: {}", serve.stderr.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    serve.sigterm();
    let (code, out, err) = serve.wait(60);
    assert_eq!(code, 0, "{err}");
    let (anomalous, released) = check_kept_sessions(&plain, &out);
    assert!(anomalous > 0 && released > anomalous, "{anomalous} sessions, {released} records");
    // a clean stop confirmed every place the waiting records held: nothing is replayed
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--queue-dir", qd]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(serve.metric("turbolog_replayed_records_total"), 0.0);
    serve.sigterm();
    let (code, out, err) = serve.wait(30);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

#[test]
fn serve_reduce_sessions_keep_does_not_confirm_input_whose_records_still_wait_so_a_kill_replays_it() {
    use common::serve::{tcp_send, Serve};
    let lines = hdfs_lines(4_000);
    // with and without keep: after a SIGKILL, what does the restart replay?
    let replayed = |keep: bool| -> f64 {
        let q = tempfile::tempdir().unwrap();
        let qd = q.path().to_str().unwrap();
        let mut args = vec!["--tcp", "127.0.0.1:0", "--queue-dir", qd, "--multiline", "off", "--window", "0", "--reduce", "--session-key", "blk_-?[0-9]+", "--session-idle", "100000"];
        if keep {
            args.extend(["--reduce-sessions", "keep"]);
        }
        let serve = Serve::start(&args);
        tcp_send(serve.addr("tcp"), &lines);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while serve.metric("turbolog_records_in_total{input=\"tcp\"}") < lines.len() as f64 {
            assert!(std::time::Instant::now() < deadline, "serve did not read the records: {}", serve.stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(1500)); // what went out is delivered (stdout) and confirmed
        drop(serve); // SIGKILL
        let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--queue-dir", qd]);
        std::thread::sleep(Duration::from_millis(1500));
        let n = serve.metric("turbolog_replayed_records_total");
        serve.sigterm();
        let _ = serve.wait(30);
        n
    };
    assert_eq!(replayed(false), 0.0, "without keep every batch was delivered and confirmed");
    let n = replayed(true);
    assert!(n > 0.0, "sessions still open (idle 100000 records) hold their input's place: a kill replays it");
}
