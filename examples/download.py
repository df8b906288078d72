#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""segdl example: download a track into a Matroska file from Python.

Uses Debian's PyGObject bindings (python3-gi, python3-gst-1.0; run it with
the system Python, /usr/bin/python3). The pipeline is

    segdlsrc backend-url=URL video-id=ID ! matroskamux ! filesink location=OUT

and progress comes from the element messages segdlsrc posts: one
"segdl-segment" per segment as it completes, and "segdl-stats" at the end.
A callback receives them, so an application can drive its own progress bar.

    examples/download.py http://127.0.0.1:8080 demo demo.mka

Exit status: 0 when the whole track is written, 1 on an error, 2 on bad usage.
Run by the test suite (tests/test_examples.sh), so it never rots.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def print_progress(done, total, segment):
    """The default progress callback: one line per completed segment."""
    of = f"/{total}" if total >= 0 else ""
    print(f"segment {segment['index']} done: {segment['bytes']} bytes from "
          f"{segment['source']} ({done}{of} segments)", flush=True)


def download(backend_url, video_id, out, on_progress=print_progress):
    """Downloads the track into `out`; returns (ok, final stats dict or None)."""
    pipeline = Gst.parse_launch(
        "segdlsrc name=src ! matroskamux ! filesink name=sink")
    src = pipeline.get_by_name("src")
    src.set_property("backend-url", backend_url)
    src.set_property("video-id", video_id)
    pipeline.get_by_name("sink").set_property("location", out)

    loop = GLib.MainLoop()
    result = {"ok": False, "stats": None}

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s.has_name("segdl-segment"):
                seg = {k: s.get_value(k) for k in
                       ("index", "bytes", "seconds", "source", "retries")}
                on_progress(s.get_value("segments-done"),
                            s.get_value("segments-total"), seg)
            elif s.has_name("segdl-stats"):
                result["stats"] = {s.nth_field_name(i): s.get_value(s.nth_field_name(i))
                                   for i in range(s.n_fields())}
        elif msg.type == Gst.MessageType.WARNING:
            err, _ = msg.parse_warning()
            print(f"warning: {err.message}", file=sys.stderr, flush=True)
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print(f"error: {err.message}\n{debug}", file=sys.stderr, flush=True)
            loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            result["ok"] = True
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    return result["ok"], result["stats"]


def main(argv):
    Gst.init(None)
    if len(argv) != 4:
        print(f"usage: {argv[0]} BACKEND_URL VIDEO_ID OUT.mka", file=sys.stderr)
        return 2
    ok, stats = download(argv[1], argv[2], argv[3])
    if stats:
        print(f"done: {stats.get('segments-downloaded')} segments, "
              f"{stats.get('bytes-downloaded')} bytes, complete={stats.get('complete')}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
