#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs what is missing (Debian 12 packages), configures and builds segdl.
#   scripts/setup.sh [BUILD_DIR] [extra meson options...]
# Safe to run again: installs only what is missing, reconfigures only when
# needed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
shift || true

PACKAGES=(
  meson ninja-build g++ pkg-config python3
  libglib2.0-dev libsoup-3.0-dev libjson-glib-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-base-apps
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  # HTTPS in tests: GIO's TLS backend, and openssl to make a self-signed certificate.
  glib-networking openssl
  # Fixtures made the way real backends cut and encode: tests and benchmarks
  # only, the product never runs ffmpeg.
  ffmpeg
  # The Python example (examples/download.py) and its test.
  python3-gi python3-gst-1.0
  # Only for the test proving segdlsrc refuses to run beside libsoup 2.
  libsoup2.4-1
  # bench/run.sh: curl is a contender, GNU time measures CPU and memory, gnuplot draws the plot.
  curl time gnuplot-nox
  # The gateway: nginx as a caching proxy in its test (run on a private
  # config, never as the system service), wrk for bench/gateway.sh.
  nginx-light wrk
  # The gateway's web player is tested in a real browser, headless (puppeteer-core from npm).
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# The browser test drives chromium with puppeteer-core from the npm registry:
# Node.js and npm from Debian, unless the machine has them from elsewhere
# (Debian's npm would conflict with another source's nodejs).
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  for p in nodejs npm; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  # No service may start while installing (nginx would take port 80, or fail
  # the install when it is taken): deny starts unless a policy exists already.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  # ... nor be enabled for the next boot.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now nginx.service >/dev/null 2>&1 || true
  fi
fi

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" "$@"
elif [ $# -gt 0 ]; then
  meson configure "$BUILD_DIR" "$@"
fi
ninja -C "$BUILD_DIR"
