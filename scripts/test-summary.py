#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Counts test cases in meson's testlog.json files and prints ONE line
'N passed, N failed' for all of them.

gst-check executables print 'NN%: Checks: X, Failures: Y, Errors: Z', and
script suites end with a line 'N passed, N failed': those are counted case by
case. Any other test counts as one case. A test that
crashed or timed out before printing its line counts as one failure; a
skipped test (exit 77) as skipped. Exits 1 when anything failed or nothing ran.
"""
import json
import re
import sys

CHECKS = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")
PLAIN = re.compile(r"^(\d+) passed, (\d+) failed", re.M)

passed = failed = skipped = 0
lines = []
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as f:
            lines += [json.loads(l) for l in f if l.strip()]
    except OSError as e:
        print(f"no test log: {e}")
        failed += 1

def counts(out):
    """(cases, failed cases) a test printed, or None."""
    m = CHECKS.search(out)
    if m:
        checks, failures, errors = map(int, m.groups())
        return checks, failures + errors
    plain = PLAIN.findall(out)
    if plain:
        ok, bad = map(int, plain[-1])
        return ok + bad, bad
    return None


for t in lines:
    result = t.get("result", "")
    c = counts(t.get("stdout", "") or "")
    if result == "SKIP":
        skipped += 1
    elif c and result in ("OK", "FAIL"):
        cases, bad = c
        passed += cases - bad
        failed += bad
        if result == "FAIL" and bad == 0:
            failed += 1  # failed after its checks (e.g. a leak or a crash at exit)
    elif result == "OK":
        passed += 1
    else:
        failed += 1

line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)
