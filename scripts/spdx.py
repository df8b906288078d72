#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every source file carries an SPDX licence line (LGPL-2.1-or-later).

    scripts/spdx.py --check   list the files without one; exit 1 if any
    scripts/spdx.py --add     add the line where it is missing

Source files are the tracked C/C++, Python, shell, meson, JavaScript and
HTML files (git ls-files); data, docs and fuzz corpora are not sources.
"""
import subprocess
import sys

TAG = "SPDX-License-Identifier: LGPL-2.1-or-later"
COMMENTS = {
    ".c": "// {}", ".cpp": "// {}", ".h": "// {}",
    ".py": "# {}", ".sh": "# {}", ".js": "// {}", ".mjs": "// {}",
    ".html": "<!-- {} -->", ".css": "/* {} */",
}


def style(path):
    name = path.rsplit("/", 1)[-1]
    if name in ("meson.build", "meson_options.txt"):
        return "# {}"
    if name == "run" and path.startswith(".ci/"):
        return "# {}"
    for ext, fmt in COMMENTS.items():
        if name.endswith(ext):
            return fmt
    return None


def sources():
    out = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout
    for path in out.splitlines():
        if "/corpus/" in path or "node_modules/" in path:
            continue
        fmt = style(path)
        if fmt:
            yield path, fmt


def add(path, fmt):
    text = open(path, encoding="utf-8").read()
    line = fmt.format(TAG) + "\n"
    if text.startswith("#!"):  # after the shebang
        first, _, rest = text.partition("\n")
        text = first + "\n" + line + rest
    elif text.lstrip().lower().startswith("<!doctype"):
        first, _, rest = text.partition("\n")
        text = first + "\n" + line + rest
    else:
        text = line + text
    open(path, "w", encoding="utf-8").write(text)


def main(argv):
    mode = argv[1] if len(argv) > 1 else "--check"
    missing = [(p, f) for p, f in sources() if TAG not in open(p, encoding="utf-8").read(2000)]
    if mode == "--add":
        for p, f in missing:
            add(p, f)
        print(f"added the SPDX line to {len(missing)} files")
        return 0
    for p, _ in missing:
        print(f"not ok - {p} has no '{TAG}' line")
    total = sum(1 for _ in sources())
    print(f"{total - len(missing)} of {total} source files carry the SPDX line")
    print("1 passed, 0 failed" if not missing else "0 passed, 1 failed")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
