#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Memory and time to first byte of segdlsrc against tracks of different
# lengths (the claim: memory does not grow with the track length, because
# only max-concurrent + 1 segments are held ahead of the push loop).
#   bench/memory.sh [MINUTES...]      default: 3 30 90
# Serves generated tracks (segdl-server --demo, 15 s + 30 s segments) on
# 127.0.0.1, downloads each with `segdlsrc ! fakesink` as fast as possible,
# and prints peak RSS (GNU time) and wall time per length, as a Markdown
# table for docs/benchmarks.md. Needs the build in build/ (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)"; exit 1; }
LENGTHS=("$@")
((${#LENGTHS[@]})) || LENGTHS=(3 30 90)

echo "| track | segments | join | peak RSS (MiB) | wall time (s) | time to first byte (ms) |"
echo "|---|---|---|---|---|---|"
for minutes in "${LENGTHS[@]}"; do
  seconds=$((minutes * 60))
  coproc SERVER { exec "$BUILD_DIR/tools/segdl-server" --demo --demo-seconds "$seconds" --port 0 2>&1; }
  URL=""
  while IFS= read -r -t 600 line <&"${SERVER[0]}"; do
    if [[ "$line" == *"listening on "* ]]; then URL=${line##*listening on }; break; fi
  done
  [ -n "$URL" ] || { echo "segdl-server did not start"; exit 1; }
  segments=$(( (seconds - 15 + 29) / 30 + 1 ))
  for join in bytes timeline; do
    log=$(mktemp)
    GST_PLUGIN_PATH="$PWD/$BUILD_DIR/plugins/segdl" SEGDL_MODULE_DIR="$PWD/$BUILD_DIR/gst/segdl" \
      /usr/bin/time -f "%M %e" -o "$log.time" \
      gst-launch-1.0 -m segdlsrc name=src backend-url="$URL" video-id=demo join=$join \
      ! fakesink sync=false > "$log" 2>&1 || true
    read -r rss_kb wall < "$log.time"
    # segdlsrc posts its final stats (segdl-stats) as an element message.
    ttfb=$(grep -o 'time-to-first-byte=(guint64)[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    ttfb_ms=$([ -n "$ttfb" ] && echo "$((ttfb / 1000000))" || echo "-")
    echo "| ${minutes} min | $segments | $join | $((rss_kb / 1024)) | $wall | $ttfb_ms |"
    rm -f "$log" "$log.time"
  done
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
done
