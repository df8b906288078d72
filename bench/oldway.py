#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The old tools' behaviour, for bench/run.sh to compare against.

  oldway.py BACKEND_URL VIDEO_ID OUT.m4a WORKDIR [--concurrent 3] [--poll 2]

Polls GET {backend}/status?v=ID every --poll seconds (the timer armed after
each reply, as the old tools did), downloads the ready segments --concurrent
at a time into WORKDIR/ID/segment_N.EXT (a new connection per request, 3
retries with a 1 s, 2 s, 4 s back-off), and once it holds totalSegments
segments joins them with `ffmpeg -f concat -c copy` into OUT. Python's
standard library only.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

RETRIES = 3
EXTENSIONS = {"audio/mp4": "m4a", "video/mp2t": "ts", "audio/aac": "aac", "audio/mpeg": "mp3"}


def fetch(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read(), r.headers.get_content_type()


def download(base, vid, n, folder):
    q = urllib.parse.urlencode({"v": vid, "segment": n})
    for attempt in range(RETRIES + 1):
        try:
            body, ctype = fetch(f"{base}/stream?{q}")
            path = os.path.join(folder, f"segment_{n}.{EXTENSIONS.get(ctype, 'm4a')}")
            with open(path, "wb") as f:
                f.write(body)
            return path
        except OSError as e:
            if attempt == RETRIES:
                raise RuntimeError(f"segment {n}: {e}") from e
            time.sleep(2**attempt)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("backend")
    ap.add_argument("video_id")
    ap.add_argument("out")
    ap.add_argument("workdir")
    ap.add_argument("--concurrent", type=int, default=3)
    ap.add_argument("--poll", type=float, default=2.0)
    ap.add_argument("--max-wait", type=float, default=600)
    a = ap.parse_args()
    folder = os.path.join(a.workdir, a.video_id)
    os.makedirs(folder, exist_ok=True)
    status_url = f"{a.backend}/status?" + urllib.parse.urlencode({"v": a.video_id})
    started = time.monotonic()
    futures = {}
    with ThreadPoolExecutor(a.concurrent) as pool:
        while True:
            body, _ = fetch(status_url)
            st = json.loads(body)
            for n in st.get("ready", []):
                if n not in futures:
                    futures[n] = pool.submit(download, a.backend, a.video_id, n, folder)
            total = st.get("totalSegments")
            if total is not None and len(futures) >= total:
                break
            if time.monotonic() - started > a.max_wait:
                print("oldway: the track was not complete in time", file=sys.stderr)
                return 1
            time.sleep(a.poll)
        paths = [futures[n].result() for n in sorted(futures)]
    listing = os.path.join(folder, "list.txt")
    with open(listing, "w") as f:
        for p in paths:
            f.write("file '%s'\n" % os.path.abspath(p).replace("'", "'\\''"))
    r = subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", listing,
                        "-c", "copy", a.out], check=False)
    return 0 if r.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
