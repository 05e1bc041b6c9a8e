//! The `turbolog` binary as users and pipelines run it, on real loghub files.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_turbolog"))
}

fn loghub(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/datasets/loghub/{name}/{name}_2k.log"));
    assert!(p.exists(), "{} is missing: tests need ../shared beside the repository", p.display());
    p
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // written from another thread: a large input would otherwise fill the output pipe first
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    // a child that refuses its input (binary) stops reading it: a broken pipe is its answer, not ours
    if let Err(e) = writer.join().unwrap() {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    out
}

fn jsonl(out: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).expect(l)).collect()
}

#[test]
fn jsonl_is_one_object_per_input_line_in_order() {
    for name in ["OpenSSH", "Apache", "HealthApp"] {
        let path = loghub(name);
        let raw = std::fs::read(&path).unwrap();
        let expected = raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        let out = bin().args(["scan", "--format", "jsonl"]).arg(&path).output().unwrap();
        assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
        let rows = jsonl(&out.stdout);
        assert_eq!(rows.len(), expected, "{name}: one row per line (CRLF, no final newline)");
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row["line"], (i + 1) as u64);
            let anomaly = row["anomaly"].as_bool().unwrap();
            let score = row["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score));
            assert!(row["template_id"].is_u64());
            assert!(row["template"].is_string());
            assert_eq!(row["reason"].is_null(), !anomaly, "reason null exactly when normal: {row}");
            assert!(!row["template"].as_str().unwrap().contains('\r'));
        }
        assert_eq!(out.status.code() == Some(1), rows.iter().any(|r| r["anomaly"] == true));
    }
}

#[test]
fn same_template_same_id_on_real_lines() {
    let out = bin().args(["scan", "--format", "jsonl"]).arg(loghub("OpenSSH")).output().unwrap();
    let rows = jsonl(&out.stdout);
    let log = std::fs::read_to_string(loghub("OpenSSH")).unwrap();
    let invalid: Vec<usize> = log.lines().enumerate().filter(|(_, l)| l.contains("]: Invalid user ")).map(|(i, _)| i).collect();
    assert!(invalid.len() > 50);
    // every "Invalid user <name> from <ip>" line, whatever the name, gets one id
    for &i in &invalid {
        assert_eq!(rows[i]["template_id"], rows[invalid[0]]["template_id"], "line {}", i + 1);
    }
    let ids: std::collections::HashSet<_> = rows.iter().map(|r| r["template_id"].as_u64().unwrap()).collect();
    assert!(ids.len() > 10 && ids.len() < 60, "{} templates", ids.len());
}

#[test]
fn exit_codes_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    std::fs::write(&good, "user alice logged in\nuser bob logged in\n".repeat(50)).unwrap();
    let state = dir.path().join("state");
    let st = bin().args(["learn", "--state"]).arg(&state).arg(&good).status().unwrap();
    assert_eq!(st.code(), Some(0));
    let clean = bin().args(["scan", "--frozen", "--state"]).arg(&state).arg(&good).output().unwrap();
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
    assert!(String::from_utf8_lossy(&clean.stdout).contains("no anomalies"));
    let bad = run_with_stdin(bin().args(["scan", "--frozen", "--state"]).arg(&state), b"kernel panic: not syncing\n");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("kernel panic: not syncing"));

    let missing = bin().args(["scan", "/nonexistent/file.log"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open /nonexistent/file.log"));
    let usage = bin().args(["scan", "--threshold", "7"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("outside [0, 1]"));

    std::fs::write(state.join("templates.tls"), b"TLSTATE1garbage").unwrap();
    // a corrupt state file is moved aside with a line that says so, and the run goes on
    let corrupt = bin().args(["scan", "--state"]).arg(&state).arg(&good).output().unwrap();
    assert!(matches!(corrupt.status.code(), Some(0 | 1)), "{corrupt:?}");
    let stderr = String::from_utf8_lossy(&corrupt.stderr);
    assert!(stderr.contains("is corrupt") && stderr.contains("moved aside"), "{stderr}");
    assert!(state.join("templates.tls.corrupt").exists());
    let frozen_empty = bin().args(["scan", "--frozen", "--state"]).arg(dir.path().join("none")).arg(&good).output().unwrap();
    assert_eq!(frozen_empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&frozen_empty.stderr).contains("turbolog learn --state"));
}

#[test]
fn learned_baseline_cuts_anomalies_on_the_same_system() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::read_to_string(loghub("OpenSSH")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let (train, test) = lines.split_at(1000);
    let train_path = dir.path().join("train.log");
    let test_path = dir.path().join("test.log");
    std::fs::write(&train_path, train.join("\n")).unwrap();
    std::fs::write(&test_path, test.join("\n")).unwrap();
    let count = |out: Output| jsonl(&out.stdout).iter().filter(|r| r["anomaly"] == true).count();
    let alone = count(bin().args(["scan", "--format", "jsonl"]).arg(&test_path).output().unwrap());
    let state = dir.path().join("s");
    assert!(bin().args(["learn", "--state"]).arg(&state).arg(&train_path).status().unwrap().success());
    let learned = count(bin().args(["scan", "--format", "jsonl", "--frozen", "--state"]).arg(&state).arg(&test_path).output().unwrap());
    assert!(learned < alone / 4, "learned {learned} vs stream-only {alone}");
    // scanning without --frozen keeps learning and saves
    let before = std::fs::metadata(state.join("templates.tls")).unwrap().len();
    bin().args(["scan", "--state"]).arg(&state).arg(&test_path).output().unwrap();
    assert_ne!(std::fs::metadata(state.join("templates.tls")).unwrap().len(), before);
}

#[test]
fn filter_tags_ndjson_and_text_keeps_order_and_survives_bad_lines() {
    let input = concat!(
        "{\"log\":\"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\",\"k\":1}\n",
        "this is { not json\n",
        "{\"broken\": \n",
        "{\"other\":\"no message key\"}\n",
        "{\"message\":\"plain message\",\"anomaly\":\"old\"}\n",
        "{}\n",
        "{\"msg\":\"third key\"}\n",
    );
    let out = run_with_stdin(bin().args(["filter", "--fields", "all"]), input.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["k"], 1);
    assert!(first["log"].as_str().unwrap().starts_with("Dec 10"));
    for key in ["anomaly", "anomaly_score", "template_id", "template", "anomaly_reason"] {
        assert!(first.get(key).is_some(), "{key} missing in {first}");
    }
    assert_eq!(first["template"], "Invalid user webmaster from <*>");
    let wrapped: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(wrapped["message"], "this is { not json");
    assert_eq!(lines[2], "{\"broken\": ", "malformed JSON passes through untouched");
    assert_eq!(lines[3], "{\"other\":\"no message key\"}", "no message key: untouched");
    let replaced: serde_json::Value = serde_json::from_str(lines[4]).unwrap();
    assert!(replaced["anomaly"].is_boolean(), "existing field replaced, not duplicated");
    assert_eq!(lines[4].matches("\"anomaly\"").count(), 1);
    assert_eq!(lines[5], "{}");
    let third: serde_json::Value = serde_json::from_str(lines[6]).unwrap();
    assert_eq!(third["msg"], "third key");
    assert!(third["template_id"].is_u64());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3 is not valid JSON") && err.contains("1 malformed JSON lines"), "{err}");
    assert!(err.contains("2 records had no string message"), "{err}");
    // the first one is said when it comes (a `serve` never reaches the end), with what to set
    assert_eq!(err.matches("is a JSON record with no string message").count(), 1, "{err}");
    assert!(err.contains("line 4 is a JSON record with no string message under log, message") && err.contains("--message-key"), "{err}");
}

/// The default field policy: template and reason only on anomalies; `minimal` and `all`.
#[test]
fn filter_field_policies() {
    let mut input = String::new();
    for i in 0..300 {
        input.push_str(&format!("{{\"log\":\"request {i} served in {i} ms\"}}\n"));
    }
    input.push_str("{\"log\":\"FATAL database connection refused: too many clients\"}\n");
    for (policy, normal_keys) in [(None, 3), (Some("lean"), 3), (Some("minimal"), 1), (Some("all"), 5)] {
        let mut cmd = bin();
        cmd.args(["filter", "--epoch", "50"]);
        if let Some(p) = policy {
            cmd.args(["--fields", p]);
        }
        let rows = jsonl(&run_with_stdin(&mut cmd, input.as_bytes()).stdout);
        assert_eq!(rows.len(), 301);
        let ours = |r: &serde_json::Value| {
            ["anomaly", "anomaly_score", "template_id", "template", "anomaly_reason"].iter().filter(|k| r.get(**k).is_some()).count()
        };
        let last = rows.last().unwrap();
        assert_eq!(last["anomaly"], true, "{policy:?}");
        assert_eq!(ours(last), 5, "{policy:?}: an anomaly carries every field");
        assert!(last["anomaly_reason"].is_string());
        let normal: Vec<_> = rows.iter().filter(|r| r["anomaly"] == false).collect();
        assert!(normal.len() > 250);
        assert!(normal.iter().all(|r| ours(r) == normal_keys), "{policy:?}: {}", normal[0]);
    }
}

#[test]
fn filter_message_key_and_only_anomalies() {
    let mut input = String::new();
    for i in 0..200 {
        input.push_str(&format!("{{\"body\":\"request {i} served in {i} ms\"}}\n"));
    }
    input.push_str("{\"body\":\"FATAL database connection refused: too many clients\"}\n");
    let out = run_with_stdin(bin().args(["filter", "--message-key", "body", "--only-anomalies", "--epoch", "50"]), input.as_bytes());
    let rows = jsonl(&out.stdout);
    assert!(rows.iter().all(|r| r["anomaly"] == true));
    assert!(rows.iter().any(|r| r["body"].as_str().unwrap().contains("connection refused")), "{rows:?}");
    assert!(rows.len() < 20, "{} rows", rows.len());
}

#[test]
fn invalid_utf8_and_blank_lines_do_not_break_the_stream() {
    let out = run_with_stdin(bin().args(["scan", "--format", "jsonl"]), b"ok line\n\xff\xfe broken bytes\n\n\r\nlast line");
    assert!(matches!(out.status.code(), Some(0 | 1)));
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), 5);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 lines were not valid UTF-8"));
}

#[test]
fn text_report_names_top_anomalies_without_colour_in_pipes() {
    let out = bin().arg("scan").arg(loghub("BGL")).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("2000 lines, "), "{text}");
    assert!(text.contains("top anomalies by template"));
    assert!(text.contains("reason: "));
    assert!(!text.contains('\x1b'), "no colour when stdout is not a terminal");
}

#[test]
fn the_fluent_bit_chapter_property_table_is_the_one_the_code_validates() {
    let out = bin().args(["plugin-props", "--markdown"]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let chapter = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/src/fluent-bit.md");
    let text = std::fs::read_to_string(&chapter).unwrap();
    assert!(
        text.contains(&table),
        "{}'s property table is stale: paste `turbolog plugin-props --markdown` there:\n{table}",
        chapter.display()
    );
}

#[test]
fn a_closed_output_pipe_is_not_an_error() {
    use std::io::{BufRead, BufReader};
    let bgl = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/bgl/BGL_20k.log");
    let mut child = bin()
        .args(["scan", "--format", "jsonl"])
        .arg(&bgl)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap(); // then dropped: `| head -1`
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with("{\"line\":1,"));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("error"));
}

/// Accented text, random bytes and names without digits: no crash, and the template table
/// stays small or capped with a warning (the hardening issue's reports).
#[test]
fn hostile_input_neither_crashes_nor_grows_the_template_table() {
    let accented = "usér logged in\n{\"log\":\"usér logged in ß\"}\nÖl 12:00 Dienstag café\nMär 3 ñandú 語\n".repeat(50);
    for args in [&["filter"][..], &["scan", "--format", "jsonl"], &["scan"]] {
        let out = run_with_stdin(bin().args(args), accented.as_bytes());
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.stderr.windows(8).any(|w| w == b"panicked"), "{args:?}");
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut bytes = Vec::new();
    for _ in 0..200_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        bytes.push((seed >> 24) as u8);
    }
    // random bytes from the start are refused as binary (exit 2, no panic); after a first block
    // of text they reach the engine, which must neither crash nor fail
    let mut after_text = "2026-11-24T10:00:00Z INFO a normal line of text\n".repeat(2000).into_bytes();
    after_text.extend_from_slice(&bytes);
    for args in [&["filter"][..], &["scan", "--format", "jsonl"]] {
        let out = run_with_stdin(bin().args(args), &bytes);
        assert_eq!(out.status.code(), Some(2), "{args:?} on random bytes: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.stderr.windows(8).any(|w| w == b"panicked"), "{args:?}");
        let out = run_with_stdin(bin().args(args), &after_text);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?} on random bytes: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut names = String::new();
    let word = |seed: &mut u64| -> String {
        (0..10)
            .map(|_| {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (b'a' + ((*seed >> 33) % 26) as u8) as char
            })
            .collect()
    };
    for _ in 0..20_000 {
        names.push_str(&format!("2026-11-24T10:00:00Z INFO session {} opened for client {}\n", word(&mut seed), word(&mut seed)));
    }
    let out = run_with_stdin(bin().args(["scan", "--format", "jsonl"]), names.as_bytes());
    let ids: std::collections::BTreeSet<u64> = jsonl(&out.stdout).iter().map(|r| r["template_id"].as_u64().unwrap()).collect();
    assert!(ids.len() <= 8, "{} templates for one shape", ids.len());
    // random words: capped, counted, said once
    let words: String = (0..2000).map(|_| format!("{} {} {} {}\n", word(&mut seed), word(&mut seed), word(&mut seed), word(&mut seed))).collect();
    let out = run_with_stdin(bin().args(["scan", "--format", "jsonl", "--max-templates", "50"]), words.as_bytes());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ids: std::collections::BTreeSet<u64> = jsonl(&out.stdout).iter().map(|r| r["template_id"].as_u64().unwrap()).collect();
    assert!(ids.len() <= 51, "{} templates past a limit of 50", ids.len());
    assert_eq!(stderr.matches("template limit (50) is reached").count(), 1, "{stderr}");
    assert!(stderr.contains("lines in all went past the template limit (50)"), "{stderr}");
}

/// nginx `combined` lines: steady 2xx/3xx/4xx traffic with an outage of 5xx in the middle.
fn access_log(lines: usize, outage: std::ops::Range<usize>) -> String {
    let paths = ["/", "/api/items/", "/static/app.js", "/login", "/api/cart/", "/healthz"];
    let agents = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "kube-probe/1.29"];
    let mut seed = 0x2545_f491_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = String::new();
    for i in 0..lines {
        let r = next();
        let status = if outage.contains(&i) {
            [502, 503, 504][(r % 3) as usize]
        } else {
            [200, 200, 200, 200, 200, 201, 304, 404][(r % 8) as usize]
        };
        let method = if r % 5 == 0 { "POST" } else { "GET" };
        let path = paths[(r >> 8) as usize % paths.len()];
        let id = if path.ends_with('/') { format!("{}", r % 9000) } else { String::new() };
        out.push_str(&format!(
            "10.0.{}.{} - - [24/Nov/2026:10:{:02}:{:02} +0000] \"{method} {path}{id} HTTP/1.1\" {status} {} \"-\" \"{}\"\n",
            (r >> 16) % 256,
            (r >> 24) % 256,
            (i / 60) % 60,
            i % 60,
            100 + (r >> 32) % 9000,
            agents[(r >> 40) as usize % agents.len()],
        ));
    }
    out
}

#[test]
fn an_outage_in_an_access_log_is_flagged_and_said() {
    let log = access_log(8000, 5000..5300);
    let out = run_with_stdin(bin().args(["scan", "--format", "jsonl"]), log.as_bytes());
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), 8000);
    let flagged = |range: std::ops::Range<usize>| rows[range].iter().filter(|r| r["anomaly"] == true).count();
    assert_eq!(flagged(5000..5300), 300, "every line of the outage");
    let false_alarms = flagged(0..5000) + flagged(5300..8000);
    eprintln!("access log: {} of 300 outage lines flagged, {false_alarms} of 7 700 normal lines", flagged(5000..5300));
    assert!(false_alarms <= 10, "{false_alarms} normal lines flagged");
    let reason = rows[5100]["reason"].as_str().unwrap();
    assert!(reason.contains("HTTP 5xx server errors"), "{reason}");
    assert!(rows[5100]["template"].as_str().unwrap().contains("5xx"), "{}", rows[5100]["template"]);
    // the same outage in the text report
    let report = run_with_stdin(bin().args(["scan"]), log.as_bytes());
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("5xx"), "{text}");
}

/// Lines of a service whose disk keeps failing: the error recurs in every window.
fn recurring_error_log(lines: usize) -> String {
    (0..lines)
        .map(|i| {
            if i % 10 == 5 {
                format!("2026-11-24T10:00:{:02}Z ERROR disk sda failed: I/O error at sector {}\n", i % 60, i * 8)
            } else {
                format!("2026-11-24T10:00:{:02}Z INFO request {} served in {}ms\n", i % 60, i, i % 97)
            }
        })
        .collect()
}

#[test]
fn recurring_trouble_stays_flagged_until_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let log = dir.path().join("app.log");
    std::fs::write(&log, recurring_error_log(3000)).unwrap();
    let scan = |extra: &[&str]| {
        let out = bin().args(["scan", "--format", "jsonl", "--epoch", "100", "--state"]).arg(&state).args(extra).arg(&log).output().unwrap();
        assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
        jsonl(&out.stdout)
    };
    let rows = scan(&[]);
    let last_error = rows.iter().rev().find(|r| r["template"].as_str().unwrap().contains("failed")).unwrap();
    assert_eq!(last_error["anomaly"], true, "{last_error}");
    let reason = last_error["reason"].as_str().unwrap();
    assert!(reason.starts_with("recurring error: 300 times since 2026-11-24 10:00:05, first at record 6"), "{reason}");
    assert!(reason.contains("error level, error words"), "{reason}");
    assert!(rows.iter().filter(|r| r["template"].as_str().unwrap().contains("served")).all(|r| r["anomaly"] == false));
    let id = last_error["template_id"].as_u64().unwrap().to_string();

    let ack = bin().args(["ack", "--state"]).arg(&state).arg(&id).output().unwrap();
    assert_eq!(ack.status.code(), Some(0), "{ack:?}");
    assert!(String::from_utf8_lossy(&ack.stdout).contains(&format!("acknowledged #{id}")));
    let list = bin().args(["ack", "--list", "--state"]).arg(&state).output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("failed: I/O error"), "{list:?}");
    assert!(scan(&[]).iter().all(|r| r["anomaly"] == false), "acknowledged: nothing left to flag");
    assert!(scan(&["--frozen"]).iter().all(|r| r["anomaly"] == false), "frozen runs apply acks too");

    let undo = bin().args(["ack", "--undo", "--state"]).arg(&state).arg(&id).output().unwrap();
    assert!(String::from_utf8_lossy(&undo.stdout).contains(&format!("withdrawn #{id}")), "{undo:?}");
    assert!(scan(&[]).iter().filter(|r| r["template_id"].as_u64() == id.parse().ok()).all(|r| r["anomaly"] == true));

    let bad = bin().args(["ack", "--state"]).arg(&state).arg("99999").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("has no template #99999"), "{bad:?}");
    let empty = tempfile::tempdir().unwrap();
    let none = bin().args(["ack", "--state"]).arg(empty.path()).arg("1").output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("holds no templates yet"), "{none:?}");
}

#[test]
fn a_running_filter_applies_an_ack_at_its_next_seal() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = bin()
        .args(["filter", "--multiline", "off", "--epoch", "50", "--window", "0.2", "--state"])
        .arg(&state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // a filter that stops answering line by line must fail this test, not hang CI
    kill_after_a_minute(&child);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut send = |line: &str| -> serde_json::Value {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut out = String::new();
        stdout.read_line(&mut out).unwrap();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("no answer to {line:?} ({e}): filter hung or died"))
    };
    let error = "ERROR disk sda failed: I/O error";
    for i in 0..400 {
        send(&if i % 10 == 5 { error.to_string() } else { format!("INFO request {i} served") });
    }
    let v = send(error);
    assert_eq!(v["anomaly"], true, "{v}");
    // the next record after the window seals it (after answering): wait for templates.tls
    std::thread::sleep(std::time::Duration::from_millis(300));
    send("INFO request 1 served");
    let saved = state.join("templates.tls");
    for _ in 0..1000 {
        if saved.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let id = v["template_id"].as_u64().unwrap().to_string();
    let ack = bin().args(["ack", "--state"]).arg(&state).arg(&id).output().unwrap();
    assert_eq!(ack.status.code(), Some(0), "{ack:?}");
    // the next record after the window triggers a seal, which applies the ack
    std::thread::sleep(std::time::Duration::from_millis(300));
    send("INFO request 2 served");
    let after = send(error);
    assert_eq!(after["anomaly"], false, "applied without a restart: {after}");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn json_records_lend_their_level_and_status_fields() {
    // journald's JSON (`journalctl -o json`): MESSAGE and a PRIORITY of "3" (error)
    let mut input = String::new();
    for i in 0..300 {
        input.push_str(&format!("{{\"MESSAGE\":\"request {i} served\",\"PRIORITY\":\"6\",\"_PID\":\"42\"}}\n"));
    }
    input.push_str("{\"MESSAGE\":\"cache rebuilt\",\"PRIORITY\":\"3\",\"_PID\":\"42\"}\n");
    input.push_str("{\"MESSAGE\":\"cache rebuilt\",\"PRIORITY\":\"6\",\"_PID\":\"42\"}\n");
    // an application's JSON: the status in a field of its own
    for i in 0..300 {
        input.push_str(&format!("{{\"msg\":\"request done\",\"level\":\"info\",\"status\":200,\"path\":\"/a/{i}\"}}\n"));
    }
    input.push_str("{\"msg\":\"request done\",\"level\":\"info\",\"status\":503,\"path\":\"/a/1\"}\n");
    let out = run_with_stdin(bin().args(["scan", "--format", "jsonl"]), input.as_bytes());
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), 603);
    assert_eq!(rows[300]["level"], "error", "{}", rows[300]);
    assert_eq!(rows[300]["anomaly"], true, "an error nobody saw before: {}", rows[300]);
    assert_eq!(rows[301]["level"], "info");
    assert_eq!(rows[302]["template"], "request done status=2xx");
    assert_eq!(rows[602]["template"], "request done status=5xx");
    assert_eq!(rows[602]["anomaly"], true, "{}", rows[602]);
    assert!(rows[602]["reason"].as_str().unwrap().contains("HTTP 5xx"), "{}", rows[602]);
    // filter tags such records the same way and keeps their bytes
    let filtered = run_with_stdin(bin().args(["filter"]), input.as_bytes());
    let recs = jsonl(&filtered.stdout);
    assert_eq!(recs[602]["anomaly"], true);
    assert_eq!(recs[602]["status"], 503);
    assert_eq!(recs[602]["template"], "request done status=5xx");
}

/// A Java service log with stack traces, as logback writes it.
fn java_log() -> String {
    let mut s = String::new();
    for i in 0..400 {
        s.push_str(&format!("2026-11-24 10:{:02}:{:02},{:03} INFO  [http-nio-8080-exec-{}] c.e.OrderService - order {} placed in {} ms\n", i / 60 % 60, i % 60, i % 1000, i % 8, 1000 + i, i % 90));
        if i % 130 == 129 {
            s.push_str(&format!("2026-11-24 10:{:02}:{:02},500 ERROR [http-nio-8080-exec-3] c.e.OrderService - payment failed for order {}\n", i / 60 % 60, i % 60, 1000 + i));
            s.push_str("java.net.SocketTimeoutException: Read timed out\n");
            s.push_str("\tat java.base/java.net.SocketInputStream.socketRead0(Native Method)\n");
            s.push_str("\tat com.example.pay.Client.charge(Client.java:88)\n");
            s.push_str("\tat com.example.OrderService.place(OrderService.java:41)\n");
            s.push_str("Caused by: java.io.IOException: connection reset\n");
            s.push_str("\t... 12 more\n");
        }
    }
    s
}

#[test]
fn a_stack_trace_is_one_record_not_one_anomaly_per_frame() {
    let log = java_log();
    let report = run_with_stdin(bin().args(["scan", "--top", "20"]), log.as_bytes());
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(!text.contains("at <*>"), "frames are not templates of their own:\n{text}");
    assert!(text.contains("payment failed") && text.contains("(+6 lines)"), "{text}");
    // JSONL keeps one object per input line by default…
    let rows = jsonl(&run_with_stdin(bin().args(["scan", "--format", "jsonl"]), log.as_bytes()).stdout);
    assert_eq!(rows.len(), log.lines().count());
    // …and with --multiline auto, one per record, with how many lines it spans
    let records = jsonl(&run_with_stdin(bin().args(["scan", "--format", "jsonl", "--multiline", "auto"]), log.as_bytes()).stdout);
    assert_eq!(records.len(), 400 + 3);
    let trace = records.iter().find(|r| r["template"].as_str().unwrap().contains("payment failed")).unwrap();
    assert_eq!(trace["lines"], 7);
    assert!(records.iter().filter(|r| r["lines"] == 1).count() == 400);
}

#[test]
fn diff_reports_what_is_new_or_changed_with_scan_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    let bad = dir.path().join("bad.log");
    let log = java_log();
    let clean: String = log.lines().filter(|l| !l.contains("ERROR") && !l.starts_with(['\t', 'j', 'C'])).map(|l| format!("{l}\n")).collect();
    std::fs::write(&good, &clean).unwrap();
    std::fs::write(&bad, &log).unwrap();
    let out = bin().arg("diff").arg(&good).arg("--").arg(&bad).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("new in the compared logs: 3 lines in 1 templates"), "{text}");
    assert!(text.contains("payment failed for order <*>") && text.contains("(+6 lines)"), "{text}");
    let same = bin().arg("diff").arg(&good).arg("--").arg(&good).output().unwrap();
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stdout));
    let usage = bin().arg("diff").arg(&good).output().unwrap();
    assert_eq!(usage.status.code(), Some(2), "the logs to compare are required");
}

#[test]
fn markdown_report_for_tickets() {
    let out = bin().args(["scan", "--format", "markdown", "--top", "3"]).arg(loghub("Hadoop")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("## turbolog report\n"), "{md}");
    assert!(md.contains("| score | lines | template | reason | seen |"));
    assert_eq!(md.lines().filter(|l| l.starts_with("| 0.") || l.starts_with("| 1.")).count(), 3, "{md}");
    assert_eq!(md.matches("<details>").count(), 3);
    assert!(md.contains("2015-10-18 "), "times, not only line numbers: {md}");
}

#[test]
fn history_keeps_the_anomalies_of_every_run_and_inspect_shows_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    for _ in 0..2 {
        let out = bin().args(["scan", "--state"]).arg(&state).arg(loghub("Hadoop")).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
    }
    let h = bin().args(["history", "--state"]).arg(&state).output().unwrap();
    let text = String::from_utf8_lossy(&h.stdout);
    assert!(h.status.success(), "{h:?}");
    assert!(text.contains("ERROR IN CONTACTING RM."), "{text}");
    let rm: Vec<&str> = text.lines().filter(|l| l.contains("ERROR IN CONTACTING RM.")).collect();
    assert_eq!(rm.len(), 2, "one entry per run (window): {text}");
    let id = rm[0].split_whitespace().nth(2).unwrap().trim_start_matches('#').to_string();
    let one = bin().args(["history", "--since", "1h", "--template", &id, "--state"]).arg(&state).output().unwrap();
    let one = String::from_utf8_lossy(&one.stdout);
    assert_eq!(one.lines().filter(|l| l.contains(&format!("#{id} "))).count(), 2, "{one}");
    assert!(one.contains("2 windows"), "{one}");
    let inspect = bin().args(["inspect", "--state"]).arg(&state).output().unwrap();
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("newest anomalous templates"));
    let bad = bin().args(["history", "--since", "2", "--state"]).arg(&state).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn journald_json_is_read_as_is() {
    // `journalctl -o json` records: MESSAGE, PRIORITY, __REALTIME_TIMESTAMP (µs)
    let mut input = String::new();
    for i in 0..200u64 {
        input.push_str(&format!(
            "{{\"__REALTIME_TIMESTAMP\":\"{}\",\"_SYSTEMD_UNIT\":\"web.service\",\"PRIORITY\":\"6\",\"MESSAGE\":\"GET /api/items/{i} served in {} ms\"}}\n",
            1_795_515_600_000_000u64 + i * 1_000_000,
            i % 50
        ));
    }
    input.push_str("{\"__REALTIME_TIMESTAMP\":\"1795515900000000\",\"_SYSTEMD_UNIT\":\"web.service\",\"PRIORITY\":\"2\",\"MESSAGE\":\"database connection pool exhausted\"}\n");
    let rows = jsonl(&run_with_stdin(bin().args(["scan", "--format", "jsonl"]), input.as_bytes()).stdout);
    assert_eq!(rows[0]["template"], "GET <*> served in <*> ms");
    assert_eq!(rows[200]["level"], "critical");
    assert_eq!(rows[200]["anomaly"], true);
    let filtered = jsonl(&run_with_stdin(bin().args(["filter", "--only-anomalies"]), input.as_bytes()).stdout);
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0]["_SYSTEMD_UNIT"], "web.service", "the record keeps its fields");
}

#[test]
fn watch_follows_rotation_truncation_and_late_files_and_stops_cleanly() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let state = dir.path().join("state");
    let mut child = bin()
        .args(["watch", "--interval", "50", "--state"])
        .arg(&state)
        .arg(&log) // does not exist yet
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    kill_after_a_minute(&child); // a hung watch fails the test, not CI
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
                if l.contains(needle) {
                    return l;
                }
            }
        }
        panic!("watch never printed {needle:?}");
    };
    let append = |path: &std::path::Path, text: &str| {
        use std::io::Write;
        std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
    };
    let normal: String = (0..300).map(|i| format!("2026-11-24T10:00:00Z INFO request {i} served\n")).collect();
    // the file appears after watch started (and looked for it): read from its start
    std::thread::sleep(std::time::Duration::from_millis(500));
    append(&log, &normal);
    append(&log, "2026-11-24T10:00:01Z ERROR disk sda failed: I/O error\n");
    let first = wait_for("disk sda failed");
    assert!(first.contains("app.log:301"), "{first}");
    // rotation: the file is renamed and a new one created
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, "2026-11-24T10:00:02Z CRITICAL kernel: Out of memory: Killed process 42 (java)\n");
    wait_for("Out of memory");
    // truncation: the file starts over
    std::fs::write(&log, "").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    append(&log, "2026-11-24T10:00:03Z FATAL raft: lost quorum, stepping down\n");
    wait_for("lost quorum");
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("window sealed"), "{out:?}");
    assert!(state.join("templates.tls").exists(), "Ctrl-C sealed the window");
}

/// A child that hangs is killed after a minute: the test fails instead of holding CI up.
fn kill_after_a_minute(child: &std::process::Child) {
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        // SAFETY: kill only sends a signal
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
}

/// ECS-shaped records: the message and the level nested (`log.level`) or under a dotted key the
/// user names; a level field beats the words of the message; a record with no message is said.
#[test]
fn nested_and_dotted_keys_through_scan_and_filter() {
    let mut lines = Vec::new();
    for i in 0..200 {
        lines.push(format!(r#"{{"@timestamp":"2026-11-24T10:00:{:02}Z","log":{{"level":"info"}},"event":{{"message":"request {i} served in 12 ms"}}}}"#, i % 60));
    }
    // an Error word in the message, but the record says warn
    lines.push(r#"{"@timestamp":"2026-11-24T10:01:00Z","log":{"level":"warn"},"event":{"message":"Error budget at 80 percent for checkout"}}"#.to_string());
    let input = lines.join("\n") + "\n";
    let out = run_with_stdin(bin().args(["filter", "--fields", "all", "--message-key", "event.message"]), input.as_bytes());
    assert!(out.status.success(), "{out:?}");
    let records: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 201);
    assert!(records[0]["template"].as_str().unwrap().starts_with("request <*> served in"), "the nested message is what is scored: {}", records[0]);
    let last = records.last().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("no string message"), "{}", String::from_utf8_lossy(&out.stderr));
    let reason = last["anomaly_reason"].as_str().unwrap_or("");
    assert!(!reason.contains("error level"), "the warn field beats the word Error: {last}");

    let scan = run_with_stdin(bin().args(["scan", "--format", "jsonl", "--message-key", "event.message"]), input.as_bytes());
    let scanned: Vec<serde_json::Value> = String::from_utf8(scan.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(scanned.len(), 201);
    assert!(scanned[0]["template"].as_str().unwrap().starts_with("request <*> served in"), "{}", scanned[0]);
    // without the key: a message one level down under a default key is found as well
    let plain = run_with_stdin(bin().args(["scan", "--format", "jsonl"]), input.as_bytes());
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(!err.contains("no string message"), "{err}");
    let found: Vec<serde_json::Value> = String::from_utf8(plain.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(found[0]["template"].as_str().unwrap().starts_with("request <*> served in"), "{}", found[0]);
    // under a key no default names: said once, with what to set
    let other = input.replace("\"event\":{\"message\"", "\"event\":{\"text\"");
    let plain = run_with_stdin(bin().args(["scan", "--format", "jsonl"]), other.as_bytes());
    let err = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(err.matches("no string message").count(), 1, "{err}");
    assert!(err.contains("--message-key"), "{err}");
}

/// A file the real `zstd` tool wrote (two frames, as `cat a.zst b.zst` gives) is read like
/// the plain file, by name and through standard input.
#[test]
fn zstd_input_is_read_through_like_the_plain_file() {
    let Ok(v) = Command::new("zstd").arg("--version").output() else {
        eprintln!("*** SKIPPED zstd_input_is_read_through_like_the_plain_file: no zstd tool on PATH (apt-get install zstd) ***");
        return;
    };
    assert!(v.status.success());
    let plain = loghub("OpenSSH");
    let text = std::fs::read(&plain).unwrap();
    let half = text.len() / 2 + text[text.len() / 2..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let dir = tempfile::tempdir().unwrap();
    let mut z = Vec::new();
    for part in [&text[..half], &text[half..]] {
        let out = run_with_stdin(Command::new("zstd").args(["-q", "-c", "-"]), part);
        assert!(out.status.success(), "{out:?}");
        z.extend(out.stdout);
    }
    let z_path = dir.path().join("OpenSSH_2k.log.zst");
    std::fs::write(&z_path, &z).unwrap();
    let want = bin().args(["scan", "--format", "jsonl"]).arg(&plain).output().unwrap();
    let got = bin().args(["scan", "--format", "jsonl"]).arg(&z_path).output().unwrap();
    assert_eq!(got.status.code(), want.status.code(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(got.stdout, want.stdout, "zstd and plain give the same verdicts");
    let piped = run_with_stdin(bin().args(["scan", "--format", "jsonl"]), &z);
    assert_eq!(piped.stdout, want.stdout);
    // cut short: said, exit 2
    let cut = run_with_stdin(bin().args(["scan"]), &z[..z.len() / 3]);
    assert_eq!(cut.status.code(), Some(2), "{cut:?}");
}

#[test]
fn gzip_input_is_read_through_like_the_plain_file() {
    let plain = loghub("OpenSSH");
    let dir = tempfile::tempdir().unwrap();
    let gz_path = dir.path().join("OpenSSH_2k.log.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&gz_path).unwrap(), flate2::Compression::default());
    gz.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    gz.finish().unwrap();
    let want = bin().args(["scan", "--format", "jsonl"]).arg(&plain).output().unwrap();
    let got = bin().args(["scan", "--format", "jsonl"]).arg(&gz_path).output().unwrap();
    assert_eq!(got.status.code(), want.status.code(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(jsonl(&got.stdout).len(), 2000);
    assert_eq!(got.stdout, want.stdout, "gzip and plain give the same verdicts");
    // the same through standard input
    let piped = run_with_stdin(bin().args(["scan", "--format", "jsonl"]), &std::fs::read(&gz_path).unwrap());
    assert_eq!(piped.stdout, want.stdout);
}

#[test]
fn binary_input_stops_with_exit_2_and_says_what_it_seems_to_be() {
    // a real binary file: the turbolog executable itself
    let out = bin().arg("scan").arg(env!("CARGO_BIN_EXE_turbolog")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a text log") && err.contains("ELF"), "{err}");
    assert!(out.stdout.is_empty(), "nothing is scanned");

    // unrecognised binary data on standard input, through `filter` too
    let noise: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for cmd in ["scan", "filter"] {
        let out = run_with_stdin(bin().arg(cmd), &noise);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("standard input is not a text log") && err.contains("binary data"), "{cmd}: {err}");
    }
}
