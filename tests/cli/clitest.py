# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared helpers for the segdl command-line suites (tests/cli/test_*.py).

Fixtures are made at test time with ffmpeg, the way deployed backends cut
their tracks (`ffmpeg -f segment`, packets copied, not re-encoded), and
served by segdl-server (--root) on 127.0.0.1, port 0, stopped by the test.
"""
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest

SEGDL = os.environ.get("SEGDL_CLI", "")
SERVER = os.environ.get("SEGDL_SERVER_EXE", "")
WAIT = 120  # seconds: the bound of every wait in these suites

# Track layout: 12 s, cut at 2, 6, 10 s -> 4 segments (first 2 s, then 4 s).
DURATION = 12.0
CUTS = "2,6,10"
SEGMENT_SECONDS = "2,4"

# name -> (ffmpeg encoder args, whole-file extension, segment format, segment extension)
FORMS = {
    "aac-m4a": (["-c:a", "aac", "-b:a", "96k"], "m4a", "ipod", "m4a"),
    "aac-adts": (["-c:a", "aac", "-b:a", "96k"], "aac", "adts", "aac"),
    "aac-ts": (["-c:a", "aac", "-b:a", "96k"], "ts", "mpegts", "ts"),
    "aac-mka": (["-c:a", "aac", "-b:a", "96k"], "mka", "matroska", "mka"),
    "mp3": (["-c:a", "libmp3lame", "-b:a", "128k"], "mp3", "mp3", "mp3"),
    "opus-webm": (["-c:a", "libopus", "-b:a", "64k"], "webm", "webm", "webm"),
    "opus-ogg": (["-c:a", "libopus", "-b:a", "64k"], "opus", "ogg", "ogg"),
    "vorbis-ogg": (["-c:a", "libvorbis", "-q:a", "3"], "ogg", "ogg", "ogg"),
}


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


def make_form(root, video_id, form):
    """Encodes a 12 s tone, cuts it into DIR/ID/seg_N.EXT; returns the whole file."""
    enc, whole_ext, seg_fmt, seg_ext = FORMS[form]
    work = os.path.join(root, ".src-" + video_id)
    track = os.path.join(root, video_id)
    os.makedirs(work, exist_ok=True)
    os.makedirs(track, exist_ok=True)
    whole = os.path.join(work, "whole." + whole_ext)
    r = run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
             f"sine=frequency=440:duration={DURATION}:sample_rate=48000", "-ac", "2"] + enc +
            [whole])
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg encode {form}: {r.stderr}")
    seg_opts = ["-reset_timestamps", "1"]
    if seg_fmt == "mp3":
        seg_opts += ["-segment_format_options", "write_xing=0"]
    r = run(["ffmpeg", "-v", "error", "-y", "-i", whole, "-map", "0:a", "-c", "copy", "-f",
             "segment", "-segment_times", CUTS, "-segment_format", seg_fmt] + seg_opts +
            [os.path.join(track, "seg_%d." + seg_ext)])
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg segment {form}: {r.stderr}")
    return whole


def packet_hashes(path):
    """The md5 of every audio packet, in order (ffmpeg framemd5, no decoding)."""
    # ffmpeg keeps the ADTS header in the packets of .aac and .ts: strip it.
    bsf = ["-bsf:a", "aac_adtstoasc"] if path.endswith((".aac", ".ts")) else []
    r = run(["ffmpeg", "-v", "error", "-i", path, "-map", "0:a:0", "-c", "copy"] + bsf +
            ["-f", "framemd5", "-"])
    if r.returncode != 0:
        raise AssertionError(f"ffmpeg cannot read {path}: {r.stderr}")
    # stream, dts, pts, duration, size, hash[, side data...]: the packet's own hash.
    return [line.split(",")[5].strip() for line in r.stdout.splitlines()
            if line and not line.startswith("#")]


def media_duration(path):
    r = run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", path])
    if r.returncode != 0:
        raise AssertionError(f"ffprobe cannot read {path}: {r.stderr}")
    return float(json.loads(r.stdout)["format"]["duration"])


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


class Segdl:
    """segdl as a child process whose stdout lines are read as they come."""

    def __init__(self, args, cwd, env=None, stderr=subprocess.PIPE):
        self.proc = subprocess.Popen([SEGDL] + args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=stderr, text=True)
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
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def serve(self, root, *args):
        s = Server(root, *args)
        self.servers.append(s)
        return s

    def segdl(self, *args, cwd=None, **kw):
        return run([SEGDL] + list(args), cwd=cwd or self.tmp, **kw)


def main():
    """unittest, with meson's conventions: 77 when everything was skipped."""
    prog = unittest.main(exit=False, verbosity=2)
    r = prog.result
    if r.failures or r.errors or r.unexpectedSuccesses:
        sys.exit(1)
    if r.skipped and len(r.skipped) == r.testsRun:
        sys.exit(77)
    if r.skipped:
        print(f"{len(r.skipped)} test(s) skipped: counted as a skip, not a pass", file=sys.stderr)
        sys.exit(77)
    sys.exit(0)
