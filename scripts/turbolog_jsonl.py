"""Shared by the evaluation scripts: run `turbolog scan --format jsonl` and read its verdicts."""
import argparse, json, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BIN = os.path.join(ROOT, "target/release/turbolog")


def require(binary):
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: run `cargo build --release` first")


def scan(binary, path, extra=()):
    """One dict per input line (the JSONL contract), in order."""
    out = subprocess.run([binary, "scan", "--format", "jsonl", *extra, path], capture_output=True, check=False)
    if out.returncode not in (0, 1):
        sys.exit(f"turbolog scan failed on {path}: {out.stderr.decode()}")
    return [json.loads(l) for l in out.stdout.splitlines()]


def arguments(doc, data_default):
    """The options every evaluation script takes: --bin and --data; checks the binary exists."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--data", default=os.path.join(ROOT, data_default))
    args = ap.parse_args()
    require(args.bin)
    return args
