#!/usr/bin/env python3
"""`turbolog filter` with explain off, on with a real LLM server up, and on with no server:
records per CPU-second of the filter process, as ratios measured side by side in one run.

The LLM server is llama.cpp's own (xllamacpp) with SmolLM2-135M, from `scripts/fetch-llm.sh`;
its CPU is its own process's, not the filter's. Each configuration runs REPEAT times,
interleaved; the best CPU time of each is kept (noise only ever adds time).

usage: scripts/bench_explain.py [--lines 500000] [--repeat 3] [--bin target/release/turbolog]
"""
import argparse, os, resource, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_of(cmd, stdin_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    with open(stdin_path, "rb") as f:
        subprocess.run(cmd, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/turbolog"))
    ap.add_argument("--data", default=os.path.join(ROOT, "../shared/datasets/loghub"))
    args = ap.parse_args()
    python = os.path.join(ROOT, ".cache/llm/venv/bin/python")
    model = os.path.join(ROOT, ".cache/llm/model.gguf")
    if not (os.path.exists(python) and os.path.exists(model)):
        sys.exit("no local LLM: run scripts/fetch-llm.sh first")
    lines = []
    for name in sorted(os.listdir(args.data)):
        p = os.path.join(args.data, name, f"{name}_2k.log")
        if os.path.exists(p):
            with open(p, encoding="utf-8", errors="replace") as f:
                lines += [l.rstrip("\r\n") for l in f]
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "in.log")
        with open(inp, "w") as f:
            for i in range(args.lines):
                f.write(lines[i % len(lines)] + "\n")
        port = free_port()
        server = subprocess.Popen([python, os.path.join(ROOT, "scripts/llm-server.py"), "--model", model, "--port", str(port)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert server.stdout.readline().strip() == f"ready {port}", "the LLM server did not start"
        dead = f"http://127.0.0.1:{free_port()}"
        configs = {
            "explain off": [args.bin, "filter"],
            "explain on, server up": [args.bin, "filter", "--explain", "--explain-url", f"http://127.0.0.1:{port}"],
            "explain on, server down": [args.bin, "filter", "--explain", "--explain-url", dead],
        }
        best = {k: (float("inf"), 0.0) for k in configs}
        try:
            for _ in range(args.repeat):
                for name, cmd in configs.items():
                    cpu, wall = cpu_of(cmd, inp)
                    if cpu < best[name][0]:
                        best[name] = (cpu, wall)
        finally:
            server.stdin.close()
            server.kill()
    print(f"turbolog filter, {args.lines} lines of the 13 loghub systems, best of {args.repeat} (CPU-seconds of the filter process)")
    base = args.lines / best["explain off"][0]
    for name, (cpu, wall) in best.items():
        rate = args.lines / cpu
        print(f"  {name:<26} {cpu:6.2f} CPU-s  {rate:>10.0f} records/CPU-s  ratio {rate / base:.2f}   wall {wall:5.2f} s")


if __name__ == "__main__":
    main()
