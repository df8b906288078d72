#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs GStreamer pipelines in ONE process and times them, for bench/run.sh.

  gstrun.py [--first-only] [--timeout S] PIPELINE...

Every PIPELINE (gst-launch syntax) must contain an element named "sink".
The clock starts just before the pipelines are set to PLAYING (all at once);
a pad probe on the sink's sink pad stamps the first buffer that reaches it
(with `decodebin ! fakesink name=sink`: the first decoded audio), and the bus
stamps EOS. With --first-only each pipeline is stopped at its first buffer.
Prints one JSON object: {"first": [s...], "done": [s...]} (done is null with
--first-only). Exits 1 with the error on stderr when a pipeline fails or the
timeout passes.
"""
import argparse
import json
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


class Run:
    def __init__(self, descriptions, first_only, loop):
        self.first_only = first_only
        self.loop = loop
        self.t0 = 0.0
        self.first = [None] * len(descriptions)
        self.done = [None] * len(descriptions)
        self.error = None
        self.pipelines = []
        for i, desc in enumerate(descriptions):
            pipeline = Gst.parse_launch(desc)
            sink = pipeline.get_by_name("sink")
            if sink is None:
                raise ValueError(f"no element named 'sink' in: {desc}")
            pad = sink.get_static_pad("sink")
            pad.add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, self.on_buffer, i)
            bus = pipeline.get_bus()
            bus.add_signal_watch()
            bus.connect("message", self.on_message, i)
            self.pipelines.append(pipeline)

    def on_buffer(self, pad, info, i):
        if self.first[i] is None:
            self.first[i] = time.monotonic() - self.t0
            if self.first_only:
                GLib.idle_add(self.check_end)
        return Gst.PadProbeReturn.OK

    def on_message(self, bus, msg, i):
        if msg.type == Gst.MessageType.EOS:
            self.done[i] = time.monotonic() - self.t0
            self.check_end()
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            self.error = f"pipeline {i}: {msg.src.get_name()}: {err.message} ({dbg})"
            self.loop.quit()

    def check_end(self):
        stamps = self.first if self.first_only else self.done
        if all(s is not None for s in stamps):
            self.loop.quit()
        return False

    def start(self):
        self.t0 = time.monotonic()
        for p in self.pipelines:
            if p.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
                msg = p.get_bus().timed_pop_filtered(0, Gst.MessageType.ERROR)
                why = msg.parse_error()[0].message if msg else "no error message"
                self.error = f"a pipeline cannot go to PLAYING: {why}"
                self.loop.quit()
                return

    def stop(self):
        for p in self.pipelines:
            p.set_state(Gst.State.NULL)
            p.get_bus().remove_signal_watch()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--first-only", action="store_true")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("pipelines", nargs="+")
    args = ap.parse_args()
    Gst.init(None)
    loop = GLib.MainLoop()
    try:
        run = Run(args.pipelines, args.first_only, loop)
    except (GLib.Error, ValueError) as e:
        print(f"gstrun: {e}", file=sys.stderr)
        return 1

    def on_timeout():
        run.error = f"timeout after {args.timeout} s"
        loop.quit()
        return False

    GLib.timeout_add(int(args.timeout * 1000), on_timeout)
    GLib.idle_add(lambda: run.start() and False)
    loop.run()
    run.stop()
    if run.error:
        print(f"gstrun: {run.error}", file=sys.stderr)
        return 1
    print(json.dumps({"first": run.first, "done": None if args.first_only else run.done}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
