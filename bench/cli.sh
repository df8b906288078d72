#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# segdl on a long track (default 20 minutes of the demo melody, ADTS AAC
# segments of 15 s + 30 s) against two references, all over HTTP from
# segdl-server on 127.0.0.1 with the same latency:
#   floor  the segments fetched with curl, CONCURRENT at a time, nothing else
#   old    the same, then `ffmpeg -f concat -c copy` into an .m4a (the old tools)
#   segdl  `segdl demo --combine out.m4a` (wall time and peak RSS from
#          /usr/bin/time), first run (network) and second run (cache)
# Prints one line per measurement (segdl: wall, CPU user+sys, peak RSS). Not
# a test: numbers depend on the machine; CPU depends less on its load.
# The floor starts one curl process per segment, so on a busy machine it is
# not a tight floor. First audio: `segdl --play` against souphttpsrc !
# decodebin reading segment 0 (both from process start).
# Results and what they mean: docs/benchmarks.md, "segdl --combine on a
# 20-minute track" (whole-track times are single runs, first audio medians of 5).
#   BUILD_DIR=build TRACK_SECONDS=1200 LATENCY_MS=20 CONCURRENT=3 bench/cli.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
TRACK_SECONDS=${TRACK_SECONDS:-1200}
LATENCY_MS=${LATENCY_MS:-20}
CONCURRENT=${CONCURRENT:-3}
for tool in curl ffmpeg /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed" >&2; exit 1; }
done
[ -x "$BUILD_DIR/tools/cli/segdl" ] || { echo "bench: build first (scripts/setup.sh $BUILD_DIR)" >&2; exit 1; }

WORK=$(mktemp -d)
coproc SERVER { exec "$BUILD_DIR/tools/segdl-server" --demo --demo-seconds "$TRACK_SECONDS" \
  --port 0 --latency-ms "$LATENCY_MS" 2>&1; }
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
URL=""
while IFS= read -r -t 600 line <&"${SERVER[0]}"; do
  if [[ "$line" == *"listening on "* ]]; then URL=${line##*listening on }; break; fi
done
[ -n "$URL" ] || { echo "bench: segdl-server did not start" >&2; exit 1; }
N=$(curl -sf "$URL/status?v=demo" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalSegments"])')
echo "bench: ${TRACK_SECONDS} s track, $N segments, latency ${LATENCY_MS} ms, $CONCURRENT at a time"

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }

fetch_all() {  # DIR
  mkdir -p "$1"
  seq 0 $((N - 1)) | xargs -P "$CONCURRENT" -I{} \
    curl -sf -o "$1/segment_{}.aac" "$URL/stream?v=demo&segment={}"
}

t0=$(now); fetch_all "$WORK/floor"; echo "floor  (curl, $CONCURRENT parallel):         $(since "$t0") s"

t0=$(now)
fetch_all "$WORK/old"
for i in $(seq 0 $((N - 1))); do echo "file '$WORK/old/segment_$i.aac'"; done > "$WORK/old/list.txt"
ffmpeg -v error -y -f concat -safe 0 -i "$WORK/old/list.txt" -c copy "$WORK/old.m4a"
echo "old    (curl + ffmpeg concat):          $(since "$t0") s"

run_segdl() {  # LABEL
  local out
  out=$( { meson devenv -C "$BUILD_DIR" -w "$ROOT" /usr/bin/time -f "%e %M %U %S" \
    "$ROOT/$BUILD_DIR/tools/cli/segdl" demo -b "$URL" -d "$WORK/dl" -c "$CONCURRENT" \
    --combine "$WORK/segdl.m4a" --quiet; } 2>&1 | tail -1)
  read -r wall rss user sys <<<"$out"
  cpu=$(python3 -c "print(f'{float(\"$user\") + float(\"$sys\"):.2f}')")
  echo "segdl  ($1):$(printf '%*s' $((25 - ${#1})) '') $wall s, CPU $cpu s, peak RSS $((rss / 1024)) MiB"
}
run_segdl "network"
run_segdl "from the cache"
gst-discoverer-1.0 "$WORK/segdl.m4a" | grep -m1 Duration || true

# First audio: the GStreamer floor (souphttpsrc reading segment 0 into
# decodebin, until the first decoded buffer) against `segdl --play` (until
# its "playing" event: the first decoded buffer on the sound card's branch),
# both from process start, empty download dir, median of 5.
first_audio() {
  meson devenv -C "$BUILD_DIR" -w "$ROOT" python3 - "$URL" "$ROOT/$BUILD_DIR/tools/cli/segdl" "$WORK" <<'PY'
import statistics, subprocess, sys, time
url, segdl, work = sys.argv[1:4]
def floor():
    t0 = time.monotonic()
    subprocess.run(["gst-launch-1.0", "-q", "souphttpsrc", f"location={url}/stream?v=demo&segment=0",
                    "!", "decodebin", "!", "fakesink", "num-buffers=1"], check=True,
                   stdout=subprocess.DEVNULL, timeout=120)
    return time.monotonic() - t0
def segdl_play(n):
    t0 = time.monotonic()
    p = subprocess.Popen([segdl, "demo", "-b", url, "-d", f"{work}/fa{n}", "--play", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env={**__import__("os").environ, "SEGDL_AUDIO_SINK": "fakesink"})
    for line in p.stdout:
        if '"playing"' in line:
            break
    t = time.monotonic() - t0
    p.terminate(); p.wait(timeout=60)
    return t
f = statistics.median(floor() for _ in range(5))
s = statistics.median(segdl_play(n) for n in range(5))
print(f"first audio: floor {f:.3f} s, segdl --play {s:.3f} s ({s / f:.2f} x)")
PY
}
first_audio
