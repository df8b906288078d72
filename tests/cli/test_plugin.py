# SPDX-License-Identifier: LGPL-2.1-or-later
"""segdl finds segdlsrc without GST_PLUGIN_PATH: beside itself in a build
tree, in its own prefix once installed (wherever that prefix is moved), the
registry's copy first when there is one, and a clear error when none."""
import os
import shutil
import tempfile

import clitest
from clitest import CliTestCase

PLUGIN = os.environ.get("SEGDL_PLUGIN_FILE", "")
MODULE = os.environ.get("SEGDL_MODULE_FILE", "")
PLUGINDIR = os.environ.get("SEGDL_PLUGINDIR_REL", "")  # LIBDIR/gstreamer-1.0
MODULEDIR = os.environ.get("SEGDL_MODULEDIR_REL", "")  # LIBDIR/segdl
BINDIR = os.environ.get("SEGDL_BINDIR_REL", "")
CORE_HOST = os.environ.get("SEGDL_CORE_HOST", "")


class FindPlugin(CliTestCase):
    @classmethod
    def setUpClass(cls):
        # Registries of this suite alone, kept between its tests: a new one
        # costs a scan of every GStreamer plugin.
        cls.registries = tempfile.mkdtemp(prefix="segdl-cli-registry-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.registries, ignore_errors=True)

    def setUp(self):
        super().setUp()
        if not (PLUGIN and MODULE and PLUGINDIR and MODULEDIR and BINDIR):
            self.skipTest("SEGDL_PLUGIN_FILE ... not set (run through meson test)")
        clitest.need_tools(self, "ffmpeg")
        self.root = os.path.join(self.tmp, "srv")
        self.whole = clitest.make_form(self.root, "t", "aac-adts")
        self.runs = 0

    def env(self, plugin_path=None):
        """No GST_PLUGIN_PATH (unless given) nor SEGDL_MODULE_DIR, a registry
        that never held segdlsrc (one of its own for a GST_PLUGIN_PATH)."""
        env = dict(os.environ)
        for name in ("GST_PLUGIN_PATH", "GST_PLUGIN_PATH_1_0", "SEGDL_MODULE_DIR"):
            env.pop(name, None)
        name = "system.bin"
        if plugin_path:
            env["GST_PLUGIN_PATH"] = plugin_path
            name = f"{self.id()}.bin"
        env["GST_REGISTRY"] = os.path.join(self.registries, name)
        self.runs += 1
        return env

    def plugin_file(self, exe, env):
        r = clitest.run([exe, "--version"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l for l in r.stdout.splitlines() if l.startswith("segdlsrc: ")]
        self.assertEqual(len(lines), 1, r.stdout)
        return lines[0][len("segdlsrc: "):]

    def download(self, exe, env):
        """Downloads and joins t with `exe`: complete, the packets of the encode."""
        srv = self.serve(self.root)
        out = os.path.join(self.tmp, f"t-{self.runs}.m4a")
        r = clitest.run([exe, "t", "-b", srv.url, "-d", os.path.join(self.tmp, "dl"), "--json",
                         "--combine", out], env=env, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(clitest.events(r.stdout)[-1]["complete"])
        facts = clitest.analyse([out, self.whole])
        self.assertEqual(facts[out][0], facts[self.whole][0])

    def install(self, prefix, plugin=True, module=True):
        """segdl, the plugin and its module in the layout `meson install` makes."""
        for rel, src, wanted in ((BINDIR, clitest.SEGDL, True), (PLUGINDIR, PLUGIN, plugin),
                                 (MODULEDIR, MODULE, module)):
            os.makedirs(os.path.join(prefix, rel), exist_ok=True)
            if wanted:
                shutil.copy2(src, os.path.join(prefix, rel))
        return os.path.join(prefix, BINDIR, os.path.basename(clitest.SEGDL))

    def test_build_tree_without_gst_plugin_path(self):
        env = self.env()
        self.assertEqual(self.plugin_file(clitest.SEGDL, env), os.path.realpath(PLUGIN))
        self.download(clitest.SEGDL, self.env())

    def test_installed_prefix_moved_elsewhere(self):
        exe = self.install(os.path.join(self.tmp, "moved", "prefix"))
        want = os.path.join(self.tmp, "moved", "prefix", PLUGINDIR, os.path.basename(PLUGIN))
        self.assertEqual(self.plugin_file(exe, self.env()), os.path.realpath(want))
        self.download(exe, self.env())

    def test_the_registry_copy_comes_first(self):
        # GST_PLUGIN_PATH names another copy: that one is used, the one beside
        # the build tree's segdl is not loaded as well.
        prefix = os.path.join(self.tmp, "other")
        self.install(prefix)
        other = os.path.join(prefix, PLUGINDIR)
        self.assertEqual(self.plugin_file(clitest.SEGDL, self.env(other)),
                         os.path.join(other, os.path.basename(PLUGIN)))
        self.download(clitest.SEGDL, self.env(other))

    def test_a_program_linking_the_core_cannot_take_over_the_module_lookup(self):
        # core_host links the core and exports its symbols (as segdl does);
        # copied where no module is beside it, it plays segdlsrc from the
        # build tree's plugin: the plugin looks beside itself, with its own
        # copy of the lookup, not with the program's.
        if not CORE_HOST:
            self.skipTest("SEGDL_CORE_HOST not set (run through meson test)")
        bindir = os.path.join(self.tmp, "elsewhere", "bin")
        os.makedirs(bindir)
        host = shutil.copy2(CORE_HOST, bindir)
        srv = self.serve(self.root)
        env = self.env(os.path.dirname(PLUGIN))
        r = clitest.run([host, srv.url, "t"], env=env, cwd=self.tmp)
        own = [l[len("own dir: "):] for l in r.stdout.splitlines() if l.startswith("own dir: ")]
        # The program's own copy looks beside the program first.
        self.assertEqual(own[0], os.path.realpath(os.path.join(self.tmp, "elsewhere", "segdl")))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("EOS", r.stdout.splitlines())

    def test_the_core_is_not_exported(self):
        # The core is built with hidden visibility and segdl too (gmodule
        # links it with --export-dynamic): neither the plugin, nor segdl,
        # nor any program linking the core exports a segdl:: function, so
        # none can take over another's copy (what core_host above guards).
        clitest.need_tools(self, "nm")
        for path in (PLUGIN, clitest.SEGDL, CORE_HOST):
            if not path:
                continue
            r = clitest.run(["nm", "-D", "--defined-only", "-C", path])
            self.assertEqual(r.returncode, 0, r.stderr)
            ours = [l for l in r.stdout.splitlines() if l.split(" ", 2)[-1].startswith("segdl::")]
            self.assertEqual(ours, [], path)
        r = clitest.run(["nm", "-D", "--defined-only", PLUGIN])
        self.assertIn("gst_plugin_segdl_get_desc", r.stdout)

    def test_no_plugin_anywhere_is_1(self):
        prefix = os.path.join(self.tmp, "bare")
        exe = self.install(prefix, plugin=False, module=False)
        self.assertEqual(self.plugin_file(exe, self.env()), "not found")
        r = clitest.run([exe, "t", "-b", "http://127.0.0.1:9", "-d", "dl"], env=self.env(),
                        cwd=self.tmp)
        self.assertEqual(r.returncode, 1, r.stderr)
        errors = [l for l in r.stderr.splitlines() if l.startswith("segdl:")]
        self.assertEqual(len(errors), 1, r.stderr)
        self.assertIn("segdlsrc element is not installed", errors[0])
        want = os.path.realpath(os.path.join(prefix, PLUGINDIR, os.path.basename(PLUGIN)))
        self.assertIn(want, errors[0])


if __name__ == "__main__":
    clitest.main()
