//! OTLP/gRPC logs in (the `otlp-grpc` feature): the `LogsService/Export` RPC of the OpenTelemetry
//! SDKs' and Collector's `otlp` exporters (port 4317 by convention), gzip or not, served by
//! tonic's generated service on the connections the shared accept loop hands over (TLS, stop and
//! drain as every input). `UNAUTHENTICATED` without the bearer token, `INVALID_ARGUMENT` for a
//! request that is not one, `UNAVAILABLE` while the queue is full or serve is stopping (the
//! exporters retry it), and a partial success for records longer than `--max-line`.

use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};
use turbolog::codec::otlp;

use super::http_in::admit;
use super::metrics::Input;
use super::pipeline::{Batch, Shared};
use super::security::bearer_ok;

struct Logs {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl LogsService for Logs {
    async fn export(&self, request: Request<ExportLogsServiceRequest>) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let shared = &self.shared;
        if let Some(token) = &shared.token {
            let header = request.metadata().get("authorization").map(|v| v.as_bytes());
            if !bearer_ok(token, header) {
                shared.metrics.rejected("token");
                shared.metrics.say_refused_credentials("an OTLP/gRPC export (no or a wrong bearer token)");
                return Err(Status::unauthenticated("send `authorization: Bearer <token>` metadata with the token of serve's --auth-token-file"));
            }
        }
        if shared.stopping() {
            shared.metrics.rejected("stopping");
            return Err(Status::unavailable("shutting down: send to another replica or retry"));
        }
        let mut batch = Batch { text: String::new(), records: 0, times: Vec::new(), tag: None, permit: None, known: Vec::new() };
        let decoded = otlp::decode_request(request.into_inner(), &mut batch.text, Some(&mut batch.known), shared.limits.max_line);
        batch.records = decoded.records;
        if let Err((_, why, reason)) = admit(batch, shared, Input::OtlpGrpc).await {
            shared.metrics.rejected(reason);
            return Err(Status::unavailable(why));
        }
        let mut response = ExportLogsServiceResponse::default();
        if decoded.rejected > 0 {
            shared.metrics.dropped("line_too_long", decoded.rejected);
            response.partial_success = Some(ExportLogsPartialSuccess { rejected_log_records: decoded.rejected as i64, error_message: decoded.why });
        }
        Ok(Response::new(response))
    }
}

pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let max = shared.limits.max_body;
    // replies go uncompressed: a reply is a few bytes, and gzip would set up a deflate state
    // (hundreds of KB, cleared) for each of them
    let service = LogsServiceServer::new(Logs { shared: shared.clone() }).accept_compressed(CompressionEncoding::Gzip).max_decoding_message_size(max);
    super::tcp_in::accept_until_stopped(listener, "an OTLP/gRPC", tls, shared, stop, move |s, mut stop| {
        let service = TowerToHyperService::new(service.clone());
        async move {
            s.set_nodelay();
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(s), service);
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
