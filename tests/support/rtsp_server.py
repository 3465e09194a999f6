#!/usr/bin/python3
"""A test RTSP camera: GstRtspServer serving an H.264 test pattern.

Serves `videotestsrc ! x264enc ! rtph264pay` at rtsp://127.0.0.1:PORT/PATH until killed
(SIGTERM/SIGINT/SIGKILL). Prints `ready rtsp://127.0.0.1:PORT/PATH` on stdout once it listens.
Every client gets its own pipeline, starting with a key frame. The default pattern is SMPTE colour
bars, so a client can check the decoded picture against known colours.

Needs Debian python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,ugly}
(tools/ci/install-system.sh installs them). Run it with /usr/bin/python3, the Python that has gi.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--path", default="cam")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--pattern", default="smpte", help="videotestsrc pattern")
    args = ap.parse_args()

    Gst.init(None)
    missing = [e for e in ("videotestsrc", "x264enc", "rtph264pay") if Gst.ElementFactory.find(e) is None]
    if missing:
        print(
            f"error: GStreamer elements missing: {', '.join(missing)} "
            "(Debian gstreamer1.0-plugins-base/good/ugly; tools/ci/install-system.sh installs them)",
            file=sys.stderr,
            flush=True,
        )
        return 2
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern={args.pattern} "
        f"! video/x-raw,format=I420,width={args.width},height={args.height},"
        f"framerate={args.fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} "
        f"! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory(f"/{args.path}", factory)
    if server.attach(None) == 0:
        print(f"error: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"ready rtsp://127.0.0.1:{args.port}/{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
