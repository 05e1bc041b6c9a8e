#!/usr/bin/env python3
"""Runs llama.cpp's HTTP server (xllamacpp) on loopback until standard input closes.

The explain tests start it, read the line `ready PORT`, and close its stdin to stop it. Also a
way to try `turbolog scan --explain` without installing Ollama:
    .cache/llm/venv/bin/python scripts/llm-server.py --model .cache/llm/model.gguf --port 8080
One thread: with two on a busy 2-core machine, one answer took 90 s here.
"""
import argparse, sys

import xllamacpp


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--alias", default="smollm2")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    p = xllamacpp.CommonParams()
    p.model.path = args.model
    p.model_alias = {args.alias}
    p.hostnames = ["127.0.0.1"]
    p.port = args.port
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    p.n_ctx = 2048
    server = xllamacpp.Server(p)  # returns once listening
    print(f"ready {args.port}", flush=True)
    sys.stdin.read()  # until the caller closes it
    del server


if __name__ == "__main__":
    main()
