# SPDX-License-Identifier: LGPL-2.1-or-later
"""segdl --combine: every container that fits each segment form.

The output must hold the packets of the original encode, byte for byte and
in order (ffmpeg framemd5 of both, no decoding), and play to its duration.
"""
import concurrent.futures
import glob
import os
import re
import signal

import clitest
from clitest import CliTestCase

# form -> containers it must go into (all the ones segdl writes that can hold the codec)
FITS = {
    "aac-m4a": ["m4a", "mp4", "mka", "aac"],
    "aac-adts": ["m4a", "mka", "aac"],
    "aac-ts": ["m4a", "mka", "aac"],
    "aac-mka": ["m4a", "mka", "aac"],
    "aac-fmp4": ["m4a", "mp4", "mka", "aac"],
    "mp3": ["mp3", "mka", "m4a"],
    "opus-webm": ["opus", "ogg", "webm", "mka"],
    "opus-ogg": ["opus", "ogg", "webm", "mka"],
    "vorbis-ogg": ["ogg", "webm", "mka"],
}
# Extensions that cannot hold the codec: a usage error, no file left.
# Opus in MP4: GStreamer 1.22's mp4mux writes a file ffmpeg plays short
# (docs/element.md), so segdl neither writes nor suggests it.
IMPOSSIBLE = {"aac-m4a": ["opus", "mp3", "webm"], "mp3": ["aac", "ogg"],
              "vorbis-ogg": ["m4a", "opus", "mp3"], "opus-webm": ["m4a", "mp4"],
              "opus-ogg": ["m4b"]}
# What the refusal suggests for the codec (kContainers' order).
SUGGESTED = {"opus-webm": ".mka, .mkv, .webm, .ogg, .oga, .opus",
             "opus-ogg": ".mka, .mkv, .webm, .ogg, .oga, .opus",
             "vorbis-ogg": ".mka, .mkv, .webm, .ogg, .oga"}
# Containers with a duration in their header (the others: packets only).
HAS_DURATION = {"m4a", "mp4", "mka", "webm", "ogg", "opus"}


class CombineCase(CliTestCase):
    """Shared by the two classes below (each its own meson suite, run in parallel)."""

    def setUp(self):
        super().setUp()
        clitest.need_tools(self, "ffmpeg")
        self.root = os.path.join(self.tmp, "srv")

    def check_outputs(self, pairs):
        """pairs: [(output, whole, label)]: packets equal, same duration."""
        for out, _, label in pairs:
            self.assertTrue(os.path.exists(out), f"{label}: no output")
            self.assertFalse(os.path.exists(out + ".part"), f"{label}: .part left")
        facts = clitest.analyse([p for out, whole, _ in pairs for p in (out, whole)])
        for out, whole, label in pairs:
            with self.subTest(label):
                (got, got_s), (want, want_s) = facts[out], facts[whole]
                self.assertEqual(len(got), len(want), f"{label}: packet count")
                self.assertEqual(got, want, f"{label}: packets differ from the original encode")
                if os.path.splitext(out)[1][1:] in HAS_DURATION:
                    self.assertIsNotNone(got_s, f"{label}: no duration in the header")
                    self.assertAlmostEqual(got_s, want_s, delta=0.1, msg=f"{label}: duration")


class Containers(CombineCase):
    def test_every_container_of_every_form(self):
        whole = {form: clitest.make_form(self.root, form, form) for form in FITS}
        srv = self.serve(self.root)
        # Round-robin over the forms: the two running at once are different tracks.
        jobs = [(form, exts[i]) for i in range(max(map(len, FITS.values())))
                for form, exts in FITS.items() if i < len(exts)]

        def combine(job):
            form, ext = job
            out = os.path.join(self.tmp, f"{form}.{ext}")
            return out, self.segdl(form, "-b", srv.url, "-d", os.path.join(self.tmp, "dl"),
                                   "--combine", out, "--quiet")

        # Two at a time: each segdl mostly waits for its segments or the disk.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(combine, jobs))
        for (form, ext), (out, r) in zip(jobs, results):
            self.assertEqual(r.returncode, 0, f"{form} -> .{ext}: {r.stderr}")
        self.check_outputs([(out, whole[form], f"{form} -> .{ext}")
                            for (form, ext), (out, _) in zip(jobs, results)])


class Checks(CombineCase):
    def test_impossible_pairing_is_a_usage_error(self):
        for form in IMPOSSIBLE:
            clitest.make_form(self.root, form, form)
        srv = self.serve(self.root)
        for form, exts in IMPOSSIBLE.items():
            for ext in exts:
                with self.subTest(form=form, ext=ext):
                    out = os.path.join(self.tmp, f"bad.{ext}")
                    r = self.segdl(form, "-b", srv.url, "-d", os.path.join(self.tmp, "dl"),
                                   "--combine", out)
                    self.assertEqual(r.returncode, 2, r.stderr)
                    self.assertIn(f"cannot hold", r.stderr)
                    errors = [l for l in r.stderr.splitlines() if l.startswith("segdl:")]
                    self.assertEqual(len(errors), 1, r.stderr)
                    if form in SUGGESTED:
                        self.assertTrue(errors[0].endswith(f"(it fits in {SUGGESTED[form]})"),
                                        errors[0])
                    self.assertFalse(os.path.exists(out))
                    self.assertFalse(os.path.exists(out + ".part"))

    def test_unknown_extension_fails_before_any_download(self):
        clitest.make_form(self.root, "t", "aac-m4a")
        srv = self.serve(self.root)
        dl = os.path.join(self.tmp, "dl")
        r = self.segdl("t", "-b", srv.url, "-d", dl, "--combine", os.path.join(self.tmp, "x.wav"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown output extension .wav", r.stderr)
        self.assertEqual(clitest.cache_track_dirs(dl), [], "something was downloaded")

    def test_impossible_pairing_refused_before_any_download_with_a_rich_status(self):
        # The rich status gives mime_type (audio/aac for ADTS segments).
        clitest.make_form(self.root, "t", "aac-adts")
        srv = self.serve(self.root, "--status-style", "rich")
        dl = os.path.join(self.tmp, "dl")
        out = os.path.join(self.tmp, "t.opus")
        r = self.segdl("t", "-b", srv.url, "-d", dl, "--combine", out, "--json")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot hold AAC audio", r.stderr)
        self.assertEqual(clitest.cache_track_dirs(dl), [], "a segment was downloaded")
        self.assertNotIn("segment", [e["event"] for e in clitest.events(r.stdout)])
        self.assertFalse(os.path.exists(out) or os.path.exists(out + ".part"))

    def refuse_then_rerun(self, form, *server_args):
        """--combine into .opus with a bare status: exit 2 after segment 0;
        returns the segments whole in the download dir at that point, after
        checking that a rerun into .m4a takes them from there."""
        root = os.path.join(self.tmp, "srv-" + form)
        whole = clitest.make_form(root, "t", form)
        srv = self.serve(root, *server_args)
        dl = os.path.join(self.tmp, "dl-" + form)
        out = os.path.join(self.tmp, f"{form}.opus")
        r = self.segdl("t", "-b", srv.url, "-d", dl, "--combine", out, "--json", "--max-wait",
                       "30", "--poll-interval", "0.2")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot hold AAC audio", r.stderr)
        evs = clitest.events(r.stdout)
        self.assertNotIn("output", [e["event"] for e in evs])
        self.assertEqual(evs[-1]["event"], "error")
        self.assertFalse(os.path.exists(out) or os.path.exists(out + ".part"))
        (track,) = clitest.cache_track_dirs(dl)
        held = sorted(int(n[4:-4]) for n in os.listdir(track) if re.match(r"seg_\d+\.bin$", n))
        # Every segment reported is kept (more may land while the pipeline stops).
        reported = [e["index"] for e in evs if e["event"] == "segment"]
        self.assertIn(0, reported)
        self.assertLessEqual(set(reported), set(held))
        for n in held:
            served = glob.glob(os.path.join(root, "t", f"seg_{n}.*"))[0]
            self.assertEqual(clitest.read_bytes(os.path.join(track, f"seg_{n}.bin")),
                             clitest.read_bytes(served))
        # Into a container that fits: what was kept comes from the download dir.
        srv = self.serve(root)
        out = os.path.join(self.tmp, f"{form}.m4a")
        r = self.segdl("t", "-b", srv.url, "-d", dl, "--combine", out, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        sources = {e["index"]: e["source"] for e in clitest.events(r.stdout)
                   if e["event"] == "segment"}
        self.assertEqual(sources, {n: "cache" if n in held else "network" for n in range(4)})
        self.check_outputs([(out, whole, f"{form} -> .m4a after the refusal")])
        return held

    def test_bare_status_continuous_form_stops_after_segment_0(self):
        # A status without mime_type: segment 0's first bytes tell the codec;
        # segdl stops once segment 0 is whole in the download dir. Only
        # segment 0 is ready: a segdl waiting for more would end on
        # --max-wait (exit 4), not 2.
        self.assertEqual(self.refuse_then_rerun("aac-adts", "--reveal-every", "60"), [0])

    def test_bare_status_self_contained_form_stops_after_segment_0(self):
        # An m4a segment: the codec comes from segment 0 whole (its copy in
        # the download dir, or segdlsrc's caps, whichever is first), not
        # from segment 1, which is listed only after a minute here.
        self.assertEqual(self.refuse_then_rerun("aac-m4a", "--reveal-every", "60"), [0])

    def test_auto_name_follows_the_codec(self):
        want = {"aac-m4a": "m4a", "mp3": "mp3", "opus-webm": "opus", "vorbis-ogg": "ogg"}
        whole = {form: clitest.make_form(self.root, form, form) for form in want}
        srv = self.serve(self.root)
        ids = list(want)
        r = self.segdl(*ids, "-b", srv.url, "-d", "dl", "--combine", "auto", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        outputs = [e for e in clitest.events(r.stdout) if e["event"] == "output"]
        self.assertEqual([e["path"] for e in outputs], [f"{i}.{want[i]}" for i in ids])
        self.check_outputs([(os.path.join(self.tmp, f"{form}.{ext}"), whole[form], form)
                            for form, ext in want.items()])

    def test_auto_keeps_an_existing_file(self):
        # --combine auto names the file itself: one already there is not
        # replaced (exit 2, one line naming it) unless --overwrite is given.
        whole = clitest.make_form(self.root, "t", "aac-m4a")
        srv = self.serve(self.root)
        mine = os.path.join(self.tmp, "t.m4a")
        with open(mine, "wb") as f:
            f.write(b"not segdl's")
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--combine", "auto", "--json")
        self.assertEqual(r.returncode, 2, r.stderr)
        errors = [l for l in r.stderr.splitlines() if l.startswith("segdl:")]
        self.assertEqual(errors, ["segdl: t: --combine: t.m4a exists; give --overwrite to "
                                  "replace it"], r.stderr)
        self.assertNotIn("output", [e["event"] for e in clitest.events(r.stdout)])
        self.assertEqual(clitest.read_bytes(mine), b"not segdl's")
        self.assertFalse(os.path.exists(mine + ".part"))
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--combine", "auto", "--overwrite")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_outputs([(mine, whole, "--combine auto --overwrite")])

    def test_play_starts_before_the_download_ends(self):
        clitest.make_form(self.root, "t", "aac-adts")
        # The last segment (of 4) is listed only once segdl says it plays:
        # the server holds it until SIGUSR1, sent on the 'playing' event.
        srv = self.serve(self.root, "--hold-ready", "t:3")
        env = dict(os.environ, SEGDL_AUDIO_SINK="fakesink sync=true")
        p = clitest.Segdl(["t", "-b", srv.url, "-d", "dl", "--play", "--json", "--poll-interval",
                           "0.2"], cwd=self.tmp, env=env)
        p.wait_event("playing")
        srv.proc.send_signal(signal.SIGUSR1)
        rc, err = p.finish()
        self.assertEqual(rc, 0, err)
        evs = clitest.events("".join(p.out))
        names = [e["event"] for e in evs]
        self.assertEqual(names.count("playing"), 1, names)
        # wait_event() above failed unless segdl played with segment 3 held.
        self.assertEqual(sorted(e["index"] for e in evs if e["event"] == "segment"),
                         [0, 1, 2, 3], names)
        self.assertTrue(evs[-1]["complete"])

    def test_play_and_combine_through_a_tee(self):
        whole = clitest.make_form(self.root, "t", "aac-adts")
        srv = self.serve(self.root)
        env = dict(os.environ, SEGDL_AUDIO_SINK="fakesink sync=false")
        out = os.path.join(self.tmp, "t.m4a")
        r = self.segdl("t", "-b", srv.url, "-d", "dl", "--combine", out, "--play", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_outputs([(out, whole, "--play --combine")])


if __name__ == "__main__":
    clitest.main()
