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
    default_model = os.path.join(ROOT, ".cache/model")
    ap.add_argument("--model", default=default_model if os.path.exists(os.path.join(default_model, "model.onnx")) else None,
                    help="also run with the sentence model in this directory, side by side (default: .cache/model when scripts/fetch-model.sh has prepared it)")
    ap.add_argument("--no-model", action="store_true", help="the built-in embedder only")
    args = ap.parse_args()
    if args.no_model:
        args.model = None
    require(args.bin)
    return args


def embedders(args):
    """(label suffix, extra scan arguments) for each embedder to compare."""
    out = [("", [])]
    if args.model:
        out.append((" +model", ["--model", args.model]))
    return out
