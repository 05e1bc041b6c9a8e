"""The OpenTelemetry Python SDK's OTLP/HTTP log exporter, as an application uses it.
usage: send.py URL N [gzip]   (N records through the logging bridge, service.name=checkout)"""
import logging
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

url, n = sys.argv[1], int(sys.argv[2])
provider = LoggerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=url, timeout=10, compression=Compression.Gzip if sys.argv[3:] == ["gzip"] else Compression.NoCompression)))
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
