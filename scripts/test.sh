#!/usr/bin/env bash
# Sets up and builds (scripts/setup.sh), runs every test suite, and ends with
# the line "N passed, N failed[, N skipped]" counting individual test cases.
# Exit status: non-zero if anything failed.
#   scripts/test.sh [BUILD_DIR] [extra meson test options...]
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
shift || true

if ! scripts/setup.sh "$BUILD_DIR"; then
  echo "setup or build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

meson test -C "$BUILD_DIR" --print-errorlogs --num-processes 2 "$@"
rc=$?
python3 scripts/test-summary.py "$BUILD_DIR/meson-logs/testlog.json"
summary_rc=$?
if [ $rc -ne 0 ] || [ $summary_rc -ne 0 ]; then exit 1; fi
exit 0
