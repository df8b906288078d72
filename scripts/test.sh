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
TEST_ARGS=("$@")
ASAN_DIR=$BUILD_DIR-asan

logs=()
failed=0

# The plugin is loaded in the test process itself (no plugin-scanner child),
# so that a sanitized plugin runs under the test's sanitizer runtime.
run_tests() {  # BUILD_DIR PROCESSES [meson test options...]
  local dir=$1 procs=$2
  shift 2
  if ! meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes "$procs" \
    "${TEST_ARGS[@]}" "$@"; then
    failed=1
  fi
  logs+=("$dir/meson-logs/testlog.json")
}

# Both passes keep line tables only (-g1): stack traces and failures keep
# file:line, the code is the same as with -g, and the build costs about a
# quarter less CPU time (no variable locations to track).
LINE_TABLES=(-Ddebug=false -Dcpp_args=-g1 -Dc_args=-g1)

normal_built=1
if ! scripts/setup.sh "$BUILD_DIR" "${LINE_TABLES[@]}"; then
  echo "setup or build of $BUILD_DIR failed"
  normal_built=0
  failed=1
fi

asan_build=
asan_log=
stop_asan_build() {
  if [ -n "$asan_build" ]; then kill -- "-$asan_build" 2>/dev/null; fi
  if [ -n "$asan_log" ]; then rm -f "$asan_log"; fi
}
trap stop_asan_build EXIT
if [ "$QUICK" = 0 ]; then
  # The sanitizer build runs beside the first pass's tests at the lowest CPU
  # priority (SCHED_IDLE; nice 19 where that is refused): it gets the CPU
  # time those tests leave while they wait on servers, timers and child
  # processes, and they keep their speed. Its own session, so that it is
  # stopped with this script; its output is shown once it is done.
  # -O1: the level ASan is meant for.
  idle=(chrt --idle 0)
  if ! chrt --idle 0 true 2>/dev/null; then idle=(nice -n 19); fi
  asan_log=$(mktemp "${TMPDIR:-/tmp}/segdl-asan-build.XXXXXX")
  setsid "${idle[@]}" scripts/setup.sh "$ASAN_DIR" -Db_sanitize=address,undefined \
    -Db_lundef=false -Doptimization=1 "${LINE_TABLES[@]}" \
    >"$asan_log" 2>&1 &
  asan_build=$!
fi

# Two at a time: the sanitizer build uses what CPU they leave (see above).
if [ "$normal_built" = 1 ]; then run_tests "$BUILD_DIR" 2; fi

if [ "$QUICK" = 0 ]; then
  wait "$asan_build"
  asan_built=$?
  asan_build=
  echo "== the same suites under AddressSanitizer + UndefinedBehaviorSanitizer =="
  cat "$asan_log"
  rm -f "$asan_log"
  if [ "$asan_built" != 0 ]; then
    echo "setup or build of $ASAN_DIR failed"
    failed=1
  else
    # Leaks are checked with valgrind (docs/reliability.md): GLib and
    # GStreamer keep one-time allocations that LeakSanitizer would report.
    # The browser suite tests chromium playing the gateway's page: the
    # gateway code under it runs sanitized in gateway-listen, so it is not
    # run twice. Three at a time on two cores: the suites spend much of
    # their time waiting on servers, timers and child processes.
    pass_args=()
    if ((${#TEST_ARGS[@]} == 0)); then pass_args=(--no-suite browser); fi
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    GST_REGISTRY_FORK=no \
      run_tests "$ASAN_DIR" 3 "${pass_args[@]}"
  fi
fi

if ((${#logs[@]} == 0)); then
  echo "0 passed, 1 failed"
  exit 1
fi
python3 scripts/test-summary.py "${logs[@]}" || failed=1
exit $failed
