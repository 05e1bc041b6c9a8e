//! The writer thread: delivers tagged records in order to stdout, an NDJSON TCP receiver
//! (Vector's `socket` source) or a Fluent Forward receiver (Fluent Bit's `forward` input,
//! Vector's `fluent` source), waiting for the receiver's ack on Forward.
//!
//! Nothing is dropped: a failed write is retried on a new connection, with back-off, holding the
//! records (at-least-once: a receiver may see a batch twice after a broken connection). At
//! shutdown what the downstream has not taken by the deadline goes to the state's outbox and is
//! delivered first on the next start.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use super::forward;
use super::outbox;
use super::pipeline::{Out, Pending, Shared};
use super::security::Sending;

/// Where tagged records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    /// NDJSON over TCP.
    Tcp(String),
    /// NDJSON over TLS.
    TcpTls(String),
    /// Fluent Forward over TCP.
    Forward(String),
    /// Fluent Forward over TLS.
    ForwardTls(String),
    /// OTLP/HTTP logs (protobuf): the URL records are POSTed to (http:// or https://).
    OtlpHttp(String),
    /// OTLP/gRPC logs: http://HOST:PORT, or https://HOST:PORT over TLS.
    OtlpGrpc(String),
}

impl Dest {
    /// Over TLS: the downstream's certificate is verified (unless --insecure).
    pub fn is_tls(&self) -> bool {
        match self {
            Dest::TcpTls(_) | Dest::ForwardTls(_) => true,
            Dest::OtlpHttp(url) | Dest::OtlpGrpc(url) => url.starts_with("https://"),
            Dest::Stdout | Dest::Tcp(_) | Dest::Forward(_) => false,
        }
    }
}

impl std::str::FromStr for Dest {
    type Err = String;
    fn from_str(s: &str) -> Result<Dest, String> {
        let addr = |rest: &str| -> Result<String, String> {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| format!("`{s}` has no port: write HOST:PORT"))?;
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("`{s}` is not HOST:PORT with a port in 1..65535"));
            }
            Ok(rest.to_string())
        };
        if s == "stdout" || s == "-" {
            Ok(Dest::Stdout)
        } else if let Some(rest) = s.strip_prefix("tcp://") {
            addr(rest).map(Dest::Tcp)
        } else if let Some(rest) = s.strip_prefix("tcp+tls://") {
            addr(rest).map(Dest::TcpTls)
        } else if let Some(rest) = s.strip_prefix("forward://") {
            addr(rest).map(Dest::Forward)
        } else if let Some(rest) = s.strip_prefix("forward+tls://") {
            addr(rest).map(Dest::ForwardTls)
        } else if let Some(rest) = s.strip_prefix("otlp-grpc://") {
            addr(rest.trim_end_matches('/')).map(|a| Dest::OtlpGrpc(format!("http://{a}")))
        } else if let Some(rest) = s.strip_prefix("otlp-grpcs://") {
            addr(rest.trim_end_matches('/')).map(|a| Dest::OtlpGrpc(format!("https://{a}")))
        } else if let Some((scheme, rest)) = s.strip_prefix("otlp-http://").map(|r| ("http", r)).or_else(|| s.strip_prefix("otlp-https://").map(|r| ("https", r))) {
            let (host_port, path) = rest.find('/').map_or((rest, super::otlp_http::PATH), |i| (&rest[..i], &rest[i..]));
            addr(host_port).map(|a| Dest::OtlpHttp(format!("{scheme}://{a}{path}")))
        } else {
            Err(format!("unknown destination `{s}`: use stdout, tcp://HOST:PORT (NDJSON), forward://HOST:PORT (Fluent Forward), otlp-http://HOST:PORT[/PATH] (OTLP/HTTP logs, /v1/logs by default), otlp-grpc://HOST:PORT (OTLP/gRPC), or over TLS tcp+tls://, forward+tls://, otlp-https://, otlp-grpcs://"))
        }
    }
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Stdout => f.write_str("stdout"),
            Dest::Tcp(a) => write!(f, "tcp://{a}"),
            Dest::TcpTls(a) => write!(f, "tcp+tls://{a}"),
            Dest::Forward(a) => write!(f, "forward://{a}"),
            Dest::ForwardTls(a) => write!(f, "forward+tls://{a}"),
            Dest::OtlpHttp(url) => write!(f, "otlp-{url}"),
            Dest::OtlpGrpc(url) => match url.strip_prefix("https://") {
                Some(a) => write!(f, "otlp-grpcs://{a}"),
                None => write!(f, "otlp-grpc://{}", url.trim_start_matches("http://")),
            },
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a Forward receiver may take to acknowledge a message.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A connection to the downstream, in the clear or over TLS.
trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

struct Conn {
    dest: Dest,
    sending: Sending,
    stream: Option<Box<dyn ReadWrite>>,
    chunks: u64,
    reply: Vec<u8>,
    /// OTLP/HTTP: one agent, its connections kept alive between requests.
    agent: Option<ureq::Agent>,
    #[cfg(feature = "otlp-grpc")]
    grpc: Option<super::otlp_grpc_out::GrpcOut>,
}

/// What a downstream did with records it answered for.
#[derive(Debug, PartialEq)]
pub(super) enum Taken {
    All,
    /// The downstream took the rest but refused these for good (OTLP: a partial success or a
    /// status that says not to retry): counted and said, not retried.
    AllBut(u64, String),
}

impl Conn {
    fn connect(&mut self) -> Result<(), String> {
        if self.stream.is_some() {
            return Ok(());
        }
        if let Dest::OtlpHttp(_) = self.dest {
            if self.agent.is_none() {
                self.agent = Some(ureq::AgentBuilder::new().timeout_connect(CONNECT_TIMEOUT).timeout(ACK_TIMEOUT).tls_config(self.sending.tls.clone()).build());
            }
            return Ok(());
        }
        #[cfg(feature = "otlp-grpc")]
        if let Dest::OtlpGrpc(url) = &self.dest {
            if self.grpc.is_none() {
                let tls = self.dest.is_tls().then(|| self.sending.tls.clone());
                self.grpc = Some(super::otlp_grpc_out::GrpcOut::new(url, tls, &self.sending.headers, CONNECT_TIMEOUT, ACK_TIMEOUT)?);
            }
            return Ok(());
        }
        let (Dest::Tcp(a) | Dest::Forward(a) | Dest::TcpTls(a) | Dest::ForwardTls(a)) = &self.dest else { return Ok(()) };
        let addrs = a.to_socket_addrs().map_err(|e| format!("cannot resolve {a}: {e}"))?;
        let mut last = format!("{a} resolves to no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let _ = s.set_read_timeout(Some(ACK_TIMEOUT));
                    let _ = s.set_write_timeout(Some(ACK_TIMEOUT));
                    let mut stream: Box<dyn ReadWrite> = if self.dest.is_tls() { Box::new(tls_connect(&self.sending, a, s)?) } else { Box::new(s) };
                    if let (Some(key), Dest::Forward(_) | Dest::ForwardTls(_)) = (&self.sending.shared_key, &self.dest) {
                        super::forward_auth::client_handshake(&mut *stream, key.bytes()).map_err(|e| format!("{a}: {e}"))?;
                    }
                    self.stream = Some(stream);
                    return Ok(());
                }
                Err(e) => last = format!("cannot connect to {addr}: {e}"),
            }
        }
        Err(last)
    }

    /// Writes `p`; `on_wire` is called once the bytes are about to leave (connected).
    fn deliver(&mut self, p: &Pending, on_wire: impl FnOnce()) -> Result<Taken, String> {
        if let Dest::Stdout = self.dest {
            on_wire();
            let mut out = std::io::stdout().lock();
            return out.write_all(p.text.as_bytes()).and_then(|_| out.flush()).map(|_| Taken::All).map_err(|e| format!("cannot write to standard output: {e}"));
        }
        self.connect()?;
        on_wire();
        if let Dest::OtlpHttp(url) = &self.dest {
            let agent = self.agent.as_ref().ok_or("no HTTP agent")?;
            return otlp_post(agent, url, &self.sending.headers, p);
        }
        #[cfg(feature = "otlp-grpc")]
        if let Some(grpc) = self.grpc.as_mut() {
            return grpc.export(p);
        }
        let result = self.send(p);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn send(&mut self, p: &Pending) -> Result<Taken, String> {
        let s = self.stream.as_mut().ok_or("not connected")?;
        match &self.dest {
            Dest::Tcp(a) | Dest::TcpTls(a) => s.write_all(p.text.as_bytes()).map(|_| Taken::All).map_err(|e| format!("writing to {a}: {e}")),
            Dest::Forward(a) | Dest::ForwardTls(a) => {
                self.chunks += 1;
                let chunk = format!("turbolog-{}-{}", std::process::id(), self.chunks);
                let msg = forward::encode(p.tag.as_deref().unwrap_or("turbolog"), &p.text, &p.times, &chunk);
                s.write_all(&msg).map_err(|e| format!("writing to {a}: {e}"))?;
                self.reply.clear();
                let mut buf = [0u8; 256];
                loop {
                    if let Some((_, ack)) = forward::read_ack(&self.reply).map_err(|e| format!("{a} answered: {e}"))? {
                        return match ack {
                            Some(c) if c == chunk => Ok(Taken::All),
                            other => Err(format!("{a} acknowledged {other:?}, expected {chunk}")),
                        };
                    }
                    match s.read(&mut buf) {
                        Ok(0) => return Err(format!("{a} closed the connection before acknowledging")),
                        Ok(n) => self.reply.extend_from_slice(&buf[..n]),
                        Err(e) => return Err(format!("waiting for {a} to acknowledge: {e}")),
                    }
                }
            }
            Dest::Stdout | Dest::OtlpHttp(_) => Ok(Taken::All),
            Dest::OtlpGrpc(url) => Err(format!("{url}: this turbolog was built without OTLP/gRPC")),
        }
    }
}

/// POSTs tagged records as one OTLP `ExportLogsServiceRequest` (protobuf). Retryable statuses
/// (429, 502, 503, 504) and broken connections are errors, retried by the writer; any other
/// refusal is permanent, as OTLP/HTTP says.
fn otlp_post(agent: &ureq::Agent, url: &str, headers: &[(String, String)], p: &Pending) -> Result<Taken, String> {
    use turbolog::codec::otlp::{self, Encoding};
    let body = otlp::encode(&p.text, Encoding::Protobuf);
    let read = |r: ureq::Response| {
        let mut reply = Vec::new();
        let _ = r.into_reader().take(1 << 20).read_to_end(&mut reply);
        reply
    };
    let mut request = agent.post(url).set("Content-Type", Encoding::Protobuf.content_type());
    for (name, value) in headers {
        request = request.set(name, value);
    }
    match request.send_bytes(&body) {
        Ok(r) => Ok(match otlp::rejected_by(&read(r), Encoding::Protobuf) {
            Some((n, why)) => Taken::AllBut(n.max(0) as u64, format!("{url} rejected {n} of {} records: {why}", p.records)),
            None => Taken::All,
        }),
        Err(ureq::Error::Status(code @ (429 | 502 | 503 | 504), _)) => Err(format!("{url} answered {code}: busy")),
        Err(ureq::Error::Status(code, r)) => {
            let content_type = r.content_type().to_string();
            let why = otlp::status_message(&read(r), &content_type);
            Ok(Taken::AllBut(p.records as u64, format!("{url} refused {} records with {code} (not retried): {why}", p.records)))
        }
        Err(e) => Err(format!("posting to {url}: {e}")),
    }
}

/// A TLS connection to `addr` (HOST:PORT) over `tcp`, its handshake done (a certificate the
/// downstream presents that does not verify fails here, so `/readyz` says it at once).
fn tls_connect(sending: &Sending, addr: &str, mut tcp: TcpStream) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| format!("{host} is not a name TLS can verify: {e}"))?;
    let mut conn = rustls::ClientConnection::new(sending.tls.clone(), name).map_err(|e| format!("TLS to {addr}: {e}"))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

pub struct Writer {
    pub dest: Dest,
    pub sending: Sending,
    pub state: Option<PathBuf>,
}

impl Writer {
    /// Runs until the engine thread is done and everything is delivered or kept in the outbox.
    /// Returns how many records went to the outbox.
    pub fn run(self, outs: Receiver<Out>, shared: Arc<Shared>) -> Result<usize, String> {
        let mut conn = Conn { dest: self.dest.clone(), sending: self.sending.clone(), stream: None, chunks: 0, reply: Vec::new(), agent: None, #[cfg(feature = "otlp-grpc")] grpc: None };
        let mut backoff = Duration::from_millis(50);
        let mut failing = false;
        let up = |shared: &Shared, ok: bool, why: &str| {
            shared.downstream_up.store(ok, Ordering::Release);
            shared.metrics.downstream_up.set(ok as i64);
            if !ok {
                *shared.downstream_error.lock().unwrap_or_else(|p| p.into_inner()) = why.to_string();
            }
        };
        let connect = |conn: &mut Conn| match conn.connect() {
            Ok(()) => up(&shared, true, ""),
            Err(e) => {
                shared.metrics.downstream_errors.inc();
                up(&shared, false, &e);
            }
        };
        // connect before the first record, so `/readyz` tells an unreachable downstream at once
        connect(&mut conn);
        // what was kept at the last shutdown goes first
        let mut queue: std::collections::VecDeque<Out> = std::collections::VecDeque::new();
        if let Some(dir) = &self.state {
            let (kept, warning) = outbox::take(dir);
            if let Some(w) = warning {
                eprintln!("turbolog: warning: {w}");
            }
            let n: usize = kept.iter().map(|p| p.records).sum();
            if n > 0 {
                eprintln!("turbolog: serve: delivering {n} records kept in {} at the last shutdown first", dir.display());
            }
            queue.extend(kept.into_iter().map(|pending| Out { pending, permit: None }));
        }
        let mut engine_done = false;
        let mut gone = None;
        loop {
            if queue.is_empty() {
                if engine_done {
                    break;
                }
                match outs.recv_timeout(Duration::from_millis(200)) {
                    Ok(o) => queue.push_back(o),
                    Err(RecvTimeoutError::Disconnected) => engine_done = true,
                    Err(RecvTimeoutError::Timeout) => {
                        if !failing && conn.stream.is_none() && matches!(conn.dest, Dest::Tcp(_) | Dest::Forward(_) | Dest::TcpTls(_) | Dest::ForwardTls(_)) {
                            // idle and not connected: keep `/readyz` honest
                            connect(&mut conn);
                        }
                    }
                }
                continue;
            }
            if failing && shared.past_deadline() {
                break;
            }
            let o = &queue[0];
            let seq = o.permit.as_ref().and_then(|h| h.seq);
            let on_wire = || {
                if let (Some(q), Some(seq)) = (&shared.disk_queue, seq) {
                    q.sending(seq);
                }
            };
            match conn.deliver(&o.pending, on_wire) {
                Ok(taken) => {
                    let mut out = o.pending.records as u64;
                    if let Taken::AllBut(refused, why) = taken {
                        let refused = refused.min(out);
                        out -= refused;
                        shared.metrics.dropped("downstream_refused", refused as usize);
                        eprintln!("turbolog: warning: {why}; counted in turbolog_records_dropped{{reason=\"downstream_refused\"}}");
                    }
                    shared.metrics.records_out.inc_by(out);
                    if let (Some(q), Some(seq)) = (&shared.disk_queue, seq) {
                        q.delivered(seq);
                        if q.is_replay(seq) {
                            shared.metrics.replayed_records.inc_by(o.pending.records as u64);
                        }
                        if q.is_redelivery(seq) {
                            shared.metrics.redelivered_records.inc_by(o.pending.records as u64);
                        }
                    }
                    if failing {
                        eprintln!("turbolog: serve: {} takes records again", self.dest);
                        failing = false;
                    }
                    up(&shared, true, "");
                    backoff = Duration::from_millis(50);
                    // its permit goes back with it: the inputs may take more
                    queue.pop_front();
                    while let Ok(o) = outs.try_recv() {
                        queue.push_back(o);
                    }
                }
                Err(e) => {
                    shared.metrics.downstream_errors.inc();
                    if !failing {
                        eprintln!("turbolog: warning: {e}; holding the records and retrying (inputs slow down once --queue is full)");
                        failing = true;
                    }
                    up(&shared, false, &e);
                    if self.dest == Dest::Stdout {
                        // nobody reads our output any more: nothing to retry; serve stops and
                        // keeps what it holds, like a downstream that is down at the deadline
                        shared.output_gone.notify_one();
                        gone = Some(e);
                        break;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        // past the deadline with the downstream failing: keep the rest
        while let Ok(o) = outs.recv() {
            queue.push_back(o);
        }
        // in the disk queue too: once the outbox holds them, the queue need not deliver them again
        let queued_through = queue.iter().filter_map(|o| o.permit.as_ref()?.seq).max();
        let queue_len_with_seq = queue.iter().filter(|o| o.permit.as_ref().is_some_and(|h| h.seq.is_some())).count();
        let left: Vec<Pending> = queue.into_iter().map(|o| o.pending).collect();
        let n: usize = left.iter().map(|p| p.records).sum();
        if n == 0 {
            return gone.map_or(Ok(0), Err);
        }
        shared.metrics.outbox_records.inc_by(n as u64);
        // only what the engine made at the end (closed sessions' verdicts) is not in the disk queue
        let all_queued = left.len() == queue_len_with_seq;
        match (&self.state, &shared.disk_queue) {
            (None, Some(q)) if all_queued => {
                eprintln!("turbolog: serve: {} did not take {n} records; they stay in the disk queue in {} and are delivered first at the next start", self.dest, q.dir().display());
                gone.map_or(Ok(n), Err)
            }
            (Some(dir), _) => {
                if let Err(e) = outbox::keep(dir, left) {
                    return Err(match (&shared.disk_queue, all_queued) {
                        (Some(q), true) => format!("{n} records not delivered to {} and {e}; they stay in the disk queue in {} and are delivered at the next start", self.dest, q.dir().display()),
                        _ => format!("{n} records not delivered to {} and {e}", self.dest),
                    });
                }
                if let (Some(q), Some(seq)) = (&shared.disk_queue, queued_through) {
                    q.delivered(seq);
                }
                eprintln!(
                    "turbolog: serve: {} did not take {n} records; kept in {} and delivered first at the next start",
                    self.dest,
                    dir.join(outbox::FILE_NAME).display()
                );
                gone.map_or(Ok(n), Err)
            }
            (None, _) => Err(format!(
                "{}{} did not take {n} records and there is no --state to keep them in; they are lost",
                gone.map(|e| format!("{e}: ")).unwrap_or_default(),
                self.dest
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_or_say_what_to_write() {
        assert_eq!("stdout".parse::<Dest>().unwrap(), Dest::Stdout);
        assert_eq!("tcp://127.0.0.1:9000".parse::<Dest>().unwrap(), Dest::Tcp("127.0.0.1:9000".into()));
        assert_eq!("forward://vector:24224".parse::<Dest>().unwrap(), Dest::Forward("vector:24224".into()));
        assert!("udp://x:1".parse::<Dest>().unwrap_err().contains("tcp://HOST:PORT"));
        assert!("tcp://x".parse::<Dest>().unwrap_err().contains("no port"));
        assert!("tcp://x:0".parse::<Dest>().unwrap_err().contains("1..65535"));
        assert_eq!(Dest::Forward("h:1".into()).to_string(), "forward://h:1");
        assert_eq!("otlp-http://collector:4318".parse::<Dest>().unwrap(), Dest::OtlpHttp("http://collector:4318/v1/logs".into()));
        assert_eq!("otlp-http://c:4318/ingest/logs".parse::<Dest>().unwrap().to_string(), "otlp-http://c:4318/ingest/logs");
        assert!("otlp-http://c/v1/logs".parse::<Dest>().unwrap_err().contains("no port"));
        assert_eq!("otlp-https://c:4318".parse::<Dest>().unwrap(), Dest::OtlpHttp("https://c:4318/v1/logs".into()));
        assert_eq!("forward+tls://h:24224".parse::<Dest>().unwrap().to_string(), "forward+tls://h:24224");
        assert!("tcp+tls://h:1".parse::<Dest>().unwrap().is_tls() && !"tcp://h:1".parse::<Dest>().unwrap().is_tls());
        assert_eq!("otlp-grpcs://c:4317".parse::<Dest>().unwrap().to_string(), "otlp-grpcs://c:4317");
        assert_eq!("otlp-grpc://c:4317".parse::<Dest>().unwrap(), Dest::OtlpGrpc("http://c:4317".into()));
        assert!("otlp-grpcs://c:4317".parse::<Dest>().unwrap().is_tls());
    }
}
