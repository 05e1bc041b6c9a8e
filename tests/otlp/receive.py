"""An OTLP/HTTP logs receiver that decodes with opentelemetry-proto: one JSON line per record
(service.name, body, severity, attributes, the request's Authorization header) to stdout;
prints `listening PORT` first. Over HTTPS with a certificate and its key.
usage: receive.py [CERT.pem KEY.pem | grpc]"""
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse


def value(v):
    kind = v.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return [kind, getattr(v, kind)] if kind else None


def emit(req, authorization):
    for rl in req.resource_logs:
        resource = {kv.key: value(kv.value) for kv in rl.resource.attributes}
        for sl in rl.scope_logs:
            for r in sl.log_records:
                print(json.dumps({
                    "service.name": resource.get("service.name"),
                    "scope": sl.scope.name,
                    "body": value(r.body),
                    "severity_number": r.severity_number,
                    "severity_text": r.severity_text,
                    "time_unix_nano": r.time_unix_nano,
                    "attributes": {kv.key: value(kv.value) for kv in r.attributes},
                    "authorization": authorization,
                }), flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        req = ExportLogsServiceRequest()
        req.ParseFromString(body)
        emit(req, self.headers.get("Authorization"))
        out = ExportLogsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


if sys.argv[1:] == ["grpc"]:
    # an OTLP/gRPC receiver: the generated LogsService of opentelemetry-proto on grpcio
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):
            auth = dict(context.invocation_metadata()).get("authorization")
            emit(request, auth)
            return ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening {port}", flush=True)
    server.wait_for_termination()
    sys.exit(0)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if len(sys.argv) == 3:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[1], sys.argv[2])
    server.socket = tls.wrap_socket(server.socket, server_side=True)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
