//! OTLP logs through `turbolog serve`: the OpenTelemetry Python SDK's OTLP/HTTP exporter (PyPI)
//! → `serve --otlp-http` → `--to otlp-http://` → a receiver decoding with `opentelemetry-proto`
//! (PyPI). Skips loudly without them (scripts/fetch-otel.sh). The status rules are tested with
//! raw requests, which need no Python.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::serve::{http_full, Serve};
use serde_json::Value;

fn python() -> Option<PathBuf> {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/otel/venv/bin/python");
    let ok = py.exists()
        && Command::new(&py)
            .args(["-c", "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.proto"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        let _ = std::io::stderr().write_all(b"\n*** SKIPPED: no OpenTelemetry Python SDK in .cache/otel (run scripts/fetch-otel.sh): OTLP with a real SDK and receiver was not tested ***\n");
        return None;
    }
    Some(py)
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otlp").join(name)
}

/// The Python receiver: its port, and the records it decoded so far (one JSON object each).
struct Receiver {
    child: Child,
    port: u16,
    records: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// `args`: a certificate and its key, for HTTPS.
    fn start_with(py: &PathBuf, args: &[String]) -> Receiver {
        let mut child = Command::new(py).arg(script("receive.py")).args(args).stdout(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let port = first.strip_prefix("listening ").unwrap_or_else(|| panic!("receiver said {first}")).parse().unwrap();
        let records = Arc::new(Mutex::new(Vec::new()));
        let r = records.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                r.lock().unwrap().push(serde_json::from_str(&line).unwrap());
            }
        });
        Receiver { child, port, records }
    }

    fn wait_for(&self, n: usize, secs: u64) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.records.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // anything more than n (a duplicate) would show up now
        std::thread::sleep(Duration::from_millis(300));
        self.records.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sdk_round_trip(compression: &str) {
    sdk_round_trip_over(compression, false);
}

/// `grpc`: the SDK's OTLP/gRPC exporter → `--otlp-grpc` (with a bearer token) → `--to
/// otlp-grpc://` (with a header) → a grpcio receiver; else all over OTLP/HTTP.
fn sdk_round_trip_over(compression: &str, grpc: bool) {
    let Some(py) = python() else { return };
    let pki = Pki::new();
    let mode: Vec<String> = if grpc { vec!["grpc".into()] } else { vec![] };
    let receiver = Receiver::start_with(&py, &mode);
    let serve = if grpc {
        Serve::start(&[
            "--otlp-grpc", "127.0.0.1:0", "--auth-token-file", &pki.path("token"),
            "--to", &format!("otlp-grpc://127.0.0.1:{}", receiver.port), "--to-header", "Authorization: Bearer downstream-token",
        ])
    } else {
        Serve::start(&["--otlp-http", "127.0.0.1:0", "--to", &format!("otlp-http://127.0.0.1:{}", receiver.port)])
    };
    let n = 300;
    let url = if grpc { format!("grpc://{}", serve.addr("otlp-grpc")) } else { format!("http://{}/v1/logs", serve.addr("otlp-http")) };
    let mut args = vec![url.clone(), n.to_string(), compression.to_string()];
    if grpc {
        args.push("token=s3cret-token".into());
        let refused = Command::new(&py).arg(script("send.py")).args([url.as_str(), "3", "token=not-the-token"]).output().unwrap();
        assert!(String::from_utf8_lossy(&refused.stderr).contains("UNAUTHENTICATED"), "a wrong token is refused: {}", String::from_utf8_lossy(&refused.stderr));
        assert_eq!(serve.metric("turbolog_records_in_total{input=\"otlp_grpc\"}"), 0.0);
        assert!(serve.metric("turbolog_requests_rejected_total{reason=\"token\"}") >= 1.0);
    }
    let sent = Command::new(&py).arg(script("send.py")).args(&args).output().unwrap();
    assert!(sent.status.success(), "the SDK failed: {}", String::from_utf8_lossy(&sent.stderr));
    let got = receiver.wait_for(n, 60);
    let stderr = serve.stderr.lock().unwrap().clone();
    assert_eq!(got.len(), n, "every record once: {stderr}");
    let mut seen = vec![0; n];
    let mut anomalies = 0;
    for r in &got {
        let a = &r["attributes"];
        let seq = a["seq"][1].as_i64().unwrap_or_else(|| panic!("no seq attribute: {r}")) as usize;
        seen[seq] += 1;
        assert_eq!(r["service.name"], serde_json::json!(["string_value", "checkout"]), "{r}");
        assert_eq!(r["scope"], "shop");
        assert_eq!(a["turbolog.anomaly"][0], "bool_value", "{r}");
        assert_eq!(a["turbolog.score"][0], "double_value", "{r}");
        assert_eq!(a["turbolog.template_id"][0], "int_value", "{r}");
        assert!(r["time_unix_nano"].as_u64().unwrap() > 1_600_000_000_000_000_000, "the time is kept: {r}");
        if a["turbolog.anomaly"][1] == true {
            anomalies += 1;
            assert_eq!(a["log.record.template"][0], "string_value", "an anomaly names its template: {r}");
            assert_eq!(a["turbolog.reason"][0], "string_value", "and its reason: {r}");
        } else {
            assert!(a.get("log.record.template").is_none(), "lean fields: no template on normal records: {r}");
        }
    }
    assert!(seen.iter().all(|&c| c == 1), "each seq exactly once: {seen:?}");
    let panic = got.iter().find(|r| r["attributes"]["seq"][1] == n as i64 - 1).unwrap();
    assert_eq!(panic["body"], serde_json::json!(["string_value", "kernel panic: unable to mount root fs on unknown-block(0,0)"]));
    assert_eq!((panic["severity_number"].as_i64(), panic["severity_text"].as_str()), (Some(17), Some("ERROR")));
    assert_eq!(panic["attributes"]["turbolog.anomaly"][1], true, "the one unlike the other 299 is flagged, so the anomaly attributes were seen: {panic}");
    let input = if grpc { "otlp_grpc" } else { "otlp_http" };
    assert_eq!(serve.metric(&format!("turbolog_records_in_total{{input=\"{input}\"}}")), n as f64);
    assert_eq!(serve.metric("turbolog_records_out_total"), n as f64);
    if grpc {
        assert!(got.iter().all(|r| r["authorization"] == "Bearer downstream-token"), "--to-header goes out as gRPC metadata");
    }
    eprintln!("OTLP round trip ({input}, {compression}): {n} records, {anomalies} anomalies");
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn python_sdk_logs_reach_an_otlp_receiver_once_each_tagged_with_their_service() {
    sdk_round_trip("none");
}

#[test]
fn python_sdk_gzip_logs_reach_an_otlp_receiver_too() {
    sdk_round_trip("gzip");
}

#[test]
fn python_sdk_over_https_with_a_token_through_serve_to_an_https_receiver_with_a_token() {
    let Some(py) = python() else { return };
    let pki = Pki::new();
    let receiver = Receiver::start_with(&py, &[pki.path("server.pem"), pki.path("server.key")]);
    let to = format!("otlp-https://localhost:{}", receiver.port);
    let serve = Serve::start(&[
        "--otlp-http", "127.0.0.1:0", "--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key"), "--auth-token-file", &pki.path("token"),
        "--to", &to, "--tls-ca", &pki.path("ca.pem"), "--to-token-file", &pki.path("wrong-token"),
    ]);
    let n = 40;
    let url = format!("https://localhost:{}/v1/logs", serve.addr("otlp-http").rsplit(':').next().unwrap());
    let send = |token: &str| {
        Command::new(&py)
            .arg(script("send.py"))
            .args([url.clone(), n.to_string(), format!("ca={}", pki.path("ca.pem")), format!("token={token}")])
            // requests lets these override the CA file the exporter names
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE")
            .output()
            .unwrap()
    };
    // the SDK with a wrong token: refused with 401, nothing taken
    let refused = send("not-the-token");
    let said = String::from_utf8_lossy(&refused.stderr).to_string();
    assert_eq!(serve.metric("turbolog_records_in_total{input=\"otlp_http\"}"), 0.0);
    assert!(serve.metric("turbolog_requests_rejected_total{reason=\"token\"}") >= 1.0, "the SDK said: {said}; serve said: {}", serve.stderr.lock().unwrap());
    let sent = send("s3cret-token");
    assert!(sent.status.success(), "the SDK failed: {}", String::from_utf8_lossy(&sent.stderr));
    let got = receiver.wait_for(n, 60);
    let stderr = serve.stderr.lock().unwrap().clone();
    assert_eq!(got.len(), n, "every record once over HTTPS: {stderr}");
    for r in &got {
        assert_eq!(r["service.name"], serde_json::json!(["string_value", "checkout"]), "{r}");
        assert_eq!(r["attributes"]["turbolog.anomaly"][0], "bool_value", "{r}");
        // the output's token file (named wrong-token here) is what serve sends downstream
        assert_eq!(r["authorization"], "Bearer not-the-token", "{r}");
    }
    assert_eq!(serve.metric("turbolog_records_in_total{input=\"otlp_http\"}"), n as f64);
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn python_sdk_grpc_logs_through_otlp_grpc_in_and_out_once_each_with_a_token() {
    sdk_round_trip_over("gzip", true);
}

#[test]
fn python_sdk_grpc_exporter_over_tls() {
    let Some(py) = python() else { return };
    let pki = Pki::new();
    let serve = Serve::start(&["--otlp-grpc", "127.0.0.1:0", "--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key")]);
    let url = format!("grpc://localhost:{}", serve.addr("otlp-grpc").rsplit(':').next().unwrap());
    let sent = Command::new(&py).arg(script("send.py")).args([url.clone(), "25".into(), format!("ca={}", pki.path("ca.pem"))]).output().unwrap();
    assert!(sent.status.success(), "the SDK failed: {}", String::from_utf8_lossy(&sent.stderr));
    let deadline = Instant::now() + Duration::from_secs(20);
    while serve.metric("turbolog_records_in_total{input=\"otlp_grpc\"}") < 25.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(serve.metric("turbolog_records_in_total{input=\"otlp_grpc\"}"), 25.0, "{}", String::from_utf8_lossy(&sent.stderr));
    serve.sigterm();
    let (code, out, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 25);
}

/// A full queue answers UNAVAILABLE (which the OTLP exporters retry), saying why; tonic's client.
#[cfg(feature = "otlp-grpc")]
#[test]
fn a_full_queue_answers_grpc_unavailable() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let to = format!("otlp-http://{}", hole.local_addr().unwrap());
    let serve = Serve::start(&["--otlp-grpc", "127.0.0.1:0", "--queue", "1", "--to", &to, "--drain-timeout", "1"]);
    let addr = format!("http://{}", serve.addr("otlp-grpc"));
    let one: ExportLogsServiceRequest = serde_json::from_str(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}"#).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        let mut client = LogsServiceClient::connect(addr).await.unwrap();
        client.export(one.clone()).await.expect("the first record fills the queue of 1");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client.export(one.clone()).await {
                Err(status) => break status,
                Ok(_) if Instant::now() > deadline => panic!("never refused"),
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("queue is full"), "{status:?}");
    drop(serve);
    drop(hole);
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn otlp_json_and_gzip_are_taken_and_bad_bodies_refused_by_the_otlp_status_rules() {
    let serve = Serve::start(&["--otlp-http", "127.0.0.1:0"]);
    let addr = serve.addr("otlp-http").to_string();
    let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","severityText":"WARN","traceId":"5b8efff798038103d269b633813fc60c","body":{"stringValue":"payment retried after 3 attempts"}}]}]}]}"#;
    let (status, headers, reply) = http_full(&addr, "POST", "/v1/logs", &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")], &gzip(body));
    assert_eq!(status, 200, "{reply}");
    assert!(headers.to_ascii_lowercase().contains("content-type: application/json"), "{headers}");
    assert_eq!(reply.trim(), "{}", "an ExportLogsServiceResponse with no partial success");
    // refusals: the status, and a google.rpc.Status in the request's encoding saying why
    let (status, headers, reply) = http_full(&addr, "POST", "/v1/logs", &[("Content-Type", "application/x-protobuf")], b"\xff\xff\xff\xff");
    assert_eq!(status, 400, "{reply}");
    assert!(headers.to_ascii_lowercase().contains("content-type: application/x-protobuf"), "{headers}");
    assert!(reply.starts_with("\x08\x03\x12"), "google.rpc.Status{{code: 3 INVALID_ARGUMENT, message}}: {reply:?}");
    assert!(reply.contains("not an OTLP ExportLogsServiceRequest in protobuf"), "{reply}");
    let (status, headers, reply) = http_full(&addr, "POST", "/v1/logs", &[("Content-Type", "application/json")], b"{\"resourceLogs\":7}");
    assert_eq!(status, 400, "{reply}");
    assert!(headers.to_ascii_lowercase().contains("content-type: application/json"), "{headers}");
    let st: Value = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"));
    assert_eq!(st["code"], 3, "{st}");
    assert!(st["message"].as_str().unwrap().contains("OTLP JSON"), "{st}");
    let (status, _, reply) = http_full(&addr, "POST", "/v1/logs", &[("Content-Type", "text/plain")], b"hello");
    assert_eq!(status, 415, "{reply}");
    assert!(reply.contains("application/x-protobuf"), "{reply}");
    let (status, _, reply) = http_full(&addr, "POST", "/v1/traces", &[("Content-Type", "application/json")], b"");
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<Value>(&reply).unwrap()["code"], 5, "NOT_FOUND: {reply}");
    serve.sigterm();
    let (code, out, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{out}");
    let r = &lines[0];
    assert_eq!((r["message"].as_str(), r["level"].as_str()), (Some("payment retried after 3 attempts"), Some("WARN")));
    assert_eq!(r["resource"]["service.name"], "billing");
    assert_eq!(r["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert!(r["anomaly"].is_boolean(), "{r}");
}

#[test]
fn records_longer_than_max_line_are_refused_by_a_partial_success_and_the_rest_taken() {
    let serve = Serve::start(&["--otlp-http", "127.0.0.1:0", "--max-line", "1024"]);
    let addr = serve.addr("otlp-http").to_string();
    let long = "y".repeat(3000);
    let body = format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{{"stringValue":"short one"}}}},{{"body":{{"stringValue":"{long}"}}}},{{"body":{{"stringValue":"short two"}}}}]}}]}}]}}"#);
    let (status, _, reply) = http_full(&addr, "POST", "/v1/logs", &[("Content-Type", "application/json")], body.as_bytes());
    assert_eq!(status, 200, "{reply}");
    let v: Value = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"));
    let partial = &v["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"].to_string().trim_matches('"'), "1", "{v}");
    assert!(partial["errorMessage"].as_str().unwrap().contains("--max-line 1024"), "{v}");
    assert_eq!(serve.metric("turbolog_records_dropped_total{reason=\"line_too_long\"}"), 1.0);
    serve.sigterm();
    let (code, out, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
    let messages: Vec<String> = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["message"].as_str().unwrap().to_string()).collect();
    assert_eq!(messages, ["short one", "short two"]);
}

#[test]
fn a_full_queue_answers_503_with_retry_after_which_otlp_exporters_retry() {
    // a downstream that never answers: the first request fills the queue of 1
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let to = format!("otlp-http://{}", hole.local_addr().unwrap());
    let serve = Serve::start(&["--otlp-http", "127.0.0.1:0", "--queue", "1", "--to", &to, "--drain-timeout", "1"]);
    let addr = serve.addr("otlp-http").to_string();
    let one = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}"#;
    let (first, _, _) = http_full(&addr, "POST", "/v1/logs", &[("Content-Type", "application/json")], one);
    assert_eq!(first, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, headers, reply) = loop {
        let r = http_full(&addr, "POST", "/v1/logs", &[("Content-Type", "application/json")], one);
        if r.0 != 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 503, "{reply}");
    assert!(headers.to_ascii_lowercase().contains("retry-after: 1"), "{headers}");
    assert!(reply.contains("queue is full"), "{reply}");
    assert_eq!(serde_json::from_str::<Value>(&reply).unwrap()["code"], 14, "UNAVAILABLE: {reply}");
    // the downstream never answers: the held record is not what this test is about
    drop(serve);
    drop(hole);
}

/// A scripted OTLP/HTTP receiver: answers each request with the next status of `answers` (then
/// 200), and keeps the record count of every request it answered 200.
fn scripted_receiver(answers: Vec<u16>) -> (String, Arc<Mutex<Vec<usize>>>) {
    use prost::Message;
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let taken = Arc::new(Mutex::new(Vec::new()));
    let t = taken.clone();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    std::thread::spawn(move || {
        for s in l.incoming().map_while(Result::ok) {
            let (t, answers) = (t.clone(), answers.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut s = s;
                loop {
                    let mut len = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let status = answers.lock().unwrap().next().unwrap_or(200);
                    if status == 200 {
                        let req = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::decode(&body[..]).unwrap();
                        t.lock().unwrap().push(req.resource_logs.iter().flat_map(|rl| &rl.scope_logs).map(|sl| sl.log_records.len()).sum());
                    }
                    let reply = format!("HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nnope");
                    s.write_all(reply.as_bytes()).unwrap();
                }
            });
        }
    });
    (addr, taken)
}

#[test]
fn the_exporter_retries_a_busy_receiver_and_counts_a_permanent_refusal_without_retrying_it() {
    // 503 then 200: the first batch arrives after a retry; 400 for the second: dropped and counted
    let (addr, taken) = scripted_receiver(vec![503, 200, 400]);
    let serve = Serve::start(&["--http", "127.0.0.1:0", "--to", &format!("otlp-http://{addr}")]);
    let http = serve.addr("http").to_string();
    let send = |n: usize| {
        let body: String = (0..n).map(|i| format!("{{\"message\":\"job {i} done\",\"host\":\"web-1\"}}\n")).collect();
        let (status, _, reply) = http_full(&http, "POST", "/", &[("Content-Type", "application/x-ndjson")], body.as_bytes());
        assert_eq!(status, 200, "{reply}");
    };
    send(3);
    let deadline = Instant::now() + Duration::from_secs(20);
    while taken.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(*taken.lock().unwrap(), vec![3], "{}", serve.stderr.lock().unwrap());
    send(2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while serve.metric("turbolog_records_dropped_total{reason=\"downstream_refused\"}") < 2.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(serve.metric("turbolog_records_dropped_total{reason=\"downstream_refused\"}"), 2.0);
    assert_eq!(serve.metric("turbolog_records_out_total"), 3.0);
    send(1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while taken.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(*taken.lock().unwrap(), vec![3, 1], "the refused batch is not sent again");
    let err = serve.stderr.lock().unwrap().clone();
    assert!(err.contains("refused 2 records with 400 (not retried): nope"), "{err}");
    serve.sigterm();
    let (code, _, err) = serve.wait(30);
    assert_eq!(code, 0, "{err}");
}
