//! Fluent Forward over TCP: what Fluent Bit's and Fluentd's `forward` outputs send. A message
//! that asks for an ack (`option.chunk`) is acknowledged once its records are accepted.
//! A frame that is not Forward msgpack ends the connection (a msgpack stream cannot be
//! resynchronised) with a warning saying what was wrong; the sender retries unacknowledged chunks.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::forward;
use super::forward_auth;
use super::metrics::Input;
use super::pipeline::{Batch, Shared};
use super::stream::Stream;
use super::tcp_in::{accept, accept_until_stopped, read_some, NotAccepted};

pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let sh = shared.clone();
    accept_until_stopped(listener, "a Forward", tls, sh, stop, move |s, stop| connection(s, shared.clone(), stop)).await
}

async fn connection(mut s: Stream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let peer = s.peer();
    shared.metrics.connection(Input::Forward, 1);
    let max = shared.limits.max_body;
    let mut buf: Vec<u8> = Vec::new();
    if let Some(key) = &shared.shared_key {
        if let Err(why) = forward_auth::handshake(&mut s, key, &mut buf).await {
            shared.metrics.refused_credentials("shared_key", &format!("a Forward connection from {peer}: {why}"));
            shared.metrics.connection(Input::Forward, -1);
            return;
        }
    }
    let mut stopped = None;
    'conn: loop {
        // every complete message in the buffer
        loop {
            let end = match forward::message_end(&buf) {
                Ok(Some(end)) => end,
                Ok(None) => break,
                Err(e) => {
                    refuse(&shared, &peer, &format!("not msgpack: {e}"));
                    break 'conn;
                }
            };
            let m = match forward::decode(&buf[..end], max) {
                Ok(m) => m,
                Err(e) => {
                    refuse(&shared, &peer, &e);
                    break 'conn;
                }
            };
            buf.drain(..end);
            let records = m.times.len();
            if records > 0 {
                let batch = Batch { text: m.text, records, times: m.times, tag: Some(m.tag.into()), permit: None, known: Vec::new() };
                match accept(&shared, batch, Input::Forward, &mut stop, true).await {
                    Ok(_) => {}
                    Err(NotAccepted::NotDurable) if m.chunk.is_none() => {}
                    Err(NotAccepted::NotDurable) => {
                        // closing makes the sender resend what it holds unacknowledged
                        eprintln!("turbolog: warning: a Forward message from {peer} is not on disk; not acknowledged, the connection is closed so the sender resends it");
                        break 'conn;
                    }
                    Err(NotAccepted::Stopped) => break 'conn,
                }
            }
            if let Some(c) = &m.chunk {
                if s.write_all(&forward::ack(c)).await.is_err() {
                    break 'conn;
                }
            }
        }
        if buf.len() > max {
            refuse(&shared, &peer, &format!("a message larger than --max-body {max} bytes (raise --max-body)"));
            break;
        }
        match read_some(&mut s, &mut buf, &mut stop, &mut stopped).await {
            Some(0) | None => {
                if !buf.is_empty() {
                    eprintln!("turbolog: warning: Forward connection from {peer} ended inside a message ({} bytes); not acknowledged, so the sender resends it", buf.len());
                }
                break;
            }
            Some(_) => {}
        }
    }
    shared.metrics.connection(Input::Forward, -1);
}

fn refuse(shared: &Shared, peer: &str, why: &str) {
    shared.metrics.rejected("bad_frame");
    eprintln!("turbolog: warning: closing the Forward connection from {peer}: {why}");
}
