//! End to end with a real Fluent Bit, found through `FLUENT_BIT_BIN` (v3.2 to v5.x).
//! Without it these tests say so loudly and pass as skipped.
//!
//! Build Fluent Bit from its source outside this repository to run them locally; the README
//! says how to point the variable at it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fluent_bit() -> Option<PathBuf> {
    match std::env::var_os("FLUENT_BIT_BIN") {
        Some(p) if Path::new(&p).exists() => Some(PathBuf::from(p)),
        Some(p) => panic!("FLUENT_BIT_BIN={} does not exist", Path::new(&p).display()),
        None => {
            // straight to the stderr stream: the test harness does not capture this, so it shows
            use std::io::Write;
            let _ = std::io::stderr().write_all(
                b"\n*** SKIPPED: FLUENT_BIT_BIN is not set: the real Fluent Bit end-to-end test did not run ***\n",
            );
            None
        }
    }
}

/// The plugin under the name Fluent Bit requires.
fn plugin(dir: &Path) -> PathBuf {
    let target = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    let lib = target.join("libturbolog.so");
    // `cargo test` builds the rlib, not the shared library: build it (a no-op when up to date),
    // so that a stale one is never tested
    assert!(Command::new(env!("CARGO")).args(["build", "--lib"]).status().unwrap().success());
    let dest = dir.join("flb-filter_turbolog.so");
    std::fs::copy(&lib, &dest).unwrap();
    dest
}

fn loghub_copy(dir: &Path, name: &str) -> (PathBuf, usize) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/datasets/loghub/{name}/{name}_2k.log"));
    let mut text = std::fs::read_to_string(&src).unwrap();
    if !text.ends_with('\n') {
        text.push('\n'); // in_tail waits for the newline of a last line
    }
    let dest = dir.join(format!("{name}.log"));
    std::fs::write(&dest, &text).unwrap();
    (dest, text.lines().count())
}

fn classic_conf(dir: &Path, log: &Path, state: &Path, extra: &str) -> PathBuf {
    let conf = format!(
        "[SERVICE]\n    Flush 1\n    Log_Level info\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_from_Head true\n    Exit_On_Eof true\n    Buffer_Chunk_Size 1MB\n    Buffer_Max_Size 2MB\n    Mem_Buf_Limit 50MB\n\
         [FILTER]\n    Name turbolog\n    Match *\n    State_Dir {}\n{extra}\
         [OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File out.jsonl\n    Format plain\n",
        log.display(),
        state.display(),
        dir.display()
    );
    let p = dir.join("fluent-bit.conf");
    std::fs::write(&p, conf).unwrap();
    p
}

fn run(bin: &Path, plugin: &Path, conf: &Path) -> (bool, String) {
    let out = Command::new(bin).arg("-e").arg(plugin).arg("-c").arg(conf).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).expect(l)).collect()
}

#[test]
fn tail_through_the_plugin_learns_and_remembers() {
    let Some(bin) = fluent_bit() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path());
    let (log, lines) = loghub_copy(dir.path(), "OpenSSH");
    let state = dir.path().join("state");
    let conf = classic_conf(dir.path(), &log, &state, "    Window 1\n");
    let (ok, out) = run(&bin, &plugin, &conf);
    assert!(ok, "{out}");
    assert!(out.contains("[filter:turbolog] version"), "{out}");
    let first = records(&dir.path().join("out.jsonl"));
    assert_eq!(first.len(), lines, "every record arrived");
    assert!(first.iter().all(|r| r["anomaly"].is_boolean() && r["template_id"].is_u64() && r["log"].is_string()));
    // the default field policy (lean): template and reason only on anomalies
    assert!(first.iter().all(|r| (r["anomaly"] == true) == r.get("template").is_some()), "template only on anomalies");
    assert!(first.iter().filter(|r| r["anomaly"] == true).all(|r| r["anomaly_reason"].is_string()));
    let anomalies_1 = first.iter().filter(|r| r["anomaly"] == true).count();
    assert!(anomalies_1 > 0, "the first pass over a new log flags something");
    assert!(first.iter().filter(|r| r["anomaly"] == true).all(|r| r["anomaly_reason"].is_string()));
    assert!(state.join("templates.tls").exists(), "state saved in state_dir");

    std::fs::remove_file(dir.path().join("out.jsonl")).unwrap();
    let (ok, out) = run(&bin, &plugin, &conf);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("templates from {lines} earlier records")), "{out}");
    let second = records(&dir.path().join("out.jsonl"));
    assert_eq!(second.len(), lines);
    let anomalies_2 = second.iter().filter(|r| r["anomaly"] == true).count();
    // printed past the harness's capture: the README quotes these
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("fluent_bit: OpenSSH through the plugin: {anomalies_1} anomalies on the first pass, {anomalies_2} after a restart on the same state\n").as_bytes(),
    );
    // what was learned carried over; what stays flagged is trouble (recurring errors are flagged
    // until acknowledged, by design)
    assert!(anomalies_2 * 3 < anomalies_1, "learning carried over: {anomalies_2} vs {anomalies_1}");
    for r in second.iter().filter(|r| r["anomaly"] == true) {
        let reason = r["anomaly_reason"].as_str().unwrap();
        assert!(reason.contains("trouble") || reason.starts_with("recurring"), "{reason}");
    }
    // same template ids for the same lines across restarts
    assert_eq!(first[10]["template_id"], second[10]["template_id"]);
}

#[test]
fn bad_configuration_stops_fluent_bit_with_a_clear_line() {
    let Some(bin) = fluent_bit() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path());
    let (log, _) = loghub_copy(dir.path(), "Apache");
    for (extra, expect) in [
        ("    Colour red\n", "unknown property `colour`"),
        ("    Mode sideways\n", "not one of tag, only_anomalies"),
        ("    Threshold 3\n", "outside [0, 1]"),
    ] {
        let conf = classic_conf(dir.path(), &log, &dir.path().join("state"), extra);
        let (ok, out) = run(&bin, &plugin, &conf);
        assert!(!ok, "Fluent Bit must not run with {extra:?}");
        assert!(out.contains("[filter:turbolog] invalid configuration") && out.contains(expect), "{out}");
    }
}

#[test]
fn processor_on_a_threaded_input_only_anomalies() {
    let Some(bin) = fluent_bit() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path());
    let (log, _) = loghub_copy(dir.path(), "OpenSSH");
    let yaml = format!(
        "service:\n  flush: 1\n  log_level: info\nplugins:\n  - {}\npipeline:\n  inputs:\n    - name: tail\n      path: {}\n      read_from_head: true\n      exit_on_eof: true\n      threaded: on\n      mem_buf_limit: 50MB\n      buffer_chunk_size: 1MB\n      buffer_max_size: 2MB\n      processors:\n        logs:\n          - name: turbolog\n            state_dir: {}\n            mode: only_anomalies\n  outputs:\n    - name: file\n      match: '*'\n      path: {}\n      file: out.jsonl\n      format: plain\n",
        plugin.display(),
        log.display(),
        dir.path().join("state").display(),
        dir.path().display()
    );
    let conf = dir.path().join("fluent-bit.yaml");
    std::fs::write(&conf, yaml).unwrap();
    let out = Command::new(&bin).arg("-c").arg(&conf).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let rows = records(&dir.path().join("out.jsonl"));
    assert!(!rows.is_empty(), "{text}");
    assert!(rows.iter().all(|r| r["anomaly"] == true), "only anomalies pass");
    assert!(dir.path().join("state/templates.tls").exists());
}

/// HDFS through a real Fluent Bit with a session key: anomalous blocks come out as records of
/// their own (`turbolog_session`), beside the line records.
#[test]
fn session_verdicts_leave_fluent_bit_as_extra_records() {
    let Some(bin) = fluent_bit() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path());
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/hdfs/HDFS_dev.log");
    // the first 20 000 lines; blocks close when idle for 5 000 records
    let text: String = std::fs::read_to_string(&src).unwrap().lines().take(20_000).map(|l| format!("{l}\n")).collect();
    let log = dir.path().join("hdfs.log");
    std::fs::write(&log, &text).unwrap();
    let state = dir.path().join("state");
    let conf = classic_conf(dir.path(), &log, &state, "    Session_Key blk_-?[0-9]+\n    Session_Idle 5000\n    Mode only_anomalies\n");
    let (ok, out) = run(&bin, &plugin, &conf);
    assert!(ok, "{out}");
    let recs = records(&dir.path().join("out.jsonl"));
    let sessions: Vec<_> = recs.iter().filter(|r| r.get("turbolog_session").is_some()).collect();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("fluent_bit: HDFS 20 000 lines through the plugin: {} session verdict records\n", sessions.len()).as_bytes(),
    );
    assert!(!sessions.is_empty(), "{out}");
    for s in &sessions {
        assert_eq!(s["anomaly"], true);
        assert!(s["turbolog_session"].as_str().unwrap().starts_with("blk_"));
        assert!(s["anomaly_reason"].is_string());
    }
    assert!(state.join("sessions.tls").exists(), "profiles kept in state_dir");
}

/// `model_path`: the sentence model inside a real Fluent Bit, off the record path; needs the
/// model too (`scripts/fetch-model.sh`).
#[test]
fn the_sentence_model_inside_fluent_bit() {
    let Some(bin) = fluent_bit() else { return };
    let model = std::env::var_os("TURBOLOG_MODEL").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/model"));
    if !model.join("model.onnx").exists() {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"\n*** SKIPPED: no model in .cache/model (scripts/fetch-model.sh): model_path in Fluent Bit was not tested ***\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path());
    let (log, lines) = loghub_copy(dir.path(), "OpenSSH");
    let state = dir.path().join("state");
    let conf = classic_conf(dir.path(), &log, &state, &format!("    Model_Path {}\n", model.display()));
    let (ok, out) = run(&bin, &plugin, &conf);
    assert!(ok, "{out}");
    assert!(out.contains("embedder: all-MiniLM-L6-v2 int8") && out.contains("off the record path"), "{out}");
    let first = records(&dir.path().join("out.jsonl"));
    assert_eq!(first.len(), lines, "every record arrived");
    assert!(first.iter().any(|r| r["anomaly"] == true));
    // the vectors were saved: a restart with the model embeds nothing again
    let o = Command::new(env!("CARGO_BIN_EXE_turbolog"))
        .args(["scan", "--frozen", "--model"])
        .arg(&model)
        .arg("--state")
        .arg(&state)
        .arg(&log)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("embedded again") && err.contains("embedder: all-MiniLM"), "{err}");
    // a wrong model path stops Fluent Bit with a clear line
    let bad = classic_conf(dir.path(), &log, &dir.path().join("state2"), "    Model_Path /nonexistent/model\n");
    let (ok, out) = run(&bin, &plugin, &bad);
    assert!(!ok, "{out}");
    assert!(out.contains("model_path") && out.contains("fetch-model.sh"), "{out}");
}

/// `reduce on` in a real Fluent Bit: the filter returns smaller buffers plus summary records;
/// every record plain tagging flags arrives; per template the records that arrived, the
/// summaries' `suppressed` and the last window's summaries (logged at exit: no buffer carries
/// them) add up to what plain tagging saw.
#[test]
fn reduce_on_sends_fewer_records_keeps_every_anomaly_and_counts_the_rest() {
    let Some(bin) = fluent_bit() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path());
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/hdfs/HDFS_dev.log");
    let text: String = std::fs::read_to_string(&src).unwrap().lines().take(20_000).map(|l| format!("{l}\n")).collect();
    let log = dir.path().join("hdfs.log");
    std::fs::write(&log, &text).unwrap();
    let mut outputs = Vec::new();
    // Window 0.001: a window ends after every buffer, its summaries ride in the buffer; Window
    // 0: one window, its summaries logged at exit
    for (name, extra) in [
        ("plain", "    Window 0.001\n"),
        ("reduced", "    Window 0.001\n    Reduce on\n"),
        ("one-window", "    Window 0\n    Reduce on\n"),
    ] {
        let run_dir = dir.path().join(name);
        std::fs::create_dir_all(&run_dir).unwrap();
        let conf = classic_conf(&run_dir, &log, &run_dir.join("state"), extra);
        let (ok, out) = run(&bin, &plugin, &conf);
        assert!(ok, "{out}");
        outputs.push((records(&run_dir.join("out.jsonl")), out));
    }
    let (plain, _) = &outputs[0];
    assert_eq!(plain.len(), 20_000);
    for (i, (reduced, log_text)) in outputs.iter().enumerate().skip(1) {
        check_reduced(plain, reduced, log_text, i == 1);
    }
}

/// Every anomaly of `plain` in `reduced`; per template passed + suppressed (summaries in the
/// buffers and, at exit, in the log) = seen; `in_buffers`: summaries came out as records.
fn check_reduced(plain: &[serde_json::Value], reduced: &[serde_json::Value], log_text: &str, in_buffers: bool) {
    let (summaries, passed): (Vec<_>, Vec<_>) = reduced.iter().partition(|r| r.get("turbolog_summary").is_some());
    assert!(passed.len() * 5 < plain.len(), "{} of {} records passed", passed.len(), plain.len());
    let anomalies = |v: &[&serde_json::Value]| v.iter().filter(|r| r["anomaly"] == true).map(|r| r.to_string()).collect::<Vec<_>>();
    assert_eq!(anomalies(&passed), anomalies(&plain.iter().collect::<Vec<_>>()), "every anomaly passes");
    let mut seen = std::collections::HashMap::<u64, u64>::new();
    for r in plain {
        *seen.entry(r["template_id"].as_u64().unwrap()).or_default() += 1;
    }
    let mut counted = std::collections::HashMap::<u64, u64>::new();
    for r in &passed {
        *counted.entry(r["template_id"].as_u64().unwrap()).or_default() += 1;
    }
    for s in &summaries {
        assert!(s["log"].as_str().unwrap().contains(" more records like "), "{s}");
        *counted.entry(s["template_id"].as_u64().unwrap()).or_default() += s["suppressed"].as_u64().unwrap();
    }
    // `last window: N more records like … (template ID: …)`
    for line in log_text.lines().filter(|l| l.contains("last window: ")) {
        let n: u64 = line.split("last window: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        let id: u64 = line.rsplit("(template ").next().unwrap().split(':').next().unwrap().parse().unwrap();
        *counted.entry(id).or_default() += n;
    }
    assert_eq!(counted, seen, "per template: passed + suppressed = seen\n{log_text}");
    let in_log = log_text.lines().filter(|l| l.contains("last window: ")).count();
    let bytes = |v: &[&serde_json::Value]| v.iter().map(|r| r.to_string().len() + 1).sum::<usize>();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "fluent_bit: HDFS 20 000 lines with reduce on: {} records and {} summaries out ({} of {} bytes), {} last-window summaries logged at exit\n",
            passed.len(),
            summaries.len(),
            bytes(&passed) + bytes(&summaries),
            bytes(&plain.iter().collect::<Vec<_>>()),
            in_log
        )
        .as_bytes(),
    );
    assert!(log_text.contains("reduce: ") && log_text.contains("records held back in all"), "{log_text}");
    assert!(summaries.is_empty() != in_buffers, "{} summary records in the buffers", summaries.len());
    assert!(in_buffers || log_text.contains("last window: "), "{log_text}");
}

/// What Fluent Bit users already run for traces: `multiline.parser` on the input, turbolog after
/// it. A joined trace arrives as one record and is scored as its first line and root cause.
#[test]
fn multiline_parser_java_before_turbolog_gives_one_record_per_trace() {
    let Some(bin) = fluent_bit() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path());
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/realworld/multiline-stacktraces/fluent-bit-filter_multiline-test.log");
    let text = std::fs::read_to_string(&src).unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, format!("{}\n", text.trim_end())).unwrap();
    let state = dir.path().join("state");
    let conf = classic_conf(dir.path(), &log, &state, "    Fields all\n");
    let conf_text = std::fs::read_to_string(&conf).unwrap().replace("    Exit_On_Eof true\n", "    Exit_On_Eof true\n    multiline.parser java, go\n");
    std::fs::write(&conf, conf_text).unwrap();
    let (ok, out) = run(&bin, &plugin, &conf);
    assert!(ok, "{out}");
    let got = records(&dir.path().join("out.jsonl"));
    assert!(got.len() < text.lines().count() / 4, "the traces arrive joined: {} records for {} lines", got.len(), text.lines().count());
    let java = got.iter().find(|r| r["log"].as_str().unwrap().contains("RuntimeException")).expect("the Java trace");
    let log_text = java["log"].as_str().unwrap();
    assert!(log_text.contains("MyProject.main(MyProject.java:6)"), "the whole trace is one record: {log_text}");
    assert_eq!(java["anomaly"], true, "{java}");
    let template = java["template"].as_str().unwrap();
    assert!(!template.contains("MyProject.java"), "frames are not template text: {template}");
    assert!(got.iter().all(|r| r["anomaly"].is_boolean()), "every record tagged");
}

#[test]
fn plugin_multiline_auto_joins_traces_as_filter_does_and_loses_no_line() {
    let Some(bin) = fluent_bit() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path());
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/realworld/multiline-stacktraces/fluent-bit-filter_multiline-test.log");
    let text = std::fs::read_to_string(&src).unwrap();
    let text = format!("{}\n", text.trim_end());
    let log = dir.path().join("app.log");
    std::fs::write(&log, &text).unwrap();
    let state = dir.path().join("state");
    let conf = classic_conf(dir.path(), &log, &state, "    Fields all\n    Multiline auto\n");
    let (ok, out) = run(&bin, &plugin, &conf);
    assert!(ok, "{out}");
    let got = records(&dir.path().join("out.jsonl"));
    // the events `turbolog filter --multiline auto` makes of the same text: the same rules
    let mut child = Command::new(env!("CARGO_BIN_EXE_turbolog"))
        .args(["filter", "--multiline", "auto"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let events = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap().lines().count();
    assert_eq!(got.len(), events, "one record per event (the file fits one buffer)");
    assert!(got.len() < text.lines().count() / 4, "{} records for {} lines", got.len(), text.lines().count());
    let lines: u64 = got.iter().map(|r| r.get("lines").and_then(serde_json::Value::as_u64).unwrap_or(1)).sum();
    assert_eq!(lines as usize, text.lines().count(), "every line is in a record");
    let java = got.iter().find(|r| r["log"].as_str().unwrap().contains("RuntimeException")).expect("the Java trace");
    assert!(java["log"].as_str().unwrap().contains("MyProject.main(MyProject.java:6)"), "{java}");
    assert!(!java["template"].as_str().unwrap().contains("MyProject.java"), "frames are not template text: {java}");
    assert!(out.contains("multiline:") && out.contains("continuation records joined"), "{out}");
}
