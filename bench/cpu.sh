#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Where the CPU of "one track into a file" goes (issue 11: CPU of the
# 60-minute job against the old way's), in counts that do not depend on how
# busy the machine is: futex system calls and context switches per thread
# (perf tracepoints), and perf's sample share per thread.
#
#   bench/cpu.sh [--build DIR] [--id m4a-60] [--runs 3]
#
# Serves BUILD/bench-media/serve (made by bench/run.sh; the 60-minute track
# only by its default run) with segdl-server, unthrottled, and runs:
#   segdlsrc ! fakesink
#   segdlsrc ! mp4mux ! filesink                  (GstAggregator latency 0)
#   segdlsrc ! mp4mux latency=5000000000 ! filesink   (as segdl --combine)
#   segdl --combine
#   bench/oldway.py (python + curl-like fetches + ffmpeg concat)
# For each: perf stat task-clock (user, sys) of each of --runs runs, then one run
# under perf record of the futex/write(v) system calls and sched_switch,
# counted per thread. Needs perf (linux-perf) with tracepoints readable
# (root, or kernel.perf_event_paranoid <= -1). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
ID=m4a-60
RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --id) ID=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/cpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
ROOT=$BUILD/bench-media/serve
[ -d "$ROOT/$ID" ] || { echo "bench/cpu.sh: no $ROOT/$ID (run bench/run.sh first)" >&2; exit 1; }
command -v perf >/dev/null || { echo "bench/cpu.sh: needs perf (linux-perf)" >&2; exit 1; }
TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
"$BUILD/tools/segdl-server" --root "$ROOT" --port 0 >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do
  grep -q "listening on " "$TMP/server.log" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; exit 1; }
  sleep 0.5
done
S=$(sed -n 's/.*listening on //p' "$TMP/server.log" | head -1)
[ -n "$S" ] || { echo "bench/cpu.sh: segdl-server did not start" >&2; exit 1; }
export GST_PLUGIN_PATH=$PWD/$BUILD/plugins/segdl SEGDL_MODULE_DIR=$PWD/$BUILD/gst/segdl

# One contender: name, then the command.
measure() {
  local name=$1
  shift
  echo "== $name"
  echo "   $*"
  local i
  for i in $(seq "$RUNS"); do
    rm -rf "$TMP/dl" "$TMP/out.m4a" "$TMP/work"  # every run downloads and writes everything
    perf stat -e task-clock,context-switches -o "$TMP/stat" -- "$@" >/dev/null 2>&1 ||
      { echo "   FAILED"; return; }
    awk '/task-clock/ {t=$1} /context-switches/ {c=$1} / user$/ {u=$1} / sys$/ {s=$1}
         END {printf "   run: task-clock %s ms  user %s s  sys %s s  context switches %s\n", t, u, s, c}' \
      "$TMP/stat"
  done
  rm -rf "$TMP/dl" "$TMP/out.m4a" "$TMP/work"
  perf record -q -o "$TMP/rec" -e syscalls:sys_enter_futex -e syscalls:sys_enter_write \
    -e syscalls:sys_enter_writev -e sched:sched_switch -- "$@" >/dev/null 2>&1 || true
  echo "   per thread (one run): count  thread  event"
  perf script -i "$TMP/rec" -F comm,event 2>/dev/null |
    awk '{ev=$NF; sub(/:$/, "", ev); sub(/^[a-z]*:/, "", ev); c=$1; for (i=2; i<NF; i++) c=c" "$i; n[c"\t"ev]++}
         END {for (k in n) printf "   %8d  %s\n", n[k], k}' | sort -rn | head -12
  rm -rf "$TMP/dl" "$TMP/out.m4a" "$TMP/work" "$TMP/rec"
}

measure "segdlsrc ! fakesink" gst-launch-1.0 -q segdlsrc backend-url="$S" video-id="$ID" \
  max-concurrent=3 '!' fakesink
measure "segdlsrc ! mp4mux ! filesink" gst-launch-1.0 -q segdlsrc backend-url="$S" \
  video-id="$ID" max-concurrent=3 '!' mp4mux '!' filesink location="$TMP/out.m4a"
measure "segdlsrc ! mp4mux latency=5 s ! filesink" gst-launch-1.0 -q segdlsrc backend-url="$S" \
  video-id="$ID" max-concurrent=3 '!' mp4mux latency=5000000000 '!' filesink location="$TMP/out.m4a"
measure "segdl --combine" "$BUILD/tools/cli/segdl" "$ID" --backend-url "$S" -d "$TMP/dl" \
  --combine "$TMP/out.m4a" --concurrent 3 --quiet
measure "old way (bench/oldway.py)" /usr/bin/python3 bench/oldway.py "$S" "$ID" "$TMP/out.m4a" \
  "$TMP/work"
