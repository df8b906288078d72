# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared helpers for the segdl command-line suites (tests/cli/test_*.py).

Fixtures are made at test time with ffmpeg, the way deployed backends cut
their tracks (`ffmpeg -f segment`, packets copied, not re-encoded), and
served by segdl-server (--root) on 127.0.0.1, port 0, stopped by the test.
"""
import atexit
import glob
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SEGDL = os.environ.get("SEGDL_CLI", "")
SERVER = os.environ.get("SEGDL_SERVER_EXE", "")
WAIT = 120  # seconds: the bound of every wait in these suites

# Track layout: 7 s, cut at 1, 3, 5 s -> 4 segments (first 1 s, then 2 s).
DURATION = 7.0
CUTS = "1,3,5"
SEGMENT_SECONDS = "1,2"

# name -> (ffmpeg encoder args, whole-file extension, segment format, segment extension)
FORMS = {
    "aac-m4a": (["-c:a", "aac", "-b:a", "96k"], "m4a", "ipod", "m4a"),
    "aac-adts": (["-c:a", "aac", "-b:a", "96k"], "aac", "adts", "aac"),
    "aac-ts": (["-c:a", "aac", "-b:a", "96k"], "ts", "mpegts", "ts"),
    "aac-mka": (["-c:a", "aac", "-b:a", "96k"], "mka", "matroska", "mka"),
    # One fragmented MP4 (1 s fragments) cut between fragments: segment 0
    # holds the moov, the others only moof+mdat (the continuous form).
    "aac-fmp4": (["-c:a", "aac", "-b:a", "96k"], "mp4", None, "m4s"),
    "mp3": (["-c:a", "libmp3lame", "-b:a", "128k"], "mp3", "mp3", "mp3"),
    "opus-webm": (["-c:a", "libopus", "-b:a", "64k"], "webm", "webm", "webm"),
    "opus-ogg": (["-c:a", "libopus", "-b:a", "64k"], "opus", "ogg", "ogg"),
    "vorbis-ogg": (["-c:a", "libvorbis", "-q:a", "3"], "ogg", "ogg", "ogg"),
}
FMP4_FLAGS = ["-movflags", "+empty_moov+default_base_moof", "-frag_duration", "1000000"]


def need_tools(case, *tools):
    for t in tools:
        if shutil.which(t) is None:
            case.skipTest(f"{t} is not installed")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", WAIT)
    return subprocess.run(cmd, **kw)


def ffmpeg(args, what):
    r = run(["ffmpeg", "-v", "error", "-nostdin", "-y"] + args)
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg {what}: {r.stderr}")


def top_level_boxes(data):
    """(type, offset, size) of the top-level ISO BMFF boxes of `data`."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        if size < 8 or pos + size > len(data):
            raise RuntimeError(f"bad MP4 box {kind!r} at {pos}")
        out.append((kind, pos, size))
        pos += size
    return out


def cut_fragmented(whole, out_pattern):
    """Cuts a fragmented MP4 of 1 s fragments at the CUTS seconds, between fragments."""
    data = read_bytes(whole)
    moofs = [off for kind, off, _ in top_level_boxes(data) if kind == "moof"]
    cuts = [int(c) for c in CUTS.split(",")]
    if len(moofs) < int(DURATION) or len(moofs) <= cuts[-1]:
        raise RuntimeError(f"{whole}: {len(moofs)} fragments, want one a second")
    bounds = [0] + [moofs[c] for c in cuts] + [len(data)]
    for n in range(len(bounds) - 1):
        with open(out_pattern % n, "wb") as f:
            f.write(data[bounds[n]:bounds[n + 1]])


_fixtures = {"dir": None}  # form -> its folder (whole.EXT, seg_N.EXT), made once a process


def _fixtures_dir():
    if _fixtures["dir"] is None:
        _fixtures["dir"] = tempfile.mkdtemp(prefix="segdl-cli-fixtures-")
        atexit.register(shutil.rmtree, _fixtures["dir"], True)
    return _fixtures["dir"]


def form_fixture(form):
    """Encodes a DURATION s tone and cuts it the way backends do (packets
    copied): once a process, in a folder holding whole.EXT and seg_N.EXT."""
    if form in _fixtures:
        return _fixtures[form]
    enc, whole_ext, seg_fmt, seg_ext = FORMS[form]
    folder = os.path.join(_fixtures_dir(), form)
    os.makedirs(folder)
    whole = os.path.join(folder, "whole." + whole_ext)
    extra = FMP4_FLAGS if seg_fmt is None else []
    # One encode a codec: the other forms of that codec remux it.
    donor = next((f for f in FORMS if f in _fixtures and FORMS[f][0] == enc), None)
    if donor:
        src = glob.glob(os.path.join(_fixtures[donor], "whole.*"))[0]
        ffmpeg(["-i", src, "-map", "0:a", "-c", "copy"] + extra + [whole], f"remux {form}")
    else:
        ffmpeg(["-f", "lavfi", "-i", f"sine=frequency=440:duration={DURATION}:sample_rate=48000",
                "-ac", "2"] + enc + extra + [whole], f"encode {form}")
    pattern = os.path.join(folder, "seg_%d." + seg_ext)
    if seg_fmt is None:
        cut_fragmented(whole, pattern)
    else:
        opts = ["-reset_timestamps", "1"]
        if seg_fmt == "mp3":
            opts += ["-segment_format_options", "write_xing=0"]
        ffmpeg(["-i", whole, "-map", "0:a", "-c", "copy", "-f", "segment", "-segment_times", CUTS,
                "-segment_format", seg_fmt] + opts + [pattern], f"segment {form}")
    _fixtures[form] = folder
    return folder


def make_form(root, video_id, form):
    """Serves `form` as ROOT/ID/seg_N.EXT (copies of the process's fixture);
    returns the whole file, ROOT/.src-ID/whole.EXT."""
    folder = form_fixture(form)
    work = os.path.join(root, ".src-" + video_id)
    track = os.path.join(root, video_id)
    os.makedirs(work, exist_ok=True)
    os.makedirs(track, exist_ok=True)
    whole = None
    for f in sorted(os.listdir(folder)):
        dest = os.path.join(work if f.startswith("whole.") else track, f)
        shutil.copyfile(os.path.join(folder, f), dest)
        if f.startswith("whole."):
            whole = dest
    return whole


def _framemd5_args(k, path, out):
    # ffmpeg keeps the ADTS header in the packets of .aac and .ts: strip it.
    bsf = ["-bsf:a", "aac_adtstoasc"] if path.endswith((".aac", ".ts")) else []
    return ["-map", f"{k}:a:0", "-c", "copy"] + bsf + ["-f", "framemd5", out]


def _read_framemd5(path):
    # stream, dts, pts, duration, size, hash[, side data...]: the packet's own hash.
    with open(path) as f:
        return [line.split(",")[5].strip() for line in f if line.strip() and line[0] != "#"]


def _parse_duration(text):
    if text.startswith("N/A"):
        return None
    h, m, s = text.split(",")[0].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def analyse(paths):
    """{path: (md5 of every audio packet in order, container duration or None)}.

    One ffmpeg run for all the files (no decoding: framemd5 of the copied
    packets; the duration is the one the container's header gives, as
    ffprobe's format=duration, in hundredths). When ffmpeg fails, each file
    is read alone so that the error names the bad one."""
    paths = list(dict.fromkeys(paths))
    if not paths:
        return {}
    with tempfile.TemporaryDirectory(prefix="segdl-md5-") as tmp:
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "info", "-y"]
        for p in paths:
            cmd += ["-i", p]
        outs = [os.path.join(tmp, f"{k}.md5") for k in range(len(paths))]
        for k, p in enumerate(paths):
            cmd += _framemd5_args(k, p, outs[k])
        r = run(cmd)
        if r.returncode != 0:
            if len(paths) == 1:
                raise AssertionError(f"ffmpeg cannot read {paths[0]}: {r.stderr[-2000:]}")
            result = {}
            for p in paths:
                result.update(analyse([p]))
            return result
        durations, current = {}, None
        for line in r.stderr.splitlines():
            m = re.match(r"Input #(\d+),", line)
            if m:
                current = int(m.group(1))
            elif current is not None and line.strip().startswith("Duration: "):
                durations[current] = _parse_duration(line.strip()[len("Duration: "):])
                current = None
        return {p: (_read_framemd5(outs[k]), durations.get(k)) for k, p in enumerate(paths)}


def packet_hashes(path):
    """The md5 of every audio packet, in order (ffmpeg framemd5, no decoding)."""
    return analyse([path])[path][0]


class Server:
    """segdl-server --root DIR on 127.0.0.1:0, stopped by stop()."""

    def __init__(self, root, *args):
        self.proc = subprocess.Popen(
            [SERVER, "--root", root, "--port", "0", "--segment-seconds", SEGMENT_SECONDS] +
            list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = None
        while self.url is None:
            line = self.lines.get(timeout=WAIT)
            if line is None:
                raise RuntimeError("segdl-server exited before listening")
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].strip()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=WAIT)
        self.proc.stdout.close()


# Segdl processes started by the running test: killed by its tearDown, so a
# test failing while one runs leaves none behind.
_started = []


class Segdl:
    """segdl as a child process whose stdout lines are read as they come."""

    def __init__(self, args, cwd, env=None, stderr=subprocess.PIPE):
        self.proc = subprocess.Popen([SEGDL] + args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=stderr, text=True)
        _started.append(self.proc)
        self.lines = queue.Queue()
        self.out = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.out.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_event(self, name):
        """Blocks (bounded) until a JSON event `name` is printed; returns it."""
        while True:
            line = self.lines.get(timeout=WAIT)
            if line is None:
                raise AssertionError(f"segdl ended before a '{name}' event")
            ev = json.loads(line)
            if ev["event"] == name:
                return ev

    def finish(self):
        rc = self.proc.wait(timeout=WAIT)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        while self.lines.get(timeout=WAIT) is not None:
            pass
        return rc, err


def events(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def cache_track_dirs(download_dir):
    """Folders of segdlsrc's cache (safe name + '-' + 16 hex digits)."""
    out = []
    for name in sorted(os.listdir(download_dir)) if os.path.isdir(download_dir) else []:
        tail = name[-17:]
        if len(name) > 17 and tail[0] == "-" and all(c in "0123456789abcdef" for c in tail[1:]):
            out.append(os.path.join(download_dir, name))
    return out


class CliTestCase(unittest.TestCase):
    """Each test gets a temp dir; servers started with serve() are stopped."""

    def setUp(self):
        if not SEGDL or not SERVER:
            self.skipTest("SEGDL_CLI / SEGDL_SERVER_EXE not set (run through meson test)")
        self.tmp = tempfile.mkdtemp(prefix="segdl-cli-")
        self.servers = []

    def tearDown(self):
        while _started:
            p = _started.pop()
            if p.poll() is None:
                p.kill()
                p.wait(timeout=WAIT)
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def serve(self, root, *args):
        s = Server(root, *args)
        self.servers.append(s)
        return s

    def segdl(self, *args, cwd=None, **kw):
        return run([SEGDL] + list(args), cwd=cwd or self.tmp, **kw)


class TimedResult(unittest.TextTestResult):
    """Prints each test's wall time (to find the slow ones in the test log)."""

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self.stream.write(f"  [{time.monotonic() - self._started:.1f} s] {test.id()}\n")
        self.stream.flush()


def main():
    """unittest, with meson's conventions: 77 when everything was skipped."""
    runner = unittest.TextTestRunner(verbosity=2, resultclass=TimedResult)
    prog = unittest.main(exit=False, testRunner=runner)
    r = prog.result
    if r.failures or r.errors or r.unexpectedSuccesses:
        sys.exit(1)
    if r.skipped and len(r.skipped) == r.testsRun:
        sys.exit(77)
    if r.skipped:
        print(f"{len(r.skipped)} test(s) skipped: counted as a skip, not a pass", file=sys.stderr)
        sys.exit(77)
    sys.exit(0)
