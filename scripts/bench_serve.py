#!/usr/bin/env python3
"""Records/s through `turbolog serve` on one core, next to `turbolog filter` on a pipe, in one run.

The input is the 13 loghub systems repeated to N records (default 1,000,000) as NDJSON
({"message": line}). Each contender is pinned to core 0 (taskset); the sender and the receiver
(this script) run on the other core.
  filter: turbolog filter < input > /dev/null
  serve:  input sent over TCP to `serve --tcp`, tagged records sent on to `--to tcp://` (this
          script receives and counts them); timed from the first byte sent to the last record in.
  serve+queue: the same with the disk queue (`--queue-dir`, one fsync per batch, the default
          policy): every batch appended and synced before it is taken (target >= 0.8 of serve).
  serve otlp-http: the same records as OTLP/HTTP protobuf requests of 1,000 records (service.name
          set) to `serve --otlp-http`, on to `--to tcp://` (target >= 0.7 of serve per CPU-second);
          needs opentelemetry-proto (scripts/fetch-otel.sh; the script re-runs itself in its venv).
  serve otlp-https: the same over TLS (`--tls-cert/--tls-key`, a self-signed certificate made
          with the openssl CLI): the cost of TLS.
  serve otlp-grpc: the same request bodies through `serve --otlp-grpc` (grpcio's unary call).
Prints, for each: wall seconds, CPU seconds of the turbolog process, records per CPU-second,
records per wall second; the ratios serve/filter (target >= 0.8); serve's peak RSS; and, for
Kubernetes sizing, serve's RSS with many templates (RSS per million templates, extrapolated from
--templates unique templates, default 100,000).

usage: scripts/bench_serve.py [--records N] [--templates N] [--runs K] [--no-rss]
"""
import argparse, os, random, re, socket, string, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "../shared/datasets/loghub")
BIN = os.path.join(ROOT, "target/release/turbolog")


def json_str(s):
    import json
    return json.dumps(s)


def build_input(n, path):
    lines = []
    for name in sorted(os.listdir(DATA)):
        p = os.path.join(DATA, name, f"{name}_2k.log")
        if os.path.exists(p):
            with open(p, encoding="utf-8", errors="replace") as f:
                lines.extend(l.rstrip("\n") for l in f)
    encoded = [('{"message":' + json_str(l) + "}\n").encode() for l in lines]
    with open(path, "wb") as out:
        for i in range(n):
            out.write(encoded[i % len(encoded)])


def unique_templates(n, path):
    r = random.Random(11)
    word = lambda: "".join(r.choice(string.ascii_lowercase) for _ in range(r.randint(4, 9)))
    with open(path, "wb") as out:
        for i in range(n):
            out.write(('{"message":"' + " ".join(word() for _ in range(8)) + '"}\n').encode())


def cpu_of(pid):
    """utime + stime of a live process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def run_filter(path):
    with open(path, "rb") as inp, open(os.devnull, "wb") as out:
        t = time.perf_counter()
        child = subprocess.Popen(["taskset", "-c", "0", BIN, "filter"], stdin=inp, stdout=out, stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(child.pid, 0)
        return time.perf_counter() - t, ru.ru_utime + ru.ru_stime


class Receiver:
    """Accepts turbolog's connection and counts the records (lines) it sends."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.addr = "%s:%d" % self.sock.getsockname()
        self.count = 0
        self.done = threading.Event()
        self.target = None
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self.read, args=(conn,), daemon=True).start()

    def read(self, conn):
        while True:
            b = conn.recv(1 << 20)
            if not b:
                return
            self.count += b.count(b"\n")
            if self.target is not None and self.count >= self.target:
                self.done.set()


def start_serve(extra, to, otlp=False):
    inputs = {False: ["--tcp", "127.0.0.1:0"], True: ["--otlp-http", "127.0.0.1:0"], "grpc": ["--otlp-grpc", "127.0.0.1:0"]}[otlp]
    child = subprocess.Popen(
        ["taskset", "-c", "0", BIN, "serve"] + inputs + ["--admin", "127.0.0.1:0", "--to", f"tcp://{to}"] + extra,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = ""
    while "listening on" not in line:
        line = child.stderr.readline()
        if not line:
            break
    m = re.search(r"admin http://([\d.:]+), (?:tcp |otlp-http https?://|otlp-grpc https?://)([\d.:]+)", line)
    if not m:
        child.kill()
        sys.exit(f"serve did not start: {line}")
    return child, m.group(2), m.group(1)


def send(addr, path):
    h, p = addr.rsplit(":", 1)
    s = socket.create_connection((h, int(p)))
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            s.sendall(b)
    return s


def run_serve(path, n, extra=()):
    rx = Receiver()
    rx.target = n
    child, tcp, admin = start_serve(list(extra), rx.addr)
    time.sleep(0.2)
    cpu0 = cpu_of(child.pid)
    t = time.perf_counter()
    s = send(tcp, path)
    if not rx.done.wait(600):
        sys.exit(f"serve delivered {rx.count} of {n} records")
    wall = time.perf_counter() - t
    cpu = cpu_of(child.pid) - cpu0
    rss = peak_rss_mib(child.pid)
    s.close()
    child.terminate()
    child.wait()
    return wall, cpu, rss


def otlp_requests(path, per=1000):
    """The input's records as OTLP ExportLogsServiceRequest bodies (protobuf), `per` records each."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    import json
    with open(path, encoding="utf-8") as f:
        messages = [json.loads(l)["message"] for l in f]
    bodies = []
    for i in range(0, len(messages), per):
        req = ExportLogsServiceRequest()
        rl = req.resource_logs.add()
        kv = rl.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", "bench"
        sl = rl.scope_logs.add()
        for j, m in enumerate(messages[i:i + per]):
            r = sl.log_records.add()
            r.time_unix_nano = 1_700_000_000_000_000_000 + i + j
            r.severity_number = 9
            r.body.string_value = m
        bodies.append(req.SerializeToString())
    return bodies


def send_otlp(addr, bodies, tls=False):
    import http.client
    import ssl
    h, p = addr.rsplit(":", 1)
    if tls:
        # the bench's own self-signed certificate: not verified, the cost measured is serve's
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection(h, int(p), context=ctx)
    else:
        c = http.client.HTTPConnection(h, int(p))
    for b in bodies:
        while True:
            c.request("POST", "/v1/logs", body=b, headers={"Content-Type": "application/x-protobuf"})
            r = c.getresponse()
            r.read()
            if r.status == 200:
                break
            if r.status != 503:
                sys.exit(f"serve answered {r.status} to an OTLP request")
            time.sleep(0.01)
    c.close()


def send_otlp_grpc(addr, bodies):
    """The request bodies as they are (no re-encoding) through grpcio's unary call."""
    import grpc
    with grpc.insecure_channel(addr) as ch:
        export = ch.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        for b in bodies:
            while True:
                try:
                    export(b, timeout=30)
                    break
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNAVAILABLE:
                        sys.exit(f"serve answered {e.code()} to an OTLP/gRPC export")
                    time.sleep(0.01)


def self_signed(tmp):
    """A certificate and key for localhost (openssl CLI), for the TLS rows."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return ["--tls-cert", cert, "--tls-key", key]


def run_serve_otlp(bodies, n, kind=True, extra=()):
    rx = Receiver()
    rx.target = n
    child, addr, admin = start_serve(list(extra), rx.addr, otlp=kind)
    time.sleep(0.2)
    cpu0 = cpu_of(child.pid)
    t = time.perf_counter()
    if kind == "grpc":
        send_otlp_grpc(addr, bodies)
    else:
        send_otlp(addr, bodies, tls=bool(extra))
    if not rx.done.wait(600):
        sys.exit(f"serve delivered {rx.count} of {n} OTLP records")
    wall = time.perf_counter() - t
    cpu = cpu_of(child.pid) - cpu0
    child.terminate()
    child.wait()
    return wall, cpu


def metric(admin, name):
    import urllib.request
    body = urllib.request.urlopen(f"http://{admin}/metrics").read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines() if l.startswith(name))


def rss_per_million_templates(k, tmp):
    path = os.path.join(tmp, "unique.ndjson")
    unique_templates(k, path)
    rx = Receiver()
    rx.target = k
    child, tcp, admin = start_serve(["--max-templates", str(max(k * 2, 20000))], rx.addr)
    time.sleep(0.3)
    base = peak_rss_mib(child.pid)
    s = send(tcp, path)
    if not rx.done.wait(600):
        sys.exit("serve did not deliver the unique-template input")
    templates = metric(admin, "turbolog_templates")
    rss = peak_rss_mib(child.pid)
    s.close()
    child.terminate()
    child.wait()
    return base, rss, templates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--templates", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-rss", action="store_true", help="skip the many-templates RSS measurement")
    ap.add_argument("--no-otlp", action="store_true", help="skip the OTLP inputs (HTTP, HTTPS, gRPC)")
    a = ap.parse_args()
    otlp = not a.no_otlp
    if otlp:
        try:
            import opentelemetry.proto  # noqa: F401
        except ImportError:
            venv = os.path.join(ROOT, ".cache/otel/venv/bin/python")
            if os.path.exists(venv) and sys.executable != venv:
                os.execv(venv, [venv] + sys.argv)
            print("*** SKIPPED: OTLP/HTTP (no opentelemetry-proto: run scripts/fetch-otel.sh) ***")
            otlp = False
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "turbolog"], cwd=ROOT, check=True)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "input.ndjson")
        build_input(a.records, path)
        n = a.records
        print(f"input: {n} NDJSON records of the 13 loghub systems, {os.path.getsize(path) / 1e6:.0f} MB; turbolog pinned to core 0")
        rows = {"filter": [], "serve": [], "serve+queue": []}
        kinds = ["filter", "serve", "serve+queue"]
        if otlp:
            bodies = otlp_requests(path)
            tls = self_signed(tmp)
            for k in ["serve otlp-http", "serve otlp-https", "serve otlp-grpc"]:
                rows[k] = []
                kinds.append(k)
        rss = 0.0
        for run in range(a.runs):
            # rotate the order: none always runs on a warmer machine
            order = kinds[run % len(kinds):] + kinds[:run % len(kinds)]
            for which in order:
                if which == "filter":
                    rows["filter"].append(run_filter(path))
                elif which == "serve":
                    wall, cpu, r = run_serve(path, n)
                    rows["serve"].append((wall, cpu))
                    rss = max(rss, r)
                elif which == "serve otlp-http":
                    rows[which].append(run_serve_otlp(bodies, n))
                elif which == "serve otlp-https":
                    rows[which].append(run_serve_otlp(bodies, n, True, tls))
                elif which == "serve otlp-grpc":
                    rows[which].append(run_serve_otlp(bodies, n, "grpc"))
                else:
                    import shutil
                    q = os.path.join(tmp, "queue")
                    shutil.rmtree(q, ignore_errors=True)
                    wall, cpu, _ = run_serve(path, n, ["--queue-dir", q])
                    rows["serve+queue"].append((wall, cpu))
        best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in rows.items()}
        print(f"{'':15} {'wall s':>8} {'CPU s':>8} {'rec/CPU-s':>12} {'rec/wall-s':>12}   (best of {a.runs})")
        for k in kinds:
            w, c = best[k]
            print(f"{k:15} {w:8.2f} {c:8.2f} {n / c:12,.0f} {n / w:12,.0f}")
        per_cpu = best["filter"][1] / best["serve"][1]
        per_wall = best["filter"][0] / best["serve"][0]
        print(f"ratio serve/filter: {per_cpu:.2f} per CPU-second, {per_wall:.2f} per wall second (target >= 0.8)")
        q_cpu = best["serve"][1] / best["serve+queue"][1]
        q_wall = best["serve"][0] / best["serve+queue"][0]
        print(f"ratio disk queue/memory only (serve+queue/serve): {q_cpu:.2f} per CPU-second, {q_wall:.2f} per wall second (target >= 0.8)")
        if otlp:
            o_cpu = best["serve"][1] / best["serve otlp-http"][1]
            o_wall = best["serve"][0] / best["serve otlp-http"][0]
            print(f"ratio OTLP/HTTP in / NDJSON over TCP in: {o_cpu:.2f} per CPU-second, {o_wall:.2f} per wall second (target >= 0.7 per CPU-second)")
            g_cpu = best["serve"][1] / best["serve otlp-grpc"][1]
            g_wall = best["serve"][0] / best["serve otlp-grpc"][0]
            print(f"ratio OTLP/gRPC in / NDJSON over TCP in: {g_cpu:.2f} per CPU-second, {g_wall:.2f} per wall second (target >= 0.7 per CPU-second)")
            t_cpu = best["serve otlp-http"][1] / best["serve otlp-https"][1]
            print(f"cost of TLS on OTLP/HTTP in: HTTPS takes {best['serve otlp-https'][1] / best['serve otlp-http'][1] - 1:+.0%} CPU-seconds ({t_cpu:.2f} of the plain rate)")
        print(f"serve peak RSS: {rss:.0f} MiB")
        if a.no_rss:
            return
        base, full, templates = rss_per_million_templates(a.templates, tmp)
        per_m = (full - base) / max(templates, 1) * 1e6
        print(f"serve with {templates:,.0f} templates: RSS {base:.0f} -> {full:.0f} MiB, about {per_m:,.0f} MiB per million templates")


if __name__ == "__main__":
    main()
