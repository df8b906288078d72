#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Time to first audio of segdl-gateway's web player in Chromium, headless
# (bench/browser.mjs, on the browser test's driver tests/gateway/browser/driver.mjs):
# medians over RUNS of the page's own marks (first byte of /listen,
# loadedmetadata, canplay, playing) per form, beside the GStreamer floor
# (souphttpsrc reading segment 0 into decodebin). Prints Markdown for
# docs/benchmarks.md. Run it on a quiet machine (load below 3).
#   bench/browser.sh [--runs N] [--latency-ms MS] [--bandwidth-kbps KBPS]
#                    [--reveal-every S] [--forms "demo demo-mp3 opus demo:audio/mp4 opus:audio/ogg"]
# Defaults: 5 runs, 40 ms, 4000 kbit/s, one segment revealed a second.
# Needs the build in $BUILD_DIR (default build; scripts/setup.sh), chromium,
# node and npm (puppeteer-core is installed into $BUILD_DIR/browser-node as
# the browser test does). Everything runs on 127.0.0.1 and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
BUILD_DIR=${BUILD_DIR:-build}
export BENCH_RUNS=5 BENCH_LATENCY_MS=40 BENCH_BANDWIDTH_KBPS=4000 BENCH_REVEAL_S=1
export BENCH_FORMS="demo demo-mp3 opus demo:audio/mp4 opus:audio/ogg"
while [ $# -gt 0 ]; do
  case $1 in
    --runs) BENCH_RUNS=$2; shift 2 ;;
    --latency-ms) BENCH_LATENCY_MS=$2; shift 2 ;;
    --bandwidth-kbps) BENCH_BANDWIDTH_KBPS=$2; shift 2 ;;
    --reveal-every) BENCH_REVEAL_S=$2; shift 2 ;;
    --forms) BENCH_FORMS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--latency-ms MS] [--bandwidth-kbps KBPS] [--reveal-every S] [--forms LIST]" >&2
       exit 2 ;;
  esac
done
export SEGDL_SERVER=$top/$BUILD_DIR/tools/segdl-server
export SEGDL_GATEWAY=$top/$BUILD_DIR/tools/gateway/segdl-gateway
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export BENCH_GSTRUN=$top/bench/gstrun.py
for exe in "$SEGDL_SERVER" "$SEGDL_GATEWAY" "$CHROMIUM"; do
  [ -x "$exe" ] || { echo "$exe is missing (scripts/setup.sh $BUILD_DIR installs and builds)" >&2; exit 1; }
done
command -v npm >/dev/null || { echo "node and npm are needed (Debian: nodejs, npm)" >&2; exit 1; }
# The plugin and its HTTP module from this build, as meson's test environment has them.
export GST_PLUGIN_PATH=$top/$BUILD_DIR/plugins/segdl${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
export SEGDL_MODULE_DIR=$top/$BUILD_DIR/gst/segdl

export SEGDL_NODE_DIR=$top/$BUILD_DIR/browser-node
lock=$top/tests/gateway/browser/package-lock.json
mkdir -p "$SEGDL_NODE_DIR"
if ! cmp -s "$lock" "$SEGDL_NODE_DIR/package-lock.json" ||
  [ ! -d "$SEGDL_NODE_DIR/node_modules/puppeteer-core" ]; then
  cp "$top/tests/gateway/browser/package.json" "$lock" "$SEGDL_NODE_DIR/"
  (cd "$SEGDL_NODE_DIR" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts)
fi
SEGDL_WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/segdl-bench-browser-XXXXXX")
export SEGDL_WORK_DIR
trap 'rm -rf "$SEGDL_WORK_DIR"' EXIT
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
timeout 1800 node "$top/bench/browser.mjs"
