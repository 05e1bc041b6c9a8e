//! The HTTP/1.1 server loop the ingest and admin endpoints share (hyper), with graceful
//! shutdown: on `stop` no new connections are taken and open ones finish their request.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::pipeline::Shared;

pub type Reply = Response<Full<Bytes>>;

pub fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

pub fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut b: String = body.into();
    if !b.ends_with('\n') {
        b.push('\n');
    }
    reply(status, "text/plain; charset=utf-8", b)
}

pub async fn serve<H, F>(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>, handler: H, stop: watch::Receiver<bool>)
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let handler = Arc::new(handler);
    super::tcp_in::accept_until_stopped(listener, "an HTTP", tls, shared, stop, move |s, mut stop| {
        let handler = handler.clone();
        async move {
            let service = hyper::service::service_fn(move |req| {
                let f = handler(req);
                async move { Ok::<_, Infallible>(f.await) }
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), service);
            tokio::pin!(conn);
            if *stop.borrow() {
                conn.as_mut().graceful_shutdown();
            }
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        }
    })
    .await
}
