#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The bundled demo: sets up and builds segdl (scripts/setup.sh), serves a
# generated 3-minute track with segdl-server on 127.0.0.1 (segments revealed
# progressively, like a backend that is still producing them), downloads it
# with segdlsrc (segments joined in the pipeline, no re-encoding) and saves
# it with the command line, `segdl demo --combine demo-out/demo-segdl.m4a`
# (a progress bar on a terminal while the server reveals the segments; they
# are kept in demo-out/downloads), then with a gst-launch pipeline as
# demo-out/demo.m4a, and checks both durations.
#   scripts/demo.sh            save to demo-out/demo.m4a and demo-out/demo-segdl.m4a
#   scripts/demo.sh --play     also play it on the sound card (playbin segdl://...)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
OUT_DIR=${OUT_DIR:-demo-out}
REVEAL=${REVEAL:-2}   # seconds between two segments becoming ready
PLAY=0
[[ "${1:-}" == "--play" ]] && PLAY=1

scripts/setup.sh "$BUILD_DIR"
mkdir -p "$OUT_DIR"

coproc SERVER { exec "$BUILD_DIR/tools/segdl-server" --demo --port 0 --reveal-every "$REVEAL" 2>&1; }
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
URL=""
while IFS= read -r -t 120 line <&"${SERVER[0]}"; do
  echo "segdl-server: $line"
  if [[ "$line" == *"listening on "* ]]; then URL=${line##*listening on }; break; fi
done
[ -n "$URL" ] || { echo "demo: segdl-server did not start" >&2; exit 1; }

run() { meson devenv -C "$BUILD_DIR" -w "$ROOT" "$@"; }

echo "demo: segdl demo --backend-url $URL --download-dir $OUT_DIR/downloads --combine $OUT_DIR/demo-segdl.m4a"
run "$ROOT/$BUILD_DIR/tools/cli/segdl" demo --backend-url "$URL" \
  --download-dir "$OUT_DIR/downloads" --combine "$OUT_DIR/demo-segdl.m4a"

echo "demo: segdlsrc backend-url=$URL video-id=demo ! mp4mux ! filesink location=$OUT_DIR/demo.m4a"
run gst-launch-1.0 -e segdlsrc backend-url="$URL" video-id=demo \
  ! mp4mux ! filesink location="$OUT_DIR/demo.m4a"

if [ "$PLAY" = 1 ]; then
  URI="segdl://${URL#http://}/demo"
  echo "demo: playbin uri=$URI"
  run gst-launch-1.0 playbin uri="$URI"
fi

echo "demo: checking $OUT_DIR/demo.m4a"
gst-discoverer-1.0 "$OUT_DIR/demo.m4a" | grep -E "Duration|audio" || true
gst-discoverer-1.0 "$OUT_DIR/demo-segdl.m4a" | grep -E "Duration" || true
echo "demo: done: $OUT_DIR/demo.m4a $OUT_DIR/demo-segdl.m4a"
