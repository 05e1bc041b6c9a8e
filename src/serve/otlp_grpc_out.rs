//! `--to otlp-grpc://HOST:PORT` (`otlp-grpcs://` over TLS, with the outputs' rustls client:
//! `--tls-ca`, `--insecure`): tagged records sent with the `LogsService/Export` RPC (tonic's
//! generated client, gzip), from the writer thread, which blocks on a runtime of its own.
//! UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, CANCELLED, OUT_OF_RANGE and
//! DATA_LOSS are retried (the OTLP retryable codes), a broken connection too; any other status
//! is a permanent refusal, counted and said; a partial success counts its rejected records.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use turbolog::codec::otlp;

use super::output::Taken;
use super::pipeline::Pending;

pub struct GrpcOut {
    runtime: tokio::runtime::Runtime,
    client: LogsServiceClient<Channel>,
    metadata: Vec<(MetadataKey<tonic::metadata::Ascii>, MetadataValue<tonic::metadata::Ascii>)>,
    addr: String,
}

impl GrpcOut {
    /// `url`: http://HOST:PORT, or https://HOST:PORT with `tls`.
    pub fn new(url: &str, tls: Option<Arc<rustls::ClientConfig>>, headers: &[(String, String)], connect_timeout: Duration, timeout: Duration) -> Result<GrpcOut, String> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start the gRPC client's runtime: {e}"))?;
        let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| format!("{url} is not an address gRPC can use: {e}"))?.connect_timeout(connect_timeout).timeout(timeout);
        let addr = url.split_once("://").map_or(url, |(_, a)| a).to_string();
        let channel = {
            let _in_runtime = runtime.enter();
            match tls {
                None => endpoint.connect_lazy(),
                Some(config) => {
                    let mut config = (*config).clone();
                    config.alpn_protocols = vec![b"h2".to_vec()];
                    let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
                    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| format!("{host} is not a name TLS can verify: {e}"))?;
                    endpoint.connect_with_connector_lazy(TlsConnect { tls: tokio_rustls::TlsConnector::from(Arc::new(config)), name, addr: addr.clone() })
                }
            }
        };
        let client = LogsServiceClient::new(channel).send_compressed(CompressionEncoding::Gzip).accept_compressed(CompressionEncoding::Gzip);
        let mut metadata = Vec::new();
        for (name, value) in headers {
            let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| format!("--to-header `{name}` is not a gRPC metadata name"))?;
            let value = MetadataValue::try_from(value.as_str()).map_err(|_| format!("--to-header `{name}`: its value is not ASCII metadata"))?;
            metadata.push((key, value));
        }
        Ok(GrpcOut { runtime, client, metadata, addr: url.to_string() })
    }

    pub fn export(&mut self, p: &Pending) -> Result<Taken, String> {
        let mut request = tonic::Request::new(otlp::to_request(&p.text));
        for (k, v) in &self.metadata {
            request.metadata_mut().insert(k.clone(), v.clone());
        }
        let mut client = self.client.clone();
        let addr = &self.addr;
        match self.runtime.block_on(client.export(request)) {
            Ok(response) => Ok(match response.into_inner().partial_success {
                Some(ps) if ps.rejected_log_records > 0 || !ps.error_message.is_empty() => {
                    Taken::AllBut(ps.rejected_log_records.max(0) as u64, format!("{addr} rejected {} of {} records: {}", ps.rejected_log_records, p.records, ps.error_message))
                }
                _ => Taken::All,
            }),
            Err(status) => match status.code() {
                Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled | Code::OutOfRange | Code::DataLoss => {
                    Err(format!("{addr} answered {:?}: {}", status.code(), status.message()))
                }
                code => Ok(Taken::AllBut(p.records as u64, format!("{addr} refused {} records with {code:?} (not retried): {}", p.records, status.message()))),
            },
        }
    }
}

/// Dials the downstream and runs the TLS handshake (ALPN h2) for tonic's channel.
#[derive(Clone)]
struct TlsConnect {
    tls: tokio_rustls::TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
    addr: String,
}

impl tonic::codegen::Service<tonic::codegen::http::Uri> for TlsConnect {
    type Response = TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect(&this.addr).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(this.tls.connect(this.name, tcp).await?))
        })
    }
}
