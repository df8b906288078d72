#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Sets up and builds (scripts/setup.sh), runs every test suite, then runs
# them all again in a second build under AddressSanitizer and
# UndefinedBehaviorSanitizer, and ends with ONE line
# "N passed, N failed[, N skipped]" counting individual test cases of both
# passes. Exit status: non-zero if anything failed.
#   scripts/test.sh [--quick] [BUILD_DIR]
#     --quick      skip the sanitizer pass
#     BUILD_DIR    default "build"; the sanitizer build goes to BUILD_DIR-asan
# Extra arguments after BUILD_DIR go to `meson test` (e.g. a suite name).
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=0
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi
BUILD_DIR=${1:-build}
shift || true

logs=()
failed=0

# The plugin is loaded in the test process itself (no plugin-scanner child),
# so that a sanitized plugin runs under the test's sanitizer runtime.
run_pass() {  # BUILD_DIR [meson setup options...]
  local dir=$1
  shift
  if ! scripts/setup.sh "$dir" "$@"; then
    echo "setup or build of $dir failed"
    failed=1
    return
  fi
  if ! meson test -C "$dir" --print-errorlogs --num-processes 2 "${TEST_ARGS[@]}" \
    "${PASS_ARGS[@]}"; then
    failed=1
  fi
  logs+=("$dir/meson-logs/testlog.json")
}

TEST_ARGS=("$@")
PASS_ARGS=()
run_pass "$BUILD_DIR"
if [ "$QUICK" = 0 ]; then
  echo "== the same suites under AddressSanitizer + UndefinedBehaviorSanitizer =="
  # Leaks are checked with valgrind (docs/reliability.md): GLib and GStreamer
  # keep one-time allocations that LeakSanitizer would report.
  # The browser suite tests chromium playing the gateway's page: the gateway
  # code under it runs sanitized in gateway-listen, so it is not run twice.
  if ((${#TEST_ARGS[@]} == 0)); then PASS_ARGS=(--no-suite browser); fi
  # -O1 (the level ASan is meant for) and line tables only (-g1): stack traces
  # keep file:line, and the build takes half the time of -O2 -g.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  GST_REGISTRY_FORK=no \
    run_pass "$BUILD_DIR-asan" -Db_sanitize=address,undefined -Db_lundef=false \
      -Doptimization=1 -Ddebug=false -Dcpp_args=-g1 -Dc_args=-g1
fi

if ((${#logs[@]} == 0)); then
  echo "0 passed, 1 failed"
  exit 1
fi
python3 scripts/test-summary.py "${logs[@]}" || failed=1
exit $failed
