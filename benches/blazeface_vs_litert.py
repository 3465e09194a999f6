#!/usr/bin/env python3
"""BlazeFace short range (and full range, int8): Outpost against LiteRT (XNNPACK, float), one
run.

Runs `outpost bench --json` on the zoo models and LiteRT's Interpreter on the original
.tflite (the same letterboxed astronaut as input for LiteRT; Outpost's bench feeds a fixed
input, which does not change the work of a dense network), alternating 1 and 2 threads where
the engine supports them, and prints one JSON object with every p50 and min and the ratios
outpost/litert (below 1 = Outpost faster): `*_vs_litert_{1,2}t` of the p50s,
`*_min_vs_litert_{1,2}t` of the mins (steadier where the machine is noisy in phases). When the ONNX conversion of the same .tflite exists
($OUTPOST_MODELS/src/face_detection_short_range.onnx, made once by
tools/reference/blazeface_to_onnx.py), onnxruntime is measured in the same run too (float, and
int8 through its own `quantize_static`; tools/reference/bench_ort.py) with the ratios
outpost/ort; otherwise that part is skipped with a note.

Usage (after `cargo build --release -p outpost` and `outpost fetch-models`):
    python3 benches/blazeface_vs_litert.py [--runs 1000] [--warmup 100]
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def outpost(model, runs, warmup, tier=None, threads=1):
    env = dict(os.environ)
    if tier:
        env["OUTPOST_KERNELS"] = tier
    out = subprocess.run(
        [str(ROOT / "target/release/outpost"), "bench", "--model", str(model), "--runs", str(runs),
         "--warmup", str(warmup), "--threads", str(threads), "--json"],
        check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=100)
    a = ap.parse_args()
    models = Path(os.environ.get("OUTPOST_MODELS", ROOT / ".models"))
    res = {}
    for name in ["blazeface-short-int8", "blazeface-short-f32", "blazeface-full-int8"]:
        r = outpost(models / f"{name}.safetensors", a.runs, a.warmup)
        res[f"outpost_{name}_p50_ms"] = r["p50_ms"]
        res[f"outpost_{name}_min_ms"] = r["min_ms"]
        res[f"outpost_{name}_tier"] = r["tier"]
        res[f"outpost_{name}_allocs_per_run"] = r["allocs_per_run"]
        r = outpost(models / f"{name}.safetensors", a.runs, a.warmup, threads=2)
        res[f"outpost_{name}_2t_p50_ms"] = r["p50_ms"]
        res[f"outpost_{name}_2t_min_ms"] = r["min_ms"]
    r = outpost(models / "blazeface-short-int8.safetensors", a.runs, a.warmup, "avx2")
    res["outpost_blazeface-short-int8_avx2_p50_ms"] = r["p50_ms"]
    res["outpost_blazeface-short-int8_avx2_min_ms"] = r["min_ms"]
    out = subprocess.run([sys.executable, str(ROOT / "tools/reference/bench_litert.py"),
                          "--warmup", str(a.warmup), "--runs", str(a.runs)],
                         check=True, capture_output=True, text=True).stdout
    lite = json.loads(out.strip().splitlines()[-1])
    res.update(lite)
    base = lite["litert_blazeface_short_f32_1t_p50_ms"]
    ours = ["outpost_blazeface-short-int8_p50_ms", "outpost_blazeface-short-f32_p50_ms",
            "outpost_blazeface-short-int8_avx2_p50_ms"]
    for k in ours:
        res[k.replace("_p50_ms", "_vs_litert_1t")] = round(res[k] / base, 3)
    base2 = lite["litert_blazeface_short_f32_2t_p50_ms"]
    for name in ["blazeface-short-int8", "blazeface-short-f32"]:
        res[f"outpost_{name}_vs_litert_2t"] = round(res[f"outpost_{name}_2t_p50_ms"] / base2, 3)
    # Full range (192 × 192) against LiteRT on its own .tflite.
    for t in (1, 2):
        suffix = "" if t == 1 else "_2t"
        mine = res[f"outpost_blazeface-full-int8{suffix}_p50_ms"]
        peer = lite[f"litert_blazeface_full_f32_{t}t_p50_ms"]
        res[f"outpost_blazeface-full-int8_vs_litert_{t}t"] = round(mine / peer, 3)
    # The same ratios on the fastest run of each (`*_min_vs_litert_*`): on a machine noisy in
    # phases a p50 can move by a fifth between two runs of one configuration; the mins move less.
    for name in ["blazeface-short-int8", "blazeface-short-f32", "blazeface-full-int8"]:
        model = name.split("-")[1]
        for t in (1, 2):
            suffix = "" if t == 1 else "_2t"
            peer = lite[f"litert_blazeface_{model}_f32_{t}t_min_ms"]
            res[f"outpost_{name}_min_vs_litert_{t}t"] = round(
                res[f"outpost_{name}{suffix}_min_ms"] / peer, 3)
    res["outpost_blazeface-short-int8_avx2_min_vs_litert_1t"] = round(
        res["outpost_blazeface-short-int8_avx2_min_ms"]
        / lite["litert_blazeface_short_f32_1t_min_ms"], 3)
    onnx = models / "src/face_detection_short_range.onnx"
    if onnx.exists():
        out = subprocess.run([sys.executable, str(ROOT / "tools/reference/bench_ort.py"),
                              "--warmup", str(a.warmup), "--runs", str(a.runs), "--onnx", str(onnx)],
                             check=True, capture_output=True, text=True).stdout
        ort = json.loads(out.strip().splitlines()[-1])
        res.update(ort)
        for kind in ("f32", "int8"):
            peer = ort[f"ort_blazeface_short_{kind}_1t_p50_ms"]
            for k in ours:
                res[k.replace("_p50_ms", f"_vs_ort_{kind}_1t")] = round(res[k] / peer, 3)
    else:
        res["ort"] = f"skipped: {onnx} missing (tools/reference/blazeface_to_onnx.py makes it)"
        print(f"note: onnxruntime skipped, {onnx} missing", file=sys.stderr)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
