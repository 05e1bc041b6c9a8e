//! OTLP/HTTP logs in: `POST /v1/logs` with an `ExportLogsServiceRequest` in protobuf
//! (`application/x-protobuf`) or OTLP JSON (`application/json`), optionally gzip (the
//! OpenTelemetry SDKs' and Collector's `otlphttp` exporter, Fluent Bit's `opentelemetry` output).
//! 200 with an `ExportLogsServiceResponse` once every record is accepted (no partial success:
//! a request is taken whole or not at all); 400 for a body that is not one; 503 with
//! `Retry-After` while the queue is full or the server is stopping, which the exporters retry.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use turbolog::codec::otlp::{self, Encoding};

use super::http_in::{admit, read_body, refused};
use super::http_server::{reply, text, Reply};
use super::metrics::Input;
use super::pipeline::{Batch, Shared};

pub const PATH: &str = "/v1/logs";

pub async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Reply {
    if req.uri().path() != PATH {
        shared.metrics.rejected("not_found");
        return text(StatusCode::NOT_FOUND, format!("{} is not an OTLP endpoint here: POST logs to {PATH}", req.uri().path()));
    }
    let (body, content_type) = match read_body(req, &shared, "an OTLP ExportLogsServiceRequest").await {
        Ok(b) => b,
        Err(refusal) => return refused(&shared, refusal),
    };
    let Some(encoding) = Encoding::from_content_type(&content_type) else {
        let why = format!("content-type `{content_type}` is not OTLP: send application/x-protobuf or application/json");
        return refused(&shared, (StatusCode::UNSUPPORTED_MEDIA_TYPE, why, "content_type"));
    };
    let mut batch = Batch { text: String::new(), records: 0, times: Vec::new(), tag: None, permit: None };
    match otlp::decode(&body, encoding, &mut batch.text) {
        Ok(n) => batch.records = n,
        Err(why) => return refused(&shared, (StatusCode::BAD_REQUEST, why, "bad_request")),
    }
    match admit(batch, &shared, Input::OtlpHttp).await {
        Ok(_) => reply(StatusCode::OK, encoding.content_type(), otlp::accepted_response(encoding)),
        Err(refusal) => refused(&shared, refusal),
    }
}
