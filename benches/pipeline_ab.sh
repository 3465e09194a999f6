#!/usr/bin/env bash
# A/B runs of `outpost bench --pipeline`, alternating, on BlazeFace int8 and the sample images:
#
#   benches/pipeline_ab.sh outbox [FPS] [FRAMES] [ROUNDS]
#       the same stream without and with an [outbox] (blurred frames with a face kept as JPEG,
#       results kept, uplink retrying against a dead endpoint: 127.0.0.1:9 refuses); more
#       [outbox] keys from $OUTBOX_EXTRA (e.g. OUTBOX_EXTRA='sched_idle = false')
#   benches/pipeline_ab.sh spin [FPS] [FRAMES] [ROUNDS]
#       [pipeline] spin_us = 0 (park at once) against the default spin budget (200 µs)
#   benches/pipeline_ab.sh busy [FPS] [FRAMES] [ROUNDS]
#       the default (sleeping threads, 200 µs spin) against [pipeline] busy = true with the
#       inference thread on CPU $INFER_CPU (default: the last) and the capture thread and the
#       publisher on CPU $IO_CPU (default 0)
#
# Needs a release build (`cargo build --release -p outpost`) and the models
# (`cargo run --release -p outpost -- fetch-models`). Prints one line per run and leaves the JSON
# in $OUT (default: a new temporary directory). BENCHMARKS.md, "Outbox" and "Pipeline overhead".
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?usage: benches/pipeline_ab.sh outbox|spin|busy [FPS] [FRAMES] [ROUNDS]}
fps=${2:-30}
frames=${3:-600}
rounds=${4:-3}
bin=${OUTPOST_BIN:-target/release/outpost}
models=$(realpath "${OUTPOST_MODELS:-.models}")
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
[ -x "$bin" ] || { echo "error: $bin missing: cargo build --release -p outpost" >&2; exit 2; }
[ -f "$models/blazeface-short-int8.safetensors" ] || {
  echo "error: $models/blazeface-short-int8.safetensors missing: cargo run --release -p outpost -- fetch-models" >&2; exit 2; }

stream() { # images...
  local list="" i
  for i in "$@"; do list+="\"$models/data/$i\", "; done
  printf '[[stream]]\nname = "cam"\nimages = [%s]\nmodel = "%s"\nfps = %s\npolicy = "%s"\n\n' \
    "${list%, }" "$models/blazeface-short-int8.safetensors" "$fps" "$policy"
}
case $what in
  outbox)
    policy="block:5000"
    a=plain; b=outbox
    stream astronaut.png chelsea.png > "$out/plain.toml"
    { stream astronaut.png chelsea.png
      cat <<'T'
[redaction]
method = { kind = "blur", radius = 8 }

[outbox]
path = "box/outbox.redb"
record = { results = true, frames = "detections", samples = false }
azure = { emulator = "http://127.0.0.1:9", container = "frames" }
uplink = { poll_ms = 20, backoff_initial_ms = 10, backoff_max_ms = 100, request_timeout_ms = 500 }
T
      printf '%s\n' "${OUTBOX_EXTRA:-}"
    } > "$out/outbox.toml" ;;
  spin)
    policy="latest"
    a=spin0; b=spin200
    for us in 0 200; do
      { printf '[pipeline]\nspin_us = %s\n\n' "$us"; stream chelsea.png coffee.png rocket.jpg; } > "$out/spin$us.toml"
    done ;;
  busy)
    policy="latest"
    a=sleep; b=busy
    io=${IO_CPU:-0}
    infer=${INFER_CPU:-$(( $(nproc) - 1 ))}
    stream chelsea.png coffee.png rocket.jpg > "$out/sleep.toml"
    { printf '[pipeline]\nbusy = true\ninfer_cpus = [%s]\ncapture_cpus = [%s]\npublish_cpu = %s\n\n' \
        "$infer" "$io" "$io"
      stream chelsea.png coffee.png rocket.jpg; } > "$out/busy.toml" ;;
  *) echo "error: unknown comparison '$what': use outbox, spin or busy" >&2; exit 2 ;;
esac

echo "# $what: $a vs $b, $fps fps, $frames frames, $rounds rounds; JSON in $out"
for r in $(seq 1 "$rounds"); do
  for c in $a $b; do
    rm -rf "$out/box"
    load=$(cut -d' ' -f1 /proc/loadavg)
    RUST_LOG=${RUST_LOG:-error} "$bin" bench --pipeline "$out/$c.toml" --frames "$frames" \
      --warmup 20 --runs 100 --json > "$out/$c-$r.json"
    python3 - "$out/$c-$r.json" "$c" "$r" "$load" <<'P'
import json, sys
v = json.load(open(sys.argv[1])); st = v["stages"]; ob = v.get("outbox") or {}
line = (f"{sys.argv[2]:8} run {sys.argv[3]} load {sys.argv[4]:5}  fps {v['fps']:7.2f}  "
        f"latency ms p50 {v['p50_ms']:.3f} p99 {v['p99_ms']:.3f} max {v['max_ms']:.3f}  "
        f"infer µs {st['infer']['p50_us']:.0f}/{st['infer']['p99_us']:.0f}  "
        f"publish µs {st['publish']['p50_us']:.1f}/{st['publish']['p99_us']:.1f}  "
        f"overhead µs {v['overhead_p50_us']}/{v['overhead_p99_us']}  "
        f"hand-off µs {v['handoff_p50_us']}/{v['handoff_p99_us']}  drops {v['dropped_total']}")
if ob:
    line += (f"  | outbox dropped {ob['dropped']} committed {ob['committed']} "
             f"upload failures {ob['upload_failures']}")
print(line)
P
  done
done
