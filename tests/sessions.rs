//! Sessions end to end: the CLI (scan, learn, filter, suggestions), and the C API a host such
//! as Fluent Bit calls (the verdict as an extra record with the closing record's timestamp).

use std::ffi::CString;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_turbolog"))
}

/// Requests of a web service, interleaved; `broken` ones never reach their last step.
fn requests(n: usize, broken: &[usize]) -> String {
    let mut out = String::new();
    let steps = ["request started", "user authenticated", "query ran in 12 ms", "response sent with 200 bytes"];
    for batch in (0..n).step_by(4) {
        for step in 0..steps.len() {
            for r in batch..(batch + 4).min(n) {
                if step == 3 && broken.contains(&r) {
                    continue;
                }
                out.push_str(&format!("2026-11-24T10:00:00Z INFO req-{r:05x} {}\n", steps[step]));
            }
        }
    }
    out
}

fn jsonl(out: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn scan(input: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("in.log");
    std::fs::write(&log, input).unwrap();
    let out = bin().args(["scan", "--format", "jsonl", "--session-key", "req-[0-9a-f]+"]).args(extra).arg(&log).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    jsonl(&out.stdout)
}

#[test]
fn a_session_that_skips_a_step_is_flagged_when_it_closes() {
    let input = requests(400, &[77, 301]);
    let rows = scan(&input, &[]);
    // line objects keep their contract: one per input line, in order
    let lines: Vec<_> = rows.iter().filter(|r| r.get("line").is_some()).collect();
    assert_eq!(lines.len(), input.lines().count());
    assert!(lines.windows(2).all(|w| w[0]["line"].as_u64() < w[1]["line"].as_u64()));
    let sessions: Vec<_> = rows.iter().filter(|r| r.get("session").is_some()).collect();
    let flagged: Vec<&str> = sessions.iter().filter(|s| s["anomaly"] == true).map(|s| s["session"].as_str().unwrap()).collect();
    assert_eq!(flagged, ["req-0004d", "req-0012d"], "{sessions:?}");
    let s = sessions.iter().find(|s| s["session"] == "req-0004d").unwrap();
    // judged while waiting (quiet past its learned wait for the step), mid-stream, when too
    // few sessions have ended: against the sessions opened so far (those under way, that have
    // not had it yet, count against it: a lower bound)
    assert_eq!(s["reason"], "missing \"<*> response sent with <*> bytes\" (present in 99.2% of sessions)");
    assert!(rows.iter().position(|r| r["session"] == "req-0004d").unwrap() < rows.len() - 500, "said mid-stream");
    // by idleness alone, at the end: 398 of the 399 others had it
    let rows = scan(&input, &["--session-close", "idle", "--session-idle", "100000"]);
    let s = rows.iter().find(|s| s["session"] == "req-0004d").unwrap();
    assert_eq!(s["reason"], "missing \"<*> response sent with <*> bytes\" (present in 99.7% of sessions)");
    assert_eq!(s["lines"], 3);
    assert!(s.get("line").is_none() && s["first_line"].as_u64() < s["last_line"].as_u64());
}

#[test]
fn sessions_close_when_idle_too_long_or_evicted_and_verdicts_follow_the_line_that_closed_them() {
    let input = requests(400, &[201]);
    // idle: a request is done after its 4 steps; 1024 records later a sweep closes it
    let rows = scan(&input, &["--session-idle", "40"]);
    let pos = rows.iter().position(|r| r["session"] == "req-000c9").expect("judged before the end");
    assert!(pos < rows.len() - 10, "closed by idleness, mid-stream");
    assert!(rows[pos - 1].get("line").is_some());
    assert_eq!(rows[pos]["anomaly"], true);
    // eviction: at most 8 open (the 4 interleaved requests fit); the least recently seen are
    // closed and judged as soon as more open, long before the end, and every line is still scored
    let rows = scan(&input, &["--max-sessions", "8", "--session-idle", "1000000"]);
    assert_eq!(rows.iter().filter(|r| r.get("line").is_some()).count(), input.lines().count());
    let pos = rows.iter().position(|r| r["session"] == "req-000c9").expect("judged when evicted");
    assert_eq!(rows[pos]["anomaly"], true);
    assert!(pos < rows.len() - 100, "evicted mid-stream, not closed at the end: {pos} of {}", rows.len());
}

#[test]
fn a_learned_profile_is_kept_and_used_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let good = dir.path().join("good.log");
    std::fs::write(&good, requests(200, &[])).unwrap();
    let learn = bin().args(["learn", "--session-key", "req-[0-9a-f]+", "--state"]).arg(&state).arg(&good).output().unwrap();
    assert!(learn.status.success(), "{learn:?}");
    assert!(String::from_utf8_lossy(&learn.stderr).contains("learned 200 sessions"));
    assert!(state.join("sessions.tls").exists());
    // ten requests only: far too few to judge live, but the learned profile knows
    let rows = scan(&requests(10, &[3]), &["--state", state.to_str().unwrap(), "--frozen"]);
    let flagged: Vec<_> = rows.iter().filter(|r| r["anomaly"] == true && r.get("session").is_some()).collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0]["session"], "req-00003");
    // without it, nothing is judged
    assert!(scan(&requests(10, &[3]), &[]).iter().all(|r| r.get("session").is_none() || r["anomaly"] == false));
}

#[test]
fn malformed_keys_are_clear_errors() {
    for (key, says) in [("(", "not a valid regular expression"), ("x*", "matches an empty string")] {
        let out = bin().args(["scan", "--session-key", key, "-"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{out:?}");
    }
}

#[test]
fn filter_appends_a_verdict_record_and_suggestions_find_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("in.log");
    std::fs::write(&log, requests(200, &[50])).unwrap();
    let out = bin().args(["filter", "--only-anomalies", "--session-key", "req-[0-9a-f]+"]).arg(&log).output().unwrap();
    let recs = jsonl(&out.stdout);
    let v: Vec<_> = recs.iter().filter(|r| r.get("turbolog_session").is_some()).collect();
    assert_eq!(v.len(), 1, "{recs:?}");
    assert_eq!(v[0]["turbolog_session"], "req-00032");
    assert!(v[0]["anomaly_reason"].as_str().unwrap().starts_with("missing"));
    let s = bin().args(["scan", "--suggest-session-keys"]).arg(&log).output().unwrap();
    let text = String::from_utf8_lossy(&s.stdout);
    assert_eq!(text.lines().nth(1).unwrap().split_whitespace().next(), Some("req-[0-9a-f]+"), "{text}");
}

// The C API, as a host calls it.
extern "C" {
    fn turbolog_new(config_json: *const std::os::raw::c_char) -> *mut std::ffi::c_void;
    fn turbolog_filter(t: *mut std::ffi::c_void, data: *const std::ffi::c_void, len: usize, out: *mut *mut std::ffi::c_void, out_len: *mut usize) -> i32;
    fn turbolog_free(buf: *mut std::ffi::c_void);
    fn turbolog_destroy(t: *mut std::ffi::c_void);
}

#[allow(unused_imports)]
use turbolog as _; // links the library that exports the functions above

mod common;

/// Records with their request id in a `trace_id` field.
fn chunk(lines: &[String], ts: u64) -> Vec<u8> {
    let mut b = Vec::new();
    for l in lines {
        let id = l.split_whitespace().nth(2).unwrap();
        common::record(&mut b, ts, l, &[("trace_id", id.into())]);
    }
    b
}

#[test]
fn through_the_c_api_a_verdict_is_an_extra_record_with_the_closing_timestamp() {
    let config = CString::new(r#"{"session_field": "trace_id", "session_idle": "30", "mode": "only_anomalies"}"#).unwrap();
    let t = unsafe { turbolog_new(config.as_ptr()) };
    assert!(!t.is_null());
    let lines: Vec<String> = requests(400, &[99]).lines().map(String::from).collect();
    let mut found = Vec::new();
    for (i, part) in lines.chunks(50).enumerate() {
        let data = chunk(part, 1_795_515_600 + i as u64);
        let (mut out, mut len) = (std::ptr::null_mut(), 0usize);
        let rc = unsafe { turbolog_filter(t, data.as_ptr().cast(), data.len(), &mut out, &mut len) };
        if rc == 1 {
            let bytes = unsafe { std::slice::from_raw_parts(out as *const u8, len) }.to_vec();
            unsafe { turbolog_free(out) };
            let text = String::from_utf8_lossy(&bytes).to_string();
            if let Some(at) = text.find("turbolog_session") {
                found.push((i, text[at..].chars().take(120).collect::<String>(), bytes));
            }
        }
    }
    unsafe { turbolog_destroy(t) };
    assert_eq!(found.len(), 1, "one anomalous session: {:?}", found.iter().map(|f| &f.1).collect::<Vec<_>>());
    let (i, text, bytes) = &found[0];
    assert!(text.contains("req-00063") && text.contains("missing"), "{text}");
    // the verdict record carries the timestamp of the chunk whose record closed it
    let mut ts = Vec::new();
    rmp::encode::write_uint(&mut ts, 1_795_515_600 + *i as u64).unwrap();
    let at = bytes.windows(16).position(|w| w == b"turbolog_session").unwrap();
    assert!(bytes[..at].windows(ts.len()).any(|w| w == ts.as_slice()));
}

/// Requests three steps long, a second apart, one started each second; `stuck` stops after its
/// second step.
fn timed_requests(n: usize, stuck: usize) -> String {
    let mut lines: Vec<(usize, String)> = Vec::new();
    let steps = ["request started", "query ran in 12 ms", "response sent with 200 bytes"];
    for r in 0..n {
        for (k, step) in steps.iter().enumerate() {
            if r == stuck && k == 2 {
                continue;
            }
            let t = r + k;
            lines.push((t, format!("2026-11-24T{:02}:{:02}:{:02}Z INFO req-{r:05x} {step}\n", 10 + t / 3600, t / 60 % 60, t % 60)));
        }
    }
    lines.sort_by_key(|(t, _)| *t);
    lines.into_iter().map(|(_, l)| l).collect()
}

#[test]
fn by_default_filter_says_a_stuck_session_long_before_the_input_ends() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("in.log");
    std::fs::write(&log, timed_requests(3000, 300)).unwrap();
    // where the verdict on the stuck request comes among the records out (one per line, and
    // the verdicts after the line that closed them)
    let at = |extra: &[&str]| {
        let out = bin().args(["filter", "--session-key", "req-[0-9a-f]+", "--session-idle", "1d"]).args(extra).arg(&log).output().unwrap();
        let recs = jsonl(&out.stdout);
        let i = recs.iter().position(|r| r["turbolog_session"] == "req-0012c").unwrap_or_else(|| panic!("no verdict: {:?}", recs.iter().filter(|r| r.get("turbolog_session").is_some()).collect::<Vec<_>>()));
        assert!(recs[i]["anomaly_reason"].as_str().unwrap().starts_with("missing"), "{:?}", recs[i]);
        assert_eq!(recs.iter().filter(|r| r.get("turbolog_session").is_some()).count(), 1, "only the stuck one");
        (i, recs.len())
    };
    // by idleness alone (a day) it is said when the input ends…
    let (i, n) = at(&["--session-close", "idle"]);
    assert!(i + 1 == n, "at {i} of {n}");
    // …by default (closed when over as learned), a few sweeps after its last step (300 s into
    // 2 500 records)
    let (i, n) = at(&[]);
    assert!(i < 3000, "at {i} of {n}");
}

/// The verdicts a host gets through the C API for `lines`, 30 records a chunk, each chunk 10 s
/// of event time after the one before: (chunk, session id).
fn verdicts_through_the_c_api(config: &str, lines: &[String]) -> Vec<(usize, String)> {
    let config = CString::new(config).unwrap();
    let t = unsafe { turbolog_new(config.as_ptr()) };
    assert!(!t.is_null());
    let mut found = Vec::new();
    for (i, part) in lines.chunks(30).enumerate() {
        let data = chunk(part, 1_795_515_600 + 10 * i as u64);
        let (mut out, mut len) = (std::ptr::null_mut(), 0usize);
        let rc = unsafe { turbolog_filter(t, data.as_ptr().cast(), data.len(), &mut out, &mut len) };
        if rc == 1 {
            let bytes = unsafe { std::slice::from_raw_parts(out as *const u8, len) }.to_vec();
            unsafe { turbolog_free(out) };
            let text = String::from_utf8_lossy(&bytes).to_string();
            for (at, _) in text.match_indices("turbolog_session") {
                let id = text[at..].split("req-").nth(1).map(|r| format!("req-{}", &r[..5]));
                found.push((i, id.unwrap_or_default()));
            }
        }
    }
    unsafe { turbolog_destroy(t) };
    found
}

#[test]
fn through_the_c_api_a_stuck_session_is_said_by_default_long_before_the_host_stops() {
    let lines: Vec<String> = timed_requests(3000, 300).lines().map(String::from).collect();
    let chunks = lines.len().div_ceil(30);
    // the default: closed when over as learned (the same tracker as filter and serve)
    let found = verdicts_through_the_c_api(r#"{"session_field": "trace_id", "mode": "only_anomalies"}"#, &lines);
    assert_eq!(found.iter().map(|f| f.1.as_str()).collect::<Vec<_>>(), ["req-0012c"], "only the stuck one, once");
    assert!(found[0].0 < chunks / 2, "said in chunk {} of {chunks}", found[0].0);
    // by idleness alone, a day: still open when the host stops, never said
    let found = verdicts_through_the_c_api(r#"{"session_field": "trace_id", "session_close": "idle", "session_idle": "1d", "mode": "only_anomalies"}"#, &lines);
    assert!(found.is_empty(), "{found:?}");
}

/// A live pipe: requests up to now, the last one stuck before its last step, and then nothing
/// (stdin stays open). `filter` says the stuck one on its own clock, while the input is quiet,
/// not when the input ends.
#[test]
fn filter_on_a_quiet_pipe_says_a_stuck_session_while_the_input_stays_open() {
    use std::io::{BufRead, Write};
    let n = 3000;
    let lines = common::live_requests(n);
    let mut child = bin()
        .args(["filter", "--session-key", "req-[0-9a-f]+"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // read while writing: the output must not fill its pipe while the input is written
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    for l in &lines {
        stdin.write_all(l.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    stdin.flush().unwrap();
    let stuck = format!("req-{:05x}", n - 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut verdict = None;
    let mut records = 0;
    while verdict.is_none() && std::time::Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) else { continue };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        match v.get("turbolog_session") {
            Some(id) if id == stuck.as_str() => verdict = Some(v),
            Some(_) => {}
            None => records += 1,
        }
    }
    // stdin is still open here: only the quiet clock can have closed it
    let v = verdict.unwrap_or_else(|| panic!("no verdict on {stuck} within 60 s of a quiet, open input ({records} records out)"));
    assert_eq!(v["anomaly"], true, "{v}");
    assert!(v["anomaly_reason"].as_str().unwrap().starts_with("missing"), "{v}");
    assert_eq!(records, lines.len(), "every record went out before the verdict");
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = rx.iter().collect();
    assert!(!rest.iter().any(|l| l.contains(&stuck)), "said once: {rest:?}");
}
