//! `/healthz` (the process answers), `/readyz` (the state is loaded, the downstream takes
//! records, not shutting down) and `/metrics` (Prometheus text format).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::http_server::{reply, text, Reply};
use super::pipeline::Shared;

pub async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Reply {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET /healthz, /readyz or /metrics");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok"),
        "/readyz" => match shared.ready() {
            Ok(()) => text(StatusCode::OK, "ready"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
        },
        "/metrics" => {
            let m = &shared.metrics;
            m.queue_records.set(shared.gate.depth() as i64);
            m.queue_capacity.set(shared.gate.capacity as i64);
            if let Some(q) = &shared.disk_queue {
                let (bytes, max) = q.bytes();
                m.queue_bytes.set(bytes as i64);
                m.queue_bytes_capacity.set(max as i64);
            }
            reply(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", m.render())
        }
        other => text(StatusCode::NOT_FOUND, format!("{other} is not here: GET /healthz, /readyz or /metrics")),
    }
}
