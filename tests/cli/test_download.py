# SPDX-License-Identifier: LGPL-2.1-or-later
"""segdl downloads: with and without monitor, JSON events, the bar on a
terminal, several ids."""
import fcntl
import glob
import os
import pty
import re
import shutil
import struct
import subprocess
import termios
import threading

import clitest
from clitest import CliTestCase


def served_segments(root, video_id):
    files = glob.glob(os.path.join(root, video_id, "seg_*.*"))
    return {int(re.search(r"seg_(\d+)\.", f).group(1)): clitest.read_bytes(f) for f in files}


def cached_segments(download_dir):
    (track,) = clitest.cache_track_dirs(download_dir)
    out = {}
    for f in glob.glob(os.path.join(track, "seg_*.bin")):
        out[int(re.search(r"seg_(\d+)\.bin", f).group(1))] = clitest.read_bytes(f)
    return out


def human_bytes(n):
    """As segdl prints sizes: SI units, one decimal from kB on."""
    units = ["B", "kB", "MB", "GB"]
    u = 0
    while n >= 1000 and u < len(units) - 1:
        n /= 1000
        u += 1
    return f"{n:.0f} {units[u]}" if u == 0 else f"{n:.1f} {units[u]}"


class Download(CliTestCase):
    def setUp(self):
        super().setUp()
        clitest.need_tools(self, "ffmpeg")
        self.root = os.path.join(self.tmp, "srv")
        clitest.make_form(self.root, "t", "aac-m4a")

    def test_monitor_waits_for_every_segment(self):
        srv = self.serve(self.root, "--reveal-every", "0.5")
        dl = os.path.join(self.tmp, "dl")
        r = self.segdl("t", "-b", srv.url, "-d", dl, "--poll-interval", "0.2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(cached_segments(dl), served_segments(self.root, "t"))
        self.assertIn("complete: 4 segments", r.stderr)

    def test_no_monitor_takes_only_what_is_ready(self):
        # Segment k is ready k * 30 s after the first request: only segment 0 now.
        srv = self.serve(self.root, "--reveal-every", "30")
        dl = os.path.join(self.tmp, "dl")
        r = self.segdl("t", "-b", srv.url, "-d", dl, "--no-monitor", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(cached_segments(dl), {0: served_segments(self.root, "t")[0]})
        done = clitest.events(r.stdout)[-1]
        self.assertEqual(done["event"], "done")
        self.assertEqual(done["segments_done"], 1)

    def test_json_events_in_order(self):
        srv = self.serve(self.root, "--reveal-every", "0.3")
        served = served_segments(self.root, "t")
        out = os.path.join(self.tmp, "t.m4a")
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--poll-interval", "0.2", "--json",
                       "--combine", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        evs = clitest.events(r.stdout)
        names = [e["event"] for e in evs]
        self.assertEqual(names[0], "start")
        self.assertEqual(names[-1], "done")
        self.assertIn("output", names)
        self.assertEqual(evs[0]["id"], "t")
        self.assertTrue(all(e["id"] == "t" for e in evs))
        # Times to the millisecond, as written: "elapsed":1.250, never 17 digits.
        times = re.findall(r'"(elapsed|seconds)":([^,}]*)', r.stdout)
        self.assertGreaterEqual(len(times), len(evs) + 4, r.stdout)
        for key, value in times:
            want = r"^\d+\.\d{3}$" if key == "elapsed" else r"^(\d+\.\d{3}|null)$"
            self.assertRegex(value, want, key)
        self.assertTrue(any(k == "seconds" and v != "null" for k, v in times), r.stdout)
        elapsed = [e["elapsed"] for e in evs]
        self.assertEqual(elapsed, sorted(elapsed))
        segs = [e for e in evs if e["event"] == "segment"]
        self.assertEqual([e["segments_done"] for e in segs], [1, 2, 3, 4])
        self.assertEqual(sum(e["bytes"] for e in segs), sum(len(b) for b in served.values()))
        self.assertTrue(all(e["source"] == "network" for e in segs))
        # segdlsrc's per-segment "segdl-segment" messages name each segment.
        self.assertEqual(sorted(e["index"] for e in segs), [0, 1, 2, 3])
        for e in segs:
            self.assertEqual(e["bytes"], len(served[e["index"]]))
        done = evs[-1]
        self.assertTrue(done["complete"])
        self.assertEqual(done["segments_total"], 4)
        self.assertEqual(done["segments_done"], 4)
        self.assertEqual(done["bytes"], sum(len(b) for b in served.values()))
        self.assertEqual(done["segment_bytes"], sum(len(b) for b in served.values()))
        self.assertEqual(done["output"], out)
        # A second run comes from the cache, with no request: no byte
        # downloaded, the segments' bytes all there.
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--json", "--combine", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        evs = clitest.events(r.stdout)
        self.assertEqual(evs[-1]["cache_hits"], 4)
        self.assertTrue(evs[-1]["offline"])
        self.assertEqual(evs[-1]["bytes"], 0)
        self.assertEqual(evs[-1]["segment_bytes"], sum(len(b) for b in served.values()))
        self.assertTrue(all(e["source"] == "cache" for e in evs if e["event"] == "segment"))

    def test_retry_event_before_the_segment(self):
        srv = self.serve(self.root, "--fault", "http500:t:1:1")
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        evs = clitest.events(r.stdout)
        retries = [i for i, e in enumerate(evs) if e["event"] == "retry"]
        self.assertEqual(len(retries), 1, evs)
        retry = evs[retries[0]]
        self.assertEqual((retry["segment"], retry["attempt"], retry["http_status"]), (1, 1, 500))
        self.assertIn("retrying", retry["message"])
        seg1 = [i for i, e in enumerate(evs) if e["event"] == "segment" and e["index"] == 1]
        if seg1:  # per-segment messages from segdlsrc: the retry comes first, and is counted
            self.assertLess(retries[0], seg1[0])
            self.assertEqual(evs[seg1[0]]["retries"], 1)
        self.assertEqual(evs[-1]["retries"], 1)
        self.assertTrue(evs[-1]["complete"])

    def test_counts_singular_and_plural(self):
        # A one-segment track whose segment fails once: "1 segment", "1 retry".
        os.makedirs(os.path.join(self.root, "one"))
        shutil.copyfile(glob.glob(os.path.join(self.root, "t", "seg_0.*"))[0],
                        os.path.join(self.root, "one", "seg_0.m4a"))
        srv = self.serve(self.root, "--fault", "http500:one:0:1")
        r = self.segdl("one", "-b", srv.url, "-d", "dl")
        self.assertEqual(r.returncode, 0, r.stderr)
        (summary,) = [l for l in r.stderr.splitlines() if l.startswith("one: complete: ")]
        self.assertRegex(summary, r"^one: complete: 1 segment, .* in \d+\.\d s, 1 retry$")
        # Two retries: plural.
        srv = self.serve(self.root, "--fault", "http500:t:1:2")
        r = self.segdl("t", "-b", srv.url, "-d", "dl")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"\nt: complete: 4 segments, .* in \d+\.\d s, 2 retries\n")

    def fallback_run(self, *args):
        """Track f (ADTS: the fallback URL's file is the segments end to end)
        whose segment 2 always fails: segdl with --fallback-url."""
        clitest.make_form(self.root, "f", "aac-adts")
        srv = self.serve(self.root, "--fault", "http500:f:2:-1")
        dl = os.path.join(self.tmp, f"dl{len(self.servers)}")
        return self.segdl("f", "-b", srv.url, "-d", dl, "--max-retries", "0", "--fallback-url",
                          srv.url + "/full/f", *args)

    def test_fallback_reported_as_a_fallback(self):
        # The switch to the fallback URL is a `fallback` event (and line), not
        # a retry: no attempt, not counted in the retries.
        r = self.fallback_run("--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        evs = clitest.events(r.stdout)
        self.assertEqual([e for e in evs if e["event"] == "retry"], [])
        (fb,) = [e for e in evs if e["event"] == "fallback"]
        self.assertEqual((fb["segment"], fb["http_status"]), (2, 500))
        self.assertEqual(fb["message"], "segment 2 failed: HTTP 500 Internal Server Error")
        self.assertTrue(fb["url"].endswith("/full/f"), fb)
        names = [e["event"] for e in evs]
        self.assertLess(names.index("fallback"),
                        next(i for i, e in enumerate(evs) if e.get("source") == "fallback"))
        self.assertEqual((evs[-1]["retries"], evs[-1]["fallback"]), (0, True))
        r = self.fallback_run()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("\nf: switching to the fallback URL: segment 2 failed: HTTP 500 Internal "
                      "Server Error\n", r.stderr)
        self.assertNotIn("retr", r.stderr)

    def test_counts_after_a_fallback(self):
        # The summary and the done event say the same: N of 4 segments came
        # from the backend (N depends on what was in flight when segment 2
        # failed), and the rest of the track came from the fallback URL's
        # file, from segment 2 on.
        r = self.fallback_run("--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        evs = clitest.events(r.stdout)
        segs = [e for e in evs if e["event"] == "segment"]
        net = [e for e in segs if e["source"] == "network"]
        (whole,) = [e for e in segs if e["source"] == "fallback"]
        self.assertIsNone(whole["index"])
        done = evs[-1]
        self.assertEqual((done["event"], done["complete"], done["fallback"]), ("done", True, True))
        self.assertEqual((done["segments_done"], done["segments_total"]), (len(net), 4))
        self.assertEqual(done["fallback_from"], 2)
        self.assertEqual(done["segment_bytes"], sum(e["bytes"] for e in segs))
        r = self.fallback_run()
        self.assertEqual(r.returncode, 0, r.stderr)
        n = len(re.findall(r"\nf: segment \d done \(", r.stderr))
        self.assertRegex(r.stderr, r"\nf: the fallback URL's file done \(\d+\.\d kB, ")
        self.assertRegex(r.stderr, rf"\nf: complete: {n} of 4 segments and the fallback URL's "
                         r"file \(from segment 2 on\), \d+\.\d kB downloaded in ")
        self.assertNotRegex(r.stderr, r"\(\d/4, [^)]*fallback")

    def run_on_a_terminal(self, video_id, columns=None):
        """segdl VIDEO_ID with stderr on a pty (`columns` wide when given);
        returns (exit code, what it wrote there)."""
        srv = self.serve(self.root, "--reveal-every", "0.6")
        master, slave = pty.openpty()
        if columns:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        env = dict(os.environ, TERM="xterm")
        p = subprocess.Popen([clitest.SEGDL, video_id, "-b", srv.url, "-d", "dl",
                              "--poll-interval", "0.2"], cwd=self.tmp, env=env,
                             stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        chunks = []

        def read():
            while True:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    return
                if not data:
                    return
                chunks.append(data)

        t = threading.Thread(target=read, daemon=True)
        t.start()
        rc = p.wait(timeout=clitest.WAIT)
        t.join(timeout=clitest.WAIT)
        os.close(master)
        return rc, b"".join(chunks).decode()

    def test_bar_redraws_in_place_on_a_terminal(self):
        rc, text = self.run_on_a_terminal("t")
        self.assertEqual(rc, 0)
        redraws = text.count("\r\x1b[K")
        self.assertGreaterEqual(redraws, 5, text)
        # Every redraw rewrites the same line: no line feed before the last
        # one, which clears the bar and prints the result.
        parts = text.split("\r\x1b[K")
        self.assertTrue(all("\n" not in p for p in parts[:-1]), text)
        self.assertIn("complete: 4 segments", parts[-1])
        self.assertRegex(text, r"\[#+-*\] [0-4]/4")
        self.assertIn("waiting for the backend", text)
        self.assertRegex(text, r"t: complete: 4 segments")

    def test_bar_fits_a_narrow_terminal(self):
        # 32 columns and a 33-character id: every redraw fits in 31 columns
        # (a longer line would wrap and the next redraw would erase only its
        # last row), the id is shortened, the count and the state are whole.
        long_id = "a-rather-long-track-identifier-42"
        shutil.copytree(os.path.join(self.root, "t"), os.path.join(self.root, long_id))
        rc, text = self.run_on_a_terminal(long_id, columns=32)
        self.assertEqual(rc, 0, text)
        parts = text.split("\r\x1b[K")
        bars = [p for p in parts[1:-1] if p and "\n" not in p]
        self.assertGreaterEqual(len(bars), 5, text)
        states = ("starting", "waiting", "waiting for the backend", "downloading", "joining",
                  "done")
        for bar in bars:
            self.assertLessEqual(len(bar), 31, repr(bar))
            self.assertRegex(bar, r"^a-rather-\S*\.\.\. [0-4]/[4?]  ", repr(bar))
            self.assertTrue(bar.endswith(states), repr(bar))
        self.assertIn("complete: 4 segments", parts[-1])

    def test_plain_lines_when_not_a_terminal(self):
        srv = self.serve(self.root)
        r = self.segdl("t", "-b", srv.url, "-d", "dl")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("\x1b", r.stderr)
        self.assertEqual(len(re.findall(r"segment( \d+)? done \(\d/4, ", r.stderr)), 4, r.stderr)
        size = human_bytes(sum(len(b) for b in served_segments(self.root, "t").values()))
        self.assertIn(f"t: complete: 4 segments, {size} downloaded in ", r.stderr)
        # From the cache: the summary gives the segments' size and says that
        # none of it was downloaded.
        r = self.segdl("t", "-b", srv.url, "-d", "dl")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"t: complete: 4 segments, {size} (0 B downloaded, 4 from the cache) in ",
                      r.stderr)

    def test_plain_total_once_known(self):
        # The first status fails once (retried): segment 0 is whole before
        # any status answer. Its line waits for the total ("1/4", not
        # "1/?"); the lines stay in order.
        srv = self.serve(self.root, "--fault", "status500:t:*:1")
        r = self.segdl("t", "-b", srv.url, "-d", "dl")
        self.assertEqual(r.returncode, 0, r.stderr)
        segs = re.findall(r"\nt: segment (\d) done \((\d)/(\S+), ", r.stderr)
        self.assertEqual(len(segs), 4, r.stderr)
        self.assertEqual([int(d) for _, d, _ in segs], [1, 2, 3, 4], r.stderr)
        self.assertEqual({t for _, _, t in segs}, {"4"}, r.stderr)
        self.assertIn("\nt: status: ", r.stderr)  # the failed status was there

    def test_plain_state_lines_only_on_a_change(self):
        # Every segment listed at once, each body paced over about a second:
        # the download never waits for the backend, so the plain lines give
        # the first wait (for the status) and 'downloading', and no state
        # line per segment message or BUFFERING. The status gives the total.
        srv = self.serve(self.root, "--bandwidth-kbps", "200")
        r = self.segdl("t", "-b", srv.url, "-d", "dl")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stderr.splitlines()
        segs = [l for l in lines if re.match(r"t: segment \d done \(", l)]
        self.assertEqual(len(segs), 4, r.stderr)
        # The status says 4: every line gives it (segment 0's line waits
        # for the status when it is whole first).
        for l in segs:
            self.assertRegex(l, r"\([1-4]/4, ", r.stderr)
        states = [l for l in lines if l in ("t: waiting for the backend", "t: downloading")]
        self.assertEqual(states, ["t: waiting for the backend", "t: downloading"], r.stderr)

    def test_several_ids_and_batch(self):
        clitest.make_form(self.root, "u", "mp3")
        clitest.make_form(self.root, "v", "opus-webm")
        shutil.copytree(os.path.join(self.root, "t"), os.path.join(self.root, "w#1"))
        srv = self.serve(self.root)
        # A '#' at the start of a line or after a blank begins a comment
        # (docs/segdl.1.md); one inside an id is part of it.
        with open(os.path.join(self.tmp, "ids.txt"), "w") as f:
            f.write("# more\nv   # the WebM one\n\n  # indented\nw#1\t# its comment\n")
        r = self.segdl("t", "u", "--batch", "ids.txt", "-b", srv.url, "-d", "dl", "--json",
                       "--combine", "auto")
        self.assertEqual(r.returncode, 0, r.stderr)
        starts = [e for e in clitest.events(r.stdout) if e["event"] == "start"]
        self.assertEqual([(e["id"], e["position"], e["count"]) for e in starts],
                         [("t", 1, 4), ("u", 2, 4), ("v", 3, 4), ("w#1", 4, 4)])
        dones = [e for e in clitest.events(r.stdout) if e["event"] == "done"]
        self.assertEqual([e["complete"] for e in dones], [True, True, True, True])
        for name in ("t.m4a", "u.mp3", "v.opus", "w_1.m4a"):
            self.assertTrue(os.path.getsize(os.path.join(self.tmp, name)) > 1000, name)
        self.assertEqual(len(clitest.cache_track_dirs(os.path.join(self.tmp, "dl"))), 4)

    def test_cached_reads_verified_off_the_http_thread(self):
        # A replay from the cache: every segment is read and its SHA-256
        # checked ("hit" lines of segdl-cache) on the cache worker, never on
        # the HTTP thread (the one that opened the track folder); the joined
        # file is the same as from the network.
        srv = self.serve(self.root)
        first = os.path.join(self.tmp, "net.m4a")
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--quiet", "--combine", first)
        self.assertEqual(r.returncode, 0, r.stderr)
        env = dict(os.environ, GST_DEBUG="segdl-cache:5", GST_DEBUG_NO_COLOR="1")
        again = os.path.join(self.tmp, "cache.m4a")
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--quiet", "--combine", again, env=env)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        # "0:00:00.01 PID 0xTHREAD DEBUG segdl-cache file:line:func: message"
        line = re.compile(r"^\S+\s+\d+\s+(0x[0-9a-f]+)\s+\w+\s+segdl-cache\s.*?: (.*)$")
        opened, hits = set(), {}
        for m in filter(None, map(line.match, r.stderr.splitlines())):
            if m.group(2).startswith("track folder "):
                opened.add(m.group(1))
            hit = re.match(r"segment (\d+): hit", m.group(2))
            if hit:
                hits[int(hit.group(1))] = m.group(1)
        self.assertEqual(len(opened), 1, r.stderr[-2000:])
        self.assertEqual(sorted(hits), [0, 1, 2, 3], r.stderr[-2000:])
        self.assertNotIn(opened.pop(), set(hits.values()))
        self.assertEqual(clitest.packet_hashes(again), clitest.packet_hashes(first))



if __name__ == "__main__":
    clitest.main()
