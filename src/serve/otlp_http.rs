//! OTLP/HTTP logs in: `POST /v1/logs` with an `ExportLogsServiceRequest` in protobuf
//! (`application/x-protobuf`) or OTLP JSON (`application/json`), optionally gzip (the
//! OpenTelemetry SDKs' and Collector's `otlphttp` exporter, Fluent Bit's `opentelemetry` output).
//! 200 with an `ExportLogsServiceResponse` once the records are accepted, with a partial success
//! naming the records refused (longer than `--max-line`); a refused request gets its status and
//! a `google.rpc.Status` in the request's encoding: 400 for a body that is not one, 415 for
//! another type, 503 with `Retry-After` while the queue is full or the server is stopping
//! (the exporters retry those).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{header, Request, StatusCode};
use turbolog::codec::otlp::{self, Encoding};

use super::http_in::{admit, authorized, read_body, refusal_headers, Refusal};
use super::http_server::{reply, Reply};
use super::metrics::Input;
use super::pipeline::{Batch, Shared};

pub const PATH: &str = "/v1/logs";

pub async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Reply {
    // refusals answer in the request's encoding; protobuf when it names neither
    let asked = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(Encoding::from_content_type);
    let answer = asked.unwrap_or(Encoding::Protobuf);
    if let Err(refusal) = authorized(&req, &shared) {
        return refused(&shared, refusal, answer);
    }
    if req.uri().path() != PATH {
        let why = format!("{} is not an OTLP endpoint here: POST logs to {PATH}", req.uri().path());
        return refused(&shared, (StatusCode::NOT_FOUND, why, "not_found"), answer);
    }
    let (body, content_type) = match read_body(req, &shared, "an OTLP ExportLogsServiceRequest").await {
        Ok(b) => b,
        Err(refusal) => return refused(&shared, refusal, answer),
    };
    let Some(encoding) = asked else {
        let why = format!("content-type `{content_type}` is not OTLP: send application/x-protobuf or application/json");
        return refused(&shared, (StatusCode::UNSUPPORTED_MEDIA_TYPE, why, "content_type"), answer);
    };
    let mut batch = Batch { text: String::new(), records: 0, times: Vec::new(), tag: None, permit: None, known: Vec::new() };
    let decoded = match otlp::decode_known(&body, encoding, &mut batch.text, Some(&mut batch.known), shared.limits.max_line) {
        Ok(d) => d,
        Err(why) => return refused(&shared, (StatusCode::BAD_REQUEST, why, "bad_request"), encoding),
    };
    batch.records = decoded.records;
    if let Err(refusal) = admit(batch, &shared, Input::OtlpHttp).await {
        return refused(&shared, refusal, encoding);
    }
    if decoded.rejected > 0 {
        shared.metrics.dropped("line_too_long", decoded.rejected);
        return reply(StatusCode::OK, encoding.content_type(), otlp::partial_response(decoded.rejected, &decoded.why, encoding));
    }
    reply(StatusCode::OK, encoding.content_type(), otlp::accepted_response(encoding))
}

/// A refused request's reply, counted: its status and a `google.rpc.Status` saying why.
pub fn refused(shared: &Shared, (status, why, reason): Refusal, encoding: Encoding) -> Reply {
    shared.metrics.rejected(reason);
    let mut r = reply(status, encoding.content_type(), otlp::status_body(status.as_u16(), &why, encoding));
    refusal_headers(&mut r, status);
    r
}
