//! `turbolog serve` between real hosts, with the configs committed under `plugin-conf/`:
//! Fluent Bit (`FLUENT_BIT_BIN`) over Forward, HTTP and TCP, and Vector (`VECTOR_BIN`) over its
//! `socket` and `http` sinks. Without a host its test says so loudly and passes as skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::{free_port, Serve};

fn host(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) if Path::new(&p).exists() => Some(PathBuf::from(p)),
        Some(p) => panic!("{var}={} does not exist", Path::new(&p).display()),
        None => {
            use std::io::Write;
            let _ = std::io::stderr().write_all(format!("\n*** SKIPPED: {var} is not set: the real {what} round trip through turbolog serve did not run ***\n").as_bytes());
            None
        }
    }
}

fn conf(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugin-conf").join(name)
}

/// Real log lines: the first `n` of a loghub system, ending in a newline.
fn log_lines(dir: &Path, n: usize) -> (PathBuf, Vec<String>) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/loghub/OpenSSH/OpenSSH_2k.log");
    let lines: Vec<String> = std::fs::read_to_string(src).unwrap().lines().take(n).map(String::from).collect();
    let p = dir.join("app.log");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    (p, lines)
}

/// Lines of `path` that are tagged records, once there are `n` (or the time is up).
fn wait_for_tagged(path: &Path, n: usize, secs: u64, field: &str) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let tagged: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.get(l.find('{')?..)?).ok())
            .filter(|v| v.get("anomaly").is_some() && v.get(field).is_some())
            .collect();
        if tagged.len() >= n || Instant::now() > deadline {
            return tagged;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn fluent_bit_forward_http_and_tcp_through_serve_and_back() {
    let Some(fb) = host("FLUENT_BIT_BIN", "Fluent Bit") else { return };
    let dir = tempfile::tempdir().unwrap();
    let n = 500;
    let (log, lines) = log_lines(dir.path(), n);
    let return_port = free_port().rsplit(':').next().unwrap().to_string();
    let state = dir.path().join("state");
    let serve = Serve::start(&[
        "--forward",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--tcp",
        "127.0.0.1:0",
        "--state",
        state.to_str().unwrap(),
        "--to",
        &format!("forward://127.0.0.1:{return_port}"),
    ]);
    let port = |input: &str| serve.addr(input).rsplit(':').next().unwrap().to_string();
    // the committed config (tail → forward → serve → forward → file), plus the same file sent
    // through Fluent Bit's `http` (JSON) and `tcp` (json_lines) outputs
    let mut config = std::fs::read_to_string(conf("fluent-bit-serve.conf")).unwrap();
    config.push_str(&format!(
        "\n[INPUT]\n    Name tail\n    Path {log}\n    Tag viahttp\n    Read_from_Head true\n\
         [OUTPUT]\n    Name http\n    Match viahttp\n    Host 127.0.0.1\n    Port {http}\n    URI /\n    Format json\n\
         [INPUT]\n    Name tail\n    Path {log}\n    Tag viatcp\n    Read_from_Head true\n\
         [OUTPUT]\n    Name tcp\n    Match viatcp\n    Host 127.0.0.1\n    Port {tcp}\n    Format json_lines\n",
        log = log.display(),
        http = port("http"),
        tcp = port("tcp"),
    ));
    let conf_path = dir.path().join("fluent-bit.conf");
    std::fs::write(&conf_path, config).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let _fb = Killed(
        Command::new(&fb)
            .arg("-c")
            .arg(&conf_path)
            .env("LOG_PATH", &log)
            .env("TURBOLOG_HOST", "127.0.0.1")
            .env("TURBOLOG_FORWARD_PORT", port("forward"))
            .env("RETURN_PORT", &return_port)
            .env("OUT_DIR", &out_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let tagged = wait_for_tagged(&out_dir.join("tagged.jsonl"), 3 * n, 90, "log");
    assert_eq!(tagged.len(), 3 * n, "serve said: {}", serve.stderr.lock().unwrap());
    for want in &lines[..20] {
        let copies = tagged.iter().filter(|v| v["log"] == *want.as_str()).count();
        assert!(copies >= 3, "{want} came back {copies} times, not once per route");
    }
    assert!(tagged.iter().all(|v| v["anomaly"].is_boolean() && v["template_id"].is_number()));
    assert_eq!(serve.metric("turbolog_records_in_total{input=\"forward\"}"), n as f64);
    assert_eq!(serve.metric("turbolog_records_in_total{input=\"http\"}"), n as f64);
    assert_eq!(serve.metric("turbolog_records_in_total{input=\"tcp\"}"), n as f64);
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    assert!(state.join("templates.tls").exists());
}

/// plugin-conf/otel/fluent-bit.yaml: Fluent Bit's `opentelemetry` output → `serve --otlp-http`
/// → `--to otlp-http://` → Fluent Bit's `opentelemetry` input → a file: every line once.
#[test]
fn fluent_bit_opentelemetry_output_through_serve_to_its_opentelemetry_input() {
    let Some(fb) = host("FLUENT_BIT_BIN", "Fluent Bit") else { return };
    let dir = tempfile::tempdir().unwrap();
    let n = 300;
    let (log, lines) = log_lines(dir.path(), n);
    let return_port = free_port().rsplit(':').next().unwrap().to_string();
    let serve = Serve::start(&["--otlp-http", "127.0.0.1:0", "--to", &format!("otlp-http://127.0.0.1:{return_port}")]);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let _fb = Killed(
        Command::new(&fb)
            .arg("-c")
            .arg(conf("otel/fluent-bit.yaml"))
            .env("LOG_PATH", &log)
            .env("TURBOLOG_OTLP_PORT", serve.addr("otlp-http").rsplit(':').next().unwrap())
            .env("RETURN_PORT", &return_port)
            .env("OUT_DIR", &out_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = out_dir.join("tagged.jsonl");
    let read = || -> Vec<serde_json::Value> { std::fs::read_to_string(&out).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect() };
    let deadline = Instant::now() + Duration::from_secs(60);
    while read().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // a duplicate would show up now
    std::thread::sleep(Duration::from_millis(500));
    let got = read();
    assert_eq!(got.len(), n, "every line once: serve said {}", serve.stderr.lock().unwrap());
    for want in &lines {
        assert_eq!(got.iter().filter(|v| v["log"] == *want.as_str()).count(), 1, "{want}");
    }
    assert_eq!(serve.metric("turbolog_records_in_total{input=\"otlp_http\"}"), n as f64);
    assert_eq!(serve.metric("turbolog_records_out_total"), n as f64);
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
}

/// Runs Vector with a committed config, its addresses and paths replaced by the test's.
fn vector_round_trip(config: &str, serve_input: &[&str]) {
    let Some(vector) = host("VECTOR_BIN", "Vector") else { return };
    let dir = tempfile::tempdir().unwrap();
    let n = 400;
    let (log, lines) = log_lines(dir.path(), n);
    let ret = free_port();
    let serve_args: Vec<String> = serve_input.iter().map(|s| s.to_string()).chain(["--to".into(), format!("tcp://{ret}")]).collect();
    let serve = Serve::start(&serve_args.iter().map(String::as_str).collect::<Vec<_>>());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let out = dir.path().join("tagged.jsonl");
    let text = std::fs::read_to_string(conf(config)).unwrap();
    let mut replaced = text
        .replace("/var/lib/vector", data.to_str().unwrap())
        .replace("/var/log/app/*.log", log.to_str().unwrap())
        .replace("/var/log/turbolog/tagged.jsonl", out.to_str().unwrap())
        .replace("127.0.0.1:9001", &ret);
    if let Some(a) = serve.try_addr("tcp") {
        replaced = replaced.replace("127.0.0.1:9000", a);
    }
    if let Some(a) = serve.try_addr("http") {
        replaced = replaced.replace("127.0.0.1:9002", a);
    }
    assert_ne!(replaced, text);
    let ext = config.rsplit('.').next().unwrap();
    let conf_path = dir.path().join(format!("vector.{ext}"));
    std::fs::write(&conf_path, replaced).unwrap();
    let vlog = std::fs::File::create(dir.path().join("vector.log")).unwrap();
    let _v = Killed(Command::new(&vector).arg("--config").arg(&conf_path).stdout(Stdio::null()).stderr(vlog).spawn().unwrap());
    let tagged = wait_for_tagged(&out, n, 90, "message");
    assert_eq!(
        tagged.len(),
        n,
        "serve said: {}\nvector said: {}",
        serve.stderr.lock().unwrap(),
        std::fs::read_to_string(dir.path().join("vector.log")).unwrap_or_default()
    );
    let got: Vec<&str> = tagged.iter().map(|v| v["message"].as_str().unwrap()).collect();
    assert_eq!(got, lines.iter().map(String::as_str).collect::<Vec<_>>(), "records changed or reordered");
    assert!(tagged.iter().all(|v| v["anomaly"].is_boolean() && v["anomaly_score"].is_number() && v["file"].is_string()));
    serve.sigterm();
    assert_eq!(serve.wait(30).0, 0);
}

#[test]
fn vector_socket_sink_through_serve_and_back_with_the_yaml_config() {
    vector_round_trip("vector/turbolog.yaml", &["--tcp", "127.0.0.1:0"]);
}

#[test]
fn vector_http_sink_through_serve_and_back_with_the_toml_config() {
    vector_round_trip("vector/turbolog.toml", &["--http", "127.0.0.1:0"]);
}

/// The pieces of `plugin-conf/k8s/sidecar.yaml` together, without a cluster: its Fluent Bit
/// config and the turbolog container's environment (ports moved to free ones), probed on the
/// admin endpoint as the kubelet would.
#[test]
fn kubernetes_sidecar_manifest_pieces_work_together() {
    let Some(fb) = host("FLUENT_BIT_BIN", "Fluent Bit") else { return };
    let manifest = std::fs::read_to_string(conf("k8s/sidecar.yaml")).unwrap();
    let fb_conf: String = manifest
        .split("fluent-bit.conf: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.starts_with("---"))
        .map(|l| l.strip_prefix("    ").unwrap_or(l).to_string() + "\n")
        .collect();
    let env: Vec<(String, String)> = manifest
        .split("- name: turbolog\n")
        .nth(1)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("- {name: ")?;
            let (k, v) = l.split_once(", value: ")?;
            Some((k.to_string(), v.trim_end_matches('}').trim_matches('"').to_string()))
        })
        .collect();
    assert!(env.iter().any(|(k, _)| k == "TURBOLOG_FORWARD"), "{env:?}");
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_lines(dir.path(), 300);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let (fwd, back, admin) = (free_port(), free_port(), free_port());
    let port = |a: &str| a.rsplit(':').next().unwrap().to_string();
    let fb_conf = fb_conf
        .replace("/var/log/app/*.log", log.to_str().unwrap())
        .replace("/var/lib/turbolog", state.to_str().unwrap())
        .replace("24230", &port(&fwd))
        .replace("24231", &port(&back))
        .replace("Name   stdout", "Name   file\n    Path   OUT_DIR\n    File   tagged.jsonl")
        .replace("Format json_lines", "Format plain")
        .replace("OUT_DIR", dir.path().to_str().unwrap());
    let conf_path = dir.path().join("fluent-bit.conf");
    std::fs::write(&conf_path, fb_conf).unwrap();
    let mut turbolog = Command::new(env!("CARGO_BIN_EXE_turbolog"));
    turbolog.arg("serve").stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in &env {
        let v = v
            .replace("/var/lib/turbolog", state.to_str().unwrap())
            .replace("127.0.0.1:24230", &fwd)
            .replace("127.0.0.1:24231", &back)
            .replace("0.0.0.0:9102", &format!("0.0.0.0:{}", port(&admin)));
        turbolog.env(k, v);
    }
    let _t = Killed(turbolog.spawn().unwrap());
    let _fb = Killed(Command::new(&fb).arg("-c").arg(&conf_path).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let tagged = wait_for_tagged(&dir.path().join("tagged.jsonl"), 300, 90, "log");
    assert_eq!(tagged.len(), 300);
    // the kubelet's probes reach the admin endpoint on a non-loopback address
    let ip = local_ip().unwrap_or_else(|| "127.0.0.1".into());
    let (status, body) = common::serve::http(&format!("{ip}:{}", port(&admin)), "GET", "/readyz", &[], b"");
    assert_eq!((status, body.trim()), (200, "ready"));
}

/// An address of this machine other than loopback, if it has one.
fn local_ip() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.255:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

/// `--to forward://` into Vector's `fluent` source, which acknowledges each chunk.
#[test]
fn serve_forwards_to_vector_fluent_source() {
    let Some(vector) = host("VECTOR_BIN", "Vector") else { return };
    let dir = tempfile::tempdir().unwrap();
    let fluent = free_port();
    let out = dir.path().join("tagged.jsonl");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let config = format!(
        "data_dir: \"{}\"\nsources:\n  fluent:\n    type: fluent\n    address: \"{fluent}\"\n    acknowledgements:\n      enabled: true\n\
         sinks:\n  out:\n    type: file\n    inputs: [fluent]\n    path: \"{}\"\n    encoding:\n      codec: json\n",
        data.display(),
        out.display()
    );
    let conf_path = dir.path().join("vector.yaml");
    std::fs::write(&conf_path, config).unwrap();
    let _v = Killed(Command::new(&vector).arg("--config").arg(&conf_path).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let serve = Serve::start(&["--tcp", "127.0.0.1:0", "--to", &format!("forward://{fluent}")]);
    let lines: Vec<String> = (0..200).map(|i| format!("{{\"message\":\"job {i} finished in {} ms\"}}", i % 30)).collect();
    common::serve::tcp_send(serve.addr("tcp"), &lines);
    let tagged = wait_for_tagged(&out, 200, 60, "message");
    assert_eq!(tagged.len(), 200, "{}", serve.stderr.lock().unwrap());
    assert_eq!(tagged[7]["message"], "job 7 finished in 7 ms");
    assert_eq!(tagged[0]["tag"], "turbolog", "{}", tagged[0]);
    serve.sigterm();
    assert_eq!(serve.wait(30).0, 0);
}
