#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Load on segdl-gateway: 200 concurrent clients on loopback fetching cached
# segments (wrk, keep-alive), then 200 clients each on its own new connection
# fetching segments of tracks not cached yet (one upstream transfer per
# segment, however many ask). Prints requests/s, p50/p99 latency and the
# gateway's RSS (before, after, peak) as Markdown for docs/benchmarks.md.
#   bench/gateway.sh [SECONDS] [CONNECTIONS]      default: 10 200
# Needs the build in $BUILD_DIR (default build; scripts/setup.sh) and wrk.
# Everything runs on 127.0.0.1 and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
SECONDS_RUN=${1:-10}
CONNS=${2:-200}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts a program that prints "... listening on URL"; sets URL and PID.
start() {
  "$@" > "$WORK/out.$$" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  URL=""
  for _ in $(seq 1 600); do
    URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/out.$$" | head -1 | cut -d' ' -f3 || true)
    [ -n "$URL" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/out.$$"; exit 1; }
    sleep 0.1
  done
  [ -n "$URL" ] || { echo "$1 did not start"; exit 1; }
  rm -f "$WORK/out.$$"
}

rss() { awk '/^VmRSS/ {print int($2/1024)}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {print int($2/1024)}' "/proc/$1/status"; }
# CPU seconds (user + sys) a process has used: comparable between runs even
# when other work shares the machine, unlike wall-clock figures.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

start "$BUILD_DIR/tools/segdl-server" --demo --demo-seconds 180 --port 0
UPSTREAM=$URL
start "$BUILD_DIR/tools/gateway/segdl-gateway" --upstream "$UPSTREAM" --cache-dir "$WORK/cache" \
  --listen 127.0.0.1:0 --id-pattern '^[A-Za-z0-9_-]{1,64}$' --max-concurrent 4
GW=$URL
GW_PID=$PID

# Warm the cache: every segment of the three demo tracks.
for id in demo demo-mp3 demo-ts; do
  for n in 0 1 2 3 4 5 6; do curl -sf -o /dev/null "$GW/api/segments/$id/$n"; done
done
rss_before=$(rss "$GW_PID")

# wrk: requests spread over the cached segments (15 s and 30 s of audio,
# 240-1000 KB each).
cat > "$WORK/paths.lua" <<'LUA'
local paths = {}
for _, id in ipairs({"demo", "demo-mp3", "demo-ts"}) do
  for n = 0, 6 do paths[#paths + 1] = "/api/segments/" .. id .. "/" .. n end
end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
LUA
echo "## wrk, $CONNS connections, ${SECONDS_RUN} s, cached segments"
cpu_before=$(cpu "$GW_PID")
timeout $((SECONDS_RUN + 30)) wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s "$WORK/paths.lua" "$GW" \
  | tee "$WORK/wrk.txt"
rss_after=$(rss "$GW_PID")
cpu_after=$(cpu "$GW_PID")

# The small ones: the status of a cached track.
echo "## wrk, $CONNS connections, ${SECONDS_RUN} s, /status?v=demo"
timeout $((SECONDS_RUN + 30)) wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency "$GW/status?v=demo" \
  | tee "$WORK/wrk-status.txt"

# Misses: CONNS clients at once asking for the same uncached segments.
curl -sf -o /dev/null "$GW/status?v=demo-ts"  # the total, so the ids are known
start "$BUILD_DIR/tools/gateway/segdl-gateway" --upstream "$UPSTREAM" --cache-dir "$WORK/cache2" \
  --listen 127.0.0.1:0 --id-pattern '^[A-Za-z0-9_-]{1,64}$' --max-concurrent 4
GW2=$URL
miss_start=$(date +%s.%N)
for c in $(seq 1 "$CONNS"); do
  curl -sf -o /dev/null --max-time 60 "$GW2/api/segments/demo/$((c % 7))" &
done
wait_ok=0
for job in $(jobs -p); do
  case " ${PIDS[*]} " in *" $job "*) ;; *) wait "$job" || wait_ok=1 ;; esac
done
miss_end=$(date +%s.%N)
cached=$(curl -s "$GW2/api/segments/cache/demo" | grep -o '"segmentCount":[0-9]*')

req_s=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.txt")
p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")
xfer=$(awk '/^Transfer\/sec/ {print $2}' "$WORK/wrk.txt")
reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
errors=$(grep -E 'Socket errors|Non-2xx' "$WORK/wrk.txt" || echo "none")
s_req=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk-status.txt")
s_p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk-status.txt")
s_p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk-status.txt")
echo
echo "| load ($CONNS clients, loopback) | requests/s | p50 | p99 | transfer/s |"
echo "|---|---|---|---|---|"
echo "| cached segments (240-1000 KB) | $req_s | $p50 | $p99 | $xfer |"
echo "| /status?v= of a cached track | $s_req | $s_p50 | $s_p99 | - |"
echo
echo "wrk errors: $errors"
echo "gateway RSS: ${rss_before} MiB after warming, ${rss_after} MiB after the load, peak $(hwm "$GW_PID") MiB"
echo "gateway CPU for the cached segments: $(awk "BEGIN {printf \"%.2f s user+sys, %.3f ms a request (%d requests)\", $cpu_after - $cpu_before, 1000 * ($cpu_after - $cpu_before) / $reqs, $reqs}")"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "misses: $CONNS clients on 7 uncached segments: $(awk "BEGIN {printf \"%.2f\", $miss_end - $miss_start}") s," \
  "all ok: $([ $wait_ok = 0 ] && echo yes || echo no); cache afterwards: $cached"
