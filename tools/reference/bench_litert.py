#!/usr/bin/env python3
"""Time BlazeFace short and full range (float: fp16 weights dequantised, run in f32) in
LiteRT's Interpreter with its default XNNPACK delegate, at num_threads = 1 and 2.

The input is the letterboxed astronaut (same preprocessing as reference.py), set once; only
`invoke()` is timed. 50 warm-up runs, then 1000 timed runs per model and thread count. Prints
one JSON object with p50 / min / p99 in milliseconds, e.g.
    {"litert_blazeface_short_f32_1t_p50_ms": ..., "litert_blazeface_short_f32_1t_min_ms": ...,
     "litert_blazeface_short_f32_1t_p99_ms": ..., "litert_blazeface_short_f32_2t_p50_ms": ...,
     "litert_blazeface_full_f32_1t_p50_ms": ..., ...}

Usage: python3 tools/reference/bench_litert.py [--warmup 50] [--runs 1000]
Run it on an otherwise idle machine; other load shows up directly in the numbers.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402  (paths and the preprocessing)


def bench(path, threads, x, warmup, runs):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], x)
    for _ in range(warmup):
        interp.invoke()
    times = np.empty(runs, dtype=np.float64)
    for i in range(runs):
        t0 = time.perf_counter_ns()
        interp.invoke()
        times[i] = (time.perf_counter_ns() - t0) / 1e6
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--runs", type=int, default=1000)
    args = ap.parse_args()

    img = reference.load_rgb(reference.DATA / "astronaut.png")
    out = {}
    for variant in ("short", "full"):
        cfg = reference.BLAZEFACE[variant]
        path = reference.SRC / cfg["file"]
        x, *_ = reference.letterbox(img, cfg["size"])
        for threads in (1, 2):
            t = bench(path, threads, x, args.warmup, args.runs)
            key = f"litert_blazeface_{variant}_f32_{threads}t"
            out[f"{key}_p50_ms"] = round(float(np.percentile(t, 50)), 4)
            out[f"{key}_min_ms"] = round(float(t.min()), 4)
            out[f"{key}_p99_ms"] = round(float(np.percentile(t, 99)), 4)
    out["runs"] = args.runs
    out["warmup"] = args.warmup
    out["cpus"] = os.cpu_count()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
