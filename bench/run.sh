#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# segdlsrc side by side with the alternatives, on loopback with a throttled
# reference backend (issue 11: "Speed where users feel it").
#
#   bench/run.sh [--quick] [--build DIR] [--latency-ms 40] [--bandwidth-kbps 4000]
#                [--reveal-every 2] [--runs N] [--long-runs N] [--media DIR] [--no-doc]
#                [--report-only]  (the tables and plot of the last run again, no measuring)
#
# Generates tracks with ffmpeg (3 min; default run also 60 min and 3 h; AAC
# 128 kbit/s in the m4a form the deployed backend serves and in MPEG-TS),
# serves them with segdl-server --latency-ms --bandwidth-kbps, and runs every
# contender in turn, several times: the floor (curl), the old tools (3 at a
# time + ffmpeg concat, bench/oldway.py), hlsdemux2 on an HLS playlist of the
# same segments, segdlsrc (to fakesink, into mp4mux) and `segdl --combine`
# when the build has it. Measures first decoded audio, the whole track into
# a file, CPU, peak RSS, 16 tracks at once and a backend still producing.
# Prints the tables and rewrites the generated section of docs/benchmarks.md
# and docs/benchmarks-run.png (unless --no-doc).
#
# Needs the set-up of scripts/setup.sh (ffmpeg, curl, GNU time, gnuplot,
# python3-gi) and a build (default build/, or --build DIR / $BUILD_DIR).
# --quick: 3-minute tracks only, fewer runs (under 2 minutes on a quiet
# 2-core machine); the default run takes under 15 minutes. Generated tracks
# are kept in BUILD/bench-media for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  if [ "$arg" = "-h" ] || [ "$arg" = "--help" ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
  fi
done
[ -x /usr/bin/time ] || { echo "bench/run.sh: needs GNU time (scripts/setup.sh)" >&2; exit 1; }
# Debian's Python, whose gi module (python3-gi) matches the system GStreamer.
PY=/usr/bin/python3
"$PY" -c 'import gi; gi.require_version("Gst", "1.0")' 2>/dev/null ||
  { echo "bench/run.sh: needs python3-gi and gir1.2-gstreamer-1.0 (scripts/setup.sh)" >&2; exit 1; }
exec "$PY" bench/bench.py "$@"
