# SPDX-License-Identifier: LGPL-2.1-or-later
"""An old tools' download dir reused; status, preload and cache subcommands."""
import glob
import hashlib
import json
import os
import re
import shutil

import clitest
from clitest import CliTestCase


def digest_tree(path):
    out = {}
    for f in sorted(glob.glob(os.path.join(path, "*"))):
        out[os.path.basename(f)] = hashlib.sha256(clitest.read_bytes(f)).hexdigest()
    return out


class Migrate(CliTestCase):
    def setUp(self):
        super().setUp()
        clitest.need_tools(self, "ffmpeg")
        self.root = os.path.join(self.tmp, "srv")
        self.whole = clitest.make_form(self.root, "t", "aac-m4a")

    def old_dir(self, damaged):
        """DIR/t/segment_N.m4a as the old tools wrote them, one cut short."""
        dl = os.path.join(self.tmp, "downloads")
        old = os.path.join(dl, "t")
        os.makedirs(old)
        for n in range(4):
            data = clitest.read_bytes(os.path.join(self.root, "t", f"seg_{n}.m4a"))
            if n == damaged:
                data = data[: len(data) * 6 // 10]  # a killed download: no moov
            with open(os.path.join(old, f"segment_{n}.m4a"), "wb") as f:
                f.write(data)
        return dl, old

    def test_old_dir_reused_damaged_file_downloaded_again(self):
        dl, old = self.old_dir(damaged=1)
        before = digest_tree(old)
        # Every segment but the damaged one fails on the backend: they must
        # come from the old files, and segment 1 from the network.
        srv = self.serve(self.root, "--fault", "http500:t:0:-1", "--fault", "http500:t:2:-1",
                         "--fault", "http500:t:3:-1")
        out = os.path.join(self.tmp, "t.m4a")
        r = self.segdl("t", "-b", srv.url, "--max-retries", "0", "--json", "--combine", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        evs = clitest.events(r.stdout)
        info = [e["message"] for e in evs if e["event"] == "info"]
        self.assertEqual(len(info), 1, evs)
        self.assertIn("reused 3 of 4 segment files", info[0])
        self.assertIn("segment_1.m4a", info[0])
        done = evs[-1]
        self.assertTrue(done["complete"])
        self.assertEqual(done["cache_hits"], 3)
        facts = clitest.analyse([out, self.whole])
        self.assertEqual(facts[out][0], facts[self.whole][0])
        self.assertEqual(digest_tree(old), before, "the old files were changed")
        # The cache now holds all four: a rerun needs nothing from the old dir.
        r = self.segdl("t", "-b", srv.url, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([e for e in clitest.events(r.stdout) if e["event"] == "info"], [])
        self.assertEqual(clitest.events(r.stdout)[-1]["cache_hits"], 4)

    def test_cache_info_and_clean_leave_old_files(self):
        dl, old = self.old_dir(damaged=-1)
        before = digest_tree(old)
        srv = self.serve(self.root)
        r = self.segdl("preload", "t", "-b", srv.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.segdl("cache", "info", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        info = json.loads(r.stdout)
        (track,) = info["tracks"]
        self.assertEqual((track["segments"], track["segments_total"], track["complete"]),
                         (4, 4, True))
        self.assertGreater(track["bytes"], sum(os.path.getsize(os.path.join(old, f))
                                               for f in os.listdir(old)) - 1)
        r = self.segdl("cache", "info", "t")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"4/4 .* yes")
        self.assertRegex(r.stdout, r"\n1 track, ")  # one, not "1 track(s)"
        self.assertEqual(self.segdl("cache", "info", "other").returncode, 1)
        # Recent: not older than a day, and under a big limit: nothing goes.
        r = self.segdl("cache", "clean", "--older-than", "1d", "--max-size", "1G", "--json")
        self.assertEqual(json.loads(r.stdout)["removed_tracks"], 0)
        r = self.segdl("cache", "clean", "--max-size", "1k")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("removed 1 track: ", r.stdout)
        self.assertEqual(clitest.cache_track_dirs(dl), [])
        self.assertEqual(digest_tree(old), before, "cache clean touched the old files")

    def test_status(self):
        srv = self.serve(self.root, "--reveal-every", "60")
        r = self.segdl("status", "t", "-b", srv.url, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual((st["id"], st["ready"], st["total_segments"]), ("t", [0], 4))
        # What this (bare) status does not say is null, the type included.
        self.assertEqual((st["duration"], st["mime_type"]), (None, None))
        r = self.segdl("status", "t", "-b", srv.url)
        self.assertIn("ready:    0 (1 segments)", r.stdout)
        self.assertIn("total:    4", r.stdout)
        r = self.segdl("status", "nosuch", "-b", srv.url)
        self.assertEqual(r.returncode, 3)
        self.assertIn("HTTP 404", r.stderr)
        rich = self.serve(self.root, "--status-style", "rich")
        r = self.segdl("status", "t", "-b", rich.url, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["mime_type"], "audio/mp4")

    def test_help(self):
        r = self.segdl("--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("--backend-url", "--download-dir", "--concurrent", "--poll-interval",
                    "--max-retries", "--max-wait", "--no-monitor", "--verbose", "--quiet",
                    "--combine", "--fallback-url", "--user-agent", "--play", "--json", "--batch",
                    "Exit status"):
            self.assertIn(opt, r.stdout)
        for cmd in ("download", "preload", "status", "cache"):
            r = self.segdl("help", cmd)
            self.assertEqual(r.returncode, 0, cmd)
            self.assertIn("segdl", r.stdout)
        self.assertEqual(self.segdl("help", "nothing").returncode, 2)

    def test_man_page_installed_with_every_option(self):
        # `meson install` puts segdl in BINDIR and segdl.1 in MANDIR/man1
        # (meson's own install plan of this build), and the page names
        # every option --help lists.
        build = os.path.dirname(os.path.dirname(os.path.dirname(clitest.SEGDL)))
        plan = os.path.join(build, "meson-info", "intro-installed.json")
        if not os.path.exists(plan):
            self.skipTest("no meson-info in " + build)
        with open(plan) as f:
            installed = json.load(f)
        man = os.path.join(os.path.dirname(clitest.SEGDL), "segdl.1")
        self.assertTrue(installed.get(man, "").endswith("/man1/segdl.1"), installed.get(man))
        self.assertTrue(installed.get(clitest.SEGDL, "").endswith("/bin/segdl"))
        with open(man) as f:
            page = f.read()
        self.assertIn(".TH SEGDL 1", page.upper())
        options = set(re.findall(r"^\s+(?:-\w, )?(--[a-z-]+)", self.segdl("--help").stdout, re.M))
        options -= {"--help", "--help-all", "--help-gst"}
        self.assertGreaterEqual(len(options), 20)
        # roff escapes '-' as '\-'.
        missing = [o for o in sorted(options) if o.replace("-", "\\-") not in page and o not in page]
        self.assertEqual(missing, [])


if __name__ == "__main__":
    clitest.main()
