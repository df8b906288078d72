#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The plugin finds its libsoup 3 module by itself: from a build tree with only
# GST_PLUGIN_PATH set, and from an installed copy moved to another prefix. A
# plugin without its module fails with an error that names the paths tried.
#   test_relocatable.sh PLUGIN.so MODULE.so SEGDL-SERVER
set -uo pipefail
plugin=$1 module=$2 server=$3
plugin_dir=$(dirname "$plugin")
. "$(dirname "$0")/lib.sh"
unset SEGDL_MODULE_DIR

# The reference backend on a port of its own choosing; its first line with
# "listening on" gives the URL (read with a bounded wait, no sleep).
start_demo_server "$server" --demo-seconds 40

# gst-launch-1.0 with a private registry per run; under the sanitizer pass
# the sanitized plugin needs the sanitizer runtime preloaded.
run() {  # LOG, then gst-launch-1.0 arguments
  local log=$1
  shift
  LD_PRELOAD="${SEGDL_CHILD_PRELOAD:-}" GST_REGISTRY="$tmp/registry-$RANDOM.bin" \
    timeout 120 gst-launch-1.0 "$@" >"$log" 2>&1
}

# 1. From the build tree, GST_PLUGIN_PATH only: playbin plays to the end.
GST_PLUGIN_PATH="$plugin_dir" run "$tmp/1.log" playbin "uri=segdl://$hostport/demo" \
  audio-sink="fakesink sync=false" video-sink=fakesink
rc=$?
grep -q "Got EOS" "$tmp/1.log"
check "build tree: playbin uri=segdl:// plays with only GST_PLUGIN_PATH set (rc=$rc)" $((rc || $?))
[ "$rc" = 0 ] || cat "$tmp/1.log"

# 2. An installed layout copied to another prefix: LIBDIR/gstreamer-1.0 and LIBDIR/segdl.
mkdir -p "$tmp/prefix/lib/gstreamer-1.0" "$tmp/prefix/lib/segdl"
cp "$plugin" "$tmp/prefix/lib/gstreamer-1.0/"
cp "$module" "$tmp/prefix/lib/segdl/"
GST_PLUGIN_PATH="$tmp/prefix/lib/gstreamer-1.0" run "$tmp/2.log" \
  segdlsrc "backend-url=$url" video-id=demo ! fakesink sync=false
rc=$?
grep -q "Got EOS" "$tmp/2.log"
check "relocated prefix: segdlsrc plays to EOS (rc=$rc)" $((rc || $?))
[ "$rc" = 0 ] || cat "$tmp/2.log"

# 3. The plugin without its module: a proper error naming the paths tried.
rm "$tmp/prefix/lib/segdl/$(basename "$module")"
GST_PLUGIN_PATH="$tmp/prefix/lib/gstreamer-1.0" run "$tmp/3.log" -m \
  segdlsrc "backend-url=$url" video-id=demo ! fakesink
rc=$?
ok=1
if [ "$rc" != 0 ] && grep -q "Could not load the segdl HTTP module" "$tmp/3.log" &&
  grep -q "looked in: $tmp/prefix/lib/segdl/" "$tmp/3.log" &&
  grep -q "SEGDL_MODULE_DIR" "$tmp/3.log"; then ok=0; fi
check "module missing: LIBRARY/INIT error naming the paths tried (rc=$rc)" $ok
[ "$ok" = 0 ] || cat "$tmp/3.log"

finish
