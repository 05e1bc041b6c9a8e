"""The OpenTelemetry Python SDK's OTLP/HTTP log exporter, as an application uses it.
usage: send.py URL|grpc://HOST:PORT N [gzip] [ca=CA.pem] [token=TOKEN]   (N records through the logging bridge,
service.name=checkout; over HTTPS verifying with CA.pem, with `Authorization: Bearer TOKEN`)"""
import logging
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

url, n = sys.argv[1], int(sys.argv[2])
options = dict(a.split("=", 1) for a in sys.argv[3:] if "=" in a)
if url.startswith("grpc://"):
    # the SDK's OTLP/gRPC exporter (opentelemetry-exporter-otlp-proto-grpc)
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter
    from grpc import Compression as GrpcCompression

    import grpc

    tls = "ca" in options
    exporter = GrpcExporter(
        endpoint=("https://" if tls else "http://") + url[len("grpc://"):],
        insecure=not tls,
        credentials=grpc.ssl_channel_credentials(open(options["ca"], "rb").read()) if tls else None,
        timeout=10,
        compression=GrpcCompression.Gzip if "gzip" in sys.argv[3:] else GrpcCompression.NoCompression,
        headers={"authorization": f"Bearer {options['token']}"} if "token" in options else None,
    )
else:
  exporter = OTLPLogExporter(
    endpoint=url,
    timeout=10,
    compression=Compression.Gzip if "gzip" in sys.argv[3:] else Compression.NoCompression,
    certificate_file=options.get("ca"),
    headers={"Authorization": f"Bearer {options['token']}"} if "token" in options else None,
)
provider = LoggerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
log = logging.getLogger("shop")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(LoggingHandler(logger_provider=provider))
for i in range(n):
    if i == n - 1:
        log.error("kernel panic: unable to mount root fs on unknown-block(0,0)", extra={"seq": i})
    else:
        log.info("user %d logged in from 10.0.0.%d", i, i % 7, extra={"seq": i})
provider.force_flush()
provider.shutdown()
