#!/usr/bin/env python3
"""Time BlazeFace short range in onnxruntime (CPU execution provider): the ONNX conversion of
the original .tflite (tools/reference/blazeface_to_onnx.py) in float, and the same quantized
by onnxruntime's own post-training quantization (`quantize_static`, QDQ, activations QUInt8,
weights QInt8 per channel, MinMax calibration on the letterboxed BlazeFace sample images),
at intra_op_num_threads = 1 and 2.

The input is the letterboxed astronaut (as bench_litert.py), set once; only `run()` is timed.
Prints one JSON object with p50 / min / p99 in milliseconds, e.g.
    {"ort_blazeface_short_f32_1t_p50_ms": ..., "ort_blazeface_short_int8_1t_p50_ms": ...}

Usage: python3 tools/reference/bench_ort.py [--warmup 50] [--runs 1000] [--onnx PATH]
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402  (paths and the preprocessing)

DEFAULT_ONNX = reference.SRC / "face_detection_short_range.onnx"


def letterboxed(name):
    x, *_ = reference.letterbox(reference.load_rgb(reference.DATA / name), 128)
    return x


def quantize(src, dst):
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    class Images(CalibrationDataReader):
        def __init__(self, name):
            self.name = name
            self.rewind()

        def get_next(self):
            return next(self.it, None)

        def rewind(self):
            self.it = iter([{self.name: letterboxed(n)} for n in reference.BLAZEFACE_IMAGES])

    import onnxruntime as ort

    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    quantize_static(str(src), str(dst), Images(name), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True, calibrate_method=CalibrationMethod.MinMax)


def bench(path, threads, x, warmup, runs):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    times = np.empty(runs, dtype=np.float64)
    for i in range(runs):
        t0 = time.perf_counter_ns()
        sess.run(None, feed)
        times[i] = (time.perf_counter_ns() - t0) / 1e6
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--onnx", type=Path, default=DEFAULT_ONNX)
    args = ap.parse_args()
    if not args.onnx.exists():
        sys.exit(f"error: {args.onnx} missing: make it with tools/reference/blazeface_to_onnx.py")
    import onnxruntime as ort

    x = letterboxed("astronaut.png")
    out = {"ort_version": ort.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        q = Path(tmp) / "blazeface_short_int8.onnx"
        quantize(args.onnx, q)
        for kind, path in (("f32", args.onnx), ("int8", q)):
            for threads in (1, 2):
                t = bench(path, threads, x, args.warmup, args.runs)
                key = f"ort_blazeface_short_{kind}_{threads}t"
                out[f"{key}_p50_ms"] = round(float(np.percentile(t, 50)), 4)
                out[f"{key}_min_ms"] = round(float(t.min()), 4)
                out[f"{key}_p99_ms"] = round(float(np.percentile(t, 99)), 4)
    out["cpus"] = os.cpu_count()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
