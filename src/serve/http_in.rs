//! HTTP ingest: `POST` a JSON array, one JSON object, NDJSON (Vector's `http` sink, Fluent Bit's
//! `http` output with `format json` or `json_lines`) or Fluent Bit's msgpack (`format msgpack`,
//! its default), optionally gzip-compressed. 200 only once the records are accepted; 503 with
//! `Retry-After` while the queue is full or the server is stopping; 4xx say what was wrong.

use std::io::Read;
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{header, Method, Request, StatusCode};
use serde_json::Value;

use super::forward;
use super::http_server::{reply, text, Reply};
use super::metrics::Input;
use super::pipeline::{push_lines, Admitted, Batch, Shared};
use super::security::bearer_ok;

pub async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Reply {
    if let Err(refusal) = authorized(&req, &shared) {
        return refused(&shared, refusal);
    }
    match ingest(req, &shared).await {
        Ok(n) => reply(StatusCode::OK, "application/json", format!("{{\"accepted\":{n}}}\n")),
        Err(refusal) => refused(&shared, refusal),
    }
}

/// The reply to a refused request, counted: 503s say when to retry.
pub fn refused(shared: &Shared, (status, why, reason): Refusal) -> Reply {
    shared.metrics.rejected(reason);
    let mut r = text(status, why);
    refusal_headers(&mut r, status);
    r
}

/// What a refusal's status asks of the sender: when to retry, which method to use.
pub fn refusal_headers(r: &mut Reply, status: StatusCode) {
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Bearer"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        r.headers_mut().insert(header::ALLOW, hyper::header::HeaderValue::from_static("POST"));
    }
}

pub type Refusal = (StatusCode, String, &'static str);

/// With --auth-token-file: the request's bearer token is that one, or the refusal (401).
pub fn authorized(req: &Request<Incoming>, shared: &Shared) -> Result<(), Refusal> {
    let Some(token) = &shared.token else { return Ok(()) };
    let header = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if bearer_ok(token, header) {
        return Ok(());
    }
    let why = match header {
        None => "no Authorization header: send `Authorization: Bearer <token>` with the token of serve's --auth-token-file",
        Some(_) => "the bearer token is not the one serve's --auth-token-file holds",
    };
    // said once in a while on stderr; the reply's own count is `rejected` below
    shared.metrics.say_refused_credentials(&format!("an HTTP request ({})", why.split(':').next().unwrap_or(why)));
    Err((StatusCode::UNAUTHORIZED, why.to_string(), "token"))
}

async fn ingest(req: Request<Incoming>, shared: &Shared) -> Result<usize, Refusal> {
    let (body, content_type) = read_body(req, shared, "records (JSON, NDJSON or msgpack)").await?;
    let batch = decode(&body, &content_type).map_err(|why| (StatusCode::BAD_REQUEST, why, "bad_request"))?;
    admit(batch, shared, Input::Http).await
}

/// A POST's body, inflated when gzip, and its content type (lower case).
pub async fn read_body(req: Request<Incoming>, shared: &Shared, what: &str) -> Result<(bytes::Bytes, String), Refusal> {
    if req.method() != Method::POST {
        return Err((StatusCode::METHOD_NOT_ALLOWED, format!("{} is not accepted here: POST {what}", req.method()), "method"));
    }
    if shared.stopping() {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "shutting down: send to another replica or retry".into(), "stopping"));
    }
    let max = shared.limits.max_body;
    let header = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let content_type = header(header::CONTENT_TYPE);
    let encoding = header(header::CONTENT_ENCODING);
    let gzip = match encoding.as_str() {
        "" | "identity" => false,
        "gzip" | "x-gzip" => true,
        other => return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("content-encoding `{other}` is not supported: send it uncompressed or gzip"), "encoding")),
    };
    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than --max-body {max} bytes: send smaller batches or raise --max-body"), "too_large");
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => return Err((StatusCode::BAD_REQUEST, format!("reading the body: {e}"), "bad_request")),
    };
    if gzip {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("content-encoding says gzip but the body is not valid gzip: {e}"), "bad_request"))?;
        if out.len() > max {
            return Err(too_large());
        }
        return Ok((out.into(), content_type));
    }
    Ok((body, content_type))
}

/// Hands a decoded batch to the engine once the queue has room for it.
pub async fn admit(mut batch: Batch, shared: &Shared, input: Input) -> Result<usize, Refusal> {
    if batch.records == 0 {
        return Ok(0);
    }
    let Some(permit) = shared.gate.try_enter(batch.records) else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the queue is full ({} records waiting for the downstream): retry later", shared.gate.depth()),
            "queue_full",
        ));
    };
    batch.permit = Some(permit);
    let n = batch.records;
    match shared.admit(batch, true).await {
        Admitted::Yes(_) => {}
        Admitted::Stopped => return Err((StatusCode::SERVICE_UNAVAILABLE, "shutting down: send to another replica or retry".into(), "stopping")),
        Admitted::Refused(why, _) => return Err((StatusCode::SERVICE_UNAVAILABLE, why.to_string(), why.reason())),
        Admitted::NotSynced(why) => {
            // handed on already: it may arrive, and again when the sender retries
            shared.metrics.records_in(input, n);
            return Err((StatusCode::SERVICE_UNAVAILABLE, format!("{why}; retry"), "disk_queue_failing"));
        }
    }
    shared.metrics.records_in(input, n);
    Ok(n)
}

/// A body as records, by its content type (sniffed when the type says nothing useful).
pub fn decode(body: &[u8], content_type: &str) -> Result<Batch, String> {
    let mut batch = Batch { text: String::new(), records: 0, times: Vec::new(), tag: None, permit: None, known: Vec::new() };
    if content_type.contains("msgpack") {
        let mut m = forward::Message::default();
        forward::entries(body, &mut m).map_err(|e| format!("the msgpack body is not Fluent Bit records ([time, map] entries): {e}"))?;
        batch.records = m.times.len();
        batch.text = m.text;
        batch.times = m.times;
        return Ok(batch);
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let whole_json = content_type.contains("application/json") || first == Some(b'[');
    if first == Some(b'[') || (whole_json && !content_type.contains("ndjson")) {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON ({e}): send a JSON array of objects, or NDJSON as application/x-ndjson"))?;
        let items = match v {
            Value::Array(a) => a,
            other @ Value::Object(_) => vec![other],
            _ => return Err("the JSON body is neither an array nor an object".into()),
        };
        for (i, item) in items.into_iter().enumerate() {
            let obj = match item {
                Value::Object(_) => item,
                Value::String(s) => serde_json::json!({ "message": s }),
                _ => return Err(format!("element {i} of the array is not an object or a string")),
            };
            // serialising a JSON value cannot fail; compact output has no raw newline
            batch.text.push_str(&serde_json::to_string(&obj).unwrap_or_default());
            batch.text.push('\n');
            batch.records += 1;
        }
        return Ok(batch);
    }
    batch.records = push_lines(&mut batch.text, body);
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_of_every_kind_become_lines() {
        let b = decode(br#"[{"message":"a"},{"log":"b"},"c"]"#, "application/json").unwrap();
        assert_eq!((b.records, b.text.as_str()), (3, "{\"message\":\"a\"}\n{\"log\":\"b\"}\n{\"message\":\"c\"}\n"));
        let b = decode(b"{\"message\":\"a\"}\n{\"message\":\"b\"}", "application/x-ndjson").unwrap();
        assert_eq!(b.records, 2);
        let b = decode(b"{\"message\":\"one\"}", "application/json").unwrap();
        assert_eq!(b.records, 1);
        let b = decode(b"plain line\nanother\n", "text/plain").unwrap();
        assert_eq!(b.records, 2);
        let mut mp = Vec::new();
        rmp::encode::write_array_len(&mut mp, 2).unwrap();
        rmp::encode::write_uint(&mut mp, 1_795_515_600).unwrap();
        rmp::encode::write_map_len(&mut mp, 1).unwrap();
        rmp::encode::write_str(&mut mp, "log").unwrap();
        rmp::encode::write_str(&mut mp, "hi").unwrap();
        let b = decode(&mp, "application/msgpack").unwrap();
        assert_eq!((b.records, b.text.as_str(), b.times[0].secs), (1, "{\"log\":\"hi\"}\n", 1_795_515_600));
    }

    #[test]
    fn bad_bodies_say_what_to_send() {
        assert!(decode(b"[{\"a\":1},", "application/json").unwrap_err().contains("not valid JSON"));
        assert!(decode(b"[1]", "application/json").unwrap_err().contains("element 0"));
        assert!(decode(b"42", "application/json").unwrap_err().contains("neither an array nor an object"));
        assert!(decode(&[0xc1], "application/msgpack").unwrap_err().contains("not Fluent Bit records"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn any_body_of_any_type_gives_records_or_a_reason(body in proptest::collection::vec(any::<u8>(), 0..200), kind in 0usize..4) {
            let ct = ["application/json", "application/x-ndjson", "application/msgpack", ""][kind];
            if let Ok(b) = decode(&body, ct) {
                prop_assert_eq!(b.text.matches('\n').count(), b.records);
            }
        }
    }
}
