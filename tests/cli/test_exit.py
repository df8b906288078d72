# SPDX-License-Identifier: LGPL-2.1-or-later
"""segdl's exit codes, one per cause, and Ctrl-C then a rerun from the cache."""
import glob
import os
import shutil
import signal

import clitest
from clitest import CliTestCase, Segdl


def temp_files(download_dir):
    """Files a killed writer could leave: anything starting with '.' but .lock."""
    out = []
    for track in clitest.cache_track_dirs(download_dir):
        out += [n for n in os.listdir(track) if n.startswith(".") and n != ".lock"]
    return out


class ExitCodes(CliTestCase):
    def setUp(self):
        super().setUp()
        clitest.need_tools(self, "ffmpeg")
        self.root = os.path.join(self.tmp, "srv")
        clitest.make_form(self.root, "t", "aac-m4a")

    def one_line_error(self, r, code, text):
        self.assertEqual(r.returncode, code, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.startswith("segdl:")]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(text, lines[0])

    def test_usage_errors_are_2(self):
        env = dict(os.environ)
        env.pop("SEGDL_BACKEND_URL", None)
        r = self.segdl("t", env=env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no backend", r.stderr)
        self.assertEqual(self.segdl("--concurrent", "0", "t", "-b", "http://x").returncode, 2)
        self.assertEqual(self.segdl("--no-such-option").returncode, 2)
        self.assertEqual(self.segdl("-b", "http://127.0.0.1:9").returncode, 2)  # no id
        self.assertEqual(self.segdl("a", "b", "-b", "http://x", "--combine", "o.m4a").returncode, 2)
        self.assertEqual(self.segdl("cache", "clean", "--older-than", "soon").returncode, 2)
        # A backend or fallback URL that is not http(s): the usage error is
        # the only output, before any progress line.
        must = " must be an http:// or https:// URL: "
        for args, first in (
                (["t", "-b", "ftp://127.0.0.1/", "-d", "dl"],
                 "the backend URL" + must + "ftp://127.0.0.1/"),
                (["t", "-b", "http://127.0.0.1:9", "--fallback-url", "ftp://x/t.m4a"],
                 "--fallback-url" + must + "ftp://x/t.m4a"),
                (["status", "t", "-b", "ftp://127.0.0.1/"],
                 "the backend URL" + must + "ftp://127.0.0.1/")):
            r = self.segdl(*args)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(r.stderr.splitlines(), ["segdl: " + first, "Try 'segdl --help'."])

    def test_bad_ids_are_usage_errors(self):
        # An empty id, or one with a control character or not UTF-8, is a
        # usage error naming the id, before any request, output or folder.
        srv = self.serve(self.root)
        dl = os.path.join(self.tmp, "dl")
        cases = ((["--", ""], "VIDEO_ID is empty"),
                 (["t", "--", ""], "VIDEO_ID is empty"),
                 (["status", ""], "VIDEO_ID is empty"),
                 (["a\nb"], 'VIDEO_ID "a\\nb" has a control character'),
                 (["a\x7fb"], 'VIDEO_ID "a\\177b" has a control character'),
                 ([b"a\xffb"], 'VIDEO_ID "a\\377b" is not UTF-8 text'))
        for ids, text in cases:
            r = clitest.run([os.fsencode(clitest.SEGDL), b"-b", srv.url.encode(), b"-d",
                             dl.encode()] + [i if isinstance(i, bytes) else i.encode()
                                             for i in ids], cwd=self.tmp, text=False)
            err = r.stderr.decode("utf-8", "replace")
            self.assertEqual(r.returncode, 2, err)
            self.assertEqual(err.splitlines(), ["segdl: " + text, "Try 'segdl --help'."])
            self.assertEqual(r.stdout, b"")
            self.assertFalse(os.path.exists(dl), ids)

    def test_missing_element_is_1(self):
        # A copy of segdl with no plugin beside it (the build tree's finds its own).
        lone = os.path.join(self.tmp, "bin")
        os.makedirs(lone)
        shutil.copy2(clitest.SEGDL, lone)
        env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(self.tmp, "none"),
                   GST_REGISTRY=os.path.join(self.tmp, "registry.bin"))
        r = clitest.run([os.path.join(lone, os.path.basename(clitest.SEGDL)), "t", "-b",
                         "http://127.0.0.1:9", "-d", "dl"], env=env, cwd=self.tmp)
        self.one_line_error(r, 1, "segdlsrc element is not installed")

    def test_backend_unreachable_is_3(self):
        srv = self.serve(self.root)
        url = srv.url
        srv.stop()  # nothing listens there any more
        r = self.segdl("t", "-b", url, "-d", "dl", "--max-retries", "0")
        self.one_line_error(r, 3, "t: ")

    def test_unknown_track_is_3(self):
        # One line says it: the id is unknown to the backend (its status
        # answered 404), for a download and for `segdl status`.
        srv = self.serve(self.root)
        text = (f'nosuchtrack: unknown id: the backend has no track "nosuchtrack" (HTTP 404 for '
                f'{srv.url}/status?v=nosuchtrack)')
        for args in (["nosuchtrack", "-d", "dl"], ["nosuchtrack", "-d", "dl", "--json"],
                     ["status", "nosuchtrack"]):
            r = self.segdl(*args, "-b", srv.url)
            self.one_line_error(r, 3, text)
            self.assertEqual([l for l in r.stderr.splitlines() if "404" in l],
                             ["segdl: " + text], r.stderr)

    def test_nothing_left_behind_when_nothing_came(self):
        # Ids the backend does not know (one a path of dots and slashes): no
        # track folder, no .lock, and no download dir this run made. A
        # track with a segment in the cache keeps its folder.
        srv = self.serve(self.root)
        dl = os.path.join(self.tmp, "dl")
        for ids in (["nosuch"], ["../../x", "nosuch"]):
            r = self.segdl(*ids, "-b", srv.url, "-d", dl)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertFalse(os.path.exists(dl), os.listdir(dl) if os.path.isdir(dl) else dl)
        os.makedirs(dl)
        r = self.segdl("nosuch", "-b", srv.url, "-d", dl)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(os.listdir(dl), [])  # the dir was there before: it stays
        r = self.segdl("t", "nosuch", "-b", srv.url, "-d", dl)
        self.assertEqual(r.returncode, 3, r.stderr)
        (track,) = clitest.cache_track_dirs(dl)
        self.assertIn("seg_3.bin", os.listdir(track))
        self.assertEqual(os.listdir(dl), [os.path.basename(track)])

    def test_max_wait_is_4(self):
        srv = self.serve(self.root, "--reveal-every", "60")
        out = os.path.join(self.tmp, "t.m4a")
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--max-wait", "1", "--combine", out)
        self.one_line_error(r, 4, "max-wait")
        self.assertFalse(os.path.exists(out))
        self.assertFalse(os.path.exists(out + ".part"))

    def test_segment_gone_for_good_is_4(self):
        srv = self.serve(self.root, "--fault", "http500:t:2:-1")
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--max-retries", "0")
        self.one_line_error(r, 4, "segment 2")

    def test_gap_is_4(self):
        srv = self.serve(self.root, "--fault", "http500:t:2:-1")
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--max-retries", "0", "--missing-segment",
                       "gap", "--json")
        self.assertEqual(r.returncode, 4, r.stderr)
        done = [e for e in clitest.events(r.stdout) if e["event"] == "done"][0]
        self.assertEqual(done["gaps"], 1)
        self.assertFalse(done["complete"])
        self.assertIn("t: 1 segment missing, left out", r.stderr)

    def test_unwritable_output_is_5(self):
        blocker = os.path.join(self.tmp, "file")
        open(blocker, "w").close()
        srv = self.serve(self.root)
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--combine", os.path.join(blocker, "o.m4a"))
        self.one_line_error(r, 5, "cannot write")
        r = self.segdl("t", "-b", srv.url, "-d", os.path.join(blocker, "dl"))
        self.one_line_error(r, 5, "download dir")

    def test_write_failure_names_the_file_and_the_cause(self):
        # A file-size limit (ulimit -f) between the largest segment and the
        # joined file: the output's writes fail (EFBIG, as a full disk gives
        # ENOSPC), not the download dir's. One line names OUT and the OS's
        # cause; exit 5; neither OUT nor OUT.part is left (docs/segdl.1.md).
        segs = glob.glob(os.path.join(self.root, "t", "seg_*"))
        largest = max(os.path.getsize(f) for f in segs)
        joined = sum(os.path.getsize(f) for f in segs)
        blocks = (largest + 8192) // 512  # ulimit -f counts 512-byte blocks
        self.assertLess(blocks * 512 + 8192, joined, "the fixture is too small for the limit")
        srv = self.serve(self.root)
        out = os.path.join(self.tmp, "t.m4a")
        r = clitest.run(["sh", "-c", 'ulimit -f "$0" && exec "$@"', str(blocks), clitest.SEGDL,
                         "t", "-b", srv.url, "-d", "dl", "--combine", out], cwd=self.tmp)
        self.one_line_error(r, 5, f"t: cannot write {out}: File too large ({out}.part removed)")
        self.assertFalse(os.path.exists(out))
        self.assertFalse(os.path.exists(out + ".part"))
        self.assertEqual(temp_files(os.path.join(self.tmp, "dl")), [])

    def test_not_audio_is_6(self):
        track = os.path.join(self.tmp, "bad", "junk")
        os.makedirs(track)
        for n in range(2):
            with open(os.path.join(track, f"seg_{n}.m4a"), "wb") as f:
                f.write(bytes((i * 7919 + n) % 251 for i in range(50000)))
        srv = self.serve(os.path.join(self.tmp, "bad"))
        r = self.segdl("junk", "-b", srv.url, "-d", "dl", "--combine", "auto")
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertEqual(glob.glob(os.path.join(self.tmp, "junk*")), [])

    def test_ctrl_c_then_rerun_from_the_cache(self):
        srv = self.serve(self.root, "--reveal-every", "1.5")
        out = os.path.join(self.tmp, "t.m4a")
        dl = os.path.join(self.tmp, "dl")
        args = ["t", "-b", srv.url, "-d", dl, "--json", "--poll-interval", "0.2", "--combine", out]
        p = Segdl(args, cwd=self.tmp)
        p.wait_event("segment")
        p.proc.send_signal(signal.SIGINT)
        rc, err = p.finish()
        self.assertEqual(rc, 130, err)
        self.assertIn("interrupted", err)
        evs = clitest.events("".join(p.out))
        self.assertEqual(evs[-1]["event"], "interrupted")
        self.assertFalse(os.path.exists(out))
        self.assertFalse(os.path.exists(out + ".part"))
        self.assertEqual(temp_files(dl), [])
        (track,) = clitest.cache_track_dirs(dl)
        held = len(glob.glob(os.path.join(track, "seg_*.bin")))
        self.assertGreaterEqual(held, 1)
        self.assertLess(held, 4)
        r = self.segdl(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        done = clitest.events(r.stdout)[-1]
        self.assertTrue(done["complete"])
        self.assertGreaterEqual(done["cache_hits"], held)
        whole = os.path.join(self.root, ".src-t", "whole.m4a")
        facts = clitest.analyse([out, whole])
        self.assertEqual(facts[out][0], facts[whole][0])

    def test_sigterm_is_143(self):
        srv = self.serve(self.root, "--reveal-every", "60")
        p = Segdl(["t", "-b", srv.url, "-d", "dl", "--json"], cwd=self.tmp)
        p.wait_event("state")
        p.proc.send_signal(signal.SIGTERM)
        rc, err = p.finish()
        self.assertEqual(rc, 143, err)


if __name__ == "__main__":
    clitest.main()
