#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fuzzes the parsers of backend data with libFuzzer (clang), under
# AddressSanitizer and UndefinedBehaviorSanitizer.
#   bench/fuzz.sh [TARGET] [SECONDS]     TARGET: status (default) | vorbis | mp4 | codec
# New inputs go to a scratch corpus (bench/fuzz-out/TARGET); crashes are
# written there as crash-*. Replay one with
#   build/tests/fuzz_TARGET_replay bench/fuzz-out/TARGET/crash-...
# Installs clang and the libFuzzer runtime if missing (Debian 12).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-status}
SECONDS_TO_RUN=${2:-60}
OUT=bench/fuzz-out/$TARGET
for p in clang-14 libclang-rt-14-dev libjson-glib-dev libglib2.0-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || MISSING="${MISSING:-} $p"
done
if [ -n "${MISSING:-}" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q && $SUDO apt-get install -y -q $MISSING
fi
mkdir -p "$OUT/corpus"
cp -n tests/fuzz/corpus/"$TARGET"/* "$OUT/corpus/" 2>/dev/null || true
BIN="$OUT/fuzz_$TARGET"
clang++-14 -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DGLIB_VERSION_MIN_REQUIRED=GLIB_VERSION_2_74 -DGLIB_VERSION_MAX_ALLOWED=GLIB_VERSION_2_74 \
  -Igst tests/fuzz/fuzz_"$TARGET".cpp gst/segdl/status.cpp gst/segdl/urls.cpp gst/segdl/vorbis.cpp \
  gst/segdl/codec.cpp gst/segdl/mp4.cpp \
  $(pkg-config --cflags --libs json-glib-1.0 glib-2.0) -o "$BIN"
"$BIN" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$OUT/" -print_final_stats=1 "$OUT/corpus" 2>&1 | tee "$OUT/last-run.log" | tail -20
if ls "$OUT"/crash-* "$OUT"/leak-* "$OUT"/timeout-* >/dev/null 2>&1; then
  echo "fuzz: FAILURES in $OUT"; exit 1
fi
echo "fuzz: $TARGET ran ${SECONDS_TO_RUN}s without a crash (log: $OUT/last-run.log)"
