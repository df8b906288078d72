#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The README's property table is true to the element.

Every property segdlsrc defines (not the ones GstBaseSrc gives it) has a row
in README.md's "Properties" table, every row names a real property, and the
default the row states equals the default the code declares (read through
GObject introspection of the built plugin). Prints "N passed, N failed".
Run with the system Python (Debian's python3-gst-1.0):
    test_docs.py README.md VERSION
It also checks what gst-inspect-1.0 shows of the plugin: licence LGPL (the
COPYING file) and the project's version.
"""
import re
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GObject, Gst  # noqa: E402

INHERITED = {"name", "parent", "blocksize", "num-buffers", "typefind",
             "do-timestamp", "automatic-eos"}
SIZES = {"KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


def readme_rows(path):
    """{property: default text} from the README's Properties table."""
    rows = {}
    in_table = False
    for line in open(path, encoding="utf-8"):
        if line.startswith("### Properties"):
            in_table = True
            continue
        if in_table and line.startswith("#"):
            break
        m = re.match(r"\| `([a-z0-9-]+)` \| ([^|]+) \|", line)
        if in_table and m:
            kind = m.group(2).strip()
            rows[m.group(1)] = kind.rsplit(",", 1)[-1].strip() if "," in kind else kind
    return rows


def documented_value(text, pspec):
    """The README's default text as a value comparable with the code's."""
    text = text.strip("` ")
    if text in ("none", "required"):
        return None
    if text in ("true", "false"):
        return text == "true"
    m = re.fullmatch(r"(-?[0-9.]+)\s*(KiB|MiB|GiB)?", text)
    if m:
        n = float(m.group(1)) * SIZES.get(m.group(2), 1)
        return n
    return text


def code_value(element, pspec):
    """The code's default, in the README's terms."""
    v = pspec.default_value
    if GObject.type_is_a(pspec.value_type, GObject.TYPE_ENUM):
        # A new element holds the default; its value knows its nick.
        return element.get_property(pspec.name).value_nick
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if v in (None, ""):
        return None
    return v


def main(argv):
    Gst.init(None)
    element = Gst.ElementFactory.make("segdlsrc", None)
    if element is None:
        print("not ok - segdlsrc not found (GST_PLUGIN_PATH?)")
        print("0 passed, 1 failed")
        return 1
    rows = readme_rows(argv[1])
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(("ok - " if ok else "not ok - ") + what)
        if ok:
            passed += 1
        else:
            failed += 1

    plugin = Gst.Registry.get().find_plugin("segdl")
    check(plugin is not None and plugin.get_license() == "LGPL",
          "plugin licence is LGPL (COPYING: LGPL-2.1-or-later)")
    check(plugin is not None and plugin.get_version() == argv[2],
          f"plugin version is the project's ({argv[2]})")
    specs = {p.name: p for p in element.list_properties() if p.name not in INHERITED}
    check(len(rows) > 0, f"the README has a property table ({len(rows)} rows)")
    for name in sorted(set(specs) | set(rows)):
        if name not in rows:
            check(False, f"property {name} has no README row")
            continue
        if name not in specs:
            check(False, f"README row {name} names no property of segdlsrc")
            continue
        spec = specs[name]
        if not spec.flags & GObject.ParamFlags.WRITABLE:
            check(rows[name] == "read-only", f"{name}: documented read-only")
            continue
        doc = documented_value(rows[name], spec)
        code = code_value(element, spec)
        if isinstance(code, str) and isinstance(doc, str) and doc.endswith("VERSION"):
            ok = code.startswith(doc[:-len("VERSION")])
        else:
            ok = doc == code
        check(ok, f"{name}: README default {rows[name]!r} = code default {code!r}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
