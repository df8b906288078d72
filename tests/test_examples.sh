#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The examples in examples/ still build and work: the C++ player (playbin +
# segdl://, a seek, an error) and the Python downloader (progress from the
# per-segment messages, a file of the right duration).
#   test_examples.sh PLAYER EXAMPLES_SRC_DIR SEGDL-SERVER
set -uo pipefail
player=$1 examples=$2 server=$3
. "$(dirname "$0")/lib.sh"

# Children get the sanitizer runtime under the sanitizer pass.
child() { LD_PRELOAD="${SEGDL_CHILD_PRELOAD:-}" timeout 120 "$@"; }

start_demo_server "$server" --demo-seconds 40

# 1. The player: plays, seeks to 20 s once prerolled, ends at the track's end.
child "$player" --seek 20 --audio-sink "fakesink sync=false" "segdl://$hostport/demo" \
  >"$tmp/p1.log" 2>&1
rc=$?
st=1
if [ $rc = 0 ] && grep -q "^seeked to 0:00:20.000000000" "$tmp/p1.log" &&
  grep -Eq "^end of track at 0:00:(39\.9|40\.0)" "$tmp/p1.log" &&
  grep -q "^stats segdl-stats" "$tmp/p1.log"; then st=0; fi
check "player: plays, seeks to 20 s, ends at 40 s, prints the final stats (rc=$rc)" $st
[ $st = 0 ] || cat "$tmp/p1.log"

# 2. The player on an unknown id: exit 1 with the RESOURCE error and its details.
child "$player" --audio-sink "fakesink sync=false" "segdl://$hostport/no-such-id" \
  >"$tmp/p2.log" 2>&1
rc=$?
st=1
if [ $rc = 1 ] && grep -q "^error: .*(domain gst-resource-error-quark" "$tmp/p2.log" &&
  grep -q "^error-details details, segment=" "$tmp/p2.log"; then st=0; fi
check "player: an unknown id ends with a RESOURCE error and its details (rc=$rc)" $st
[ $st = 0 ] || cat "$tmp/p2.log"

# 3. The Python downloader: progress per segment, a 40 s Matroska file
# (segment 0 may be done before the first status says how many there are).
if ! /usr/bin/python3 -c "import gi; gi.require_version('Gst', '1.0')" 2>/dev/null; then
  check "python3-gst-1.0 is installed (scripts/setup.sh installs it)" 1
else
  child /usr/bin/python3 "$examples/download.py" "$url" demo "$tmp/demo.mka" >"$tmp/py.log" 2>&1
  rc=$?
  gst-discoverer-1.0 "$tmp/demo.mka" >"$tmp/disc.log" 2>&1
  st=1
  if [ $rc = 0 ] && grep -Eq "^segment 0 done: [0-9]+ bytes from network \(1(/2)? segments\)" "$tmp/py.log" &&
    grep -q "^segment 1 done: [0-9]* bytes from network (2/2 segments)" "$tmp/py.log" &&
    grep -q "^done: 2 segments" "$tmp/py.log" &&
    grep -Eq "Duration: 0:00:(39\.9|40\.0)" "$tmp/disc.log"; then st=0; fi
  check "download.py: a progress line per segment, a 40 s file (rc=$rc)" $st
  [ $st = 0 ] || cat "$tmp/py.log" "$tmp/disc.log"
fi

finish
