#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Turns docs/segdl.1.md (a small subset of Markdown) into a roff man page.

Subset: '# name(N) -- summary', '## SECTION', paragraphs, '* term:' items
with indented text, 4-space indented literal blocks, `code` spans.
Usage: md2man.py IN.md OUT.N VERSION
"""
import re
import sys


def inline(text):
    text = text.replace("\\", "\\e")
    text = re.sub(r"`([^`]*)`", r"\\fB\1\\fR", text)
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def convert(lines, version):
    out = []
    section = ""
    in_code = False
    for raw in lines:
        line = raw.rstrip("\n")
        if line.startswith("    ") and (in_code or not line.strip().startswith(("*",))) and \
                (in_code or (out and out[-1] in (".PP", ".RS"))):
            if not in_code:
                out += [".RS", ".nf"]
                in_code = True
            out.append(inline(line[4:]))
            continue
        if in_code and line.strip():
            out += [".fi", ".RE"]
            in_code = False
        m = re.match(r"^# (\S+)\((\d)\) -- (.*)$", line)
        if m:
            name, num, summary = m.groups()
            out.append(f'.TH {name.upper()} {num} "" "segdl {version}" "User Commands"')
            out += [".SH NAME", f"{name} \\- {inline(summary)}"]
            continue
        if line.startswith("## "):
            section = line[3:].strip()
            out.append(f".SH {section}")
            continue
        m = re.match(r"^\* (.*?):(?:\s+(.*))?$", line)
        if m:
            out += [".TP", inline(m.group(1))]
            if m.group(2):
                out.append(inline(m.group(2)))
            continue
        if not line.strip():
            if in_code:
                out.append("")
            elif out and out[-1] != ".PP" and not out[-1].startswith((".SH", ".TP")):
                out.append(".PP")
            continue
        out.append(inline(line.strip()))
        if section == "SYNOPSIS":
            out.append(".br")
    if in_code:
        out += [".fi", ".RE"]
    return "\n".join(out) + "\n"


def main():
    src, dst, version = sys.argv[1:4]
    with open(src, encoding="utf-8") as f:
        text = convert(f.readlines(), version)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
