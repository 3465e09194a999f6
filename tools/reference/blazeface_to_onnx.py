#!/usr/bin/env python3
"""Convert BlazeFace short range (the original .tflite from the model zoo's sources) to ONNX
with tf2onnx, for the onnxruntime side of benches/blazeface_vs_litert.py.

No ONNX form of BlazeFace exists in the package registries; tf2onnx reads the .tflite
directly (it needs TensorFlow installed, so it is kept out of requirements.txt):

    python3 -m venv /tmp/venv-tf2onnx
    /tmp/venv-tf2onnx/bin/pip install tf2onnx==1.17.0 tensorflow-cpu==2.21.0 \
        -r tools/reference/requirements.txt
    /tmp/venv-tf2onnx/bin/python tools/reference/blazeface_to_onnx.py

Writes $OUTPOST_MODELS/src/face_detection_short_range.onnx (opset 17; NHWC input as in the
.tflite) and checks that onnxruntime's outputs on the letterboxed astronaut match LiteRT's
reference (when ai_edge_litert is importable) or prints them for inspection.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402  (paths and the preprocessing)

OUT_NAME = "face_detection_short_range.onnx"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=reference.SRC / OUT_NAME)
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args()
    import tf2onnx

    src = reference.SRC / reference.BLAZEFACE["short"]["file"]
    if not src.exists():
        sys.exit(f"error: {src} missing: run `outpost fetch-models` first")
    tf2onnx.convert.from_tflite(str(src), opset=args.opset, output_path=str(args.output))
    print(f"wrote {args.output}")

    import onnxruntime as ort

    sess = ort.InferenceSession(str(args.output), providers=["CPUExecutionProvider"])
    x, *_ = reference.letterbox(reference.load_rgb(reference.DATA / "astronaut.png"), 128)
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})))
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        for k, v in got.items():
            print(f"{k}: shape {v.shape}, max |x| {np.abs(v).max():.4f}")
        return
    interp = Interpreter(model_path=str(src))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    for d in interp.get_output_details():
        want = interp.get_tensor(d["index"])
        name = next(k for k in got if k in d["name"] or d["name"] in k)
        diff = float(np.abs(got[name] - want).max())
        print(f"{name}: max |onnxruntime − LiteRT| = {diff:.2e}")
        if diff > 1e-3:
            sys.exit(f"error: {name} differs from LiteRT by {diff}")


if __name__ == "__main__":
    main()
