#!/usr/bin/env bash
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
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" "$@"
elif [ $# -gt 0 ]; then
  meson configure "$BUILD_DIR" "$@"
fi
ninja -C "$BUILD_DIR"
