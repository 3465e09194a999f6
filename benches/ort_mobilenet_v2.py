#!/usr/bin/env python3
"""MobileNetV2-1.0 224x224 end to end: ONNX Runtime (float and int8 QDQ) vs Outpost, in one run.

What it does, in order:
  1. Builds the float MobileNetV2-1.0 (224x224, 1000 classes) with the onnx helper API, random
     weights from a fixed numpy seed, the same layer list as models/src/zoo/mobilenet_v2.rs
     (TF "SAME" padding, ReLU6 as Clip(0, 6), no batch norm: Outpost's synthetic model has none).
  2. Counts its multiply-accumulates (should be ~300 M) and checks them against the graph.
  3. Quantizes it with onnxruntime.quantization.quantize_static, QDQ format, weights QInt8
     per-channel, activations QUInt8 (default; --activations int8 for QInt8), MinMax calibration
     on a few random inputs.
  4. Times ONNX Runtime (CPU EP, ORT_ENABLE_ALL, sequential execution, inter_op 1) at
     intra_op 1 and 2 threads, float and int8.
  5. Builds Outpost (`cargo build --release -p outpost`, or $OUTPOST_BIN), writes the synthetic
     int8 model (`outpost synth mobilenet_v2 --int8`, f32 requantization as Outpost's quantizer
     writes; and `--requantization tflite`) and runs `outpost bench --json`: the default model on
     the default (best) kernel tier and OUTPOST_KERNELS=avx2, the tflite one on the best tier, at
     the same thread counts as ORT (`outpost bench --threads N`).
  6. Prints one table; --json prints a machine-readable summary instead.

Every runtime gets the same --warmup and --runs; min/p50/p99 use the same percentile rule as
`outpost bench` (sorted[round((n-1)*p)]). ORT times are wall time of `session.run` with a
pre-built feed (numpy in, numpy out); Outpost's are wall time of `Session::run` (input refill
excluded). ORT's input is float NCHW (the first op quantizes it); Outpost's is int8 NHWC.

Install:  pip install -r benches/requirements-ort.txt
Run:      python3 benches/ort_mobilenet_v2.py [--runs 300] [--warmup 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

REPO = Path(__file__).resolve().parent.parent
SEED = 20261122

# (t, c, n, s): expansion, output channels, repeats, first stride (models/src/zoo/mobilenet_v2.rs)
BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def make_divisible(v: float, divisor: int = 8) -> int:
    new = max(int((v + divisor / 2) // divisor), 1) * divisor
    return new + divisor if new < 0.9 * v else new


def same_pads(size: int, k: int, stride: int) -> tuple[int, int, int]:
    """TF/TFLite SAME padding (extra pixel at the end), as Outpost's Padding::Same. -> (out, begin, end)"""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2, total - total // 2


class Builder:
    def __init__(self, width: float, size: int, classes: int, seed: int):
        self.rng = np.random.default_rng(seed)
        self.width, self.size, self.classes = width, size, classes
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.macs = 0
        self.layers: list[tuple[str, int]] = []

    def _w(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        w = (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        self.inits.append(numpy_helper.from_array(w, name))
        return name

    def _b(self, name: str, n: int) -> str:
        self.inits.append(numpy_helper.from_array((self.rng.standard_normal(n) * 0.01).astype(np.float32), name))
        return name

    def relu6(self, x: str, name: str) -> str:
        if not any(i.name == "relu6_min" for i in self.inits):
            self.inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "relu6_min"))
            self.inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "relu6_max"))
        self.nodes.append(helper.make_node("Clip", [x, "relu6_min", "relu6_max"], [name], name=name))
        return name

    def conv(self, name: str, x: str, hw: int, cin: int, cout: int, k: int, stride: int, groups: int = 1,
             relu6: bool = True) -> tuple[str, int]:
        out, b0, b1 = same_pads(hw, k, stride)
        w = self._w(f"{name}.weight", (cout, cin // groups, k, k), k * k * cin // groups)
        b = self._b(f"{name}.bias", cout)
        y = f"{name}.conv" if relu6 else name
        self.nodes.append(helper.make_node(
            "Conv", [x, w, b], [y], name=f"{name}.conv", kernel_shape=[k, k], strides=[stride, stride],
            pads=[b0, b0, b1, b1], group=groups))
        macs = out * out * cout * k * k * (cin // groups)
        self.macs += macs
        self.layers.append((name, macs))
        return (self.relu6(y, name) if relu6 else y), out

    def build(self) -> onnx.ModelProto:
        s = self.size
        x, hw = "image", s
        c = make_divisible(32 * self.width)
        x, hw = self.conv("conv0", x, hw, 3, c, 3, 2)
        block = 0
        for t, ch, n, st in BLOCKS:
            out_c = make_divisible(ch * self.width)
            for i in range(n):
                stride = st if i == 0 else 1
                name = f"block{block}"
                hidden = c * t
                h, h_hw = x, hw
                if t != 1:
                    h, h_hw = self.conv(f"{name}.expand", h, h_hw, c, hidden, 1, 1)
                h, h_hw = self.conv(f"{name}.dw", h, h_hw, hidden, hidden, 3, stride, groups=hidden)
                h, h_hw = self.conv(f"{name}.project", h, h_hw, hidden, out_c, 1, 1, relu6=False)
                if stride == 1 and c == out_c:
                    add = f"{name}.add"
                    self.nodes.append(helper.make_node("Add", [x, h], [add], name=add))
                    h = add
                x, hw, c = h, h_hw, out_c
                block += 1
        last = make_divisible(1280 * self.width) if self.width > 1.0 else 1280
        x, hw = self.conv("conv_last", x, hw, c, last, 1, 1)
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool4d"], name="pool"))
        self.nodes.append(helper.make_node("Flatten", ["pool4d"], ["pool"], name="flatten", axis=1))
        fw = self._w("fc.weight", (self.classes, last), last)
        fb = self._b("fc.bias", self.classes)
        self.nodes.append(helper.make_node("Gemm", ["pool", fw, fb], ["logits"], name="fc", transB=1))
        self.macs += last * self.classes
        self.layers.append(("fc", last * self.classes))
        graph = helper.make_graph(
            self.nodes, f"mobilenet_v2_{self.width}_{s}",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, s, s])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, self.classes])],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="outpost-bench")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def graph_macs(model: onnx.ModelProto) -> int:
    """MACs recounted from the ONNX graph itself (shape inference), independent of Builder's tally."""
    m = onnx.shape_inference.infer_shapes(model)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input)}
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    total = 0
    for n in m.graph.node:
        if n.op_type == "Conv":
            w = inits[n.input[1]]  # [cout, cin/g, k, k]
            o = shapes[n.output[0]]  # [1, cout, h, w]
            total += o[1] * o[2] * o[3] * w[1] * w[2] * w[3]
        elif n.op_type == "Gemm":
            w = inits[n.input[1]]
            total += w[0] * w[1]
    return total


class RandomReader(CalibrationDataReader):
    def __init__(self, n: int, size: int, seed: int):
        rng = np.random.default_rng(seed)
        # Same range as Outpost's input spec: (pixel - 127.5) / 127.5 in [-1, 1].
        self.data = [{"image": rng.uniform(-1.0, 1.0, (1, 3, size, size)).astype(np.float32)} for _ in range(n)]
        self.it = iter(self.data)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):
        self.it = iter(self.data)


def percentile(sorted_ms: list[float], p: float) -> float:
    i = int(round((len(sorted_ms) - 1) * p))
    return sorted_ms[min(i, len(sorted_ms) - 1)]


def summarize(times_ms: list[float]) -> dict:
    s = sorted(times_ms)
    return {"min_ms": s[0], "p50_ms": percentile(s, 0.5), "p90_ms": percentile(s, 0.9),
            "p99_ms": percentile(s, 0.99), "max_ms": s[-1], "mean_ms": sum(s) / len(s)}


def bench_ort(path: Path, threads: int, warmup: int, runs: int, size: int) -> dict:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {"image": np.random.default_rng(1).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)}
    run = sess.run
    for _ in range(warmup):
        run(None, feed)
    times = []
    load0 = os.getloadavg()[0]
    for _ in range(runs):
        t = time.perf_counter()
        run(None, feed)
        times.append((time.perf_counter() - t) * 1e3)
    r = summarize(times)
    r.update(threads=threads, runs=runs, loadavg_1m=[load0, os.getloadavg()[0]])
    return r


def outpost_bin(quiet: bool) -> Path:
    env_bin = os.environ.get("OUTPOST_BIN")
    if env_bin:
        return Path(env_bin)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    cmd = ["cargo", "build", "--release", "-p", "outpost"]
    print(f"$ {' '.join(cmd)}  (CARGO_TARGET_DIR={target})", file=sys.stderr)
    subprocess.run(cmd, cwd=REPO, check=True, stdout=sys.stderr if not quiet else subprocess.DEVNULL)
    return target / "release" / "outpost"


def bench_outpost(exe: Path, model: Path, warmup: int, runs: int, kernels: str | None,
                  threads: int) -> dict:
    env = dict(os.environ)
    env.pop("OUTPOST_KERNELS", None)
    if kernels:
        env["OUTPOST_KERNELS"] = kernels
    load0 = os.getloadavg()[0]
    out = subprocess.run([str(exe), "bench", "--model", str(model), "--threads", str(threads), "--runs", str(runs),
                          "--warmup", str(warmup), "--json"], env=env, check=True, capture_output=True, text=True)
    r = json.loads(out.stdout)
    r["loadavg_1m"] = [load0, os.getloadavg()[0]]
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--json", action="store_true", help="print one JSON summary instead of the table")
    ap.add_argument("--activations", choices=["uint8", "int8"], default="uint8",
                    help="activation type for quantize_static (weights are always QInt8 per-channel)")
    ap.add_argument("--calib", type=int, default=8, help="random calibration inputs")
    ap.add_argument("--threads", default="1,2", help="ORT intra-op thread counts to measure")
    ap.add_argument("--keep", type=Path, help="write the .onnx and Outpost models here instead of a temp dir")
    args = ap.parse_args()
    say = (lambda *a: print(*a, file=sys.stderr))
    threads = [int(t) for t in args.threads.split(",")]
    size = 224

    work = args.keep or Path(tempfile.mkdtemp(prefix="ort-mnv2-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        # 1-2. Float model and its MAC count.
        b = Builder(1.0, size, 1000, SEED)
        fmodel = b.build()
        macs = graph_macs(fmodel)
        if macs != b.macs:
            raise SystemExit(f"MAC count mismatch: builder {b.macs}, graph {macs}")
        params = sum(int(np.prod(i.dims)) for i in fmodel.graph.initializer if len(i.dims) >= 2)
        say(f"MobileNetV2-1.0 {size}: {macs / 1e6:.1f} M MACs, {params / 1e6:.2f} M weights, "
            f"{len(fmodel.graph.node)} ONNX nodes")
        if not 295e6 <= macs <= 315e6:
            raise SystemExit(f"MACs {macs} outside 295-315 M: the architecture is off")
        fpath, qpath = work / "mobilenet_v2_f32.onnx", work / "mobilenet_v2_int8_qdq.onnx"
        onnx.save(fmodel, fpath)

        # 3. Static QDQ quantization.
        act = QuantType.QUInt8 if args.activations == "uint8" else QuantType.QInt8
        t0 = time.perf_counter()
        quantize_static(str(fpath), str(qpath), RandomReader(args.calib, size, SEED + 1),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=act,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
        qmodel = onnx.load(qpath)
        ops: dict[str, int] = {}
        for n in qmodel.graph.node:
            ops[n.op_type] = ops.get(n.op_type, 0) + 1
        say(f"quantize_static (QDQ, act {act.name}, weights QInt8 per-channel, {args.calib} random inputs): "
            f"{time.perf_counter() - t0:.1f} s; ops {ops}")

        # 4. ONNX Runtime.
        results = []
        for kind, path in (("int8", qpath), ("float", fpath)):
            for th in threads:
                say(f"ORT {kind} {th} thread(s): {args.warmup} warmup + {args.runs} runs")
                r = bench_ort(path, th, args.warmup, args.runs, size)
                r.update(runtime=f"ONNX Runtime {ort.__version__} {kind}"
                         + (f" (act {act.name})" if kind == "int8" else ""), key=f"ort_{kind}_{th}t", tier="mlas")
                results.append(r)

        # 5. Outpost, same run.
        exe = outpost_bin(args.json)
        models = {}
        for requant in ("f32", "tflite"):
            models[requant] = work / f"mnv2_int8_{requant}.safetensors"
            subprocess.run([str(exe), "synth", "mobilenet_v2", "--int8", "--requantization", requant,
                            "-o", str(models[requant])], check=True, stdout=subprocess.DEVNULL)
        # The default model (f32 requantization, as Outpost's quantizer writes) on the best tier
        # and on AVX2; TFLite's fixed point requantization on the best tier.
        for requant, kernels in (("f32", None), ("f32", "avx2"), ("tflite", None)):
            for th in threads:
                say(f"outpost bench ({'OUTPOST_KERNELS=' + kernels if kernels else 'default tier'}, "
                    f"{requant} requantization, {th} thread(s)): {args.warmup} warmup + {args.runs} runs")
                r = bench_outpost(exe, models[requant], args.warmup, args.runs, kernels, th)
                suffix = "" if requant == "f32" else f", {requant} requantization"
                r.update(runtime=f"Outpost int8 ({r['tier']}{suffix})",
                         key=f"outpost_{r['tier']}{'' if requant == 'f32' else '_' + requant}_{th}t",
                         requantization=requant)
                results.append(r)
                if abs(r["macs"] - macs) > 0.02 * macs:
                    say(f"warning: Outpost counts {r['macs']} MACs, the ONNX model {macs}")

        ref = next(r for r in results if r["key"] == "ort_int8_1t")["p50_ms"]
        ref_f = next((r for r in results if r["key"] == "ort_float_1t"), {}).get("p50_ms")
        for r in results:
            r["p50_over_ort_int8_1t_p50"] = r["p50_ms"] / ref
            r["min_over_ort_int8_1t_p50"] = r["min_ms"] / ref
            r["p99_over_ort_int8_1t_p50"] = r["p99_ms"] / ref
            if ref_f:
                r["p50_over_ort_float_1t_p50"] = r["p50_ms"] / ref_f
            same = next((o for o in results if o["key"] == f"ort_int8_{r['threads']}t"), None)
            if same:
                r["p50_over_ort_int8_same_threads_p50"] = r["p50_ms"] / same["p50_ms"]

        summary = {
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
            "macs": macs, "onnx_weights": params, "activations": act.name, "weights": "QInt8 per-channel",
            "format": "QDQ", "calibration": f"MinMax, {args.calib} random inputs",
            "warmup": args.warmup, "runs": args.runs, "results": results,
        }
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print_table(summary)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def print_table(s: dict) -> None:
    print(f"MobileNetV2-1.0 224x224, 1000 classes, {s['macs'] / 1e6:.1f} M MACs; {s['warmup']} warmup + "
          f"{s['runs']} runs each; {s['date_utc']} UTC; {s['cpu']}, {s['cores']} cores")
    print(f"ORT int8: {s['format']}, activations {s['activations']}, weights {s['weights']}, "
          f"calibration {s['calibration']}")
    print()
    print("| runtime | threads | min ms | p50 ms | p99 ms | min / ORT int8 1T p50 | p50 / ORT int8 1T p50 "
          "| p99 / ORT int8 1T p50 | p50 / ORT float 1T p50 | p50 / ORT int8 p50, same threads "
          "| load avg (1 min) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in s["results"]:
        la = r.get("loadavg_1m", [0, 0])
        print(f"| {r['runtime']} | {r['threads']} | {r['min_ms']:.3f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} "
              f"| {r['min_over_ort_int8_1t_p50']:.2f} | {r['p50_over_ort_int8_1t_p50']:.2f} "
              f"| {r['p99_over_ort_int8_1t_p50']:.2f} | {r.get('p50_over_ort_float_1t_p50', float('nan')):.2f} "
              f"| {r.get('p50_over_ort_int8_same_threads_p50', float('nan')):.2f} "
              f"| {la[0]:.1f} → {la[1]:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
