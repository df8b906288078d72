# SPDX-License-Identifier: LGPL-2.1-or-later
"""The contenders of bench/run.sh and how each one is measured.

Every measure returns a dict: "value" (seconds: the number the tables rank),
and where measured "cpu" (user + system seconds, GNU time), "rss" (peak
resident set, MiB, GNU time) and "cmd" (the command, for the report).
"""
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 900  # seconds: the bound of every command


class BenchError(RuntimeError):
    pass


class Env:
    """What every measure needs: the build, the servers, a scratch folder."""

    def __init__(self, build, scratch, latency_ms):
        self.build = build
        self.scratch = scratch
        self.latency_ms = latency_ms
        self.cli = os.path.join(build, "tools", "cli", "segdl")
        self.environ = dict(os.environ)
        self.environ["GST_PLUGIN_PATH"] = os.path.join(build, "plugins", "segdl")
        self.environ["SEGDL_MODULE_DIR"] = os.path.join(build, "gst", "segdl")
        self.have_cli = os.access(self.cli, os.X_OK)

    def tmpdir(self):
        return tempfile.mkdtemp(dir=self.scratch)


def seg_url(base, vid, n):
    return f"{base}/stream?" + urllib.parse.urlencode({"v": vid, "segment": n})


def run_timed(env, cmd, timeout=TIMEOUT):
    """Runs cmd under GNU time -v; returns wall (measured here), cpu, rss, stdout."""
    fd, tfile = tempfile.mkstemp(dir=env.scratch, suffix=".time")
    os.close(fd)
    t0 = time.monotonic()
    try:
        r = subprocess.run(["/usr/bin/time", "-v", "-o", tfile] + cmd, capture_output=True,
                           text=True, env=env.environ, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"timed out after {timeout} s: {shlex.join(cmd)}") from e
    wall = time.monotonic() - t0
    fields = {}
    with open(tfile) as f:
        for line in f:
            key, _, val = line.strip().rpartition(": ")
            fields[key] = val
    os.unlink(tfile)
    if r.returncode != 0:
        raise BenchError(f"exit {r.returncode}: {shlex.join(cmd)}\n{r.stderr[-2000:]}")
    cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    rss = int(fields["Maximum resident set size (kbytes)"]) / 1024.0
    return {"value": wall, "cpu": cpu, "rss": rss, "stdout": r.stdout, "cmd": shlex.join(cmd)}


def gstrun_cmd(pipelines, first_only=False):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "gstrun.py")]
    if first_only:
        cmd.append("--first-only")
    return cmd + pipelines


def gst_launch(pipeline):
    """gst-launch-1.0 (a C program, as a player or the command-line tool would be:
    no interpreter in the CPU and memory figures). Several chains in one
    description run in one pipeline, which ends when every sink has EOS.
    gst-launch-1.0 takes the description as separate words (no value here
    contains a space)."""
    return ["gst-launch-1.0", "-q"] + pipeline.split()


def first_audio(env, pipeline):
    """In-process time from PLAYING to the first buffer at the sink."""
    r = run_timed(env, gstrun_cmd([pipeline], first_only=True))
    return {"value": json.loads(r["stdout"])["first"][0], "cmd": r["cmd"]}


# ---- pipelines ---------------------------------------------------------------

def segdlsrc(base, vid, concurrent=3):
    return f"segdlsrc backend-url={base} video-id={vid} max-concurrent={concurrent}"


def hlsdemux2(playlist):
    return f"filesrc location={playlist} ! hlsdemux2"


def to_file(out):
    return f"mp4mux ! filesink location={out}"


def decoded():
    return "decodebin ! fakesink name=sink"


def write_playlist(path, base, vid, durations):
    """A VOD HLS playlist of the track's segments at the server's /stream URLs."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3",
             "#EXT-X-TARGETDURATION:%d" % (int(max(durations)) + 1),
             "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-MEDIA-SEQUENCE:0"]
    for n, d in enumerate(durations):
        lines += ["#EXTINF:%.3f," % d, seg_url(base, vid, n)]
    lines.append("#EXT-X-ENDLIST")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ---- the floor -----------------------------------------------------------------

def curl_ttfb(env, url):
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_starttransfer}", url]
    r = run_timed(env, cmd)
    return {"value": float(r["stdout"]), "cmd": shlex.join(cmd)}


def curl_total(env, url):
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total}", url]
    return float(run_timed(env, cmd)["stdout"])


def curl_parallel(env, urls, connections):
    """All urls with `connections` parallel transfers in one curl process."""
    out = env.tmpdir()
    config = os.path.join(out, "urls.curl")
    with open(config, "w") as f:
        for i, u in enumerate(urls):
            f.write(f'url = "{u}"\noutput = "{out}/{i}"\n')
    cmd = ["curl", "-sS", "--fail", "--parallel", "--parallel-immediate", "--parallel-max",
           str(connections), "-K", config]
    r = run_timed(env, cmd)
    shutil.rmtree(out)
    r["cmd"] = shlex.join(cmd[:-1] + ["URLS"])
    return r


# ---- whole track into a file ---------------------------------------------------

def check_output(path, seconds):
    """The file must hold the whole track (ffprobe's duration within 1 s)."""
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                        "csv=p=0", path], capture_output=True, text=True, timeout=120,
                       check=False)
    try:
        got = float(r.stdout.strip())
    except ValueError as e:
        raise BenchError(f"{path}: not a readable file: {r.stderr.strip()}") from e
    if abs(got - seconds) > 1.0:
        raise BenchError(f"{path}: {got:.1f} s of audio, expected {seconds:.1f} s")


def whole(env, cmd_for, seconds, check):
    """cmd_for(out_path) -> command; measured, and its output checked once."""
    d = env.tmpdir()
    out = os.path.join(d, "out.m4a")
    r = run_timed(env, cmd_for(out, d))
    if check:
        check_output(out, seconds)
    shutil.rmtree(d)
    return r


def old_way(env, base, vid, out, work):
    return ["/usr/bin/python3", os.path.join(HERE, "oldway.py"), base, vid, out, work]


def cli_combine(env, base, vid, out, work, concurrent=3):
    return [env.cli, vid, "--backend-url", base, "-d", work, "--combine", out, "--concurrent",
            str(concurrent), "--quiet"]


# ---- progressive backend --------------------------------------------------------

def progressive(env, base, vid, segments, reveal_every, cmd_for):
    """Time from the last segment's appearance to the end of the job.

    The first request for an id starts segdl-server's reveal clock: it is made
    here (a status request), so segment N-1 appears (N-1)*S after t0.
    """
    d = env.tmpdir()
    out = os.path.join(d, "out.m4a")
    t0 = time.monotonic()
    with urllib.request.urlopen(f"{base}/status?" + urllib.parse.urlencode({"v": vid}),
                                timeout=60) as r:
        r.read()
    res = run_timed(env, cmd_for(out, d))
    end = time.monotonic()
    shutil.rmtree(d)
    res["value"] = end - (t0 + (segments - 1) * reveal_every)
    return res
