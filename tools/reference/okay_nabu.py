"""Golden outputs for microWakeWord `okay_nabu` (pymicro-wakeword 2.5.0), run in LiteRT WITHOUT
XNNPACK (`OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`, the reference int8 kernels), over
feature sequences from `pymicro-features` for phrases spoken by Debian `espeak-ng`.
Writes tests/golden/okay-nabu.json. The contract the Rust side implements:

Audio
-----
`espeak-ng -v VOICE -s SPEED --stdout TEXT` -> 16-bit mono WAV at 22050 Hz. Resampled to
16000 Hz by linear interpolation in float64: output sample i sits at source position
p = i * 22050 / 16000 (exactly i * 441 / 320), i0 = floor(p), f = (i * 441 mod 320) / 320,
y = x[i0] + (x[min(i0 + 1, n - 1)] - x[i0]) * f, rounded half to even and clipped to int16;
n_out = floor((n - 1) * 320 / 441) + 1. Then PAD_BEFORE_S of silence before and PAD_AFTER_S
after (zeros). `pcm_sha256` is the sha256 of the final int16 little-endian samples.

Features
--------
pymicro-features' MicroFrontend (TFLite Micro audio frontend: 30 ms window, 10 ms step, 40 mel
channels 125-7500 Hz, noise reduction, PCAN, log scale shift 6) fed 160-sample chunks, as
pymicro_wakeword.MicroWakeWordFeatures does. Each feature frame is 40 uint16 values `k`
(the frontend's output; pymicro-features returns k * 0.0390625). `features` stores the k.

Model
-----
Every 3 frames (the input is [1, 3, 40] int8): q = round_half_even(k * 0.0390625 / in_scale
+ in_zp) in float64 (in_scale as float32 widened), cast to int8 — pymicro_wakeword's
`process_streaming_prob`. One invoke per 3 frames, state carried between invokes; the uint8
output byte of each invoke goes to `outputs`; `inputs_fnv1a64` is the 64-bit FNV-1a hash (hex)
of all int8 input bytes of the phrase, invokes in order. Probability = output / 256 (scale 1/256, zero point 0).

Detection (pymicro_wakeword): the mean of the last `sliding_window_size` probabilities
(once that many exist) must exceed `probability_cutoff` (from the model's JSON manifest).
"""

import hashlib
import io
import json
import subprocess
import wave

import numpy as np

PAD_BEFORE_S = 0.3
PAD_AFTER_S = 0.7
PHRASES = [
    # (text, voice, words per minute, should the model detect its wake word?)
    ("okay nabu", "en-us", 130, True),
    ("okay nabu", "en", 150, True),
    ("hello world", "en-us", 150, False),
    ("what time is it", "en", 150, False),
    ("okay google", "en-us", 140, False),
]


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_compact(path, obj):
    """One JSON object; each phrase on its own line, numbers without spaces."""
    head = {k: v for k, v in obj.items() if k != "phrases"}
    lines = [json.dumps(p, separators=(",", ":")) for p in obj["phrases"]]
    text = json.dumps(head, indent=1)[:-2] + ',\n "phrases": [\n' + ",\n".join(lines) + "\n ]\n}\n"
    json.loads(text)
    path.write_text(text)


def espeak(text, voice, speed):
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, "espeak-ng: not 16-bit mono"
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    assert rate == 22050, f"espeak-ng rate {rate}"
    return x


def resample_22050_to_16000(x):
    n = len(x)
    n_out = (n - 1) * 320 // 441 + 1
    i = np.arange(n_out, dtype=np.int64)
    i0 = i * 441 // 320
    f = (i * 441 % 320).astype(np.float64) / 320.0
    i1 = np.minimum(i0 + 1, n - 1)
    y = x[i0] + (x[i1] - x[i0]) * f
    return np.clip(np.rint(y), -32768, 32767).astype("<i2")


def features(pcm):
    from pymicro_features import MicroFrontend
    fe = MicroFrontend()
    out = []
    data = pcm.tobytes()
    at = 0
    while at + 320 <= len(data):
        r = fe.process_samples(data[at:at + 320])
        at += r.samples_read * 2
        if r.features:
            k = [int(round(v / 0.0390625)) for v in r.features]
            assert all(abs(kv * 0.0390625 - v) == 0 for kv, v in zip(k, r.features))
            out.append(k)
    return out


def run(model_path, manifest_path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    manifest = json.loads(open(manifest_path).read())
    micro = manifest["micro"]
    model_bytes = open(model_path, "rb").read()
    phrases = []
    for text, voice, speed, expect in PHRASES:
        pcm = resample_22050_to_16000(espeak(text, voice, speed))
        pcm = np.concatenate([np.zeros(int(PAD_BEFORE_S * 16000), "<i2"), pcm,
                              np.zeros(int(PAD_AFTER_S * 16000), "<i2")])
        feats = features(pcm)
        it = Interpreter(model_path=str(model_path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
        inp, outp = it.get_input_details()[0], it.get_output_details()[0]
        scale, zp = inp["quantization"]
        stride = inp["shape"][1]
        inputs, outputs = [], []
        for s in range(0, len(feats) - stride + 1, stride):
            f = np.array(feats[s:s + stride], dtype=np.float64) * 0.0390625
            q = np.round(f / float(np.float32(scale)) + zp).astype(np.int8).reshape(inp["shape"])
            it.set_tensor(inp["index"], q)
            it.invoke()
            o = it.get_tensor(outp["index"])
            assert o.dtype == np.uint8
            inputs.append(q.tobytes())
            outputs.append(int(o.reshape(-1)[0]))
        probs = [o / 256.0 for o in outputs]
        win = micro["sliding_window_size"]
        means = [float(np.mean(probs[i - win + 1:i + 1])) for i in range(win - 1, len(probs))]
        detected = any(m > micro["probability_cutoff"] for m in means)
        print(f"  okay-nabu {text!r:20s} {voice:6s} {speed}: {len(feats)} frames, "
              f"{len(outputs)} invokes, max mean {max(means):.3f} -> detected {detected}")
        if detected != expect:
            print(f"    WARNING: expected detected={expect}")
        phrases.append({
            "text": text, "voice": voice, "speed": speed,
            "pcm_samples": int(len(pcm)),
            "pcm_sha256": hashlib.sha256(pcm.tobytes()).hexdigest(),
            "inputs_fnv1a64": f"{fnv1a64(b''.join(inputs)):016x}",
            "outputs": outputs, "features": feats,
            "max_window_mean": round(max(means), 6), "detected": detected,
        })
    return {
        "model": "okay_nabu.tflite (pymicro-wakeword==2.5.0)",
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "runtime": "ai-edge-litert, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES",
        "espeak_ng": subprocess.run(["espeak-ng", "--version"], capture_output=True,
                                    text=True).stdout.strip(),
        "input_scale": float(np.float32(scale)), "input_zero_point": int(zp),
        "probability_cutoff": micro["probability_cutoff"],
        "sliding_window_size": micro["sliding_window_size"],
        "pad_before_s": PAD_BEFORE_S, "pad_after_s": PAD_AFTER_S,
        "phrases": phrases,
    }
