//! `--to otlp-grpc://HOST:PORT`: tagged records sent with the `LogsService/Export` RPC (tonic's
//! generated client, gzip), from the writer thread, which blocks on a runtime of its own.
//! UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, CANCELLED, OUT_OF_RANGE and
//! DATA_LOSS are retried (the OTLP retryable codes), a broken connection too; any other status
//! is a permanent refusal, counted and said; a partial success counts its rejected records.

use std::time::Duration;

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
    pub fn new(addr: &str, headers: &[(String, String)], connect_timeout: Duration, timeout: Duration) -> Result<GrpcOut, String> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start the gRPC client's runtime: {e}"))?;
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|e| format!("otlp-grpc://{addr} is not an address gRPC can use: {e}"))?;
        let channel = {
            let _in_runtime = runtime.enter();
            endpoint.connect_timeout(connect_timeout).timeout(timeout).connect_lazy()
        };
        let client = LogsServiceClient::new(channel).send_compressed(CompressionEncoding::Gzip).accept_compressed(CompressionEncoding::Gzip);
        let mut metadata = Vec::new();
        for (name, value) in headers {
            let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| format!("--to-header `{name}` is not a gRPC metadata name"))?;
            let value = MetadataValue::try_from(value.as_str()).map_err(|_| format!("--to-header `{name}`: its value is not ASCII metadata"))?;
            metadata.push((key, value));
        }
        Ok(GrpcOut { runtime, client, metadata, addr: addr.to_string() })
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
                    Taken::AllBut(ps.rejected_log_records.max(0) as u64, format!("otlp-grpc://{addr} rejected {} of {} records: {}", ps.rejected_log_records, p.records, ps.error_message))
                }
                _ => Taken::All,
            }),
            Err(status) => match status.code() {
                Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled | Code::OutOfRange | Code::DataLoss => {
                    Err(format!("otlp-grpc://{addr} answered {:?}: {}", status.code(), status.message()))
                }
                code => Ok(Taken::AllBut(p.records as u64, format!("otlp-grpc://{addr} refused {} records with {code:?} (not retried): {}", p.records, status.message()))),
            },
        }
    }
}
