//! `turbolog serve`: the engine as a small network process, for Vector (which cannot load a
//! shared library) and for sidecars and node agents in Kubernetes.
//!
//! inputs (NDJSON/TCP, HTTP, Forward) → bounded queue → engine thread (the library's
//! `pipeline::LineStream`, as `turbolog filter`) → writer thread (stdout, NDJSON/TCP or Forward)
//! → downstream. The admin endpoint serves `/healthz`, `/readyz` and `/metrics`.
//! May use `args` (the flags it shares with `filter`) and the library; never `cli`.

mod admin;
mod disk_queue;
mod forward;
mod forward_auth;
mod forward_in;
mod http_in;
mod http_server;
mod metrics;
#[cfg(feature = "otlp-grpc")]
mod otlp_grpc;
#[cfg(feature = "otlp-grpc")]
mod otlp_grpc_out;
mod otlp_http;
mod outbox;
mod output;
mod pipeline;
mod process;
mod security;
mod stream;
mod tcp_in;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::args::stream::StreamArgs;
use crate::args::CmdError;
/// Forward entries and NDJSON, both ways: the library's Forward codec.
use turbolog::codec::forward_json as msgpack_json;
use output::{Dest, Writer};
use pipeline::{Gate, Limits, Shared, ToEngine};

#[derive(Args)]
pub struct ServeArgs {
    /// Take NDJSON over TCP here (Vector's `socket` sink, Fluent Bit's `tcp` output with
    /// `format json_lines`).
    #[arg(long, value_name = "ADDR", env = "TURBOLOG_TCP")]
    pub tcp: Option<SocketAddr>,
    /// Take HTTP POSTs here: a JSON array, NDJSON, or Fluent Bit's msgpack (Vector's `http` sink,
    /// Fluent Bit's `http` output).
    #[arg(long, value_name = "ADDR", env = "TURBOLOG_HTTP")]
    pub http: Option<SocketAddr>,
    /// Take the Fluent Forward protocol here (Fluent Bit's and Fluentd's `forward` outputs).
    #[arg(long, value_name = "ADDR", env = "TURBOLOG_FORWARD")]
    pub forward: Option<SocketAddr>,
    /// Take OTLP/HTTP logs here: `POST /v1/logs`, protobuf or JSON, gzip or not (the
    /// OpenTelemetry SDKs' and Collector's `otlphttp` exporters, Fluent Bit's `opentelemetry` output).
    #[arg(long, value_name = "ADDR", env = "TURBOLOG_OTLP_HTTP")]
    pub otlp_http: Option<SocketAddr>,
    /// Take OTLP/gRPC logs here (`LogsService/Export`, gzip or not; the OpenTelemetry SDKs' and
    /// Collector's `otlp` exporters, port 4317 by convention).
    #[arg(long, value_name = "ADDR", env = "TURBOLOG_OTLP_GRPC")]
    pub otlp_grpc: Option<SocketAddr>,
    /// Where tagged records go: stdout, tcp://HOST:PORT (NDJSON, Vector's `socket` source),
    /// forward://HOST:PORT (Fluent Bit's `forward` input, Vector's `fluent` source) or
    /// otlp-http://HOST:PORT[/PATH] (OTLP/HTTP logs); over TLS: tcp+tls://, forward+tls://,
    /// otlp-https://, otlp-grpcs:// (verified against --tls-ca, or the public web CAs).
    #[arg(long, value_name = "DEST", env = "TURBOLOG_TO", default_value = "stdout")]
    pub to: Dest,
    /// `/healthz`, `/readyz` and `/metrics` here; `off` for none.
    #[arg(long, value_name = "ADDR|off", env = "TURBOLOG_ADMIN", default_value = "127.0.0.1:9102")]
    pub admin: String,
    /// Inputs and admin listen on loopback only, unless their address is this one (e.g. 0.0.0.0
    /// in a pod that other pods send to).
    #[arg(long, value_name = "IP", env = "TURBOLOG_LISTEN")]
    pub listen: Option<IpAddr>,
    /// Records accepted but not yet delivered, at most. A full queue slows TCP and Forward
    /// senders (reads stop) and answers HTTP with 503 and Retry-After.
    #[arg(long, value_name = "RECORDS", env = "TURBOLOG_QUEUE", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub queue: u64,
    /// On SIGTERM: seconds to finish reading, tagging and delivering; what the downstream has not
    /// taken by then is kept in the state's outbox and delivered first at the next start.
    #[arg(long, value_name = "SECONDS", env = "TURBOLOG_DRAIN_TIMEOUT", default_value_t = 10.0)]
    pub drain_timeout: f64,
    /// Longest NDJSON line taken over TCP; longer lines are dropped, counted and logged.
    #[arg(long, value_name = "BYTES", env = "TURBOLOG_MAX_LINE", default_value_t = 1 << 20)]
    pub max_line: usize,
    /// Largest HTTP body or Forward message (after decompression).
    #[arg(long, value_name = "BYTES", env = "TURBOLOG_MAX_BODY", default_value_t = 16 << 20)]
    pub max_body: usize,
    #[command(flatten)]
    pub security: security::SecurityArgs,
    #[command(flatten)]
    pub queue_opts: disk_queue::QueueArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
}

pub fn run(args: ServeArgs) -> Result<u8, CmdError> {
    if args.tcp.is_none() && args.http.is_none() && args.forward.is_none() && args.otlp_http.is_none() && args.otlp_grpc.is_none() {
        return Err("serve needs an input: --tcp ADDR, --http ADDR, --forward ADDR, --otlp-http ADDR or --otlp-grpc ADDR (or TURBOLOG_TCP, TURBOLOG_HTTP, TURBOLOG_FORWARD, TURBOLOG_OTLP_HTTP, TURBOLOG_OTLP_GRPC); for a pipe use `turbolog filter`".into());
    }
    if cfg!(not(feature = "otlp-grpc")) && (args.otlp_grpc.is_some() || matches!(args.to, Dest::OtlpGrpc(_))) {
        return Err("this turbolog was built without OTLP/gRPC: build it with `--features otlp-grpc` (on by default), or use --otlp-http / otlp-http://".into());
    }
    let admin = match args.admin.as_str() {
        "off" | "none" | "" => None,
        a => Some(a.parse::<SocketAddr>().map_err(|e| format!("--admin `{a}` is not ADDR:PORT or off: {e}"))?),
    };
    for (what, addr) in [("--tcp", args.tcp), ("--http", args.http), ("--forward", args.forward), ("--otlp-http", args.otlp_http), ("--otlp-grpc", args.otlp_grpc), ("--admin", admin)] {
        if let Some(a) = addr {
            allowed(what, a, args.listen)?;
        }
    }
    let sec = &args.security;
    let tls = sec.tls_cert.is_some();
    for (what, addr, credentials) in [
        ("--tcp", args.tcp, sec.tls_client_ca.is_some()),
        ("--http", args.http, sec.auth_token_file.is_some()),
        ("--forward", args.forward, sec.shared_key_file.is_some()),
        ("--otlp-http", args.otlp_http, sec.auth_token_file.is_some()),
        ("--otlp-grpc", args.otlp_grpc, sec.auth_token_file.is_some()),
    ] {
        if let Some(a) = addr {
            exposed(what, a, tls, credentials, sec.insecure)?;
        }
    }
    if sec.insecure && args.to.is_tls() {
        eprintln!("turbolog: warning: --insecure: the certificate of {} is NOT verified; anyone on the path can read and change the records", args.to);
    }
    if !(args.drain_timeout.is_finite() && args.drain_timeout > 0.0 && args.drain_timeout <= 3600.0) {
        return Err(format!("--drain-timeout {} is not a number of seconds in (0, 3600]", args.drain_timeout).into());
    }
    if args.max_line < 1024 || args.max_body < 1024 {
        return Err("--max-line and --max-body must be at least 1024 bytes".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
    runtime.block_on(serve(args, admin))
}

/// Loopback, or the address `--listen` names.
fn allowed(what: &str, addr: SocketAddr, listen: Option<IpAddr>) -> Result<(), String> {
    if addr.ip().is_loopback() || listen == Some(addr.ip()) {
        return Ok(());
    }
    Err(format!(
        "{what} {addr} is not a loopback address: pass --listen {} (or TURBOLOG_LISTEN) to accept connections from other hosts",
        addr.ip()
    ))
}

/// A listener other hosts reach needs TLS or credentials, or `--insecure` (said on stderr).
fn exposed(what: &str, addr: SocketAddr, tls: bool, credentials: bool, insecure: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || tls || credentials {
        return Ok(());
    }
    if insecure {
        eprintln!("turbolog: warning: --insecure: {what} {addr} takes records from other hosts in the clear and without credentials");
        return Ok(());
    }
    let how = match what {
        "--tcp" => "--tls-cert/--tls-key (and --tls-client-ca for client certificates)",
        "--forward" => "--tls-cert/--tls-key or --shared-key-file",
        _ => "--tls-cert/--tls-key or --auth-token-file",
    };
    Err(format!("{what} {addr} would take records from other hosts in the clear and without credentials: add {how}, or pass --insecure to accept that"))
}

async fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr} for {what}: {e}"))
}

fn local(l: &TcpListener) -> String {
    l.local_addr().map(|a| a.to_string()).unwrap_or_default()
}

async fn serve(args: ServeArgs, admin: Option<SocketAddr>) -> Result<u8, CmdError> {
    // before anything is announced: a SIGTERM from then on is a graceful stop
    let signals = Signals::new()?;
    let listening = args.security.listening(&[])?;
    let http_tls = args.security.listening(&[b"http/1.1"])?.tls;
    #[cfg(feature = "otlp-grpc")]
    let grpc_tls = args.security.listening(&[b"h2"])?.tls;
    let sending = args.security.sending()?;
    let (to_engine, from_inputs) = std::sync::mpsc::channel();
    let shared = Arc::new(Shared {
        gate: Gate::new(args.queue as usize),
        to_engine: Mutex::new(Some(to_engine)),
        metrics: metrics::Metrics::new(),
        engine_ready: AtomicBool::new(false),
        downstream_up: AtomicBool::new(args.to == Dest::Stdout),
        downstream_error: Mutex::new("not connected yet".into()),
        stopping: AtomicBool::new(false),
        deadline: Mutex::new(None),
        limits: Limits { max_line: args.max_line, max_body: args.max_body },
        output_gone: tokio::sync::Notify::new(),
        disk_queue: args.queue_opts.open(args.stream.engine.state.as_deref().filter(|_| !args.stream.engine.frozen))?,
        token: listening.token.clone(),
        shared_key: listening.shared_key.clone(),
    });
    let (admin_stop_tx, admin_stop) = watch::channel(false);
    let mut listening_on = Vec::new();
    let admin_task = match admin {
        Some(addr) => {
            let l = bind("--admin", addr).await?;
            listening_on.push(format!("admin http://{}", local(&l)));
            let sh = shared.clone();
            Some(tokio::spawn(http_server::serve(l, None, shared.clone(), move |req| admin::handle(req, sh.clone()), admin_stop)))
        }
        None => None,
    };

    // the engine loads the state on its own thread while the admin endpoint answers "loading"
    let (out_tx, out_rx) = std::sync::mpsc::channel();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let stream_args = args.stream.clone();
    let sh = shared.clone();
    let engine = std::thread::Builder::new()
        .name("turbolog-engine".into())
        .spawn(move || {
            let stream = match stream_args.start() {
                Ok(s) => s,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = started_tx.send(Ok(()));
            process::run(stream, from_inputs, out_tx, sh)
        })
        .map_err(|e| format!("cannot start the engine thread: {e}"))?;
    let writer = Writer { dest: args.to.clone(), sending, state: args.stream.engine.state.clone().filter(|_| !args.stream.engine.frozen) };
    let sh = shared.clone();
    let writer = std::thread::Builder::new()
        .name("turbolog-writer".into())
        .spawn(move || writer.run(out_rx, sh))
        .map_err(|e| format!("cannot start the writer thread: {e}"))?;

    // the engine takes no more batches: it drains, closes its sessions and seals
    let finish = |shared: &Shared| {
        if let Some(tx) = shared.to_engine.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(ToEngine::End);
        }
    };
    match started_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            finish(&shared);
            let _ = tokio::task::spawn_blocking(move || (engine.join(), writer.join())).await;
            return Err(e.into());
        }
        Err(_) => return Err("the engine thread stopped while loading the state".into()),
    }

    // what the disk queue holds goes to the engine before anything new
    disk_queue::deliver_first(&shared).await;
    let (stop_tx, stop) = watch::channel(false);
    let mut inputs = tokio::task::JoinSet::new();
    let bound = async {
        if let Some(a) = args.tcp {
            let l = bind("--tcp", a).await?;
            listening_on.push(format!("tcp {}{}", if listening.tls.is_some() { "tls://" } else { "" }, local(&l)));
            inputs.spawn(tcp_in::serve(l, listening.tls.clone(), shared.clone(), stop.clone()));
        }
        if let Some(a) = args.http {
            let l = bind("--http", a).await?;
            listening_on.push(format!("http {}{}", if http_tls.is_some() { "https://" } else { "" }, local(&l)));
            let sh = shared.clone();
            inputs.spawn(http_server::serve(l, http_tls.clone(), shared.clone(), move |req| http_in::handle(req, sh.clone()), stop.clone()));
        }
        if let Some(a) = args.forward {
            let l = bind("--forward", a).await?;
            listening_on.push(format!("forward {}{}", if listening.tls.is_some() { "tls://" } else { "" }, local(&l)));
            inputs.spawn(forward_in::serve(l, listening.tls.clone(), shared.clone(), stop.clone()));
        }
        if let Some(a) = args.otlp_http {
            let l = bind("--otlp-http", a).await?;
            listening_on.push(format!("otlp-http {}://{}", if http_tls.is_some() { "https" } else { "http" }, local(&l)));
            let sh = shared.clone();
            inputs.spawn(http_server::serve(l, http_tls.clone(), shared.clone(), move |req| otlp_http::handle(req, sh.clone()), stop.clone()));
        }
        #[cfg(feature = "otlp-grpc")]
        if let Some(a) = args.otlp_grpc {
            let l = bind("--otlp-grpc", a).await?;
            listening_on.push(format!("otlp-grpc {}://{}", if grpc_tls.is_some() { "https" } else { "http" }, local(&l)));
            inputs.spawn(otlp_grpc::serve(l, grpc_tls.clone(), shared.clone(), stop.clone()));
        }
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = bound {
        finish(&shared);
        let _ = tokio::task::spawn_blocking(move || (engine.join(), writer.join())).await;
        return Err(e.into());
    }
    eprintln!("turbolog: serve: listening on {} → {}", listening_on.join(", "), args.to);

    tokio::select! {
        _ = signals.wait() => {}
        _ = shared.output_gone.notified() => eprintln!("turbolog: serve: standard output is closed: stopping"),
    }
    let drain = Duration::from_secs_f64(args.drain_timeout);
    eprintln!("turbolog: serve: stopping: no new connections; delivering what was accepted (at most {:.0} s)", drain.as_secs_f64());
    let started = Instant::now();
    *shared.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(started + drain);
    shared.stopping.store(true, Ordering::Release);
    let _ = stop_tx.send(true);
    let reading = tokio::time::timeout(tcp_in::READ_AFTER_STOP + tcp_in::QUIET * 2, async {
        while inputs.join_next().await.is_some() {}
    })
    .await;
    if reading.is_err() {
        eprintln!("turbolog: warning: senders were still sending {} s after shutdown began; their connections are closed", tcp_in::READ_AFTER_STOP.as_secs());
        inputs.abort_all();
    }
    finish(&shared);
    let (engine, writer) = tokio::task::spawn_blocking(move || (engine.join(), writer.join()))
        .await
        .map_err(|_| "a worker thread could not be joined".to_string())?;
    let _ = admin_stop_tx.send(true);
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    let engine = engine.map_err(|_| "the engine thread panicked; what it learned since the last window is in the WAL".to_string())?;
    let writer = writer.map_err(|_| "the writer thread panicked".to_string())?;
    engine?;
    let kept = writer?;
    let m = &shared.metrics;
    eprintln!(
        "turbolog: serve: stopped in {:.1} s: {} records out, {} kept in the outbox",
        started.elapsed().as_secs_f64(),
        m.records_out.get(),
        kept
    );
    Ok(0)
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?,
            int: signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_listen_names_the_address() {
        let lo: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert!(allowed("--tcp", lo, None).is_ok());
        assert!(allowed("--tcp", "[::1]:9000".parse().unwrap(), None).is_ok());
        let e = allowed("--tcp", any, None).unwrap_err();
        assert!(e.contains("--listen 0.0.0.0"), "{e}");
        assert!(allowed("--tcp", any, Some("0.0.0.0".parse().unwrap())).is_ok());
        assert!(allowed("--tcp", "10.0.0.5:9000".parse().unwrap(), Some("0.0.0.0".parse().unwrap())).is_err());
    }
}
