#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The web player in a real browser (player.test.mjs): Debian's chromium,
# headless, driven by puppeteer-core installed with `npm ci` from
# package-lock.json into the build dir (again only when the lock changes).
#   run.sh BUILD_DIR SEGDL_SERVER SEGDL_GATEWAY [SCREENSHOT]
# Exit 77 (skipped) only when chromium (or node) cannot run at all here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1
export SEGDL_SERVER=$2 SEGDL_GATEWAY=$3
export SEGDL_SCREENSHOT=${4:-$build/gateway-player.png}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$CHROMIUM" ]; then
  echo "SKIP: $CHROMIUM is not installed (Debian: chromium; scripts/setup.sh installs it)"
  exit 77
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP: node and npm are needed to drive chromium (Debian: nodejs, npm)"
  exit 77
fi
# The timeline check shown failing on the states it must report (no browser).
timeout 60 node "$here/check.test.mjs"
SEGDL_WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/segdl-browser-XXXXXX")
export SEGDL_WORK_DIR
trap 'rm -rf "$SEGDL_WORK_DIR"' EXIT
if ! probe=$(timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
  --user-data-dir="$SEGDL_WORK_DIR/probe" --dump-dom about:blank 2>&1); then
  echo "SKIP: chromium cannot run here:"
  tail -n 5 <<<"$probe"
  exit 77
fi

export SEGDL_NODE_DIR=$build/browser-node
mkdir -p "$SEGDL_NODE_DIR"
if ! cmp -s "$here/package-lock.json" "$SEGDL_NODE_DIR/package-lock.json" ||
  [ ! -d "$SEGDL_NODE_DIR/node_modules/puppeteer-core" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$SEGDL_NODE_DIR/"
  (cd "$SEGDL_NODE_DIR" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts)
fi
# Under meson's 300 s: the waits inside report first (131 s measured at load 32).
exec timeout 280 node "$here/player.test.mjs"
