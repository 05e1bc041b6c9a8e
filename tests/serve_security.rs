//! `serve` across a network: TLS with certificates made here (rcgen), bearer tokens, client
//! certificates and Forward's shared key, with real clients: curl, the OpenTelemetry Python SDK
//! (scripts/fetch-otel.sh) and Fluent Bit (`FLUENT_BIT_BIN`). Each skips loudly without its client.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::serve::Serve;
use serde_json::Value;

fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        let _ = std::io::stderr().write_all(format!("\n*** SKIPPED: no {tool} on PATH: this part of the TLS/auth test did not run ***\n").as_bytes());
    }
    ok
}

/// curl's HTTP status for a POST (0 when the connection or TLS failed), and its body.
fn curl(args: &[&str], url: &str, body: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10", "-H", "Content-Type: application/json", "--data-binary", body])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

const ONE: &str = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},"scopeLogs":[{"logRecords":[{"body":{"stringValue":"payment accepted"}}]}]}]}"#;

#[test]
fn https_with_a_bearer_token_takes_the_right_token_only_and_refuses_what_does_not_verify() {
    if !have("curl") {
        return;
    }
    let pki = Pki::new();
    let serve = Serve::start(&["--otlp-http", "127.0.0.1:0", "--http", "127.0.0.1:0", "--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key"), "--auth-token-file", &pki.path("token")]);
    let otlp = format!("https://localhost:{}/v1/logs", serve.addr("otlp-http").rsplit(':').next().unwrap());
    let http = format!("https://localhost:{}/", serve.addr("http").rsplit(':').next().unwrap());
    let ca = pki.path("ca.pem");
    let (status, body) = curl(&["--cacert", &ca], &otlp, ONE);
    assert_eq!(status, 401, "no token: {body}");
    let st: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(st["code"], 16, "UNAUTHENTICATED: {st}");
    assert!(st["message"].as_str().unwrap().contains("Authorization: Bearer"), "{st}");
    let (status, body) = curl(&["--cacert", &ca, "-H", "Authorization: Bearer not-the-token"], &otlp, ONE);
    assert_eq!(status, 401, "a wrong token: {body}");
    let (status, body) = curl(&["--cacert", &ca, "-H", "Authorization: Bearer s3cret-token"], &otlp, ONE);
    assert_eq!(status, 200, "the token: {body}");
    let (status, body) = curl(&["--cacert", &ca, "-H", "Authorization: Bearer s3cret-token"], &http, r#"{"message":"over https"}"#);
    assert_eq!(status, 200, "the HTTP input takes the token too: {body}");
    let (status, _) = curl(&["--cacert", &ca], &http, r#"{"message":"no token"}"#);
    assert_eq!(status, 401);
    // a client that does not trust serve's certificate (curl's own CAs) never gets to send
    let (status, _) = curl(&["-H", "Authorization: Bearer s3cret-token"], &otlp, ONE);
    assert_eq!(status, 0, "curl must refuse a certificate its CAs did not sign");
    // in the clear to a TLS listener: not taken
    let (status, _) = curl(&["-H", "Authorization: Bearer s3cret-token"], &otlp.replace("https://", "http://"), ONE);
    assert_ne!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while serve.metric("turbolog_requests_rejected_total{reason=\"tls\"}") < 2.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(serve.metric("turbolog_requests_rejected_total{reason=\"token\"}"), 3.0);
    assert!(serve.metric("turbolog_requests_rejected_total{reason=\"tls\"}") >= 2.0, "failed handshakes are counted");
    serve.sigterm();
    let (code, out, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("refused"), "refusals are said: {err}");
    assert!(!err.contains("s3cret"), "the token is never printed: {err}");
    let messages: Vec<String> = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["message"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(messages.len(), 2, "only the two authorized records: {out}");
    assert!(messages.contains(&"payment accepted".to_string()) && messages.contains(&"over https".to_string()), "{messages:?}");
}

#[test]
fn client_certificates_are_required_with_tls_client_ca() {
    if !have("curl") {
        return;
    }
    let pki = Pki::new();
    let serve = Serve::start(&["--http", "127.0.0.1:0", "--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key"), "--tls-client-ca", &pki.path("ca.pem")]);
    let url = format!("https://localhost:{}/", serve.addr("http").rsplit(':').next().unwrap());
    let ca = pki.path("ca.pem");
    let (status, _) = curl(&["--cacert", &ca], &url, r#"{"message":"no client certificate"}"#);
    assert_eq!(status, 0, "without a client certificate the handshake fails");
    let (status, _) = curl(&["--cacert", &ca, "--cert", &pki.path("other.pem"), "--key", &pki.path("other.key")], &url, r#"{"message":"a certificate of another CA"}"#);
    assert_eq!(status, 0, "a client certificate of another CA is refused");
    let (status, body) = curl(&["--cacert", &ca, "--cert", &pki.path("client.pem"), "--key", &pki.path("client.key")], &url, r#"{"message":"with its certificate"}"#);
    assert_eq!(status, 200, "{body}");
    serve.sigterm();
    let (code, out, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("with its certificate"));
}

#[test]
fn an_exposed_listener_needs_tls_or_credentials_or_insecure() {
    let out = Command::new(env!("CARGO_BIN_EXE_turbolog")).args(["serve", "--admin", "off", "--tcp", "0.0.0.0:0", "--listen", "0.0.0.0"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("in the clear and without credentials") && err.contains("--insecure"), "{err}");
    let serve = Serve::start(&["--tcp", "0.0.0.0:0", "--listen", "0.0.0.0", "--insecure"]);
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--insecure: --tcp"), "said on stderr: {err}");
}

/// Serve's --tcp over TLS, fed by a second serve's `--to tcp+tls://` that verifies it with
/// --tls-ca: and refuses it without (the public CAs did not sign it), or with --insecure.
#[test]
fn outputs_verify_the_downstream_certificate() {
    let pki = Pki::new();
    let sink = Serve::start(&["--tcp", "127.0.0.1:0", "--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key")]);
    let to = format!("tcp+tls://localhost:{}", sink.addr("tcp").rsplit(':').next().unwrap());
    let relay = Serve::start(&["--http", "127.0.0.1:0", "--to", &to, "--tls-ca", &pki.path("ca.pem")]);
    let (status, body) = common::serve::http(relay.addr("http"), "POST", "/", &[("Content-Type", "application/x-ndjson")], b"{\"message\":\"relayed over tls\"}\n");
    assert_eq!(status, 200, "{body}");
    // not verifiable with the web CAs: the relay holds its record and says why
    let unverified = Serve::start(&["--http", "127.0.0.1:0", "--to", &to, "--drain-timeout", "1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ready = (0, String::new());
    while Instant::now() < deadline {
        ready = unverified.get("/readyz");
        if ready.1.contains("certificate") || ready.1.to_ascii_lowercase().contains("unknownissuer") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ready.0, 503, "{ready:?}");
    assert!(ready.1.to_ascii_lowercase().contains("certificate") || ready.1.contains("UnknownIssuer"), "/readyz says why: {ready:?}");
    drop(unverified);
    let insecure = Serve::start(&["--http", "127.0.0.1:0", "--to", &to, "--insecure"]);
    let (status, _) = common::serve::http(insecure.addr("http"), "POST", "/", &[("Content-Type", "application/x-ndjson")], b"{\"message\":\"insecure relay\"}\n");
    assert_eq!(status, 200);
    for r in [relay, insecure] {
        r.sigterm();
        let (code, _, err) = r.wait(30);
        assert_eq!(code, 0, "{err}");
        if err.contains("--insecure") {
            assert!(err.contains("NOT verified"), "{err}");
        }
    }
    sink.sigterm();
    let (code, out, err) = sink.wait(30);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("relayed over tls") && out.contains("insecure relay"), "{out} {err}");
}

/// `--to otlp-grpcs://` into a second serve's TLS `--otlp-grpc`, verified with --tls-ca.
#[test]
fn otlp_grpc_output_over_tls() {
    let pki = Pki::new();
    let sink = Serve::start(&["--otlp-grpc", "127.0.0.1:0", "--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key")]);
    let to = format!("otlp-grpcs://localhost:{}", sink.addr("otlp-grpc").rsplit(':').next().unwrap());
    let relay = Serve::start(&["--http", "127.0.0.1:0", "--to", &to, "--tls-ca", &pki.path("ca.pem")]);
    let (status, body) = common::serve::http(relay.addr("http"), "POST", "/", &[("Content-Type", "application/x-ndjson")], b"{\"message\":\"over grpc and tls\"}\n");
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink.metric("turbolog_records_in_total{input=\"otlp_grpc\"}") < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    relay.sigterm();
    let (code, _, err) = relay.wait(30);
    assert_eq!(code, 0, "{err}");
    sink.sigterm();
    let (code, out, err) = sink.wait(30);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("over grpc and tls"), "{out} {err}");
}

fn sha512_hex(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha512};
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The sender's side of the shared-key handshake, written from the Forward protocol v1 spec:
/// returns the PONG's auth result and the connection.
fn forward_handshake(addr: &str, key: &str) -> (bool, TcpStream) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    let helo: rmpv::Value = rmpv::decode::read_value(&mut &buf[..n]).unwrap();
    assert_eq!(helo[0].as_str(), Some("HELO"), "{helo}");
    let options = helo[1].as_map().unwrap();
    let nonce = options.iter().find(|(k, _)| k.as_str() == Some("nonce")).map(|(_, v)| v.as_slice().unwrap().to_vec()).unwrap();
    let salt = b"0123456789abcdef";
    let digest = sha512_hex(&[salt, b"client.example", &nonce, key.as_bytes()]);
    let ping = rmpv::Value::Array(vec!["PING".into(), "client.example".into(), rmpv::Value::Binary(salt.to_vec()), digest.as_str().into(), "".into(), "".into()]);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &ping).unwrap();
    s.write_all(&out).unwrap();
    let n = s.read(&mut buf).unwrap();
    let pong: rmpv::Value = rmpv::decode::read_value(&mut &buf[..n]).unwrap();
    assert_eq!(pong[0].as_str(), Some("PONG"), "{pong}");
    let ok = pong[1].as_bool().unwrap();
    if ok {
        // serve proves the key back
        let hostname = pong[3].as_str().unwrap();
        assert_eq!(pong[4].as_str().unwrap(), sha512_hex(&[salt, hostname.as_bytes(), &nonce, key.as_bytes()]), "{pong}");
    }
    (ok, s)
}

#[test]
fn forward_shared_key_handshake_admits_the_key_only() {
    let pki = Pki::new();
    std::fs::write(pki.dir.path().join("shared"), "fluent-key\n").unwrap();
    let serve = Serve::start(&["--forward", "127.0.0.1:0", "--shared-key-file", &pki.path("shared")]);
    let addr = serve.addr("forward").to_string();
    let (ok, mut s) = forward_handshake(&addr, "fluent-key");
    assert!(ok);
    let mut msg = Vec::new();
    let record = rmpv::Value::Map(vec![("log".into(), "after the handshake".into())]);
    let entry = rmpv::Value::Array(vec!["app".into(), rmpv::Value::Array(vec![rmpv::Value::Array(vec![1_700_000_000u64.into(), record])]), rmpv::Value::Map(vec![("chunk".into(), "c1".into())])]);
    rmpv::encode::write_value(&mut msg, &entry).unwrap();
    s.write_all(&msg).unwrap();
    let mut ack = vec![0u8; 256];
    let n = s.read(&mut ack).unwrap();
    let ack: rmpv::Value = rmpv::decode::read_value(&mut &ack[..n]).unwrap();
    assert_eq!(ack["ack"].as_str(), Some("c1"), "{ack}");
    drop(s);
    let (ok, mut s) = forward_handshake(&addr, "a-wrong-key");
    assert!(!ok, "a wrong key gets PONG false");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "and the connection closes");
    assert_eq!(serve.metric("turbolog_requests_rejected_total{reason=\"shared_key\"}"), 1.0);
    serve.sigterm();
    let (code, out, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("after the handshake"));
    assert!(err.contains("does not prove"), "{err}");
}

/// `--to forward://` with `--to-shared-key-file` into a Forward input that requires the key:
/// delivered with the key; with another one the output holds the records and /readyz says why.
#[test]
fn forward_output_proves_the_shared_key() {
    let pki = Pki::new();
    std::fs::write(pki.dir.path().join("shared"), "fluent-key\n").unwrap();
    std::fs::write(pki.dir.path().join("other-key"), "not-it\n").unwrap();
    let sink = Serve::start(&["--forward", "127.0.0.1:0", "--shared-key-file", &pki.path("shared")]);
    let to = format!("forward://{}", sink.addr("forward"));
    let relay = Serve::start(&["--http", "127.0.0.1:0", "--to", &to, "--to-shared-key-file", &pki.path("shared")]);
    let (status, body) = common::serve::http(relay.addr("http"), "POST", "/", &[("Content-Type", "application/x-ndjson")], b"{\"message\":\"with the key\"}\n");
    assert_eq!(status, 200, "{body}");
    let wrong = Serve::start(&["--http", "127.0.0.1:0", "--to", &to, "--to-shared-key-file", &pki.path("other-key"), "--drain-timeout", "1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ready = wrong.get("/readyz");
    while !ready.1.contains("refused the shared key") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        ready = wrong.get("/readyz");
    }
    assert_eq!(ready.0, 503, "{ready:?}");
    assert!(ready.1.contains("refused the shared key"), "{ready:?}");
    drop(wrong);
    relay.sigterm();
    let (code, _, err) = relay.wait(30);
    assert_eq!(code, 0, "{err}");
    sink.sigterm();
    let (code, out, err) = sink.wait(30);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("with the key"), "{out} {err}");
}

fn fluent_bit() -> Option<PathBuf> {
    match std::env::var_os("FLUENT_BIT_BIN") {
        Some(p) if Path::new(&p).exists() => Some(PathBuf::from(p)),
        Some(p) => panic!("FLUENT_BIT_BIN={} does not exist", Path::new(&p).display()),
        None => {
            let _ = std::io::stderr().write_all(b"\n*** SKIPPED: FLUENT_BIT_BIN is not set: Forward with Shared_Key and TLS from a real Fluent Bit did not run ***\n");
            None
        }
    }
}

/// A real Fluent Bit's `forward` output with `Shared_Key` over TLS (verifying serve's
/// certificate) into serve; with a wrong key nothing is taken and the refusals are counted.
#[test]
fn fluent_bit_forward_with_shared_key_and_tls() {
    let Some(fb) = fluent_bit() else { return };
    let pki = Pki::new();
    std::fs::write(pki.dir.path().join("shared"), "fluent-key\n").unwrap();
    let serve = Serve::start(&["--forward", "127.0.0.1:0", "--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key"), "--shared-key-file", &pki.path("shared")]);
    let port = serve.addr("forward").rsplit(':').next().unwrap().to_string();
    let run = |key: &str, secs: u64| {
        let conf = format!(
            "[SERVICE]\n    flush 0.2\n    log_level info\n[INPUT]\n    name dummy\n    tag app\n    dummy {{\"log\":\"from fluent bit over tls\"}}\n    samples 5\n    rate 20\n[OUTPUT]\n    name forward\n    match *\n    host localhost\n    port {port}\n    shared_key {key}\n    self_hostname fluent-bit.example\n    tls on\n    tls.verify on\n    tls.vhost localhost\n    tls.ca_file {}\n    retry_limit 1\n",
            pki.path("ca.pem")
        );
        let path = pki.dir.path().join(format!("fb-{key}.conf"));
        std::fs::write(&path, conf).unwrap();
        let mut child = Command::new(&fb).arg("-c").arg(&path).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_secs(secs));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let log = run("fluent-key", 4);
    let deadline = Instant::now() + Duration::from_secs(10);
    while serve.metric("turbolog_records_in_total{input=\"forward\"}") < 5.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(serve.metric("turbolog_records_in_total{input=\"forward\"}"), 5.0, "Fluent Bit said: {log}");
    let log = run("wrong-key", 3);
    assert!(serve.metric("turbolog_requests_rejected_total{reason=\"shared_key\"}") >= 1.0, "Fluent Bit said: {log}");
    assert_eq!(serve.metric("turbolog_records_in_total{input=\"forward\"}"), 5.0, "nothing taken with the wrong key");
    serve.sigterm();
    let (code, out, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("from fluent bit over tls").count(), 5, "{out}");
}

