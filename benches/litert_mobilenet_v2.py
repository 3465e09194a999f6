#!/usr/bin/env python3
"""MobileNetV2-1.0 224x224 int8 end to end: LiteRT (XNNPACK) vs Outpost, in one run.

What it does, in order:
  1. Builds Keras's MobileNetV2-1.0 (224x224, 1000 classes, `weights=None`: random weights from
     a fixed seed; the model hubs are unreachable here) and converts it with TFLiteConverter to a
     fully int8 .tflite (per-channel int8 weights, int8 activations, int8 input and output;
     calibration on a few random inputs). The converter folds the batch norms, so the layer
     list is Outpost's synthetic MobileNetV2 (models/src/zoo/mobilenet_v2.rs).
  2. Counts the .tflite's multiply-accumulates from its convolution, depthwise and fully
     connected ops (should be ~300 M, as Outpost counts for its model).
  3. For each thread count: times LiteRT's Interpreter (default op resolver, i.e. with its
     XNNPACK delegate; `num_threads` = N) on a fixed int8 input, then Outpost's synthetic int8
     model (`outpost synth mobilenet_v2 --int8`, `outpost bench --threads N --json`).
  4. Prints one table with the ratio Outpost p50 / LiteRT p50 at the same thread count
     (below 1: Outpost faster); --json prints a machine-readable summary instead.

Both engines get the same --warmup and --runs; min/p50/p99 use `outpost bench`'s percentile rule
(sorted[round((n-1)*p)]). LiteRT's times are wall time of `invoke()` (input set once); Outpost's
are wall time of `Session::run`.

Install:  pip install -r benches/requirements-litert.txt
Run:      python3 benches/litert_mobilenet_v2.py [--runs 300] [--warmup 30] [--threads 1,2] [--json]
Outpost:  target/release/outpost (built if missing), or $OUTPOST_BIN.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SEED = 20261206


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def percentiles(times_ms: list[float]) -> dict:
    s = sorted(times_ms)
    at = lambda p: s[round((len(s) - 1) * p)]  # noqa: E731  (outpost bench's rule)
    return {"min_ms": s[0], "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": s[-1]}


def build_tflite(path: Path, calib: int) -> None:
    """Keras MobileNetV2 with random weights, converted to a fully int8 .tflite. The converter
    prints the model's signature on standard output: it goes to standard error here, so that
    --json prints nothing but the summary."""
    import contextlib

    import tensorflow as tf

    tf.keras.utils.set_random_seed(SEED)
    model = tf.keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=1.0, weights=None, classes=1000)
    rng = np.random.default_rng(SEED)

    def representative():
        for _ in range(calib):
            yield [rng.uniform(-1.0, 1.0, (1, 224, 224, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    with contextlib.redirect_stdout(sys.stderr):
        path.write_bytes(conv.convert())


def tflite_macs(path: Path) -> int:
    """Multiply-accumulates of the convolution, depthwise and fully connected ops."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    shapes = {t["index"]: tuple(int(d) for d in t["shape"]) for t in it.get_tensor_details()}
    macs = 0
    for op in it._get_ops_details():  # noqa: SLF001  (the only op listing the Interpreter has)
        name, ins, outs = op["op_name"], op["inputs"], op["outputs"]
        out = shapes[outs[0]]
        w = shapes[ins[1]] if len(ins) > 1 else ()
        if name == "CONV_2D":  # weights [out_c, kh, kw, in_c]
            macs += out[1] * out[2] * w[0] * w[1] * w[2] * w[3]
        elif name == "DEPTHWISE_CONV_2D":  # weights [1, kh, kw, out_c]
            macs += out[1] * out[2] * w[1] * w[2] * w[3]
        elif name == "FULLY_CONNECTED":  # weights [out, in]
            macs += w[0] * w[1]
    return macs


def bench_litert(path: Path, threads: int, warmup: int, runs: int) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    x = np.random.default_rng(SEED).integers(-128, 128, inp["shape"], dtype=np.int8)
    it.set_tensor(inp["index"], x)
    for _ in range(warmup):
        it.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        it.invoke()
        times.append((time.perf_counter() - t) * 1e3)
    return percentiles(times)


def outpost_bin() -> Path:
    if os.environ.get("OUTPOST_BIN"):
        return Path(os.environ["OUTPOST_BIN"])
    exe = REPO / "target/release/outpost"
    if not exe.exists():
        say("building Outpost (cargo build --release -p outpost)")
        subprocess.run(["cargo", "build", "--release", "-p", "outpost"], cwd=REPO, check=True,
                       stdout=sys.stderr)
    return exe


def bench_outpost(exe: Path, model: Path, threads: int, warmup: int, runs: int) -> dict:
    out = subprocess.run(
        [str(exe), "bench", "--model", str(model), "--threads", str(threads), "--runs", str(runs),
         "--warmup", str(warmup), "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--calib", type=int, default=8, help="random calibration inputs for LiteRT")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        ap.error(f"--threads: expected numbers like 1,2, got {args.threads!r}")
    if args.runs < 1 or args.warmup < 0 or any(t < 1 for t in threads):
        ap.error("--runs must be at least 1, --warmup at least 0, each thread count at least 1")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's info and warning lines
    import ai_edge_litert
    import tensorflow as tf

    exe = outpost_bin()
    with tempfile.TemporaryDirectory(prefix="outpost-litert-") as tmp:
        tflite = Path(tmp) / "mobilenet_v2_int8.tflite"
        say(f"converting Keras MobileNetV2 to int8 .tflite ({args.calib} calibration inputs)")
        build_tflite(tflite, args.calib)
        macs = tflite_macs(tflite)
        model = Path(tmp) / "mnv2_int8.safetensors"
        subprocess.run([str(exe), "synth", "mobilenet_v2", "--int8", "-o", str(model)], check=True,
                       stdout=subprocess.DEVNULL)
        rows = []
        for th in threads:
            say(f"LiteRT, {th} thread(s): {args.warmup} warmup + {args.runs} runs")
            lite = bench_litert(tflite, th, args.warmup, args.runs)
            say(f"Outpost, {th} thread(s): {args.warmup} warmup + {args.runs} runs")
            ours = bench_outpost(exe, model, th, args.warmup, args.runs)
            if abs(ours["macs"] - macs) > 0.02 * macs:
                say(f"warning: Outpost counts {ours['macs']} MACs, the .tflite {macs}")
            rows.append({
                "threads": th,
                "litert": lite,
                "outpost": {k: ours[k] for k in ("min_ms", "p50_ms", "p99_ms", "max_ms", "tier",
                                                  "allocs_per_run", "macs")},
                "outpost_p50_over_litert_p50": ours["p50_ms"] / lite["p50_ms"],
                "outpost_min_over_litert_min": ours["min_ms"] / lite["min_ms"],
            })
    summary = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
        "tensorflow": tf.__version__, "ai_edge_litert": getattr(ai_edge_litert, "__version__", "?"),
        "tflite_macs": macs, "warmup": args.warmup, "runs": args.runs, "results": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"MobileNetV2-1.0 224x224 int8, {macs / 1e6:.1f} M MACs (.tflite); {args.warmup} warmup + "
          f"{args.runs} runs each; {summary['date_utc']} UTC; {summary['cpu']}, {summary['cores']} cores; "
          f"TensorFlow {summary['tensorflow']}, ai-edge-litert {summary['ai_edge_litert']}")
    print()
    print("| threads | LiteRT min ms | LiteRT p50 ms | Outpost min ms | Outpost p50 ms "
          "| Outpost p50 / LiteRT p50 | Outpost min / LiteRT min |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        lt, op = r["litert"], r["outpost"]
        print(f"| {r['threads']} | {lt['min_ms']:.3f} | {lt['p50_ms']:.3f} | {op['min_ms']:.3f} "
              f"| {op['p50_ms']:.3f} | {r['outpost_p50_over_litert_p50']:.2f} "
              f"| {r['outpost_min_over_litert_min']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
