# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the shell test suites (sourced): a private temp dir, TAP-like
# checks with a closing "N passed, N failed" line, and segdl-server started
# on a port of its own choosing and stopped on exit.
#   . lib.sh; start_demo_server SEGDL-SERVER [ARGS...]; ...; finish

tmp=$(mktemp -d)
fails=0
total=0
srv_pid=""
_cleanup() {
  if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap _cleanup EXIT

check() {  # NAME STATUS (0 = ok)
  total=$((total + 1))
  if [ "$2" = 0 ]; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi
}

finish() {
  echo "$((total - fails)) passed, $fails failed"
  exit $((fails > 0))
}

# Starts SEGDL-SERVER --demo --port 0 [ARGS...]; sets url (http://127.0.0.1:P)
# and hostport from its "listening on" line, read with a bounded wait.
start_demo_server() {
  local server=$1 line
  shift
  mkfifo "$tmp/srv.out"
  "$server" --demo --port 0 "$@" >"$tmp/srv.out" 2>&1 &
  srv_pid=$!
  exec 3<"$tmp/srv.out"
  url=""
  while IFS= read -r -t 60 line <&3; do
    case $line in *"listening on "*) url=${line##*listening on }; break ;; esac
  done
  if [ -z "$url" ]; then
    echo "not ok - segdl-server did not start"
    echo "0 passed, 1 failed"
    exit 1
  fi
  cat <&3 >/dev/null &  # keep draining its output
  hostport=${url#http://}
}
