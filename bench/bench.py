#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The benchmark behind bench/run.sh (see bench/run.sh --help)."""
import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import contenders as c
import media
import report

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class Server:
    """segdl-server --root DIR on a free port, stopped by stop()."""

    def __init__(self, build, root, args):
        self.cmd = [os.path.join(build, "tools", "segdl-server"), "--root", root, "--port", "0"]
        self.cmd += args
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.url = None
        lines = queue.Queue()
        self.reader = threading.Thread(target=self.read_output, args=(lines,), daemon=True)
        self.reader.start()
        output = []
        try:
            while self.url is None:
                line = lines.get(timeout=300)
                if line is None:
                    break
                output.append(line)
                if "listening on " in line:
                    self.url = line.strip().rsplit("listening on ", 1)[1]
        except queue.Empty:
            pass
        if self.url is None:
            self.stop()
            raise c.BenchError("segdl-server did not start: " + " ".join(self.cmd) + "\n" +
                               "".join(output))

    def read_output(self, lines):
        for line in self.proc.stdout:
            lines.put(line)
        lines.put(None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.reader.join(timeout=30)


def parse_args():
    ap = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build", default=os.environ.get("BUILD_DIR", "build"))
    ap.add_argument("--latency-ms", type=int, default=40)
    ap.add_argument("--bandwidth-kbps", type=int, default=4000)
    ap.add_argument("--reveal-every", type=float, default=2.0)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--long-runs", type=int)
    ap.add_argument("--media", help="where generated tracks are kept (default BUILD/bench-media)")
    ap.add_argument("--no-doc", action="store_true", help="print only, leave docs/ alone")
    ap.add_argument("--report-only", action="store_true",
                    help="no measuring: the report of the last run (MEDIA/last-run.json) again")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    a.media = os.path.abspath(a.media or os.path.join(a.build, "bench-media"))
    if a.quick:
        plan = dict(lengths=[3], runs=3, whole_runs=1, many_runs=1, long_runs=1,
                    concurrent=[3], many_forms=["m4a"], prog_forms=["m4a"], prog_runs=1,
                    rss_long=None)
    else:
        # Sized to finish in under 15 minutes on a quiet 2-core machine: the
        # long tracks take most of it (their transfers are throttled), so they
        # run once, and the 3-minute cases carry the repeated runs.
        plan = dict(lengths=[3, 60], runs=5, whole_runs=2, many_runs=1, long_runs=1,
                    concurrent=[3, 6], many_forms=["m4a", "ts"], prog_forms=["m4a", "ts"],
                    prog_runs=2, rss_long=180)
    if a.runs:
        for k in ("runs", "whole_runs", "many_runs", "prog_runs"):
            plan[k] = a.runs
    if a.long_runs:
        plan["long_runs"] = a.long_runs
    a.plan = plan
    return a


class Bench:
    def __init__(self, a, env, server, results):
        self.a = a
        self.env = env
        self.base = server.url
        self.results = results  # (group, minutes, form, contender) -> [measure]
        self.checked = set()
        self.playlists = {}

    def record(self, key, fn):
        try:
            m = fn()
        except c.BenchError as e:
            print(f"  FAILED {' / '.join(map(str, key))}: {e}", file=sys.stderr)
            self.results.setdefault(key, [])
            return
        self.results.setdefault(key, []).append(m)
        extra = f", cpu {m['cpu']:.2f} s, rss {m['rss']:.0f} MiB" if "cpu" in m else ""
        print(f"  {key[0]:<11} {key[1]:>3} min {key[2]:<3} {key[3]:<42} {m['value']:8.3f} s{extra}",
              flush=True)

    def playlist(self, vid, minutes):
        if vid not in self.playlists:
            n = media.segment_count(minutes)
            durations = [15.0] + [30.0] * (n - 2) + [minutes * 60 - 15.0 - 30.0 * (n - 2)]
            path = os.path.join(self.env.scratch, vid + ".m3u8")
            self.playlists[vid] = c.write_playlist(path, self.base, vid, durations)
        return self.playlists[vid]

    def first_audio_round(self, form):
        base, vid = self.base, media.track_id(form, 3)
        seg0 = c.seg_url(base, vid, 0)
        key = ("first", 3, form)
        self.record(key + ("curl: first byte of segment 0",), lambda: c.curl_ttfb(self.env, seg0))
        self.record(key + ("souphttpsrc ! decodebin: segment 0",), lambda: c.first_audio(
            self.env, f"souphttpsrc location={seg0} ! {c.decoded()}"))
        if form == "ts":
            uri = "file://" + self.playlist(vid, 3)
            self.record(key + ("hlsdemux2 (uridecodebin3)",), lambda: c.first_audio(
                self.env, f"uridecodebin3 uri={uri} ! fakesink name=sink"))
        self.record(key + ("segdlsrc ! decodebin",), lambda: c.first_audio(
            self.env, f"{c.segdlsrc(base, vid)} ! {c.decoded()}"))

    def check_once(self, key):
        first = key not in self.checked
        self.checked.add(key)
        return first

    def whole_round(self, form, minutes):
        base, vid, env = self.base, media.track_id(form, minutes), self.env
        n, secs = media.segment_count(minutes), minutes * 60
        urls = [c.seg_url(base, vid, k) for k in range(n)]
        key = ("whole", minutes, form)
        conc = self.a.plan["concurrent"] if minutes == 3 else [3]
        for k in conc:
            self.record(key + (f"curl: {k} parallel (floor)",),
                        lambda k=k: c.curl_parallel(env, urls, k))
        # On long tracks (minutes each): the old tools on the m4a form only (the
        # form they knew), the command line (segdlsrc again) on the short track only.
        every = minutes == 3 or form == "m4a"
        name = "old tools: 3 at a time + ffmpeg concat"
        if every:
            self.record(key + (name,), lambda: c.whole(
                env, lambda o, d: c.old_way(env, base, vid, o, d), secs,
                self.check_once(key + (name,))))
        if form == "ts":
            uri = "file://" + self.playlist(vid, minutes)
            name = "hlsdemux2 (urisourcebin) ! mp4mux"
            self.record(key + (name,), lambda: c.whole(
                env, lambda o, d: c.gst_launch(f"urisourcebin uri={uri} ! aacparse ! {c.to_file(o)}"),
                secs, self.check_once(key + (name,))))
        for k in conc:
            name = f"segdlsrc max-concurrent={k} ! mp4mux"
            self.record(key + (name,), lambda k=k, name=name: c.whole(
                env, lambda o, d: c.gst_launch(f"{c.segdlsrc(base, vid, k)} ! {c.to_file(o)}"), secs,
                self.check_once(key + (name,))))
        if minutes == 3:
            self.rss_run(form, minutes)
        if env.have_cli and minutes == 3:
            name = "segdl --combine"
            self.record(key + (name,), lambda: c.whole(
                env, lambda o, d: c.cli_combine(env, base, vid, o, d), secs,
                self.check_once(key + (name,))))

    def rss_run(self, form, minutes):
        vid = media.track_id(form, minutes)
        self.record(("whole", minutes, form, "segdlsrc ! fakesink"), lambda: c.run_timed(
            self.env, c.gst_launch(f"{c.segdlsrc(self.base, vid)} ! fakesink")))

    def chains(self, pipes):
        """All pipes as chains of one gst-launch pipeline (one process)."""
        m = c.run_timed(self.env, c.gst_launch("  ".join(pipes)))
        m["cmd"] = f"gst-launch-1.0 -q {pipes[0]} ... ({len(pipes)} such chains, one per id)"
        return m

    def many_round(self, form, count=16):
        base, env = self.base, self.env
        ids = [f"{media.track_id(form, 3)}-x{i}" for i in range(count)]
        n = media.segment_count(3)
        key = ("many", 3, form)
        urls = [c.seg_url(base, v, k) for v in ids for k in range(n)]
        self.record(key + (f"curl: {16 * 3} parallel (floor)",),
                    lambda: c.curl_parallel(env, urls, count * 3))
        d = env.tmpdir()
        if form == "ts":
            pipes = [f"urisourcebin uri=file://{self.playlist(v, 3)} ! aacparse ! "
                     f"{c.to_file(os.path.join(d, v + '.m4a'))}" for v in ids]
            self.record(key + (f"hlsdemux2 x{count} ! mp4mux",),
                        lambda: self.chains(pipes))
        pipes = [f"{c.segdlsrc(base, v)} ! {c.to_file(os.path.join(d, v + '.m4a'))}" for v in ids]
        self.record(key + (f"segdlsrc x{count} ! mp4mux",), lambda: self.chains(pipes))
        shutil.rmtree(d)


def progressive_round(b, pserver, form, run, floor_key):
    """One run of every contender against the revealing server (fresh ids)."""
    env, base, every = b.env, pserver.url, b.a.reveal_every
    n = media.segment_count(3)
    key = ("progressive", 3, form)
    last = c.seg_url(b.base, media.track_id(form, 3), n - 1)
    b.record(floor_key, lambda: {"value": c.curl_total(env, last)})
    jobs = [("old tools: 3 at a time + ffmpeg concat",
             lambda v: lambda o, d: c.old_way(env, base, v, o, d)),
            ("segdlsrc ! mp4mux",
             lambda v: lambda o, d: c.gst_launch(f"{c.segdlsrc(base, v)} ! {c.to_file(o)}"))]
    if env.have_cli:
        jobs.append(("segdl --combine", lambda v: lambda o, d: c.cli_combine(env, base, v, o, d)))
    for i, (name, make) in enumerate(jobs):
        vid = f"p-{form}-{i}-{run}"
        b.record(key + (name,), lambda: c.progressive(env, base, vid, n, every, make(vid)))


def prog_aliases(plan):
    return {f"p-{form}-{i}-{run}": media.track_id(form, 3) for form in plan["prog_forms"]
            for i in range(3) for run in range(plan["prog_runs"])}


def measure(a, env, root, results):
    plan = a.plan
    srv_args = ["--latency-ms", str(a.latency_ms), "--bandwidth-kbps", str(a.bandwidth_kbps)]
    prog_root = media.alias_root(root, os.path.join(a.media, "prog"), prog_aliases(plan))
    server = Server(a.build, root, srv_args)
    try:
        pserver = Server(a.build, prog_root, srv_args + ["--reveal-every", str(a.reveal_every)])
    except c.BenchError:
        server.stop()
        raise
    try:
        b = Bench(a, env, server, results)
        print("warm-up (not counted)", flush=True)
        for form in media.FORMS:
            b.first_audio_round(form)
        results.clear()
        for run in range(max(plan["runs"], plan["whole_runs"], plan["many_runs"])):
            print(f"run {run + 1}", flush=True)
            for form in media.FORMS if run < plan["runs"] else []:
                b.first_audio_round(form)
            for form in media.FORMS if run < plan["whole_runs"] else []:
                b.whole_round(form, 3)
            for form in plan["many_forms"] if run < plan["many_runs"] else []:
                b.many_round(form)
        for run in range(plan["prog_runs"]):
            print(f"progressive run {run + 1}/{plan['prog_runs']}", flush=True)
            for form in plan["prog_forms"] if run == 0 else plan["prog_forms"][:1]:
                progressive_round(b, pserver, form, run,
                                  ("progressive", 3, form, "floor: latency + last segment"))
        for minutes in plan["lengths"][1:]:
            for run in range(plan["long_runs"]):
                print(f"{minutes}-minute track, run {run + 1}/{plan['long_runs']}", flush=True)
                for form in media.FORMS:
                    b.whole_round(form, minutes)
        if plan["rss_long"]:
            print(f"{plan['rss_long']}-minute track (peak RSS)", flush=True)
            b.rss_run("m4a", plan["rss_long"])
        return server.cmd, pserver.cmd
    finally:
        server.stop()
        pserver.stop()


SAVED = ("quick", "latency_ms", "bandwidth_kbps", "reveal_every")


def save_run(path, results, info, a):
    data = {"results": [[list(k), v] for k, v in results.items()], "info": info,
            "args": {k: getattr(a, k) for k in SAVED}}
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


def load_run(path, a):
    with open(path) as f:
        data = json.load(f)
    for k in SAVED:
        setattr(a, k, data["args"][k])
    info = data["info"]
    info["load"] = tuple(info["load"])
    return {tuple(k): v for k, v in data["results"]}, info


def run_all(a):
    """Prepares the tracks and measures; returns (results, info)."""
    load = os.getloadavg()
    started = time.time()
    if load[0] > 1:
        print(f"WARNING: load average {load[0]:.2f} at start (above 1): other work on this "
              "machine distorts every number below; rerun on a quiet machine.", file=sys.stderr)
    env = c.Env(a.build, tempfile.mkdtemp(prefix="segdl-bench-"), a.latency_ms)
    if not env.have_cli:
        print(f"note: {env.cli} does not exist: the segdl --combine contender is skipped",
              file=sys.stderr)
    plan = a.plan
    tracks = [(f, m) for f in media.FORMS for m in plan["lengths"]]
    if plan["rss_long"]:
        tracks.append(("m4a", plan["rss_long"]))
    print("preparing tracks in " + a.media, flush=True)
    root = media.prepare(a.media, tracks)
    aliases = {media.track_id(f, m): media.track_id(f, m) for f, m in tracks}
    aliases.update({f"{media.track_id(f, 3)}-x{i}": media.track_id(f, 3)
                    for f in media.FORMS for i in range(16)})
    serve_root = media.alias_root(root, os.path.join(a.media, "serve"), aliases)
    results = {}
    try:
        cmds = measure(a, env, serve_root, results)
    finally:
        shutil.rmtree(env.scratch, ignore_errors=True)
    return results, report.machine(load, started, time.time(), a, cmds)


def main():
    a = parse_args()
    for tool in ("ffmpeg", "ffprobe", "curl", "gnuplot"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is missing (scripts/setup.sh installs it)")
    saved = os.path.join(a.media, "last-run.json")
    if a.report_only:
        results, info = load_run(saved, a)
    else:
        results, info = run_all(a)
        save_run(saved, results, info, a)
    text = report.section(results, info, a, os.path.join(a.media, "root"))
    print(text)
    if not a.no_doc:
        report.write_doc(os.path.join(REPO, "docs", "benchmarks.md"), text)
        report.plot(results, info, os.path.join(REPO, "docs", "benchmarks-run.png"))
        print("wrote docs/benchmarks.md (generated section) and docs/benchmarks-run.png")
    return 1 if any(not v for v in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
