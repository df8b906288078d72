#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Counts test cases in meson's testlog.json files and prints ONE line
'N passed, N failed' for all of them.

gst-check executables print 'NN%: Checks: X, Failures: Y, Errors: Z', and
script suites end with a line 'N passed, N failed': those are counted case by
case. Any other test counts as one case. A test that
crashed or timed out before printing its line counts as one failure; a
skipped test (exit 77) as skipped. Exits 1 when anything failed or nothing ran.

Before that line it names every test that failed, with the lines of its
output that say why (gst-check's ':F:'/':E:' lines, 'FAIL', 'Assertion',
sanitizer reports) or else its last lines, so that the end of a CI log alone
tells what failed.
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
            lines += [dict(json.loads(l), log=path) for l in f if l.strip()]
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


WHY = re.compile(r":[FE]:|FAIL|Assertion|ERROR|Error|error:|not ok|"
                 r"timed out|Timeout|Sanitizer|runtime error|CRITICAL|Traceback")
failures = []


def report(t):
    """Lines naming a failed test and why, kept short."""
    out = (t.get("stdout", "") or "").splitlines()
    why = [l for l in out if WHY.search(l)][:12] or out[-8:]
    head = (f"FAILED: {t.get('name')} ({t.get('result')}, exit "
            f"{t.get('returncode')}, {t.get('duration', 0):.1f} s; {t['log']})")
    return [head] + ["    " + l[:300] for l in why]


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
        if bad or result == "FAIL":
            failures += report(t)
    elif result == "OK":
        passed += 1
    else:
        failed += 1
        failures += report(t)

for l in failures:
    print(l)

line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)
