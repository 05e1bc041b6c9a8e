//! The embedded host (what the Fluent Bit plugin and the C API run) picks up `turbolog ack`
//! at its next window seal, without a restart.

use std::process::Command;
use std::sync::Arc;

use turbolog::pipeline::config::Settings;
use turbolog::host::embedded::{Embedded, Filtered, LogLevel};

mod common;

fn log(_: LogLevel, _: &str) {}

/// Anomalies among the records of one chunk.
fn anomalies(e: &Arc<Embedded>, lines: &[String]) -> u64 {
    e.filter(&common::chunk(lines, 1_795_515_600), log, |f| match f {
        Filtered::Modified(_, stats) => stats.anomalies,
        _ => panic!("records were not tagged"),
    })
}

#[test]
fn an_ack_reaches_a_running_plugin_at_the_next_seal() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap().to_string();
    let settings = Settings::from_pairs([("state_dir", state.as_str()), ("epoch", "50"), ("window", "0")]).unwrap();
    let e = Embedded::open(settings, log).unwrap();
    let error = "ERROR disk sda failed: I/O error".to_string();
    let window: Vec<String> = (0..50).map(|i| if i % 10 == 5 { error.clone() } else { format!("INFO request {i} served") }).collect();
    for _ in 0..10 {
        anomalies(&e, &window);
    }
    assert_eq!(anomalies(&e, &window), 5, "the recurring error is flagged in every window");
    e.flush(log).unwrap();
    let snap = turbolog::store::templates_file::load(dir.path()).unwrap().unwrap();
    let id = snap.templates.iter().find(|t| t.text.contains("failed")).unwrap().id;

    let ack = Command::new(env!("CARGO_BIN_EXE_turbolog")).args(["ack", "--state", &state, &id.to_string()]).output().unwrap();
    assert!(ack.status.success(), "{ack:?}");
    assert_eq!(anomalies(&e, &window), 5, "not before the seal");
    e.flush(log).unwrap();
    assert_eq!(anomalies(&e, &window), 0, "applied at the seal, no restart");

    let undo = Command::new(env!("CARGO_BIN_EXE_turbolog")).args(["ack", "--undo", "--state", &state, &id.to_string()]).output().unwrap();
    assert!(undo.status.success(), "{undo:?}");
    e.flush(log).unwrap();
    assert_eq!(anomalies(&e, &window), 5, "withdrawn: flagged again");

    // a corrupt acks file leaves the acks in force and the host running
    std::fs::write(dir.path().join("acks.tls"), b"not an acks file, long enough to be read").unwrap();
    e.flush(log).unwrap();
    assert_eq!(anomalies(&e, &window), 5);
}
