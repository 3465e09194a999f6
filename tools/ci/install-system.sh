#!/usr/bin/env bash
# Debian packages the tests need (real services and tools the tests start themselves on
# 127.0.0.1). Installed with apt-get when running as root; otherwise the missing ones are named.
# One package per line in PACKAGES, with what needs it.
set -euo pipefail

PACKAGES=(
  mosquitto   # MQTT broker: runtime/tests/mqtt_source.rs, mqtt_noalloc.rs (DESIGN §9)
  espeak-ng   # spoken phrases: tests/tests/audio_frontend.rs, okay_nabu.rs (tests/src/speech.rs)
  alsa-utils  # speech WAVs in /usr/share/sounds/alsa: runtime/tests/sample_sources.rs
  # RTSP test camera (tests/support/rtsp_server.py, GstRtspServer serving videotestsrc ! x264enc
  # ! rtph264pay) for tests/tests/rtsp_camera.rs, run with /usr/bin/python3:
  python3-gi
  gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base   # videotestsrc
  gstreamer1.0-plugins-good   # rtph264pay
  gstreamer1.0-plugins-ugly   # x264enc
  ffmpeg      # ffmpeg/ffprobe: the video source (runtime/src/sources/ffmpeg.rs) in
              # tests/tests/ffmpeg_source.rs and tools/tests/run_video.rs
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "error: missing Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
  exit 2
fi
