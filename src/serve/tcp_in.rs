//! NDJSON over TCP: Vector's `socket` sink (`json` codec, newline framing) and Fluent Bit's `tcp`
//! output (`format json_lines`). The sender gets no reply; a full queue stops our reads, which
//! fills the socket buffers and holds the sender back.

use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::metrics::Input;
use super::pipeline::{Admitted, Batch, Shared};
use super::stream::Stream;

const READ_SIZE: usize = 64 * 1024;
/// A TCP sender waits for no acknowledgement, so its batches are synced in groups: one fsync per
/// this many bytes read on a connection, and one at its end.
const SYNC_EVERY: usize = 1 << 20;
/// After shutdown begins, a connection is read until it has been quiet this long.
pub const QUIET: std::time::Duration = std::time::Duration::from_millis(200);

/// Accepts connections until `stop`, then waits for each to drain.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let sh = shared.clone();
    accept_until_stopped(listener, "a TCP", tls, sh, stop, move |s, stop| connection(s, shared.clone(), stop)).await
}

/// How long a sender has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `handle` on each connection `listener` accepts until `stop` (after its TLS handshake,
/// with `tls`: a failed one is counted and said, and the connection closed); then takes the
/// connections the kernel completed but that were not accepted yet (they hold records too), and
/// waits for every one to drain.
pub async fn accept_until_stopped<F, Fut>(listener: TcpListener, what: &'static str, tls: Option<TlsAcceptor>, shared: Arc<Shared>, mut stop: watch::Receiver<bool>, handle: F)
where
    F: Fn(Stream, watch::Receiver<bool>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let handle = Arc::new(handle);
    let start = |conns: &mut JoinSet<()>, s: TcpStream, stop: watch::Receiver<bool>| {
        let (handle, tls, shared) = (handle.clone(), tls.clone(), shared.clone());
        conns.spawn(async move {
            let stream = match tls {
                None => Stream::Plain(s),
                Some(acceptor) => {
                    let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(s)).await {
                        Ok(Ok(t)) => Stream::Tls(Box::new(t)),
                        Ok(Err(e)) => return shared.metrics.refused_credentials("tls", &format!("{what} connection from {peer}: its TLS handshake failed: {e}")),
                        Err(_) => return shared.metrics.refused_credentials("tls", &format!("{what} connection from {peer}: no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())),
                    }
                }
            };
            handle(stream, stop).await
        });
    };
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => start(&mut conns, s, stop.clone()),
                Err(e) => {
                    eprintln!("turbolog: warning: accepting {what} connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
        while conns.try_join_next().is_some() {}
    }
    while let Ok(Ok((s, _))) = tokio::time::timeout(std::time::Duration::from_millis(5), listener.accept()).await {
        start(&mut conns, s, stop.clone());
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// After shutdown begins, a connection is read for at most this long.
pub const READ_AFTER_STOP: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads one connection: `Some(0)` at its end, `None` when it failed, or during shutdown when it
/// was quiet past [`QUIET`] or has been read for [`READ_AFTER_STOP`] (`stopped` holds when the
/// connection first saw the shutdown).
pub async fn read_some(s: &mut Stream, buf: &mut Vec<u8>, stop: &mut watch::Receiver<bool>, stopped: &mut Option<std::time::Instant>) -> Option<usize> {
    // appends to `buf`, up to its spare capacity (at least READ_SIZE)
    buf.reserve(READ_SIZE);
    if *stop.borrow() {
        let since = *stopped.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() >= READ_AFTER_STOP {
            return None;
        }
        return match tokio::time::timeout(QUIET, s.read_buf(buf)).await {
            Ok(Ok(n)) => Some(n),
            _ => None,
        };
    }
    tokio::select! {
        r = s.read_buf(buf) => r.ok(),
        _ = stop.changed() => match tokio::time::timeout(QUIET, s.read_buf(buf)).await {
            Ok(Ok(n)) => Some(n),
            _ => None,
        },
    }
}

/// Why [`accept`] did not take a batch for good.
#[derive(Debug, PartialEq, Eq)]
pub enum NotAccepted {
    /// The engine has stopped.
    Stopped,
    /// Handed on, but not on disk: no acknowledgement (a Forward sender resends).
    NotDurable,
}

/// How long a batch the disk queue refused waits before it is offered again (reads stay paused).
const DISK_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// Hands records to the engine, waiting for room (in `--queue` and in the disk queue) unless
/// shutdown has begun: then the bound gives way, and what was read is never thrown away.
/// With `sync` the batch is on disk when this returns; without, its sequence number to sync.
pub async fn accept(shared: &Shared, mut batch: Batch, input: Input, stop: &mut watch::Receiver<bool>, sync: bool) -> Result<Option<u64>, NotAccepted> {
    if !*stop.borrow() {
        tokio::select! {
            p = shared.gate.enter(batch.records) => batch.permit = Some(p),
            _ = stop.changed() => {}
        }
    }
    let n = batch.records;
    let mut counted = false;
    loop {
        match shared.admit(batch, sync).await {
            Admitted::Yes(owed) => {
                shared.metrics.records_in(input, n);
                return Ok(owed);
            }
            Admitted::Stopped => return Err(NotAccepted::Stopped),
            Admitted::NotSynced(_) => {
                shared.metrics.records_in(input, n);
                return Err(NotAccepted::NotDurable);
            }
            Admitted::Refused(why, b) => {
                if !std::mem::replace(&mut counted, true) {
                    shared.metrics.rejected(why.reason());
                }
                if *stop.borrow() {
                    // shutting down and the disk refuses: delivered from memory, not acknowledged
                    if !shared.send(b) {
                        return Err(NotAccepted::Stopped);
                    }
                    shared.metrics.records_in(input, n);
                    return Err(NotAccepted::NotDurable);
                }
                batch = b;
                tokio::select! {
                    _ = tokio::time::sleep(DISK_RETRY) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

/// Waits for the disk queue to have everything up to `owed` on disk (a failure is said by the
/// queue; there is no sender to tell).
async fn sync(shared: &Shared, owed: Option<u64>) {
    if let (Some(q), Some(seq)) = (&shared.disk_queue, owed) {
        let _ = q.sync(seq).await;
    }
}

async fn connection(mut s: Stream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let peer = s.peer();
    shared.metrics.connection(Input::Tcp, 1);
    let max_line = shared.limits.max_line;
    // bytes read and not yet handed on: the complete lines become the batch as they are (no
    // copy), the partial last line stays
    let mut pending: Vec<u8> = Vec::new();
    // inside a line that went past --max-line: skipped up to its newline
    let mut skipping = false;
    let mut too_long = 0usize;
    let mut stopped = None;
    // appended to the disk queue and not yet synced: the last sequence number and the bytes
    let mut owed: Option<u64> = None;
    let mut owed_bytes = 0usize;
    loop {
        let old = pending.len();
        let n = read_some(&mut s, &mut pending, &mut stop, &mut stopped).await.unwrap_or(0);
        let mut searched_from = old;
        if n == 0 {
            // the end of the stream ends its last line
            if !pending.is_empty() && !skipping {
                pending.push(b'\n');
            }
        } else if skipping {
            match memchr::memchr(b'\n', &pending) {
                Some(i) => {
                    skipping = false;
                    pending.drain(..=i);
                    searched_from = 0;
                }
                None => {
                    pending.clear();
                    continue;
                }
            }
        }
        let complete = memchr::memrchr(b'\n', &pending[searched_from..]).map_or(0, |i| searched_from + i + 1);
        if pending.len() - complete > max_line {
            pending.truncate(complete);
            skipping = true;
            too_long += 1;
            shared.metrics.dropped("line_too_long", 1);
            if too_long == 1 {
                eprintln!("turbolog: warning: a line from {peer} is longer than --max-line {max_line} bytes; dropped (raise --max-line)");
            }
        }
        if complete > 0 {
            let tail = pending.split_off(complete);
            let lines = std::mem::replace(&mut pending, tail);
            let records = memchr::memchr_iter(b'\n', &lines).count();
            let text = String::from_utf8(lines).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            let bytes = text.len();
            let batch = Batch { text, records, times: Vec::new(), tag: None, permit: None, known: Vec::new() };
            // no acknowledgement over TCP: a batch not on disk is still delivered
            match accept(&shared, batch, Input::Tcp, &mut stop, false).await {
                Ok(Some(seq)) => {
                    owed = Some(seq);
                    owed_bytes += bytes;
                }
                Ok(None) | Err(NotAccepted::NotDurable) => {}
                Err(NotAccepted::Stopped) => break,
            }
            if owed_bytes >= SYNC_EVERY {
                sync(&shared, owed.take()).await;
                owed_bytes = 0;
            }
        }
        if n == 0 {
            break;
        }
    }
    sync(&shared, owed).await;
    shared.metrics.connection(Input::Tcp, -1);
}
